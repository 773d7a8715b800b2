#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *forge_version(void) { return FORGE_VERSION; }

int forge_version_number(void) { return FORGE_VERSION_NUMBER; }

const char *forge_status_str(forge_status s) {
    switch (s) {
    case FORGE_OK: return "ok";
    case FORGE_E_INVALID: return "invalid argument";
    case FORGE_E_IO: return "I/O error";
    case FORGE_E_FORMAT: return "malformed data";
    case FORGE_E_UNSUPPORTED: return "unsupported";
    case FORGE_E_NOMEM: return "out of memory";
    case FORGE_E_RANGE: return "out of range";
    case FORGE_E_TEMPLATE: return "template error";
    case FORGE_E_NOT_FOUND: return "not found";
    case FORGE_E_NETWORK: return "network error";
    case FORGE_E_BUSY: return "busy";
    case FORGE_E_CANCELLED: return "cancelled";
    case FORGE_E_INTERNAL: return "internal error";
    }
    return "unknown status";
}

forge_status err_set(forge_error *err, forge_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

forge_status err_prefix(forge_error *err, const char *fmt, ...) {
    if (!err) return FORGE_E_INTERNAL;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    size_t pl = strlen(prefix), ol = strnlen(old, sizeof old - 1);
    size_t cap = sizeof err->msg - 1;
    if (pl > cap) pl = cap;
    memcpy(err->msg, prefix, pl);
    size_t at = pl;
    if (at + 2 <= cap) {
        memcpy(err->msg + at, ": ", 2);
        at += 2;
    }
    if (ol > cap - at) ol = cap - at;
    memcpy(err->msg + at, old, ol);
    err->msg[at + ol] = 0;
    return err->code;
}

void err_clear(forge_error *err) {
    if (err) {
        err->code = FORGE_OK;
        err->msg[0] = 0;
    }
}

void forge_assert_fail(const char *what, const char *file, int line) {
    fprintf(stderr, "forge: internal invariant failed: %s (%s:%d)\n", what, file, line);
    abort();
}
