/* sampler.c: logits processors and samplers with a per-request seeded RNG.
 *
 * Top-k and top-p never sort the vocabulary: top-k is a quickselect, top-p a quickselect
 * on probability mass (partition around a pivot, keep the heavier side whole or recurse
 * into it), and only the last few dozen candidates are sorted. Sampling then scans the
 * kept candidates in their (deterministic) array order. */
#include "sampling/sampler.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "kernels/kernels.h"

/* ---- RNG: xoshiro256**, seeded through splitmix64 ------------------------------------- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static uint64_t draw_seed(void) {
    uint64_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed) seed = 0;
        close(fd);
    }
    if (!seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    return seed;
}

/* ---- parameters ----------------------------------------------------------------------- */

void forge_sampling_params_default(forge_sampling_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
}

forge_sampling_params forge_sampling_default_params(void) {
    forge_sampling_params p;
    forge_sampling_params_default(&p);
    return p;
}

forge_status forge_sampling_params_check(const forge_sampling_params *p, int vocab, forge_error *err) {
    if (!p) return err_set(err, FORGE_E_INVALID, "forge_sampling_params_check: the params are NULL");
    if (!(p->temperature >= 0 && p->temperature <= 1e4f))
        return err_set(err, FORGE_E_INVALID, "temperature must be between 0 and 10000, got %g", p->temperature);
    if (!(p->top_p >= 0 && p->top_p <= 1))
        return err_set(err, FORGE_E_INVALID, "top_p must be in (0, 1] (0: off), got %g", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1)) return err_set(err, FORGE_E_INVALID, "min_p must be in [0, 1], got %g", p->min_p);
    if (p->top_k < -1) return err_set(err, FORGE_E_INVALID, "top_k must be -1, 0 (off) or positive, got %d", p->top_k);
    if (!(p->repetition_penalty >= 0 && p->repetition_penalty <= 1e4f))
        return err_set(err, FORGE_E_INVALID, "repetition_penalty must be positive (0: off), got %g", p->repetition_penalty);
    if (!(p->presence_penalty >= -2 && p->presence_penalty <= 2))
        return err_set(err, FORGE_E_INVALID, "presence_penalty must be in [-2, 2], got %g", p->presence_penalty);
    if (!(p->frequency_penalty >= -2 && p->frequency_penalty <= 2))
        return err_set(err, FORGE_E_INVALID, "frequency_penalty must be in [-2, 2], got %g", p->frequency_penalty);
    if (p->top_logprobs < 0 || p->top_logprobs > SAMPLER_MAX_TOP)
        return err_set(err, FORGE_E_INVALID, "top_logprobs must be in [0, %d], got %d", SAMPLER_MAX_TOP, p->top_logprobs);
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return err_set(err, FORGE_E_INVALID, "logit_bias is missing");
    for (int i = 0; i < p->n_logit_bias; i++) {
        const forge_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= vocab)
            return err_set(err, FORGE_E_INVALID, "logit_bias token %d is outside the vocabulary (0..%d)", b->token, vocab - 1);
        if (!(b->bias >= -100 && b->bias <= 100))
            return err_set(err, FORGE_E_INVALID, "logit_bias for token %d must be in [-100, 100], got %g", b->token, b->bias);
    }
    return FORGE_OK;
}

/* ---- state ---------------------------------------------------------------------------- */

typedef struct seen_token {
    int32_t token; /* -1: empty slot */
    int32_t count; /* times generated */
    bool in_prompt;
} seen_token;

struct sampler {
    forge_sampling_params p;
    forge_logit_bias *bias;
    int vocab;
    rng rng;
    uint64_t seed;
    seen_token *seen; /* open addressing, capacity a power of two */
    size_t seen_cap, seen_n, seen_max;
    int32_t *seen_list; /* slots in insertion order, for a fixed penalty order */
    int min_new, n_accepted;
    const int32_t *banned;
    int n_banned;
    const uint32_t *mask; /* constrained decoding: allowed ids, or NULL */
};

enum { DRAW_BLOCK = 64 };

