/* Portable C kernels on the panel layout (NMF_ISA=scalar, and any CPU without AVX2). Same loop
 * order as the SIMD kernels, one row of the panel at a time. */
#include "kernels/ops_internal.h"
#include "kernels/spmm.h"
#include "kernels/spmm_backward.h"
#include "nmformer/tensor.h"

void nmf_spmm_forward_scalar(float *y, const float *x, size_t ldx, size_t x_slack,
                             const nmf_spmm_weights *w, const float *bias, size_t tokens,
                             nmf_activation act, size_t p0, size_t p1,
                             const nmf_spmm_params *prm) {
    const int bf = prm && prm->bf16 && w->val16; /* bf16 values: the layer's plan says */
    (void)x_slack; /* reads only kept columns */
    const size_t out = w->out, G = w->groups, n = (size_t)w->n, m = (size_t)w->m;
    const size_t panel_slots = G * n * NMF_SPMM_ROWS;
    for (size_t t = 0; t < tokens; t++) {
        const float *xt = x + t * ldx; // (in)
        for (size_t b = p0; b < p1; b++) {
            const size_t r0 = b * NMF_SPMM_ROWS;
            const size_t rows = out - r0 < NMF_SPMM_ROWS ? out - r0 : NMF_SPMM_ROWS;
            float acc[NMF_SPMM_ROWS];
            for (size_t r = 0; r < NMF_SPMM_ROWS; r++) acc[r] = (bias && r < rows) ? bias[r0 + r] : 0.0f;
            size_t s = b * panel_slots; /* the slot's first value */
            for (size_t g = 0; g < G; g++) {
                const float *xg = xt + g * m;
                for (size_t k = 0; k < n; k++, s += NMF_SPMM_ROWS) {
                    for (size_t r = 0; r < NMF_SPMM_ROWS; r++) {
                        const float v = bf ? nmf_bf16_to_f32(w->val16[s + r % 8 * 2 + r / 8])
                                           : w->val[s + r]; /* bf16: rows paired (spmm.h) */
                        const size_t pos = bf && w->idx4 ? (size_t)nmf_idx4_get(w->idx4 + s / 2, (unsigned)r)
                                                         : w->idx[s + r]; /* nibbles: spmm.h */
                        acc[r] += v * xg[pos];
                    }
                }
            }
            float *yt = y + t * out + r0;
            for (size_t r = 0; r < rows; r++) yt[r] = acc[r];
            if (act == NMF_ACT_GELU) nmf_gelu_forward_ref(yt, yt, rows);
        }
    }
}

void nmf_spmm_backward_scalar(float *dx, const float *dy, const nmf_spmm_weights *w, size_t t0,
                              size_t t1, float *work) {
    spmm_backward_impl(dx, dy, w, t0, t1, work);
}
