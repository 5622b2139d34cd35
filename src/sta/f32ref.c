/* The f32 side of the sta module: the reference forward (the model module's nmf_vit_forward) and
 * calibration, which observes that forward and records max |x| at every quantisation point; the
 * dense f32 weights the quantiser reads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/model.h"
#include "nmformer/sta.h"
#include "sta/fx_internal.h"

size_t nmf_sta_absmax_count(const nmf_model_config *vit) { return 3 + (size_t)FX_SLOTS * (size_t)vit->depth; }

static void track(float *absmax, size_t slot, size_t count, const float *x, size_t n) {
    if (!absmax || slot >= count) return;
    float m = absmax[slot];
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    absmax[slot] = m;
}

/* absmax slot of an op of the forward; SIZE_MAX for ops the fixed-point model does not scale */
static size_t slot_of(const nmf_op_event *e, const nmf_model_config *v) {
    static const int block_slot[NMF_OP_COUNT] = {
        [NMF_OP_NORM1] = FX_LN1 + 1, [NMF_OP_QKV] = FX_QKV + 1,   [NMF_OP_ATTN] = FX_ATTN + 1,
        [NMF_OP_PROJ] = FX_PROJ + 1, [NMF_OP_ADD1] = FX_X1 + 1,   [NMF_OP_NORM2] = FX_LN2 + 1,
        [NMF_OP_FC1] = FX_FC1 + 1,   [NMF_OP_GELU] = FX_GELU + 1, [NMF_OP_FC2] = FX_FC2 + 1,
        [NMF_OP_ADD2] = FX_X2 + 1,
    }; /* + 1: 0 marks ops outside the blocks */
    switch (e->op) {
    case NMF_OP_INPUT: return FX_SLOT_IMAGE;
    case NMF_OP_EMBED: return FX_SLOT_X0;
    case NMF_OP_NORM: return fx_norm_slot(v);
    case NMF_OP_HEAD: return SIZE_MAX;
    default:
        return e->block >= 0 && (unsigned)e->op < NMF_OP_COUNT && block_slot[e->op]
                   ? fx_block_slot(e->block) + (size_t)(block_slot[e->op] - 1)
                   : SIZE_MAX;
    }
}

typedef struct {
    const nmf_model_config *vit;
    float *absmax;
    size_t count;
} ranges;

static void record_range(const nmf_op_event *e, void *ctx) {
    ranges *r = ctx;
    track(r->absmax, slot_of(e, r->vit), r->count, e->data, e->rows * e->cols);
}

/* The reference is the model module's forward; calibration observes it (no second forward). */
nmf_status nmf_sta_f32_forward(float *logits, const float *images, size_t n,
                               const nmf_model_config *vit, const nmf_tensor_set *weights,
                               float *absmax, size_t absmax_count) {
    if (!images || !vit || !weights) return nmf_error(NMF_ERR_INVALID_ARG, "sta f32 forward: NULL");
    nmf_vit *m;
    nmf_status st = nmf_vit_create(&m, vit, weights);
    if (st) return st;
    enum { CHUNK = 32 }; /* images per forward: bounds the activation arena */
    const size_t img = (size_t)vit->in_chans * (size_t)vit->img_size * (size_t)vit->img_size;
    const size_t K = (size_t)vit->num_classes;
    float *scratch = logits ? NULL : malloc(CHUNK * K * sizeof(float));
    if (!logits && !scratch) st = nmf_error(NMF_ERR_NOMEM, "sta f32 forward: out of memory");
    ranges r = {vit, absmax, absmax_count};
    for (size_t b = 0; b < n && !st; b += CHUNK) {
        size_t k = n - b < CHUNK ? n - b : CHUNK;
        st = nmf_vit_forward_observed(m, logits ? logits + b * K : scratch, images + b * img, k,
                                      absmax ? record_range : NULL, &r);
    }
    free(scratch);
    nmf_vit_free(m);
    return st;
}
