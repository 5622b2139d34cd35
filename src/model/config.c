/* Model configuration: validation and JSON (its tensors: the model description, desc.c). A ViT's
 * config is its own fields; a token family's is Hugging Face's config.json (src/io/hf_config.c)
 * plus how its checkpoint names tensors (token_config.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nmformer/config.h"
#include "nmformer/io.h"

/* A token family's config, as a caller of the library may have filled it by hand (one read
 * from config.json passed nmf_hf_config_parse's finer checks already). */
static nmf_status validate_token(const nmf_model_config *c) {
#define BAD(...) return nmf_error(NMF_ERR_INVALID_ARG, "model config: " __VA_ARGS__)
    const nmf_hf_config *h = &c->hf;
    if (strcmp(c->arch, nmf_hf_model_type_name(h->model_type)))
        BAD("arch '%s' but model_type '%s'", c->arch, nmf_hf_model_type_name(h->model_type));
    if (h->hidden_size < 1 || h->num_hidden_layers < 1 || h->num_attention_heads < 1 ||
        h->intermediate_size < 1 || h->vocab_size < 1 || h->max_position_embeddings < 1)
        BAD("sizes must be >= 1 (hidden %d, layers %d, heads %d, intermediate %d, vocab %d, "
            "positions %d)", h->hidden_size, h->num_hidden_layers, h->num_attention_heads,
            h->intermediate_size, h->vocab_size, h->max_position_embeddings);
    if (h->hidden_size % h->num_attention_heads || h->head_dim != h->hidden_size / h->num_attention_heads)
        BAD("heads %d must divide hidden %d (head_dim %d)", h->num_attention_heads, h->hidden_size,
            h->head_dim);
    if (h->num_key_value_heads < 1 || h->num_attention_heads % h->num_key_value_heads)
        BAD("kv heads %d must divide heads %d", h->num_key_value_heads, h->num_attention_heads);
    if ((unsigned)h->head >= NMF_HF_HEAD_COUNT || (unsigned)h->hidden_act >= NMF_HF_ACT_COUNT)
        BAD("head / activation out of range");
    if (h->model_type == NMF_HF_BERT && h->type_vocab_size < 1) BAD("type_vocab_size < 1");
    if (h->head == NMF_HF_HEAD_CLASSIFIER && h->num_labels < 1) BAD("num_labels < 1");
    if (!(h->norm_eps > 0.0f) || !isfinite(h->norm_eps)) BAD("norm eps %g", (double)h->norm_eps);
    if (h->model_type == NMF_HF_LLAMA && (h->head_dim % 2 || !(h->rope_theta > 1.0)))
        BAD("LLaMA needs an even head_dim and rope_theta > 1");
    if (memchr(h->prefix, 0, sizeof h->prefix) == NULL) BAD("prefix not terminated");
#undef BAD
    return NMF_OK;
}

nmf_status nmf_model_config_validate(const nmf_model_config *c) {
#define BAD(...) return nmf_error(NMF_ERR_INVALID_ARG, "model config: " __VA_ARGS__)
    if (nmf_model_is_token(c)) return validate_token(c);
    if (strcmp(c->arch, "vit") != 0)
        BAD("arch '%s' not supported (vit, bert, gpt2, llama)", c->arch);
    if (c->img_size < 1 || c->img_size > 4096) BAD("img_size %d out of range 1..4096", c->img_size);
    if (c->patch < 1 || c->patch > c->img_size) BAD("patch %d out of range 1..img_size", c->patch);
    if (c->img_size % c->patch) BAD("img_size %d not a multiple of patch %d", c->img_size, c->patch);
    if (c->in_chans < 1 || c->in_chans > 64) BAD("in_chans %d out of range 1..64", c->in_chans);
    if (c->dim < 1 || c->dim > 16384) BAD("dim %d out of range 1..16384", c->dim);
    if (c->depth < 1 || c->depth > 256) BAD("depth %d out of range 1..256", c->depth);
    if (c->heads < 1 || c->dim % c->heads) BAD("heads %d must divide dim %d", c->heads, c->dim);
    if (!(c->mlp_ratio > 0.0f) || c->mlp_ratio > 64.0f) BAD("mlp_ratio %g out of range", c->mlp_ratio);
    if (nmf_vit_hidden(c) < 1) /* a zero-width MLP has no weights and divides by 0 downstream */
        BAD("dim %d * mlp_ratio %g gives an MLP width of 0 (need >= 1)", c->dim, c->mlp_ratio);
    if (fabsf(c->dim * c->mlp_ratio - (float)nmf_vit_hidden(c)) > 1e-3f)
        BAD("dim * mlp_ratio = %g is not an integer", c->dim * c->mlp_ratio);
    if (c->num_classes < 1 || c->num_classes > 1000000) BAD("num_classes %d out of range", c->num_classes);
    if (!isfinite(c->mean) || !isfinite(c->std) || !(c->std > 0.0f))
        BAD("mean %g / std %g must be finite with std > 0", c->mean, c->std);
    long long patches = (long long)nmf_vit_grid(c) * nmf_vit_grid(c);
    if (patches + 1 > 65536) BAD("%lld patches: too many tokens", patches);
#undef BAD
    return NMF_OK;
}

