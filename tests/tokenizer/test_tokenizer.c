/* The tokenizer against HF tokenizers' goldens (scripts/tokenizer/make_goldens.js): the six
 * fixture tokenizers, Llama 3 with Meta's Sequence post-processor, synthetic variants for
 * every Split behaviour / Metaspace / Digits / added-token flag, id-by-id streaming, the
 * 1 MB string, llama.cpp's vectors, tokenizer_config rules and error messages. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/mfile.h"
#include "forge.h"
#include "test.h"
#include "tok_golden.h"

#define FIX "tests/fixtures/tokenizers/"

/* Strings that differ from HF because Debian's PCRE2 10.42 / utf8proc 2.8 carry older
 * Unicode tables than HF's Rust crates (the strings stay in the corpus; see
 * docs/tokenizer.md). Matched by tokenizer name prefix and exact text. */
static const struct { const char *tok, *text, *why; } DIVERGES[] = {
    {"qwen3", "\U00031350\n   \nzero", "U+31350 (CJK Ext. H, Unicode 15) is not \\p{L} in PCRE2 10.42"},
    {"llama3", "\U00031350\n   \nzero", "U+31350 (CJK Ext. H, Unicode 15) is not \\p{L} in PCRE2 10.42"},
    {"llama3", "a\U0001E4D01 \U00010D402", "U+1E4D0 (Nag Mundari, Unicode 15) is not \\p{L} in PCRE2 10.42"},
    {"split-Removed", "x\U00010D40y", "U+10D40 (Garay digit, Unicode 16) is not \\d in PCRE2 10.42"},
    {"split-Removed", "a\U0001E4D01 \U00010D402", "U+10D40 (Garay digit, Unicode 16) is not \\d in PCRE2 10.42"},
    {"digits", "x\U00010D40y", "U+10D40 (Garay digit, Unicode 16) is not numeric in utf8proc 2.8"},
    {"digits", "a\U0001E4D01 \U00010D402", "U+10D40 (Garay digit, Unicode 16) is not numeric in utf8proc 2.8"},
    {NULL, NULL, NULL},
};

static const char *diverges(const char *tok, const json_value *text) {
    for (size_t i = 0; DIVERGES[i].tok; i++)
        if (!strncmp(tok, DIVERGES[i].tok, strlen(DIVERGES[i].tok)) && text &&
            !strcmp(text->u.s, DIVERGES[i].text))
            return DIVERGES[i].why;
    return NULL;
}

typedef struct {
    int strings, equal, diverged, decodes, decodes_equal;
} tally;

static void show(const char *what, const char *tok, size_t i, const json_value *c, const char *got) {
    const json_value *t = json_get(c, "text");
    strbuf sb = STRBUF_INIT;
    if (t) json_write_string(&sb, t->u.s, t->n > 80 ? 80 : t->n, false);
    else sb_printf(&sb, "hex %s", json_get(c, "hex")->u.s);
    printf("    %s: %s case %zu %s%s%.300s\n", tok, what, i, sb_str(&sb), got ? " got " : "", got ? got : "");
    sb_free(&sb);
}

