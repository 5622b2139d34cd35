/* int8 forward, AVX2 (no VNNI needed), geometry NMF_Q8_GEOM_AVX2: layout and arithmetic in
 * spmm_q8.h (N:M and dense layers alike).
 *
 * For a block of 8 rows and up to NMF_Q8_TOKENS tokens: per window, each token's 16 activation
 * bytes are broadcast to both lanes once; per step, the 16 positions become a vpshufb control
 * (zero-extended to int16 lanes, high byte 0x80: the picked byte lands zero-extended in its
 * int16 lane) and the 16 weights are sign-extended to int16; then per token one vpshufb, one
 * vpmaddwd and one vpaddd add 16 products into the 8 rows' int32 sums. The epilogue turns
 * each token's sums into floats (offset, scales, bias, GELU) in registers and stores 8 floats.
 * Rows outer, tokens inner: a block's weights stay in L1 for all token blocks; a 1-token
 * product reads every weight once (2 bytes per slot). */
#include <immintrin.h>

#include "kernels/gelu_avx2.h"
#include "kernels/spmm_q8.h"

#define AI __attribute__((always_inline)) inline

static __m256i lane_mask(size_t count) { /* lanes [0, count) set, count <= 8 */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
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
    /* scale, off: padded to 8 rows (0); bias: `rows` floats or NULL */
    const __m256i rm = lane_mask(rows);
    const __m256 sw = _mm256_loadu_ps(scale);
    const __m256i o = _mm256_loadu_si256((const __m256i *)off);
    const __m256 b = bias ? _mm256_maskload_ps(bias, rm) : _mm256_setzero_ps();
    for (int u = 0; u < NT; u++) {
        const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[u], o));
        __m256 r = _mm256_fmadd_ps(f, _mm256_mul_ps(_mm256_set1_ps(sx[u]), sw), b);
        if (act == NMF_ACT_GELU) r = nmf_gelu8_avx2(r);
        if (rows == 8) _mm256_storeu_ps(y + (size_t)u * out, r);
        else _mm256_maskstore_ps(y + (size_t)u * out, rm, r);
    }
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

/* nmf_q8_quantize_tokens, 32 inputs at a time: the same float operations (|x| max, x * inv,
 * clamp, round to nearest even by vcvtps2dq), so the bytes are those of the portable version;
 * the tail of a row goes through it. */
size_t nmf_q8_quantize_tokens_avx2(uint8_t *xq, size_t ldq, float *sx, const float *x,
                                   size_t ldx, size_t in, size_t t0, size_t t1) {
    const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256 hi = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), bias = _mm256_set1_epi8(-128);
    const size_t body = in / 32 * 32;
    size_t bad = 0;
    for (size_t t = t0; t < t1; t++) {
        const float *xt = x + t * ldx; // (in)
        uint8_t *qt = xq + t * ldq;    // (ldq)
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
        if (has_nan || !isfinite(m)) { /* the portable version zeroes the row and counts it */
            bad += nmf_q8_quantize_tokens(xq, ldq, sx, x, ldx, in, t, t + 1);
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
            /* int32 -> int8 (no saturation: |q| <= 127), lane order restored, then + 128 */
            const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
                                                 _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(qt + i),
                                _mm256_xor_si256(_mm256_permutevar8x32_epi32(b, order), bias));
        }
        for (size_t i = body; i < in; i++) qt[i] = (uint8_t)(nmf_q8_round(xt[i] * inv) + 128);
        for (size_t i = in; i < ldq; i++) qt[i] = 128;
    }
    return bad;
}
