/* Built-in ViT shapes for benchmarking without weights (DeiT, Touvron et al. 2021). */
#include <stdio.h>
#include <string.h>

#include "nmformer/model.h"

typedef struct {
    const char *name;
    int dim, heads;
} shape_entry;

static const shape_entry shapes[] = {
    {"deit-tiny", 192, 3},
    {"deit-small", 384, 6},
    {"deit-base", 768, 12},
};

nmf_status nmf_vit_shape_config(const char *name, nmf_vit_config *c) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (strcmp(name, shapes[i].name)) continue;
        nmf_vit_config_default(c);
        snprintf(c->arch, sizeof c->arch, "vit");
        c->img_size = 224;
        c->patch = 16;
        c->in_chans = 3;
        c->dim = shapes[i].dim;
        c->depth = 12;
        c->heads = shapes[i].heads;
        c->mlp_ratio = 4.0f;
        c->num_classes = 1000;
        c->mean = 0.45f; /* one scalar per config: the ImageNet channel means/stds averaged */
        c->std = 0.226f;
        return NMF_OK;
    }
    return nmf_error(NMF_ERR_NOT_FOUND, "unknown shape '%s' (deit-tiny, deit-small, deit-base)", name);
}
