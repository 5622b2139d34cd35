/* int8 forward, AVX2 (no VNNI needed), geometry NMF_Q8_GEOM_AVX2: layout and arithmetic in
 * spmm_q8.h.
 *
 * N:M (nmf_q8_forward_avx2): for a block of 8 rows and up to NMF_Q8_TOKENS tokens: per window,
 * each token's 16 activation bytes are broadcast to both lanes once; per step, the 16 positions
 * become a vpshufb control (zero-extended to int16 lanes, high byte 0x80: the picked byte lands
 * zero-extended in its int16 lane) and the 16 weights are sign-extended to int16; then per
 * token one vpshufb, one vpmaddwd and one vpaddd add 16 products into the 8 rows' int32 sums.
 * Rows outer, tokens inner: a block's weights stay in L1 for all token blocks; a 1-token
 * product reads every weight once (2 bytes per slot).
 *
 * Dense (nmf_q8_forward_dense_avx2, the same layout: step c of a block holds columns 2c, 2c + 1
 * of its 8 rows, 16 bytes, positions implied): the activations come as int16 q_x (its
 * quantiser, nmf_q8_quantize_tokens16_avx2: no + 128, so no offset to subtract), so a token's
 * two columns of a step are one int32, broadcast by a load (vpbroadcastd m32: no ALU work);
 * per step the 16 weights of each of 2 row blocks are sign-extended once (vpmovsxbw m128) and
 * per token and row block one vpmaddwd and one vpaddd add 16 products: 2 instructions per 16
 * multiply-adds instead of the shuffle kernel's 3.
 *
 * The epilogue turns each token's sums into floats (offset, scales, bias, GELU) in registers
 * and stores 8 floats. */
#include <immintrin.h>

#include "kernels/gelu_avx2.h"
#include "kernels/spmm_q8.h"

#define AI __attribute__((always_inline)) inline
#define Q8_DENSE_NT 6 /* dense: tokens per block (12 sums + 2 weight vectors + 2: all 16 ymm) */
#define Q8_DENSE_CHUNK_BYTES (256 * 1024) /* dense: weights of the row blocks run together */
#define STEP_RUN 64 /* dense: steps per inner loop (a nested loop keeps GCC 12 from copying sums) */

static __m256i lane_mask(size_t count) { /* lanes [0, count) set, count <= 8 */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The epilogue of 8 rows for NT tokens: y[u * out + r] = act(fmaf(float(sum[u * stride][r]),
 * sx[u] * scale[r], bias[r])) for r < rows, sum the exact sum_j q_x q_w (offset removed);
 * scale padded to 8 rows (0), bias `rows` floats or NULL. */
static AI void epilogue(float *y, size_t out, const __m256i *sum, int stride, const float *sx,
                        const float *scale, const float *bias, size_t rows, nmf_activation act,
                        const int NT) {
    const __m256i rm = lane_mask(rows);
    const __m256 sw = _mm256_loadu_ps(scale);
    const __m256 b = bias ? _mm256_maskload_ps(bias, rm) : _mm256_setzero_ps();
    for (int u = 0; u < NT; u++) {
        const __m256 f = _mm256_cvtepi32_ps(sum[u * stride]);
        __m256 r = _mm256_fmadd_ps(f, _mm256_mul_ps(_mm256_set1_ps(sx[u]), sw), b);
        if (act == NMF_ACT_GELU) r = nmf_gelu8_q8_avx2(r);
        if (rows == 8) _mm256_storeu_ps(y + (size_t)u * out, r);
        else _mm256_maskstore_ps(y + (size_t)u * out, rm, r);
    }
}

/* One step for NT tokens: the 16 weights at q, the shuffle control ctl. */
static AI void step(__m256i *acc, const __m256i *xw, const int8_t *q, __m256i ctl, const int NT) {
    const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)q));
    for (int u = 0; u < NT; u++)
        acc[u] = _mm256_add_epi32(acc[u], _mm256_madd_epi16(_mm256_shuffle_epi8(xw[u], ctl), wv));
}

