/* Writing the .nmf family container (layout in docs/FORMAT.md), one tensor at a time.
 *
 * The writer is opened with the plan of the family (every candidate's tensor names, shapes and
 * N:M patterns, values not needed), which fixes the JSON tensor table but for each payload's
 * offset, size digits and CRC: the table's room is reserved up front (its printed length with
 * the widest numbers those fields can take), the payloads follow it at data_offset as tensors
 * are added, and commit prints the table into its room (spaces after the JSON when the real
 * numbers are shorter and the zero padding cannot absorb the difference: JSON allows trailing
 * whitespace and every reader skips it). So a writer holds one tensor's payload at a time.
 *
 * Each tensor is serialised to a payload (dense values, or N:M kept values followed by
 * bit-packed rank codes). A payload whose descriptor (dtype, shape, pattern) and bytes equal an
 * earlier one is not stored again: the entry points at the earlier payload (compared by CRC,
 * then byte for byte against what was written). Candidates from one pruning chain share
 * embeddings, norms, biases and the head.
 *
 * Payloads go to the temporary file of the atomic output at their final place; a device or FIFO
 * output (written in order, no going back) keeps them in memory until commit instead. */
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

/* Widest printed payload offset/size, a CRC-32: what the table's room allows for each. */
#define CRC_DIGITS 10

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
    if (nm && (!nm->values || !nm->pos))
        return nmf_error(NMF_ERR_INVALID_ARG, "tensor '%s' has no values (a plan entry)", t->name);
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


static cJSON *shape_json(const nmf_payload_desc *d) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < d->ndim; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)d->shape[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

static size_t digits(uint64_t v) {
    size_t n = 1;
    while (v >= 10) v /= 10, n++;
    return n;
}

/* What the plan says a tensor's payload is. */
static void plan_desc(const nmf_tensor *t, nmf_dtype dtype, nmf_payload_desc *d) {
    memset(d, 0, sizeof *d);
    d->dtype = dtype;
    d->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) d->shape[i] = t->shape[i];
    d->numel = t->numel;
    if (t->nm) {
        d->pattern = t->nm->pattern;
        d->transposed = t->nm_transposed != 0;
    }
}

typedef struct {
    cJSON *json;    /* its object in the table (offset, size, crc32 added at commit) */
    size_t payload; /* SIZE_MAX until the tensor is added */
} planned;

struct nmf_family_writer {
    char *path;
    const nmf_family *plan; /* the caller's, until commit */
    nmf_dtype dtype;
    uint32_t version;
    nmf_atomic_file *af;
    int in_memory;          /* a device/FIFO output: payload bytes kept until commit */
    cJSON *root;
    planned *entries;       /* model after model, tensor after tensor */
    size_t first[NMF_FAMILY_MAX_MODELS + 1];
    size_t json_room;       /* bytes reserved for the JSON */
    uint64_t data_offset, at; /* at: end of the data written so far (64-aligned) */
    payload_list pl;
    uint8_t *scratch;       /* a written payload read back to compare */
    size_t scratch_size;
};

