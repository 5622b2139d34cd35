/* Block linears from their tensors, for every model (block_linear.h). */
#include "model/block_linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"
#include "nmformer/nm.h"

nmf_status nmf_block_check_finite16(const char *name, const uint16_t *v, size_t n, nmf_dtype dtype) {
    const uint16_t exp = dtype == NMF_DTYPE_F16 ? 0x7c00 : 0x7f80; /* exponent all ones */
    for (size_t i = 0; i < n; i++)
        if ((v[i] & exp) == exp)
            return nmf_error(NMF_ERR_NUMERIC, "tensor '%s': non-finite value at %zu", name, i);
    return NMF_OK;
}

/* a dense tensor's header: no values in any form */
static int dense_header(const nmf_tensor *t) { return !t->data && !t->data16 && !t->nm; }

int nmf_block_is16(const nmf_tensor *t) {
    return t->data16 || (dense_header(t) && t->stored_dtype != NMF_DTYPE_F32);
}

int nmf_block_set_kept16(const nmf_tensor_set *s) {
    for (size_t i = 0; i < s->count; i++)
        if (nmf_block_is16(&s->items[i])) return 1;
    return 0;
}

void nmf_block_maps_free(nmf_block_maps *m) {
    for (size_t i = 0; i < m->count; i++) nmf_io_window_unmap(&m->items[i]);
    free(m->items);
    memset(m, 0, sizeof *m);
}

/* (out, in) from storage [in, out] */
static void transpose(float *dst, const float *src, size_t rows_in, size_t cols_out) {
    for (size_t i = 0; i < rows_in; i++)
        for (size_t o = 0; o < cols_out; o++) dst[o * rows_in + i] = src[i * cols_out + o];
}

/* A dense linear kept in t's stored 16-bit dtype. */
static nmf_status linear16_from_tensor(nmf_linear **lin, const nmf_param *p, nmf_tensor *t,
                                       int transposed, int take) {
    nmf_status st = nmf_block_check_finite16(t->name, t->data16, t->numel, t->stored_dtype);
    if (st == NMF_OK && !transposed && take)
        return nmf_linear_create_dense16_take(lin, &t->data16, t->stored_dtype, p->rows, p->cols);
    if (st || !transposed)
        return st ? st : nmf_linear_create_dense16(lin, t->data16, t->stored_dtype, p->rows, p->cols);
    uint16_t *wt = malloc(p->numel * sizeof *wt); /* (out, in) from [in, out] */
    if (!wt) return nmf_error(NMF_ERR_NOMEM, "tensor '%s': %zu values", p->name, p->numel);
    for (size_t i = 0; i < p->cols; i++)
        for (size_t o = 0; o < p->rows; o++) wt[o * p->cols + i] = t->data16[i * p->rows + o];
    st = nmf_linear_create_dense16(lin, wt, t->stored_dtype, p->rows, p->cols);
    free(wt);
    return st;
}

static nmf_status non_finite(const nmf_param *p, const float *w, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return nmf_error(NMF_ERR_NUMERIC, "tensor '%s': non-finite %s %zu", p->name, what, i);
    return NMF_OK;
}

nmf_status nmf_block_linear_from_tensor(nmf_linear **lin, const nmf_param *p, const nmf_param_kind *k,
                                        nmf_tensor *t, int take, int kept16) {
    if (t->nm) {
        if (t->nm->rows != p->rows || t->nm->cols != p->cols)
            return nmf_error(NMF_ERR_SHAPE, "tensor '%s': N:M form is %zu x %zu, its (out, in) view "
                             "%zu x %zu", p->name, t->nm->rows, t->nm->cols, p->rows, p->cols);
        nmf_status st = nmf_nm_validate(t->nm);
        if (st == NMF_OK)
            st = non_finite(p, t->nm->values, t->nm->rows * t->nm->groups * (size_t)t->nm->pattern.n,
                            "kept value");
        if (st != NMF_OK) return st;
        if (kept16 && t->stored_dtype == NMF_DTYPE_BF16) /* memory ~ the stored bytes */
            return nmf_linear_create_nm_bf16(lin, t->nm);
        return nmf_linear_create_nm(lin, t->nm);
    }
    if (t->data16) return linear16_from_tensor(lin, p, t, k->in_axis == 0, take);
    if (!t->data) return nmf_error(NMF_ERR_FORMAT, "tensor '%s' holds no data", p->name);
    if (k->in_axis != 0) { /* stored (out, in): the values as they are */
        nmf_status st = non_finite(p, t->data, p->numel, "value at");
        return st ? st : nmf_linear_create_dense(lin, t->data, p->rows, p->cols);
    }
    float *wt = malloc(p->numel * sizeof(float));
    if (!wt) return nmf_error(NMF_ERR_NOMEM, "tensor '%s': %zu floats", p->name, p->numel);
    nmf_status st = non_finite(p, t->data, p->numel, "value at");
    if (st == NMF_OK) {
        transpose(wt, t->data, p->cols, p->rows);
        st = nmf_linear_create_dense(lin, wt, p->rows, p->cols);
    }
    free(wt);
    return st;
}

static nmf_status kind_is(const char *path, const nmf_model_config *c, int token) {
    if (nmf_model_is_token(c) == token) return NMF_OK;
    if (token)
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: a %s model classifies images, not a causal language "
                         "model or other token model (nmf_vit_load reads it)", path, c->arch);
    return nmf_error(NMF_ERR_UNSUPPORTED, "%s: a %s model takes token ids, not images (nmf_lm_load "
                     "reads it)", path, c->arch);
}