/* NT tokens (xq rows ldq apart) x the 8 rows of one block (q, pos: its W*S steps). */
static AI void block(float *y, size_t out, const uint8_t *xq, size_t ldq, const float *sx,
                     const int8_t *q, const uint8_t *pos, size_t W, size_t S,
                     const float *scale, const int32_t *off, const float *bias, size_t rows,
                     nmf_activation act, const int NT) {
    __m256i acc[NMF_Q8_TOKENS];
    for (int u = 0; u < NT; u++) acc[u] = _mm256_setzero_si256();
    const __m256i high = _mm256_set1_epi16(INT16_MIN); /* control byte 0x80: zero */
    /* no positions (a dense layer): slot h of step s picks byte 2 s + h */
    const __m256i implied = _mm256_or_si256(high, _mm256_setr_epi16(0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                                                     0, 1, 0, 1, 0, 1));
    const __m256i two = _mm256_set1_epi16(2);
    for (size_t v = 0; v < W; v++) {
        __m256i xw[NMF_Q8_TOKENS];
        for (int u = 0; u < NT; u++)
            xw[u] = _mm256_broadcastsi128_si256(
                _mm_loadu_si128((const __m128i *)(xq + (size_t)u * ldq + v * 16)));
        if (pos) {
            for (size_t s = 0; s < S; s++, q += 16, pos += 16)
                step(acc, xw, q, _mm256_or_si256(_mm256_cvtepu8_epi16(
                                                     _mm_loadu_si128((const __m128i *)pos)),
                                                 high), NT);
        } else { /* the control of step s + 1: that of step s + 2 (no shuffle-port work) */
            __m256i ctl = implied;
            for (size_t s = 0; s < S; s++, q += 16, ctl = _mm256_add_epi16(ctl, two))
                step(acc, xw, q, ctl, NT);
        }
    }
    const __m256i o = _mm256_loadu_si256((const __m256i *)off); /* padded to 8 rows (0) */
    for (int u = 0; u < NT; u++) acc[u] = _mm256_sub_epi32(acc[u], o);
    epilogue(y, out, acc, 1, sx, scale, bias, rows, act, NT);
}

typedef void (*block_fn)(float *, size_t, const uint8_t *, size_t, const float *, const int8_t *,
                         const uint8_t *, size_t, size_t, const float *, const int32_t *,
                         const float *, size_t, nmf_activation);
#define DEF_BLOCK(NT)                                                                          \
    static void block_##NT(float *y, size_t out, const uint8_t *xq, size_t ldq, const float *sx, \
                           const int8_t *q, const uint8_t *pos, size_t W, size_t S,             \
                           const float *scale, const int32_t *off, const float *bias,           \
                           size_t rows, nmf_activation act) {                                   \
        block(y, out, xq, ldq, sx, q, pos, W, S, scale, off, bias, rows, act, NT);             \
    }
DEF_BLOCK(1) DEF_BLOCK(2) DEF_BLOCK(3) DEF_BLOCK(4) DEF_BLOCK(5) DEF_BLOCK(6)
static const block_fn blocks[NMF_Q8_TOKENS + 1] = {NULL,    block_1, block_2, block_3,
                                                   block_4, block_5, block_6};

void nmf_q8_forward_avx2(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                         size_t tokens, const nmf_q8_weights *w, const float *bias,
                         nmf_activation act, size_t rb0, size_t rb1) {
    const size_t out = w->out, W = w->windows, S = w->steps, per_block = W * S * 16;
    for (size_t rb = rb0; rb < rb1; rb++) {
        const size_t o0 = rb * 8;
        const size_t rows = out - o0 < 8 ? out - o0 : 8;
        for (size_t t0 = 0; t0 < tokens; t0 += NMF_Q8_TOKENS) {
            const size_t nt = tokens - t0 < NMF_Q8_TOKENS ? tokens - t0 : NMF_Q8_TOKENS;
            blocks[nt](y + t0 * out + o0, out, xq + t0 * ldq, ldq, sx + t0, w->q + rb * per_block,
                       w->pos ? w->pos + rb * per_block : NULL, W, S, w->scale + o0, w->off + o0,
                       bias ? bias + o0 : NULL, rows, act);
        }
    }
}

/* Dense: NT tokens (int16 q_x, rows ldx apart) x RB row blocks of 8 (RB = 1, 2; block b at
 * q + b * per_block: `steps` steps of 16 bytes, 8 rows x columns 2c, 2c + 1), `rows` <= 8 RB
 * rows. Per step: RB weight vectors, then per token one broadcast load and RB vpmaddwd +
 * vpaddd (the sums' only chain is the 1-cycle add: the vpmaddwd are independent). */
