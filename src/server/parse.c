/* parse.c: validating completions and chat requests into engine parameters. Every field is
 * checked for its type and range, and an error names the field (OpenAI's "param"). Known
 * but unsupported fields are refused; unknown ones are ignored with a log warning, as vLLM
 * does. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/server_int.h"
#include "template/template.h"

enum { MAX_STOPS = 64, MAX_STOP_LEN = 4096, MAX_PROMPTS = 1024, MAX_N = 128,
       MAX_BIAS = 4096, MAX_STOP_IDS = 1024 };

static const char *tname(const json_value *v) { return json_type_name(v->type); }

static bool absent(const json_value *v) { return !v || v->type == JSON_NULL; }

int parse_check_model(forge_server *s, const json_value *root, srv_err *e) {
    const json_value *m = json_get(root, "model");
    if (absent(m)) return 0;
    if (m->type != JSON_STRING) return srv_fail(e, 400, "invalid_type", "model", "model must be a string, got %s", tname(m));
    if (strcmp(m->u.s, s->s_name) != 0 || m->n != strlen(s->s_name))
        return srv_fail(e, 404, "model_not_found", "model", "The model `%.*s` does not exist; this server serves `%.*s`.",
                        utf8_cut(m->u.s, 200), m->u.s, utf8_cut(s->s_name, 200), s->s_name);
    return 0;
}

/* An integral number within [lo, hi] (a double such as 16.0 is accepted, as pydantic does). */
static int get_int(const json_value *v, const char *key, long lo, long hi, long *out, srv_err *e) {
    double d;
    if (v->type == JSON_INT) {
        if (v->u.i < lo || v->u.i > hi)
            return srv_fail(e, 400, "invalid_value", key, "%s must be between %ld and %ld, got %lld", key, lo, hi,
                            (long long)v->u.i);
        *out = (long)v->u.i;
        return 0;
    }
    if (v->type != JSON_DOUBLE) return srv_fail(e, 400, "invalid_type", key, "%s must be an integer, got %s", key, tname(v));
    d = v->u.d;
    if (!isfinite(d)) /* a number too large for a double (say, 400 digits) */
        return srv_fail(e, 400, "invalid_value", key, "%s must be between %ld and %ld, got a number beyond any integer",
                        key, lo, hi);
    if (d != floor(d)) return srv_fail(e, 400, "invalid_type", key, "%s must be an integer, got %g", key, d);
    /* (double)LONG_MAX rounds up to 2^63, which no long holds: compare against 2^63 itself */
    if (d < (double)lo || d > (double)hi || d >= 9223372036854775808.0)
        return srv_fail(e, 400, "invalid_value", key, "%s must be between %ld and %ld, got %g", key, lo, hi, d);
    *out = (long)d;
    return 0;
}

int parse_int(const json_value *root, const char *key, long lo, long hi, long *out, srv_err *e) {
    const json_value *v = json_get(root, key);
    return absent(v) ? 0 : get_int(v, key, lo, hi, out, e);
}

int parse_bool(const json_value *root, const char *key, bool *out, srv_err *e) {
    const json_value *v = json_get(root, key);
    if (absent(v)) return 0;
    if (v->type != JSON_BOOL) return srv_fail(e, 400, "invalid_type", key, "%s must be a boolean, got %s", key, tname(v));
    *out = v->u.b;
    return 0;
}

/* An optional number within [lo, hi] into *out (as float). */
static int parse_num(const json_value *root, const char *key, double lo, double hi, bool lo_open, float *out,
                     bool *given, srv_err *e) {
    const json_value *v = json_get(root, key);
    if (absent(v)) return 0;
    if (!json_is_number(v)) return srv_fail(e, 400, "invalid_type", key, "%s must be a number, got %s", key, tname(v));
    double d = json_number(v);
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d <= lo))
        return srv_fail(e, 400, "invalid_value", key, "%s must be in %c%g, %g], got %g", key, lo_open ? '(' : '[', lo, hi,
                        d);
    *out = (float)d;
    if (given) *given = true;
    return 0;
}

void parse_warn_unknown(const json_value *root, const char *route, const char *const *known) {
    if (!json_is(root, JSON_OBJECT)) return;
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->u.members[i].key;
        bool ok = false;
        for (int j = 0; known[j] && !ok; j++) ok = !strcmp(k, known[j]);
        if (!ok) log_warn("server: %s: ignoring the unknown field '%.100s'", route, k);
    }
}

