/* chat_request.c: an OpenAI chat request -> the variables of the chat template, rendered.
 *
 * What the template sees is what vLLM's chat endpoint hands HF's apply_chat_template:
 * - messages: each message's members as sent, except `content`: a string stays a string,
 *   null or absent becomes "", and a list of content parts becomes the text parts joined
 *   with "\n" -- unless the template loops over `message.content`, then it always gets a
 *   list of parts [{"type": "text", "text": ...}] (a string is one part, null none).
 *   Non-text parts are refused.
 * - an assistant's tool_calls: null is dropped; each function.arguments given as a JSON
 *   string is parsed into its value (invalid JSON is an error), objects pass as they are.
 * - tools, documents: as sent, None when absent or null.
 * - add_generation_prompt: true unless the request says otherwise.
 * - chat_template_kwargs: each member becomes a variable (enable_thinking, ...), overriding.
 * - the special tokens of tokenizer_config.json as HF's special_tokens_map has them (bos, eos,
 *   unk, sep, pad, cls, mask, additional_special_tokens) unless null or empty.
 * continue_final_message cuts the prompt after the final message's text, as HF does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/utf8.h"
#include "template/pystr.h"
#include "template/template.h"

static forge_status oom(forge_error *err) { return err_set(err, FORGE_E_NOMEM, "out of memory"); }

static bool put(vdict *d, const char *key, val v) {
    val k = v_cstr(key);
    if (k.t != V_STR) {
        v_unref(v);
        return false;
    }
    return dict_set(d, k, v);
}

static forge_status convert_content(const json_value *cv, bool as_list, size_t i, val *out, forge_error *err) {
    if (!cv || cv->type == JSON_NULL) {
        if (as_list) {
            vlist *l = list_new(0);
            if (!l) return oom(err);
            *out = v_obj(V_LIST, l);
        } else *out = v_str("", 0);
        return out->t == V_UNDEF ? oom(err) : FORGE_OK;
    }
    if (cv->type == JSON_STRING && !as_list) {
        if (!utf8_valid(cv->u.s, cv->n)) return err_set(err, FORGE_E_INVALID, "messages[%zu].content is not valid UTF-8", i);
        *out = v_str(cv->u.s, cv->n);
        return out->t == V_STR ? FORGE_OK : oom(err);
    }
    if (cv->type == JSON_STRING) { /* one text part */
        if (!utf8_valid(cv->u.s, cv->n)) return err_set(err, FORGE_E_INVALID, "messages[%zu].content is not valid UTF-8", i);
        vdict *d = dict_new(2);
        vlist *l = list_new(1);
        if (!d || !l || !put(d, "type", v_cstr("text")) || !put(d, "text", v_str(cv->u.s, cv->n))) {
            obj_unref(d);
            obj_unref(l);
            return oom(err);
        }
        l->items[l->n++] = v_obj(V_DICT, d);
        *out = v_obj(V_LIST, l);
        return FORGE_OK;
    }
    if (cv->type != JSON_ARRAY)
        return err_set(err, FORGE_E_INVALID,
                       "messages[%zu].content: expected a string, an array of content parts or null, got %s", i,
                       json_type_name(cv->type));
    vlist *parts = list_new(cv->n);
    strbuf joined = STRBUF_INIT;
    if (!parts) return oom(err);
    for (size_t k = 0; k < cv->n; k++) {
        const json_value *p = cv->u.items[k], *text = NULL;
        if (p->type == JSON_STRING) text = p;
        else if (p->type == JSON_OBJECT) {
            const json_value *type = json_get(p, "type");
            if (!json_is(type, JSON_STRING)) {
                obj_unref(parts);
                sb_free(&joined);
                return err_set(err, FORGE_E_INVALID, "messages[%zu].content[%zu]: missing \"type\"", i, k);
            }
            if (strcmp(type->u.s, "text")) {
                obj_unref(parts);
                sb_free(&joined);
                return err_set(err, FORGE_E_UNSUPPORTED,
                               "messages[%zu].content[%zu]: content parts of type '%.100s' are not supported (text only)",
                               i, k, type->u.s);
            }
            text = json_get(p, "text");
            if (!json_is(text, JSON_STRING)) {
                obj_unref(parts);
                sb_free(&joined);
                return err_set(err, FORGE_E_INVALID, "messages[%zu].content[%zu].text: expected a string", i, k);
            }
        } else {
            obj_unref(parts);
            sb_free(&joined);
            return err_set(err, FORGE_E_INVALID, "messages[%zu].content[%zu]: expected an object, got %s", i, k,
                           json_type_name(p->type));
        }
        if (!utf8_valid(text->u.s, text->n)) {
            obj_unref(parts);
            sb_free(&joined);
            return err_set(err, FORGE_E_INVALID, "messages[%zu].content[%zu].text is not valid UTF-8", i, k);
        }
        if (k) sb_putc(&joined, '\n');
        sb_append(&joined, text->u.s, text->n);
        vdict *d = dict_new(2);
        if (!d || !put(d, "type", v_cstr("text")) || !put(d, "text", v_str(text->u.s, text->n))) {
            obj_unref(d);
            obj_unref(parts);
            sb_free(&joined);
            return oom(err);
        }
        parts->items[parts->n++] = v_obj(V_DICT, d);
    }
    if (as_list) {
        *out = v_obj(V_LIST, parts);
        sb_free(&joined);
        return FORGE_OK;
    }
    obj_unref(parts);
    *out = v_str_take(&joined);
    sb_free(&joined);
    return out->t == V_STR ? FORGE_OK : oom(err);
}

