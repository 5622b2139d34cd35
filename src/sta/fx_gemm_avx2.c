/* AVX2 fixed-point products (fx_gemm.h): vpmaddwd on int16 rows, register tiles of 2 tokens x
 * 4 (int32) or 2 (int64) output rows, K in steps of 16, a ragged K finished in scalar code. */
#include <immintrin.h>

#include "sta/fx_gemm.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* the 8 int32 lanes of v summed in int64 */
ALWAYS_INLINE int64_t hsum32(__m256i v) {
    __m256i w = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                 _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}
ALWAYS_INLINE int64_t hsum64(__m256i v) {
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}
/* the 8 int32 lanes of v widened to int64 and added to acc */
ALWAYS_INLINE __m256i add_widened(__m256i acc, __m256i v) {
    acc = _mm256_add_epi64(acc, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
    return _mm256_add_epi64(acc, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
}
ALWAYS_INLINE int64_t tail(const int16_t *a, const int16_t *b, int k0, int K) {
    int64_t s = 0;
    for (int k = k0; k < K; k++) s += (int64_t)a[k] * b[k];
    return s;
}

/* tb x ob outputs, int32 lanes (FX_ACC32) */
ALWAYS_INLINE void tile32(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B,
                          size_t ldb, int tb, int ob, int K) {
    const int K16 = K & ~15;
    __m256i acc[2][4];
    for (int i = 0; i < tb; i++)
        for (int j = 0; j < ob; j++) acc[i][j] = _mm256_setzero_si256();
    for (int k = 0; k < K16; k += 16) {
        __m256i a[2];
        for (int i = 0; i < tb; i++) a[i] = _mm256_loadu_si256((const __m256i *)(A + (size_t)i * lda + k));
        for (int j = 0; j < ob; j++) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(B + (size_t)j * ldb + k));
            for (int i = 0; i < tb; i++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a[i], b));
        }
    }
    for (int i = 0; i < tb; i++)
        for (int j = 0; j < ob; j++)
            C[(size_t)i * ldc + (size_t)j] =
                hsum32(acc[i][j]) + tail(A + (size_t)i * lda, B + (size_t)j * ldb, K16, K);
}

/* tb x ob outputs, int64 lanes: vpmaddwd pair sums widened (pairs) or exact 32-bit products */
ALWAYS_INLINE void tile64(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B,
                          size_t ldb, int tb, int ob, int K, int pairs) {
    const int K16 = K & ~15;
    __m256i acc[2][2];
    for (int i = 0; i < tb; i++)
        for (int j = 0; j < ob; j++) acc[i][j] = _mm256_setzero_si256();
    for (int k = 0; k < K16; k += 16) {
        __m256i a[2];
        for (int i = 0; i < tb; i++) a[i] = _mm256_loadu_si256((const __m256i *)(A + (size_t)i * lda + k));
        for (int j = 0; j < ob; j++) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(B + (size_t)j * ldb + k));
            for (int i = 0; i < tb; i++) {
                if (pairs) {
                    acc[i][j] = add_widened(acc[i][j], _mm256_madd_epi16(a[i], b));
                } else {
                    const __m256i lo = _mm256_mullo_epi16(a[i], b), hi = _mm256_mulhi_epi16(a[i], b);
                    acc[i][j] = add_widened(acc[i][j], _mm256_unpacklo_epi16(lo, hi));
                    acc[i][j] = add_widened(acc[i][j], _mm256_unpackhi_epi16(lo, hi));
                }
            }
        }
    }
    for (int i = 0; i < tb; i++)
        for (int j = 0; j < ob; j++)
            C[(size_t)i * ldc + (size_t)j] =
                hsum64(acc[i][j]) + tail(A + (size_t)i * lda, B + (size_t)j * ldb, K16, K);
}

/* One output tile of tb (1|2) tokens and ob rows, the mode's widest register tile otherwise. */
static void tile(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B, size_t ldb,
                 int tb, int ob, int K, fx_acc acc) {
    if (acc == FX_ACC32) {
        if (tb == 2 && ob == 4) tile32(C, ldc, A, lda, B, ldb, 2, 4, K);
        else if (tb == 2) tile32(C, ldc, A, lda, B, ldb, 2, 1, K);
        else if (ob == 4) tile32(C, ldc, A, lda, B, ldb, 1, 4, K);
        else tile32(C, ldc, A, lda, B, ldb, 1, 1, K);
    } else {
        const int pairs = acc == FX_ACC64_PAIRS;
        if (tb == 2 && ob == 2) tile64(C, ldc, A, lda, B, ldb, 2, 2, K, pairs);
        else if (tb == 2) tile64(C, ldc, A, lda, B, ldb, 2, 1, K, pairs);
        else if (ob == 2) tile64(C, ldc, A, lda, B, ldb, 1, 2, K, pairs);
        else tile64(C, ldc, A, lda, B, ldb, 1, 1, K, pairs);
    }
}

void fx_gemm_avx2(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B,
                  size_t ldb, int T, int O, int K, fx_acc acc) {
    const int OB = acc == FX_ACC32 ? 4 : 2;
    for (int t = 0; t < T; t += 2) {
        const int tb = T - t >= 2 ? 2 : 1;
        int o = 0;
        for (; o + OB <= O; o += OB)
            tile(C + (size_t)t * ldc + (size_t)o, ldc, A + (size_t)t * lda, lda, B + (size_t)o * ldb,
                 ldb, tb, OB, K, acc);
        for (; o < O; o++)
            tile(C + (size_t)t * ldc + (size_t)o, ldc, A + (size_t)t * lda, lda, B + (size_t)o * ldb,
                 ldb, tb, 1, K, acc);
    }
}
