/* toolcall.c: tool-call parsers of the hermes, llama3_json and mistral formats (toolcall.h). */
#include <string.h>

#include "chat/toolcall.h"

enum { ST_TEXT, ST_IN_CALL, ST_HOLD_ALL, ST_START, ST_PASS };

static const char HERMES_OPEN[] = "<tool_call>", HERMES_CLOSE[] = "</tool_call>";
static const char MISTRAL_MARK[] = "[TOOL_CALLS]", MISTRAL_ARGS[] = "[ARGS]";
static const char PYTHON_TAG[] = "<|python_tag|>";

/* ---- families ------------------------------------------------------------------------- */

static const char *const k_names[] = {"none", "hermes", "llama3_json", "mistral"};

const char *tc_family_name(tc_family f) {
    return (unsigned)f < sizeof k_names / sizeof k_names[0] ? k_names[f] : NULL;
}

bool tc_family_from_name(const char *name, tc_family *out) {
    for (size_t i = 0; name && i < sizeof k_names / sizeof k_names[0]; i++)
        if (!strcmp(name, k_names[i])) {
            *out = (tc_family)i;
            return true;
        }
    return false;
}

tc_family tc_detect(const char *src) {
    if (!src) return TC_FAMILY_NONE;
    if (strstr(src, MISTRAL_MARK)) return TC_FAMILY_MISTRAL;
    if (strstr(src, HERMES_OPEN)) return TC_FAMILY_HERMES;
    if (strstr(src, "<|start_header_id|>") && (strstr(src, PYTHON_TAG) || strstr(src, "parameters")))
        return TC_FAMILY_LLAMA3_JSON;
    return TC_FAMILY_NONE;
}

/* ---- helpers -------------------------------------------------------------------------- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

/* The longest suffix of s[0..n) that is a proper prefix of the marker m. */
static size_t partial_suffix(const char *s, size_t n, const char *m) {
    size_t ml = strlen(m);
    for (size_t k = ml - 1 < n ? ml - 1 : n; k > 0; k--)
        if (!memcmp(s + n - k, m, k)) return k;
    return 0;
}

static const char *find(const char *s, size_t n, const char *m) { return memmem(s, n, m, strlen(m)); }

/* The length of the JSON object or array that starts at s[0] (strings and escapes
 * respected), or 0 when s does not start one or it does not end within n bytes. Only the
 * extent: the caller parses it. */
static size_t json_extent(const char *s, size_t n) {
    if (!n || (s[0] != '{' && s[0] != '[')) return 0;
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > 512) return 0;
        } else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
    }
    return 0;
}

/* The content path: blanks next to a call are dropped, so blanks at the end are held until
 * something other than a call follows them. */
static void out_content(tc_parser *p, const char *s, size_t n, chat_emit_fn emit, void *user) {
    size_t i = 0;
    if (p->after_call) {
        i = skip_ws(s, 0, n);
        if (i == n) return;
        p->after_call = false;
    }
    size_t last = n;
    while (last > i && is_ws(s[last - 1])) last--;
    if (last == i) {
        sb_append(&p->ws, s + i, n - i);
        return;
    }
    if (p->ws.len) emit(user, CHAT_EV_CONTENT, p->ws.data, p->ws.len, NULL, 0);
    sb_reset(&p->ws);
    emit(user, CHAT_EV_CONTENT, s + i, last - i, NULL, 0);
    sb_append(&p->ws, s + last, n - last);
}

static void out_call(tc_parser *p, const char *name, size_t nl, const char *args, size_t al, chat_emit_fn emit,
                     void *user) {
    sb_reset(&p->ws);
    p->after_call = true;
    if (p->n_calls && !p->parallel) return;
    p->n_calls++;
    emit(user, CHAT_EV_CALL, name, nl, args, al);
}

/* json_parse, noting an allocation failure (a call that could not be parsed for want of
 * memory must not pass silently as content). */
static json_doc *parse_json(tc_parser *p, const char *s, size_t n) {
    forge_error err;
    json_doc *d = json_parse(s, n, &err);
    if (!d && err.code == FORGE_E_NOMEM) p->oom = true;
    return d;
}

