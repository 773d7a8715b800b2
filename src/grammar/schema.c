/* schema.c: JSON schema to GBNF, in the manner of llama.cpp's json-schema-to-grammar.
 *
 * Every value rule ends with `space` (optional whitespace, bounded). Objects list their
 * properties in schema order; required ones must appear, optional ones may be left out.
 * An absent additionalProperties means none (as llama.cpp and vLLM's backends do); true
 * or a schema allows extra keys after the declared ones, keys that differ from the
 * declared names. Keywords that change what is valid and are not handled here are
 * refused by name; annotations (title, description, default, examples, ...) are ignored.
 * oneOf is generated as anyOf (exclusivity is not enforced). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "grammar/convert.h"
#include "grammar/grammar.h"

enum { SC_MAX_DEPTH = 64, SC_MAX_RULES = 20000 };

typedef struct sref {
    char *ref;
    int rule;
} sref;

typedef struct sconv {
    strbuf out;
    const json_value *root;
    forge_error *err;
    forge_status st;
    int n_rules, depth;
    sref *refs;
    int n_refs;
    unsigned prims; /* primitive rules emitted */
    char path[256];
} sconv;

enum { P_SPACE = 1, P_STRING = 2, P_NUMBER = 4, P_INTEGER = 8, P_BOOL = 16, P_NULL = 32, P_VALUE = 64, P_CHAR = 128,
       P_DATE = 256, P_TIME = 512, P_UUID = 1024, P_KEYCHAR = 2048 };

#define SFAIL(C, code, ...)                                                                   \
    do {                                                                                      \
        if (!(C)->st) (C)->st = err_set((C)->err, code, __VA_ARGS__);                         \
    } while (0)

static const char *prim_text(unsigned p) {
    switch (p) {
    case P_SPACE: return "space ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";
    case P_CHAR:
        return "char ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-C] [0-9a-fA-F]{3} | [dD] [0-7] "
               "[0-9a-fA-F]{2} | [eEfF] [0-9a-fA-F]{3}))\n";
    case P_KEYCHAR: return "keychar ::= [^\"\\\\\\x7F\\x00-\\x1F]\n";
    case P_STRING: return "string ::= \"\\\"\" char* \"\\\"\" space\n";
    case P_NUMBER:
        return "integral-part ::= [0] | [1-9] [0-9]{0,15}\n"
               "number ::= (\"-\"? integral-part) (\".\" [0-9]{1,16})? ([eE] [-+]? integral-part)? space\n";
    case P_INTEGER: return "integer ::= (\"-\"? ([0] | [1-9] [0-9]{0,15})) space\n";
    case P_BOOL: return "boolean ::= (\"true\" | \"false\") space\n";
    case P_NULL: return "null ::= \"null\" space\n";
    case P_VALUE:
        return "value ::= object | array | string | number | boolean | null\n"
               "object ::= \"{\" space (string \":\" space value (\",\" space string \":\" space value)*)? \"}\" space\n"
               "array ::= \"[\" space (value (\",\" space value)*)? \"]\" space\n";
    case P_DATE:
        return "date ::= [0-9]{4} \"-\" (((\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])) | "
               "((\"0\" [469] | \"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\")) | (\"02-\" (\"0\" [1-9] | \"1\" [0-9] | \"2\" "
               "[0-8])))\n";
    case P_TIME:
        return "time ::= ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})? (\"Z\" | [+-] "
               "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])\n";
    case P_UUID:
        return "uuid ::= [0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}\n";
    }
    return "";
}

static const char *prim(sconv *C, unsigned p) {
    static const unsigned deps[][2] = {{P_STRING, P_CHAR | P_SPACE}, {P_NUMBER, P_SPACE}, {P_INTEGER, P_SPACE},
                                       {P_BOOL, P_SPACE},           {P_NULL, P_SPACE},   {P_VALUE, P_STRING | P_NUMBER | P_BOOL | P_NULL}};
    if (!(C->prims & p)) {
        C->prims |= p;
        sb_puts(&C->out, prim_text(p));
        for (size_t i = 0; i < sizeof deps / sizeof *deps; i++)
            if (deps[i][0] == p)
                for (unsigned b = 1; b <= P_KEYCHAR; b <<= 1)
                    if (deps[i][1] & b) prim(C, b);
    }
    switch (p) {
    case P_STRING: return "string";
    case P_NUMBER: return "number";
    case P_INTEGER: return "integer";
    case P_BOOL: return "boolean";
    case P_NULL: return "null";
    case P_VALUE: return "value";
    default: return "";
    }
}

/* A new rule: writes "sN ::= " and returns N (the caller writes the body and a newline). */
static int rule_begin(sconv *C, strbuf *body) {
    (void)body;
    if (++C->n_rules > SC_MAX_RULES) SFAIL(C, FORGE_E_INVALID, "JSON schema: too large (more than %d rules)", SC_MAX_RULES);
    return C->n_rules;
}

