/* forge bench: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge bench: not implemented yet\n");
    return 2;
}
