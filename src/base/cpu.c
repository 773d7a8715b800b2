#include "base/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

cpu_features cpu_detect(void) {
    cpu_features f = {0};
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
        int ymm_ok = osxsave && ((read_xcr0() & 6) == 6);
        if (ymm_ok && avx && fma && f16c && __get_cpuid_count(7, 0, &a, &b, &c, &d))
            f.avx2 = (b >> 5) & 1;
    }
#elif defined(__aarch64__)
    f.neon = true;
#endif
    return f;
}

static cpu_features g_features;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_features(void) {
    g_features = cpu_detect();
    const char *s = getenv("FORGE_CPU");
    if (s && !strcmp(s, "scalar")) memset(&g_features, 0, sizeof g_features);
}

const cpu_features *cpu_get(void) {
    pthread_once(&g_once, init_features);
    return &g_features;
}

cpu_features cpu_set(cpu_features f) {
    pthread_once(&g_once, init_features);
    cpu_features old = g_features;
    cpu_features real = cpu_detect();
    /* never claim what the machine lacks */
    f.avx2 = f.avx2 && real.avx2;
    f.neon = f.neon && real.neon;
    g_features = f;
    return old;
}

const char *cpu_describe(const cpu_features *f) {
    if (f->avx2) return "avx2+fma+f16c";
    if (f->neon) return "neon";
    return "scalar";
}
