/* The fixed-point reference forward: plain loops over dense integer weights (zeros where pruned),
 * written without the simulator (no tiles, no multiplexers, no lanes). It calls only the scalar
 * arithmetic of fixed.c, which defines the datapath's rounding, saturation and exp. The functional
 * simulator (functional.c) must produce the same logits bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "model/patchify.h"
#include "nmformer/sta.h"
#include "sta/fx_internal.h"

/* y[t][o] = requant(bias[o] + sum_i x[t][i] w[o][i])      y (T, out), x (T, in) */
static void ref_linear(int16_t *y, const int16_t *x, const nmf_fx_linear *L, int T, int bits) {
    for (int t = 0; t < T; t++)
        for (int o = 0; o < L->rows; o++) {
            const int16_t *w = L->w + (size_t)o * L->cols, *xr = x + (size_t)t * L->cols;
            int64_t acc = L->bias[o];
            for (int i = 0; i < L->cols; i++) acc += (int64_t)w[i] * xr[i];
            y[(size_t)t * L->rows + o] = (int16_t)nmf_fx_requant(acc, L->rq[o], bits);
        }
}

/* LayerNorm in integers: xc = C x - sum(x); den = isqrt(sum(xc^2) / C) = C * std;
 * z = round(xc 2^12 / den); y = requant(z gamma + beta). */
static void ref_layernorm(int16_t *y, const int16_t *x, const nmf_fx_norm *n, int T, int C, int bits,
                          int64_t *xc /* scratch [C] */) {
    for (int t = 0; t < T; t++) {
        const int16_t *xr = x + (size_t)t * C;
        int64_t S = 0;
        for (int i = 0; i < C; i++) S += xr[i];
        uint64_t V = 0;
        for (int i = 0; i < C; i++) {
            xc[i] = (int64_t)xr[i] * C - S;
            V += (uint64_t)(xc[i] * xc[i]);
        }
        int64_t den = (int64_t)nmf_fx_isqrt(V / (uint64_t)C);
        if (den < 1) den = 1;
        for (int i = 0; i < C; i++) {
            int64_t z = nmf_fx_div_round(xc[i] * (1 << NMF_FX_LN_FRAC), den);
            y[(size_t)t * C + i] = (int16_t)nmf_fx_requant(z * n->gamma[i] + n->beta[i], n->rq, bits);
        }
    }
}

static nmf_status ref_attention(int16_t *out, const int16_t *qkv, const nmf_fx_block *B, int T,
                                int D, int heads, int bits, int acc_bits) {
    const int dh = D / heads;
    const int64_t pmax = fx_pmax(bits);
    int64_t *s = malloc((size_t)T * sizeof *s);
    int64_t *p = malloc((size_t)T * sizeof *p);
    if (!s || !p) {
        free(s);
        free(p);
        return nmf_error(NMF_ERR_NOMEM, "fxp reference: out of memory");
    }
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < T; i++) {
            const int16_t *q = qkv + (size_t)i * 3 * D + h * dh;
            int64_t m = 0;
            for (int j = 0; j < T; j++) {
                const int16_t *k = qkv + (size_t)j * 3 * D + D + h * dh;
                int64_t acc = 0;
                for (int d = 0; d < dh; d++) acc += (int64_t)q[d] * k[d];
                s[j] = nmf_fx_sat(acc, acc_bits);
                if (j == 0 || s[j] > m) m = s[j];
            }
            int64_t sum = 0;
            for (int j = 0; j < T; j++) {
                int64_t u = nmf_fx_requant(m - s[j], B->softmax_rq, 63);
                p[j] = nmf_fx_exp2_neg((uint64_t)u);
                sum += p[j];
            }
            int64_t recip = ((int64_t)1 << FX_RECIP_BITS) / sum;
            for (int j = 0; j < T; j++) p[j] = nmf_fx_shift_round(p[j] * recip * pmax, FX_RECIP_BITS);
            for (int d = 0; d < dh; d++) {
                int64_t acc = 0;
                for (int j = 0; j < T; j++) acc += p[j] * qkv[(size_t)j * 3 * D + 2 * D + h * dh + d];
                out[(size_t)i * D + h * dh + d] = (int16_t)nmf_fx_requant(acc, B->av_rq, bits);
            }
        }
    free(s);
    free(p);
    return NMF_OK;
}

