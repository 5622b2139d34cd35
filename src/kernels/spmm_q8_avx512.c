/* int8 forward, AVX-512 VNNI + VBMI: layouts and arithmetic in spmm_q8.h.
 *
 * N:M (geometry {16, 64, 4}): for a block of 16 rows (one zmm of int32 sums, lane = row) and up
 * to Q8_NT tokens: per step, the 64 positions (the vpermb control, the same for every token)
 * and the 64 weights are loaded once; then per token one vpermb picks each row's 4 activation
 * bytes from the token's 64-byte window and one vpdpbusd adds their 4 products (u8 x s8, exact
 * in int32) into the row's lane: 64 multiply-adds per pair.
 * Dense (geometry {16, 4, 4}): per 4 input columns the 64 weights of 16 rows are loaded once,
 * then per token one vpdpbusd with the token's 4 bytes broadcast: 64 multiply-adds, no permute;
 * two row blocks at a time share each broadcast (block_dense).
 * The epilogue (offset, scales, bias, GELU: spmm_q8.h) runs in registers and stores 16 floats
 * per token. Row blocks in chunks whose weights fit L2; within a chunk token blocks outer, rows
 * inner (forward() below says why). */
#include <immintrin.h>
#include <string.h>

#include "kernels/gelu_avx512.h"
#include "kernels/spmm_q8.h"

#define AI __attribute__((always_inline)) inline
#define Q8_NT 8        /* N:M: tokens per block (8 sums + 8 windows + control + weights; 6, 10
                        * and 12 measured the same within noise) */
#define Q8_DENSE_NT 12 /* dense: tokens per block of two row blocks (24 sums; a token's 4 bytes
                        * are broadcast from memory once for both) */
#define Q8_DENSE_ONE 16 /* dense: up to this many tokens left run as one block of one row block
                         * (16 sums): one pass over the weights, not two (16 tokens as 12 + 4 in
                         * pairs were 1.25x slower, 768x768) */
#define Q8_CHUNK_BYTES (512 * 1024) /* weights of the row blocks run together: a share of L2 */

/* The epilogue of one token: y[0..rows) = act(fmaf(float(acc), sx * sw, bias)), acc the sums
 * less off (they start at -off: int32 sums are exact in any order), with sw and the bias
 * (masked) loaded once per block by EPILOGUE. */
static AI void epilogue(float *y, __m512i acc, float sx, __m512 sw, __m512 b, __mmask16 rm,
                        nmf_activation act) {
    const __m512 f = _mm512_cvtepi32_ps(acc);
    __m512 r = _mm512_fmadd_ps(f, _mm512_mul_ps(_mm512_set1_ps(sx), sw), b);
    if (act == NMF_ACT_GELU) r = nmf_gelu16_q8_avx512(r);
    _mm512_mask_storeu_ps(y, rm, r);
}
#define EPILOGUE(NT)                                                                            \
    do {                                                                                        \
        const __mmask16 rm = (__mmask16)((1u << rows) - 1); /* rows <= 16 */                   \
        const __m512 sw = _mm512_loadu_ps(scale);                                               \
        const __m512 b = bias ? _mm512_maskz_loadu_ps(rm, bias) : _mm512_setzero_ps();         \
        for (int u = 0; u < (NT); u++)                                                          \
            epilogue(y + (size_t)u * out, acc[u], sx[u], sw, b, rm, act);                       \
    } while (0)

/* Independent sums per token: vpdpbusd's latency (~5 cycles) bounds a single chain of them, so
 * below 4 tokens each token's sums are split over CH(NT) chains (windows round robin) and added
 * at the end (int32 addition: exact, any order). */
#define CH(NT) ((NT) == 1 ? 4 : (NT) < 4 ? 2 : 1)
#define WINDOW_RUN 16 /* windows per inner loop (a nested loop keeps GCC 12 from copying sums) */

