/* Tool-call and reasoning parsers (src/chat) on what the families' models write, as their
 * documentation shows it (the source above each string), on malformed calls, and split at
 * every byte (and byte by byte): the pieces must give the same message as the whole. */
#include "test.h"

#include "chat/chatout.h"

/* ---- collecting a message ------------------------------------------------------------- */

enum { MAX_CALLS = 8 };
typedef struct msg {
    strbuf content, reasoning;
    int n_calls;
    strbuf name[MAX_CALLS], args[MAX_CALLS];
    int n_events;
    bool empty_event;
} msg;

static void on_ev(void *user, chat_ev_kind kind, const char *a, size_t an, const char *b, size_t bn) {
    msg *m = user;
    m->n_events++;
    if (kind != CHAT_EV_CALL && an == 0) m->empty_event = true;
    if (kind == CHAT_EV_CONTENT) sb_append(&m->content, a, an);
    else if (kind == CHAT_EV_REASONING) sb_append(&m->reasoning, a, an);
    else if (m->n_calls < MAX_CALLS) {
        sb_append(&m->name[m->n_calls], a, an);
        sb_append(&m->args[m->n_calls], b, bn);
        m->n_calls++;
    }
}

static void msg_free(msg *m) {
    sb_free(&m->content), sb_free(&m->reasoning);
    for (int i = 0; i < MAX_CALLS; i++) sb_free(&m->name[i]), sb_free(&m->args[i]);
    memset(m, 0, sizeof *m);
}

typedef struct setup {
    tc_family fam;
    bool reasoning, in_think, parallel;
} setup;

/* Parses text cut at the given offsets (sorted, within the text). */
static void parse_cuts(const setup *su, const char *text, const size_t *cuts, int n_cuts, msg *m) {
    memset(m, 0, sizeof *m);
    chat_out c;
    chat_out_init(&c, su->reasoning, su->in_think, su->fam, su->parallel, on_ev, m);
    size_t n = strlen(text), at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        chat_out_feed(&c, text + at, end - at);
        at = end;
    }
    chat_out_finish(&c);
    CHECK(!chat_out_failed(&c));
    chat_out_free(&c);
}

static void parse_whole(const setup *su, const char *text, msg *m) { parse_cuts(su, text, NULL, 0, m); }

static bool msg_eq(const msg *a, const msg *b) {
    if (strcmp(sb_str(&a->content), sb_str(&b->content)) || strcmp(sb_str(&a->reasoning), sb_str(&b->reasoning)) ||
        a->n_calls != b->n_calls)
        return false;
    for (int i = 0; i < a->n_calls; i++)
        if (strcmp(sb_str(&a->name[i]), sb_str(&b->name[i])) || strcmp(sb_str(&a->args[i]), sb_str(&b->args[i])))
            return false;
    return true;
}

/* Every single split point, byte by byte, and some random multi-splits give the whole's
 * message. */
static void check_splits(const setup *su, const char *text) {
    msg whole, part;
    parse_whole(su, text, &whole);
    size_t n = strlen(text);
    int bad = -1;
    for (size_t k = 0; k <= n && bad < 0; k++) {
        parse_cuts(su, text, &k, 1, &part);
        if (!msg_eq(&whole, &part)) bad = (int)k;
        CHECK(!part.empty_event);
        msg_free(&part);
    }
    CHECKF(bad < 0, "split at %d differs from the whole for: %s", bad, text);
    size_t *cuts = calloc(n + 1, sizeof *cuts);
    for (size_t k = 0; k < n; k++) cuts[k] = k + 1;
    parse_cuts(su, text, cuts, n ? (int)n - 1 : 0, &part);
    CHECKF(msg_eq(&whole, &part), "byte by byte differs from the whole for: %s", text);
    msg_free(&part);
    uint64_t r = 0x9E3779B97F4A7C15ull ^ n;
    for (int round = 0; round < 50 && n > 1; round++) {
        int nc = 0;
        for (size_t k = 1; k < n; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            if (r % 5 == 0) cuts[nc++] = k;
        }
        parse_cuts(su, text, cuts, nc, &part);
        CHECKF(msg_eq(&whole, &part), "random split %d differs from the whole for: %s", round, text);
        msg_free(&part);
    }
    free(cuts);
    msg_free(&whole);
}

