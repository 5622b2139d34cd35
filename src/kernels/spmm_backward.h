/* Private: the backward-input kernel dx = dy W for an N:M W. Included by spmm_scalar.c,
 * spmm_avx2.c and spmm_avx512.c, so one portable source is compiled with each file's ISA flags.
 *
 * Gather form over W^T (the CSR of the transpose that nmf_linear builds on the first backward
 * product), vectorised over tokens as XNNPACK's f32-spmm: a tile of 16 tokens of dy is
 * transposed to dyT [rows][16]; input column i then sums, over its kept weights w at rows o,
 *   acc[0..16) += w * dyT[o][0..16)
 * in four independent accumulators (registers, no memory dependence between columns), and
 * the 16 sums are stored into dx[t][i]. The 16-lane loops are what the compiler vectorises.
 * (A scatter form over W's own layout was tried first: rows of a panel that keep the same
 * column serialise on store-to-load forwarding, and it ran at ~0.1x of dense sgemm.) */
#ifndef NMF_KERNELS_SPMM_BACKWARD_H
#define NMF_KERNELS_SPMM_BACKWARD_H

#include "kernels/spmm.h"

#define BWD_T NMF_SPMM_BWD_TOKENS

static inline void spmm_backward_impl(float *restrict dx, const float *restrict dy,
                                      const nmf_spmm_weights *w, size_t t0, size_t t1,
                                      float *restrict work) {
    const size_t in = w->in, out = w->out;
    const size_t *restrict tptr = w->tptr;
    const uint32_t *restrict trow = w->trow;
    const float *restrict tval = w->tval;
    float *restrict dyT = work; // (out, 16)
    for (size_t tb = t0; tb < t1; tb += BWD_T) {
        const size_t tr = t1 - tb < BWD_T ? t1 - tb : BWD_T;
        for (size_t o = 0; o < out; o++)
            for (size_t l = 0; l < BWD_T; l++)
                dyT[o * BWD_T + l] = l < tr ? dy[(tb + l) * out + o] : 0.0f;
        for (size_t i = 0; i < in; i++) {
            float a0[BWD_T] = {0}, a1[BWD_T] = {0}, a2[BWD_T] = {0}, a3[BWD_T] = {0};
            size_t k = tptr[i];
            const size_t k1 = tptr[i + 1];
            for (; k + 4 <= k1; k += 4) {
                const float *s0 = dyT + (size_t)trow[k] * BWD_T;
                const float *s1 = dyT + (size_t)trow[k + 1] * BWD_T;
                const float *s2 = dyT + (size_t)trow[k + 2] * BWD_T;
                const float *s3 = dyT + (size_t)trow[k + 3] * BWD_T;
                const float v0 = tval[k], v1 = tval[k + 1], v2 = tval[k + 2], v3 = tval[k + 3];
                for (size_t l = 0; l < BWD_T; l++) {
                    a0[l] += v0 * s0[l];
                    a1[l] += v1 * s1[l];
                    a2[l] += v2 * s2[l];
                    a3[l] += v3 * s3[l];
                }
            }
            for (; k < k1; k++) {
                const float *s0 = dyT + (size_t)trow[k] * BWD_T;
                const float v0 = tval[k];
                for (size_t l = 0; l < BWD_T; l++) a0[l] += v0 * s0[l];
            }
            for (size_t l = 0; l < tr; l++) dx[(tb + l) * in + i] = (a0[l] + a1[l]) + (a2[l] + a3[l]);
        }
    }
}

#undef BWD_T
#endif
