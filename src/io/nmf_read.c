/* Reading the .nmf family container (layout in docs/FORMAT.md).
 *
 * The file is hostile until proven otherwise. Order of checks: magic, version, sizes in the fixed
 * header against the real file size, header CRC (covers the JSON), zero padding, JSON schema,
 * every tensor entry (dtype, shape, pattern, offset alignment and bounds, size implied by the
 * descriptor), the payload map (distinct payloads tile the data section in 64-byte steps, shared
 * payloads agree on everything), payload CRCs, and finally the decoded positions (ranks in range,
 * zero padding bits, ascending positions, zero padding values). Only then is anything returned. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
                               nmf_tensor_set *s) {
    nmf_status st;
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

nmf_status nmf_family_read_layout(const char *path, nmf_family *out, nmf_family_layout *layout) {
    nmf_family_init(out);
    if (layout) memset(layout, 0, sizeof *layout);
    uint8_t *buf = NULL;
    size_t size = 0;
    cJSON *root = NULL;
    entry *entries = NULL;
    entry **order = NULL;
    nmf_status st = nmf_read_file(path, NMF_FILE_MAX_SIZE, &buf, &size);
    if (st) return st;
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
    const uint8_t *data = buf + data_offset;

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
    st = nmf_model_config_from_json(cfg_text, &out->config);
    free(cfg_text);
    if (!st) st = nmf_model_config_validate(&out->config);
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
        st = nmf_family_add(out, name->valuestring, &empty);
        if (st) {
            st = nmf_error_context(NMF_ERR_FORMAT, "%s", path);
            goto fail;
        }
        nmf_candidate *c = &out->models[mi];
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
                               path, en->name, out->models[en->model].name, order[i - 1]->name,
                               out->models[order[i - 1]->model].name);
                goto fail;
            }
            en->payload = order[i - 1]->payload;
            continue;
        }
        if (en->offset < at) {
            st = nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s' (model '%s') overlaps the payload before it",
                           path, en->name, out->models[en->model].name);
            goto fail;
        }
        if (en->offset > at) {
            st = nmf_error(NMF_ERR_FORMAT,
                           "%s: %llu unaccounted bytes before tensor '%s' (model '%s')", path,
                           (unsigned long long)(en->offset - at), en->name,
                           out->models[en->model].name);
            goto fail;
        }
        for (uint64_t b = en->offset + en->size; b < nmf_align64(en->offset + en->size); b++)
            if (b < data_size && data[b]) {
                st = nmf_error(NMF_ERR_FORMAT, "%s: non-zero padding after tensor '%s'", path,
                               en->name);
                goto fail;
            }
        if (nmf_crc32_update(0, data + en->offset, (size_t)en->size) != en->crc &&
            !nmf_io_fuzz_skip_crc) {
            st = nmf_error(NMF_ERR_CHECKSUM, "%s: tensor '%s' (model '%s'): CRC mismatch (data corrupt)",
                           path, en->name, out->models[en->model].name);
            goto fail;
        }
        en->payload = npayloads++;
        at = nmf_align64(en->offset + en->size);
    }
    if (at != data_size) {
        st = nmf_error(NMF_ERR_FORMAT, "%s: %llu bytes after the last payload belong to no tensor",
                       path, (unsigned long long)(data_size - at));
        goto fail;
    }

    /* Everything checked: decode. */
    for (size_t i = 0; i < ne; i++) {
        st = decode_entry(path, &entries[i], data + entries[i].offset,
                          &out->models[entries[i].model].tensors);
        if (st) goto fail;
    }
    if (layout) {
        layout->items = calloc(ne + 1, sizeof *layout->items);
        if (!layout->items) {
            st = nmf_error(NMF_ERR_NOMEM, "%s: layout", path);
            goto fail;
        }
        for (size_t i = 0; i < ne; i++)
            layout->items[i] = (nmf_stored_tensor){entries[i].model, entries[i].tensor_in_model,
                                                   entries[i].desc.dtype, entries[i].desc.pattern,
                                                   entries[i].offset, entries[i].size,
                                                   entries[i].payload};
        layout->count = ne;
        layout->payloads = npayloads;
        layout->version = version;
        layout->file_size = size;
        layout->data_offset = data_offset;
        layout->data_size = data_size;
        layout->json_size = json_size;
    }
    cJSON_Delete(root);
    free(entries);
    free(order);
    free(buf);
    return NMF_OK;
fail:
    cJSON_Delete(root);
    free(entries);
    free(order);
    free(buf);
    nmf_family_free(out);
    if (layout) nmf_family_layout_free(layout);
    return st;
}

nmf_status nmf_family_read(const char *path, nmf_family *out) {
    return nmf_family_read_layout(path, out, NULL);
}

void nmf_family_layout_free(nmf_family_layout *layout) {
    if (!layout) return;
    free(layout->items);
    memset(layout, 0, sizeof *layout);
}
