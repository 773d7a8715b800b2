#include "sampling/stop.h"

#include <stdlib.h>
#include <string.h>

struct stop_matcher {
    char **stops;
    size_t *lens;
    int n;
    size_t max_len;
    strbuf pending; /* text not yet emitted */
    int matched;
    bool done;
};

stop_matcher *stop_create(const char *const *stops, int n) {
    stop_matcher *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->matched = -1;
    if (n > 0) {
        m->stops = calloc((size_t)n, sizeof *m->stops);
        m->lens = calloc((size_t)n, sizeof *m->lens);
        if (!m->stops || !m->lens) goto fail;
    }
    for (int i = 0; i < n; i++) {
        if (!stops[i] || !*stops[i]) continue;
        m->stops[m->n] = strdup(stops[i]);
        if (!m->stops[m->n]) goto fail;
        m->lens[m->n] = strlen(stops[i]);
        if (m->lens[m->n] > m->max_len) m->max_len = m->lens[m->n];
        m->n++;
    }
    return m;
fail:
    stop_free(m);
    return NULL;
}

void stop_free(stop_matcher *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->stops[i]);
    free(m->stops);
    free(m->lens);
    sb_free(&m->pending);
    free(m);
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of some stop string. */
static size_t holdback(const stop_matcher *m, const char *s, size_t n) {
    size_t best = 0;
    for (int i = 0; i < m->n; i++) {
        size_t l = m->lens[i] - 1 < n ? m->lens[i] - 1 : n;
        for (; l > best; l--)
            if (!memcmp(s + n - l, m->stops[i], l)) {
                best = l;
                break;
            }
    }
    return best;
}

bool stop_feed(stop_matcher *m, const char *text, size_t n, strbuf *out) {
    if (m->done) return m->matched >= 0;
    if (m->n == 0) {
        sb_append(out, text, n);
        return false;
    }
    /* a match may start inside the held-back text: search pending + text together, but only
     * at positions where a match can end in the new text */
    size_t old = m->pending.len;
    sb_append(&m->pending, text, n);
    const char *p = sb_str(&m->pending);
    size_t len = m->pending.len;
    size_t first = (size_t)-1;
    for (int i = 0; i < m->n; i++) {
        size_t start = old + 1 > m->lens[i] ? old + 1 - m->lens[i] : 0;
        for (size_t at = start; at + m->lens[i] <= len && at < first; at++)
            if (!memcmp(p + at, m->stops[i], m->lens[i])) {
                first = at;
                m->matched = i;
                break;
            }
    }
    if (first != (size_t)-1) {
        sb_append(out, p, first);
        sb_reset(&m->pending);
        m->done = true;
        return true;
    }
    size_t keep = holdback(m, p, len);
    sb_append(out, p, len - keep);
    memmove(m->pending.data, p + len - keep, keep);
    m->pending.len = keep;
    m->pending.data[keep] = 0;
    return false;
}

void stop_flush(stop_matcher *m, strbuf *out) {
    if (!m->done) sb_append(out, sb_str(&m->pending), m->pending.len);
    sb_reset(&m->pending);
    m->done = true;
}

int stop_which(const stop_matcher *m) { return m->matched; }

size_t stop_max_len(const stop_matcher *m) { return m->max_len; }
