/* int8 multiply-add peak loop, AVX-512 VNNI (peak.h): what the AVX-512 int8 kernels
 * (spmm_q8_avx512.c, attention_q8_avx512.c) are built on. 16 independent chains of vpdpbusd (64
 * u8 x s8 multiply-adds into 16 int32 lanes each) cover its latency of ~5 cycles at up to two a
 * cycle. In asm: GCC 12 copies each accumulator around the intrinsic (and spilled one per
 * iteration here), which measured the copies, not the instruction. */
#include <immintrin.h>

#include "kernels/peak.h"

#define ACC 16

double nmf_peak_loop_q8_avx512(size_t iters) {
    __asm__ volatile("vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
                     "vpternlogd $0xff, %%zmm17, %%zmm17, %%zmm17" /* all ones */
                     ::: "xmm16", "xmm17");
    for (size_t it = 0; it < iters; it++)
        __asm__ volatile(
            "vpdpbusd %%zmm17, %%zmm16, %%zmm0\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm1\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm2\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm3\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm4\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm5\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm6\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm7\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm8\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm9\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm10\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm11\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm12\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm13\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm14\n\t"
            "vpdpbusd %%zmm17, %%zmm16, %%zmm15"
            ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    return (double)iters * ACC * 64 * 2;
}
