/* Exact (erf) GELU: y = 0.5 x (1 + erf(x / sqrt 2)). Scalar reference on erff; SIMD versions in
 * act_avx512.c / act_avx2.c, picked by nmf_active_isa(). */
#include <math.h>

#include "kernels/ops_internal.h"

void nmf_gelu_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

/* Large arrays are split across threads in chunks of this many elements. */
#define GELU_CHUNK 16384

void nmf_gelu_forward(float *y, const float *x, size_t n) {
    void (*fn)(float *, const float *, size_t) = nmf_gelu_forward_ref;
    switch (nmf_active_isa()) {
    case NMF_ISA_AVX512: fn = nmf_gelu_avx512; break;
    case NMF_ISA_AVX2: fn = nmf_gelu_avx2; break;
    default: break;
    }
    size_t chunks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t ci = 0; ci < chunks; ci++) {
        size_t lo = ci * GELU_CHUNK, len = n - lo < GELU_CHUNK ? n - lo : GELU_CHUNK;
        fn(y + lo, x + lo, len);
    }
}
