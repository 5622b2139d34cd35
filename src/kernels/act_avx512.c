/* GELU, AVX-512. erf by the rational approximation Eigen and XLA use for float
 * (x clamped to [-4, 4], where erf is +-1 in float; erf(x) ~ x P(x^2) / Q(x^2), P degree 6,
 * Q degree 4): |error| < 5e-7 over the whole line, about half the work of the
 * exp-based Abramowitz & Stegun 7.1.26 formula PyTorch's vectorised erf uses. */
#include <immintrin.h>

#include "kernels/ops_internal.h"
#include "kernels/gelu_avx512.h"
#include "kernels/simd_exp.h"

/* x sigmoid(s) = x / (1 + exp(-s)): exp's clamping keeps it finite (x / ~1e38 -> 0 for s << 0,
 * x for s >> 0) */
static inline __m512 x_sigmoid16(__m512 x, __m512 s) {
    __m512 e = nmf_exp512(_mm512_sub_ps(_mm512_setzero_ps(), s));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
/* gelu_new: 0.5 (1 + tanh(u)) = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) */
static inline __m512 gelu_tanh16(__m512 x) {
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(x2, _mm512_set1_ps(0.044715f)), x, x);
    return x_sigmoid16(x, _mm512_mul_ps(inner, _mm512_set1_ps(2.0f * 0.7978845608028654f)));
}
static inline __m512 silu16(__m512 x) { return x_sigmoid16(x, x); }

/* y[i] = f(x[i]) 16 at a time, the ragged tail under a mask */
#define ELEMENTWISE_AVX512(name, f)                                                            \
    void name(float *y, const float *x, size_t n) {                                           \
        size_t i = 0;                                                                          \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));      \
        if (i < n) {                                                                           \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                                    \
            _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));               \
        }                                                                                      \
    }
ELEMENTWISE_AVX512(nmf_gelu_avx512, nmf_gelu16_avx512)
ELEMENTWISE_AVX512(nmf_gelu_tanh_avx512, gelu_tanh16)
ELEMENTWISE_AVX512(nmf_silu_avx512, silu16)
