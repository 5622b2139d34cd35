/* LayerNorm of rows, AVX-512: the two passes of norm.c (after the residual add when there is
 * one), 16 lanes at a time. */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_internal.h"

#define ROWS 4 /* rows normalised together */

/* R rows (C apart) at once, each with exactly the operations it would get alone. A row alone is
 * a chain of latencies (sum, reduce, mean, centred sum of squares, reduce, sqrt and divide, then
 * the output), which the core did not overlap with the next row's: 180-270 cycles a 384-wide
 * row against ~90 of arithmetic (Xeon model 207). Four partial sums per pass and row: one chain
 * of vaddps would wait on its latency every 16 inputs (C = 384: 24 dependent adds per pass). */
static inline __attribute__((always_inline)) void ln_rows(float *y, float *sum, const float *x,
                                                          const float *r, const float *w,
                                                          const float *b, size_t C, float eps,
                                                          const int R) {
    const size_t main = C / 64 * 64, body = C / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (C - body)) - 1);
    __m512 s[ROWS][4];
    for (int i = 0; i < R; i++)
        for (int u = 0; u < 4; u++) s[i][u] = _mm512_setzero_ps();
    size_t c = 0;
    if (r) { /* sum = x + r, summed on the way */
        for (; c < main; c += 64)
            for (int i = 0; i < R; i++)
                for (int u = 0; u < 4; u++) {
                    const size_t k = (size_t)i * C + c + 16 * (size_t)u;
                    const __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + k), _mm512_loadu_ps(r + k));
                    _mm512_storeu_ps(sum + k, v);
                    s[i][u] = _mm512_add_ps(s[i][u], v);
                }
        for (; c < body; c += 16)
            for (int i = 0; i < R; i++) {
                const size_t k = (size_t)i * C + c;
                const __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + k), _mm512_loadu_ps(r + k));
                _mm512_storeu_ps(sum + k, v);
                s[i][0] = _mm512_add_ps(s[i][0], v);
            }
        for (int i = 0; i < R; i++) {
            const size_t k = (size_t)i * C + c;
            const __m512 v = _mm512_maskz_add_ps(tail, _mm512_maskz_loadu_ps(tail, x + k),
                                                 _mm512_maskz_loadu_ps(tail, r + k));
            _mm512_mask_storeu_ps(sum + k, tail, v);
            s[i][1] = _mm512_add_ps(s[i][1], v); /* the sums of the plain pass below, in its order */
        }
        x = sum;
    } else {
        for (; c < main; c += 64)
            for (int i = 0; i < R; i++)
                for (int u = 0; u < 4; u++)
                    s[i][u] = _mm512_add_ps(s[i][u], _mm512_loadu_ps(x + (size_t)i * C + c + 16 * (size_t)u));
        for (; c < body; c += 16)
            for (int i = 0; i < R; i++) s[i][0] = _mm512_add_ps(s[i][0], _mm512_loadu_ps(x + (size_t)i * C + c));
        for (int i = 0; i < R; i++)
            s[i][1] = _mm512_add_ps(s[i][1], _mm512_maskz_loadu_ps(tail, x + (size_t)i * C + c));
    }
    __m512 vm[ROWS], v[ROWS][4], rstd[ROWS];
    for (int i = 0; i < R; i++) {
        const float mean = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]),
                                                              _mm512_add_ps(s[i][2], s[i][3]))) /
                           (float)C;
        vm[i] = _mm512_set1_ps(mean);
        for (int u = 0; u < 4; u++) v[i][u] = _mm512_setzero_ps();
    }
    for (c = 0; c < main; c += 64)
        for (int i = 0; i < R; i++)
            for (int u = 0; u < 4; u++) {
                const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + (size_t)i * C + c + 16 * (size_t)u), vm[i]);
                v[i][u] = _mm512_fmadd_ps(d, d, v[i][u]);
            }
    for (; c < body; c += 16)
        for (int i = 0; i < R; i++) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + (size_t)i * C + c), vm[i]);
            v[i][0] = _mm512_fmadd_ps(d, d, v[i][0]);
        }
    for (int i = 0; i < R; i++) {
        const __m512 d = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + (size_t)i * C + c), vm[i]);
        v[i][1] = _mm512_fmadd_ps(d, d, v[i][1]);
        const float var = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(v[i][0], v[i][1]), _mm512_add_ps(v[i][2], v[i][3])));
        rstd[i] = _mm512_set1_ps(1.0f / sqrtf(var / (float)C + eps));
    }
    for (c = 0; c < body; c += 16) {
        const __m512 wc = _mm512_loadu_ps(w + c), bc = _mm512_loadu_ps(b + c);
        for (int i = 0; i < R; i++) {
            const size_t k = (size_t)i * C + c;
            const __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + k), vm[i]), rstd[i]);
            _mm512_storeu_ps(y + k, _mm512_fmadd_ps(n, wc, bc));
        }
    }
    if (tail) {
        const __m512 wc = _mm512_maskz_loadu_ps(tail, w + c), bc = _mm512_maskz_loadu_ps(tail, b + c);
        for (int i = 0; i < R; i++) {
            const size_t k = (size_t)i * C + c;
            const __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + k), vm[i]), rstd[i]);
            _mm512_mask_storeu_ps(y + k, tail, _mm512_fmadd_ps(n, wc, bc));
        }
    }
}

void nmf_layernorm_rows_avx512(float *y, float *sum, const float *x, const float *r,
                               const float *w, const float *b, size_t rows, size_t C, float eps) {
    size_t t = 0;
    for (; t + ROWS <= rows; t += ROWS)
        ln_rows(y + t * C, r ? sum + t * C : NULL, x + t * C, r ? r + t * C : NULL, w, b, C, eps, ROWS);
    for (; t < rows; t++)
        ln_rows(y + t * C, r ? sum + t * C : NULL, x + t * C, r ? r + t * C : NULL, w, b, C, eps, 1);
}
