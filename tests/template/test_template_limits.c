/* Hostile chat templates (issue 12): a template comes from a model repository, so a chain
 * like `1+1+...+1` 50,000 or 200,000 long, which parses into a tree as deep as it is long,
 * must fail to load with a message naming the limit (not overflow the C stack at load or
 * render time), every kind of chain the grammar has; and recursion at render time must end
 * in a clean error whatever max_depth the caller allows. Runs under ASan too (make asan). */
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "forge.h"
#include "test.h"

static const char REQ[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";

/* head + n copies of link + tail, after two lines of text (so the error is on line 3). */
static char *chain(const char *head, const char *link, const char *tail, int n) {
    strbuf sb = STRBUF_INIT;
    sb_puts(&sb, "line one\nline two\n");
    sb_puts(&sb, head);
    for (int i = 0; i < n; i++) sb_puts(&sb, link);
    sb_puts(&sb, tail);
    char *s = strdup(sb_str(&sb));
    sb_free(&sb);
    return s;
}

/* Loads src; returns the template (NULL on failure, with *err filled). */
static forge_chat_template *load(const char *src, forge_error *err) {
    return forge_chat_template_create(src, strlen(src), NULL, 0, err);
}

/* Renders with REQ; the status, output in *out (malloc'd) on success. */
static forge_status render(forge_chat_template *t, char **out, forge_error *err) {
    size_t n = 0;
    *out = NULL;
    return forge_chat_template_render(t, REQ, sizeof REQ - 1, out, &n, err);
}

/* The template must fail to load with FORGE_E_TEMPLATE, on line 3, naming want. */
static void expect_load_error(const char *what, const char *src, const char *want) {
    forge_error err = {0};
    forge_chat_template *t = load(src, &err);
    CHECKF(!t, "%s: loaded", what);
    if (t) {
        forge_chat_template_free(t);
        return;
    }
    CHECKF(err.code == FORGE_E_TEMPLATE, "%s: code %d: %s", what, err.code, err.msg);
    CHECKF(strstr(err.msg, want) != NULL, "%s: message \"%s\" does not say \"%s\"", what, err.msg, want);
    CHECKF(strstr(err.msg, "line 3:") != NULL, "%s: message \"%s\" does not name line 3", what, err.msg);
}

static const char DEEP[] = "nests deeper than 256 levels";
static const char NESTED[] = "nests deeper than 200 levels of brackets or operators";

typedef struct chain_kind {
    const char *name, *head, *link, *tail, *want;
} chain_kind;

/* Every left-associative chain of the grammar, and the right-nesting ones. */
static const chain_kind KINDS[] = {
    {"add", "{{ 1", "+1", " }}", DEEP},
    {"sub", "{{ 1", "-1", " }}", DEEP},
    {"mul", "{{ 1", "*1", " }}", DEEP},
    {"div", "{{ 1", "/1", " }}", DEEP},
    {"floordiv", "{{ 1", "//1", " }}", DEEP},
    {"mod", "{{ 1", "%1", " }}", DEEP},
    {"pow", "{{ 1", "**1", " }}", DEEP},
    {"and", "{% if true", " and true", " %}y{% endif %}", DEEP},
    {"or", "{% if false", " or false", " %}y{% endif %}", DEEP},
    {"inline if", "{{ 1", " if 1", " }}", DEEP},
    {"if else", "{{ 1", " if 0 else 1", " }}", NESTED},
    {"filter", "{{ 'a'", "|upper", " }}", DEEP},
    {"filter with args", "{{ 'a'", "|replace('a', 'b')", " }}", DEEP},
    {"filter block", "{% filter upper", "|upper", " %}x{% endfilter %}", DEEP},
    {"set block filter", "{% set x | upper", "|upper", " %}x{% endset %}", DEEP},
    {"test", "{{ 1", " is number()", " }}", DEEP},
    {"attribute", "{{ x", ".a", " }}", DEEP},
    {"subscript", "{{ x", "[0]", " }}", DEEP},
    {"dotted index", "{{ x", ".0", " }}", DEEP},
    {"slice", "{{ x", "[1:]", " }}", DEEP},
    {"call", "{{ x", "()", " }}", DEEP},
    {"filter call", "{{ x|list", "()|list", " }}", DEEP},
    {"not", "{{ ", "not ", "1 }}", NESTED},
    {"minus", "{{ ", "-", "1 }}", NESTED},
    {"parens", "{{ ", "(", "1 }}", NESTED}, /* unbalanced: the nesting limit comes first */
    {"list", "{{ ", "[", "1 }}", NESTED},
    {"dict", "{{ ", "{'a': ", "1 }}", NESTED},
    {"in macro", "{% macro m() %}{{ 1", "+1", " }}{% endmacro %}", DEEP},
    {"in call args", "{{ range(1", "+1", ") }}", DEEP},
};

TEST(chains_fail_to_load) {
    const int lengths[] = {50000, 200000};
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++)
        for (int l = 0; l < 2; l++) {
            char what[128];
            snprintf(what, sizeof what, "%s x %d", KINDS[k].name, lengths[l]);
            char *src = chain(KINDS[k].head, KINDS[k].link, KINDS[k].tail, lengths[l]);
            expect_load_error(what, src, KINDS[k].want);
            free(src);
        }
}

