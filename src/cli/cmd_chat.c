/* forge chat: not built yet; its issue replaces this file. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_chat(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "forge chat: not implemented yet\n");
    return 2;
}
