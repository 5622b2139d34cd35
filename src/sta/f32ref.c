/* The f32 forward the sta module calibrates with (max |x| at every quantisation point) and that
 * serves as the accuracy reference for the fixed-point model. timm ViT semantics: pre-norm blocks,
 * LayerNorm eps 1e-6, exact GELU, class token first, logits from the class token. Linears and
 * LayerNorm are the library's (nmf_gemm, nmf_layernorm_forward); what is ours here is recording
 * the ranges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/patchify.h"
#include "nmformer/desc.h"
#include "nmformer/kernels.h"
#include "nmformer/ops.h"
#include "nmformer/sta.h"
#include "sta/fx_internal.h"

size_t nmf_sta_absmax_count(const nmf_vit_config *vit) { return 3 + (size_t)FX_SLOTS * (size_t)vit->depth; }

static void track(float *absmax, size_t slot, size_t count, const float *x, size_t n) {
    if (!absmax || slot >= count) return;
    float m = absmax[slot];
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    absmax[slot] = m;
}

/* y[T][out] = x[T][in] W^T + b */
static void linear(float *y, const float *x, const float *w, const float *b, int T, int out, int in) {
    nmf_gemm(0, 1, (size_t)T, (size_t)out, (size_t)in, 1.0f, x, (size_t)in, w, (size_t)in, 0.0f, y,
             (size_t)out);
    if (b)
        for (int t = 0; t < T; t++)
            for (int o = 0; o < out; o++) y[(size_t)t * out + o] += b[o];
}

static void layernorm(float *y, const float *x, const float *g, const float *b, int T, int C) {
    nmf_layernorm_forward(y, x, g, b, (size_t)T, (size_t)C, NMF_LAYERNORM_EPS);
}

nmf_status fx_dense_weights(const nmf_vit_config *vit, const nmf_tensor_set *set, fx_weights *w) {
    memset(w, 0, sizeof *w);
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, vit);
    if (st) return st;
    w->count = d.count;
    w->names = calloc(d.count, sizeof *w->names);
    w->data = calloc(d.count, sizeof *w->data);
    if (!w->names || !w->data) {
        st = nmf_error(NMF_ERR_NOMEM, "sta: out of memory");
        goto out;
    }
    for (size_t i = 0; i < d.count; i++) {
        const nmf_param *p = &d.params[i];
        nmf_tensor *t = nmf_tensors_find(set, p->name);
        if (!t) {
            st = nmf_error(NMF_ERR_NOT_FOUND, "sta: tensor %s missing", p->name);
            goto out;
        }
        if (t->numel != p->numel) {
            st = nmf_error(NMF_ERR_SHAPE, "sta: %s has %zu elements, expected %zu", p->name,
                           t->numel, p->numel);
            goto out;
        }
        w->names[i] = strdup(p->name);
        w->data[i] = malloc(p->numel * sizeof(float));
        if (!w->names[i] || !w->data[i]) {
            st = nmf_error(NMF_ERR_NOMEM, "sta: out of memory");
            goto out;
        }
        if ((st = nmf_tensor_dense(t, w->data[i]))) goto out;
        for (size_t k = 0; k < p->numel; k++)
            if (!isfinite(w->data[i][k])) {
                st = nmf_error(NMF_ERR_NUMERIC, "sta: %s holds NaN/Inf", p->name);
                goto out;
            }
    }
out:
    nmf_model_desc_free(&d);
    if (st) fx_weights_free(w);
    return st;
}

void fx_weights_free(fx_weights *w) {
    for (size_t i = 0; i < w->count; i++) {
        if (w->names) free(w->names[i]);
        if (w->data) free(w->data[i]);
    }
    free(w->names);
    free(w->data);
    memset(w, 0, sizeof *w);
}

const float *fx_get(const fx_weights *w, const char *fmt, int i) {
    char name[96];
    snprintf(name, sizeof name, fmt, i);
    for (size_t k = 0; k < w->count; k++)
        if (!strcmp(w->names[k], name)) return w->data[k];
    return NULL;
}

nmf_status nmf_sta_f32_forward(float *logits, const float *images, size_t n,
                               const nmf_vit_config *vit, const nmf_tensor_set *weights,
                               float *absmax, size_t absmax_count) {
    nmf_status st = nmf_vit_config_validate(vit);
    if (st) return st;
    fx_weights w;
    if ((st = fx_dense_weights(vit, weights, &w))) return st;
    st = fx_f32_forward(logits, images, n, vit, &w, absmax, absmax_count);
    fx_weights_free(&w);
    return st;
}

