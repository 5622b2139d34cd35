/* Wanda and SparseGPT on a streamed family (nmf_family_prune_file_oneshot): block by block, as
 * the methods' reference code runs them. The calibration set's activations at the current
 * block's input are kept, (samples * rows, D) in f32; one block's weights are read from the
 * source at a time, run on them (model/staged.h: the whole forward's own stem and block pieces)
 * with the observer of plan.c gathering each linear's statistics, pruned for every pattern,
 * written, and dropped. Peak memory: the stem's and the blocks' dense parameters (embeddings,
 * norms, biases; no head), one block's weights with their pruned forms, the activations (one
 * chain for Wanda, one per pattern for SparseGPT), and SparseGPT's X^T X of one block.
 *
 * The same results as nmf_prune_oneshot, bit for bit:
 * - Wanda: the whole path runs one forward of the dense model, batch after batch, every tap
 *   gathering; here the stem, then each block, run over the same batches in the same order on
 *   the dense chain, so each tap sees the same rows in the same order.
 * - SparseGPT: the whole path calibrates block l with a forward of the model whose blocks < l are
 *   pruned (and l dense), for each pattern. Here pattern k's chain holds the input of block l
 *   through the pruned blocks < l; block l runs dense on it (its taps gathering), is pruned, and
 *   the chain advances through the pruned block, built from the same dense values the whole
 *   path's work model holds. A tap fed by the block's input (BERT's q/k/v read the previous
 *   block's output) is given the chain itself, the event the previous block emitted there. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/staged.h"
#include "prune/prune_internal.h"

/* The stream's index of the tensor named name (it holds every tensor of the config). */
static size_t stream_index(const nmf_model_stream *src, const char *name) {
    const nmf_tensor_set *h = nmf_model_stream_headers(src);
    const nmf_tensor *t = nmf_tensors_find(h, name);
    return t ? (size_t)(t - h->items) : h->count;
}

/* Every tensor pruning does not touch to each candidate as it is (the dense copy too), and into
 * the staged model when the stem or the blocks read it. */
static nmf_status write_untouched(const nmf_prune_sink *s, size_t count, nmf_staged *m) {
    const nmf_tensor_set *h = nmf_model_stream_headers(s->src);
    nmf_status st = NMF_OK;
    for (size_t i = 0; !st && i < h->count; i++) {
        if (nmf_model_nm_param(s->d, h->items[i].name)) continue;
        nmf_tensor_set one;
        nmf_tensors_init(&one);
        st = nmf_model_stream_read(s->src, i, &one);
        const nmf_tensor *t = st ? NULL : &one.items[0];
        if (!st) st = nmf_staged_set_param(m, t);
        if (!st && s->with_dense) st = nmf_family_writer_add_planned(s->w, s->plan, s->dense, t);
        for (size_t k = 0; !st && k < count; k++)
            st = nmf_family_writer_add_planned(s->w, s->plan, s->first + k, t);
        if (!st) nmf_progress_advance(s->step, t->name, nmf_model_stream_bytes(s->src, i));
        nmf_tensors_free(&one);
    }
    return st;
}

/* blk (initialised here) = block l's N:M-eligible weights read from the source, in table order,
 * each written to the dense candidate as it comes (when the family has one). */
static nmf_status read_block(const nmf_prune_sink *s, int l, nmf_tensor_set *blk) {
    nmf_tensors_init(blk);
    nmf_status st = NMF_OK;
    for (size_t i = 0; !st && i < s->d->count; i++) {
        const nmf_param *p = &s->d->params[i];
        if (p->block != l || !nmf_param_kind_of(s->d, p)->nm) continue;
        const size_t j = stream_index(s->src, p->name);
        st = nmf_model_stream_read(s->src, j, blk);
    }
    /* the dense candidate's copies, as they are read */
    for (size_t i = 0; !st && s->with_dense && i < blk->count; i++)
        st = nmf_family_writer_add_planned(s->w, s->plan, s->dense, &blk->items[i]);
    if (st) nmf_tensors_free(blk);
    return st;
}

