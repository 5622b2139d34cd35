/* AVX2 fixed-point products on panels (fx_gemm.h): per step, one broadcast of a token's pair of
 * activations and one vpmaddwd per panel of 8 rows. Register tiles: 4 tokens x 16 rows in int32
 * lanes (FX_ACC32), 2 tokens x 8 rows in int64 (FX_ACC64_PAIRS); FX_ACC64 runs the scalar
 * kernel. */
#include <immintrin.h>
#include <string.h>

#include "sta/fx_gemm.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* the pair (a[2kk], a[2kk+1]) in every int32 lane */
ALWAYS_INLINE __m256i pair(const int16_t *a) {
    int32_t v;
    memcpy(&v, a, sizeof v);
    return _mm256_set1_epi32(v);
}

/* 8 int64 outputs (lo: rows 0-3, hi: rows 4-7) to c[0..n) */
ALWAYS_INLINE void store8(int64_t *c, __m256i lo, __m256i hi, int n) {
    if (n == FX_PANEL) {
        _mm256_storeu_si256((__m256i *)c, lo);
        _mm256_storeu_si256((__m256i *)(c + 4), hi);
    } else {
        int64_t t[FX_PANEL];
        _mm256_storeu_si256((__m256i *)t, lo);
        _mm256_storeu_si256((__m256i *)(t + 4), hi);
        memcpy(c, t, (size_t)n * sizeof *c);
    }
}

/* tb tokens x pb panels (n: valid rows of the last panel), int32 lanes */
ALWAYS_INLINE void tile32(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P,
                          size_t pstride, int K2, int tb, int pb, int n_last) {
    __m256i acc[4][2];
    for (int i = 0; i < tb; i++)
        for (int j = 0; j < pb; j++) acc[i][j] = _mm256_setzero_si256();
    for (int kk = 0; kk < K2; kk++) {
        __m256i w[2];
        for (int j = 0; j < pb; j++)
            w[j] = _mm256_loadu_si256((const __m256i *)(P + (size_t)j * pstride + (size_t)kk * 2 * FX_PANEL));
        for (int i = 0; i < tb; i++) {
            const __m256i a = pair(A + (size_t)i * lda + 2 * (size_t)kk);
            for (int j = 0; j < pb; j++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a, w[j]));
        }
    }
    for (int i = 0; i < tb; i++)
        for (int j = 0; j < pb; j++)
            store8(C + (size_t)i * ldc + (size_t)j * FX_PANEL,
                   _mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc[i][j])),
                   _mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc[i][j], 1)),
                   j == pb - 1 ? n_last : FX_PANEL);
}

/* tb tokens x 1 panel, int64 lanes (pair sums widened every step) */
ALWAYS_INLINE void tile64(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P,
                          int K2, int tb, int n) {
    __m256i lo[2], hi[2];
    for (int i = 0; i < tb; i++) lo[i] = hi[i] = _mm256_setzero_si256();
    for (int kk = 0; kk < K2; kk++) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(P + (size_t)kk * 2 * FX_PANEL));
        for (int i = 0; i < tb; i++) {
            const __m256i m = _mm256_madd_epi16(pair(A + (size_t)i * lda + 2 * (size_t)kk), w);
            lo[i] = _mm256_add_epi64(lo[i], _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)));
            hi[i] = _mm256_add_epi64(hi[i], _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)));
        }
    }
    for (int i = 0; i < tb; i++) store8(C + (size_t)i * ldc, lo[i], hi[i], n);
}

static void gemm32(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P, int T,
                   int O, int K2) {
    const size_t pstride = (size_t)K2 * 2 * FX_PANEL;
    const int blocks = (O + FX_PANEL - 1) / FX_PANEL, n_last = O - (blocks - 1) * FX_PANEL;
    for (int t = 0; t < T; t += 4) {
        const int tb = T - t >= 4 ? 4 : T - t;
        for (int ob = 0; ob < blocks; ob += 2) {
            const int pb = blocks - ob >= 2 ? 2 : 1, nl = ob + pb == blocks ? n_last : FX_PANEL;
            int64_t *c = C + (size_t)t * ldc + (size_t)ob * FX_PANEL;
            const int16_t *a = A + (size_t)t * lda, *p = P + (size_t)ob * pstride;
            /* constant tile shapes, so that the accumulators stay in registers */
            if (pb == 2) {
                if (tb == 4) tile32(c, ldc, a, lda, p, pstride, K2, 4, 2, nl);
                else if (tb == 3) tile32(c, ldc, a, lda, p, pstride, K2, 3, 2, nl);
                else if (tb == 2) tile32(c, ldc, a, lda, p, pstride, K2, 2, 2, nl);
                else tile32(c, ldc, a, lda, p, pstride, K2, 1, 2, nl);
            } else {
                if (tb == 4) tile32(c, ldc, a, lda, p, pstride, K2, 4, 1, nl);
                else if (tb == 3) tile32(c, ldc, a, lda, p, pstride, K2, 3, 1, nl);
                else if (tb == 2) tile32(c, ldc, a, lda, p, pstride, K2, 2, 1, nl);
                else tile32(c, ldc, a, lda, p, pstride, K2, 1, 1, nl);
            }
        }
    }
}

static void gemm64(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P, int T,
                   int O, int K2) {
    const size_t pstride = (size_t)K2 * 2 * FX_PANEL;
    const int blocks = (O + FX_PANEL - 1) / FX_PANEL;
    for (int t = 0; t < T; t += 2)
        for (int ob = 0; ob < blocks; ob++) {
            const int n = ob == blocks - 1 ? O - ob * FX_PANEL : FX_PANEL;
            int64_t *c = C + (size_t)t * ldc + (size_t)ob * FX_PANEL;
            const int16_t *a = A + (size_t)t * lda, *p = P + (size_t)ob * pstride;
            if (T - t >= 2) tile64(c, ldc, a, lda, p, K2, 2, n);
            else tile64(c, ldc, a, lda, p, K2, 1, n);
        }
}

void fx_gemm_avx2(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P, int T,
                  int O, int K, fx_acc acc) {
    if (T <= 0 || O <= 0) return;
    const int K2 = (K + 1) / 2;
    if (acc == FX_ACC32) gemm32(C, ldc, A, lda, P, T, O, K2);
    else if (acc == FX_ACC64_PAIRS) gemm64(C, ldc, A, lda, P, T, O, K2);
    else fx_gemm_scalar(C, ldc, A, lda, P, T, O, K, acc);
}