nmf_status nmf_block_dense16_build(nmf_linear **lin, const nmf_param *p, nmf_tensor *t, int transposed,
                                   int take, const nmf_block_source *src, nmf_block_maps *maps) {
    if (!dense_header(t)) return linear16_from_tensor(lin, p, t, transposed, take);
    if (!src || !src->file)
        return nmf_error(NMF_ERR_FORMAT, "tensor '%s' holds no data", p->name);
    nmf_io_window w;
    nmf_status st = transposed ? NMF_ERR_UNSUPPORTED /* stored [in, out]: a transposed copy */
                               : nmf_io_family_file_map16(src->file, src->model, p->name, &w);
    if (st == NMF_OK) { /* in place: the model keeps the mapping */
        if (maps->count == maps->cap) {
            const size_t cap = maps->cap ? 2 * maps->cap : 16;
            nmf_io_window *grown = realloc(maps->items, cap * sizeof *grown);
            if (!grown) {
                nmf_io_window_unmap(&w);
                return nmf_error(NMF_ERR_NOMEM, "tensor '%s': mapping table", p->name);
            }
            maps->items = grown;
            maps->cap = cap;
        }
        const uint16_t *v = (const uint16_t *)(const void *)w.p;
        st = nmf_block_check_finite16(p->name, v, p->numel, t->stored_dtype);
        if (st == NMF_OK) st = nmf_linear_create_dense16_borrow(lin, v, t->stored_dtype, p->rows, p->cols);
        if (st == NMF_OK) maps->items[maps->count++] = w;
        else nmf_io_window_unmap(&w);
        return st;
    }
    if (st != NMF_ERR_UNSUPPORTED) return st;
    nmf_tensor_set one; /* its layout does not allow it: a copy, read for this layer only */
    nmf_tensors_init(&one);
    st = nmf_io_family_file_decode_named16(src->file, src->model, p->name, &one, 1);
    if (st == NMF_OK) st = linear16_from_tensor(lin, p, &one.items[0], transposed, 1);
    nmf_tensors_free(&one);
    return st;
}

nmf_status nmf_block_source_fill(const nmf_block_source *src, nmf_tensor_set *s, const nmf_model_desc *d,
                                 nmf_layout l) {
    if (!src || !src->file) return NMF_OK;
    for (size_t i = 0; i < d->count; i++) {
        const nmf_param *p = &d->params[i];
        nmf_tensor *t = nmf_tensors_find(s, p->name);
        if (!t || !dense_header(t) || nmf_model_desc_offset(d, l, p) == SIZE_MAX) continue;
        nmf_tensor_set one;
        nmf_tensors_init(&one);
        nmf_status st = nmf_io_family_file_decode_named16(src->file, src->model, p->name, &one, 1);
        if (st == NMF_OK) { /* the header replaced by the values */
            nmf_tensors_remove(s, p->name);
            st = nmf_tensors_move_in(s, &one.items[0], NULL);
        }
        nmf_tensors_free(&one);
        if (st) return st;
    }
    return NMF_OK;
}

nmf_status nmf_block_source_open(nmf_block_source *src, const char *path, const char *name,
                                 const nmf_model_config *fallback, const nmf_config_overrides *overrides,
                                 int keep16, int token, nmf_model_config *c, nmf_tensor_set *s) {
    src->file = NULL;
    src->model = 0;
    nmf_tensors_init(s);
    nmf_file_kind kind;
    nmf_status st = nmf_file_kind_detect(path, &kind);
    if (st) return st;
    if (kind != NMF_FILE_NMF) { /* a folder or safetensors file: the one model it holds */
        st = keep16 ? nmf_load_model_keep16(path, name, fallback, overrides, c, s)
                    : nmf_load_model_with(path, name, fallback, overrides, c, s);
        return st ? st : kind_is(path, c, token);
    }
    if ((st = nmf_family_open(path, &src->file))) return st;
    st = nmf_io_family_file_pick(src->file, path, name, &src->model);
    if (st == NMF_OK) {
        *c = *nmf_family_file_config(src->file);
        st = kind_is(path, c, token);
    }
    if (st == NMF_OK)
        st = nmf_io_family_file_load(src->file, src->model, s,
                                     NMF_IO_NM_HEADERS | (keep16 ? NMF_IO_KEEP16 | NMF_IO_RAW16_HEADERS : 0));
    if (st == NMF_OK) st = nmf_io_model_config_finish(path, 1, overrides, c, s);
    return st;
}

void nmf_block_source_close(nmf_block_source *src) {
    nmf_family_close(src->file);
    src->file = NULL;
}

nmf_status nmf_block_linear_build(nmf_linear **lin, const nmf_param *p, const nmf_param_kind *k,
                                  nmf_tensor *t, int take, int kept16, const nmf_block_source *src,
                                  nmf_block_maps *maps) {
    if (src && src->file && dense_header(t) && t->stored_dtype != NMF_DTYPE_F32)
        return nmf_block_dense16_build(lin, p, t, k->in_axis == 0, take, src, maps);
    if (!(src && src->file && t->nm && !t->nm->values))
        return nmf_block_linear_from_tensor(lin, p, k, t, take, kept16);
    nmf_tensor_set one; /* a header: read for this layer only */
    nmf_tensors_init(&one);
    nmf_status st = nmf_io_family_file_decode_named(src->file, src->model, p->name, &one);
    if (st == NMF_OK) st = nmf_block_linear_from_tensor(lin, p, k, &one.items[0], 1, kept16);
    nmf_tensors_free(&one);
    return st;
}
