/* ViT configuration: validation and JSON (its tensors: the model description, desc.c). */
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

nmf_status nmf_vit_config_override(nmf_vit_config *c, const nmf_config_overrides *o, int from_file) {
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
