/* Allocation fault injection (issue 12): the Nth allocation fails, for every N from 1 to the
 * number a run makes, while a chat template loads and renders, a tokenizer loads and encodes,
 * a model opens, and chat answers go through the reasoning and tool-call parsers. Each run must end cleanly: the same result as without the fault (an
 * allocation whose failure has a fallback), or a failure with a message; never a crash, and
 * under the ASan build (make asan) nothing leaked, checked after every N.
 *
 * The Makefile links this program with -Wl,--wrap for the allocation functions, so that the
 * library's calls (libforge.a is linked statically) go through the counters below; the
 * allocations of the shared libraries it uses (yajl, pcre2, libc itself) are not counted. */
#include <execinfo.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chatout.h"
#include "forge.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- the failing allocator --------------------------------------------------------------- */

static atomic_long g_count;   /* allocations counted since arm() */
static atomic_long g_fail_at; /* the one to fail (1-based); 0: none */
static atomic_bool g_armed, g_failed;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);

static bool fail_now(void) {
    if (!atomic_load(&g_armed)) return false;
    long k = atomic_fetch_add(&g_count, 1) + 1;
    if (k != atomic_load(&g_fail_at)) return false;
    atomic_store(&g_failed, true);
    if (getenv("FAULT_TRACE")) { /* FAULT_TRACE=1: where each failed allocation was made */
        void *frames[12];
        int n = backtrace(frames, 12);
        backtrace_symbols_fd(frames, n, 1);
    }
    return true;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) { return fail_now() ? NULL : __real_aligned_alloc(align, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now() ? NULL : __real_strndup(s, n); }
int __wrap_vasprintf(char **out, const char *fmt, va_list ap) {
    if (fail_now()) {
        *out = NULL;
        return -1;
    }
    return __real_vasprintf(out, fmt, ap);
}

static void arm(long fail_at) {
    atomic_store(&g_count, 0);
    atomic_store(&g_fail_at, fail_at);
    atomic_store(&g_failed, false);
    atomic_store(&g_armed, true);
}
static void disarm(void) { atomic_store(&g_armed, false); }

/* ---- subjects: each returns its result as text (malloc'd, before arm) or NULL with err ---- */

typedef struct outcome {
    bool ok;
    char text[1100]; /* ok: a digest of the result; else the error message */
    forge_status code;
} outcome;

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = __real_malloc((size_t)len + 1);
    if (s && fread(s, 1, (size_t)len, f) != (size_t)len) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) s[len] = 0;
    *n = (size_t)len;
    return s;
}

static void digest(outcome *o, const char *s, size_t n) {
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    snprintf(o->text, sizeof o->text, "%zu bytes, hash %016llx", n, h);
}

static const char *g_model_dir;
static char *g_request;
static size_t g_request_len;

/* forge_chat_template_load + render (tools, tool calls, special tokens) */
static void subject_template(outcome *o) {
    forge_error err = {0};
    forge_chat_template *t = forge_chat_template_load(g_model_dir, NULL, &err);
    char *out = NULL;
    size_t n = 0;
    forge_status s = t ? forge_chat_template_render(t, g_request, g_request_len, &out, &n, &err) : err.code;
    o->ok = t && s == FORGE_OK;
    o->code = o->ok ? FORGE_OK : s;
    if (o->ok) digest(o, out, n);
    else snprintf(o->text, sizeof o->text, "%s", err.msg);
    free(out);
    forge_chat_template_free(t);
}

static const char *g_tok_dir; /* a folder, or NULL: g_tok_json */
static char *g_tok_json;
static size_t g_tok_json_len;

/* forge_tokenizer_open (or _load) + encode + decode */
static void subject_tokenizer(outcome *o) {
    forge_error err = {0};
    forge_tokenizer *tok = g_tok_dir ? forge_tokenizer_open(g_tok_dir, &err)
                                     : forge_tokenizer_load(g_tok_json, g_tok_json_len, NULL, 0, &err);
    forge_status s = tok ? FORGE_OK : err.code;
    forge_tokens ids = {0};
    static const char text[] = "Once upon a time, there was a little girl named Lily. <s> caf\xc3\xa9 \xf0\x9f\x98\x80!";
    if (s == FORGE_OK) s = forge_tokenizer_encode(tok, text, sizeof text - 1, FORGE_ENCODE_ADD_SPECIAL, &ids, &err);
    char *dec = NULL;
    size_t n = 0;
    if (s == FORGE_OK) {
        dec = forge_tokenizer_decode(tok, ids.ids, ids.n, 0, &n, &err);
        if (!dec) s = err.code ? err.code : FORGE_E_NOMEM;
    }
    o->ok = s == FORGE_OK;
    o->code = s;
    if (o->ok) {
        char buf[64];
        snprintf(buf, sizeof buf, "%zu ids, ", ids.n);
        digest(o, dec, n);
        size_t l = strlen(buf);
        memmove(o->text + l, o->text, sizeof o->text - l - 1);
        memcpy(o->text, buf, l);
    } else snprintf(o->text, sizeof o->text, "%s", err.msg[0] ? err.msg : "");
    free(dec);
    forge_tokens_free(&ids);
    forge_tokenizer_close(tok);
}