/* The table of every planned entry, without offset/size/crc32 (commit adds them). */
static nmf_status build_table(nmf_family_writer *w, uint64_t *room_numbers) {
    const nmf_family *f = w->plan;
    char *cfg = nmf_model_config_to_json(&f->config);
    cJSON *cfg_obj = cfg ? cJSON_Parse(cfg) : NULL;
    free(cfg);
    cJSON *root = w->root = cJSON_CreateObject();
    if (!root || !cfg_obj || !cJSON_AddStringToObject(root, "format", NMF_FILE_FORMAT_NAME)) {
        cJSON_Delete(cfg_obj);
        return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
    }
    cJSON_AddItemToObject(root, "config", cfg_obj);
    cJSON *models = cJSON_AddArrayToObject(root, "models");
    if (!models) return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
    /* the widest offset: every planned payload stored, none shared */
    uint64_t total = 0;
    size_t n = 0;
    for (size_t m = 0; m < f->count; m++) {
        w->first[m] = n;
        const nmf_candidate *c = &f->models[m];
        if (nmf_family_find(f, c->name) != c)
            return nmf_error(NMF_ERR_INVALID_ARG, "%s: two models named '%s'", w->path, c->name);
        cJSON *mo = cJSON_CreateObject();
        if (!mo || !cJSON_AddItemToArray(models, mo) || !cJSON_AddStringToObject(mo, "name", c->name))
            return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
        cJSON *meta = cJSON_AddObjectToObject(mo, "metadata");
        if (!meta) return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
        for (size_t i = 0; i < c->tensors.meta_count; i++) {
            const nmf_meta *kv = &c->tensors.meta[i];
            if (!strcmp(kv->key, NMF_CONFIG_META_KEY)) continue; /* the family config rules */
            if (!cJSON_AddStringToObject(meta, kv->key, kv->value))
                return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
        }
        cJSON *tensors = cJSON_AddArrayToObject(mo, "tensors");
        if (!tensors) return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
        for (size_t i = 0; i < c->tensors.count; i++, n++) {
            const nmf_tensor *t = &c->tensors.items[i];
            nmf_payload_desc d;
            plan_desc(t, w->dtype, &d);
            size_t vbytes, cbytes;
            nmf_status st = nmf_payload_size(&d, &vbytes, &cbytes);
            if (st) return nmf_error_context(st, "%s: tensor '%s' (model '%s')", w->path, t->name, c->name);
            total += nmf_align64(vbytes + cbytes);
            char pat[16] = "dense";
            if (d.pattern.n) nmf_pattern_format(d.pattern, pat, sizeof pat);
            cJSON *e = cJSON_CreateObject(), *shape = shape_json(&d);
            if (!e || !shape || !cJSON_AddItemToArray(tensors, e)) {
                cJSON_Delete(shape);
                cJSON_Delete(e);
                return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
            }
            /* key order as readers have always seen it: name, dtype, shape, pattern */
            if (!cJSON_AddStringToObject(e, "name", t->name) ||
                !cJSON_AddStringToObject(e, "dtype", nmf_dtype_name(w->dtype))) {
                cJSON_Delete(shape);
                return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
            }
            cJSON_AddItemToObject(e, "shape", shape);
            if (!cJSON_AddStringToObject(e, "pattern", pat))
                return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
            if (d.transposed) {
                if (!cJSON_AddNumberToObject(e, "in_axis", 0))
                    return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
                w->version = NMF_FILE_VERSION_IN_AXIS;
            }
            w->entries[n] = (planned){e, SIZE_MAX};
            /* ,"offset":O,"size":S,"crc32":C with the widest O and C, S exact */
            *room_numbers += sizeof ",\"offset\":,\"size\":,\"crc32\":" - 1 + digits(vbytes + cbytes) +
                             CRC_DIGITS;
        }
    }
    w->first[f->count] = n;
    if (total > NMF_FILE_MAX_SIZE)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: %llu bytes of payloads, more than readers accept",
                         w->path, (unsigned long long)total);
    *room_numbers += n * digits(total);
    return NMF_OK;
}

/* keep: payloads stay in memory until commit, which then lays the file out exactly (no room
 * reserved for the table): what a family held whole costs anyway. */
