/* libFuzzer: the tokenizer.json loader never crashes, leaks or aborts on any document, and
 * whatever loads can encode and decode. Seeds: small tokenizer.json files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    forge_error err;
    /* a config document may follow the tokenizer after a NUL byte */
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    const char *cfg = nul ? (const char *)nul + 1 : NULL;
    size_t cfg_len = nul ? size - n - 1 : 0;
    forge_tokenizer *tok = forge_tokenizer_load((const char *)data, n, cfg, cfg_len, &err);
    if (!tok) {
        if (!err.msg[0]) abort(); /* every failure names what was wrong */
        return 0;
    }
    static const char text[] = "Hello <s> world\xE4\xB8\xAD 123 \xFF";
    forge_tokens ids = {0};
    if (forge_tokenizer_encode(tok, text, sizeof text - 1, FORGE_ENCODE_ADD_SPECIAL, &ids, &err) == FORGE_OK) {
        size_t len;
        free(forge_tokenizer_decode(tok, ids.ids, ids.n, 0, &len, &err));
    }
    int32_t some[4] = {0, 1, 2, forge_tokenizer_get_info(tok)->vocab_size - 1};
    size_t len;
    free(forge_tokenizer_decode(tok, some, 4, FORGE_DECODE_SKIP_SPECIAL, &len, &err));
    forge_tokens_free(&ids);
    forge_tokenizer_close(tok);
    return 0;
}
