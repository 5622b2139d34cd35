/* The Vision Transformer inference engine (timm semantics, DESIGN.md).
 *
 *   x = [cls; patches W_pe^T + b_pe] + pos                  // (B, T, D), T = patches + 1
 *   for each block:  x += proj(MHSA(qkv(LN1(x))))           // pre-norm, LayerNorm eps 1e-6
 *                    x += fc2(GELU(fc1(LN2(x))))            // exact erf GELU
 *   logits = head(LN(x[:, 0]))                              // class token
 *
 * The block linears (attn.qkv, attn.proj, mlp.fc1, mlp.fc2) are nmf_linear objects, dense or N:M
 * as the tensor set holds them; everything else (embeddings, norms, head) is dense and lives in one
 * parameter buffer with a struct of pointers into it. Activations live in one arena, allocated on
 * the first forward for a batch size and reused while later calls fit in it. */
#ifndef NMFORMER_MODEL_H
#define NMFORMER_MODEL_H

#include "nmformer/config.h"
#include "nmformer/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nmf_vit nmf_vit; /* opaque */

/* Builds a model from tensors in timm names (checked against the config with
 * nmf_model_check_tensors). Block linear weights held as nm become N:M linears, dense ones dense.
 * A set read keeping 16-bit values (nmf_load_model_keep16) keeps them in the block linears as the
 * token models do (lm.h): dense 16-bit layers (nmf_linear_create_dense16) and, for BF16 N:M
 * weights, compact bf16 N:M layers (nmf_linear_create_nm_bf16; their precision is then bf16 and
 * nmf_vit_set_precision cannot change it); the rest of the model is f32.
 * The tensor set is not referenced afterwards (values are copied / repacked). */
NMF_API nmf_status nmf_vit_create(nmf_vit **out, const nmf_model_config *c, const nmf_tensor_set *tensors);
/* nmf_vit_create from a set the caller gives up: each tensor is removed from it (freed) as soon as
 * the model holds its own copy (16-bit dense weights are taken, not copied), so that building
 * peaks near one copy of the weights, not two (nmf_lm_create_from's contract). The caller still
 * frees the set. */
NMF_API nmf_status nmf_vit_create_from(nmf_vit **out, const nmf_model_config *c, nmf_tensor_set *tensors);

/* A randomly initialised model of this config (deterministic in seed), every tensor by its role
 * as training initialises it (nmf_param_role_init: timm-style), pruned to pattern by magnitude and held N:M when pattern.n != 0
 * (pattern {0, 0} = dense). For benchmarking shapes without weights. */
NMF_API nmf_status nmf_vit_create_random(nmf_vit **out, const nmf_model_config *c, nmf_pattern pattern,
                                 uint64_t seed);

/* A ViT from an .nmf family candidate `name` or a .safetensors file, the weights as stored
 * (BF16/F16 block linears stay 16-bit; for f32 ones, nmf_load_model + nmf_vit_create): a
 * safetensors file is nmf_load_model_keep16 + nmf_vit_create_from; a family candidate's N:M
 * tensors are each read only when its layer is built and its dense 16-bit block weights are used
 * in place from the mapped file (as nmf_lm_load), so that memory stays near the candidate's
 * stored bytes. A token model's file is NMF_ERR_UNSUPPORTED. fallback_config may be NULL. */
NMF_API nmf_status nmf_vit_load(nmf_vit **out, const char *path, const char *name,
                        const nmf_model_config *fallback_config);
/* nmf_vit_load with config values given by the caller (as nmf_load_model_with; may be NULL) and
 * the block linears' precision: NMF_PREC_COUNT = weights as stored (nmf_vit_load); NMF_PREC_F32
 * every weight widened to f32 at load; bf16 or int8 that f32 load with each block linear
 * converted as it is built (nmf_vit_set_precision's numbers). */
NMF_API nmf_status nmf_vit_load_with(nmf_vit **out, const char *path, const char *name,
                                     const nmf_model_config *fallback_config,
                                     const nmf_config_overrides *overrides, nmf_precision prec);

NMF_API void nmf_vit_free(nmf_vit *m);

/* Sets the precision of every block linear (nmf_linear_set_precision, kernels.h: bf16 / int8,
 * dense and N:M layers alike). Call
 * once, after loading and before the first forward; on failure the model is unchanged only
 * for NMF_PREC_F32, so free it. int8 blocks run their attention in int8 too
 * (nmf_mhsa_forward_q8, ops.h), and an int8 model's patch embedding is a dense int8 layer
 * (nmf_linear_create_dense_int8); the rest of the model (position and class embeddings, norms,
 * head, bf16 blocks' attention) stays f32. */
NMF_API nmf_status nmf_vit_set_precision(nmf_vit *m, nmf_precision p);

