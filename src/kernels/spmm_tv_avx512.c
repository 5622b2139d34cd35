/* N:M x dense forward, AVX-512, vectorised over TOKENS (XNNPACK f32-spmm style): the design of
 * spmm_tv_avx2.c (read its header) in zmm registers. Layout: spmm.h ("token-vectorised
 * layout", interleaved: tv_pairs), with the layer's tv_rows (R) and tv_tokens (TOK = 16 V).
 *
 * Why not the panel kernel (spmm_avx512.c): it issues a vpermps per FMA, and on Intel cores the
 * permute port is one of the two FMA ports: vpermps + FMA pairs cap at ~0.47 of the FMA peak.
 * Here, per row and kept index, one broadcast of the value, one load of its offset and V FMAs
 * with x as a memory operand: no permute, load-bound at about V / (V + 2) of the FMA peak
 * (two loads per cycle, two FMAs), so V is large (8 token vectors: 128-token tiles) and R
 * small; 32 zmm registers hold R x V <= 28 accumulators. */
#include <immintrin.h>
#include <stdint.h>

#include "kernels/gelu_avx512.h"
#include "kernels/ops_internal.h"
#include "kernels/spmm.h"

#define AI __attribute__((always_inline)) inline

/* The FMAs of one kept weight (value wv, x row at byte offset off) into a row's V accumulators.
 * xp in a register of its own: the FMAs' memory operands are then base + displacement, which
 * Intel cores keep micro-fused (base + index is split into two uops at rename, and the front
 * end, not the FMA ports, becomes the limit). */
static AI void kept_fmas(__m512 *acc, __m512 wv, const char *xb, uint32_t off, const int V) {
    const float *xp = (const float *)(xb + off);
    __asm__("" : "+r"(xp));
#pragma GCC unroll 8
    for (int v = 0; v < V; v++) acc[v] = _mm512_fmadd_ps(wv, _mm512_load_ps(xp + v * 16), acc[v]);
}

/* R rows x V token vectors over `len` kept indices (wp: the block's [len][R] weights). yt: the
 * rows' partial sums [R][TOK]; init: start from the rows' bias (b, R floats, 0 past `out`)
 * instead of yt.
 *
 * Loads bound it (two a cycle): per kept weight V of x, its offset and its value. PERM (where the
 * registers allow, R x V <= 16): the values of 8 pairs come from one 64-byte load and each is
 * broadcast by a vpermps, V + 1 + 1/8 loads a weight instead of V + 2. The permute port is an FMA
 * port, so this pays only where the loads bind and the FMA ports have slots to spare: the layer's
 * plan says where (w->tv_perm, spmm_plan.c). */
static AI void rows_kernel(float *yt, size_t tok, const float *xT, const nmf_tv_pair *wp,
                           size_t len, int init, const float *b, const int R, const int V,
                           const int PERM) {
    __m512 acc[4][8];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < V; v++)
            acc[r][v] = init ? _mm512_set1_ps(b[r]) : _mm512_load_ps(yt + r * tok + v * 16);
    const char *xb = (const char *)xT;
    const nmf_tv_pair *end = wp + len * R;
    if (PERM && R * V <= 16) {
        /* pair q of 8 (value in float lane 2q): row q % R; R divides 8 */
        const nmf_tv_pair *end8 = wp + len * R / 8 * 8;
        for (; wp != end8; wp += 8) {
            const __m512 pv = _mm512_loadu_ps((const float *)wp);
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++)
                kept_fmas(acc[q % R], _mm512_permutexvar_ps(_mm512_set1_epi32(2 * q), pv), xb,
                          wp[q].off, V);
        }
    }
    for (; wp != end; wp += R)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) kept_fmas(acc[r], _mm512_set1_ps(wp[r].val), xb, wp[r].off, V);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) _mm512_store_ps(yt + r * tok + v * 16, acc[r][v]);
}

/* Row blocks [rb0, rb1) of a chunk (partial sums at yT, R * tok floats per block) over one input
 * block of len kept indices (wp: that input block's weights, all row blocks). */
static AI void rows_blocks(float *yT, size_t tok, const float *xT, const nmf_tv_pair *wp,
                           size_t len, size_t rb0, size_t rb1, int init, const float *b,
                           const int R, const int V, const int PERM) {
    for (size_t rb = rb0; rb < rb1; rb++, yT += R * tok, b += R)
        rows_kernel(yT, tok, xT, wp + rb * len * R, len, init, b, R, V, PERM);
}

#define DEF_ROWS(R, V)                                                                         \
    static void rows_##R##_##V(float *yT, size_t tok, const float *xT, const nmf_tv_pair *wp,  \
                               size_t len, size_t rb0, size_t rb1, int init, const float *b) {  \
        rows_blocks(yT, tok, xT, wp, len, rb0, rb1, init, b, R, V, 0);                          \
    }