/* A call object {"name": N, "arguments"|"parameters": {...}} of json text s[0..n): true with
 * *name and the arguments' JSON in p->args. Arguments given as a string holding a JSON
 * object are taken too (some fine-tunes write them so); absent arguments are {}. */
typedef struct call_obj {
    const char *name;
    size_t name_len;
} call_obj;

static bool call_from_value(tc_parser *p, const json_value *v, call_obj *c) {
    if (!json_is(v, JSON_OBJECT)) return false;
    const json_value *name = json_get(v, "name"), *args = json_get(v, "arguments");
    if (!args) args = json_get(v, "parameters");
    if (!json_is(name, JSON_STRING) || name->n == 0 || strlen(name->u.s) != name->n) return false;
    sb_reset(&p->args);
    if (!args) {
        sb_puts(&p->args, "{}");
    } else if (args->type == JSON_OBJECT) {
        json_write_value(&p->args, args);
    } else if (args->type == JSON_STRING) {
        json_doc *d = parse_json(p, args->u.s, args->n);
        bool ok = d && json_root(d)->type == JSON_OBJECT;
        if (ok) json_write_value(&p->args, json_root(d));
        json_free(d);
        if (!ok) return false;
    } else {
        return false;
    }
    c->name = name->u.s;
    c->name_len = name->n;
    return true;
}

/* ---- hermes --------------------------------------------------------------------------- */

/* A <tool_call> body (without the tags): emitted as a call, or false. */
static bool hermes_call(tc_parser *p, const char *body, size_t n, chat_emit_fn emit, void *user) {
    size_t a = skip_ws(body, 0, n), b = n;
    while (b > a && is_ws(body[b - 1])) b--;
    if (a == b || json_extent(body + a, b - a) != b - a) return false;
    json_doc *d = parse_json(p, body + a, b - a);
    if (!d) return false;
    call_obj c;
    bool ok = call_from_value(p, json_root(d), &c);
    if (ok) out_call(p, c.name, c.name_len, p->args.data, p->args.len, emit, user);
    json_free(d);
    return ok;
}

/* The raw markup of a call that did not parse goes out as content. */
static void hermes_raw(tc_parser *p, const char *body, size_t n, bool closed, chat_emit_fn emit, void *user) {
    strbuf raw = STRBUF_INIT;
    sb_puts(&raw, HERMES_OPEN);
    sb_append(&raw, body, n);
    if (closed) sb_puts(&raw, HERMES_CLOSE);
    if (sb_failed(&raw)) p->pend.failed = true;
    else out_content(p, raw.data, raw.len, emit, user);
    sb_free(&raw);
}

static void consume(strbuf *sb, size_t k) {
    memmove(sb->data, sb->data + k, sb->len - k);
    sb->len -= k;
    sb->data[sb->len] = 0;
}

static void hermes_feed(tc_parser *p, chat_emit_fn emit, void *user) {
    for (;;) {
        char *s = p->pend.data;
        size_t n = p->pend.len;
        if (!n) return;
        if (p->state == ST_TEXT) {
            const char *m = find(s, n, HERMES_OPEN);
            if (m) {
                size_t at = (size_t)(m - s);
                if (at) out_content(p, s, at, emit, user);
                consume(&p->pend, at + sizeof HERMES_OPEN - 1);
                p->state = ST_IN_CALL;
                continue;
            }
            size_t keep = partial_suffix(s, n, HERMES_OPEN);
            if (n - keep) out_content(p, s, n - keep, emit, user);
            consume(&p->pend, n - keep);
            return;
        }
        const char *m = find(s, n, HERMES_CLOSE);
        if (!m) return;
        size_t at = (size_t)(m - s);
        if (!hermes_call(p, s, at, emit, user)) hermes_raw(p, s, at, true, emit, user);
        consume(&p->pend, at + sizeof HERMES_CLOSE - 1);
        p->state = ST_TEXT;
    }
}

static void hermes_finish(tc_parser *p, chat_emit_fn emit, void *user) {
    if (p->state == ST_TEXT) {
        if (p->pend.len) out_content(p, p->pend.data, p->pend.len, emit, user);
    } else if (!hermes_call(p, p->pend.data ? p->pend.data : "", p->pend.len, emit, user)) {
        /* an unclosed call (the answer hit its length or a stop string): kept when it parses */
        hermes_raw(p, p->pend.data ? p->pend.data : "", p->pend.len, false, emit, user);
    }
}

