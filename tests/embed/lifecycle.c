/* lifecycle.c: the request lifecycle and the library-wide hooks, as an embedder sees them:
 * built against the installed forge.h with pkg-config only (tests/embed/embed.test.sh).
 * Exit status 0 when every check holds; each failure prints a line. Under the sanitizer
 * suite (and valgrind, where installed) a use after free anywhere here fails the run. */
#include <forge.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                                    \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- hooks -------------------------------------------------------------------------- */

typedef struct {
    int lines, kv_lines;
} log_seen;

static void on_log(forge_log_level level, const char *msg, void *user) {
    log_seen *s = user;
    s->lines++;
    if (level == FORGE_LOG_INFO && strstr(msg, "KV cache")) s->kv_lines++;
}

typedef struct {
    uint64_t last, total;
    int calls;
    uint64_t stop_at; /* return false once done reaches this (0: never) */
} progress_seen;

static bool on_progress(uint64_t done, uint64_t total, void *user) {
    progress_seen *p = user;
    p->calls++;
    p->last = done;
    p->total = total;
    return !(p->stop_at && done >= p->stop_at);
}

/* ---- events ------------------------------------------------------------------------- */

typedef struct {
    atomic_int events, finals;
    atomic_int finish;
    pthread_t thread; /* the thread of the last event */
    char text[4096];
    size_t text_len;
    int completion_tokens;
    forge_request *self; /* released from inside the callback when set */
} sink;

static void on_event(const forge_event *ev, void *user) {
    sink *s = user;
    atomic_fetch_add(&s->events, 1);
    s->thread = pthread_self();
    if (ev->text_len && s->text_len + ev->text_len < sizeof s->text) {
        memcpy(s->text + s->text_len, ev->text, ev->text_len);
        s->text_len += ev->text_len;
    }
    if (ev->finish) {
        atomic_fetch_add(&s->finals, 1);
        atomic_store(&s->finish, (int)ev->finish);
        s->completion_tokens = ev->completion_tokens;
    }
    if (s->self) {
        forge_request *r = s->self;
        s->self = NULL;
        forge_request_release(r); /* allowed inside a callback: no further events */
    }
}

