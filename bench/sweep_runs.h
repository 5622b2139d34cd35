/* The timing the developer benchmarks share (bench/tv_sweep.c, bench/attention_sweep.c): 21 timed
 * runs, reported as their fastest and their median (the fastest is steadier on a shared
 * machine); times from nmf_now(). */
#ifndef NMF_BENCH_SWEEP_RUNS_H
#define NMF_BENCH_SWEEP_RUNS_H

#include <stdlib.h>

#define RUNS 21

static int sweep_by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* t[RUNS] sorted: t[0] the fastest, t[RUNS / 2] the median */
static inline void sweep_sort(double *t) { qsort(t, RUNS, sizeof t[0], sweep_by_value); }

#endif
