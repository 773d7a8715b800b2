/* The server through its C API, as an embedding program uses it: create (port 0), run on a
 * thread, answer a completion over a socket, stop from another thread, free; creation and
 * loading errors. The HTTP behaviour itself is tested by the shell tests beside this. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <stdint.h>
#include <unistd.h>

#include "forge.h"
#include "test.h"

#define DIR "tests/fixtures/stories260K"

typedef struct {
    forge_server *s;
    forge_status st;
    forge_error err;
} runner;

static void *run_main(void *arg) {
    runner *r = arg;
    r->st = forge_server_run(r->s, &r->err);
    return NULL;
}

/* One HTTP exchange with Connection: close; returns the whole answer (malloc'd) or NULL. */
static char *http(int port, const char *req) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    size_t n = strlen(req);
    if (write(fd, req, n) != (ssize_t)n) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(fd, buf + len, cap - len - 1)) > 0) len += (size_t)got;
    close(fd);
    if (buf) buf[len] = 0;
    return buf;
}

/* Polls /health (bounded) until 200. */
static bool wait_ready(int port) {
    for (int i = 0; i < 2000; i++) {
        char *a = http(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        bool ok = a && !strncmp(a, "HTTP/1.1 200", 12);
        free(a);
        if (ok) return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling interval of a bounded readiness loop */
    }
    return false;
}

TEST(serve_and_stop) {
    forge_error err;
    forge_server_params p = {.model = DIR, .port = 0, .served_model_name = "m"};
    forge_server *s = forge_server_create(&p, &err);
    CHECKF(s, "%s", err.msg);
    if (!s) return;
    int port = forge_server_port(s);
    CHECK(port > 0);
    runner r = {.s = s};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_main, &r) == 0);
    CHECK(wait_ready(port));
    const char body[] = "{\"model\": \"m\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0}";
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             sizeof body - 1, body);
    char *a = http(port, req);
    CHECK(a && !strncmp(a, "HTTP/1.1 200", 12));
    /* the first greedy tokens of expected-greedy.json's completion */
    CHECKF(a && strstr(a, "\"text\":\", there was a little girl\""), "%s", a ? a : "(null)");
    free(a);
    forge_server_stop(s);
    pthread_join(t, NULL);
    CHECK_EQ_INT(r.st, FORGE_OK);
    forge_server_free(s);
}

TEST(stop_before_run_and_free_without_run) {
    forge_error err;
    forge_server_params p = {.model = DIR};
    forge_server *s = forge_server_create(&p, &err);
    CHECKF(s, "%s", err.msg);
    if (!s) return;
    forge_server_stop(s); /* a stop that comes before run: run returns at once */
    CHECK_EQ_INT(forge_server_run(s, &err), FORGE_OK);
    forge_server_free(s);
    s = forge_server_create(&p, &err);
    CHECK(s);
    forge_server_free(s); /* never run: waits for the loader, frees everything */
}

TEST(errors) {
    forge_error err;
    forge_server_params p = {.model = DIR, .host = "203.0.113.1"}; /* not an address of this machine */
    CHECK(!forge_server_create(&p, &err));
    CHECK_EQ_INT(err.code, FORGE_E_IO);
    CHECK(strstr(err.msg, "cannot listen"));
    unsetenv("FORGE_MODEL");
    forge_server_params none = {0};
    CHECK(!forge_server_create(&none, &err));
    CHECK_EQ_INT(err.code, FORGE_E_INVALID);
    forge_server_params missing = {.model = "tests/fixtures/no-such-model-dir"};
    forge_server *s = forge_server_create(&missing, &err); /* loading fails in run */
    CHECK(s);
    if (s) {
        forge_status st = forge_server_run(s, &err);
        CHECK(st != FORGE_OK);
        CHECKF(strstr(err.msg, "no-such-model-dir"), "%s", err.msg);
        forge_server_free(s);
    }
    forge_server_params bad_tpl = {.model = DIR, .chat_template = "tests/fixtures/server/none.jinja"};
    s = forge_server_create(&bad_tpl, &err);
    CHECK(s);
    if (s) {
        CHECK(forge_server_run(s, &err) != FORGE_OK);
        CHECKF(strstr(err.msg, "none.jinja"), "%s", err.msg);
        forge_server_free(s);
    }
}