/* Progress: block blk done (its tensors' stored bytes; the last one names it). */
static void block_done(const nmf_prune_sink *s, const nmf_tensor_set *blk) {
    for (size_t i = 0; i < blk->count; i++)
        nmf_progress_advance(s->step, blk->items[i].name,
                             nmf_model_stream_bytes(s->src, stream_index(s->src, blk->items[i].name)));
}

/* Candidate k's forms of block l: blk pruned by fn (ctx) to pattern p, each tensor written. */
static nmf_status write_pruned(const nmf_prune_sink *s, size_t k, const nmf_tensor_set *blk, nmf_pattern p,
                               nmf_prune_layer_fn fn, void *ctx) {
    nmf_tensor_set pruned;
    nmf_status st = nmf_model_prune_by(s->cfg, blk, p, fn, ctx, &pruned);
    for (size_t i = 0; !st && i < pruned.count; i++)
        st = nmf_family_writer_add(s->w, s->first + k, &pruned.items[i]);
    if (st) st = nmf_error_context(st, "%s", s->plan->models[s->first + k].name);
    nmf_tensors_free(&pruned);
    return st;
}

/* The activations at hand after block l: NMF_ERR_NUMERIC when a value overflowed float32. */
static nmf_status check_finite(const float *x, size_t n, size_t per_sample, int l) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return nmf_error(NMF_ERR_NUMERIC, "block %d: non-finite activation in calibration sample "
                             "%zu (activations overflowed float32)", l, i / per_sample);
    return NMF_OK;
}

typedef struct {
    nmf_staged *m;
    const nmf_calib *cal;
    size_t B, rows, D; /* samples per pass, rows per sample, width */
} chain_run;

/* Block l (its linears set) over every sample of chain x, batch after batch as the whole forward
 * runs them: in place when y is x, else the outputs go to y (B samples' room) and are dropped.
 * Before each batch, the taps in pl that read the block's input (producer outside block l) see
 * it (SparseGPT's BERT q/k/v; pl NULL: none). */
static nmf_status run_block(const chain_run *r, int l, float *x, float *y, nmf_prune_plan *pl,
                            nmf_observer obs) {
    const size_t per = r->rows * r->D;
    nmf_status st = NMF_OK;
    for (size_t i = 0; !st && i < r->cal->count; i += r->B) {
        const size_t b = r->cal->count - i < r->B ? r->cal->count - i : r->B;
        float *xi = x + i * per;
        for (size_t t = 0; pl && t < pl->ntaps; t++) {
            const nmf_prune_tap *tap = &pl->taps[t];
            if (tap->block == l || !tap->xtx) continue;
            nmf_op_event e = {tap->op, tap->block, "", xi, b * r->rows, r->D};
            snprintf(e.name, sizeof e.name, "block %d input", l);
            nmf_prune_plan_observe(&e, pl);
        }
        st = nmf_staged_block(r->m, l, b, r->rows, xi, y == x ? xi : y, obs, obs ? (void *)pl : NULL);
    }
    if (!st && pl) st = pl->error;
    if (!st && y == x) st = check_finite(x, r->cal->count * per, per, l);
    return st;
}

/* ---- Wanda: the dense chain, every tap gathering, each block pruned once it has run ---- */
static nmf_status wanda(const nmf_prune_sink *s, const chain_run *r, nmf_prune_plan *pl, float *x,
                        const nmf_pattern *patterns, size_t count) {
    nmf_status st = NMF_OK;
    for (int l = 0; !st && l < pl->layers; l++) {
        nmf_tensor_set blk;
        if ((st = read_block(s, l, &blk))) break;
        st = nmf_staged_set_block(r->m, l, &blk);
        if (!st) st = run_block(r, l, x, x, pl, nmf_prune_plan_observe);
        nmf_staged_drop_block(r->m, l);
        for (size_t k = 0; !st && k < count; k++) {
            nmf_wanda_ctx ctx = {pl, patterns[k]};
            st = write_pruned(s, k, &blk, patterns[k], nmf_prune_wanda_layer, &ctx);
        }
        if (!st) block_done(s, &blk);
        nmf_tensors_free(&blk);
    }
    return st;
}

