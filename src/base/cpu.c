#include "base/cpu.h"

#include "base/port.h"

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
        if (ymm_ok && avx && fma && f16c && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            f.avx2 = (b >> 5) & 1;
            /* ZMM state: opmask (bit 5), upper halves of ZMM0-15 (6), ZMM16-31 (7) */
            int zmm_ok = (read_xcr0() & 0xe6) == 0xe6;
            int avx512f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
            f.avx512 = f.avx2 && zmm_ok && avx512f && dq && bw && vl;
            f.avx512vnni = f.avx512 && ((c >> 11) & 1);
            unsigned int a1, b1, c1, d1;
            if (f.avx512 && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512bf16 = (a1 >> 5) & 1;
        }
    }
#elif defined(__aarch64__)
    f.neon = true;
    f.neon_dotprod = port_arm_dotprod();
    f.neon_i8mm = f.neon_dotprod && port_arm_i8mm();
#endif
    return f;
}

static cpu_features g_features;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_features(void) {
    g_features = cpu_detect();
    const char *s = getenv("FORGE_CPU");
    if (s && !strcmp(s, "scalar")) memset(&g_features, 0, sizeof g_features);
    if (s && !strcmp(s, "avx2")) g_features.avx512 = g_features.avx512bf16 = g_features.avx512vnni = false;
    if (s && !strcmp(s, "neon")) g_features.neon_dotprod = g_features.neon_i8mm = false;
    if (s && !strcmp(s, "neon-dotprod")) g_features.neon_i8mm = false;
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
    f.neon_dotprod = f.neon_dotprod && f.neon && real.neon_dotprod;
    f.neon_i8mm = f.neon_i8mm && f.neon_dotprod && real.neon_i8mm;
    f.avx512 = f.avx512 && f.avx2 && real.avx512;
    f.avx512bf16 = f.avx512bf16 && f.avx512 && real.avx512bf16;
    f.avx512vnni = f.avx512vnni && f.avx512 && real.avx512vnni;
    g_features = f;
    return old;
}

const char *cpu_describe(const cpu_features *f) {
    if (f->avx512 && f->avx512bf16 && f->avx512vnni) return "avx512+bf16+vnni";
    if (f->avx512 && f->avx512bf16) return "avx512+bf16";
    if (f->avx512 && f->avx512vnni) return "avx512+vnni";
    if (f->avx512) return "avx512";
    if (f->avx2) return "avx2+fma+f16c";
    if (f->neon && f->neon_dotprod && f->neon_i8mm) return "neon+dotprod+i8mm";
    if (f->neon && f->neon_dotprod) return "neon+dotprod";
    if (f->neon) return "neon";
    return "scalar";
}
