/* toolforce.c: what a forced tool call must look like, per family (tc_forcing_spec in
 * toolcall.h). The JSON schema is handed to the constrained-decoding layer, which makes
 * the model write the prefix, a value valid against the schema, and the suffix. */
#include <string.h>

#include "chat/toolcall.h"

/* The schema of one call object: {"type":"object","properties":{"name":{"const":N},
 * ARGS:PARAMS},"required":["name",ARGS]}; a tool without parameters takes an empty object. */
static void call_schema(strbuf *o, const json_value *name, const json_value *params, const char *args_key) {
    sb_puts(o, "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":");
    json_write_string(o, name->u.s, name->n, false);
    sb_printf(o, "},\"%s\":", args_key);
    if (params) json_write_value(o, params);
    else sb_puts(o, "{\"type\":\"object\",\"properties\":{}}");
    sb_printf(o, "},\"required\":[\"name\",\"%s\"]}", args_key);
}

forge_status tc_forcing_spec(tc_family fam, const json_value *tools, const char *name, strbuf *prefix, strbuf *schema,
                             strbuf *suffix, forge_error *err) {
    const char *pre, *suf, *args_key;
    switch (fam) {
    case TC_FAMILY_HERMES: pre = "<tool_call>\n", suf = "\n</tool_call>", args_key = "arguments"; break;
    case TC_FAMILY_LLAMA3_JSON: pre = "", suf = "", args_key = "parameters"; break;
    case TC_FAMILY_MISTRAL: pre = "[TOOL_CALLS][", suf = "]", args_key = "arguments"; break;
    default:
        return err_set(err, FORGE_E_INVALID,
                       "this model's chat template has no known tool-call format, so a call cannot be forced "
                       "(start the server with --tool-call-parser)");
    }
    if (!json_is(tools, JSON_ARRAY) || tools->n == 0)
        return err_set(err, FORGE_E_INVALID, "tool_choice asks for a tool call but no tools are given");
    /* first pass: check every tool and count the chosen ones */
    size_t chosen = 0;
    for (size_t i = 0; i < tools->n; i++) {
        const json_value *fn = json_get(tools->u.items[i], "function");
        const json_value *nm = json_get(fn, "name"), *params = json_get(fn, "parameters");
        if (!json_is(nm, JSON_STRING) || nm->n == 0)
            return err_set(err, FORGE_E_INVALID, "tools[%zu]: expected {\"type\": \"function\", \"function\": "
                           "{\"name\": ...}}", i);
        if (params && params->type != JSON_OBJECT && params->type != JSON_NULL)
            return err_set(err, FORGE_E_INVALID, "tools[%zu].function.parameters: expected an object (a JSON schema)", i);
        if (!name || (strlen(name) == nm->n && !memcmp(name, nm->u.s, nm->n))) chosen++;
    }
    if (!chosen) return err_set(err, FORGE_E_INVALID, "tool_choice names the function '%.100s', which is not among the tools", name);
    sb_puts(prefix, pre);
    sb_puts(suffix, suf);
    if (chosen > 1) sb_puts(schema, "{\"anyOf\":[");
    size_t k = 0;
    for (size_t i = 0; i < tools->n; i++) {
        const json_value *fn = json_get(tools->u.items[i], "function");
        const json_value *nm = json_get(fn, "name"), *params = json_get(fn, "parameters");
        if (name && !(strlen(name) == nm->n && !memcmp(name, nm->u.s, nm->n))) continue;
        if (k++) sb_putc(schema, ',');
        call_schema(schema, nm, json_is(params, JSON_OBJECT) ? params : NULL, args_key);
    }
    if (chosen > 1) sb_puts(schema, "]}");
    if (sb_failed(prefix) || sb_failed(schema) || sb_failed(suffix)) return err_set(err, FORGE_E_NOMEM, "out of memory");
    return FORGE_OK;
}
