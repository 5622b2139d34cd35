/* safetensors: u64 LE header length, a JSON header, then one data buffer.
 *
 * Header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *          "__metadata__": {"key": "value", ...}}
 * Offsets are relative to the start of the data buffer. As the format requires, the tensors must
 * tile the buffer exactly: no overlap, no hole, nothing after the last one. Values are converted
 * to f32 on read; writes (src/io/safetensors_write.c) use one dtype for every tensor. The file is
 * not read whole: the header and then each tensor's bytes are mapped while they are parsed or
 * decoded (src/io/mapped.c), so reading costs the decoded tensors plus one tensor's bytes. */
#include "nmformer/io.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "core/tensor_internal.h"
#include "io/io_internal.h"

#define ST_MAX_FILE ((size_t)1 << 36)      /* 64 GiB */
#define ST_MAX_HEADER ((uint64_t)100 << 20) /* the reference implementation's limit */

typedef struct {
    size_t begin, end, index; /* index into the tensor set */
} st_region;

static int region_cmp(const void *a, const void *b) {
    const st_region *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* safetensors dtype names we know of but do not read, so the error can say what was found. */
static const char *const st_other_dtypes[] = {"F64", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16",
                                              "I8",  "U64",     "U32",     "U16", "U8",  "BOOL"};

static nmf_status parse_dtype(const char *path, const char *name, const cJSON *v, nmf_dtype *out) {
    if (!cJSON_IsString(v))
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", path, name);
    const char *s = v->valuestring;
    for (int i = 0; i < NMF_DTYPE_COUNT; i++)
        if (!strcmp(s, nmf_dtype_name((nmf_dtype)i))) {
            *out = (nmf_dtype)i;
            return NMF_OK;
        }
    for (size_t i = 0; i < sizeof st_other_dtypes / sizeof st_other_dtypes[0]; i++)
        if (!strcmp(s, st_other_dtypes[i]))
            return nmf_error(NMF_ERR_UNSUPPORTED,
                             "%s: tensor '%s' has dtype %s (only F32, F16, BF16 are read)", path,
                             name, s);
    return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.32s'", path, name, s);
}

/* The header: every entry parsed and checked, the data tiling checked; no tensor read. */
nmf_status nmf_io_st_open(const char *path, nmf_io_st_file *f) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->src.fd = -1;
    cJSON *root = NULL;
    st_region *regions = NULL;
    nmf_io_window win = {0};
    nmf_status st = nmf_io_source_open(path, ST_MAX_FILE, &f->src);
    if (st) goto fail;
    const size_t size = (size_t)f->src.size; /* <= ST_MAX_FILE */
    if (size < 8) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes)", path, size);
        goto fail;
    }
    if ((st = nmf_io_window_map(&f->src, 0, 8, &win))) goto fail;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | win.p[i];
    nmf_io_window_unmap(&win);
    if (hlen > ST_MAX_HEADER || hlen > size - 8) {
        st = nmf_error(NMF_ERR_FORMAT,
                       "%s: safetensors header length %llu exceeds the file (%zu bytes)", path,
                       (unsigned long long)hlen, size);
        goto fail;
    }
    if ((st = nmf_io_window_map(&f->src, 8, hlen, &win))) goto fail;
    if (hlen < 2 || win.p[0] != '{') {
        st = nmf_error(NMF_ERR_FORMAT, "%s: safetensors header is not a JSON object", path);
        goto fail;
    }
    f->data_at = 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    f->data_size = data_size;
    root = nmf_io_parse_json((const char *)win.p, (size_t)hlen);
    nmf_io_window_unmap(&win);
    if (!root || !cJSON_IsObject(root)) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: safetensors header is not valid JSON", path);
        goto fail;
    }
    int n = cJSON_GetArraySize(root);
    regions = calloc((size_t)n + 1, sizeof *regions);
    f->items = calloc((size_t)n + 1, sizeof *f->items);
    if (!regions || !f->items) {
        st = nmf_error(NMF_ERR_NOMEM, "%s: header table", path);
        goto fail;
    }
    size_t nreg = 0;
    int have_meta = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *name = item->string;
        if (!name) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: safetensors header entry without a name", path);
            goto fail;
        }
        if (!strcmp(name, "__metadata__")) {
            if (have_meta++ || !cJSON_IsObject(item)) {
                st = nmf_error(NMF_ERR_FORMAT, "%s: __metadata__ must be one object", path);
                goto fail;
            }
            if (cJSON_GetArraySize(item) > NMF_IO_MAX_META) {
                st = nmf_error(NMF_ERR_UNSUPPORTED, "%s: __metadata__ has more than %d keys", path,
                               NMF_IO_MAX_META);
                goto fail;
            }
            const cJSON *kv;
            cJSON_ArrayForEach(kv, item) {
                if (!cJSON_IsString(kv)) {
                    st = nmf_error(NMF_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                                   path, kv->string ? kv->string : "?");
                    goto fail;
                }
                if (nmf_tensors_get_meta(&f->meta, kv->string)) {
                    st = nmf_error(NMF_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", path,
                                   kv->string);
                    goto fail;
                }
                st = nmf_tensors_set_meta(&f->meta, kv->string, kv->valuestring);
                if (st) goto fail;
            }
            continue;
        }
        if (!cJSON_IsObject(item)) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
            goto fail;
        }
        nmf_io_st_tensor *t = &f->items[f->count];
        t->name = name;
        st = parse_dtype(path, name, cJSON_GetObjectItemCaseSensitive(item, "dtype"), &t->dtype);
        if (st) goto fail;
        st = nmf_io_parse_shape(path, name, cJSON_GetObjectItemCaseSensitive(item, "shape"), &t->ndim,
                                t->shape, &t->numel);
        if (st) goto fail;
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        uint64_t begin, end;
        if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
            !nmf_io_json_uint(cJSON_GetArrayItem(offs, 0), &begin) ||
            !nmf_io_json_uint(cJSON_GetArrayItem(offs, 1), &end)) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end]",
                           path, name);
            goto fail;
        }
        if (begin > end || end > data_size) {
            st = nmf_error(NMF_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] outside the data (%zu bytes)",
                           path, name, (unsigned long long)begin, (unsigned long long)end,
                           data_size);
            goto fail;
        }
        size_t want = t->numel * nmf_dtype_size(t->dtype); /* numel <= 2^40: no overflow */
        if (end - begin != want) {
            st = nmf_error(NMF_ERR_FORMAT,
                           "%s: tensor '%s': %llu bytes stored, shape and dtype need %zu", path,
                           name, (unsigned long long)(end - begin), want);
            goto fail;
        }
        t->begin = begin;
        t->bytes = want;
        regions[nreg++] = (st_region){(size_t)begin, (size_t)end, f->count};
        f->count++;
    }
    /* Names once (a hash set, as the tensor sets keep them). */
    for (size_t i = 0; i < f->count; i++) {
        nmf_tensor *dummy;
        int64_t one = 1;
        if (nmf_tensors_find(&f->names_, f->items[i].name)) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' appears twice", path, f->items[i].name);
            goto fail;
        }
        if ((st = nmf_tensors_add_header(&f->names_, f->items[i].name, 0, &one, (nmf_pattern){0, 0}, 0,
                                         NMF_DTYPE_F32, &dummy)))
            goto fail;
    }
    /* The tensors must tile the data buffer exactly. */
    qsort(regions, nreg, sizeof *regions, region_cmp);
    size_t at = 0;
    for (size_t i = 0; i < nreg; i++) {
        const char *name = f->items[regions[i].index].name;
        if (regions[i].begin < at) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' overlaps another tensor's data", path,
                           name);
            goto fail;
        }
        if (regions[i].begin > at) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: %zu bytes before tensor '%s' belong to no tensor",
                           path, regions[i].begin - at, name);
            goto fail;
        }
        at = regions[i].end;
    }
    if (at != data_size) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: %zu trailing bytes after the last tensor", path,
                       data_size - at);
        goto fail;
    }
    free(regions);
    f->root_ = root;
    return NMF_OK;
