/* forge tokenize: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge tokenize: not implemented yet\n");
    return 2;
}