/* ---- llama3_json ---------------------------------------------------------------------- */

/* The held answer: [<|python_tag|>] {call} [; {call}]... with blanks anywhere between. All
 * of it must be calls, else it is all content. Two passes: check, then emit. */
static bool llama_calls(tc_parser *p, const char *s, size_t n, bool do_emit, chat_emit_fn emit, void *user) {
    size_t i = skip_ws(s, 0, n), count = 0;
    if (n - i >= sizeof PYTHON_TAG - 1 && !memcmp(s + i, PYTHON_TAG, sizeof PYTHON_TAG - 1))
        i = skip_ws(s, i + sizeof PYTHON_TAG - 1, n);
    while (i < n) {
        size_t len = json_extent(s + i, n - i);
        if (!len || s[i] != '{') return false;
        json_doc *d = parse_json(p, s + i, len);
        call_obj c;
        bool ok = d && call_from_value(p, json_root(d), &c);
        if (ok && do_emit) out_call(p, c.name, c.name_len, p->args.data, p->args.len, emit, user);
        json_free(d);
        if (!ok) return false;
        count++;
        i = skip_ws(s, i + len, n);
        if (i < n && s[i] == ';') i = skip_ws(s, i + 1, n);
    }
    return count > 0;
}

static void llama_feed(tc_parser *p, chat_emit_fn emit, void *user) {
    if (p->state == ST_PASS) {
        if (p->pend.len) out_content(p, p->pend.data, p->pend.len, emit, user);
        sb_reset(&p->pend);
        return;
    }
    if (p->state != ST_START) return; /* ST_HOLD_ALL: everything is held */
    const char *s = p->pend.data;
    size_t n = p->pend.len, i = skip_ws(s, 0, n);
    if (i == n) return;
    size_t rest = n - i, tl = sizeof PYTHON_TAG - 1;
    if (s[i] == '{' || (rest >= tl && !memcmp(s + i, PYTHON_TAG, tl))) {
        p->state = ST_HOLD_ALL;
        return;
    }
    if (rest < tl && !memcmp(s + i, PYTHON_TAG, rest)) return; /* could still be the tag */
    p->state = ST_PASS;
    llama_feed(p, emit, user);
}

static void llama_finish(tc_parser *p, chat_emit_fn emit, void *user) {
    const char *s = p->pend.data ? p->pend.data : "";
    size_t n = p->pend.len;
    if (p->state == ST_HOLD_ALL && llama_calls(p, s, n, false, NULL, NULL)) llama_calls(p, s, n, true, emit, user);
    else if (n) out_content(p, s, n, emit, user);
}

/* ---- mistral -------------------------------------------------------------------------- */

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

/* After the marker: a JSON array of call objects, or NAME[ARGS]{...} repeated (each maybe
 * after another marker). Two passes as for llama. */
static bool mistral_calls(tc_parser *p, const char *s, size_t n, bool do_emit, chat_emit_fn emit, void *user) {
    size_t i = skip_ws(s, 0, n), count = 0, ml = sizeof MISTRAL_MARK - 1, al = sizeof MISTRAL_ARGS - 1;
    if (i < n && s[i] == '[') {
        size_t len = json_extent(s + i, n - i);
        if (!len || skip_ws(s, i + len, n) != n) return false;
        json_doc *d = parse_json(p, s + i, len);
        const json_value *arr = d ? json_root(d) : NULL;
        bool ok = json_is(arr, JSON_ARRAY) && arr->n > 0;
        for (size_t k = 0; ok && k < arr->n; k++) {
            call_obj c;
            ok = call_from_value(p, arr->u.items[k], &c);
            if (ok && do_emit) out_call(p, c.name, c.name_len, p->args.data, p->args.len, emit, user);
        }
        json_free(d);
        return ok;
    }
    while (i < n) {
        size_t a = i;
        while (i < n && is_name_char(s[i])) i++;
        if (i == a || n - i < al || memcmp(s + i, MISTRAL_ARGS, al)) return false;
        size_t name_end = i;
        i = skip_ws(s, i + al, n);
        size_t len = json_extent(s + i, n - i);
        if (!len || s[i] != '{') return false;
        json_doc *d = parse_json(p, s + i, len);
        bool ok = json_is(d ? json_root(d) : NULL, JSON_OBJECT);
        if (ok && do_emit) {
            sb_reset(&p->args);
            json_write_value(&p->args, json_root(d));
            out_call(p, s + a, name_end - a, p->args.data, p->args.len, emit, user);
        }
        json_free(d);
        if (!ok) return false;
        count++;
        i = skip_ws(s, i + len, n);
        if (n - i >= ml && !memcmp(s + i, MISTRAL_MARK, ml)) i = skip_ws(s, i + ml, n);
    }
    return count > 0;
}

