/* Writing the .nmf family container (layout in docs/FORMAT.md).
 *
 * Every tensor of every candidate is serialised to a payload (dense values, or N:M kept values
 * followed by bit-packed rank codes). A payload whose descriptor (dtype, shape, pattern) and
 * bytes equal an earlier one is not stored again: the tensor entry points at the earlier
 * payload. Candidates from one pruning chain share embeddings, norms, biases and the head. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/progress.h"
#include "io/io_internal.h"
#include "io/nmf_format.h"

typedef struct {
    nmf_payload_desc desc;
    uint8_t *bytes;
    size_t size;
    uint32_t crc;
    uint64_t offset;
} payload;

typedef struct {
    payload *items;
    size_t count, cap;
} payload_list;

/* Serialises tensor t into a new malloc'd payload. */
static nmf_status serialise(const nmf_tensor *t, nmf_dtype dtype, payload *out) {
    memset(out, 0, sizeof *out);
    nmf_payload_desc *d = &out->desc;
    d->dtype = dtype;
    d->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) d->shape[i] = t->shape[i];
    d->numel = t->numel;
    if (t->numel == 0)
        return nmf_error(NMF_ERR_INVALID_ARG, "tensor '%s' has no elements (not storable)", t->name);
    if (strlen(t->name) > NMF_FILE_MAX_NAME)
        return nmf_error(NMF_ERR_INVALID_ARG, "tensor name '%.40s...' is too long", t->name);
    const nmf_nm_matrix *nm = t->nm;
    if (nm) {
        d->pattern = nm->pattern;
        d->transposed = t->nm_transposed != 0; /* [in, out]: the payload is the (out, in) view */
        if (t->ndim != 2 || (size_t)t->shape[d->transposed ? 1 : 0] != nm->rows ||
            (size_t)t->shape[d->transposed ? 0 : 1] != nm->cols)
            return nmf_error(NMF_ERR_INVALID_ARG, "tensor '%s': N:M form does not match its shape",
                             t->name);
        /* what a reader would refuse is not written (and bad positions would not rank) */
        if (nmf_nm_validate(nm) != NMF_OK)
            return nmf_error_context(NMF_ERR_INVALID_ARG, "tensor '%s'", t->name);
    }
    size_t vbytes, cbytes;
    nmf_status st = nmf_payload_size(d, &vbytes, &cbytes);
    if (st) return st;
    out->size = vbytes + cbytes;
    out->bytes = malloc(out->size ? out->size : 1);
    if (!out->bytes) return nmf_error(NMF_ERR_NOMEM, "tensor '%s': %zu bytes", t->name, out->size);
    if (nm) {
        nmf_io_encode_values(out->bytes, nm->values, vbytes / nmf_dtype_size(dtype), dtype);
        st = nmf_nm_encode_positions(out->bytes + vbytes, nm);
    } else if (t->data) {
        nmf_io_encode_values(out->bytes, t->data, t->numel, dtype);
    } else {
        st = nmf_error(NMF_ERR_INVALID_ARG, "tensor '%s' has no data", t->name);
    }
    if (st) {
        free(out->bytes);
        out->bytes = NULL;
        return st;
    }
    out->crc = nmf_crc32_update(0, out->bytes, out->size);
    return NMF_OK;
}

/* Index of an existing identical payload, or adds p (taking its bytes). */
static nmf_status intern(payload_list *l, payload *p, size_t *index) {
    for (size_t i = 0; i < l->count; i++) {
        payload *q = &l->items[i];
        if (q->crc == p->crc && q->size == p->size && nmf_payload_desc_equal(&q->desc, &p->desc) &&
            !memcmp(q->bytes, p->bytes, p->size)) {
            free(p->bytes);
            p->bytes = NULL;
            *index = i;
            return NMF_OK;
        }
    }
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        payload *items = realloc(l->items, cap * sizeof *items);
        if (!items) return nmf_error(NMF_ERR_NOMEM, "payload table");
        l->items = items;
        l->cap = cap;
    }
    *index = l->count;
    l->items[l->count++] = *p;
    p->bytes = NULL;
    return NMF_OK;
}

