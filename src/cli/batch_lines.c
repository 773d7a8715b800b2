/* batch_lines.c: forge batch's input lines (simple and OpenAI Batch API) and output lines
 * (formats in batch.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/batch.h"
#include "cli/session.h"

/* ---- parsing lines ----------------------------------------------------------------------- */

/* Builds a simple line's request parameters; errors name the field. */
int batch_parse_simple(const json_value *o, const forge_sampling_params *dflt, long dflt_max, slot *it) {
    forge_request_params *rp = &it->rp;
    char *err = it->error;
    size_t errn = sizeof it->error;
    const json_value *p = json_get(o, "prompt");
    if (!json_is(p, JSON_STRING)) {
        snprintf(err, errn, "\"prompt\" must be a string");
        return -1;
    }
    rp->prompt = p->u.s;
    rp->prompt_len = p->n;
    rp->add_special_tokens = true;
    rp->sampling = *dflt;
    rp->max_tokens = (int)dflt_max;
    struct { const char *key; float *f; int *i; } nums[] = {
        {"temperature", &rp->sampling.temperature, NULL}, {"top_p", &rp->sampling.top_p, NULL},
        {"min_p", &rp->sampling.min_p, NULL}, {"repetition_penalty", &rp->sampling.repetition_penalty, NULL},
        {"presence_penalty", &rp->sampling.presence_penalty, NULL}, {"frequency_penalty", &rp->sampling.frequency_penalty, NULL},
        {"top_k", NULL, &rp->sampling.top_k}, {"max_tokens", NULL, &rp->max_tokens},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const json_value *v = json_get(o, nums[i].key);
        if (!v || v->type == JSON_NULL) continue;
        if (!json_is_number(v) || (nums[i].i && (v->type != JSON_INT || v->u.i < -1 || v->u.i > 1 << 30))) {
            snprintf(err, errn, "\"%s\" must be a%s number", nums[i].key, nums[i].i ? "n integer" : "");
            return -1;
        }
        if (nums[i].f) *nums[i].f = (float)json_number(v);
        else *nums[i].i = (int)v->u.i;
    }
    const json_value *seed = json_get(o, "seed");
    if (seed && seed->type != JSON_NULL) {
        if (seed->type != JSON_INT || seed->u.i < 0) {
            snprintf(err, errn, "\"seed\" must be a non-negative integer");
            return -1;
        }
        rp->sampling.has_seed = true;
        rp->sampling.seed = (uint64_t)seed->u.i;
    }
    const json_value *st = json_get(o, "stop");
    if (json_is(st, JSON_STRING)) {
        it->stops[0] = st->u.s;
        rp->n_stop = 1;
    } else if (json_is(st, JSON_ARRAY)) {
        if (st->n > 16) {
            snprintf(err, errn, "\"stop\" holds at most 16 strings");
            return -1;
        }
        for (size_t i = 0; i < st->n; i++) {
            if (!json_is(json_at(st, i), JSON_STRING)) {
                snprintf(err, errn, "\"stop\"[%zu] must be a string", i);
                return -1;
            }
            it->stops[i] = json_at(st, i)->u.s;
        }
        rp->n_stop = (int)st->n;
    } else if (st && st->type != JSON_NULL) {
        snprintf(err, errn, "\"stop\" must be a string or a list of strings");
        return -1;
    }
    rp->stop = it->stops;
    if (rp->max_tokens == 0 || rp->max_tokens < -1) {
        snprintf(err, errn, "\"max_tokens\" must be positive (or -1)");
        return -1;
    }
    /* structured output: the fields the server reads (response_format, json_schema, ...) */
    strbuf line = STRBUF_INIT;
    json_write_value(&line, o);
    forge_error ferr;
    forge_status cst = sb_failed(&line) ? FORGE_E_NOMEM
                                        : forge_request_constraint(line.data, line.len, &rp->constraint, &it->constraint_text, &ferr);
    sb_free(&line);
    if (!cst && rp->constraint.kind) cst = forge_constraint_check(&rp->constraint, &ferr);
    if (cst) {
        snprintf(err, errn, "%s", cst == FORGE_E_NOMEM ? "out of memory" : ferr.msg);
        return -1;
    }
    return 0;
}

bool batch_is_openai_line(const json_value *o) {
    return json_is(o, JSON_OBJECT) &&
           (json_get(o, "custom_id") || json_get(o, "url") || json_get(o, "body") || json_get(o, "method"));
}

static const char *const k_urls[] = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"};

