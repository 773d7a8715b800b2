/* utf8.h: UTF-8 decoding and validation (strict: no surrogates, no overlongs). */
#ifndef FORGE_BASE_UTF8_H
#define FORGE_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s[0..len); returns its length (1-4) or 0 if the bytes there
 * are not a valid UTF-8 sequence (then *cp is undefined). */
int utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Writes cp (<= 0x10FFFF, not a surrogate) to out; returns the byte count (1-4), 0 if invalid. */
int utf8_encode(uint32_t cp, char out[4]);
bool utf8_valid(const char *s, size_t len);
/* Length of a sequence from its lead byte (1-4), 0 for a continuation or invalid byte. */
int utf8_seq_len(unsigned char lead);
/* Length of the longest prefix of s[0..len) that does not end inside an incomplete but
 * possibly valid sequence: the bytes after it could still become a character. */
size_t utf8_complete_len(const char *s, size_t len);

#endif