/* Compares every case and decode sequence of a golden document; returns the tally. */
static tally check_golden(const forge_tokenizer *tok, const json_value *g, const char *name) {
    tally ty = {0};
    forge_error err;
    forge_tokens ids = {0};
    strbuf in = STRBUF_INIT, got = STRBUF_INIT, st = STRBUF_INIT;
    forge_detok *d = forge_detok_create(tok, 0, &err);
    CHECK(d);
    const json_value *cases = json_get(g, "cases");
    CHECK(json_is(cases, JSON_ARRAY));
    int shown = 0;
    for (size_t i = 0; cases && i < cases->n; i++) {
        const json_value *c = cases->u.items[i];
        sb_reset(&in);
        case_input(c, &in);
        bool ok = true;
        static const struct { const char *key; unsigned flags; } modes[] = {
            {"ids", FORGE_ENCODE_ADD_SPECIAL}, {"ids_plain", 0},
            {"ids_split", FORGE_ENCODE_ADD_SPECIAL | FORGE_ENCODE_SPLIT_SPECIAL}};
        for (int m = 0; m < 3; m++) {
            ids.n = 0;
            forge_status s = forge_tokenizer_encode(tok, sb_str(&in), in.len, modes[m].flags, &ids, &err);
            if (s || !ids_equal(&ids, json_get(c, modes[m].key))) {
                ok = false;
                sb_reset(&got);
                ids_json(&got, ids.ids, ids.n);
                if (shown++ < 6) show(modes[m].key, name, i, c, sb_str(&got));
            }
        }
        /* decode and streaming, of HF's ids */
        const json_value *gids = json_get(c, "ids");
        for (int skip = 0; skip < 2; skip++) {
            const json_value *want = json_get(c, skip ? "decode_skip" : "decode");
            size_t n = gids->n;
            int32_t *v = malloc((n ? n : 1) * sizeof *v);
            for (size_t k = 0; k < n; k++) v[k] = (int32_t)gids->u.items[k]->u.i;
            size_t len;
            char *text = forge_tokenizer_decode(tok, v, n, skip ? FORGE_DECODE_SKIP_SPECIAL : 0, &len, &err);
            free(v);
            if (!text || len != want->n || memcmp(text, want->u.s, len)) {
                ok = false;
                if (shown++ < 6) show(skip ? "decode_skip" : "decode", name, i, c, text);
            }
            free(text);
            sb_reset(&st);
            if (!stream_all(tok, d, gids, skip ? FORGE_DECODE_SKIP_SPECIAL : 0, &st) || st.len != want->n ||
                memcmp(st.data ? st.data : "", want->u.s, st.len)) {
                ok = false;
                if (shown++ < 6) show(skip ? "stream_skip" : "stream", name, i, c, sb_str(&st));
            }
        }
        ty.strings++;
        if (ok) ty.equal++;
        else if (diverges(name, json_get(c, "text"))) ty.diverged++;
    }
    const json_value *decs = json_get(g, "decodes");
    for (size_t i = 0; decs && i < decs->n; i++) {
        const json_value *c = decs->u.items[i], *gids = json_get(c, "ids");
        bool ok = true;
        for (int skip = 0; skip < 2; skip++) {
            const json_value *want = json_get(c, skip ? "text_skip" : "text");
            size_t n = gids->n;
            int32_t *v = malloc((n ? n : 1) * sizeof *v);
            for (size_t k = 0; k < n; k++) v[k] = (int32_t)gids->u.items[k]->u.i;
            size_t len;
            char *text = forge_tokenizer_decode(tok, v, n, skip ? FORGE_DECODE_SKIP_SPECIAL : 0, &len, &err);
            free(v);
            sb_reset(&st);
            bool sok = stream_all(tok, d, gids, skip ? FORGE_DECODE_SKIP_SPECIAL : 0, &st);
            if (!text || len != want->n || memcmp(text, want->u.s, len) || !sok || st.len != want->n ||
                memcmp(st.data ? st.data : "", want->u.s, st.len)) {
                ok = false;
                sb_reset(&got);
                ids_json(&got, NULL, 0);
                if (shown++ < 8) {
                    strbuf a = STRBUF_INIT;
                    json_write_value(&a, gids);
                    printf("    %s: decode%s of %.200s: got ", name, skip ? "_skip" : "", sb_str(&a));
                    strbuf b = STRBUF_INIT;
                    json_write_string(&b, text ? text : "", text ? len : 0, true);
                    printf("%s stream ", sb_str(&b));
                    sb_reset(&b);
                    json_write_string(&b, st.data ? st.data : "", st.len, true);
                    printf("%s want ", sb_str(&b));
                    sb_reset(&b);
                    json_write_string(&b, want->u.s, want->n, true);
                    printf("%s\n", sb_str(&b));
                    sb_free(&a);
                    sb_free(&b);
                }
            }
            free(text);
        }
        ty.decodes++;
        if (ok) ty.decodes_equal++;
    }
    forge_detok_free(d);
    forge_tokens_free(&ids);
    sb_free(&in);
    sb_free(&got);
    sb_free(&st);
    return ty;
}

static json_doc *load_json(const char *path) {
    forge_error err;
    json_doc *d = json_parse_file(path, (size_t)1 << 30, &err);
    if (!d) printf("    %s\n", err.msg);
    return d;
}

