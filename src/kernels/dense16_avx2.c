/* 16-bit dense products, AVX2 + FMA + F16C (dense16.h). Per block of 4 rows and pair of tokens:
 * per 8 columns, each token's 8 inputs are loaded once and each row's 8 weights are widened
 * once (bf16: zero-extend to 32 bits and shift left 16, which is exact; f16: vcvtph2ps), then
 * 8 FMAs into 4 x 2 accumulators; a ragged column tail goes through a zero-padded copy. */
#include <immintrin.h>
#include <string.h>

#include "kernels/dense16.h"

#define AI __attribute__((always_inline)) inline

static AI __m256 widen8(const uint16_t *p, const int f16) {
    const __m128i h = _mm_loadu_si128((const __m128i *)p);
    return f16 ? _mm256_cvtph_ps(h)
               : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static AI float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* rows [o, o + nr) (nr <= 4) x NT tokens (1 or 2) */
static AI void block(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w,
                     size_t in, size_t o, size_t nr, const int NT, const int f16) {
    const uint16_t *wr[NMF_DENSE16_ROWS];
    for (size_t r = 0; r < NMF_DENSE16_ROWS; r++) /* missing rows read row o, never stored */
        wr[r] = w + (o + (r < nr ? r : 0)) * in;
    __m256 acc[NMF_DENSE16_ROWS][2];
    for (int r = 0; r < NMF_DENSE16_ROWS; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= in; i += 8) {
        __m256 xv[2];
        for (int u = 0; u < NT; u++) xv[u] = _mm256_loadu_ps(x + u * ldx + i);
        for (int r = 0; r < NMF_DENSE16_ROWS; r++) {
            const __m256 wv = widen8(wr[r] + i, f16);
            for (int u = 0; u < NT; u++) acc[r][u] = _mm256_fmadd_ps(wv, xv[u], acc[r][u]);
        }
    }
    if (i < in) { /* the last in % 8 columns, zero-padded */
        const size_t left = in - i;
        float xt[2][8] = {{0}};
        for (int u = 0; u < NT; u++) memcpy(xt[u], x + u * ldx + i, left * sizeof(float));
        for (int r = 0; r < NMF_DENSE16_ROWS; r++) {
            uint16_t wt[8] = {0};
            memcpy(wt, wr[r] + i, left * sizeof(uint16_t));
            const __m256 wv = widen8(wt, f16);
            for (int u = 0; u < NT; u++)
                acc[r][u] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xt[u]), acc[r][u]);
        }
    }
    for (size_t r = 0; r < nr; r++)
        for (int u = 0; u < NT; u++) y[(size_t)u * ldy + o + r] = hsum(acc[r][u]);
}

static AI void rows(float *y, size_t ldy, const float *x, size_t ldx, const nmf_dense16 *w,
                    size_t tokens, size_t r0, size_t r1, const int f16) {
    for (size_t o = r0; o < r1; o += NMF_DENSE16_ROWS) {
        const size_t nr = r1 - o < NMF_DENSE16_ROWS ? r1 - o : NMF_DENSE16_ROWS;
        size_t t = 0;
        for (; t + 2 <= tokens; t += 2)
            block(y + t * ldy, ldy, x + t * ldx, ldx, w->w, w->in, o, nr, 2, f16);
        if (t < tokens) block(y + t * ldy, ldy, x + t * ldx, ldx, w->w, w->in, o, nr, 1, f16);
    }
}

void nmf_dense16_rows_avx2(float *y, size_t ldy, const float *x, size_t ldx,
                           const nmf_dense16 *w, size_t tokens, size_t r0, size_t r1) {
    if (w->dtype == NMF_DTYPE_F16) rows(y, ldy, x, ldx, w, tokens, r0, r1, 1);
    else rows(y, ldy, x, ldx, w, tokens, r0, r1, 0);
}

/* n values from src to dst */
static AI void widen_run(float *dst, const uint16_t *src, size_t n, const int f16) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, widen8(src + i, f16));
    if (i < n) { /* exact either way: a zero-padded copy of the tail */
        uint16_t t[8] = {0};
        float f[8];
        memcpy(t, src + i, (n - i) * sizeof *t);
        _mm256_storeu_ps(f, widen8(t, f16));
        memcpy(dst + i, f, (n - i) * sizeof *f);
    }
}

void nmf_dense16_widen_avx2(float *dst, const nmf_dense16 *w, size_t r0, size_t r1, size_t c0,
                            size_t c1) {
    const size_t n = c1 - c0;
    if (c0 == 0 && c1 == w->in) { /* whole rows: one run */
        if (w->dtype == NMF_DTYPE_F16) widen_run(dst, w->w + r0 * n, (r1 - r0) * n, 1);
        else widen_run(dst, w->w + r0 * n, (r1 - r0) * n, 0);
        return;
    }
    for (size_t o = r0; o < r1; o++, dst += n) {
        if (w->dtype == NMF_DTYPE_F16) widen_run(dst, w->w + o * w->in + c0, n, 1);
        else widen_run(dst, w->w + o * w->in + c0, n, 0);
    }
}
