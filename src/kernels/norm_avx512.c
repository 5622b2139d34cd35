/* LayerNorm of one row, AVX-512: the two passes of norm.c (after the residual add when there is
 * one), 16 lanes at a time. */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_internal.h"

/* Four partial sums per pass: one chain of vaddps would wait on its latency every 16 inputs
 * (C = 384: 24 dependent adds per pass). */
void nmf_layernorm_row_avx512(float *y, float *sum, const float *x, const float *r,
                              const float *w, const float *b, size_t C, float eps) {
    const size_t main = C / 64 * 64, body = C / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (C - body)) - 1);
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    size_t c = 0;
    if (r) { /* sum = x + r, summed on the way */
        for (; c < main; c += 64)
            for (int u = 0; u < 4; u++) {
                const size_t i = c + 16 * (size_t)u;
                const __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(r + i));
                _mm512_storeu_ps(sum + i, v);
                s[u] = _mm512_add_ps(s[u], v);
            }
        for (; c < body; c += 16) {
            const __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + c), _mm512_loadu_ps(r + c));
            _mm512_storeu_ps(sum + c, v);
            s[0] = _mm512_add_ps(s[0], v);
        }
        const __m512 v = _mm512_maskz_add_ps(tail, _mm512_maskz_loadu_ps(tail, x + c),
                                             _mm512_maskz_loadu_ps(tail, r + c));
        _mm512_mask_storeu_ps(sum + c, tail, v);
        s[1] = _mm512_add_ps(s[1], v); /* the sums of the plain pass below, in its order */
        x = sum;
    } else {
        for (; c < main; c += 64)
            for (int u = 0; u < 4; u++) s[u] = _mm512_add_ps(s[u], _mm512_loadu_ps(x + c + 16 * u));
        for (; c < body; c += 16) s[0] = _mm512_add_ps(s[0], _mm512_loadu_ps(x + c));
        s[1] = _mm512_add_ps(s[1], _mm512_maskz_loadu_ps(tail, x + c));
    }
    const float mean =
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3]))) /
        (float)C;
    const __m512 vm = _mm512_set1_ps(mean);
    __m512 v[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    for (c = 0; c < main; c += 64)
        for (int u = 0; u < 4; u++) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + c + 16 * u), vm);
            v[u] = _mm512_fmadd_ps(d, d, v[u]);
        }
    for (; c < body; c += 16) {
        const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + c), vm);
        v[0] = _mm512_fmadd_ps(d, d, v[0]);
    }
    const __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + c), vm);
    v[1] = _mm512_fmadd_ps(d, d, v[1]);
    const float var =
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(v[0], v[1]), _mm512_add_ps(v[2], v[3])));
    const __m512 rstd = _mm512_set1_ps(1.0f / sqrtf(var / (float)C + eps));
    for (c = 0; c < body; c += 16) {
        __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c), vm), rstd);
        _mm512_storeu_ps(y + c, _mm512_fmadd_ps(n, _mm512_loadu_ps(w + c), _mm512_loadu_ps(b + c)));
    }
    if (tail) {
        __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + c), vm), rstd);
        _mm512_mask_storeu_ps(y + c, tail, _mm512_fmadd_ps(n, _mm512_maskz_loadu_ps(tail, w + c),
                                                            _mm512_maskz_loadu_ps(tail, b + c)));
    }
}