static void rule_emit(sconv *C, int n, strbuf *body) {
    sb_printf(&C->out, "s%d ::= ", n);
    sb_append(&C->out, body->data ? body->data : "", body->len);
    sb_putc(&C->out, '\n');
    sb_free(body);
}

/* Compact JSON text of a value (for const and enum). */
static void json_text(strbuf *sb, const json_value *v) {
    switch (v->type) {
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_BOOL: sb_puts(sb, v->u.b ? "true" : "false"); break;
    case JSON_INT: sb_printf(sb, "%lld", (long long)v->u.i); break;
    case JSON_DOUBLE: {
        char t[32];
        fmt_double_repr(t, v->u.d);
        sb_puts(sb, t);
        break;
    }
    case JSON_STRING: json_write_string(sb, v->u.s, v->n, false); break;
    case JSON_ARRAY:
        sb_putc(sb, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_putc(sb, ',');
            json_text(sb, v->u.items[i]);
        }
        sb_putc(sb, ']');
        break;
    case JSON_OBJECT:
        sb_putc(sb, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_putc(sb, ',');
            json_write_string(sb, v->u.members[i].key, v->u.members[i].key_len, false);
            sb_putc(sb, ':');
            json_text(sb, v->u.members[i].value);
        }
        sb_putc(sb, '}');
        break;
    }
}

static void literal_value(sconv *C, strbuf *body, const json_value *v) {
    strbuf t = STRBUF_INIT;
    json_text(&t, v);
    gbnf_put_literal(body, t.data ? t.data : "", t.len);
    sb_free(&t);
    sb_printf(body, " %s", "space");
    prim(C, P_SPACE);
}

static bool is_annotation(const char *k) {
    static const char *const ann[] = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                                      "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict", NULL};
    for (int i = 0; ann[i]; i++)
        if (!strcmp(k, ann[i])) return true;
    return false;
}

static bool is_supported(const char *k) {
    static const char *const sup[] = {"type", "properties", "required", "additionalProperties", "items", "prefixItems",
                                      "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
                                      "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
                                      "exclusiveMinimum", "exclusiveMaximum", NULL};
    for (int i = 0; sup[i]; i++)
        if (!strcmp(k, sup[i])) return true;
    return false;
}

static int visit(sconv *C, const json_value *s);

static const json_value *resolve_ref(sconv *C, const char *ref) {
    if (!strcmp(ref, "#")) return C->root;
    const char *name = NULL;
    const json_value *defs = NULL;
    if (!strncmp(ref, "#/$defs/", 8)) name = ref + 8, defs = json_get(C->root, "$defs");
    else if (!strncmp(ref, "#/definitions/", 14)) name = ref + 14, defs = json_get(C->root, "definitions");
    if (!name) {
        SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: $ref '%.200s' is not supported (only local #/$defs/NAME and #/definitions/NAME)", ref);
        return NULL;
    }
    /* JSON pointer unescaping (~1 is '/', ~0 is '~'); no nested paths */
    char key[512];
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < sizeof key; p++) {
        if (*p == '/') {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: $ref '%.200s' (nested paths are not supported)", ref);
            return NULL;
        }
        if (*p == '~' && (p[1] == '0' || p[1] == '1')) key[n++] = p[1] == '0' ? '~' : '/', p++;
        else key[n++] = *p;
    }
    key[n] = 0;
    const json_value *t = json_get(defs, key);
    if (!t) SFAIL(C, FORGE_E_INVALID, "JSON schema: $ref '%.200s' points to nothing", ref);
    return t;
}

static int visit_ref(sconv *C, const char *ref) {
    for (int i = 0; i < C->n_refs; i++)
        if (!strcmp(C->refs[i].ref, ref)) return C->refs[i].rule;
    const json_value *t = resolve_ref(C, ref);
    if (!t) return 0;
    sref *r = realloc(C->refs, sizeof *r * (size_t)(C->n_refs + 1));
    if (!r) {
        SFAIL(C, FORGE_E_NOMEM, "out of memory");
        return 0;
    }
    C->refs = r;
    int n = rule_begin(C, NULL);
    C->refs[C->n_refs].ref = strdup(ref);
    C->refs[C->n_refs++].rule = n;
    if (!C->refs[C->n_refs - 1].ref) SFAIL(C, FORGE_E_NOMEM, "out of memory");
    int inner = visit(C, t);
    sb_printf(&C->out, "s%d ::= s%d\n", n, inner);
    return n;
}

/* The rule of a schema when s is a $ref, else visit. */
static const json_value *deref(sconv *C, const json_value *s) {
    for (int i = 0; i < 32 && json_is(s, JSON_OBJECT) && json_get(s, "$ref"); i++) {
        const char *ref = json_string(json_get(s, "$ref"));
        if (!ref) return NULL;
        s = resolve_ref(C, ref);
    }
    return s;
}

