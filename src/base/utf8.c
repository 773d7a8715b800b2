#include "base/utf8.h"

int utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

int utf8_decode(const char *str, size_t len, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n = utf8_seq_len(c);
    if (n == 0 || (size_t)n > len) return 0;
    uint32_t v = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* overlongs, surrogates, beyond U+10FFFF */
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

int utf8_encode(uint32_t cp, char out[4]) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

bool utf8_valid(const char *s, size_t len) {
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int n = utf8_decode(s + i, len - i, &cp);
        if (!n) return false;
        i += (size_t)n;
    }
    return true;
}

/* Could s[0..n) be the start of a valid sequence whose remaining bytes have not arrived? */
static bool is_valid_prefix(const unsigned char *s, size_t n) {
    int need = utf8_seq_len(s[0]);
    if (need == 0 || (size_t)need <= n) return false;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return false;
        if (i == 1) { /* second byte ranges that exclude overlongs, surrogates, > U+10FFFF */
            if (s[0] == 0xE0 && s[1] < 0xA0) return false;
            if (s[0] == 0xED && s[1] > 0x9F) return false;
            if (s[0] == 0xF0 && s[1] < 0x90) return false;
            if (s[0] == 0xF4 && s[1] > 0x8F) return false;
        }
    }
    return true;
}

size_t utf8_complete_len(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    /* an incomplete tail is at most 3 bytes long and starts at a lead byte */
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = s[len - back];
        if ((c & 0xC0) == 0x80) continue;
        if (c >= 0xC0 && is_valid_prefix(s + len - back, back)) return len - back;
        break;
    }
    return len;
}
