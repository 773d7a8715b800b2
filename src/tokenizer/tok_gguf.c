/* tok_gguf.c: GGUF tokenizer metadata -> tokenizer.json + tokenizer_config.json text. */
#include "tokenizer/tok_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/hashmap.h"
#include "base/json.h"
#include "base/strbuf.h"
#include "model/gguf_model.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static const char RE_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
static const char RE_LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Texts llama.cpp (llama-vocab.cpp) treats as control tokens whatever their stored type:
 * end-of-generation, end-of-turn and fill-in-the-middle markers. */
static const char *const g_control_looking[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
    "[e~[", "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<SUF>", "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
};

static bool control_looking(gguf_str s) {
    for (size_t i = 0; i < sizeof g_control_looking / sizeof g_control_looking[0]; i++)
        if (s.len == strlen(g_control_looking[i]) && !memcmp(s.s, g_control_looking[i], s.len)) return true;
    return false;
}

static bool str_is(gguf_str s, const char *lit) { return s.len == strlen(lit) && !memcmp(s.s, lit, s.len); }

/* general.name contains "phi-3" or "phi3", case-insensitively (llama.cpp's test). */
static bool name_is_phi3(gguf_str s) {
    for (size_t i = 0; i < s.len; i++) {
        size_t left = s.len - i;
        if (left >= 5 && !strncasecmp(s.s + i, "phi-3", 5)) return true;
        if (left >= 4 && !strncasecmp(s.s + i, "phi3", 4)) return true;
    }
    return false;
}

typedef struct merge { int32_t a, b, piece; float score; } merge;

static int cmp_merge(const void *x, const void *y) {
    const merge *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    if (p->piece != q->piece) return p->piece < q->piece ? -1 : 1;
    return p->a < q->a ? -1 : p->a > q->a;
}

static int utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static void put_regex_split(strbuf *sb, const char *re) {
    sb_puts(sb, "{\"type\":\"Split\",\"pattern\":{\"Regex\":");
    json_write_string(sb, re, strlen(re), false);
    sb_puts(sb, "},\"behavior\":\"Isolated\",\"invert\":false}");
}

