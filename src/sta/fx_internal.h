/* Internals of the fixed-point half of src/sta: calibration slots and fixed-point helpers. */
#ifndef NMF_STA_FX_INTERNAL_H
#define NMF_STA_FX_INTERNAL_H

#include <stdio.h>

#include "nmformer/sta.h"

/* absmax slots: image, x0, then FX_SLOTS per block, then the final norm */
enum { FX_SLOT_IMAGE = 0, FX_SLOT_X0 = 1, FX_SLOT_BLOCKS = 2 };
enum { FX_LN1 = 0, FX_QKV, FX_ATTN, FX_PROJ, FX_X1, FX_LN2, FX_FC1, FX_GELU, FX_FC2, FX_X2, FX_SLOTS };
static inline size_t fx_block_slot(int block) { return FX_SLOT_BLOCKS + (size_t)FX_SLOTS * (size_t)block; }
static inline size_t fx_norm_slot(const nmf_model_config *v) { return fx_block_slot(v->depth); }

/* Residual add: sat(round((a * ma + b * mb) * 2^-shift)), ma and mb sharing one shift. */
static inline int64_t fx_add(int64_t a, nmf_fx_rq ma, int64_t b, nmf_fx_rq mb, int bits) {
    return nmf_fx_sat(nmf_fx_shift_round(a * ma.mult + b * mb.mult, ma.shift), bits);
}
/* The softmax probability scale: P = p * (2^(bits-1) - 1). */
static inline int64_t fx_pmax(int bits) { return ((int64_t)1 << (bits - 1)) - 1; }
#define FX_RECIP_BITS 46 /* reciprocal of the exp sum: floor(2^46 / sum) */

#endif
