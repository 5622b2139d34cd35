/* nmf_file_info_json: what a model file holds and what it costs, as one JSON document (the
 * `nmformer info --json` output, also what Python's nmformer.info() returns). Per model and per
 * tensor: shape, pattern, stored dtype, index-code bits per group, bytes stored vs dense f32,
 * role and N:M eligibility; totals; which payloads the candidates share and the bytes saved. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor_internal.h"
#include "io/io_internal.h"
#include "io/model_stream.h"
#include "nmformer/desc.h"
#include "nmformer/io.h"

/* One stored tensor, whatever the file kind. */
typedef struct {
    size_t model;
    const nmf_tensor *t;
    nmf_dtype dtype;
    nmf_pattern pattern;
    uint64_t stored, dense; /* bytes */
    size_t payload;         /* distinct payload id */
    size_t refs;            /* how many entries use this payload */
    int first;              /* 1 on the first entry of its payload */
} row;

/* What the readers say about a file: its models and where each tensor is stored. */
typedef struct {
    const char *kind; /* "nmf", "safetensors", "hf folder" */
    nmf_family fam;
    int have_config; /* the file carries a valid model config (a safetensors file may have none) */
    row *rows;
    size_t nrows, npayloads;
    uint64_t file_size;
} file_rows;

static void file_rows_free(file_rows *f) {
    free(f->rows);
    nmf_family_free(&f->fam);
}

/* A one-model file (safetensors or model folder) as "dense", one payload per tensor. dtypes:
 * the stored dtype of each tensor (NULL: the tensors' own stored_dtype). */
static nmf_status rows_of_one_model(file_rows *f, nmf_tensor_set *set, const nmf_dtype *dtypes) {
    nmf_status st = nmf_family_add(&f->fam, "dense", set);
    if (st) {
        nmf_tensors_free(set);
        return st;
    }
    const nmf_tensor_set *s = &f->fam.models[0].tensors;
    if (!(f->rows = calloc(s->count + 1, sizeof *f->rows))) return nmf_error(NMF_ERR_NOMEM, "info rows");
    for (size_t i = 0; i < s->count; i++) {
        const nmf_tensor *t = &s->items[i];
        nmf_dtype dt = dtypes ? dtypes[i] : t->stored_dtype;
        f->rows[i] = (row){0, t, dt, (nmf_pattern){0, 0}, t->numel * nmf_dtype_size(dt), t->numel * 4, i, 0, 0};
        f->file_size += f->rows[i].stored; /* the weights' bytes, for a folder (no one file) */
    }
    f->nrows = f->npayloads = s->count;
    return NMF_OK;
}

static nmf_status read_rows(const char *path, file_rows *f) {
    nmf_status st;
    nmf_file_kind kind;
    f->have_config = 1; /* an .nmf file and a model folder always have a validated one */
    if ((st = nmf_file_kind_detect(path, &kind))) return st;
    if (kind == NMF_FILE_HF_FOLDER) {
        f->kind = "hf folder";
        nmf_model_stream *ms; /* headers only: the loader's config and checks, no values */
        if ((st = nmf_model_stream_open(path, NULL, NULL, &ms))) return st;
        f->fam.config = *nmf_model_stream_config(ms);
        const nmf_tensor_set *h = nmf_model_stream_headers(ms);
        nmf_tensor_set set;
        nmf_tensors_init(&set);
        st = nmf_tensors_copy_meta(h, &set);
        for (size_t i = 0; !st && i < h->count; i++)
            st = nmf_tensors_add_header(&set, h->items[i].name, h->items[i].ndim, h->items[i].shape,
                                        (nmf_pattern){0, 0}, 0, h->items[i].stored_dtype, NULL);
        nmf_model_stream_close(ms);
        if (st) {
            nmf_tensors_free(&set);
            return st;
        }
        return rows_of_one_model(f, &set, NULL);
    }
    if (kind == NMF_FILE_NMF) {
        f->kind = "nmf";
        nmf_family_layout lay;
        /* every payload checked, none decoded: a family of any size costs its table */
        if ((st = nmf_io_family_read_headers(path, &f->fam, &lay))) return st;
        if (!(f->rows = calloc(lay.count + 1, sizeof *f->rows))) {
            nmf_family_layout_free(&lay);
            return nmf_error(NMF_ERR_NOMEM, "info rows");
        }
        for (size_t i = 0; i < lay.count; i++) {
            const nmf_stored_tensor *s = &lay.items[i];
            const nmf_tensor *t = &f->fam.models[s->model].tensors.items[s->tensor];
            f->rows[i] = (row){s->model, t, s->dtype, s->pattern, s->size, t->numel * 4, s->payload, 0, 0};
        }
        f->nrows = lay.count;
        f->npayloads = lay.payloads;
        f->file_size = lay.file_size;
        nmf_family_layout_free(&lay);
        return NMF_OK;
    }
    /* NMF_FILE_SAFETENSORS */
    f->kind = "safetensors";
    nmf_tensor_set set;
    nmf_dtype *dtypes = NULL;
    if ((st = nmf_safetensors_read_ex(path, &set, &dtypes))) return st;
    const char *cj = nmf_tensors_get_meta(&set, NMF_CONFIG_META_KEY);
    f->have_config = cj && nmf_model_config_from_json(cj, &f->fam.config) == NMF_OK &&
                     nmf_model_config_validate(&f->fam.config) == NMF_OK;
    nmf_clear_error(); /* no valid config is reported as null, not as an error */
    st = rows_of_one_model(f, &set, dtypes);
    free(dtypes);
    if (st) return st;
    FILE *fp = fopen(path, "rb");
    if (fp && fseek(fp, 0, SEEK_END) == 0) f->file_size = (uint64_t)ftell(fp);
    if (fp) fclose(fp);
    return NMF_OK;
}

