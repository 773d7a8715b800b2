/* libFuzzer: encode and decode with real tokenizers never crash, and the streaming
 * detokenizer fed id by id always equals the one-shot decode. The first byte picks the
 * tokenizer and the flags; the rest is the text, then also read as ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forge.h"

static const char *const DIRS[] = {
    "tests/fixtures/tokenizers/stories260K", "tests/fixtures/tokenizers/smollm2",
    "tests/fixtures/tokenizers/qwen3", "tests/fixtures/tokenizers/llama2"};
static forge_tokenizer *toks[4];

static void check_stream(forge_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags) {
    forge_error err;
    size_t len;
    char *one = forge_tokenizer_decode(tok, ids, n, flags, &len, &err);
    if (!one) abort();
    forge_detok *d = forge_detok_create(tok, flags, &err);
    if (!d) abort();
    size_t at = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *s;
        size_t k;
        if ((i < n ? forge_detok_push(d, ids[i], &s, &k, &err) : forge_detok_finish(d, &s, &k, &err)) != FORGE_OK) abort();
        if (at + k > len || memcmp(one + at, s, k)) abort(); /* streaming != one-shot */
        at += k;
    }
    if (at != len) abort();
    forge_detok_free(d);
    free(one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] & 3;
    forge_error err;
    if (!toks[which] && !(toks[which] = forge_tokenizer_open(DIRS[which], &err))) abort();
    forge_tokenizer *tok = toks[which];
    unsigned flags = (data[0] >> 2) & 3;
    forge_tokens ids = {0};
    if (forge_tokenizer_encode(tok, (const char *)data + 1, size - 1, flags, &ids, &err) != FORGE_OK) abort();
    check_stream(tok, ids.ids, ids.n, (data[0] >> 4) & 1);
    /* the bytes as ids (some out of range, which decode skips) */
    size_t n = (size - 1) / 3;
    int32_t *raw = malloc((n ? n : 1) * sizeof *raw);
    int32_t vs = forge_tokenizer_get_info(tok)->vocab_size;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)data[1 + 3 * i] | (uint32_t)data[2 + 3 * i] << 8 | (uint32_t)data[3 + 3 * i] << 16;
        raw[i] = (int32_t)(v % (uint32_t)(vs + 8));
    }
    check_stream(tok, raw, n, (data[0] >> 5) & 1);
    free(raw);
    forge_tokens_free(&ids);
    return 0;
}
