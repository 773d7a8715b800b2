/* test_grammar.c: the GBNF parser, the schema/regex/choice converters and the matcher.
 * Acceptance is checked on hand-written texts (valid and invalid, written from the JSON,
 * GBNF and regex definitions, not from this code's output), and the fast token mask is
 * compared with a brute-force one (every token's bytes tried on a copy of the state) on a
 * small hand-made vocabulary and on the Llama 3 and Qwen3 tokenizers (128k / 151k tokens
 * with multi-byte UTF-8 pieces). */
#include <stdint.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "grammar/constraint.h"
#include "grammar/convert.h"
#include "grammar/grammar.h"
#include "grammar/matcher.h"
#include "test.h"

static gws *W;

/* The one-byte vocabulary: token i is byte i (256 tokens), so any text can be fed. */
static gvocab *byte_vocab(void) {
    static gvocab *v;
    if (!v) {
        char b[256];
        const char *bytes[256];
        int lens[256];
        for (int i = 0; i < 256; i++) b[i] = (char)i, bytes[i] = &b[i], lens[i] = 1;
        v = gvocab_create_bytes(256, bytes, lens, NULL);
    }
    return v;
}

/* 1: the grammar accepts s whole; 0: it rejects it; -1: it does not compile. */
static int g_match(const forge_constraint *c, const char *s) {
    forge_error err;
    grammar *g = constraint_compile(c, &err);
    if (!g) {
        printf("    compile: %s\n", err.msg);
        return -1;
    }
    gconstraint *gc = gconstraint_create(g, byte_vocab(), &err);
    gmatcher *m = gmatcher_create(gc, W, &err);
    int r = gmatcher_accept_bytes(m, W, (const uint8_t *)s, strlen(s), &err) == FORGE_OK && gmatcher_can_end(m);
    gmatcher_free(m);
    gconstraint_free(gc);
    return r;
}

static int gbnf_match(const char *gbnf, const char *s) {
    forge_constraint c = {.kind = FORGE_CONSTRAINT_GBNF, .text = gbnf, .len = strlen(gbnf)};
    return g_match(&c, s);
}
static int schema_match(const char *schema, const char *s) {
    forge_constraint c = {.kind = FORGE_CONSTRAINT_JSON_SCHEMA, .text = schema, .len = strlen(schema)};
    return g_match(&c, s);
}
static int regex_match(const char *re, const char *s) {
    forge_constraint c = {.kind = FORGE_CONSTRAINT_REGEX, .text = re, .len = strlen(re)};
    return g_match(&c, s);
}

static forge_status check(int kind, const char *text, forge_error *err) {
    forge_constraint c = {.kind = kind, .text = text, .len = strlen(text)};
    return forge_constraint_check(&c, err);
}

