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
 * the RNG: the caller may take forge_context_greedy's token instead (sampling on the device)
 * and then sampler_accept it. */
bool sampler_plain_greedy(const sampler *s);
/* Records a generated token for the penalties. */
void sampler_accept(sampler *s, int32_t token);
/* Applies logit bias, penalties and temperature to logits into out (tests compare this with
 * the Python reference); temperature 0 leaves the scale unchanged. */
void sampler_process(const sampler *s, const float *logits, float *out);
/* The candidates kept after top-k, top-p and min-p, for tests: fills ids (vocab entries) and
 * probs (normalized over the kept set); returns how many. Greedy keeps one. */
int sampler_kept(const sampler *s, sampler_ws *ws, const float *logits, int32_t *ids, float *probs);

#endif