static AI void block_dense(float *y, size_t out, const int16_t *x, size_t ldx, const float *sx,
                           const int8_t *q, size_t per_block, size_t steps, const float *scale,
                           const float *bias, size_t rows, nmf_activation act, const int NT,
                           const int RB) {
    __m256i acc[12]; /* NT RB */
    for (int i = 0; i < NT * RB; i++) acc[i] = _mm256_setzero_si256();
    for (size_t c0 = 0; c0 < steps; c0 += STEP_RUN) {
        const size_t c1 = c0 + STEP_RUN < steps ? c0 + STEP_RUN : steps;
        for (size_t c = c0; c < c1; c++) {
            __m256i wv[2];
            for (int b = 0; b < RB; b++)
                wv[b] = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128((const __m128i *)(q + (size_t)b * per_block + 16 * c)));
            for (int u = 0; u < NT; u++) {
                int32_t pair; /* token u's columns 2c, 2c + 1 */
                __builtin_memcpy(&pair, x + (size_t)u * ldx + 2 * c, 4);
                const __m256i xb = _mm256_set1_epi32(pair);
                for (int b = 0; b < RB; b++)
                    acc[u * RB + b] =
                        _mm256_add_epi32(acc[u * RB + b], _mm256_madd_epi16(wv[b], xb));
            }
        }
    }
    for (int b = 0; b < RB; b++) {
        const size_t r0 = 8 * (size_t)b;
        epilogue(y + r0, out, acc + b, RB, sx, scale + r0, bias ? bias + r0 : NULL,
                 rows - r0 < 8 ? rows - r0 : 8, act, NT);
    }
}

typedef void (*dense_fn)(float *, size_t, const int16_t *, size_t, const float *, const int8_t *,
                         size_t, size_t, const float *, const float *, size_t, nmf_activation);
#define DEF_DENSE(RB, NT)                                                                       \
    static void dense_##RB##_##NT(float *y, size_t out, const int16_t *x, size_t ldx,            \
                                  const float *sx, const int8_t *q, size_t per_block,            \
                                  size_t steps, const float *scale, const float *bias,           \
                                  size_t rows, nmf_activation act) {                             \
        block_dense(y, out, x, ldx, sx, q, per_block, steps, scale, bias, rows, act, NT, RB);   \
    }
#define DEF_DENSE_NT(RB)                                                                        \
    DEF_DENSE(RB, 1) DEF_DENSE(RB, 2) DEF_DENSE(RB, 3) DEF_DENSE(RB, 4) DEF_DENSE(RB, 5)        \
    DEF_DENSE(RB, 6)
DEF_DENSE_NT(1) DEF_DENSE_NT(2)
_Static_assert(Q8_DENSE_NT <= 6, "dense_blocks");
static const dense_fn dense_blocks[2][7] = {
    {NULL, dense_1_1, dense_1_2, dense_1_3, dense_1_4, dense_1_5, dense_1_6},
    {NULL, dense_2_1, dense_2_2, dense_2_3, dense_2_4, dense_2_5, dense_2_6}};

/* Row blocks [rb0, rb1) in pairs, tokens in blocks of Q8_DENSE_NT: as the AVX-512 kernels, row
 * blocks in chunks whose weights stay in L2 (Q8_DENSE_CHUNK_BYTES) and within a chunk token
 * blocks outer, row pairs inner, so that a token block's activations stay in L1 while the
 * chunk's weights stream past them. Measured (Xeon model 207 at NMF_ISA=avx2, one thread,
 * 768x768 ... 768x3072 at 128 and 197 tokens): chunks of 256 KB, 1 MB and rows outer the same
 * within noise (the kernel is bound by its vector ports, not by L2); 6 tokens per block 1-2 %
 * faster than 5 and 3-4 % than 4; the nested step loop (STEP_RUN) 1-2 % at 128 tokens, 8 % at
 * one (GCC 12 otherwise copies the 8-12 sums between registers every step). */
