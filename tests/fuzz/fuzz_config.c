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
        if (c.rope_dim < 2 || c.rope_dim > c.head_dim || c.rope_dim % 2) abort();
        if (c.n_experts && (c.n_experts_used < 1 || c.n_experts_used > c.n_experts || c.moe_intermediate_size <= 0)) abort();
        for (int i = 0; i < c.n_layers; i++)
            if (c.layer_moe[i] && !c.n_experts) abort();
        double inv[CONFIG_MAX_HEAD_DIM / 2];
        config_rope_inv_freq(&c, inv);
        if (c.rope_type == ROPE_LONGROPE) config_rope_long_inv_freq(&c, inv);
        if (c.rope_local_theta > 0) config_rope_local_inv_freq(&c, inv);
    }
    config_free(&c);
    json_free(d);
    return 0;
}