static forge_status convert_tool_calls(const json_value *tc, size_t i, val *out, forge_error *err) {
    if (tc->type != JSON_ARRAY)
        return err_set(err, FORGE_E_INVALID, "messages[%zu].tool_calls: expected an array, got %s", i,
                       json_type_name(tc->type));
    vlist *l = list_new(tc->n);
    if (!l) return oom(err);
    for (size_t k = 0; k < tc->n; k++) {
        const json_value *call = tc->u.items[k];
        const json_value *fn = json_get(call, "function");
        if (!json_is(call, JSON_OBJECT) || !json_is(fn, JSON_OBJECT)) {
            obj_unref(l);
            return err_set(err, FORGE_E_INVALID, "messages[%zu].tool_calls[%zu]: expected an object with a \"function\" object", i, k);
        }
        val callv;
        if (!tpl_from_json(call, &callv, err)) {
            obj_unref(l);
            return err_set(err, err->code, "messages[%zu].tool_calls[%zu]: %s", i, k, err->msg);
        }
        l->items[l->n++] = callv;
        const json_value *args = json_get(fn, "arguments");
        if (!json_is(args, JSON_STRING)) continue;
        forge_error jerr;
        json_doc *doc = json_parse(args->u.s, args->n, &jerr);
        if (!doc) {
            obj_unref(l);
            if (jerr.code == FORGE_E_NOMEM) return err_set(err, FORGE_E_NOMEM, "out of memory");
            return err_set(err, FORGE_E_INVALID, "messages[%zu].tool_calls[%zu].function.arguments: invalid JSON: %s", i,
                           k, jerr.msg);
        }
        val parsed;
        bool ok = tpl_from_json(json_root(doc), &parsed, err);
        json_free(doc);
        if (!ok) {
            obj_unref(l);
            return err->code;
        }
        val *fnv = dict_get_str(V_D(callv), "function", 8);
        if (!fnv || fnv->t != V_DICT || !put(V_D(*fnv), "arguments", parsed)) {
            obj_unref(l);
            return oom(err);
        }
    }
    *out = v_obj(V_LIST, l);
    return FORGE_OK;
}

