/* emu_runtime.cpp: the CPU emulator's kernel scheduler (one fiber per CUDA thread, one block
 * at a time) and the parts of the CUDA runtime and cuBLAS the backend calls. See emu.h.
 *
 * Memory is host memory; every call is synchronous; graph capture records launches (with
 * their arguments as captured) and replays them. Shared memory starts as 0xff bytes (NaN
 * floats) so a read before a write shows. FORGE_EMU_GPU_MB sets the memory the emulated
 * device reports (default 81920), to test the "does not fit" errors. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include <vector>

#include "emu.h"
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

struct CUstream_st {
    bool capturing;
    std::vector<std::function<void()>> ops;
};
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
struct CUevent_st {
    double t;
};
struct cublasContext {
    cudaStream_t stream;
};

/* ---- the fiber scheduler ---------------------------------------------------------------- */

/* A fiber switch: ucontext's swapcontext makes a system call per switch (the signal mask);
 * on x86-64 a dozen instructions do: the callee-saved registers (kernels never change the
 * floating-point control words, so those are shared). */
#if defined(__x86_64__)
extern "C" void emu_switch(void **save_sp, void *load_sp);
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
#endif

namespace {

enum { F_READY, F_AT_BLOCK, F_AT_WARP, F_DONE };
const size_t STACK = 128 * 1024;

struct fiber {
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t uc;
#endif
    int state;
    uint3 tid;
};

std::vector<fiber> g_f;
int g_cur;
#if defined(__x86_64__)
void *g_sched_sp;
#else
ucontext_t g_sched;
#endif
char *g_stacks;
size_t g_n_stacks;
const std::function<void()> *g_body;
unsigned char g_xbuf[32][32][8];
std::vector<unsigned char> g_smem;
size_t g_smem_size;

void to_sched() {
#if defined(__x86_64__)
    emu_switch(&g_f[g_cur].sp, g_sched_sp);
#else
    swapcontext(&g_f[g_cur].uc, &g_sched);
#endif
}

void to_fiber(int i) {
#if defined(__x86_64__)
    emu_switch(&g_sched_sp, g_f[i].sp);
#else
    swapcontext(&g_sched, &g_f[i].uc);
#endif
}

void trampoline() {
    (*g_body)();
    g_f[g_cur].state = F_DONE;
    to_sched(); /* never resumed */
    abort();
}

void yield(int state) {
    g_f[g_cur].state = state;
    to_sched();
}

void fiber_init(fiber &f, char *stack, int i) {
#if defined(__x86_64__)
    /* stack tops staggered by 320 bytes: equal offsets would all fall in one cache set */
    void **p = (void **)(((uintptr_t)(stack + STACK - (size_t)(i % 64) * 320)) & ~(uintptr_t)15);
    *--p = nullptr;             /* trampoline's own return address (never used) */
    *--p = (void *)trampoline;  /* where emu_switch's ret goes */
    for (int r = 0; r < 6; r++) *--p = nullptr;
    f.sp = p;
#else
    (void)i;
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = stack;
    f.uc.uc_stack.ss_size = STACK;
    f.uc.uc_link = &g_sched;
    makecontext(&f.uc, trampoline, 0);
#endif
}

void run_block(int nt) {
    for (int i = 0; i < nt; i++) {
        fiber &f = g_f[i];
        fiber_init(f, g_stacks + (size_t)i * STACK, i);
        f.state = F_READY;
        f.tid = make_uint3(i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y));
    }
    if (g_smem_size) memset(g_smem.data(), 0xff, g_smem_size);
    int n_warps = (nt + 31) / 32;
    for (;;) {
        for (int i = 0; i < nt; i++)
            if (g_f[i].state == F_READY) {
                g_cur = i;
                threadIdx = g_f[i].tid;
                to_fiber(i);
            }
        int alive = 0, at_block = 0;
        for (int i = 0; i < nt; i++) {
            alive += g_f[i].state != F_DONE;
            at_block += g_f[i].state == F_AT_BLOCK;
        }
        if (!alive) return;
        bool released = false;
        if (at_block == alive) {
            for (int i = 0; i < nt; i++)
                if (g_f[i].state == F_AT_BLOCK) g_f[i].state = F_READY;
            released = true;
        }
        for (int w = 0; w < n_warps; w++) {
            int a = 0, at = 0;
            for (int i = w * 32; i < nt && i < w * 32 + 32; i++) {
                a += g_f[i].state != F_DONE;
                at += g_f[i].state == F_AT_WARP;
            }
            if (at && at == a) {
                for (int i = w * 32; i < nt && i < w * 32 + 32; i++)
                    if (g_f[i].state == F_AT_WARP) g_f[i].state = F_READY;
                released = true;
            }
        }
        if (!released) {
            fprintf(stderr, "emu: deadlock in block (%u,%u,%u) of grid (%u,%u,%u): %d threads wait at barriers that "
                            "others never reach\n",
                    blockIdx.x, blockIdx.y, blockIdx.z, gridDim.x, gridDim.y, gridDim.z, alive);
            abort();
        }
    }
}

