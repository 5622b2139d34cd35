/* nmf_cpu_fma_peak_gflops: the single-core f32 multiply-add peak of the active ISA, measured
 * once per ISA per process (pthread_once) by a register-resident loop of independent FMAs
 * (peak.h). Benchmarks divide useful GFLOP/s by it: a fraction of what this core can do, not
 * of a datasheet figure (clock, turbo and virtualisation included). nmf_cpu_int8_peak_gops: the
 * same for the multiply-add instruction the int8 kernels of the active ISA run on (vpdpbusd,
 * vpmaddwd + vpaddd, or plain int32), which is not the f32 one (vpdpbusd does 4x the FMA's
 * multiply-adds).
 *
 * Method: grow the iteration count until one run takes >= 4 ms (the clock ramps up meanwhile),
 * then take the best of 5 runs of that count (~20-40 ms in all): the best, because anything
 * that interrupts the core only ever makes a run slower. */
#include <pthread.h>

#include <stdint.h>

#include "kernels/peak.h"
#include "kernels/spmm_q8.h" /* nmf_q8_kind_for */
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

/* Portable int8: 8 independent int32 chains of multiply + add (what the scalar int8 kernel has;
 * unsigned: the sums wrap, defined). */
double nmf_peak_loop_q8_scalar(size_t iters) {
    uint32_t a[8];
    for (uint32_t i = 0; i < 8; i++) a[i] = i + 1;
    for (size_t it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++) a[i] = a[i] * 3u + 7u;
    volatile uint32_t sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
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

static double measure(double (*loop)(size_t)) {
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
static void measure_scalar(void) { peak[NMF_ISA_SCALAR] = measure(loops[NMF_ISA_SCALAR]); }
static void measure_avx2(void) { peak[NMF_ISA_AVX2] = measure(loops[NMF_ISA_AVX2]); }
static void measure_avx512(void) { peak[NMF_ISA_AVX512] = measure(loops[NMF_ISA_AVX512]); }
static void (*const measures[])(void) = {measure_scalar, measure_avx2, measure_avx512};

double nmf_cpu_fma_peak_gflops(void) {
    const nmf_isa isa = nmf_active_isa(); /* never above nmf_cpu_best_isa() */
    pthread_once(&once[isa], measures[isa]);
    return peak[isa];
}

/* One loop per kind of int8 kernel (nmf_q8_kind_for: the instructions they run on). */
static double (*const q8_loops[NMF_Q8_KINDS])(size_t) = {
    [NMF_Q8_SCALAR] = nmf_peak_loop_q8_scalar,
    [NMF_Q8_AVX2] = nmf_peak_loop_q8_avx2,
    [NMF_Q8_VNNI512] = nmf_peak_loop_q8_avx512,
};
_Static_assert(NMF_Q8_KINDS == 3, "one pthread_once per nmf_q8_kind");
static double q8_peak[NMF_Q8_KINDS];
static pthread_once_t q8_once[NMF_Q8_KINDS] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                               PTHREAD_ONCE_INIT};
static void measure_q8_scalar(void) { q8_peak[NMF_Q8_SCALAR] = measure(q8_loops[NMF_Q8_SCALAR]); }
static void measure_q8_avx2(void) { q8_peak[NMF_Q8_AVX2] = measure(q8_loops[NMF_Q8_AVX2]); }
static void measure_q8_vnni(void) { q8_peak[NMF_Q8_VNNI512] = measure(q8_loops[NMF_Q8_VNNI512]); }
static void (*const q8_measures[NMF_Q8_KINDS])(void) = {
    [NMF_Q8_SCALAR] = measure_q8_scalar, [NMF_Q8_AVX2] = measure_q8_avx2,
    [NMF_Q8_VNNI512] = measure_q8_vnni};

double nmf_cpu_int8_peak_gops(void) {
    const nmf_q8_kind kind = nmf_q8_kind_for(nmf_active_isa());
    pthread_once(&q8_once[kind], q8_measures[kind]);
    return q8_peak[kind];
}
