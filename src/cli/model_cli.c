#include "cli/model_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


int model_cli_int(const char *text, long lo, long hi, long *out) {
    if (!text || !*text) return 1;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return 1;
    *out = v;
    return 0;
}

nmf_status model_cli_load(nmf_vit **out, const char *path, const char *name,
                          const cli_config_flags *flags) {
    *out = NULL;
    nmf_model_config config;
    nmf_tensor_set tensors;
    nmf_status st = cli_load_model(path, name, flags, &config, &tensors);
    if (st == NMF_OK) st = nmf_vit_create(out, &config, &tensors);
    nmf_tensors_free(&tensors);
    return st;
}

int model_cli_precision(const char *cmd, const char *text, nmf_precision *p) {
    if (nmf_precision_parse(text, p) == NMF_OK) return 0;
    fprintf(stderr, "nmformer %s: --precision wants f32, bf16 or int8, got '%s'\n", cmd, text);
    return 1;
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
