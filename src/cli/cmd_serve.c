/* forge serve: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge serve: not implemented yet\n");
    return 2;
}
