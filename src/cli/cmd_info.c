/* nmformer info: what a model file holds and what it costs. Per model and per tensor: shape,
 * pattern, stored dtype, index-code bits per group, bytes stored vs dense f32; totals; and, for a
 * family, which payloads the candidates share and the bytes that sharing saves. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/desc.h"

static void usage(FILE *out) {
    fprintf(out, "usage: nmformer info FILE [--json]\n"
                 "\n"
                 "Describes a .nmf family, a .safetensors model or a Hugging Face model folder:\n"
                 "for BERT, GPT-2 and LLaMA the family, architecture, layers, heads, kv heads and\n"
                 "vocabulary; per model and per tensor the shape, N:M pattern, stored dtype,\n"
                 "index-code bits per group and bytes stored vs dense f32; totals per candidate;\n"
                 "tensors shared between candidates and the bytes saved.\n"
                 "\n"
                 "options:\n"
                 "  --json   machine-readable output on stdout\n"
                 "  --help   this text\n");
}

/* One row of the report, whatever the file kind. */
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

static void shape_text(const nmf_tensor *t, char *buf, size_t size) {
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && at < size; d++)
        at += (size_t)snprintf(buf + at, size - at, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    if (at < size) snprintf(buf + at, size - at, "]");
}

/* A token model's shape in one line ("" for a ViT, whose config line says it all). */
static void token_summary(const nmf_model_config *c, char *buf, size_t size) {
    buf[0] = '\0';
    if (!nmf_model_is_token(c)) return;
    const nmf_hf_config *h = &c->hf;
    nmf_model_desc d;
    const char *family = c->arch;
    int described = nmf_model_describe(&d, c) == NMF_OK;
    if (described) family = d.family;
    static const char *const heads[NMF_HF_HEAD_COUNT] = {"none (hidden states)", "LM", "classifier"};
    snprintf(buf, size,
             "%s (%s, %s%s%s): %d layers, hidden %d, %d heads, %d kv heads, head_dim %d, "
             "intermediate %d, vocab %d, positions %d, head %s%s",
             family, c->arch, h->architecture[0] ? h->architecture : "no architectures",
             h->prefix[0] ? ", names under " : "", h->prefix, h->num_hidden_layers, h->hidden_size,
             h->num_attention_heads, h->num_key_value_heads, h->head_dim, h->intermediate_size,
             h->vocab_size, h->max_position_embeddings,
             (unsigned)h->head < NMF_HF_HEAD_COUNT ? heads[h->head] : "?",
             h->head == NMF_HF_HEAD_LM ? (h->tie_word_embeddings ? " (tied to the embedding)" : " (untied)")
                                       : "");
    if (described) nmf_model_desc_free(&d);
}

/* The same as a JSON object. */
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

