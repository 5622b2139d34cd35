/* Private layout of nmf_vit: parameters (one buffer + struct of pointers, laid out by the model
 * description), linears, arena. */
#ifndef NMF_MODEL_VIT_INTERNAL_H
#define NMF_MODEL_VIT_INTERNAL_H

#include "model/block_linear.h"
#include "model/vit_block.h"
#include "nmformer/desc.h"
#include "nmformer/kernels.h"
#include "nmformer/model.h"

/* Activations for up to `batch` images, whose blocks run up to `group` images at a time: x and
 * cls hold the batch, the rest a group; every buffer is (rows, cols) row-major. */
typedef struct {
    size_t batch;      /* capacity in images */
    size_t group;      /* capacity of the scratch buffers in images */
    int threads;       /* attention scratch is sized for this many threads */
    float *storage;
    size_t floats;
    float *patches;    // (G*P, K)   shares memory with hid (used only before block 0)
    float *x;          // (B*T, D) residual stream
    float *ln;         // (G*T, D)
    float *qkv;        // (G*T, 3D)
    float *att;        // (G*T, D)   shares memory with ln (qkv has consumed ln by then)
    float *hid;        // (G*T, H)
    float *tmp;        // (G*T, D) linear outputs before the residual add
    float *cls;        // (B, D)
    float *work;       // attention scratch
    size_t work_floats;
} nmf_vit_arena;

struct nmf_vit {
    nmf_model_config config;
    nmf_model_desc desc; /* the parameter table; the buffer below is its NMF_LAYOUT_DENSE */
    size_t D, H, heads, head_dim, T, P, grid, K, classes; /* derived sizes */
    float *param_buf; /* every parameter but the block linears' weights */
    nmf_vit_params p; /* pointers into param_buf (the linear weights' are NULL) */
    nmf_vit_block *blocks; /* [depth] */
    nmf_linear *stem;      /* int8 models: the patch embedding as a dense int8 layer (vit.c
                            * set_stem_precision), else NULL: the f32 product on p.patch_w */
    nmf_block_maps maps;   /* the file mappings 16-bit weights used in place point into */
    nmf_vit_arena arena;
};

#endif
