/* forge template: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_template(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge template: not implemented yet\n");
    return 2;
}