static nmf_status writer_open(const char *path, const nmf_family *plan, const nmf_write_options *opt,
                              int keep, nmf_family_writer **out) {
    if (!out) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_writer_open: NULL argument");
    *out = NULL;
    if (!path || !plan) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_writer_open: NULL argument");
    nmf_dtype dtype = opt ? opt->value_dtype : NMF_DTYPE_F32;
    if ((unsigned)dtype >= NMF_DTYPE_COUNT) return nmf_error(NMF_ERR_INVALID_ARG, "bad dtype");
    if (plan->count == 0) return nmf_error(NMF_ERR_INVALID_ARG, "%s: the family has no models", path);
    if (plan->count > NMF_FAMILY_MAX_MODELS)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: %zu models (at most %d)", path, plan->count,
                         NMF_FAMILY_MAX_MODELS);
    nmf_status st = nmf_model_config_validate(&plan->config);
    if (st) return st;
    nmf_family_writer *w = calloc(1, sizeof *w);
    if (!w) return nmf_error(NMF_ERR_NOMEM, "%s: writer", path);
    w->path = strdup(path);
    w->plan = plan;
    w->dtype = dtype;
    w->version = NMF_FILE_VERSION; /* 2 once a tensor needs "in_axis" */
    size_t total = 0;
    for (size_t m = 0; m < plan->count; m++) total += plan->models[m].tensors.count;
    w->entries = calloc(total + 1, sizeof *w->entries);
    uint64_t room_numbers = 0;
    char *json = NULL;
    if (!w->path || !w->entries) st = nmf_error(NMF_ERR_NOMEM, "%s: writer", path);
    if (!st) st = build_table(w, &room_numbers);
    if (!st && !(json = cJSON_PrintUnformatted(w->root))) st = nmf_error(NMF_ERR_NOMEM, "%s: metadata", path);
    if (!st) {
        w->json_room = strlen(json) + (size_t)room_numbers;
        w->data_offset = nmf_align64(NMF_FILE_HEADER_SIZE + (uint64_t)w->json_room);
        st = nmf_atomic_open(path, &w->af);
    }
    free(json);
    if (!st) w->in_memory = keep || !nmf_io_atomic_seekable(w->af);
    if (st) {
        nmf_family_writer_abort(w);
        return st;
    }
    *out = w;
    return NMF_OK;
}

nmf_status nmf_family_writer_open(const char *path, const nmf_family *plan, const nmf_write_options *opt,
                                  nmf_family_writer **out) {
    return writer_open(path, plan, opt, 0, out);
}

/* The payload p already stored with the same bytes, or SIZE_MAX. */
static nmf_status find_equal(nmf_family_writer *w, const payload *p, size_t *index) {
    *index = SIZE_MAX;
    for (size_t i = 0; i < w->pl.count; i++) {
        const payload *q = &w->pl.items[i];
        if (q->crc != p->crc || q->size != p->size || !nmf_payload_desc_equal(&q->desc, &p->desc))
            continue;
        const uint8_t *bytes = q->bytes;
        if (!bytes) { /* on disk: read it back */
            if (w->scratch_size < q->size) {
                uint8_t *s = realloc(w->scratch, q->size ? q->size : 1);
                if (!s) return nmf_error(NMF_ERR_NOMEM, "%s: %zu bytes", w->path, q->size);
                w->scratch = s;
                w->scratch_size = q->size;
            }
            nmf_status st = nmf_io_atomic_pread(w->af, w->data_offset + q->offset, w->scratch, q->size);
            if (st) return st;
            bytes = w->scratch;
        }
        if (!memcmp(bytes, p->bytes, p->size)) {
            *index = i;
            return NMF_OK;
        }
    }
    return NMF_OK;
}

/* Stores p after the data written so far (64-byte aligned, zero padded) and lists it. */
static nmf_status store(nmf_family_writer *w, payload *p, size_t *index) {
    static const uint8_t zeros[NMF_FILE_ALIGN];
    if (w->pl.count == w->pl.cap) {
        size_t cap = w->pl.cap ? 2 * w->pl.cap : 64;
        payload *items = realloc(w->pl.items, cap * sizeof *items);
        if (!items) return nmf_error(NMF_ERR_NOMEM, "payload table");
        w->pl.items = items;
        w->pl.cap = cap;
    }
    p->offset = w->at;
    size_t pad = (size_t)(nmf_align64(p->size) - p->size);
    if (!w->in_memory) {
        nmf_status st = nmf_io_atomic_pwrite(w->af, w->data_offset + p->offset, p->bytes, p->size);
        if (!st && pad) st = nmf_io_atomic_pwrite(w->af, w->data_offset + p->offset + p->size, zeros, pad);
        if (st) return st;
        free(p->bytes);
        p->bytes = NULL;
    }
    w->at = nmf_align64(w->at + p->size);
    *index = w->pl.count;
    w->pl.items[w->pl.count++] = *p;
    p->bytes = NULL;
    return NMF_OK;
}

