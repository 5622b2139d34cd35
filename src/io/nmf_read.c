/* Reading the .nmf family container (layout in docs/FORMAT.md).
 *
 * The file is hostile until proven otherwise. nmf_family_open checks, without reading any
 * payload: magic, version, sizes in the fixed header against the real file size, header CRC
 * (covers the JSON), zero padding, JSON schema, every tensor entry (dtype, shape, pattern, offset
 * alignment and bounds, size implied by the descriptor) and the payload map (distinct payloads
 * tile the data section in 64-byte steps, shared payloads agree on everything). The payloads stay
 * in the file (src/io/mapped.c): a payload is mapped when a candidate that uses it is loaded, and
 * its zero padding and CRC are checked then, before it is decoded (ranks in range, zero padding
 * bits, ascending positions, zero padding values); so loading one candidate reads and holds that
 * candidate only. nmf_family_read checks every payload first, then decodes every candidate. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "core/tensor_internal.h"
#include "io/io_internal.h"
#include "io/nmf_format.h"

typedef struct {
    size_t model, tensor_in_model; /* position in the JSON */
    const char *name;
    nmf_payload_desc desc;
    uint64_t offset, size;
    uint32_t crc;
    size_t values_bytes;
    size_t payload; /* distinct payload index */
} entry;

/* An opened family: everything but the payloads, which stay in the file. */
struct nmf_family_file {
    char *path;
    nmf_io_source src;
    nmf_family fam;        /* config, candidate names and metadata; tensor sets left empty */
    cJSON *root;           /* the metadata: entry names point into it */
    entry *entries;        /* the tensor table in JSON order, model after model */
    size_t count;
    size_t first[NMF_FAMILY_MAX_MODELS + 1]; /* model m's entries: [first[m], first[m + 1]) */
    size_t *payload_entry; /* [payloads]: the first entry of each distinct payload, file order */
    size_t payloads;
    uint32_t version;
    uint64_t data_offset, data_size, json_size;
};

static int entry_cmp(const void *a, const void *b) {
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->model != y->model) return x->model < y->model ? -1 : 1;
    return x->tensor_in_model < y->tensor_in_model ? -1 : x->tensor_in_model > y->tensor_in_model;
}

static int entry_name_cmp(const void *a, const void *b) {
    return strcmp((*(const entry *const *)a)->name, (*(const entry *const *)b)->name);
}

static int same_payload(const entry *a, const entry *b) {
    return a->size == b->size && a->crc == b->crc && nmf_payload_desc_equal(&a->desc, &b->desc);
}

/* Parses one tensor entry of model `model` (name already checked for uniqueness by the caller)
 * of a file of this version. */
