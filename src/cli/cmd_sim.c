/* Placeholder until the sim command lands: fails loudly rather than pretending. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_sim(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer sim: not implemented yet\n");
    return 1;
}
