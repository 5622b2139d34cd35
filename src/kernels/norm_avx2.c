/* LayerNorm of rows, AVX2 + FMA, one row at a time: the two passes of norm.c (after the residual
 * add when there is one), 8 lanes at a time. */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_internal.h"
#include "kernels/simd_reduce_avx2.h"

static void row(float *y, float *sum, const float *x, const float *r, const float *w,
                const float *b, size_t C, float eps) {
    const size_t main = C / 8 * 8;
    size_t c = 0;
    if (r) { /* sum = x + r first */
        for (; c < main; c += 8)
            _mm256_storeu_ps(sum + c, _mm256_add_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(r + c)));
        for (; c < C; c++) sum[c] = x[c] + r[c];
        x = sum;
    }
    __m256 s = _mm256_setzero_ps();
    for (c = 0; c < main; c += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + c));
    float total = nmf_hsum8(s);
    for (; c < C; c++) total += x[c];
    const float mean = total / (float)C;
    const __m256 vm = _mm256_set1_ps(mean);
    __m256 v = _mm256_setzero_ps();
    for (c = 0; c < main; c += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + c), vm);
        v = _mm256_fmadd_ps(d, d, v);
    }
    float var = nmf_hsum8(v);
    for (; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
    const float inv = 1.0f / sqrtf(var / (float)C + eps);
    const __m256 rstd = _mm256_set1_ps(inv);
    for (c = 0; c < main; c += 8) {
        __m256 n = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), rstd);
        _mm256_storeu_ps(y + c, _mm256_fmadd_ps(n, _mm256_loadu_ps(w + c), _mm256_loadu_ps(b + c)));
    }
    for (; c < C; c++) y[c] = (x[c] - mean) * inv * w[c] + b[c];
}

void nmf_layernorm_rows_avx2(float *y, float *sum, const float *x, const float *r, const float *w,
                             const float *b, size_t rows, size_t C, float eps) {
    for (size_t t = 0; t < rows; t++)
        row(y + t * C, r ? sum + t * C : NULL, x + t * C, r ? r + t * C : NULL, w, b, C, eps);
}