static long get_count(sconv *C, const json_value *s, const char *k, long dflt) {
    const json_value *v = json_get(s, k);
    if (!v) return dflt;
    if (!json_is(v, JSON_INT) || v->u.i < 0 || v->u.i > GRAMMAR_MAX_REPEAT) {
        SFAIL(C, FORGE_E_INVALID, "JSON schema: %s must be an integer from 0 to %d", k, GRAMMAR_MAX_REPEAT);
        return dflt;
    }
    return (long)v->u.i;
}

/* ---- strings -------------------------------------------------------------------------- */

static void string_body(sconv *C, const json_value *s, strbuf *body) {
    const json_value *fmt = json_get(s, "format"), *pat = json_get(s, "pattern");
    long mn = get_count(C, s, "minLength", 0), mx = get_count(C, s, "maxLength", -1);
    prim(C, P_SPACE);
    if (fmt) {
        const char *f = json_string(fmt);
        if (!f) {
            SFAIL(C, FORGE_E_INVALID, "JSON schema: format must be a string");
            return;
        }
        const char *rule = !strcmp(f, "date") ? (prim(C, P_DATE), "date")
                           : !strcmp(f, "time") ? (prim(C, P_TIME), "time")
                           : !strcmp(f, "date-time") ? (prim(C, P_DATE), prim(C, P_TIME), "date \"T\" time")
                           : !strcmp(f, "uuid") ? (prim(C, P_UUID), "uuid")
                                                : NULL;
        if (!rule) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: format '%.100s' is not supported (date, time, date-time, uuid are)", f);
            return;
        }
        if (pat || json_get(s, "minLength") || json_get(s, "maxLength")) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: format together with pattern/minLength/maxLength is not supported");
            return;
        }
        sb_printf(body, "\"\\\"\" %s \"\\\"\" space", rule);
        return;
    }
    if (pat) {
        const char *p = json_string(pat);
        if (!p) {
            SFAIL(C, FORGE_E_INVALID, "JSON schema: pattern must be a string");
            return;
        }
        if (json_get(s, "minLength") || json_get(s, "maxLength")) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: pattern together with minLength/maxLength is not supported");
            return;
        }
        sb_puts(body, "\"\\\"\" ");
        forge_status st = regex_to_gbnf_json_expr(p, pat->n, body, C->err);
        if (st && !C->st) C->st = err_prefix(C->err, "JSON schema pattern");
        sb_puts(body, " \"\\\"\" space");
        return;
    }
    prim(C, P_CHAR);
    if (mx >= 0 && mx < mn) {
        SFAIL(C, FORGE_E_INVALID, "JSON schema: maxLength %ld is below minLength %ld", mx, mn);
        return;
    }
    if (mn == 0 && mx < 0) sb_puts(body, "\"\\\"\" char* \"\\\"\" space");
    else if (mx < 0) sb_printf(body, "\"\\\"\" char{%ld,} \"\\\"\" space", mn);
    else sb_printf(body, "\"\\\"\" char{%ld,%ld} \"\\\"\" space", mn, mx);
}

/* ---- objects -------------------------------------------------------------------------- */

typedef struct knode {
    uint32_t c;
    bool end;
    int first_child, next;
} knode;

/* A string that is none of the keys: Each trie node allows a child character followed by
 * its own rest, any other character followed by anything, or (unless a key ends there)
 * the end. Characters are restricted to those needing no escape. */
static void not_keys_expr(const knode *t, int node, strbuf *sb, int depth) {
    sb_puts(sb, "(");
    bool any = false;
    for (int ch = t[node].first_child; ch >= 0; ch = t[ch].next) {
        if (any) sb_puts(sb, " | ");
        char b[4];
        uint32_t c = t[ch].c;
        int n = c < 0x80 ? (b[0] = (char)c, 1)
                : c < 0x800 ? (b[0] = (char)(0xC0 | (c >> 6)), b[1] = (char)(0x80 | (c & 0x3F)), 2)
                : c < 0x10000 ? (b[0] = (char)(0xE0 | (c >> 12)), b[1] = (char)(0x80 | ((c >> 6) & 0x3F)), b[2] = (char)(0x80 | (c & 0x3F)), 3)
                              : (b[0] = (char)(0xF0 | (c >> 18)), b[1] = (char)(0x80 | ((c >> 12) & 0x3F)),
                                 b[2] = (char)(0x80 | ((c >> 6) & 0x3F)), b[3] = (char)(0x80 | (c & 0x3F)), 4);
        gbnf_put_literal(sb, b, (size_t)n);
        sb_putc(sb, ' ');
        not_keys_expr(t, ch, sb, depth + 1);
        any = true;
    }
    if (any) sb_puts(sb, " | ");
    sb_puts(sb, "[^\"\\\\\\x7F\\x00-\\x1F");
    for (int ch = t[node].first_child; ch >= 0; ch = t[ch].next) gbnf_put_class_char(sb, t[ch].c);
    sb_puts(sb, "] keychar*");
    if (!t[node].end) sb_puts(sb, " | \"\"");
    sb_puts(sb, ")");
}

