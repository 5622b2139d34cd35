/* Placeholder until the eval command lands: fails loudly rather than pretending. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer eval: not implemented yet\n");
    return 1;
}
