/* N:M x dense forward, AVX-512, vectorised over TOKENS (XNNPACK f32-spmm style). Layout: spmm.h
 * ("token-vectorised layout"). The panel kernel (spmm_avx512.c) vectorises over 16 output rows
 * and needs a vpermps per FMA to pick each row's inputs; on Zen 4 any second 512-bit op next to
 * an FMA costs about a third of an FMA slot. Here there is no permute at all:
 *
 *   x is transposed once per call into 64-token tiles xT[tile][in][64] (linear.c shares one
 *   transposed copy between its threads);
 *   for a block of 4 output rows and each kept index j, the 4 rows' values are broadcast and
 *   FMA'd with the xT row at each row's precomputed byte offset: 4 rows x V token vectors
 *   (V = 4 for 64 tokens) = 16 accumulators, one x load per FMA (a memory operand), one
 *   broadcast and one offset load per V FMAs;
 *   rows are taken in chunks of TV_CHUNK (outer loop: a chunk's weights stay in L2 across the
 *   token tiles), their accumulators kept in yT[chunk][64] (L1) across input blocks of
 *   ~256 columns;
 *   the chunk's yT is transposed back into y[T][out] by 16x16 register transposes, bias
 *   (added when the accumulators start) and GELU (nmf_gelu_avx512) applied on the way. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_internal.h"
#include "kernels/spmm.h"

#define AI __attribute__((always_inline)) inline
#define TV_CHUNK 64 /* rows whose accumulators live in yT (16 KiB), multiple of 16 */
_Static_assert(TV_CHUNK % 16 == 0 && TV_CHUNK % NMF_TV_ROWS == 0, "chunk of whole tiles");
_Static_assert(NMF_TV_TOKENS == 64 && NMF_TV_ROWS == 4, "the microkernel is 4 rows x 4 zmm");

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

/* 4 rows x V token vectors over kept indices [j0, j1). yt: the rows' accumulators [4][64];
 * init: start from bias (b4, 4 floats, zeros past `out`) instead of yt. Named registers, not
 * arrays: GCC keeps large arrays of vectors in memory. */
static AI void rows4(float *yt, const float *xT, const float *val, const uint32_t *off, size_t j0,
                     size_t j1, int init, const float *b4, const int V) {
    __m512 a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
    if (init) {
        a00 = a01 = a02 = a03 = _mm512_set1_ps(b4[0]);
        a10 = a11 = a12 = a13 = _mm512_set1_ps(b4[1]);
        a20 = a21 = a22 = a23 = _mm512_set1_ps(b4[2]);
        a30 = a31 = a32 = a33 = _mm512_set1_ps(b4[3]);
    } else {
#define LD(r, v) a##r##v = V > v ? _mm512_load_ps(yt + r * 64 + v * 16) : _mm512_setzero_ps()
        LD(0, 0); LD(0, 1); LD(0, 2); LD(0, 3); LD(1, 0); LD(1, 1); LD(1, 2); LD(1, 3);
        LD(2, 0); LD(2, 1); LD(2, 2); LD(2, 3); LD(3, 0); LD(3, 1); LD(3, 2); LD(3, 3);
#undef LD
    }
    const char *xb = (const char *)xT;
    val += 4 * j0;
    off += 4 * j0;
    for (size_t j = j0; j < j1; j++, val += 4, off += 4) {
        const __m512 w0 = _mm512_set1_ps(val[0]), w1 = _mm512_set1_ps(val[1]);
        const __m512 w2 = _mm512_set1_ps(val[2]), w3 = _mm512_set1_ps(val[3]);
        const float *x0 = (const float *)(xb + off[0]), *x1 = (const float *)(xb + off[1]);
        const float *x2 = (const float *)(xb + off[2]), *x3 = (const float *)(xb + off[3]);
#define FMA(r, v)                                                                              \
    if (V > v) a##r##v = _mm512_fmadd_ps(w##r, _mm512_load_ps(x##r + v * 16), a##r##v)
        FMA(0, 0); FMA(1, 0); FMA(2, 0); FMA(3, 0);
        FMA(0, 1); FMA(1, 1); FMA(2, 1); FMA(3, 1);
        FMA(0, 2); FMA(1, 2); FMA(2, 2); FMA(3, 2);
        FMA(0, 3); FMA(1, 3); FMA(2, 3); FMA(3, 3);
#undef FMA
    }
#define ST(r, v) if (V > v) _mm512_store_ps(yt + r * 64 + v * 16, a##r##v)
    ST(0, 0); ST(0, 1); ST(0, 2); ST(0, 3); ST(1, 0); ST(1, 1); ST(1, 2); ST(1, 3);
    ST(2, 0); ST(2, 1); ST(2, 2); ST(2, 3); ST(3, 0); ST(3, 1); ST(3, 2); ST(3, 3);
#undef ST
}

