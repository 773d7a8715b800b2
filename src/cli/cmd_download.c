/* forge download: fetch a model from the HuggingFace Hub into the shared HF cache and print
 * its snapshot folder (usable as --model, or by transformers / vLLM from the same cache). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "forge.h"

int cmd_download(int argc, char **argv) {
    const char *token = NULL, *endpoint = NULL, *cache_dir = NULL;
    int offline = 0, quiet = 0, help = 0;
    const cli_opt opts[] = {
        {"token", OPT_STR, &token,
         "TOKEN: Hub token (default $HF_TOKEN, else the token file; \"\" sends none)"},
        {"endpoint", OPT_STR, &endpoint,
         "URL: Hub endpoint (default $HF_ENDPOINT, else https://huggingface.co)"},
        {"cache-dir", OPT_STR, &cache_dir,
         "DIR: cache root (default $HF_HUB_CACHE, else $HF_HOME/hub, ...)"},
        {"offline", OPT_FLAG, &offline,
         "use the cache only, make no request (as HF_HUB_OFFLINE=1)"},
        {"quiet", OPT_FLAG, &quiet, "no progress output"},
        {"help", OPT_FLAG, &help, "this help"},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos = cli_parse("download", argc, argv, opts, n_opts, pos, 1);
    if (npos < 0) return 2;
    if (help || npos != 1) {
        cli_usage("download", "[options] ORG/NAME[@REVISION]", opts, n_opts);
        if (help)
            fprintf(stderr, "\nDownloads what inference needs (config, tokenizer, safetensors)"
                            " into the HF cache\nand prints the snapshot folder on stdout.\n");
        return help ? 0 : 2;
    }
    forge_hub_params params = {.endpoint = endpoint,
                               .token = token,
                               .cache_dir = cache_dir,
                               .offline = offline != 0,
                               .progress = !quiet};
    char path[4096];
    forge_error err = {0};
    if (forge_hub_download(pos[0], &params, path, sizeof path, &err) != FORGE_OK) {
        fprintf(stderr, "forge download: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}
