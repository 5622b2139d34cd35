/* Activations, AVX-512: GELU (kernels/gelu_avx512.h), gelu_new and SiLU. */
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
