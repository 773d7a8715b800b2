/* libFuzzer: the JSON parser and writer never crash, and what parses re-serializes to JSON
 * that parses again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    forge_error err;
    json_doc *d = json_parse((const char *)data, size, &err);
    if (!d) return 0;
    strbuf sb = STRBUF_INIT;
    json_write_value(&sb, json_root(d));
    json_doc *d2 = json_parse(sb_str(&sb), sb.len, &err);
    if (!d2 && err.code != FORGE_E_NOMEM) abort(); /* even numbers beyond double range */
    json_free(d2);
    sb_free(&sb);
    json_free(d);
    return 0;
}