static void report(const char *name, tally ty) {
    printf("    table: %-28s strings %3d  equal %3d  diverged(recorded) %d  decode-seqs %d/%d\n", name,
           ty.strings, ty.equal, ty.diverged, ty.decodes_equal, ty.decodes);
    CHECKF(ty.equal + ty.diverged == ty.strings, "%s: %d of %d strings differ from HF", name,
           ty.strings - ty.equal - ty.diverged, ty.strings);
    CHECKF(ty.decodes_equal == ty.decodes, "%s: %d of %d id sequences decode differently", name,
           ty.decodes - ty.decodes_equal, ty.decodes);
}

static void one_fixture(const char *name) {
    char dir[256], gpath[300];
    snprintf(dir, sizeof dir, FIX "%s", name);
    snprintf(gpath, sizeof gpath, "%s/golden.json", dir);
    forge_error err;
    forge_tokenizer *tok = forge_tokenizer_open(dir, &err);
    CHECKF(tok, "%s: %s", name, err.msg);
    json_doc *g = load_json(gpath);
    CHECK(g);
    if (!tok || !g) {
        forge_tokenizer_close(tok);
        json_free(g);
        return;
    }
    report(name, check_golden(tok, json_root(g), name));
    /* the 1 MB string: id count, sha256 of the ids, of the decoded text, and streaming */
    const json_value *big = json_get(json_root(g), "big");
    strbuf s = STRBUF_INIT, js = STRBUF_INIT;
    big_string(json_get(json_root(g), "cases"), (uint32_t)json_get(big, "seed")->u.i,
               (size_t)json_get(big, "bytes")->u.i, &s);
    CHECK_EQ_INT(s.len, json_get(big, "bytes")->u.i);
    forge_tokens ids = {0};
    CHECK(forge_tokenizer_encode(tok, s.data, s.len, 0, &ids, &err) == FORGE_OK);
    CHECKF((long long)ids.n == json_get(big, "n_ids")->u.i, "%s: 1 MB string: %zu ids, HF %lld", name, ids.n,
           (long long)json_get(big, "n_ids")->u.i);
    ids_json(&js, ids.ids, ids.n);
    char hex[65];
    sha256_hex(js.data, js.len, hex);
    CHECKF(!strcmp(hex, json_get(big, "ids_sha256")->u.s), "%s: 1 MB string: ids differ from HF", name);
    size_t len;
    char *text = forge_tokenizer_decode(tok, ids.ids, ids.n, 0, &len, &err);
    CHECK(text);
    if (text) {
        sha256_hex(text, len, hex);
        CHECKF(!strcmp(hex, json_get(big, "decode_sha256")->u.s), "%s: 1 MB string: decode differs from HF", name);
        /* streaming, id by id */
        forge_detok *d = forge_detok_create(tok, 0, &err);
        strbuf st = STRBUF_INIT;
        for (size_t i = 0; i < ids.n; i++) {
            const char *p;
            size_t n;
            forge_detok_push(d, ids.ids[i], &p, &n, &err);
            sb_append(&st, p, n);
        }
        const char *p;
        size_t n;
        forge_detok_finish(d, &p, &n, &err);
        sb_append(&st, p, n);
        CHECKF(st.len == len && !memcmp(st.data, text, len), "%s: 1 MB string: streaming != one-shot", name);
        sb_free(&st);
        forge_detok_free(d);
    }
    free(text);
    printf("    big: %s %zu bytes -> %zu ids\n", name, s.len, ids.n);
    forge_tokens_free(&ids);
    sb_free(&s);
    sb_free(&js);
    json_free(g);
    forge_tokenizer_close(tok);
}

TEST(smollm2) { one_fixture("smollm2"); }
TEST(qwen3) { one_fixture("qwen3"); }
TEST(llama3) { one_fixture("llama3"); }
TEST(mistral) { one_fixture("mistral"); }
TEST(llama2) { one_fixture("llama2"); }
TEST(stories260K) { one_fixture("stories260K"); }
/* Gemma 2's (and 1's) SentencePiece-style BPE with byte fallback, no pre-tokenizer; Gemma 3's
 * with a Split on spaces and 6,415 added tokens */
TEST(gemma) { one_fixture("gemma"); }
TEST(gemma3) { one_fixture("gemma3"); }