int main(void) {
    /* the version this program was built against is the one it runs with */
    CHECK(strcmp(forge_version(), FORGE_VERSION) == 0);
    CHECK(forge_version_number() == FORGE_VERSION_NUMBER);
    CHECK(FORGE_VERSION_NUMBER == FORGE_VERSION_MAJOR * 10000 + FORGE_VERSION_MINOR * 100 + FORGE_VERSION_PATCH);

    forge_error err;
    char dir[4096];
    if (forge_builtin_model_path(dir, sizeof dir, &err) != FORGE_OK) {
        printf("FAIL the built-in model is not found: %s\n", err.msg);
        return 1;
    }
    log_seen logs = {0};
    forge_log_set(on_log, &logs);

    /* progress and abort while loading */
    progress_seen ps = {.stop_at = 2};
    forge_model_params mp = forge_model_default_params();
    mp.progress = on_progress;
    mp.progress_user = &ps;
    CHECK(forge_model_open(dir, &mp, &err) == NULL && err.code == FORGE_E_CANCELLED);
    CHECK(ps.calls == 2 && ps.last == 2 && ps.total == 4);
    ps = (progress_seen){0};
    forge_model *m = forge_model_open(dir, &mp, &err);
    CHECK(m != NULL && ps.last == 4 && ps.total == 4 && ps.calls == 4);
    if (!m) return 1;
    forge_tokenizer *tok = forge_tokenizer_open(dir, &err);
    CHECK(tok != NULL);

    /* a zeroed engine params and a zeroed request with a prompt: greedy to EOS or the end */
    forge_engine_params ep = {0};
    forge_engine *e = forge_engine_create(m, tok, &ep, &err);
    CHECK(e != NULL);
    if (!e) return 1;
    CHECK(logs.kv_lines == 1); /* the engine's "KV cache: ..." line reached the callback */
    forge_log_set(NULL, NULL);

    sink s1 = {0};
    forge_request_params rp = {0};
    rp.prompt = "Once upon a time";
    rp.prompt_len = strlen(rp.prompt);
    rp.max_tokens = 12;
    forge_request *r = forge_engine_submit(e, &rp, on_event, &s1, &err);
    CHECK(r != NULL);
    forge_request_wait(r);
    CHECK(forge_request_done(r));
    CHECK(atomic_load(&s1.finals) == 1 && s1.text_len > 0);
    CHECK(!pthread_equal(s1.thread, pthread_self())); /* events come from the engine thread */
    /* stats read right after wait count the request */
    forge_engine_stats st;
    forge_engine_get_stats(e, &st);
    CHECK(st.requests_done == 1 && st.generated_tokens == s1.completion_tokens && st.running == 0);
    forge_request_release(r);

    /* greedy output of a zeroed request equals that of forge_request_default_params with
     * temperature 0: zero means default, field by field */
    sink s2 = {0};
    forge_request_params rp2 = forge_request_default_params();
    rp2.prompt = rp.prompt;
    rp2.prompt_len = rp.prompt_len;
    rp2.max_tokens = 12;
    rp2.sampling.temperature = 0;
    r = forge_engine_submit(e, &rp2, on_event, &s2, &err);
    forge_request_wait(r);
    forge_request_release(r);
    CHECK(s2.text_len == s1.text_len && memcmp(s2.text, s1.text, s1.text_len) == 0);

    /* release while running: cancelled, and no callback once release has returned. The
     * sink is freed right after release: a late event would be a use after free. */
    sink *s3 = calloc(1, sizeof *s3);
    rp.max_tokens = -1;
    rp.ignore_eos = true;
    r = forge_engine_submit(e, &rp, on_event, s3, &err);
    CHECK(r != NULL);
    forge_request_release(r);
    free(s3);

    /* a request still running when the engine is freed: its last event is CANCELLED and
     * comes from the engine thread; the handle outlives the engine */
    sink s5 = {0};
    forge_request *r5 = forge_engine_submit(e, &rp, on_event, &s5, &err);
    CHECK(r5 != NULL);
    forge_engine_free(e);
    CHECK(atomic_load(&s5.finals) == 1 && atomic_load(&s5.finish) == FORGE_FINISH_CANCELLED);
    CHECK(!pthread_equal(s5.thread, pthread_self()));
    forge_request_cancel(r5); /* the engine is gone: harmless (was a use after free) */
    forge_request_wait(r5);   /* returns at once */
    CHECK(forge_request_done(r5));
    CHECK(forge_request_seed(r5) != 0 || forge_request_seed(r5) == 0);
    forge_request_release(r5);

    /* manual_step: events run on the caller's thread, inside forge_engine_step */
    ep.manual_step = true;
    e = forge_engine_create(m, tok, &ep, &err);
    CHECK(e != NULL);
    sink s6 = {0};
    rp.max_tokens = 3;
    rp.ignore_eos = false;
    r = forge_engine_submit(e, &rp, on_event, &s6, &err);
    while (!forge_request_done(r)) CHECK(forge_engine_step(e) >= 0);
    CHECK(atomic_load(&s6.finals) == 1 && pthread_equal(s6.thread, pthread_self()));
    forge_request_release(r);

    /* release inside the callback: the first event is the last one */
    sink s4 = {0};
    rp.max_tokens = 50;
    r = forge_engine_submit(e, &rp, on_event, &s4, &err);
    s4.self = r;
    for (int i = 0; i < 100 && atomic_load(&s4.events) == 0; i++) forge_engine_step(e);
    for (int i = 0; i < 5; i++) forge_engine_step(e);
    CHECK(atomic_load(&s4.events) == 1);
    forge_engine_get_stats(e, &st);
    CHECK(st.running == 0 && st.waiting == 0 && st.kv_blocks_used == 0); /* it was cancelled */
    forge_engine_free(e);

    forge_tokenizer_close(tok);
    forge_model_close(m);
    printf("%s\n", failures ? "lifecycle: FAILED" : "lifecycle: ok");
    return failures != 0;
}
