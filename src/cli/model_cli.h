/* Helpers shared by the model commands (run, eval, bench model): number parsing, loading a
 * runnable model (with the config flags of cli_util.h), JSON strings. */
#ifndef NMF_CLI_MODEL_CLI_H
#define NMF_CLI_MODEL_CLI_H

#include <stdio.h>

#include "cli/cli_util.h"
#include "nmformer/lm.h"
#include "nmformer/model.h"
#include "nmformer/sta.h"

/* Parses a whole decimal integer in [lo, hi]; returns 0 on success. */
int model_cli_int(const char *text, long lo, long hi, long *out);
/* 1 when path holds a token model, told cheaply (nmf_file_is_token_model: no tensor read); 0 for
 * a ViT or when it cannot be told (the command's full load then reports what is wrong). */
int model_cli_is_token(const char *path);
/* The precision a command computes a candidate in: *prec when given (not NMF_PREC_COUNT), else
 * the candidate's default when its family records one (`convert --default-precision`,
 * nmf_file_default_precision, which never peeks a FIFO or device), else NMF_PREC_COUNT (the
 * weights as stored). The two loaders below apply it. */
nmf_status model_cli_precision(const char *path, const char *name, nmf_precision *prec);
/* A token model for the commands that run one (run, generate, bench model): nmf_lm_load_with,
 * so that a family candidate is built layer by layer, with the config flags as overrides (a token
 * model refuses them, naming them) and prec (NMF_PREC_COUNT: the weights as stored). */
nmf_status model_cli_lm_load(nmf_lm **out, const char *path, const char *name,
                             const cli_config_flags *flags, nmf_precision prec);

/* A runnable ViT for run/eval: the f32/bf16/int8 model (nmf_vit), or with --sta HW.ini the
 * accelerator's fixed-point numbers on the CPU (nmf_fx_cpu: quantised on the library's
 * calibration images, as `sim --functional` does). */
typedef struct {
    nmf_vit *vit;
    nmf_fx_cpu *fx;
    nmf_model_config config;
} model_cli_vit;
/* A runnable ViT from a path: without sta_hw nmf_vit_load_with (the config flags as overrides, prec
 * NMF_PREC_COUNT: weights as stored; a family candidate read layer by layer); with sta_hw (the
 * design INI; it needs prec == NMF_PREC_INT8: the design's data_bits, 8 or 16, set the widths)
 * cli_load_model, then nmf_fx_cpu_create quantised on the Fashion-MNIST calibration images of
 * data_dir (NULL: the default). */
nmf_status model_cli_vit_load(model_cli_vit *r, const char *path, const char *name,
                              const cli_config_flags *flags, nmf_precision prec, const char *sta_hw,
                              const char *data_dir);
nmf_status model_cli_vit_forward(model_cli_vit *r, float *logits, const float *images, size_t n);
void model_cli_vit_free(model_cli_vit *r);

/* Writes s as a JSON string literal (quotes, escapes). */
void model_cli_json_string(FILE *out, const char *s);

#endif
