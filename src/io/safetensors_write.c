/* Writing safetensors, whole or one tensor at a time (io_internal.h: nmf_io_st_writer).
 *
 * The header is fully determined by the tensors' names and shapes and the one output dtype, so
 * it is written first, from the tensors' headers alone; then each tensor's payload in header
 * order as the caller hands it over. Writing a whole tensor set (nmf_safetensors_write) is the
 * same writer fed from the set, so the two give the same bytes by construction. The file is
 * written atomically (src/io/atomic.c): a temporary file next to it, fsync'ed and renamed on
 * commit; on any failure or abort the temporary file is removed and the destination is left as
 * it was.
 *
 * Values are encoded in chunks (f32 written as it is), so a dense f32 tensor costs no copy beyond
 * a buffer of at most 1 Mi values; an N:M or 16-bit tensor is unpacked to f32 first (its numel
 * floats) and then encoded. */
#include "nmformer/io.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor_internal.h"
#include "io/io_internal.h"

/* Values encoded per write: 1 Mi (4 MiB of f32) bounds the buffer, not the tensor. */
#define ST_CHUNK ((size_t)1 << 20)

struct nmf_io_st_writer {
    char *path; /* for messages */
    const nmf_tensor_set *headers;
    size_t next, end; /* the tensor expected next; one past the last of this file */
    nmf_dtype dtype;
    nmf_atomic_file *file;
    uint8_t *enc; /* chunk encoded values (16-bit outputs) */
    size_t chunk;
};

/* The file's first bytes (u64 length, the JSON header padded to 8 bytes; malloc'd): the one place
 * a safetensors header is made. */
static nmf_status st_header(const char *path, const nmf_tensor_set *headers, size_t first, size_t count,
                            nmf_dtype dtype, const nmf_meta *meta, size_t meta_count, char **text,
                            size_t *len) {
    *text = NULL;
    *len = 0;
    if ((unsigned)dtype >= NMF_DTYPE_COUNT) return nmf_error(NMF_ERR_INVALID_ARG, "%s: bad dtype", path);
    if (first > headers->count || count > headers->count - first)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensors %zu..%zu of %zu", path, first, first + count,
                         headers->count);
    const size_t esize = nmf_dtype_size(dtype);
    cJSON *root = cJSON_CreateObject();
    if (!root) goto nomem;
    if (meta_count) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) goto nomem;
        for (size_t i = 0; i < meta_count; i++)
            if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value)) goto nomem;
    }
    size_t offset = 0;
    for (size_t i = first; i < first + count; i++) {
        const nmf_tensor *t = &headers->items[i];
        if (!strcmp(t->name, "__metadata__")) { /* the header key is reserved: the file would be corrupt */
            cJSON_Delete(root);
            return nmf_error(NMF_ERR_INVALID_ARG,
                             "%s: a tensor cannot be named __metadata__ in safetensors", path);
        }
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", nmf_dtype_name(dtype))) goto nomem;
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        if (!shape) goto nomem;
        for (int d = 0; d < t->ndim; d++)
            if (!cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]))) goto nomem;
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        if (!offs) goto nomem;
        const size_t bytes = t->numel * esize;
        if (!cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset)) ||
            !cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + bytes))))
            goto nomem;
        offset += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    root = NULL;
    if (!json) goto nomem;
    /* 8 length bytes, the JSON padded with spaces so the data starts 8-byte aligned (as the
     * reference writer pads) */
    const size_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8;
    char *out = malloc(8 + padded);
    if (!out) {
        free(json);
        goto nomem;
    }
    for (int i = 0; i < 8; i++) out[i] = (char)(uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(out + 8, json, hlen);
    memset(out + 8 + hlen, ' ', padded - hlen);
    free(json);
    *text = out;
    *len = 8 + padded;
    return NMF_OK;
nomem:
    cJSON_Delete(root);
    return nmf_error(NMF_ERR_NOMEM, "%s: out of memory building the header", path);
}

void nmf_io_st_writer_abort(nmf_io_st_writer *w) {
    if (!w) return;
    nmf_atomic_abort(w->file);
    nmf_free(w->enc);
    free(w->path);
    free(w);
}

