/* Tokenizer speed: load time of tokenizer.json folders and single-threaded encode throughput
 * on a text file (bench/tokenizer.bench.sh makes it with scripts/tokenizer/bench_hf.js, which
 * times HF tokenizers on the same text in the same run).
 * usage: bench_tokenizer TEXT_FILE DIR... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mfile.h"
#include "base/timing.h"
#include "forge.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TEXT_FILE TOKENIZER_DIR...\n", argv[0]);
        return 2;
    }
    char *text;
    size_t len;
    forge_error err;
    if (file_read_all(argv[1], (size_t)1 << 30, &text, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int a = 2; a < argc; a++) {
        double load[5];
        forge_tokenizer *tok = NULL;
        for (int r = 0; r < 5; r++) {
            double t0 = time_sec();
            forge_tokenizer *t = forge_tokenizer_open(argv[a], &err);
            load[r] = time_sec() - t0;
            if (!t) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            if (tok) forge_tokenizer_close(tok);
            tok = t;
        }
        qsort(load, 5, sizeof load[0], cmp_d);
        forge_tokens ids = {0};
        double best = 1e30, dec_best = 1e30, first = 0;
        for (int r = 0; r < 3; r++) { /* the first run also fills the word cache */
            ids.n = 0;
            double t0 = time_sec();
            if (forge_tokenizer_encode(tok, text, len, 0, &ids, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            double dt = time_sec() - t0;
            if (r == 0) first = dt;
            if (dt < best) best = dt;
            t0 = time_sec();
            size_t dl;
            free(forge_tokenizer_decode(tok, ids.ids, ids.n, 0, &dl, &err));
            dt = time_sec() - t0;
            if (dt < dec_best) dec_best = dt;
        }
        const char *name = strrchr(argv[a], '/');
        name = name ? name + 1 : argv[a];
        printf("forge %-12s load %7.1f ms (median of 5)  encode %6.2f MB/s (%zu bytes -> %zu ids, %.1f ms;"
               " first run, cold word cache: %.2f MB/s)  decode %6.1f MB/s\n",
               name, load[2] * 1e3, len / best / 1e6, len, ids.n, best * 1e3, len / first / 1e6, len / dec_best / 1e6);
        forge_tokens_free(&ids);
        forge_tokenizer_close(tok);
    }
    free(text);
    return 0;
}
