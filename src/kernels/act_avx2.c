/* Elementwise activations, AVX2 + FMA: exact GELU (kernels/gelu_avx2.h, the rational erf of
 * act_avx512.c), tanh GELU (HF gelu_new) and SiLU on the vector exp. */
#include <immintrin.h>

#include "kernels/gelu_avx2.h"
#include "kernels/ops_internal.h"
#include "kernels/simd_exp.h"

/* x sigmoid(s) = x / (1 + exp(-s)): exp's clamping keeps it finite (x / ~1e38 -> 0 for s << 0,
 * x for s >> 0) */
static inline __m256 x_sigmoid8(__m256 x, __m256 s) {
    __m256 e = nmf_exp256(_mm256_sub_ps(_mm256_setzero_ps(), s));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
/* gelu_new: 0.5 (1 + tanh(u)) = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) */
static inline __m256 gelu_tanh8(__m256 x) {
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(x2, _mm256_set1_ps(0.044715f)), x, x);
    return x_sigmoid8(x, _mm256_mul_ps(inner, _mm256_set1_ps(2.0f * 0.7978845608028654f)));
}
static inline __m256 silu8(__m256 x) { return x_sigmoid8(x, x); }

/* y[i] = f(x[i]) 8 at a time, the ragged tail through a zero-padded vector */
#define ELEMENTWISE_AVX2(name, f)                                                              \
    void name(float *y, const float *x, size_t n) {                                           \
        size_t i = 0;                                                                          \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));        \
        if (i < n) {                                                                           \
            float tx[8] = {0}, ty[8];                                                          \
            for (size_t j = 0; j < n - i; j++) tx[j] = x[i + j];                               \
            _mm256_storeu_ps(ty, f(_mm256_loadu_ps(tx)));                                      \
            for (size_t j = 0; j < n - i; j++) y[i + j] = ty[j];                               \
        }                                                                                      \
    }
ELEMENTWISE_AVX2(nmf_gelu_avx2, nmf_gelu8_avx2)
ELEMENTWISE_AVX2(nmf_gelu_tanh_avx2, gelu_tanh8)
ELEMENTWISE_AVX2(nmf_silu_avx2, silu8)