static int utf8_next_cp(const char *s, size_t n, size_t *i, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[*i];
    int k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (*i + (size_t)k > n) k = 1;
    uint32_t v = k == 1 ? c : (uint32_t)(c & (0x7F >> k));
    for (int j = 1; j < k; j++) v = (v << 6) | (u[*i + (size_t)j] & 0x3F);
    *i += (size_t)k;
    *cp = v;
    return k;
}

static void extra_key(sconv *C, const json_value *props, strbuf *sb) {
    size_t total = 1;
    for (size_t i = 0; props && i < props->n; i++) {
        total += props->u.members[i].key_len;
        if (props->u.members[i].key_len > 256) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: property names longer than 256 bytes with additionalProperties");
            return;
        }
    }
    knode *t = malloc(sizeof *t * (total + 1));
    if (!t) {
        SFAIL(C, FORGE_E_NOMEM, "out of memory");
        return;
    }
    int n = 1;
    t[0] = (knode){0, false, -1, -1};
    for (size_t i = 0; props && i < props->n; i++) {
        const json_member *m = &props->u.members[i];
        int cur = 0;
        for (size_t j = 0; j < m->key_len;) {
            uint32_t cp;
            utf8_next_cp(m->key, m->key_len, &j, &cp);
            int ch = t[cur].first_child;
            while (ch >= 0 && t[ch].c != cp) ch = t[ch].next;
            if (ch < 0) {
                ch = n++;
                t[ch] = (knode){cp, false, -1, t[cur].first_child};
                t[cur].first_child = ch;
            }
            cur = ch;
        }
        t[cur].end = true;
    }
    prim(C, P_KEYCHAR);
    sb_puts(sb, "\"\\\"\" ");
    not_keys_expr(t, 0, sb, 0);
    sb_puts(sb, " \"\\\"\" space");
    free(t);
}

typedef struct oitem {
    int rule; /* the key-value rule */
    bool required, star;
} oitem;

static void object_body(sconv *C, const json_value *props, const json_value *req, const json_value *addl, strbuf *body) {
    prim(C, P_SPACE);
    size_t np = props ? props->n : 0;
    oitem *it = calloc(np + 1, sizeof *it);
    if (!it) {
        SFAIL(C, FORGE_E_NOMEM, "out of memory");
        return;
    }
    int n = 0;
    if (req && !json_is(req, JSON_ARRAY)) SFAIL(C, FORGE_E_INVALID, "JSON schema: required must be an array of strings");
    for (size_t i = 0; req && i < req->n && !C->st; i++) {
        const json_value *r = json_at(req, i);
        bool found = false;
        for (size_t k = 0; r && json_is(r, JSON_STRING) && k < np; k++)
            found |= props->u.members[k].key_len == r->n && !memcmp(props->u.members[k].key, r->u.s, r->n);
        if (!json_is(r, JSON_STRING)) SFAIL(C, FORGE_E_INVALID, "JSON schema: required must be an array of strings");
        else if (!found)
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: required property '%.100s' is not in properties", r->u.s);
    }
    for (size_t i = 0; i < np && !C->st; i++) {
        const json_member *m = &props->u.members[i];
        bool rq = false;
        for (size_t k = 0; req && k < req->n; k++) {
            const json_value *r = json_at(req, k);
            rq |= r->n == m->key_len && !memcmp(r->u.s, m->key, m->key_len);
        }
        int vr = visit(C, m->value);
        strbuf kv = STRBUF_INIT;
        strbuf key = STRBUF_INIT;
        json_write_string(&key, m->key, m->key_len, false);
        gbnf_put_literal(&kv, key.data, key.len);
        sb_free(&key);
        sb_printf(&kv, " space \":\" space s%d", vr);
        int r = rule_begin(C, NULL);
        rule_emit(C, r, &kv);
        it[n++] = (oitem){r, rq, false};
    }
    if (addl && !(json_is(addl, JSON_BOOL) && !addl->u.b) && !C->st) {
        strbuf kv = STRBUF_INIT;
        extra_key(C, props, &kv);
        int vr = json_is(addl, JSON_BOOL) ? -1 : visit(C, addl);
        if (vr < 0) sb_printf(&kv, " \":\" space %s", prim(C, P_VALUE));
        else sb_printf(&kv, " \":\" space s%d", vr);
        int r = rule_begin(C, NULL);
        rule_emit(C, r, &kv);
        it[n++] = (oitem){r, false, true};
    }
    sb_puts(body, "\"{\" space ");
    int first_req = -1;
    for (int i = 0; i < n && first_req < 0; i++)
        if (it[i].required) first_req = i;
    if (first_req >= 0) {
        for (int i = 0; i < n; i++) {
            if (i < first_req) sb_printf(body, "(s%d \",\" space)%s ", it[i].rule, it[i].star ? "*" : "?");
            else if (i == first_req) sb_printf(body, "s%d ", it[i].rule);
            else if (it[i].required) sb_printf(body, "\",\" space s%d ", it[i].rule);
            else sb_printf(body, "(\",\" space s%d)%s ", it[i].rule, it[i].star ? "*" : "?");
        }
    } else if (n > 0) {
        /* none required: tail_i ::= ("," space kv_i)? tail_{i+1}; the first present item
         * chooses the alternative */
        int *tails = malloc(sizeof(int) * (size_t)(n + 1));
        if (!tails) {
            SFAIL(C, FORGE_E_NOMEM, "out of memory");
            free(it);
            return;
        }
        tails[n] = -1;
        for (int i = n - 1; i >= 0 && !C->st; i--) {
            strbuf tb = STRBUF_INIT;
            sb_printf(&tb, "(\",\" space s%d)%s", it[i].rule, it[i].star ? "*" : "?");
            if (tails[i + 1] >= 0) sb_printf(&tb, " s%d", tails[i + 1]);
            tails[i] = rule_begin(C, NULL);
            rule_emit(C, tails[i], &tb);
        }
        sb_puts(body, "(");
        for (int i = 0; i < n; i++) {
            if (i) sb_puts(body, " | ");
            if (it[i].star) sb_printf(body, "s%d (\",\" space s%d)*", it[i].rule, it[i].rule);
            else sb_printf(body, "s%d", it[i].rule);
            if (i + 1 < n) sb_printf(body, " s%d", tails[i + 1]);
        }
        sb_puts(body, ")? ");
        free(tails);
    }
    sb_puts(body, "\"}\" space");
    free(it);
}

