/* GELU of 16 floats, AVX-512. erf by the rational approximation Eigen and XLA use for float
 * (x clamped to [-4, 4], where erf is +-1 in float; erf(x) ~ x P(x^2) / Q(x^2), P degree 6,
 * Q degree 4): |error| < 5e-7 over the whole line, about half the work of the exp-based
 * Abramowitz & Stegun 7.1.26 formula PyTorch's vectorised erf uses. For files compiled for
 * AVX-512 only (act_avx512.c, and spmm_tv_avx512.c, which applies it in registers on the way
 * out of a product). */
#ifndef NMF_KERNELS_GELU_AVX512_H
#define NMF_KERNELS_GELU_AVX512_H

#include <immintrin.h>

#include "kernels/erf_poly.h"
#include "kernels/gelu_q8.h"

static inline __m512 nmf_gelu16_avx512(__m512 x) {
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    z = _mm512_max_ps(_mm512_min_ps(z, _mm512_set1_ps(4.0f)), _mm512_set1_ps(-4.0f));
    __m512 z2 = _mm512_mul_ps(z, z);
    __m512 p = _mm512_set1_ps(NMF_ERF_A13);
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(NMF_ERF_A11));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(NMF_ERF_A9));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(NMF_ERF_A7));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(NMF_ERF_A5));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(NMF_ERF_A3));
    p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(NMF_ERF_A1));
    p = _mm512_mul_ps(p, z);
    __m512 q = _mm512_set1_ps(NMF_ERF_B8);
    q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(NMF_ERF_B6));
    q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(NMF_ERF_B4));
    q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(NMF_ERF_B2));
    q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(NMF_ERF_B0));
    __m512 erf = _mm512_div_ps(p, q);
    __m512 hx = _mm512_mul_ps(_mm512_set1_ps(0.5f), x);
    return _mm512_fmadd_ps(hx, erf, hx); /* 0.5 x (1 + erf) */
}

/* The int8 layers' GELU (gelu_q8.h: the same operations, the same bits); the clamp is one
 * vrangeps (smaller magnitude of x and the bound, x's sign). */
static inline __m512 nmf_gelu16_q8_avx512(__m512 x) {
    const __m512 c = _mm512_range_ps(x, _mm512_set1_ps(NMF_GELU_Q8_CLAMP), 0x02);
    const __m512 u = _mm512_mul_ps(c, c);
    __m512 p;
    NMF_GELU_Q8_POLY(p, u, _mm512_set1_ps, _mm512_fmadd_ps);
    const __m512 phi = _mm512_fmadd_ps(c, p, _mm512_set1_ps(0.5f));
    return _mm512_mul_ps(x, _mm512_max_ps(phi, _mm512_setzero_ps())); /* NaN phi: 0 */
}

#endif