/* Checks the whole text's message: content (NULL: none), reasoning (NULL: none), then
 * name/args pairs; and every split of it. */
static void expect(const setup *su, const char *text, const char *content, const char *reasoning, int n_calls, ...) {
    msg m;
    parse_whole(su, text, &m);
    CHECKF(!strcmp(sb_str(&m.content), content ? content : ""), "content [%s] != [%s]", sb_str(&m.content),
           content ? content : "");
    CHECKF(!strcmp(sb_str(&m.reasoning), reasoning ? reasoning : ""), "reasoning [%s] != [%s]", sb_str(&m.reasoning),
           reasoning ? reasoning : "");
    CHECKF(m.n_calls == n_calls, "%d calls, expected %d, for: %s", m.n_calls, n_calls, text);
    va_list ap;
    va_start(ap, n_calls);
    for (int i = 0; i < n_calls && i < m.n_calls; i++) {
        const char *name = va_arg(ap, const char *), *args = va_arg(ap, const char *);
        CHECKF(!strcmp(sb_str(&m.name[i]), name), "call %d name [%s] != [%s]", i, sb_str(&m.name[i]), name);
        CHECKF(!strcmp(sb_str(&m.args[i]), args), "call %d args [%s] != [%s]", i, sb_str(&m.args[i]), args);
    }
    va_end(ap);
    msg_free(&m);
    check_splits(su, text);
}

static const setup HERMES = {TC_FAMILY_HERMES, false, false, true};
static const setup LLAMA = {TC_FAMILY_LLAMA3_JSON, false, false, true};
static const setup MISTRAL = {TC_FAMILY_MISTRAL, false, false, true};
static const setup QWEN3 = {TC_FAMILY_HERMES, true, false, true};

/* ---- hermes --------------------------------------------------------------------------- */

TEST(hermes_qwen_docs) {
    /* Qwen documentation, "Function Calling", the Hugging Face transformers example
     * (qwen.readthedocs.io/en/latest/framework/function_call.html): the output text of
     * Qwen2.5-7B-Instruct, two parallel calls (the end token is a stop token: not in the text) */
    expect(&HERMES,
           "<tool_call>\n{\"name\": \"get_current_temperature\", \"arguments\": {\"location\": \"San Francisco, CA, USA\"}}\n"
           "</tool_call>\n<tool_call>\n{\"name\": \"get_temperature_date\", \"arguments\": {\"location\": \"San Francisco, "
           "CA, USA\", \"date\": \"2024-10-01\"}}\n</tool_call>",
           NULL, NULL, 2, "get_current_temperature", "{\"location\":\"San Francisco, CA, USA\"}", "get_temperature_date",
           "{\"location\":\"San Francisco, CA, USA\",\"date\":\"2024-10-01\"}");
    /* the same docs: the final answer after the tool results is plain content */
    expect(&HERMES,
           "The current temperature in San Francisco is approximately 26.1°C. Tomorrow, on October 1, 2024, the "
           "temperature is expected to be around 25.9°C.",
           "The current temperature in San Francisco is approximately 26.1°C. Tomorrow, on October 1, 2024, the "
           "temperature is expected to be around 25.9°C.",
           NULL, 0);
}

TEST(hermes_content_and_calls) {
    /* text before a call is content; blanks between content and a call are not */
    expect(&HERMES, "Let me check.\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>\n",
           "Let me check.", NULL, 1, "f", "{\"x\":1}");
    expect(&HERMES, "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call> And then some.", "And then some.", NULL, 1,
           "f", "{}");
    /* a lookalike tag is content */
    expect(&HERMES, "a <tool_cal> b <tool_callx> c", "a <tool_cal> b <tool_callx> c", NULL, 0);
    /* trailing blanks of a plain answer are kept */
    expect(&HERMES, "Hi there.\n", "Hi there.\n", NULL, 0);
    /* "parameters" for "arguments", arguments as a JSON string, no arguments, unicode */
    expect(&HERMES, "<tool_call>{\"name\": \"g\", \"parameters\": {\"q\": \"Zürich\"}}</tool_call>", NULL, NULL, 1, "g",
           "{\"q\":\"Zürich\"}");
    expect(&HERMES, "<tool_call>{\"name\": \"g\", \"arguments\": \"{\\\"a\\\": [1, 2]}\"}</tool_call>", NULL, NULL, 1, "g",
           "{\"a\":[1,2]}");
    expect(&HERMES, "<tool_call>{\"name\": \"now\"}</tool_call>", NULL, NULL, 1, "now", "{}");
    /* an unclosed call at the end (length, stop string) is a call when it parses */
    expect(&HERMES, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": \"</tool\"}}\n", NULL, NULL, 1, "f",
           "{\"x\":\"</tool\"}");
}