/* allOf of object schemas: properties and required merged in order */
static void all_of(sconv *C, const json_value *list, strbuf *body) {
    if (!json_is(list, JSON_ARRAY) || list->n == 0) {
        SFAIL(C, FORGE_E_INVALID, "JSON schema: allOf must be a non-empty array");
        return;
    }
    if (list->n == 1) {
        sb_printf(body, "s%d", visit(C, json_at(list, 0)));
        return;
    }
    /* build a merged schema document in text, then visit it */
    strbuf props = STRBUF_INIT, req = STRBUF_INIT;
    const json_value *addl = NULL;
    int np = 0, nr = 0;
    for (size_t i = 0; i < list->n && !C->st; i++) {
        const json_value *s = deref(C, json_at(list, i));
        if (!json_is(s, JSON_OBJECT)) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: allOf is supported only for object schemas");
            break;
        }
        for (size_t k = 0; k < s->n; k++) {
            const char *key = s->u.members[k].key;
            if (is_annotation(key)) continue;
            if (!strcmp(key, "type") && json_is(s->u.members[k].value, JSON_STRING) &&
                !strcmp(s->u.members[k].value->u.s, "object"))
                continue;
            if (strcmp(key, "properties") && strcmp(key, "required") && strcmp(key, "additionalProperties")) {
                SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: allOf is supported only for object schemas ('%.60s' inside)", key);
                break;
            }
        }
        const json_value *p = json_get(s, "properties"), *r = json_get(s, "required"), *a = json_get(s, "additionalProperties");
        for (size_t k = 0; p && k < p->n; k++) {
            if (np++) sb_putc(&props, ',');
            json_write_string(&props, p->u.members[k].key, p->u.members[k].key_len, false);
            sb_putc(&props, ':');
            json_text(&props, p->u.members[k].value);
        }
        for (size_t k = 0; r && k < r->n; k++) {
            if (nr++) sb_putc(&req, ',');
            json_text(&req, r->u.items[k]);
        }
        if (a) addl = a;
    }
    if (!C->st) {
        /* $refs inside the merged properties still resolve against C->root */
        strbuf doc = STRBUF_INIT;
        sb_printf(&doc, "{\"type\":\"object\",\"properties\":{%s},\"required\":[%s]", sb_str(&props), sb_str(&req));
        if (addl) {
            sb_puts(&doc, ",\"additionalProperties\":");
            json_text(&doc, addl);
        }
        sb_putc(&doc, '}');
        json_doc *d = json_parse(doc.data, doc.len, C->err);
        if (!d) SFAIL(C, FORGE_E_INTERNAL, "JSON schema: allOf merge failed");
        else {
            sb_printf(body, "s%d", visit(C, json_root(d)));
            json_free(d);
        }
        sb_free(&doc);
    }
    sb_free(&props);
    sb_free(&req);
}

/* ---- arrays --------------------------------------------------------------------------- */

