/* forge embed: embeddings of texts on the command line, as POST /v1/embeddings makes them
 * (the last token's final-norm hidden state, L2-normalized). The inputs go through the
 * engine together (continuous batching, prefix cache), a window at a time so that memory
 * stays bounded for long files; stdout has one JSON array of floats per input, in order. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "forge.h"

enum { WINDOW = 256 };

typedef struct slot {
    float *v;
    int n;
    int prompt_tokens;
    char *error;
} slot;

static void on_event(const forge_event *ev, void *user) {
    slot *sl = user;
    if (ev->embedding && ev->n_embedding > 0 && !sl->v) {
        sl->v = malloc(sizeof(float) * (size_t)ev->n_embedding);
        if (sl->v) {
            memcpy(sl->v, ev->embedding, sizeof(float) * (size_t)ev->n_embedding);
            sl->n = ev->n_embedding;
        }
    }
    if (ev->finish) {
        sl->prompt_tokens = ev->prompt_tokens;
        if (ev->finish != FORGE_FINISH_STOP && !sl->error)
            sl->error = strdup(ev->error ? ev->error : "the request did not finish");
    }
}

/* Reads FILE ("-": stdin) into lines (empty lines skipped); returns the count or -1. */
static int read_lines(const char *path, char ***out) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) return -1;
    char **v = NULL, *line = NULL;
    size_t cap = 0;
    int n = 0, cap_v = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (n == cap_v) {
            cap_v = cap_v ? 2 * cap_v : 64;
            char **nv = realloc(v, sizeof *v * (size_t)cap_v);
            if (!nv) goto fail;
            v = nv;
        }
        if (!(v[n] = strdup(line))) goto fail;
        n++;
    }
    free(line);
    if (f != stdin) fclose(f);
    *out = v;
    return n;
fail:
    free(line);
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
    if (f != stdin) fclose(f);
    return -1;
}

int cmd_embed(int argc, char **argv) {
    cli_model_opts mo = {0};
    cli_strlist inputs = {0};
    const char *file = NULL;
    int no_special = 0, help = 0;
    cli_opt opts[24];
    int n = cli_model_options(opts, &mo, true);
    opts[n++] = (cli_opt){"input", OPT_STR_LIST, &inputs, "TEXT: a text to embed (repeatable)"};
    opts[n++] = (cli_opt){"file", OPT_STR, &file, "FILE: one text per line (- for stdin; empty lines skipped)"};
    opts[n++] = (cli_opt){"no-special", OPT_FLAG, &no_special, "add no BOS/EOS tokens"};
    opts[n++] = (cli_opt){"help", OPT_FLAG, &help, "this help"};
    const char *pos[1];
    int np = cli_parse("embed", argc, argv, opts, n, pos, 1);
    static const char synopsis[] =
        "[--model M] (--input TEXT ... | --file FILE)\n"
        "Embeddings as POST /v1/embeddings makes them: the final-norm hidden state of each text's last\n"
        "token, L2-normalized. stdout: one JSON array of floats per text, in input order.";
    if (np < 0) return 2;
    if (help) {
        cli_usage("embed", synopsis, opts, n);
        cli_strlist_free(&inputs);
        return 0;
    }
    char **lines = NULL;
    int n_lines = 0;
    if (file && (n_lines = read_lines(file, &lines)) < 0) {
        fprintf(stderr, "forge embed: cannot read %s\n", file);
        cli_strlist_free(&inputs);
        return 1;
    }
    int total = inputs.n + n_lines + (np == 1 ? 1 : 0);
    if (total == 0) {
        cli_usage("embed", synopsis, opts, n);
        cli_strlist_free(&inputs);
        return 2;
    }
    const char **texts = malloc(sizeof *texts * (size_t)total);
    slot *slots = calloc(WINDOW, sizeof *slots);
    forge_request **reqs = calloc(WINDOW, sizeof *reqs);
    int rc = 1, k = 0;
    cli_session s;
    bool open = false;
    if (!texts || !slots || !reqs) {
        fprintf(stderr, "forge embed: out of memory\n");
        goto out;
    }
    for (int i = 0; i < inputs.n; i++) texts[k++] = inputs.items[i];
    if (np == 1) texts[k++] = pos[0];
    for (int i = 0; i < n_lines; i++) texts[k++] = lines[i];
    if (cli_session_open(&s, "embed", &mo) != 0) goto out;
    open = true;
    long long tokens = 0;
    for (int base = 0; base < total; base += WINDOW) {
        int w = total - base < WINDOW ? total - base : WINDOW;
        for (int i = 0; i < w; i++) {
            forge_request_params rp = {.prompt = texts[base + i], .prompt_len = strlen(texts[base + i]),
                                       .add_special_tokens = !no_special, .embedding = true};
            forge_error err;
            memset(&slots[i], 0, sizeof slots[i]);
            reqs[i] = forge_engine_submit(s.engine, &rp, on_event, &slots[i], &err);
            if (!reqs[i]) {
                fprintf(stderr, "forge embed: input %d: %s\n", base + i + 1, err.msg);
                for (int j = 0; j < i; j++) forge_request_release(reqs[j]);
                goto out;
            }
        }
        bool failed = false;
        for (int i = 0; i < w; i++) {
            forge_request_wait(reqs[i]);
            forge_request_release(reqs[i]);
            reqs[i] = NULL;
            slot *sl = &slots[i];
            if (sl->error || !sl->v) {
                fprintf(stderr, "forge embed: input %d: %s\n", base + i + 1, sl->error ? sl->error : "out of memory");
                failed = true;
            } else if (!failed) {
                tokens += sl->prompt_tokens;
                putchar('[');
                for (int d = 0; d < sl->n; d++) printf(d ? ",%.9g" : "%.9g", (double)sl->v[d]);
                fputs("]\n", stdout);
            }
            free(sl->v);
            free(sl->error);
            sl->v = NULL;
            sl->error = NULL;
        }
        if (failed) goto out;
    }
    fflush(stdout);
    fprintf(stderr, "forge embed: %d texts, %lld tokens\n", total, tokens);
    rc = 0;
out:
    if (open) cli_session_close(&s);
    for (int i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(texts);
    free(slots);
    free(reqs);
    cli_strlist_free(&inputs);
    return rc;
}
