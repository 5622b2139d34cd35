/* Private: the dense GEMM backends behind nmf_gemm (gemm.c). Each backend is one file that
 * wraps one library; gemm.c picks one per process (nmf_gemm_backend_active) and splits products
 * into slabs for our threads. Every entry point is single-threaded: a backend must never start
 * threads of its own, so that a product called inside our parallel regions cannot oversubscribe
 * the cores. */
#ifndef NMF_KERNELS_GEMM_BACKEND_H
#define NMF_KERNELS_GEMM_BACKEND_H

#include <stddef.h>

#include "nmformer/kernels.h"

/* Row-major C = alpha op(A) op(B) + beta C on the calling thread only; sizes fit in int. A
 * one-row product (M = 1) is a matrix-vector product: the backend must not run it as a packed
 * sgemm (OpenBLAS's sgemm packs all of B per call). */
typedef void (*nmf_gemm_fn)(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                            const float *A, size_t lda, const float *B, size_t ldb, float beta,
                            float *C, size_t ldc);

typedef struct {
    const char *name;        /* "openblas", "onednn": what NMF_GEMM= takes */
    nmf_gemm_fn gemm;        /* NULL when the library is not built in */
    /* One line: library version and the kernel it runs on this CPU ("OpenBLAS 0.3.21, core
     * Zen"). Written into buf (size cap); returns buf. */
    const char *(*describe)(char *buf, size_t cap);
    /* 1 when the library runs a generic kernel below what this CPU can do (OpenBLAS that does
     * not know the CPU's model number falls back to "Prescott"): usable but several times
     * slower than the CPU allows. */
    int (*is_generic)(void);
} nmf_gemm_backend_ops;

/* Sets OpenBLAS's own thread count (n >= 1) for a BLAS call made outside the backend, between
 * products (never inside our parallel regions); returns the count to restore after it. */
int nmf_openblas_threads(int n);

/* gemm_openblas.c, gemm_onednn.c */
extern const nmf_gemm_backend_ops nmf_gemm_openblas;
extern const nmf_gemm_backend_ops nmf_gemm_onednn;

#endif