fail:
    nmf_io_window_unmap(&win);
    cJSON_Delete(root);
    free(regions);
    f->root_ = NULL;
    nmf_io_st_close(f);
    return st;
}

nmf_status nmf_io_st_decode(const nmf_io_st_file *f, size_t i, float *dst) {
    const nmf_io_st_tensor *t = &f->items[i];
    nmf_io_window win;
    nmf_status st = nmf_io_window_map(&f->src, f->data_at + t->begin, t->bytes, &win);
    if (st) return nmf_error_context(st, "tensor '%s'", t->name);
    nmf_io_decode_values(dst, win.p, t->numel, t->dtype);
    nmf_io_window_unmap(&win);
    return NMF_OK;
}

void nmf_io_st_close(nmf_io_st_file *f) {
    nmf_io_source_close(&f->src);
    cJSON_Delete(f->root_);
    free(f->items);
    nmf_tensors_free(&f->meta);
    nmf_tensors_free(&f->names_);
    memset(f, 0, sizeof *f);
    f->src.fd = -1;
}

nmf_status nmf_io_st_read16(const nmf_io_st_file *f, size_t i, uint16_t *dst) {
    const nmf_io_st_tensor *t = &f->items[i];
    if (t->dtype != NMF_DTYPE_BF16 && t->dtype != NMF_DTYPE_F16)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor '%s' is not 16-bit", f->path, t->name);
    /* little-endian 16-bit values on a little-endian host: read as they are, into their final
     * buffer (a mapping would hold the bytes twice while they are copied) */
    nmf_status st = nmf_io_read_at(&f->src, f->data_at + t->begin, t->bytes, dst);
    return st ? nmf_error_context(st, "tensor '%s'", t->name) : NMF_OK;
}