nmf_status nmf_io_st_writer_open(const char *path, const nmf_tensor_set *headers, size_t first,
                                 size_t count, nmf_dtype dtype, const nmf_meta *meta,
                                 size_t meta_count, nmf_io_st_writer **out) {
    *out = NULL;
    char *header;
    size_t len;
    nmf_status st = st_header(path, headers, first, count, dtype, meta, meta_count, &header, &len);
    if (st) return st;
    /* the encode buffer: a chunk, or the file's largest tensor when smaller; none for f32 */
    size_t chunk = 0;
    for (size_t i = first; dtype != NMF_DTYPE_F32 && i < first + count; i++)
        if (headers->items[i].numel > chunk) chunk = headers->items[i].numel;
    if (chunk > ST_CHUNK) chunk = ST_CHUNK;
    nmf_io_st_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 1;
    if (w) w->path = malloc(n);
    if (w && w->path && chunk) w->enc = nmf_alloc(chunk, nmf_dtype_size(dtype));
    if (!w || !w->path || (chunk && !w->enc)) {
        free(header);
        nmf_io_st_writer_abort(w);
        return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(w->path, path, n);
    w->headers = headers;
    w->next = first;
    w->end = first + count;
    w->dtype = dtype;
    w->chunk = chunk;
    st = nmf_atomic_open(path, &w->file);
    if (!st) st = nmf_atomic_write(w->file, header, len);
    free(header);
    if (st) {
        nmf_io_st_writer_abort(w);
        return st;
    }
    *out = w;
    return NMF_OK;
}

/* values[0 .. count) encoded and written chunk by chunk; f32 as it is (nmf_io_encode_values'
 * F32 is a copy: little-endian floats on a little-endian host). */
static nmf_status write_values(nmf_io_st_writer *w, const float *values, size_t count) {
    if (w->dtype == NMF_DTYPE_F32) return count ? nmf_atomic_write(w->file, values, count * sizeof(float)) : NMF_OK;
    const size_t esize = nmf_dtype_size(w->dtype);
    nmf_status st = NMF_OK;
    for (size_t at = 0; !st && at < count; at += w->chunk) {
        const size_t k = count - at < w->chunk ? count - at : w->chunk;
        nmf_io_encode_values(w->enc, values + at, k, w->dtype);
        st = nmf_atomic_write(w->file, w->enc, k * esize);
    }
    return st;
}

nmf_status nmf_io_st_writer_add(nmf_io_st_writer *w, const nmf_tensor *t) {
    if (w->next >= w->end)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor '%s' after the last one", w->path, t->name);
    const nmf_tensor *h = &w->headers->items[w->next];
    int same = !strcmp(h->name, t->name) && h->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = h->shape[d] == t->shape[d];
    if (!same)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor '%s' given where the header has '%s' (or "
                         "another shape)", w->path, t->name, h->name);
    nmf_status st;
    if (t->data) { /* dense f32: encoded from where it is */
        st = write_values(w, t->data, t->numel);
    } else {
        float *dense = nmf_alloc(t->numel ? t->numel : 1, sizeof(float));
        if (!dense) return nmf_error(NMF_ERR_NOMEM, "%s: tensor '%s': %zu values", w->path, t->name, t->numel);
        st = nmf_tensor_dense(t, dense);
        if (!st) st = write_values(w, dense, t->numel);
        nmf_free(dense);
    }
    if (!st) w->next++;
    return st;
}

nmf_status nmf_io_st_writer_commit(nmf_io_st_writer *w) {
    if (w->next != w->end) {
        nmf_status st = nmf_error(NMF_ERR_INVALID_ARG, "%s: %zu of the header's tensors not written",
                                  w->path, w->end - w->next);
        nmf_io_st_writer_abort(w);
        return st;
    }
    nmf_status st = nmf_atomic_commit(w->file);
    w->file = NULL;
    nmf_io_st_writer_abort(w); /* frees the rest */
    return st;
}

nmf_status nmf_io_safetensors_write_meta(const char *path, const nmf_tensor_set *s, nmf_dtype dtype,
                                         const nmf_meta *metadata, size_t meta_count) {
    nmf_io_st_writer *w;
    nmf_status st = nmf_io_st_writer_open(path, s, 0, s->count, dtype, metadata, meta_count, &w);
    for (size_t i = 0; !st && i < s->count; i++)
        if ((st = nmf_io_st_writer_add(w, &s->items[i]))) nmf_io_st_writer_abort(w);
    return st ? st : nmf_io_st_writer_commit(w);
}

nmf_status nmf_safetensors_write(const char *path, const nmf_tensor_set *s, nmf_dtype dtype) {
    return nmf_io_safetensors_write_meta(path, s, dtype, s->meta, s->meta_count);
}
