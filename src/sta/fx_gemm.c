/* The panel layout, the scalar reference of the fixed-point products (fx_gemm.h) and the choice
 * of kernel. */
#include <string.h>

#include "sta/fx_gemm.h"

void fx_panel_pack(int16_t *P, const int16_t *rows, size_t ldr, int O, int K, int transposed) {
    const int K2 = (K + 1) / 2, blocks = (O + FX_PANEL - 1) / FX_PANEL;
    memset(P, 0, fx_panel_size(O, K) * sizeof *P);
    for (int ob = 0; ob < blocks; ob++)
        for (int i = 0; i < FX_PANEL && ob * FX_PANEL + i < O; i++) {
            const int o = ob * FX_PANEL + i;
            for (int k = 0; k < K; k++)
                P[((size_t)ob * K2 + (size_t)(k / 2)) * 2 * FX_PANEL + 2 * (size_t)i + (size_t)(k % 2)] =
                    transposed ? rows[(size_t)k * ldr + (size_t)o] : rows[(size_t)o * ldr + (size_t)k];
        }
}

void fx_gemm_scalar(int64_t *C, size_t ldc, const int16_t *A, size_t lda, const int16_t *P, int T,
                    int O, int K, fx_acc acc) {
    (void)acc; /* int64 is exact in every mode */
    const int K2 = (K + 1) / 2;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < O; o++) {
            const int16_t *a = A + (size_t)t * lda;
            const int16_t *p = P + (size_t)(o / FX_PANEL) * (size_t)K2 * 2 * FX_PANEL + 2 * (size_t)(o % FX_PANEL);
            int64_t s = 0;
            for (int k = 0; k < K; k++) s += (int64_t)a[k] * p[(size_t)(k / 2) * 2 * FX_PANEL + (size_t)(k % 2)];
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