static nmf_status parse_entry(const char *path, const char *model, const cJSON *e,
                              uint32_t version, uint64_t data_size, entry *out) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    if (!cJSON_IsObject(e) || !cJSON_IsString(name) || !name->valuestring[0] ||
        strlen(name->valuestring) > NMF_FILE_MAX_NAME)
        return nmf_error(NMF_ERR_FORMAT, "%s: model '%s': tensor entry without a valid name", path,
                         model);
    const char *tn = name->valuestring;
    out->name = tn;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt))
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': dtype missing", path, tn);
    int found = 0;
    for (int i = 0; i < NMF_DTYPE_COUNT; i++)
        if (!strcmp(dt->valuestring, nmf_dtype_name((nmf_dtype)i))) {
            out->desc.dtype = (nmf_dtype)i;
            found = 1;
        }
    if (!found)
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%.32s'", path, tn,
                         dt->valuestring);
    nmf_status st = nmf_io_parse_shape(path, tn, cJSON_GetObjectItemCaseSensitive(e, "shape"),
                                       &out->desc.ndim, out->desc.shape, &out->desc.numel);
    if (st) return st;
    if (out->desc.numel == 0)
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' has no elements", path, tn);
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(e, "pattern");
    if (!cJSON_IsString(pat))
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': pattern missing", path, tn);
    if (strcmp(pat->valuestring, "dense") != 0) {
        if (nmf_pattern_parse(pat->valuestring, &out->desc.pattern) != NMF_OK)
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': bad pattern '%.16s'", path, tn,
                             pat->valuestring);
        if (out->desc.ndim != 2)
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': an N:M tensor must be 2-D", path,
                             tn);
    }
    /* "in_axis" (version 2): 0 for an N:M weight stored [in, out]; 1, the default, [out, in] */
    const cJSON *axis = cJSON_GetObjectItemCaseSensitive(e, "in_axis");
    if (axis) {
        uint64_t a;
        if (version < NMF_FILE_VERSION_IN_AXIS)
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': \"in_axis\" needs a version-%u "
                             "file (this one is version %u)", path, tn, NMF_FILE_VERSION_IN_AXIS,
                             version);
        if (!nmf_io_json_uint(axis, &a) || a > 1 || !out->desc.pattern.n)
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': \"in_axis\" must be 0 or 1, on an "
                             "N:M tensor", path, tn);
        out->desc.transposed = a == 0;
    }
    uint64_t crc;
    if (!nmf_io_json_uint(cJSON_GetObjectItemCaseSensitive(e, "offset"), &out->offset) ||
        !nmf_io_json_uint(cJSON_GetObjectItemCaseSensitive(e, "size"), &out->size) ||
        !nmf_io_json_uint(cJSON_GetObjectItemCaseSensitive(e, "crc32"), &crc) ||
        crc > 0xffffffffu)
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': offset, size, crc32 must be naturals",
                         path, tn);
    out->crc = (uint32_t)crc;
    if (out->offset % NMF_FILE_ALIGN)
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': offset %llu is not 64-byte aligned",
                         path, tn, (unsigned long long)out->offset);
    if (out->offset > data_size || out->size > data_size - out->offset)
        return nmf_error(NMF_ERR_FORMAT,
                         "%s: tensor '%s': bytes [%llu, +%llu) outside the data section (%llu "
                         "bytes)",
                         path, tn, (unsigned long long)out->offset, (unsigned long long)out->size,
                         (unsigned long long)data_size);
    size_t vb, cb;
    st = nmf_payload_size(&out->desc, &vb, &cb);
    if (st || vb + cb != out->size) /* vb + cb: both bounded, see nmf_payload_size */
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': %llu bytes stored, %s %s needs %zu",
                         path, tn, (unsigned long long)out->size, nmf_dtype_name(out->desc.dtype),
                         pat->valuestring, st ? (size_t)0 : vb + cb);
    out->values_bytes = vb;
    return NMF_OK;
}

/* Decodes the payload of e into set s under its name. */
static nmf_status decode_entry(const char *path, const entry *e, const uint8_t *bytes,
                               nmf_tensor_set *s, int keep16) {
    nmf_status st;
    if (e->desc.pattern.n == 0 && keep16 && e->desc.dtype != NMF_DTYPE_F32) {
        nmf_tensor *t; /* the stored little-endian 16-bit values, as they are */
        st = nmf_tensors_add_dense16(s, e->name, e->desc.ndim, e->desc.shape, e->desc.dtype, &t);
        if (!st) memcpy(t->data16, bytes, e->desc.numel * sizeof(uint16_t));
        return st;
    }
    if (e->desc.pattern.n == 0) {
        nmf_tensor *t;
        st = nmf_tensors_add_dense(s, e->name, e->desc.ndim, e->desc.shape, NULL, &t);
        if (st) return st;
        nmf_io_decode_values(t->data, bytes, e->desc.numel, e->desc.dtype);
        t->stored_dtype = e->desc.dtype;
        return NMF_OK;
    }
    /* the payload is the (out, in) view: [in, out] storage swaps the axes */
    size_t rows = (size_t)e->desc.shape[e->desc.transposed ? 1 : 0];
    size_t cols = (size_t)e->desc.shape[e->desc.transposed ? 0 : 1];
    nmf_nm_matrix m;
    st = nmf_nm_alloc(&m, rows, cols, e->desc.pattern, cols % (size_t)e->desc.pattern.m != 0);
    if (st) return st;
    nmf_io_decode_values(m.values, bytes, e->values_bytes / nmf_dtype_size(e->desc.dtype),
                         e->desc.dtype);
    st = nmf_nm_decode_positions(&m, bytes + e->values_bytes, (size_t)e->size - e->values_bytes);
    if (!st) st = nmf_nm_validate(&m);
    if (st) {
        nmf_nm_free(&m);
        return nmf_error_context(st, "%s: tensor '%s'", path, e->name);
    }
    nmf_tensor *t = NULL;
    st = nmf_tensors_add_nm_transposed(s, e->name, &m, e->desc.transposed, &t);
    if (st) nmf_nm_free(&m);
    else t->stored_dtype = e->desc.dtype;
    return st;
}

