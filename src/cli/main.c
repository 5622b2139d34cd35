/* nmformer: command-line entry point. Dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "nmformer/core.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"convert", cmd_convert, "safetensors <-> .nmf (by extension)"},
    {"prune", cmd_prune, "one-shot magnitude pruning to N:M"},
    {"train", cmd_train, "IDP: train a family of N:M candidates"},
    {"info", cmd_info, "describe a model file (sizes, patterns, sharing)"},
    {"run", cmd_run, "run a model on a .npy input"},
    {"eval", cmd_eval, "accuracy on the Fashion-MNIST test split"},
    {"bench", cmd_bench, "benchmark kernels (gemm) or models (model)"},
    {"sim", cmd_sim, "simulate the STA accelerator"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: nmformer <command> [options]   (nmformer <command> --help for details)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

int cli_fail(const char *cmd, const char *what, int status) {
    const char *detail = nmf_last_error();
    if (detail && *detail)
        fprintf(stderr, "nmformer %s: %s: %s (%s)\n", cmd, what, nmf_strerror((nmf_status)status),
                detail);
    else
        fprintf(stderr, "nmformer %s: %s: %s\n", cmd, what, nmf_strerror((nmf_status)status));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("nmformer 0.1.0 (kernels: %s)\n", nmf_isa_name(nmf_active_isa()));
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "nmformer: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
