/* The GELU of int8 layers' epilogues (spmm_q8.h), in portable C; gelu_avx512.h and gelu_avx2.h
 * run the same operations on vectors (the same bits in every lane, on every ISA).
 *
 * Why not the erf GELU of the f32 layers (erf_poly.h, |error| < 5e-7): its rational erf costs
 * ~20 vector operations and a division per 16 outputs, as much as the whole 1:8 product of a
 * 384-wide fc1 (DeiT-small), while an int8 layer's GELU output only feeds the next int8 product,
 * which rounds it to one of 255 levels of the token's largest magnitude. Here
 *   GELU(x) = x * max(0, 0.5 + c P(c^2)),  c = x clamped to [-4.4, 4.4],
 * P of degree 8 fitted (minimax, x-weighted, value 1/2 at 4.4) to (Phi(x) - 1/2) / x:
 * 12 operations, no division; |error| <= 2.5e-5 max(1, |x|) over the whole line (at the level of
 * a token with largest magnitude |x|, 0.3 % of a quantisation step). Measured against erf in
 * tests/kernels/test_lowprec.c. x = -inf gives NaN, as the erf GELU (-inf * 0). */
#ifndef NMF_KERNELS_GELU_Q8_H
#define NMF_KERNELS_GELU_Q8_H

#include <math.h>

#include "kernels/ops_internal.h" /* NMF_SCALAR_SET1 */

#define NMF_GELU_Q8_CLAMP 4.4f
#define NMF_GELU_Q8_P0 (3.988249600e-01f)
#define NMF_GELU_Q8_P1 (-6.615928560e-02f)
#define NMF_GELU_Q8_P2 (9.683285840e-03f)
#define NMF_GELU_Q8_P3 (-1.064892625e-03f)
#define NMF_GELU_Q8_P4 (8.567799523e-05f)
#define NMF_GELU_Q8_P5 (-4.839871508e-06f)
#define NMF_GELU_Q8_P6 (1.796956042e-07f)
#define NMF_GELU_Q8_P7 (-3.902604462e-09f)
#define NMF_GELU_Q8_P8 (3.734126550e-11f)

/* p = P(u) by Horner, the one chain of operations every form runs (its bits), for any lane
 * type: SET1 makes a constant, FMADD(a, b, c) = a b + c rounded once. */
#define NMF_GELU_Q8_POLY(p, u, SET1, FMADD)                                                     \
    do {                                                                                        \
        p = SET1(NMF_GELU_Q8_P8);                                                               \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P7));                                                  \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P6));                                                  \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P5));                                                  \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P4));                                                  \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P3));                                                  \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P2));                                                  \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P1));                                                  \
        p = FMADD(p, u, SET1(NMF_GELU_Q8_P0));                                                  \
    } while (0)

static inline float nmf_gelu_q8(float x) {
    const float c = x > NMF_GELU_Q8_CLAMP ? NMF_GELU_Q8_CLAMP
                  : x < -NMF_GELU_Q8_CLAMP ? -NMF_GELU_Q8_CLAMP : x; /* NaN: x */
    const float u = c * c;
    float p;
    NMF_GELU_Q8_POLY(p, u, NMF_SCALAR_SET1, fmaf);
    const float phi = fmaf(c, p, 0.5f);
    return x * (phi > 0.0f ? phi : 0.0f); /* NaN: x * NaN */
}

#endif
