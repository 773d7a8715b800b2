/* The public chat-template API: where templates come from, special tokens, named templates,
 * request validation (every malformed request is a clear error, never a crash), template
 * errors, the sandbox limits, concurrent renders, and render speed. Expected prompts here
 * are written by hand from the templates' text. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "forge.h"
#include "test.h"

#define FIX "tests/fixtures/templates/models/"

static char *render(forge_chat_template *t, const char *req, forge_status *st, forge_error *err) {
    char *out = NULL;
    size_t n = 0;
    *st = forge_chat_template_render(t, req, strlen(req), &out, &n, err);
    if (*st == FORGE_OK && out && strlen(out) != n) *st = FORGE_E_INTERNAL;
    return out;
}

static forge_chat_template *from_source(const char *src, const char *cfg) {
    forge_error err;
    forge_chat_template *t = forge_chat_template_create(src, src ? strlen(src) : 0, cfg, cfg ? strlen(cfg) : 0, &err);
    if (!t) printf("    create failed: %s\n", err.msg);
    return t;
}

/* renders req and checks the output */
static void expect_out(forge_chat_template *t, const char *req, const char *want) {
    forge_error err;
    forge_status st;
    char *out = render(t, req, &st, &err);
    CHECKF(st == FORGE_OK, "render %s: %s", req, err.msg);
    if (st == FORGE_OK) CHECKF(!strcmp(out, want), "render %s:\n      got  \"%s\"\n      want \"%s\"", req, out, want);
    free(out);
}

/* renders req and checks the error code and that the message contains needle */
static void expect_err(forge_chat_template *t, const char *req, forge_status code, const char *needle) {
    forge_error err;
    forge_status st;
    char *out = render(t, req, &st, &err);
    CHECKF(st == code, "render %s: status %d (%s), want %d", req, st, st ? err.msg : "ok", code);
    if (st != FORGE_OK) CHECKF(strstr(err.msg, needle) != NULL, "render %s: message \"%s\" lacks \"%s\"", req, err.msg, needle);
    free(out);
}

TEST(template_sources) {
    forge_error err;
    /* tokenizer_config.json's chat_template */
    forge_chat_template *t = forge_chat_template_load(FIX "smollm2", NULL, &err);
    CHECKF(t != NULL, "%s", err.msg);
    if (!t) return;
    CHECK(strstr(forge_chat_template_origin(t), "tokenizer_config.json") != NULL);
    expect_out(t, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}",
               "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
               "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    forge_chat_template_free(t);
    /* chat_template.jinja beside the config wins */
    t = forge_chat_template_load(FIX "smollm3-jinja", NULL, &err);
    CHECKF(t != NULL, "%s", err.msg);
    if (t) CHECK(strstr(forge_chat_template_origin(t), "chat_template.jinja") != NULL);
    forge_chat_template_free(t);
    /* an explicit file wins over both */
    t = forge_chat_template_load(FIX "smollm2", FIX "named-templates/../qwen2.5-jinja/chat_template.jinja", &err);
    CHECKF(t != NULL, "%s", err.msg);
    if (t) {
        expect_out(t, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"add_generation_prompt\": false}",
                   "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                   "<|im_start|>user\nHi<|im_end|>\n");
        forge_chat_template_free(t);
    }
    /* no template anywhere */
    char dir[] = "/tmp/forge_tpl_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"bos_token\": \"<s>\", \"chat_template\": null}", f);
        fclose(f);
    }
    t = forge_chat_template_load(dir, NULL, &err);
    CHECK(t == NULL && err.code == FORGE_E_NOT_FOUND && strstr(err.msg, "no chat template"));
    forge_chat_template_free(t);
    unlink(path);
    rmdir(dir);
    t = forge_chat_template_load("/nonexistent/model", NULL, &err);
    CHECK(t == NULL && err.code == FORGE_E_NOT_FOUND);
    t = forge_chat_template_load(FIX "smollm2", "/nonexistent/x.jinja", &err);
    CHECKF(t == NULL && (err.code == FORGE_E_IO || err.code == FORGE_E_NOT_FOUND) && strstr(err.msg, "x.jinja"), "%s",
           err.msg);
    forge_chat_template_free(t);
}