/* Llama 3.x as published: post_processor Sequence[ByteLevel, TemplateProcessing] */
TEST(llama3_sequence_post_processor) {
    json_doc *g = load_json(FIX "llama3/golden-seq.json");
    json_doc *base = load_json(FIX "llama3/tokenizer.json");
    CHECK(g && base);
    if (!g || !base) goto out;
    strbuf sb = STRBUF_INIT;
    const json_value *root = json_root(base);
    sb_putc(&sb, '{');
    for (size_t i = 0; i < root->n; i++) {
        const json_member *m = &root->u.members[i];
        if (i) sb_putc(&sb, ',');
        json_write_string(&sb, m->key, m->key_len, false);
        sb_putc(&sb, ':');
        json_write_value(&sb, strcmp(m->key, "post_processor") ? m->value : json_get(json_root(g), "post_processor"));
    }
    sb_putc(&sb, '}');
    forge_error err;
    forge_tokenizer *tok = forge_tokenizer_load(sb.data, sb.len, NULL, 0, &err);
    CHECKF(tok, "%s", err.msg);
    if (tok) {
        report("llama3-seq", check_golden(tok, json_root(g), "llama3-seq"));
        CHECK(forge_tokenizer_get_info(tok)->add_bos == false); /* no tokenizer_config: no bos_token */
        forge_tokens ids = {0};
        CHECK(forge_tokenizer_encode(tok, "Hi", 2, FORGE_ENCODE_ADD_SPECIAL, &ids, &err) == FORGE_OK);
        CHECK(ids.n == 2 && ids.ids[0] == 128000);
        forge_tokens_free(&ids);
    }
    forge_tokenizer_close(tok);
    sb_free(&sb);
out:
    json_free(g);
    json_free(base);
}

TEST(variants) {
    static const char *const names[] = {
        "split-Removed", "split-Removed-invert", "split-Isolated", "split-Isolated-invert",
        "split-MergedWithPrevious", "split-MergedWithPrevious-invert", "split-MergedWithNext",
        "split-MergedWithNext-invert", "split-Contiguous", "split-Contiguous-invert", "split-string",
        "metaspace-always", "metaspace-always-nosplit", "metaspace-first", "metaspace-first-nosplit",
        "metaspace-never", "metaspace-never-nosplit", "digits", "added-flags", "no-decoder"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[256], gp[256];
        snprintf(p, sizeof p, FIX "variants/%s.json", names[i]);
        snprintf(gp, sizeof gp, FIX "variants/%s.golden.json", names[i]);
        char *text = NULL;
        size_t len = 0;
        forge_error err;
        CHECK(file_read_all(p, (size_t)1 << 26, &text, &len, &err) == FORGE_OK);
        forge_tokenizer *tok = text ? forge_tokenizer_load(text, len, NULL, 0, &err) : NULL;
        CHECKF(tok, "%s: %s", names[i], err.msg);
        json_doc *g = load_json(gp);
        if (tok && g) report(names[i], check_golden(tok, json_root(g), names[i]));
        json_free(g);
        forge_tokenizer_close(tok);
        free(text);
    }
}

/* llama.cpp's vectors: strings separated by "\n__ggml_vocab_test__\n", one line of ids each,
 * no special tokens added. */
