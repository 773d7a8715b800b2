/* test.h: the smallest test harness. Each test program runs its TEST functions with
 * RUN(name), prints "ok name" or "FAIL name" with the failed checks, and ends with the
 * line "N passed, N failed" that tests/run.sh adds up. Tests run from the repository root. */
#ifndef FORGE_TEST_H
#define FORGE_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_checks_failed, t_passed, t_failed;
static const char *t_current;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) t_fail_at(__FILE__, __LINE__, "%s", #cond);                            \
    } while (0)
/* CHECKF(cond, fmt, ...): with a message explaining the failure */
#define CHECKF(cond, ...)                                                                   \
    do {                                                                                    \
        if (!(cond)) t_fail_at(__FILE__, __LINE__, __VA_ARGS__);                            \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                  \
    do {                                                                                    \
        long long t_a = (long long)(a), t_b = (long long)(b);                               \
        if (t_a != t_b) t_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, t_a, t_b); \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                                  \
    do {                                                                                    \
        const char *t_a = (a), *t_b = (b);                                                  \
        if (!t_a || !t_b || strcmp(t_a, t_b))                                               \
            t_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,             \
                      t_a ? t_a : "(null)", t_b ? t_b : "(null)");                          \
    } while (0)

#define RUN(name) t_run(#name, name)

__attribute__((format(printf, 3, 4))) static void t_fail_at(const char *file, int line,
                                                             const char *fmt, ...) {
    if (t_checks_failed++ >= 10) return; /* the first ten are enough */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

static void t_run(const char *name, void (*fn)(void)) {
    t_current = name;
    t_checks_failed = 0;
    fn();
    if (t_checks_failed) {
        printf("FAIL %s (%d checks failed)\n", name, t_checks_failed);
        t_failed++;
    } else {
        printf("ok   %s\n", name);
        t_passed++;
    }
    fflush(stdout);
}

static int t_summary(void) {
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}

/* A small deterministic RNG for test data (splitmix64). */
static unsigned long long t_rng_state = 0x1234567;
static inline unsigned long long t_rand64(void) {
    unsigned long long z = (t_rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
static inline float t_randf(void) { return (float)((double)(t_rand64() >> 11) * 0x1.0p-52 - 1.0); }

/* true when running under sanitizers (make asan): tests may shrink their sizes */
static inline int t_sanitized(void) { return getenv("FORGE_SANITIZE") != NULL; }
/* true when running under an instruction-set emulator (scripts/ci-aarch64.sh sets
 * FORGE_EMULATED under qemu-user, where floating point is ~50-100x slower): tests may
 * shrink their sizes; docs/arm.md lists which do */
static inline int t_emulated(void) { return getenv("FORGE_EMULATED") != NULL; }

/* The whole file at path, NUL-terminated (malloc'd; *n, when given, gets its length), or NULL. */
static inline void *t_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = len >= 0 ? malloc((size_t)len + 1) : NULL;
    size_t got = p ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!p) return NULL;
    p[got] = 0;
    if (n) *n = got;
    return p;
}

#endif