struct sampler_ws {
    int vocab;
    float *vals, *probs;
    int32_t *ids;
    double *block_sums; /* one per DRAW_BLOCK candidates */
};

static bool penalties_on(const forge_sampling_params *p) {
    return p->repetition_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0;
}

static seen_token *seen_slot(sampler *s, int32_t token) {
    size_t j = ((uint32_t)token * 2654435761u) & (s->seen_cap - 1);
    while (s->seen[j].token != -1 && s->seen[j].token != token) j = (j + 1) & (s->seen_cap - 1);
    return &s->seen[j];
}

static void seen_add(sampler *s, int32_t token, bool prompt) {
    if (!s->seen) return;
    seen_token *e = seen_slot(s, token);
    if (e->token == -1) {
        if (s->seen_n >= s->seen_max) return; /* more distinct ids than sized for: cannot happen */
        e->token = token;
        s->seen_list[s->seen_n++] = (int32_t)(e - s->seen);
    }
    if (prompt) e->in_prompt = true;
    else e->count++;
}

sampler *sampler_create(const forge_sampling_params *p, int vocab, const int32_t *prompt, int n_prompt, int max_new,
                        forge_error *err) {
    if (forge_sampling_params_check(p, vocab, err)) return NULL;
    sampler *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->p = *p;
    if (s->p.top_p == 0) s->p.top_p = 1.0f; /* a zeroed struct means "off" */
    if (s->p.repetition_penalty == 0) s->p.repetition_penalty = 1.0f;
    p = &s->p;
    s->vocab = vocab;
    if (p->n_logit_bias > 0) {
        s->bias = malloc((size_t)p->n_logit_bias * sizeof *s->bias);
        if (!s->bias) goto nomem;
        memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
        s->p.logit_bias = s->bias;
    }
    s->seed = p->has_seed ? p->seed : draw_seed();
    rng_seed(&s->rng, s->seed);
    if (penalties_on(p)) {
        size_t distinct = (size_t)(n_prompt > 0 ? n_prompt : 0) + (size_t)(max_new > 0 ? max_new : 0);
        if (distinct > (size_t)vocab) distinct = (size_t)vocab;
        s->seen_max = distinct + 1;
        s->seen_cap = 16;
        while (s->seen_cap < 2 * s->seen_max) s->seen_cap *= 2;
        s->seen = malloc(s->seen_cap * sizeof *s->seen);
        s->seen_list = malloc(s->seen_max * sizeof *s->seen_list);
        if (!s->seen || !s->seen_list) goto nomem;
        for (size_t i = 0; i < s->seen_cap; i++) s->seen[i] = (seen_token){.token = -1};
        for (int i = 0; i < n_prompt; i++) seen_add(s, prompt[i], true);
    }
    return s;
nomem:
    sampler_free(s);
    err_set(err, FORGE_E_NOMEM, "out of memory");
    return NULL;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->bias);
    free(s->seen);
    free(s->seen_list);
    free(s);
}

uint64_t sampler_seed(const sampler *s) { return s->seed; }

void sampler_set_min_tokens(sampler *s, int min_new, const int32_t *banned, int n_banned) {
    s->min_new = min_new;
    s->banned = banned;
    s->n_banned = n_banned;
}

void sampler_set_mask(sampler *s, const uint32_t *mask) { s->mask = mask; }

bool sampler_plain_greedy(const sampler *s) {
    const forge_sampling_params *p = &s->p;
    return p->temperature == 0 && p->n_logit_bias == 0 && !penalties_on(p) && !s->mask &&
           !(s->n_accepted < s->min_new && s->n_banned > 0);
}

bool sampler_plain_draw(const sampler *s, float *temperature, float *min_p) {
    const forge_sampling_params *p = &s->p;
    *temperature = p->temperature;
    *min_p = p->min_p > 0 ? p->min_p : 0;
    return p->temperature > 0 && (p->top_k <= 0 || p->top_k >= s->vocab) && !(p->top_p < 1.0f) &&
           p->n_logit_bias == 0 && !penalties_on(p) && !s->mask && !(s->n_accepted < s->min_new && s->n_banned > 0);
}