void nmf_q8_forward_dense_avx2(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                               size_t tokens, const nmf_q8_weights *w, const float *bias,
                               nmf_activation act, size_t rb0, size_t rb1) {
    const int16_t *x = (const int16_t *)(const void *)xq; /* nmf_q8_quantize_tokens16_avx2 */
    const size_t ldx = ldq / 2, out = w->out, steps = w->windows * w->steps;
    const size_t per_block = steps * 16;
    size_t chunk = Q8_DENSE_CHUNK_BYTES / per_block / 2 * 2; /* whole pairs */
    chunk = chunk ? chunk : 2;
    for (size_t c0 = rb0; c0 < rb1; c0 += chunk) {
        const size_t c1 = c0 + chunk < rb1 ? c0 + chunk : rb1;
        for (size_t t0 = 0; t0 < tokens; t0 += Q8_DENSE_NT) {
            const size_t nt = tokens - t0 < Q8_DENSE_NT ? tokens - t0 : Q8_DENSE_NT;
            for (size_t rb = c0; rb < c1; rb += 2) {
                const size_t o0 = rb * 8, rows = out - o0 < 16 ? out - o0 : 16;
                const int pair = rb + 1 < c1;
                dense_blocks[pair][nt](y + t0 * out + o0, out, x + t0 * ldx, ldx, sx + t0,
                                       w->q + rb * per_block, per_block, steps, w->scale + o0,
                                       bias ? bias + o0 : NULL, pair ? rows : rows < 8 ? rows : 8,
                                       act);
            }
        }
    }
}

/* nmf_q8_quantize_tokens, 32 inputs at a time: the same float operations (|x| max, x * inv,
 * clamp, round to nearest even by vcvtps2dq), so the values are those of the portable version;
 * the tail of a row goes through its rounding. Stored as u8 q + 128 (xq rows ldq bytes), or,
 * `wide`, as int16 q (rows ldq bytes = ldq / 2 values; padding 0; a bad token's row 0). */
static AI size_t quantize(void *xq, size_t ldq, float *sx, const float *x, size_t ldx, size_t in,
                          size_t t0, size_t t1, const int wide) {
    const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256 hi = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), bias = _mm256_set1_epi8(-128);
    const size_t body = in / 32 * 32, width = wide ? ldq / 2 : ldq;
    size_t bad = 0;
    for (size_t t = t0; t < t1; t++) {
        const float *xt = x + t * ldx;                          // (in)
        uint8_t *qt = (uint8_t *)xq + t * ldq;                  // (ldq)      u8
        int16_t *qw = (int16_t *)(void *)((char *)xq + t * ldq); // (ldq / 2) wide
        __m256 amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
        for (size_t i = 0; i < body; i += 8) {
            const __m256 v = _mm256_loadu_ps(xt + i);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
        float lanes[8], m = 0.0f;
        _mm256_storeu_ps(lanes, amax);
        for (int l = 0; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
        int has_nan = _mm256_movemask_ps(nan) != 0;
        nmf_q8_amax(xt, body, in, &m, &has_nan);
        if (has_nan || !isfinite(m)) { /* as the portable version: the row zero, counted */
            if (wide) {
                for (size_t i = 0; i < width; i++) qw[i] = 0;
                sx[t] = 0.0f;
                bad++;
            } else {
                bad += nmf_q8_quantize_tokens(xq, ldq, sx, x, ldx, in, t, t + 1);
            }
            continue;
        }
        float inv;
        sx[t] = nmf_q8_scale(m, &inv);
        const __m256 vinv = _mm256_set1_ps(inv);
        for (size_t i = 0; i < body; i += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xt + i + 8 * k), vinv);
                q[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
            }
            if (wide) { /* int32 -> int16 in 128-bit lane order, restored by one permute */
                for (int k = 0; k < 2; k++)
                    _mm256_storeu_si256((__m256i *)(qw + i + 16 * k),
                                        _mm256_permute4x64_epi64(
                                            _mm256_packs_epi32(q[2 * k], q[2 * k + 1]), 0xD8));
                continue;
            }
            /* int32 -> int8 (no saturation: |q| <= 127), lane order restored, then + 128 */
            const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
                                                 _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(qt + i),
                                _mm256_xor_si256(_mm256_permutevar8x32_epi32(b, order), bias));
        }
        for (size_t i = body; i < in; i++) {
            const int32_t v = nmf_q8_round(xt[i] * inv);
            if (wide) qw[i] = (int16_t)v;
            else qt[i] = (uint8_t)(v + 128);
        }
        for (size_t i = in; i < width; i++) {
            if (wide) qw[i] = 0;
            else qt[i] = 128;
        }
    }
    return bad;
}

size_t nmf_q8_quantize_tokens_avx2(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                   size_t ldx, size_t in, size_t t0, size_t t1) {
    return quantize(xq, ldq, sx, x, ldx, in, t0, t1, 0);
}

size_t nmf_q8_quantize_tokens16_avx2(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                     size_t ldx, size_t in, size_t t0, size_t t1) {
    return quantize(xq, ldq, sx, x, ldx, in, t0, t1, 1);
}
