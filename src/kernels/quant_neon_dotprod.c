/* quant_neon_dotprod.c: quant.h's kernels with the ARMv8.2 dot product instructions
 * (FEAT_DotProd: SDOT adds four int8 products into each i32 lane). This file alone is
 * compiled with +dotprod; quant_neon_dotprod() returns it only where the CPU reports the
 * feature (base/cpu.c: HWCAP_ASIMDDP on Linux, hw.optional.arm.FEAT_DotProd on macOS). */
#include <arm_neon.h>

#include "base/cpu.h"

static inline int32x4_t qn_dot16(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
#define QN_DOT16 qn_dot16
#include "kernels/quant_neon.inc"

static const quant_kernels g_neon_dotprod = {"neon-dotprod", qn_quantize_act, qn_dot, qn_dot4, NULL, 0, NULL, 0, NULL};

const quant_kernels *quant_neon_dotprod(void) { return cpu_detect().neon_dotprod ? &g_neon_dotprod : NULL; }