static void array_body(sconv *C, const json_value *s, strbuf *body) {
    prim(C, P_SPACE);
    const json_value *items = json_get(s, "items"), *prefix = json_get(s, "prefixItems");
    long mn = get_count(C, s, "minItems", 0), mx = get_count(C, s, "maxItems", -1);
    if (mx >= 0 && mx < mn) {
        SFAIL(C, FORGE_E_INVALID, "JSON schema: maxItems %ld is below minItems %ld", mx, mn);
        return;
    }
    bool no_more = json_is(items, JSON_BOOL) && !items->u.b;
    int ir = -1;
    if (items && !json_is(items, JSON_BOOL)) ir = visit(C, items);
    char item[32];
    if (ir >= 0) snprintf(item, sizeof item, "s%d", ir);
    else snprintf(item, sizeof item, "%s", prim(C, P_VALUE));
    sb_puts(body, "\"[\" space ");
    if (prefix) {
        if (!json_is(prefix, JSON_ARRAY)) {
            SFAIL(C, FORGE_E_INVALID, "JSON schema: prefixItems must be an array");
            return;
        }
        if (json_get(s, "minItems") || json_get(s, "maxItems")) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: prefixItems together with minItems/maxItems is not supported");
            return;
        }
        for (size_t i = 0; i < prefix->n && !C->st; i++) sb_printf(body, "%ss%d ", i ? "\",\" space " : "", visit(C, json_at(prefix, i)));
        if (!no_more && items) sb_printf(body, "(\",\" space %s)* ", item);
        sb_puts(body, "\"]\" space");
        return;
    }
    if (no_more) mx = 0;
    if (mx == 0) {
        if (mn > 0) SFAIL(C, FORGE_E_INVALID, "JSON schema: items false with minItems %ld", mn);
    } else {
        if (mn == 0) sb_puts(body, "(");
        sb_printf(body, "%s ", item);
        long lo = mn > 0 ? mn - 1 : 0;
        if (mx < 0) sb_printf(body, "(\",\" space %s){%ld,}", item, lo);
        else sb_printf(body, "(\",\" space %s){%ld,%ld}", item, lo, mx - 1);
        if (mn == 0) sb_puts(body, ")?");
        sb_putc(body, ' ');
    }
    sb_puts(body, "\"]\" space");
}

/* ---- the dispatcher ------------------------------------------------------------------- */

/* ---- integer bounds ------------------------------------------------------------------------
 * minimum / maximum / exclusiveMinimum / exclusiveMaximum on "type": "integer" become a
 * grammar of exactly the decimal integers in the range (no leading zeros, as the integer
 * primitive writes them): the range is cut by digit count, and each same-length range by its
 * common prefix into digit classes (the classic range-to-regex construction). Bounds on other
 * types (numbers with fractions above all) are refused by name: a float range has no finite
 * grammar of this kind. Magnitudes are bounded as the integer primitive is (16 digits). */
#define INT_BOUND_MAX 999999999999999LL /* 15 nines: within the primitive's 16 digits */

static void digits_class(strbuf *o, char lo, char hi) {
    if (lo == hi) sb_printf(o, "[%c]", lo);
    else sb_printf(o, "[%c-%c]", lo, hi);
}

/* Alternatives matching every digit string of length n from x to y (same length n, x <= y). */
static void same_len(strbuf *o, const char *x, const char *y, int n, bool *first) {
    if (n == 0) return;
    if (n == 1 || (x[0] == y[0] && n >= 1)) {
        if (n == 1) {
            if (!*first) sb_puts(o, " | ");
            *first = false;
            digits_class(o, x[0], y[0]);
            return;
        }
    }
    /* all of [x0-y0] followed by anything: x is d000.., y is e999.. */
    bool x_low = true, y_high = true;
    for (int i = 1; i < n; i++) x_low = x_low && x[i] == '0', y_high = y_high && y[i] == '9';
    if (x_low && y_high) {
        if (!*first) sb_puts(o, " | ");
        *first = false;
        digits_class(o, x[0], y[0]);
        sb_printf(o, " [0-9]{%d}", n - 1);
        return;
    }
    if (x[0] == y[0]) {
        if (!*first) sb_puts(o, " | ");
        *first = false;
        sb_printf(o, "[%c] (", x[0]);
        bool f = true;
        same_len(o, x + 1, y + 1, n - 1, &f);
        sb_putc(o, ')');
        return;
    }
    char nines[20], zeros[20];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    /* x0 then x[1..] up to 99..9 */
    if (!*first) sb_puts(o, " | ");
    *first = false;
    sb_printf(o, "[%c] (", x[0]);
    bool f = true;
    same_len(o, x + 1, nines, n - 1, &f);
    sb_putc(o, ')');
    if (x[0] + 1 <= y[0] - 1) {
        sb_puts(o, " | ");
        digits_class(o, (char)(x[0] + 1), (char)(y[0] - 1));
        sb_printf(o, " [0-9]{%d}", n - 1);
    }
    sb_printf(o, " | [%c] (", y[0]);
    f = true;
    same_len(o, zeros, y + 1, n - 1, &f);
    sb_putc(o, ')');
}

static int ndigits(long long v) {
    int n = 1;
    while (v >= 10) v /= 10, n++;
    return n;
}