static void vectors(const char *tokdir, const char *vname) {
    char p[256];
    char *inp = NULL, *outp = NULL;
    size_t ni, no;
    forge_error err;
    snprintf(p, sizeof p, FIX "vectors/ggml-vocab-%s.gguf.inp", vname);
    CHECK(file_read_all(p, 1 << 20, &inp, &ni, &err) == FORGE_OK);
    snprintf(p, sizeof p, FIX "vectors/ggml-vocab-%s.gguf.out", vname);
    CHECK(file_read_all(p, 1 << 20, &outp, &no, &err) == FORGE_OK);
    forge_tokenizer *tok = forge_tokenizer_open(tokdir, &err);
    CHECK(tok);
    if (!inp || !outp || !tok) goto out;
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    char *s = inp, *o = outp;
    int total = 0, equal = 0;
    forge_tokens ids = {0};
    while (*s && *o) {
        char *e = strstr(s, SEP);
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *eol = strchr(o, '\n');
        if (eol) *eol = 0;
        forge_tokens want = {0};
        for (char *q = o; *q;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            want.ids = realloc(want.ids, (want.n + 1) * sizeof *want.ids);
            want.ids[want.n++] = (int32_t)v;
            q = end;
        }
        ids.n = 0;
        forge_tokenizer_encode(tok, s, n, 0, &ids, &err);
        total++;
        if (ids.n == want.n && (!ids.n || !memcmp(ids.ids, want.ids, ids.n * sizeof *ids.ids))) equal++;
        else printf("    %s vector %d differs: %.*s\n", vname, total, (int)(n > 60 ? 60 : n), s);
        forge_tokens_free(&want);
        if (!e || !eol) break;
        s = e + sizeof SEP - 1;
        o = eol + 1;
    }
    printf("    table: llama.cpp %-18s strings %3d  equal %3d\n", vname, total, equal);
    CHECKF(equal == total && total > 30, "%s: %d of %d vectors differ", vname, total - equal, total);
    forge_tokens_free(&ids);
out:
    forge_tokenizer_close(tok);
    free(inp);
    free(outp);
}

TEST(llamacpp_vectors) {
    vectors(FIX "llama3", "llama-bpe");
    vectors(FIX "qwen3", "qwen2");
    vectors(FIX "llama2", "llama-spm");
}

static char *slurp(const char *path, size_t *len) {
    char *t = NULL;
    forge_error err;
    if (file_read_all(path, (size_t)1 << 26, &t, len, &err)) return NULL;
    return t;
}

/* LlamaTokenizer's add_bos_token / add_eos_token replace the template (hand-written ids) */
TEST(llama_add_eos_token) {
    size_t len;
    char *json = slurp(FIX "mistral/tokenizer.json", &len);
    CHECK(json);
    if (!json) return;
    static const char cfg[] = "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_eos_token\": true,"
                              " \"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\"}";
    forge_error err;
    forge_tokenizer *tok = forge_tokenizer_load(json, len, cfg, sizeof cfg - 1, &err);
    CHECKF(tok, "%s", err.msg);
    if (tok) {
        const forge_tokenizer_info *in = forge_tokenizer_get_info(tok);
        CHECK(in->add_bos && in->add_eos && in->bos_id == 1 && in->eos_id == 2);
        CHECK_EQ_STR(in->bos_token, "<s>");
        forge_tokens ids = {0};
        CHECK(forge_tokenizer_encode(tok, "Hello", 5, FORGE_ENCODE_ADD_SPECIAL, &ids, &err) == FORGE_OK);
        /* <s> ▁Hello </s>: 22557 is "▁Hello" in Mistral's vocab */
        CHECK(ids.n == 3 && ids.ids[0] == 1 && ids.ids[1] == 22557 && ids.ids[2] == 2);
        ids.n = 0;
        CHECK(forge_tokenizer_encode(tok, "Hello", 5, 0, &ids, &err) == FORGE_OK);
        CHECK(ids.n == 1 && ids.ids[0] == 22557);
        forge_tokens_free(&ids);
    }
    forge_tokenizer_close(tok);
    static const char cfg2[] = "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"add_bos_token\": false, \"bos_token\": \"<s>\"}";
    tok = forge_tokenizer_load(json, len, cfg2, sizeof cfg2 - 1, &err);
    CHECK(tok);
    if (tok) {
        forge_tokens ids = {0};
        CHECK(forge_tokenizer_encode(tok, "Hello", 5, FORGE_ENCODE_ADD_SPECIAL, &ids, &err) == FORGE_OK);
        CHECK(ids.n == 1 && ids.ids[0] == 22557);
        CHECK(!forge_tokenizer_get_info(tok)->add_bos);
        forge_tokens_free(&ids);
    }
    forge_tokenizer_close(tok);
    free(json);
}

