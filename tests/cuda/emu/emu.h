/* emu.h: compiles the CUDA backend's .cu files as plain C++ for a CPU emulator (force-
 * included first with -include, with FORGE_CUDA_EMU defined). Kernels run one block at a
 * time, each CUDA thread a fiber; __syncthreads, __syncwarp and shuffles switch fibers, so
 * barrier misuse (a barrier some threads never reach) shows as a reported deadlock. The
 * CUDA runtime and the few cuBLAS calls the backend makes are emulated in emu_runtime.cpp
 * (memory is host memory; streams run synchronously; graph capture records launches and
 * replays them with the arguments captured, as a real graph does).
 *
 * It checks indexing, the batch packing, the split-K attention bookkeeping, graphs and the
 * whole forward against the CPU without a GPU. It cannot check what only hardware shows:
 * real concurrency between blocks, the memory model, cuBLAS's own kernels, or speed. */
#ifndef FORGE_CUDA_EMU_H
#define FORGE_CUDA_EMU_H

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static /* one block runs at a time: a static is that block's shared copy */

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

/* Runs fn as a kernel over grid x block (blocks in order, threads as fibers). */
void emu_launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, std::function<void()> fn);
void *emu_dynamic_smem(void);
void emu_sync_block(void);
void emu_sync_warp(void);
void emu_exchange(const void *v, void *out, size_t size, int src_lane_xor);

static inline void __syncthreads(void) { emu_sync_block(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void)mask;
    emu_sync_warp();
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    (void)mask;
    T out;
    emu_exchange(&v, &out, sizeof(T), lane_mask);
    return out;
}
/* every lane's bit of pred, by an OR over the xor butterfly (all 32 lanes take part) */
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    unsigned v = pred ? 1u << (threadIdx.x & 31) : 0u;
    for (int o = 16; o > 0; o >>= 1) v |= __shfl_xor_sync(mask, v, o);
    return v;
}
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline void __threadfence(void) {}
static inline int atomicAdd(int *p, int v) {
    int old = *p;
    *p = old + v;
    return old;
}
template <typename T> static inline T __ldcs(const T *p) { return *p; }
template <typename T> static inline T __ldcg(const T *p) { return *p; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }

#endif
