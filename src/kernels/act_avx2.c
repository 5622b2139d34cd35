/* GELU, AVX2 + FMA (kernels/gelu_avx2.h). Same rational erf as act_avx512.c. */
#include <immintrin.h>

#include "kernels/ops_internal.h"
#include "kernels/gelu_avx2.h"

void nmf_gelu_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, nmf_gelu8_avx2(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tx[8] = {0}, ty[8];
        for (size_t j = 0; j < n - i; j++) tx[j] = x[i + j];
        _mm256_storeu_ps(ty, nmf_gelu8_avx2(_mm256_loadu_ps(tx)));
        for (size_t j = 0; j < n - i; j++) y[i + j] = ty[j];
    }
}
