/* Activations. Exact (erf) GELU: y = 0.5 x (1 + erf(x / sqrt 2)); tanh GELU (HF's gelu_new) and
 * SiLU. Scalar references on libm; SIMD versions in act_avx512.c / act_avx2.c, picked by
 * nmf_active_isa(). The SIMD tanh GELU and SiLU share one shape: x sigmoid(s(x)) =
 * x / (1 + exp(-s(x))), with s = 2 sqrt(2/pi) (x + 0.044715 x^3) (since 0.5 (1 + tanh(u)) =
 * sigmoid(2u)) and s = x, on the vector exp of simd_exp.h. */
#include <math.h>

#include "kernels/ops_internal.h"

void nmf_gelu_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void nmf_gelu_tanh_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

void nmf_silu_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

/* Large arrays are split across threads in chunks of this many elements. */
#define ACT_CHUNK 16384

typedef void (*act_fn)(float *, const float *, size_t);

/* fns: the scalar, AVX2 and AVX-512 versions */
static void run(act_fn ref, act_fn avx2, act_fn avx512, float *y, const float *x, size_t n) {
    act_fn fn = ref;
    switch (nmf_active_isa()) {
    case NMF_ISA_AVX512: fn = avx512; break;
    case NMF_ISA_AVX2: fn = avx2; break;
    default: break;
    }
    size_t chunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t ci = 0; ci < chunks; ci++) {
        size_t lo = ci * ACT_CHUNK, len = n - lo < ACT_CHUNK ? n - lo : ACT_CHUNK;
        fn(y + lo, x + lo, len);
    }
}

void nmf_gelu_forward(float *y, const float *x, size_t n) {
    run(nmf_gelu_forward_ref, nmf_gelu_avx2, nmf_gelu_avx512, y, x, n);
}
void nmf_gelu_tanh_forward(float *y, const float *x, size_t n) {
    run(nmf_gelu_tanh_forward_ref, nmf_gelu_tanh_avx2, nmf_gelu_tanh_avx512, y, x, n);
}
void nmf_silu_forward(float *y, const float *x, size_t n) {
    run(nmf_silu_forward_ref, nmf_silu_avx2, nmf_silu_avx512, y, x, n);
}
