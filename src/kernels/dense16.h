/* Dense weights W [out][in] kept in their 16-bit storage dtype (bf16 or f16), row-major as a
 * file stores an nn.Linear weight; activations and sums stay f32. Two products (linear.c picks
 * one per call by the token count planned at create):
 * - rows:  y = x W^T computed from the 16-bit values, each widened to f32 in registers: a
 *          one-token product is memory-bound, so reading half the bytes is the whole gain.
 *          Tokens go in pairs so that a widened W vector serves two of them.
 * - widen: a block of W (rows x columns) widened to an f32 scratch, which the dense backend
 *          (nmf_gemm) then multiplies: for many tokens the widening is paid once per block and
 *          the product runs at the backend's speed.
 * The scalar file is the reference: the same widening, then sums in index order. */
#ifndef NMF_KERNELS_DENSE16_H
#define NMF_KERNELS_DENSE16_H

#include <stddef.h>
#include <stdint.h>

#include "nmformer/tensor.h"

typedef struct {
    const uint16_t *w; /* [out][in] */
    size_t out, in;
    nmf_dtype dtype;   /* NMF_DTYPE_BF16 or NMF_DTYPE_F16 */
} nmf_dense16;

/* y[t * ldy + o] = sum_i x[t * ldx + i] * W[o][i] for tokens [0, tokens), rows [r0, r1). */
typedef void (*nmf_dense16_rows_fn)(float *y, size_t ldy, const float *x, size_t ldx,
                                    const nmf_dense16 *w, size_t tokens, size_t r0, size_t r1);
/* dst [r1 - r0][c1 - c0] = W[r0..r1)[c0..c1) widened to f32 (exactly: every bf16/f16 value is
 * an f32). */
typedef void (*nmf_dense16_widen_fn)(float *dst, const nmf_dense16 *w, size_t r0, size_t r1,
                                     size_t c0, size_t c1);

void nmf_dense16_rows_scalar(float *y, size_t ldy, const float *x, size_t ldx,
                             const nmf_dense16 *w, size_t tokens, size_t r0, size_t r1);
void nmf_dense16_widen_scalar(float *dst, const nmf_dense16 *w, size_t r0, size_t r1, size_t c0,
                              size_t c1);
void nmf_dense16_rows_avx2(float *y, size_t ldy, const float *x, size_t ldx,
                           const nmf_dense16 *w, size_t tokens, size_t r0, size_t r1);
void nmf_dense16_widen_avx2(float *dst, const nmf_dense16 *w, size_t r0, size_t r1, size_t c0,
                            size_t c1);

/* Rows per block of the AVX2 rows kernel (a ragged last block is handled). */
#define NMF_DENSE16_ROWS 4

#endif
