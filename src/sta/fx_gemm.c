/* The scalar reference of the fixed-point products (fx_gemm.h) and the choice of kernel. */
#include "sta/fx_gemm.h"

void fx_gemm_scalar(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *B,
                    size_t ldb, int T, int O, int K, fx_acc acc) {
    (void)acc; /* int64 is exact in every mode */
    for (int t = 0; t < T; t++)
        for (int o = 0; o < O; o++) {
            const int16_t *a = A + (size_t)t * lda, *b = B + (size_t)o * ldb;
            int64_t s = 0;
            for (int k = 0; k < K; k++) s += (int64_t)a[k] * b[k];
            C[(size_t)t * ldc + (size_t)o] = s;
        }
}

fx_gemm_fn fx_gemm_for(nmf_isa isa) {
    if (isa > nmf_cpu_best_isa()) isa = nmf_cpu_best_isa();
    return isa >= NMF_ISA_AVX2 ? fx_gemm_avx2 : fx_gemm_scalar;
}

const char *fx_acc_name(fx_acc a) {
    static const char *const names[FX_ACC_COUNT] = {"int32", "int32 pairs -> int64", "int64"};
    return (unsigned)a < FX_ACC_COUNT ? names[a] : "?";
}

fx_acc fx_acc_for(int64_t amax, int64_t bmax, int64_t bsum) {
    const int64_t lim = (int64_t)1 << 31;
    /* amax, bmax <= 2^15 and bsum <= K 2^15: the products below fit int64 for K < 2^32 */
    if (bsum * amax < lim) return FX_ACC32;
    if (2 * amax * bmax < lim) return FX_ACC64_PAIRS;
    return FX_ACC64;
}