TEST(gbnf_basics) {
    const char *g = "root ::= \"a\" b* (\"x\" | \"yz\")? [0-9]{2,3}\nb ::= [b-c]\n";
    CHECK_EQ_INT(gbnf_match(g, "a12"), 1);
    CHECK_EQ_INT(gbnf_match(g, "abcbx123"), 1);
    CHECK_EQ_INT(gbnf_match(g, "ayz99"), 1);
    CHECK_EQ_INT(gbnf_match(g, "a1"), 0);
    CHECK_EQ_INT(gbnf_match(g, "a1234"), 0);
    CHECK_EQ_INT(gbnf_match(g, "ay12"), 0);
    CHECK_EQ_INT(gbnf_match(g, "ad12"), 0);
    /* multi-line rules, comments, escapes, negated classes with non-ASCII */
    const char *g2 = "# comment\nroot ::= (\n  item\n  | \"\\n\"\n) \"\\u00e9\"+ [^a-z\\x00]\nitem ::= \"\\\"q\\\"\" # trailing\n";
    CHECK_EQ_INT(gbnf_match(g2, "\"q\"\xc3\xa9\xc3\xa9!"), 1);
    CHECK_EQ_INT(gbnf_match(g2, "\n\xc3\xa9\xe2\x82\xac"), 1);       /* euro sign */
    CHECK_EQ_INT(gbnf_match(g2, "\n\xc3\xa9\xf0\x9f\x98\x80"), 1);   /* 4-byte char */
    CHECK_EQ_INT(gbnf_match(g2, "\n\xc3\xa9q"), 0);
    CHECK_EQ_INT(gbnf_match(g2, "\n\xc3\xa9\xed\xa0\x80"), 0);       /* a surrogate is not UTF-8 */
    CHECK_EQ_INT(gbnf_match(g2, "\n\xc3\xa9\xc0\x80"), 0);           /* overlong */
    /* any char, {m,} and {m}, empty alternatives */
    const char *g3 = "root ::= (. x{2,} y{3} | )\nx ::= \"x\"\ny ::= \"y\"\n";
    CHECK_EQ_INT(gbnf_match(g3, ""), 1);
    CHECK_EQ_INT(gbnf_match(g3, "\xe4\xb8\xadxxyyy"), 1);
    CHECK_EQ_INT(gbnf_match(g3, "axxxxxxyyy"), 1);
    CHECK_EQ_INT(gbnf_match(g3, "axyyy"), 0);
    CHECK_EQ_INT(gbnf_match(g3, "axxyyyy"), 0);
    /* nullable rules before a reference, and right recursion of any depth */
    const char *g4 = "root ::= a a \"b\" | \"(\" root \")\"\na ::= \"\" | \"a\"\n";
    CHECK_EQ_INT(gbnf_match(g4, "b"), 1);
    CHECK_EQ_INT(gbnf_match(g4, "aab"), 1);
    CHECK_EQ_INT(gbnf_match(g4, "((((ab))))"), 1);
    CHECK_EQ_INT(gbnf_match(g4, "((((ab)))"), 0);
    CHECK_EQ_INT(gbnf_match(g4, "aaab"), 0);
}