/* N:M: NT tokens (xq rows ldq apart) x the 16 rows of one block (q, pos: its W*S steps). */
static AI void block_nm(float *y, size_t out, const uint8_t *xq, size_t ldq, const float *sx,
                        const int8_t *q, const uint8_t *pos, size_t W, size_t S,
                        const float *scale, const int32_t *off, const float *bias, size_t rows,
                        nmf_activation act, const int NT) {
    const int P = CH(NT);
    __m512i acc[Q8_NT]; /* NT * P <= Q8_NT */
    const __m512i neg_off = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(off));
    for (int u = 0; u < NT * P; u++) acc[u] = u % P ? _mm512_setzero_si512() : neg_off;
    for (size_t v0 = 0; v0 < W; v0 += WINDOW_RUN) {
        const size_t v1 = v0 + WINDOW_RUN < W ? v0 + WINDOW_RUN : W;
        for (size_t v = v0; v < v1; v += (size_t)P)
            for (int p = 0; p < P && v + (size_t)p < v1; p++) {
                const uint8_t *xv = xq + (v + (size_t)p) * 64;
                for (size_t s = 0; s < S; s++, q += 64, pos += 64) {
                    const __m512i ctl = _mm512_loadu_si512(pos), wv = _mm512_loadu_si512(q);
                    for (int u = 0; u < NT; u++) {
                        const __m512i xw = _mm512_loadu_si512(xv + (size_t)u * ldq);
                        acc[u * P + p] = _mm512_dpbusd_epi32(
                            acc[u * P + p], _mm512_permutexvar_epi8(ctl, xw), wv);
                    }
                }
            }
    }
    for (int u = 0; u < NT; u++)
        for (int p = 1; p < P; p++) acc[u * P] = _mm512_add_epi32(acc[u * P], acc[u * P + p]);
    for (int u = 1; u < NT; u++) acc[u] = acc[u * P];
    EPILOGUE(NT);
}

/* N:M, Q8_NT tokens x two row blocks at once (q, pos: the first's steps; the second's follow
 * them): each token's window is loaded once for both, and a window's loop and a call are
 * shared by twice the pairs (1:8 runs only 2 steps a window; DeiT-small's 1:8 layers at 197
 * tokens, `bench gemm --precision int8`: 2-3 % faster, 2:8 unchanged).
 * 16 sums + 8 windows + 2 controls + 2 weight vectors: 28 of the 32 registers. rows <= 32. */
static void nm_pair(float *y, size_t out, const uint8_t *xq, size_t ldq, const float *sx,
                    const int8_t *q, const uint8_t *pos, size_t W, size_t S, const float *scale,
                    const int32_t *off, const float *bias, size_t rows, nmf_activation act) {
    const size_t per_block = W * S * 64;
    const int8_t *q1 = q + per_block;
    const uint8_t *pos1 = pos + per_block;
    __m512i a0[Q8_NT], a1[Q8_NT];
    const __m512i n0 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(off));
    const __m512i n1 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(off + 16));
    for (int u = 0; u < Q8_NT; u++) a0[u] = n0, a1[u] = n1;
    for (size_t v0 = 0; v0 < W; v0 += WINDOW_RUN) {
        const size_t v1 = v0 + WINDOW_RUN < W ? v0 + WINDOW_RUN : W;
        for (size_t v = v0; v < v1; v++) {
            const uint8_t *xv = xq + v * 64;
            __m512i xw[Q8_NT];
            for (int u = 0; u < Q8_NT; u++) xw[u] = _mm512_loadu_si512(xv + (size_t)u * ldq);
            for (size_t s = 0; s < S; s++, q += 64, pos += 64, q1 += 64, pos1 += 64) {
                const __m512i c0 = _mm512_loadu_si512(pos), w0 = _mm512_loadu_si512(q);
                const __m512i c1 = _mm512_loadu_si512(pos1), w1 = _mm512_loadu_si512(q1);
                for (int u = 0; u < Q8_NT; u++) {
                    a0[u] = _mm512_dpbusd_epi32(a0[u], _mm512_permutexvar_epi8(c0, xw[u]), w0);
                    a1[u] = _mm512_dpbusd_epi32(a1[u], _mm512_permutexvar_epi8(c1, xw[u]), w1);
                }
            }
        }
    }
    {
        const __mmask16 rm = 0xffff; /* the first block is whole */
        const __m512 sw = _mm512_loadu_ps(scale);
        const __m512 b = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
        for (int u = 0; u < Q8_NT; u++) epilogue(y + (size_t)u * out, a0[u], sx[u], sw, b, rm, act);
    }
    {
        const __mmask16 rm = (__mmask16)((1u << (rows - 16)) - 1);
        const __m512 sw = _mm512_loadu_ps(scale + 16);
        const __m512 b = bias ? _mm512_maskz_loadu_ps(rm, bias + 16) : _mm512_setzero_ps();
        for (int u = 0; u < Q8_NT; u++)
            epilogue(y + 16 + (size_t)u * out, a1[u], sx[u], sw, b, rm, act);
    }
}

