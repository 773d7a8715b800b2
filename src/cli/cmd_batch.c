/* cmd_batch.c: forge batch (formats and the design in batch.h): the reader thread, the ring
 * of slots, engine and in-process server callbacks, retries, progress and the summary. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/batch.h"
#include "cli/commands.h"
#include "cli/session.h"
static void hist_add(hist *h, double ms) {
    int b = ms <= 1e-3 ? 0 : (int)(log(ms / 1e-3) / log(1.02));
    if (b < 0) b = 0;
    if (b >= HIST_BUCKETS) b = HIST_BUCKETS - 1;
    h->count[b]++;
    h->n++;
}

/* The p-th percentile (the bucket's geometric middle). */
static double hist_pct(const hist *h, double p) {
    if (!h->n) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)(h->n - 1) + 0.5) + 1, seen = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        seen += h->count[b];
        if (seen >= want) return 1e-3 * pow(1.02, b + 0.5);
    }
    return 1e-3 * pow(1.02, HIST_BUCKETS);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static slot *slot_of(batch *b, long seq) { return &b->slots[seq % b->ring]; }

void batch_random_hex(batch *b, char out[33]) {
    for (int half = 0; half < 2; half++) {
        uint64_t z = (b->rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        snprintf(out + 16 * half, 17, "%016llx", (unsigned long long)z);
    }
}

/* ---- completions (engine thread, server loop thread) ---------------------------------- */

/* A simple line's engine events. Everything the slot holds is written before it becomes
 * DONE under the lock; after that only the main thread touches it. */
static void on_event(const forge_event *ev, void *user) {
    slot *it = user;
    batch *b = it->b;
    sb_append(&it->text, ev->text, ev->text_len);
    double t = now_ms();
    if (ev->token >= 0) {
        if (it->last_ms > 0) {
            pthread_mutex_lock(&b->lock);
            hist_add(&b->itl, t - it->last_ms);
            pthread_mutex_unlock(&b->lock);
        }
        it->last_ms = t;
    }
    if (!ev->finish) return;
    it->finish = ev->finish;
    it->prompt_tokens = ev->prompt_tokens;
    it->completion_tokens = ev->completion_tokens;
    it->cached = ev->cached_tokens;
    it->ttft_ms = ev->ttft_ms;
    it->total_ms = ev->total_ms;
    if (ev->error) snprintf(it->error, sizeof it->error, "%s", ev->error);
    else if (ev->finish == FORGE_FINISH_CANCELLED) snprintf(it->error, sizeof it->error, "the request was cancelled");
    pthread_mutex_lock(&b->lock);
    if (ev->completion_tokens > 0) hist_add(&b->ttft, ev->ttft_ms);
    b->gen_tokens += ev->completion_tokens;
    b->in_flight--;
    b->completions++;
    it->state = SLOT_DONE;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* An OpenAI line's answer from the server. */
static void on_reply(int status, const char *body, size_t len, void *user) {
    slot *it = user;
    batch *b = it->b;
    bool busy = status == 503 && memmem(body, len, "\"code\":\"overloaded\"", 19) && !it->posted_idle;
    char *copy = busy ? NULL : malloc(len + 1);
    if (copy) {
        memcpy(copy, body, len);
        copy[len] = 0;
    }
    long long tokens = 0;
    if (status == 200 && copy) { /* usage.completion_tokens, for the throughput figure */
        const char *u = strstr(copy, "\"completion_tokens\":");
        if (u) tokens = atoll(u + 20);
    }
    pthread_mutex_lock(&b->lock);
    b->in_flight--;
    b->gen_tokens += tokens;
    if (busy) {
        it->state = SLOT_RETRY;
        b->n_retry++;
        b->retries++;
        b->busy_mark = b->completions;
    } else {
        b->completions++;
        it->status = status;
        it->reply = copy;
        it->reply_len = copy ? len : 0;
        if (!copy) {
            it->error_code = "server_error";
            snprintf(it->error, sizeof it->error, "out of memory keeping the answer");
        }
        it->state = SLOT_DONE;
    }
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* ---- submitting and writing ----------------------------------------------------------- */

/* Sends a parsed line to the engine or the server (lock not held). */
static void submit(batch *b, slot *it) {
    forge_error err;
    pthread_mutex_lock(&b->lock);
    it->posted_idle = b->in_flight == 0;
    b->in_flight++;
    it->state = SLOT_PENDING;
    pthread_mutex_unlock(&b->lock);
    forge_status st;
    if (it->openai) {
        st = forge_server_post(b->srv, it->url, it->body, it->body_len, on_reply, it, &err);
    } else {
        sb_reset(&it->text);
        it->last_ms = 0;
        it->req = forge_engine_submit(b->engine, &it->rp, on_event, it, &err);
        st = it->req ? FORGE_OK : err.code;
    }
    if (st == FORGE_OK) return;
    pthread_mutex_lock(&b->lock);
    b->in_flight--;
    if (st == FORGE_E_BUSY && !it->posted_idle) {
        it->state = SLOT_RETRY;
        b->n_retry++;
        b->retries++;
        b->busy_mark = b->completions;
    } else {
        it->state = SLOT_DONE;
        it->error_code = "server_error";
        snprintf(it->error, sizeof it->error, "%s", err.msg);
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- progress ---------------------------------------------------------------------------- */

static void progress(batch *b, long total, double t0, bool final) {
    double s = (now_ms() - t0) / 1e3;
    long done = b->done_lines + b->skipped_lines;
    double tps = s > 0 ? (double)b->gen_tokens / s : 0;
    fprintf(stderr, "\rforge batch: %ld", done);
    if (total >= 0) fprintf(stderr, "/%ld", total);
    fprintf(stderr, " lines, %ld failed, %.1f tok/s", b->failed_lines, tps);
    if (total > 0 && done > b->skipped_lines && done < total && !final) {
        double eta = s / (double)(done - b->skipped_lines) * (double)(total - done);
        fprintf(stderr, ", ETA %ld:%02ld", (long)eta / 60, (long)eta % 60);
    }
    fprintf(stderr, "\033[K%s", final ? "\n" : "");
}
/* ---- the reader thread ------------------------------------------------------------------ */

static void *reader_main(void *arg) {
    batch *b = arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->has_line && !b->reader_stop) pthread_cond_wait(&b->reader_cond, &b->lock);
        if (b->reader_stop) break;
        pthread_mutex_unlock(&b->lock);
        char *line = NULL;
        size_t cap = 0;
        /* only a blocked read may be cancelled (when the main thread gives up early) */
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        errno = 0;
        ssize_t len = getline(&line, &cap, b->in);
        int e = errno;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        pthread_mutex_lock(&b->lock);
        if (len < 0) {
            free(line);
            b->in_eof = true;
            b->in_errno = ferror(b->in) ? e : 0;
            pthread_cond_signal(&b->cond);
            break;
        }
        b->line = line;
        b->line_len = (size_t)len;
        b->has_line = true;
        pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* ---- the command ------------------------------------------------------------------------- */

typedef struct server_thread {
    forge_server *srv;
    forge_status st;
    forge_error err;
} server_thread;

static void *server_main(void *arg) {
    server_thread *t = arg;
    t->st = forge_server_run(t->srv, &t->err);
    return NULL;
}

int cmd_batch(int argc, char **argv) {
    cli_model_opts mo = {0};
    cli_sampling_opts so;
    cli_sampling_init(&so);
    const char *prompts = NULL, *output = NULL, *tmpl = NULL, *name = NULL;
    long max_tokens = 256, help = 0, resume = 0, quiet = 0, max_waiting = 0;
    cli_opt opts[40];
    int n = cli_model_options(opts, &mo, true);
    opts[n++] = (cli_opt){"prompts", OPT_STR, &prompts, "FILE: JSONL requests (- for stdin)"};
    opts[n++] = (cli_opt){"output", OPT_STR, &output, "FILE: write the results there (default: stdout)"};
    opts[n++] = (cli_opt){"resume", OPT_FLAG, &resume, "skip the lines whose custom_id/index --output already holds; append"};
    opts[n++] = (cli_opt){"chat-template", OPT_STR, &tmpl, "FILE: Jinja chat template for /v1/chat/completions lines"};
    opts[n++] = (cli_opt){"served-model-name", OPT_STR, &name, "NAME: the model name OpenAI lines may give (default: --model)"};
    opts[n++] = (cli_opt){"max-tokens", OPT_INT, &max_tokens, "N: default max_tokens of simple lines (256)"};
    opts[n++] = (cli_opt){"max-waiting", OPT_INT, &max_waiting, "N: the engine's queue (default 1024); fuller is retried"};
    n += cli_sampling_options(opts + n, &so);
    opts[n++] = (cli_opt){"quiet", OPT_FLAG, &quiet, "no progress line"};
    opts[n++] = (cli_opt){"help", OPT_FLAG, &help, "this help"};
    if (cli_parse("batch", argc, argv, opts, n, NULL, 0) < 0) return 2;
    if (help || !prompts) {
        cli_usage("batch", "--prompts FILE.jsonl [--output FILE [--resume]] [--model M] [options]", opts, n);
        return help ? 0 : 2;
    }
    if (resume && !output) {
        fprintf(stderr, "forge batch: --resume needs --output FILE\n");
        return 2;
    }
    if (max_tokens == 0 || max_tokens < -1 || max_tokens > INT_MAX) {
        fprintf(stderr, "forge batch: --max-tokens must be positive (or -1)\n");
        return 2;
    }
    if (mo.threads < 0 || mo.threads > 1024 || mo.max_model_len < 0 || mo.max_model_len > INT_MAX || mo.max_seqs < 0 ||
        mo.max_seqs > 4096 || mo.max_batched_tokens < 0 || mo.max_batched_tokens > 65536 || mo.kv_cache_mb < 0 || max_waiting < 0 ||
        max_waiting > INT_MAX) {
        fprintf(stderr, "forge batch: --threads, --max-model-len, --max-seqs, --max-batched-tokens and --kv-cache-mb "
                        "must be positive and sensible\n");
        return 2;
    }
    forge_dtype kvd;
    if (cli_kv_dtype(mo.kv_dtype, "batch", &kvd) != 0) return 2;

    /* the model folder: for generation_config.json (simple lines' defaults) and the server */
    char dir[4096];
    forge_error err;
    const char *model = mo.model && *mo.model ? mo.model : getenv("FORGE_MODEL");
    if (!model || !*model) {
        if (cli_default_model(dir, sizeof dir) != 0) {
            fprintf(stderr, "forge batch: no --model given, FORGE_MODEL unset, and the built-in model is missing\n");
            return 1;
        }
        if (!name) name = "stories260K";
    } else if (forge_model_resolve(model, &(forge_hub_params){.progress = true}, dir, sizeof dir, &err) != FORGE_OK) {
        fprintf(stderr, "forge batch: %s\n", err.msg);
        return 1;
    }
    if (!name) name = model;
    forge_generation_config gen;
    if (forge_generation_config_load(dir, &gen, &err) != FORGE_OK) {
        fprintf(stderr, "forge batch: %s\n", err.msg);
        return 1;
    }
    forge_sampling_params dflt;
    if (cli_sampling_apply(&gen, INT_MAX, &so, "batch", &dflt) != 0) return 2; /* no logit_bias here */

    FILE *in = strcmp(prompts, "-") ? fopen(prompts, "r") : stdin;
    if (!in) {
        fprintf(stderr, "forge batch: cannot open %s: %s\n", prompts, strerror(errno));
        return 1;
    }
    done_set done = {0};
    long n_prev = 0;
    if (resume && batch_load_done(output, &done, &n_prev) != 0) {
        fprintf(stderr, "forge batch: cannot resume from %s\n", output);
        if (in != stdin) fclose(in);
        batch_done_free(&done);
        return 1;
    }
    FILE *out = output ? fopen(output, resume ? "a" : "w") : stdout;
    if (!out) {
        fprintf(stderr, "forge batch: cannot write %s: %s\n", output, strerror(errno));
        if (in != stdin) fclose(in);
        batch_done_free(&done);
        return 1;
    }
    if (resume) fprintf(stderr, "forge batch: resuming: %ld lines of %s done already\n", n_prev, output);
    struct stat st_in;
    long total = in != stdin && fstat(fileno(in), &st_in) == 0 && S_ISREG(st_in.st_mode) ? batch_count_lines(prompts) : -1;
    bool show_progress = !quiet && isatty(2);

    forge_server_params sp = {
        .model = dir,
        .port = -1,
        .served_model_name = name,
        .chat_template = tmpl,
        .shutdown_timeout = -1,
        .model_params = {.max_model_len = (int)mo.max_model_len, .n_threads = (int)mo.threads},
        .engine = {.max_seqs = (int)mo.max_seqs, .max_batched_tokens = (int)mo.max_batched_tokens,
                   .max_waiting = (int)max_waiting, .kv_cache_mb = (size_t)mo.kv_cache_mb, .kv_dtype = kvd, .n_threads = (int)mo.threads},
    };
    batch *b = calloc(1, sizeof *b);
    server_thread th = {0};
    pthread_t tid, reader;
    bool started = false, reading = false;
    int rc = 0;
    if (!b) {
        fprintf(stderr, "forge batch: out of memory\n");
        rc = 1;
        goto out;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    pthread_cond_init(&b->reader_cond, NULL);
    b->in = in;
    b->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)b;
    if (!(b->srv = th.srv = forge_server_create(&sp, &err))) {
        fprintf(stderr, "forge batch: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    if (pthread_create(&tid, NULL, server_main, &th) != 0) {
        fprintf(stderr, "forge batch: cannot start the server thread\n");
        rc = 1;
        goto out;
    }
    started = true;
    if (forge_server_wait_ready(b->srv, &err) != FORGE_OK) {
        fprintf(stderr, "forge batch: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    b->engine = forge_server_engine(b->srv);
    long max_seqs = mo.max_seqs > 0 ? mo.max_seqs : 64;
    b->in_flight_max = 2 * max_seqs;
    b->ring = 8 * b->in_flight_max > 1024 ? 8 * b->in_flight_max : 1024;
    b->slots = calloc((size_t)b->ring, sizeof *b->slots);
    if (!b->slots) {
        fprintf(stderr, "forge batch: out of memory\n");
        rc = 1;
        goto out;
    }
    for (long i = 0; i < b->ring; i++) b->slots[i].b = b;
    if (pthread_create(&reader, NULL, reader_main, b) != 0) {
        fprintf(stderr, "forge batch: cannot start the reader thread\n");
        rc = 1;
        goto out;
    }
    reading = true;

    char *line = NULL;
    long index = 0;
    bool eof = false, last_openai = false, write_failed = false;
    strbuf o = STRBUF_INIT;
    double t0 = now_ms(), t_shown = 0;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        /* 1. write what is done, in order */
        bool worked = false;
        sb_reset(&o);
        while (b->head < b->next && slot_of(b, b->head)->state == SLOT_DONE) {
            slot *it = slot_of(b, b->head);
            pthread_mutex_unlock(&b->lock);
            batch_write_line(b, it, &o);
            bool failed = it->failed;
            batch_slot_clear(it);
            pthread_mutex_lock(&b->lock);
            b->done_lines++;
            if (failed) b->failed_lines++;
            b->head++;
            worked = true;
        }
        if (o.len) {
            pthread_mutex_unlock(&b->lock);
            if (fwrite(o.data, 1, o.len, out) != o.len || fflush(out) != 0) write_failed = true;
            pthread_mutex_lock(&b->lock);
        }
        if (write_failed || sb_failed(&o)) {
            fprintf(stderr, "forge batch: cannot write the output: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        /* 2. retry what the engine refused as busy, oldest first */
        bool may_retry = b->completions != b->busy_mark || b->in_flight == 0;
        long busy0 = b->retries; /* stop at the next busy answer */
        for (long seq = b->head; may_retry && b->n_retry > 0 && seq < b->next && b->in_flight < b->in_flight_max &&
                                 b->retries == busy0;
             seq++) {
            slot *it = slot_of(b, seq);
            if (it->state != SLOT_RETRY) continue;
            b->n_retry--;
            pthread_mutex_unlock(&b->lock);
            submit(b, it);
            pthread_mutex_lock(&b->lock);
            worked = true;
        }
        /* 3. read new lines while there is room */
        while (!eof && b->n_retry == 0 && b->next - b->head < b->ring && b->in_flight < b->in_flight_max) {
            if (!b->has_line) {
                eof = b->in_eof;
                break;
            }
            free(line);
            line = b->line;
            ssize_t len = (ssize_t)b->line_len;
            b->line = NULL;
            b->has_line = false;
            pthread_cond_signal(&b->reader_cond);
            pthread_mutex_unlock(&b->lock);
            ssize_t i = 0;
            while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) i++;
            if (i == len) {
                pthread_mutex_lock(&b->lock);
                continue;
            }
            slot *it = slot_of(b, b->next);
            it->index = index++;
            json_doc *d = json_parse(line, (size_t)len, &err);
            const json_value *root = d ? json_root(d) : NULL;
            bool ready = false;
            if (!d) {
                it->openai = last_openai;
                it->error_code = "invalid_json";
                snprintf(it->error, sizeof it->error, "%s", err.msg);
            } else if ((it->openai = last_openai = batch_is_openai_line(root))) {
                if (resume && batch_done_has(&done, it, json_get(root, "custom_id"))) {
                    json_free(d);
                    batch_slot_clear(it);
                    pthread_mutex_lock(&b->lock);
                    b->skipped_lines++;
                    continue;
                }
                ready = batch_parse_openai(root, it) == 0;
                json_free(d);
            } else {
                if (resume && batch_done_has(&done, it, NULL)) {
                    json_free(d);
                    batch_slot_clear(it);
                    pthread_mutex_lock(&b->lock);
                    b->skipped_lines++;
                    continue;
                }
                it->doc = d;
                if (!json_is(root, JSON_OBJECT)) snprintf(it->error, sizeof it->error, "the line is not a JSON object");
                else ready = batch_parse_simple(root, &dflt, max_tokens, it) == 0;
            }
            pthread_mutex_lock(&b->lock);
            it->state = ready ? SLOT_PENDING : SLOT_DONE;
            b->next++;
            pthread_mutex_unlock(&b->lock);
            if (ready) submit(b, it);
            pthread_mutex_lock(&b->lock);
            worked = true;
        }
        if (eof && b->head == b->next) break;
        if (show_progress && now_ms() - t_shown > 250) {
            progress(b, total, t0, false);
            t_shown = now_ms();
        }
        if (worked) continue;
        if (show_progress) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&b->cond, &b->lock, &ts);
        } else {
            pthread_cond_wait(&b->cond, &b->lock);
        }
    }
    pthread_mutex_unlock(&b->lock);
    free(line);
    sb_free(&o);
    if (b->in_errno) {
        fprintf(stderr, "forge batch: reading %s: %s\n", prompts, strerror(b->in_errno));
        rc = 1;
    }
    if (show_progress) progress(b, total, t0, true);
    if (b->failed_lines) rc = 1;
    double wall = (now_ms() - t0) / 1e3;
    forge_engine_stats st;
    forge_engine_get_stats(b->engine, &st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr,
            "forge: %ld requests (%ld failed%s), %lld tokens generated in %.2f s: %.1f tok/s; TTFT p50 %.0f ms p90 %.0f ms "
            "p99 %.0f ms; ITL p50 %.1f ms p90 %.1f ms p99 %.1f ms; %lld preemptions; prefix cache %lld of %lld prompt "
            "tokens; scheduler overhead %.2f%% of step time; %ld busy retries; peak RSS %.0f MB\n",
            b->done_lines, b->failed_lines, b->skipped_lines ? ", others skipped as done" : "", b->gen_tokens, wall,
            (double)b->gen_tokens / (wall > 0 ? wall : 1), hist_pct(&b->ttft, 50), hist_pct(&b->ttft, 90),
            hist_pct(&b->ttft, 99), hist_pct(&b->itl, 50), hist_pct(&b->itl, 90), hist_pct(&b->itl, 99), st.preemptions,
            st.prefix_hits, st.prefix_queries,
            st.step_seconds > 0 ? 100.0 * (st.step_seconds - st.forward_seconds) / st.step_seconds : 0, b->retries,
            (double)ru.ru_maxrss / 1024.0);
out:
    if (reading) {
        pthread_mutex_lock(&b->lock);
        bool at_eof = b->in_eof;
        b->reader_stop = true;
        pthread_cond_signal(&b->reader_cond);
        pthread_mutex_unlock(&b->lock);
        if (!at_eof) pthread_cancel(reader); /* stopped early: the reader may wait in a read */
        pthread_join(reader, NULL);
        free(b->line);
    }
    if (started) {
        /* anything still running (after a write error) is cancelled: wait for the ends */
        if (b->slots)
            for (long seq = b->head; seq < b->next; seq++) {
                slot *it = slot_of(b, seq);
                if (it->req) forge_request_cancel(it->req);
            }
        forge_server_stop(b->srv);
        pthread_join(tid, NULL);
    }
    if (b && b->srv) forge_server_free(b->srv);
    if (b) {
        for (long i = 0; b->slots && i < b->ring; i++) {
            batch_slot_clear(&b->slots[i]);
            sb_free(&b->slots[i].text);
        }
        free(b->slots);
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->cond);
        pthread_cond_destroy(&b->reader_cond);
        free(b);
    }
    batch_done_free(&done);
    if (in != stdin) fclose(in);
    if (out != stdout && fclose(out) != 0) rc = 1;
    else if (out == stdout) fflush(stdout);
    return rc;
}
