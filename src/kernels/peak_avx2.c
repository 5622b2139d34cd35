/* FMA-peak loop, AVX2 + FMA (peak.h). 12 independent ymm accumulators: an FMA has a latency of
 * 4-5 cycles and a core issues at most 2 per cycle, so 8-10 chains in flight keep both ports
 * busy; 12 leave a margin and still fit the 16 registers next to the two operands. */
#include <immintrin.h>

#include "kernels/peak.h"

#define ACC 12

double nmf_peak_loop_avx2(size_t iters) {
    __m256 a[ACC];
    for (int i = 0; i < ACC; i++) a[i] = _mm256_set1_ps((float)i * 1e-3f);
    /* b close to 1 and c small keep the values finite for any iteration count */
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < ACC; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < ACC; i++) s = _mm256_add_ps(s, a[i]);
    volatile float sink = _mm256_cvtss_f32(s); /* the chains must not be optimised away */
    (void)sink;
    return (double)iters * ACC * 8 * 2;
}
