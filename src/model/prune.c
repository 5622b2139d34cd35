/* One-shot magnitude pruning and N:M repacking, driven by the parameter table: which tensors are
 * N:M-eligible and which axis is their input dimension come from the description, not from
 * name lists. */
#include <stdlib.h>
#include <string.h>

#include "nmformer/desc.h"
#include "nmformer/model.h"

/* The description row of an N:M-eligible tensor t; NULL when t is not one. Storage [in, out]
 * (in_axis 0) would need a transpose before packing, which no family needs yet: refused. */
static nmf_status eligible(const nmf_model_desc *d, const nmf_tensor *t, const nmf_param **out) {
    const nmf_param *p = nmf_model_desc_find(d, t->name);
    *out = NULL;
    if (!p || !nmf_param_kind_of(d, p)->nm) return NMF_OK;
    if (nmf_param_kind_of(d, p)->in_axis != 1)
        return nmf_error(NMF_ERR_UNSUPPORTED, "tensor '%s': N:M packing of [in, out] storage",
                         t->name);
    *out = p;
    return NMF_OK;
}

nmf_status nmf_model_prune(const nmf_model_config *c, const nmf_tensor_set *dense, nmf_pattern p,
                           nmf_tensor_set *out) {
    nmf_tensors_init(out);
    nmf_model_desc d;
    nmf_status st = nmf_model_describe(&d, c);
    if (st) return st;
    st = nmf_tensors_copy_meta(dense, out);
    for (size_t i = 0; !st && i < dense->count; i++) {
        const nmf_tensor *t = &dense->items[i];
        const nmf_param *row;
        if ((st = eligible(&d, t, &row))) break;
        if (!row) {
            nmf_tensor *copy;
            st = nmf_tensors_add_dense(out, t->name, t->ndim, t->shape, NULL, &copy);
            if (!st) st = nmf_tensor_dense(t, copy->data);
            continue;
        }
        if (t->numel != row->numel) {
            st = nmf_error(NMF_ERR_SHAPE, "tensor '%s': %zu values, the config expects %zu", t->name,
                           t->numel, row->numel);
            break;
        }
        float *w = nmf_alloc(t->numel, sizeof(float));
        if (!w) {
            st = nmf_error(NMF_ERR_NOMEM, "%s", t->name);
            break;
        }
        st = nmf_tensor_dense(t, w);
        nmf_nm_matrix m;
        if (!st && (st = nmf_nm_pack(&m, w, row->rows, row->cols, p, 0)))
            st = nmf_error_context(st, "%s", t->name);
        if (!st && (st = nmf_tensors_add_nm(out, t->name, &m, NULL))) nmf_nm_free(&m);
        nmf_free(w);
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
        const nmf_param *row;
        if ((st = eligible(&d, t, &row)) || !row || !t->data || t->nm) continue;
        if (t->numel != row->numel) {
            st = nmf_error(NMF_ERR_SHAPE, "tensor '%s': %zu values, the config expects %zu", t->name,
                           t->numel, row->numel);
            break;
        }
        int is_nm = 0;
        st = nmf_nm_check(t->data, row->rows, row->cols, p, 0, &is_nm);
        if (!st && !is_nm)
            st = nmf_error(NMF_ERR_INVALID_ARG, "tensor '%s' is not %d:%d sparse (prune it first)",
                           t->name, p.n, p.m);
        nmf_nm_matrix m;
        if (!st) st = nmf_nm_pack(&m, t->data, row->rows, row->cols, p, 0);
        if (st) break;
        nmf_nm_matrix *owned = malloc(sizeof *owned);
        if (!owned) {
            nmf_nm_free(&m);
            st = nmf_error(NMF_ERR_NOMEM, "%s", t->name);
            break;
        }
        *owned = m;
        t->nm = owned;
        nmf_free(t->data);
        t->data = NULL;
    }
    nmf_model_desc_free(&d);
    return st;
}
