/* quant_neon.c: quant.h's kernels for AArch64 Advanced SIMD, the baseline of every ARMv8-A
 * CPU: int8 products by widening multiplies (SMULL) summed pairwise into i32 (SADALP). */
#include <arm_neon.h>

#include "base/cpu.h"

static inline int32x4_t qn_dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}
#define QN_DOT16 qn_dot16
#include "kernels/quant_neon.inc"

static const quant_kernels g_neon = {"neon", qn_quantize_act, qn_dot, qn_dot4, NULL, 0, NULL, 0, NULL};

const quant_kernels *quant_neon(void) { return cpu_detect().neon ? &g_neon : NULL; }
