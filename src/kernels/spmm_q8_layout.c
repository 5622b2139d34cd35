/* The int8 window layout (spmm_q8.h), built once when a layer is set to int8, for the geometry
 * its plan chose: each row quantised with its own scale, its kept weights dealt into the
 * windows of their columns, K per step. One builder for every geometry and for both sources
 * (an N:M panel layout, a dense weight); the plan (nmf_q8_kernel_for) is here too. */
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_internal.h"
#include "kernels/spmm_q8.h"

/* Where a layer's weights come from: a row's j-th kept weight, j < kept, and its column. */
typedef struct {
    const nmf_spmm_weights *nm; /* N:M panel layout, or NULL */
    const float *dense;         /* when nm is NULL: [out][in], or [in][out] when transposed */
    int transposed;
    size_t out, in, kept;       /* kept: G n (N:M) or in (dense) */
} source;

/* Row o's kept weight j. N:M: panel slot (g, k) = (j / n, j % n), value val[at], column
 * g*M + idx[at] (a zero value, padding or a kept zero, adds nothing: *col = SIZE_MAX, skipped).
 * Dense: column j, zeros included (every column of a window in order: its position is its
 * place, K s + h, and is not stored). */
static float kept_weight(const source *src, size_t o, size_t j, size_t *col) {
    if (!src->nm) {
        *col = j;
        return src->transposed ? src->dense[j * src->out + o] : src->dense[o * src->in + j];
    }
    const nmf_spmm_weights *w = src->nm;
    const size_t n = (size_t)w->n, g = j / n, k = j % n;
    const size_t b = o / NMF_SPMM_ROWS, r = o % NMF_SPMM_ROWS;
    const size_t at = ((b * w->groups + g) * n + k) * NMF_SPMM_ROWS + r;
    const float v = w->val[at];
    *col = v == 0.0f ? SIZE_MAX : g * (size_t)w->m + w->idx[at];
    return v;
}

size_t nmf_q8_layout_bytes(const nmf_q8_weights *q) {
    const size_t slots = q->rowblocks * q->windows * q->steps * q->g.rows * q->g.slots;
    return slots * (q->pos ? 2 : 1) + q->rowblocks * q->g.rows * (sizeof(float) + sizeof(int32_t));
}

