/* strbuf.h: a growable byte buffer, always NUL-terminated. Allocation failure is sticky:
 * later appends do nothing and sb_failed() reports it, so callers check once at the end. */
#ifndef FORGE_BASE_STRBUF_H
#define FORGE_BASE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

typedef struct strbuf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    bool failed;
} strbuf;

#define STRBUF_INIT {0}

void sb_free(strbuf *sb);
void sb_reset(strbuf *sb); /* length 0, memory kept */
bool sb_reserve(strbuf *sb, size_t extra);
void sb_append(strbuf *sb, const void *data, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_putc(strbuf *sb, char c);
void sb_printf(strbuf *sb, const char *fmt, ...) FORGE_PRINTF(2, 3);
/* The contents ("" when empty); valid until the next append. */
const char *sb_str(const strbuf *sb);
/* Hands the malloc'd contents to the caller (NULL if failed) and resets sb. */
char *sb_take(strbuf *sb, size_t *len);
static inline bool sb_failed(const strbuf *sb) { return sb->failed; }

#endif
