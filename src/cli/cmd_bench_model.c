/* Placeholder until bench model lands: fails loudly rather than pretending. */
#include <stdio.h>

int bench_model(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer bench model: not implemented yet\n");
    return 1;
}