static const char *g_weights_dir;

/* forge_model_open (config, safetensors header, weights) + its info */
static void subject_model(outcome *o) {
    forge_error err = {0};
    forge_model_params p = {.max_model_len = 64, .n_threads = 1};
    forge_model *m = forge_model_open(g_weights_dir, &p, &err);
    o->ok = m != NULL;
    o->code = m ? FORGE_OK : err.code;
    if (m) {
        const forge_model_info *i = forge_model_get_info(m);
        snprintf(o->text, sizeof o->text, "%s vocab %d layers %d ctx %d", i->model_type, i->vocab_size, i->n_layers,
                 i->context_len);
    } else snprintf(o->text, sizeof o->text, "%s", err.msg);
    forge_model_close(m);
}

/* ---- the driver --------------------------------------------------------------------------- */

static void fail_every_allocation(const char *name, void (*subject)(outcome *)) {
    outcome base;
    arm(0);
    subject(&base);
    long total = atomic_load(&g_count);
    disarm();
    /* a run may fail without faults (a template's raise_exception): then it must fail the same
     * way or run out of memory */
    CHECKF(base.ok || base.code != FORGE_E_NOMEM, "%s: out of memory without faults: %s", name, base.text);
    long nomem = 0, same = 0, other = 0;
#ifdef HAVE_LSAN
    long last_check = 0;
    static bool leaked; /* a leak stays reported by every later check: report the first only */
#endif
    long only = getenv("FAULT_ONLY") ? atol(getenv("FAULT_ONLY")) : 0; /* FAULT_ONLY=N: that one */
    for (long n = only ? only : 1; n <= (only ? only : total); n++) {
        outcome o;
        arm(n);
        subject(&o);
        bool failed = atomic_load(&g_failed);
        disarm();
        if (!failed) continue; /* this run made fewer allocations */
        if (o.ok || (!base.ok && o.code == base.code && !strcmp(o.text, base.text))) {
            CHECKF(o.ok == base.ok && !strcmp(o.text, base.text), "%s: allocation %ld failed, result \"%s\", want \"%s\"", name, n, o.text,
                   base.text);
            same++;
        } else {
            CHECKF(o.text[0], "%s: allocation %ld failed: status %d without a message", name, n, o.code);
            if (o.code == FORGE_E_NOMEM) nomem++;
            else other++;
            /* out of memory is what went wrong, whatever the step that ran out */
            CHECKF(o.code == FORGE_E_NOMEM, "%s: allocation %ld failed: status %d: %s", name, n, o.code, o.text);
        }
#ifdef HAVE_LSAN
        /* a leak stays until the end, so a check every 16 runs (each scans the heap: ~7 ms)
         * misses none; the first one found is reported with the runs that may have made it */
        if (!leaked && (n % 16 == 0 || n == total) && __lsan_do_recoverable_leak_check()) {
            CHECKF(0, "%s: leak after one of allocations %ld..%ld failed (FAULT_ONLY=N to run one)", name,
                   n > last_check ? last_check + 1 : n, n);
            leaked = true;
        }
        if (n % 16 == 0) last_check = n;
#endif
    }
#ifdef HAVE_LSAN
    CHECKF(leaked || !__lsan_do_recoverable_leak_check(), "%s: leak after one of allocations %ld..%ld failed", name,
           last_check + 1, total);
#endif
    printf("    %s: %ld allocations; failed each: %ld out of memory, %ld other errors, %ld recovered\n", name, total,
           nomem, other, same);
}

