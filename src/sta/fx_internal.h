/* Internals of the fixed-point half of src/sta: calibration slots and fixed-point helpers.
 *
 * The element-wise and per-row steps of the datapath (output stage, residual add, GELU table,
 * softmax unit, LayerNorm) live here and in fx_rows.c, ONCE: the functional simulator
 * (functional.c) and the CPU's fixed-point mode (fx_cpu.c) both call them, so the two cannot
 * drift. Only the products (engine tiles and multiplexers versus SIMD integer kernels) differ,
 * and integer sums that never overflow are exact in any order. The plain reference (fxp_ref.c)
 * is written independently on purpose. */
#ifndef NMF_STA_FX_INTERNAL_H
#define NMF_STA_FX_INTERNAL_H

#include <stdio.h>

#include "nmformer/sta.h"

/* absmax slots: image, x0, then FX_SLOTS per block, then the final norm */
enum { FX_SLOT_IMAGE = 0, FX_SLOT_X0 = 1, FX_SLOT_BLOCKS = 2 };
enum { FX_LN1 = 0, FX_QKV, FX_ATTN, FX_PROJ, FX_X1, FX_LN2, FX_FC1, FX_GELU, FX_FC2, FX_X2, FX_SLOTS };
static inline size_t fx_block_slot(int block) { return FX_SLOT_BLOCKS + (size_t)FX_SLOTS * (size_t)block; }
static inline size_t fx_norm_slot(const nmf_model_config *v) { return fx_block_slot(v->depth); }

/* The datapath's scalar arithmetic (docs/STA.md, "numbers"), defined here once and inline so the
 * CPU's hot loops pay no call; fixed.c exports them as nmf_fx_sat, nmf_fx_shift_round,
 * nmf_fx_requant and nmf_fx_div_round. */
static inline int64_t fx_sat(int64_t v, int bits) { /* clamp to signed `bits` */
    if (bits >= 64) return v;
    const int64_t hi = (int64_t)((UINT64_C(1) << (bits - 1)) - 1), lo = -hi - 1;
    return v > hi ? hi : v < lo ? lo : v;
}
/* round(v / 2^shift), half up: floor((v + 2^(shift-1)) / 2^shift), 1 <= shift <= 63, without
 * relying on the sign behaviour of >> and without a branch on the sign (the hot loops' values
 * are signed at random): offset by 2^63, a multiple of 2^shift, shift unsigned, take the offset
 * back. */
static inline int64_t fx_shift_round(int64_t v, int shift) {
    if (shift <= 0) return v;
    const uint64_t u = (uint64_t)v + (UINT64_C(1) << (shift - 1)) + (UINT64_C(1) << 63);
    return (int64_t)(u >> shift) - (int64_t)(UINT64_C(1) << (63 - shift));
}
/* sat(round(acc * mult * 2^-shift)) */
static inline int64_t fx_requant(int64_t acc, nmf_fx_rq rq, int bits) {
    return fx_sat(fx_shift_round(acc * (int64_t)rq.mult, rq.shift), bits);
}
/* round(a / b), half away from zero; b > 0 (0 otherwise) */
static inline int64_t fx_div_round(int64_t a, int64_t b) {
    if (b <= 0) return 0;
    const int64_t r = ((a < 0 ? -a : a) + b / 2) / b; /* the sign by a select, not a branch */
    return a < 0 ? -r : r;
}

/* Residual add: sat(round((a * ma + b * mb) * 2^-shift)), ma and mb sharing one shift. */
static inline int64_t fx_add(int64_t a, nmf_fx_rq ma, int64_t b, nmf_fx_rq mb, int bits) {
    return fx_sat(fx_shift_round(a * ma.mult + b * mb.mult, ma.shift), bits);
}
/* The softmax probability scale: P = p * (2^(bits-1) - 1). */
static inline int64_t fx_pmax(int bits) { return ((int64_t)1 << (bits - 1)) - 1; }
#define FX_RECIP_BITS 46 /* reciprocal of the exp sum: floor(2^46 / sum) */

/* Output stage of a product: the accumulator saturates to acc_bits on readout, then requantises
 * to data_bits. */
static inline int16_t fx_out(int64_t acc, nmf_fx_rq rq, int bits, int acc_bits) {
    return (int16_t)fx_requant(fx_sat(acc, acc_bits), rq, bits);
}
/* GELU by table, indexed by x + 2^(bits-1). */
static inline int16_t fx_gelu(const nmf_fx_block *B, int16_t x, int bits) {
    return B->gelu_lut[x + (1 << (bits - 1))];
}

/* Softmax unit on one row of n saturated scores (max: their maximum, taken as they were
 * written): P lanes compute exp with per-lane partial sums (lsum [P] scratch), one reciprocal
 * per row, then the scale pass writes the probabilities (<= 2^(bits-1) - 1) in place. */
void fx_softmax_row(int64_t *row, int n, int64_t max, nmf_fx_rq rq, int P, int bits, int64_t *lsum);
/* Vector unit LayerNorm of one row of C values, V lanes: one pass of lane sums of x and x^2,
 * then normalise, scale and shift, requantise. */
void fx_layernorm_row(int16_t *y, const int16_t *x, const nmf_fx_norm *n, int C, int V, int bits);
/* What a design cannot run of a quantised model, as one error naming the key: the data and
 * accumulator widths it was quantised for, an N:M pattern the multiplexers cannot serve
 * (M > max_m or N > lanes_per_dpu), a score buffer that cannot hold one row of T scores.
 * Returns the query rows the score buffer holds (>= 1) in *score_rows (may be NULL). */
nmf_status fx_check_design(const nmf_fx_model *q, const nmf_sta_config *hw, int *score_rows);
/* The pattern check of one linear (the engine's multiplexers). */
nmf_status fx_check_linear(const nmf_fx_linear *L, const nmf_sta_config *hw, const char *name);

#endif
