/* Where the inputs of the N:M linears come from. The op lists (desc.h) say it: a linear row's in0
 * names the op whose output it reads, NMF_OPIN_BLOCK being the block's input, i.e. the last op of
 * the previous block (or of the stem for block 0). The observer of the forward sees that op's
 * output, so the calibration statistics of every linear come from the one forward; linears that
 * read the same op (q, k, v) share one tap. */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels/gemm_backend.h"
#include "prune/prune_internal.h"

void nmf_acc_sumsq(double *sumsq, const float *x, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            const double v = x[r * cols + j];
            sumsq[j] += v * v;
        }
}

nmf_status nmf_acc_xtx(double *xtx, const float *x, size_t rows, size_t cols) {
    enum { CHUNK = 256 }; /* rows converted to double at a time */
    double *xd = nmf_alloc(CHUNK * cols, sizeof(double));
    if (!xd) return nmf_error(NMF_ERR_NOMEM, "X^T X of %zu columns", cols);
    const int blas_threads = nmf_openblas_threads(nmf_get_threads()); /* ours, not OpenBLAS's */
    for (size_t r0 = 0; r0 < rows; r0 += CHUNK) {
        const size_t n = rows - r0 < CHUNK ? rows - r0 : CHUNK;
        for (size_t i = 0; i < n * cols; i++) xd[i] = x[r0 * cols + i];
        // xtx (cols, cols) += xd^T (cols, n) xd (n, cols)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)cols, (int)n, 1.0, xd, (int)cols, 1.0,
                    xtx, (int)cols);
    }
    nmf_openblas_threads(blas_threads);
    nmf_free(xd);
    return NMF_OK;
}

/* The op (and its block) whose output is the input of row r in block `block`. */
static void producer(const nmf_model_config *c, const nmf_op_row *r, int block, int *op, int *in_block) {
    if (r->in0 != NMF_OPIN_BLOCK) {
        *op = r->in0;
        *in_block = block;
        return;
    }
    int n;
    const nmf_op_row *prev = block > 0 ? nmf_model_block_ops(c, &n) : nmf_model_stem_ops(c, &n);
    *op = prev[n - 1].op;
    *in_block = block - 1;
}

static int *slot_of(const nmf_prune_plan *pl, int op, int block) {
    return &pl->slot[(size_t)(block + 1) * NMF_OP_ID_MAX + (size_t)op];
}

nmf_status nmf_prune_plan_build(nmf_prune_plan *pl, const nmf_model_config *c) {
    memset(pl, 0, sizeof *pl);
    nmf_status st = nmf_model_describe(&pl->desc, c);
    if (st) return st;
    const nmf_model_desc *d = &pl->desc;
    int nops;
    const nmf_op_row *ops = nmf_model_block_ops(c, &nops);
    pl->layers = nmf_model_layers(c);
    size_t eligible = 0;
    for (size_t i = 0; i < d->count; i++) eligible += nmf_param_kind_of(d, &d->params[i])->nm != 0;
    const size_t slots = (size_t)(pl->layers + 1) * NMF_OP_ID_MAX;
    pl->slot = malloc(slots * sizeof(int));
    pl->linears = calloc(eligible ? eligible : 1, sizeof *pl->linears);
    pl->taps = calloc(eligible ? eligible : 1, sizeof *pl->taps);
    if (!ops || !pl->slot || !pl->linears || !pl->taps) {
        nmf_prune_plan_free(pl);
        return ops ? nmf_error(NMF_ERR_NOMEM, "pruning plan")
                   : nmf_error(NMF_ERR_UNSUPPORTED, "arch '%s' has no op list", c->arch);
    }
    for (size_t i = 0; i < slots; i++) pl->slot[i] = -1;
    for (int l = 0; l < pl->layers; l++)
        for (int i = 0; i < nops; i++) {
            const nmf_op_row *r = &ops[i];
            if (r->kind != NMF_OPK_LINEAR || r->weight < 0 || !d->kinds[r->weight].nm) continue;
            const nmf_param *p = nmf_model_desc_at(d, r->weight, l);
            if (!p || pl->nlinears == eligible) continue;
            int op, b;
            producer(c, r, l, &op, &b);
            int *s = slot_of(pl, op, b);
            if (*s < 0) {
                *s = (int)pl->ntaps;
                pl->taps[pl->ntaps++] = (nmf_prune_tap){.op = op, .block = b, .cols = p->cols};
            } else if (pl->taps[*s].cols != p->cols) {
                nmf_prune_plan_free(pl);
                return nmf_error(NMF_ERR_SHAPE, "%s: %zu inputs, its input op gives %zu", p->name,
                                 p->cols, pl->taps[*s].cols);
            }
            pl->linears[pl->nlinears++] = (nmf_prune_linear){p, l, (size_t)*s};
        }
    if (pl->nlinears != eligible) { /* an N:M weight that no op reads: the op list is incomplete */
        nmf_prune_plan_free(pl);
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: %zu N:M-eligible weights, %zu in the op list",
                         c->arch, eligible, pl->nlinears);
    }
    return NMF_OK;
}

void nmf_prune_plan_drop_tap(nmf_prune_tap *t) {
    nmf_free(t->xtx);
    nmf_free(t->dead);
    t->xtx = NULL;
    t->dead = NULL;
}

void nmf_prune_plan_free(nmf_prune_plan *pl) {
    for (size_t i = 0; pl->taps && i < pl->ntaps; i++) {
        nmf_free(pl->taps[i].sumsq);
        nmf_prune_plan_drop_tap(&pl->taps[i]);
    }
    free(pl->taps);
    free(pl->linears);
    free(pl->slot);
    nmf_model_desc_free(&pl->desc);
    memset(pl, 0, sizeof *pl);
}

const nmf_prune_linear *nmf_prune_plan_find(const nmf_prune_plan *pl, const char *name) {
    for (size_t i = 0; i < pl->nlinears; i++)
        if (!strcmp(pl->linears[i].param->name, name)) return &pl->linears[i];
    return NULL;
}

void nmf_prune_plan_observe(const nmf_op_event *e, void *ctx) {
    nmf_prune_plan *pl = ctx;
    if (pl->error || e->op < 0 || e->op >= NMF_OP_ID_MAX || e->block < -1 || e->block >= pl->layers)
        return;
    const int s = *slot_of(pl, e->op, e->block);
    if (s < 0) return;
    nmf_prune_tap *t = &pl->taps[s];
    if (!t->sumsq && !t->xtx) return; /* not gathered in this pass */
    if (e->cols != t->cols) {
        pl->error = nmf_error(NMF_ERR_SHAPE, "%s: %zu columns observed, %zu expected", e->name,
                              e->cols, t->cols);
        return;
    }
    if (t->sumsq) nmf_acc_sumsq(t->sumsq, e->data, e->rows, e->cols);
    if (t->xtx && (pl->error = nmf_acc_xtx(t->xtx, e->data, e->rows, e->cols))) return;
    t->rows += e->rows;
}
