/* Coefficients of the float erf approximation used by the SIMD GELU kernels: Eigen's
 * generic_fast_erf_float / XLA's ErfImpl32. For x clamped to [-4, 4]:
 *   erf(x) ~ x (A1 + A3 x^2 + ... + A13 x^12) / (B0 + B2 x^2 + ... + B8 x^8)
 * Max |error| measured against math.erf in float evaluation: 4.2e-7 (near |x| = 3.3). */
#ifndef NMF_KERNELS_ERF_POLY_H
#define NMF_KERNELS_ERF_POLY_H

#define NMF_ERF_A1 (-1.60960333262415e-02f)
#define NMF_ERF_A3 (-2.95459980854025e-03f)
#define NMF_ERF_A5 (-7.34990630326855e-04f)
#define NMF_ERF_A7 (-5.69250639462346e-05f)
#define NMF_ERF_A9 (-2.10102402082508e-06f)
#define NMF_ERF_A11 (2.77068142495902e-08f)
#define NMF_ERF_A13 (-2.72614225801306e-10f)
#define NMF_ERF_B0 (-1.42647390514189e-02f)
#define NMF_ERF_B2 (-7.37332916720468e-03f)
#define NMF_ERF_B4 (-1.68282697438203e-03f)
#define NMF_ERF_B6 (-2.13374055278905e-04f)
#define NMF_ERF_B8 (-1.45660718464996e-05f)

#endif