nmf_status nmf_family_open(const char *path, nmf_family_file **out) {
    if (!out) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_open: NULL argument");
    *out = NULL;
    nmf_family_file *f = calloc(1, sizeof *f);
    if (!f) return nmf_error(NMF_ERR_NOMEM, "family file");
    f->src.fd = -1;
    nmf_family_init(&f->fam);
    nmf_family *fam = &f->fam;
    nmf_io_window head = {0};
    entry *entries = NULL;
    entry **order = NULL;
    cJSON *root = NULL;
    nmf_status st = nmf_io_source_open(path, NMF_FILE_MAX_SIZE, &f->src);
    if (!st && !(f->path = strdup(path))) st = nmf_error(NMF_ERR_NOMEM, "%s: path", path);
    if (st) goto fail;
    f->src.path = f->path;
    const size_t size = (size_t)f->src.size; /* <= NMF_FILE_MAX_SIZE */
    /* the fixed header first, then (its sizes checked) the metadata up to the data section */
    st = nmf_io_window_map(&f->src, 0, size < NMF_FILE_HEADER_SIZE ? size : NMF_FILE_HEADER_SIZE,
                           &head);
    if (st) goto fail;
    const uint8_t *buf = head.p;
    if (size < NMF_FILE_MAGIC_SIZE || memcmp(buf, NMF_FILE_MAGIC, NMF_FILE_MAGIC_SIZE) != 0) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: not an .nmf file (bad magic)", path);
        goto fail;
    }
    if (size < NMF_FILE_HEADER_SIZE) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: truncated .nmf header (%zu bytes)", path, size);
        goto fail;
    }
    uint32_t version = nmf_get_u32(buf + 8);
    if (version < NMF_FILE_VERSION || version > NMF_FILE_VERSION_MAX) {
        st = nmf_error(NMF_ERR_UNSUPPORTED, "%s: .nmf version %u is not supported (this reader "
                       "knows %u to %u)", path, version, NMF_FILE_VERSION, NMF_FILE_VERSION_MAX);
        goto fail;
    }
    uint64_t json_size = nmf_get_u64(buf + 16), data_size = nmf_get_u64(buf + 24);
    if (json_size > NMF_FILE_MAX_JSON || json_size > size - NMF_FILE_HEADER_SIZE) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: metadata size %llu exceeds the file (%zu bytes)", path,
                       (unsigned long long)json_size, size);
        goto fail;
    }
    uint64_t data_offset = nmf_align64(NMF_FILE_HEADER_SIZE + json_size);
    if (data_offset > size || data_size != size - data_offset) {
        st = nmf_error(NMF_ERR_FORMAT,
                       "%s: file is %zu bytes, header says %llu (%s)", path, size,
                       (unsigned long long)(data_offset + (data_size > NMF_FILE_MAX_SIZE ? 0 : data_size)),
                       data_offset > size || data_size > size - data_offset ? "truncated"
                                                                            : "trailing bytes");
        goto fail;
    }
    nmf_io_window_unmap(&head);
    st = nmf_io_window_map(&f->src, 0, data_offset, &head);
    if (st) goto fail;
    buf = head.p;
    uint32_t hcrc = nmf_crc32_update(nmf_crc32_update(0, buf + 16, 16), buf + NMF_FILE_HEADER_SIZE,
                                     (size_t)json_size);
    if (hcrc != nmf_get_u32(buf + 12) && !nmf_io_fuzz_skip_crc) {
        st = nmf_error(NMF_ERR_CHECKSUM, "%s: metadata block CRC mismatch (file corrupt)", path);
        goto fail;
    }
    for (uint64_t i = NMF_FILE_HEADER_SIZE + json_size; i < data_offset; i++)
        if (buf[i]) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: non-zero padding after the metadata", path);
            goto fail;
        }
    root = nmf_io_parse_json((const char *)buf + NMF_FILE_HEADER_SIZE, (size_t)json_size);
    if (!root || !cJSON_IsObject(root)) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: metadata is not a JSON object", path);
        goto fail;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, NMF_FILE_FORMAT_NAME) != 0) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: metadata 'format' is not \"%s\"", path,
                       NMF_FILE_FORMAT_NAME);
        goto fail;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    if (!cJSON_IsObject(cfg)) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: metadata has no 'config' object", path);
        goto fail;
    }
    char *cfg_text = cJSON_PrintUnformatted(cfg);
    if (!cfg_text) {
        st = nmf_error(NMF_ERR_NOMEM, "%s: config", path);
        goto fail;
    }
    st = nmf_model_config_from_json(cfg_text, &fam->config);
    free(cfg_text);
    if (!st) st = nmf_model_config_validate(&fam->config);
    if (st) {
        st = nmf_error_context(st, "%s: config", path);
        goto fail;
    }
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(root, "models");
    int nmodels = cJSON_IsArray(models) ? cJSON_GetArraySize(models) : -1;
    if (nmodels < 1 || nmodels > NMF_FAMILY_MAX_MODELS) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: 'models' must be an array of 1..%d models", path,
                       NMF_FAMILY_MAX_MODELS);
        goto fail;
    }
    /* Count entries first so that one allocation holds them all. */
    size_t total = 0;
    const cJSON *mo;
    cJSON_ArrayForEach(mo, models) {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(mo, "tensors");
        if (!cJSON_IsObject(mo) || !cJSON_IsArray(ts)) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: a model entry has no 'tensors' array", path);
            goto fail;
        }
        total += (size_t)cJSON_GetArraySize(ts);
    }
    entries = calloc(total + 1, sizeof *entries);
    order = calloc(total + 1, sizeof *order);
    if (!entries || !order) {
        st = nmf_error(NMF_ERR_NOMEM, "%s: tensor table", path);
        goto fail;
    }
    /* Shared payloads are decoded once per entry that names them, so a small file could ask for
     * unbounded memory (a decompression bomb). A real family expands by at most ~64 models x 2.5
     * (f16 values -> f32 + one position byte). */
    const uint64_t max_decoded = NMF_FILE_MAX_EXPANSION * data_size + ((uint64_t)256 << 20);
    uint64_t decoded = 0;
    size_t ne = 0, mi = 0;
    cJSON_ArrayForEach(mo, models) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(mo, "name");
        if (!cJSON_IsString(name)) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: model %zu has no name", path, mi);
            goto fail;
        }
        nmf_tensor_set empty;
        nmf_tensors_init(&empty);
        st = nmf_family_add(fam, name->valuestring, &empty);
        if (st) {
            st = nmf_error_context(NMF_ERR_FORMAT, "%s", path);
            goto fail;
        }
        nmf_candidate *c = &fam->models[mi];
        f->first[mi] = ne;
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(mo, "metadata");
        if (meta && !cJSON_IsObject(meta)) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: model '%s': metadata is not an object", path,
                           c->name);
            goto fail;
        }
        if (cJSON_GetArraySize(meta) > NMF_IO_MAX_META) {
            st = nmf_error(NMF_ERR_UNSUPPORTED, "%s: model '%s': metadata has more than %d keys",
                           path, c->name, NMF_IO_MAX_META);
            goto fail;
        }
        const cJSON *kv;
        cJSON_ArrayForEach(kv, meta) {
            if (!cJSON_IsString(kv) || nmf_tensors_get_meta(&c->tensors, kv->string)) {
                st = nmf_error(NMF_ERR_FORMAT,
                               "%s: model '%s': metadata '%s' is not a unique string", path,
                               c->name, kv->string ? kv->string : "?");
                goto fail;
            }
            st = nmf_tensors_set_meta(&c->tensors, kv->string, kv->valuestring);
            if (st) goto fail;
        }
        size_t first = ne, ti = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(mo, "tensors")) {
            entry *en = &entries[ne];
            en->model = mi;
            en->tensor_in_model = ti++;
            st = parse_entry(path, c->name, e, version, data_size, en);
            if (st) goto fail;
            /* f32 values, plus one position byte per kept value of an N:M tensor */
            uint64_t vals = en->desc.pattern.n ? en->values_bytes / nmf_dtype_size(en->desc.dtype)
                                               : en->desc.numel;
            decoded += vals * (en->desc.pattern.n ? 5 : 4); /* vals <= 2^40 */
            if (decoded > max_decoded) {
                st = nmf_error(NMF_ERR_FORMAT,
                               "%s: the tensor table decodes to more than %llu bytes (%llu-byte "
                               "data section): too many entries share payloads",
                               path, (unsigned long long)max_decoded, (unsigned long long)data_size);
                goto fail;
            }
            order[ne] = en;
            ne++;
        }
        /* names unique within the model: sorted, so that huge tables stay O(n log n) */
        qsort(order + first, ne - first, sizeof *order, entry_name_cmp);
        for (size_t j = first + 1; j < ne; j++)
            if (!strcmp(order[j - 1]->name, order[j]->name)) {
                st = nmf_error(NMF_ERR_FORMAT, "%s: model '%s': tensor '%s' appears twice", path,
                               c->name, order[j]->name);
                goto fail;
            }
        mi++;
    }
    f->first[mi] = ne;
    f->payload_entry = calloc(ne + 1, sizeof *f->payload_entry);
    if (!f->payload_entry) {
        st = nmf_error(NMF_ERR_NOMEM, "%s: payload table", path);
        goto fail;
    }

    /* Payload map: entries at one offset are one shared payload and must agree; distinct payloads
     * follow each other at the next 64-byte boundary, from 0 to the end of the data section. */
    qsort(order, ne, sizeof *order, entry_cmp);
    size_t npayloads = 0;
    uint64_t at = 0;
    for (size_t i = 0; i < ne; i++) {
        entry *en = order[i];
        if (i > 0 && en->offset == order[i - 1]->offset) {
            if (!same_payload(en, order[i - 1])) {
                st = nmf_error(NMF_ERR_FORMAT,
                               "%s: tensor '%s' (model '%s') overlaps tensor '%s' (model '%s')",
                               path, en->name, fam->models[en->model].name, order[i - 1]->name,
                               fam->models[order[i - 1]->model].name);
                goto fail;
            }
            en->payload = order[i - 1]->payload;
            continue;
        }
        if (en->offset < at) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' (model '%s') overlaps the payload before it",
                           path, en->name, fam->models[en->model].name);
            goto fail;
        }
        if (en->offset > at) {
            st = nmf_error(NMF_ERR_FORMAT,
                           "%s: %llu unaccounted bytes before tensor '%s' (model '%s')", path,
                           (unsigned long long)(en->offset - at), en->name,
                           fam->models[en->model].name);
            goto fail;
        }
        /* its padding and CRC are checked when it is first touched (payload_map) */
        f->payload_entry[npayloads] = (size_t)(en - entries);
        en->payload = npayloads++;
        at = nmf_align64(en->offset + en->size);
    }
    if (at != data_size) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: %llu bytes after the last payload belong to no tensor",
                       path, (unsigned long long)(data_size - at));
        goto fail;
    }

    nmf_io_window_unmap(&head);
    free(order);
    f->root = root;
    f->entries = entries;
    f->count = ne;
    f->payloads = npayloads;
    f->version = version;
    f->data_offset = data_offset;
    f->data_size = data_size;
    f->json_size = json_size;
    *out = f;
    return NMF_OK;
