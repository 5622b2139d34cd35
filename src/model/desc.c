/* The parameter table machinery shared by every family: layouts, look-up, checking a tensor set
 * against the table. The families' kind lists and table builders are in <family>_desc.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/desc_internal.h"
#include "nmformer/desc.h"

static const char *const role_names[] = {
    [NMF_ROLE_EMBED] = "embedding",   [NMF_ROLE_CLS] = "cls",
    [NMF_ROLE_POS] = "position",      [NMF_ROLE_NORM_W] = "norm weight",
    [NMF_ROLE_NORM_B] = "norm bias",  [NMF_ROLE_LINEAR_W] = "linear weight",
    [NMF_ROLE_BIAS] = "bias",         [NMF_ROLE_HEAD_W] = "head weight",
    [NMF_ROLE_HEAD_B] = "head bias",
};
_Static_assert(sizeof role_names / sizeof role_names[0] == NMF_ROLE_COUNT, "role names");

const char *nmf_param_role_name(nmf_param_role r) {
    return (unsigned)r < NMF_ROLE_COUNT ? role_names[r] : "?";
}

int nmf_param_role_decays(nmf_param_role r) {
    return r == NMF_ROLE_EMBED || r == NMF_ROLE_LINEAR_W || r == NMF_ROLE_HEAD_W;
}

void nmf_param_role_init(nmf_param_role r, float *x, size_t n, uint64_t *rng) {
    float std = 0.02f;
    switch (r) {
    case NMF_ROLE_NORM_W:
        for (size_t i = 0; i < n; i++) x[i] = 1.0f;
        return;
    case NMF_ROLE_NORM_B: case NMF_ROLE_BIAS: case NMF_ROLE_HEAD_B:
        for (size_t i = 0; i < n; i++) x[i] = 0.0f;
        return;
    case NMF_ROLE_CLS: std = 1e-6f; break;
    default: break;
    }
    for (size_t i = 0; i < n; i++) x[i] = std * nmf_rng_trunc_normal(rng);
}

/* The 2-D view of a row: linear weights as (out, in) whatever the storage order, everything
 * else as (first axis, rest) -- a vector is (1, n). */
static void view_2d(nmf_param *p, const nmf_param_kind *k) {
    if (p->ndim == 1) {
        p->rows = 1, p->cols = p->numel;
    } else if (k->in_axis == 0) {
        p->rows = (size_t)p->shape[1], p->cols = (size_t)p->shape[0];
    } else {
        p->rows = (size_t)p->shape[0], p->cols = p->numel / (size_t)p->shape[0];
    }
}

const nmf_model_family *nmf_model_family_of(const nmf_model_config *c) {
    if (!strcmp(c->arch, "vit")) return nmf_vit_family();
    if (!nmf_model_is_token(c)) return NULL;
    switch (c->hf.model_type) {
    case NMF_HF_BERT: return nmf_bert_family();
    case NMF_HF_GPT2: return nmf_gpt2_family();
    case NMF_HF_LLAMA: return nmf_llama_family();
    default: return NULL;
    }
}

nmf_status nmf_model_describe(nmf_model_desc *d, const nmf_model_config *c) {
    if (!d || !c) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_model_describe: NULL argument");
    memset(d, 0, sizeof *d);
    nmf_status st = nmf_model_config_validate(c);
    if (st) return st;
    const nmf_model_family *f = nmf_model_family_of(c);
    if (!f) return nmf_error(NMF_ERR_UNSUPPORTED, "model config: arch '%s' has no description", c->arch);
    d->config = *c;
    d->family = f->title;
    d->kinds = f->kinds;
    d->kind_count = f->kind_count;
    d->count = f->count(c);
    d->params = calloc(d->count, sizeof *d->params);
    if (!d->params) return nmf_error(NMF_ERR_NOMEM, "model description (%zu tensors)", d->count);
    f->build(c, d->params);
    /* sizes: numel, 2-D view, and one numel per kind (every block's tensor of a kind alike) */
    int seen[NMF_DESC_MAX_KINDS] = {0};
    for (size_t i = 0; i < d->count; i++) {
        nmf_param *p = &d->params[i];
        const nmf_param_kind *k = &d->kinds[p->kind];
        p->numel = 1;
        for (int a = 0; a < p->ndim; a++) p->numel *= (size_t)p->shape[a];
        view_2d(p, k);
        if (!seen[p->kind]) d->kind_numel[p->kind] = p->numel, d->kind_first[p->kind] = i, seen[p->kind] = 1;
        if (d->kind_numel[p->kind] != p->numel || (p->block >= 0) != (k->per_block != 0)) {
            nmf_model_desc_free(d);
            return nmf_error(NMF_ERR_INVALID_ARG, "model description: row '%s' disagrees with its "
                             "kind (internal)", p->name);
        }
    }
    /* layouts: kinds in kind order, a block kind's tensors stacked over the blocks */
    for (int l = 0; l < NMF_LAYOUT_COUNT; l++) {
        size_t off = 0;
        for (int k = 0; k < d->kind_count; k++) {
            const nmf_param_kind *kind = &d->kinds[k];
            if (!seen[k] || (l == NMF_LAYOUT_DENSE && kind->nm)) {
                d->kind_offset[l][k] = SIZE_MAX;
                continue;
            }
            d->kind_offset[l][k] = off;
            off += d->kind_numel[k] * (kind->per_block ? (size_t)nmf_model_layers(c) : 1);
        }
        d->floats[l] = off;
    }
    return NMF_OK;
}

