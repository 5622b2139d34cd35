/* Placeholder until the train command lands: fails loudly rather than pretending. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nmformer train: not implemented yet\n");
    return 1;
}
