/* Helpers shared by the commands: the model config options, what a path holds, loading a source
 * model, the size of what was read and written. Printing happens here only through
 * cli_fail-style messages on stderr. */
#ifndef NMF_CLI_UTIL_H
#define NMF_CLI_UTIL_H

#include <stdint.h>

#include "cli/args.h"
#include "nmformer/io.h"

/* --img-size --patch --in-chans --dim --depth --heads --mlp-ratio --classes, kept as given and
 * applied over the file's config (or the defaults when the file has none). */
typedef struct {
    const char *img_size, *patch, *in_chans, *dim, *depth, *heads, *mlp_ratio, *classes;
} cli_config_flags;

/* The eight option rows of a command that loads a model (spliced into its table). */
#define CLI_CONFIG_OPTS(f)                                                                     \
    CLI_STR("img-size", 0, &(f)->img_size, "N", "model config (used when a safetensors file\n" \
            "has no nmformer.config metadata; a value\nthat contradicts the file's is an error)"), \
    CLI_STR("patch", 0, &(f)->patch, "N", "patch size"),                                       \
    CLI_STR("in-chans", 0, &(f)->in_chans, "N", "input channels"),                              \
    CLI_STR("dim", 0, &(f)->dim, "N", "embedding width"),                                       \
    CLI_STR("depth", 0, &(f)->depth, "N", "blocks"),                                            \
    CLI_STR("heads", 0, &(f)->heads, "N", "attention heads"),                                   \
    CLI_STR("mlp-ratio", 0, &(f)->mlp_ratio, "X", "MLP hidden width / dim"),                    \
    CLI_STR("classes", 0, &(f)->classes, "N", "classes of the head")

int cli_config_flags_any(const cli_config_flags *f);
/* The flags as the library's overrides; fails on a malformed number. */
nmf_status cli_config_overrides(const cli_config_flags *f, nmf_config_overrides *o);

/* What a model path holds, by its contents (nmf_file_kind_detect); a failure is reported as
 * "nmformer CMD: PATH: ..." and 1 returned, else 0. */
int cli_file_kind(const char *cmd, const char *path, nmf_file_kind *kind);
/* An output path's kind by its name (it may not exist yet): .nmf, .safetensors, else a model
 * folder (NMF_FILE_HF_FOLDER). */
nmf_file_kind cli_output_kind(const char *path);

/* nmf_load_model_with the config flags as overrides (io.h): an .nmf (candidate `model`), a
 * safetensors file or a model folder; flags complete a file without config metadata and must
 * agree with one that has it. */
nmf_status cli_load_model(const char *path, const char *model, const cli_config_flags *flags,
                          nmf_model_config *config, nmf_tensor_set *tensors);
/* cli_load_model with keep16: weights stored BF16/F16 keep their 16-bit values
 * (nmf_load_model_keep16), for a token model that holds them so (nmf_lm_create_from). */
nmf_status cli_load_model_ex(const char *path, const char *model, const cli_config_flags *flags,
                             int keep16, nmf_model_config *config, nmf_tensor_set *tensors);

/* Bytes a path occupies: a file's size, a folder's regular files (not recursive); 0 if neither. */
uint64_t cli_path_bytes(const char *path);
/* Which path a failed read-and-write step names: OUT when the library's detail starts with it
 * ("OUT: ..."), else IN. */
const char *cli_failed_path(const char *in, const char *out);

/* The value parsers of the options that the library parses (CLI_FN rows). */
nmf_status cli_parse_dtype(const char *value, void *dest); /* nmf_dtype * */
nmf_status cli_parse_precision(const char *value, void *dest); /* nmf_precision * */
nmf_status cli_parse_size(const char *value, void *dest); /* uint64_t *: "5GB", "2GiB", bytes */
/* "vit-fmnist, deit-tiny, ..." (the --shape names of bench model and sim) into buf; returns buf */
const char *cli_shape_names(char *buf, size_t cap);

/* The line prune and convert print on success (unless --quiet), on stdout:
 *   CMD: IN (KIND, B bytes) -> OUT (KIND, B bytes, R x): NAME[ (N:M, K bits/group)]...; DTYPE
 * or with json the same as one JSON object. The written candidates are fam's models, or the one
 * model `single` when fam is NULL; a candidate named N:M is that pattern (bits/group: its
 * index code per group of M, nmf_nm_code_bits; a .safetensors OUT stores it dense). */
void cli_print_summary(const char *cmd, const char *in, const char *out, const nmf_family *fam,
                       const char *single, nmf_dtype dtype, int json);

/* Prints the library's progress (nmf_set_progress) on stderr, unless quiet. */
void cli_progress(int quiet);

#endif