static forge_status convert_message(const json_value *m, size_t i, bool content_as_list, val *out, forge_error *err) {
    if (!json_is(m, JSON_OBJECT))
        return err_set(err, FORGE_E_INVALID, "messages[%zu]: expected an object, got %s", i, m ? json_type_name(m->type) : "nothing");
    const json_value *role = json_get(m, "role");
    if (!role) return err_set(err, FORGE_E_INVALID, "messages[%zu]: missing \"role\"", i);
    if (role->type != JSON_STRING)
        return err_set(err, FORGE_E_INVALID, "messages[%zu].role: expected a string, got %s", i, json_type_name(role->type));
    bool assistant = !strcmp(role->u.s, "assistant");
    vdict *d = dict_new(m->n + 1);
    if (!d) return oom(err);
    bool has_content = false;
    forge_status s = FORGE_OK;
    for (size_t k = 0; k < m->n && s == FORGE_OK; k++) {
        const json_member *mem = &m->u.members[k];
        val v = v_undef();
        if (!strcmp(mem->key, "content") && mem->key_len == 7) {
            if (has_content) continue; /* json.loads keeps the last: handled below */
            has_content = true;
            s = convert_content(json_get(m, "content"), content_as_list, i, &v, err);
        } else if (assistant && !strcmp(mem->key, "tool_calls") && mem->key_len == 10) {
            const json_value *tc = json_get(m, "tool_calls");
            if (tc->type == JSON_NULL) continue;
            s = convert_tool_calls(tc, i, &v, err);
        } else if (!tpl_from_json(mem->value, &v, err)) {
            s = err_set(err, err->code, "messages[%zu].%s: %s", i, mem->key, err->msg);
        }
        if (s != FORGE_OK) break;
        if (!utf8_valid(mem->key, mem->key_len)) {
            v_unref(v);
            s = err_set(err, FORGE_E_INVALID, "messages[%zu]: a key is not valid UTF-8", i);
            break;
        }
        val key = v_str(mem->key, mem->key_len);
        if (key.t != V_STR) v_unref(v);
        if (key.t != V_STR || !dict_set(d, key, v)) s = oom(err); /* dict_set takes both */
    }
    if (s == FORGE_OK && !has_content) {
        val v;
        s = convert_content(NULL, content_as_list, i, &v, err);
        if (s == FORGE_OK && !put(d, "content", v)) s = oom(err);
    }
    if (s != FORGE_OK) {
        obj_unref(d);
        return s;
    }
    *out = v_obj(V_DICT, d);
    return FORGE_OK;
}

/* HF's apply_chat_template(continue_final_message=True): keep the prompt up to the end of the
 * final message's text. */
static forge_status continue_final(strbuf *rendered, val last, forge_error *err) {
    val content = v_undef();
    if (last.t == V_DICT) {
        val *cv = dict_get_str(V_D(last), "content", 7);
        if (cv) content = *cv;
    }
    if (content.t == V_LIST) {
        vlist *l = V_L(content);
        val text = v_undef();
        for (size_t k = l->n; k-- > 0;) {
            val *t = l->items[k].t == V_DICT ? dict_get_str(V_D(l->items[k]), "text", 4) : NULL;
            if (t) {
                text = *t;
                break;
            }
        }
        if (text.t == V_UNDEF)
            return err_set(err, FORGE_E_INVALID,
                           "continue_final_message is set but we could not find any text to continuein the final message!");
        content = text;
    }
    if (content.t != V_STR) return err_set(err, FORGE_E_INVALID, "continue_final_message: the final message has no text content");
    vstr *s = V_S(content);
    /* strip(), lstrip() in Python's sense of whitespace */
    size_t lo = 0, hi = s->len;
    while (lo < hi) {
        size_t k = lo;
        if (!py_isspace(u8_next(s->s, hi, &k))) break;
        lo = k;
    }
    while (hi > lo) {
        size_t p = u8_prev(s->s, hi), k = p;
        if (!py_isspace(u8_next(s->s, hi, &k))) break;
        hi = p;
    }
    const char *hay = sb_str(rendered);
    size_t need = hi - lo, loc = SIZE_MAX;
    if (!need) loc = rendered->len;
    else
        for (size_t p = 0; p + need <= rendered->len;) {
            const char *f = memmem(hay + p, rendered->len - p, s->s + lo, need);
            if (!f) break;
            loc = (size_t)(f - hay);
            p = loc + 1;
        }
    if (loc == SIZE_MAX)
        return err_set(err, FORGE_E_INVALID,
                       "continue_final_message is set but the final message does not appear in the chat after applying "
                       "the chat template! This can happen if the chat template deletes portions of the final message. "
                       "Please verify the chat template and final message in your chat to ensure they are compatible.");
    if (lo == 0 && loc + s->len <= rendered->len && !memcmp(hay + loc, s->s, s->len)) rendered->len = loc + s->len;
    else rendered->len = loc + need;
    if (rendered->data) rendered->data[rendered->len] = 0;
    return FORGE_OK;
}

