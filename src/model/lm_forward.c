/* Token-model forward: input checks, the activation arena, stem -> blocks -> tail, with or
 * without a key/value cache. */
#include <stdio.h>
#include <string.h>

#include "model/lm_block.h"
#include "model/staged.h"
#include "nmformer/ops.h"

static size_t up16(size_t n) { return (n + 15) / 16 * 16; }

nmf_status nmf_lm_arena_ensure(nmf_lm *m, size_t B, size_t T, size_t tk) {
    nmf_lm_arena *a = &m->arena;
    const int threads = nmf_get_threads();
    size_t BT;
    if (nmf_mul_overflow(B, T, &BT)) return nmf_error(NMF_ERR_NOMEM, "%zu x %zu tokens overflow", B, T);
    if (a->storage && BT <= a->rows && B <= a->batch && tk <= a->tk && T <= a->tk &&
        threads <= a->threads)
        return NMF_OK;
    /* grow to cover the old capacity too, so that alternating shapes do not reallocate */
    if (a->storage) {
        BT = BT > a->rows ? BT : a->rows;
        B = B > a->batch ? B : a->batch;
        tk = tk > a->tk ? tk : a->tk;
    }
    if (tk < T) tk = T;
    const size_t qw = m->k.qkv_w >= 0 ? 3 * m->D : m->Q;
    /* attention scratch of either precision (int8: at most tk queries) */
    const size_t f32_work = nmf_attention_work_floats(tk, m->hd);
    const size_t q8_work = m->hd <= NMF_ATTENTION_Q8_MAX_D ? nmf_attention_q8_work_floats(tk, tk, m->hd) : 0;
    const size_t work_per = up16(f32_work > q8_work ? f32_work : q8_work);
    size_t sizes[14];
    int bad = nmf_mul_overflow(BT, m->D, &sizes[0]) | nmf_mul_overflow(BT, qw, &sizes[2]) |
              nmf_mul_overflow(BT, m->KVW, &sizes[3]) | nmf_mul_overflow(BT, m->Q, &sizes[5]) |
              nmf_mul_overflow(BT, m->I, &sizes[6]) | nmf_mul_overflow(sizes[3], 2, &sizes[9]) |
              nmf_mul_overflow(tk, m->hd, &sizes[10]) | nmf_mul_overflow(B, m->D, &sizes[11]) |
              nmf_mul_overflow((size_t)threads, work_per, &sizes[13]);
    sizes[1] = sizes[0], sizes[4] = sizes[3], sizes[8] = sizes[0], sizes[12] = sizes[11];
    sizes[7] = m->k.gated ? sizes[6] : 0;
    size_t total = 0;
    for (size_t i = 0; !bad && i < 14; i++) bad |= nmf_add_overflow(total, up16(sizes[i]), &total);
    if (bad) return nmf_error(NMF_ERR_NOMEM, "activations for %zu tokens overflow", BT);
    float *storage = nmf_alloc(total, sizeof(float));
    if (!storage)
        return nmf_error(NMF_ERR_NOMEM, "activation arena of %zu MB for %zu tokens",
                         total * sizeof(float) >> 20, BT);
    nmf_free(a->storage);
    a->storage = storage;
    a->floats = total;
    a->rows = BT, a->batch = B, a->tk = tk, a->threads = threads, a->work_per = work_per;
    float **dst[14] = {&a->x, &a->ln, &a->q, &a->k, &a->v, &a->att, &a->hid,
                       &a->up, &a->tmp, &a->kv, &a->rope, &a->sel, &a->sel2, &a->work};
    float *p = storage;
    for (size_t i = 0; i < 14; i++) {
        *dst[i] = p;
        p += up16(sizes[i]);
    }
    return NMF_OK;
}

/* ids in [0, vocab), token types in [0, type_vocab), mask 0 / 1 */
static nmf_status check_inputs(const nmf_lm *m, const int64_t *ids, size_t B, size_t T,
                               const nmf_lm_inputs *in) {
    const nmf_hf_config *h = &m->config.hf;
    for (size_t r = 0; r < B * T; r++)
        if (ids[r] < 0 || (uint64_t)ids[r] >= m->V)
            return nmf_error(NMF_ERR_INVALID_ARG, "token id %lld (sequence %zu, position %zu) is "
                             "outside the vocabulary [0, %zu)", (long long)ids[r], r / T, r % T, m->V);
    if (!in) return NMF_OK;
    if ((in->token_type_ids || in->attention_mask) && !m->k.encoder)
        return nmf_error(NMF_ERR_INVALID_ARG, "token_type_ids / attention_mask: only BERT takes them "
                         "(this is a %s model)", m->config.arch);
    for (size_t r = 0; in->token_type_ids && r < B * T; r++)
        if (in->token_type_ids[r] < 0 || in->token_type_ids[r] >= h->type_vocab_size)
            return nmf_error(NMF_ERR_INVALID_ARG, "token type %lld (sequence %zu, position %zu) is "
                             "outside [0, %d)", (long long)in->token_type_ids[r], r / T, r % T,
                             h->type_vocab_size);
    for (size_t r = 0; in->attention_mask && r < B * T; r++)
        if (in->attention_mask[r] != 0 && in->attention_mask[r] != 1)
            return nmf_error(NMF_ERR_INVALID_ARG, "attention_mask %lld (sequence %zu, position %zu) "
                             "is not 0 or 1", (long long)in->attention_mask[r], r / T, r % T);
    return NMF_OK;
}

