/* N:M x dense forward, AVX2 + FMA, vectorised over TOKENS (XNNPACK f32-spmm style). Layout:
 * spmm.h ("token-vectorised layout", interleaved: tv_pairs), with the layer's tv_rows (R) and
 * tv_tokens (TOK).
 *
 * Why not the panel kernel (spmm_avx2.c): it issues a vpermps per FMA, and the permute shares
 * issue ports with the FMAs: on this Zen 3 it ran at ~25 % of the FMA peak. Here:
 *   x is transposed once per product into tiles xT[tile][in8][TOK] (threads share it);
 *   for a block of R output rows and each kept index j, each row's value is broadcast once and
 *   FMA'd (x as a memory operand, at the row's precomputed byte offset) into V = TOK/8 token
 *   vectors: R x V accumulators in registers, 1 + V loads per V FMAs, no index arithmetic.
 *   Zen 3 issues two 256-bit loads per cycle, so the loop is load-bound at ~V/(V+1) of the
 *   FMA peak (measured register/L1-resident: 2x6 0.78, 1x8 0.80, 2x4 0.72, 1x4 0.50);
 *   input columns are taken in the layout's blocks (w->tv_kblock kept indices per row) so that
 *   the xT block of a tile stays in L1 while all rows of a chunk sweep it (without blocking,
 *   xT comes from L2 and the product runs at ~half the speed); a block's weights for all row
 *   blocks are one contiguous stream (the layout is block-major for this), value and offset
 *   side by side (with two arrays 4 KiB-aliased, their lines and the xT block competed for
 *   the same L1 sets);
 *   the chunk's partial sums live in yT[chunk][TOK] across the input blocks; after the last
 *   block, yT is transposed back into y[T][out] by 8x8 register transposes, GELU applied on
 *   the way (the bias is where the accumulators start). */
#include <immintrin.h>
#include <stdint.h>

#include "kernels/gelu_avx2.h"
#include "kernels/ops_internal.h"
#include "kernels/spmm.h"

#define AI __attribute__((always_inline)) inline

/* R rows x V token vectors over `len` kept indices (wp: the block's [len][R] weights). yt: the
 * rows' partial sums [R][TOK]; init: start from the rows' bias (b, R floats, 0 past `out`)
 * instead of yt. (Arrays of vectors with constant trip counts: GCC keeps them in registers
 * here, checked in the assembly: no spills in the j loop.) */
static AI void rows_kernel(float *yt, size_t tok, const float *xT, const nmf_tv_pair *wp,
                           size_t len, int init, const float *b, const int R, const int V) {
    __m256 acc[4][8];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < V; v++)
            acc[r][v] = init ? _mm256_broadcast_ss(b + r) : _mm256_load_ps(yt + r * tok + v * 8);
    const char *xb = (const char *)xT;
    for (size_t j = 0; j < len; j++, wp += R) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m256 wv = _mm256_broadcast_ss(&wp[r].val);
            const float *xp = (const float *)(xb + wp[r].off);
#pragma GCC unroll 8
            for (int v = 0; v < V; v++)
                acc[r][v] = _mm256_fmadd_ps(wv, _mm256_load_ps(xp + v * 8), acc[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) _mm256_store_ps(yt + r * tok + v * 8, acc[r][v]);
}

/* Row blocks [rb0, rb1) of a chunk (partial sums at yT, R * tok floats per block) over one input
 * block of len kept indices (wp: that input block's weights, all row blocks). */
static AI void rows_blocks(float *yT, size_t tok, const float *xT, const nmf_tv_pair *wp,
                           size_t len, size_t rb0, size_t rb1, int init, const float *b,
                           const int R, const int V) {
    for (size_t rb = rb0; rb < rb1; rb++, yT += R * tok, b += R)
        rows_kernel(yT, tok, xT, wp + rb * len * R, len, init, b, R, V);
}

#define DEF_ROWS(R, V)                                                                         \
    static void rows_##R##_##V(float *yT, size_t tok, const float *xT, const nmf_tv_pair *wp,  \
                               size_t len, size_t rb0, size_t rb1, int init, const float *b) {  \
        rows_blocks(yT, tok, xT, wp, len, rb0, rb1, init, b, R, V);                             \
    }
/* R x V with R*V <= 14 accumulators (16 ymm: the accumulators, a broadcast, a spare) */
DEF_ROWS(1, 1) DEF_ROWS(1, 2) DEF_ROWS(1, 3) DEF_ROWS(1, 4)
DEF_ROWS(1, 5) DEF_ROWS(1, 6) DEF_ROWS(1, 7) DEF_ROWS(1, 8)
DEF_ROWS(2, 1) DEF_ROWS(2, 2) DEF_ROWS(2, 3) DEF_ROWS(2, 4)
DEF_ROWS(2, 5) DEF_ROWS(2, 6)
DEF_ROWS(4, 1) DEF_ROWS(4, 2) DEF_ROWS(4, 3)
static const nmf_spmm_tv_rows_fn rows_fns[5][9] = {
    [1] = {NULL, rows_1_1, rows_1_2, rows_1_3, rows_1_4, rows_1_5, rows_1_6, rows_1_7, rows_1_8},
    [2] = {NULL, rows_2_1, rows_2_2, rows_2_3, rows_2_4, rows_2_5, rows_2_6, NULL, NULL},
    [4] = {NULL, rows_4_1, rows_4_2, rows_4_3, NULL, NULL, NULL, NULL, NULL},
};

int nmf_spmm_tv_avx2_supports(size_t rows, size_t tokens) {
    return rows <= 4 && tokens % 8 == 0 && tokens / 8 <= 8 && rows_fns[rows][tokens / 8] != NULL;
}

