/* GELU, AVX2 + FMA. Same rational erf as act_avx512.c (kernels/erf_poly.h). */
#include <immintrin.h>

#include "kernels/ops_internal.h"
#include "kernels/erf_poly.h"

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