fail:
    nmf_io_window_unmap(&head);
    cJSON_Delete(root);
    free(entries);
    free(order);
    nmf_family_close(f);
    return st;
}

void nmf_family_close(nmf_family_file *f) {
    if (!f) return;
    nmf_io_source_close(&f->src);
    nmf_family_free(&f->fam);
    cJSON_Delete(f->root);
    free(f->entries);
    free(f->payload_entry);
    free(f->path);
    free(f);
}

const nmf_model_config *nmf_family_file_config(const nmf_family_file *f) {
    return f ? &f->fam.config : NULL;
}

size_t nmf_family_file_count(const nmf_family_file *f) { return f ? f->fam.count : 0; }

const char *nmf_family_file_name(const nmf_family_file *f, size_t i) {
    return f && i < f->fam.count ? f->fam.models[i].name : NULL;
}

const nmf_tensor_set *nmf_family_file_metadata(const nmf_family_file *f, size_t i) {
    return f && i < f->fam.count ? &f->fam.models[i].tensors : NULL;
}

/* Maps e's payload with its padding (to the next 64-byte boundary or the end of the data); when
 * check, the padding must be zero and the CRC must match: a payload is checked when touched. */
static nmf_status payload_map(const nmf_family_file *f, const entry *e, int check,
                              nmf_io_window *w) {
    const char *model = f->fam.models[e->model].name;
    uint64_t end = nmf_align64(e->offset + e->size);
    if (end > f->data_size) end = f->data_size;
    nmf_status st = nmf_io_window_map(&f->src, f->data_offset + e->offset, end - e->offset, w);
    if (st) return nmf_error_context(st, "tensor '%s' (model '%s')", e->name, model);
    if (!check) return NMF_OK;
    for (uint64_t b = e->size; b < end - e->offset; b++)
        if (w->p[b]) {
            nmf_io_window_unmap(w);
            return nmf_error(NMF_ERR_FORMAT, "%s: non-zero padding after tensor '%s'", f->path,
                             e->name);
        }
    if (nmf_crc32_update(0, w->p, (size_t)e->size) != e->crc && !nmf_io_fuzz_skip_crc) {
        nmf_io_window_unmap(w);
        return nmf_error(NMF_ERR_CHECKSUM,
                         "%s: tensor '%s' (model '%s'): CRC mismatch (data corrupt)", f->path,
                         e->name, model);
    }
    return NMF_OK;
}

