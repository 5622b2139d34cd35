/* nmf_cpu_fma_peak_gflops: the single-core f32 multiply-add peak of the active ISA, measured
 * once per ISA per process (pthread_once) by a register-resident loop of independent FMAs
 * (peak.h). Benchmarks divide useful GFLOP/s by it: a fraction of what this core can do, not
 * of a datasheet figure (clock, turbo and virtualisation included).
 *
 * Method: grow the iteration count until one run takes >= 4 ms (the clock ramps up meanwhile),
 * then take the best of 5 runs of that count (~20-40 ms in all): the best, because anything
 * that interrupts the core only ever makes a run slower. */
#include <pthread.h>

#include "kernels/peak.h"
#include "nmformer/kernels.h"

/* Portable: 8 independent float chains of mul + add (what the scalar kernels have). */
double nmf_peak_loop_scalar(size_t iters) {
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = (float)i * 1e-3f;
    for (size_t it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++) a[i] = a[i] * 0.999999f + 1e-7f;
    volatile float sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    (void)sink;
    return (double)iters * 8 * 2;
}

static double (*const loops[])(size_t) = {
    [NMF_ISA_SCALAR] = nmf_peak_loop_scalar,
    [NMF_ISA_AVX2] = nmf_peak_loop_avx2,
    [NMF_ISA_AVX512] = nmf_peak_loop_avx512,
};
_Static_assert(sizeof loops / sizeof loops[0] == NMF_ISA_COUNT, "one peak loop per nmf_isa");

#define MIN_RUN_S 0.004
#define RUNS 5

static double measure(nmf_isa isa) {
    double (*loop)(size_t) = loops[isa];
    size_t iters = 1 << 12;
    for (;;) { /* calibrate: the count that takes MIN_RUN_S */
        const double t0 = nmf_now();
        loop(iters);
        if (nmf_now() - t0 >= MIN_RUN_S || iters >= ((size_t)1 << 40)) break;
        iters *= 2;
    }
    double best = 0.0;
    for (int r = 0; r < RUNS; r++) {
        const double t0 = nmf_now();
        const double flop = loop(iters);
        const double s = nmf_now() - t0;
        if (s > 0 && flop / s > best) best = flop / s;
    }
    return best * 1e-9;
}

static double peak[NMF_ISA_COUNT];
static pthread_once_t once[NMF_ISA_COUNT] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                             PTHREAD_ONCE_INIT};
_Static_assert(NMF_ISA_COUNT == 3, "one pthread_once per nmf_isa");
static void measure_scalar(void) { peak[NMF_ISA_SCALAR] = measure(NMF_ISA_SCALAR); }
static void measure_avx2(void) { peak[NMF_ISA_AVX2] = measure(NMF_ISA_AVX2); }
static void measure_avx512(void) { peak[NMF_ISA_AVX512] = measure(NMF_ISA_AVX512); }
static void (*const measures[])(void) = {measure_scalar, measure_avx2, measure_avx512};

double nmf_cpu_fma_peak_gflops(void) {
    const nmf_isa isa = nmf_active_isa(); /* never above nmf_cpu_best_isa() */
    pthread_once(&once[isa], measures[isa]);
    return peak[isa];
}