double sampler_take_uniform(sampler *s) { return rng_uniform(&s->rng); }

void sampler_accept(sampler *s, int32_t token) {
    s->n_accepted++;
    if (token >= 0 && token < s->vocab) seen_add(s, token, false);
}

sampler_ws *sampler_ws_create(int vocab) {
    sampler_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->vocab = vocab;
    ws->vals = malloc((size_t)vocab * sizeof(float));
    ws->probs = malloc((size_t)vocab * sizeof(float));
    ws->ids = malloc((size_t)vocab * sizeof(int32_t));
    ws->block_sums = malloc(((size_t)vocab / DRAW_BLOCK + 1) * sizeof(double));
    if (!ws->vals || !ws->probs || !ws->ids || !ws->block_sums) {
        sampler_ws_free(ws);
        return NULL;
    }
    return ws;
}

void sampler_ws_free(sampler_ws *ws) {
    if (!ws) return;
    free(ws->vals);
    free(ws->probs);
    free(ws->ids);
    free(ws->block_sums);
    free(ws);
}

/* ---- processors ----------------------------------------------------------------------- */

void sampler_process(const sampler *s, const float *logits, float *out) {
    const forge_sampling_params *p = &s->p;
    memcpy(out, logits, (size_t)s->vocab * sizeof(float));
    for (int i = 0; i < p->n_logit_bias; i++) out[p->logit_bias[i].token] += p->logit_bias[i].bias;
    for (size_t i = 0; i < s->seen_n; i++) {
        const seen_token *e = &s->seen[s->seen_list[i]];
        float l = out[e->token];
        if (p->repetition_penalty != 1.0f) l = l > 0 ? l / p->repetition_penalty : l * p->repetition_penalty;
        if (e->count > 0) l -= (float)e->count * p->frequency_penalty + p->presence_penalty;
        out[e->token] = l;
    }
    if (s->n_accepted < s->min_new)
        for (int i = 0; i < s->n_banned; i++)
            if (s->banned[i] >= 0 && s->banned[i] < s->vocab) out[s->banned[i]] = -INFINITY;
    if (s->mask)
        for (int i = 0; i < s->vocab; i++)
            if (!((s->mask[i >> 5] >> (i & 31)) & 1)) out[i] = -INFINITY;
    if (p->temperature > 0 && p->temperature != 1.0f) {
        float t = p->temperature; /* HF divides (not multiplies by the inverse): same bits */
        for (int i = 0; i < s->vocab; i++) out[i] /= t;
    }
}

static inline void swap3(sampler_ws *ws, int a, int b) {
    float v = ws->vals[a], q = ws->probs[a];
    int32_t id = ws->ids[a];
    ws->vals[a] = ws->vals[b], ws->probs[a] = ws->probs[b], ws->ids[a] = ws->ids[b];
    ws->vals[b] = v, ws->probs[b] = q, ws->ids[b] = id;
}

/* Three-way partition of [lo, hi) around pivot value: [lo, *gt) > pivot, [*gt, *eq) ==,
 * [*eq, hi) <. */
static void partition3(sampler_ws *ws, int lo, int hi, float pivot, int *gt, int *eq) {
    int a = lo, i = lo, b = hi;
    while (i < b) {
        float v = ws->vals[i];
        if (v > pivot) swap3(ws, a++, i++);
        else if (v < pivot) swap3(ws, i, --b);
        else i++;
    }
    *gt = a;
    *eq = b;
}

static float pick_pivot(const sampler_ws *ws, int lo, int hi) {
    float a = ws->vals[lo], b = ws->vals[lo + (hi - lo) / 2], c = ws->vals[hi - 1];
    if (a > b) {
        float t = a;
        a = b;
        b = t;
    }
    if (b > c) b = c;
    return a > b ? a : b; /* median of three */
}

/* Moves the k largest values to [0, k). */
static void select_top_k(sampler_ws *ws, int n, int k) {
    int lo = 0, hi = n;
    while (hi - lo > 1) {
        int gt, eq;
        partition3(ws, lo, hi, pick_pivot(ws, lo, hi), &gt, &eq);
        if (k < gt) hi = gt;
        else if (k <= eq) return;
        else lo = eq;
    }
}

