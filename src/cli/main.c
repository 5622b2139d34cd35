/* nmformer: command-line entry point. Dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "nmformer/kernels.h"
#include "nmformer/core.h"
#include "nmformer/dist.h"
#include "nmformer/version.h"

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
    {"run", cmd_run, "run a model on a .npy input (images or token ids)"},
    {"generate", cmd_generate, "continue token sequences with a causal LM (KV cache)"},
    {"eval", cmd_eval, "accuracy on the Fashion-MNIST test split"},
    {"bench", cmd_bench, "benchmark kernels (gemm) or models (model)"},
    {"sim", cmd_sim, "simulate the STA accelerator"},
    {"report", cmd_report, "HTML report of a run directory (make run's out/)"},
};

static void usage(FILE *out) { /* --help only */
    fprintf(out, "usage: nmformer <command> [options]   (nmformer <command> --help for details)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nevery command: --quiet   no progress lines on stderr (steps over a second: "
                 "loading,\n                           reading or writing a model: MB/s and ETA)\n");
}

/* --quiet anywhere after the command: progress off. train and report read it themselves (their
 * own output); for the others it is taken out of argv here. Returns the new argc. */
static int take_quiet(const char *cmd, int argc, char **argv, int *quiet) {
    const int keep = !strcmp(cmd, "train") || !strcmp(cmd, "report");
    int n = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet")) {
            *quiet = 1;
            if (!keep) continue;
        }
        argv[n++] = argv[i];
    }
    argv[n] = NULL;
    return n;
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
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) { /* an error is one line; the command list is on --help */
        fprintf(stderr, "nmformer: need a command (see nmformer --help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        const nmf_gemm_backend dense = nmf_gemm_backend_active();
        char desc[128], mpi[128];
        printf("nmformer %s (kernels: %s; dense: %s, %s; mpi: %s)\n", nmf_version(),
               nmf_isa_name(nmf_active_isa()), nmf_gemm_backend_name(dense),
               nmf_gemm_backend_describe(dense, desc, sizeof desc),
               nmf_dist_describe(mpi, sizeof mpi));
        if (nmf_gemm_backend_generic(dense))
            fprintf(stderr, "nmformer: warning: the dense backend runs a generic kernel on this "
                            "CPU (several times below its speed); install oneDNN (libdnnl-dev)\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int quiet = 0;
            argc = take_quiet(argv[1], argc, argv, &quiet);
            cli_progress(quiet);
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "nmformer: unknown command '%s' (see nmformer --help)\n", argv[1]);
    return 2;
}
