/* chat.c: the public chat-template API: find and load a model's template, turn an OpenAI
 * chat request into the variables HF's apply_chat_template passes (with vLLM's request
 * handling: content parts, tool-call arguments parsed from JSON, add_generation_prompt on by
 * default), render, and continue_final_message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mfile.h"
#include "base/utf8.h"
#include "forge.h"
#include "tokenizer/tok_gguf.h"
#include "template/pystr.h"
#include "template/template.h"


/* ---- JSON to values ---------------------------------------------------------------------- */

static bool from_json(const json_value *j, val *out, forge_error *err, int depth) {
    if (depth > 600) return err_set(err, FORGE_E_RANGE, "JSON nested too deeply"), false;
    switch (j->type) {
    case JSON_NULL: *out = v_none(); return true;
    case JSON_BOOL: *out = v_bool(j->u.b); return true;
    case JSON_INT: *out = v_int(j->u.i); return true;
    case JSON_DOUBLE: *out = v_float(j->u.d); return true;
    case JSON_STRING:
        if (!utf8_valid(j->u.s, j->n)) return err_set(err, FORGE_E_INVALID, "a string is not valid UTF-8"), false;
        *out = v_str(j->u.s, j->n);
        return out->t == V_STR || (err_set(err, FORGE_E_NOMEM, "out of memory"), false);
    case JSON_ARRAY: {
        vlist *l = list_new(j->n);
        if (!l) return err_set(err, FORGE_E_NOMEM, "out of memory"), false;
        for (size_t i = 0; i < j->n; i++) {
            if (!from_json(j->u.items[i], &l->items[i], err, depth + 1)) {
                obj_unref(l);
                return false;
            }
            l->n++;
        }
        *out = v_obj(V_LIST, l);
        return true;
    }
    case JSON_OBJECT: {
        vdict *d = dict_new(j->n);
        if (!d) return err_set(err, FORGE_E_NOMEM, "out of memory"), false;
        for (size_t i = 0; i < j->n; i++) {
            const json_member *m = &j->u.members[i];
            if (!utf8_valid(m->key, m->key_len)) {
                obj_unref(d);
                return err_set(err, FORGE_E_INVALID, "an object key is not valid UTF-8"), false;
            }
            val k = v_str(m->key, m->key_len), v;
            if (k.t != V_STR) {
                obj_unref(d);
                return err_set(err, FORGE_E_NOMEM, "out of memory"), false;
            }
            if (!from_json(m->value, &v, err, depth + 1)) {
                v_unref(k);
                obj_unref(d);
                return false;
            }
            if (!dict_set(d, k, v)) {
                obj_unref(d);
                return err_set(err, FORGE_E_NOMEM, "out of memory"), false;
            }
        }
        *out = v_obj(V_DICT, d);
        return true;
    }
    }
    return err_set(err, FORGE_E_INTERNAL, "unknown JSON type"), false;
}

bool tpl_from_json(const json_value *j, val *out, forge_error *err) { return from_json(j, out, err, 0); }

/* ---- loading ---------------------------------------------------------------------------------- */

static void chat_free_parts(forge_chat_template *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->names[i]);
        tpl_template_free(t->tpls[i]);
    }
    arena_free(t->A);
    free(t->origin);
    sb_free(&t->source);
}

const char *chat_template_source(const forge_chat_template *t) { return t ? sb_str(&t->source) : ""; }

void forge_chat_template_free(forge_chat_template *t) {
    if (!t) return;
    chat_free_parts(t);
    free(t);
}

static forge_status add_template(forge_chat_template *t, const char *name, const char *src, size_t len,
                                 forge_error *err) {
    if (t->n == MAX_NAMED) return err_set(err, FORGE_E_UNSUPPORTED, "more than %d named chat templates", MAX_NAMED);
    if (!utf8_valid(src, len)) return err_set(err, FORGE_E_FORMAT, "the chat template is not valid UTF-8");
    tpl_syntax_error e;
    tpl_template *tp = tpl_compile(src, len, &e);
    /* the lexer and parser report allocation failures as this message, with no line */
    if (!tp && !strcmp(e.msg, "out of memory")) return err_set(err, FORGE_E_NOMEM, "out of memory");
    if (!tp)
        return err_set(err, FORGE_E_TEMPLATE, "chat template%s%s%s line %d: %s: %s", name ? " '" : "", name ? name : "",
                       name ? "'," : "", e.line, e.assertion ? "TemplateAssertionError" : "TemplateSyntaxError", e.msg);
    t->names[t->n] = name ? strdup(name) : NULL;
    t->tpls[t->n++] = tp;
    sb_append(&t->source, src, len);
    sb_putc(&t->source, '\n');
    if (sb_failed(&t->source)) return err_set(err, FORGE_E_NOMEM, "out of memory");
    if (name && !t->names[t->n - 1]) return err_set(err, FORGE_E_NOMEM, "out of memory");
    return FORGE_OK;
}

