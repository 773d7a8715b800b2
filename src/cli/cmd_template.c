/* forge template: renders an OpenAI chat request with a model's chat template and prints
 * exactly the prompt (nothing added). Needs only tokenizer_config.json (or a template file),
 * no weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "forge.h"

/* Reads a whole file (or stdin for "-") into a malloc'd buffer. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *p = cap < ((size_t)1 << 30) ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *tpl_file = NULL, *request = NULL;
    int help = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "DIR: model folder (tokenizer_config.json; weights not needed)"},
        {"chat-template", OPT_STR, &tpl_file, "FILE: a Jinja2 chat template to use instead of the model's"},
        {"request", OPT_STR, &request, "FILE: OpenAI chat request JSON (messages, tools, ...); - for stdin"},
        {"help", OPT_FLAG, &help, "this help"},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *synopsis = "--model DIR [--chat-template FILE] --request REQ.json";
    if (cli_parse("template", argc, argv, opts, nopts, NULL, 0) < 0) return 2;
    if (help) {
        cli_usage("template", synopsis, opts, nopts);
        return 0;
    }
    if ((!model && !tpl_file) || !request) {
        cli_usage("template", synopsis, opts, nopts);
        return 2;
    }
    forge_error err;
    forge_chat_template *t = forge_chat_template_load(model, tpl_file, &err);
    if (!t) {
        fprintf(stderr, "forge template: %s\n", err.msg);
        return 1;
    }
    size_t len = 0;
    char *req = slurp(request, &len);
    if (!req) {
        fprintf(stderr, "forge template: cannot read %s\n", request);
        forge_chat_template_free(t);
        return 1;
    }
    char *out = NULL;
    size_t out_len = 0;
    forge_status s = forge_chat_template_render(t, req, len, &out, &out_len, &err);
    free(req);
    forge_chat_template_free(t);
    if (s != FORGE_OK) {
        fprintf(stderr, "forge template: %s\n", err.msg);
        return 1;
    }
    int rc = fwrite(out, 1, out_len, stdout) == out_len && fflush(stdout) == 0 ? 0 : 1;
    free(out);
    return rc;
}
