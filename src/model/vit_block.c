#include "model/vit_block.h"

#include <stdio.h>
#include <string.h>

#include "model/patchify.h"
#include "nmformer/ops.h"
#include "train/layers.h" /* the forward halves of training's layers, which save for backward */

static const char *const op_names[] = {
    [NMF_OP_INPUT] = "input",     [NMF_OP_EMBED] = "patch_embed", [NMF_OP_NORM1] = "norm1",
    [NMF_OP_QKV] = "attn.qkv",    [NMF_OP_ATTN] = "attn.av",      [NMF_OP_PROJ] = "attn.proj",
    [NMF_OP_ADD1] = "add1",       [NMF_OP_NORM2] = "norm2",       [NMF_OP_FC1] = "mlp.fc1",
    [NMF_OP_GELU] = "mlp.gelu",   [NMF_OP_FC2] = "mlp.fc2",       [NMF_OP_ADD2] = "add2",
    [NMF_OP_NORM] = "norm",       [NMF_OP_HEAD] = "head",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == NMF_OP_COUNT, "a name per nmf_vit_op");

void nmf_vit_observe(const nmf_vit_observer *o, nmf_vit_op op, int block, const float *data,
                     size_t rows, size_t cols) {
    if (!o || !o->fn) return;
    nmf_op_event e = {op, block, "", data, rows, cols};
    if (block >= 0) snprintf(e.name, sizeof e.name, "blocks.%d.%s", block, op_names[op]);
    else snprintf(e.name, sizeof e.name, "%s", op_names[op]);
    o->fn(&e, o->ctx);
}

nmf_block_shape nmf_vit_block_shape(const nmf_model_config *c) {
    return (nmf_block_shape){(size_t)nmf_vit_tokens(c), (size_t)c->dim, (size_t)nmf_vit_hidden(c),
                             (size_t)c->heads, NMF_LAYERNORM_EPS, 0, 0};
}

/* y (N, out) = x (N, in) W^T + b: the block's linear when it has one, else the dense weight w */
static nmf_status linear(float *y, const float *x, const nmf_linear *lin, const float *w,
                         const float *b, size_t N, size_t in, size_t out, nmf_activation act) {
    if (lin) return nmf_linear_forward(y, x, lin, b, N, act);
    matmul_forward(y, x, w, b, N, in, out);
    if (act == NMF_ACT_GELU) nmf_gelu_forward(y, y, N * out);
    return NMF_OK;
}

/* LayerNorm; with a tape, saving mean and rstd for backward */
static void norm(float *y, const float *x, const float *w, const float *b, size_t N, size_t D,
                 float eps, float *mean, float *rstd) {
    if (mean) layernorm_forward(y, mean, rstd, x, w, b, N, D, eps);
    else nmf_layernorm_forward(y, x, w, b, N, D, eps);
}

/* An int8 block runs its attention in int8 too where that pays (nmf_attention_q8_pays: heads
 * of 32 channels or more) */
static int int8_attention(const nmf_vit_block *lin, size_t T, size_t head_dim) {
    return lin->qkv && nmf_linear_precision(lin->qkv) == NMF_PREC_INT8 &&
           nmf_attention_q8_pays(T, head_dim);
}