static int cmp_desc(sampler_ws *ws, int a, int b) {
    if (ws->vals[a] != ws->vals[b]) return ws->vals[a] > ws->vals[b] ? -1 : 1;
    return ws->ids[a] < ws->ids[b] ? -1 : 1;
}

/* Keeps the smallest top set whose probability mass reaches need (probs filled); returns
 * its size. Ties at the boundary are kept together. */
static int select_top_p(sampler_ws *ws, int n, double need) {
    int lo = 0, hi = n;
    double acc = 0; /* mass of [0, lo), all kept */
    while (hi - lo > 32) {
        int gt, eq;
        partition3(ws, lo, hi, pick_pivot(ws, lo, hi), &gt, &eq);
        double m_gt = 0, m_eq = 0;
        for (int i = lo; i < gt; i++) m_gt += ws->probs[i];
        for (int i = gt; i < eq; i++) m_eq += ws->probs[i];
        if (acc + m_gt >= need) hi = gt;
        else if (acc + m_gt + m_eq >= need) return eq;
        else {
            acc += m_gt + m_eq;
            lo = eq;
        }
    }
    /* sort the few left (insertion sort) and cut */
    for (int i = lo + 1; i < hi; i++)
        for (int j = i; j > lo && cmp_desc(ws, j, j - 1) < 0; j--) swap3(ws, j, j - 1);
    for (int i = lo; i < hi; i++) {
        acc += ws->probs[i];
        if (acc >= need) return i + 1;
    }
    return hi;
}

int32_t sampler_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int cut_min_p(sampler_ws *ws, int n, float min_p);

/* Runs processors and truncation into ws; returns the number of kept candidates, with
 * unnormalized probabilities in ws->probs. */
static int build_kept(const sampler *s, sampler_ws *ws, const float *logits) {
    const forge_sampling_params *p = &s->p;
    const kernels *k = kernels_get();
    int n = s->vocab;
    sampler_process(s, logits, ws->vals);
    if (p->temperature == 0) {
        int best = sampler_argmax(ws->vals, n);
        ws->ids[0] = best;
        ws->vals[0] = ws->vals[best];
        ws->probs[0] = 1;
        return 1;
    }
    if (s->mask) { /* only the allowed ids take part (in id order, as without a mask) */
        int j = 0;
        for (int i = 0; i < n; i++)
            if ((s->mask[i >> 5] >> (i & 31)) & 1) {
                ws->vals[j] = ws->vals[i];
                ws->ids[j++] = i;
            }
        n = j;
    } else
        for (int i = 0; i < n; i++) ws->ids[i] = i;
    if (p->top_k > 0 && p->top_k < n) {
        select_top_k(ws, n, p->top_k);
        n = p->top_k;
    }
    float m = k->max(ws->vals, n);
    k->exp_shift(ws->probs, ws->vals, n, m);
    if (p->top_p < 1.0f) {
        double z = 0;
        for (int i = 0; i < n; i++) z += ws->probs[i];
        n = select_top_p(ws, n, (double)p->top_p * z);
    }
    if (p->min_p > 0) n = cut_min_p(ws, n, p->min_p); /* relative to the most likely token, whose prob is exp(0) = 1 */
    return n;
}

int sampler_kept(const sampler *s, sampler_ws *ws, const float *logits, int32_t *ids, float *probs) {
    int n = build_kept(s, ws, logits);
    double z = 0;
    for (int i = 0; i < n; i++) z += ws->probs[i];
    for (int i = 0; i < n; i++) {
        ids[i] = ws->ids[i];
        probs[i] = (float)(ws->probs[i] / z);
    }
    return n;
}