typedef void (*rows4_fn)(float *, const float *, const float *, const uint32_t *, size_t, size_t,
                         int, const float *);
#define DEF_ROWS4(V)                                                                           \
    static void rows4_##V(float *yt, const float *xT, const float *val, const uint32_t *off,   \
                          size_t j0, size_t j1, int init, const float *b4) {                  \
        rows4(yt, xT, val, off, j0, j1, init, b4, V);                                         \
    }
DEF_ROWS4(1) DEF_ROWS4(2) DEF_ROWS4(3) DEF_ROWS4(4)
static const rows4_fn rows4_fns[4] = {rows4_1, rows4_2, rows4_3, rows4_4};

/* xT[i][0..16V) = x[t0 + u][i] for u < tt, 0 for tt <= u < 16V; i over [0, in16) (in16 = in
 * rounded up to 16; columns past in are 0). */
static void transpose_x(float *xT, const float *x, size_t ldx, size_t in, size_t in16,
                        size_t tt, size_t V) {
    __m512 r[16];
    for (size_t i0 = 0; i0 < in16; i0 += 16) {
        const size_t ci = in - i0 < 16 ? in - i0 : 16;
        const __mmask16 cm = (__mmask16)(ci == 16 ? 0xFFFFu : (1u << ci) - 1u);
        for (size_t s = 0; s < V; s++) {
#pragma GCC unroll 16
            for (size_t u = 0; u < 16; u++) {
                const size_t t = s * 16 + u;
                r[u] = t < tt ? _mm512_maskz_loadu_ps(cm, x + t * ldx + i0) : _mm512_setzero_ps();
            }
            transpose16(r);
#pragma GCC unroll 16
            for (size_t c = 0; c < 16; c++) _mm512_store_ps(xT + (i0 + c) * NMF_TV_TOKENS + s * 16, r[c]);
        }
    }
}

/* The default input block of the driver (the params' in_block overrides it). */
size_t nmf_spmm_tv_in_block_default(size_t m) {
    size_t b = 256 / m * m; /* whole groups, ~256 columns: 64 KiB of xT swept per row block */
    return b ? b : m;
}

void nmf_spmm_tv_transpose_avx512(float *xT, const float *x, size_t ldx, size_t in,
                                  size_t tokens, size_t tile0, size_t tile1) {
    const size_t in16 = (in + 15) / 16 * 16, tile_floats = in16 * NMF_TV_TOKENS;
    for (size_t tile = tile0; tile < tile1; tile++) {
        const size_t t0 = tile * NMF_TV_TOKENS;
        const size_t tt = tokens - t0 < NMF_TV_TOKENS ? tokens - t0 : NMF_TV_TOKENS;
        transpose_x(xT + tile * tile_floats, x + t0 * ldx, ldx, in, in16, tt, (tt + 15) / 16);
    }
}

void nmf_spmm_forward_tv_avx512(float *y, const float *x, size_t ldx, size_t x_slack,
                                const nmf_spmm_weights *w, const float *bias, size_t tokens,
                                nmf_activation act, size_t p0, size_t p1,
                                const nmf_spmm_params *prm) {
    const size_t floats = nmf_spmm_tv_xt_floats(w->in, tokens);
    float *xT = floats ? aligned_alloc(64, floats * sizeof(float)) : NULL;
    if (!xT) { /* no scratch: the panel kernel needs none */
        nmf_spmm_forward_avx512(y, x, ldx, x_slack, w, bias, tokens, act, p0, p1, prm);
        return;
    }
    nmf_spmm_tv_transpose_avx512(xT, x, ldx, w->in, tokens, 0, nmf_spmm_tv_tiles(tokens));
    nmf_spmm_forward_tv_xt_avx512(y, xT, w, bias, tokens, act, p0, p1, prm);
    free(xT);
}