static forge_status bool_field(const json_value *req, const char *name, bool dflt, bool *out, forge_error *err) {
    const json_value *v = json_get(req, name);
    *out = dflt;
    if (!v || v->type == JSON_NULL) return FORGE_OK;
    if (v->type != JSON_BOOL) return err_set(err, FORGE_E_INVALID, "%s: expected true or false, got %s", name, json_type_name(v->type));
    *out = v->u.b;
    return FORGE_OK;
}

forge_status chat_render_request_detail(const forge_chat_template *t, const json_value *req, strbuf *out,
                                        tpl_error *te, forge_error *err) {
    if (te) memset(te, 0, sizeof *te);
    if (!json_is(req, JSON_OBJECT))
        return err_set(err, FORGE_E_INVALID, "chat request: expected a JSON object, got %s", req ? json_type_name(req->type) : "nothing");
    const json_value *msgs = json_get(req, "messages"), *tools = json_get(req, "tools"),
                     *docs = json_get(req, "documents"), *kwargs = json_get(req, "chat_template_kwargs");
    if (!msgs) return err_set(err, FORGE_E_INVALID, "chat request: missing \"messages\"");
    if (msgs->type != JSON_ARRAY) return err_set(err, FORGE_E_INVALID, "messages: expected an array, got %s", json_type_name(msgs->type));
    if (tools && tools->type != JSON_NULL && tools->type != JSON_ARRAY)
        return err_set(err, FORGE_E_INVALID, "tools: expected an array or null, got %s", json_type_name(tools->type));
    if (docs && docs->type != JSON_NULL && docs->type != JSON_ARRAY)
        return err_set(err, FORGE_E_INVALID, "documents: expected an array or null, got %s", json_type_name(docs->type));
    if (kwargs && kwargs->type != JSON_NULL && kwargs->type != JSON_OBJECT)
        return err_set(err, FORGE_E_INVALID, "chat_template_kwargs: expected an object, got %s", json_type_name(kwargs->type));
    bool agp, cfm;
    forge_status s = bool_field(req, "add_generation_prompt", true, &agp, err);
    if (s == FORGE_OK) s = bool_field(req, "continue_final_message", false, &cfm, err);
    if (s != FORGE_OK) return s;
    if (agp && cfm && json_get(req, "add_generation_prompt") && json_get(req, "add_generation_prompt")->type == JSON_BOOL)
        return err_set(err, FORGE_E_INVALID, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.");
    if (cfm) agp = false; /* vLLM's default of true yields to an explicit continue_final_message */
    if (cfm && !msgs->n) return err_set(err, FORGE_E_INVALID, "continue_final_message needs a final message");

    /* which template: "tool_use" when tools are given and it exists, else "default" */
    bool has_tools = tools && tools->type != JSON_NULL;
    int pick = 0;
    if (t->n > 1 || t->names[0]) {
        pick = -1;
        for (int i = 0; i < t->n; i++)
            if (has_tools && t->names[i] && !strcmp(t->names[i], "tool_use")) pick = i;
        for (int i = 0; pick < 0 && i < t->n; i++)
            if (t->names[i] && !strcmp(t->names[i], "default")) pick = i;
        if (pick < 0)
            return err_set(err, FORGE_E_INVALID,
                           "This model has multiple chat templates with no default specified! Give a template "
                           "with --chat-template.");
    }
    const tpl_template *tp = t->tpls[pick];

    vdict *vars = dict_new(16);
    vlist *ml = list_new(msgs->n);
    if (!vars || !ml) {
        obj_unref(vars);
        obj_unref(ml);
        return oom(err);
    }
    for (size_t i = 0; i < t->tokens->n && s == FORGE_OK; i++)
        if (!dict_set(vars, v_ref(t->tokens->keys[i]), v_ref(t->tokens->vals[i]))) s = oom(err);
    for (size_t i = 0; i < msgs->n && s == FORGE_OK; i++) {
        s = convert_message(msgs->u.items[i], i, tp->content_as_list, &ml->items[i], err);
        if (s == FORGE_OK) ml->n++;
    }
    if (s == FORGE_OK && !put(vars, "messages", v_obj(V_LIST, obj_ref(ml)))) s = oom(err);
    val tv = v_none(), dv = v_none();
    if (s == FORGE_OK && has_tools && !tpl_from_json(tools, &tv, err)) s = err_prefix(err, "tools");
    if (s == FORGE_OK && !put(vars, "tools", tv)) s = oom(err);
    if (s == FORGE_OK && docs && docs->type != JSON_NULL && !tpl_from_json(docs, &dv, err)) s = err_prefix(err, "documents");
    if (s == FORGE_OK && !put(vars, "documents", dv)) s = oom(err);
    if (s == FORGE_OK && !put(vars, "add_generation_prompt", v_bool(agp))) s = oom(err);
    for (size_t i = 0; s == FORGE_OK && kwargs && kwargs->type == JSON_OBJECT && i < kwargs->n; i++) {
        const json_member *m = &kwargs->u.members[i];
        if (!strcmp(m->key, "messages")) {
            s = err_set(err, FORGE_E_INVALID, "chat_template_kwargs may not set \"messages\"");
            break;
        }
        val v;
        if (!utf8_valid(m->key, m->key_len)) s = err_set(err, FORGE_E_INVALID, "chat_template_kwargs: a key is not valid UTF-8");
        else if (!tpl_from_json(m->value, &v, err)) s = err_prefix(err, "chat_template_kwargs.%s", m->key);
        else {
            val k = v_str(m->key, m->key_len);
            if (k.t != V_STR) v_unref(v);
            if (k.t != V_STR || !dict_set(vars, k, v)) s = oom(err); /* dict_set takes both */
        }
    }
    if (s == FORGE_OK) {
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        int64_t now = -1;
        if (sde && *sde) {
            char *end;
            long long x = strtoll(sde, &end, 10);
            if (!*end && x >= 0) now = x;
        }
        strbuf buf = STRBUF_INIT;
        tpl_error e;
        if (!tpl_render(tp, vars, &t->lim, now, &buf, &e)) {
            if (te) *te = e;
            forge_status code = e.kind == TE_NOMEM ? FORGE_E_NOMEM
                                : e.kind == TE_LIMIT ? FORGE_E_RANGE
                                : e.kind == TE_UNSUPPORTED ? FORGE_E_UNSUPPORTED
                                                           : FORGE_E_TEMPLATE;
            if (e.kind == TE_TEMPLATE) s = err_set(err, code, "chat template line %d: %s", e.line, e.msg);
            else s = err_set(err, code, "chat template line %d: %s: %s", e.line, tpl_errkind_name(e.kind), e.msg);
        } else if (cfm) {
            s = continue_final(&buf, ml->items[ml->n - 1], err);
        }
        if (s == FORGE_OK) sb_append(out, sb_str(&buf), buf.len);
        if (s == FORGE_OK && sb_failed(out)) s = oom(err);
        sb_free(&buf);
    }
    obj_unref(ml);
    obj_unref(vars);
    return s;
}

forge_status chat_render_request(const forge_chat_template *t, const json_value *req, strbuf *out, forge_error *err) {
    return chat_render_request_detail(t, req, out, NULL, err);
}

forge_status forge_chat_template_render(const forge_chat_template *t, const char *request_json, size_t len, char **out,
                                        size_t *out_len, forge_error *err) {
    if (!t || !out || !request_json)
        return err_set(err, FORGE_E_INVALID, "forge_chat_template_render: %s is NULL",
                       !t ? "the template" : !out ? "out" : "request_json");
    *out = NULL;
    if (out_len) *out_len = 0;
    json_doc *doc = json_parse(request_json, len, err);
    if (!doc) return err_prefix(err, "chat request");
    strbuf sb = STRBUF_INIT;
    forge_status s = chat_render_request(t, json_root(doc), &sb, err);
    json_free(doc);
    if (s != FORGE_OK) {
        sb_free(&sb);
        return s;
    }
    if (!sb.data) sb_puts(&sb, "");
    *out = sb_take(&sb, out_len);
    return *out ? FORGE_OK : oom(err);
}