TEST(gbnf_errors) {
    forge_error err;
    struct {
        const char *g, *want;
    } cases[] = {
        {"root ::= foo\n", "'foo' is used but not defined"},
        {"rot ::= \"a\"\n", "no rule named 'root'"},
        {"root ::= root \"a\" | \"b\"\n", "left-recursive"},
        {"root ::= x \"a\"\nx ::= \"\" | root\n", "left-recursive"},
        {"root ::= \"a\n", "unterminated literal"},
        {"root ::= [a-\n", "class"},
        {"root ::= \"\\q\"\n", "unknown escape"},
        {"root ::= \"a\"{3,2}\n", "maximum is below"},
        {"root ::= \"a\"{99999}\n", "repetition count"},
        /* a maximum over the limit after the comma (the fuzzer found its piece leaked) */
        {"root ::= [^a-c]{1,99999999}\n", "repetition count"},
        {"root ::= (\"a\"\n", "expected ')'"},
        {"root ::= \"a\"\nroot ::= \"b\"\n", "defined twice"},
        {"root = \"a\"\n", "'::='"},
        {"root ::= [z-a]\n", "range end before"},
        {"root ::= \"\\xZZ\"\n", "hex digits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        forge_status st = check(FORGE_CONSTRAINT_GBNF, cases[i].g, &err);
        CHECKF(st == FORGE_E_INVALID && strstr(err.msg, cases[i].want), "case %zu: status %d, message '%s'", i, st,
               st ? err.msg : "");
    }
    /* nesting and size limits answer, not crash */
    strbuf sb = STRBUF_INIT;
    sb_puts(&sb, "root ::= ");
    for (int i = 0; i < 200; i++) sb_putc(&sb, '(');
    CHECK_EQ_INT(check(FORGE_CONSTRAINT_GBNF, sb_str(&sb), &err), FORGE_E_INVALID);
    CHECK(strstr(err.msg, "nested deeper"));
    sb_reset(&sb);
    sb_puts(&sb, "root ::=");
    for (int i = 0; i < 110; i++) sb_puts(&sb, " \"a\"{10000}");
    CHECK_EQ_INT(check(FORGE_CONSTRAINT_GBNF, sb_str(&sb), &err), FORGE_E_INVALID);
    CHECK(strstr(err.msg, "too large"));
    sb_free(&sb);
}

TEST(schema_types) {
    const char *s = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":5},"
                    "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",1,null]},"
                    "\"minItems\":1,\"maxItems\":2},\"ok\":{\"type\":[\"boolean\",\"null\"]},\"x\":{\"type\":\"number\"}},"
                    "\"required\":[\"name\",\"age\"]}";
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"bob\",\"age\":3}"), 1);
    CHECK_EQ_INT(schema_match(s, "{ \"name\": \"b\\\"\\u00e9\", \"age\": -12, \"tags\": [\"a\", 1], \"ok\": null, \"x\": 1.5e-3 }"), 1);
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"bob\",\"age\":3,\"ok\":true}"), 1);
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"bob\"}"), 0);                       /* age required */
    CHECK_EQ_INT(schema_match(s, "{\"age\":3,\"name\":\"bob\"}"), 0);             /* schema order */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"bobbyb\",\"age\":3}"), 0);          /* maxLength */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"b\",\"age\":3.5}"), 0);             /* integer */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"b\",\"age\":03}"), 0);              /* leading zero */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"b\",\"age\":3,\"tags\":[]}"), 0);   /* minItems */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"b\",\"age\":3,\"tags\":[\"c\"]}"), 0); /* enum */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"b\",\"age\":3,\"zz\":1}"), 0);      /* no extra keys */
    CHECK_EQ_INT(schema_match(s, "{\"name\":\"a\nb\",\"age\":3}"), 0);            /* raw control char */
    /* none required: any subset in order, commas right */
    const char *o = "{\"properties\":{\"a\":{\"const\":1},\"b\":{\"const\":2},\"c\":{\"const\":3}}}";
    CHECK_EQ_INT(schema_match(o, "{}"), 1);
    CHECK_EQ_INT(schema_match(o, "{\"b\":2}"), 1);
    CHECK_EQ_INT(schema_match(o, "{\"a\":1,\"c\":3}"), 1);
    CHECK_EQ_INT(schema_match(o, "{\"a\":1,\"b\":2,\"c\":3}"), 1);
    CHECK_EQ_INT(schema_match(o, "{,\"b\":2}"), 0);
    CHECK_EQ_INT(schema_match(o, "{\"a\":1,}"), 0);
    CHECK_EQ_INT(schema_match(o, "{\"c\":3,\"a\":1}"), 0);
    /* additionalProperties: other keys only, with their schema */
    const char *ap = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},\"required\":[\"id\"],"
                     "\"additionalProperties\":{\"type\":\"boolean\"}}";
    CHECK_EQ_INT(schema_match(ap, "{\"id\":1,\"i\":true,\"idx\":false,\"\":true}"), 1);
    CHECK_EQ_INT(schema_match(ap, "{\"id\":1,\"id\":true}"), 0);
    CHECK_EQ_INT(schema_match(ap, "{\"id\":1,\"x\":1}"), 0);
    /* $ref (recursive), anyOf, allOf, formats, pattern */
    const char *r = "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
                    "\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":\"null\"}]}},\"required\":[\"v\",\"next\"]}},"
                    "\"$ref\":\"#/$defs/node\"}";
    CHECK_EQ_INT(schema_match(r, "{\"v\":1,\"next\":{\"v\":2,\"next\":null}}"), 1);
    CHECK_EQ_INT(schema_match(r, "{\"v\":1,\"next\":{\"v\":2}}"), 0);
    const char *all = "{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]},"
                      "{\"properties\":{\"b\":{\"type\":\"null\"}},\"required\":[\"b\"]}]}";
    CHECK_EQ_INT(schema_match(all, "{\"a\":\"\",\"b\":null}"), 1);
    CHECK_EQ_INT(schema_match(all, "{\"a\":\"\"}"), 0);
    const char *f = "{\"type\":\"array\",\"prefixItems\":[{\"format\":\"date\"},{\"format\":\"date-time\"},{\"format\":\"uuid\"},"
                    "{\"pattern\":\"^[a-c]+\\\\d$\"},{\"pattern\":\"x\"}],\"items\":false}";
    CHECK_EQ_INT(schema_match(f, "[\"2024-02-28\",\"2024-12-31T23:59:59.5Z\",\"123e4567-e89b-12d3-a456-426614174000\",\"abc7\",\"yxy\"]"), 1);
    CHECK_EQ_INT(schema_match(f, "[\"2024-02-30\",\"2024-12-31T23:59:59Z\",\"123e4567-e89b-12d3-a456-426614174000\",\"a1\",\"x\"]"), 0);
    CHECK_EQ_INT(schema_match(f, "[\"2024-02-28\",\"2024-12-31T23:59:59Z\",\"123e4567-e89b-12d3-a456-426614174000\",\"d1\",\"x\"]"), 0);
    CHECK_EQ_INT(schema_match(f, "[\"2024-02-28\",\"2024-12-31T23:59:59Z\",\"123e4567-e89b-12d3-a456-426614174000\",\"a1\",\"y\"]"), 0);
    CHECK_EQ_INT(schema_match(f, "[\"2024-02-28\",\"2024-12-31T23:59:59Z\",\"123e4567-e89b-12d3-a456-426614174000\",\"a1\",\"x\",1]"), 0);
    /* json_object */
    forge_constraint jo = {.kind = FORGE_CONSTRAINT_JSON_OBJECT};
    CHECK_EQ_INT(g_match(&jo, "{\"a\": [1, {\"b\": null}, \"c\"], \"d\": -0.5E+2}"), 1);
    CHECK_EQ_INT(g_match(&jo, "[1]"), 0);
    CHECK_EQ_INT(g_match(&jo, "{\"a\": tru}"), 0);
}

