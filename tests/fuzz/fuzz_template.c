/* libFuzzer: the chat-template lexer, parser and evaluator never crash, never leak, and stay
 * within their limits. Input: a template source, optionally followed by a NUL byte and a
 * chat request JSON (else a fixed conversation with tools is rendered). Small limits keep
 * each run short: a template that loops forever or grows a string must fail cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forge.h"

static const char FIXED_REQUEST[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"hi \\u00e9\"},"
    "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"abc123XYZ\", \"type\": \"function\","
    "\"function\": {\"name\": \"f\", \"arguments\": \"{\\\"x\\\": [1, 2.5, null]}\"}}]},"
    "{\"role\": \"tool\", \"content\": \"42\"}],"
    "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    "\"chat_template_kwargs\": {\"enable_thinking\": false}}";

static const char CONFIG[] = "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}, \"unk_token\": null}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data;
    size_t src_len = size;
    const char *req = FIXED_REQUEST;
    size_t req_len = sizeof FIXED_REQUEST - 1;
    const void *nul = memchr(data, 0, size);
    if (nul) {
        src_len = (size_t)((const uint8_t *)nul - data);
        req = src + src_len + 1;
        req_len = size - src_len - 1;
    }
    forge_error err;
    forge_chat_template *t = forge_chat_template_create(src, src_len, CONFIG, sizeof CONFIG - 1, &err);
    if (!t) {
        if (err.code != FORGE_E_TEMPLATE && err.code != FORGE_E_FORMAT && err.code != FORGE_E_NOMEM &&
            err.code != FORGE_E_UNSUPPORTED)
            abort();
        return 0;
    }
    forge_template_limits lim = {.max_output = 1 << 16, .max_steps = 200000, .max_depth = 30};
    forge_chat_template_set_limits(t, &lim);
    char *out = NULL;
    size_t out_len = 0;
    forge_status s = forge_chat_template_render(t, req, req_len, &out, &out_len, &err);
    if (s == FORGE_OK && (!out || out_len > lim.max_output || strlen(out) > out_len)) abort();
    if (s != FORGE_OK && !err.msg[0]) abort(); /* every failure says why */
    free(out);
    forge_chat_template_free(t);
    return 0;
}
