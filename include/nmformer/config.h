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

/* Config values a caller gives next to a model file (the CLI's --dim, --heads, ... flags);
 * 0 = not given. */
typedef struct {
    int img_size, patch, in_chans, dim, depth, heads, num_classes;
    float mlp_ratio;
} nmf_config_overrides;
/* Applies the given values of o to *c. from_file: *c is the file's own config, and a given value
 * that differs from it is NMF_ERR_INVALID_ARG naming the key ("dim 32 contradicts the file's
 * config (dim 16)"), never a silent override. */
NMF_API nmf_status nmf_vit_config_override(nmf_vit_config *c, const nmf_config_overrides *o, int from_file);
static inline int nmf_config_overrides_any(const nmf_config_overrides *o) {
    return o && (o->img_size || o->patch || o->in_chans || o->dim || o->depth || o->heads ||
                 o->num_classes || o->mlp_ratio != 0.0f);
}

/* Named shapes, one table (src/model/shapes.c): "vit-fmnist" (28x28x1, patch 7, dim 64, depth 4,
 * heads 4, ratio 2, 10 classes, mean 0.2860, std 0.3530: the default and the `train` demo),
 * "vit-fmnist-full" (dim 128, depth 6: `train --config full`), "deit-tiny" (192 dim, 3 heads),
 * "deit-small" (384, 6), "deit-base" (768, 12); the DeiTs are 224x224x3, patch 16, depth 12,
 * mlp_ratio 4, 1000 classes, mean 0.45, std 0.226 (ImageNet's averaged). NMF_ERR_NOT_FOUND for
 * other names (the detail lists the known ones). */
NMF_API nmf_status nmf_vit_shape_config(const char *name, nmf_vit_config *c);
/* The default config: shape "vit-fmnist". */
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

/* Checks that s holds exactly the tensors of the config with the right shapes (the model
 * description's table, nmformer/desc.h); the detail names the first missing / extra / misshapen
 * tensor. */
NMF_API nmf_status nmf_vit_check_tensors(const nmf_vit_config *c, const nmf_tensor_set *s);

#ifdef __cplusplus
}
#endif
#endif