TEST(schema_errors) {
    forge_error err;
    struct {
        const char *s, *want;
        forge_status st;
    } cases[] = {
        {"{\"type\":\"number\",\"minimum\":3}", "'minimum'", FORGE_E_UNSUPPORTED},
        {"{\"maximum\":3}", "'maximum'", FORGE_E_UNSUPPORTED},
        {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer", FORGE_E_INVALID},
        {"{\"type\":\"integer\",\"minimum\":1e300}", "beyond", FORGE_E_UNSUPPORTED},
        {"{\"type\":\"integer\",\"multipleOf\":3}", "'multipleOf'", FORGE_E_UNSUPPORTED},
        {"{\"type\":\"array\",\"uniqueItems\":true}", "'uniqueItems'", FORGE_E_UNSUPPORTED},
        {"{\"type\":\"object\",\"patternProperties\":{}}", "'patternProperties'", FORGE_E_UNSUPPORTED},
        {"{\"type\":\"string\",\"format\":\"email\"}", "format 'email'", FORGE_E_UNSUPPORTED},
        {"{\"$ref\":\"https://x/y.json\"}", "$ref", FORGE_E_UNSUPPORTED},
        {"{\"$ref\":\"#/$defs/nope\"}", "points to nothing", FORGE_E_INVALID},
        {"{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "backreference", FORGE_E_UNSUPPORTED},
        {"{\"type\":\"wat\"}", "unknown type", FORGE_E_INVALID},
        {"{\"type\":", "JSON schema", FORGE_E_FORMAT},
        {"{\"properties\":{\"a\":{\"not\":{}}}}", "'not'", FORGE_E_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        forge_status st = check(FORGE_CONSTRAINT_JSON_SCHEMA, cases[i].s, &err);
        CHECKF(st == cases[i].st && strstr(err.msg, cases[i].want), "case %zu: status %d, message '%s'", i, st, st ? err.msg : "");
    }
    char *out = NULL;
    CHECK_EQ_INT(forge_json_schema_to_gbnf("{\"type\":\"boolean\"}", 18, &out, &err), FORGE_OK);
    CHECK(out && strstr(out, "root ::="));
    free(out);
}

/* Integer bounds: every integer in a window around the bounds, and far values, accepted
 * exactly when inside (the arithmetic here is the reference). */
TEST(schema_integer_bounds) {
    struct {
        const char *kw;
        long long lo, hi; /* inclusive; LLONG_MIN / LLONG_MAX: unbounded */
    } cases[] = {
        {"\"minimum\":1,\"maximum\":5", 1, 5},
        {"\"minimum\":-12,\"maximum\":345", -12, 345},
        {"\"minimum\":17", 17, LLONG_MAX},
        {"\"exclusiveMaximum\":0", LLONG_MIN, -1},
        {"\"exclusiveMinimum\":-1,\"exclusiveMaximum\":1000", 0, 999},
        {"\"minimum\":0,\"maximum\":0", 0, 0},
        {"\"minimum\":-1005,\"maximum\":-995", -1005, -995},
        {"\"minimum\":99,\"maximum\":1001", 99, 1001},
        {"\"minimum\":1.5,\"maximum\":7.9", 2, 7},
        {"\"minimum\":120,\"maximum\":129", 120, 129},
        {"\"maximum\":-3,\"minimum\":-5,\"exclusiveMinimum\":-5", -4, -3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char schema[200];
        snprintf(schema, sizeof schema, "{\"type\":\"integer\",%s}", cases[c].kw);
        forge_constraint fc = {.kind = FORGE_CONSTRAINT_JSON_SCHEMA, .text = schema, .len = strlen(schema)};
        forge_error err;
        grammar *g = constraint_compile(&fc, &err);
        CHECKF(g != NULL, "%s: %s", schema, g ? "" : err.msg);
        if (!g) continue;
        gconstraint *gc = gconstraint_create(g, byte_vocab(), &err);
        int bad = 0;
        long long probes[] = {-1000000000000LL, -99999, 99999, 1000000000000LL, 999999999999999LL};
        for (long long v = -1300; v <= 1300 + (long long)(sizeof probes / sizeof *probes); v++) {
            long long x = v <= 1300 ? v : probes[v - 1301];
            char t[32];
            snprintf(t, sizeof t, "%lld", x);
            gmatcher *m = gmatcher_create(gc, W, &err);
            int got = gmatcher_accept_bytes(m, W, (const uint8_t *)t, strlen(t), &err) == FORGE_OK && gmatcher_can_end(m);
            gmatcher_free(m);
            int want = x >= cases[c].lo && x <= cases[c].hi;
            if (got != want && bad++ < 3) CHECKF(0, "%s: %s %s", schema, t, want ? "rejected" : "accepted");
        }
        const char *never[] = {"-0", "007", "1.0", "+3", ""};
        for (size_t i = 0; i < sizeof never / sizeof *never; i++) {
            gmatcher *m = gmatcher_create(gc, W, &err);
            int got = gmatcher_accept_bytes(m, W, (const uint8_t *)never[i], strlen(never[i]), &err) == FORGE_OK &&
                      gmatcher_can_end(m);
            gmatcher_free(m);
            CHECKF(!got, "%s accepts '%s'", schema, never[i]);
        }
        gconstraint_free(gc);
    }
}

TEST(regex_and_choice) {
    CHECK_EQ_INT(regex_match("^[A-Z][a-z]{1,3}( [0-9]+)?$", "Abc 42"), 1);
    CHECK_EQ_INT(regex_match("[A-Z][a-z]{1,3}( [0-9]+)?", "Ab"), 1);
    CHECK_EQ_INT(regex_match("[A-Z][a-z]{1,3}( [0-9]+)?", "Abcde"), 0);
    CHECK_EQ_INT(regex_match("(?:cat|dog)s?|\\d{3}-\\w+", "dogs"), 1);
    CHECK_EQ_INT(regex_match("(?:cat|dog)s?|\\d{3}-\\w+", "123-a_9"), 1);
    CHECK_EQ_INT(regex_match("(?:cat|dog)s?|\\d{3}-\\w+", "cats-"), 0);
    CHECK_EQ_INT(regex_match("[^\\s,]+,\\S*", "\xc3\xa9x,y"), 1);
    CHECK_EQ_INT(regex_match("[^\\s,]+,\\S*", "a b,"), 0);
    CHECK_EQ_INT(regex_match("a.c", "a\xe2\x82\xac" "c"), 1);
    CHECK_EQ_INT(regex_match("a.c", "a\nc"), 0);
    CHECK_EQ_INT(regex_match("x*?y+?z??", "xxyy"), 1);
    CHECK_EQ_INT(regex_match("\\(\\x41\\u00e9\\.\\)", "(A\xc3\xa9.)"), 1);
    forge_error err;
    const char *bad[][2] = {{"(a)\\1", "backreference"}, {"a(?=b)", "lookahead"}, {"(?<=a)b", "lookbehind"},
                            {"\\bx", "\\b"},            {"a^b", "anchor"},      {"(?i)a", "flags"},
                            {"a**", "multiple repeat"}, {"(a", "')'"},          {"[a", "']'"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        forge_status st = check(FORGE_CONSTRAINT_REGEX, bad[i][0], &err);
        CHECKF(st != FORGE_OK && strstr(err.msg, bad[i][1]), "regex %s: status %d, '%s'", bad[i][0], st, st ? err.msg : "");
    }
    forge_constraint c = {.kind = FORGE_CONSTRAINT_CHOICE, .text = "[\"yes\",\"no\",\"n\\\"o\"]"};
    c.len = strlen(c.text);
    CHECK_EQ_INT(g_match(&c, "no"), 1);
    CHECK_EQ_INT(g_match(&c, "n\"o"), 1);
    CHECK_EQ_INT(g_match(&c, "n"), 0);
    CHECK_EQ_INT(check(FORGE_CONSTRAINT_CHOICE, "[1]", &err), FORGE_E_INVALID);
    CHECK_EQ_INT(check(FORGE_CONSTRAINT_CHOICE, "[]", &err), FORGE_E_INVALID);
}

/* ---- masks against brute force -------------------------------------------------------- */

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

/* Walks random allowed tokens from the start; at each step compares the fast mask with the
 * brute-force one. Returns the number of steps walked. */
static int mask_walk(const forge_constraint *cons, const gvocab *v, int steps, int brute_every) {
    forge_error err;
    grammar *g = constraint_compile(cons, &err);
    CHECKF(g != NULL, "compile: %s", err.msg);
    if (!g) return 0;
    gconstraint *gc = gconstraint_create(g, v, &err);
    gmatcher *m = gmatcher_create(gc, W, &err), *tmp = gmatcher_create(gc, W, &err);
    int V = gvocab_size(v), words = (V + 31) / 32;
    uint32_t *mask = malloc(sizeof(uint32_t) * (size_t)words);
    int32_t *allowed = malloc(sizeof(int32_t) * (size_t)V);
    int walked = 0;
    for (int step = 0; step < steps; step++) {
        CHECK_EQ_INT(gmatcher_fill_mask(m, gc, W, mask, &err), FORGE_OK);
        int n = 0;
        for (int id = 0; id < V; id++)
            if ((mask[id >> 5] >> (id & 31)) & 1) allowed[n++] = id;
        if (step % brute_every == 0) {
            int bad = 0;
            for (int id = 0; id < V && bad < 3; id++) {
                gmatcher_copy(tmp, m);
                int len;
                bool ok = gvocab_bytes(v, id, &len) && gmatcher_accept_token(tmp, W, id, NULL) == FORGE_OK;
                bool fast = (mask[id >> 5] >> (id & 31)) & 1;
                if (ok != fast) {
                    bad++;
                    CHECKF(0, "step %d token %d: brute force %d, mask %d", step, id, ok, fast);
                }
            }
        }
        if (n == 0) break;
        int32_t t = allowed[rnd() % (uint32_t)n];
        CHECK_EQ_INT(gmatcher_accept_token(m, W, t, &err), FORGE_OK);
        walked++;
        if (gmatcher_must_end(m)) break;
    }
    free(mask);
    free(allowed);
    gmatcher_free(m);
    gmatcher_free(tmp);
    gconstraint_free(gc);
    return walked;
}

static const char *SCHEMA_MID =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"age\":{\"type\":\"integer\"},"
    "\"email\":{\"type\":\"string\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":8},\"maxItems\":3},"
    "\"address\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"zip\":{\"pattern\":\"^[0-9]{5}$\"}},"
    "\"required\":[\"city\"]},\"kind\":{\"enum\":[\"a\",\"b\",\"c\"]},\"score\":{\"type\":\"number\"},"
    "\"when\":{\"format\":\"date\"},\"extra\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"boolean\"}]}},"
    "\"required\":[\"name\",\"age\",\"kind\"]}";

TEST(mask_small_vocab) {
    /* tokens: every single byte, plus pieces that cross grammar boundaries and UTF-8 */
    static const char *extra[] = {"\"", "{\"", "\":", "\",", "\"}", "}}", "{}", "[]", "true", "false", "null", "nul", "12",
                                  "-1", ".5", "e+", "\\u00", "\\\"", "ab", "name", "\"name\":\"", "\xc3\xa9", "\xc3",
                                  "\xa9", "\xe2\x82", "\xac\"", " ", "  ", "\n", ", \"", "a\"", "0,", "1]", "\"]", "x\xe4\xb8\xad"};
    int n_extra = (int)(sizeof extra / sizeof *extra);
    int V = 256 + n_extra + 3;
    const char **bytes = malloc(sizeof(char *) * (size_t)V);
    int *lens = malloc(sizeof(int) * (size_t)V);
    static char b[256];
    for (int i = 0; i < 256; i++) b[i] = (char)i, bytes[i] = &b[i], lens[i] = 1;
    for (int i = 0; i < n_extra; i++) bytes[256 + i] = extra[i], lens[256 + i] = (int)strlen(extra[i]);
    for (int i = 256 + n_extra; i < V; i++) bytes[i] = NULL, lens[i] = -1; /* special tokens */
    forge_error err;
    gvocab *v = gvocab_create_bytes(V, bytes, lens, &err);
    CHECK(v != NULL);
    forge_constraint cs[] = {
        {.kind = FORGE_CONSTRAINT_JSON_SCHEMA, .text = SCHEMA_MID, .len = strlen(SCHEMA_MID)},
        {.kind = FORGE_CONSTRAINT_JSON_OBJECT},
        {.kind = FORGE_CONSTRAINT_REGEX, .text = "([a-c]+\xc3\xa9|\\d{2,4}\")*x"},
        {.kind = FORGE_CONSTRAINT_GBNF, .text = "root ::= (a | b)+\na ::= \"ab\" \"\\\"\"?\nb ::= \"a\" [^a]\n"},
    };
    for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
        if (cs[k].text) cs[k].len = strlen(cs[k].text);
        for (int run = 0; run < 20; run++) mask_walk(&cs[k], v, 60, 1);
    }
    gvocab_free(v);
    free(bytes);
    free(lens);
}

TEST(mask_real_tokenizers) {
    const char *dirs[] = {"tests/fixtures/tokenizers/llama3", "tests/fixtures/tokenizers/qwen3"};
    for (int d = 0; d < 2; d++) {
        forge_error err;
        forge_tokenizer *tok = forge_tokenizer_open(dirs[d], &err);
        CHECKF(tok != NULL, "%s: %s", dirs[d], err.msg);
        if (!tok) continue;
        int V = forge_tokenizer_get_info(tok)->vocab_size;
        gvocab *v = gvocab_create(tok, V, &err);
        CHECK(v != NULL);
        forge_constraint s = {.kind = FORGE_CONSTRAINT_JSON_SCHEMA, .text = SCHEMA_MID, .len = strlen(SCHEMA_MID)};
        forge_constraint u = {.kind = FORGE_CONSTRAINT_REGEX, .text = "[\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80" "a-z ]{1,20}\\."};
        u.len = strlen(u.text);
        for (int run = 0; run < 3; run++) {
            mask_walk(&s, v, 40, 4);
            mask_walk(&u, v, 20, 4);
        }
        gvocab_free(v);
        forge_tokenizer_close(tok);
    }
}

int main(void) {
    W = gws_create(NULL);
    RUN(gbnf_basics);
    RUN(gbnf_errors);
    RUN(schema_types);
    RUN(schema_errors);
    RUN(schema_integer_bounds);
    RUN(regex_and_choice);
    RUN(mask_small_vocab);
    RUN(mask_real_tokenizers);
    gvocab_free(byte_vocab());
    gws_free(W);
    return t_summary();
}
