/* The server through its C API, as an embedding program uses it: create (port 0), run on a
 * thread, answer a completion over a socket, stop from another thread, free; creation and
 * loading errors. The HTTP behaviour itself is tested by the shell tests beside this. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
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

int main(void) {
    RUN(serve_and_stop);
    RUN(stop_before_run_and_free_without_run);
    RUN(errors);
    return t_summary();
}
