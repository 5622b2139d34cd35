/* Helpers shared by the model commands (run, eval, bench model): number parsing, loading a
 * runnable model (with the config flags of cli_util.h), JSON strings. */
#ifndef NMF_CLI_MODEL_CLI_H
#define NMF_CLI_MODEL_CLI_H

#include <stdio.h>

#include "cli/cli_util.h"
#include "nmformer/model.h"

/* Parses a whole decimal integer in [lo, hi]; returns 0 on success. */
int model_cli_int(const char *text, long lo, long hi, long *out);
/* cli_load_model (file + config flags) then nmf_vit_create; the tensors are freed. */
nmf_status model_cli_load(nmf_vit **out, const char *path, const char *name,
                          const cli_config_flags *flags);

/* --precision's value: 0 and *p, or 1 after printing "nmformer CMD: ..." to stderr. */
int model_cli_precision(const char *cmd, const char *text, nmf_precision *p);
#define MODEL_CLI_PRECISION_HELP                                                               \
    "  --precision P   f32 (default), bf16 or int8 arithmetic for the N:M block linears\n"

/* Writes s as a JSON string literal (quotes, escapes). */
void model_cli_json_string(FILE *out, const char *s);

#endif
