/* int8 multiply-add peak loop, AVX2 (peak.h): what the AVX2 int8 kernels (spmm_q8_avx2.c,
 * attention_q8_avx2.c) are built on: vpmaddwd (16 int16 x int16 multiply-adds, pairs summed into
 * 8 int32 lanes) and a vpaddd into the sums, 12 sums. In asm: with intrinsics GCC 12 spilled
 * half the sums every iteration, and a product of constant operands would be hoisted out of
 * the loop. */
#include <immintrin.h>

#include "kernels/peak.h"

#define ACC 12

#define MADD_ADD(T, A) "vpmaddwd %%ymm15, %%ymm14, %%" T "\n\tvpaddd %%" T ", %%" A ", %%" A "\n\t"

double nmf_peak_loop_q8_avx2(size_t iters) {
    __asm__ volatile("vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t" /* all ones */
                     "vpcmpeqd %%ymm15, %%ymm15, %%ymm15"
                     ::: "xmm14", "xmm15");
    for (size_t it = 0; it < iters; it++)
        __asm__ volatile(MADD_ADD("ymm12", "ymm0") MADD_ADD("ymm13", "ymm1")
                         MADD_ADD("ymm12", "ymm2") MADD_ADD("ymm13", "ymm3")
                         MADD_ADD("ymm12", "ymm4") MADD_ADD("ymm13", "ymm5")
                         MADD_ADD("ymm12", "ymm6") MADD_ADD("ymm13", "ymm7")
                         MADD_ADD("ymm12", "ymm8") MADD_ADD("ymm13", "ymm9")
                         MADD_ADD("ymm12", "ymm10") MADD_ADD("ymm13", "ymm11")
                         ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                             "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
    return (double)iters * ACC * 16 * 2;
}
