/* forge: the command-line front end. Every subcommand uses only the public API (forge.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "forge.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} g_commands[] = {
    {"generate", cmd_generate, "complete a prompt with a model"},
    {"chat", cmd_chat, "chat with a model in the terminal"},
    {"serve", cmd_serve, "serve an OpenAI-compatible HTTP API"},
    {"batch", cmd_batch, "run a JSONL file of prompts concurrently"},
    {"tokenize", cmd_tokenize, "text to token ids and back"},
    {"template", cmd_template, "render a chat request with the model's chat template"},
    {"bench", cmd_bench, "measure load, prefill and decode speed"},
    {"perplexity", cmd_perplexity, "perplexity of a model on a text (llama-perplexity's convention)"},
    {"embed", cmd_embed, "embeddings of texts (as POST /v1/embeddings)"},
    {"download", cmd_download, "download a model from the HuggingFace Hub"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: forge COMMAND [options]   (forge COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", g_commands[i].name, g_commands[i].what);
    fprintf(f, "\nforge %s\n", FORGE_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("forge %s\n", FORGE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        if (!strcmp(argv[1], g_commands[i].name)) return g_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "forge: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
