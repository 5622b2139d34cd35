/* The int8 window layout (spmm_q8.h), built once from the f32 panel layout (spmm.h) when a
 * layer is set to int8: each row quantised with its own scale, its kept weights dealt into the
 * 16-column windows of their columns, two per step. */
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_internal.h"
#include "kernels/spmm_q8.h"

/* Row o's kept weights in the panel layout: slot (g, k) is value val[at(g, k)], column
 * g*M + idx[at(g, k)]; a zero value (padding, or a kept zero) adds nothing and is skipped. */
static size_t panel_at(const nmf_spmm_weights *w, size_t o, size_t g, size_t k) {
    const size_t b = o / NMF_SPMM_ROWS, r = o % NMF_SPMM_ROWS;
    return ((b * w->groups + g) * (size_t)w->n + k) * NMF_SPMM_ROWS + r;
}

size_t nmf_q8_layout_bytes(const nmf_q8_weights *q) {
    return q->rowblocks * q->windows * q->steps * 16 * 2 +
           q->rowblocks * NMF_Q8_ROWS * (sizeof(float) + sizeof(int32_t));
}

nmf_status nmf_q8_build(nmf_q8_weights *q, void **storage, const nmf_spmm_weights *w) {
    const size_t out = w->out, in = w->in, G = w->groups, n = (size_t)w->n, m = (size_t)w->m;
    *storage = NULL;
    if (G * n > NMF_Q8_MAX_KEPT)
        return nmf_error(NMF_ERR_UNSUPPORTED,
                         "linear int8: %zu kept weights per row could overflow the int32 sums "
                         "(at most %zu)", G * n, NMF_Q8_MAX_KEPT);
    const size_t RB = (out + NMF_Q8_ROWS - 1) / NMF_Q8_ROWS, W = (in + NMF_Q8_WIN - 1) / NMF_Q8_WIN;
    /* S: the most kept weights of one row in one window, in pairs */
    size_t *count = calloc(W, sizeof *count);
    if (!count) return nmf_error(NMF_ERR_NOMEM, "linear int8: out of memory");
    size_t most = 0;
    for (size_t o = 0; o < out; o++) {
        memset(count, 0, W * sizeof *count);
        for (size_t g = 0; g < G; g++)
            for (size_t k = 0; k < n; k++) {
                const size_t at = panel_at(w, o, g, k);
                if (w->val[at] == 0.0f) continue;
                const size_t c = ++count[(g * m + w->idx[at]) / NMF_Q8_WIN];
                most = c > most ? c : most;
            }
    }
    const size_t S = most ? (most + 1) / 2 : 1;
    size_t slots, bytes;
    if (nmf_mul_overflow(RB * W, S * 16, &slots) || nmf_mul_overflow(slots, 2, &bytes) ||
        nmf_add_overflow(bytes, RB * NMF_Q8_ROWS * 8, &bytes)) {
        free(count);
        return nmf_error(NMF_ERR_NOMEM, "linear int8: %zu x %zu too large", out, in);
    }
    /* scales and offsets first (aligned), then weights, then positions; padding stays 0 */
    uint8_t *mem = nmf_alloc(bytes, 1);
    if (!mem) {
        free(count);
        return nmf_error(NMF_ERR_NOMEM, "linear int8: %zu x %zu: out of memory", out, in);
    }
    float *scale = (float *)mem;
    int32_t *off = (int32_t *)(mem + RB * NMF_Q8_ROWS * sizeof(float));
    int8_t *qv = (int8_t *)(mem + RB * NMF_Q8_ROWS * 8);
    uint8_t *pos = (uint8_t *)qv + slots;
    nmf_status st = NMF_OK;
    for (size_t o = 0; o < out && st == NMF_OK; o++) {
        float amax = 0.0f;
        for (size_t g = 0; g < G; g++)
            for (size_t k = 0; k < n; k++) {
                const float a = fabsf(w->val[panel_at(w, o, g, k)]);
                if (!isfinite(a)) st = nmf_error(NMF_ERR_NUMERIC, "linear int8: row %zu: non-finite weight", o);
                amax = a > amax ? a : amax;
            }
        float inv;
        scale[o] = nmf_q8_scale(amax, &inv);
        memset(count, 0, W * sizeof *count);
        const size_t rb = o / NMF_Q8_ROWS, r = o % NMF_Q8_ROWS;
        int32_t sum = 0; /* |sum| <= 127 * NMF_Q8_MAX_KEPT */
        for (size_t g = 0; g < G && st == NMF_OK; g++)
            for (size_t k = 0; k < n; k++) {
                const size_t at = panel_at(w, o, g, k);
                if (w->val[at] == 0.0f) continue;
                const size_t col = g * m + w->idx[at], v = col / NMF_Q8_WIN, c = count[v]++;
                const size_t dst = ((rb * W + v) * S + c / 2) * 16 + 2 * r + c % 2;
                qv[dst] = (int8_t)nmf_q8_round(w->val[at] * inv);
                pos[dst] = (uint8_t)(col % NMF_Q8_WIN);
                sum += qv[dst];
            }
        off[o] = 128 * sum;
    }
    free(count);
    if (st != NMF_OK) {
        nmf_free(mem);
        return st;
    }
    *q = (nmf_q8_weights){.out = out, .in = in, .rowblocks = RB, .windows = W, .steps = S,
                          .q = qv, .pos = pos, .scale = scale, .off = off};
    *storage = mem;
    return NMF_OK;
}
