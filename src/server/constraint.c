/* constraint.c: a generation request's structured-output fields (response_format, vLLM's
 * guided_*, llama.cpp's grammar / json_schema) read and compiled before anything is
 * submitted, so that a bad schema, grammar or regex, an unsupported schema keyword or two
 * constraints at once answer 400 naming the field. */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "server/server_int.h"

static const char *const k_fields[] = {"response_format", "guided_json", "json_schema", "guided_regex",
                                       "guided_choice", "guided_grammar", "grammar", NULL};

const char *const *parse_constraint_fields(void) { return k_fields; }

int parse_constraint(const json_value *root, const char *body, size_t len, srv_gen *g, srv_err *e) {
    const char *param = NULL;
    for (int i = 0; k_fields[i] && !param; i++) {
        const json_value *v = json_get(root, k_fields[i]);
        if (v && v->type != JSON_NULL) param = k_fields[i];
    }
    if (!param) return 0;
    forge_error err;
    if (forge_request_constraint(body, len, &g->constraint, &g->constraint_text, &err))
        return srv_fail(e, 400, "invalid_value", param, "%s", err.msg);
    if (g->constraint.kind == FORGE_CONSTRAINT_NONE) return 0;
    forge_status st = forge_constraint_check(&g->constraint, &err);
    if (st == FORGE_E_NOMEM) return srv_fail(e, 500, NULL, NULL, "out of memory");
    if (st) return srv_fail(e, 400, st == FORGE_E_UNSUPPORTED ? "unsupported_value" : "invalid_value", param, "%s", err.msg);
    return 0;
}

/* A GBNF string literal of text. */
static void gbnf_literal(strbuf *o, const char *t) {
    sb_putc(o, '"');
    for (; *t; t++) {
        if (*t == '\n') sb_puts(o, "\\n");
        else if (*t == '"' || *t == '\\') sb_putc(o, '\\'), sb_putc(o, *t);
        else sb_putc(o, *t);
    }
    sb_putc(o, '"');
}

int parse_tool_force(forge_server *s, const json_value *root, srv_gen *g, srv_err *e) {
    if (!g->chat || !g->tool_force) return 0;
    if (g->constraint.kind != FORGE_CONSTRAINT_NONE)
        return srv_fail(e, 400, "invalid_value", "tool_choice",
                        "tool_choice forces a tool call, which cannot be combined with response_format or another "
                        "structured-output field");
    strbuf pre = STRBUF_INIT, schema = STRBUF_INIT, suf = STRBUF_INIT, gb = STRBUF_INIT;
    char *call = NULL;
    forge_error err;
    int rc = 0;
    forge_status st = tc_forcing_spec(s->tc_fam, json_get(root, "tools"), g->tool_force_name, &pre, &schema, &suf, &err);
    if (st) {
        rc = st == FORGE_E_NOMEM ? srv_fail(e, 500, NULL, NULL, "out of memory")
                                 : srv_fail(e, 400, "invalid_value", "tool_choice", "%s", err.msg);
        goto out;
    }
    st = forge_json_schema_to_gbnf(sb_str(&schema), schema.len, &call, &err);
    if (st) {
        rc = st == FORGE_E_NOMEM ? srv_fail(e, 500, NULL, NULL, "out of memory")
                                 : srv_fail(e, 400, st == FORGE_E_UNSUPPORTED ? "unsupported_value" : "invalid_value",
                                            "tools", "a tool's parameters: %s", err.msg);
        goto out;
    }
    /* the schema grammar's own root becomes tool-call (nothing else refers to root) */
    const char *r = strstr(call, "root ::= ");
    while (r && r != call && r[-1] != '\n') r = strstr(r + 1, "root ::= ");
    if (!r) {
        rc = srv_fail(e, 500, NULL, NULL, "the tool call's grammar has no root rule");
        goto out;
    }
    sb_append(&gb, call, (size_t)(r - call));
    sb_puts(&gb, "tool-call ::= ");
    sb_puts(&gb, r + strlen("root ::= "));
    /* one call, or with parallel_tool_calls several in the format's own way */
    sb_puts(&gb, "\ncall-block ::= ");
    gbnf_literal(&gb, sb_str(&pre));
    sb_puts(&gb, " tool-call ");
    gbnf_literal(&gb, sb_str(&suf));
    if (s->tc_fam == TC_FAMILY_MISTRAL) {
        /* "[TOOL_CALLS][" call ("," call)* "]": the list is the prefix and suffix's brackets */
        sb_puts(&gb, "\nroot ::= ");
        gbnf_literal(&gb, sb_str(&pre));
        sb_puts(&gb, g->parallel_tool_calls ? " tool-call (\",\" [ ]? tool-call)* " : " tool-call ");
        gbnf_literal(&gb, sb_str(&suf));
        sb_putc(&gb, '\n');
    } else if (s->tc_fam == TC_FAMILY_HERMES && g->parallel_tool_calls) {
        sb_puts(&gb, "\nroot ::= call-block (\"\\n\" call-block)*\n");
    } else {
        sb_puts(&gb, "\nroot ::= call-block\n");
    }
    if (sb_failed(&gb)) {
        rc = srv_fail(e, 500, NULL, NULL, "out of memory");
        goto out;
    }
    free(g->constraint_text);
    g->constraint_text = strdup(sb_str(&gb));
    if (!g->constraint_text) {
        rc = srv_fail(e, 500, NULL, NULL, "out of memory");
        goto out;
    }
    g->constraint = (forge_constraint){.kind = FORGE_CONSTRAINT_GBNF, .text = g->constraint_text, .len = gb.len};
    st = forge_constraint_check(&g->constraint, &err);
    if (st) rc = srv_fail(e, st == FORGE_E_NOMEM ? 500 : 400, st == FORGE_E_NOMEM ? NULL : "invalid_value", "tools", "%s", err.msg);
out:
    sb_free(&pre);
    sb_free(&schema);
    sb_free(&suf);
    sb_free(&gb);
    free(call);
    return rc;
}
