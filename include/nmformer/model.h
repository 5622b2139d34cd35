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

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nmf_vit nmf_vit; /* opaque */

/* Builds a model from tensors in timm names (checked against the config with
 * nmf_vit_check_tensors). Block linear weights held as nm become N:M linears, dense ones dense.
 * The tensor set is not referenced afterwards (values are copied / repacked). */
NMF_API nmf_status nmf_vit_create(nmf_vit **out, const nmf_vit_config *c, const nmf_tensor_set *tensors);

/* A randomly initialised model of this config (deterministic in seed): weights ~ N(0, 0.02^2)
 * like timm's init, pruned to pattern by magnitude and held N:M when pattern.n != 0
 * (pattern {0, 0} = dense). For benchmarking shapes without weights. */
NMF_API nmf_status nmf_vit_create_random(nmf_vit **out, const nmf_vit_config *c, nmf_pattern pattern,
                                 uint64_t seed);

/* nmf_load_model (io.h: .nmf family candidate `name`, or .safetensors) + nmf_vit_create; the
 * tensors are freed once the model holds its own copy. fallback_config may be NULL. */
NMF_API nmf_status nmf_vit_load(nmf_vit **out, const char *path, const char *name,
                        const nmf_vit_config *fallback_config);

NMF_API void nmf_vit_free(nmf_vit *m);

/* logits (B, num_classes) from images (B, in_chans, img_size, img_size), float32 NCHW, already
 * normalised (the (pixel/255 - mean)/std of the config is the caller's job: see nmf_dataset_batch).
 * Non-finite inputs are rejected (NMF_ERR_NUMERIC, the detail names the first bad index), and so
 * are non-finite logits (finite inputs so large that float32 overflows; the detail names the image).
 * Threaded with nmf_get_threads(). Not re-entrant on one model (the arena is shared). */
NMF_API nmf_status nmf_vit_forward(nmf_vit *m, float *logits, const float *images, size_t B);

NMF_API const nmf_vit_config *nmf_vit_get_config(const nmf_vit *m);
/* Bytes of parameters the forward reads: the dense buffer plus every linear's weight bytes. */
NMF_API size_t nmf_vit_weight_bytes(const nmf_vit *m);
/* Bytes of the activation arena currently allocated (0 before the first forward). */
NMF_API size_t nmf_vit_arena_bytes(const nmf_vit *m);

/* Built-in shapes for benchmarking: "deit-tiny" (192 dim, 3 heads), "deit-small" (384, 6),
 * "deit-base" (768, 12); all 224x224x3, patch 16, depth 12, mlp_ratio 4, 1000 classes,
 * ImageNet-ish mean/std. NMF_ERR_NOT_FOUND for other names (the detail lists the known ones). */
NMF_API nmf_status nmf_vit_shape_config(const char *name, nmf_vit_config *c);

#ifdef __cplusplus
}
#endif
#endif