static nmf_status get_int(const cJSON *root, const char *key, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return NMF_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 1e9)
        return nmf_error(NMF_ERR_FORMAT, "model config: \"%s\" must be an integer", key);
    *out = (int)v->valuedouble;
    return NMF_OK;
}

static nmf_status get_float(const cJSON *root, const char *key, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return NMF_OK;
    if (!cJSON_IsNumber(v)) return nmf_error(NMF_ERR_FORMAT, "model config: \"%s\" must be a number", key);
    *out = (float)v->valuedouble;
    return NMF_OK;
}

/* {"arch": "gpt2", "hf": {config.json}, "prefix": "transformer.", "pooler": 0} */
static nmf_status token_from_json(const cJSON *root, nmf_model_config *c) {
    const cJSON *hf = cJSON_GetObjectItemCaseSensitive(root, "hf");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(root, "prefix");
    if (!cJSON_IsObject(hf))
        return nmf_error(NMF_ERR_FORMAT, "model config: arch '%s' needs an \"hf\" object (its "
                         "config.json)", c->arch);
    char *text = cJSON_PrintUnformatted(hf);
    if (!text) return nmf_error(NMF_ERR_NOMEM, "model config");
    nmf_hf_config h;
    nmf_status st = nmf_hf_config_parse(text, strlen(text), "model config \"hf\"", &h);
    free(text);
    char arch[sizeof c->arch];
    memcpy(arch, c->arch, sizeof arch);
    if (!st) st = nmf_model_config_from_hf(c, &h, NULL);
    if (!st && strcmp(arch, c->arch))
        st = nmf_error(NMF_ERR_FORMAT, "model config: arch '%s' but hf.model_type '%s'", arch, c->arch);
    if (!st && prefix) {
        if (!cJSON_IsString(prefix) || strlen(prefix->valuestring) >= sizeof c->hf.prefix)
            return nmf_error(NMF_ERR_FORMAT, "model config: \"prefix\" must be a short string");
        snprintf(c->hf.prefix, sizeof c->hf.prefix, "%s", prefix->valuestring);
    }
    if (!st) st = get_int(root, "pooler", &c->hf.pooler);
    if (!st && c->hf.pooler != 0 && c->hf.pooler != 1)
        st = nmf_error(NMF_ERR_FORMAT, "model config: \"pooler\" must be 0 or 1");
    return st;
}

