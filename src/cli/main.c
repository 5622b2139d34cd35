/* nmformer: command-line entry point. Checks the environment, dispatches to one function per
 * subcommand (each parses its options with cli_parse, args.h). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/core.h"
#include "nmformer/data.h"
#include "nmformer/io.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"convert", cmd_convert, "safetensors / .nmf / model folder, either way"},
    {"prune", cmd_prune, "one-shot magnitude pruning to N:M"},
    {"train", cmd_train, "IDP: train a family of N:M candidates"},
    {"info", cmd_info, "describe a model file (sizes, patterns, sharing)"},
    {"run", cmd_run, "run a model on a .npy input (images or token ids)"},
    {"generate", cmd_generate, "continue token sequences with a causal LM (KV cache)"},
    {"eval", cmd_eval, "top-1 accuracy (Fashion-MNIST, or any .npy images + labels)"},
    {"bench", cmd_bench, "benchmark kernels (gemm) or models (model)"},
    {"sim", cmd_sim, "simulate the STA accelerator"},
    {"report", cmd_report, "HTML report of a run directory (make run's out/)"},
};

static void usage(FILE *out) { /* --help only */
    fprintf(out, "usage: nmformer <command> [options]   (nmformer <command> --help for details)\n"
                 "       nmformer -V | --version\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nconventions (every command):\n"
            "  --opt VALUE or --opt=VALUE; -x VALUE or -xVALUE for the short ones:\n"
            "  -o --output, -m --model, -p --pattern, -j --threads, -i --input, -q --quiet,\n"
            "  -h --help, -V --version. `--` ends the options. A model input's type comes from\n"
            "  its contents (the .nmf magic, a safetensors header, or a folder), not its name.\n"
            "\nexit status: 0 success, 1 runtime failure, 2 usage error (also a bad NMF_* value)\n"
            "\nenvironment (unset or empty: the default; a malformed value is a usage error):\n"
            "  NMF_THREADS=N      threads (default: all cores); --threads overrides it\n"
            "  NMF_ISA=I          kernels: scalar, avx2 or avx512 (default: the best this CPU\n"
            "                     runs; one it cannot run falls back with a warning)\n"
            "  NMF_GEMM=B         dense backend: openblas or onednn (default: oneDNN when built in)\n"
            "  NMF_SPMM=K         N:M kernel of every layer: panel or tv (default: by shape)\n"
            "  NMF_DATA_DIR=DIR   Fashion-MNIST IDX folder (default " NMF_FASHION_MNIST_DIR
            ");\n"
            "                     --data overrides it\n"
            "\nprogress: steps over a second (loading, reading or writing a model) print MB/s and\n"
            "  ETA on stderr; --quiet / -q (every command) silences them\n");
}

/* Writes s with control characters shown as '?': names inside a hostile file (a JSON "\n") must
 * not turn the one-line error into several. */
static void put_line_safe(const char *s) {
    for (; *s; s++) fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, stderr);
}

int cli_fail(const char *cmd, const char *what, int status) {
    const char *detail = nmf_last_error();
    fprintf(stderr, "nmformer %s: ", cmd);
    put_line_safe(what);
    fprintf(stderr, ": %s", nmf_strerror((nmf_status)status));
    if (detail && *detail) {
        fputs(" (", stderr);
        put_line_safe(detail);
        fputc(')', stderr);
    }
    fputc('\n', stderr);
    return CLI_EXIT_FAILURE;
}

int main(int argc, char **argv) {
    /* Ctrl-C or kill during a long write (prune, convert, a train checkpoint) must not leave
     * gigabytes of temporary files behind */
    if (nmf_cleanup_temps_on_signal() != NMF_OK) {
        fprintf(stderr, "nmformer: %s\n", nmf_last_error());
        return CLI_EXIT_FAILURE;
    }
    if (argc < 2) { /* an error is one line; the command list is on --help */
        fprintf(stderr, "nmformer: need a command (see nmformer --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    /* a malformed NMF_* value would otherwise be a warning deep inside a run, or ignored */
    if (nmf_env_check() != NMF_OK) {
        fprintf(stderr, "nmformer: %s\n", nmf_last_error());
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        cli_print_version();
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            cli_progress(0); /* on until the command's parser sees --quiet / -q */
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "nmformer: unknown command '%s' (see nmformer --help)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