/* logits (B, num_classes) from images (B, in_chans, img_size, img_size), float32 NCHW, already
 * normalised (the (pixel/255 - mean)/std of the config is the caller's job: see nmf_dataset_batch).
 * Non-finite inputs are rejected (NMF_ERR_NUMERIC, the detail names the first bad index), and so
 * are non-finite logits (finite inputs so large that float32 overflows; the detail names the image).
 * Threaded with nmf_get_threads(). Not re-entrant on one model (the arena is shared). */
NMF_API nmf_status nmf_vit_forward(nmf_vit *m, float *logits, const float *images, size_t B);

/* ---- N:M from the parameter table (nmformer/desc.h): only N:M-eligible tensors change ---- */
/* One-shot magnitude pruning: out (initialised here) = dense with every N:M-eligible weight
 * pruned to p along its input dimension and held packed (a weight stored [in, out], GPT-2's
 * Conv1D, keeps that shape: its nm is the (out, in) view, nm_transposed = 1; tensor.h);
 * everything else, the stored dtypes and the metadata copied dense. N:M inputs are unpacked
 * first. An input dimension that p.m does not divide is NMF_ERR_SHAPE; the detail names the
 * tensor that cannot be pruned. */
NMF_API nmf_status nmf_model_prune(const nmf_model_config *c, const nmf_tensor_set *dense, nmf_pattern p,
                           nmf_tensor_set *out);
/* Repacks in place every N:M-eligible weight of s held dense as packed p; each must already be
 * p-sparse (NMF_ERR_INVALID_ARG naming the first that is not). */
NMF_API nmf_status nmf_model_pack_nm(const nmf_model_config *c, nmf_tensor_set *s, nmf_pattern p);

/* ---- observing the forward --------------------------------------------------------------
 * An observer is called after every op of nmf_vit_forward_observed with the op's output, so that
 * calibration (the STA's fixed-point ranges, statistics for pruning) records what it needs on the
 * one forward instead of running a copy of it (llama.cpp's imatrix works the same way). Per block,
 * the ops come in this order; names follow the STA schedule ("blocks.3.attn.qkv"). */
typedef enum {
    NMF_OP_INPUT = 0, /* "input"            the images             (B, C*S*S) */
    NMF_OP_EMBED,     /* "patch_embed"      cls/patches + pos      (B*T, D) */
    NMF_OP_NORM1,     /* "blocks.i.norm1"                          (B*T, D) */
    NMF_OP_QKV,       /* "blocks.i.attn.qkv"                       (B*T, 3D) */
    NMF_OP_ATTN,      /* "blocks.i.attn.av" softmax(QK^T/sqrt(hd))V (B*T, D) */
    NMF_OP_PROJ,      /* "blocks.i.attn.proj"                      (B*T, D) */
    NMF_OP_ADD1,      /* "blocks.i.add1"    x + proj               (B*T, D) */
    NMF_OP_NORM2,     /* "blocks.i.norm2"                          (B*T, D) */
    NMF_OP_FC1,       /* "blocks.i.mlp.fc1" before GELU            (B*T, H) */
    NMF_OP_GELU,      /* "blocks.i.mlp.gelu"                       (B*T, H) */
    NMF_OP_FC2,       /* "blocks.i.mlp.fc2"                        (B*T, D) */
    NMF_OP_ADD2,      /* "blocks.i.add2"    x1 + fc2               (B*T, D) */
    NMF_OP_NORM,      /* "norm"             class tokens only      (B, D) */
    NMF_OP_HEAD,      /* "head"             the logits             (B, classes) */
    NMF_OP_COUNT
} nmf_vit_op;

typedef struct {
    int op;             /* nmf_vit_op (ViT), nmf_lm_op (token families: desc.h) */
    int block;          /* -1 outside the blocks */
    char name[48];
    const float *data;  /* rows x cols, row-major; valid during the call only */
    size_t rows, cols;
} nmf_op_event;
typedef void (*nmf_observer)(const nmf_op_event *e, void *ctx);

/* nmf_vit_forward, calling obs(e, ctx) after each op (obs may be NULL). With an observer, fc1
 * and GELU run as two ops so that both outputs can be seen. */
NMF_API nmf_status nmf_vit_forward_observed(nmf_vit *m, float *logits, const float *images, size_t B,
                                    nmf_observer obs, void *ctx);

NMF_API const nmf_model_config *nmf_vit_get_config(const nmf_vit *m);
/* What the block linears compute in (block 0's qkv: a model's linears agree, bar F16 N:M weights,
 * which run in f32 beside 16-bit dense ones): f32, or bf16 for weights kept 16-bit. */
NMF_API nmf_precision nmf_vit_get_precision(const nmf_vit *m);
/* Bytes of parameters the forward reads: the dense buffer plus every linear's weight bytes. */
NMF_API size_t nmf_vit_weight_bytes(const nmf_vit *m);
/* Bytes of the activation arena currently allocated (0 before the first forward). */
NMF_API size_t nmf_vit_arena_bytes(const nmf_vit *m);


#ifdef __cplusplus
}
#endif
#endif
