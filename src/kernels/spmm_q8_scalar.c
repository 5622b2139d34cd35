/* int8 forward in portable C on a window layout of any geometry (NMF_ISA=scalar, CPUs without
 * AVX2, and the reference of the SIMD kernels): their loops, one row and one token at a time, on
 * the same integers. */
#include "kernels/gelu_q8.h"
#include "kernels/ops_internal.h"
#include "kernels/spmm_q8.h"

void nmf_q8_forward_scalar(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                           size_t tokens, const nmf_q8_weights *w, const float *bias,
                           nmf_activation act, size_t rb0, size_t rb1) {
    const size_t out = w->out, W = w->windows, R = w->g.rows, V = w->g.win, K = w->g.slots;
    const size_t step = R * K, block = W * w->steps * step;
    for (size_t rb = rb0; rb < rb1; rb++) {
        const size_t o0 = rb * R;
        const size_t rows = out - o0 < R ? out - o0 : R;
        for (size_t t = 0; t < tokens; t++) {
            const uint8_t *xt = xq + t * ldq; // (ldq)
            const int8_t *q = w->q + rb * block;
            const uint8_t *pos = w->pos ? w->pos + rb * block : NULL;
            int32_t acc[NMF_Q8_MAX_ROWS] = {0};
            for (size_t v = 0; v < W; v++, q += w->steps * step, pos = pos ? pos + w->steps * step : NULL)
                for (size_t s = 0; s < w->steps * step; s++) /* slot s: row (s % step) / K */
                    acc[(s % step) / K] +=
                        (int32_t)xt[v * V + (pos ? pos[s] : s / step * K + s % K)] * q[s];
            float *yt = y + t * out + o0;
            for (size_t r = 0; r < rows; r++) {
                yt[r] = nmf_q8_out(acc[r] - w->off[o0 + r], sx[t], w->scale[o0 + r],
                                   bias ? bias[o0 + r] : 0.0f);
                if (act == NMF_ACT_GELU) yt[r] = nmf_gelu_q8(yt[r]);
            }
        }
    }
}