TEST(special_tokens) {
    forge_chat_template *t = from_source(
        "{{ bos_token }}|{{ eos_token }}|{{ unk_token is defined }}|{{ pad_token is defined }}|{{ additional_special_tokens }}",
        "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\", \"unk_token\": null,"
        " \"additional_special_tokens\": [\"<a>\", {\"content\": \"<b>\"}]}");
    if (!t) return;
    expect_out(t, "{\"messages\": []}", "<s>|</s>|False|False|['<a>', '<b>']");
    forge_chat_template_free(t);
    /* no config: no special tokens */
    t = from_source("[{{ bos_token }}]", NULL);
    if (t) expect_out(t, "{\"messages\": []}", "[]");
    forge_chat_template_free(t);
    /* kwargs override tokens and defaults */
    t = from_source("{{ bos_token }}{{ add_generation_prompt }}{{ enable_thinking }}", "{\"bos_token\": \"B\"}");
    if (t) {
        expect_out(t, "{\"messages\": [], \"chat_template_kwargs\": {\"bos_token\": \"X\", \"enable_thinking\": false}}",
                   "XTrueFalse");
        expect_out(t, "{\"messages\": [], \"add_generation_prompt\": false}", "BFalse");
    }
    forge_chat_template_free(t);
}

TEST(named_templates) {
    const char *cfg = "{\"chat_template\": [{\"name\": \"default\", \"template\": \"D{{ tools is none }}\"},"
                      " {\"name\": \"tool_use\", \"template\": \"T{{ tools|length }}\"}]}";
    forge_chat_template *t = from_source(NULL, cfg);
    if (!t) return;
    expect_out(t, "{\"messages\": []}", "DTrue");
    expect_out(t, "{\"messages\": [], \"tools\": null}", "DTrue");
    expect_out(t, "{\"messages\": [], \"tools\": [{\"type\": \"function\"}]}", "T1");
    forge_chat_template_free(t);
    t = from_source(NULL, "{\"chat_template\": [{\"name\": \"rag\", \"template\": \"R\"}]}");
    if (t) expect_err(t, "{\"messages\": []}", FORGE_E_INVALID, "no default");
    forge_chat_template_free(t);
    forge_error err;
    t = forge_chat_template_create(NULL, 0, "{\"chat_template\": [{\"name\": 1}]}", 32, &err);
    CHECK(t == NULL && err.code == FORGE_E_FORMAT);
    t = forge_chat_template_create(NULL, 0, "{\"chat_template\": 5}", 20, &err);
    CHECK(t == NULL && err.code == FORGE_E_FORMAT);
}

TEST(request_validation) {
    forge_chat_template *t = from_source("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}", NULL);
    if (!t) return;
    static const struct {
        const char *req;
        forge_status code;
        const char *needle;
    } bad[] = {
        {"", FORGE_E_FORMAT, "chat request"},
        {"{\"messages\": [", FORGE_E_FORMAT, "invalid JSON"},
        {"[]", FORGE_E_INVALID, "expected a JSON object"},
        {"{}", FORGE_E_INVALID, "missing \"messages\""},
        {"{\"messages\": {}}", FORGE_E_INVALID, "messages: expected an array, got object"},
        {"{\"messages\": [1]}", FORGE_E_INVALID, "messages[0]: expected an object, got integer"},
        {"{\"messages\": [{\"content\": \"x\"}]}", FORGE_E_INVALID, "messages[0]: missing \"role\""},
        {"{\"messages\": [{\"role\": 1}]}", FORGE_E_INVALID, "messages[0].role: expected a string"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", FORGE_E_INVALID, "messages[0].content: expected a string"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": {}}]}", FORGE_E_INVALID, "got object"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {}}]}]}",
         FORGE_E_UNSUPPORTED, "messages[0].content[0]: content parts of type 'image_url'"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]}", FORGE_E_INVALID,
         "messages[0].content[0].text: expected a string"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [7]}]}", FORGE_E_INVALID, "content[0]: expected an object"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"text\": \"x\"}]}]}", FORGE_E_INVALID, "missing \"type\""},
        {"{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": \"x\"}]}", FORGE_E_INVALID, "tool_calls: expected an array"},
        {"{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [1]}]}", FORGE_E_INVALID, "tool_calls[0]: expected an object"},
        {"{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": \"{bad\"}}]}]}",
         FORGE_E_INVALID, "messages[0].tool_calls[0].function.arguments: invalid JSON"},
        {"{\"messages\": [], \"tools\": 5}", FORGE_E_INVALID, "tools: expected an array"},
        {"{\"messages\": [], \"documents\": \"d\"}", FORGE_E_INVALID, "documents: expected an array"},
        {"{\"messages\": [], \"add_generation_prompt\": \"yes\"}", FORGE_E_INVALID, "add_generation_prompt: expected true or false"},
        {"{\"messages\": [], \"chat_template_kwargs\": []}", FORGE_E_INVALID, "chat_template_kwargs: expected an object"},
        {"{\"messages\": [], \"chat_template_kwargs\": {\"messages\": []}}", FORGE_E_INVALID, "may not set \"messages\""},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"continue_final_message\": true, "
         "\"add_generation_prompt\": true}",
         FORGE_E_INVALID, "Cannot set both `continue_final_message` and `add_generation_prompt` to True."},
        {"{\"messages\": [], \"continue_final_message\": true}", FORGE_E_INVALID, "needs a final message"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}", FORGE_E_FORMAT, ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_err(t, bad[i].req, bad[i].code, bad[i].needle);
    /* what does get through: nulls, extra members, arguments as a string or an object */
    expect_out(t, "{\"messages\": [{\"role\": \"user\", \"content\": null, \"extra\": {\"a\": 1}}], \"tools\": null,"
                  " \"documents\": null, \"chat_template_kwargs\": null, \"add_generation_prompt\": null}",
               "user:;");
    forge_chat_template_free(t);
    t = from_source("{% for m in messages %}{% if m.tool_calls is not string %}{% for c in m.tool_calls %}"
                    "{{ c.function.arguments|tojson }}{% endfor %}{% endif %}{{ m.tool_calls is defined }}{% endfor %}",
                    NULL);
    if (!t) return;
    expect_out(t, "{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"name\": \"f\","
                  " \"arguments\": \"{\\\"b\\\": 2.50, \\\"a\\\": [1e2]}\"}}, {\"function\": {\"arguments\": {\"x\": null}}}]},"
                  " {\"role\": \"assistant\", \"tool_calls\": null}, {\"role\": \"user\", \"tool_calls\": \"kept\"}]}",
               "{\"b\": 2.5, \"a\": [100.0]}{\"x\": null}TrueFalseTrue");
    forge_chat_template_free(t);
}

