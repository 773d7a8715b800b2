/* tok_unicode.c: the small Unicode facts the tokenizer needs beyond PCRE2: the GPT-2
 * byte-level alphabet, from_utf8_lossy, and Rust's \w / \s / is_numeric (via utf8proc). */
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others
 * (controls, space, 0x7F-0xA0, 0xAD) for 256 + their rank among those. */
static bool bl_printable(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

static uint32_t bl_b2c[256];
static int16_t bl_c2b[256 + 68];
static pthread_once_t bl_once = PTHREAD_ONCE_INIT;

static void bl_init(void) {
    unsigned n = 0;
    for (unsigned i = 0; i < 256 + 68; i++) bl_c2b[i] = -1;
    for (unsigned i = 0; i < 256; i++) {
        bl_b2c[i] = bl_printable(i) ? i : 256 + n++;
        bl_c2b[bl_b2c[i]] = (int16_t)i;
    }
}

uint32_t bl_byte_char(unsigned char b) {
    pthread_once(&bl_once, bl_init);
    return bl_b2c[b];
}

int bl_char_byte(uint32_t cp) {
    pthread_once(&bl_once, bl_init);
    return cp < 256 + 68 ? bl_c2b[cp] : -1;
}

int utf8_lossy_unit(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c == 0xE0) need = 3, lo = 0xA0;
    else if (c == 0xED) need = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) need = 3;
    else if (c == 0xF0) need = 4, lo = 0x90;
    else if (c == 0xF4) need = 4, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3) need = 4;
    else return -1;
    /* the maximal subpart: the second byte has a narrowed range, the rest 80..BF */
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n) return 0;
        unsigned b = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) return -i;
    }
    return need;
}

void utf8_append_lossy(strbuf *out, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        int k = utf8_lossy_unit(u + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        sb_append(out, s + run, i - run);
        sb_append(out, "\xEF\xBF\xBD", 3);
        i += k < 0 ? (size_t)-k : n - i; /* incomplete at the end: one U+FFFD for the rest */
        run = i;
    }
    sb_append(out, s + run, n - run);
}

uint32_t utf8_next(const char *str, size_t *i) {
    const unsigned char *s = (const unsigned char *)str + *i;
    uint32_t c = s[0];
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if (c < 0xE0) {
        *i += 2;
        return ((c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c < 0xF0) {
        *i += 3;
        return ((c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *i += 4;
    return ((c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
           (s[3] & 0x3F);
}

size_t utf8_prev(const char *s, size_t i) {
    do i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

bool uni_is_space(uint32_t c) { /* the White_Space property */
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

bool uni_is_word(uint32_t c) { /* Alphabetic, marks, Nd, Pc, Join_Control */
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return true;
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F189)) return true; /* So, Alphabetic */
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

bool uni_is_numeric(uint32_t c) { /* Rust char::is_numeric: Nd, Nl, No */
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool uni_is_punct(uint32_t c) { /* HF Punctuation: ASCII punctuation or Unicode P* */
    if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}
