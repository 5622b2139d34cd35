/* Quantising a ViT for the accelerator (docs/STA.md, "numbers").
 *
 * Symmetric, zero point 0. Activations: one scale per tensor, max |x| over calibration images
 * (f32 forward) / (2^(b-1) - 1). Weights: per output channel or per tensor, max |w| / (2^(b-1)-1);
 * N:M weights keep the model's own positions. Biases in accumulator units (s_in * s_w[o]), the
 * position embedding folded into a per-token bias of the patch embedding. Every accumulator is
 * checked to fit acc_bits without overflow, so its sum is exact in any order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/desc.h"
#include "nmformer/sta.h"
#include "sta/fx_internal.h"

typedef struct {
    void **p;
    size_t n, cap;
} arena;

static void *arena_alloc(arena *a, size_t count, size_t size) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        void **p = realloc(a->p, cap * sizeof *p);
        if (!p) return NULL;
        a->p = p;
        a->cap = cap;
    }
    void *m = calloc(count ? count : 1, size);
    if (m) a->p[a->n++] = m;
    return m;
}

void nmf_fx_model_free(nmf_fx_model *q) {
    if (!q) return;
    arena *a = q->storage_;
    if (a) {
        for (size_t i = 0; i < a->n; i++) free(a->p[i]);
        free(a->p);
        free(a);
    }
    memset(q, 0, sizeof *q);
}

static float act_scale(float absmax, int bits) {
    float s = absmax / (float)((1 << (bits - 1)) - 1);
    return s > 1e-8f ? s : 1e-8f;
}

static nmf_status check_acc(const char *what, double bound, int acc_bits) {
    if (bound >= ldexp(1.0, acc_bits - 1))
        return nmf_error(NMF_ERR_INVALID_ARG,
                         "numeric.acc_bits: %d bits can overflow in %s (worst case |acc| = %.3g)",
                         acc_bits, what, bound);
    return NMF_OK;
}

/* W [rows][cols] dense f32 (zeros where pruned); nm: the packed form or NULL. */
static nmf_status quant_linear(nmf_fx_linear *L, arena *a, const char *name, const float *w,
                               const nmf_nm_matrix *nm, const float *bias, int rows, int cols,
                               float s_in, float s_out, const nmf_fx_model *q) {
    const int bits = q->data_bits;
    const float qmax = (float)((1 << (bits - 1)) - 1);
    memset(L, 0, sizeof *L);
    L->rows = rows;
    L->cols = cols;
    L->w = arena_alloc(a, (size_t)rows * (size_t)cols, sizeof *L->w);
    L->bias = arena_alloc(a, (size_t)rows, sizeof *L->bias);
    L->rq = arena_alloc(a, (size_t)rows, sizeof *L->rq);
    L->w_scale = arena_alloc(a, (size_t)rows, sizeof *L->w_scale);
    if (!L->w || !L->bias || !L->rq || !L->w_scale) return nmf_error(NMF_ERR_NOMEM, "sta quantise: out of memory");
    float tmax = 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) tmax = fmaxf(tmax, fabsf(w[i]));
    for (int r = 0; r < rows; r++) {
        float m = tmax;
        if (q->weight_scale == NMF_STA_SCALE_CHANNEL) {
            m = 0;
            for (int c = 0; c < cols; c++) m = fmaxf(m, fabsf(w[(size_t)r * cols + c]));
        }
        L->w_scale[r] = m > 0 ? m / qmax : 1.0f;
        double sumabs = 0;
        for (int c = 0; c < cols; c++) {
            int32_t v = nmf_fx_quantize(w[(size_t)r * cols + c], L->w_scale[r], bits);
            L->w[(size_t)r * cols + c] = (int16_t)v;
            sumabs += fabs((double)v);
        }
        double b = bias ? (double)bias[r] / ((double)s_in * (double)L->w_scale[r]) : 0.0;
        if (fabs(b) > 9e15) return nmf_error(NMF_ERR_NUMERIC, "sta quantise: %s bias out of range", name);
        L->bias[r] = (int64_t)(b >= 0 ? floor(b + 0.5) : -floor(-b + 0.5));
        nmf_status st = check_acc(name, sumabs * qmax + fabs((double)L->bias[r]), q->acc_bits);
        if (st) return st;
        if (s_out > 0 && (st = nmf_fx_rq_from_real((double)s_in * L->w_scale[r] / s_out, &L->rq[r])))
            return nmf_error(st, "sta quantise: %s: %s", name, nmf_last_error());
    }
    if (nm) {
        if ((int)nm->rows != rows || (int)nm->cols != cols)
            return nmf_error(NMF_ERR_SHAPE, "sta quantise: %s packed shape mismatch", name);
        const size_t per_row = nm->groups * (size_t)nm->pattern.n;
        nmf_status vst = nmf_nm_validate(nm);
        if (vst) return vst;
        L->pattern = nm->pattern;
        L->groups = nm->groups;
        L->values = arena_alloc(a, (size_t)rows * per_row, sizeof *L->values);
        L->pos = arena_alloc(a, (size_t)rows * per_row, sizeof *L->pos);
        if (!L->values || !L->pos) return nmf_error(NMF_ERR_NOMEM, "sta quantise: out of memory");
        for (int r = 0; r < rows; r++)
            for (size_t j = 0; j < per_row; j++) {
                size_t k = (size_t)r * per_row + j;
                L->pos[k] = nm->pos[k];
                L->values[k] = (int16_t)nmf_fx_quantize(nm->values[k], L->w_scale[r], bits);
            }
    }
    return NMF_OK;
}