TEST(info_and_lookups) {
    static const struct { const char *name, *bos, *eos; int bos_id, eos_id, vocab; bool add_bos; } T[] = {
        {"smollm2", "<|im_start|>", "<|im_end|>", 1, 2, 49152, false},
        {"qwen3", NULL, "<|im_end|>", -1, 151645, 151669, false},
        {"llama3", "<|begin_of_text|>", "<|end_of_text|>", 128000, 128001, 128256, false},
        {"mistral", "<s>", "</s>", 1, 2, 32000, true},
        {"llama2", "<s>", "</s>", 1, 2, 32000, true},
        {"stories260K", "<s>", "</s>", 1, 2, 512, true},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, FIX "%s", T[i].name);
        forge_error err;
        forge_tokenizer *tok = forge_tokenizer_open(dir, &err);
        CHECKF(tok, "%s", err.msg);
        if (!tok) continue;
        const forge_tokenizer_info *in = forge_tokenizer_get_info(tok);
        CHECKF(in->bos_id == T[i].bos_id && in->eos_id == T[i].eos_id, "%s: bos %d eos %d", T[i].name, in->bos_id, in->eos_id);
        CHECKF(in->vocab_size == T[i].vocab, "%s: vocab %d", T[i].name, in->vocab_size);
        CHECKF(in->add_bos == T[i].add_bos && !in->add_eos, "%s: add_bos %d", T[i].name, in->add_bos);
        CHECK((T[i].bos == NULL) == (in->bos_token == NULL));
        if (T[i].bos && in->bos_token) CHECK_EQ_STR(in->bos_token, T[i].bos);
        CHECK_EQ_STR(in->eos_token, T[i].eos);
        CHECK(forge_tokenizer_is_special(tok, T[i].eos_id));
        CHECK(forge_tokenizer_token_to_id(tok, T[i].eos, strlen(T[i].eos)) == T[i].eos_id);
        forge_tokenizer_close(tok);
    }
    forge_error err;
    forge_tokenizer *tok = forge_tokenizer_open(FIX "llama3", &err);
    CHECK(tok);
    if (!tok) return;
    size_t n;
    CHECK_EQ_STR(forge_tokenizer_id_to_token(tok, 9906, &n), "Hello");
    CHECK_EQ_STR(forge_tokenizer_id_to_token(tok, 1917, &n), "\xC4\xA0world"); /* "Ġworld" */
    CHECK(forge_tokenizer_token_to_id(tok, "\xC4\xA0world", 7) == 1917);
    CHECK(forge_tokenizer_id_to_token(tok, 999999, &n) == NULL);
    char buf[16];
    CHECK(forge_tokenizer_token_bytes(tok, 1917, buf, sizeof buf) == 6 && !memcmp(buf, " world", 6));
    int32_t id = forge_tokenizer_token_to_id(tok, "\xC3\xA4", 2); /* "ä": the byte 0xE4 */
    CHECK(id >= 0 && forge_tokenizer_token_bytes(tok, id, buf, sizeof buf) == 1 && (unsigned char)buf[0] == 0xE4);
    forge_tokenizer_close(tok);
    tok = forge_tokenizer_open(FIX "llama2", &err);
    CHECK(tok);
    if (!tok) return;
    id = forge_tokenizer_token_to_id(tok, "<0x0A>", 6);
    CHECK(id == 13 && forge_tokenizer_token_bytes(tok, id, buf, sizeof buf) == 1 && buf[0] == '\n');
    id = forge_tokenizer_token_to_id(tok, "\xE2\x96\x81the", 6);
    CHECK(id >= 0 && forge_tokenizer_token_bytes(tok, id, buf, sizeof buf) == 4 && !memcmp(buf, " the", 4));
    CHECK(!forge_tokenizer_is_special(tok, id) && forge_tokenizer_is_special(tok, 1));
    forge_tokenizer_close(tok);
    tok = forge_tokenizer_open(FIX "qwen3", &err);
    CHECK(tok);
    if (!tok) return;
    id = forge_tokenizer_token_to_id(tok, "<think>", 7);
    CHECK(id == 151667 && !forge_tokenizer_is_special(tok, id)); /* added but not special */
    forge_tokenizer_close(tok);
}

/* decode(prompt + generated) minus decode(prompt), with the SentencePiece leading-space rule
 * and byte-fallback runs cut between prompt and generation */
