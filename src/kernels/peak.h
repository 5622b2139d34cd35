/* Private: the FMA-peak probe's per-ISA loops (peak_avx2.c, peak_avx512.c, peak.c).
 * Each runs `iters` iterations of independent multiply-adds on register-resident accumulators
 * and returns the number of floating-point operations it did (2 per lane per FMA); the caller
 * times it. Call an ISA's loop only when nmf_cpu_best_isa() allows it. */
#ifndef NMF_KERNELS_PEAK_H
#define NMF_KERNELS_PEAK_H

#include <stddef.h>

double nmf_peak_loop_scalar(size_t iters);
double nmf_peak_loop_avx2(size_t iters);
double nmf_peak_loop_avx512(size_t iters);

#endif