static const char *const k_common[] = {"model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop",
                                       "seed", "presence_penalty", "frequency_penalty", "repetition_penalty",
                                       "logit_bias", "logprobs", "stream", "stream_options", "user",
                                       "add_special_tokens", "min_tokens", "ignore_eos", "stop_token_ids",
                                       "skip_special_tokens", NULL};
static const char *const k_completion[] = {"prompt", "echo", "best_of", "suffix", NULL};
static const char *const k_chat[] = {"messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice",
                                     "parallel_tool_calls", "response_format", "chat_template_kwargs",
                                     "add_generation_prompt", "continue_final_message", "documents", "chat_template",
                                     "functions", "function_call", "echo", NULL};

static void warn_unknown(const json_value *root, bool chat) {
    const char *known[64];
    int n = 0;
    for (int i = 0; k_common[i]; i++) known[n++] = k_common[i];
    const char *const *extra = chat ? k_chat : k_completion;
    for (int i = 0; extra[i]; i++) known[n++] = extra[i];
    for (const char *const *c = parse_constraint_fields(); *c; c++) known[n++] = *c;
    known[n] = NULL;
    parse_warn_unknown(root, chat ? "/v1/chat/completions" : "/v1/completions", known);
}

/* A token id list: array of integers within the vocabulary. */
static int get_ids(forge_server *s, const json_value *v, const char *param, int32_t **out, int *n_out, srv_err *e) {
    if (v->n == 0) return srv_fail(e, 400, "invalid_value", param, "%s must not be empty", param);
    if (v->n > (size_t)INT_MAX / 8) return srv_fail(e, 400, "invalid_value", param, "%s is too long", param);
    int32_t *ids = malloc(v->n * sizeof *ids);
    if (!ids) return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        const json_value *x = v->u.items[i];
        long id;
        char p[96];
        snprintf(p, sizeof p, "%s[%zu]", param, i);
        if (get_int(x, p, 0, s->vocab - 1, &id, e)) {
            free(ids);
            return -1;
        }
        ids[i] = (int32_t)id;
    }
    *out = ids;
    *n_out = (int)v->n;
    return 0;
}

int parse_prompt(forge_server *s, const json_value *root, const char *key, srv_gen *g, srv_err *e) {
    const json_value *p = json_get(root, key);
    if (absent(p)) return srv_fail(e, 400, "missing_required_parameter", key, "%s is required", key);
    size_t n = 1;
    bool list_of_strings = false, list_of_lists = false;
    if (p->type == JSON_ARRAY) {
        if (p->n == 0) return srv_fail(e, 400, "invalid_value", key, "%s must not be an empty list", key);
        const json_value *x = p->u.items[0];
        if (x->type == JSON_STRING) list_of_strings = true;
        else if (x->type == JSON_ARRAY) list_of_lists = true;
        else if (x->type != JSON_INT && x->type != JSON_DOUBLE)
            return srv_fail(e, 400, "invalid_type", key,
                            "%s must be a string, a list of strings, a list of token ids or a list of such lists", key);
        if (list_of_strings || list_of_lists) n = p->n;
    } else if (p->type != JSON_STRING) {
        return srv_fail(e, 400, "invalid_type", key,
                        "%s must be a string, a list of strings, a list of token ids or a list of such lists, got %s",
                        key, tname(p));
    }
    if (n > MAX_PROMPTS)
        return srv_fail(e, 400, "invalid_value", key, "at most %d %ss per request", MAX_PROMPTS, key);
    g->n_prompts = (int)n;
    g->texts = calloc(n, sizeof *g->texts);
    g->text_lens = calloc(n, sizeof *g->text_lens);
    g->ids = calloc(n, sizeof *g->ids);
    g->n_ids = calloc(n, sizeof *g->n_ids);
    if (!g->texts || !g->text_lens || !g->ids || !g->n_ids) return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_value *x = list_of_strings || list_of_lists ? p->u.items[i] : p;
        char param[48];
        if (n > 1 || list_of_strings || list_of_lists) snprintf(param, sizeof param, "%s[%zu]", key, i);
        else snprintf(param, sizeof param, "%s", key);
        if (list_of_strings && x->type != JSON_STRING)
            return srv_fail(e, 400, "invalid_type", param, "%s must be a string like the first one, got %s", param,
                            tname(x));
        if (list_of_lists && x->type != JSON_ARRAY)
            return srv_fail(e, 400, "invalid_type", param, "%s must be a list of token ids like the first one, got %s",
                            param, tname(x));
        if (x->type == JSON_STRING) {
            g->texts[i] = x->u.s;
            g->text_lens[i] = x->n;
        } else if (get_ids(s, x, param, &g->ids[i], &g->n_ids[i], e)) {
            return -1;
        }
    }
    return 0;
}

