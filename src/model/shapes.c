/* The one table of named ViT shapes (presets): the Fashion-MNIST models we train and the DeiT
 * shapes (Touvron et al. 2021) the benchmarks and the STA simulator use without weights. The
 * default config is the table's first row. */
#include <stdio.h>
#include <string.h>

#include "nmformer/config.h"

typedef struct {
    const char *name;
    int img_size, patch, in_chans, dim, depth, heads;
    float mlp_ratio;
    int num_classes;
    float mean, std; /* input normalisation: one scalar each (see nmf_model_config) */
} shape_entry;

/* ImageNet's channel means (0.485, 0.456, 0.406) and stds (0.229, 0.224, 0.225) averaged to one
 * scalar each: 0.449 ~ 0.45 and 0.226. Fashion-MNIST: the training split's mean and std. */
#define IMAGENET 224, 16, 3
#define IMAGENET_NORM 0.45f, 0.226f
#define FMNIST 28, 7, 1
#define FMNIST_NORM 0.2860f, 0.3530f

static const shape_entry shapes[] = {
    {"vit-fmnist", FMNIST, 64, 4, 4, 2.0f, 10, FMNIST_NORM},       /* `train` demo, the default */
    {"vit-fmnist-full", FMNIST, 128, 6, 4, 2.0f, 10, FMNIST_NORM}, /* `train --config full` */
    {"deit-tiny", IMAGENET, 192, 12, 3, 4.0f, 1000, IMAGENET_NORM},
    {"deit-small", IMAGENET, 384, 12, 6, 4.0f, 1000, IMAGENET_NORM},
    {"deit-base", IMAGENET, 768, 12, 12, 4.0f, 1000, IMAGENET_NORM},
};
#define SHAPE_COUNT (sizeof shapes / sizeof shapes[0])

static void fill(nmf_model_config *c, const shape_entry *e) {
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "vit");
    c->img_size = e->img_size;
    c->patch = e->patch;
    c->in_chans = e->in_chans;
    c->dim = e->dim;
    c->depth = e->depth;
    c->heads = e->heads;
    c->mlp_ratio = e->mlp_ratio;
    c->num_classes = e->num_classes;
    c->mean = e->mean;
    c->std = e->std;
}

void nmf_model_config_default(nmf_model_config *c) { fill(c, &shapes[0]); }

nmf_status nmf_model_shape_config(const char *name, nmf_model_config *c) {
    char known[256] = "";
    for (size_t i = 0; i < SHAPE_COUNT; i++) {
        if (name && !strcmp(name, shapes[i].name)) {
            fill(c, &shapes[i]);
            return NMF_OK;
        }
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", shapes[i].name);
    }
    return nmf_error(NMF_ERR_NOT_FOUND, "unknown shape '%s' (%s)", name ? name : "(null)", known);
}
