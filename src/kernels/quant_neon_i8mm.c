/* quant_neon_i8mm.c: quant.h's kernels with the ARMv8.6 int8 matrix multiply (FEAT_I8MM:
 * SMMLA, a 2x8 by 8x2 int8 product into 2x2 i32) for two weight rows against four
 * activation rows (dot2x4), and SDOT for the single-row paths, as quant_neon_dotprod.c. This
 * file alone is compiled with +dotprod+i8mm; quant_neon_i8mm() returns it only where the CPU
 * reports both (base/cpu.c: HWCAP2_I8MM on Linux, hw.optional.arm.FEAT_I8MM on macOS). All
 * its outputs equal the dotprod variant's bits: the integer sums are exact in any grouping
 * and the f32 expressions are the same (quant_neon.inc). */
#include <arm_neon.h>

#include "base/cpu.h"

static inline int32x4_t qn_dot16(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
#define QN_DOT16 qn_dot16
#define QN_I8MM 1
#include "kernels/quant_neon.inc"

static const quant_kernels g_neon_i8mm = {"neon-i8mm", qn_quantize_act, qn_dot, qn_dot4, NULL, 0, qn_dot2x4, 0, NULL};

const quant_kernels *quant_neon_i8mm(void) { return cpu_detect().neon_i8mm ? &g_neon_i8mm : NULL; }
