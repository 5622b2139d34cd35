/* Private: the integer products of the CPU's fixed-point mode (fx_cpu.c).
 *
 *   C[t][o] = sum_{k < K} A[t][k] B[o][k]      A (T, K) int16, row stride lda
 *                                               B (O, K) int16, row stride ldb
 *                                               C (T, O) int64, row stride ldc
 *
 * Integer sums that never overflow are exact in any order, so every kernel gives the engine's
 * numbers bit for bit; what may differ is only the width the partial sums are kept in, which
 * the caller chooses from a bound proven when the model is set up (fx_cpu.c):
 *   FX_ACC32        int32 lanes throughout: sum_k |A[t][k] B[o][k]| < 2^31 for every t, o
 *   FX_ACC64_PAIRS  vpmaddwd pair sums (int32, exact while 2 max|A| max|B| < 2^31), widened to
 *                   int64 at every step
 *   FX_ACC64        any int16 values (-32768 x -32768 pairs overflow vpmaddwd): 32-bit
 *                   products (mullo/mulhi) widened to int64
 * The scalar reference sums in int64 whatever the mode. The SIMD kernels read K in steps of 16
 * and finish a ragged K in scalar code. */
#ifndef NMF_STA_FX_GEMM_H
#define NMF_STA_FX_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "nmformer/core.h"

typedef enum { FX_ACC32 = 0, FX_ACC64_PAIRS, FX_ACC64, FX_ACC_COUNT } fx_acc;

typedef void (*fx_gemm_fn)(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B,
                           size_t ldb, int T, int O, int K, fx_acc acc);

void fx_gemm_scalar(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B,
                    size_t ldb, int T, int O, int K, fx_acc acc);
void fx_gemm_avx2(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B,
                  size_t ldb, int T, int O, int K, fx_acc acc);

/* The kernel for an instruction set (clamped to what the CPU has; AVX-512 runs the AVX2 one). */
fx_gemm_fn fx_gemm_for(nmf_isa isa);
const char *fx_acc_name(fx_acc a);

/* The narrowest mode whose bound holds for a product of K terms with |A| <= amax, |B| <= bmax
 * and sum_k |B[o][k]| <= bsum for every row o (pass bsum = K * bmax when unknown). */
fx_acc fx_acc_for(int64_t amax, int64_t bmax, int64_t bsum);

#endif
