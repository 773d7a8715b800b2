/* embed.c: POST /v1/embeddings (OpenAI's shape, vLLM's pooling for decoder models).
 * Each input becomes one engine request with `embedding` set: its prompt is prefilled
 * (prefix cache and continuous batching as for any request) and its vector is the final-norm
 * hidden state of the last token, L2-normalized. generate.c carries the requests; this file
 * validates the body and writes the answer. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

static const char *const k_known[] = {"model", "input", "encoding_format", "dimensions", "user",
                                      "add_special_tokens", NULL};

int embed_parse(forge_server *s, const json_value *root, srv_gen *g, srv_err *e) {
    g->embed = true;
    g->n = 1;
    g->add_special_tokens = true; /* as vLLM and sentence-transformers tokenize */
    g->skip_special_tokens = true;
    g->logprobs = -1;
    g->max_tokens = 1;
    parse_warn_unknown(root, "/v1/embeddings", k_known);
    if (parse_check_model(s, root, e) || parse_prompt(s, root, "input", g, e) ||
        parse_bool(root, "add_special_tokens", &g->add_special_tokens, e))
        return -1;
    for (int i = 0; i < g->n_prompts; i++)
        if (g->texts[i] && g->text_lens[i] == 0) {
            char param[48];
            if (g->n_prompts > 1) snprintf(param, sizeof param, "input[%d]", i);
            else snprintf(param, sizeof param, "input");
            return srv_fail(e, 400, "invalid_value", param, "%s must not be an empty string", param);
        }
    const json_value *f = json_get(root, "encoding_format");
    if (f && f->type != JSON_NULL) {
        if (f->type != JSON_STRING)
            return srv_fail(e, 400, "invalid_type", "encoding_format", "encoding_format must be a string, got %s",
                            json_type_name(f->type));
        if (!strcmp(f->u.s, "base64")) g->emb_base64 = true;
        else if (strcmp(f->u.s, "float"))
            return srv_fail(e, 400, "invalid_value", "encoding_format",
                            "encoding_format must be \"float\" or \"base64\", got \"%.*s\"", utf8_cut(f->u.s, 64), f->u.s);
    }
    /* the vector is the model's hidden state: only its own size can be given (no Matryoshka
     * truncation: a decoder model's hidden state is not trained to be cut) */
    long dims = 0;
    if (parse_int(root, "dimensions", 1, INT_MAX, &dims, e)) return -1;
    if (dims && dims != s->hidden_size)
        return srv_fail(e, 400, "unsupported_value", "dimensions",
                        "dimensions %ld is not supported: this model's embeddings have %d dimensions", dims,
                        s->hidden_size);
    int max_waiting = s->p.engine.max_waiting > 0 ? s->p.engine.max_waiting : 1024;
    if (g->n_prompts > max_waiting)
        return srv_fail(e, 400, "invalid_value", "input",
                        "%d inputs are more than this server queues at once (--max-waiting %d)", g->n_prompts,
                        max_waiting);
    /* every vector has the same size: the whole answer is known up front */
    double per = g->emb_base64 ? 4.0 * ((4.0 * s->hidden_size + 2) / 3) + 64 : 16.0 * s->hidden_size + 64;
    double total = per * g->n_prompts;
    size_t limit = parse_response_limit(s);
    if (total > (double)limit)
        return srv_fail(e, 400, "response_too_large", "input",
                        "%d embeddings of %d dimensions would take %.0f MB, past this server's limit of %zu MB "
                        "(--max-response-mb): send fewer inputs, or base64",
                        g->n_prompts, s->hidden_size, total / 1e6, limit >> 20);
    return 0;
}

static void base64_floats(strbuf *o, const float *v, int n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = (size_t)n * 4;
    unsigned char b[3];
    size_t at = 0;
    const unsigned char *p = (const unsigned char *)v; /* little-endian float32, as numpy's frombuffer reads */
    while (at < len) {
        size_t k = len - at < 3 ? len - at : 3;
        memset(b, 0, sizeof b);
        memcpy(b, p + at, k);
        char q[4] = {tab[b[0] >> 2], tab[((b[0] & 3) << 4) | (b[1] >> 4)], tab[((b[1] & 15) << 2) | (b[2] >> 6)],
                     tab[b[2] & 63]};
        if (k < 3) q[3] = '=';
        if (k < 2) q[2] = '=';
        sb_append(o, q, 4);
        at += k;
    }
}

void embed_answer_json(forge_server *s, srv_req *r, strbuf *o) {
    sb_puts(o, "{\"object\":\"list\",\"data\":[");
    long long prompt = 0;
    for (int i = 0; i < r->n_subs; i++) {
        const srv_choice *c = &r->choices[i];
        prompt += r->subs[i].prompt_tokens;
        sb_printf(o, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
        if (r->g.emb_base64) {
            sb_putc(o, '"');
            base64_floats(o, c->emb, c->n_emb);
            sb_putc(o, '"');
        } else {
            sb_putc(o, '[');
            for (int k = 0; k < c->n_emb; k++) {
                float x = c->emb[k];
                sb_printf(o, k ? ",%.9g" : "%.9g", isfinite(x) ? (double)x : 0.0);
            }
            sb_putc(o, ']');
        }
        sb_putc(o, '}');
    }
    sb_printf(o, "],\"model\":%s,\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}", s->name_json, prompt,
              prompt);
}