nmf_status nmf_family_writer_add(nmf_family_writer *w, size_t model, const nmf_tensor *t) {
    if (!w || !t) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_writer_add: NULL argument");
    if (model >= w->plan->count)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: model %zu of %zu", w->path, model, w->plan->count);
    const nmf_candidate *c = &w->plan->models[model];
    const nmf_tensor *want = t->name ? nmf_tensors_find(&c->tensors, t->name) : NULL;
    if (!want)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: model '%s' has no tensor '%s' in its plan", w->path,
                         c->name, t->name ? t->name : "");
    planned *e = &w->entries[w->first[model] + (size_t)(want - c->tensors.items)];
    if (e->payload != SIZE_MAX)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor '%s' of model '%s' added twice", w->path,
                         t->name, c->name);
    payload p;
    nmf_status st = serialise(t, w->dtype, &p);
    if (st) return nmf_error_context(st, "%s: model '%s'", w->path, c->name);
    nmf_payload_desc d;
    plan_desc(want, w->dtype, &d);
    if (!nmf_payload_desc_equal(&d, &p.desc)) {
        free(p.bytes);
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor '%s' of model '%s' differs from the plan "
                         "(shape or N:M form)", w->path, t->name, c->name);
    }
    size_t idx;
    st = find_equal(w, &p, &idx);
    if (!st && idx == SIZE_MAX) st = store(w, &p, &idx);
    free(p.bytes);
    if (!st) e->payload = idx;
    return st;
}

/* The table with every payload's place, printed into its room. */
static nmf_status print_table(nmf_family_writer *w, char **json, size_t *json_size) {
    for (size_t m = 0; m < w->plan->count; m++)
        for (size_t i = w->first[m]; i < w->first[m + 1]; i++) {
            const planned *e = &w->entries[i];
            if (e->payload == SIZE_MAX)
                return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor '%s' of model '%s' was never added",
                                 w->path, w->plan->models[m].tensors.items[i - w->first[m]].name,
                                 w->plan->models[m].name);
            const payload *q = &w->pl.items[e->payload];
            if (!cJSON_AddNumberToObject(e->json, "offset", (double)q->offset) ||
                !cJSON_AddNumberToObject(e->json, "size", (double)q->size) ||
                !cJSON_AddNumberToObject(e->json, "crc32", (double)q->crc))
                return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
        }
    char *text = cJSON_PrintUnformatted(w->root);
    if (!text) return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
    size_t len = strlen(text);
    if (len > w->json_room) { /* the room is an upper bound by construction */
        free(text);
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor table outgrew its room (%zu > %zu bytes)",
                         w->path, len, w->json_room);
    }
    /* payloads kept in memory go right after the table; else the zero padding up to the
     * reserved data_offset takes up what it can, spaces the rest */
    size_t size = len;
    if (w->in_memory)
        w->data_offset = nmf_align64(NMF_FILE_HEADER_SIZE + (uint64_t)len);
    else if (nmf_align64(NMF_FILE_HEADER_SIZE + (uint64_t)len) != w->data_offset)
        size = (size_t)(w->data_offset - NMF_FILE_HEADER_SIZE);
    char *padded = realloc(text, size + 1);
    if (!padded) {
        free(text);
        return nmf_error(NMF_ERR_NOMEM, "%s: metadata", w->path);
    }
    memset(padded + len, ' ', size - len);
    *json = padded;
    *json_size = size;
    return NMF_OK;
}