static nmf_status quant_norm(nmf_fx_norm *n, arena *a, const float *g, const float *b, int C,
                             float s_out) {
    n->gamma = arena_alloc(a, (size_t)C, sizeof *n->gamma);
    n->beta = arena_alloc(a, (size_t)C, sizeof *n->beta);
    if (!n->gamma || !n->beta) return nmf_error(NMF_ERR_NOMEM, "sta quantise: out of memory");
    for (int i = 0; i < C; i++) {
        double gq = (double)g[i] * (1 << NMF_FX_LN_FRAC), bq = ldexp((double)b[i], 2 * NMF_FX_LN_FRAC);
        /* |z| <= 2^12 sqrt(C) <= 2^20, so z * gamma + beta stays below 2^47 and its requantisation
         * (x 2^15) below 2^62 */
        if (fabs(gq) >= ldexp(1.0, 26) || fabs(bq) >= ldexp(1.0, 46))
            return nmf_error(NMF_ERR_NUMERIC,
                             "sta quantise: LayerNorm weight %g / bias %g beyond the fixed-point range "
                             "(|w| < 2^14, |b| < 2^22)", (double)g[i], (double)b[i]);
        n->gamma[i] = (int32_t)(gq >= 0 ? floor(gq + 0.5) : -floor(-gq + 0.5));
        n->beta[i] = (int64_t)(bq >= 0 ? floor(bq + 0.5) : -floor(-bq + 0.5));
    }
    return nmf_fx_rq_from_real(ldexp(1.0, -2 * NMF_FX_LN_FRAC) / s_out, &n->rq);
}

static nmf_status add_pair(nmf_fx_rq *ma, nmf_fx_rq *mb, float sa, float sb, float sc) {
    double ra = (double)sa / sc, rb = (double)sb / sc;
    nmf_fx_rq top;
    nmf_status st = nmf_fx_rq_from_real(ra > rb ? ra : rb, &top);
    if (st) return st;
    ma->shift = mb->shift = top.shift;
    ma->mult = (int32_t)floor(ldexp(ra, top.shift) + 0.5);
    mb->mult = (int32_t)floor(ldexp(rb, top.shift) + 0.5);
    return NMF_OK;
}

