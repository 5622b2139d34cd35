/* Placeholder until bench gemm lands: fails loudly rather than pretending. */
#include <stdio.h>

int bench_gemm(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer bench gemm: not implemented yet\n");
    return 1;
}