nmf_status nmf_family_file_verify(const nmf_family_file *f) {
    if (!f) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_file_verify: NULL argument");
    for (size_t p = 0; p < f->payloads; p++) {
        nmf_io_window w;
        nmf_status st = payload_map(f, &f->entries[f->payload_entry[p]], 1, &w);
        if (st) return st;
        nmf_io_window_unmap(&w);
    }
    return NMF_OK;
}

nmf_status nmf_family_file_check(const nmf_family_file *f, nmf_verify_fn fn, void *user, size_t *bad) {
    if (bad) *bad = 0;
    if (!f) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_file_check: NULL argument");
    nmf_status first = NMF_OK;
    char detail[512];
    nmf_progress_step step;
    nmf_progress_begin(&step, "verify", f->path, f->data_size);
    for (size_t p = 0; p < f->payloads; p++) {
        const entry *e = &f->entries[f->payload_entry[p]];
        nmf_io_window w;
        nmf_status st = payload_map(f, e, 1, &w); /* unmapped again when it fails */
        if (!st) {
            if (e->desc.pattern.n) { /* the codes and positions, as a load decodes them */
                nmf_tensor_set one;
                nmf_tensors_init(&one);
                st = decode_entry(f->path, e, w.p, &one, 0);
                nmf_tensors_free(&one);
            }
            nmf_io_window_unmap(&w);
        }
        nmf_progress_advance(&step, e->name, nmf_align64(e->size));
        if (!st) continue;
        snprintf(detail, sizeof detail, "%s", nmf_last_error());
        if (!first) first = st;
        for (size_t i = 0; i < f->count; i++) /* every entry of the payload: each is a bad tensor */
            if (f->entries[i].payload == p) {
                if (bad) (*bad)++;
                if (fn) {
                    nmf_verify_problem pr = {f->fam.models[f->entries[i].model].name, f->entries[i].name,
                                             st, detail};
                    fn(&pr, user);
                }
            }
    }
    if (first) return nmf_error(first, "%s: %zu bad tensor%s", f->path, bad ? *bad : 0,
                                bad && *bad == 1 ? "" : "s");
    return NMF_OK;
}

