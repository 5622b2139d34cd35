/* Placeholder until the convert command lands: fails loudly rather than pretending. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer convert: not implemented yet\n");
    return 1;
}
