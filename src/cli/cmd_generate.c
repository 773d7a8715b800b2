/* forge generate: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge generate: not implemented yet\n");
    return 2;
}
