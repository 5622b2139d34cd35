/* int8 N:M forward in portable C on the window layout (NMF_ISA=scalar, and CPUs without AVX2):
 * the loops of the AVX2 kernel, one row and one token at a time, on the same integers. */
#include "kernels/ops_internal.h"
#include "kernels/spmm_q8.h"

void nmf_q8_forward_scalar(float *y, const uint8_t *xq, size_t ldq, const float *sx,
                           size_t tokens, const nmf_q8_weights *w, const float *bias,
                           nmf_activation act, size_t rb0, size_t rb1) {
    const size_t out = w->out, W = w->windows, S = w->steps, block = W * S * 16;
    for (size_t rb = rb0; rb < rb1; rb++) {
        const size_t o0 = rb * NMF_Q8_ROWS;
        const size_t rows = out - o0 < NMF_Q8_ROWS ? out - o0 : NMF_Q8_ROWS;
        for (size_t t = 0; t < tokens; t++) {
            const uint8_t *xt = xq + t * ldq; // (ldq)
            const int8_t *q = w->q + rb * block;
            const uint8_t *pos = w->pos + rb * block;
            int32_t acc[NMF_Q8_ROWS] = {0};
            for (size_t v = 0; v < W; v++, q += S * 16, pos += S * 16)
                for (size_t s = 0; s < S * 16; s++) /* slot s: row (s % 16) / 2 */
                    acc[(s % 16) / 2] += (int32_t)xt[v * NMF_Q8_WIN + pos[s]] * q[s];
            float *yt = y + t * out + o0;
            for (size_t r = 0; r < rows; r++)
                yt[r] = nmf_q8_out(acc[r] - w->off[o0 + r], sx[t], w->scale[o0 + r],
                                   bias ? bias[o0 + r] : 0.0f);
            if (act == NMF_ACT_GELU) nmf_gelu_forward_ref(yt, yt, rows);
        }
    }
}
