/* Private: the integer products of the CPU's fixed-point mode (fx_cpu.c).
 *
 *   C[t][o] = sum_{k < K} A[t][k] B[o][k]      A (T, K) int16, row stride lda
 *                                               B (O, K) int16, packed as panels (below)
 *                                               C (T, O) int64, row stride ldc
 *
 * Panels: B in blocks of 8 rows, each block as K2 = ceil(K/2) steps of 8 row-pairs:
 *   P[(ob * K2 + kk) * 16 + 2 i + h] = B[8 ob + i][2 kk + h]      (0 past O and K)
 * so that one step is one vpmaddwd of the 8 pairs with the token's pair (A[t][2kk], A[t][2kk+1])
 * broadcast: row i's two products summed in its int32 lane, 8 outputs per register and no
 * horizontal sums. A's rows are read in pairs: a row must have 2 K2 readable elements (a value
 * past K meets a zero weight).
 *
 * Integer sums that never overflow are exact in any order, so every kernel gives the engine's
 * numbers bit for bit; the caller chooses how wide the partial sums are kept from a bound proven
 * when the model is set up (fx_acc_for):
 *   FX_ACC32        int32 lanes throughout: sum_k |A[t][k] B[o][k]| < 2^31 for every t, o
 *   FX_ACC64_PAIRS  vpmaddwd pair sums (int32, exact while 2 max|A| max|B| < 2^31), widened to
 *                   int64 at every step
 *   FX_ACC64        any int16 values (a -32768 x -32768 pair overflows vpmaddwd): the scalar
 *                   kernel (int16 only reaches it for attention scores at data_bits 16)
 * The scalar kernel sums in int64 whatever the mode. */
#ifndef NMF_STA_FX_GEMM_H
#define NMF_STA_FX_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "nmformer/core.h"

typedef enum { FX_ACC32 = 0, FX_ACC64_PAIRS, FX_ACC64, FX_ACC_COUNT } fx_acc;

#define FX_PANEL 8 /* rows per panel */

/* int16 elements of the panels of an (O, K) matrix */
static inline size_t fx_panel_size(int O, int K) {
    return (size_t)((O + FX_PANEL - 1) / FX_PANEL) * (size_t)((K + 1) / 2) * 2 * FX_PANEL;
}
/* Packs B[o][k] = rows[o * ldr + k] (transposed = 0) or rows[k * ldr + o] (transposed = 1). */
void fx_panel_pack(int16_t *P, const int16_t *rows, size_t ldr, int O, int K, int transposed);

typedef void (*fx_gemm_fn)(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P,
                           int T, int O, int K, fx_acc acc);

void fx_gemm_scalar(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P, int T,
                    int O, int K, fx_acc acc);
void fx_gemm_avx2(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P, int T,
                  int O, int K, fx_acc acc);

/* The kernel for an instruction set (clamped to what the CPU has; AVX-512 runs the AVX2 one). */
fx_gemm_fn fx_gemm_for(nmf_isa isa);
const char *fx_acc_name(fx_acc a);

/* The narrowest mode whose bound holds for a product of K terms with |A| <= amax, |B| <= bmax
 * and sum_k |B[o][k]| <= bsum for every row o (bsum = K bmax when nothing better is known). */
fx_acc fx_acc_for(int64_t amax, int64_t bmax, int64_t bsum);

#endif