/* The non-negative integers a..b (b < 0: no upper bound), as alternatives. */
static void uint_range(strbuf *o, long long a, long long b, bool *first) {
    int la = ndigits(a), lb = b < 0 ? 16 : ndigits(b);
    for (int L = la; L <= lb; L++) {
        long long p10 = 1;
        for (int i = 1; i < L; i++) p10 *= 10;
        long long lo = L == la ? a : p10, hi = (b >= 0 && L == lb) ? b : p10 * 10 - 1;
        if (L == 1 && lo == 0 && hi >= 0) { /* 0 itself, then 1..hi */
            if (!*first) sb_puts(o, " | ");
            *first = false;
            sb_puts(o, "[0]");
            if (hi == 0) continue;
            lo = 1;
        }
        char x[20], y[20];
        for (int i = L - 1; i >= 0; i--, lo /= 10, hi /= 10) x[i] = (char)('0' + lo % 10), y[i] = (char)('0' + hi % 10);
        same_len(o, x, y, L, first);
    }
}

static bool has_bounds(const json_value *s) {
    return json_get(s, "minimum") || json_get(s, "maximum") || json_get(s, "exclusiveMinimum") ||
           json_get(s, "exclusiveMaximum");
}

static void int_range_body(sconv *C, const json_value *s, strbuf *body) {
    static const char *const keys[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    bool has_lo = false, has_hi = false;
    long long lo = -INT_BOUND_MAX, hi = INT_BOUND_MAX;
    for (int k = 0; k < 4; k++) {
        const json_value *v = json_get(s, keys[k]);
        if (!v) continue;
        if (!json_is_number(v)) {
            SFAIL(C, FORGE_E_INVALID, "JSON schema: %s must be a number", keys[k]);
            return;
        }
        double d = json_number(v);
        if (!(d >= -(double)INT_BOUND_MAX && d <= (double)INT_BOUND_MAX)) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: %s %g is beyond the integers this grammar writes (|n| <= %lld)",
                  keys[k], d, INT_BOUND_MAX);
            return;
        }
        long long b = k == 0 ? (long long)ceil(d) : k == 1 ? (long long)floor(d) + 1
                    : k == 2 ? (long long)floor(d) : (long long)ceil(d) - 1;
        if (k < 2) {
            if (!has_lo || b > lo) lo = b;
            has_lo = true;
        } else {
            if (!has_hi || b < hi) hi = b;
            has_hi = true;
        }
    }
    if (lo > hi) {
        SFAIL(C, FORGE_E_INVALID, "JSON schema: no integer lies within the bounds (%lld > %lld)", lo, hi);
        return;
    }
    bool first = true;
    sb_puts(body, "(");
    if (hi >= 0) uint_range(body, lo > 0 ? lo : 0, has_hi ? hi : -1, &first);
    if (lo < 0) {
        if (!first) sb_puts(body, " | ");
        first = true;
        sb_puts(body, "\"-\" (");
        uint_range(body, hi < 0 ? -hi : 1, has_lo ? -lo : -1, &first);
        sb_puts(body, ")");
    }
    prim(C, P_SPACE);
    sb_puts(body, ") space");
}

static void typed_body(sconv *C, const json_value *s, const char *type, strbuf *body) {
    if (!strcmp(type, "string")) string_body(C, s, body);
    else if (!strcmp(type, "number")) sb_puts(body, prim(C, P_NUMBER));
    else if (!strcmp(type, "integer") && has_bounds(s)) int_range_body(C, s, body);
    else if (!strcmp(type, "integer")) sb_puts(body, prim(C, P_INTEGER));
    else if (!strcmp(type, "boolean")) sb_puts(body, prim(C, P_BOOL));
    else if (!strcmp(type, "null")) sb_puts(body, prim(C, P_NULL));
    else if (!strcmp(type, "array")) array_body(C, s, body);
    else if (!strcmp(type, "object")) {
        const json_value *props = json_get(s, "properties"), *addl = json_get(s, "additionalProperties");
        if (props && !json_is(props, JSON_OBJECT)) SFAIL(C, FORGE_E_INVALID, "JSON schema: properties must be an object");
        else if (!props && !addl) {
            prim(C, P_VALUE);
            sb_puts(body, "object");
        } else object_body(C, props, json_get(s, "required"), addl, body);
    } else SFAIL(C, FORGE_E_INVALID, "JSON schema: unknown type '%.60s'", type);
}

static const char *infer_type(const json_value *s) {
    if (json_get(s, "properties") || json_get(s, "additionalProperties") || json_get(s, "required")) return "object";
    if (json_get(s, "items") || json_get(s, "prefixItems") || json_get(s, "minItems") || json_get(s, "maxItems"))
        return "array";
    if (json_get(s, "minLength") || json_get(s, "maxLength") || json_get(s, "pattern") || json_get(s, "format"))
        return "string";
    return NULL;
}

