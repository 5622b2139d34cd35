/* The one table of N:M kernels, indexed by instruction set (ggml style: a name per entry,
 * checked against NMF_ISA_COUNT). nmf_active_isa() is decided once (cpuid + xgetbv, NMF_ISA);
 * a layer's plan (linear.c) takes its entry when the layer is created. */
#include "kernels/spmm.h"

static const nmf_spmm_tv_kernels tv_avx2 = {"avx2-tv", 8, nmf_spmm_tv_avx2_supports,
                                             nmf_spmm_tv_transpose_avx2,
                                             nmf_spmm_forward_tv_xt_avx2,
                                             nmf_spmm_forward_tv_xt_xt_avx2};
static const nmf_spmm_tv_kernels tv_avx512 = {"avx512-tv", 16, nmf_spmm_tv_avx512_supports,
                                               nmf_spmm_tv_transpose_avx512,
                                               nmf_spmm_forward_tv_xt_avx512,
                                               nmf_spmm_forward_tv_xt_xt_avx512};

static const nmf_spmm_kernels table[] = {
    [NMF_ISA_SCALAR] = {"scalar", nmf_spmm_forward_scalar, nmf_spmm_backward_scalar, NULL},
    [NMF_ISA_AVX2] = {"avx2", nmf_spmm_forward_avx2, nmf_spmm_backward_avx2, &tv_avx2},
    [NMF_ISA_AVX512] = {"avx512", nmf_spmm_forward_avx512, nmf_spmm_backward_avx512,
                        &tv_avx512},
};
_Static_assert(sizeof table / sizeof table[0] == NMF_ISA_COUNT, "one kernel set per nmf_isa");

const nmf_spmm_kernels *nmf_spmm_kernels_for(nmf_isa isa) {
    nmf_isa best = nmf_cpu_best_isa();
    if ((unsigned)isa >= NMF_ISA_COUNT || isa > best) isa = best; /* never run what the CPU lacks */
    return &table[isa];
}