nmf_status nmf_io_family_file_headers(const nmf_family_file *f, size_t m, nmf_tensor_set *out) {
    nmf_tensors_init(out);
    if (m >= f->fam.count) return nmf_error(NMF_ERR_INVALID_ARG, "%s: model %zu of %zu", f->path, m, f->fam.count);
    nmf_status st = nmf_tensors_copy_meta(&f->fam.models[m].tensors, out);
    for (size_t i = f->first[m]; !st && i < f->first[m + 1]; i++) {
        const entry *e = &f->entries[i];
        st = nmf_tensors_add_header(out, e->name, e->desc.ndim, e->desc.shape, e->desc.pattern,
                                    e->desc.transposed, e->desc.dtype, NULL);
    }
    if (st) nmf_tensors_free(out);
    return st;
}

nmf_status nmf_io_family_file_decode(const nmf_family_file *f, size_t m, size_t j, nmf_tensor_set *out) {
    if (m >= f->fam.count || j >= f->first[m + 1] - f->first[m])
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: tensor %zu of model %zu", f->path, j, m);
    const entry *e = &f->entries[f->first[m] + j];
    nmf_io_window w;
    nmf_status st = payload_map(f, e, 1, &w);
    if (st) return st;
    st = decode_entry(f->path, e, w.p, out, 0);
    nmf_io_window_unmap(&w);
    return st;
}

