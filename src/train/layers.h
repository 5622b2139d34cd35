/* Training layers: each a _forward/_backward pair (llm.c style). Outputs first; shapes in
 * comments; N = rows (B*T tokens). Backward functions ACCUMULATE (+=) into their outputs, so the
 * caller zeroes gradient buffers once per step (a tensor used twice simply sums). */
#ifndef NMF_TRAIN_LAYERS_H
#define NMF_TRAIN_LAYERS_H

#include <stddef.h>

/* Longest token sequence we train with (the attention saves B*NH*T*T probabilities). */
#define NMF_TRAIN_MAX_T 4096

/* out = inp W^T + bias.  out (N, OC), inp (N, C), W (OC, C), bias (OC) or NULL. */
void matmul_forward(float *out, const float *inp, const float *w, const float *bias, size_t N,
                    size_t C, size_t OC);
/* dinp += dout W, dweight += dout^T inp, dbias += colsum(dout). dinp may be NULL. */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *w, size_t N, size_t C, size_t OC);

/* LayerNorm over C (biased variance; eps: timm's ViT 1e-6, GPT-2 1e-5), saving mean/rstd (N)
 * for backward (which needs no eps: it reads rstd). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, size_t N, size_t C, float eps);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, size_t N, size_t C);

/* Exact (erf) GELU; forward saves Phi(x) (cdf) so that backward needs no second erf. */
void gelu_forward(float *out, float *cdf, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *cdf, const float *dout, size_t n);
/* GPT-2's tanh GELU (gelu_new): out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
 * forward saves tanh(u) (th) so that backward needs no second tanh. */
void gelu_tanh_forward(float *out, float *th, const float *inp, size_t n);
void gelu_tanh_backward(float *dinp, const float *inp, const float *th, const float *dout, size_t n);

/* Multi-head self-attention. qkv (B, T, 3C) in timm's (3, heads, hd) order (GPT-2's c_attn
 * output has the same layout); att (B, NH, T, T) saves the softmax probabilities; out (B, T, C).
 * causal: query t sees keys 0..t only (decoders); its probabilities past t are stored as 0. */
/* scratch: nscratch threads x attention_scratch_floats(T, C, NH) floats (one slice each). */
static inline size_t attention_scratch_floats(int T, int C, int NH) {
    return (size_t)(C / NH) * (size_t)T + 2 * (size_t)T;
}
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                       int causal, float *scratch, int nscratch);
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B,
                        int T, int C, int NH, int causal, float *scratch, int nscratch);

/* out = a + b (n). */
void residual_forward(float *out, const float *a, const float *b, size_t n);

/* Softmax cross-entropy: probs (B, K); losses (B); labels (B). Returns the mean loss. */
float crossentropy_forward(float *probs, float *losses, const float *logits, const int *labels,
                           int B, int K);
/* dlogits += (probs - onehot) / B. */
/* dlogits += (probs - onehot) / denom: the gradient of (sum of the B losses) / denom */
void crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B, int K,
                           int denom);

#endif