TEST(continue_final_message) {
    forge_chat_template *t = from_source("{% for m in messages %}<{{ m.role }}>{{ m.content|trim }}</{{ m.role }}>\n"
                                         "{% endfor %}", NULL);
    if (!t) return;
    expect_out(t, "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"The answer\"}],"
                  " \"continue_final_message\": true}",
               "<user>Q</user>\n<assistant>The answer");
    /* trailing space trimmed by the template: cut after the stripped text */
    expect_out(t, "{\"messages\": [{\"role\": \"assistant\", \"content\": \"  Once upon \"}], \"continue_final_message\": true,"
                  " \"add_generation_prompt\": false}",
               "<assistant>Once upon");
    forge_chat_template_free(t);
    t = from_source("{% for m in messages %}<{{ m.role }}>{% endfor %}", NULL);
    if (!t) return;
    expect_err(t, "{\"messages\": [{\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"zzz\"}]}],"
                  " \"continue_final_message\": true}",
               FORGE_E_INVALID, "does not appear");
    forge_chat_template_free(t);
}

TEST(template_errors) {
    forge_error err;
    forge_chat_template *t = forge_chat_template_create("line1\n{% if %}", 14, NULL, 0, &err);
    CHECK(t == NULL && err.code == FORGE_E_TEMPLATE && strstr(err.msg, "line 2"));
    t = forge_chat_template_create("{{ x|nosuch }}", 14, NULL, 0, &err);
    CHECK(t == NULL && err.code == FORGE_E_TEMPLATE && strstr(err.msg, "No filter named 'nosuch'."));
    t = forge_chat_template_create("\xff", 1, NULL, 0, &err);
    CHECK(t == NULL && err.code == FORGE_E_FORMAT);
    t = from_source("a\n{% if messages|length > 1 %}{{ raise_exception('Only one message, please: ' ~ messages|length) }}"
                    "{% endif %}ok",
                    NULL);
    if (!t) return;
    expect_out(t, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "a\nok");
    expect_err(t, "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"user\"}]}", FORGE_E_TEMPLATE,
               "chat template line 2: Only one message, please: 2");
    forge_chat_template_free(t);
    t = from_source("{{ messages[0].content.upper() }}", NULL);
    if (t) expect_err(t, "{\"messages\": []}", FORGE_E_TEMPLATE, "line 1: UndefinedError: list object has no element 0");
    forge_chat_template_free(t);
}

