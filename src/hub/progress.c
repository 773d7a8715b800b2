#include "hub/progress.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/log.h"
#include "base/timing.h"

struct hub_progress {
    pthread_mutex_t mu;
    bool enabled, tty, begun, bar_shown;
    char label[300];
    int n_files, files_done;
    int64_t total, done;
    double t0, last_draw;
    forge_progress_cb cb; /* the embedder's hook, called under mu */
    void *cb_user;
    atomic_int *cancel;
};

void hub_progress_set_callback(hub_progress *p, forge_progress_cb cb, void *user, atomic_int *cancel) {
    p->cb = cb;
    p->cb_user = user;
    p->cancel = cancel;
}

/* Under p->mu. */
static void report(hub_progress *p) {
    if (!p->cb) return;
    uint64_t done = p->done > 0 ? (uint64_t)p->done : 0, total = p->total > 0 ? (uint64_t)p->total : 0;
    if (!p->cb(done, total, p->cb_user) && p->cancel) atomic_store(p->cancel, 1);
}

hub_progress *hub_progress_create(bool enabled) {
    hub_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->enabled = enabled;
    p->tty = enabled && isatty(2);
    return p;
}

void hub_progress_free(hub_progress *p) {
    if (!p) return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void hub_format_bytes(double b, char *out, size_t n) {
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) b /= 1000, u++;
    if (u == 0)
        snprintf(out, n, "%.0f B", b);
    else
        snprintf(out, n, "%.*f %s", b < 10 ? 2 : b < 100 ? 1 : 0, b, units[u]);
}

static int term_width(void) {
    struct winsize ws;
    if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
    return 80;
}

/* Draws the bar; the caller holds mu. */
static void draw(hub_progress *p, double now) {
    char done[32], total[32], rate[32], eta[32] = "--:--", line[512];
    double el = now - p->t0, r = el > 0 ? (double)p->done / el : 0;
    hub_format_bytes((double)p->done, done, sizeof done);
    hub_format_bytes((double)p->total, total, sizeof total);
    hub_format_bytes(r, rate, sizeof rate);
    if (r > 0 && p->total > p->done) {
        long s = (long)((double)(p->total - p->done) / r + 0.5);
        snprintf(eta, sizeof eta, "%ld:%02ld", s / 60, s % 60);
    } else if (p->total <= p->done) {
        snprintf(eta, sizeof eta, "0:00");
    }
    int pct = p->total > 0 ? (int)(100.0 * (double)p->done / (double)p->total) : 100;
    if (pct > 100) pct = 100;
    /* "label  42% [#####.....] 1.2 MB / 3.4 MB  2.0 MB/s  ETA 0:01", the bar and then the
     * label shortened to fit the terminal. */
    char stats[160];
    int ns = snprintf(stats, sizeof stats, "] %7s / %-7s %7s/s  ETA %5s", done, total, rate, eta);
    int width = term_width() - 1, label_len = (int)strlen(p->label);
    int bar_w = width - label_len - 8 - ns;
    if (bar_w > 30) bar_w = 30;
    if (bar_w < 10) bar_w = 10;
    int room = width - bar_w - 8 - ns; /* for the label */
    if (room < 0) room = 0;
    char bar[32];
    int fill = pct * bar_w / 100;
    for (int i = 0; i < bar_w; i++) bar[i] = i < fill ? '#' : '.';
    bar[bar_w] = 0;
    int n = label_len <= room
                ? snprintf(line, sizeof line, "%s  %3d%% [%s%s", p->label, pct, bar, stats)
                : snprintf(line, sizeof line, "...%s  %3d%% [%s%s",
                           p->label + label_len - (room > 3 ? room - 3 : 0), pct, bar, stats);
    if (n > width) n = width;
    fprintf(stderr, "\r%.*s\033[K", n, line);
    fflush(stderr);
    p->bar_shown = true;
    p->last_draw = now;
}

void hub_progress_begin(hub_progress *p, const char *label, int n_files, int64_t bytes) {
    pthread_mutex_lock(&p->mu);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->n_files = n_files;
    p->total = bytes;
    p->t0 = time_sec();
    p->begun = true;
    if (p->enabled && !p->tty) {
        char b[32];
        hub_format_bytes((double)bytes, b, sizeof b);
        fprintf(stderr, "forge: downloading %s: %d file%s, %s\n", label, n_files,
                n_files == 1 ? "" : "s", b);
    }
    if (p->tty) draw(p, p->t0);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_add(hub_progress *p, int n_files, int64_t bytes) {
    pthread_mutex_lock(&p->mu);
    p->n_files += n_files;
    p->total += bytes;
    if (p->enabled && !p->tty && n_files) {
        char b[32];
        hub_format_bytes((double)bytes, b, sizeof b);
        fprintf(stderr, "forge: %d more file%s (weight shards), %s\n", n_files,
                n_files == 1 ? "" : "s", b);
    }
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_advance(hub_progress *p, int64_t delta) {
    pthread_mutex_lock(&p->mu);
    p->done += delta;
    if (p->tty && p->begun) {
        double now = time_sec();
        if (now - p->last_draw >= 0.1) draw(p, now);
    }
    report(p);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_file_done(hub_progress *p, const char *name, int64_t size, bool fetched) {
    pthread_mutex_lock(&p->mu);
    p->files_done++;
    if (!fetched) p->done += size; /* already had the blob: count it as done */
    report(p);
    if (p->enabled && !p->tty) {
        char b[32];
        hub_format_bytes((double)size, b, sizeof b);
        fprintf(stderr, "forge:   %s (%s)%s\n", name, b, fetched ? "" : " already in the cache");
    }
    if (p->tty && p->begun) draw(p, time_sec());
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_note(hub_progress *p, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p) {
        log_warn("%s", msg);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->bar_shown) fprintf(stderr, "\r\033[K");
    log_warn("%s", msg);
    if (p->tty && p->begun) draw(p, time_sec());
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_info(hub_progress *p, const char *fmt, ...) {
    if (!p || !p->enabled) return;
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&p->mu);
    if (p->bar_shown) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "forge: %s\n", msg);
    if (p->tty && p->begun) draw(p, time_sec());
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_end(hub_progress *p, bool ok) {
    pthread_mutex_lock(&p->mu);
    if (p->begun) {
        double el = time_sec() - p->t0;
        if (p->tty) {
            draw(p, time_sec());
            fputc('\n', stderr);
        } else if (p->enabled && ok) {
            char b[32], r[32];
            hub_format_bytes((double)p->done, b, sizeof b);
            hub_format_bytes(el > 0 ? (double)p->done / el : 0, r, sizeof r);
            fprintf(stderr, "forge: downloaded %s in %.1f s (%s/s)\n", b, el, r);
        }
        p->begun = false;
    }
    pthread_mutex_unlock(&p->mu);
}