void nmf_model_desc_free(nmf_model_desc *d) {
    if (!d) return;
    free(d->params);
    memset(d, 0, sizeof *d);
}

const nmf_param *nmf_model_desc_find(const nmf_model_desc *d, const char *name) {
    for (size_t i = 0; name && i < d->count; i++)
        if (!strcmp(d->params[i].name, name)) return &d->params[i];
    return NULL;
}

size_t nmf_model_desc_offset(const nmf_model_desc *d, nmf_layout l, const nmf_param *p) {
    size_t base = d->kind_offset[l][p->kind];
    if (base == SIZE_MAX) return SIZE_MAX;
    return base + (p->block > 0 ? (size_t)p->block * d->kind_numel[p->kind] : 0);
}

const nmf_param *nmf_model_desc_at(const nmf_model_desc *d, int kind, int block) {
    for (size_t i = d->kind_first[kind]; i < d->count; i++)
        if (d->params[i].kind == kind && d->params[i].block == block) return &d->params[i];
    return NULL;
}

nmf_status nmf_model_load_param(const nmf_model_desc *d, nmf_layout l, const nmf_param *p,
                                const nmf_tensor *t, float *buf) {
    const size_t off = nmf_model_desc_offset(d, l, p);
    if (off == SIZE_MAX) return NMF_OK;
    float *dst = buf + off;
    nmf_status st = nmf_tensor_dense(t, dst);
    for (size_t k = 0; !st && k < p->numel; k++)
        if (!isfinite(dst[k])) st = nmf_error(NMF_ERR_NUMERIC, "tensor '%s': non-finite value at %zu", p->name, k);
    return st;
}

nmf_status nmf_model_load_dense(const nmf_model_desc *d, const nmf_tensor_set *s, nmf_layout l,
                                float *buf) {
    nmf_status st = nmf_model_desc_check(d, s);
    for (size_t i = 0; i < d->count && !st; i++)
        st = nmf_model_load_param(d, l, &d->params[i], nmf_tensors_find(s, d->params[i].name), buf);
    return st;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

nmf_status nmf_model_desc_check(const nmf_model_desc *d, const nmf_tensor_set *s) {
    for (size_t i = 0; i < d->count; i++) {
        const nmf_param *p = &d->params[i];
        const nmf_tensor *t = nmf_tensors_find(s, p->name);
        if (!t) return nmf_error(NMF_ERR_NOT_FOUND, "tensor '%s' missing", p->name);
        int same = t->ndim == p->ndim;
        for (int a = 0; same && a < t->ndim; a++) same = t->shape[a] == p->shape[a];
        if (!same) {
            char have[96], want[96];
            format_shape(have, sizeof have, t->ndim, t->shape);
            format_shape(want, sizeof want, p->ndim, p->shape);
            return nmf_error(NMF_ERR_SHAPE, "tensor '%s' has shape %s, config expects %s", p->name,
                             have, want);
        }
        if (t->nm && !d->kinds[p->kind].nm)
            return nmf_error(NMF_ERR_FORMAT, "tensor '%s' is N:M but only block linears may be",
                             p->name);
        /* the nm matrix is the (out, in) view: it must group along the kind's input axis */
        if (t->nm && t->nm_transposed != (d->kinds[p->kind].in_axis == 0))
            return nmf_error(NMF_ERR_FORMAT, "tensor '%s' is N:M along axis %d, but its input "
                             "dimension is axis %d", p->name, t->nm_transposed ? 0 : 1,
                             d->kinds[p->kind].in_axis);
    }
    for (size_t j = 0; j < s->count; j++)
        if (!nmf_model_desc_find(d, s->items[j].name))
            return nmf_error(NMF_ERR_FORMAT, "unexpected tensor '%s' (not part of a %s with this "
                             "config)", s->items[j].name, d->family);
    return NMF_OK;
}

nmf_status nmf_model_check_tensors(const nmf_model_config *c, const nmf_tensor_set *s) {
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, c);
    if (st) return st;
    st = nmf_model_desc_check(&d, s);
    nmf_model_desc_free(&d);
    return st;
}