static cJSON *shape_json(const nmf_payload_desc *d) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < d->ndim; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)d->shape[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

nmf_status nmf_family_write(const char *path, const nmf_family *f, const nmf_write_options *opt) {
    nmf_dtype dtype = opt ? opt->value_dtype : NMF_DTYPE_F32;
    if ((unsigned)dtype >= NMF_DTYPE_COUNT) return nmf_error(NMF_ERR_INVALID_ARG, "bad dtype");
    if (f->count == 0) return nmf_error(NMF_ERR_INVALID_ARG, "%s: the family has no models", path);
    nmf_status st = nmf_model_config_validate(&f->config);
    if (st) return st;
    payload_list pl = {0};
    cJSON *root = cJSON_CreateObject(), *models = NULL;
    char *json = NULL, *cfg = NULL;
    nmf_atomic_file *af = NULL;
    if (!root) return nmf_error(NMF_ERR_NOMEM, "%s: metadata", path);
    cfg = nmf_model_config_to_json(&f->config);
    cJSON *cfg_obj = cfg ? cJSON_Parse(cfg) : NULL;
    if (!cfg_obj) goto nomem;
    if (!cJSON_AddStringToObject(root, "format", NMF_FILE_FORMAT_NAME)) {
        cJSON_Delete(cfg_obj);
        goto nomem;
    }
    cJSON_AddItemToObject(root, "config", cfg_obj);
    models = cJSON_AddArrayToObject(root, "models");
    if (!models) goto nomem;

    /* Pass 1: payloads and the tensor table (offsets filled in pass 2). */
    typedef struct { cJSON *entry; size_t payload; } pending;
    uint32_t version = NMF_FILE_VERSION; /* 2 once a tensor needs "in_axis" */
    size_t total = 0;
    for (size_t m = 0; m < f->count; m++) total += f->models[m].tensors.count;
    pending *pend = calloc(total + 1, sizeof *pend);
    if (!pend) goto nomem;
    size_t np = 0;
    for (size_t m = 0; m < f->count; m++) {
        const nmf_candidate *c = &f->models[m];
        if (nmf_family_find(f, c->name) != c) {
            st = nmf_error(NMF_ERR_INVALID_ARG, "%s: two models named '%s'", path, c->name);
            goto fail_pend;
        }
        cJSON *mo = cJSON_CreateObject();
        if (!mo || !cJSON_AddItemToArray(models, mo) || !cJSON_AddStringToObject(mo, "name", c->name))
            goto nomem_pend;
        cJSON *meta = cJSON_AddObjectToObject(mo, "metadata");
        if (!meta) goto nomem_pend;
        for (size_t i = 0; i < c->tensors.meta_count; i++) {
            const nmf_meta *kv = &c->tensors.meta[i];
            if (!strcmp(kv->key, NMF_CONFIG_META_KEY)) continue; /* the family config rules */
            if (!cJSON_AddStringToObject(meta, kv->key, kv->value)) goto nomem_pend;
        }
        cJSON *tensors = cJSON_AddArrayToObject(mo, "tensors");
        if (!tensors) goto nomem_pend;
        for (size_t i = 0; i < c->tensors.count; i++) {
            const nmf_tensor *t = &c->tensors.items[i];
            payload p;
            st = serialise(t, dtype, &p);
            if (st) {
                st = nmf_error_context(st, "%s: model '%s'", path, c->name);
                goto fail_pend;
            }
            size_t idx = 0;
            st = intern(&pl, &p, &idx);
            if (st) {
                free(p.bytes);
                goto fail_pend;
            }
            const payload *q = &pl.items[idx];
            char pat[16] = "dense";
            if (q->desc.pattern.n) nmf_pattern_format(q->desc.pattern, pat, sizeof pat);
            cJSON *e = cJSON_CreateObject();
            cJSON *shape = shape_json(&q->desc);
            if (!e || !shape || !cJSON_AddItemToArray(tensors, e)) {
                cJSON_Delete(shape);
                goto nomem_pend;
            }
            if (!cJSON_AddStringToObject(e, "name", t->name) ||
                !cJSON_AddStringToObject(e, "dtype", nmf_dtype_name(dtype))) {
                cJSON_Delete(shape);
                goto nomem_pend;
            }
            cJSON_AddItemToObject(e, "shape", shape);
            if (!cJSON_AddStringToObject(e, "pattern", pat)) goto nomem_pend;
            if (q->desc.transposed) {
                if (!cJSON_AddNumberToObject(e, "in_axis", 0)) goto nomem_pend;
                version = NMF_FILE_VERSION_IN_AXIS;
            }
            pend[np++] = (pending){e, idx};
        }
    }
    /* Pass 2: place payloads 64-byte aligned, in first-use order. */
    uint64_t at = 0;
    for (size_t i = 0; i < pl.count; i++) {
        pl.items[i].offset = at;
        at = nmf_align64(at + pl.items[i].size);
    }
    uint64_t data_size = at;
    for (size_t i = 0; i < np; i++) {
        const payload *q = &pl.items[pend[i].payload];
        if (!cJSON_AddNumberToObject(pend[i].entry, "offset", (double)q->offset) ||
            !cJSON_AddNumberToObject(pend[i].entry, "size", (double)q->size) ||
            !cJSON_AddNumberToObject(pend[i].entry, "crc32", (double)q->crc))
            goto nomem_pend;
    }
    free(pend);
    pend = NULL;
    json = cJSON_PrintUnformatted(root);
    if (!json) goto nomem;

    size_t json_size = strlen(json);
    uint8_t header[NMF_FILE_HEADER_SIZE];
    memcpy(header, NMF_FILE_MAGIC, NMF_FILE_MAGIC_SIZE);
    nmf_put_u32(header + 8, version);
    nmf_put_u64(header + 16, json_size);
    nmf_put_u64(header + 24, data_size);
    /* header CRC covers json_size, data_size and the JSON text */
    uint32_t hc = nmf_crc32_update(nmf_crc32_update(0, header + 16, 16), (const uint8_t *)json,
                                   json_size);
    nmf_put_u32(header + 12, (uint32_t)hc);

    static const uint8_t zeros[NMF_FILE_ALIGN];
    st = nmf_atomic_open(path, &af);
    if (st) goto done;
    st = nmf_atomic_write(af, header, sizeof header);
    if (!st) st = nmf_atomic_write(af, json, json_size);
    uint64_t head = NMF_FILE_HEADER_SIZE + json_size;
    if (!st) st = nmf_atomic_write(af, zeros, (size_t)(nmf_align64(head) - head));
    nmf_progress_step step;
    nmf_progress_begin(&step, "write", path, data_size);
    for (size_t i = 0; !st && i < pl.count; i++) {
        st = nmf_atomic_write(af, pl.items[i].bytes, pl.items[i].size);
        size_t pad = (size_t)(nmf_align64(pl.items[i].size) - pl.items[i].size);
        if (!st && pad) st = nmf_atomic_write(af, zeros, pad);
        if (!st) nmf_progress_advance(&step, NULL, nmf_align64(pl.items[i].size));
    }
    if (st)
        nmf_atomic_abort(af);
    else
        st = nmf_atomic_commit(af);
    goto done;
nomem_pend:
    free(pend);
nomem:
    st = nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
    goto done;
fail_pend:
    free(pend);
done:
    for (size_t i = 0; i < pl.count; i++) free(pl.items[i].bytes);
    free(pl.items);
    cJSON_Delete(root);
    free(json);
    free(cfg);
    return st;
}