nmf_status nmf_fx_quantize_model(nmf_fx_model *q, const nmf_model_config *vit,
                                 const nmf_tensor_set *weights, const nmf_sta_config *hw,
                                 const float *calib, size_t n) {
    if (!q || !vit || !weights || !hw || !calib || !n)
        return nmf_error(NMF_ERR_INVALID_ARG, "sta quantise: NULL argument or no calibration data");
    memset(q, 0, sizeof *q);
    nmf_status st = nmf_model_config_validate(vit);
    if (st) return st;
    size_t na = nmf_sta_absmax_count(vit);
    float *absmax = calloc(na, sizeof *absmax);
    arena *a = calloc(1, sizeof *a);
    nmf_model_desc d = {0};
    float *wbuf = NULL;
    nmf_vit_params w; /* dense f32 weights, by kind (nmformer/desc.h) */
    if (!absmax || !a) {
        free(absmax);
        free(a);
        return nmf_error(NMF_ERR_NOMEM, "sta quantise: out of memory");
    }
    q->storage_ = a;
    q->vit = *vit;
    q->data_bits = hw->data_bits;
    q->acc_bits = hw->acc_bits;
    q->weight_scale = hw->weight_scale;
    const int bits = hw->data_bits, T = nmf_vit_tokens(vit), D = vit->dim, H = nmf_vit_hidden(vit);
    const int dh = D / vit->heads, pk = vit->in_chans * vit->patch * vit->patch;
    const int64_t qmax = fx_pmax(bits);
    /* LayerNorm sums of squares are exact in 63 bits up to this width (docs/STA.md) */
    if (D > (bits == 8 ? 65536 : 1024)) {
        st = nmf_error(NMF_ERR_UNSUPPORTED, "sta quantise: dim %d too wide for %d-bit LayerNorm", D, bits);
        goto out;
    }
    if ((st = nmf_model_describe(&d, vit))) goto out;
    if (!(wbuf = malloc(d.floats[NMF_LAYOUT_ALL] * sizeof *wbuf))) goto nomem;
    if ((st = nmf_model_load_dense(&d, weights, NMF_LAYOUT_ALL, wbuf))) goto out;
    nmf_vit_params_bind(&d, NMF_LAYOUT_ALL, wbuf, &w);
    /* calibration: the f32 reference on the same weights, recording each slot's max |x| */
    if ((st = nmf_sta_f32_forward(NULL, calib, n, vit, weights, absmax, na))) goto out;
    q->s_image = act_scale(absmax[FX_SLOT_IMAGE], bits);
    q->s_x0 = act_scale(absmax[FX_SLOT_X0], bits);
    /* patch embedding: conv as a linear over patches, pos_embed folded into a per-token bias */
    if ((st = quant_linear(&q->patch, a, "patch_embed", w.patch_w,
                           NULL, NULL, D, pk, q->s_image, q->s_x0, q)))
        goto out;
    {
        const float *pb = w.patch_b, *pos = w.pos, *cls = w.cls;
        q->patch_bias = arena_alloc(a, (size_t)(T - 1) * (size_t)D, sizeof *q->patch_bias);
        q->cls = arena_alloc(a, (size_t)D, sizeof *q->cls);
        if (!q->patch_bias || !q->cls) goto nomem;
        for (int t = 0; t < T - 1; t++)
            for (int o = 0; o < D; o++) {
                double b = ((double)pb[o] + pos[(size_t)(t + 1) * D + o]) /
                           ((double)q->s_image * q->patch.w_scale[o]);
                q->patch_bias[(size_t)t * D + o] = (int64_t)(b >= 0 ? floor(b + 0.5) : -floor(-b + 0.5));
            }
        for (int o = 0; o < D; o++) q->cls[o] = (int16_t)nmf_fx_quantize(cls[o] + pos[o], q->s_x0, bits);
        for (size_t i = 0; i < (size_t)(T - 1) * D; i++)
            if ((st = check_acc("patch_embed (bias + pos_embed)",
                                (double)pk * (double)qmax * (double)qmax + fabs((double)q->patch_bias[i]),
                                hw->acc_bits)))
                goto out;
    }
    q->blocks = arena_alloc(a, (size_t)vit->depth, sizeof *q->blocks);
    if (!q->blocks) goto nomem;
    float s_prev = q->s_x0;
    for (int L = 0; L < vit->depth; L++) {
        nmf_fx_block *B = &q->blocks[L];
        const float *am = absmax + fx_block_slot(L);
        B->s_in = s_prev;
        B->s_ln1 = act_scale(am[FX_LN1], bits);
        B->s_qkv = act_scale(am[FX_QKV], bits);
        B->s_attn = act_scale(am[FX_ATTN], bits);
        B->s_proj = act_scale(am[FX_PROJ], bits);
        B->s_x1 = act_scale(am[FX_X1], bits);
        B->s_ln2 = act_scale(am[FX_LN2], bits);
        B->s_fc1 = act_scale(am[FX_FC1], bits);
        B->s_gelu = act_scale(am[FX_GELU], bits);
        B->s_fc2 = act_scale(am[FX_FC2], bits);
        B->s_out = act_scale(am[FX_X2], bits);
        s_prev = B->s_out;
        const size_t l = (size_t)L, sD = (size_t)D, sH = (size_t)H;
#define NM(kind) nmf_tensors_find(weights, nmf_model_desc_at(&d, kind, L)->name)->nm
        if ((st = quant_norm(&B->norm1, a, w.ln1_w + l * sD, w.ln1_b + l * sD, D, B->s_ln1))) goto out;
        if ((st = quant_linear(&B->qkv, a, "attn.qkv", w.qkv_w + l * 3 * sD * sD, NM(NMF_VP_QKV_W),
                               w.qkv_b + l * 3 * sD, 3 * D, D, B->s_ln1, B->s_qkv, q)))
            goto out;
        if ((st = quant_linear(&B->proj, a, "attn.proj", w.proj_w + l * sD * sD, NM(NMF_VP_PROJ_W),
                               w.proj_b + l * sD, D, D, B->s_attn, B->s_proj, q)))
            goto out;
        if ((st = quant_linear(&B->fc1, a, "mlp.fc1", w.fc1_w + l * sH * sD, NM(NMF_VP_FC1_W),
                               w.fc1_b + l * sH, H, D, B->s_ln2, B->s_fc1, q)))
            goto out;
        if ((st = quant_linear(&B->fc2, a, "mlp.fc2", w.fc2_w + l * sD * sH, NM(NMF_VP_FC2_W),
                               w.fc2_b + l * sD, D, H, B->s_gelu, B->s_fc2, q)))
            goto out;
        if ((st = quant_norm(&B->norm2, a, w.ln2_w + l * sD, w.ln2_b + l * sD, D, B->s_ln2))) goto out;
#undef NM
        if ((st = check_acc("attention scores", (double)dh * qmax * qmax, hw->acc_bits))) goto out;
        if ((st = check_acc("attention P V", (double)T * qmax * qmax, hw->acc_bits))) goto out;
        double sm = (double)B->s_qkv * B->s_qkv / sqrt((double)dh) * 1.4426950408889634 *
                    (double)(1 << NMF_FX_EXP_FRAC);
        if ((st = nmf_fx_rq_from_real(sm, &B->softmax_rq))) goto out;
        if ((st = nmf_fx_rq_from_real((double)B->s_qkv / (double)qmax / B->s_attn, &B->av_rq))) goto out;
        if ((st = add_pair(&B->add1_a, &B->add1_b, B->s_in, B->s_proj, B->s_x1))) goto out;
        if ((st = add_pair(&B->add2_a, &B->add2_b, B->s_x1, B->s_fc2, B->s_out))) goto out;
        size_t lut = (size_t)1 << bits;
        B->gelu_lut = arena_alloc(a, lut, sizeof *B->gelu_lut);
        if (!B->gelu_lut) goto nomem;
        for (size_t i = 0; i < lut; i++) {
            double x = ((double)i - (double)(lut / 2)) * B->s_fc1;
            double g = 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
            B->gelu_lut[i] = (int16_t)nmf_fx_quantize((float)g, B->s_gelu, bits);
        }
    }
    q->s_norm = act_scale(absmax[fx_norm_slot(vit)], bits);
    if ((st = quant_norm(&q->norm, a, w.norm_w, w.norm_b, D,
                         q->s_norm)))
        goto out;
    if ((st = quant_linear(&q->head, a, "head", w.head_w, NULL,
                           w.head_b, vit->num_classes, D, q->s_norm, 0, q)))
        goto out;
    goto out;
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "sta quantise: out of memory");
out:
    free(absmax);
    free(wbuf);
    nmf_model_desc_free(&d);
    if (st) nmf_fx_model_free(q);
    return st;
}

void nmf_fx_quantize_input(int16_t *xq, const float *x, size_t count, const nmf_fx_model *q) {
    for (size_t i = 0; i < count; i++) xq[i] = (int16_t)nmf_fx_quantize(x[i], q->s_image, q->data_bits);
}

void nmf_fx_logits_to_f32(float *out, const int64_t *logits, const nmf_fx_model *q) {
    for (int o = 0; o < q->vit.num_classes; o++)
        out[o] = (float)((double)logits[o] * q->s_norm * q->head.w_scale[o]);
}