static int parse_stop(const json_value *root, srv_gen *g, srv_err *e) {
    const json_value *v = json_get(root, "stop");
    if (absent(v)) return 0;
    size_t n = v->type == JSON_ARRAY ? v->n : 1;
    if (v->type != JSON_ARRAY && v->type != JSON_STRING)
        return srv_fail(e, 400, "invalid_type", "stop", "stop must be a string or a list of strings, got %s", tname(v));
    if (n > MAX_STOPS) return srv_fail(e, 400, "invalid_value", "stop", "at most %d stop strings", MAX_STOPS);
    g->stop = calloc(n ? n : 1, sizeof *g->stop);
    if (!g->stop) return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_value *x = v->type == JSON_ARRAY ? v->u.items[i] : v;
        if (x->type != JSON_STRING)
            return srv_fail(e, 400, "invalid_type", "stop", "stop[%zu] must be a string, got %s", i, tname(x));
        if (x->n == 0 || x->n > MAX_STOP_LEN || strlen(x->u.s) != x->n)
            return srv_fail(e, 400, "invalid_value", "stop",
                            "stop strings must be 1 to %d bytes without NUL characters", MAX_STOP_LEN);
        g->stop[g->n_stop++] = x->u.s;
    }
    return 0;
}

static int parse_logit_bias(forge_server *s, const json_value *root, srv_gen *g, srv_err *e) {
    const json_value *v = json_get(root, "logit_bias");
    if (absent(v)) return 0;
    if (v->type != JSON_OBJECT)
        return srv_fail(e, 400, "invalid_type", "logit_bias", "logit_bias must be an object, got %s", tname(v));
    if (v->n > MAX_BIAS) return srv_fail(e, 400, "invalid_value", "logit_bias", "at most %d logit_bias entries", MAX_BIAS);
    g->bias = calloc(v->n ? v->n : 1, sizeof *g->bias);
    if (!g->bias) return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        const json_member *m = &v->u.members[i];
        char *end;
        /* plain decimal digits only: strtol alone would take " 5" and "+5" */
        bool digits = m->key_len && m->key_len < 12 && m->key[0] >= '0' && m->key[0] <= '9';
        long id = digits ? strtol(m->key, &end, 10) : -1;
        if (id < 0 || *end || (size_t)(end - m->key) != m->key_len || id >= s->vocab)
            return srv_fail(e, 400, "invalid_value", "logit_bias",
                            "logit_bias keys must be token ids between 0 and %d, got '%.40s'", s->vocab - 1, m->key);
        if (!json_is_number(m->value) || !(json_number(m->value) >= -100 && json_number(m->value) <= 100))
            return srv_fail(e, 400, "invalid_value", "logit_bias", "logit_bias values must be numbers in [-100, 100]");
        g->bias[g->n_bias++] = (forge_logit_bias){.token = (int32_t)id, .bias = (float)json_number(m->value)};
    }
    return 0;
}

