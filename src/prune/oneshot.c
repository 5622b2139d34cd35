/* One-shot pruning of a whole model (nmformer/prune.h): the calibration forward, the method on
 * every N:M-eligible linear, and the packing of each pattern's model (model/prune.c). */
#include <stdlib.h>
#include <string.h>

#include "model/prune_internal.h"
#include "prune/prune_internal.h"

static const char *const method_names[NMF_PRUNE_METHOD_COUNT] = {"magnitude", "wanda", "sparsegpt"};

const char *nmf_prune_method_name(nmf_prune_method m) {
    return (unsigned)m < NMF_PRUNE_METHOD_COUNT ? method_names[m] : "?";
}

nmf_status nmf_prune_method_parse(const char *s, nmf_prune_method *out) {
    for (int m = 0; s && m < NMF_PRUNE_METHOD_COUNT; m++)
        if (!strcmp(s, method_names[m])) {
            *out = (nmf_prune_method)m;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_INVALID_ARG, "unknown pruning method '%s' (magnitude, wanda, sparsegpt)",
                     s ? s : "");
}

void nmf_prune_options_default(nmf_prune_options *o) {
    memset(o, 0, sizeof *o);
    o->method = NMF_PRUNE_MAGNITUDE;
    o->damp = 0.01;
    o->block_cols = 128;
}

/* ---- Wanda: one pass for the column norms of every linear's input, shared by the patterns ---- */
nmf_status nmf_prune_wanda_layer(void *ctx, const nmf_param *p, float *w, uint8_t *mask) {
    const nmf_wanda_ctx *x = ctx;
    const nmf_prune_linear *l = nmf_prune_plan_find(x->pl, p->name);
    if (!l) return nmf_error(NMF_ERR_NOT_FOUND, "no op of the forward reads it");
    return nmf_wanda_prune(w, mask, x->pl->taps[l->tap].sumsq, p->rows, p->cols, x->p);
}

static nmf_status wanda(nmf_prune_plan *pl, const nmf_model_config *c, const nmf_tensor_set *dense,
                        const nmf_pattern *patterns, size_t count, const nmf_prune_options *o,
                        const nmf_calib *cal, nmf_tensor_set *out, nmf_prune_stats *stats) {
    for (size_t i = 0; i < pl->ntaps; i++)
        if (!(pl->taps[i].sumsq = nmf_alloc(pl->taps[i].cols, sizeof(double))))
            return nmf_error(NMF_ERR_NOMEM, "Wanda norms");
    nmf_status st = nmf_calib_forward(c, dense, cal, o->batch, nmf_prune_plan_observe, pl);
    if (!st) st = pl->error;
    stats->forwards = 1;
    for (size_t k = 0; !st && k < count; k++) {
        nmf_wanda_ctx x = {pl, patterns[k]};
        if ((st = nmf_model_prune_by(c, dense, patterns[k], nmf_prune_wanda_layer, &x, &out[k])))
            st = nmf_error_context(st, "%d:%d", patterns[k].n, patterns[k].m);
    }
    return st;
}

/* ---- SparseGPT: block by block, each block calibrated on the model pruned so far ---- */
typedef struct {
    const nmf_prune_plan *pl;
    const nmf_tensor_set *work; /* the pruned model, dense */
    uint8_t *const *masks;      /* per plan linear */
} sparsegpt_ctx;

/* hands over the weight and mask that the sweep left in the work model */
static nmf_status sparsegpt_layer(void *ctx, const nmf_param *p, float *w, uint8_t *mask) {
    const sparsegpt_ctx *x = ctx;
    const nmf_prune_linear *l = nmf_prune_plan_find(x->pl, p->name);
    if (!l) return nmf_error(NMF_ERR_NOT_FOUND, "no op of the forward reads it");
    float *v;
    nmf_status st = nmf_linear_view(&x->pl->desc, l->param, nmf_tensors_find(x->work, p->name), &v);
    if (st) return st;
    memcpy(w, v, p->numel * sizeof(float));
    memcpy(mask, x->masks[l - x->pl->linears], p->numel);
    nmf_free(v);
    return NMF_OK;
}

/* Calibrates block l of work (a forward of the whole model: blocks < l already pruned) and
 * prunes its linears in place, their masks into masks[]. */
