/* Named tensor sets and dtype conversions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/tensor_internal.h"
#include "nmformer/tensor.h"

static const char *const dtype_names[] = {"F32", "F16", "BF16"};
static const size_t dtype_sizes[] = {4, 2, 2};
_Static_assert(sizeof(dtype_names) / sizeof(dtype_names[0]) == NMF_DTYPE_COUNT, "dtype_names");
_Static_assert(sizeof(dtype_sizes) / sizeof(dtype_sizes[0]) == NMF_DTYPE_COUNT, "dtype_sizes");

const char *nmf_dtype_name(nmf_dtype t) {
    return (unsigned)t < NMF_DTYPE_COUNT ? dtype_names[t] : "?";
}
size_t nmf_dtype_size(nmf_dtype t) { return (unsigned)t < NMF_DTYPE_COUNT ? dtype_sizes[t] : 0; }

nmf_status nmf_dtype_parse(const char *s, nmf_dtype *out) {
    for (int i = 0; i < NMF_DTYPE_COUNT; i++)
        if (s && strcasecmp(s, dtype_names[i]) == 0) {
            *out = (nmf_dtype)i;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_UNSUPPORTED, "dtype '%s' not supported (F32, F16, BF16)",
                     s ? s : "(null)");
}

static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t nmf_f32_to_bf16(float x) {
    uint32_t u = f32_bits(x);
    if (isnan(x)) return (uint16_t)((u >> 16) | 0x40); /* keep it a (quiet) NaN */
    u += 0x7fff + ((u >> 16) & 1);                      /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float nmf_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t nmf_f32_to_f16(float x) {
    uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000;
    uint32_t exp = (u >> 23) & 0xff, mant = u & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0)); /* inf / NaN */
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (e <= 0) {                                  /* subnormal half or zero */
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* carry may reach inf: correct */
    return (uint16_t)half;
}

float nmf_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        float v = ldexpf((float)mant, -24); /* subnormal: mant * 2^-24 */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

void nmf_tensors_init(nmf_tensor_set *s) { memset(s, 0, sizeof *s); }

void nmf_tensors_free(nmf_tensor_set *s) {
    for (size_t i = 0; i < s->count; i++) {
        free(s->items[i].name);
        nmf_free(s->items[i].data);
        nmf_free(s->items[i].data16);
        if (s->items[i].nm) {
            nmf_nm_free(s->items[i].nm);
            free(s->items[i].nm);
        }
    }
    for (size_t i = 0; i < s->meta_count; i++) {
        free(s->meta[i].key);
        free(s->meta[i].value);
    }
    free(s->items);
    free(s->meta);
    free(s->index_);
    memset(s, 0, sizeof *s);
}

/* Name index: a linear scan per lookup made reading a file of n tensors O(n^2) (a hostile
 * 100 MB safetensors header holds ~2M entries: hours). FNV-1a + linear probing, load <= 1/2. */
static size_t name_hash(const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return (size_t)h;
}

static void index_put(size_t *index, size_t cap, const char *name, size_t item) {
    size_t i = name_hash(name) & (cap - 1);
    while (index[i]) i = (i + 1) & (cap - 1);
    index[i] = item + 1;
}

/* Makes room for one more name; on allocation failure the old index stays valid. */
static int index_reserve(nmf_tensor_set *s) {
    if (2 * (s->count + 1) <= s->index_cap_) return 1;
    size_t cap = s->index_cap_ ? 2 * s->index_cap_ : 64;
    while (2 * (s->count + 1) > cap) cap *= 2;
    size_t *index = calloc(cap, sizeof *index);
    if (!index) return 0;
    for (size_t k = 0; k < s->count; k++) index_put(index, cap, s->items[k].name, k);
    free(s->index_);
    s->index_ = index;
    s->index_cap_ = cap;
    return 1;
}

nmf_tensor *nmf_tensors_find(const nmf_tensor_set *s, const char *name) {
    if (!s->index_) return NULL; /* no tensor added yet */
    for (size_t i = name_hash(name) & (s->index_cap_ - 1); s->index_[i];
         i = (i + 1) & (s->index_cap_ - 1))
        if (strcmp(s->items[s->index_[i] - 1].name, name) == 0) return &s->items[s->index_[i] - 1];
    return NULL;
}

int nmf_tensors_remove(nmf_tensor_set *s, const char *name) {
    nmf_tensor *t = nmf_tensors_find(s, name);
    if (!t) return 0;
    size_t k = (size_t)(t - s->items);
    free(t->name);
    nmf_free(t->data);
    nmf_free(t->data16);
    if (t->nm) {
        nmf_nm_free(t->nm);
        free(t->nm);
    }
    memmove(t, t + 1, (s->count - k - 1) * sizeof *t);
    s->count--;
    /* indices after k moved down: rebuild the index in place (same capacity) */
    memset(s->index_, 0, s->index_cap_ * sizeof *s->index_);
    for (size_t i = 0; i < s->count; i++) index_put(s->index_, s->index_cap_, s->items[i].name, i);
    return 1;
}