forge_status gguf_tokenizer_docs(const gguf_file *g, char **json, size_t *len, char **config, size_t *config_len,
                                 forge_error *err) {
    *json = *config = NULL;
    gguf_str model = {0}, pre = {0};
    forge_status st = gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (st == FORGE_E_NOT_FOUND) return err_set(err, FORGE_E_NOT_FOUND, "the GGUF has no tokenizer (no tokenizer.ggml.model)");
    if (st) return st;
    bool spm = str_is(model, "llama"), gpt2 = str_is(model, "gpt2");
    if (!spm && !gpt2)
        return err_set(err, FORGE_E_UNSUPPORTED, "tokenizer.ggml.model \"%.*s\" is not supported (llama, gpt2)",
                       (int)(model.len < 32 ? model.len : 32), model.s);
    const gguf_kv *toks = gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != GGUF_ARRAY || toks->arr_type != GGUF_STRING || toks->arr_n == 0 || toks->arr_n > (1u << 26))
        return err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.tokens must be a non-empty array of strings");
    size_t n = (size_t)toks->arr_n;
    const gguf_kv *types = gguf_find_kv(g, "tokenizer.ggml.token_type");
    const gguf_kv *scores = gguf_find_kv(g, "tokenizer.ggml.scores");
    const gguf_kv *merges = gguf_find_kv(g, "tokenizer.ggml.merges");
    if (types && (types->type != GGUF_ARRAY || types->arr_n != n || types->arr_type == GGUF_STRING))
        return err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.token_type must be a numeric array as long as the tokens");
    if (scores && (scores->type != GGUF_ARRAY || scores->arr_n != n || scores->arr_type == GGUF_STRING))
        return err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.scores must be a numeric array as long as the tokens");
    if (gpt2 && (!merges || merges->type != GGUF_ARRAY || merges->arr_type != GGUF_STRING))
        return err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.merges (an array of strings) is missing");
    if (spm && !scores) return err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.scores is missing (llama tokenizer)");

    /* pre-tokenizer and llama.cpp's defaults */
    bool add_bos = spm, add_eos = false, ignore_merges = false;
    const char *pre_json = NULL;
    strbuf pj = STRBUF_INIT;
    if (gpt2) {
        st = gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
        if (st && st != FORGE_E_NOT_FOUND) return st;
        if (!pre.s || str_is(pre, "gpt-2") || str_is(pre, "mpt") || str_is(pre, "olmo")) {
            sb_puts(&pj, "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":true}");
        } else if (str_is(pre, "llama3") || str_is(pre, "llama-v3") || str_is(pre, "llama-bpe")) {
            sb_puts(&pj, "{\"type\":\"Sequence\",\"pretokenizers\":[");
            put_regex_split(&pj, RE_LLAMA3);
            sb_puts(&pj, ",{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]}");
            ignore_merges = add_bos = true;
        } else if (str_is(pre, "qwen2") || str_is(pre, "stablelm2")) {
            sb_puts(&pj, "{\"type\":\"Sequence\",\"pretokenizers\":[");
            put_regex_split(&pj, RE_QWEN2);
            sb_puts(&pj, ",{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]}");
        } else if (str_is(pre, "default")) {
            /* llama.cpp's BPE default: four regexes, each splitting the pieces of the last */
            sb_puts(&pj, "{\"type\":\"Sequence\",\"pretokenizers\":[");
            put_regex_split(&pj, "[\\p{P}\\$\\+<=>\\^~\\|]+");
            sb_putc(&pj, ',');
            put_regex_split(&pj, RE_GPT2);
            sb_putc(&pj, ',');
            put_regex_split(&pj, "\\p{N}+");
            sb_putc(&pj, ',');
            put_regex_split(&pj, "[0-9][0-9][0-9]");
            sb_puts(&pj, ",{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]}");
        } else if (str_is(pre, "smollm") || str_is(pre, "starcoder") || str_is(pre, "refact") || str_is(pre, "command-r")) {
            sb_puts(&pj, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},");
            put_regex_split(&pj, RE_GPT2);
            sb_puts(&pj, ",{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]}");
        } else {
            return err_set(err, FORGE_E_UNSUPPORTED,
                           "tokenizer.ggml.pre \"%.*s\" is not supported (llama-bpe, llama3, qwen2, smollm, starcoder, gpt-2, default)",
                           (int)(pre.len < 40 ? pre.len : 40), pre.s);
        }
        if (sb_failed(&pj)) return err_set(err, FORGE_E_NOMEM, "out of memory");
        pre_json = sb_str(&pj);
    }
    bool b;
    if ((st = gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, err)) == FORGE_OK) add_bos = b;
    else if (st != FORGE_E_NOT_FOUND) goto out_pj;
    if ((st = gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b, err)) == FORGE_OK) add_eos = b;
    else if (st != FORGE_E_NOT_FOUND) goto out_pj;
    bool space_prefix = true;
    if ((st = gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b, err)) == FORGE_OK) space_prefix = b;
    else if (st != FORGE_E_NOT_FOUND) goto out_pj;
    /* Phi-3's added tokens strip the whitespace after them (rstrip in its tokenizer.json),
     * which GGUF does not store: llama.cpp (llama-vocab.cpp) restores it for a general.name
     * containing "phi-3" or "phi3", on every control/user/unknown token and </s>, but not
     * <unk>, <s> and <|endoftext|>. */
    bool phi3_rstrip = false;
    gguf_str gname;
    if ((st = gguf_get_str(g, "general.name", &gname, err)) == FORGE_OK) phi3_rstrip = name_is_phi3(gname);
    else if (st != FORGE_E_NOT_FOUND) goto out_pj;
    st = FORGE_OK;

    gguf_str *tok = malloc(n * sizeof *tok);
    int *tt = malloc(n * sizeof *tt);
    merge *mg = NULL;
    size_t n_mg = 0, cap_mg = 0;
    strmap map = {0};
    strbuf sb = STRBUF_INIT, cb = STRBUF_INIT;
    if (!tok || !tt || !strmap_init(&map, n)) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    gguf_arr_strings(toks, tok);
    for (size_t i = 0; i < n; i++) {
        tt[i] = types ? (int)gguf_arr_num(types, i) : TT_NORMAL;
        if (tt[i] != TT_CONTROL && control_looking(tok[i])) tt[i] = TT_CONTROL;
        if (strmap_get(&map, tok[i].s, tok[i].len) < 0 && !strmap_put(&map, tok[i].s, tok[i].len, (int32_t)i)) {
            st = err_set(err, FORGE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    int64_t bos = -1, eos = -1, unk = -1;
    gguf_get_int(g, "tokenizer.ggml.bos_token_id", &bos, NULL);
    gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos, NULL);
    gguf_get_int(g, "tokenizer.ggml.unknown_token_id", &unk, NULL);
    if (bos >= (int64_t)n || eos >= (int64_t)n || unk >= (int64_t)n) {
        st = err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.bos/eos/unknown_token_id lies outside the %zu tokens", n);
        goto out;
    }
    if (spm && unk < 0)
        for (size_t i = 0; i < n && unk < 0; i++)
            if (tt[i] == TT_UNKNOWN) unk = (int64_t)i;

    /* tokenizer.json */
    sb_puts(&sb, "{\"version\":\"1.0\",\"added_tokens\":[");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        bool special = tt[i] == TT_CONTROL || tt[i] == TT_UNKNOWN;
        if (!special && tt[i] != TT_USER) continue;
        if (!tok[i].len) continue;
        sb_printf(&sb, "%s{\"id\":%zu,\"content\":", first ? "" : ",", i);
        json_write_string(&sb, tok[i].s, tok[i].len, false);
        bool rstrip = phi3_rstrip && !str_is(tok[i], "<unk>") && !str_is(tok[i], "<s>") && !str_is(tok[i], "<|endoftext|>");
        sb_printf(&sb, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":%s,\"normalized\":false,\"special\":%s}",
                  rstrip ? "true" : "false", special ? "true" : "false");
        first = false;
    }
    sb_puts(&sb, "],");
    if (spm) {
        if (space_prefix)
            sb_puts(&sb, "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},"
                         "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]},");
        else
            sb_puts(&sb, "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"},");
        sb_puts(&sb, "\"pre_tokenizer\":null,\"post_processor\":null,");
        sb_printf(&sb, "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},"
                       "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}%s]},",
                  space_prefix ? ",{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}" : "");
        sb_puts(&sb, "\"model\":{\"type\":\"BPE\",\"fuse_unk\":true,\"byte_fallback\":true,\"unk_token\":");
        if (unk >= 0) json_write_string(&sb, tok[unk].s, tok[unk].len, false);
        else sb_puts(&sb, "null");
    } else {
        sb_printf(&sb, "\"normalizer\":null,\"pre_tokenizer\":%s,\"post_processor\":null,", pre_json);
        sb_puts(&sb, "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false},");
        sb_printf(&sb, "\"model\":{\"type\":\"BPE\",\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":%s,\"unk_token\":null",
                  ignore_merges ? "true" : "false");
    }
    sb_puts(&sb, ",\"vocab\":{");
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putc(&sb, ',');
        json_write_string(&sb, tok[i].s, tok[i].len, false);
        sb_printf(&sb, ":%zu", i);
    }
    sb_puts(&sb, "},\"merges\":[");
    if (gpt2) {
        gguf_str *ms = malloc((merges->arr_n ? merges->arr_n : 1) * sizeof *ms);
        if (!ms) {
            st = err_set(err, FORGE_E_NOMEM, "out of memory");
            goto out;
        }
        gguf_arr_strings(merges, ms);
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            if (i) sb_putc(&sb, ',');
            json_write_string(&sb, ms[i].s, ms[i].len, false);
        }
        free(ms);
    } else {
        /* every split of a normal piece into two normal pieces, by the piece's score */
        for (size_t i = 0; i < n; i++) {
            if (tt[i] != TT_NORMAL) continue;
            const char *s = tok[i].s;
            for (size_t k = (size_t)utf8_len((unsigned char)s[0]); k < tok[i].len; k += (size_t)utf8_len((unsigned char)s[k])) {
                int32_t a = strmap_get(&map, s, k), c = strmap_get(&map, s + k, tok[i].len - k);
                if (a < 0 || c < 0 || tt[a] != TT_NORMAL || tt[c] != TT_NORMAL) continue;
                if (n_mg == cap_mg) {
                    cap_mg = cap_mg ? cap_mg * 2 : 4096;
                    merge *p = realloc(mg, cap_mg * sizeof *p);
                    if (!p) {
                        st = err_set(err, FORGE_E_NOMEM, "out of memory");
                        goto out;
                    }
                    mg = p;
                }
                mg[n_mg++] = (merge){a, c, (int32_t)i, (float)gguf_arr_num(scores, i)};
            }
        }
        qsort(mg, n_mg, sizeof *mg, cmp_merge);
        for (size_t i = 0; i < n_mg; i++) {
            sb_puts(&sb, i ? ",[" : "[");
            json_write_string(&sb, tok[mg[i].a].s, tok[mg[i].a].len, false);
            sb_putc(&sb, ',');
            json_write_string(&sb, tok[mg[i].b].s, tok[mg[i].b].len, false);
            sb_putc(&sb, ']');
        }
    }
    sb_puts(&sb, "]}}");

    /* tokenizer_config.json */
    sb_puts(&cb, "{\"tokenizer_class\":\"LlamaTokenizerFast\",\"clean_up_tokenization_spaces\":false");
    sb_printf(&cb, ",\"add_bos_token\":%s,\"add_eos_token\":%s", add_bos && bos >= 0 ? "true" : "false",
              add_eos && eos >= 0 ? "true" : "false");
    if (bos >= 0) {
        sb_puts(&cb, ",\"bos_token\":");
        json_write_string(&cb, tok[bos].s, tok[bos].len, false);
    }
    if (eos >= 0) {
        sb_puts(&cb, ",\"eos_token\":");
        json_write_string(&cb, tok[eos].s, tok[eos].len, false);
    }
    if (unk >= 0) {
        sb_puts(&cb, ",\"unk_token\":");
        json_write_string(&cb, tok[unk].s, tok[unk].len, false);
    }
    gguf_str tpl;
    if ((st = gguf_get_str(g, "tokenizer.chat_template", &tpl, err)) == FORGE_OK) {
        sb_puts(&cb, ",\"chat_template\":");
        json_write_string(&cb, tpl.s, tpl.len, false);
    } else if (st != FORGE_E_NOT_FOUND) {
        goto out;
    }
    st = FORGE_OK;
    sb_putc(&cb, '}');
    if (sb_failed(&sb) || sb_failed(&cb)) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    *json = sb_take(&sb, len);
    *config = sb_take(&cb, config_len);
out:
    sb_free(&sb);
    sb_free(&cb);
    strmap_free(&map);
    free(mg);
    free(tok);
    free(tt);
out_pj:
    sb_free(&pj);
    return st;
}

forge_status gguf_tokenizer_docs_for(const char *path, int *docs, char **json, size_t *len, char **config,
                                     size_t *config_len, forge_error *err) {
    *docs = 0;
    char probe[4096];
    if (path_is_dir(path) && path_join(probe, sizeof probe, path, "tokenizer.json") == 0 && path_is_file(probe))
        return FORGE_OK; /* tokenizer.json wins in a folder */
    char file[4096];
    bool is_gguf;
    forge_status st = gguf_model_find(path, file, sizeof file, &is_gguf, err);
    if (st || !is_gguf) return st;
    gguf_file g;
    if ((st = gguf_open(&g, file, err))) {
        gguf_close(&g);
        return st;
    }
    st = gguf_tokenizer_docs(&g, json, len, config, config_len, err);
    gguf_close(&g);
    if (st) return err_prefix(err, "%s", file);
    *docs = 1;
    return FORGE_OK;
}
