/* forge tokenize: text to token ids (as HF's encode) and, with --decode, ids to text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "forge.h"

static const char SYNOPSIS[] =
    "[--model DIR] [--no-special] [--split-special] \"text\"\n"
    "       forge tokenize [--model DIR] --json FILE        (FILE: JSON array of strings)\n"
    "       forge tokenize [--model DIR] --decode [--skip-special] [--clean-up-spaces] IDS\n"
    "Prints the ids as a JSON array (--json: one array of id arrays). --decode takes ids as\n"
    "arguments (\"1 2 3\", \"1,2,3\" or \"[1,2,3]\"), or with --json a file holding an array of\n"
    "id arrays, and prints the text (--json: a JSON array of strings).";

static void write_ids(strbuf *sb, const forge_tokens *t) {
    sb_putc(sb, '[');
    for (size_t i = 0; i < t->n; i++) sb_printf(sb, i ? ",%d" : "%d", t->ids[i]);
    sb_putc(sb, ']');
}

/* Parses ids from "1 2 3", "1,2,3" or "[1, 2, 3]" into out; false on a bad number. */
static bool parse_ids(const char *s, forge_tokens *out) {
    while (*s) {
        if (strchr(" ,[]\t\n", *s)) {
            s++;
            continue;
        }
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX) return false;
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 64;
            int32_t *p = realloc(out->ids, nc * sizeof *p);
            if (!p) return false;
            out->ids = p;
            out->cap = nc;
        }
        out->ids[out->n++] = (int32_t)v;
        s = end;
    }
    return true;
}