TEST(detok_priming) {
    static const char *const dirs[] = {FIX "llama2", FIX "llama3", FIX "qwen3", FIX "mistral"};
    static const char *const texts[] = {"Hello world, 中文 and 👨‍👩‍👧‍👦 emoji", " leading", "中", "a\n\nb"};
    for (size_t k = 0; k < 4; k++) {
        forge_error err;
        forge_tokenizer *tok = forge_tokenizer_open(dirs[k], &err);
        CHECK(tok);
        if (!tok) continue;
        forge_detok *d = forge_detok_create(tok, 0, &err);
        for (size_t t = 0; t < 4; t++) {
            forge_tokens ids = {0};
            forge_tokenizer_encode(tok, texts[t], strlen(texts[t]), FORGE_ENCODE_ADD_SPECIAL, &ids, &err);
            for (size_t cut = 0; cut <= ids.n; cut++) {
                size_t la, lb;
                char *all = forge_tokenizer_decode(tok, ids.ids, ids.n, 0, &la, &err);
                char *pre = forge_tokenizer_decode(tok, ids.ids, cut, 0, &lb, &err);
                forge_detok_reset(d, 0);
                CHECK(forge_detok_prime(d, ids.ids, cut, &err) == FORGE_OK);
                strbuf sb = STRBUF_INIT;
                for (size_t i = cut; i < ids.n; i++) {
                    const char *p;
                    size_t n;
                    forge_detok_push(d, ids.ids[i], &p, &n, &err);
                    sb_append(&sb, p, n);
                }
                const char *p;
                size_t n;
                forge_detok_finish(d, &p, &n, &err);
                sb_append(&sb, p, n);
                /* exact when decode(prompt) is a prefix of decode(all) */
                if (lb <= la && !memcmp(all, pre, lb))
                    CHECKF(sb.len == la - lb && !memcmp(sb_str(&sb), all + lb, sb.len),
                           "%s text %zu cut %zu: got \"%s\" want \"%s\"", dirs[k], t, cut, sb_str(&sb), all + lb);
                sb_free(&sb);
                free(all);
                free(pre);
            }
            forge_tokens_free(&ids);
        }
        forge_detok_free(d);
        forge_tokenizer_close(tok);
    }
}

TEST(clean_up_spaces) {
    forge_error err;
    forge_tokenizer *tok = forge_tokenizer_open(FIX "llama3", &err);
    CHECK(tok);
    if (!tok) return;
    CHECK(forge_tokenizer_get_info(tok)->clean_up_tokenization_spaces);
    static const char text[] = "Hello , world ! Is n't it ? I 'm here . He 's ' ok ' , we 're , you 've";
    forge_tokens ids = {0};
    forge_tokenizer_encode(tok, text, sizeof text - 1, 0, &ids, &err);
    size_t len;
    char *s = forge_tokenizer_decode(tok, ids.ids, ids.n, FORGE_DECODE_CLEAN_UP_SPACES, &len, &err);
    /* transformers' clean_up_tokenization, by hand */
    CHECK_EQ_STR(s, "Hello, world! Isn't it? I'm here. He's'ok ', we're, you've");
    free(s);
    s = forge_tokenizer_decode(tok, ids.ids, ids.n, 0, &len, &err);
    CHECK_EQ_STR(s, text);
    free(s);
    forge_tokens_free(&ids);
    forge_tokenizer_close(tok);
}

static void expect_error(const char *json, const char *needle) {
    forge_error err = {0};
    forge_tokenizer *tok = forge_tokenizer_load(json, strlen(json), NULL, 0, &err);
    CHECKF(!tok && strstr(err.msg, needle), "want an error naming \"%s\", got \"%s\"", needle, tok ? "(loaded)" : err.msg);
    forge_tokenizer_close(tok);
}

TEST(malformed) {
    expect_error("", "tokenizer.json");
    expect_error("[]", "expected a JSON object");
    expect_error("{}", "model");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", "model.vocab");
    expect_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}, \"merges\": []}}", "model.type");
    expect_error("{\"model\": {\"vocab\": {\"a\": \"x\"}, \"merges\": []}}", "model.vocab[\"a\"]");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", "model.merges[0]");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", "model.merges[0]");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [[\"a\", \"b\"]]}}", "merged token");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"Bert\"}}", "normalizer.type");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Sequence\","
                 " \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}]}}",
                 "pre_tokenizer.pretokenizers[0]");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"id\": -1, \"content\": \"x\"}]}",
                 "added_tokens[0].id");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"Strip\", \"content\": \"ab\"}}",
                 "decoder.content");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"post_processor\": {\"type\": \"TemplateProcessing\","
                 " \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}, {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {}}}",
                 "post_processor.special_tokens");
    forge_error err = {0};
    CHECK(forge_tokenizer_open("tests/fixtures/tokenizers/does-not-exist", &err) == NULL);
    CHECK(strstr(err.msg, "does-not-exist") != NULL);
}