static nmf_status build(nmf_q8_weights *q, void **storage, const source *src, nmf_q8_geometry g) {
    const size_t out = src->out, in = src->in, R = g.rows, V = g.win, K = g.slots;
    *storage = NULL;
    if (src->kept > NMF_Q8_MAX_KEPT)
        return nmf_error(NMF_ERR_UNSUPPORTED,
                         "linear int8: %zu kept weights per row could overflow the int32 sums "
                         "(at most %zu)", src->kept, NMF_Q8_MAX_KEPT);
    const size_t RB = (out + R - 1) / R, W = (in + V - 1) / V;
    const int has_pos = src->nm != NULL; /* dense: every column in order, positions implied */
    /* S: the most kept weights of one row in one window, K per step */
    size_t *count = calloc(W, sizeof *count);
    if (!count) return nmf_error(NMF_ERR_NOMEM, "linear int8: out of memory");
    size_t most = 0;
    for (size_t o = 0; o < out; o++) {
        memset(count, 0, W * sizeof *count);
        for (size_t j = 0; j < src->kept; j++) {
            size_t col;
            kept_weight(src, o, j, &col);
            if (col == SIZE_MAX) continue;
            const size_t c = ++count[col / V];
            most = c > most ? c : most;
        }
    }
    const size_t S = most ? (most + K - 1) / K : 1;
    size_t slots, bytes;
    if (nmf_mul_overflow(RB * W, S * R * K, &slots) ||
        nmf_mul_overflow(slots, has_pos ? 2 : 1, &bytes) ||
        nmf_add_overflow(bytes, RB * R * 8, &bytes)) {
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
    int32_t *off = (int32_t *)(mem + RB * R * sizeof(float));
    int8_t *qv = (int8_t *)(mem + RB * R * 8);
    uint8_t *pos = has_pos ? (uint8_t *)qv + slots : NULL;
    nmf_status st = NMF_OK;
    for (size_t o = 0; o < out && st == NMF_OK; o++) {
        float amax = 0.0f;
        for (size_t j = 0; j < src->kept; j++) {
            size_t col;
            const float a = fabsf(kept_weight(src, o, j, &col));
            if (!isfinite(a)) st = nmf_error(NMF_ERR_NUMERIC, "linear int8: row %zu: non-finite weight", o);
            amax = a > amax ? a : amax;
        }
        float inv;
        scale[o] = nmf_q8_scale(amax, &inv);
        memset(count, 0, W * sizeof *count);
        const size_t rb = o / R, r = o % R;
        int32_t sum = 0; /* |sum| <= 127 * NMF_Q8_MAX_KEPT */
        for (size_t j = 0; j < src->kept && st == NMF_OK; j++) {
            size_t col;
            const float v = kept_weight(src, o, j, &col);
            if (col == SIZE_MAX) continue;
            const size_t win = col / V, c = count[win]++;
            const size_t dst = ((rb * W + win) * S + c / K) * R * K + K * r + c % K;
            qv[dst] = (int8_t)nmf_q8_round(v * inv);
            if (pos) pos[dst] = (uint8_t)(col % V);
            sum += qv[dst];
        }
        off[o] = 128 * sum;
    }
    free(count);
    if (st != NMF_OK) {
        nmf_free(mem);
        return st;
    }
    *q = (nmf_q8_weights){.out = out, .in = in, .g = g, .rowblocks = RB, .windows = W,
                          .steps = S, .q = qv, .pos = pos, .scale = scale, .off = off};
    *storage = mem;
    return NMF_OK;
}

nmf_status nmf_q8_build_nm(nmf_q8_weights *q, void **storage, const nmf_spmm_weights *w,
                           nmf_q8_geometry g) {
    const source src = {.nm = w, .out = w->out, .in = w->in, .kept = w->groups * (size_t)w->n};
    return build(q, storage, &src, g);
}

nmf_status nmf_q8_build_dense(nmf_q8_weights *q, void **storage, const float *w, int transposed,
                              size_t out, size_t in, nmf_q8_geometry g) {
    const source src = {.dense = w, .transposed = transposed, .out = out, .in = in, .kept = in};
    return build(q, storage, &src, g);
}

/* The plan: AVX-512 kernels need VNNI (vpdpbusd) and VBMI (vpermb) beside AVX-512 F/BW/VL; the
 * AVX2 ones run elsewhere (AVX-512 without them too), dense layers on the dense AVX2 kernel
 * (the same layout, int16 activations). */
static const nmf_q8_kernel kernels[] = {
    {"scalar-int8", NMF_Q8_GEOM_AVX2, 1, nmf_q8_quantize_tokens, nmf_q8_forward_scalar},
    {"avx2-int8", NMF_Q8_GEOM_AVX2, 1, nmf_q8_quantize_tokens_avx2, nmf_q8_forward_avx2},
    {"avx2-dense-int8", NMF_Q8_GEOM_AVX2, 2, nmf_q8_quantize_tokens16_avx2,
     nmf_q8_forward_dense_avx2},
    {"avx512-int8", NMF_Q8_GEOM_AVX512, 1, nmf_q8_quantize_tokens_avx512, nmf_q8_forward_avx512},
    {"avx512-dense-int8", NMF_Q8_GEOM_DENSE512, 1, nmf_q8_quantize_tokens_avx512,
     nmf_q8_forward_dense_avx512},
};

nmf_q8_kind nmf_q8_kind_for(nmf_isa isa) {
    if (isa > nmf_cpu_best_isa()) isa = nmf_cpu_best_isa(); /* never run what the CPU lacks */
    if (isa == NMF_ISA_AVX512 && nmf_cpu_has_vnni512()) return NMF_Q8_VNNI512;
    return isa >= NMF_ISA_AVX2 ? NMF_Q8_AVX2 : NMF_Q8_SCALAR;
}

const nmf_q8_kernel *nmf_q8_kernel_for(nmf_isa isa, int dense) {
    switch (nmf_q8_kind_for(isa)) {
    case NMF_Q8_VNNI512: return &kernels[dense ? 4 : 3];
    case NMF_Q8_AVX2: return &kernels[dense ? 2 : 1];
    default: return &kernels[0];
    }
}