static int fail(forge_error *err) {
    fprintf(stderr, "forge tokenize: %s\n", err->msg);
    return 1;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *json = NULL;
    int no_special = 0, split_special = 0, decode = 0, skip_special = 0, clean_up = 0, help = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "M: folder with tokenizer.json (+ tokenizer_config.json), a .gguf, or a Hub id (default $FORGE_MODEL, else the built-in model)"},
        {"no-special", OPT_FLAG, &no_special, ": add no BOS/EOS (HF add_special_tokens=False)"},
        {"split-special", OPT_FLAG, &split_special, ": encode special-token text as plain text"},
        {"json", OPT_STR, &json, "FILE: JSON array of strings (or of id arrays with --decode); - for stdin"},
        {"decode", OPT_FLAG, &decode, ": ids to text"},
        {"skip-special", OPT_FLAG, &skip_special, ": with --decode, drop special tokens"},
        {"clean-up-spaces", OPT_FLAG, &clean_up,
         ": with --decode, transformers' clean_up_tokenization_spaces as tokenizer_config sets it"},
        {"help", OPT_FLAG, &help, ": this help"},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[256];
    int np = cli_parse("tokenize", argc, argv, opts, n_opts, pos, 256);
    if (np < 0) return 2;
    if (help) {
        cli_usage("tokenize", SYNOPSIS, opts, n_opts);
        return 0;
    }
    if ((!json && np == 0) || (json && np > 0) || (!decode && np > 1)) {
        cli_usage("tokenize", SYNOPSIS, opts, n_opts);
        return 2;
    }
    /* as every other subcommand: FORGE_MODEL, else the built-in model */
    char builtin[4096];
    if (!model || !*model) model = getenv("FORGE_MODEL");
    if (!model || !*model) {
        if (cli_default_model(builtin, sizeof builtin) != 0) {
            fprintf(stderr, "forge tokenize: no --model given, FORGE_MODEL unset, and the built-in model is missing\n");
            return 2;
        }
        model = builtin;
    }
    forge_error err;
    char resolved[4096];
    if (forge_model_resolve(model, &(forge_hub_params){.progress = true}, resolved, sizeof resolved, &err) != FORGE_OK)
        return fail(&err);
    forge_tokenizer *tok = forge_tokenizer_open(resolved, &err);
    if (!tok) return fail(&err);
    unsigned eflags = (no_special ? 0 : FORGE_ENCODE_ADD_SPECIAL) | (split_special ? FORGE_ENCODE_SPLIT_SPECIAL : 0);
    unsigned dflags = (skip_special ? FORGE_DECODE_SKIP_SPECIAL : 0) |
                      (clean_up && forge_tokenizer_get_info(tok)->clean_up_tokenization_spaces
                           ? FORGE_DECODE_CLEAN_UP_SPACES : 0);
    strbuf out = STRBUF_INIT;
    forge_tokens ids = {0};
    json_doc *doc = NULL;
    int rc = 0;
    if (json) {
        doc = strcmp(json, "-") ? json_parse_file(json, (size_t)1 << 31, &err) : NULL;
        if (!strcmp(json, "-")) {
            strbuf in = STRBUF_INIT;
            char buf[65536];
            size_t k;
            while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) sb_append(&in, buf, k);
            doc = json_parse(sb_str(&in), in.len, &err);
            sb_free(&in);
        }
        const json_value *arr = doc ? json_root(doc) : NULL;
        if (!doc || !json_is(arr, JSON_ARRAY)) {
            if (doc) fprintf(stderr, "forge tokenize: %s: expected a JSON array\n", json);
            else fprintf(stderr, "forge tokenize: %s\n", err.msg);
            rc = 1;
            goto done;
        }
        sb_putc(&out, '[');
        for (size_t i = 0; i < arr->n; i++) {
            const json_value *v = arr->u.items[i];
            if (i) sb_putc(&out, ',');
            ids.n = 0;
            if (decode) {
                if (!json_is(v, JSON_ARRAY)) {
                    fprintf(stderr, "forge tokenize: %s[%zu]: expected an array of ids\n", json, i);
                    rc = 1;
                    goto done;
                }
                for (size_t k = 0; k < v->n; k++) {
                    const json_value *x = v->u.items[k];
                    if (!json_is(x, JSON_INT) || x->u.i < 0 || x->u.i > INT32_MAX) {
                        fprintf(stderr, "forge tokenize: %s[%zu][%zu]: expected an id\n", json, i, k);
                        rc = 1;
                        goto done;
                    }
                    char tmp[32];
                    snprintf(tmp, sizeof tmp, "%lld", (long long)x->u.i);
                    parse_ids(tmp, &ids);
                }
                size_t len;
                char *text = forge_tokenizer_decode(tok, ids.ids, ids.n, dflags, &len, &err);
                if (!text) {
                    rc = fail(&err);
                    goto done;
                }
                json_write_string(&out, text, len, false);
                free(text);
            } else {
                if (!json_is(v, JSON_STRING)) {
                    fprintf(stderr, "forge tokenize: %s[%zu]: expected a string\n", json, i);
                    rc = 1;
                    goto done;
                }
                if (forge_tokenizer_encode(tok, v->u.s, v->n, eflags, &ids, &err)) {
                    rc = fail(&err);
                    goto done;
                }
                write_ids(&out, &ids);
            }
        }
        sb_puts(&out, "]\n");
    } else if (decode) {
        for (int i = 0; i < np; i++)
            if (!parse_ids(pos[i], &ids)) {
                fprintf(stderr, "forge tokenize: '%s' is not a list of ids\n", pos[i]);
                rc = 2;
                goto done;
            }
        size_t len;
        char *text = forge_tokenizer_decode(tok, ids.ids, ids.n, dflags, &len, &err);
        if (!text) {
            rc = fail(&err);
            goto done;
        }
        sb_append(&out, text, len);
        sb_putc(&out, '\n');
        free(text);
    } else {
        if (forge_tokenizer_encode(tok, pos[0], strlen(pos[0]), eflags, &ids, &err)) {
            rc = fail(&err);
            goto done;
        }
        write_ids(&out, &ids);
        sb_putc(&out, '\n');
    }
    if (sb_failed(&out)) {
        fprintf(stderr, "forge tokenize: out of memory\n");
        rc = 1;
    } else {
        fwrite(out.data, 1, out.len, stdout);
    }
done:
    json_free(doc);
    sb_free(&out);
    forge_tokens_free(&ids);
    forge_tokenizer_close(tok);
    return rc;
}
