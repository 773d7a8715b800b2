/* forge chat: an interactive multi-turn chat in the terminal. The conversation is kept as
 * OpenAI messages, rendered with the model's chat template (add_generation_prompt) and
 * tokenized without adding special tokens, as HF's apply_chat_template does (templates
 * write their own BOS). Answers stream as they are produced. /reset clears the history,
 * /system TEXT sets the system prompt, Ctrl-C stops an answer, Ctrl-D (or Ctrl-C at the
 * prompt) leaves. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "cli/commands.h"
#include "cli/session.h"

typedef struct {
    strbuf answer;
    forge_finish_reason finish;
    int completion_tokens;
    double total_ms, ttft_ms;
} turn;

static void on_event(const forge_event *ev, void *user) {
    turn *t = user;
    if (ev->text_len) {
        sb_append(&t->answer, ev->text, ev->text_len);
        fwrite(ev->text, 1, ev->text_len, stdout);
        fflush(stdout);
    }
    if (ev->finish) {
        t->finish = ev->finish;
        t->completion_tokens = ev->completion_tokens;
        t->total_ms = ev->total_ms;
        t->ttft_ms = ev->ttft_ms;
    }
}

/* SIGINT: cancels the answer in progress, or (at the prompt) asks the main loop to leave
 * through a pipe that its poll() watches. */
typedef struct {
    sigset_t set;
    pthread_mutex_t lock;
    forge_request *req;
    int wake[2];
} sig_state;

