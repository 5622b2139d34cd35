/* Placeholder until the info command lands: fails loudly rather than pretending. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer info: not implemented yet\n");
    return 1;
}
