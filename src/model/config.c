/* ViT configuration: defaults, validation, JSON, and the tensor names/shapes it implies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nmformer/config.h"

nmf_status nmf_vit_config_validate(const nmf_vit_config *c) {
#define BAD(...) return nmf_error(NMF_ERR_INVALID_ARG, "model config: " __VA_ARGS__)
    if (strcmp(c->arch, "vit") != 0) BAD("arch '%s' not supported (only \"vit\")", c->arch);
    if (c->img_size < 1 || c->img_size > 4096) BAD("img_size %d out of range 1..4096", c->img_size);
    if (c->patch < 1 || c->patch > c->img_size) BAD("patch %d out of range 1..img_size", c->patch);
    if (c->img_size % c->patch) BAD("img_size %d not a multiple of patch %d", c->img_size, c->patch);
    if (c->in_chans < 1 || c->in_chans > 64) BAD("in_chans %d out of range 1..64", c->in_chans);
    if (c->dim < 1 || c->dim > 16384) BAD("dim %d out of range 1..16384", c->dim);
    if (c->depth < 1 || c->depth > 256) BAD("depth %d out of range 1..256", c->depth);
    if (c->heads < 1 || c->dim % c->heads) BAD("heads %d must divide dim %d", c->heads, c->dim);
    if (!(c->mlp_ratio > 0.0f) || c->mlp_ratio > 64.0f) BAD("mlp_ratio %g out of range", c->mlp_ratio);
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

nmf_status nmf_vit_config_from_json(const char *json, nmf_vit_config *c) {
    cJSON *root = cJSON_ParseWithOpts(json, NULL, 1); /* trailing junk is an error */
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return nmf_error(NMF_ERR_FORMAT, "model config: not a JSON object");
    }
    nmf_vit_config tmp = *c;
    nmf_status st = NMF_OK;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "arch");
    if (arch) {
        if (!cJSON_IsString(arch) || strlen(arch->valuestring) >= sizeof tmp.arch)
            st = nmf_error(NMF_ERR_FORMAT, "model config: \"arch\" must be a short string");
        else
            snprintf(tmp.arch, sizeof tmp.arch, "%s", arch->valuestring);
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

char *nmf_vit_config_to_json(const nmf_vit_config *c) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "arch", c->arch);
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

static void spec(nmf_tensor_spec *s, size_t *n, int prunable, int ndim, int64_t d0, int64_t d1,
                 int64_t d2, int64_t d3, const char *fmt, int block) {
    nmf_tensor_spec *t = &s[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, fmt, block);
    t->ndim = ndim;
    int64_t d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < ndim; i++) t->shape[i] = d[i];
    t->prunable = prunable;
}

nmf_status nmf_vit_tensor_specs(const nmf_vit_config *c, nmf_tensor_spec **specs, size_t *count) {
    nmf_status st = nmf_vit_config_validate(c);
    if (st != NMF_OK) return st;
    size_t cap = 8 + 12 * (size_t)c->depth, n = 0;
    nmf_tensor_spec *s = malloc(cap * sizeof *s);
    if (!s) return nmf_error(NMF_ERR_NOMEM, "tensor specs");
    int64_t D = c->dim, H = nmf_vit_hidden(c), P = c->patch, T = nmf_vit_tokens(c);
    /* timm state_dict order */
    spec(s, &n, 0, 3, 1, 1, D, 0, "cls_token", 0);
    spec(s, &n, 0, 3, 1, T, D, 0, "pos_embed", 0);
    spec(s, &n, 0, 4, D, c->in_chans, P, P, "patch_embed.proj.weight", 0);
    spec(s, &n, 0, 1, D, 0, 0, 0, "patch_embed.proj.bias", 0);
    for (int b = 0; b < c->depth; b++) {
        spec(s, &n, 0, 1, D, 0, 0, 0, "blocks.%d.norm1.weight", b);
        spec(s, &n, 0, 1, D, 0, 0, 0, "blocks.%d.norm1.bias", b);
        spec(s, &n, 1, 2, 3 * D, D, 0, 0, "blocks.%d.attn.qkv.weight", b);
        spec(s, &n, 0, 1, 3 * D, 0, 0, 0, "blocks.%d.attn.qkv.bias", b);
        spec(s, &n, 1, 2, D, D, 0, 0, "blocks.%d.attn.proj.weight", b);
        spec(s, &n, 0, 1, D, 0, 0, 0, "blocks.%d.attn.proj.bias", b);
        spec(s, &n, 0, 1, D, 0, 0, 0, "blocks.%d.norm2.weight", b);
        spec(s, &n, 0, 1, D, 0, 0, 0, "blocks.%d.norm2.bias", b);
        spec(s, &n, 1, 2, H, D, 0, 0, "blocks.%d.mlp.fc1.weight", b);
        spec(s, &n, 0, 1, H, 0, 0, 0, "blocks.%d.mlp.fc1.bias", b);
        spec(s, &n, 1, 2, D, H, 0, 0, "blocks.%d.mlp.fc2.weight", b);
        spec(s, &n, 0, 1, D, 0, 0, 0, "blocks.%d.mlp.fc2.bias", b);
    }
    spec(s, &n, 0, 1, D, 0, 0, 0, "norm.weight", 0);
    spec(s, &n, 0, 1, D, 0, 0, 0, "norm.bias", 0);
    spec(s, &n, 0, 2, c->num_classes, D, 0, 0, "head.weight", 0);
    spec(s, &n, 0, 1, c->num_classes, 0, 0, 0, "head.bias", 0);
    *specs = s;
    *count = n;
    return NMF_OK;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

nmf_status nmf_vit_check_tensors(const nmf_vit_config *c, const nmf_tensor_set *s) {
    nmf_tensor_spec *specs;
    size_t count;
    nmf_status st = nmf_vit_tensor_specs(c, &specs, &count);
    if (st != NMF_OK) return st;
    for (size_t i = 0; i < count && st == NMF_OK; i++) {
        const nmf_tensor *t = nmf_tensors_find(s, specs[i].name);
        if (!t) {
            st = nmf_error(NMF_ERR_NOT_FOUND, "tensor '%s' missing", specs[i].name);
            break;
        }
        int same = t->ndim == specs[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == specs[i].shape[d];
        if (!same) {
            char have[96], want[96];
            format_shape(have, sizeof have, t->ndim, t->shape);
            format_shape(want, sizeof want, specs[i].ndim, specs[i].shape);
            st = nmf_error(NMF_ERR_SHAPE, "tensor '%s' has shape %s, config expects %s",
                           specs[i].name, have, want);
        } else if (t->nm && !specs[i].prunable) {
            st = nmf_error(NMF_ERR_FORMAT, "tensor '%s' is N:M but only block linears may be",
                           specs[i].name);
        }
    }
    for (size_t j = 0; j < s->count && st == NMF_OK; j++) {
        int known = 0;
        for (size_t i = 0; i < count && !known; i++) known = !strcmp(specs[i].name, s->items[j].name);
        if (!known)
            st = nmf_error(NMF_ERR_FORMAT, "unexpected tensor '%s' (not part of a ViT with this config)",
                           s->items[j].name);
    }
    free(specs);
    return st;
}
