/* Chat templates against Python Jinja2 with HF's settings: every (fixture template,
 * conversation) pair and several hundred small templates, byte for byte (or the same error
 * class and message). The goldens come from scripts/template/make_goldens.py. */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "forge.h"
#include "template/template.h"
#include "test.h"

#define FIX "tests/fixtures/templates/"

static json_doc *g_chat, *g_expr;
static const json_value *g_case;
static const json_value *g_context;

static void show_diff(const char *got, const char *want) {
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    printf("    first difference at byte %zu\n    got:  \"", i);
    for (size_t k = from; got[k] && k < i + 60; k++) printf(got[k] == '\n' ? "\\n" : "%c", got[k]);
    printf("\"\n    want: \"");
    for (size_t k = from; want[k] && k < i + 60; k++) printf(want[k] == '\n' ? "\\n" : "%c", want[k]);
    printf("\"\n");
}

/* Compares a render (ok, out, te) with the golden record (output or error + message). */
static void check_against(const json_value *rec, bool ok, const char *out, const tpl_error *te, const char *what) {
    const json_value *want = json_get(rec, "output");
    if (want) {
        CHECKF(ok, "%s: failed: %s: %s (line %d), want output", what, tpl_errkind_name(te->kind), te->msg, te->line);
        if (ok && strcmp(out, json_string(want))) {
            CHECKF(0, "%s: output differs", what);
            show_diff(out, json_string(want));
        }
        return;
    }
    const char *kind = json_string(json_get(rec, "error")), *msg = json_string(json_get(rec, "message"));
    CHECKF(!ok, "%s: rendered, want %s: %s", what, kind, msg);
    if (ok) return;
    CHECKF(!strcmp(tpl_errkind_name(te->kind), kind) && !strcmp(te->msg, msg), "%s: got %s: %s\n      want %s: %s",
           what, tpl_errkind_name(te->kind), te->msg, kind, msg);
}

TEST(chat_case) {
    const char *model = json_string(json_get(g_case, "model"));
    const char *conv = json_string(json_get(g_case, "conversation"));
    char dir[512];
    snprintf(dir, sizeof dir, FIX "models/%s", model);
    forge_error err;
    forge_chat_template *t = forge_chat_template_load(dir, NULL, &err);
    CHECKF(t != NULL, "load %s: %s", dir, err.msg);
    if (!t) return;
    const json_value *req = json_get(json_get(json_root(g_chat), "conversations"), conv);
    strbuf sb = STRBUF_INIT;
    tpl_error te;
    forge_status s = chat_render_request_detail(t, req, &sb, &te, &err);
    if (s != FORGE_OK && te.kind == TE_NONE) CHECKF(0, "%s/%s: request refused: %s", model, conv, err.msg);
    else check_against(g_case, s == FORGE_OK, sb_str(&sb), &te, conv);
    sb_free(&sb);
    forge_chat_template_free(t);
}

TEST(expr_case) {
    const char *src = json_string(json_get(g_case, "template"));
    tpl_syntax_error se;
    tpl_template *tp = tpl_compile(src, strlen(src), &se);
    tpl_error te = {0};
    strbuf sb = STRBUF_INIT;
    bool ok = false;
    if (!tp) {
        te.kind = se.assertion ? TE_ASSERTION : TE_SYNTAX;
        te.line = se.line;
        snprintf(te.msg, sizeof te.msg, "%s", se.msg);
    } else {
        forge_error err;
        val ctx, extra = v_undef();
        CHECK(tpl_from_json(g_context, &ctx, &err));
        const json_value *vars = json_get(g_case, "vars");
        if (vars) {
            CHECK(tpl_from_json(vars, &extra, &err));
            for (size_t i = 0; i < V_D(extra)->n; i++)
                dict_set(V_D(ctx), v_ref(V_D(extra)->keys[i]), v_ref(V_D(extra)->vals[i]));
        }
        tpl_limits lim = {1 << 20, 10000000, 100};
        ok = tpl_render(tp, V_D(ctx), &lim, 1700000000, &sb, &te);
        v_unref(extra);
        v_unref(ctx);
        tpl_template_free(tp);
    }
    check_against(g_case, ok, sb_str(&sb), &te, src);
    sb_free(&sb);
}

int main(void) {
    forge_error err;
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    g_chat = json_parse_file(FIX "chat_goldens.json", 16 << 20, &err);
    g_expr = json_parse_file(FIX "expr_goldens.json", 16 << 20, &err);
    if (!g_chat || !g_expr) {
        printf("FAIL cannot read goldens: %s\n0 passed, 1 failed\n", err.msg);
        return 1;
    }
    const json_value *cases = json_get(json_root(g_chat), "cases");
    static char names[4096][128];
    size_t k = 0;
    for (size_t i = 0; i < cases->n; i++) {
        g_case = json_at(cases, i);
        snprintf(names[k % 4096], sizeof names[0], "chat %s / %s", json_string(json_get(g_case, "model")),
                 json_string(json_get(g_case, "conversation")));
        t_run(names[k++ % 4096], chat_case);
    }
    g_context = json_get(json_root(g_expr), "context");
    cases = json_get(json_root(g_expr), "cases");
    for (size_t i = 0; i < cases->n; i++) {
        g_case = json_at(cases, i);
        snprintf(names[k % 4096], sizeof names[0], "expr %zu", i);
        t_run(names[k++ % 4096], expr_case);
    }
    json_free(g_chat);
    json_free(g_expr);
    return t_summary();
}
