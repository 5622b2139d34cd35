/* Dense x dense: nmf_gemm splits C into row or column slabs for our OpenMP threads
 * (nmf_get_threads()) and hands each slab to the process's dense backend (gemm_backend.h), which
 * runs it on the calling thread. That way a product called from inside our parallel regions
 * (attention per head, a layer per token block) never oversubscribes the cores, and a product
 * called from outside still uses every thread — one-row products included, which are split by
 * columns.
 *
 * The backend is decided once per process: NMF_GEMM=openblas|onednn forces one; otherwise the
 * first built-in backend in order of preference that runs a real (non-generic) kernel on this
 * CPU. oneDNN comes first because it picks its kernels by CPU features: on the Intel Xeon of
 * issue 10 (model 207, AVX-512) it ran at 88 % of the core's FMA peak where Debian's OpenBLAS
 * 0.3.21, which decides by model number, fell back to its generic SSE kernel (18-30 GFLOP/s); on
 * AMD Zen 3, which OpenBLAS knows, the two are within 0-30 % of each other, oneDNN ahead on most
 * shapes (docs/PERFORMANCE.md). */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "kernels/gemm_backend.h"

static const nmf_gemm_backend_ops *const backends[] = {
    [NMF_GEMM_OPENBLAS] = &nmf_gemm_openblas,
    [NMF_GEMM_ONEDNN] = &nmf_gemm_onednn,
};
_Static_assert(sizeof backends / sizeof backends[0] == NMF_GEMM_BACKEND_COUNT,
               "one entry per nmf_gemm_backend");
/* Preference when nothing is forced. */
static const nmf_gemm_backend preference[] = {NMF_GEMM_ONEDNN, NMF_GEMM_OPENBLAS};

int nmf_gemm_backend_available(nmf_gemm_backend b) {
    return (unsigned)b < NMF_GEMM_BACKEND_COUNT && backends[b]->gemm != NULL;
}

const char *nmf_gemm_backend_name(nmf_gemm_backend b) {
    return (unsigned)b < NMF_GEMM_BACKEND_COUNT ? backends[b]->name : "unknown";
}

const char *nmf_gemm_backend_describe(nmf_gemm_backend b, char *buf, size_t cap) {
    if (!buf || cap == 0) return "";
    if ((unsigned)b >= NMF_GEMM_BACKEND_COUNT) {
        snprintf(buf, cap, "unknown backend");
        return buf;
    }
    return backends[b]->describe(buf, cap);
}

int nmf_gemm_backend_generic(nmf_gemm_backend b) {
    return nmf_gemm_backend_available(b) && backends[b]->is_generic();
}

nmf_status nmf_env_gemm(int *backend) {
    const char *env = getenv("NMF_GEMM");
    *backend = -1;
    if (!env || !*env) return NMF_OK;
    for (int b = 0; b < NMF_GEMM_BACKEND_COUNT; b++)
        if (!strcmp(env, backends[b]->name)) {
            *backend = b;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_INVALID_ARG, "NMF_GEMM='%s': expected openblas or onednn", env);
}

static nmf_gemm_backend active = NMF_GEMM_OPENBLAS;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

static void choose(void) {
    /* OpenBLAS is always linked: the fallback of last resort, even when generic. */
    active = NMF_GEMM_OPENBLAS;
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (nmf_gemm_backend_available(preference[i]) && !backends[preference[i]]->is_generic()) {
            active = preference[i];
            break;
        }
    int forced;
    if (nmf_env_gemm(&forced) != NMF_OK) {
        fprintf(stderr, "nmformer: warning: %s; using %s\n", nmf_last_error(), backends[active]->name);
    } else if (forced >= 0) {
        if (nmf_gemm_backend_available((nmf_gemm_backend)forced))
            active = (nmf_gemm_backend)forced;
        else /* a valid name this build lacks: not an error */
            fprintf(stderr, "nmformer: warning: NMF_GEMM=%s is not built in; using %s\n",
                    backends[forced]->name, backends[active]->name);
    }
}

nmf_gemm_backend nmf_gemm_backend_active(void) {
    pthread_once(&choose_once, choose);
    return active;
}

void nmf_blas_init(void) { (void)nmf_gemm_backend_active(); }

/* Below this many multiply-adds a product is not worth a parallel region. */
#define GEMM_PARALLEL_MIN_FMAS (1u << 18)

void nmf_gemm_with(nmf_gemm_backend backend, int trans_a, int trans_b, size_t M, size_t N,
                   size_t K, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                   float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (!nmf_gemm_backend_available(backend)) backend = nmf_gemm_backend_active();
    const nmf_gemm_fn gemm = backends[backend]->gemm;
    int threads = omp_in_parallel() ? 1 : nmf_get_threads();
    if ((double)M * (double)N * (double)K < GEMM_PARALLEL_MIN_FMAS) threads = 1;
    if (threads <= 1) {
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the longer side of C; slabs are multiples of 16 so each keeps whole SIMD tiles. */
    const int split_rows = M >= N;
    const size_t len = split_rows ? M : N;
    size_t slab = (len + (size_t)threads - 1) / (size_t)threads;
    slab = (slab + 15) / 16 * 16;
    const size_t slabs = (len + slab - 1) / slab;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t s = 0; s < slabs; s++) {
        const size_t lo = s * slab, cnt = len - lo < slab ? len - lo : slab;
        if (split_rows) { /* rows lo.. of op(A) and C */
            const float *a = trans_a ? A + lo : A + lo * lda;
            gemm(trans_a, trans_b, cnt, N, K, alpha, a, lda, B, ldb, beta, C + lo * ldc, ldc);
        } else { /* columns lo.. of op(B) and C */
            const float *b = trans_b ? B + lo * ldb : B + lo;
            gemm(trans_a, trans_b, M, cnt, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
        }
    }
}

void nmf_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc) {
    nmf_gemm_with(nmf_gemm_backend_active(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                  beta, C, ldc);
}