nmf_status nmf_vit_block_forward(const nmf_block_shape *s, const nmf_vit_params *p,
                                 const nmf_vit_block *lin, int l, size_t B,
                                 const nmf_vit_block_io *io, const nmf_vit_tape *tape,
                                 const nmf_vit_observer *o) {
    const size_t T = s->T, D = s->D, H = s->H, NH = s->heads, BT = B * T, L = (size_t)l;
    const int watched = o && o->fn;
    nmf_status st;
    norm(io->ln1, io->x_in, p->ln1_w + L * D, p->ln1_b + L * D, BT, D, s->eps,
         tape ? tape->ln1_mean : NULL, tape ? tape->ln1_rstd : NULL);
    nmf_vit_observe(o, NMF_OP_NORM1, l, io->ln1, BT, D);
    if ((st = linear(io->qkv, io->ln1, lin->qkv, p->qkv_w ? p->qkv_w + L * 3 * D * D : NULL,
                     p->qkv_b + L * 3 * D, BT, D, 3 * D, NMF_ACT_NONE)))
        return st;
    nmf_vit_observe(o, NMF_OP_QKV, l, io->qkv, BT, 3 * D);
    // (B,T,3,heads,hd) -> (B,T,D)
    if (tape)
        attention_forward(io->atty, tape->att, io->qkv, (int)B, (int)T, (int)D, (int)NH,
                          s->causal, tape->scratch, tape->nscratch);
    else if ((st = (int8_attention(lin, T, D / NH) ? nmf_mhsa_forward_q8 : nmf_mhsa_forward)(
                  io->atty, io->qkv, B, T, NH, D / NH, s->causal, io->work, io->work_floats)))
        return st;
    nmf_vit_observe(o, NMF_OP_ATTN, l, io->atty, BT, D);
    if ((st = linear(io->tmp, io->atty, lin->proj, p->proj_w ? p->proj_w + L * D * D : NULL,
                     p->proj_b + L * D, BT, D, D, NMF_ACT_NONE)))
        return st;
    nmf_vit_observe(o, NMF_OP_PROJ, l, io->tmp, BT, D);
    if (tape) { /* (training's norm saves its mean and rstd) */
        residual_forward(io->x1, io->x_in, io->tmp, BT * D);
        norm(io->ln2, io->x1, p->ln2_w + L * D, p->ln2_b + L * D, BT, D, s->eps, tape->ln2_mean,
             tape->ln2_rstd);
    } else {
        nmf_add_layernorm_forward(io->ln2, io->x1, io->x_in, io->tmp, p->ln2_w + L * D,
                                  p->ln2_b + L * D, BT, D, s->eps);
    }
    nmf_vit_observe(o, NMF_OP_ADD1, l, io->x1, BT, D);
    nmf_vit_observe(o, NMF_OP_NORM2, l, io->ln2, BT, D);
    const float *fc1_w = p->fc1_w ? p->fc1_w + L * H * D : NULL;
    /* fc1, GELU and fc2 in one call where nothing needs the hidden activations: they may stay
     * in the kernels' layout (nmf_linear_forward_mlp) */
    const int one_call = !(tape || watched || s->gelu_tanh) && lin->fc1 && lin->fc2;
    if (one_call) {
        if ((st = nmf_linear_forward_mlp(io->tmp, io->gelu, io->ln2, lin->fc1, p->fc1_b + L * H,
                                         NMF_ACT_GELU, lin->fc2, p->fc2_b + L * D, BT)))
            return st;
    } else if (tape || watched || s->gelu_tanh) {
        /* fc1 and GELU apart: backward needs Phi(fc1) (or tanh), an observer both; the linears
         * fuse only the exact GELU */
        if ((st = linear(io->fc1, io->ln2, lin->fc1, fc1_w, p->fc1_b + L * H, BT, D, H, NMF_ACT_NONE)))
            return st;
        nmf_vit_observe(o, NMF_OP_FC1, l, io->fc1, BT, H);
        if (tape && s->gelu_tanh) gelu_tanh_forward(io->gelu, tape->gelu_cdf, io->fc1, BT * H);
        else if (tape) gelu_forward(io->gelu, tape->gelu_cdf, io->fc1, BT * H);
        else if (s->gelu_tanh) nmf_gelu_tanh_forward(io->gelu, io->fc1, BT * H);
        else nmf_linear_activation(io->gelu, io->fc1, BT * H, lin->fc1, NMF_ACT_GELU);
        nmf_vit_observe(o, NMF_OP_GELU, l, io->gelu, BT, H);
    } else if ((st = linear(io->gelu, io->ln2, lin->fc1, fc1_w, p->fc1_b + L * H, BT, D, H,
                            NMF_ACT_GELU))) {
        return st;
    }
    if (!one_call && (st = linear(io->tmp, io->gelu, lin->fc2, p->fc2_w ? p->fc2_w + L * D * H : NULL,
                                  p->fc2_b + L * D, BT, H, D, NMF_ACT_NONE)))
        return st;
    nmf_vit_observe(o, NMF_OP_FC2, l, io->tmp, BT, D);
    residual_forward(io->x_out, io->x1, io->tmp, BT * D);
    nmf_vit_observe(o, NMF_OP_ADD2, l, io->x_out, BT, D);
    return NMF_OK;
}

nmf_status nmf_vit_embed_forward(const nmf_model_config *c, const nmf_vit_params *p,
                                 const nmf_linear *stem, const float *images, size_t B,
                                 float *patches, float *pe, float *x) {
    const size_t T = (size_t)nmf_vit_tokens(c), P = T - 1, D = (size_t)c->dim;
    const size_t K = (size_t)c->in_chans * (size_t)c->patch * (size_t)c->patch;
    nmf_patchify(patches, images, sizeof(float), B, c->in_chans, c->img_size, c->patch); // (B*P, K)
    if (stem) {
        const nmf_status st = nmf_linear_forward(pe, patches, stem, p->patch_b, B * P, NMF_ACT_NONE);
        if (st) return st;
    } else {
        matmul_forward(pe, patches, p->patch_w, p->patch_b, B * P, K, D); // (B*P, D)
    }
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const float *src = t == 0 ? p->cls : pe + (b * P + t - 1) * D, *pos = p->pos + t * D;
            float *dst = x + (b * T + t) * D;
            for (size_t d = 0; d < D; d++) dst[d] = src[d] + pos[d];
        }
    return NMF_OK;
}

void nmf_vit_head_forward(const nmf_model_config *c, const nmf_vit_params *p, const float *x,
                          size_t B, float *cls, float *lnf, float *mean, float *rstd, float *logits) {
    const size_t T = (size_t)nmf_vit_tokens(c), D = (size_t)c->dim, K = (size_t)c->num_classes;
    // final norm on the class tokens only (LayerNorm is per token), then the head
    for (size_t b = 0; b < B; b++) memcpy(cls + b * D, x + b * T * D, D * sizeof(float));
    norm(lnf, cls, p->norm_w, p->norm_b, B, D, NMF_LAYERNORM_EPS, mean, rstd);
    matmul_forward(logits, lnf, p->head_w, p->head_b, B, D, K);
}
