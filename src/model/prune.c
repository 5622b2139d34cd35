/* One-shot magnitude pruning and N:M repacking, driven by the parameter table: which tensors are
 * N:M-eligible and which axis is their input dimension come from the description, not from
 * name lists.
 *
 * Groups of M always run along a linear's input dimension. A weight stored [out, in]
 * (nn.Linear) is pruned row by row as it is; one stored [in, out] (GPT-2's Conv1D, in_axis 0)
 * is pruned through its (out, in) view, i.e. per output column over M consecutive rows, and
 * held as an nm matrix of that view with the tensor's [in, out] shape kept (nm_transposed,
 * tensor.h). The input dimension must be a multiple of M (NMF_ERR_SHAPE naming the tensor
 * otherwise), as for training and the random models: the format could pad the last group, but
 * no nmformer producer does. */
#include <stdlib.h>
#include <string.h>

#include "model/prune_internal.h"
#include "nmformer/desc.h"
#include "nmformer/model.h"

const nmf_param *nmf_model_nm_param(const nmf_model_desc *d, const char *name) {
    const nmf_param *p = nmf_model_desc_find(d, name);
    return p && nmf_param_kind_of(d, p)->nm ? p : NULL;
}

/* The description row of an N:M-eligible tensor t; NULL when t is not one. */
static const nmf_param *eligible(const nmf_model_desc *d, const nmf_tensor *t) {
    return nmf_model_nm_param(d, t->name);
}

nmf_status nmf_linear_view(const nmf_model_desc *d, const nmf_param *p, const nmf_tensor *t,
                           float **out) {
    *out = NULL;
    if (t->numel != p->numel || t->ndim != 2)
        return nmf_error(NMF_ERR_SHAPE, "tensor '%s': %zu values, the config expects %zu (2-D)",
                         t->name, t->numel, p->numel);
    float *w = nmf_alloc(t->numel, sizeof(float));
    if (!w) return nmf_error(NMF_ERR_NOMEM, "%s", t->name);
    nmf_status st = nmf_tensor_dense(t, w);
    if (!st && nmf_param_kind_of(d, p)->in_axis == 0) { /* [in, out] storage -> (out, in) */
        float *v = nmf_alloc(t->numel, sizeof(float));
        if (!v) {
            st = nmf_error(NMF_ERR_NOMEM, "%s", t->name);
        } else {
            for (size_t i = 0; i < p->cols; i++)     /* i: input  (stored row) */
                for (size_t o = 0; o < p->rows; o++) /* o: output (stored column) */
                    v[o * p->cols + i] = w[i * p->rows + o];
            nmf_free(w);
            w = v;
        }
    }
    if (st) {
        nmf_free(w);
        return st;
    }
    *out = w;
    return NMF_OK;
}

void nmf_linear_view_store(const nmf_model_desc *d, const nmf_param *p, const float *w, nmf_tensor *t) {
    if (nmf_param_kind_of(d, p)->in_axis != 0) {
        memcpy(t->data, w, p->numel * sizeof(float));
        return;
    }
    for (size_t i = 0; i < p->cols; i++)     /* i: input  (stored row) */
        for (size_t o = 0; o < p->rows; o++) /* o: output (stored column) */
            t->data[i * p->rows + o] = w[o * p->cols + i];
}

/* Packs the (out, in) view w of row p as pattern pp and adds it to s under name: the entries of
 * mask when it is given, else the magnitude top-N per group (a weight that already is N:M packs
 * exactly). */
static nmf_status add_packed(const nmf_model_desc *d, const nmf_param *p, const char *name,
                             const float *w, const uint8_t *mask, nmf_pattern pp, nmf_tensor_set *s,
                             nmf_tensor **out) {
    nmf_nm_matrix m;
    nmf_status st = mask ? nmf_nm_pack_masked(&m, w, mask, p->rows, p->cols, pp, 0)
                         : nmf_nm_pack(&m, w, p->rows, p->cols, pp, 0);
    if (st) return nmf_error_context(st, "%s", name);
    st = nmf_tensors_add_nm_transposed(s, name, &m, nmf_param_kind_of(d, p)->in_axis == 0, out);
    if (st) nmf_nm_free(&m);
    return st;
}

nmf_status nmf_model_prune(const nmf_model_config *c, const nmf_tensor_set *dense, nmf_pattern p,
                           nmf_tensor_set *out) {
    return nmf_model_prune_by(c, dense, p, NULL, NULL, out);
}

nmf_status nmf_model_prune_by(const nmf_model_config *c, const nmf_tensor_set *dense, nmf_pattern p,
                              nmf_prune_layer_fn fn, void *ctx, nmf_tensor_set *out) {
    nmf_tensors_init(out);
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, c);
    if (st) return st;
    st = nmf_tensors_copy_meta(dense, out);
    for (size_t i = 0; !st && i < dense->count; i++) {
        const nmf_tensor *t = &dense->items[i];
        const nmf_param *row = eligible(&d, t);
        nmf_tensor *copy = NULL;
        if (!row) {
            st = nmf_tensors_add_dense(out, t->name, t->ndim, t->shape, NULL, &copy);
            if (!st) st = nmf_tensor_dense(t, copy->data);
        } else {
            float *w;
            uint8_t *mask = NULL;
            st = nmf_linear_view(&d, row, t, &w);
            if (!st && fn) {
                mask = nmf_alloc(row->numel, 1);
                st = mask ? fn(ctx, row, w, mask) : nmf_error(NMF_ERR_NOMEM, "%s: mask", t->name);
                if (st) st = nmf_error_context(st, "%s", t->name);
            }
            if (!st) st = add_packed(&d, row, t->name, w, mask, p, out, &copy);
            nmf_free(mask);
            nmf_free(w);
        }
        if (!st) copy->stored_dtype = t->stored_dtype;
    }
    nmf_model_desc_free(&d);
    if (st) nmf_tensors_free(out);
    return st;
}

nmf_status nmf_model_pack_nm(const nmf_model_config *c, nmf_tensor_set *s, nmf_pattern p) {
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, c);
    if (st) return st;
    for (size_t i = 0; i < s->count && !st; i++) {
        nmf_tensor *t = &s->items[i];
        const nmf_param *row = eligible(&d, t);
        if (!row || !t->data || t->nm) continue;
        float *w;
        if ((st = nmf_linear_view(&d, row, t, &w))) break;
        int is_nm = 0;
        st = nmf_nm_check(w, row->rows, row->cols, p, 0, &is_nm);
        if (!st && !is_nm)
            st = nmf_error(NMF_ERR_INVALID_ARG, "tensor '%s' is not %d:%d sparse along its input "
                           "dimension (prune it first)", t->name, p.n, p.m);
        nmf_nm_matrix m;
        if (!st) st = nmf_nm_pack(&m, w, row->rows, row->cols, p, 0);
        nmf_free(w);
        if (st) break;
        /* replace the dense values by the packed form in place: same name, same shape */
        nmf_nm_matrix *owned = malloc(sizeof *owned);
        if (!owned) {
            nmf_nm_free(&m);
            st = nmf_error(NMF_ERR_NOMEM, "%s", t->name);
            break;
        }
        *owned = m;
        t->nm = owned;
        t->nm_transposed = nmf_param_kind_of(&d, row)->in_axis == 0;
        nmf_free(t->data);
        t->data = NULL;
    }
    nmf_model_desc_free(&d);
    return st;
}