TEST(sandbox_limits) {
    static const struct {
        const char *src;
        forge_status code;
        const char *needle;
    } cases[] = {
        {"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", FORGE_E_RANGE, "steps"},
        {"{{ 'x' * 100000000 }}", FORGE_E_RANGE, "output limit"},
        {"{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{% if 'y' in s or s.find('y') > 0 %}{% endif %}"
         "{% endfor %}",
         FORGE_E_RANGE, "steps"},
        {"{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", FORGE_E_RANGE,
         "limit"},
        {"{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", FORGE_E_RANGE, "nested deeper"},
        {"{% for i in range(100001) %}{% endfor %}", FORGE_E_TEMPLATE, "Range too big"},
        {"{{ [].append(1) }}", FORGE_E_TEMPLATE, "SecurityError: access to attribute 'append' of 'list' object is unsafe."},
        {"{{ ''.__class__.__mro__ }}", FORGE_E_TEMPLATE, "SecurityError"},
        {"{% include 'x' %}", FORGE_E_TEMPLATE, "no loader"},
        {"{{ 9223372036854775807 + 1 }}", FORGE_E_TEMPLATE, "OverflowError"},
        {"{{ cycler(1, 2) }}", FORGE_E_UNSUPPORTED, "cycler() is not supported"},
        {"{{ [1]|random }}", FORGE_E_UNSUPPORTED, "not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        forge_chat_template *t = from_source(cases[i].src, NULL);
        if (!t) continue;
        forge_template_limits lim = {.max_output = 1 << 20, .max_steps = 2000000, .max_depth = 50};
        forge_chat_template_set_limits(t, &lim);
        expect_err(t, "{\"messages\": []}", cases[i].code, cases[i].needle);
        forge_chat_template_free(t);
    }
    /* cycles through namespaces and macros are freed (ASan checks) */
    forge_chat_template *t = from_source("{% set ns = namespace() %}{% set ns.me = ns %}{% set ns.l = [ns, ns] %}"
                                         "{% macro m() %}{{ ns }}{% endmacro %}{% set ns.m = m %}"
                                         "{% for x in [1] %}{% set ns.loop = loop %}{% endfor %}ok",
                                         NULL);
    if (t) expect_out(t, "{\"messages\": []}", "ok");
    forge_chat_template_free(t);
    t = from_source("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", NULL);
    if (t) expect_err(t, "{\"messages\": []}", FORGE_E_TEMPLATE, "RecursionError");
    forge_chat_template_free(t);
}

/* ---- concurrency and speed ------------------------------------------------------------------ */

static const char *g_req =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"You are helpful.\"},"
    " {\"role\": \"user\", \"content\": \"Hi there\"}, {\"role\": \"assistant\", \"content\": \"<think>\\nhm\\n</think>\\n\\nHello!\"},"
    " {\"role\": \"user\", \"content\": \"Tell me a joke.\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", \"parameters\": {\"type\": \"object\"}}}]}";

typedef struct {
    forge_chat_template *t;
    const char *want;
    int bad;
} worker_arg;

static void *worker(void *p) {
    worker_arg *w = p;
    for (int i = 0; i < 200; i++) {
        forge_error err;
        forge_status st;
        char *out = render(w->t, g_req, &st, &err);
        if (st != FORGE_OK || strcmp(out, w->want)) w->bad++;
        free(out);
    }
    return NULL;
}

TEST(concurrent_renders) {
    forge_error err;
    forge_chat_template *t = forge_chat_template_load(FIX "qwen3-jinja", NULL, &err);
    CHECKF(t != NULL, "%s", err.msg);
    if (!t) return;
    forge_status st;
    char *want = render(t, g_req, &st, &err);
    CHECK(st == FORGE_OK);
    worker_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){t, want, 0};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].bad == 0);
    }
    free(want);
    forge_chat_template_free(t);
}

TEST(render_speed) {
    forge_error err;
    forge_chat_template *t = forge_chat_template_load(FIX "qwen3-jinja", NULL, &err);
    if (!t) return;
    int n = t_sanitized() ? 50 : 2000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        forge_status st;
        char *out = render(t, g_req, &st, &err);
        free(out);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / n;
    printf("    Qwen3 template, 4 messages + 1 tool: %.1f us per render (JSON parse included)\n", us);
    if (!t_sanitized()) CHECKF(us < 1000, "%.1f us per render", us);
    forge_chat_template_free(t);
}

int main(void) {
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    RUN(template_sources);
    RUN(special_tokens);
    RUN(named_templates);
    RUN(request_validation);
    RUN(continue_final_message);
    RUN(template_errors);
    RUN(sandbox_limits);
    RUN(concurrent_renders);
    RUN(render_speed);
    return t_summary();
}