static nmf_status push_tensor(nmf_tensor_set *s, const char *name, nmf_tensor **out) {
    if (nmf_tensors_find(s, name))
        return nmf_error(NMF_ERR_INVALID_ARG, "duplicate tensor name '%s'", name);
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        nmf_tensor *items = realloc(s->items, cap * sizeof *items);
        if (!items) return nmf_error(NMF_ERR_NOMEM, "tensor table");
        s->items = items;
        s->cap = cap;
    }
    if (!index_reserve(s)) return nmf_error(NMF_ERR_NOMEM, "tensor index");
    nmf_tensor *t = &s->items[s->count];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return nmf_error(NMF_ERR_NOMEM, "tensor name");
    index_put(s->index_, s->index_cap_, t->name, s->count);
    s->count++;
    *out = t;
    return NMF_OK;
}

static nmf_status shape_numel(const char *name, int ndim, const int64_t *shape, size_t *out) {
    if (ndim < 0 || ndim > NMF_MAX_DIMS)
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: %d dimensions (at most %d)", name, ndim,
                         NMF_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || nmf_mul_overflow(numel, (size_t)shape[i], &numel) ||
            numel > ((size_t)1 << 40))
            return nmf_error(NMF_ERR_FORMAT, "%s: shape too large or negative", name);
    *out = numel;
    return NMF_OK;
}

