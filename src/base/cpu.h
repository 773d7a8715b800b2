/* cpu.h: CPU features, detected once. FORGE_CPU forces a kernel set for tests and
 * comparisons: "scalar" turns every SIMD path off, "avx2" stops at AVX2 (no AVX-512),
 * "neon" stops at plain NEON (no dot product instructions), "neon-dotprod" stops before
 * i8mm, "avx512", "neon-i8mm" (or unset) use the best the CPU has. A set the CPU lacks is never claimed: the next lower one
 * it has is used instead. Detection: cpuid/xgetbv on x86-64; on AArch64 NEON is part of
 * the baseline and FEAT_DotProd and FEAT_I8MM come from the OS (base/port.h: getauxval(AT_HWCAP) on
 * Linux, sysctlbyname on macOS). */
#ifndef FORGE_BASE_CPU_H
#define FORGE_BASE_CPU_H

#include <stdbool.h>

typedef struct cpu_features {
    bool avx2; /* AVX2 + FMA + F16C, all three, with OS support for YMM state */
    bool neon;         /* AArch64 Advanced SIMD (always there on AArch64) */
    bool neon_dotprod; /* FEAT_DotProd (SDOT/UDOT), with neon */
    bool neon_i8mm;    /* FEAT_I8MM (SMMLA), with neon_dotprod */
    bool avx512;     /* AVX-512 F + BW + VL + DQ (with avx2), with OS support for ZMM state */
    bool avx512bf16; /* AVX512-BF16 (vdpbf16ps, vcvtne2ps2bf16), with avx512 */
    bool avx512vnni; /* AVX512-VNNI (vpdpbusd), with avx512 */
} cpu_features;

const cpu_features *cpu_get(void);
/* Overrides detection (tests compare paths); returns the previous value. */
cpu_features cpu_set(cpu_features f);
/* Features this machine really has, ignoring overrides and FORGE_CPU. */
cpu_features cpu_detect(void);
/* A short description: "avx512+bf16+vnni", "avx2+fma+f16c", "neon+dotprod+i8mm", "neon" or
 * "scalar". */
const char *cpu_describe(const cpu_features *f);

#endif