nmf_status nmf_fx_ref_forward(int64_t *logits, const int16_t *image, const nmf_fx_model *q) {
    if (!logits || !image || !q || !q->blocks) return nmf_error(NMF_ERR_INVALID_ARG, "fxp reference: NULL");
    const nmf_model_config *v = &q->vit;
    const int T = nmf_vit_tokens(v), D = v->dim, H = nmf_vit_hidden(v), bits = q->data_bits;
    const int pk = v->in_chans * v->patch * v->patch;
    size_t need = (size_t)(T - 1) * pk + (size_t)T * (9 * (size_t)D + 2 * (size_t)H);
    int16_t *buf = malloc(need * sizeof *buf);
    int64_t *xc = malloc((size_t)D * sizeof *xc);
    if (!buf || !xc) {
        free(buf);
        free(xc);
        return nmf_error(NMF_ERR_NOMEM, "fxp reference: out of memory");
    }
    int16_t *patch = buf, *x = patch + (size_t)(T - 1) * pk, *ln = x + (size_t)T * D;
    int16_t *qkv = ln + (size_t)T * D, *att = qkv + (size_t)T * 3 * D, *tmp = att + (size_t)T * D;
    int16_t *x1 = tmp + (size_t)T * D, *hid = x1 + (size_t)T * D, *gel = hid + (size_t)T * H;
    nmf_patchify(patch, image, sizeof *patch, 1, v->in_chans, v->img_size, v->patch);
    memcpy(x, q->cls, (size_t)D * sizeof *x);
    for (int t = 0; t < T - 1; t++)
        for (int o = 0; o < D; o++) {
            int64_t acc = q->patch_bias[(size_t)t * D + o];
            for (int i = 0; i < pk; i++)
                acc += (int64_t)q->patch.w[(size_t)o * pk + i] * patch[(size_t)t * pk + i];
            x[(size_t)(t + 1) * D + o] = (int16_t)nmf_fx_requant(acc, q->patch.rq[o], bits);
        }
    nmf_status st = NMF_OK;
    for (int L = 0; L < v->depth && !st; L++) {
        const nmf_fx_block *B = &q->blocks[L];
        ref_layernorm(ln, x, &B->norm1, T, D, bits, xc);
        ref_linear(qkv, ln, &B->qkv, T, bits);
        if ((st = ref_attention(att, qkv, B, T, D, v->heads, bits, q->acc_bits))) break;
        ref_linear(tmp, att, &B->proj, T, bits);
        for (size_t i = 0; i < (size_t)T * D; i++) x1[i] = (int16_t)fx_add(x[i], B->add1_a, tmp[i], B->add1_b, bits);
        ref_layernorm(ln, x1, &B->norm2, T, D, bits, xc);
        ref_linear(hid, ln, &B->fc1, T, bits);
        for (size_t i = 0; i < (size_t)T * H; i++) gel[i] = B->gelu_lut[hid[i] + (1 << (bits - 1))];
        ref_linear(tmp, gel, &B->fc2, T, bits);
        for (size_t i = 0; i < (size_t)T * D; i++) x[i] = (int16_t)fx_add(x1[i], B->add2_a, tmp[i], B->add2_b, bits);
    }
    if (!st) {
        ref_layernorm(ln, x, &q->norm, 1, D, bits, xc); /* class token only */
        for (int o = 0; o < v->num_classes; o++) {
            int64_t acc = q->head.bias[o];
            for (int i = 0; i < D; i++) acc += (int64_t)q->head.w[(size_t)o * D + i] * ln[i];
            logits[o] = acc;
        }
    }
    free(buf);
    free(xc);
    return st;
}