nmf_status nmf_family_writer_commit(nmf_family_writer *w) {
    if (!w) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_writer_commit: NULL argument");
    char *json = NULL;
    size_t json_size = 0;
    nmf_status st = print_table(w, &json, &json_size);
    static const uint8_t zeros[NMF_FILE_ALIGN];
    uint8_t header[NMF_FILE_HEADER_SIZE];
    if (!st) {
        memcpy(header, NMF_FILE_MAGIC, NMF_FILE_MAGIC_SIZE);
        nmf_put_u32(header + 8, w->version);
        nmf_put_u64(header + 16, json_size);
        nmf_put_u64(header + 24, w->at);
        /* header CRC covers json_size, data_size and the JSON text */
        uint32_t hc = nmf_crc32_update(nmf_crc32_update(0, header + 16, 16), (const uint8_t *)json, json_size);
        nmf_put_u32(header + 12, hc);
    }
    uint64_t head = NMF_FILE_HEADER_SIZE + (uint64_t)json_size;
    size_t pad = (size_t)(w->data_offset - head);
    if (!st && !w->in_memory) {
        st = nmf_io_atomic_pwrite(w->af, 0, header, sizeof header);
        if (!st) st = nmf_io_atomic_pwrite(w->af, NMF_FILE_HEADER_SIZE, json, json_size);
        if (!st && pad) st = nmf_io_atomic_pwrite(w->af, head, zeros, pad);
    } else if (!st) { /* in order: header, table, then every payload kept */
        st = nmf_atomic_write(w->af, header, sizeof header);
        if (!st) st = nmf_atomic_write(w->af, json, json_size);
        if (!st) st = nmf_atomic_write(w->af, zeros, pad);
        for (size_t i = 0; !st && i < w->pl.count; i++) {
            const payload *q = &w->pl.items[i];
            st = nmf_atomic_write(w->af, q->bytes, q->size);
            size_t tail = (size_t)(nmf_align64(q->size) - q->size);
            if (!st && tail) st = nmf_atomic_write(w->af, zeros, tail);
        }
    }
    free(json);
    if (!st) {
        st = nmf_atomic_commit(w->af);
        w->af = NULL; /* freed by commit either way */
    }
    nmf_family_writer_abort(w);
    return st;
}

void nmf_family_writer_abort(nmf_family_writer *w) {
    if (!w) return;
    if (w->af) nmf_atomic_abort(w->af);
    for (size_t i = 0; i < w->pl.count; i++) free(w->pl.items[i].bytes);
    free(w->pl.items);
    free(w->scratch);
    free(w->entries);
    cJSON_Delete(w->root);
    free(w->path);
    free(w);
}

/* Bytes of t's payload (0 when its plan is not storable: the writer says why). */
static uint64_t entry_bytes(const nmf_tensor *t, const nmf_write_options *opt) {
    nmf_payload_desc d;
    plan_desc(t, opt ? opt->value_dtype : NMF_DTYPE_F32, &d);
    size_t v = 0, c = 0;
    if (nmf_payload_size(&d, &v, &c)) {
        nmf_clear_error();
        return 0;
    }
    return v + c;
}

nmf_status nmf_family_write(const char *path, const nmf_family *f, const nmf_write_options *opt) {
    if (!f) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_write: NULL argument");
    nmf_family_writer *w;
    nmf_status st = writer_open(path, f, opt, 1, &w);
    if (st) return st;
    /* progress per entry, in the payload bytes each refers to (shared ones count per entry) */
    uint64_t total = 0;
    for (size_t m = 0; m < f->count; m++)
        for (size_t i = 0; i < f->models[m].tensors.count; i++)
            total += entry_bytes(&f->models[m].tensors.items[i], opt);
    nmf_progress_step step;
    nmf_progress_begin(&step, "write", path, total);
    for (size_t m = 0; !st && m < f->count; m++)
        for (size_t i = 0; !st && i < f->models[m].tensors.count; i++) {
            const nmf_tensor *t = &f->models[m].tensors.items[i];
            st = nmf_family_writer_add(w, m, t);
            if (!st) nmf_progress_advance(&step, t->name, entry_bytes(t, opt));
        }
    if (st) {
        nmf_family_writer_abort(w);
        return st;
    }
    return nmf_family_writer_commit(w);
}