uint64_t nmf_io_family_file_bytes(const nmf_family_file *f, size_t m, size_t j) {
    return m < f->fam.count && j < f->first[m + 1] - f->first[m] ? f->entries[f->first[m] + j].size : 0;
}

/* Model m's entry named name, or NULL with the error set. */
static const entry *named_entry(const nmf_family_file *f, size_t m, const char *name) {
    for (size_t j = 0; m < f->fam.count && j < f->first[m + 1] - f->first[m]; j++)
        if (!strcmp(f->entries[f->first[m] + j].name, name)) return &f->entries[f->first[m] + j];
    nmf_error(NMF_ERR_NOT_FOUND, "%s: no tensor '%s' in model %zu", f->path, name, m);
    return NULL;
}

nmf_status nmf_io_family_file_decode_named(const nmf_family_file *f, size_t m, const char *name,
                                           nmf_tensor_set *out) {
    return nmf_io_family_file_decode_named16(f, m, name, out, 0);
}

nmf_status nmf_io_family_file_decode_named16(const nmf_family_file *f, size_t m, const char *name,
                                             nmf_tensor_set *out, int keep16) {
    const entry *e = named_entry(f, m, name);
    if (!e) return NMF_ERR_NOT_FOUND;
    nmf_io_window w;
    nmf_status st = payload_map(f, e, 1, &w);
    if (st) return st;
    st = decode_entry(f->path, e, w.p, out, keep16);
    nmf_io_window_unmap(&w);
    return st;
}

nmf_status nmf_io_family_file_map16(const nmf_family_file *f, size_t m, const char *name,
                                    nmf_io_window *w) {
    memset(w, 0, sizeof *w);
    const entry *e = named_entry(f, m, name);
    if (!e) return NMF_ERR_NOT_FOUND;
    const uint16_t one = 1;
    const int little = *(const uint8_t *)&one == 1; /* the stored order is little-endian */
    if (e->desc.pattern.n || e->desc.dtype == NMF_DTYPE_F32 || !little || f->src.fd < 0)
        return NMF_ERR_UNSUPPORTED; /* decoded, widened or not in a file: the caller copies */
    nmf_status st = payload_map(f, e, 1, w); /* CRC checked: every page touched once, now */
    if (st) return st;
    if (!w->map || (uintptr_t)w->p % 64 != 0) { /* not a file mapping; rows the kernels want aligned */
        nmf_io_window_unmap(w);
        return NMF_ERR_UNSUPPORTED;
    }
    return NMF_OK;
}