/* Dense: NT tokens x B row blocks (B = 1, 2: 16 or 32 rows; q: the first block's W windows of 4
 * columns, the second's follow them). A token's 4 bytes of a window are broadcast from memory
 * once for both blocks: 2 + NT loads per 2 NT vpdpbusd, where one block takes 1 + NT per NT and
 * the loads, not the vpdpbusd, bound it (as the AVX2 kernel, rows in pairs). B = 2 from 4
 * tokens (one chain per sum). In-process A/B on the Xeon (bench/ab_spmm.sh; before, one row
 * block and 16 tokens a block): DeiT's and BERT's layers at 128-197 tokens 1.05-1.38x faster,
 * 768x768 at 8 / 24 tokens 1.33 / 1.22x, at 16 the same (one block, as before). */
static AI void block_dense(float *y, size_t out, const uint8_t *xq, size_t ldq, const float *sx,
                           const int8_t *q, size_t W, const float *scale, const int32_t *off,
                           const float *bias, size_t rows, nmf_activation act, const int NT,
                           const int B) {
    const int P = B == 2 ? 1 : CH(NT);
    /* block b's sums of token u, chain p: acc[b NT P + u P + p] (NT P <= 16; B = 2: 2 NT) */
    __m512i acc[2 * Q8_DENSE_NT > Q8_DENSE_ONE ? 2 * Q8_DENSE_NT : Q8_DENSE_ONE];
    for (int b = 0; b < B; b++) {
        const __m512i neg_off =
            _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(off + 16 * b));
        for (int u = 0; u < NT * P; u++)
            acc[b * NT * P + u] = u % P ? _mm512_setzero_si512() : neg_off;
    }
    const int8_t *q1 = q + 64 * W; /* the second block's windows */
    /* token u's bytes at x[u / 4] + {0, 1, 2, 3}[u % 4] * ldq: 4 pointers, ldq and 3 ldq in
     * registers, so that every broadcast is one addressing mode (16 pointers do not fit) */
    const uint8_t *x[4] = {xq, xq, xq, xq};
    for (int g = 1; g < 4; g++)
        if (4 * g < NT) x[g] = xq + (size_t)(4 * g) * ldq;
    const size_t ld[4] = {0, ldq, 2 * ldq, 3 * ldq};
    for (size_t v0 = 0; v0 < W; v0 += WINDOW_RUN) {
        const size_t v1 = v0 + WINDOW_RUN < W ? v0 + WINDOW_RUN : W;
        for (size_t v = v0; v < v1; v += (size_t)P)
            for (int p = 0; p < P && v + (size_t)p < v1; p++) {
                const size_t at = 64 * (v + (size_t)p), c = 4 * (v + (size_t)p);
                const __m512i w0 = _mm512_loadu_si512(q + at);
                const __m512i w1 = B == 2 ? _mm512_loadu_si512(q1 + at) : w0;
                for (int u = 0; u < NT; u++) {
                    int32_t quad; /* the token's 4 bytes of this window */
                    __builtin_memcpy(&quad, x[u / 4] + ld[u % 4] + c, 4);
                    const __m512i xb = _mm512_set1_epi32(quad);
                    acc[u * P + p] = _mm512_dpbusd_epi32(acc[u * P + p], xb, w0);
                    if (B == 2) acc[NT + u] = _mm512_dpbusd_epi32(acc[NT + u], xb, w1);
                }
            }
    }
    for (int u = 0; u < NT; u++)
        for (int p = 1; p < P; p++) acc[u * P] = _mm512_add_epi32(acc[u * P], acc[u * P + p]);
    for (int u = 1; u < NT && P > 1; u++) acc[u] = acc[u * P];
    for (int b = 0; b < B; b++) {
        const size_t r = rows - 16 * (size_t)b;
        const __mmask16 rm = (__mmask16)(r >= 16 ? 0xFFFFu : (1u << r) - 1);
        const __m512 sw = _mm512_loadu_ps(scale + 16 * b);
        const __m512 bv = bias ? _mm512_maskz_loadu_ps(rm, bias + 16 * b) : _mm512_setzero_ps();
        for (int u = 0; u < NT; u++)
            epilogue(y + 16 * b + (size_t)u * out, acc[b * NT + u], sx[u], sw, bv, rm, act);
    }
}

