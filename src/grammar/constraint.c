/* constraint.c: the public constraint functions of forge.h over the converters and the
 * GBNF compiler. */
#include "grammar/constraint.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "grammar/convert.h"

static forge_status to_gbnf(const forge_constraint *c, strbuf *sb, forge_error *err) {
    if (!c) return err_set(err, FORGE_E_INVALID, "constraint: NULL");
    if (c->kind != FORGE_CONSTRAINT_JSON_OBJECT && !c->text && c->len)
        return err_set(err, FORGE_E_INVALID, "constraint: text is NULL");
    const char *t = c->text ? c->text : "";
    switch (c->kind) {
    case FORGE_CONSTRAINT_JSON_SCHEMA: return schema_to_gbnf(t, c->len, sb, err);
    case FORGE_CONSTRAINT_JSON_OBJECT: json_object_gbnf(sb); return FORGE_OK;
    case FORGE_CONSTRAINT_GBNF: sb_append(sb, t, c->len); return FORGE_OK;
    case FORGE_CONSTRAINT_REGEX: return regex_to_gbnf(t, c->len, sb, err);
    case FORGE_CONSTRAINT_CHOICE: return choice_to_gbnf(t, c->len, sb, err);
    default: return err_set(err, FORGE_E_INVALID, "constraint: unknown kind %d", (int)c->kind);
    }
}

grammar *constraint_compile(const forge_constraint *c, forge_error *err) {
    strbuf sb = STRBUF_INIT;
    grammar *g = NULL;
    if (!to_gbnf(c, &sb, err)) {
        if (sb_failed(&sb)) err_set(err, FORGE_E_NOMEM, "out of memory");
        else g = grammar_parse(sb.data ? sb.data : "", sb.len, err);
    }
    sb_free(&sb);
    return g;
}

forge_status forge_constraint_check(const forge_constraint *c, forge_error *err) {
    grammar *g = constraint_compile(c, err);
    if (!g) return err ? err->code : FORGE_E_INVALID;
    grammar_free(g);
    return FORGE_OK;
}

forge_status forge_constraint_to_gbnf(const forge_constraint *c, char **out, size_t *out_len, forge_error *err) {
    if (!out) return err_set(err, FORGE_E_INVALID, "forge_constraint_to_gbnf: out is NULL");
    *out = NULL;
    strbuf sb = STRBUF_INIT;
    forge_status st = to_gbnf(c, &sb, err);
    if (!st && sb_failed(&sb)) st = err_set(err, FORGE_E_NOMEM, "out of memory");
    if (st) {
        sb_free(&sb);
        return st;
    }
    sb_putc(&sb, 0);
    sb.len--;
    size_t n = sb.len;
    *out = sb_take(&sb, NULL);
    if (!*out) return err_set(err, FORGE_E_NOMEM, "out of memory");
    if (out_len) *out_len = n;
    return FORGE_OK;
}

forge_status forge_json_schema_to_gbnf(const char *schema, size_t len, char **out, forge_error *err) {
    forge_constraint c = {.kind = FORGE_CONSTRAINT_JSON_SCHEMA, .text = schema, .len = len};
    if (!schema) return err_set(err, FORGE_E_INVALID, "forge_json_schema_to_gbnf: schema is NULL");
    return forge_constraint_to_gbnf(&c, out, NULL, err);
}

/* forge_request_params carved forge_constraint from its reserved tail: its size is fixed */
_Static_assert(sizeof(forge_constraint) == 3 * sizeof(uint64_t), "forge_constraint must stay 24 bytes");