nmf_status nmf_tensors_add_dense(nmf_tensor_set *s, const char *name, int ndim,
                                 const int64_t *shape, const float *data, nmf_tensor **out) {
    size_t numel;
    nmf_status st0 = shape_numel(name, ndim, shape, &numel);
    if (st0 != NMF_OK) return st0;
    float *copy = nmf_alloc(numel, sizeof(float));
    if (!copy) return nmf_error(NMF_ERR_NOMEM, "%s: %zu values", name, numel);
    if (data) memcpy(copy, data, numel * sizeof(float));
    nmf_tensor *t = NULL;
    nmf_status st = push_tensor(s, name, &t);
    if (st != NMF_OK) {
        nmf_free(copy);
        return st;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->data = copy;
    if (out) *out = t;
    return NMF_OK;
}

nmf_status nmf_tensors_add_dense16(nmf_tensor_set *s, const char *name, int ndim,
                                   const int64_t *shape, nmf_dtype dtype, nmf_tensor **out) {
    if (dtype != NMF_DTYPE_BF16 && dtype != NMF_DTYPE_F16)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: 16-bit values must be BF16 or F16", name);
    size_t numel;
    nmf_status st = shape_numel(name, ndim, shape, &numel);
    if (st != NMF_OK) return st;
    uint16_t *v = nmf_alloc(numel, sizeof(uint16_t));
    if (!v) return nmf_error(NMF_ERR_NOMEM, "%s: %zu values", name, numel);
    nmf_tensor *t = NULL;
    if ((st = push_tensor(s, name, &t)) != NMF_OK) {
        nmf_free(v);
        return st;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->data16 = v;
    t->stored_dtype = dtype;
    if (out) *out = t;
    return NMF_OK;
}

nmf_status nmf_tensors_move_in(nmf_tensor_set *s, nmf_tensor *t, nmf_tensor **out) {
    nmf_tensor *n = NULL;
    nmf_status st = push_tensor(s, t->name, &n);
    if (st != NMF_OK) return st;
    char *name = n->name;
    *n = *t;
    n->name = name;
    t->data = NULL;
    t->data16 = NULL;
    t->nm = NULL;
    if (out) *out = n;
    return NMF_OK;
}

nmf_status nmf_tensors_add_nm(nmf_tensor_set *s, const char *name, nmf_nm_matrix *nm,
                              nmf_tensor **out) {
    return nmf_tensors_add_nm_transposed(s, name, nm, 0, out);
}

nmf_status nmf_tensors_add_nm_transposed(nmf_tensor_set *s, const char *name, nmf_nm_matrix *nm,
                                         int transposed, nmf_tensor **out) {
    nmf_nm_matrix *owned = malloc(sizeof *owned);
    if (!owned) return nmf_error(NMF_ERR_NOMEM, "%s", name);
    nmf_tensor *t = NULL;
    nmf_status st = push_tensor(s, name, &t);
    if (st != NMF_OK) {
        free(owned);
        return st;
    }
    *owned = *nm;
    memset(nm, 0, sizeof *nm);
    t->ndim = 2;
    t->shape[transposed ? 1 : 0] = (int64_t)owned->rows; /* [out, in], or [in, out] */
    t->shape[transposed ? 0 : 1] = (int64_t)owned->cols;
    t->numel = owned->rows * owned->cols;
    t->nm = owned;
    t->nm_transposed = transposed != 0;
    if (out) *out = t;
    return NMF_OK;
}

nmf_status nmf_tensor_dense(const nmf_tensor *t, float *out) {
    if (t->data) {
        memcpy(out, t->data, t->numel * sizeof(float));
        return NMF_OK;
    }
    if (t->data16) {
        const int f16 = t->stored_dtype == NMF_DTYPE_F16;
        for (size_t i = 0; i < t->numel; i++)
            out[i] = f16 ? nmf_f16_to_f32(t->data16[i]) : nmf_bf16_to_f32(t->data16[i]);
        return NMF_OK;
    }
    if (t->nm) return t->nm_transposed ? nmf_nm_unpack_transposed(out, t->nm) : nmf_nm_unpack(out, t->nm);
    return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor has no data", t->name);
}

nmf_dtype nmf_tensors_stored_dtype(const nmf_tensor_set *s) {
    for (size_t i = 1; i < s->count; i++)
        if (s->items[i].stored_dtype != s->items[0].stored_dtype) return NMF_DTYPE_F32;
    return s->count ? s->items[0].stored_dtype : NMF_DTYPE_F32;
}

nmf_status nmf_tensors_set_meta(nmf_tensor_set *s, const char *key, const char *value) {
    for (size_t i = 0; i < s->meta_count; i++)
        if (strcmp(s->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v) return nmf_error(NMF_ERR_NOMEM, "metadata");
            free(s->meta[i].value);
            s->meta[i].value = v;
            return NMF_OK;
        }
    if (s->meta_count == s->meta_cap) {
        size_t cap = s->meta_cap ? 2 * s->meta_cap : 8;
        nmf_meta *meta = realloc(s->meta, cap * sizeof *meta);
        if (!meta) return nmf_error(NMF_ERR_NOMEM, "metadata");
        s->meta = meta;
        s->meta_cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return nmf_error(NMF_ERR_NOMEM, "metadata");
    }
    s->meta[s->meta_count].key = k;
    s->meta[s->meta_count].value = v;
    s->meta_count++;
    return NMF_OK;
}

const char *nmf_tensors_get_meta(const nmf_tensor_set *s, const char *key) {
    for (size_t i = 0; i < s->meta_count; i++)
        if (strcmp(s->meta[i].key, key) == 0) return s->meta[i].value;
    return NULL;
}

nmf_status nmf_tensors_copy_meta(const nmf_tensor_set *s, nmf_tensor_set *out) {
    for (size_t i = 0; i < s->meta_count; i++) {
        nmf_status st = nmf_tensors_set_meta(out, s->meta[i].key, s->meta[i].value);
        if (st) return st;
    }
    return NMF_OK;
}

nmf_status nmf_tensors_copy_dense(const nmf_tensor_set *s, nmf_tensor_set *out) {
    nmf_tensors_init(out);
    nmf_status st = nmf_tensors_copy_meta(s, out);
    for (size_t i = 0; !st && i < s->count; i++) {
        const nmf_tensor *t = &s->items[i];
        nmf_tensor *d;
        st = nmf_tensors_add_dense(out, t->name, t->ndim, t->shape, NULL, &d);
        if (!st) st = nmf_tensor_dense(t, d->data);
        if (!st) d->stored_dtype = t->stored_dtype;
    }
    if (st) nmf_tensors_free(out);
    return st;
}

nmf_status nmf_tensors_add_header(nmf_tensor_set *s, const char *name, int ndim, const int64_t *shape,
                                  nmf_pattern pattern, int transposed, nmf_dtype stored,
                                  nmf_tensor **out) {
    if (ndim < 0 || ndim > NMF_MAX_DIMS)
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: %d dimensions (at most %d)", name, ndim, NMF_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || nmf_mul_overflow(numel, (size_t)shape[i], &numel) || numel > ((size_t)1 << 40))
            return nmf_error(NMF_ERR_FORMAT, "%s: shape too large or negative", name);
    if (pattern.n && ndim != 2) return nmf_error(NMF_ERR_SHAPE, "%s: an N:M tensor is 2-D", name);
    nmf_nm_matrix *nm = NULL;
    if (pattern.n) { /* the (out, in) view's header: no values, no positions */
        if (!(nm = calloc(1, sizeof *nm))) return nmf_error(NMF_ERR_NOMEM, "%s", name);
        nm->rows = (size_t)shape[transposed ? 1 : 0];
        nm->cols = (size_t)shape[transposed ? 0 : 1];
        nm->pattern = pattern;
        nm->groups = (nm->cols + (size_t)pattern.m - 1) / (size_t)pattern.m;
    }
    nmf_tensor *t = NULL;
    nmf_status st = push_tensor(s, name, &t);
    if (st) {
        free(nm);
        return st;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->nm = nm;
    t->nm_transposed = nm && transposed;
    t->stored_dtype = stored;
    if (out) *out = t;
    return NMF_OK;
}
