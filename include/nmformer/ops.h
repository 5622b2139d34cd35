/* Forward operators of a Transformer block besides the linears (those are in kernels.h):
 * LayerNorm, GELU (exact and tanh), SiLU, and attention.
 *
 * Attention is fused: softmax(Q K^T * scale) V is computed tile by tile over the keys with a
 * running max and a running sum per query (online softmax), so the Tq x Tk score matrix is never
 * written to memory -- the software counterpart of STA's scalable softmax. A naive version that
 * does materialise the scores is kept as the reference the tests compare against.
 *
 * Every operator has a scalar reference and SIMD versions picked by nmf_active_isa()
 * (NMF_ISA=scalar forces the reference). Shapes are in comments as (rows, cols), row-major. */
#ifndef NMFORMER_OPS_H
#define NMFORMER_OPS_H

#include "nmformer/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NMF_LAYERNORM_EPS 1e-6f /* timm ViT */

/* y[t] = (x[t] - mean(x[t])) / sqrt(var(x[t]) + eps) * w + b      y, x (tokens, C); y may == x.
 * Variance is the biased one (as torch.nn.LayerNorm). Threaded over tokens. */
NMF_API void nmf_layernorm_forward(float *y, const float *x, const float *w, const float *b,
                           size_t tokens, size_t C, float eps);

/* The residual stream's add fused into the LayerNorm after it: sum = x + r, then
 * y = LayerNorm(sum) as nmf_layernorm_forward. sum, y, x, r (tokens, C); sum may == x or r, y
 * may == r (not sum). Threaded over tokens. */
NMF_API void nmf_add_layernorm_forward(float *y, float *sum, const float *x, const float *r,
                                       const float *w, const float *b, size_t tokens, size_t C,
                                       float eps);

/* y[i] = a[i] + b[i] (the residual add)      y may == a or b. Threaded for large n. */
NMF_API void nmf_add_forward(float *y, const float *a, const float *b, size_t n);

/* RMSNorm (LLaMA, in f32 as HF's LlamaRMSNorm): y[t] = w * (x[t] * rsqrt(mean(x[t]^2) + eps)).
 * y, x (tokens, C); y may == x. Threaded over tokens. */
NMF_API void nmf_rmsnorm_forward(float *y, const float *x, const float *w, size_t tokens, size_t C,
                                 float eps);

/* y[i] = 0.5 x (1 + erf(x / sqrt(2)))      y may == x. Threaded for large n.
 * The SIMD versions use the rational float erf of Eigen / XLA (|error| < 5e-7, so the GELU is
 * within 2e-7 (1 + |x|) of exact); the scalar reference calls erff. */
NMF_API void nmf_gelu_forward(float *y, const float *x, size_t n);
/* Scalar reference, always erff. */
NMF_API void nmf_gelu_forward_ref(float *y, const float *x, size_t n);
/* Hugging Face's gelu_new: y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); SiLU:
 * y = x sigmoid(x). y may == x; threaded for large n. The SIMD versions compute
 * x / (1 + exp(-s)) on a vector exp (within 5e-7 (1 + |x|) of exact); the references use libm. */
NMF_API void nmf_gelu_tanh_forward(float *y, const float *x, size_t n);
NMF_API void nmf_gelu_tanh_forward_ref(float *y, const float *x, size_t n);
NMF_API void nmf_silu_forward(float *y, const float *x, size_t n);
NMF_API void nmf_silu_forward_ref(float *y, const float *x, size_t n);

/* One attention head. Query i reads q[i*ldq + 0..d), key j k[j*ldk + ...], value j v[j*ldv + ...];
 * the output row i goes to out[i*ldo + 0..d).
 *   out[i] = sum_j softmax_j(scale * q[i].k[j]) v[j]
 * causal != 0 masks key j for query i when j > i + (Tk - Tq) (queries are the last Tq positions
 * of the key sequence; Tq == Tk is ordinary causal self-attention), so causal needs Tk >= Tq.
 * Scores as large as +-1e4 (and beyond) are fine: nothing is exponentiated without subtracting
 * the running max first.
 *
 * work: scratch of nmf_attention_work_floats(Tk, d) floats, 64-byte aligned (nmf_alloc), or NULL
 * (then allocated and freed inside). Single-threaded: callers parallelise over heads. */
