/* forge batch: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_batch(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge batch: not implemented yet\n");
    return 2;
}