/* In-place 8x8 transpose: r[i] lane j  ->  r[j] lane i. */
static AI void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int q = 0; q < 2; q++) {
        u[4 * q + 0] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
        u[4 * q + 1] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
        u[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
        u[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

static __m256i lane_mask(size_t count) { /* lanes [0, count) set, count <= 8 */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 8 token rows of x (u < nr of them real, the rest zero), columns [i0, i0 + 8) (ci of them
 * real) -> xT rows i0.. at token offset s. Full blocks use plain loads: maskload is slower on
 * Zen 3 and the per-row token test was a branch per load. */
static AI void transpose_block(float *xt, const float *xs, size_t ldx, size_t tok, size_t s,
                               size_t nr, size_t i0, size_t ci) {
    __m256 r[8];
    if (nr == 8 && ci == 8) {
#pragma GCC unroll 8
        for (size_t u = 0; u < 8; u++) r[u] = _mm256_loadu_ps(xs + u * ldx + i0);
    } else {
        const __m256i cm = lane_mask(ci);
        for (size_t u = 0; u < 8; u++)
            r[u] = u < nr ? _mm256_maskload_ps(xs + u * ldx + i0, cm) : _mm256_setzero_ps();
    }
    transpose8(r);
#pragma GCC unroll 8
    for (size_t c = 0; c < 8; c++) _mm256_store_ps(xt + (i0 + c) * tok + s, r[c]);
}

void nmf_spmm_tv_transpose_avx2(float *xT, const float *x, size_t ldx, size_t in, size_t tokens,
                                size_t tok, size_t v0, size_t v1) {
    const size_t in8 = nmf_round_up(in, 8), tile_floats = nmf_round_up(in, NMF_TV_IN_ALIGN) * tok;
    /* token vectors outer (tokens [8 v, 8 v + 8), in tile 8 v / TOK at offset s; the kernel
     * reads no more): 8 rows of x read front to back, streams the prefetcher follows (columns
     * outer touched 48 rows' lines per step) */
    for (size_t v = v0; v < v1; v++) {
        const size_t t = v * 8, tile = t / tok, s = t - tile * tok;
        const size_t nr = tokens - t < 8 ? tokens - t : 8;
        const float *xs = x + t * ldx;
        float *xt = xT + tile * tile_floats;
        for (size_t i0 = 0; i0 < in8; i0 += 8)
            transpose_block(xt, xs, ldx, tok, s, nr, i0, in - i0 < 8 ? in - i0 : 8);
    }
}

/* yT[rows c0..c1 of the chunk][TOK] -> y[t0 + u][o], 8 x 8 at a time, GELU in registers on
 * the way. Tokens outer: y is written row after row (8 streams), where rows outer wrote half
 * lines of 48 rows per step; yT (this chunk's, in L2) is what is read across. */
static void store_chunk(float *y, size_t out, const float *yT, size_t tok, size_t c0, size_t c1,
                        size_t t0, size_t tt, nmf_activation act) {
    for (size_t s = 0; s < tt; s += 8) {
        const size_t nt = tt - s < 8 ? tt - s : 8;
        for (size_t o0 = c0; o0 < c1; o0 += 8) {
            const size_t rows = c1 - o0 < 8 ? c1 - o0 : 8;
            __m256 r[8];
#pragma GCC unroll 8
            for (size_t u = 0; u < 8; u++) r[u] = _mm256_load_ps(yT + (o0 - c0 + u) * tok + s);
            transpose8(r);
            float *yp = y + (t0 + s) * out + o0;
            if (act == NMF_ACT_GELU)
                for (size_t c = 0; c < nt; c++) r[c] = nmf_gelu8_avx2(r[c]);
            if (rows == 8 && nt == 8) {
#pragma GCC unroll 8
                for (size_t c = 0; c < 8; c++) _mm256_storeu_ps(yp + c * out, r[c]);
            } else {
                const __m256i rm = lane_mask(rows);
                for (size_t c = 0; c < nt; c++) _mm256_maskstore_ps(yp + c * out, rm, r[c]);
            }
        }
    }
}

/* yT[rows c0..c1 of the chunk][TOK] -> the next layer's xT (spmm.h: `out` columns), GELU in
 * registers: no transpose, the partial sums are already in its layout. */
static void store_chunk_xt(float *xTn, size_t out, const float *yT, size_t tok, size_t c0,
                           size_t c1, size_t t0, size_t tt, nmf_activation act) {
    float *xt = xTn + t0 / tok * nmf_round_up(out, NMF_TV_IN_ALIGN) * tok;
    for (size_t o = c0; o < c1; o++)
        for (size_t s = 0; s < tt; s += 8) { /* the lanes past tt are never stored downstream */
            const __m256 v = _mm256_load_ps(yT + (o - c0) * tok + s);
            _mm256_store_ps(xt + o * tok + s, act == NMF_ACT_GELU ? nmf_gelu8_avx2(v) : v);
        }
}

void nmf_spmm_forward_tv_xt_avx2(float *y, const float *xT, const nmf_spmm_weights *w,
                                 const float *bias, size_t tokens, nmf_activation act,
                                 size_t p0, size_t p1, size_t chunk, float *yT) {
    nmf_spmm_tv_drive(y, xT, w, bias, tokens, act, p0, p1, chunk, yT, 8, rows_fns[w->tv_rows],
                      store_chunk);
}

void nmf_spmm_forward_tv_xt_xt_avx2(float *xTn, const float *xT, const nmf_spmm_weights *w,
                                    const float *bias, size_t tokens, nmf_activation act,
                                    size_t p0, size_t p1, size_t chunk, float *yT) {
    nmf_spmm_tv_drive(xTn, xT, w, bias, tokens, act, p0, p1, chunk, yT, 8, rows_fns[w->tv_rows],
                      store_chunk_xt);
}
