/* One function per subcommand, each in its own cmd_<name>.c. argv[0] is the subcommand name.
 * Return the process exit status: 0 success, 1 failure (one clear line already on stderr),
 * 2 usage error. */
#ifndef NMF_CLI_COMMANDS_H
#define NMF_CLI_COMMANDS_H

int cmd_convert(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* eval of a language model (cmd_eval_lm.c): perplexity on a split of a text corpus. */
#include <stddef.h>

#include "nmformer/data.h"
#include "nmformer/io.h"
typedef struct {
    const char *model, *name, *corpus; /* the file, its candidate (or NULL), the corpus (or NULL) */
    nmf_text_split split;
    size_t limit; /* windows; 0: all */
    int batch, json;
    nmf_precision prec; /* NMF_PREC_COUNT: the trainer's evaluation; else the inference engine's */
} cmd_eval_lm_args;
int cmd_eval_lm(const cmd_eval_lm_args *a, const nmf_model_config *c, const nmf_tensor_set *w);

/* Prints "nmformer <cmd>: <what>: <status text> (<detail>)" to stderr and returns 1. */
int cli_fail(const char *cmd, const char *what, int status);

#endif
