/* Scalar reference for the N:M products, on the canonical packed matrix (nm.h). Kept forever:
 * it is what every optimised kernel is tested against, and it shares no code with them (the
 * kernels run on the panel layout of spmm.h). Sums in double, in the plain order. */
#include <math.h>

#include "kernels/spmm_q8.h"

void nmf_spmm_ref_forward(float *y, const float *x, const nmf_nm_matrix *w, const float *bias,
                          size_t tokens, nmf_activation act) {
    const size_t out = w->rows, in = w->cols, slots = w->groups * (size_t)w->pattern.n;
    const size_t n = (size_t)w->pattern.n, m = (size_t)w->pattern.m;
    for (size_t t = 0; t < tokens; t++) {
        const float *xt = x + t * in; // (in)
        for (size_t o = 0; o < out; o++) {
            const float *v = w->values + o * slots;
            const uint8_t *p = w->pos + o * slots;
            double s = bias ? (double)bias[o] : 0.0;
            for (size_t j = 0; j < slots; j++) {
                size_t col = (j / n) * m + p[j];
                if (col < in) s += (double)v[j] * (double)xt[col]; /* padding columns are 0 */
            }
            float r = (float)s;
            if (act == NMF_ACT_GELU) r = (float)(0.5 * s * (1.0 + erf(s * 0.70710678118654752)));
            y[t * out + o] = r;
        }
    }
}

void nmf_spmm_ref_backward_input(float *dx, const float *dy, const nmf_nm_matrix *w,
                                 size_t tokens) {
    const size_t out = w->rows, in = w->cols, slots = w->groups * (size_t)w->pattern.n;
    const size_t n = (size_t)w->pattern.n, m = (size_t)w->pattern.m;
    double acc[4096];
    for (size_t t = 0; t < tokens; t++) {
        /* dx row in chunks of 4096 columns so that the sum stays in double without a heap */
        for (size_t c0 = 0; c0 < in; c0 += 4096) {
            size_t c1 = in - c0 < 4096 ? in : c0 + 4096;
            for (size_t c = c0; c < c1; c++) acc[c - c0] = 0.0;
            for (size_t o = 0; o < out; o++) {
                double d = dy[t * out + o];
                const float *v = w->values + o * slots;
                const uint8_t *p = w->pos + o * slots;
                for (size_t j = 0; j < slots; j++) {
                    size_t col = (j / n) * m + p[j];
                    if (col >= c0 && col < c1) acc[col - c0] += d * (double)v[j];
                }
            }
            for (size_t c = c0; c < c1; c++) dx[t * in + c] = (float)acc[c - c0];
        }
    }
}

/* int8: the numerics of spmm_q8.h on the canonical matrix, quantising as they define; sums in
 * int64 (no bound needed), one token and one row at a time. */
void nmf_q8_ref_forward(float *y, const float *x, const nmf_nm_matrix *w, const float *bias,
                        size_t tokens, nmf_activation act) {
    const size_t out = w->rows, in = w->cols, slots = w->groups * (size_t)w->pattern.n;
    const size_t n = (size_t)w->pattern.n, m = (size_t)w->pattern.m;
    for (size_t t = 0; t < tokens; t++) {
        const float *xt = x + t * in; // (in)
        float amax = 0.0f, inv;
        for (size_t i = 0; i < in; i++) amax = fmaxf(amax, fabsf(xt[i]));
        const float sx = nmf_q8_scale(amax, &inv);
        for (size_t o = 0; o < out; o++) {
            const float *v = w->values + o * slots;
            const uint8_t *p = w->pos + o * slots;
            float wmax = 0.0f, winv;
            for (size_t j = 0; j < slots; j++)
                if ((j / n) * m + p[j] < in) wmax = fmaxf(wmax, fabsf(v[j]));
            const float sw = nmf_q8_scale(wmax, &winv);
            int64_t acc = 0;
            for (size_t j = 0; j < slots; j++) {
                const size_t col = (j / n) * m + p[j];
                if (col < in) acc += (int64_t)nmf_q8_round(xt[col] * inv) * nmf_q8_round(v[j] * winv);
            }
            float r = nmf_q8_out((int32_t)acc, sx, sw, bias ? bias[o] : 0.0f);
            if (act == NMF_ACT_GELU) r = (float)(0.5 * r * (1.0 + erf(r * 0.70710678118654752)));
            y[t * out + o] = r;
        }
    }
}
