/* The per-row units of the fixed-point datapath (docs/STA.md, "numbers"): the softmax unit and the
 * vector unit's LayerNorm, shared by the functional simulator and the CPU's fixed-point mode
 * (fx_internal.h), and the design checks both make before running a quantised model. */
#include <string.h>

#include "nmformer/model.h"
#include "nmformer/sta.h"
#include "sta/fx_internal.h"

void fx_softmax_row(int64_t *row, int n, int64_t max, nmf_fx_rq rq, int P, int bits, int64_t *lsum) {
    const int64_t pmax = fx_pmax(bits);
    memset(lsum, 0, (size_t)P * sizeof *lsum);
    for (int c0 = 0; c0 < n; c0 += P)
        for (int l = 0; l < P && c0 + l < n; l++) {
            int64_t u = fx_requant(max - row[c0 + l], rq, 63);
            row[c0 + l] = nmf_fx_exp2_neg((uint64_t)u);
            lsum[l] += row[c0 + l];
        }
    int64_t sum = 0;
    for (int l = 0; l < P; l++) sum += lsum[l];
    const int64_t recip = ((int64_t)1 << FX_RECIP_BITS) / sum; /* sum >= 2^15: the max's exp */
    for (int c = 0; c < n; c++) row[c] = fx_shift_round(row[c] * recip * pmax, FX_RECIP_BITS);
}

void fx_layernorm_row(int16_t *y, const int16_t *x, const nmf_fx_norm *n, int C, int V, int bits) {
    int64_t S = 0, Q = 0;
    for (int c0 = 0; c0 < C; c0 += V) {
        int64_t ls = 0, lq = 0; /* this cycle's lanes, reduced by a tree */
        for (int c = c0; c < C && c < c0 + V; c++) {
            ls += x[c];
            lq += (int64_t)x[c] * x[c];
        }
        S += ls;
        Q += lq;
    }
    uint64_t var = (uint64_t)((int64_t)C * Q - S * S); /* = sum (C x - S)^2 / C */
    int64_t den = (int64_t)nmf_fx_isqrt(var);
    if (den < 1) den = 1;
    for (int c = 0; c < C; c++) {
        int64_t xc = (int64_t)x[c] * C - S;
        int64_t z = fx_div_round(xc * (1 << NMF_FX_LN_FRAC), den);
        y[c] = (int16_t)fx_requant(z * n->gamma[c] + n->beta[c], n->rq, bits);
    }
}

nmf_status fx_check_linear(const nmf_fx_linear *L, const nmf_sta_config *hw, const char *name) {
    if (!(L->pattern.n > 0 && L->values)) return NMF_OK;
    if (L->pattern.m > hw->max_m || L->pattern.n > hw->lanes_per_dpu)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "engine.max_m/lanes_per_dpu: %s is %d:%d, the design's multiplexers serve "
                         "M <= %d with N <= %d lanes", name ? name : "a linear", L->pattern.n,
                         L->pattern.m, hw->max_m, hw->lanes_per_dpu);
    return NMF_OK;
}

nmf_status fx_check_design(const nmf_fx_model *q, const nmf_sta_config *hw, int *score_rows) {
    if (!q || !hw || !q->blocks) return nmf_error(NMF_ERR_INVALID_ARG, "sta: no quantised model or design");
    nmf_status st = nmf_sta_config_validate(hw);
    if (st) return st;
    if (hw->data_bits != q->data_bits || hw->acc_bits != q->acc_bits)
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "numeric.data_bits/acc_bits: model quantised for %d/%d bits, design has %d/%d",
                         q->data_bits, q->acc_bits, hw->data_bits, hw->acc_bits);
    static const char *const names[4] = {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"};
    for (int b = 0; b < q->vit.depth; b++) {
        const nmf_fx_linear *L[4] = {&q->blocks[b].qkv, &q->blocks[b].proj, &q->blocks[b].fc1,
                                     &q->blocks[b].fc2};
        for (int i = 0; i < 4; i++)
            if ((st = fx_check_linear(L[i], hw, names[i]))) return st;
    }
    const int T = nmf_vit_tokens(&q->vit);
    const uint64_t Tq = (uint64_t)hw->score_buf_kib * 1024 / ((uint64_t)T * (uint64_t)((hw->acc_bits + 7) / 8));
    if (Tq < 1)
        return nmf_error(NMF_ERR_INVALID_ARG, "memory.score_buf_kib: %d KiB cannot hold one row of %d "
                         "scores", hw->score_buf_kib, T);
    if (score_rows) *score_rows = Tq > (uint64_t)T ? T : (int)Tq;
    return NMF_OK;
}
