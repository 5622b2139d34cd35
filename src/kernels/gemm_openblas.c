/* Dense backend: OpenBLAS through CBLAS. OpenBLAS decides its kernel from the CPU's model
 * number when the library loads (OPENBLAS_CORETYPE overrides it, but only before the load), so
 * on a CPU newer than the build it runs a generic SSE kernel: is_generic() reports that, and
 * gemm.c then prefers a backend that decides by CPU features. */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h> /* strcasecmp */

#include "kernels/gemm_backend.h"

/* OpenBLAS's own threads would fight ours (gemm.c threads by slabs): one thread, set once. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void single_threaded(void) { openblas_set_num_threads(1); }

/* OpenBLAS called outside the backend (SparseGPT's X^T X, a dsyrk: src/prune/plan.c) with our
 * thread count: this pthreads build of OpenBLAS ignores OpenMP's, so without it the call would
 * run on every core (or on the one thread set above), whatever --threads / NMF_THREADS say. */
int nmf_openblas_threads(int n) {
    pthread_once(&once, single_threaded);
    const int old = openblas_get_num_threads();
    openblas_set_num_threads(n);
    return old;
}

static void openblas_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                          const float *A, size_t lda, const float *B, size_t ldb, float beta,
                          float *C, size_t ldc) {
    pthread_once(&once, single_threaded);
    if (M == 1) {
        /* c = alpha op(B)^T a + beta c with a = row 0 of op(A): sgemv streams B once */
        const int inc_a = trans_a ? (int)lda : 1;
        if (trans_b) /* op(B) = B^T, B is [N][K] */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)K, alpha, B, (int)ldb, A, inc_a,
                        beta, C, 1);
        else /* B is [K][N] */
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)K, (int)N, alpha, B, (int)ldb, A, inc_a,
                        beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
                (int)ldb, beta, C, (int)ldc);
}

static const char *core_name(void) {
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

static const char *openblas_describe(char *buf, size_t cap) {
    const char *cfg = openblas_get_config(); /* "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." */
    char version[32] = "?";
    if (cfg && !strncmp(cfg, "OpenBLAS ", 9)) sscanf(cfg + 9, "%31s", version);
    snprintf(buf, cap, "OpenBLAS %s, core %s", version, core_name());
    return buf;
}

/* Cores OpenBLAS falls back to when it does not know a CPU: SSE-only kernels. (A known AVX2
 * core on an AVX-512 CPU is not generic, only not the best: gemm.c's choice covers that.) */
static int openblas_is_generic(void) {
    static const char *const generic[] = {"prescott", "core2", "penryn", "dunnington", "nehalem",
                                          "atom", "katmai", "coppermine", "northwood", "banias",
                                          "opteron", "barcelona", "unknown"};
    const char *c = core_name();
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        if (!strcasecmp(c, generic[i])) return 1;
    return 0;
}

const nmf_gemm_backend_ops nmf_gemm_openblas = {"openblas", openblas_gemm, openblas_describe,
                                                openblas_is_generic};