static void *signal_main(void *arg) {
    sig_state *s = arg;
    int sig;
    while (sigwait(&s->set, &sig) == 0) {
        if (sig == SIGUSR1) break;
        pthread_mutex_lock(&s->lock);
        if (s->req && sig == SIGINT) forge_request_cancel(s->req);
        else if (write(s->wake[1], "x", 1) < 0) {
            /* nothing more to do: the main loop will see EOF or the pipe */
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

/* Reads one line (without its newline) into line; returns 0, or -1 at EOF or on a signal. */
static int read_line(sig_state *sig, strbuf *line) {
    sb_reset(line);
    for (;;) {
        struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = sig->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (p[1].revents) return -1;
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n <= 0) return line->len ? 0 : -1;
        if (c == '\n') return 0;
        sb_putc(line, c);
    }
}

static void add_message(strbuf *msgs, const char *role, const char *content, size_t len) {
    if (msgs->len) sb_putc(msgs, ',');
    sb_printf(msgs, "{\"role\":\"%s\",\"content\":", role);
    json_write_string(msgs, content, len, false);
    sb_putc(msgs, '}');
}

int cmd_chat(int argc, char **argv) {
    cli_model_opts mo = {0};
    cli_sampling_opts so;
    cli_sampling_init(&so);
    const char *template_file = NULL, *system_arg = NULL;
    long max_tokens = -1, help = 0;
    cli_opt opts[32];
    int n = cli_model_options(opts, &mo, false);
    opts[n++] = (cli_opt){"chat-template", OPT_STR, &template_file, "FILE: Jinja chat template (default: the model's)"};
    opts[n++] = (cli_opt){"system", OPT_STR, &system_arg, "TEXT: system prompt"};
    opts[n++] = (cli_opt){"max-tokens", OPT_INT, &max_tokens, "N: tokens per answer at most (default: the rest of the context)"};
    n += cli_sampling_options(opts + n, &so);
    opts[n++] = (cli_opt){"help", OPT_FLAG, &help, "this help"};
    if (cli_parse("chat", argc, argv, opts, n, NULL, 0) < 0) return 2;
    if (help) {
        cli_usage("chat", "[--model M] [options]", opts, n);
        return 0;
    }
    if (max_tokens == 0 || max_tokens < -1) {
        fprintf(stderr, "forge chat: --max-tokens must be positive (or -1)\n");
        return 2;
    }
    sig_state sig = {.lock = PTHREAD_MUTEX_INITIALIZER};
    if (pipe(sig.wake) != 0) return 1;
    signal(SIGINT, SIG_DFL);
    sigemptyset(&sig.set);
    sigaddset(&sig.set, SIGINT);
    sigaddset(&sig.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sig.set, NULL);
    pthread_t sig_thread;
    bool have_sig_thread = pthread_create(&sig_thread, NULL, signal_main, &sig) == 0;

    int rc = 1;
    char *system = system_arg ? strdup(system_arg) : NULL;
    cli_session s;
    mo.max_seqs = 1;
    forge_chat_template *tmpl = NULL;
    strbuf msgs = STRBUF_INIT, line = STRBUF_INIT, req = STRBUF_INIT;
    if (cli_session_open(&s, "chat", &mo) != 0) goto out_nosession;
    forge_sampling_params sp;
    if (cli_sampling_resolve(&s, &so, "chat", &sp) != 0) goto out;
    forge_error err;
    tmpl = forge_chat_template_load(s.dir, template_file, &err);
    if (!tmpl) {
        fprintf(stderr, "forge chat: %s\n", err.msg);
        goto out;
    }
    bool tty = isatty(STDIN_FILENO);
    fprintf(stderr, "forge chat: %s (template %s). /reset, /system TEXT; Ctrl-C stops an answer, Ctrl-D leaves.\n", s.dir,
            forge_chat_template_origin(tmpl));
    if (system) add_message(&msgs, "system", system, strlen(system));
    for (;;) {
        if (tty) fputs("> ", stdout);
        fflush(stdout);
        if (read_line(&sig, &line) != 0) break;
        const char *text = sb_str(&line);
        if (!strcmp(text, "/reset")) {
            sb_reset(&msgs);
            if (system) add_message(&msgs, "system", system, strlen(system));
            fputs("(history cleared)\n", stdout);
            continue;
        }
        if (!strncmp(text, "/system", 7) && (text[7] == ' ' || !text[7])) {
            free(system);
            system = text[7] ? strdup(text + 8) : NULL;
            sb_reset(&msgs);
            if (system) add_message(&msgs, "system", system, strlen(system));
            fputs("(system prompt set, history cleared)\n", stdout);
            continue;
        }
        if (!line.len) continue;
        size_t keep = msgs.len; /* drop the user turn again if the answer fails */
        add_message(&msgs, "user", text, line.len);
        sb_reset(&req);
        sb_printf(&req, "{\"messages\":[%s],\"add_generation_prompt\":true}", sb_str(&msgs));
        char *prompt = NULL;
        size_t plen = 0;
        if (forge_chat_template_render(tmpl, sb_str(&req), req.len, &prompt, &plen, &err) != FORGE_OK) {
            fprintf(stderr, "forge chat: %s\n", err.msg);
            msgs.len = keep;
            msgs.data[keep] = 0;
            continue;
        }
        turn t = {0};
        forge_request_params rp = {.prompt = prompt, .prompt_len = plen, .add_special_tokens = false, .sampling = sp,
                                   .max_tokens = (int)max_tokens};
        forge_request *r = forge_engine_submit(s.engine, &rp, on_event, &t, &err);
        free(prompt);
        if (!r) {
            fprintf(stderr, "forge chat: %s\n", err.msg);
            msgs.len = keep;
            msgs.data[keep] = 0;
            continue;
        }
        pthread_mutex_lock(&sig.lock);
        sig.req = r;
        pthread_mutex_unlock(&sig.lock);
        forge_request_wait(r);
        pthread_mutex_lock(&sig.lock);
        sig.req = NULL;
        pthread_mutex_unlock(&sig.lock);
        forge_request_release(r);
        fputc('\n', stdout);
        if (t.finish == FORGE_FINISH_CANCELLED) fputs("(stopped)\n", stdout);
        fflush(stdout);
        add_message(&msgs, "assistant", sb_str(&t.answer), t.answer.len);
        sb_free(&t.answer);
    }
    if (tty) fputc('\n', stdout);
    rc = 0;
out:
    forge_chat_template_free(tmpl);
    cli_session_close(&s);
out_nosession:
    if (have_sig_thread) {
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    close(sig.wake[0]);
    close(sig.wake[1]);
    sb_free(&msgs);
    sb_free(&line);
    sb_free(&req);
    free(system);
    return rc;
}