/* Long words and runs stay fast (heap merges, no rescans): 256 KB in one piece each. */
TEST(long_inputs) {
    static const char *const dirs[] = {FIX "llama3", FIX "llama2", FIX "qwen3"};
    size_t n = 256 * 1024;
    char *a = malloc(n), *sp = malloc(n), *lt = malloc(n), *em = malloc(n);
    for (size_t i = 0; i < n; i += 4) memcpy(em + i, "\xF0\x9F\x98\x80", 4); /* one byte-fallback run */
    memset(a, 'a', n);
    memset(sp, ' ', n);
    memset(lt, '<', n);
    for (size_t k = 0; k < 3; k++) {
        forge_error err;
        forge_tokenizer *tok = forge_tokenizer_open(dirs[k], &err);
        CHECK(tok);
        if (!tok) continue;
        const char *texts[] = {a, sp, lt, em};
        for (int i = 0; i < 4; i++) {
            forge_tokens ids = {0};
            CHECK(forge_tokenizer_encode(tok, texts[i], n, 0, &ids, &err) == FORGE_OK);
            CHECK(ids.n > 0 && ids.n <= n + 1);
            size_t len;
            char *back = forge_tokenizer_decode(tok, ids.ids, ids.n, 0, &len, &err);
            CHECKF(back && len == n && !memcmp(back, texts[i], n), "%s: round trip of 256 KB", dirs[k]);
            free(back);
            forge_tokens_free(&ids);
        }
        forge_tokenizer_close(tok);
    }
    free(a);
    free(sp);
    free(lt);
    free(em);
}

/* One tokenizer, four threads encoding at once: the same ids as alone. */
typedef struct {
    const forge_tokenizer *tok;
    const char *text;
    forge_tokens ids;
    int rc;
} enc_job;

static void *enc_thread(void *p) {
    enc_job *j = p;
    forge_error err;
    for (int r = 0; r < 20 && !j->rc; r++) {
        j->ids.n = 0;
        j->rc = forge_tokenizer_encode(j->tok, j->text, strlen(j->text), FORGE_ENCODE_ADD_SPECIAL, &j->ids, &err);
    }
    return NULL;
}

TEST(concurrent_encode) {
    forge_error err;
    forge_tokenizer *tok = forge_tokenizer_open(FIX "qwen3", &err);
    CHECK(tok);
    if (!tok) return;
    static const char text[] = "<|im_start|>user\nHello, 世界! café 12345 <think>x</think>\n";
    forge_tokens ref = {0};
    CHECK(forge_tokenizer_encode(tok, text, sizeof text - 1, FORGE_ENCODE_ADD_SPECIAL, &ref, &err) == FORGE_OK);
    enc_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (enc_job){tok, text, {0}, 0};
        pthread_create(&th[i], NULL, enc_thread, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].rc == 0 && jobs[i].ids.n == ref.n && !memcmp(jobs[i].ids.ids, ref.ids, ref.n * sizeof *ref.ids));
        forge_tokens_free(&jobs[i].ids);
    }
    forge_tokens_free(&ref);
    forge_tokenizer_close(tok);
}

int main(void) {
    RUN(smollm2);
    RUN(qwen3);
    RUN(llama3);
    RUN(mistral);
    RUN(llama2);
    RUN(stories260K);
    RUN(gemma);
    RUN(gemma3);
    RUN(llama3_sequence_post_processor);
    RUN(variants);
    RUN(llamacpp_vectors);
    RUN(llama_add_eos_token);
    RUN(info_and_lookups);
    RUN(detok_priming);
    RUN(clean_up_spaces);
    RUN(malformed);
    RUN(long_inputs);
    RUN(concurrent_encode);
    return t_summary();
}
