/* LayerNorm of one row, AVX-512: the two passes of norm.c, 16 lanes at a time. */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_internal.h"

void nmf_layernorm_row_avx512(float *y, const float *x, const float *w, const float *b, size_t C,
                              float eps) {
    __m512 s = _mm512_setzero_ps();
    size_t c = 0;
    for (; c + 16 <= C; c += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(x + c));
    __mmask16 tail = (__mmask16)((1u << (C - c)) - 1);
    s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail, x + c));
    const float mean = _mm512_reduce_add_ps(s) / (float)C;
    const __m512 vm = _mm512_set1_ps(mean);
    __m512 v = _mm512_setzero_ps();
    for (c = 0; c + 16 <= C; c += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + c), vm);
        v = _mm512_fmadd_ps(d, d, v);
    }
    __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + c), vm);
    v = _mm512_fmadd_ps(d, d, v);
    const __m512 rstd = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(v) / (float)C + eps));
    for (c = 0; c + 16 <= C; c += 16) {
        __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c), vm), rstd);
        _mm512_storeu_ps(y + c, _mm512_fmadd_ps(n, _mm512_loadu_ps(w + c), _mm512_loadu_ps(b + c)));
    }
    if (tail) {
        __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + c), vm), rstd);
        _mm512_mask_storeu_ps(y + c, tail, _mm512_fmadd_ps(n, _mm512_maskz_loadu_ps(tail, w + c),
                                                            _mm512_maskz_loadu_ps(tail, b + c)));
    }
}