/* Without a cache, one layer's keys and values live in the arena (layer_stride 0). */
static nmf_lm_kv own_kv(const nmf_lm *m, size_t T, const int64_t *mask) {
    return (nmf_lm_kv){m->arena.kv, 0, T, 0, mask};
}

nmf_status nmf_lm_run(nmf_lm *m, float *out, const int64_t *ids, size_t B, size_t T,
                      const nmf_lm_inputs *in, const nmf_lm_kv *kv, int last_only,
                      const nmf_lm_observer *o) {
    const size_t past = kv ? kv->past : 0;
    size_t BT;
    if (nmf_mul_overflow(B, T, &BT) || BT > ((size_t)1 << 40))
        return nmf_error(NMF_ERR_INVALID_ARG, "token model: %zu x %zu tokens too many", B, T);
    if (past + T > m->P)
        return nmf_error(NMF_ERR_INVALID_ARG, "token model: %zu positions%s exceed "
                         "max_position_embeddings (%zu)", past + T, past ? " (cached + new)" : "", m->P);
    nmf_status st = check_inputs(m, ids, B, T, in);
    if (st) return st;
    if ((st = nmf_lm_arena_ensure(m, B, T, kv ? kv->cap : T))) return st;
    const nmf_lm_kv own = own_kv(m, T, in ? in->attention_mask : NULL);
    if (!kv) kv = &own;
    nmf_lm_embed(m, ids, in ? in->token_type_ids : NULL, B, T, past, o);
    nmf_lm_rope_prepare(m, past, T);
    for (size_t l = 0; l < m->L; l++)
        if ((st = nmf_lm_block_forward(m, (int)l, B, T, kv, o))) return st;
    return nmf_lm_tail(m, out, B, T, last_only, in ? in->pooler_output : NULL, o);
}

nmf_status nmf_lm_forward(nmf_lm *m, float *out, const int64_t *ids, size_t B, size_t T,
                          const nmf_lm_inputs *in) {
    return nmf_lm_forward_observed(m, out, ids, B, T, in, NULL, NULL);
}

nmf_status nmf_lm_forward_observed(nmf_lm *m, float *out, const int64_t *ids, size_t B, size_t T,
                                   const nmf_lm_inputs *in, nmf_observer obs, void *ctx) {
    if (!m || !out || !ids || B == 0 || T == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "token model forward: NULL argument or empty input "
                         "(B %zu, T %zu)", B, T);
    const nmf_lm_observer o = {obs, ctx};
    return nmf_lm_run(m, out, ids, B, T, in, NULL, 0, &o);
}

/* ---- the same pieces one stage at a time (model/staged.h): no cache, no mask, types 0 ---- */

nmf_status nmf_lm_stage_embed(nmf_lm *m, const int64_t *ids, size_t B, size_t T, float *x,
                              nmf_observer obs, void *ctx) {
    const nmf_lm_observer o = {obs, ctx};
    if (T > m->P)
        return nmf_error(NMF_ERR_INVALID_ARG, "token model: %zu positions exceed "
                         "max_position_embeddings (%zu)", T, m->P);
    nmf_status st = check_inputs(m, ids, B, T, NULL);
    if (!st) st = nmf_lm_arena_ensure(m, B, T, T);
    if (st) return st;
    nmf_lm_embed(m, ids, NULL, B, T, 0, &o);
    memcpy(x, m->arena.x, B * T * m->D * sizeof(float));
    return NMF_OK;
}

nmf_status nmf_lm_stage_block(nmf_lm *m, int l, size_t B, size_t T, const float *x, float *y,
                              nmf_observer obs, void *ctx) {
    const nmf_lm_observer o = {obs, ctx};
    nmf_status st = nmf_lm_arena_ensure(m, B, T, T);
    if (st) return st;
    memcpy(m->arena.x, x, B * T * m->D * sizeof(float));
    nmf_lm_rope_prepare(m, 0, T);
    const nmf_lm_kv kv = own_kv(m, T, NULL);
    if ((st = nmf_lm_block_forward(m, l, B, T, &kv, &o))) return st;
    memcpy(y, m->arena.x, B * T * m->D * sizeof(float));
    return NMF_OK;
}