#define DEF_ROWS_PERM(R, V)                                                                    \
    static void rowsp_##R##_##V(float *yT, size_t tok, const float *xT, const nmf_tv_pair *wp, \
                                size_t len, size_t rb0, size_t rb1, int init, const float *b) { \
        rows_blocks(yT, tok, xT, wp, len, rb0, rb1, init, b, R, V, 1);                          \
    }
/* every R x V up to 4 x 7 (R*V <= 28 accumulators of 32 zmm); 1..3 rows up to 8 vectors */
DEF_ROWS(1, 1) DEF_ROWS(1, 2) DEF_ROWS(1, 3) DEF_ROWS(1, 4)
DEF_ROWS(1, 5) DEF_ROWS(1, 6) DEF_ROWS(1, 7) DEF_ROWS(1, 8)
DEF_ROWS(2, 1) DEF_ROWS(2, 2) DEF_ROWS(2, 3) DEF_ROWS(2, 4)
DEF_ROWS(2, 5) DEF_ROWS(2, 6) DEF_ROWS(2, 7) DEF_ROWS(2, 8)
DEF_ROWS(4, 1) DEF_ROWS(4, 2) DEF_ROWS(4, 3) DEF_ROWS(4, 4)
DEF_ROWS(4, 5) DEF_ROWS(4, 6) DEF_ROWS(4, 7)
static const nmf_spmm_tv_rows_fn rows_fns[5][9] = {
    [1] = {NULL, rows_1_1, rows_1_2, rows_1_3, rows_1_4, rows_1_5, rows_1_6, rows_1_7, rows_1_8},
    [2] = {NULL, rows_2_1, rows_2_2, rows_2_3, rows_2_4, rows_2_5, rows_2_6, rows_2_7, rows_2_8},
    [4] = {NULL, rows_4_1, rows_4_2, rows_4_3, rows_4_4, rows_4_5, rows_4_6, rows_4_7, NULL},
};
/* the PERM variants where R x V <= 16 (the others have no registers for the 8 lane selectors) */
DEF_ROWS_PERM(1, 1) DEF_ROWS_PERM(1, 2) DEF_ROWS_PERM(1, 3) DEF_ROWS_PERM(1, 4)
DEF_ROWS_PERM(1, 5) DEF_ROWS_PERM(1, 6) DEF_ROWS_PERM(1, 7) DEF_ROWS_PERM(1, 8)
DEF_ROWS_PERM(2, 1) DEF_ROWS_PERM(2, 2) DEF_ROWS_PERM(2, 3) DEF_ROWS_PERM(2, 4)
DEF_ROWS_PERM(2, 5) DEF_ROWS_PERM(2, 6) DEF_ROWS_PERM(2, 7) DEF_ROWS_PERM(2, 8)
DEF_ROWS_PERM(4, 1) DEF_ROWS_PERM(4, 2) DEF_ROWS_PERM(4, 3) DEF_ROWS_PERM(4, 4)
static const nmf_spmm_tv_rows_fn rows_fns_perm[5][9] = {
    [1] = {NULL, rowsp_1_1, rowsp_1_2, rowsp_1_3, rowsp_1_4, rowsp_1_5, rowsp_1_6, rowsp_1_7,
           rowsp_1_8},
    [2] = {NULL, rowsp_2_1, rowsp_2_2, rowsp_2_3, rowsp_2_4, rowsp_2_5, rowsp_2_6, rowsp_2_7,
           rowsp_2_8},
    [4] = {NULL, rowsp_4_1, rowsp_4_2, rowsp_4_3, rowsp_4_4, rows_4_5, rows_4_6, rows_4_7, NULL},
};

/* A layer's microkernels: the PERM ones where its plan says (rows_kernel) */
static const nmf_spmm_tv_rows_fn *rows_for(const nmf_spmm_weights *w) {
    return (w->tv_perm ? rows_fns_perm : rows_fns)[w->tv_rows];
}

/* Every tile height up to TOK must have a kernel: a ragged last tile runs fewer vectors. */
int nmf_spmm_tv_avx512_supports(size_t rows, size_t tokens) {
    return rows <= 4 && tokens % 16 == 0 && tokens / 16 >= 1 && tokens / 16 <= 8 &&
           rows_fns[rows][tokens / 16] != NULL;
}

/* In-place 16x16 transpose: r[i] lane j  ->  r[j] lane i. */
static AI void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 16
    for (int q = 0; q < 4; q++) { /* u[4q+c] lane k: rows 4q..4q+3 of column 4k+c */
        const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 2]);
        const __m512d c = _mm512_castps_pd(t[4 * q + 1]), d = _mm512_castps_pd(t[4 * q + 3]);
        u[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
#pragma GCC unroll 16
    for (int c = 0; c < 4; c++) {
        const __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        const __m512 w = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        const __m512 v2 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        const __m512 w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v, w, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v, w, 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(v2, w2, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v2, w2, 0xDD);
    }
}

