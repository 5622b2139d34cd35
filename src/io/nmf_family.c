/* The in-memory family (candidates of one architecture) and nmf_load_model, the one entry point
 * that `run`, `eval` and `sim` use to get a model from .nmf or .safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"
#include "io/nmf_format.h"

void nmf_family_init(nmf_family *f) {
    memset(f, 0, sizeof *f);
    nmf_model_config_default(&f->config);
}

void nmf_family_free(nmf_family *f) {
    for (size_t i = 0; i < f->count; i++) nmf_tensors_free(&f->models[i].tensors);
    free(f->models);
    memset(f, 0, sizeof *f);
}

nmf_candidate *nmf_family_find(const nmf_family *f, const char *name) {
    for (size_t i = 0; i < f->count; i++)
        if (!strcmp(f->models[i].name, name)) return &f->models[i];
    return NULL;
}

nmf_status nmf_family_add(nmf_family *f, const char *name, nmf_tensor_set *tensors) {
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len >= sizeof f->models[0].name)
        return nmf_error(NMF_ERR_INVALID_ARG, "model name '%s' must be 1..%zu bytes",
                         name ? name : "", sizeof f->models[0].name - 1);
    if (nmf_family_find(f, name))
        return nmf_error(NMF_ERR_INVALID_ARG, "the family already has a model named '%s'", name);
    if (f->count >= NMF_FAMILY_MAX_MODELS)
        return nmf_error(NMF_ERR_INVALID_ARG, "a family holds at most %d models",
                         NMF_FAMILY_MAX_MODELS);
    nmf_candidate *m = realloc(f->models, (f->count + 1) * sizeof *m);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "family table");
    f->models = m;
    nmf_candidate *c = &m[f->count++];
    memset(c, 0, sizeof *c);
    memcpy(c->name, name, len + 1);
    c->tensors = *tensors;
    nmf_tensors_init(tensors);
    return NMF_OK;
}

nmf_status nmf_payload_size(const nmf_payload_desc *d, size_t *values_bytes, size_t *codes_bytes) {
    size_t es = nmf_dtype_size(d->dtype);
    if (!es) return nmf_error(NMF_ERR_INVALID_ARG, "bad dtype");
    if (d->pattern.n == 0) {
        *codes_bytes = 0;
        if (nmf_mul_overflow(d->numel, es, values_bytes))
            return nmf_error(NMF_ERR_FORMAT, "tensor size overflows");
        return NMF_OK;
    }
    if (d->ndim != 2) return nmf_error(NMF_ERR_FORMAT, "an N:M tensor must be 2-D [out, in]");
    size_t rows = (size_t)d->shape[d->transposed ? 1 : 0], groups, slots;
    size_t cols = (size_t)d->shape[d->transposed ? 0 : 1];
    nmf_status st = nmf_nm_groups(cols, d->pattern, 1, &groups);
    if (st) return st;
    size_t row_bytes = nmf_nm_code_row_bytes(groups, d->pattern);
    if (nmf_mul_overflow(rows, groups, &slots) || nmf_mul_overflow(slots, (size_t)d->pattern.n, &slots) ||
        nmf_mul_overflow(slots, es, values_bytes) || nmf_mul_overflow(rows, row_bytes, codes_bytes))
        return nmf_error(NMF_ERR_FORMAT, "N:M tensor size overflows");
    return NMF_OK;
}

/* "dense, 4:8, 2:8" into buf. */
static void list_names(const nmf_family_file *f, char *buf, size_t size) {
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nmf_family_file_count(f) && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? ", " : "",
                               nmf_family_file_name(f, i));
}

nmf_status nmf_io_family_file_pick(const nmf_family_file *fam, const char *path, const char *name,
                                   size_t *pick) {
    size_t count = nmf_family_file_count(fam);
    char names[512];
    list_names(fam, names, sizeof names);
    if (name) {
        for (size_t i = 0; i < count; i++)
            if (!strcmp(nmf_family_file_name(fam, i), name)) {
                *pick = i;
                return NMF_OK;
            }
        return nmf_error(NMF_ERR_NOT_FOUND, "%s: no model '%s' (available: %s)", path, name, names);
    }
    if (count == 1) {
        *pick = 0;
        return NMF_OK;
    }
    return nmf_error(NMF_ERR_NOT_FOUND, "%s holds %zu models, pick one with --model (%s)", path,
                     count, names);
}

nmf_status nmf_load_model(const char *path, const char *name, const nmf_model_config *fallback_config,
                          nmf_model_config *config, nmf_tensor_set *tensors) {
    return nmf_load_model_with(path, name, fallback_config, NULL, config, tensors);
}

static nmf_status load_model(const char *path, const char *name,
                             const nmf_model_config *fallback_config,
                             const nmf_config_overrides *overrides, nmf_model_config *config,
                             nmf_tensor_set *tensors, int keep16);