/* A token model's shape (family, architecture, layers, heads, ...) as a JSON object. */
static cJSON *token_json(const nmf_model_config *c) {
    const nmf_hf_config *h = &c->hf;
    cJSON *o = cJSON_CreateObject();
    nmf_model_desc d;
    if (nmf_model_describe(&d, c) == NMF_OK) {
        cJSON_AddStringToObject(o, "family", d.family);
        nmf_model_desc_free(&d);
    }
    static const char *const heads[NMF_HF_HEAD_COUNT] = {"none", "lm", "classifier"};
    cJSON_AddStringToObject(o, "arch", c->arch);
    cJSON_AddStringToObject(o, "architecture", h->architecture);
    cJSON_AddStringToObject(o, "prefix", h->prefix);
    cJSON_AddNumberToObject(o, "layers", h->num_hidden_layers);
    cJSON_AddNumberToObject(o, "hidden", h->hidden_size);
    cJSON_AddNumberToObject(o, "heads", h->num_attention_heads);
    cJSON_AddNumberToObject(o, "kv_heads", h->num_key_value_heads);
    cJSON_AddNumberToObject(o, "head_dim", h->head_dim);
    cJSON_AddNumberToObject(o, "intermediate", h->intermediate_size);
    cJSON_AddNumberToObject(o, "vocab", h->vocab_size);
    cJSON_AddNumberToObject(o, "positions", h->max_position_embeddings);
    cJSON_AddStringToObject(o, "head", (unsigned)h->head < NMF_HF_HEAD_COUNT ? heads[h->head] : "?");
    cJSON_AddBoolToObject(o, "tied", h->tie_word_embeddings);
    return o;
}

/* One model's tensors, with their totals, into mo. */
static void model_json(cJSON *mo, const file_rows *f, size_t m, const nmf_model_desc *desc) {
    const row *rows = f->rows;
    cJSON *ts = cJSON_AddArrayToObject(mo, "tensors");
    uint64_t st = 0, de = 0;
    for (size_t i = 0; i < f->nrows; i++) {
        if (rows[i].model != m) continue;
        const row *r = &rows[i];
        char pat[16];
        nmf_pattern_format(r->pattern, pat, sizeof pat); /* {0,0}: "dense" */
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(ts, e);
        cJSON_AddStringToObject(e, "name", r->t->name);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < r->t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)r->t->shape[d]));
        cJSON_AddStringToObject(e, "pattern", pat);
        cJSON_AddStringToObject(e, "dtype", nmf_dtype_name(r->dtype));
        const nmf_param *p = desc ? nmf_model_desc_find(desc, r->t->name) : NULL;
        if (p) {
            const nmf_param_kind *k = nmf_param_kind_of(desc, p);
            cJSON_AddStringToObject(e, "role", nmf_param_role_name(k->role));
            cJSON_AddBoolToObject(e, "nm_eligible", k->nm);
        } else {
            cJSON_AddNullToObject(e, "role");
            cJSON_AddNullToObject(e, "nm_eligible");
        }
        if (r->pattern.n)
            cJSON_AddNumberToObject(e, "code_bits_per_group", nmf_nm_code_bits(r->pattern));
        else
            cJSON_AddNullToObject(e, "code_bits_per_group");
        cJSON_AddNumberToObject(e, "stored_bytes", (double)r->stored);
        cJSON_AddNumberToObject(e, "dense_f32_bytes", (double)r->dense);
        cJSON_AddNumberToObject(e, "payload", (double)r->payload);
        cJSON *with = cJSON_AddArrayToObject(e, "shared_with");
        for (size_t j = 0; r->refs > 1 && j < f->nrows; j++)
            if (j != i && rows[j].payload == r->payload && rows[j].model != m)
                cJSON_AddItemToArray(with, cJSON_CreateString(f->fam.models[rows[j].model].name));
        st += r->stored;
        de += r->dense;
    }
    cJSON_AddNumberToObject(mo, "stored_bytes", (double)st);
    cJSON_AddNumberToObject(mo, "dense_f32_bytes", (double)de);
    cJSON_AddNumberToObject(mo, "ratio", de ? (double)st / (double)de : 0.0);
}

