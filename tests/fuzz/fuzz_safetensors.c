/* libFuzzer: the safetensors header parser on arbitrary bytes: never crashes, and every
 * tensor it accepts lies inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_set s;
    memset(&s, 0, sizeof s);
    s.n_files = 1;
    s.headers = calloc(1, sizeof *s.headers);
    s.maps = calloc(1, sizeof *s.maps);
    s.paths = calloc(1, sizeof *s.paths);
    if (!s.headers || !s.maps || !s.paths || !strmap_init(&s.by_name, 16)) abort();
    forge_error err;
    if (st_parse(&s, 0, data, size, "fuzz", &err) == FORGE_OK) {
        for (int i = 0; i < s.n_tensors; i++) {
            const st_tensor *t = &s.tensors[i];
            if (t->data < data || t->data + t->nbytes > data + size) abort();
            if (st_find(&s, t->name) != t) abort();
        }
    }
    st_close(&s);
    return 0;
}
