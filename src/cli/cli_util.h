/* Helpers shared by the convert / prune / info commands: model config flags, file kinds, loading
 * a source model. Printing happens here only through cli_fail-style messages on stderr. */
#ifndef NMF_CLI_UTIL_H
#define NMF_CLI_UTIL_H

#include "nmformer/io.h"

/* --img-size --patch --in-chans --dim --depth --heads --mlp-ratio --classes, kept as given and
 * applied over the file's config (or the defaults when the file has none). */
#define CLI_MAX_CONFIG_FLAGS 16
typedef struct {
    int count;
    const char *key[CLI_MAX_CONFIG_FLAGS];
    const char *value[CLI_MAX_CONFIG_FLAGS];
} cli_config_flags;

#define CLI_CONFIG_FLAGS_HELP                                                                   \
    "model config (used when the safetensors file has no nmformer.config metadata; a flag\n"   \
    "that contradicts the file's config is an error):\n"                                       \
    "  --img-size N --patch N --in-chans N --dim N --depth N --heads N --mlp-ratio X\n"         \
    "  --classes N\n"

/* If argv[*i] is a config flag, consumes it and its value (advancing *i) and returns 1;
 * returns 0 when it is not one; -1 (message printed) when its value is missing. */
int cli_take_config_flag(const char *cmd, int argc, char **argv, int *i, cli_config_flags *f);
/* The flags as the library's overrides; fails on a malformed number. */
nmf_status cli_config_overrides(const cli_config_flags *f, nmf_config_overrides *o);

int cli_has_suffix(const char *path, const char *suffix);
/* By extension; CLI_FILE_DIR: an existing folder (a Hugging Face model folder as input). */
typedef enum { CLI_FILE_NMF, CLI_FILE_SAFETENSORS, CLI_FILE_DIR, CLI_FILE_OTHER } cli_file_kind;
cli_file_kind cli_file_kind_of(const char *path);

/* nmf_load_model_with the config flags as overrides (io.h): .safetensors or .nmf candidate
 * `model`; flags complete a file without config metadata and must agree with one that has it. */
nmf_status cli_load_model(const char *path, const char *model, const cli_config_flags *flags,
                          nmf_model_config *config, nmf_tensor_set *tensors);


/* Option value: argv[*i + 1], advancing *i; prints "nmformer CMD: OPT needs a value" and returns
 * NULL when absent. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);
/* An argument that no option took: stored in the first empty one of slots[0..n) (IN, OUT, ...) and
 * 0 returned; an unknown option or one argument too many prints one line and returns 2. */
int cli_positional(const char *cmd, const char *arg, const char **slots[], int n);

/* Prints the library's progress (nmf_set_progress) on stderr, unless quiet. */
void cli_progress(int quiet);

#endif
