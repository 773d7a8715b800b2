/* tok_golden.h: helpers for the tokenizer tests: SHA-256 (the 1 MB string's ids are
 * committed only as a hash), mulberry32 (the seed that rebuilds the 1 MB string, as
 * scripts/tokenizer/corpus.js does), and comparing one golden file. */
#ifndef FORGE_TEST_TOK_GOLDEN_H
#define FORGE_TEST_TOK_GOLDEN_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "forge.h"

/* FIPS 180-4 SHA-256 over a buffer, as lowercase hex (65 bytes with the NUL). */
static void sha256_hex(const void *data, size_t n, char out[65]) {
    static const uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    uint64_t bits = (uint64_t)n * 8;
    size_t total = ((n + 9 + 63) / 64) * 64;
#define ROR(x, k) (((x) >> (k)) | ((x) << (32 - (k))))
    for (size_t off = 0; off < total; off += 64) {
        unsigned char blk[64];
        for (size_t i = 0; i < 64; i++) {
            size_t j = off + i;
            if (j < n) blk[i] = p[j];
            else if (j == n) blk[i] = 0x80;
            else if (j >= total - 8) blk[i] = (unsigned char)(bits >> (8 * (total - 1 - j)));
            else blk[i] = 0;
        }
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 | (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
    }
#undef ROR
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", h[i]);
}

static uint32_t mulberry32(uint32_t *a) {
    *a += 0x6D2B79F5u;
    uint32_t t = *a;
    t = (t ^ (t >> 15)) * (1u | t);
    t = (t + (t ^ (t >> 7)) * (61u | t)) ^ t;
    return t ^ (t >> 14);
}

/* The 1 MB string of corpus.js's bigString() from the golden cases' texts. */
static void big_string(const json_value *cases, uint32_t seed, size_t bytes, strbuf *out) {
    static const char *const seps[] = {" ", "\n", "", ". ", "\n\n"};
    const json_value *texts[512];
    size_t nt = 0;
    for (size_t i = 0; i < cases->n && nt < 512; i++) {
        const json_value *t = json_get(cases->u.items[i], "text");
        if (t && !json_get(cases->u.items[i], "unicode_new")) texts[nt++] = t;
    }
    uint32_t st = seed;
    while (out->len < bytes) {
        const json_value *t = texts[mulberry32(&st) % nt];
        sb_append(out, t->u.s, t->n);
        sb_puts(out, seps[mulberry32(&st) % 5]);
    }
}

static void ids_json(strbuf *sb, const int32_t *ids, size_t n) {
    sb_putc(sb, '[');
    for (size_t i = 0; i < n; i++) sb_printf(sb, i ? ",%d" : "%d", ids[i]);
    sb_putc(sb, ']');
}

static bool ids_equal(const forge_tokens *t, const json_value *want) {
    if (!want || want->type != JSON_ARRAY || want->n != t->n) return false;
    for (size_t i = 0; i < t->n; i++)
        if (want->u.items[i]->u.i != t->ids[i]) return false;
    return true;
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

/* The input bytes of a case: its text, or its hex bytes. */
static void case_input(const json_value *c, strbuf *out) {
    const json_value *t = json_get(c, "text"), *h = json_get(c, "hex");
    if (t) sb_append(out, t->u.s, t->n);
    else
        for (size_t i = 0; i + 1 < h->n; i += 2) sb_putc(out, (char)(hexval(h->u.s[i]) * 16 + hexval(h->u.s[i + 1])));
}

/* Streams ids through a detokenizer one at a time; the concatenation lands in out. Checks
 * that each piece is whole UTF-8. Returns false on an API failure or a broken piece. */
static bool stream_all(const forge_tokenizer *tok, forge_detok *d, const json_value *ids,
                       unsigned flags, strbuf *out) {
    forge_error err;
    forge_detok_reset(d, flags);
    for (size_t i = 0; i < ids->n; i++) {
        const char *s;
        size_t n;
        if (forge_detok_push(d, (int32_t)ids->u.items[i]->u.i, &s, &n, &err)) return false;
        /* whole characters only: valid UTF-8 on its own */
        for (size_t k = 0; k < n;) {
            unsigned char c = (unsigned char)s[k];
            size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (k + l > n) return false;
            k += l;
        }
        sb_append(out, s, n);
    }
    const char *s;
    size_t n;
    if (forge_detok_finish(d, &s, &n, &err)) return false;
    sb_append(out, s, n);
    (void)tok;
    return true;
}

#endif
