/* LayerNorm forward (timm ViT: eps 1e-6, biased variance), dispatched by ISA. Two passes per
 * token (mean, then centred variance) rather than E[x^2]-E[x]^2, which cancels badly when
 * |mean| >> std. The scalar reference is also what NMF_ISA=scalar runs. */
#include <math.h>

#include "kernels/ops_internal.h"

void nmf_layernorm_row_ref(float *y, const float *x, const float *w, const float *b, size_t C,
                           float eps) {
    float sum = 0.0f;
    for (size_t c = 0; c < C; c++) sum += x[c];
    float mean = sum / (float)C;
    float var = 0.0f;
    for (size_t c = 0; c < C; c++) {
        float d = x[c] - mean;
        var += d * d;
    }
    float rstd = 1.0f / sqrtf(var / (float)C + eps);
    for (size_t c = 0; c < C; c++) y[c] = (x[c] - mean) * rstd * w[c] + b[c];
}

void nmf_layernorm_forward(float *y, const float *x, const float *w, const float *b,
                           size_t tokens, size_t C, float eps) {
    if (tokens == 0 || C == 0) return;
    void (*row)(float *, const float *, const float *, const float *, size_t, float) =
        nmf_layernorm_row_ref;
    switch (nmf_active_isa()) {
    case NMF_ISA_AVX512: row = nmf_layernorm_row_avx512; break;
    case NMF_ISA_AVX2: row = nmf_layernorm_row_avx2; break;
    default: break;
    }
    /* ~1 ns per element: a parallel region (and its barrier) pays off only for big inputs */
#pragma omp parallel for schedule(static) if (tokens * C >= (1u << 18))
    for (size_t t = 0; t < tokens; t++) row(y + t * C, x + t * C, w, b, C, eps); // (C) each
}

void nmf_rmsnorm_forward(float *y, const float *x, const float *w, size_t tokens, size_t C, float eps) {
    if (tokens == 0 || C == 0) return;
#pragma omp parallel for schedule(static) if (tokens * C >= (1u << 18))
    for (size_t t = 0; t < tokens; t++) {
        const float *xt = x + t * C; // (C)
        float *yt = y + t * C;
        double ss = 0.0; /* the mean of squares in double: one rounding, as a pairwise f32 sum */
        for (size_t c = 0; c < C; c++) ss += (double)xt[c] * xt[c];
        const float r = 1.0f / sqrtf((float)(ss / (double)C) + eps);
        for (size_t c = 0; c < C; c++) yt[c] = w[c] * (xt[c] * r);
    }
}