static int visit(sconv *C, const json_value *s) {
    if (C->st) return 0;
    if (json_is(s, JSON_BOOL)) {
        if (!s->u.b) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: the schema false allows nothing");
            return 0;
        }
        int n = rule_begin(C, NULL);
        strbuf b = STRBUF_INIT;
        sb_puts(&b, prim(C, P_VALUE));
        rule_emit(C, n, &b);
        return n;
    }
    if (!json_is(s, JSON_OBJECT)) {
        SFAIL(C, FORGE_E_INVALID, "JSON schema: a schema must be an object or a boolean, got %s", s ? json_type_name(s->type) : "nothing");
        return 0;
    }
    if (++C->depth > SC_MAX_DEPTH) {
        SFAIL(C, FORGE_E_INVALID, "JSON schema: nested deeper than %d", SC_MAX_DEPTH);
        return 0;
    }
    for (size_t i = 0; i < s->n; i++) {
        const char *k = s->u.members[i].key;
        if (!is_annotation(k) && !is_supported(k)) {
            SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: unsupported keyword '%.100s'", k);
            C->depth--;
            return 0;
        }
    }
    if (has_bounds(s) && !(json_is(json_get(s, "type"), JSON_STRING) && !strcmp(json_get(s, "type")->u.s, "integer"))) {
        SFAIL(C, FORGE_E_UNSUPPORTED, "JSON schema: unsupported keyword '%s' (bounds are supported on \"type\": \"integer\" only)",
              json_get(s, "minimum") ? "minimum" : json_get(s, "maximum") ? "maximum"
              : json_get(s, "exclusiveMinimum") ? "exclusiveMinimum" : "exclusiveMaximum");
        C->depth--;
        return 0;
    }
    strbuf body = STRBUF_INIT;
    const json_value *v;
    int result = -1;
    if ((v = json_get(s, "$ref"))) {
        if (!json_is(v, JSON_STRING)) SFAIL(C, FORGE_E_INVALID, "JSON schema: $ref must be a string");
        else result = visit_ref(C, v->u.s);
    } else if ((v = json_get(s, "const"))) literal_value(C, &body, v);
    else if ((v = json_get(s, "enum"))) {
        if (!json_is(v, JSON_ARRAY) || v->n == 0) SFAIL(C, FORGE_E_INVALID, "JSON schema: enum must be a non-empty array");
        sb_puts(&body, "(");
        for (size_t i = 0; i < v->n && !C->st; i++) {
            if (i) sb_puts(&body, " | ");
            literal_value(C, &body, json_at(v, i));
        }
        sb_puts(&body, ")");
    } else if ((v = json_get(s, "anyOf")) || (v = json_get(s, "oneOf"))) {
        if (!json_is(v, JSON_ARRAY) || v->n == 0) SFAIL(C, FORGE_E_INVALID, "JSON schema: anyOf/oneOf must be a non-empty array");
        for (size_t i = 0; i < v->n && !C->st; i++) sb_printf(&body, "%ss%d", i ? " | " : "", visit(C, json_at(v, i)));
    } else if ((v = json_get(s, "allOf"))) all_of(C, v, &body);
    else if ((v = json_get(s, "type"))) {
        if (json_is(v, JSON_STRING)) typed_body(C, s, v->u.s, &body);
        else if (json_is(v, JSON_ARRAY) && v->n > 0) {
            for (size_t i = 0; i < v->n && !C->st; i++) {
                const char *t = json_string(json_at(v, i));
                if (!t) {
                    SFAIL(C, FORGE_E_INVALID, "JSON schema: type must be a string or an array of strings");
                    break;
                }
                sb_puts(&body, i ? " | (" : "(");
                typed_body(C, s, t, &body);
                sb_puts(&body, ")");
            }
        } else SFAIL(C, FORGE_E_INVALID, "JSON schema: type must be a string or an array of strings");
    } else {
        const char *t = infer_type(s);
        if (t) typed_body(C, s, t, &body);
        else sb_puts(&body, prim(C, P_VALUE));
    }
    C->depth--;
    if (result >= 0) {
        sb_free(&body);
        return result;
    }
    int n = rule_begin(C, NULL);
    rule_emit(C, n, &body);
    return n;
}

forge_status schema_to_gbnf(const char *schema, size_t len, strbuf *out, forge_error *err) {
    if (!schema && len) return err_set(err, FORGE_E_INVALID, "JSON schema: NULL");
    if (len > GRAMMAR_MAX_TEXT) return err_set(err, FORGE_E_INVALID, "JSON schema: larger than %d bytes", GRAMMAR_MAX_TEXT);
    json_doc *d = json_parse(schema, len, err);
    if (!d) return err_prefix(err, "JSON schema");
    sconv C = {.root = json_root(d), .err = err};
    int r = visit(&C, C.root);
    if (!C.st) sb_printf(&C.out, "root ::= s%d\n", r);
    if (!C.st && sb_failed(&C.out)) C.st = err_set(err, FORGE_E_NOMEM, "out of memory");
    if (!C.st) sb_append(out, C.out.data, C.out.len);
    sb_free(&C.out);
    for (int i = 0; i < C.n_refs; i++) free(C.refs[i].ref);
    free(C.refs);
    json_free(d);
    return C.st;
}

void json_object_gbnf(strbuf *out) {
    sconv C = {0};
    prim(&C, P_VALUE);
    sb_puts(&C.out, "root ::= object\n");
    sb_append(out, C.out.data, C.out.len);
    sb_free(&C.out);
}
