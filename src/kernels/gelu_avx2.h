/* GELU of 8 floats, AVX2 + FMA (the rational erf of kernels/erf_poly.h): for files compiled
 * for AVX2 only (act_avx2.c, and spmm_tv_avx2.c, which applies it in registers on the way
 * out of a product). */
#ifndef NMF_KERNELS_GELU_AVX2_H
#define NMF_KERNELS_GELU_AVX2_H

#include <immintrin.h>

#include "kernels/erf_poly.h"
#include "kernels/gelu_q8.h"

static inline __m256 nmf_gelu8_avx2(__m256 x) {
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

/* The int8 layers' GELU (gelu_q8.h: the same operations, the same bits). */
static inline __m256 nmf_gelu8_q8_avx2(__m256 x) {
    const __m256 bound = _mm256_set1_ps(NMF_GELU_Q8_CLAMP);
    const __m256 c = _mm256_min_ps(_mm256_max_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), bound)), bound);
    const __m256 u = _mm256_mul_ps(c, c);
    __m256 p;
    NMF_GELU_Q8_POLY(p, u, _mm256_set1_ps, _mm256_fmadd_ps);
    const __m256 phi = _mm256_fmadd_ps(c, p, _mm256_set1_ps(0.5f));
    return _mm256_mul_ps(x, _mm256_max_ps(phi, _mm256_setzero_ps())); /* NaN phi: 0 */
}

#endif
