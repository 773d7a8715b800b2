/* The normalizers' fast path (copying stable characters, utf8proc only on the pieces around
 * the others) against utf8proc_map over the whole string, on random strings of tricky code
 * points: combining marks in every order, Hangul syllables and jamo, kana and voicing marks,
 * singletons, compatibility characters, CJK compatibility ideographs. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "test.h"
#include "tokenizer/tok_internal.h"

static const uint32_t POOL[] = {
    'a', 'e', 'o', 'A', ' ', '1', 0xE9, 0xC5, 0xE0, 0x1E9B, 0x0300, 0x0301, 0x0308, 0x0323, 0x0327,
    0x0340, 0x0344, 0x0F73, 0x0F71, 0x0F72, 0x212B, 0x2126, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01,
    0x304B, 0x3099, 0x309A, 0x30AB, 0x304C, 0xF900, 0xFA10, 0x2F800, 0x4E2D, 0xFB01, 0x00BD, 0x00B2,
    0x00A0, 0x2460, 0xFF21, 0x0627, 0x0653, 0x0654, 0x0915, 0x093C, 0x0958, 0x0CC6, 0x0CC2, 0x0CD5,
    0x1F600, 0x200D, 0x05B4, 0x05D9, 0xFB1D, 0x0B47, 0x0B3E, 0x0B57, 0x1025, 0x102E, 0x0069, 0x0130};

static const char *const FORMS[] = {"NFC", "NFD", "NFKC", "NFKD"};

TEST(fast_path_equals_utf8proc) {
    uint32_t seed = 12345;
    for (int f = 0; f < 4; f++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"normalizer\": {\"type\": \"%s\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                 FORMS[f]);
        forge_error err;
        forge_tokenizer *tok = forge_tokenizer_load(json, strlen(json), NULL, 0, &err);
        CHECKF(tok, "%s", err.msg);
        if (!tok) continue;
        tok_scratch *sc = scratch_get(tok);
        strbuf in = STRBUF_INIT, out = STRBUF_INIT;
        int bad = 0;
        for (int it = 0; it < 20000; it++) {
            sb_reset(&in);
            int len = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
            for (int k = 0; k < len; k++) {
                seed = seed * 1103515245u + 12345u;
                char b[4];
                sb_append(&in, b, (size_t)utf8_encode(POOL[(seed >> 16) % (sizeof POOL / sizeof POOL[0])], b));
            }
            CHECK(norm_apply(tok, sc, in.data, in.len, &out, &err) == FORGE_OK);
            int opt = UTF8PROC_STABLE | (f == 0 || f == 2 ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                      (f >= 2 ? UTF8PROC_COMPAT : 0);
            utf8proc_uint8_t *ref = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in.data, (utf8proc_ssize_t)in.len, &ref,
                                              (utf8proc_option_t)opt);
            if (r < 0 || (size_t)r != out.len || memcmp(ref, out.data, out.len)) {
                if (bad++ < 3) {
                    printf("    %s differs on:", FORMS[f]);
                    for (size_t k = 0; k < in.len; k++) printf(" %02x", (unsigned char)in.data[k]);
                    printf("\n");
                }
            }
            free(ref);
        }
        CHECKF(bad == 0, "%s: %d of 20000 strings differ from utf8proc_map", FORMS[f], bad);
        sb_free(&in);
        sb_free(&out);
        scratch_put(tok, sc);
        forge_tokenizer_close(tok);
    }
}

/* Every BMP code point (and every 7th beyond) between marks and starters, NFC and NFKC. */
TEST(sweep_code_points) {
    static const int forms[] = {0, 2};
    for (int fi = 0; fi < 2; fi++) {
        int f = forms[fi];
        char json[256];
        snprintf(json, sizeof json,
                 "{\"normalizer\": {\"type\": \"%s\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                 FORMS[f]);
        forge_error err;
        forge_tokenizer *tok = forge_tokenizer_load(json, strlen(json), NULL, 0, &err);
        CHECK(tok);
        if (!tok) continue;
        tok_scratch *sc = scratch_get(tok);
        strbuf in = STRBUF_INIT, out = STRBUF_INIT;
        int bad = 0;
        int opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE | (f == 2 ? UTF8PROC_COMPAT : 0);
        for (uint32_t c = 0x80; c < 0x30000; c += c < 0x10000 ? 1 : 7) {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            if (utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_CN) continue;
            for (int v = 0; v < 2; v++) {
                const uint32_t seq[2][5] = {{'e', c, 0x0323, 0x0301, 'x'}, {0x1100, 0x0301, c, 0x0308, 0x1161}};
                sb_reset(&in);
                for (int k = 0; k < 5; k++) {
                    char b[4];
                    sb_append(&in, b, (size_t)utf8_encode(seq[v][k], b));
                }
                CHECK(norm_apply(tok, sc, in.data, in.len, &out, &err) == FORGE_OK);
                utf8proc_uint8_t *ref = NULL;
                utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in.data, (utf8proc_ssize_t)in.len, &ref,
                                                  (utf8proc_option_t)opt);
                if (r < 0 || (size_t)r != out.len || memcmp(ref, out.data, out.len))
                    if (bad++ < 3) printf("    %s differs around U+%04X (pattern %d)\n", FORMS[f], c, v);
                free(ref);
            }
        }
        CHECKF(bad == 0, "%s: %d strings differ from utf8proc_map", FORMS[f], bad);
        sb_free(&in);
        sb_free(&out);
        scratch_put(tok, sc);
        forge_tokenizer_close(tok);
    }
}

int main(void) {
    RUN(fast_path_equals_utf8proc);
    RUN(sweep_code_points);
    return t_summary();
}
