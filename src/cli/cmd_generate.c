/* forge generate: complete one prompt through the engine. stdout carries exactly the
 * completion, streamed as it is produced (decode(prompt + generated) - decode(prompt),
 * special tokens skipped), with a newline added only when stdout is a terminal; load time,
 * speed, the seed and the sampling values go to stderr. Ctrl-C stops cleanly. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/session.h"

typedef struct {
    forge_finish_reason finish;
    int prompt_tokens, completion_tokens, cached;
    double ttft_ms, total_ms;
    bool write_failed;
} gen_state;

static void on_event(const forge_event *ev, void *user) {
    gen_state *g = user;
    if (ev->text_len && !g->write_failed) {
        if (fwrite(ev->text, 1, ev->text_len, stdout) != ev->text_len || fflush(stdout) != 0) g->write_failed = true;
    }
    if (ev->finish) {
        g->finish = ev->finish;
        g->prompt_tokens = ev->prompt_tokens;
        g->completion_tokens = ev->completion_tokens;
        g->cached = ev->cached_tokens;
        g->ttft_ms = ev->ttft_ms;
        g->total_ms = ev->total_ms;
    }
}

/* Ctrl-C / SIGTERM: a thread waits for them and cancels the request. */
typedef struct {
    sigset_t set;
    forge_request *req;
    pthread_mutex_t lock;
    bool interrupted;
} sig_state;