nmf_status fx_f32_forward(float *logits, const float *images, size_t n, const nmf_vit_config *vit,
                          const fx_weights *w, float *absmax, size_t absmax_count) {
    const int T = nmf_vit_tokens(vit), D = vit->dim, H = nmf_vit_hidden(vit), heads = vit->heads;
    const int dh = D / heads, pk = vit->in_chans * vit->patch * vit->patch, np = T - 1;
    const size_t img = (size_t)vit->in_chans * (size_t)vit->img_size * (size_t)vit->img_size;
    float *buf = malloc(sizeof(float) * ((size_t)np * pk + (size_t)T * (8 * D + 2 * H) + (size_t)T));
    if (!buf) return nmf_error(NMF_ERR_NOMEM, "sta f32 forward: out of memory");
    float *patch = buf, *x = patch + (size_t)np * pk, *ln = x + (size_t)T * D;
    float *qkv = ln + (size_t)T * D, *att = qkv + (size_t)T * 3 * D, *tmp = att + (size_t)T * D;
    float *hid = tmp + (size_t)T * D, *gel = hid + (size_t)T * H, *sc = gel + (size_t)T * H;
    const float *pw = fx_get(w, "patch_embed.proj.weight", 0), *pb = fx_get(w, "patch_embed.proj.bias", 0);
    const float *cls = fx_get(w, "cls_token", 0), *pos = fx_get(w, "pos_embed", 0);
    for (size_t b = 0; b < n; b++) {
        const float *im = images + b * img;
        track(absmax, FX_SLOT_IMAGE, absmax_count, im, img);
        nmf_patchify(patch, im, sizeof(float), 1, vit->in_chans, vit->img_size, vit->patch);
        linear(x + D, patch, pw, pb, np, D, pk);
        for (int o = 0; o < D; o++) x[o] = cls[o];
        for (size_t i = 0; i < (size_t)T * D; i++) x[i] += pos[i];
        track(absmax, FX_SLOT_X0, absmax_count, x, (size_t)T * D);
        for (int L = 0; L < vit->depth; L++) {
            size_t base = fx_block_slot(L);
#define W(nm) fx_get(w, "blocks.%d." nm, L)
            layernorm(ln, x, W("norm1.weight"), W("norm1.bias"), T, D);
            track(absmax, base + FX_LN1, absmax_count, ln, (size_t)T * D);
            linear(qkv, ln, W("attn.qkv.weight"), W("attn.qkv.bias"), T, 3 * D, D);
            track(absmax, base + FX_QKV, absmax_count, qkv, (size_t)T * 3 * D);
            const float scale = 1.0f / sqrtf((float)dh);
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < T; i++) {
                    const float *q = qkv + (size_t)i * 3 * D + h * dh;
                    float m = -INFINITY;
                    for (int j = 0; j < T; j++) {
                        const float *k = qkv + (size_t)j * 3 * D + D + h * dh;
                        float s = 0;
                        for (int d = 0; d < dh; d++) s += q[d] * k[d];
                        sc[j] = s * scale;
                        if (sc[j] > m) m = sc[j];
                    }
                    double sum = 0;
                    for (int j = 0; j < T; j++) sum += (sc[j] = expf(sc[j] - m));
                    float *o = att + (size_t)i * D + h * dh;
                    for (int d = 0; d < dh; d++) o[d] = 0;
                    for (int j = 0; j < T; j++) {
                        const float *v = qkv + (size_t)j * 3 * D + 2 * D + h * dh;
                        float p = (float)(sc[j] / sum);
                        for (int d = 0; d < dh; d++) o[d] += p * v[d];
                    }
                }
            track(absmax, base + FX_ATTN, absmax_count, att, (size_t)T * D);
            linear(tmp, att, W("attn.proj.weight"), W("attn.proj.bias"), T, D, D);
            track(absmax, base + FX_PROJ, absmax_count, tmp, (size_t)T * D);
            for (size_t i = 0; i < (size_t)T * D; i++) x[i] += tmp[i];
            track(absmax, base + FX_X1, absmax_count, x, (size_t)T * D);
            layernorm(ln, x, W("norm2.weight"), W("norm2.bias"), T, D);
            track(absmax, base + FX_LN2, absmax_count, ln, (size_t)T * D);
            linear(hid, ln, W("mlp.fc1.weight"), W("mlp.fc1.bias"), T, H, D);
            track(absmax, base + FX_FC1, absmax_count, hid, (size_t)T * H);
            nmf_gelu_forward_ref(gel, hid, (size_t)T * H); /* exact erf, as PyTorch */
            track(absmax, base + FX_GELU, absmax_count, gel, (size_t)T * H);
            linear(tmp, gel, W("mlp.fc2.weight"), W("mlp.fc2.bias"), T, D, H);
            track(absmax, base + FX_FC2, absmax_count, tmp, (size_t)T * D);
            for (size_t i = 0; i < (size_t)T * D; i++) x[i] += tmp[i];
            track(absmax, base + FX_X2, absmax_count, x, (size_t)T * D);
#undef W
        }
        layernorm(ln, x, fx_get(w, "norm.weight", 0), fx_get(w, "norm.bias", 0), 1, D);
        track(absmax, fx_norm_slot(vit), absmax_count, ln, (size_t)D);
        if (logits)
            linear(logits + b * (size_t)vit->num_classes, ln, fx_get(w, "head.weight", 0),
                   fx_get(w, "head.bias", 0), 1, vit->num_classes, D);
    }
    free(buf);
    return NMF_OK;
}
