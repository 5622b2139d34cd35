#include "cli/model_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/io.h"


int model_cli_int(const char *text, long lo, long hi, long *out) {
    if (!text || !*text) return 1;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return 1;
    *out = v;
    return 0;
}

int model_cli_is_token(const char *path) {
    int token = 0;
    if (nmf_file_is_token_model(path, &token) != NMF_OK) {
        nmf_clear_error(); /* the full load says what is wrong with the path */
        return 0;
    }
    return token;
}

nmf_status model_cli_precision(const char *path, const char *name, nmf_precision *prec) {
    return *prec != NMF_PREC_COUNT ? NMF_OK : nmf_file_default_precision(path, name, prec);
}

nmf_status model_cli_lm_load(nmf_lm **out, const char *path, const char *name,
                             const cli_config_flags *flags, nmf_precision prec) {
    *out = NULL;
    nmf_config_overrides o;
    nmf_status st = cli_config_overrides(flags, &o);
    if (!st) st = model_cli_precision(path, name, &prec);
    return st ? st : nmf_lm_load_with(out, path, name, &o, prec);
}

nmf_status model_cli_vit_load(model_cli_vit *r, const char *path, const char *name,
                              const cli_config_flags *flags, nmf_precision prec, const char *sta_hw,
                              const char *data_dir) {
    memset(r, 0, sizeof *r);
    nmf_config_overrides o;
    nmf_status st = cli_config_overrides(flags, &o);
    if (!st) st = model_cli_precision(path, name, &prec);
    if (st) return st;
    if (!sta_hw) { /* a family candidate read layer by layer */
        st = nmf_vit_load_with(&r->vit, path, name, NULL, &o, prec);
        if (st == NMF_OK) r->config = *nmf_vit_get_config(r->vit);
        return st;
    }
    if (prec != NMF_PREC_INT8)
        return nmf_error(NMF_ERR_INVALID_ARG, "--sta runs the accelerator's fixed-point numbers: it goes "
                         "with --precision int8 (the design's data_bits set the widths), not %s",
                         nmf_precision_name(prec == NMF_PREC_COUNT ? NMF_PREC_F32 : prec));
    nmf_tensor_set tensors; /* the fixed-point model quantises the f32 weights */
    nmf_sta_config hw;
    nmf_sta_config_default(&hw);
    float *calib = NULL;
    size_t ncal = 0;
    st = cli_load_model(path, name, flags, &r->config, &tensors);
    if (st == NMF_OK) st = nmf_sta_config_load(sta_hw, &hw);
    if (st == NMF_OK) st = nmf_sta_calibration_images(&calib, &ncal, NULL, &r->config, data_dir);
    if (st == NMF_OK) st = nmf_fx_cpu_create(&r->fx, &r->config, &tensors, &hw, calib, ncal);
    nmf_free(calib);
    nmf_tensors_free(&tensors);
    return st;
}

nmf_status model_cli_vit_forward(model_cli_vit *r, float *logits, const float *images, size_t n) {
    return r->fx ? nmf_fx_cpu_forward_f32(r->fx, logits, images, n) : nmf_vit_forward(r->vit, logits, images, n);
}

void model_cli_vit_free(model_cli_vit *r) {
    nmf_vit_free(r->vit);
    nmf_fx_cpu_free(r->fx);
    memset(r, 0, sizeof *r);
}

void model_cli_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}