TEST(hermes_malformed) {
    /* malformed calls stay content, byte for byte */
    const char *bad[] = {
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}\n</tool_call>",  /* a brace short */
        "<tool_call>\n{\"arguments\": {\"x\": 1}}\n</tool_call>",               /* no name */
        "<tool_call>\n{\"name\": 3, \"arguments\": {}}\n</tool_call>",           /* name not a string */
        "<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>",      /* arguments not an object */
        "<tool_call>\n{\"name\": \"f\", \"arguments\": \"not json\"}\n</tool_call>",
        "<tool_call>\n[{\"name\": \"f\"}]\n</tool_call>",                        /* a list */
        "<tool_call>\n{\"name\": \"f\"} trailing\n</tool_call>",
        "<tool_call></tool_call>",
        "<tool_call>\n{\"name\": \"f\", \"argu",                                  /* cut short */
        "<tool_call>",
        "<tool_",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect(&HERMES, bad[i], bad[i], NULL, 0);
    /* a bad call between good ones: the good ones are calls, the bad one content */
    expect(&HERMES,
           "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>\n<tool_call>{oops}</tool_call>\n"
           "<tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>",
           "<tool_call>{oops}</tool_call>", NULL, 2, "a", "{}", "b", "{}");
}

TEST(parallel_false_keeps_the_first) {
    setup su = HERMES;
    su.parallel = false;
    expect(&su,
           "<tool_call>{\"name\":\"a\",\"arguments\":{\"i\":1}}</tool_call>\n"
           "<tool_call>{\"name\":\"b\",\"arguments\":{\"i\":2}}</tool_call>",
           NULL, NULL, 1, "a", "{\"i\":1}");
}

/* ---- llama3_json ---------------------------------------------------------------------- */

TEST(llama3_docs) {
    /* Llama 3.1 prompt format documentation (llama.com, "JSON based tool calling"; the
     * llama-models repository's prompt_format.md): the model's answer with custom tools */
    expect(&LLAMA, "{\"name\": \"get_current_conditions\", \"parameters\": {\"location\": \"Menlo Park, CA\", \"unit\": "
                   "\"Fahrenheit\"}}",
           NULL, NULL, 1, "get_current_conditions", "{\"location\":\"Menlo Park, CA\",\"unit\":\"Fahrenheit\"}");
    /* the same after <|python_tag|> (kept in the text when special tokens are not skipped) */
    expect(&LLAMA, "<|python_tag|>{\"name\": \"get_current_conditions\", \"parameters\": {\"location\": \"San Francisco, "
                   "CA\", \"unit\": \"Fahrenheit\"}}",
           NULL, NULL, 1, "get_current_conditions", "{\"location\":\"San Francisco, CA\",\"unit\":\"Fahrenheit\"}");
    /* the docs' final answer after the tool output */
    expect(&LLAMA, "The weather in Menlo Park is currently cloudy with a high of 76° and a low of 56°.",
           "The weather in Menlo Park is currently cloudy with a high of 76° and a low of 56°.", NULL, 0);
    /* built-in tools call Python, not JSON: content (the Llama 3.1 docs' brave_search example) */
    expect(&LLAMA, "<|python_tag|>brave_search.call(query=\"current weather in Menlo Park, California\")",
           "<|python_tag|>brave_search.call(query=\"current weather in Menlo Park, California\")", NULL, 0);
}

