/* Model configuration (timm-style ViT) and the tensor names/shapes it implies.
 * Travels as JSON in the safetensors __metadata__ key "nmformer.config" and in .nmf files. */
#ifndef NMFORMER_CONFIG_H
#define NMFORMER_CONFIG_H

#include "nmformer/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NMF_CONFIG_META_KEY "nmformer.config"

typedef struct {
    char arch[16];   /* "vit" */
    int img_size;    /* square input, pixels */
    int patch;       /* patch size; img_size % patch == 0 */
    int in_chans;
    int dim;         /* embedding width */
    int depth;       /* number of blocks */
    int heads;       /* dim % heads == 0 */
    float mlp_ratio; /* hidden = dim * mlp_ratio (must be an integer) */
    int num_classes;
    float mean, std; /* input normalisation after scaling pixels to [0,1] */
} nmf_vit_config;

/* Fashion-MNIST-sized defaults: 28x28x1, patch 7, dim 64, depth 4, heads 4, ratio 2, 10 classes,
 * mean 0.2860, std 0.3530. */
NMF_API void nmf_vit_config_default(nmf_vit_config *c);
NMF_API nmf_status nmf_vit_config_validate(const nmf_vit_config *c);
/* Unknown keys are ignored; missing keys keep the values already in *c (so callers can start from
 * defaults or from command-line flags). Malformed JSON / wrong types are NMF_ERR_FORMAT. */
NMF_API nmf_status nmf_vit_config_from_json(const char *json, nmf_vit_config *c);
/* malloc'd JSON text; NULL on allocation failure. */
NMF_API char *nmf_vit_config_to_json(const nmf_vit_config *c);

static inline int nmf_vit_grid(const nmf_vit_config *c) { return c->img_size / c->patch; }
static inline int nmf_vit_tokens(const nmf_vit_config *c) {
    return nmf_vit_grid(c) * nmf_vit_grid(c) + 1; /* patches + class token */
}
static inline int nmf_vit_hidden(const nmf_vit_config *c) {
    return (int)(c->dim * c->mlp_ratio + 0.5f);
}

/* The tensors a ViT of this config has, in timm names and order. */
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    int prunable; /* 1 for block linears: attn.qkv, attn.proj, mlp.fc1, mlp.fc2 weights */
} nmf_tensor_spec;

/* Fills specs (allocated with malloc, caller frees) and *count. */
NMF_API nmf_status nmf_vit_tensor_specs(const nmf_vit_config *c, nmf_tensor_spec **specs, size_t *count);
/* Checks that s holds exactly the tensors of the config with the right shapes; the detail names
 * the first missing / extra / misshapen tensor. */
NMF_API nmf_status nmf_vit_check_tensors(const nmf_vit_config *c, const nmf_tensor_set *s);

#ifdef __cplusplus
}
#endif
#endif