static void mistral_feed(tc_parser *p, chat_emit_fn emit, void *user) {
    if (p->state != ST_TEXT) return;
    char *s = p->pend.data;
    size_t n = p->pend.len;
    const char *m = find(s, n, MISTRAL_MARK);
    if (m) {
        size_t at = (size_t)(m - s);
        if (at) out_content(p, s, at, emit, user);
        consume(&p->pend, at + sizeof MISTRAL_MARK - 1);
        p->state = ST_HOLD_ALL;
        return;
    }
    size_t keep = partial_suffix(s, n, MISTRAL_MARK);
    if (n - keep) out_content(p, s, n - keep, emit, user);
    consume(&p->pend, n - keep);
}

static void mistral_finish(tc_parser *p, chat_emit_fn emit, void *user) {
    const char *s = p->pend.data ? p->pend.data : "";
    size_t n = p->pend.len;
    if (p->state == ST_TEXT) {
        if (n) out_content(p, s, n, emit, user);
        return;
    }
    if (mistral_calls(p, s, n, false, NULL, NULL)) {
        mistral_calls(p, s, n, true, emit, user);
        return;
    }
    strbuf raw = STRBUF_INIT;
    sb_puts(&raw, MISTRAL_MARK);
    sb_append(&raw, s, n);
    if (sb_failed(&raw)) p->pend.failed = true;
    else out_content(p, raw.data, raw.len, emit, user);
    sb_free(&raw);
}

/* ---- the parser ----------------------------------------------------------------------- */

void tc_init(tc_parser *p, tc_family fam, bool parallel) {
    memset(p, 0, sizeof *p);
    p->fam = fam;
    p->parallel = parallel;
    p->state = fam == TC_FAMILY_LLAMA3_JSON ? ST_START : ST_TEXT;
}

void tc_feed(tc_parser *p, const char *text, size_t len, chat_emit_fn emit, void *user) {
    if (!len) return;
    if (p->fam == TC_FAMILY_NONE) {
        out_content(p, text, len, emit, user);
        return;
    }
    sb_append(&p->pend, text, len);
    if (sb_failed(&p->pend)) return;
    switch (p->fam) {
    case TC_FAMILY_HERMES: hermes_feed(p, emit, user); break;
    case TC_FAMILY_LLAMA3_JSON: llama_feed(p, emit, user); break;
    case TC_FAMILY_MISTRAL: mistral_feed(p, emit, user); break;
    default: break;
    }
}

void tc_finish(tc_parser *p, chat_emit_fn emit, void *user) {
    switch (p->fam) {
    case TC_FAMILY_HERMES: hermes_finish(p, emit, user); break;
    case TC_FAMILY_LLAMA3_JSON: llama_finish(p, emit, user); break;
    case TC_FAMILY_MISTRAL: mistral_finish(p, emit, user); break;
    default: break;
    }
    if (p->ws.len && !p->after_call) emit(user, CHAT_EV_CONTENT, p->ws.data, p->ws.len, NULL, 0);
    sb_reset(&p->ws);
    sb_reset(&p->pend);
    p->state = p->fam == TC_FAMILY_LLAMA3_JSON ? ST_START : ST_TEXT;
    p->after_call = false;
}

bool tc_failed(const tc_parser *p) { return p->oom || p->pend.failed || p->ws.failed || p->args.failed; }

void tc_free(tc_parser *p) {
    sb_free(&p->pend);
    sb_free(&p->ws);
    sb_free(&p->args);
}
