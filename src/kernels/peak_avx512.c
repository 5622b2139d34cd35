/* FMA-peak loop, AVX-512 (peak.h). 16 independent zmm accumulators cover an FMA latency of 4
 * cycles on two ports with margin (32 registers: no spills). */
#include <immintrin.h>

#include "kernels/peak.h"

#define ACC 16

double nmf_peak_loop_avx512(size_t iters) {
    __m512 a[ACC];
    for (int i = 0; i < ACC; i++) a[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < ACC; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < ACC; i++) s = _mm512_add_ps(s, a[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * ACC * 16 * 2;
}