/* ---- SparseGPT: per pattern, its own chain through its pruned blocks ---- */
typedef struct {
    nmf_prune_plan *pl; /* its taps factored in place as their linears are pruned */
    const nmf_prune_options *o;
    nmf_pattern p;
    const nmf_model_desc *d;
    nmf_tensor_set *work; /* the block's weights as the pruned block runs them (dense) */
} sparsegpt_ctx;

/* SparseGPT on one weight from its tap's X^T X; the result also stored into work. */
static nmf_status sparsegpt_layer(void *vctx, const nmf_param *p, float *w, uint8_t *mask) {
    const sparsegpt_ctx *x = vctx;
    const nmf_prune_linear *l = nmf_prune_plan_find(x->pl, p->name);
    if (!l) return nmf_error(NMF_ERR_NOT_FOUND, "no op of the forward reads it");
    nmf_status st = nmf_sparsegpt_tap_prune(&x->pl->taps[l->tap], w, mask, p->rows, p->cols, x->p, x->o);
    if (!st) nmf_linear_view_store(x->d, p, w, nmf_tensors_find(x->work, p->name));
    return st;
}

/* Block l for pattern k on chain x: calibrated dense, pruned, written, and x advanced. */
static nmf_status sparsegpt_block(const nmf_prune_sink *s, const chain_run *r, nmf_prune_plan *pl,
                                  const nmf_tensor_set *blk, int l, size_t k, nmf_pattern p,
                                  const nmf_prune_options *o, float *x, float *scratch) {
    nmf_status st = NMF_OK;
    for (size_t i = 0; !st && i < pl->nlinears; i++) {
        nmf_prune_tap *t = &pl->taps[pl->linears[i].tap];
        if (pl->linears[i].block == l && !t->xtx && !(t->xtx = nmf_alloc(t->cols * t->cols, sizeof(double))))
            st = nmf_error(NMF_ERR_NOMEM, "X^T X of %zu columns", t->cols);
    }
    nmf_tensor_set work; /* the whole path's work model: the weights dense, then pruned */
    nmf_tensors_init(&work);
    if (!st) st = nmf_tensors_copy_dense(blk, &work);
    if (!st) st = nmf_staged_set_block(r->m, l, &work);
    if (!st) st = run_block(r, l, x, scratch, pl, nmf_prune_plan_observe);
    nmf_staged_drop_block(r->m, l); /* its layers are rebuilt from the pruned weights */
    sparsegpt_ctx ctx = {pl, o, p, s->d, &work};
    if (!st) st = write_pruned(s, k, blk, p, sparsegpt_layer, &ctx);
    for (size_t i = 0; i < pl->ntaps; i++) nmf_prune_plan_drop_tap(&pl->taps[i]); /* one block each */
    if (!st) st = nmf_staged_set_block(r->m, l, &work);
    if (!st) st = run_block(r, l, x, x, NULL, NULL);
    nmf_staged_drop_block(r->m, l);
    nmf_tensors_free(&work);
    return st;
}

static nmf_status sparsegpt(const nmf_prune_sink *s, const chain_run *r, nmf_prune_plan *pl,
                            float *const *chains, const nmf_pattern *patterns, size_t count,
                            const nmf_prune_options *o, size_t *tokens) {
    float *scratch = nmf_alloc(r->B * r->rows * r->D, sizeof(float));
    if (!scratch) return nmf_error(NMF_ERR_NOMEM, "activations of %zu samples", r->B);
    nmf_status st = NMF_OK;
    for (int l = 0; !st && l < pl->layers; l++) {
        nmf_tensor_set blk;
        if ((st = read_block(s, l, &blk))) break;
        for (size_t k = 0; !st && k < count; k++) {
            st = sparsegpt_block(s, r, pl, &blk, l, k, patterns[k], o, chains[k], scratch);
            if (!st && pl->ntaps && l == 0) *tokens = pl->taps[0].rows; /* tap 0 (block 0): one pass */
            for (size_t i = 0; i < pl->ntaps; i++) pl->taps[i].rows = 0;
        }
        if (!st) block_done(s, &blk);
        nmf_tensors_free(&blk);
    }
    nmf_free(scratch);
    return st;
}