/* Validates an OpenAI Batch line and keeps its custom_id and body; -1 with it->error set. */
int batch_parse_openai(const json_value *o, slot *it) {
    strbuf sb = STRBUF_INIT;
    const json_value *cid = json_get(o, "custom_id");
    if (json_is(cid, JSON_STRING)) json_write_value(&sb, cid);
    else sb_puts(&sb, "null");
    it->custom_id = sb_take(&sb, NULL);
    it->error_code = "invalid_request";
    if (!it->custom_id) {
        snprintf(it->error, sizeof it->error, "out of memory");
        return -1;
    }
    if (!json_is(cid, JSON_STRING)) {
        snprintf(it->error, sizeof it->error, "\"custom_id\" must be a string");
        return -1;
    }
    const json_value *method = json_get(o, "method");
    if (!json_is(method, JSON_STRING) || strcmp(method->u.s, "POST")) {
        snprintf(it->error, sizeof it->error, "\"method\" must be \"POST\"");
        return -1;
    }
    const json_value *url = json_get(o, "url");
    for (size_t i = 0; json_is(url, JSON_STRING) && i < sizeof k_urls / sizeof k_urls[0]; i++)
        if (!strcmp(url->u.s, k_urls[i])) it->url = k_urls[i];
    if (!it->url) {
        snprintf(it->error, sizeof it->error, "\"url\" must be one of /v1/chat/completions, /v1/completions, /v1/embeddings");
        return -1;
    }
    const json_value *body = json_get(o, "body");
    if (!json_is(body, JSON_OBJECT)) {
        snprintf(it->error, sizeof it->error, "\"body\" must be a JSON object");
        return -1;
    }
    json_write_value(&sb, body);
    if (sb_failed(&sb)) {
        sb_free(&sb);
        snprintf(it->error, sizeof it->error, "out of memory");
        return -1;
    }
    it->body = sb_take(&sb, &it->body_len);
    it->error_code = NULL;
    return 0;
}

static const char *finish_name(forge_finish_reason f) {
    switch (f) {
    case FORGE_FINISH_STOP: return "stop";
    case FORGE_FINISH_LENGTH: return "length";
    case FORGE_FINISH_CANCELLED: return "cancelled";
    case FORGE_FINISH_ERROR: return "error";
    default: return "none";
    }
}

/* The output line of a finished slot; sets it->failed. */
void batch_write_line(batch *b, slot *it, strbuf *out) {
    if (it->openai) {
        char id[33], rid[33];
        batch_random_hex(b, id);
        batch_random_hex(b, rid);
        sb_printf(out, "{\"id\":\"batch_req_%s\",\"custom_id\":%s,", id, it->custom_id ? it->custom_id : "null");
        if (it->reply) {
            sb_printf(out, "\"response\":{\"status_code\":%d,\"request_id\":\"%s\",\"body\":", it->status, rid);
            sb_append(out, it->reply, it->reply_len);
            sb_puts(out, "},\"error\":null}\n");
            it->failed = it->status != 200;
        } else {
            sb_puts(out, "\"response\":null,\"error\":{\"code\":");
            const char *code = it->error_code ? it->error_code : "invalid_request";
            json_write_string(out, code, strlen(code), false);
            sb_puts(out, ",\"message\":");
            json_write_string(out, it->error, strlen(it->error), false);
            sb_puts(out, "}}\n");
            it->failed = true;
        }
        return;
    }
    sb_printf(out, "{\"index\":%ld", it->index);
    if (it->req) {
        sb_puts(out, ",\"completion\":");
        json_write_string(out, sb_str(&it->text), it->text.len, false);
        sb_printf(out, ",\"finish_reason\":\"%s\",\"prompt_tokens\":%d,\"completion_tokens\":%d,\"cached_tokens\":%d,"
                       "\"ttft_ms\":%.1f,\"total_ms\":%.1f",
                  finish_name(it->finish), it->prompt_tokens, it->completion_tokens, it->cached, it->ttft_ms, it->total_ms);
    }
    if (it->error[0]) {
        sb_puts(out, ",\"error\":");
        json_write_string(out, it->error, strlen(it->error), false);
        it->failed = true;
    }
    sb_puts(out, "}\n");
}

void batch_slot_clear(slot *it) {
    if (it->req) forge_request_release(it->req);
    json_free(it->doc);
    free(it->custom_id);
    free(it->body);
    free(it->reply);
    free(it->constraint_text);
    strbuf text = it->text;
    sb_reset(&text); /* the text buffer is reused by the next line of this slot */
    batch *b = it->b;
    memset(it, 0, sizeof *it);
    it->text = text;
    it->b = b;
}