static __mmask16 lanes(size_t count) { /* lanes [0, count) set, count <= 16 */
    return (__mmask16)(count >= 16 ? 0xFFFFu : (1u << count) - 1u);
}

/* 16 token rows of x (u < nr of them real, the rest zero), columns [i0, i0 + 16) (ci of them
 * real) -> xT rows i0.. at token offset s. */
static AI void transpose_block(float *xt, const float *xs, size_t ldx, size_t tok, size_t s,
                               size_t nr, size_t i0, size_t ci) {
    __m512 r[16];
    if (nr == 16 && ci == 16) {
#pragma GCC unroll 16
        for (size_t u = 0; u < 16; u++) r[u] = _mm512_loadu_ps(xs + u * ldx + i0);
    } else {
        const __mmask16 cm = lanes(ci);
        for (size_t u = 0; u < 16; u++)
            r[u] = u < nr ? _mm512_maskz_loadu_ps(cm, xs + u * ldx + i0) : _mm512_setzero_ps();
    }
    transpose16(r);
#pragma GCC unroll 16
    for (size_t c = 0; c < 16; c++) _mm512_store_ps(xt + (i0 + c) * tok + s, r[c]);
}

void nmf_spmm_tv_transpose_avx512(float *xT, const float *x, size_t ldx, size_t in,
                                  size_t tokens, size_t tok, size_t v0, size_t v1) {
    const size_t in16 = nmf_round_up(in, NMF_TV_IN_ALIGN), tile_floats = in16 * tok;
    for (size_t v = v0; v < v1; v++) { /* token vectors outer: x read front to back */
        const size_t t = v * 16, tile = t / tok, s = t - tile * tok;
        const size_t nr = tokens - t < 16 ? tokens - t : 16;
        const float *xs = x + t * ldx;
        float *xt = xT + tile * tile_floats;
        for (size_t i0 = 0; i0 < in16; i0 += 16)
            transpose_block(xt, xs, ldx, tok, s, nr, i0, in - i0 < 16 ? in - i0 : 16);
    }
}

/* yT[rows c0..c1 of the chunk][TOK] -> y[t0 + u][o], 16 x 16 at a time, GELU in registers on
 * the way; tokens outer (y written row after row). */
static void store_chunk(float *y, size_t out, const float *yT, size_t tok, size_t c0, size_t c1,
                        size_t t0, size_t tt, nmf_activation act) {
    for (size_t s = 0; s < tt; s += 16) {
        const size_t nt = tt - s < 16 ? tt - s : 16;
        for (size_t o0 = c0; o0 < c1; o0 += 16) {
            const size_t rows = c1 - o0 < 16 ? c1 - o0 : 16;
            __m512 r[16];
#pragma GCC unroll 16
            for (size_t u = 0; u < 16; u++) r[u] = _mm512_load_ps(yT + (o0 - c0 + u) * tok + s);
            transpose16(r);
            float *yp = y + (t0 + s) * out + o0;
            if (act == NMF_ACT_GELU)
                for (size_t c = 0; c < nt; c++) r[c] = nmf_gelu16_avx512(r[c]);
            const __mmask16 rm = lanes(rows);
            for (size_t c = 0; c < nt; c++) _mm512_mask_storeu_ps(yp + c * out, rm, r[c]);
        }
    }
}

/* yT[rows c0..c1 of the chunk][TOK] -> the next layer's xT (spmm.h: `out` columns), GELU in
 * registers: no transpose, the partial sums are already in its layout. */
static void store_chunk_xt(float *xTn, size_t out, const float *yT, size_t tok, size_t c0,
                           size_t c1, size_t t0, size_t tt, nmf_activation act) {
    float *xt = xTn + t0 / tok * nmf_round_up(out, NMF_TV_IN_ALIGN) * tok;
    for (size_t o = c0; o < c1; o++)
        for (size_t s = 0; s < tt; s += 16) { /* the lanes past tt are never stored downstream */
            const __m512 v = _mm512_load_ps(yT + (o - c0) * tok + s);
            _mm512_store_ps(xt + o * tok + s, act == NMF_ACT_GELU ? nmf_gelu16_avx512(v) : v);
        }
}

void nmf_spmm_forward_tv_xt_avx512(float *y, const float *xT, const nmf_spmm_weights *w,
                                   const float *bias, size_t tokens, nmf_activation act,
                                   size_t p0, size_t p1, size_t chunk, float *yT) {
    nmf_spmm_tv_drive(y, xT, w, bias, tokens, act, p0, p1, chunk, yT, 16, rows_for(w),
                      store_chunk);
}

void nmf_spmm_forward_tv_xt_xt_avx512(float *xTn, const float *xT, const nmf_spmm_weights *w,
                                      const float *bias, size_t tokens, nmf_activation act,
                                      size_t p0, size_t p1, size_t chunk, float *yT) {
    nmf_spmm_tv_drive(xTn, xT, w, bias, tokens, act, p0, p1, chunk, yT, 16, rows_for(w),
                      store_chunk_xt);
}
