/* stop.h: stop strings over streamed text. Text that could still be the start of a stop
 * string is held back; text before a stop string is never lost; the stop string itself
 * never leaves, even when it arrives split across many tokens. */
#ifndef FORGE_SAMPLING_STOP_H
#define FORGE_SAMPLING_STOP_H

#include <stdbool.h>

#include "base/strbuf.h"

typedef struct stop_matcher stop_matcher;

/* Copies the stop strings (empty strings are ignored). NULL on allocation failure. */
stop_matcher *stop_create(const char *const *stops, int n);
void stop_free(stop_matcher *m);
/* Appends n bytes of new text; appends what may be emitted now to out. Returns true when a
 * stop string has been found: out then holds everything before it and the match ends. */
bool stop_feed(stop_matcher *m, const char *text, size_t n, strbuf *out);
/* At the end of generation (EOS, length): releases what was held back. */
void stop_flush(stop_matcher *m, strbuf *out);
/* Index of the stop string that matched, or -1. */
int stop_which(const stop_matcher *m);
/* Longest stop string in bytes (what may be held back is one less). */
size_t stop_max_len(const stop_matcher *m);

#endif
