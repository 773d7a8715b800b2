/* forge download: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_download(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge download: not implemented yet\n");
    return 2;
}