typedef void (*block_fn)(float *, size_t, const uint8_t *, size_t, const float *, const int8_t *,
                         const uint8_t *, size_t, size_t, const float *, const int32_t *,
                         const float *, size_t, nmf_activation);
#define DEF_BLOCK(KIND, NT)                                                                     \
    static void KIND##_##NT(float *y, size_t out, const uint8_t *xq, size_t ldq, const float *sx, \
                            const int8_t *q, const uint8_t *pos, size_t W, size_t S,             \
                            const float *scale, const int32_t *off, const float *bias,           \
                            size_t rows, nmf_activation act) {                                   \
        block_##KIND(y, out, xq, ldq, sx, q, pos, W, S, scale, off, bias, rows, act, NT);       \
    }
DEF_BLOCK(nm, 1) DEF_BLOCK(nm, 2) DEF_BLOCK(nm, 3) DEF_BLOCK(nm, 4) DEF_BLOCK(nm, 5)
DEF_BLOCK(nm, 6) DEF_BLOCK(nm, 7) DEF_BLOCK(nm, 8)
static const block_fn nm_blocks[Q8_NT + 1] = {NULL, nm_1, nm_2, nm_3, nm_4,
                                              nm_5, nm_6, nm_7, nm_8};
#define DEF_DENSE(NT, B)                                                                        \
    static void dense_##B##_##NT(float *y, size_t out, const uint8_t *xq, size_t ldq,           \
                                 const float *sx, const int8_t *q, const uint8_t *pos, size_t W, \
                                 size_t S, const float *scale, const int32_t *off,               \
                                 const float *bias, size_t rows, nmf_activation act) {           \
        (void)pos, (void)S; /* S = 1, positions implied */                                      \
        block_dense(y, out, xq, ldq, sx, q, W, scale, off, bias, rows, act, NT, B);             \
    }
DEF_DENSE(1, 1) DEF_DENSE(2, 1) DEF_DENSE(3, 1) DEF_DENSE(4, 1) DEF_DENSE(5, 1) DEF_DENSE(6, 1)
DEF_DENSE(7, 1) DEF_DENSE(8, 1) DEF_DENSE(9, 1) DEF_DENSE(10, 1) DEF_DENSE(11, 1)
DEF_DENSE(12, 1) DEF_DENSE(13, 1) DEF_DENSE(14, 1) DEF_DENSE(15, 1) DEF_DENSE(16, 1)
DEF_DENSE(4, 2) DEF_DENSE(5, 2) DEF_DENSE(6, 2) DEF_DENSE(7, 2) DEF_DENSE(8, 2) DEF_DENSE(9, 2)
DEF_DENSE(10, 2) DEF_DENSE(11, 2) DEF_DENSE(12, 2)
_Static_assert(Q8_DENSE_NT == 12 && Q8_DENSE_ONE == 16, "dense_blocks, dense_pairs");
static const block_fn dense_blocks[Q8_DENSE_ONE + 1] = {
    NULL,       dense_1_1,  dense_1_2,  dense_1_3,  dense_1_4,  dense_1_5,
    dense_1_6,  dense_1_7,  dense_1_8,  dense_1_9,  dense_1_10, dense_1_11,
    dense_1_12, dense_1_13, dense_1_14, dense_1_15, dense_1_16};
