/* LayerNorm forward (timm ViT: eps 1e-6, biased variance), dispatched by ISA, alone or fused
 * with the residual add before it; and the residual add itself. Two passes per token (mean,
 * then centred variance) rather than E[x^2]-E[x]^2, which cancels badly when |mean| >> std.
 * The scalar reference is also what NMF_ISA=scalar runs. */
#include <math.h>
#include <omp.h>

#include "kernels/ops_internal.h"

static void row_ref(float *y, float *sum, const float *x, const float *r, const float *w,
                    const float *b, size_t C, float eps) {
    if (r) {
        for (size_t c = 0; c < C; c++) sum[c] = x[c] + r[c];
        x = sum;
    }
    float total = 0.0f;
    for (size_t c = 0; c < C; c++) total += x[c];
    float mean = total / (float)C;
    float var = 0.0f;
    for (size_t c = 0; c < C; c++) {
        float d = x[c] - mean;
        var += d * d;
    }
    float rstd = 1.0f / sqrtf(var / (float)C + eps);
    for (size_t c = 0; c < C; c++) y[c] = (x[c] - mean) * rstd * w[c] + b[c];
}

void nmf_layernorm_rows_ref(float *y, float *sum, const float *x, const float *r, const float *w,
                            const float *b, size_t rows, size_t C, float eps) {
    for (size_t t = 0; t < rows; t++)
        row_ref(y + t * C, r ? sum + t * C : NULL, x + t * C, r ? r + t * C : NULL, w, b, C, eps);
}

static nmf_layernorm_rows_fn rows_for_isa(void) {
    switch (nmf_active_isa()) {
    case NMF_ISA_AVX512: return nmf_layernorm_rows_avx512;
    case NMF_ISA_AVX2: return nmf_layernorm_rows_avx2;
    default: return nmf_layernorm_rows_ref;
    }
}

/* Rows are split over the threads from this many elements. ~0.1 ns per element (AVX-512, C =
 * 384) makes a ViT block's norm ~10 us; the team is already awake around it, and running it on
 * one thread idled the other: DeiT-small on two threads (Xeon model 207) 2:8 18.3 -> 17.5 ms,
 * 1:8 15.0 -> 14.0 with 2^15 instead of 2^17 (2^13 the same as 2^15). */
#define NORM_PAR_MIN ((size_t)1 << 14)

/* y[t] = LayerNorm(x[t] (+ r[t], stored to sum[t] first, when r is given)) for every token */
static void norm_rows(float *y, float *sum, const float *x, const float *r, const float *w,
                      const float *b, size_t tokens, size_t C, float eps) {
    if (tokens == 0 || C == 0) return;
    const nmf_layernorm_rows_fn rows = rows_for_isa();
    const int threads = tokens * C >= NORM_PAR_MIN ? nmf_get_threads() : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    { /* each thread its contiguous share of the tokens, in one call */
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t t0 = tokens * id / nt, t1 = tokens * (id + 1) / nt;
        if (t1 > t0)
            rows(y + t0 * C, r ? sum + t0 * C : NULL, x + t0 * C, r ? r + t0 * C : NULL, w, b,
                 t1 - t0, C, eps);
    }
}

void nmf_layernorm_forward(float *y, const float *x, const float *w, const float *b,
                           size_t tokens, size_t C, float eps) {
    norm_rows(y, NULL, x, NULL, w, b, tokens, C, eps);
}

void nmf_add_layernorm_forward(float *y, float *sum, const float *x, const float *r,
                               const float *w, const float *b, size_t tokens, size_t C,
                               float eps) {
    norm_rows(y, sum, x, r, w, b, tokens, C, eps);
}

void nmf_add_forward(float *y, const float *a, const float *b, size_t n) {
    /* (the simd pragma: y may alias a or b, so GCC does not vectorise the loop by itself) */
#pragma omp parallel for simd schedule(static) if (n >= NORM_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
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
