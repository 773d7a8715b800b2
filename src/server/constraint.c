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
