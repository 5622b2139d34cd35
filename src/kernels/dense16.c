/* Scalar reference of the 16-bit dense products (dense16.h): widen, then sum in index order. */
#include "kernels/dense16.h"

static float widen(uint16_t h, nmf_dtype dt) {
    return dt == NMF_DTYPE_F16 ? nmf_f16_to_f32(h) : nmf_bf16_to_f32(h);
}

void nmf_dense16_rows_scalar(float *y, size_t ldy, const float *x, size_t ldx,
                             const nmf_dense16 *w, size_t tokens, size_t r0, size_t r1) {
    const size_t in = w->in;
    for (size_t t = 0; t < tokens; t++)
        for (size_t o = r0; o < r1; o++) {
            const uint16_t *wr = w->w + o * in;
            const float *xt = x + t * ldx;
            float s = 0.0f;
            for (size_t i = 0; i < in; i++) s += widen(wr[i], w->dtype) * xt[i];
            y[t * ldy + o] = s;
        }
}

void nmf_dense16_widen_scalar(float *dst, const nmf_dense16 *w, size_t r0, size_t r1, size_t c0,
                              size_t c1) {
    for (size_t o = r0; o < r1; o++)
        for (size_t i = c0; i < c1; i++) *dst++ = widen(w->w[o * w->in + i], w->dtype);
}
