/* Vector expf for the SIMD kernels (include only from *_avx2.c / *_avx512.c files, which are
 * compiled with the matching flags). Cephes-style: x = n ln2 + r, |r| <= ln2/2, degree-6
 * polynomial for e^r, then scale by 2^n; about 1 ulp on [-87, 88].
 * Inputs below -87 give 0 or a denormal (never NaN); -inf gives 0. */
#ifndef NMF_KERNELS_SIMD_EXP_H
#define NMF_KERNELS_SIMD_EXP_H

#include <immintrin.h>

#define NMF_EXP_POLY(T, set1, fmadd, mul, add, r)                                      \
    do {                                                                              \
        T p_ = set1(1.9875691500e-4f);                                                \
        p_ = fmadd(p_, r, set1(1.3981999507e-3f));                                    \
        p_ = fmadd(p_, r, set1(8.3334519073e-3f));                                    \
        p_ = fmadd(p_, r, set1(4.1665795894e-2f));                                    \
        p_ = fmadd(p_, r, set1(1.6666665459e-1f));                                    \
        p_ = fmadd(p_, r, set1(5.0000001201e-1f));                                    \
        r = add(fmadd(p_, mul(r, r), r), set1(1.0f));                                 \
    } while (0)

#ifdef __AVX512F__
static inline __m512 nmf_exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-110.0f)); /* 2^-159: scalef gives exactly 0 */
    x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    NMF_EXP_POLY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_add_ps, r);
    return _mm512_scalef_ps(r, n);
}

/* 2^x for x <= 0 (the softmax of attention_avx512.c runs in base 2, its exponent scaled by
 * log2(e) in an FMA, so no range reduction by ln 2): n = round(x), f = x - n exactly in [-1/2, 1/2], a degree-6 polynomial for
 * 2^f (fitted for relative error: 2e-9, ~1.6 ulp evaluated in float), scaled by 2^n: 11
 * instructions against nmf_exp512's 15. Below -125 (and -inf, NaN) gives exactly 0 by a mask,
 * never a denormal: a scalef whose result underflows takes a microcode assist (~150 cycles) on
 * Intel cores, which cost DeiT's attention 1 ms of 7.7 in the masked padding keys alone. */
static inline __m512 nmf_exp2_512_nonpos(__m512 x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-125.0f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-125.0f));
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.5353408526e-04f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3398873853e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6184369177e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5503323674e-02f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022647738e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718246e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(live, p, n);
}
#endif

#ifdef __AVX2__
static inline __m256 nmf_exp256(__m256 x) {
    /* 2^n is built in the exponent field, so n must stay >= -126: clamp at -87.3 (e^-87.3 is
     * 1.2e-38, which is as good as 0 next to the running sums it is added to). */
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    NMF_EXP_POLY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_add_ps, r);
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(r, _mm256_castsi256_ps(e));
}
#endif

#endif
