/* Dense products (nmf_gemm / nmf_gemm_with) on every backend built in, against a naive double
 * product: every transposition, leading dimensions larger than the rows, alpha/beta, one-row
 * products (matrix-vector paths), and the threaded slabs (rows split when M >= N, columns split
 * otherwise, a one-row product split by columns). Also the backend registry: names, the active
 * choice, descriptions. */
#include "nmformer/kernels.h"
#include "test.h"

static unsigned long long rng = 0x2545F4914F6CDD1Dull;

/* C = alpha op(A) op(B) + beta C0 in double, compared with what the backend wrote into C. */
static void check_product(nmf_gemm_backend be, int ta, int tb, size_t M, size_t N, size_t K,
                          int threads) {
    const size_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
    const size_t rows_a = ta ? K : M, rows_b = tb ? N : K;
    float *A = nmf_alloc(rows_a * lda, sizeof(float)), *B = nmf_alloc(rows_b * ldb, sizeof(float));
    float *C = nmf_alloc(M * ldc, sizeof(float)), *C0 = nmf_alloc(M * ldc, sizeof(float));
    if (!A || !B || !C || !C0) {
        CHECK_MSG(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < rows_a * lda; i++) A[i] = test_rand_float(&rng);
    for (size_t i = 0; i < rows_b * ldb; i++) B[i] = test_rand_float(&rng);
    for (size_t i = 0; i < M * ldc; i++) C[i] = C0[i] = test_rand_float(&rng);
    nmf_set_threads(threads);
    nmf_gemm_with(be, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C, ldc);
    size_t bad = 0;
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < N; j++) {
            double s = 0.0, mag = 0.0;
            for (size_t k = 0; k < K; k++) {
                const double p = (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                                 (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
                s += p;
                mag += fabs(p);
            }
            const double want = 0.5 * s + 0.25 * C0[i * ldc + j];
            if (!(fabs(C[i * ldc + j] - want) <= 1e-5 * (mag + 1.0))) bad++;
        }
        for (size_t j = N; j < ldc; j++) /* the padding of C is never written */
            if (C[i * ldc + j] != C0[i * ldc + j]) bad++;
    }
    CHECK_MSG(bad == 0, "%s: M=%zu N=%zu K=%zu ta=%d tb=%d threads=%d: %zu wrong",
              nmf_gemm_backend_name(be), M, N, K, ta, tb, threads, bad);
done:
    nmf_free(A); nmf_free(B); nmf_free(C); nmf_free(C0);
}

int main(void) {
    /* the registry */
    int available = 0;
    char desc[128];
    for (int b = 0; b < NMF_GEMM_BACKEND_COUNT; b++) {
        const char *name = nmf_gemm_backend_name((nmf_gemm_backend)b);
        CHECK(name && *name && strcmp(name, "unknown"));
        for (int c = 0; c < b; c++) CHECK(strcmp(name, nmf_gemm_backend_name((nmf_gemm_backend)c)));
        nmf_gemm_backend_describe((nmf_gemm_backend)b, desc, sizeof desc);
        CHECK(desc[0] != 0);
        available += nmf_gemm_backend_available((nmf_gemm_backend)b);
    }
    CHECK(nmf_gemm_backend_available(NMF_GEMM_OPENBLAS)); /* always linked */
    CHECK(!nmf_gemm_backend_available(NMF_GEMM_BACKEND_COUNT));
    CHECK(!strcmp(nmf_gemm_backend_name(NMF_GEMM_BACKEND_COUNT), "unknown"));
    const nmf_gemm_backend active = nmf_gemm_backend_active();
    CHECK(nmf_gemm_backend_available(active));
    const char *forced = getenv("NMF_GEMM");
    if (forced && *forced)
        CHECK_MSG(!strcmp(forced, nmf_gemm_backend_name(active)), "NMF_GEMM=%s not honoured", forced);
    else if (nmf_gemm_backend_available(NMF_GEMM_ONEDNN) && !nmf_gemm_backend_generic(NMF_GEMM_ONEDNN))
        CHECK_MSG(active == NMF_GEMM_ONEDNN, "oneDNN is built in but %s is active",
                  nmf_gemm_backend_name(active));
    nmf_gemm_backend_describe(active, desc, sizeof desc);
    printf("dense backends built in: %d; active: %s (%s)\n", available, nmf_gemm_backend_name(active), desc);

    for (int b = 0; b < NMF_GEMM_BACKEND_COUNT; b++) {
        const nmf_gemm_backend be = (nmf_gemm_backend)b;
        if (!nmf_gemm_backend_available(be)) continue;
        /* every transposition on small odd shapes, one thread; M = 1 is a matrix-vector product */
        const size_t Ms[] = {1, 2, 37};
        for (size_t mi = 0; mi < 3; mi++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) check_product(be, ta, tb, Ms[mi], 29, 23, 1);
        /* big enough to be split across two threads: rows (M >= N), columns (M < N), and a
         * one-row product split by columns, in both layouts of B; slabs of 16 with a ragged end */
        for (int tb = 0; tb < 2; tb++) {
            check_product(be, 0, tb, 161, 97, 64, 2);
            check_product(be, 1, tb, 50, 333, 40, 2);
            check_product(be, 0, tb, 1, 1100, 300, 2);
        }
        check_product(be, 0, 1, 1, 1100, 300, 1);
    }
    /* an unavailable backend means the active one, and M or N = 0 is a no-op */
    check_product(NMF_GEMM_BACKEND_COUNT, 0, 1, 3, 5, 7, 1);
    float c = 1.0f;
    nmf_gemm(0, 0, 0, 1, 1, 1.0f, NULL, 1, NULL, 1, 0.0f, &c, 1);
    CHECK(c == 1.0f);
    return test_finish("test_gemm");
}