static int parse_refusals(const json_value *root, bool chat, long n, srv_err *e) {
    const json_value *v;
    if (!chat) {
        if (!absent(v = json_get(root, "best_of"))) {
            long b;
            if (get_int(v, "best_of", 1, MAX_N, &b, e)) return -1;
            if (b != n) return srv_fail(e, 400, "unsupported_value", "best_of", "best_of is not supported (only best_of = n)");
        }
        v = json_get(root, "suffix");
        if (!absent(v) && (v->type != JSON_STRING || v->n))
            return srv_fail(e, 400, "unsupported_value", "suffix", "suffix is not supported");
        return 0;
    }
    v = json_get(root, "tool_choice");
    if (!absent(v)) {
        if (v->type != JSON_STRING && v->type != JSON_OBJECT)
            return srv_fail(e, 400, "invalid_type", "tool_choice", "tool_choice must be a string or an object");
        if (v->type == JSON_OBJECT) { /* {"type": "function", "function": {"name": N}} */
            const json_value *t = json_get(v, "type"), *nm = json_get(json_get(v, "function"), "name");
            if (!json_is(t, JSON_STRING) || strcmp(t->u.s, "function") || !json_is(nm, JSON_STRING) || nm->n == 0 ||
                memchr(nm->u.s, 0, nm->n))
                return srv_fail(e, 400, "invalid_value", "tool_choice",
                                "tool_choice must be 'auto', 'none', 'required' or {\"type\": \"function\", "
                                "\"function\": {\"name\": ...}}");
        } else if (strcmp(v->u.s, "auto") && strcmp(v->u.s, "none") && strcmp(v->u.s, "required")) {
            return srv_fail(e, 400, "invalid_value", "tool_choice", "tool_choice must be 'auto', 'none' or 'required'");
        }
    }
    v = json_get(root, "tools");
    if (!absent(v) && v->type != JSON_ARRAY)
        return srv_fail(e, 400, "invalid_type", "tools", "tools must be a list, got %s", tname(v));
    static const char *const refused[] = {"functions", "function_call", "chat_template"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!absent(json_get(root, refused[i])))
            return srv_fail(e, 400, "unsupported_parameter", refused[i], "%s is not supported%s", refused[i],
                            i < 2 ? " (use tools)" : "");
    bool echo = false;
    if (parse_bool(root, "echo", &echo, e)) return -1;
    if (echo) return srv_fail(e, 400, "unsupported_value", "echo", "echo is not supported for chat");
    return 0;
}

/* Which message fields a chat answer is parsed into (after parse_refusals has checked
 * tool_choice). Formats that write their markers as special tokens (mistral's [TOOL_CALLS],
 * llama's <|python_tag|>) keep special tokens in the text unless the request says otherwise,
 * as vLLM does. */
static int parse_tools(forge_server *s, const json_value *root, srv_gen *g, srv_err *e) {
    const json_value *tools = json_get(root, "tools"), *tc = json_get(root, "tool_choice");
    bool has_tools = json_is(tools, JSON_ARRAY) && tools->n > 0;
    bool none = json_is(tc, JSON_STRING) && !strcmp(tc->u.s, "none");
    g->parallel_tool_calls = true;
    if (parse_bool(root, "parallel_tool_calls", &g->parallel_tool_calls, e)) return -1;
    g->drop_tools = none && json_is(tools, JSON_ARRAY);
    g->tools_on = has_tools && !none && s->tc_fam != TC_FAMILY_NONE;
    g->tool_force = json_is(tc, JSON_OBJECT) || (json_is(tc, JSON_STRING) && !strcmp(tc->u.s, "required"));
    if (json_is(tc, JSON_OBJECT)) g->tool_force_name = json_get(json_get(tc, "function"), "name")->u.s;
    g->reasoning_on = s->rk == RP_THINK;
    if (g->tools_on && (s->tc_fam == TC_FAMILY_MISTRAL || s->tc_fam == TC_FAMILY_LLAMA3_JSON) &&
        absent(json_get(root, "skip_special_tokens")))
        g->skip_special_tokens = false;
    return 0;
}