nmf_status nmf_safetensors_read_ex(const char *path, nmf_tensor_set *out, nmf_dtype **dtypes_out) {
    return nmf_io_safetensors_read(path, out, dtypes_out, 0);
}

nmf_status nmf_io_st_read_all(const nmf_io_st_file *f, nmf_tensor_set *out, nmf_dtype *dtypes,
                              int keep16) {
    nmf_progress_step step;
    nmf_progress_begin(&step, "read", f->path, f->data_size);
    for (size_t i = 0; i < f->count; i++) {
        const nmf_io_st_tensor *e = &f->items[i];
        nmf_tensor *t;
        const int raw = keep16 && e->dtype != NMF_DTYPE_F32; /* the stored values, kept */
        nmf_status st = raw ? nmf_tensors_add_dense16(out, e->name, e->ndim, e->shape, e->dtype, &t)
                            : nmf_tensors_add_dense(out, e->name, e->ndim, e->shape, NULL, &t);
        if (st) return nmf_error_context(st, "%s", f->path);
        st = raw ? nmf_io_st_read16(f, i, t->data16) : nmf_io_st_decode(f, i, t->data);
        if (st) return st;
        t->stored_dtype = dtypes[i] = e->dtype;
        nmf_progress_advance(&step, e->name, e->bytes);
    }
    return NMF_OK;
}

nmf_status nmf_io_safetensors_read(const char *path, nmf_tensor_set *out, nmf_dtype **dtypes_out,
                                   int keep16) {
    nmf_tensors_init(out);
    if (dtypes_out) *dtypes_out = NULL;
    nmf_io_st_file f;
    nmf_status st = nmf_io_st_open(path, &f);
    if (st) return st;
    nmf_dtype *dtypes = calloc(f.count + 1, sizeof *dtypes);
    if (!dtypes) st = nmf_error(NMF_ERR_NOMEM, "%s: header table", path);
    if (!st) st = nmf_tensors_copy_meta(&f.meta, out);
    if (!st) st = nmf_io_st_read_all(&f, out, dtypes, keep16);
    nmf_io_st_close(&f);
    if (st) {
        free(dtypes);
        nmf_tensors_free(out);
        return st;
    }
    if (dtypes_out)
        *dtypes_out = dtypes;
    else
        free(dtypes);
    return NMF_OK;
}

nmf_status nmf_safetensors_read(const char *path, nmf_tensor_set *out) {
    return nmf_safetensors_read_ex(path, out, NULL);
}