nmf_status nmf_model_config_from_json(const char *json, nmf_model_config *c) {
    cJSON *root = cJSON_ParseWithOpts(json, NULL, 1); /* trailing junk is an error */
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "model config: not a JSON object");
    }
    nmf_model_config tmp = *c;
    nmf_status st = NMF_OK;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "arch");
    if (arch) {
        if (!cJSON_IsString(arch) || strlen(arch->valuestring) >= sizeof tmp.arch)
            st = nmf_error(NMF_ERR_FORMAT, "model config: \"arch\" must be a short string");
        else
            snprintf(tmp.arch, sizeof tmp.arch, "%s", arch->valuestring);
    }
    if (st == NMF_OK && nmf_model_is_token(&tmp)) {
        st = token_from_json(root, &tmp);
        cJSON_Delete(root);
        if (st == NMF_OK) *c = tmp;
        return st;
    }
    if (st == NMF_OK) st = get_int(root, "img_size", &tmp.img_size);
    if (st == NMF_OK) st = get_int(root, "patch", &tmp.patch);
    if (st == NMF_OK) st = get_int(root, "in_chans", &tmp.in_chans);
    if (st == NMF_OK) st = get_int(root, "dim", &tmp.dim);
    if (st == NMF_OK) st = get_int(root, "depth", &tmp.depth);
    if (st == NMF_OK) st = get_int(root, "heads", &tmp.heads);
    if (st == NMF_OK) st = get_float(root, "mlp_ratio", &tmp.mlp_ratio);
    if (st == NMF_OK) st = get_int(root, "num_classes", &tmp.num_classes);
    if (st == NMF_OK) st = get_float(root, "mean", &tmp.mean);
    if (st == NMF_OK) st = get_float(root, "std", &tmp.std);
    cJSON_Delete(root);
    if (st == NMF_OK) *c = tmp;
    return st;
}

char *nmf_model_config_to_json(const nmf_model_config *c) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "arch", c->arch);
    if (nmf_model_is_token(c)) {
        char *hf = nmf_hf_config_to_json(&c->hf);
        cJSON *obj = hf ? cJSON_Parse(hf) : NULL;
        free(hf);
        if (!obj) {
            cJSON_Delete(root);
            return NULL;
        }
        cJSON_AddItemToObject(root, "hf", obj);
        cJSON_AddStringToObject(root, "prefix", c->hf.prefix);
        cJSON_AddNumberToObject(root, "pooler", c->hf.pooler);
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        return text;
    }
    cJSON_AddNumberToObject(root, "img_size", c->img_size);
    cJSON_AddNumberToObject(root, "patch", c->patch);
    cJSON_AddNumberToObject(root, "in_chans", c->in_chans);
    cJSON_AddNumberToObject(root, "dim", c->dim);
    cJSON_AddNumberToObject(root, "depth", c->depth);
    cJSON_AddNumberToObject(root, "heads", c->heads);
    cJSON_AddNumberToObject(root, "mlp_ratio", c->mlp_ratio);
    cJSON_AddNumberToObject(root, "num_classes", c->num_classes);
    cJSON_AddNumberToObject(root, "mean", c->mean);
    cJSON_AddNumberToObject(root, "std", c->std);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

nmf_status nmf_model_config_override(nmf_model_config *c, const nmf_config_overrides *o, int from_file) {
    if (!o) return NMF_OK;
    const struct {
        const char *key;
        int given, *field;
    } ints[] = {
        {"img_size", o->img_size, &c->img_size}, {"patch", o->patch, &c->patch},
        {"in_chans", o->in_chans, &c->in_chans}, {"dim", o->dim, &c->dim},
        {"depth", o->depth, &c->depth},          {"heads", o->heads, &c->heads},
        {"num_classes", o->num_classes, &c->num_classes},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].given && from_file && ints[i].given != *ints[i].field)
            return nmf_error(NMF_ERR_INVALID_ARG, "%s %d contradicts the file's config (%s %d)",
                             ints[i].key, ints[i].given, ints[i].key, *ints[i].field);
    if (o->mlp_ratio != 0.0f && from_file && o->mlp_ratio != c->mlp_ratio)
        return nmf_error(NMF_ERR_INVALID_ARG, "mlp_ratio %g contradicts the file's config "
                         "(mlp_ratio %g)", o->mlp_ratio, c->mlp_ratio);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].given) *ints[i].field = ints[i].given;
    if (o->mlp_ratio != 0.0f) c->mlp_ratio = o->mlp_ratio;
    return NMF_OK;
}