static void raw_logprobs(const sampler *s, const float *logits, int32_t token, sample_result *out) {
    const kernels *k = kernels_get();
    int V = s->vocab;
    float m = k->max(logits, V);
    float lse = m + logf(k->sum_exp(logits, V, m));
    out->logprob = logits[token] - lse;
    int N = s->p.top_logprobs;
    out->n_top = 0;
    for (int i = 0; i < V && N > 0; i++) {
        float v = logits[i];
        int n = out->n_top;
        if (n == N && !(v > out->top_logprobs[n - 1])) continue;
        int j = n < N ? n++ : N - 1; /* insert, keeping descending order (earlier ids first on ties) */
        while (j > 0 && v > out->top_logprobs[j - 1]) {
            out->top_logprobs[j] = out->top_logprobs[j - 1];
            out->top_ids[j] = out->top_ids[j - 1];
            j--;
        }
        out->top_logprobs[j] = v;
        out->top_ids[j] = i;
        out->n_top = n;
    }
    for (int i = 0; i < out->n_top; i++) out->top_logprobs[i] -= lse;
}

/* The index i of [0, n) drawn with probability probs[i] / sum, for u uniform in [0, 1).
 * The sums run per block of DRAW_BLOCK (independent chains, which the CPU overlaps: one
 * sequential pass over a 49k or 152k vocabulary was most of a sampled token's cost), then
 * the block holding u * total is found and scanned. Rounding can leave u * total past the
 * last partial sum: the last candidate is taken then. */
static int draw_index(sampler_ws *ws, int n, double u);

/* min-p: the candidates with probability at least min_p (the largest's is exp(0) = 1) kept in
 * order; returns how many */
static int cut_min_p(sampler_ws *ws, int n, float min_p) {
    int j = 0;
    for (int i = 0; i < n; i++)
        if (ws->probs[i] >= min_p) {
            if (i != j) swap3(ws, i, j);
            j++;
        }
    return j;
}

int32_t sampler_draw_plain(sampler_ws *ws, const float *logits, float t, float min_p, double u) {
    const kernels *k = kernels_get();
    int n = ws->vocab;
    for (int i = 0; i < n; i++) {
        ws->vals[i] = t != 1.0f ? logits[i] / t : logits[i]; /* as sampler_process */
        ws->ids[i] = i;
    }
    float m = k->max(ws->vals, n);
    k->exp_shift(ws->probs, ws->vals, n, m);
    if (min_p > 0) n = cut_min_p(ws, n, min_p);
    return ws->ids[n > 1 ? draw_index(ws, n, u) : 0];
}

static int draw_index(sampler_ws *ws, int n, double u) {
    const float *p = ws->probs;
    int nb = (n + DRAW_BLOCK - 1) / DRAW_BLOCK;
    double total = 0;
    for (int b = 0; b < nb; b++) {
        int e = (b + 1) * DRAW_BLOCK < n ? (b + 1) * DRAW_BLOCK : n;
        double a[4] = {0, 0, 0, 0};
        int i = b * DRAW_BLOCK;
        for (; i + 4 <= e; i += 4)
            for (int j = 0; j < 4; j++) a[j] += p[i + j];
        for (; i < e; i++) a[0] += p[i];
        double bs = (a[0] + a[1]) + (a[2] + a[3]);
        ws->block_sums[b] = bs;
        total += bs;
    }
    double target = u * total, acc = 0;
    for (int b = 0; b < nb; b++) {
        if (acc + ws->block_sums[b] <= target) {
            acc += ws->block_sums[b];
            continue;
        }
        int e = (b + 1) * DRAW_BLOCK < n ? (b + 1) * DRAW_BLOCK : n;
        for (int i = b * DRAW_BLOCK; i < e; i++) {
            acc += p[i];
            if (target < acc) return i;
        }
        return e - 1;
    }
    return n - 1;
}

int32_t sampler_sample(sampler *s, sampler_ws *ws, const float *logits, bool want_logprobs, sample_result *out) {
    int n = build_kept(s, ws, logits);
    int32_t token = ws->ids[0];
    if (n > 1) {
        token = ws->ids[draw_index(ws, n, rng_uniform(&s->rng))];
    } else if (s->p.temperature > 0) {
        rng_uniform(&s->rng); /* one draw per token whatever the truncation, so streams stay aligned */
    }
    if (out) {
        memset(out, 0, sizeof *out);
        out->token = token;
        if (want_logprobs) raw_logprobs(s, logits, token, out);
    }
    return token;
}