static cJSON *info_json(const char *path, const file_rows *f) {
    const nmf_family *fam = &f->fam;
    const row *rows = f->rows;
    uint64_t payload_bytes = 0, referenced = 0;
    for (size_t i = 0; i < f->nrows; i++) {
        referenced += rows[i].stored;
        if (rows[i].first) payload_bytes += rows[i].stored;
    }
    nmf_model_desc desc; /* roles and N:M eligibility of the tensors, when the config is known */
    int described = f->have_config && nmf_model_describe(&desc, &fam->config) == NMF_OK;
    nmf_clear_error();
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddStringToObject(root, "format", f->kind);
    cJSON_AddNumberToObject(root, "file_bytes", (double)f->file_size);
    char *cfg_json = f->have_config ? nmf_model_config_to_json(&fam->config) : NULL;
    cJSON *cfg = cfg_json ? cJSON_Parse(cfg_json) : NULL;
    free(cfg_json);
    if (cfg)
        cJSON_AddItemToObject(root, "config", cfg);
    else
        cJSON_AddNullToObject(root, "config");
    if (f->have_config && nmf_model_is_token(&fam->config))
        cJSON_AddItemToObject(root, "model", token_json(&fam->config));
    cJSON *models = cJSON_AddArrayToObject(root, "models");
    for (size_t m = 0; m < fam->count; m++) {
        cJSON *mo = cJSON_CreateObject();
        cJSON_AddItemToArray(models, mo);
        cJSON_AddStringToObject(mo, "name", fam->models[m].name);
        /* the default precision as stored (a bad value is shown, and refused when loaded) */
        const char *prec = nmf_tensors_get_meta(&fam->models[m].tensors, NMF_META_PRECISION);
        if (prec) cJSON_AddStringToObject(mo, "default_precision", prec);
        model_json(mo, f, m, described ? &desc : NULL);
    }
    if (described) nmf_model_desc_free(&desc);
    cJSON_AddNumberToObject(root, "payloads", (double)f->npayloads);
    cJSON_AddNumberToObject(root, "payload_bytes", (double)payload_bytes);
    cJSON_AddNumberToObject(root, "referenced_bytes", (double)referenced);
    cJSON_AddNumberToObject(root, "bytes_saved_by_sharing", (double)(referenced - payload_bytes));
    cJSON *shared = cJSON_AddArrayToObject(root, "shared");
    for (size_t i = 0; i < f->nrows; i++) {
        if (rows[i].refs < 2 || !rows[i].first) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(shared, e);
        cJSON_AddStringToObject(e, "tensor", rows[i].t->name);
        cJSON_AddNumberToObject(e, "payload", (double)rows[i].payload);
        cJSON_AddNumberToObject(e, "bytes", (double)rows[i].stored);
        cJSON *ms = cJSON_AddArrayToObject(e, "models");
        for (size_t j = i; j < f->nrows; j++)
            if (rows[j].payload == rows[i].payload)
                cJSON_AddItemToArray(ms, cJSON_CreateString(fam->models[rows[j].model].name));
    }
    return root;
}

nmf_status nmf_file_info_json(const char *path, char **json) {
    if (!path || !json) return nmf_error(NMF_ERR_INVALID_ARG, "nmf_file_info_json: NULL argument");
    *json = NULL;
    file_rows f;
    memset(&f, 0, sizeof f);
    nmf_family_init(&f.fam);
    nmf_status st = read_rows(path, &f);
    if (st) {
        file_rows_free(&f);
        return st;
    }
    /* references per payload, and which row is its first: O(rows) even for hostile files (the
     * readers check payload < npayloads) */
    size_t *refs = calloc(f.npayloads + 1, sizeof *refs);
    if (!refs) {
        file_rows_free(&f);
        return nmf_error(NMF_ERR_NOMEM, "info payload counts");
    }
    for (size_t i = 0; i < f.nrows; i++) f.rows[i].first = refs[f.rows[i].payload]++ == 0;
    for (size_t i = 0; i < f.nrows; i++) f.rows[i].refs = refs[f.rows[i].payload];
    free(refs);
    cJSON *root = info_json(path, &f);
    file_rows_free(&f);
    *json = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return *json ? NMF_OK : nmf_error(NMF_ERR_NOMEM, "info JSON");
}
