#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_level = -1;
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static forge_log_cb g_cb;    /* under g_log_lock */
static void *g_cb_user;

void forge_log_set(forge_log_cb cb, void *user) {
    pthread_mutex_lock(&g_log_lock);
    g_cb = cb;
    g_cb_user = user;
    pthread_mutex_unlock(&g_log_lock);
}

void forge_log_set_level(forge_log_level level) {
    if ((int)level < (int)LOG_ERROR) level = FORGE_LOG_ERROR;
    if ((int)level > (int)LOG_DEBUG) level = FORGE_LOG_DEBUG;
    log_set_level((log_level)level);
}

static int level_from_env(void) {
    const char *s = getenv("FORGE_LOG");
    if (!s) return LOG_INFO;
    if (!strcmp(s, "error")) return LOG_ERROR;
    if (!strcmp(s, "warn")) return LOG_WARN;
    if (!strcmp(s, "debug")) return LOG_DEBUG;
    return LOG_INFO;
}

int log_enabled(log_level level) {
    int cur = __atomic_load_n(&g_level, __ATOMIC_RELAXED);
    if (cur < 0) {
        cur = level_from_env();
        __atomic_store_n(&g_level, cur, __ATOMIC_RELAXED);
    }
    return (int)level <= cur;
}

void log_set_level(log_level level) { __atomic_store_n(&g_level, (int)level, __ATOMIC_RELAXED); }

void log_msg(log_level level, const char *fmt, ...) {
    if (!log_enabled(level)) return;
    static const char *names[] = {"error", "warning", "info", "debug"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_log_lock);
    if (g_cb)
        g_cb((forge_log_level)level, line, g_cb_user);
    else if (level == LOG_INFO)
        fprintf(stderr, "forge: %s\n", line);
    else
        fprintf(stderr, "forge: %s: %s\n", names[level], line);
    pthread_mutex_unlock(&g_log_lock);
}
