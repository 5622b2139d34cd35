/* nmformer bench gemm|model: dispatches to the two benchmark families. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

int bench_gemm(int argc, char **argv);  /* cmd_bench_gemm.c */
int bench_model(int argc, char **argv); /* cmd_bench_model.c */

int cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "nmformer bench: need gemm or model (see nmformer bench --help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: nmformer bench gemm [options]    N:M and dense GEMM vs OpenBLAS\n"
               "       nmformer bench model [options]   model latency/throughput\n"
               "(nmformer bench gemm --help, nmformer bench model --help for options)\n");
        return 0;
    }
    if (!strcmp(argv[1], "gemm")) return bench_gemm(argc - 1, argv + 1);
    if (!strcmp(argv[1], "model")) return bench_model(argc - 1, argv + 1);
    fprintf(stderr, "nmformer bench: unknown benchmark '%s' (gemm or model)\n", argv[1]);
    return 2;
}
