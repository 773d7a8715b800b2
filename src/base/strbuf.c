#include "base/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_free(strbuf *sb) {
    free(sb->data);
    memset(sb, 0, sizeof *sb);
}

void sb_reset(strbuf *sb) {
    sb->len = 0;
    if (sb->data) sb->data[0] = 0;
}

bool sb_reserve(strbuf *sb, size_t extra) {
    if (sb->failed) return false;
    if (extra > (size_t)-1 / 2 - sb->len) {
        sb->failed = true;
        return false;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = true;
        return false;
    }
    sb->data = p;
    sb->cap = cap;
    return true;
}

void sb_append(strbuf *sb, const void *data, size_t n) {
    if (!sb_reserve(sb, n)) return;
    if (n) memcpy(sb->data + sb->len, data, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

void sb_puts(strbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

void sb_putc(strbuf *sb, char c) {
    if (!sb_reserve(sb, 1)) return;
    sb->data[sb->len++] = c;
    sb->data[sb->len] = 0;
}

void sb_printf(strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        sb_append(sb, tmp, (size_t)n);
        return;
    }
    if (!sb_reserve(sb, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

const char *sb_str(const strbuf *sb) { return sb->data ? sb->data : ""; }

char *sb_take(strbuf *sb, size_t *len) {
    char *p = NULL;
    if (!sb->failed) {
        if (!sb->data) sb_reserve(sb, 0);
        p = sb->data;
        if (len) *len = sb->len;
        sb->data = NULL;
    } else {
        free(sb->data);
        sb->data = NULL;
    }
    memset(sb, 0, sizeof *sb);
    return p;
}
