/* nmformer bench gemm|model: dispatches to the two benchmark families (each parses its own
 * options with cli_parse). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"

int bench_gemm(int argc, char **argv);  /* cmd_bench_gemm.c */
int bench_model(int argc, char **argv); /* cmd_bench_model.c */

int cmd_bench(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("bench", "need gemm or model (see nmformer bench --help)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: nmformer bench gemm [options]    N:M and dense GEMM vs OpenBLAS\n"
               "       nmformer bench model [options]   model latency/throughput\n"
               "(nmformer bench gemm --help, nmformer bench model --help for options)\n"
               CLI_EXIT_HELP);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        cli_print_version();
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "gemm")) return bench_gemm(argc - 1, argv + 1);
    if (!strcmp(argv[1], "model")) return bench_model(argc - 1, argv + 1);
    return cli_usage_error("bench", "unknown benchmark '%s' (gemm or model)", argv[1]);
}