static nmf_status sparsegpt_block(nmf_prune_plan *pl, const nmf_model_config *c, nmf_tensor_set *work,
                                  int l, nmf_pattern p, const nmf_prune_options *o,
                                  const nmf_calib *cal, uint8_t **masks) {
    nmf_status st = NMF_OK;
    for (size_t i = 0; !st && i < pl->nlinears; i++) {
        nmf_prune_tap *t = &pl->taps[pl->linears[i].tap];
        if (pl->linears[i].block == l && !t->xtx && !(t->xtx = nmf_alloc(t->cols * t->cols, sizeof(double))))
            st = nmf_error(NMF_ERR_NOMEM, "X^T X of %zu columns", t->cols);
    }
    if (!st) st = nmf_calib_forward(c, work, cal, o->batch, nmf_prune_plan_observe, pl);
    if (!st) st = pl->error;
    for (size_t i = 0; !st && i < pl->nlinears; i++) {
        const nmf_prune_linear *lin = &pl->linears[i];
        if (lin->block != l) continue;
        const nmf_param *q = lin->param;
        nmf_tensor *t = nmf_tensors_find(work, q->name);
        float *w = NULL;
        st = t ? nmf_linear_view(&pl->desc, q, t, &w) : nmf_error(NMF_ERR_NOT_FOUND, "no tensor");
        if (!st && !(masks[i] = nmf_alloc(q->numel, 1))) st = nmf_error(NMF_ERR_NOMEM, "mask");
        if (!st)
            st = nmf_sparsegpt_tap_prune(&pl->taps[lin->tap], w, masks[i], q->rows, q->cols, p, o);
        if (!st) nmf_linear_view_store(&pl->desc, q, w, t); /* the next blocks see it pruned */
        nmf_free(w);
        if (st) st = nmf_error_context(st, "%s", q->name);
    }
    for (size_t i = 0; i < pl->ntaps; i++) nmf_prune_plan_drop_tap(&pl->taps[i]); /* one block each */
    return st;
}

static nmf_status sparsegpt(nmf_prune_plan *pl, const nmf_model_config *c, const nmf_tensor_set *dense,
                            const nmf_pattern *patterns, size_t count, const nmf_prune_options *o,
                            const nmf_calib *cal, nmf_tensor_set *out, nmf_prune_stats *stats) {
    uint8_t **masks = calloc(pl->nlinears ? pl->nlinears : 1, sizeof *masks);
    if (!masks) return nmf_error(NMF_ERR_NOMEM, "SparseGPT masks");
    nmf_status st = NMF_OK;
    for (size_t k = 0; !st && k < count; k++) {
        nmf_tensor_set work;
        st = nmf_tensors_copy_dense(dense, &work);
        for (int l = 0; !st && l < pl->layers; l++, stats->forwards++)
            st = sparsegpt_block(pl, c, &work, l, patterns[k], o, cal, masks);
        if (!st) {
            sparsegpt_ctx x = {pl, &work, masks};
            st = nmf_model_prune_by(c, dense, patterns[k], sparsegpt_layer, &x, &out[k]);
        }
        if (!st && pl->ntaps) stats->tokens = pl->taps[0].rows; /* tap 0 (block 0) saw one pass */
        for (size_t i = 0; i < pl->nlinears; i++) {
            nmf_free(masks[i]);
            masks[i] = NULL;
        }
        for (size_t i = 0; i < pl->ntaps; i++) pl->taps[i].rows = 0;
        nmf_tensors_free(&work);
        if (st) st = nmf_error_context(st, "%d:%d", patterns[k].n, patterns[k].m);
    }
    free(masks);
    return st;
}

nmf_status nmf_prune_oneshot(const nmf_model_config *c, const nmf_tensor_set *dense,
                             const nmf_pattern *patterns, size_t count, const nmf_prune_options *o,
                             const nmf_calib *cal, nmf_tensor_set *out, nmf_prune_stats *stats) {
    if (!c || !dense || (count && (!patterns || !out)))
        return nmf_error(NMF_ERR_INVALID_ARG, "nmf_prune_oneshot: NULL argument");
    nmf_prune_options def;
    if (!o) {
        nmf_prune_options_default(&def);
        o = &def;
    }
    if ((unsigned)o->method >= NMF_PRUNE_METHOD_COUNT)
        return nmf_error(NMF_ERR_INVALID_ARG, "pruning method %d", (int)o->method);
    for (size_t k = 0; k < count; k++) {
        if (!nmf_pattern_valid(patterns[k]))
            return nmf_error(NMF_ERR_INVALID_ARG, "pattern %d:%d", patterns[k].n, patterns[k].m);
        nmf_tensors_init(&out[k]);
    }
    nmf_prune_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    const double t0 = nmf_now();
    nmf_status st = NMF_OK;
    if (o->method == NMF_PRUNE_MAGNITUDE) {
        for (size_t k = 0; !st && k < count; k++)
            if ((st = nmf_model_prune(c, dense, patterns[k], &out[k])))
                st = nmf_error_context(st, "%d:%d", patterns[k].n, patterns[k].m);
    } else if (!cal || cal->count == 0) {
        st = nmf_error(NMF_ERR_INVALID_ARG, "%s needs calibration samples", nmf_prune_method_name(o->method));
    } else {
        nmf_prune_plan pl;
        st = nmf_prune_plan_build(&pl, c);
        if (!st) {
            st = (o->method == NMF_PRUNE_WANDA ? wanda : sparsegpt)(&pl, c, dense, patterns, count, o,
                                                                   cal, out, stats);
            if (o->method == NMF_PRUNE_WANDA && pl.ntaps) stats->tokens = pl.taps[0].rows;
            nmf_prune_plan_free(&pl);
        }
        stats->samples = cal->count;
    }
    stats->seconds = nmf_now() - t0;
    if (st)
        for (size_t k = 0; k < count; k++) nmf_tensors_free(&out[k]);
    return st;
}