TEST(llama3_more) {
    /* several calls separated by ';' (vLLM's llama3_json accepts them) */
    expect(&LLAMA, "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": null}}", NULL, NULL, 2,
           "a", "{}", "b", "{\"k\":null}");
    /* JSON that is not a call is content, and so is text that starts otherwise */
    expect(&LLAMA, "{\"answer\": 42}", "{\"answer\": 42}", NULL, 0);
    expect(&LLAMA, "  {\"name\": \"a\", \"parameters\": {}} and more", "  {\"name\": \"a\", \"parameters\": {}} and more",
           NULL, 0);
    expect(&LLAMA, "Sure: {\"name\": \"a\", \"parameters\": {}}", "Sure: {\"name\": \"a\", \"parameters\": {}}", NULL, 0);
    expect(&LLAMA, "<|python", "<|python", NULL, 0);
    expect(&LLAMA, "<|pythonic", "<|pythonic", NULL, 0);
    expect(&LLAMA, "{\"name\": \"a\", \"parameters\": {\"x\": 1}", "{\"name\": \"a\", \"parameters\": {\"x\": 1}", NULL, 0);
    expect(&LLAMA, "\n\n{\"name\": \"a\", \"parameters\": {}}\n", NULL, NULL, 1, "a", "{}");
}

/* ---- mistral -------------------------------------------------------------------------- */

TEST(mistral_docs) {
    /* Mistral-7B-Instruct-v0.3 (mistral-common's documentation of its tokenized tool call
     * and the model card's example): a list of calls after [TOOL_CALLS] */
    expect(&MISTRAL, "[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", "
                     "\"format\": \"celsius\"}}]",
           NULL, NULL, 1, "get_current_weather", "{\"location\":\"Paris, France\",\"format\":\"celsius\"}");
    /* the same with the id mistral-common writes back into the history (ignored: Forge makes its own) */
    expect(&MISTRAL, "[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", "
                     "\"format\": \"celsius\"}, \"id\": \"VvvODy9mT\"}]",
           NULL, NULL, 1, "get_current_weather", "{\"location\":\"Paris, France\",\"format\":\"celsius\"}");
    /* the model card's final answer */
    expect(&MISTRAL, "The current temperature in Paris, France is 22 degrees Celsius.",
           "The current temperature in Paris, France is 22 degrees Celsius.", NULL, 0);
    /* tokenizer v11 and later (Mistral Small 3.2, Magistral; mistral-common's format):
     * NAME[ARGS]{...}, each after [TOOL_CALLS] */
    expect(&MISTRAL, "[TOOL_CALLS]get_current_weather[ARGS]{\"location\": \"Paris, France\", \"format\": \"celsius\"}"
                     "[TOOL_CALLS]get_time[ARGS]{}",
           NULL, NULL, 2, "get_current_weather", "{\"location\":\"Paris, France\",\"format\":\"celsius\"}", "get_time",
           "{}");
}

