/* Placeholder until the prune command lands: fails loudly rather than pretending. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_prune(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer prune: not implemented yet\n");
    return 1;
}