/* The exact depth bound: 256 levels load and render, 257 do not. */
TEST(depth_boundary) {
    forge_error err = {0};
    char *src = chain("{{ 1", "+1", " }}", 255); /* 255 additions, 256 levels */
    forge_chat_template *t = load(src, &err);
    CHECKF(t != NULL, "256 levels: %s", err.msg);
    if (t) {
        char *out;
        CHECKF(render(t, &out, &err) == FORGE_OK, "256 levels: %s", err.msg);
        if (out) CHECK_EQ_STR(out, "line one\nline two\n256");
        free(out);
        forge_chat_template_free(t);
    }
    free(src);
    src = chain("{{ 1", "+1", " }}", 256);
    expect_load_error("257 levels", src, DEEP);
    free(src);
}

/* Chains that each stay under the per-chain limit but nest into a deep tree: only the exact
 * check after parsing sees them. */
TEST(nested_short_chains) {
    strbuf sb = STRBUF_INIT;
    /* (((1+1+...)+1+...)+1+...): each group is the innermost left operand of the next */
    sb_puts(&sb, "line one\nline two\n{{ (((1");
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < 200; i++) sb_puts(&sb, "+1");
        sb_puts(&sb, ")");
    }
    sb_puts(&sb, " }}");
    expect_load_error("3 nested chains of 200", sb_str(&sb), DEEP);
    sb_free(&sb);
    /* a filter chain on an attribute chain, the left operand of an addition chain */
    sb = (strbuf)STRBUF_INIT;
    sb_puts(&sb, "line one\nline two\n{{ (x");
    for (int i = 0; i < 200; i++) sb_puts(&sb, ".a");
    sb_puts(&sb, "|string");
    for (int i = 0; i < 200; i++) sb_puts(&sb, "|upper");
    sb_puts(&sb, ")");
    for (int i = 0; i < 200; i++) sb_puts(&sb, "+1");
    sb_puts(&sb, " }}");
    expect_load_error("mixed chains", sb_str(&sb), DEEP);
    sb_free(&sb);
}

/* Flat constructs of the same length are fine: they do not deepen the tree. */
TEST(long_flat_constructs_render) {
    forge_error err = {0};
    const int n = 50000;
    const char *links[] = {"~1", "{% elif 0 %}", ",1"};
    const char *heads[] = {"{{ 1", "{% if 0 %}", "{{ [1"};
    const char *tails[] = {" }}", "{% else %}1{% endif %}", "]|length }}"};
    size_t want_len[] = {18 + (size_t)n + 1, 18 + 1, 18 + 5};
    for (int k = 0; k < 3; k++) {
        char *src = chain(heads[k], links[k], tails[k], n);
        forge_chat_template *t = load(src, &err);
        CHECKF(t != NULL, "%s x %d: %s", links[k], n, err.msg);
        if (t) {
            char *out;
            CHECKF(render(t, &out, &err) == FORGE_OK, "%s: %s", links[k], err.msg);
            if (out) CHECKF(strlen(out) == want_len[k], "%s: %zu bytes, want %zu", links[k], strlen(out), want_len[k]);
            free(out);
            forge_chat_template_free(t);
        }
        free(src);
    }
}

/* A template too large in nodes fails to load with a message naming the limit. */
TEST(node_limit) {
    char *src = chain("{% if 0 %}", "{% elif 0 %}", "{% endif %}", 200000);
    expect_load_error("200,000 elifs", src, "syntax nodes");
    free(src);
}

/* Recursion at render time: macros, call blocks and recursive loops, with max_depth far above
 * what the stack holds, end in a limit error (FORGE_E_RANGE), not a crash. */
TEST(render_recursion_is_bounded) {
    const char *srcs[] = {
        "{% macro f(n) %}{{ f(n - 1) }}{% endmacro %}{{ f(1000000) }}",
        "{% macro f(n) %}{{ ((f(n - 1)|string)|upper ~ 'x') + 'y' }}{% endmacro %}{{ f(1000000) }}",
        "{% macro g() %}{{ caller() }}{% endmacro %}"
        "{% macro f() %}{% call g() %}{{ f() }}{% endcall %}{% endmacro %}{{ f() }}",
        "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
        "{% macro f() %}{% set x %}{% filter upper %}{% with a = f() %}{% for i in [1] %}{% if true %}{{ a }}"
        "{% endif %}{% endfor %}{% endwith %}{% endfilter %}{% endset %}{{ x }}{% endmacro %}{{ f() }}",
    };
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        forge_error err = {0};
        forge_chat_template *t = load(srcs[i], &err);
        CHECKF(t != NULL, "template %zu: %s", i, err.msg);
        if (!t) continue;
        forge_template_limits lim = {.max_depth = 1000000, .max_steps = 100000000};
        forge_chat_template_set_limits(t, &lim);
        char *out;
        forge_status s = render(t, &out, &err);
        CHECKF(s == FORGE_E_RANGE, "template %zu: status %d: %s", i, s, err.msg);
        CHECKF(strstr(err.msg, "nests evaluation deeper than 2000 levels") != NULL, "template %zu: %s", i, err.msg);
        free(out);
        /* the default max_depth (100 macro calls) stops the same templates first */
        forge_chat_template_set_limits(t, NULL);
        s = render(t, &out, &err);
        CHECKF(s == FORGE_E_RANGE && strstr(err.msg, "nested deeper than 100"), "template %zu default: %d %s", i, s,
               err.msg);
        free(out);
        forge_chat_template_free(t);
    }
}

int main(void) {
    RUN(chains_fail_to_load);
    RUN(depth_boundary);
    RUN(nested_short_chains);
    RUN(long_flat_constructs_render);
    RUN(node_limit);
    RUN(render_recursion_is_bounded);
    return t_summary();
}