typedef struct {
    size_t Tq, Tk, d;
    size_t ldq, ldk, ldv, ldo;
    float scale; /* usually 1/sqrt(d) */
    int causal;
} nmf_attention_shape;

NMF_API size_t nmf_attention_work_floats(size_t Tk, size_t d);
NMF_API nmf_status nmf_attention_forward(float *out, const float *q, const float *k, const float *v,
                                 const nmf_attention_shape *s, float *work);
/* Online-softmax scalar reference (what NMF_ISA=scalar runs). */
NMF_API nmf_status nmf_attention_forward_ref(float *out, const float *q, const float *k, const float *v,
                                     const nmf_attention_shape *s, float *work);
/* Naive: writes the full Tq x Tk score matrix (allocated inside), softmax with max subtraction
 * in double, then P V in double. Only for tests. */
NMF_API nmf_status nmf_attention_naive(float *out, const float *q, const float *k, const float *v,
                               const nmf_attention_shape *s);

/* One attention head in int8 (the --precision int8 models' attention): Q and K quantised per
 * row and V per channel to int8, the scores' and P V's sums exact in int32 (vpdpbusd), the
 * online softmax in f32 with its probabilities rounded to 8 bits (255 = the running max). The
 * numbers are the same bits on every ISA (numerics: src/kernels/attention_q8.h); they differ from
 * the f32 attention's by the quantisation (about 1e-2 relative on a ViT's heads). Non-finite
 * inputs give unspecified (but defined) outputs. Shapes as nmf_attention_forward;
 * d <= NMF_ATTENTION_Q8_MAX_D.
 * work: nmf_attention_q8_work_floats(Tq, Tk, d) floats, 64-byte aligned, or NULL. */
#define NMF_ATTENTION_Q8_MAX_D 4096 /* head width: every integer sum stays far below 2^31 */
NMF_API size_t nmf_attention_q8_work_floats(size_t Tq, size_t Tk, size_t d);
NMF_API nmf_status nmf_attention_forward_q8(float *out, const float *q, const float *k,
                                            const float *v, const nmf_attention_shape *s,
                                            float *work);
/* Whether int8 attention beats f32 on heads of width d with Tq queries a call: the rule the
 * int8 models use (their attention is int8 where it pays, else f32). A head's int8 packing
 * (Q, K quantised, V per channel over the keys) costs more than it saves on a few queries or
 * on narrow heads. */
NMF_API int nmf_attention_q8_pays(size_t Tq, size_t d);
/* The portable reference of the same numbers (what NMF_ISA=scalar runs). */
NMF_API nmf_status nmf_attention_forward_q8_ref(float *out, const float *q, const float *k,
                                                const float *v, const nmf_attention_shape *s,
                                                float *work);

/* Multi-head self-attention over a batch, timm layout: qkv (B, T, 3, heads, head_dim) as produced
 * by the fused qkv linear, out (B, T, heads*head_dim). scale = 1/sqrt(head_dim). Threaded over
 * (batch, head) pairs with up to nmf_get_threads() threads, fewer if work (work_floats floats,
 * 64-byte aligned) holds scratch for fewer; work NULL: allocated inside.
 * nmf_mhsa_work_floats gives the size for nmf_get_threads() threads (f32 or int8 heads). */
NMF_API size_t nmf_mhsa_work_floats(size_t T, size_t head_dim);
NMF_API nmf_status nmf_mhsa_forward(float *out, const float *qkv, size_t B, size_t T, size_t heads,
                            size_t head_dim, int causal, float *work, size_t work_floats);
/* The same with every head in int8 (nmf_attention_forward_q8); nmf_mhsa_work_floats covers it. */
NMF_API nmf_status nmf_mhsa_forward_q8(float *out, const float *qkv, size_t B, size_t T,
                                       size_t heads, size_t head_dim, int causal, float *work,
                                       size_t work_floats);

#ifdef __cplusplus
}
#endif
#endif