/* ---- in-process requests (forge_server_post) ---------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n_done;
    int status[8];
    char body[8][2048];
} replies;

static replies g_rep = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, {{0}}};

static void on_reply(int status, const char *body, size_t len, void *user) {
    int i = (int)(intptr_t)user;
    pthread_mutex_lock(&g_rep.lock);
    g_rep.status[i] = status;
    snprintf(g_rep.body[i], sizeof g_rep.body[i], "%.*s", (int)len, body);
    g_rep.n_done++;
    pthread_cond_broadcast(&g_rep.cond);
    pthread_mutex_unlock(&g_rep.lock);
}

static void wait_replies(int n) {
    pthread_mutex_lock(&g_rep.lock);
    while (g_rep.n_done < n) pthread_cond_wait(&g_rep.cond, &g_rep.lock);
    pthread_mutex_unlock(&g_rep.lock);
}

TEST(in_process) {
    forge_error err;
    g_rep.n_done = 0;
    forge_server_params p = {.model = DIR, .port = -1, .served_model_name = "m",
                             .chat_template = "tests/fixtures/server/chat_template.jinja"};
    forge_server *s = forge_server_create(&p, &err);
    CHECKF(s, "%s", err.msg);
    if (!s) return;
    CHECK_EQ_INT(forge_server_port(s), -1);
    /* posted before the loop runs and while the model loads: they wait for it */
    const char cmpl[] = "{\"model\": \"m\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0}";
    CHECK_EQ_INT(forge_server_post(s, "/v1/completions", cmpl, sizeof cmpl - 1, on_reply, (void *)0, &err), FORGE_OK);
    runner r = {.s = s};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_main, &r) == 0);
    CHECK_EQ_INT(forge_server_wait_ready(s, &err), FORGE_OK);
    CHECK(forge_server_engine(s) != NULL);
    const char chat[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 4}";
    const char stream[] = "{\"prompt\": \"a\", \"stream\": true}";
    const char bad[] = "{\"prompt\": \"a\", \"max_tokens\": \"x\"}";
    CHECK_EQ_INT(forge_server_post(s, "/v1/chat/completions", chat, sizeof chat - 1, on_reply, (void *)1, &err), FORGE_OK);
    CHECK_EQ_INT(forge_server_post(s, "/v1/completions", stream, sizeof stream - 1, on_reply, (void *)2, &err), FORGE_OK);
    CHECK_EQ_INT(forge_server_post(s, "/v1/completions", bad, sizeof bad - 1, on_reply, (void *)3, &err), FORGE_OK);
    CHECK_EQ_INT(forge_server_post(s, "/tokenize", "{}", 2, on_reply, (void *)4, &err), FORGE_OK);
    CHECK_EQ_INT(forge_server_post(s, "/v1/completions", "[1]", 3, on_reply, (void *)5, &err), FORGE_OK);
    CHECK_EQ_INT(forge_server_post(NULL, "/v1/completions", "{}", 2, on_reply, NULL, &err), FORGE_E_INVALID);
    CHECK_EQ_INT(forge_server_post(s, "/v1/completions", "{}", 2, NULL, NULL, &err), FORGE_E_INVALID);
    wait_replies(6);
    CHECK_EQ_INT(g_rep.status[0], 200);
    CHECKF(strstr(g_rep.body[0], "\"text\":\", there was a little girl\""), "%s", g_rep.body[0]);
    CHECK_EQ_INT(g_rep.status[1], 200);
    CHECKF(strstr(g_rep.body[1], "\"object\":\"chat.completion\""), "%s", g_rep.body[1]);
    CHECK_EQ_INT(g_rep.status[2], 400);
    CHECKF(strstr(g_rep.body[2], "\"param\":\"stream\""), "%s", g_rep.body[2]);
    CHECK_EQ_INT(g_rep.status[3], 400);
    CHECKF(strstr(g_rep.body[3], "\"param\":\"max_tokens\""), "%s", g_rep.body[3]);
    CHECK_EQ_INT(g_rep.status[4], 404);
    CHECK_EQ_INT(g_rep.status[5], 400);
    CHECKF(strstr(g_rep.body[5], "must be a JSON object"), "%s", g_rep.body[5]);
    forge_server_stop(s);
    pthread_join(t, NULL);
    CHECK_EQ_INT(r.st, FORGE_OK);
    /* posted after the stop, never started: answered 503 by free */
    CHECK_EQ_INT(forge_server_post(s, "/v1/completions", cmpl, sizeof cmpl - 1, on_reply, (void *)6, &err), FORGE_OK);
    forge_server_free(s);
    wait_replies(7);
    CHECK_EQ_INT(g_rep.status[6], 503);
}

TEST(in_process_load_failure) {
    forge_error err;
    forge_server_params p = {.model = "tests/fixtures/no-such-model-dir", .port = -1};
    forge_server *s = forge_server_create(&p, &err);
    CHECK(s);
    if (!s) return;
    CHECK(forge_server_wait_ready(s, &err) != FORGE_OK);
    CHECKF(strstr(err.msg, "no-such-model-dir"), "%s", err.msg);
    CHECK(forge_server_engine(s) == NULL);
    forge_server_free(s);
    forge_server_params bad_port = {.model = DIR, .port = -2};
    CHECK(!forge_server_create(&bad_port, &err));
    CHECK_EQ_INT(err.code, FORGE_E_INVALID);
}

int main(void) {
    RUN(in_process);
    RUN(in_process_load_failure);
    RUN(serve_and_stop);
    RUN(stop_before_run_and_free_without_run);
    RUN(errors);
    return t_summary();
}