static const block_fn dense_pairs[Q8_DENSE_NT + 1] = {
    NULL,      NULL,      NULL,      NULL,       dense_2_4,  dense_2_5, dense_2_6,
    dense_2_7, dense_2_8, dense_2_9, dense_2_10, dense_2_11, dense_2_12};
static const block_fn nm_pairs[Q8_NT + 1] = {[Q8_NT] = nm_pair};

/* Row blocks [rb0, rb1), tokens in blocks of nt_max, the last nt_one or fewer as one block (the
 * blocks of nt tokens that pairs[nt] has run two row blocks at a time): row blocks in chunks
 * whose weights stay in L2 (Q8_CHUNK_BYTES), and within a chunk, token blocks outer and row
 * blocks inner, so that a token block's activations stay in L1 while the chunk's weights
 * stream past them from L2. (Rows outer, as the AVX2 kernel, streams the activations from L2
 * once per row block instead: 64 bytes per S pairs, the bound at S = 2 (1:8, 1:16); tokens
 * outer over all rows streams the weights from L3 when they outgrow L2.) */
static void forward(const block_fn *blocks, const block_fn *pairs, size_t nt_max, size_t nt_one,
                    float *y, const uint8_t *xq, size_t ldq, const float *sx, size_t tokens,
                    const nmf_q8_weights *w, const float *bias, nmf_activation act, size_t rb0,
                    size_t rb1) {
    const size_t out = w->out, W = w->windows, S = w->steps, per_block = W * S * 64;
    const size_t block_bytes = per_block * (w->pos ? 2 : 1);
    const size_t chunk = block_bytes < Q8_CHUNK_BYTES ? Q8_CHUNK_BYTES / block_bytes : 1;
    for (size_t c0 = rb0; c0 < rb1; c0 += chunk) {
    const size_t c1 = c0 + chunk < rb1 ? c0 + chunk : rb1;
    for (size_t t0 = 0, nt; t0 < tokens; t0 += nt) {
        /* blocks of nt_max tokens (pairs[nt_max] runs them), the last nt_one or fewer as one */
        nt = tokens - t0 <= nt_one ? tokens - t0 : nt_max;
        for (size_t rb = c0; rb < c1;) {
            const int two = nt <= nt_max && pairs[nt] && rb + 1 < c1;
            const size_t o0 = rb * 16, span = two ? 32 : 16;
            const size_t rows = out - o0 < span ? out - o0 : span;
            const int8_t *q = w->q + rb * per_block;
            const uint8_t *pos = w->pos ? w->pos + rb * per_block : NULL;
            (two ? pairs[nt] : blocks[nt])(y + t0 * out + o0, out, xq + t0 * ldq, ldq, sx + t0,
                                           q, pos, W, S, w->scale + o0, w->off + o0,
                                           bias ? bias + o0 : NULL, rows, act);
            rb += two ? 2 : 1;
        }
    }
    }
}

void nmf_q8_forward_avx512(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                           size_t tokens, const nmf_q8_weights *w, const float *bias,
                           nmf_activation act, size_t rb0, size_t rb1) {
    forward(nm_blocks, nm_pairs, Q8_NT, Q8_NT, y, xq, ldq, sx, tokens, w, bias, act, rb0, rb1);
}

void nmf_q8_forward_dense_avx512(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                                 size_t tokens, const nmf_q8_weights *w, const float *bias,
                                 nmf_activation act, size_t rb0, size_t rb1) {
    forward(dense_blocks, dense_pairs, Q8_DENSE_NT, Q8_DENSE_ONE, y, xq, ldq, sx, tokens, w, bias,
            act, rb0, rb1);
}