/* A special token: a string, or an AddedToken object {"content": ...}; null: absent. */
static const json_value *token_string(const json_value *v) {
    if (json_is(v, JSON_STRING)) return v;
    if (json_is(v, JSON_OBJECT) && json_is(json_get(v, "content"), JSON_STRING)) return json_get(v, "content");
    return NULL;
}

static forge_status fill_tokens(forge_chat_template *t, const json_value *cfg, forge_error *err) {
    /* HF's special_tokens_map: the set (non-empty) ones of these */
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                        "pad_token", "cls_token", "mask_token"};
    for (size_t i = 0; cfg && i < sizeof names / sizeof names[0]; i++) {
        const json_value *s = token_string(json_get(cfg, names[i]));
        if (!s || !s->n) continue;
        if (!utf8_valid(s->u.s, s->n)) return err_set(err, FORGE_E_FORMAT, "%s is not valid UTF-8", names[i]);
        val k = v_cstr(names[i]), v = v_str(s->u.s, s->n);
        if (k.t != V_STR || v.t != V_STR) {
            v_unref(k);
            v_unref(v);
            return err_set(err, FORGE_E_NOMEM, "out of memory");
        }
        if (!dict_set(t->tokens, k, v)) return err_set(err, FORGE_E_NOMEM, "out of memory"); /* took k and v */
    }
    const json_value *extra = cfg ? json_get(cfg, "additional_special_tokens") : NULL;
    if (json_is(extra, JSON_ARRAY) && extra->n) {
        vlist *l = list_new(extra->n);
        if (!l) return err_set(err, FORGE_E_NOMEM, "out of memory");
        for (size_t i = 0; i < extra->n; i++) {
            const json_value *s = token_string(json_at(extra, i));
            if (!s || !utf8_valid(s->u.s, s->n)) continue; /* HF would fail on such a config */
            val v = v_str(s->u.s, s->n);
            if (v.t != V_STR) {
                obj_unref(l);
                return err_set(err, FORGE_E_NOMEM, "out of memory");
            }
            l->items[l->n++] = v;
        }
        val k = v_cstr("additional_special_tokens");
        if (k.t != V_STR) {
            obj_unref(l);
            return err_set(err, FORGE_E_NOMEM, "out of memory");
        }
        if (!dict_set(t->tokens, k, v_obj(V_LIST, l))) return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    return FORGE_OK;
}

/* The special tokens as an immortal dict owned by t->A (nothing left behind on failure). */
static forge_status set_tokens(forge_chat_template *t, const json_value *cfg, forge_error *err) {
    t->tokens = dict_new(0);
    if (!t->tokens) return err_set(err, FORGE_E_NOMEM, "out of memory");
    forge_status s = fill_tokens(t, cfg, err);
    if (s == FORGE_OK && !arena_own(t->A, &t->tokens->h)) s = err_set(err, FORGE_E_NOMEM, "out of memory");
    if (s != FORGE_OK) {
        obj_unref(t->tokens);
        t->tokens = NULL;
    }
    return s;
}

static forge_chat_template *chat_new(forge_error *err) {
    forge_chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->A = arena_create())) {
        free(t);
        err_set(err, FORGE_E_NOMEM, "out of memory");
        return NULL;
    }
    forge_chat_template_set_limits(t, NULL);
    return t;
}

/* The chat_template member of a tokenizer_config.json: a string or a list of named ones. */
static forge_status templates_from_config(forge_chat_template *t, const json_value *ct, forge_error *err) {
    if (json_is(ct, JSON_STRING)) return add_template(t, NULL, ct->u.s, ct->n, err);
    if (!json_is(ct, JSON_ARRAY))
        return err_set(err, FORGE_E_FORMAT, "chat_template: expected a string or a list of named templates, got %s",
                       ct ? json_type_name(ct->type) : "nothing");
    for (size_t i = 0; i < ct->n; i++) {
        const json_value *e = json_at(ct, i), *name = json_get(e, "name"), *src = json_get(e, "template");
        if (!json_is(name, JSON_STRING) || !json_is(src, JSON_STRING))
            return err_set(err, FORGE_E_FORMAT, "chat_template[%zu]: expected {\"name\": ..., \"template\": ...}", i);
        forge_status s = add_template(t, name->u.s, src->u.s, src->n, err);
        if (s != FORGE_OK) return s;
    }
    if (!t->n) return err_set(err, FORGE_E_FORMAT, "chat_template: the list of named templates is empty");
    return FORGE_OK;
}