void run_kernel(dim3 grid, dim3 block, size_t smem, const std::function<void()> &fn) {
    int nt = (int)(block.x * block.y * block.z);
    if (nt < 1 || nt > 1024 || grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535) {
        fprintf(stderr, "emu: invalid launch: grid (%u,%u,%u) block (%u,%u,%u)\n", grid.x, grid.y, grid.z, block.x,
                block.y, block.z);
        abort();
    }
    if (smem > 227 * 1024) {
        fprintf(stderr, "emu: %zu bytes of dynamic shared memory exceed the H100's 227 KB\n", smem);
        abort();
    }
    if ((size_t)nt > g_n_stacks) {
        if (g_stacks) munmap(g_stacks, g_n_stacks * STACK);
        g_stacks = (char *)mmap(nullptr, (size_t)nt * STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                -1, 0);
        if (g_stacks == MAP_FAILED) abort();
        g_n_stacks = (size_t)nt;
    }
    if ((int)g_f.size() < nt) g_f.resize((size_t)nt);
    if (g_smem.size() < smem) g_smem.resize(smem);
    g_smem_size = smem;
    gridDim = grid;
    blockDim = block;
    g_body = &fn;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx = make_uint3(x, y, z);
                run_block(nt);
            }
}

bool capturing(cudaStream_t s) { return s && s->capturing; }

double now() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

size_t g_allocated;
size_t total_bytes() {
    const char *s = getenv("FORGE_EMU_GPU_MB");
    return (size_t)(s && *s ? atof(s) : 81920.0) * 1024 * 1024;
}

} // namespace

void emu_launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, std::function<void()> fn) {
    if (capturing(stream))
        stream->ops.push_back([=]() { run_kernel(grid, block, smem, fn); });
    else
        run_kernel(grid, block, smem, fn);
}

void *emu_dynamic_smem(void) { return g_smem.data(); }
void emu_sync_block(void) { yield(F_AT_BLOCK); }
void emu_sync_warp(void) { yield(F_AT_WARP); }

void emu_exchange(const void *v, void *out, size_t size, int lane_xor) {
    int w = g_cur / 32, lane = g_cur % 32;
    memcpy(g_xbuf[w][lane], v, size);
    emu_sync_warp();
    memcpy(out, g_xbuf[w][lane ^ lane_xor], size);
    emu_sync_warp(); /* nobody overwrites the buffer before all have read */
}

/* ---- the CUDA runtime ------------------------------------------------------------------- */

extern "C" {

cudaError_t cudaMalloc(void **p, size_t n) {
    size_t size = (n + 255) & ~(size_t)255;
    if (g_allocated + size > total_bytes()) return cudaErrorMemoryAllocation;
    *p = aligned_alloc(256, size + 256);
    if (!*p) return cudaErrorMemoryAllocation;
    ((size_t *)*p)[0] = size; /* the size lives in the first 256 bytes, the block after them */
    *p = (char *)*p + 256;
    g_allocated += size;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    char *base = (char *)p - 256;
    g_allocated -= ((size_t *)base)[0];
    free(base);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaHostRegister(void *, size_t, unsigned int) { return cudaSuccess; }
cudaError_t cudaHostUnregister(void *) { return cudaSuccess; }
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind) {
    memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind, cudaStream_t s) {
    if (capturing(s))
        s->ops.push_back([=]() { memmove(dst, src, n); });
    else
        memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    if (capturing(s))
        s->ops.push_back([=]() { memset(p, v, n); });
    else
        memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int) {
    *s = new CUstream_st();
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) { return capturing(s) ? cudaErrorStreamCaptureUnsupported : cudaSuccess; }
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode) {
    if (!s) return cudaErrorStreamCaptureUnsupported;
    s->capturing = true;
    s->ops.clear();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    if (!capturing(s)) return cudaErrorIllegalState;
    *g = new CUgraph_st();
    (*g)->ops.swap(s->ops);
    s->capturing = false;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long) {
    *e = new CUgraphExec_st();
    (*e)->ops = g->ops;
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
    for (auto &op : e->ops) op();
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new CUevent_st();
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
    e->t = now();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)((b->t - a->t) * 1e3);
    if (*ms <= 0) *ms = 1e-3f;
    return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *a, const void *) {
    memset(a, 0, sizeof *a);
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *, enum cudaFuncAttribute attr, int value) {
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize && value > 227 * 1024) return cudaErrorInvalidValue;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "Forge CUDA emulator (CPU)");
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 4;
    p->totalGlobalMem = total_bytes();
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int) {
    *v = a == cudaDevAttrMultiProcessorCount ? 4 : 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total) {
    *total = total_bytes();
    *free_b = *total - g_allocated;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory" : "emulated error";
}

/* ---- cuBLAS: the one GEMM the backend uses ---------------------------------------------- */

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = new cublasContext();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "success" : "emulated failure"; }

static float elem(const void *p, cudaDataType t, size_t i) {
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    if (t == CUDA_R_16F) return __half2float(((const __half *)p)[i]);
    return ((const float *)p)[i];
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType At, int lda, const void *B, cudaDataType Bt,
                            int ldb, const void *beta, void *C, cudaDataType Ct, int ldc, cublasComputeType_t ct,
                            cublasGemmAlgo_t) {
    if (ta != CUBLAS_OP_T || tb != CUBLAS_OP_N || Ct != CUDA_R_32F || At != Bt ||
        (ct != CUBLAS_COMPUTE_32F && ct != CUBLAS_COMPUTE_32F_FAST_TF32) || lda < k || ldb < k || ldc < m)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    float al = *(const float *)alpha, be = *(const float *)beta;
    auto run = [=]() {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                float s = 0;
                for (int q = 0; q < k; q++)
                    s = fmaf(elem(A, At, (size_t)i * lda + q), elem(B, Bt, (size_t)j * ldb + q), s);
                float *c = (float *)C + (size_t)j * ldc + i;
                *c = al * s + (be != 0 ? be * *c : 0.f);
            }
    };
    if (capturing(h->stream))
        h->stream->ops.push_back(run);
    else
        run();
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
