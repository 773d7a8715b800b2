/* cuda_attention.cu: causal attention over the paged KV cache, for prefill and decode alike.
 *
 * One block per (token, KV head, split) handles the n_rep query heads that share the KV
 * head (GQA). A token's visible keys [first, pos] (first > 0 with a sliding window) are cut
 * into up to ATTN_SPLITS ranges of at least ATTN_MIN_CHUNK keys (flash-decoding), so a
 * single long decoding sequence still fills the GPU, and a short one runs as one block with
 * no combine. Each block runs an online softmax over its range in tiles of ATTN_TILE keys
 * and writes (max, sum, unnormalized output), and the last block of the token's splits to
 * finish (an atomic counter) combines them in split order. The ranges depend only on the
 * token's own (first, pos), never on the batch, so attention is batch invariant: a token
 * gets the same bits alone or among others, chunked or not. Keys are read back from the
 * cache after this layer's K/V were stored, as the CPU backend does. */
#include <math.h>

#include "backend/cuda/cuda_internal.h"

__device__ __forceinline__ float kv_f(float v) { return v; }
__device__ __forceinline__ float kv_f(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ void store_out(void *out, size_t i, float v, int dt) {
    if (dt == FORGE_DTYPE_F32)
        ((float *)out)[i] = v;
    else if (dt == FORGE_DTYPE_BF16)
        ((__nv_bfloat16 *)out)[i] = __float2bfloat16_rn(v);
    else
        ((__half *)out)[i] = __float2half_rn(v);
}

/* shared memory layout, in floats: q[rep][hd], acc[rep][hd], s[rep][TILE], m[rep], l[rep],
 * corr[rep], the tile's K rows as f32 [TILE][hd + 1] (padded: threads reading one dimension
 * of different keys hit different banks) and V rows [TILE][hd]; then TILE size_t key
 * offsets */
__host__ __device__ static size_t attn_smem_floats(int rep, int hd) {
    size_t f = (size_t)2 * rep * hd + (size_t)rep * ATTN_TILE + 3 * (size_t)rep + (size_t)ATTN_TILE * (hd + 1) +
               (size_t)ATTN_TILE * hd;
    return (f + 1) & ~(size_t)1;
}
static size_t attn_smem(int rep, int hd) { return attn_smem_floats(rep, hd) * sizeof(float) + ATTN_TILE * sizeof(size_t); }

size_t attn_part_floats(int T, int n_heads, int head_dim) {
    return (size_t)T * n_heads * ATTN_SPLITS * (head_dim + 2);
}

/* Keys per split at least: below that, a split's fixed costs (its partial results and the
 * combine) outweigh the parallelism it adds. */
enum { ATTN_MIN_CHUNK = ATTN_TILE };

/* n consecutive values of a cache row as floats: 16-byte loads where the row allows */
template <typename KT>
__device__ __forceinline__ void kv_row_part(const KT *src, float *dst, int n) {
    if (sizeof(KT) == 4 && n == 4) {
        float4 v = *(const float4 *)src;
        dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
    } else if (sizeof(KT) == 2 && n == 8) {
        bf16x8_to_f32(*(const uint4 *)src, dst);
    } else {
        for (int i = 0; i < n; i++) dst[i] = kv_f(src[i]);
    }
}

template <typename KT>
__global__ void __launch_bounds__(ATTN_THREADS) attn_k(attn_args a) {
    DYNAMIC_SMEM(float, sm);
    const int t = blockIdx.x, g = blockIdx.y, j = blockIdx.z, S = ATTN_SPLITS;
    const int hd = a.head_dim, nkv = a.n_kv_heads, rep = a.n_heads / nkv;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;
    float *qs = sm, *acc = qs + rep * hd, *ss = acc + rep * hd, *ms = ss + rep * ATTN_TILE, *ls = ms + rep,
          *cs = ls + rep, *kt = cs + rep, *vt = kt + ATTN_TILE * (hd + 1);
    size_t *koff = (size_t *)(sm + attn_smem_floats(rep, hd));
    const KT *kc = (const KT *)a.k_cache, *vc = (const KT *)a.v_cache;

    /* this token's key range and its splits: they depend on (first, pos) alone */
    const int toff = a.table_off[t], pos = a.positions[t];
    int first = 0;
    if (a.window > 0 && pos - a.window + 1 > 0) first = pos - a.window + 1; /* HF: visible iff q - k < window */
    const int n = pos - first + 1;
    int chunk = ((n + S - 1) / S + KV_BLOCK - 1) / KV_BLOCK * KV_BLOCK;
    if (chunk < ATTN_MIN_CHUNK) chunk = ATTN_MIN_CHUNK;
    const int active = toff < 0 ? 1 : (n + chunk - 1) / chunk;
    if (j >= active) return; /* no keys here, and the combine does not wait for this block */
    const int k0 = first + j * chunk, k1 = min(k0 + chunk, pos + 1);
    const bool empty = toff < 0;
    /* elements per load: 16 bytes when every row is 16-byte aligned */
    const int VE = (hd * (int)sizeof(KT)) % 16 == 0 ? 16 / (int)sizeof(KT) : 1, nv = hd / VE;

    if (!empty) {
        const float *q = a.q + (size_t)t * a.ldq + (size_t)g * rep * hd;
        for (int e = tid; e < rep * hd; e += blockDim.x) {
            qs[e] = q[e];
            acc[e] = 0.f;
        }
        for (int r = tid; r < rep; r += blockDim.x) {
            ms[r] = -INFINITY;
            ls[r] = 0.f;
        }
        for (int tile = k0; tile < k1; tile += ATTN_TILE) {
            const int nk = min(ATTN_TILE, k1 - tile);
            if (tid < nk) {
                int p = tile + tid, blk = a.tables[toff + p / KV_BLOCK];
                koff[tid] = ((size_t)blk * nkv + g) * KV_BLOCK * hd + (size_t)(p % KV_BLOCK) * hd;
            }
            __syncthreads(); /* koff ready; the previous tile's kt/vt/ss no longer read */
            /* the tile's K and V rows into shared memory as f32, every load in flight at once */
            for (int i = tid; i < nk * nv; i += blockDim.x) {
                int k = i / nv, d = (i - k * nv) * VE;
                float kx[16 / sizeof(KT)], vx[16 / sizeof(KT)];
                kv_row_part(kc + koff[k] + d, kx, VE);
                kv_row_part(vc + koff[k] + d, vx, VE);
                for (int u = 0; u < VE; u++) {
                    kt[k * (hd + 1) + d + u] = kx[u];
                    vt[k * hd + d + u] = vx[u];
                }
            }
            __syncthreads();
            /* scores: a thread per (query head, key), the dot product in dimension order */
            for (int i = tid; i < rep * ATTN_TILE; i += blockDim.x) {
                int r = i / ATTN_TILE, k = i - r * ATTN_TILE;
                if (k >= nk) continue;
                const float *qr = qs + r * hd, *kr = kt + k * (hd + 1);
                float s = 0.f;
                for (int d = 0; d < hd; d++) s = fmaf(qr[d], kr[d], s);
                ss[r * ATTN_TILE + k] = s * a.scale;
            }
            __syncthreads();
            /* online softmax bookkeeping, a warp per query head (lanes over the keys) */
            for (int r = warp; r < rep; r += nwarps) {
                float *sr = ss + r * ATTN_TILE, mx = ms[r], mt = -INFINITY;
                for (int k = lane; k < nk; k += 32) mt = fmaxf(mt, sr[k]);
                mt = warp_max(mt);
                float mnew = fmaxf(mx, mt), c = expf(mx - mnew), l = 0.f;
                for (int k = lane; k < nk; k += 32) {
                    float p = expf(sr[k] - mnew);
                    sr[k] = p;
                    l += p;
                }
                l = warp_sum(l);
                __syncwarp(); /* every lane has read ms[r] */
                if (lane == 0) {
                    ls[r] = ls[r] * c + l;
                    ms[r] = mnew;
                    cs[r] = c;
                }
            }
            __syncthreads();
            /* acc = acc * c + P V */
            for (int e = tid; e < rep * hd; e += blockDim.x) {
                int r = e / hd, d = e - r * hd;
                const float *pr = ss + r * ATTN_TILE;
                float v = acc[e] * cs[r];
                for (int k = 0; k < nk; k++) v = fmaf(pr[k], vt[k * hd + d], v);
                acc[e] = v;
            }
        }
        __syncthreads();
    }

    const size_t out_row = (size_t)t * a.ldo + (size_t)g * rep * hd;
    if (active == 1) {
        for (int e = tid; e < rep * hd; e += blockDim.x) {
            float l = empty ? 0.f : ls[e / hd];
            store_out(a.out, out_row + e, l > 0.f ? acc[e] / l : 0.f, a.out_dtype);
        }
        return;
    }
    const size_t stride = (size_t)rep * (hd + 2);
    float *base = a.part + ((size_t)t * nkv + g) * S * stride, *pp = base + j * stride;
    for (int e = tid; e < rep * hd; e += blockDim.x) pp[e] = acc[e];
    for (int r = tid; r < rep; r += blockDim.x) {
        pp[rep * hd + r] = ms[r];
        pp[rep * hd + rep + r] = ls[r];
    }
    __threadfence();
    __syncthreads();
    __shared__ int is_last;
    if (tid == 0) is_last = atomicAdd(&a.counters[t * nkv + g], 1) == active - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    /* the last block: combine the splits in order (read through L2: other SMs wrote them),
     * each thread's loads issued together */
    for (int r = tid; r < rep; r += blockDim.x) {
        float Ms[ATTN_SPLITS], Ls[ATTN_SPLITS];
#pragma unroll
        for (int s = 0; s < ATTN_SPLITS; s++)
            if (s < active) {
                Ms[s] = __ldcg(base + s * stride + rep * hd + r);
                Ls[s] = __ldcg(base + s * stride + rep * hd + rep + r);
            }
        float M = -INFINITY, L = 0.f;
#pragma unroll
        for (int s = 0; s < ATTN_SPLITS; s++)
            if (s < active && Ls[s] > 0.f) M = fmaxf(M, Ms[s]);
#pragma unroll
        for (int s = 0; s < ATTN_SPLITS; s++)
            if (s < active && Ls[s] > 0.f) L += Ls[s] * expf(Ms[s] - M);
        ms[r] = M;
        ls[r] = L;
    }
    __syncthreads();
    for (int e = tid; e < rep * hd; e += blockDim.x) {
        int r = e / hd;
        float pv[ATTN_SPLITS], pm[ATTN_SPLITS], pl[ATTN_SPLITS];
#pragma unroll
        for (int s = 0; s < ATTN_SPLITS; s++)
            if (s < active) {
                const float *ps = base + s * stride;
                pv[s] = __ldcg(ps + e);
                pm[s] = __ldcg(ps + rep * hd + r);
                pl[s] = __ldcg(ps + rep * hd + rep + r);
            }
        float sum = 0.f;
#pragma unroll
        for (int s = 0; s < ATTN_SPLITS; s++)
            if (s < active && pl[s] > 0.f) sum += pv[s] * expf(pm[s] - ms[r]);
        store_out(a.out, out_row + e, ls[r] > 0.f ? sum / ls[r] : 0.f, a.out_dtype);
    }
    if (tid == 0) a.counters[t * nkv + g] = 0; /* ready for the next launch */
}

cudaError_t attn_prepare(int n_heads, int n_kv_heads, int head_dim) {
    size_t smem = attn_smem(n_heads / n_kv_heads, head_dim);
    cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void *>(&attn_k<float>), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(reinterpret_cast<const void *>(&attn_k<__nv_bfloat16>), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    return e;
}

int attn_splits_for(int max_pos) {
    if (max_pos < 0) return ATTN_SPLITS;
    int n = max_pos + 1, s = (n + ATTN_MIN_CHUNK - 1) / ATTN_MIN_CHUNK; /* chunks are at least ATTN_MIN_CHUNK */
    return s < ATTN_SPLITS ? s : ATTN_SPLITS;
}

void launch_attention(cudaStream_t s, const attn_args &a, int T, int splits) {
    /* the kernel computes a token's splits with ATTN_SPLITS whatever gridDim.z is, so a
     * smaller grid (blocks that would only exit) changes no result */
    dim3 grid(T, a.n_kv_heads, splits); /* T on x: up to 2^31 - 1 blocks */
    size_t smem = attn_smem(a.n_heads / a.n_kv_heads, a.head_dim);
    if (a.kv_dtype == FORGE_DTYPE_F32)
        LAUNCH(attn_k<float>, grid, ATTN_THREADS, smem, s, a);
    else
        LAUNCH(attn_k<__nv_bfloat16>, grid, ATTN_THREADS, smem, s, a);
}