forge_chat_template *forge_chat_template_create(const char *source, size_t len, const char *config_json,
                                                size_t config_len, forge_error *err) {
    if ((!source && len) || (!config_json && config_len) || (!source && !config_json)) {
        err_set(err, FORGE_E_INVALID, "forge_chat_template_create: %s is NULL", !source && !config_json ? "source and config_json" : !source ? "source" : "config_json");
        return NULL;
    }
    forge_chat_template *t = chat_new(err);
    if (!t) return NULL;
    json_doc *cfg = NULL;
    forge_status s = FORGE_OK;
    if (config_json) {
        cfg = json_parse(config_json, config_len, err);
        if (!cfg) s = err_prefix(err, "tokenizer config");
    }
    if (s == FORGE_OK && source) s = add_template(t, NULL, source, len, err);
    if (s == FORGE_OK && !source) {
        const json_value *ct = cfg ? json_get(json_root(cfg), "chat_template") : NULL;
        s = ct ? templates_from_config(t, ct, err) : err_set(err, FORGE_E_NOT_FOUND, "no chat template given");
    }
    if (s == FORGE_OK) s = set_tokens(t, cfg ? json_root(cfg) : NULL, err);
    if (s == FORGE_OK && !(t->origin = strdup(source ? "string" : "tokenizer_config.json")))
        s = err_set(err, FORGE_E_NOMEM, "out of memory");
    json_free(cfg);
    if (s != FORGE_OK) {
        forge_chat_template_free(t);
        return NULL;
    }
    return t;
}

static bool file_exists(const char *path) { return path_is_file(path) > 0; }

forge_chat_template *forge_chat_template_load(const char *model_dir, const char *template_file, forge_error *err) {
    if (!model_dir) {
        err_set(err, FORGE_E_INVALID, "forge_chat_template_load: model_dir is NULL");
        return NULL;
    }
    /* a .gguf file (or a folder with a GGUF and no tokenizer.json): tokenizer.chat_template */
    int from_gguf = 0;
    char *gj = NULL, *gc = NULL;
    size_t gjl = 0, gcl = 0;
    if (gguf_tokenizer_docs_for(model_dir, &from_gguf, &gj, &gjl, &gc, &gcl, err)) return NULL;
    if (from_gguf) {
        free(gj);
        forge_chat_template *g = NULL;
        char *src = NULL;
        size_t n = 0;
        if (template_file && file_read_all(template_file, (size_t)16 << 20, &src, &n, err)) {
            free(gc);
            return NULL;
        }
        g = forge_chat_template_create(src, n, gc, gcl, err);
        if (!g && !src && err && err->code == FORGE_E_NOT_FOUND)
            err_set(err, FORGE_E_NOT_FOUND, "%s has no tokenizer.chat_template; give one with --chat-template FILE", model_dir);
        free(src);
        free(gc);
        return g;
    }
    forge_chat_template *t = chat_new(err);
    if (!t) return NULL;
    char cfg_path[4096], jinja_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", model_dir ? model_dir : ".");
    snprintf(jinja_path, sizeof jinja_path, "%s/chat_template.jinja", model_dir ? model_dir : ".");
    json_doc *cfg = NULL;
    forge_status s = FORGE_OK;
    if (model_dir && file_exists(cfg_path)) {
        cfg = json_parse_file(cfg_path, (size_t)64 << 20, err);
        if (!cfg) s = err->code;
    }
    const char *file = template_file ? template_file : (model_dir && file_exists(jinja_path)) ? jinja_path : NULL;
    if (s == FORGE_OK && file) {
        size_t n = 0;
        char *src = NULL;
        s = file_read_all(file, (size_t)16 << 20, &src, &n, err);
        if (s == FORGE_OK) {
            s = add_template(t, NULL, src, n, err);
            if (s != FORGE_OK) err_prefix(err, "%s", file);
            free(src);
        }
        if (s == FORGE_OK && !(t->origin = strdup(file))) s = err_set(err, FORGE_E_NOMEM, "out of memory");
    } else if (s == FORGE_OK) {
        const json_value *ct = cfg ? json_get(json_root(cfg), "chat_template") : NULL;
        if (!ct || json_is(ct, JSON_NULL))
            s = err_set(err, FORGE_E_NOT_FOUND,
                        "%s has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json); "
                        "give one with --chat-template FILE",
                        model_dir ? model_dir : "the model");
        else {
            s = templates_from_config(t, ct, err);
            if (s != FORGE_OK) err_prefix(err, "%s", cfg_path);
        }
        if (s == FORGE_OK && !(t->origin = strdup(cfg_path))) s = err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    if (s == FORGE_OK) s = set_tokens(t, cfg ? json_root(cfg) : NULL, err);
    json_free(cfg);
    if (s != FORGE_OK) {
        forge_chat_template_free(t);
        return NULL;
    }
    return t;
}

void forge_chat_template_set_limits(forge_chat_template *t, const forge_template_limits *lim) {
    if (!t) return;
    t->lim.max_output = lim && lim->max_output ? lim->max_output : (size_t)32 << 20;
    t->lim.max_steps = lim && lim->max_steps ? lim->max_steps : 20000000;
    t->lim.max_depth = lim && lim->max_depth ? lim->max_depth : 100;
}

const char *forge_chat_template_origin(const forge_chat_template *t) { return t && t->origin ? t->origin : ""; }