static void *signal_main(void *arg) {
    sig_state *s = arg;
    int sig;
    while (sigwait(&s->set, &sig) == 0) {
        if (sig == SIGUSR1) break; /* the end */
        pthread_mutex_lock(&s->lock);
        s->interrupted = true;
        if (s->req) forge_request_cancel(s->req);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static char *read_prompt_file(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) {
            if (feof(f) || ferror(f)) break;
            continue;
        }
        if (cap > ((size_t)1 << 30)) {
            free(buf);
            buf = NULL;
            break;
        }
        char *p = realloc(buf, cap * 2);
        if (!p) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = p;
        cap *= 2;
    }
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int cmd_generate(int argc, char **argv) {
    cli_model_opts mo = {0};
    cli_sampling_opts so;
    cli_sampling_init(&so);
    const char *prompt = NULL, *prompt_file = NULL;
    long max_tokens = 256, ignore_eos = 0, no_special = 0, help = 0, json_object = 0;
    const char *schema_file = NULL, *grammar_file = NULL, *regex = NULL, *choices = NULL;
    cli_strlist stops = {0};
    cli_opt opts[40];
    int n = cli_model_options(opts, &mo, false);
    opts[n++] = (cli_opt){"prompt", OPT_STR, &prompt, "TEXT: the prompt"};
    opts[n++] = (cli_opt){"prompt-file", OPT_STR, &prompt_file, "FILE: read the prompt from FILE (- for stdin)"};
    opts[n++] = (cli_opt){"max-tokens", OPT_INT, &max_tokens, "N: tokens to generate at most (default 256; -1: to the context's end)"};
    n += cli_sampling_options(opts + n, &so);
    opts[n++] = (cli_opt){"stop", OPT_STR_LIST, &stops, "TEXT: stop before TEXT (repeatable); it is not printed"};
    opts[n++] = (cli_opt){"ignore-eos", OPT_FLAG, &ignore_eos, "keep going after end-of-sequence tokens (benchmarks)"};
    opts[n++] = (cli_opt){"no-special", OPT_FLAG, &no_special, "add no BOS/EOS (a prompt already rendered by a chat template)"};
    opts[n++] = (cli_opt){"json-schema", OPT_STR, &schema_file, "FILE: the output is JSON valid against this JSON schema"};
    opts[n++] = (cli_opt){"json-object", OPT_FLAG, &json_object, "the output is a JSON object"};
    opts[n++] = (cli_opt){"grammar", OPT_STR, &grammar_file, "FILE: the output follows this GBNF grammar (llama.cpp's format)"};
    opts[n++] = (cli_opt){"regex", OPT_STR, &regex, "RE: the whole output matches this regular expression"};
    opts[n++] = (cli_opt){"choice", OPT_STR, &choices, "A,B,...: the output is one of these strings"};
    opts[n++] = (cli_opt){"help", OPT_FLAG, &help, "this help"};
    const char *pos[1];
    int np = cli_parse("generate", argc, argv, opts, n, pos, 1);
    if (np < 0) return 2;
    if (help) {
        cli_usage("generate", "[--model M] --prompt TEXT [options]", opts, n);
        return 0;
    }
    if (np == 1 && !prompt) prompt = pos[0];
    if (prompt && prompt_file) {
        fprintf(stderr, "forge generate: give --prompt or --prompt-file, not both\n");
        return 2;
    }
    if (max_tokens == 0 || max_tokens < -1 || max_tokens > INT_MAX) {
        fprintf(stderr, "forge generate: --max-tokens must be positive (or -1 for the rest of the context), got %ld\n", max_tokens);
        return 2;
    }
    /* block the stop signals before any thread starts, so that only signal_main sees them
     * (a shell starts background jobs with SIGINT ignored: sigwait needs it not ignored) */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sig_state sig = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sigemptyset(&sig.set);
    sigaddset(&sig.set, SIGINT);
    sigaddset(&sig.set, SIGTERM);
    sigaddset(&sig.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sig.set, NULL);
    pthread_t sig_thread;
    bool have_sig_thread = pthread_create(&sig_thread, NULL, signal_main, &sig) == 0;
    int rc = 1;
    char *file_text = NULL, *cons_text = NULL;
    size_t cons_len = 0;
    size_t prompt_len = prompt ? strlen(prompt) : 0;
    if (prompt_file) {
        file_text = read_prompt_file(prompt_file, &prompt_len);
        if (!file_text) {
            fprintf(stderr, "forge generate: cannot read the prompt from %s\n", prompt_file);
            goto out_nosession;
        }
        prompt = file_text;
    }
    if (!prompt) prompt = "";
    forge_constraint cons = {0};
    if ((schema_file != NULL) + (grammar_file != NULL) + (regex != NULL) + (choices != NULL) + (json_object != 0) > 1) {
        fprintf(stderr, "forge generate: give one of --json-schema, --json-object, --grammar, --regex, --choice\n");
        rc = 2;
        goto out_nosession;
    }
    if (schema_file || grammar_file) {
        const char *f = schema_file ? schema_file : grammar_file;
        cons_text = read_prompt_file(f, &cons_len);
        if (!cons_text) {
            fprintf(stderr, "forge generate: cannot read %s\n", f);
            goto out_nosession;
        }
        cons = (forge_constraint){.kind = schema_file ? FORGE_CONSTRAINT_JSON_SCHEMA : FORGE_CONSTRAINT_GBNF,
                                  .text = cons_text, .len = cons_len};
    } else if (regex) {
        cons = (forge_constraint){.kind = FORGE_CONSTRAINT_REGEX, .text = regex, .len = strlen(regex)};
    } else if (json_object) {
        cons = (forge_constraint){.kind = FORGE_CONSTRAINT_JSON_OBJECT};
    } else if (choices) { /* a,b,c as a JSON array */
        size_t cap = 4 + 6 * strlen(choices);
        cons_text = malloc(cap);
        if (!cons_text) goto out_nosession;
        size_t k = 0;
        cons_text[k++] = '[';
        cons_text[k++] = '"';
        for (const char *c = choices; *c; c++) {
            if (*c == ',') {
                memcpy(cons_text + k, "\",\"", 3);
                k += 3;
            } else if (*c == '"' || *c == '\\') {
                cons_text[k++] = '\\';
                cons_text[k++] = *c;
            } else if ((unsigned char)*c < 0x20) {
                k += (size_t)snprintf(cons_text + k, cap - k, "\\u%04x", (unsigned char)*c);
            } else cons_text[k++] = *c;
        }
        cons_text[k++] = '"';
        cons_text[k++] = ']';
        cons = (forge_constraint){.kind = FORGE_CONSTRAINT_CHOICE, .text = cons_text, .len = k};
    }
    if (cons.kind) {
        forge_error cerr;
        if (forge_constraint_check(&cons, &cerr)) {
            fprintf(stderr, "forge generate: %s\n", cerr.msg);
            rc = 2;
            goto out_nosession;
        }
    }
    cli_session s;
    mo.max_seqs = 1; /* one request: a KV pool of one full context */
    if (cli_session_open(&s, "generate", &mo) != 0) goto out_nosession;
    forge_sampling_params sp;
    if (cli_sampling_resolve(&s, &so, "generate", &sp) != 0) {
        rc = 2;
        goto out;
    }
    const forge_tokenizer_info *ti = forge_tokenizer_get_info(s.tok);
    if (prompt_len == 0 && (!ti->add_bos || no_special)) {
        fprintf(stderr, "forge generate: the prompt is empty and this tokenizer adds no BOS token to start from\n");
        goto out;
    }
    const forge_model_info *mi = forge_model_get_info(s.model);
    fprintf(stderr, "forge: loaded %s (%s, %d layers, %s) in %.2f s, %d threads, context %d\n", s.dir, mi->model_type,
            mi->n_layers, mi->dtype == FORGE_DTYPE_F32 ? "f32" : mi->dtype == FORGE_DTYPE_BF16 ? "bf16" : "f16",
            s.load_seconds, mi->n_threads, mi->context_len);

    gen_state g = {0};
    forge_request_params rp = {.prompt = prompt, .prompt_len = prompt_len, .add_special_tokens = !no_special, .sampling = sp,
                               .stop = stops.items, .n_stop = stops.n, .max_tokens = (int)max_tokens,
                               .ignore_eos = ignore_eos != 0, .constraint = cons};
    forge_error err;
    forge_request *req = forge_engine_submit(s.engine, &rp, on_event, &g, &err);
    if (!req) {
        fprintf(stderr, "forge generate: %s\n", err.msg);
        goto out;
    }
    cli_sampling_print(&sp, forge_request_seed(req));
    pthread_mutex_lock(&sig.lock);
    sig.req = req;
    bool early = sig.interrupted;
    pthread_mutex_unlock(&sig.lock);
    if (early) forge_request_cancel(req);
    forge_request_wait(req);
    pthread_mutex_lock(&sig.lock);
    sig.req = NULL;
    pthread_mutex_unlock(&sig.lock);
    forge_request_release(req);
    if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
    fflush(stdout);

    double prefill_s = g.ttft_ms / 1e3, decode_s = (g.total_ms - g.ttft_ms) / 1e3;
    fprintf(stderr, "forge: prompt %d tokens (%d cached) in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.1f tok/s)%s\n",
            g.prompt_tokens, g.cached, prefill_s, prefill_s > 0 ? g.prompt_tokens / prefill_s : 0, g.completion_tokens,
            decode_s, g.completion_tokens > 1 && decode_s > 0 ? (g.completion_tokens - 1) / decode_s : 0,
            g.finish == FORGE_FINISH_CANCELLED ? ", interrupted" : g.finish == FORGE_FINISH_LENGTH ? ", length limit" : "");
    forge_engine_stats est;
    forge_engine_get_stats(s.engine, &est);
    if (est.step_seconds > 0) /* sampling, stop strings, detokenizing, printing and scheduling */
        fprintf(stderr, "forge: outside the forward: %.2f%% of step time (%.3f s of %.3f s)\n",
                100 * (est.step_seconds - est.forward_seconds) / est.step_seconds,
                est.step_seconds - est.forward_seconds, est.step_seconds);
    if (g.write_failed) fprintf(stderr, "forge generate: writing to stdout failed\n");
    rc = g.finish == FORGE_FINISH_ERROR || g.write_failed ? 1 : g.finish == FORGE_FINISH_CANCELLED ? 130 : 0;
out:
    cli_session_close(&s);
out_nosession:
    if (have_sig_thread) {
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    cli_strlist_free(&stops);
    free(file_text);
    free(cons_text);
    return rc;
}
