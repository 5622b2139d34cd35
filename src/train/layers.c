/* Forward/backward pairs of the ViT's layers. Products go through nmf_gemm (oneDNN or
 * OpenBLAS); the rest is OpenMP over rows. Reductions over rows (weight/bias gradients of
 * LayerNorm, biases) run in a fixed order so that a run is bit-reproducible for a given thread
 * count (resume relies on this). */
#include "train/layers.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "nmformer/kernels.h"
#include "nmformer/ops.h"

/* Below this much work a parallel region costs more than it saves (and on a busy machine a
 * barrier waiting for a descheduled thread costs a whole time slice). */
#define PAR_MIN ((size_t)1 << 15)

void matmul_forward(float *out, const float *inp, const float *w, const float *bias, size_t N,
                    size_t C, size_t OC) {
    // out (N, OC) = inp (N, C) . w^T (C, OC)
    nmf_gemm(0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static) if (N * OC > PAR_MIN)
        for (size_t n = 0; n < N; n++)
            for (size_t o = 0; o < OC; o++) out[n * OC + o] += bias[o];
    }
}

void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *w, size_t N, size_t C, size_t OC) {
    // dinp (N, C) += dout (N, OC) . w (OC, C)
    if (dinp) nmf_gemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    // dweight (OC, C) += dout^T (OC, N) . inp (N, C)
    nmf_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        /* per output column, rows in order: deterministic */
#pragma omp parallel for schedule(static) if (N * OC > PAR_MIN)
        for (size_t o = 0; o < OC; o++) {
            float s = 0.0f;
            for (size_t n = 0; n < N; n++) s += dout[n * OC + o];
            dbias[o] += s;
        }
    }
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, size_t N, size_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float m = 0.0f;
        for (size_t i = 0; i < C; i++) m += x[i];
        m /= (float)C;
        float v = 0.0f;
        for (size_t i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        float *o = out + n * C;
        for (size_t i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, size_t N, size_t C) {
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *dy = dout + n * C, *x = inp + n * C;
        float m = mean[n], s = rstd[n];
        // two reductions: mean(dnorm) and mean(dnorm * norm)
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (size_t i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = w[i] * dy[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        float *dx = dinp + n * C;
        for (size_t i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = w[i] * dy[i];
            dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
    /* parameter gradients: columns in parallel, rows in order */
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (size_t i = 0; i < C; i++) {
        float gw = 0.0f, gb = 0.0f;
        for (size_t n = 0; n < N; n++) {
            float dy = dout[n * C + i];
            gw += (inp[n * C + i] - mean[n]) * rstd[n] * dy;
            gb += dy;
        }
        dw[i] += gw;
        db[i] += gb;
    }
}

void gelu_forward(float *out, float *cdf, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN / 4)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], phi = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
        cdf[i] = phi;
        out[i] = x * phi;
    }
}

void gelu_backward(float *dinp, const float *inp, const float *cdf, const float *dout, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for schedule(static) if (n > PAR_MIN / 4)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float pdf = inv_sqrt_2pi * expf(-0.5f * x * x);
        dinp[i] += (cdf[i] + x * pdf) * dout[i];
    }
}

void gelu_tanh_forward(float *out, float *th, const float *inp, size_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
#pragma omp parallel for schedule(static) if (n > PAR_MIN / 4)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], t = tanhf(k * (x + 0.044715f * x * x * x));
        th[i] = t;
        out[i] = 0.5f * x * (1.0f + t);
    }
}

void gelu_tanh_backward(float *dinp, const float *inp, const float *th, const float *dout,
                        size_t n) {
    const float k = 0.7978845608028654f;
#pragma omp parallel for schedule(static) if (n > PAR_MIN / 4)
    for (size_t i = 0; i < n; i++) {
        // d/dx 0.5 x (1 + t) = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx,  du/dx = k (1 + 3 0.044715 x^2)
        float x = inp[i], t = th[i];
        float du = k * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du) * dout[i];
    }
}

