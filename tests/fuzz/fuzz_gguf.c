/* libFuzzer: the GGUF reader and its metadata -> config mapping on arbitrary bytes: never
 * crashes, and every tensor it accepts lies inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_model gm;
    memset(&gm, 0, sizeof gm);
    forge_error err;
    if (gguf_parse(&gm.file, data, size, "fuzz", &err) == FORGE_OK) {
        for (uint64_t i = 0; i < gm.file.n_tensors; i++) {
            const gguf_tensor *t = &gm.file.tensors[i];
            if (t->data < data || t->nbytes > size || t->data + t->nbytes > data + size) abort();
            if (gguf_find_tensor(&gm.file, t->cname) != t) abort();
        }
        for (uint64_t i = 0; i < gm.file.n_kv; i++) {
            const gguf_kv *kv = &gm.file.kv[i];
            if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING && kv->arr_n < 100000) {
                gguf_str *s = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *s);
                if (!s) abort();
                gguf_arr_strings(kv, s);
                for (uint64_t j = 0; j < kv->arr_n; j++)
                    if ((const uint8_t *)s[j].s < data || s[j].len > size || (const uint8_t *)s[j].s + s[j].len > data + size)
                        abort();
                free(s);
            }
        }
        model_config cfg;
        st_set st;
        memset(&cfg, 0, sizeof cfg);
        memset(&st, 0, sizeof st);
        (void)gguf_model_describe(&gm, &cfg, &st, &err);
        st_close(&st);
        config_free(&cfg);
    }
    gguf_model_close(&gm);
    return 0;
}
