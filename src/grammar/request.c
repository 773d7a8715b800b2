/* request.c: the structured-output fields of an OpenAI-style request body to a
 * forge_constraint (forge_request_constraint in forge.h): OpenAI's response_format, vLLM's
 * guided_json / guided_regex / guided_choice / guided_grammar and llama.cpp's grammar /
 * json_schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/strbuf.h"

forge_status forge_request_constraint(const char *body, size_t len, forge_constraint *out, char **text,
                                      forge_error *err) {
    if (!out || !text) return err_set(err, FORGE_E_INVALID, "forge_request_constraint: out or text is NULL");
    memset(out, 0, sizeof *out);
    *text = NULL;
    json_doc *d = json_parse(body, len, err);
    if (!d) return err_prefix(err, "request body");
    const json_value *o = json_root(d);
    forge_status st = FORGE_OK;
    strbuf sb = STRBUF_INIT;
    const char *first = NULL;
    int kind = FORGE_CONSTRAINT_NONE;
#define TAKE(name, k)                                                                             \
    do {                                                                                          \
        if (first) {                                                                              \
            st = err_set(err, FORGE_E_INVALID, "more than one constraint in the request ('%s' and '%s')", first, name); \
            goto out;                                                                             \
        }                                                                                         \
        first = name;                                                                             \
        kind = k;                                                                                 \
    } while (0)
    if (!json_is(o, JSON_OBJECT)) goto out;
    const json_value *v = json_get(o, "response_format");
    if (v && v->type != JSON_NULL) {
        const char *type = json_string(json_get(v, "type"));
        if (!json_is(v, JSON_OBJECT) || !type) {
            st = err_set(err, FORGE_E_INVALID, "'response_format' must be an object with a 'type'");
            goto out;
        }
        if (!strcmp(type, "json_object")) {
            const json_value *schema = json_get(v, "schema"); /* llama.cpp's extension */
            if (json_is(schema, JSON_OBJECT)) {
                TAKE("response_format", FORGE_CONSTRAINT_JSON_SCHEMA);
                json_write_value(&sb, schema);
            } else TAKE("response_format", FORGE_CONSTRAINT_JSON_OBJECT);
        } else if (!strcmp(type, "json_schema")) {
            const json_value *js = json_get(v, "json_schema");
            const json_value *schema = json_get(js, "schema");
            if (!json_is(js, JSON_OBJECT)) {
                st = err_set(err, FORGE_E_INVALID, "'response_format.json_schema' must be an object");
                goto out;
            }
            if (!json_is(schema, JSON_OBJECT) && !json_is(schema, JSON_BOOL)) {
                st = err_set(err, FORGE_E_INVALID, "'response_format.json_schema.schema' must be a JSON schema object");
                goto out;
            }
            TAKE("response_format", FORGE_CONSTRAINT_JSON_SCHEMA);
            json_write_value(&sb, schema);
        } else if (strcmp(type, "text")) {
            st = err_set(err, FORGE_E_INVALID, "'response_format.type' must be text, json_object or json_schema, got '%.60s'", type);
            goto out;
        }
    }
    static const struct {
        const char *key;
        int kind;
    } fields[] = {{"guided_json", FORGE_CONSTRAINT_JSON_SCHEMA}, {"json_schema", FORGE_CONSTRAINT_JSON_SCHEMA},
                  {"guided_regex", FORGE_CONSTRAINT_REGEX},      {"guided_choice", FORGE_CONSTRAINT_CHOICE},
                  {"guided_grammar", FORGE_CONSTRAINT_GBNF},     {"grammar", FORGE_CONSTRAINT_GBNF}};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        v = json_get(o, fields[i].key);
        if (!v || v->type == JSON_NULL) continue;
        int k = fields[i].kind;
        bool ok = k == FORGE_CONSTRAINT_JSON_SCHEMA ? json_is(v, JSON_OBJECT) || json_is(v, JSON_STRING) || json_is(v, JSON_BOOL)
                  : k == FORGE_CONSTRAINT_CHOICE    ? json_is(v, JSON_ARRAY)
                                                    : json_is(v, JSON_STRING);
        if (!ok) {
            st = err_set(err, FORGE_E_INVALID, "'%s' must be %s", fields[i].key,
                         k == FORGE_CONSTRAINT_JSON_SCHEMA ? "a JSON schema (an object or its text)"
                         : k == FORGE_CONSTRAINT_CHOICE    ? "an array of strings"
                                                           : "a string");
            goto out;
        }
        TAKE(fields[i].key, k);
        if (json_is(v, JSON_STRING)) sb_append(&sb, v->u.s, v->n);
        else json_write_value(&sb, v);
    }
out:
    if (!st && kind != FORGE_CONSTRAINT_NONE) {
        if (kind == FORGE_CONSTRAINT_JSON_OBJECT) sb_puts(&sb, "");
        if (sb_failed(&sb)) st = err_set(err, FORGE_E_NOMEM, "out of memory");
        else {
            size_t n = sb.len;
            sb_putc(&sb, 0);
            *text = sb_take(&sb, NULL);
            if (!*text) st = err_set(err, FORGE_E_NOMEM, "out of memory");
            else {
                out->kind = kind;
                out->text = *text;
                out->len = n;
            }
        }
    }
    sb_free(&sb);
    json_free(d);
    return st;
}