/* Per (b, h) we copy K and V into transposed scratch kt/vt (hd, T), so that the score and
 * dL/d(score) loops run over t2 with unit stride (they vectorise without reassociating sums). */
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                       int causal, float *scratch, int nscratch) {
    const int hd = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel num_threads(nscratch) if ((size_t)B * NH * T * T * hd > PAR_MIN)
    {
        float *kt = scratch + (size_t)omp_get_thread_num() * attention_scratch_floats(T, C, NH);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                const float *base = qkv + (size_t)b * T * C3;
                for (int t2 = 0; t2 < T; t2++)
                    for (int i = 0; i < hd; i++)
                        kt[(size_t)i * T + t2] = base[(size_t)t2 * C3 + C + h * hd + i];
                for (int t = 0; t < T; t++) {
                    const float *q = base + (size_t)t * C3 + h * hd;
                    float *a = att + (((size_t)b * NH + h) * T + t) * T;
                    const int n = causal ? t + 1 : T; /* keys this query sees */
                    for (int t2 = 0; t2 < T; t2++) a[t2] = 0.0f;
                    for (int i = 0; i < hd; i++) {
                        const float qi = q[i] * scale, *kr = kt + (size_t)i * T;
                        for (int t2 = 0; t2 < n; t2++) a[t2] += qi * kr[t2];
                    }
                    float maxv = a[0];
                    for (int t2 = 1; t2 < n; t2++) maxv = a[t2] > maxv ? a[t2] : maxv;
                    float sum = 0.0f;
                    for (int t2 = 0; t2 < n; t2++) {
                        a[t2] = expf(a[t2] - maxv);
                        sum += a[t2];
                    }
                    const float inv = 1.0f / sum;
                    for (int t2 = 0; t2 < n; t2++) a[t2] *= inv;
                    float *o = out + ((size_t)b * T + t) * C + h * hd;
                    for (int i = 0; i < hd; i++) o[i] = 0.0f;
                    for (int t2 = 0; t2 < n; t2++) {
                        const float *v = base + (size_t)t2 * C3 + 2 * C + h * hd, at = a[t2];
                        for (int i = 0; i < hd; i++) o[i] += at * v[i];
                    }
                }
            }
    }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B,
                        int T, int C, int NH, int causal, float *scratch, int nscratch) {
    const int hd = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
    /* every (b, h) touches only its own slices of dqkv: no races */
#pragma omp parallel num_threads(nscratch) if ((size_t)B * NH * T * T * hd > PAR_MIN)
    {
        float *vt = scratch + (size_t)omp_get_thread_num() * attention_scratch_floats(T, C, NH);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                float *datt = vt + (size_t)hd * T, *dpre = datt + T;
                const float *base = qkv + (size_t)b * T * C3;
                float *dbase = dqkv + (size_t)b * T * C3;
                for (int t2 = 0; t2 < T; t2++)
                    for (int i = 0; i < hd; i++)
                        vt[(size_t)i * T + t2] = base[(size_t)t2 * C3 + 2 * C + h * hd + i];
                for (int t = 0; t < T; t++) {
                    const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                    const float *dy = dout + ((size_t)b * T + t) * C + h * hd;
                    /* causal: probabilities past t are 0, so are their gradients */
                    const int n = causal ? t + 1 : T;
                    // out = a . v  ->  datt = dy . v^T,  dv += a^T dy
                    for (int t2 = 0; t2 < n; t2++) datt[t2] = 0.0f;
                    for (int i = 0; i < hd; i++) {
                        const float di = dy[i], *vr = vt + (size_t)i * T;
                        for (int t2 = 0; t2 < n; t2++) datt[t2] += di * vr[t2];
                    }
                    for (int t2 = 0; t2 < n; t2++) {
                        float *dv = dbase + (size_t)t2 * C3 + 2 * C + h * hd;
                        const float at = a[t2];
                        for (int i = 0; i < hd; i++) dv[i] += at * dy[i];
                    }
                    // softmax backward: dpre = a * (datt - sum(a * datt)); scores = q.k * scale
                    float dot = 0.0f;
                    for (int t2 = 0; t2 < n; t2++) dot += a[t2] * datt[t2];
                    for (int t2 = 0; t2 < n; t2++) dpre[t2] = a[t2] * (datt[t2] - dot) * scale;
                    const float *q = base + (size_t)t * C3 + h * hd;
                    float *dq = dbase + (size_t)t * C3 + h * hd;
                    for (int t2 = 0; t2 < n; t2++) {
                        const float *k = base + (size_t)t2 * C3 + C + h * hd;
                        float *dk = dbase + (size_t)t2 * C3 + C + h * hd;
                        const float dp = dpre[t2];
                        for (int i = 0; i < hd; i++) {
                            dq[i] += dp * k[i];
                            dk[i] += dp * q[i];
                        }
                    }
                }
            }
    }
}

void residual_forward(float *out, const float *a, const float *b, size_t n) {
    nmf_add_forward(out, a, b, n);
}

float crossentropy_forward(float *probs, float *losses, const float *logits, const int *labels,
                           int B, int K) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float maxv = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > maxv) maxv = z[k];
        float sum = 0.0f;
        for (int k = 0; k < K; k++) {
            p[k] = expf(z[k] - maxv);
            sum += p[k];
        }
        for (int k = 0; k < K; k++) p[k] /= sum;
        /* log-softmax directly: no log(0) for a confident wrong answer */
        losses[b] = logf(sum) - (z[labels[b]] - maxv);
        total += losses[b];
    }
    return (float)(total / B);
}

void crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B, int K,
                           int denom) {
    const float inv = 1.0f / (float)denom;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            dlogits[(size_t)b * K + k] +=
                (probs[(size_t)b * K + k] - (k == labels[b] ? 1.0f : 0.0f)) * inv;
}