nmf_status nmf_load_model_with(const char *path, const char *name,
                               const nmf_model_config *fallback_config,
                               const nmf_config_overrides *overrides, nmf_model_config *config,
                               nmf_tensor_set *tensors) {
    return load_model(path, name, fallback_config, overrides, config, tensors, 0);
}

nmf_status nmf_load_model_keep16(const char *path, const char *name,
                                 const nmf_model_config *fallback_config,
                                 const nmf_config_overrides *overrides, nmf_model_config *config,
                                 nmf_tensor_set *tensors) {
    return load_model(path, name, fallback_config, overrides, config, tensors, 1);
}

static nmf_status load_model(const char *path, const char *name,
                             const nmf_model_config *fallback_config,
                             const nmf_config_overrides *overrides, nmf_model_config *config,
                             nmf_tensor_set *tensors, int keep16) {
    nmf_tensors_init(tensors);
    nmf_status st;
    int from_file = 1; /* the config is the file's own */
    nmf_file_kind kind;
    if ((st = nmf_file_kind_detect(path, &kind))) return st;
    if (kind == NMF_FILE_HF_FOLDER) {
        if (name && strcmp(name, "dense") != 0)
            return nmf_error(NMF_ERR_NOT_FOUND,
                             "%s: a model folder holds one model ('dense'), not '%s'", path, name);
        nmf_hf_config hf;
        st = nmf_hf_config_read(path, &hf);
        if (!st) st = nmf_io_hf_weights_read(path, tensors, NULL, keep16);
        if (!st && (st = nmf_model_config_from_hf(config, &hf, tensors)))
            st = nmf_error_context(st, "%s", path);
    } else if (kind == NMF_FILE_NMF) {
        nmf_family_file *fam; /* mapped: only the chosen candidate is read and decoded */
        st = nmf_family_open(path, &fam);
        if (st) return st;
        size_t pick;
        st = nmf_io_family_file_pick(fam, path, name, &pick);
        if (!st) {
            *config = *nmf_family_file_config(fam);
            st = nmf_io_family_file_load(fam, pick, tensors, keep16 ? NMF_IO_KEEP16 : 0);
        }
        nmf_family_close(fam);
        if (st) return st;
    } else { /* NMF_FILE_SAFETENSORS */
        if (name && strcmp(name, "dense") != 0)
            return nmf_error(NMF_ERR_NOT_FOUND,
                             "%s: a safetensors file holds one model ('dense'), not '%s'", path,
                             name);
        st = nmf_io_safetensors_read(path, tensors, NULL, keep16);
        if (st) return st;
        st = nmf_io_safetensors_config(path, tensors, fallback_config, overrides, config, &from_file);
    }
    if (!st) st = nmf_io_model_config_finish(path, from_file, overrides, config, tensors);
    if (st) nmf_tensors_free(tensors);
    return st;
}

nmf_status nmf_io_safetensors_config(const char *path, const nmf_tensor_set *meta,
                                     const nmf_model_config *fallback_config,
                                     const nmf_config_overrides *overrides, nmf_model_config *config,
                                     int *from_file) {
    nmf_status st = NMF_OK;
    *from_file = 1;
    const char *json = nmf_tensors_get_meta(meta, NMF_CONFIG_META_KEY);
    if (json) {
        nmf_model_config_default(config);
        st = nmf_model_config_from_json(json, config);
        if (st) {
            st = nmf_error_context(st, "%s: metadata %s", path, NMF_CONFIG_META_KEY);
        }
    } else if (fallback_config || nmf_config_overrides_any(overrides)) {
        if (fallback_config) *config = *fallback_config;
        else nmf_model_config_default(config);
        *from_file = 0;
    } else {
        st = nmf_error(NMF_ERR_NOT_FOUND, "%s: no %s metadata; give the model config "
                       "(--img-size, --patch, --dim, ...)", path, NMF_CONFIG_META_KEY);
    }
    return st;
}

nmf_status nmf_io_model_config_finish(const char *path, int from_file,
                                      const nmf_config_overrides *overrides, nmf_model_config *config,
                                      nmf_tensor_set *tensors) {
    nmf_status st = NMF_OK;
    if (nmf_model_is_token(config) && nmf_config_overrides_any(overrides))
        st = nmf_error(NMF_ERR_INVALID_ARG, "%s: a %s model's config comes from its config.json; "
                       "the ViT flags (--dim, --heads, ...) do not apply", path, config->arch);
    if (!st && (st = nmf_model_config_override(config, overrides, from_file)))
        st = nmf_error_context(st, "%s", path);
    if (!st) st = nmf_model_config_validate(config);
    if (!st) {
        st = nmf_model_check_tensors(config, tensors);
        if (st) {
            st = nmf_error_context(st, "%s", path);
        }
    }
    if (!st) { /* the config used travels with the tensors */
        char *json = nmf_model_config_to_json(config);
        st = json ? nmf_tensors_set_meta(tensors, NMF_CONFIG_META_KEY, json)
                  : nmf_error(NMF_ERR_NOMEM, "config");
        free(json);
    }
    return st;
}
