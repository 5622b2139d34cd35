/* Dense x dense through CBLAS (OpenBLAS). OpenBLAS is kept single-threaded; we thread with our
 * own OpenMP (nmf_get_threads()) by splitting C into row or column slabs, each a
 * single-threaded sgemm. That way a product called from inside our parallel regions (attention
 * per head, a layer per token block) never oversubscribes the cores, and a product called from
 * outside still uses every thread. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "nmformer/kernels.h"

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_threaded(void) { openblas_set_num_threads(1); }

void nmf_blas_init(void) { pthread_once(&blas_once, blas_single_threaded); }

/* Below this many multiply-adds a product is not worth a parallel region. */
#define GEMM_PARALLEL_MIN_FMAS (1u << 18)

void nmf_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc) {
    if (M == 0 || N == 0) return;
    nmf_blas_init();
    const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    if (M == 1) {
        /* one row: a matrix-vector product, which sgemm does poorly (it packs all of B per
         * call); sgemv streams B once. c = alpha op(B)^T a + beta c, a = row 0 of op(A). */
        const int inc_a = trans_a ? (int)lda : 1;
        if (trans_b) /* op(B) = B^T, B is [N][K] */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)K, alpha, B, (int)ldb, A, inc_a,
                        beta, C, 1);
        else /* B is [K][N] */
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)K, (int)N, alpha, B, (int)ldb, A, inc_a,
                        beta, C, 1);
        return;
    }
    int threads = omp_in_parallel() ? 1 : nmf_get_threads();
    if ((double)M * (double)N * (double)K < GEMM_PARALLEL_MIN_FMAS) threads = 1;
    if (threads <= 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
                    (int)ldb, beta, C, (int)ldc);
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
            cblas_sgemm(CblasRowMajor, ta, tb, (int)cnt, (int)N, (int)K, alpha, a, (int)lda, B,
                        (int)ldb, beta, C + lo * ldc, (int)ldc);
        } else { /* columns lo.. of op(B) and C */
            const float *b = trans_b ? B + lo * ldb : B + lo;
            cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)cnt, (int)K, alpha, A, (int)lda, b,
                        (int)ldb, beta, C + lo, (int)ldc);
        }
    }
}