/* have_config: the file carries a valid model config (a safetensors file may have none) */
static int report(const char *path, const char *kind, const nmf_family *fam, int have_config, row *rows,
                  size_t nrows, size_t npayloads, uint64_t file_size, int json) {
    uint64_t payload_bytes = 0, referenced = 0;
    size_t nshared = 0;
    for (size_t i = 0; i < nrows; i++) {
        referenced += rows[i].stored;
        if (rows[i].first) payload_bytes += rows[i].stored;
        if (rows[i].first && rows[i].refs > 1) nshared++;
    }
    char *cfg_json = have_config ? nmf_model_config_to_json(&fam->config) : NULL;
    if (json) {
        nmf_model_desc desc; /* roles and N:M eligibility of the tensors, when the config is known */
        int described = have_config && nmf_model_describe(&desc, &fam->config) == NMF_OK;
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "file", path);
        cJSON_AddStringToObject(root, "format", kind);
        cJSON_AddNumberToObject(root, "file_bytes", (double)file_size);
        cJSON *cfg = cfg_json ? cJSON_Parse(cfg_json) : NULL;
        if (cfg)
            cJSON_AddItemToObject(root, "config", cfg);
        else
            cJSON_AddNullToObject(root, "config");
        if (have_config && nmf_model_is_token(&fam->config))
            cJSON_AddItemToObject(root, "model", token_json(&fam->config));
        cJSON *models = cJSON_AddArrayToObject(root, "models");
        for (size_t m = 0; m < fam->count; m++) {
            cJSON *mo = cJSON_CreateObject();
            cJSON_AddItemToArray(models, mo);
            cJSON_AddStringToObject(mo, "name", fam->models[m].name);
            cJSON *ts = cJSON_AddArrayToObject(mo, "tensors");
            uint64_t st = 0, de = 0;
            for (size_t i = 0; i < nrows; i++) {
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
                const nmf_param *p = described ? nmf_model_desc_find(&desc, r->t->name) : NULL;
                if (p) {
                    const nmf_param_kind *k = nmf_param_kind_of(&desc, p);
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
                for (size_t j = 0; r->refs > 1 && j < nrows; j++)
                    if (j != i && rows[j].payload == r->payload && rows[j].model != m)
                        cJSON_AddItemToArray(with, cJSON_CreateString(fam->models[rows[j].model].name));
                st += r->stored;
                de += r->dense;
            }
            cJSON_AddNumberToObject(mo, "stored_bytes", (double)st);
            cJSON_AddNumberToObject(mo, "dense_f32_bytes", (double)de);
            cJSON_AddNumberToObject(mo, "ratio", de ? (double)st / (double)de : 0.0);
        }
        cJSON_AddNumberToObject(root, "payloads", (double)npayloads);
        cJSON_AddNumberToObject(root, "payload_bytes", (double)payload_bytes);
        cJSON_AddNumberToObject(root, "referenced_bytes", (double)referenced);
        cJSON_AddNumberToObject(root, "bytes_saved_by_sharing", (double)(referenced - payload_bytes));
        cJSON *shared = cJSON_AddArrayToObject(root, "shared");
        for (size_t i = 0; i < nrows; i++) {
            if (rows[i].refs < 2 || !rows[i].first) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddItemToArray(shared, e);
            cJSON_AddStringToObject(e, "tensor", rows[i].t->name);
            cJSON_AddNumberToObject(e, "payload", (double)rows[i].payload);
            cJSON_AddNumberToObject(e, "bytes", (double)rows[i].stored);
            cJSON *ms = cJSON_AddArrayToObject(e, "models");
            for (size_t j = i; j < nrows; j++)
                if (rows[j].payload == rows[i].payload)
                    cJSON_AddItemToArray(ms, cJSON_CreateString(fam->models[rows[j].model].name));
        }
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        if (described) nmf_model_desc_free(&desc);
        free(cfg_json);
        if (!text) return cli_fail("info", path, NMF_ERR_NOMEM);
        printf("%s\n", text);
        free(text);
        return 0;
    }
    printf("%s: %s, %llu bytes, %zu model%s\nconfig: %s\n", path, kind,
           (unsigned long long)file_size, fam->count, fam->count == 1 ? "" : "s",
           cfg_json ? cfg_json : "none (no valid nmformer.config metadata)");
    free(cfg_json);
    char summary[512];
    if (have_config) token_summary(&fam->config, summary, sizeof summary);
    if (have_config && summary[0]) printf("model: %s\n", summary);
    int width = 28; /* the tensor column fits the longest name (HF names are long) */
    for (size_t i = 0; i < nrows; i++) {
        size_t n = strlen(rows[i].t->name);
        if (n > (size_t)width) width = n > 200 ? 200 : (int)n;
    }
    for (size_t m = 0; m < fam->count; m++) {
        printf("\nmodel '%s'\n", fam->models[m].name);
        printf("  %-*s %-14s %-7s %-5s %8s %10s %11s %7s  %s\n", width, "tensor", "shape", "pattern",
               "dtype", "bits/grp", "stored B", "dense f32 B", "ratio", "shared");
        uint64_t st = 0, de = 0;
        for (size_t i = 0; i < nrows; i++) {
            if (rows[i].model != m) continue;
            const row *r = &rows[i];
            char shape[64], pat[16], bits[16];
            shape_text(r->t, shape, sizeof shape);
            nmf_pattern_format(r->pattern, pat, sizeof pat); /* {0,0}: "dense" */
            if (r->pattern.n)
                snprintf(bits, sizeof bits, "%d", nmf_nm_code_bits(r->pattern));
            else
                snprintf(bits, sizeof bits, "-");
            printf("  %-*s %-14s %-7s %-5s %8s %10llu %11llu %7.3f  %s\n", width, r->t->name, shape, pat,
                   nmf_dtype_name(r->dtype), bits, (unsigned long long)r->stored,
                   (unsigned long long)r->dense, r->dense ? (double)r->stored / (double)r->dense : 0.0,
                   r->refs > 1 ? "yes" : "");
            st += r->stored;
            de += r->dense;
        }
        printf("  total: %llu bytes stored vs %llu dense f32 (%.3fx, %.2f bits/weight)\n",
               (unsigned long long)st, (unsigned long long)de, de ? (double)st / (double)de : 0.0,
               de ? 32.0 * (double)st / (double)de : 0.0);
    }
    if (fam->count > 1) { /* the candidates side by side */
        printf("\ncandidates:\n");
        for (size_t m = 0; m < fam->count; m++) {
            uint64_t st = 0, de = 0;
            for (size_t i = 0; i < nrows; i++)
                if (rows[i].model == m) st += rows[i].stored, de += rows[i].dense;
            printf("  %-8s %12llu bytes  %.3fx dense f32  %.2f bits/weight\n", fam->models[m].name,
                   (unsigned long long)st, de ? (double)st / (double)de : 0.0,
                   de ? 32.0 * (double)st / (double)de : 0.0);
        }
    }
    printf("\npayloads: %zu distinct, %llu bytes; the models reference %llu bytes; sharing saves "
           "%llu bytes (%zu payloads shared)\n",
           npayloads, (unsigned long long)payload_bytes, (unsigned long long)referenced,
           (unsigned long long)(referenced - payload_bytes), nshared);
    if (nshared) {
        printf("shared tensors:\n");
        for (size_t i = 0; i < nrows; i++) {
            if (rows[i].refs < 2 || !rows[i].first) continue;
            printf("  %-*s %8llu bytes  models:", width, rows[i].t->name,
                   (unsigned long long)rows[i].stored);
            for (size_t j = i; j < nrows; j++)
                if (rows[j].payload == rows[i].payload)
                    printf(" %s", fam->models[rows[j].model].name);
            printf("\n");
        }
    }
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (cli_positional("info", argv[i], (const char **[]){&path}, 1)) {
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "nmformer info: need FILE (see --help)\n");
        return 2;
    }
    nmf_family fam;
    nmf_family_init(&fam);
    row *rows = NULL;
    size_t nrows = 0, npayloads = 0;
    uint64_t file_size = 0;
    const char *kind;
    nmf_status st;
    nmf_family_layout lay = {0};
    nmf_dtype *dtypes = NULL;
    int have_config = 1; /* an .nmf file always has a validated one */
    cli_file_kind k = cli_file_kind_of(path);
    if (k == CLI_FILE_NMF) {
        kind = "nmf";
        st = nmf_family_read_layout(path, &fam, &lay);
        if (st) return cli_fail("info", path, st);
        rows = calloc(lay.count + 1, sizeof *rows);
        if (!rows) {
            nmf_family_free(&fam);
            nmf_family_layout_free(&lay);
            return cli_fail("info", path, NMF_ERR_NOMEM);
        }
        for (size_t i = 0; i < lay.count; i++) {
            const nmf_stored_tensor *s = &lay.items[i];
            const nmf_tensor *t = &fam.models[s->model].tensors.items[s->tensor];
            rows[i] = (row){s->model, t, s->dtype, s->pattern, s->size, t->numel * 4, s->payload, 0, 0};
        }
        nrows = lay.count;
        npayloads = lay.payloads;
        file_size = lay.file_size;
    } else if (k == CLI_FILE_SAFETENSORS) {
        kind = "safetensors";
        nmf_tensor_set set;
        st = nmf_safetensors_read_ex(path, &set, &dtypes);
        if (st) return cli_fail("info", path, st);
        const char *cj = nmf_tensors_get_meta(&set, NMF_CONFIG_META_KEY);
        have_config = cj && nmf_model_config_from_json(cj, &fam.config) == NMF_OK &&
                      nmf_model_config_validate(&fam.config) == NMF_OK;
        st = nmf_family_add(&fam, "dense", &set);
        if (st) {
            nmf_tensors_free(&set);
            free(dtypes);
            return cli_fail("info", path, st);
        }
        const nmf_tensor_set *s = &fam.models[0].tensors;
        rows = calloc(s->count + 1, sizeof *rows);
        if (!rows) {
            nmf_family_free(&fam);
            free(dtypes);
            return cli_fail("info", path, NMF_ERR_NOMEM);
        }
        for (size_t i = 0; i < s->count; i++) {
            const nmf_tensor *t = &s->items[i];
            rows[i] = (row){0, t, dtypes[i], (nmf_pattern){0, 0},
                            t->numel * nmf_dtype_size(dtypes[i]), t->numel * 4, i, 0, 0};
            file_size += rows[i].stored;
        }
        nrows = s->count;
        npayloads = s->count;
        FILE *fp = fopen(path, "rb");
        if (fp && fseek(fp, 0, SEEK_END) == 0) file_size = (uint64_t)ftell(fp);
        if (fp) fclose(fp);
    } else if (k == CLI_FILE_DIR) { /* a Hugging Face model folder: one model */
        kind = "hf folder";
        nmf_tensor_set set;
        st = nmf_load_model(path, NULL, NULL, &fam.config, &set);
        if (st) return cli_fail("info", path, st);
        st = nmf_family_add(&fam, "dense", &set);
        if (st) {
            nmf_tensors_free(&set);
            return cli_fail("info", path, st);
        }
        const nmf_tensor_set *s = &fam.models[0].tensors;
        rows = calloc(s->count + 1, sizeof *rows);
        if (!rows) {
            nmf_family_free(&fam);
            return cli_fail("info", path, NMF_ERR_NOMEM);
        }
        for (size_t i = 0; i < s->count; i++) {
            const nmf_tensor *t = &s->items[i];
            nmf_dtype dt = t->stored_dtype;
            rows[i] = (row){0, t, dt, (nmf_pattern){0, 0}, t->numel * nmf_dtype_size(dt),
                            t->numel * 4, i, 0, 0};
            file_size += rows[i].stored; /* the weights' bytes (without headers) */
        }
        nrows = s->count;
        npayloads = s->count;
    } else {
        fprintf(stderr, "nmformer info: %s: unknown file type (want .nmf, .safetensors or a model "
                        "folder)\n", path);
        return 2;
    }
    /* references per payload, and which row is its first: O(rows) even for hostile files */
    size_t *refs = calloc(npayloads + 1, sizeof *refs);
    if (!refs) {
        free(rows);
        free(dtypes);
        nmf_family_layout_free(&lay);
        nmf_family_free(&fam);
        return cli_fail("info", path, NMF_ERR_NOMEM);
    }
    for (size_t i = 0; i < nrows; i++) rows[i].first = refs[rows[i].payload]++ == 0;
    for (size_t i = 0; i < nrows; i++) rows[i].refs = refs[rows[i].payload];
    free(refs);
    int rc = report(path, kind, &fam, have_config, rows, nrows, npayloads, file_size, json);
    free(rows);
    free(dtypes);
    nmf_family_layout_free(&lay);
    nmf_family_free(&fam);
    return rc;
}
