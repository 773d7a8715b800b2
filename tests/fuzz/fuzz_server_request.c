/* libFuzzer: the server's request validation (completions and chat bodies into engine
 * parameters, the chat template, prompt tokenization) never crashes or leaks, answers any
 * bad input with a 4xx (never a 5xx, unless out of memory), and its error JSON parses.
 * Input: one selector byte (even: completions; odd: chat, except 3 mod 4: embeddings), then
 * the request body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

static forge_server g_s;

static const char TEMPLATE[] =
    "{% for m in messages %}{% if m['content'] == 'please raise' %}{{ raise_exception('no') }}{% endif %}"
    "{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    forge_error err;
    g_s.tok = forge_tokenizer_open("tests/fixtures/stories260K", &err);
    g_s.tmpl = forge_chat_template_create(TEMPLATE, sizeof TEMPLATE - 1, NULL, 0, &err);
    if (!g_s.tok || !g_s.tmpl) abort();
    g_s.s_name = "m";
    g_s.vocab = 512;
    g_s.context_len = 512;
    g_s.max_token_bytes = 16;
    g_s.hidden_size = 64;
    forge_sampling_params_default(&g_s.gen.sampling);
    return 0;
}

static void check_error(const srv_err *e) {
    if (e->status >= 500 && !strstr(e->msg, "out of memory")) abort();
    if (e->status < 400) abort();
    strbuf sb = STRBUF_INIT;
    error_json(&sb, e);
    forge_error err;
    json_doc *d = json_parse(sb_str(&sb), sb.len, &err);
    if (!d && err.code != FORGE_E_NOMEM) abort();
    json_free(d);
    sb_free(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool embed = (data[0] & 3) == 3, chat = (data[0] & 1) && !embed;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    forge_error err;
    json_doc *doc = json_parse(body, len, &err);
    if (!doc) return 0;
    if (json_is(json_root(doc), JSON_OBJECT)) {
        srv_gen g;
        memset(&g, 0, sizeof g);
        srv_err e = {0};
        int rc = embed ? embed_parse(&g_s, json_root(doc), &g, &e) : parse_generation(&g_s, json_root(doc), chat, &g, &e);
        if (rc == 0 && chat) rc = parse_chat_prompt(&g_s, json_root(doc), body, len, &g, &e);
        if (rc == 0) rc = parse_tokenize_prompts(&g_s, &g, &e);
        if (rc != 0) check_error(&e);
        else if (g.n < 1 || g.n_prompts < 1 || forge_sampling_params_check(&g.sp, g_s.vocab, &err) != FORGE_OK) abort();
        srv_gen_free(&g);
    }
    json_free(doc);
    return 0;
}