int parse_generation(forge_server *s, const json_value *root, bool chat, srv_gen *g, srv_err *e) {
    g->chat = chat;
    warn_unknown(root, chat);
    if (parse_check_model(s, root, e)) return -1;
    if (chat) {
        const json_value *m = json_get(root, "messages");
        if (absent(m)) return srv_fail(e, 400, "missing_required_parameter", "messages", "messages is required");
        if (m->type != JSON_ARRAY) return srv_fail(e, 400, "invalid_type", "messages", "messages must be a list, got %s", tname(m));
        if (m->n == 0) return srv_fail(e, 400, "invalid_value", "messages", "messages must not be empty");
    } else if (parse_prompt(s, root, "prompt", g, e)) {
        return -1;
    }
    /* sampling: generation_config.json's defaults for fields the request leaves unset */
    g->sp = s->gen.sampling;
    g->sp.has_seed = false;
    g->sp.logit_bias = NULL;
    g->sp.n_logit_bias = 0;
    g->sp.top_logprobs = 0;
    long top_k = g->sp.top_k, n = 1, seed = 0;
    if (parse_num(root, "temperature", 0, 100, false, &g->sp.temperature, NULL, e) ||
        parse_num(root, "top_p", 0, 1, true, &g->sp.top_p, NULL, e) || parse_int(root, "top_k", -1, INT_MAX, &top_k, e) ||
        parse_num(root, "min_p", 0, 1, false, &g->sp.min_p, NULL, e) ||
        parse_num(root, "presence_penalty", -2, 2, false, &g->sp.presence_penalty, NULL, e) ||
        parse_num(root, "frequency_penalty", -2, 2, false, &g->sp.frequency_penalty, NULL, e) ||
        parse_num(root, "repetition_penalty", 0, 100, true, &g->sp.repetition_penalty, NULL, e) ||
        parse_int(root, "n", 1, MAX_N, &n, e) || parse_int(root, "seed", LONG_MIN, LONG_MAX, &seed, e) ||
        parse_stop(root, g, e) || parse_logit_bias(s, root, g, e) || parse_refusals(root, chat, n, e))
        return -1;
    g->sp.top_k = (int)top_k;
    g->n = (int)n;
    const json_value *sv = json_get(root, "seed");
    if (!absent(sv)) {
        g->sp.has_seed = true;
        g->sp.seed = (uint64_t)seed;
    }
    g->sp.logit_bias = g->bias;
    g->sp.n_logit_bias = g->n_bias;
    long choices = (long)g->n * (chat ? 1 : g->n_prompts);
    int max_choices = s->p.max_choices > 0 ? s->p.max_choices : 128;
    int max_waiting = s->p.engine.max_waiting > 0 ? s->p.engine.max_waiting : 1024;
    if (choices > max_choices)
        return srv_fail(e, 400, "invalid_value", "n",
                        "n times the number of prompts is %ld; this server answers at most %d choices per request "
                        "(--max-choices)", choices, max_choices);
    if (choices > max_waiting) /* it could never be queued whole: not a 503 to retry */
        return srv_fail(e, 400, "invalid_value", "n",
                        "n times the number of prompts is %ld, more than this server queues at once (--max-waiting %d)",
                        choices, max_waiting);

    /* lengths */
    g->max_tokens = chat ? -1 : 16;
    long mt = -2;
    const char *mt_key = "max_tokens";
    if (chat && !absent(json_get(root, "max_completion_tokens"))) mt_key = "max_completion_tokens";
    if (parse_int(root, mt_key, 0, INT_MAX, &mt, e)) return -1;
    if (mt != -2) {
        g->max_tokens = mt;
        g->max_tokens_given = true;
    }
    if (parse_int(root, "min_tokens", 0, INT_MAX, &g->min_tokens, e)) return -1;

    /* flags */
    g->add_special_tokens = !chat;
    g->skip_special_tokens = true;
    if (parse_bool(root, "stream", &g->stream, e) || parse_bool(root, "ignore_eos", &g->ignore_eos, e) ||
        parse_bool(root, "add_special_tokens", &g->add_special_tokens, e) ||
        parse_bool(root, "skip_special_tokens", &g->skip_special_tokens, e) ||
        (!chat && parse_bool(root, "echo", &g->echo, e)))
        return -1;
    const json_value *so = json_get(root, "stream_options");
    if (!absent(so)) {
        if (so->type != JSON_OBJECT)
            return srv_fail(e, 400, "invalid_type", "stream_options", "stream_options must be an object, got %s", tname(so));
        if (!g->stream)
            return srv_fail(e, 400, "invalid_value", "stream_options",
                            "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
        const json_value *iu = json_get(so, "include_usage");
        if (!absent(iu) && iu->type != JSON_BOOL)
            return srv_fail(e, 400, "invalid_type", "stream_options.include_usage",
                            "stream_options.include_usage must be a boolean, got %s", tname(iu));
        g->include_usage = iu && iu->type == JSON_BOOL && iu->u.b;
    }
    if (chat && parse_tools(s, root, g, e)) return -1;
    if (g->max_tokens == 0 && !g->echo)
        return srv_fail(e, 400, "invalid_value", mt_key, "%s must be at least 1", mt_key);
    if (g->max_tokens_given && g->min_tokens > g->max_tokens)
        return srv_fail(e, 400, "invalid_value", "min_tokens", "min_tokens (%ld) must not exceed %s (%ld)", g->min_tokens,
                        mt_key, g->max_tokens);

    /* stop token ids */
    const json_value *st = json_get(root, "stop_token_ids");
    if (!absent(st)) {
        if (st->type != JSON_ARRAY)
            return srv_fail(e, 400, "invalid_type", "stop_token_ids", "stop_token_ids must be a list of token ids");
        if (st->n > MAX_STOP_IDS) return srv_fail(e, 400, "invalid_value", "stop_token_ids", "too many stop_token_ids");
        if (st->n && get_ids(s, st, "stop_token_ids", &g->stop_ids, &g->n_stop_ids, e)) return -1;
    }

    /* logprobs */
    g->logprobs = -1;
    if (chat) {
        bool lp = false;
        long top = 0;
        if (parse_bool(root, "logprobs", &lp, e) || parse_int(root, "top_logprobs", 0, 20, &top, e)) return -1;
        if (!absent(json_get(root, "top_logprobs")) && !lp)
            return srv_fail(e, 400, "invalid_value", "top_logprobs", "top_logprobs needs logprobs set to true");
        if (lp) g->logprobs = (int)top;
    } else {
        const json_value *lp = json_get(root, "logprobs");
        if (!absent(lp)) {
            long top;
            if (lp->type == JSON_BOOL)
                return srv_fail(e, 400, "invalid_type", "logprobs", "logprobs must be an integer from 0 to 5, got a boolean");
            if (get_int(lp, "logprobs", 0, 5, &top, e)) return -1;
            g->logprobs = (int)top;
            g->prompt_logprobs = g->echo;
        }
    }
    if (g->logprobs > 0) g->sp.top_logprobs = g->logprobs;
    return 0;
}

int parse_tokenize_prompts(forge_server *s, srv_gen *g, srv_err *e) {
    const char *param = g->chat ? "messages" : g->embed ? "input" : "prompt";
    for (int i = 0; i < g->n_prompts; i++) {
        if (g->texts[i]) {
            /* a text that cannot fit is refused before spending time tokenizing it */
            if (g->text_lens[i] / 4 > (size_t)(s->context_len + 16) * (size_t)s->max_token_bytes)
                return srv_fail(e, 400, "context_length_exceeded", param,
                                "This model's maximum context length is %d tokens; the %s (%zu bytes) is far longer.",
                                s->context_len, param, g->text_lens[i]);
            forge_tokens t = {0};
            forge_error err;
            if (forge_tokenizer_encode(s->tok, g->texts[i], g->text_lens[i],
                                       g->add_special_tokens ? FORGE_ENCODE_ADD_SPECIAL : 0, &t, &err) != FORGE_OK) {
                forge_tokens_free(&t);
                return srv_fail(e, err.code == FORGE_E_NOMEM ? 500 : 400, NULL, param, "%s", err.msg);
            }
            g->ids[i] = t.ids;
            g->n_ids[i] = (int)t.n;
        }
        int np = g->n_ids[i];
        if (np == 0)
            return srv_fail(e, 400, "invalid_value", param, "the %s is empty (and this tokenizer adds no BOS token)", param);
        if (np >= s->context_len)
            return srv_fail(e, 400, "context_length_exceeded", param,
                            "This model's maximum context length is %d tokens. However, your request has %d input tokens. "
                            "Please reduce the length of the input %s.",
                            s->context_len, np, param);
        if (g->max_tokens_given && (long)np + g->max_tokens > s->context_len)
            return srv_fail(e, 400, "context_length_exceeded", g->chat ? "max_completion_tokens" : "max_tokens",
                            "This model's maximum context length is %d tokens. However, you requested %ld tokens (%d in "
                            "the %s, %ld in the completion). Please reduce the length of the %s or completion.",
                            s->context_len, np + g->max_tokens, np, g->chat ? "messages" : "prompt", g->max_tokens,
                            g->chat ? "messages" : "prompt");
    }
    return 0;
}

size_t parse_response_limit(const forge_server *s) {
    return s->p.max_response_bytes ? s->p.max_response_bytes : (size_t)256 << 20;
}

int parse_check_response_size(forge_server *s, const srv_gen *g, srv_err *e) {
    if (g->stream) return 0; /* streamed answers are not held */
    /* a typical size (the answer is bounded for sure while it is built, see collect_event):
     * a token's text, and per logprobs entry its text, bytes and numbers */
    double mtb = s->max_token_bytes, text = mtb + 2, entry = g->chat ? 6 * mtb + 48 : 2 * mtb + 40;
    double per_token = text + (g->logprobs >= 0 ? (g->logprobs + 1) * entry : 0), total = 0;
    for (int i = 0; i < g->n_prompts; i++) {
        long mt = g->max_tokens >= 0 ? g->max_tokens : s->context_len - g->n_ids[i];
        total += (double)g->n * (double)mt * per_token;
        if (g->echo) total += (double)g->n * (double)g->n_ids[i] * (text + (g->prompt_logprobs ? entry : 0));
    }
    size_t limit = parse_response_limit(s);
    if (total > (double)limit)
        return srv_fail(e, 400, "response_too_large", g->chat ? "max_completion_tokens" : "max_tokens",
                        "the answer could reach %.0f MB, over this server's limit of %zu MB (--max-response-mb): lower "
                        "n, max_tokens or logprobs, or stream it",
                        total / (1 << 20), limit >> 20);
    return 0;
}

static int render_status(forge_status st, const forge_error *err_in, srv_err *e) {
    const forge_error err = *err_in;
    switch (st) {
    case FORGE_OK: return 0;
    case FORGE_E_NOMEM: return srv_fail(e, 500, NULL, NULL, "out of memory rendering the chat template");
    case FORGE_E_UNSUPPORTED: return srv_fail(e, 400, "unsupported_value", "messages", "%s", err.msg);
    case FORGE_E_TEMPLATE: return srv_fail(e, 400, "template_error", "messages", "%s", err.msg);
    case FORGE_E_RANGE: return srv_fail(e, 400, "invalid_value", "messages", "%s", err.msg);
    default: return srv_fail(e, 400, "invalid_value", "messages", "%s", err.msg);
    }
}

static int no_template(srv_err *e) {
    return srv_fail(e, 400, NULL, "messages", "this model has no chat template: start the server with --chat-template FILE");
}

int parse_render_chat(forge_server *s, const char *body, size_t len, char **out, size_t *out_len, srv_err *e) {
    if (!s->tmpl) return no_template(e);
    forge_error err;
    return render_status(forge_chat_template_render(s->tmpl, body, len, out, out_len, &err), &err, e);
}

/* The request without its "tools" member (tool_choice "none": the template offers none). */
static int render_without_tools(forge_server *s, const json_value *root, srv_gen *g, srv_err *e) {
    if (!s->tmpl) return no_template(e);
    json_member *mem = malloc((root->n ? root->n : 1) * sizeof *mem);
    if (!mem) return srv_fail(e, 500, NULL, NULL, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < root->n; i++)
        if (strcmp(root->u.members[i].key, "tools")) mem[n++] = root->u.members[i];
    json_value copy = {.type = JSON_OBJECT, .n = n, .u.members = mem};
    strbuf sb = STRBUF_INIT;
    forge_error err;
    forge_status st = chat_render_request(s->tmpl, &copy, &sb, &err);
    free(mem);
    if (st == FORGE_OK && !sb.data) sb_puts(&sb, "");
    if (st == FORGE_OK && sb_failed(&sb)) st = err_set(&err, FORGE_E_NOMEM, "out of memory");
    if (st != FORGE_OK) {
        sb_free(&sb);
        return render_status(st, &err, e);
    }
    g->rendered = sb_take(&sb, &g->rendered_len);
    return 0;
}

int parse_chat_prompt(forge_server *s, const json_value *root, const char *body, size_t len, srv_gen *g, srv_err *e) {
    if (g->drop_tools ? render_without_tools(s, root, g, e)
                      : parse_render_chat(s, body, len, &g->rendered, &g->rendered_len, e))
        return -1;
    g->opens_think = g->reasoning_on && rp_prompt_opens_think(g->rendered, g->rendered_len);
    g->n_prompts = 1;
    g->texts = calloc(1, sizeof *g->texts);
    g->text_lens = calloc(1, sizeof *g->text_lens);
    g->ids = calloc(1, sizeof *g->ids);
    g->n_ids = calloc(1, sizeof *g->n_ids);
    if (!g->texts || !g->text_lens || !g->ids || !g->n_ids) return srv_fail(e, 500, NULL, NULL, "out of memory");
    g->texts[0] = g->rendered;
    g->text_lens[0] = g->rendered_len;
    return 0;
}

void srv_gen_free(srv_gen *g) {
    for (int i = 0; i < g->n_prompts && g->ids; i++) free(g->ids[i]);
    free(g->texts), free(g->text_lens), free(g->ids), free(g->n_ids);
    free(g->stop), free(g->bias), free(g->stop_ids), free(g->rendered), free(g->constraint_text);
    memset(g, 0, sizeof *g);
}
