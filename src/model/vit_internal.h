/* Private layout of nmf_vit: parameters (one buffer + struct of pointers), linears, arena. */
#ifndef NMF_MODEL_VIT_INTERNAL_H
#define NMF_MODEL_VIT_INTERNAL_H

#include "nmformer/kernels.h"
#include "nmformer/model.h"

typedef struct {
    float *norm1_w, *norm1_b; // (D)
    float *qkv_b;             // (3D)
    float *proj_b;            // (D)
    float *norm2_w, *norm2_b; // (D)
    float *fc1_b;             // (H)
    float *fc2_b;             // (D)
    nmf_linear *qkv;          // (3D, D)
    nmf_linear *proj;         // (D, D)
    nmf_linear *fc1;          // (H, D)
    nmf_linear *fc2;          // (D, H)
} nmf_vit_block;

typedef struct {
    float *cls_token; // (D)
    float *pos_embed; // (T, D)
    float *patch_w;   // (D, K), K = C*p*p in (c, ky, kx) order: the conv as a matmul over patches
    float *patch_b;   // (D)
    float *norm_w, *norm_b; // (D)
    float *head_w;    // (classes, D)
    float *head_b;    // (classes)
} nmf_vit_params;

/* Activations for up to `batch` images; every buffer is (rows, cols) row-major. */
typedef struct {
    size_t batch;      /* capacity in images */
    int threads;       /* attention scratch is sized for this many threads */
    float *storage;
    size_t floats;
    float *patches;    // (B*P, K)   shares memory with hid (used only before block 0)
    float *x;          // (B*T, D) residual stream
    float *ln;         // (B*T, D)
    float *qkv;        // (B*T, 3D)
    float *att;        // (B*T, D)   shares memory with ln (qkv has consumed ln by then)
    float *hid;        // (B*T, H)
    float *tmp;        // (B*T, D) linear outputs before the residual add
    float *cls;        // (B, D)
    float *work;       // attention scratch
    size_t work_floats;
} nmf_vit_arena;

struct nmf_vit {
    nmf_vit_config config;
    size_t D, H, heads, head_dim, T, P, grid, K, classes; /* derived sizes */
    float *param_buf; /* all dense parameters */
    size_t param_floats;
    nmf_vit_params p;
    nmf_vit_block *blocks; /* [depth] */
    nmf_vit_arena arena;
};

/* Allocates m with derived sizes, the parameter buffer (zeroed) and pointers; linears NULL. */
nmf_status nmf_vit_alloc(nmf_vit **out, const nmf_vit_config *c);
/* Where a tensor of the spec list goes: a dense slot (*dense, with its float count) or a linear. */
nmf_status nmf_vit_slot(nmf_vit *m, const char *name, float **dense, size_t *count,
                        nmf_linear ***lin);

#endif