TEST(mistral_more) {
    expect(&MISTRAL, "Checking.[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {\"z\": "
                     "true}}]",
           "Checking.", NULL, 2, "a", "{}", "b", "{\"z\":true}");
    const char *bad[] = {"[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {}}", "[TOOL_CALLS] []",
                         "[TOOL_CALLS] [{\"name\": \"a\"}] and text", "[TOOL_CALLS]a b[ARGS]{}", "[TOOL_CALLS]a[ARGS][1]",
                         "[TOOL_CALLS]", "[TOOL_CALL", "[TOOL_CALLSX"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect(&MISTRAL, bad[i], bad[i], NULL, 0);
    /* a number beyond double range: the arguments stay JSON (fuzz_toolcall found Infinity) */
    expect(&MISTRAL, "[TOOL_CALLS]a[ARGS]{\"x\": 1003875820E194212736}[TOOL_CALLS]b[ARGS]{\"y\": -1e400}", NULL, NULL, 2,
           "a", "{\"x\":1e999}", "b", "{\"y\":-1e999}");
}

/* ---- reasoning ------------------------------------------------------------------------ */

TEST(reasoning_qwen3) {
    /* Qwen3 (model card: the thinking content is what precedes </think>, token 151668):
     * the hybrid models write <think> themselves */
    expect(&QWEN3, "<think>\nThe user wants the weather in Paris. I should call get_weather.\n</think>\n\n"
                   "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
           NULL, "\nThe user wants the weather in Paris. I should call get_weather.\n", 1, "get_weather",
           "{\"city\":\"Paris\"}");
    expect(&QWEN3, "<think>\nShort.\n</think>\n\nParis is sunny.", "Paris is sunny.", "\nShort.\n", 0);
    /* enable_thinking false: the prompt holds an empty block and the answer is plain */
    expect(&QWEN3, "Paris is sunny.", "Paris is sunny.", NULL, 0);
    /* a call inside the reasoning is not a call */
    expect(&QWEN3, "<think>maybe <tool_call>{\"name\":\"x\",\"arguments\":{}}</tool_call></think>No call.", "No call.",
           "maybe <tool_call>{\"name\":\"x\",\"arguments\":{}}</tool_call>", 0);
    /* out of tokens inside the block: all reasoning */
    expect(&QWEN3, "<think>\nstill thinking", NULL, "\nstill thinking", 0);
    expect(&QWEN3, "<think", "<think", NULL, 0);
    expect(&QWEN3, "<thinking>no", "<thinking>no", NULL, 0);
    /* a </think> in an answer that did not start in reasoning is text */
    expect(&QWEN3, "a </think> b", "a </think> b", NULL, 0);
    /* the prompt opened the block (DeepSeek-R1, Qwen3 thinking-2507): no <think> in the answer */
    setup in = QWEN3;
    in.in_think = true;
    expect(&in, "I reason.</think>\n\nThe answer.", "The answer.", "I reason.", 0);
    expect(&in, "I reason on", NULL, "I reason on", 0);
    /* reasoning without tools */
    setup rt = {TC_FAMILY_NONE, true, false, true};
    expect(&rt, "<think>x</think>  y ", "y ", "x", 0);
}

TEST(prompt_opens_think) {
    CHECK(rp_prompt_opens_think("<|im_start|>assistant\n<think>\n", 30));
    CHECK(!rp_prompt_opens_think("<|im_start|>assistant\n<think>\n\n</think>\n\n", 41));
    CHECK(!rp_prompt_opens_think("", 0));
}

/* ---- detection and names -------------------------------------------------------------- */

TEST(detect_from_templates) {
    static const struct {
        const char *file;
        tc_family fam;
        rp_kind rk;
    } cases[] = {
        {"qwen3-jinja/chat_template.jinja", TC_FAMILY_HERMES, RP_THINK},
        {"qwen2.5-jinja/chat_template.jinja", TC_FAMILY_HERMES, RP_NONE},
        {"qwen3-config/tokenizer_config.json", TC_FAMILY_HERMES, RP_THINK},
        {"llama3.2-jinja/chat_template.jinja", TC_FAMILY_LLAMA3_JSON, RP_NONE},
        {"llama3.2/tokenizer_config.json", TC_FAMILY_LLAMA3_JSON, RP_NONE},
        {"llama3/tokenizer_config.json", TC_FAMILY_NONE, RP_NONE},
        {"mistral-nemo-jinja/chat_template.jinja", TC_FAMILY_MISTRAL, RP_NONE},
        {"mistral/tokenizer_config.json", TC_FAMILY_NONE, RP_NONE},
        {"smollm3-jinja/chat_template.jinja", TC_FAMILY_NONE, RP_THINK},
        {"smollm2/tokenizer_config.json", TC_FAMILY_NONE, RP_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/templates/models/%s", cases[i].file);
        char *src = t_read_file(path, NULL);
        CHECKF(src != NULL, "cannot read %s", path);
        if (!src) continue;
        CHECKF(tc_detect(src) == cases[i].fam, "%s: tool-call family %s", path, tc_family_name(tc_detect(src)));
        CHECKF(rp_detect(src) == cases[i].rk, "%s: reasoning %d", path, (int)rp_detect(src));
        free(src);
    }
    CHECK(tc_detect(NULL) == TC_FAMILY_NONE);
    tc_family f;
    rp_kind k;
    CHECK(tc_family_from_name("hermes", &f) && f == TC_FAMILY_HERMES);
    CHECK(tc_family_from_name("llama3_json", &f) && f == TC_FAMILY_LLAMA3_JSON);
    CHECK(tc_family_from_name("mistral", &f) && f == TC_FAMILY_MISTRAL);
    CHECK(tc_family_from_name("none", &f) && f == TC_FAMILY_NONE);
    CHECK(!tc_family_from_name("auto", &f) && !tc_family_from_name("Hermes", &f) && !tc_family_from_name(NULL, &f));
    CHECK(rp_kind_from_name("qwen3", &k) && k == RP_THINK);
    CHECK(rp_kind_from_name("deepseek_r1", &k) && k == RP_THINK);
    CHECK(rp_kind_from_name("none", &k) && k == RP_NONE);
    CHECK(!rp_kind_from_name("think", &k));
}

/* ---- forcing spec --------------------------------------------------------------------- */

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]";

static void spec(tc_family fam, const char *tools, const char *name, const char *pre, const char *schema,
                 const char *suf, forge_status want) {
    forge_error err;
    json_doc *d = json_parse(tools, strlen(tools), &err);
    CHECK(d != NULL);
    strbuf p = STRBUF_INIT, s = STRBUF_INIT, x = STRBUF_INIT;
    forge_status st = tc_forcing_spec(fam, json_root(d), name, &p, &s, &x, &err);
    CHECKF(st == want, "status %d, expected %d (%s)", st, want, st ? err.msg : "");
    if (st == FORGE_OK && want == FORGE_OK) {
        CHECKF(!strcmp(sb_str(&p), pre), "prefix [%s]", sb_str(&p));
        CHECKF(!strcmp(sb_str(&s), schema), "schema [%s]", sb_str(&s));
        CHECKF(!strcmp(sb_str(&x), suf), "suffix [%s]", sb_str(&x));
    }
    sb_free(&p), sb_free(&s), sb_free(&x);
    json_free(d);
}

TEST(forcing_spec) {
    const char *weather = "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"get_weather\"},\"arguments\":{\"type\":"
                          "\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},"
                          "\"required\":[\"name\",\"arguments\"]}";
    const char *now = "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"now\"},\"arguments\":{\"type\":"
                      "\"object\",\"properties\":{}}},\"required\":[\"name\",\"arguments\"]}";
    spec(TC_FAMILY_HERMES, TOOLS, "get_weather", "<tool_call>\n", weather, "\n</tool_call>", FORGE_OK);
    char any[2048];
    snprintf(any, sizeof any, "{\"anyOf\":[%s,%s]}", weather, now);
    spec(TC_FAMILY_HERMES, TOOLS, NULL, "<tool_call>\n", any, "\n</tool_call>", FORGE_OK);
    spec(TC_FAMILY_MISTRAL, TOOLS, "now", "[TOOL_CALLS][", now, "]", FORGE_OK);
    spec(TC_FAMILY_LLAMA3_JSON, TOOLS, "now", "",
         "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"now\"},\"parameters\":{\"type\":\"object\","
         "\"properties\":{}}},\"required\":[\"name\",\"parameters\"]}",
         "", FORGE_OK);
    spec(TC_FAMILY_HERMES, TOOLS, "missing", "", "", "", FORGE_E_INVALID);
    spec(TC_FAMILY_NONE, TOOLS, NULL, "", "", "", FORGE_E_INVALID);
    spec(TC_FAMILY_HERMES, "[]", NULL, "", "", "", FORGE_E_INVALID);
    spec(TC_FAMILY_HERMES, "[{\"type\":\"function\"}]", NULL, "", "", "", FORGE_E_INVALID);
    spec(TC_FAMILY_HERMES, "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[]}}]", NULL, "", "", "",
         FORGE_E_INVALID);
}

int main(void) {
    RUN(hermes_qwen_docs);
    RUN(hermes_content_and_calls);
    RUN(hermes_malformed);
    RUN(parallel_false_keeps_the_first);
    RUN(llama3_docs);
    RUN(llama3_more);
    RUN(mistral_docs);
    RUN(mistral_more);
    RUN(reasoning_qwen3);
    RUN(prompt_opens_think);
    RUN(detect_from_templates);
    RUN(forcing_spec);
    return t_summary();
}
