/* cpu.h: CPU features, detected once. FORGE_CPU=scalar turns every SIMD path off (for tests
 * and comparisons); FORGE_CPU=avx2 insists on AVX2 and fails over to scalar if absent. */
#ifndef FORGE_BASE_CPU_H
#define FORGE_BASE_CPU_H

#include <stdbool.h>

typedef struct cpu_features {
    bool avx2; /* AVX2 + FMA + F16C, all three, with OS support for YMM state */
    bool neon;
} cpu_features;

const cpu_features *cpu_get(void);
/* Overrides detection (tests compare paths); returns the previous value. */
cpu_features cpu_set(cpu_features f);
/* Features this machine really has, ignoring overrides and FORGE_CPU. */
cpu_features cpu_detect(void);
/* A short description: "avx2+fma+f16c", "neon" or "scalar". */
const char *cpu_describe(const cpu_features *f);

#endif
