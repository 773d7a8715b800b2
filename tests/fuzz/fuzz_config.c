/* libFuzzer: config.json parsing on arbitrary JSON never crashes, and what it accepts is
 * self-consistent. */
#include <stdint.h>
#include <stdlib.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    forge_error err;
    json_doc *d = json_parse((const char *)data, size, &err);
    if (!d) return 0;
    model_config c;
    if (config_parse(&c, json_root(d), &err) == FORGE_OK) {
        if (c.n_heads % c.n_kv_heads || c.head_dim <= 0 || c.head_dim > CONFIG_MAX_HEAD_DIM) abort();
        double inv[CONFIG_MAX_HEAD_DIM / 2];
        config_rope_inv_freq(&c, inv);
    }
    config_free(&c);
    json_free(d);
    return 0;
}
