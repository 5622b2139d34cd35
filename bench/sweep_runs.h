/* What the developer benchmarks share (bench/tv_sweep.c, bench/attention_sweep.c,
 * bench/ab_spmm.c): 21 timed runs, reported as their fastest and their median (the fastest is
 * steadier on a shared machine), times from nmf_now(); and a layer's operands. */
#ifndef NMF_BENCH_SWEEP_RUNS_H
#define NMF_BENCH_SWEEP_RUNS_H

#include <stdint.h>
#include <stdlib.h>

#define RUNS 21

static int sweep_by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* t[RUNS] sorted: t[0] the fastest, t[RUNS / 2] the median */
static inline void sweep_sort(double *t) { qsort(t, RUNS, sizeof t[0], sweep_by_value); }

/* A layer's operands: w (out, in) uniform in [-1, 1) from a fixed xorshift stream, x (T, in)
 * drawn from w's values (the same numbers every run, so that shapes compare). */
static inline void sweep_operands(float *w, float *x, size_t out, size_t in, size_t T) {
    uint64_t s = 42;
    for (size_t i = 0; i < out * in; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        w[i] = (float)((s >> 40) * (1.0 / 8388608.0)) - 1.0f;
    }
    for (size_t i = 0; i < T * in; i++) x[i] = w[(i * 7919) % (out * in)];
}

#endif
