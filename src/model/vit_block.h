/* The ViT forward in pieces (stem, one pre-norm block, tail), shared by inference (src/model/vit_forward.c) and training
 * (src/train/vit_train.c): training passes an activation tape and gets what its backward needs
 * saved; an observer sees every op's output. */
#ifndef NMF_MODEL_VIT_BLOCK_H
#define NMF_MODEL_VIT_BLOCK_H

#include "nmformer/desc.h"
#include "nmformer/kernels.h"
#include "nmformer/model.h"

typedef struct {
    nmf_observer fn; /* NULL: nobody watches */
    void *ctx;
} nmf_vit_observer;
/* Calls o->fn, if any, with op `op` of block `block` (-1: outside the blocks). */
void nmf_vit_observe(const nmf_vit_observer *o, nmf_vit_op op, int block, const float *data,
                     size_t rows, size_t cols);

/* What differs between the pre-norm blocks that share this forward: the ViT's (timm) and GPT-2's
 * (trained by src/train; its inference runs in lm_block.c). */
typedef struct {
    size_t T, D, H, heads; /* tokens per sequence, width, MLP width, attention heads */
    float eps;             /* LayerNorm eps: timm 1e-6, GPT-2 1e-5 */
    int causal;            /* decoder attention: token t sees tokens 0..t */
    int gelu_tanh;         /* GPT-2's gelu_new (tanh); else the exact erf GELU */
} nmf_block_shape;
/* The ViT's: T = patches + class token, H = dim * mlp_ratio, eps 1e-6, exact GELU. */
nmf_block_shape nmf_vit_block_shape(const nmf_model_config *c);

/* A block's linears (dense or N:M); NULL (training without N:M kernels): the dense weights of
 * nmf_vit_params are used. */
typedef struct {
    nmf_linear *qkv;  // (3D, D)
    nmf_linear *proj; // (D, D)
    nmf_linear *fc1;  // (H, D)
    nmf_linear *fc2;  // (D, H)
} nmf_vit_block;

/* Where a block reads and writes, all (B*T, width) row-major. Inference runs in place:
 * x1 == x_out == x_in, ln2 == ln1, gelu == fc1. */
typedef struct {
    const float *x_in;
    float *x1, *x_out;         // after the attention / MLP residual adds (D)
    float *ln1, *ln2;          // (D)
    float *qkv;                // (3D)
    float *atty;               // attention output (D)
    float *fc1, *gelu;         // (H)
    float *tmp;                // proj / fc2 outputs before the residual adds (D)
    float *work;               // attention scratch of nmf_mhsa_forward (inference)
    size_t work_floats;
} nmf_vit_block_io;

/* What training's backward needs from this block; NULL for inference. */
typedef struct {
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; // (B*T)
    float *att;                                       // softmax probabilities (B, heads, T, T)
    float *gelu_cdf;                                  // Phi(fc1), tanh GELU: tanh(u) (B*T, H)
    float *scratch;                                   // attention scratch, nscratch slices
    int nscratch;
} nmf_vit_tape;

/* Block l of a model of shape s with weights p (block vectors at + l * size; linears (out, in))
 * and linears lin. */
nmf_status nmf_vit_block_forward(const nmf_block_shape *s, const nmf_vit_params *p,
                                 const nmf_vit_block *lin, int l, size_t B,
                                 const nmf_vit_block_io *io, const nmf_vit_tape *tape,
                                 const nmf_vit_observer *o);

/* The stem: x (B*T, D) = [cls; patches W_pe^T + b_pe] + pos, with patches (B*P, C*p*p) and
 * pe (B*P, D) as the buffers of the im2col and of the embedding product (training keeps them
 * for backward). The product runs in stem when it is given (an int8 model's W_pe as a dense
 * int8 layer; its errors returned: out of memory), else in f32 on p's W_pe. */
nmf_status nmf_vit_embed_forward(const nmf_model_config *c, const nmf_vit_params *p,
                                 const nmf_linear *stem, const float *images, size_t B,
                                 float *patches, float *pe, float *x);
/* The tail: logits (B, classes) = head(LN(x[:, 0])). cls (B, D) receives the class tokens, lnf
 * (B, D) their norm (may be cls itself); with mean and rstd (B) the norm saves them for
 * backward (training), without them it runs the inference kernel. */
void nmf_vit_head_forward(const nmf_model_config *c, const nmf_vit_params *p, const float *x,
                          size_t B, float *cls, float *lnf, float *mean, float *rstd, float *logits);

#endif
