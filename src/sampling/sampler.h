/* sampler.h: per-request sampling state (seeded RNG, penalty counts) and a per-thread
 * workspace sized once by the vocabulary, so that sampling allocates nothing per token. */
#ifndef FORGE_SAMPLING_SAMPLER_H
#define FORGE_SAMPLING_SAMPLER_H

#include "forge.h"

enum { SAMPLER_MAX_TOP = 20 };

typedef struct sampler sampler;
typedef struct sampler_ws sampler_ws;

typedef struct sample_result {
    int32_t token;
    float logprob; /* raw logprob of token (before processors), when requested */
    int n_top;
    int32_t top_ids[SAMPLER_MAX_TOP];
    float top_logprobs[SAMPLER_MAX_TOP];
} sample_result;

/* prompt ids feed the repetition penalty; max_new bounds the generated ids to track.
 * The params (and their logit_bias array) are copied. */
sampler *sampler_create(const forge_sampling_params *p, int vocab, const int32_t *prompt, int n_prompt,
                        int max_new, forge_error *err);
void sampler_free(sampler *s);
/* The seed in use (drawn when none was given). */
uint64_t sampler_seed(const sampler *s);

sampler_ws *sampler_ws_create(int vocab);
void sampler_ws_free(sampler_ws *ws);

/* Chooses the next token from raw logits (not modified). want_logprobs: fill logprob and the
 * top-N raw logprobs. Then call sampler_accept with the token actually used. */
int32_t sampler_sample(sampler *s, sampler_ws *ws, const float *logits, bool want_logprobs, sample_result *out);
/* Until min_new tokens have been accepted, the banned ids (EOS, stop tokens) get -inf.
 * The array must outlive the sampler. */
void sampler_set_min_tokens(sampler *s, int min_new, const int32_t *banned, int n_banned);
/* A token mask (bit id of word id / 32 set: allowed), read at every sample until changed;
 * NULL: none. Disallowed tokens get -inf after the processors, before any sampler, so
 * every setting (greedy included) chooses among the allowed ones. At least one allowed
 * token must have a finite logit. The array must outlive its use. */
void sampler_set_mask(sampler *s, const uint32_t *mask);
/* True when the next sample is a plain argmax of the raw logits: greedy, with no logit bias,
 * penalties, mask or min-tokens ban in force (nothing to apply first) and so no draw from
 * the RNG: the caller may take forge_context_token's token instead (sampling on the device)
 * and then sampler_accept it. */
bool sampler_plain_greedy(const sampler *s);
/* The greedy choice of n values: the first index of the largest, by a scan with > (a NaN is
 * never chosen unless it is at index 0). */
int32_t sampler_argmax(const float *x, int n);
/* True when the next sample is a plain draw: temperature > 0 with no top-k (or one at least
 * the vocabulary), no top-p, no logit bias, penalties, mask or min-tokens ban: the logits
 * divided by the temperature, exp(l - max), the min-p cut, then sampler_draw_plain's draw
 * (*temperature and *min_p, 0 for none, are set to the sampler's).
 * The caller may take the token from a device (forge_context_decode_sample) with the
 * uniform from sampler_take_uniform, then sampler_accept it. */
bool sampler_plain_draw(const sampler *s, float *temperature, float *min_p);
/* The uniform the next sampler_sample would use (one a token when temperature > 0): the
 * RNG advances, so the caller then must not call sampler_sample for this token. */
double sampler_take_uniform(sampler *s);
/* The plain draw (sampler_plain_draw's steps) from raw logits with temperature t > 0,
 * min_p (0: none) and uniform u, by the same operations as sampler_sample: its token. */
int32_t sampler_draw_plain(sampler_ws *ws, const float *logits, float t, float min_p, double u);
/* Records a generated token for the penalties. */
void sampler_accept(sampler *s, int32_t token);
/* Applies logit bias, penalties and temperature to logits into out (tests compare this with
 * the Python reference); temperature 0 leaves the scale unchanged. */
void sampler_process(const sampler *s, const float *logits, float *out);
/* The candidates kept after top-k, top-p and min-p, for tests: fills ids (vocab entries) and
 * probs (normalized over the kept set); returns how many. Greedy keeps one. */
int sampler_kept(const sampler *s, sampler_ws *ws, const float *logits, int32_t *ids, float *probs);

#endif
