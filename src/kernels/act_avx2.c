/* GELU, AVX2 + FMA. Same rational erf as act_avx512.c (kernels/erf_poly.h). */
#include <immintrin.h>

#include "kernels/ops_internal.h"
#include "kernels/erf_poly.h"
#include "kernels/simd_exp.h"

static inline __m256 gelu8(__m256 x) {
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    z = _mm256_max_ps(_mm256_min_ps(z, _mm256_set1_ps(4.0f)), _mm256_set1_ps(-4.0f));
    __m256 z2 = _mm256_mul_ps(z, z);
    __m256 p = _mm256_set1_ps(NMF_ERF_A13);
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(NMF_ERF_A11));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(NMF_ERF_A9));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(NMF_ERF_A7));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(NMF_ERF_A5));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(NMF_ERF_A3));
    p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(NMF_ERF_A1));
    p = _mm256_mul_ps(p, z);
    __m256 q = _mm256_set1_ps(NMF_ERF_B8);
    q = _mm256_fmadd_ps(q, z2, _mm256_set1_ps(NMF_ERF_B6));
    q = _mm256_fmadd_ps(q, z2, _mm256_set1_ps(NMF_ERF_B4));
    q = _mm256_fmadd_ps(q, z2, _mm256_set1_ps(NMF_ERF_B2));
    q = _mm256_fmadd_ps(q, z2, _mm256_set1_ps(NMF_ERF_B0));
    __m256 erf = _mm256_div_ps(p, q);
    __m256 hx = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    return _mm256_fmadd_ps(hx, erf, hx); /* 0.5 x (1 + erf) */
}

void nmf_gelu_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tx[8] = {0}, ty[8];
        for (size_t j = 0; j < n - i; j++) tx[j] = x[i + j];
        _mm256_storeu_ps(ty, gelu8(_mm256_loadu_ps(tx)));
        for (size_t j = 0; j < n - i; j++) y[i + j] = ty[j];
    }
}

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

#define F gelu_tanh8
void nmf_gelu_tanh_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tx[8] = {0}, ty[8];
        for (size_t j = 0; j < n - i; j++) tx[j] = x[i + j];
        _mm256_storeu_ps(ty, F(_mm256_loadu_ps(tx)));
        for (size_t j = 0; j < n - i; j++) y[i + j] = ty[j];
    }
}
#undef F
#define F silu8
void nmf_silu_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tx[8] = {0}, ty[8];
        for (size_t j = 0; j < n - i; j++) tx[j] = x[i + j];
        _mm256_storeu_ps(ty, F(_mm256_loadu_ps(tx)));
        for (size_t j = 0; j < n - i; j++) y[i + j] = ty[j];
    }
}
#undef F
