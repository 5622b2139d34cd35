/* Dense backend: oneDNN's sgemm. oneDNN picks its JIT kernels by CPU features (cpuid), not by
 * model number, so it runs AVX2 / AVX-512 code on CPUs newer than the library; it also has a
 * real matrix-vector path for one-row products. Built only when CMake finds oneDNN
 * (NMF_HAVE_ONEDNN); otherwise this backend is listed without a gemm function. */
#include <stdio.h>

#include "kernels/gemm_backend.h"

#ifdef NMF_HAVE_ONEDNN
#include <dnnl.h>
#include <omp.h>

/* oneDNN (OpenMP build) runs omp_get_max_threads() threads when called outside a parallel
 * region. Our products must stay on the calling thread (gemm.c threads by slabs), so the call
 * runs inside a one-thread team whose own thread count is set to 1: that changes the setting of
 * this team only, never the host program's. Inside an active parallel region oneDNN is
 * sequential by itself. */
static void onednn_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                        const float *A, size_t lda, const float *B, size_t ldb, float beta,
                        float *C, size_t ldc) {
    const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    if (omp_in_parallel()) {
        dnnl_sgemm(ta, tb, (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, alpha, A,
                   (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
        return;
    }
#pragma omp parallel num_threads(1)
    {
        omp_set_num_threads(1);
        dnnl_sgemm(ta, tb, (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, alpha, A,
                   (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
    }
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse4.1";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic:
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "generic";
    }
}

static const char *onednn_describe(char *buf, size_t cap) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, cap, "oneDNN %d.%d.%d, %s kernels", v->major, v->minor, v->patch,
             isa_name(dnnl_get_effective_cpu_isa()));
    return buf;
}

/* oneDNN decides by features: it is generic only on a CPU without AVX. */
static int onednn_is_generic(void) {
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_all || isa == dnnl_cpu_isa_sse41;
}

const nmf_gemm_backend_ops nmf_gemm_onednn = {"onednn", onednn_gemm, onednn_describe,
                                              onednn_is_generic};
#else
static const char *onednn_describe(char *buf, size_t cap) {
    snprintf(buf, cap, "oneDNN (not built in)");
    return buf;
}
static int onednn_is_generic(void) { return 0; }
const nmf_gemm_backend_ops nmf_gemm_onednn = {"onednn", NULL, onednn_describe, onednn_is_generic};
#endif