void nmf_spmm_forward_tv_xt_avx512(float *y, const float *xT, const nmf_spmm_weights *w,
                                   const float *bias, size_t tokens, nmf_activation act,
                                   size_t p0, size_t p1, const nmf_spmm_params *prm) {
    const size_t in = w->in, out = w->out, m = (size_t)w->m, n = (size_t)w->n;
    const size_t K = w->groups * n; /* kept indices per row */
    size_t ib = prm && prm->in_block ? prm->in_block : nmf_spmm_tv_in_block_default(m);
    ib = ib < m ? m : ib / m * m;
    const size_t jb = ib / m * n; /* kept indices per input block */
    const size_t r0 = p0 * NMF_SPMM_ROWS, r1 = p1 * NMF_SPMM_ROWS < out ? p1 * NMF_SPMM_ROWS : out;
    if (r0 >= r1) return;
    const size_t ntiles = nmf_spmm_tv_tiles(tokens);
    const size_t tile_floats = (in + 15) / 16 * 16 * NMF_TV_TOKENS;
    float yT[TV_CHUNK * NMF_TV_TOKENS] __attribute__((aligned(64)));
    float bpad[TV_CHUNK] __attribute__((aligned(64)));
    /* row chunks outer, token tiles inner: a chunk's weights stay in L2 across the tiles
     * (weights are read from memory once per product) */
    for (size_t c0 = r0; c0 < r1; c0 += TV_CHUNK) {
        const size_t c1 = r1 - c0 < TV_CHUNK ? r1 : c0 + TV_CHUNK;
        for (size_t o = c0; o < c0 + TV_CHUNK; o++) bpad[o - c0] = bias && o < out ? bias[o] : 0.0f;
        const size_t rb0 = c0 / NMF_TV_ROWS, rb1 = (c1 + NMF_TV_ROWS - 1) / NMF_TV_ROWS;
        for (size_t tile = 0; tile < ntiles; tile++) {
            const size_t t0 = tile * NMF_TV_TOKENS;
            const size_t tt = tokens - t0 < NMF_TV_TOKENS ? tokens - t0 : NMF_TV_TOKENS;
            const size_t V = (tt + 15) / 16;
            const rows4_fn kern = rows4_fns[V - 1];
            const float *xt = xT + tile * tile_floats;
            for (size_t j0 = 0; j0 < K; j0 += jb) {
                const size_t j1 = K - j0 < jb ? K : j0 + jb;
                for (size_t rb = rb0; rb < rb1; rb++) {
                    const size_t lr = rb * NMF_TV_ROWS - c0; /* row within the chunk */
                    kern(yT + lr * NMF_TV_TOKENS, xt, w->tv_val + rb * K * NMF_TV_ROWS,
                         w->tv_off + rb * K * NMF_TV_ROWS, j0, j1, j0 == 0, bpad + lr);
                }
            }
            /* yT [chunk rows][tokens] -> y [tokens][rows], 16 x 16 at a time */
            for (size_t o0 = c0; o0 < c1; o0 += 16) {
                const size_t rows = c1 - o0 < 16 ? c1 - o0 : 16;
                const __mmask16 rm = (__mmask16)(rows == 16 ? 0xFFFFu : (1u << rows) - 1u);
                for (size_t s = 0; s < V; s++) {
                    __m512 r[16];
#pragma GCC unroll 16
                    for (size_t u = 0; u < 16; u++)
                        r[u] = _mm512_load_ps(yT + (o0 - c0 + u) * NMF_TV_TOKENS + s * 16);
                    transpose16(r);
                    const size_t nt = tt - s * 16 < 16 ? tt - s * 16 : 16;
                    for (size_t c = 0; c < nt; c++) {
                        float *yp = y + (t0 + s * 16 + c) * out + o0;
                        _mm512_mask_storeu_ps(yp, rm, r[c]);
                        if (act == NMF_ACT_GELU) nmf_gelu_avx512(yp, yp, rows);
                    }
                }
            }
        }
    }
}