/* Decodes model m's tensors into s, one mapped payload at a time (how: nmf_io_family_file_load). */
static nmf_status load_model(const nmf_family_file *f, size_t m, int check, nmf_tensor_set *s,
                             int how) {
    uint64_t bytes = 0;
    for (size_t i = f->first[m]; i < f->first[m + 1]; i++) bytes += f->entries[i].size;
    nmf_progress_step step;
    nmf_progress_begin(&step, "load", f->path, bytes);
    for (size_t i = f->first[m]; i < f->first[m + 1]; i++) {
        const entry *e = &f->entries[i];
        const int raw16 = !e->desc.pattern.n && e->desc.dtype != NMF_DTYPE_F32;
        if (((how & NMF_IO_NM_HEADERS) && e->desc.pattern.n) ||
            ((how & NMF_IO_RAW16_HEADERS) && (how & NMF_IO_KEEP16) && raw16)) {
            nmf_status st = nmf_tensors_add_header(s, e->name, e->desc.ndim, e->desc.shape, e->desc.pattern,
                                                   e->desc.transposed, e->desc.dtype, NULL);
            if (st) return st;
            nmf_progress_advance(&step, e->name, e->size);
            continue;
        }
        nmf_io_window w;
        nmf_status st = payload_map(f, &f->entries[i], check, &w);
        if (st) return st;
        st = decode_entry(f->path, &f->entries[i], w.p, s, how & NMF_IO_KEEP16);
        nmf_io_window_unmap(&w);
        if (st) return st;
        nmf_progress_advance(&step, f->entries[i].name, f->entries[i].size);
    }
    return NMF_OK;
}

nmf_status nmf_family_file_load(const nmf_family_file *f, size_t i, nmf_tensor_set *out) {
    return nmf_io_family_file_load(f, i, out, 0);
}

nmf_status nmf_io_family_file_load(const nmf_family_file *f, size_t i, nmf_tensor_set *out, int how) {
    if (out) nmf_tensors_init(out);
    if (!f || !out) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_family_file_load: NULL argument");
    if (i >= f->fam.count)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: model %zu of %zu", f->path, i, f->fam.count);
    nmf_status st = nmf_tensors_copy_meta(&f->fam.models[i].tensors, out);
    if (!st) st = load_model(f, i, 1, out, how);
    if (st) nmf_tensors_free(out);
    return st;
}

/* Every payload checked, in file order, before anything is decoded; then every candidate
 * decoded, or (headers) given as tensor headers without values. */
static nmf_status read_layout(const char *path, int headers, nmf_family *out, nmf_family_layout *layout) {
    nmf_family_init(out);
    if (layout) memset(layout, 0, sizeof *layout);
    nmf_family_file *f;
    nmf_status st = nmf_family_open(path, &f);
    if (st) return st;
    st = nmf_family_file_verify(f);
    for (size_t m = 0; !st && m < f->fam.count; m++) {
        if (!headers) {
            st = load_model(f, m, 0, &f->fam.models[m].tensors, 0);
            continue;
        }
        nmf_tensor_set h;
        st = nmf_io_family_file_headers(f, m, &h);
        if (!st) {
            nmf_tensors_free(&f->fam.models[m].tensors);
            f->fam.models[m].tensors = h;
        }
    }
    if (!st && layout) {
        layout->items = calloc(f->count + 1, sizeof *layout->items);
        if (!layout->items) st = nmf_error(NMF_ERR_NOMEM, "%s: layout", path);
        for (size_t i = 0; !st && i < f->count; i++) {
            const entry *e = &f->entries[i];
            layout->items[i] = (nmf_stored_tensor){e->model, e->tensor_in_model, e->desc.dtype,
                                                   e->desc.pattern, e->offset, e->size,
                                                   e->payload};
        }
        layout->count = f->count;
        layout->payloads = f->payloads;
        layout->version = f->version;
        layout->file_size = f->src.size;
        layout->data_offset = f->data_offset;
        layout->data_size = f->data_size;
        layout->json_size = f->json_size;
    }
    if (st) {
        if (layout) nmf_family_layout_free(layout);
    } else {
        *out = f->fam; /* moved: the file's copy is left empty */
        nmf_family_init(&f->fam);
    }
    nmf_family_close(f);
    return st;
}

nmf_status nmf_family_read_layout(const char *path, nmf_family *out, nmf_family_layout *layout) {
    return read_layout(path, 0, out, layout);
}

nmf_status nmf_io_family_read_headers(const char *path, nmf_family *out, nmf_family_layout *layout) {
    return read_layout(path, 1, out, layout);
}

nmf_status nmf_family_read(const char *path, nmf_family *out) {
    return nmf_family_read_layout(path, out, NULL);
}

void nmf_family_layout_free(nmf_family_layout *layout) {
    if (!layout) return;
    free(layout->items);
    memset(layout, 0, sizeof *layout);
}
