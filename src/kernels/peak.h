/* Private: the peak probes' per-ISA loops (peak_avx2.c, peak_avx512.c, peak_q8_avx2.c,
 * peak_q8_avx512.c, peak.c).
 * Each runs `iters` iterations of independent multiply-adds on register-resident accumulators
 * and returns the number of floating-point operations it did (2 per lane per FMA); the caller
 * times it. Call an ISA's loop only when nmf_cpu_best_isa() allows it. */
#ifndef NMF_KERNELS_PEAK_H
#define NMF_KERNELS_PEAK_H

#include <stddef.h>

double nmf_peak_loop_scalar(size_t iters);
double nmf_peak_loop_avx2(size_t iters);
double nmf_peak_loop_avx512(size_t iters);

/* The int8 loops: independent chains of the multiply-add instruction the int8 kernels of that
 * ISA use (int32 sums of 8-bit or 16-bit products), returning integer operations (2 per
 * multiply-add). q8_avx512 needs VNNI (nmf_cpu_has_vnni512); the scalar one is plain int32. */
double nmf_peak_loop_q8_scalar(size_t iters);
double nmf_peak_loop_q8_avx2(size_t iters);
double nmf_peak_loop_q8_avx512(size_t iters);

#endif