/* templates with tools, tool calls, macros, namespaces, raise_exception */
TEST(template_faults) {
    static const char *const cases[][2] = {
        {"qwen3-jinja", "qwen3-jinja--tool_call_string_args"},
        {"llama3.2", "llama3.2--tools_offered"},
        {"mistral-nemo-jinja", "mistral-nemo-jinja--tool_call_object_args"},
        {"mistral", "mistral--roles_out_of_order"}, /* raise_exception */
        {"qwen3-config", "qwen3-config--thinking_disabled"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[256], req[256];
        snprintf(dir, sizeof dir, "tests/fixtures/templates/models/%s", cases[i][0]);
        snprintf(req, sizeof req, "tests/fixtures/templates/cli/%s.request.json", cases[i][1]);
        g_model_dir = dir;
        g_request = read_file(req, &g_request_len);
        CHECKF(g_request != NULL, "cannot read %s", req);
        if (!g_request) continue;
        fail_every_allocation(cases[i][1], subject_template);
        free(g_request);
    }
}

/* a whole tokenizer folder, then tokenizer.json variants: added tokens, regex splits,
 * Metaspace, digits */
TEST(tokenizer_faults) {
    g_tok_dir = "tests/fixtures/stories260K";
    fail_every_allocation("stories260K tokenizer", subject_tokenizer);
    static const char *const variants[] = {"added-flags", "split-Isolated", "metaspace-first", "digits"};
    g_tok_dir = NULL;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/tokenizers/variants/%s.json", variants[i]);
        g_tok_json = read_file(path, &g_tok_json_len);
        CHECKF(g_tok_json != NULL, "cannot read %s", path);
        if (!g_tok_json) continue;
        fail_every_allocation(variants[i], subject_tokenizer);
        free(g_tok_json);
    }
}
TEST(model_faults) { fail_every_allocation("model", subject_model); }

/* a chat answer through the parsers (src/chat), fed in pieces: the message, or the parser
 * reports the failure (an answer must not lose a call to a failed allocation unnoticed) */
static const char *g_answer;
static int g_family;

typedef struct answer_msg {
    strbuf all; /* every event: kind, text, arguments */
} answer_msg;

static void answer_ev(void *user, chat_ev_kind kind, const char *a, size_t an, const char *b, size_t bn) {
    answer_msg *m = user;
    sb_putc(&m->all, (char)('0' + kind));
    sb_append(&m->all, a, an);
    sb_putc(&m->all, '|');
    sb_append(&m->all, b, bn);
    sb_putc(&m->all, '|');
}

static void subject_answer(outcome *o) {
    answer_msg m = {STRBUF_INIT};
    chat_out c;
    chat_out_init(&c, true, false, (tc_family)g_family, true, answer_ev, &m);
    size_t n = strlen(g_answer);
    for (size_t at = 0; at < n; at += 7) chat_out_feed(&c, g_answer + at, n - at < 7 ? n - at : 7);
    chat_out_finish(&c);
    o->ok = !chat_out_failed(&c) && !sb_failed(&m.all);
    o->code = o->ok ? FORGE_OK : FORGE_E_NOMEM;
    if (o->ok) digest(o, sb_str(&m.all), m.all.len);
    else snprintf(o->text, sizeof o->text, "out of memory parsing the answer");
    chat_out_free(&c);
    sb_free(&m.all);
}

TEST(answer_faults) {
    static const struct {
        int family;
        const char *text;
    } cases[] = {
        {TC_FAMILY_HERMES, "<think>\nweather <tool_call>x</tool_call>\n</think>\n\nLet me check.\n<tool_call>\n"
                           "{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}\n</tool_call>\n"
                           "<tool_call>{bad}</tool_call> done "},
        {TC_FAMILY_LLAMA3_JSON, "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": [1, 2]}}; {\"name\": \"b\"}"},
        {TC_FAMILY_MISTRAL, "Ok. [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"k\": \"v\"}}]"},
        {TC_FAMILY_MISTRAL, "[TOOL_CALLS]a[ARGS]{\"k\": 1}[TOOL_CALLS]b[ARGS]{}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        g_family = cases[i].family;
        g_answer = cases[i].text;
        char name[64];
        snprintf(name, sizeof name, "answer %zu (%s)", i, tc_family_name((tc_family)g_family));
        fail_every_allocation(name, subject_answer);
    }
}

int main(void) {
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    g_weights_dir = "tests/fixtures/stories260K";
    RUN(template_faults);
    RUN(tokenizer_faults);
    RUN(model_faults);
    RUN(answer_faults);
    return t_summary();
}