/* nmf_q8_quantize_tokens, 16 inputs at a time: the same float operations (|x| max, x * inv,
 * round to nearest even by vcvtps2dq), so the bytes are those of the portable version; the
 * tail of a row goes through it.
 * - The largest magnitude is an integer max of the bit patterns with the sign cleared: for
 *   non-negative floats integer order is float order, and every NaN lies above +inf (0x7f800000),
 *   so one vpmaxud per 16 inputs finds the maximum and flags NaN and inf (no compare).
 * - No clamp to [-127, 127]: |x| <= amax and inv = fl(127 / amax) give |fl(x inv)| <=
 *   fl(127 (1 + 2^-24)^2), i.e. 127 or the float above it, which rounds to 127 as the clamped
 *   value does (the portable version's clamp changes no result). */
size_t nmf_q8_quantize_tokens_avx512(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                     size_t ldx, size_t in, size_t t0, size_t t1) {
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff), bias64 = _mm512_set1_epi8(-128);
    const __m128i bias = _mm_set1_epi8(-128);
    /* after the two packs, dword j of 128-bit lane l holds inputs 16 j + 4 l .. + 3 */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const size_t body = in / 16 * 16;
    size_t bad = 0;
    for (size_t t = t0; t < t1; t++) {
        const float *xt = x + t * ldx; // (in)
        uint8_t *qt = xq + t * ldq;    // (ldq)
        /* 4 running maxima: one would wait on the max's latency every 16 inputs */
        __m512i amax[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(),
                           _mm512_setzero_si512(), _mm512_setzero_si512()};
        size_t i = 0;
        for (; i + 64 <= body; i += 64)
            for (int k = 0; k < 4; k++)
                amax[k] = _mm512_max_epu32(
                    amax[k], _mm512_and_si512(_mm512_loadu_si512(xt + i + 16 * k), magnitude));
        for (; i < body; i += 16)
            amax[0] = _mm512_max_epu32(amax[0],
                                       _mm512_and_si512(_mm512_loadu_si512(xt + i), magnitude));
        uint32_t bits = _mm512_reduce_max_epu32(_mm512_max_epu32(
            _mm512_max_epu32(amax[0], amax[1]), _mm512_max_epu32(amax[2], amax[3])));
        float m;
        memcpy(&m, &bits, sizeof m);
        int has_nan = bits > 0x7f800000u;
        nmf_q8_amax(xt, body, in, &m, &has_nan);
        if (has_nan || !isfinite(m)) { /* the portable version zeroes the row and counts it */
            bad += nmf_q8_quantize_tokens(xq, ldq, sx, x, ldx, in, t, t + 1);
            continue;
        }
        float inv;
        sx[t] = nmf_q8_scale(m, &inv);
        const __m512 vinv = _mm512_set1_ps(inv);
        for (i = 0; i + 64 <= body; i += 64) {
            __m512i qi[4];
            for (int k = 0; k < 4; k++)
                qi[k] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xt + i + 16 * k), vinv));
            /* int32 -> int8 (no saturation: |q| <= 127) in 128-bit lane order, restored by
             * one permute, then + 128 */
            const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(qi[0], qi[1]),
                                                 _mm512_packs_epi32(qi[2], qi[3]));
            _mm512_storeu_si512(qt + i, _mm512_xor_si512(_mm512_permutexvar_epi32(order, b), bias64));
        }
        for (; i < body; i += 16) {
            const __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xt + i), vinv));
            /* int32 -> int8 (|q| <= 127: truncation is exact), then + 128 */
            _mm_storeu_si128((__m128i *)(qt + i), _mm_xor_si128(_mm512_cvtepi32_epi8(qi), bias));
        }
        for (i = body; i < in; i++) qt[i] = (uint8_t)(nmf_q8_round(xt[i] * inv) + 128);
        for (i = in; i < ldq; i++) qt[i] = 128;
    }
    return bad;
}