nmf_status nmf_prune_streamed(const nmf_prune_sink *s, const nmf_pattern *patterns, size_t count,
                              const nmf_prune_options *o, const nmf_calib *cal, nmf_prune_stats *stats) {
    const int token = nmf_model_is_token(s->cfg);
    if (!cal || cal->count == 0 || (token ? !cal->ids : !cal->images))
        return nmf_error(NMF_ERR_INVALID_ARG, "%s needs calibration samples (%s)",
                         nmf_prune_method_name(o->method), token ? "token ids" : "images");
    const double t0 = nmf_now();
    nmf_prune_plan pl;
    nmf_status st = nmf_prune_plan_build(&pl, s->cfg);
    if (st) return st;
    nmf_staged *m = NULL;
    st = nmf_staged_create(&m, s->cfg);
    if (!st) st = write_untouched(s, count, m);
    const size_t nchains = o->method == NMF_PRUNE_SPARSEGPT ? count : 1;
    float *chains[NMF_FAMILY_MAX_MODELS] = {0};
    chain_run r = {m, cal, nmf_calib_batch(s->cfg, cal, o->batch), 0, 0};
    size_t n = 0; /* floats of one chain: (samples * rows, D) */
    if (!st) {
        r.rows = nmf_staged_rows(m, cal), r.D = nmf_staged_width(m);
        if (nmf_mul_overflow(cal->count, r.rows * r.D, &n) || nchains > NMF_FAMILY_MAX_MODELS)
            st = nmf_error(NMF_ERR_NOMEM, "activations of %zu samples overflow", cal->count);
    }
    for (size_t k = 0; !st && k < nchains; k++)
        if (!(chains[k] = nmf_alloc(n, sizeof(float))))
            st = nmf_error(NMF_ERR_NOMEM, "calibration activations of %zu samples x %zu x %zu (%zu MB)",
                           cal->count, r.rows, r.D, n * sizeof(float) >> 20);
    /* Wanda gathers every tap in one pass, the stem's included */
    for (size_t i = 0; !st && o->method == NMF_PRUNE_WANDA && i < pl.ntaps; i++)
        if (!(pl.taps[i].sumsq = nmf_alloc(pl.taps[i].cols, sizeof(double))))
            st = nmf_error(NMF_ERR_NOMEM, "Wanda norms");
    const size_t per = r.rows * r.D;
    for (size_t i = 0; !st && i < cal->count; i += r.B) {
        const size_t b = cal->count - i < r.B ? cal->count - i : r.B;
        st = nmf_staged_embed(m, cal, i, b, chains[0] + i * per,
                              o->method == NMF_PRUNE_WANDA ? nmf_prune_plan_observe : NULL, &pl);
    }
    if (!st) st = pl.error;
    for (size_t k = 1; !st && k < nchains; k++) memcpy(chains[k], chains[0], n * sizeof(float));
    memset(stats, 0, sizeof *stats);
    if (!st && o->method == NMF_PRUNE_WANDA) {
        st = wanda(s, &r, &pl, chains[0], patterns, count);
        stats->forwards = 1;
        if (pl.ntaps) stats->tokens = pl.taps[0].rows;
    } else if (!st) {
        st = sparsegpt(s, &r, &pl, chains, patterns, count, o, &stats->tokens);
        stats->forwards = 2 * count; /* each block twice per pattern: calibrated, then advanced */
    }
    for (size_t k = 0; k < nchains; k++) nmf_free(chains[k]);
    nmf_staged_free(m);
    nmf_prune_plan_free(&pl);
    stats->samples = cal->count;
    stats->seconds = nmf_now() - t0;
    return st;
}
