/* error.h: filling a forge_error with a status and a message naming what was wrong. */
#ifndef FORGE_BASE_ERROR_H
#define FORGE_BASE_ERROR_H

#include "forge.h"

#if defined(__GNUC__)
#define FORGE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FORGE_PRINTF(a, b)
#endif

/* Sets err (when not NULL) to code and the formatted message; returns code. */
forge_status err_set(forge_error *err, forge_status code, const char *fmt, ...) FORGE_PRINTF(3, 4);
/* Prepends "prefix: " to err's message, keeping its code; returns the code. */
forge_status err_prefix(forge_error *err, const char *fmt, ...) FORGE_PRINTF(2, 3);
/* Clears err to FORGE_OK with an empty message. */
void err_clear(forge_error *err);

/* Internal invariants: stays on in every build (tests included). Never for bad input. */
#define FORGE_ASSERT(cond)                                                                  \
    do {                                                                                    \
        if (!(cond)) forge_assert_fail(#cond, __FILE__, __LINE__);                          \
    } while (0)
_Noreturn void forge_assert_fail(const char *what, const char *file, int line);

#endif
