/* tok_internal.h: the tokenizer's internal structures, shared by its modules.
 *
 * Pipeline (as HF tokenizers' encode): added tokens are cut out of the raw text first
 * (tok_added.c), the remaining segments are normalized (tok_normalize.c), normalized added
 * tokens are cut out, then pre-tokenized into pieces (tok_pretok.c), each piece goes
 * through BPE (tok_bpe.c), and the post-processor adds BOS/EOS (tok_encode.c). Decoding
 * runs the decoder chain incrementally (tok_decode.c), one token at a time, so that the
 * one-shot decode and the streaming detokenizer are the same code. */
#ifndef FORGE_TOKENIZER_INTERNAL_H
#define FORGE_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "base/hashmap.h"
#include "base/json.h"
#include "base/strbuf.h"
#include "base/utf8.h"
#include "forge.h"

/* ----- patterns (Split, Replace) ----- */

typedef struct tok_pattern {
    char *lit; /* literal string pattern (String) when re is NULL */
    size_t lit_len;
    pcre2_code *re; /* compiled Regex (PCRE2_UTF|PCRE2_UCP, JIT when available) */
    bool jit;
} tok_pattern;

/* ----- normalizers ----- */

typedef enum {
    NORM_NFC,
    NORM_NFD,
    NORM_NFKC,
    NORM_NFKD,
    NORM_LOWERCASE,
    NORM_PREPEND,
    NORM_REPLACE,
    NORM_STRIP,
} norm_kind;

typedef struct tok_norm {
    norm_kind kind;
    tok_pattern pat;  /* REPLACE */
    char *content;    /* PREPEND / REPLACE */
    size_t content_len;
    bool left, right; /* STRIP */
} tok_norm;

/* ----- pre-tokenizers ----- */

typedef enum {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_PREV,
    SPLIT_MERGED_NEXT,
    SPLIT_CONTIGUOUS,
} split_behavior;

typedef enum {
    PRE_SPLIT,
    PRE_BYTELEVEL,
    PRE_DIGITS,
    PRE_METASPACE,
    PRE_WHITESPACE_SPLIT,
    PRE_PUNCTUATION,
} pre_kind;

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } prepend_scheme;

typedef struct tok_pre {
    pre_kind kind;
    tok_pattern pat; /* SPLIT, BYTELEVEL (GPT-2 regex when use_regex) */
    split_behavior behavior;
    bool invert;
    bool add_prefix_space; /* BYTELEVEL */
    bool use_regex;        /* BYTELEVEL */
    bool individual;       /* DIGITS */
    char repl[8];          /* METASPACE replacement (UTF-8) */
    int repl_len;
    prepend_scheme scheme; /* METASPACE */
    bool split;            /* METASPACE */
} tok_pre;

/* ----- added tokens ----- */

typedef struct tok_added {
    int32_t id;
    char *content; /* as written in tokenizer.json */
    size_t len;
    char *norm;    /* normalized content (normalized tokens whose content changes), else NULL */
    size_t norm_len;
    bool special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* A byte trie over added-token contents, matched leftmost-longest. */
typedef struct trie_node {
    int32_t child;   /* first child node, -1 none */
    int32_t sibling; /* next sibling, -1 none */
    int32_t token;   /* index into tok->added ending here, -1 none */
    unsigned char byte;
} trie_node;

typedef struct tok_trie {
    trie_node *nodes; /* node 0 is the root */
    int32_t n, cap;
    uint8_t first[32]; /* bitmap of first bytes */
    bool empty;
} tok_trie;

/* ----- post-processors ----- */

typedef struct tok_post {
    int32_t *prefix, *suffix; /* ids added before / after the sequence with add_special_tokens */
    int n_prefix, n_suffix;
} tok_post;

/* ----- decoders ----- */

typedef enum {
    DEC_REPLACE,
    DEC_BYTE_FALLBACK,
    DEC_BYTELEVEL,
    DEC_FUSE,
    DEC_STRIP,
    DEC_METASPACE,
    DEC_JOIN_SPACE, /* no decoder: tokens joined with " " */
} dec_kind;

typedef struct tok_dec {
    dec_kind kind;
    tok_pattern pat; /* REPLACE */
    char *content;   /* REPLACE content; STRIP content char (UTF-8) */
    size_t content_len;
    int start, stop;     /* STRIP */
    char repl[8];        /* METASPACE */
    int repl_len;
    bool prepend_never;  /* METASPACE prepend_scheme == never */
} tok_dec;

#define TOK_MAX_NORM 8
#define TOK_MAX_PRE 8
#define TOK_MAX_DEC 8

/* ----- BPE model ----- */

typedef struct tok_bpe {
    strmap vocab;     /* model key -> id (raw bytes for byte-level, token string otherwise) */
    strmap extra;     /* byte-level: token strings with chars outside the byte map */
    char *keys;       /* pool of raw-byte keys (byte-level) */
    u64map merges;    /* (left id << 32 | right id) -> rank */
    int32_t *merge_new; /* rank -> merged id */
    int32_t n_merges;
    int32_t byte_id[256]; /* byte-level: id of each single byte; byte fallback: <0xXX> ids */
    int32_t unk_id;       /* -1 none */
    bool byte_fallback, fuse_unk, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix / end_of_word_suffix (NULL none) */
    size_t prefix_len, suffix_len;
} tok_bpe;

/* Per-call scratch: regex match data, buffers and a word cache. Encode takes one from the
 * tokenizer's pool, so concurrent encodes never share one and warm calls do not malloc. */
typedef struct tok_scratch {
    struct tok_scratch *next;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    strbuf in, norm, tmp, arena;
    struct tok_piece *pieces, *pieces2;
    struct tok_piece *segs; /* split segments; .first marks a match */
    size_t n_pieces_cap, n_pieces2_cap, n_segs_cap;
    /* BPE word state */
    struct bpe_sym *syms;
    size_t syms_cap;
    uint64_t *heap;
    size_t heap_cap;
    /* word cache: open addressing, keys and ids in pools, cleared when full */
    struct cache_slot *cache;
    size_t cache_cap, cache_count;
    strbuf cache_keys;
    int32_t *cache_ids;
    size_t cache_ids_len, cache_ids_cap;
} tok_scratch;

typedef struct tok_piece {
    uint32_t off, len; /* into the scratch arena */
    bool first;        /* starts at byte 0 of the input (Metaspace prepend_scheme first) */
} tok_piece;

struct forge_tokenizer {
    /* id -> token string (HF convert_ids_to_tokens) */
    int32_t n_ids;       /* 1 + the largest id */
    uint32_t *tok_off;   /* n_ids + 1 offsets into tok_pool; tok_len[i] = off[i+1]-off[i]-1 */
    char *tok_pool;
    uint8_t *id_flags;   /* TOKF_* per id */
    int32_t model_vocab; /* number of ids the model's vocab holds */

    tok_norm norms[TOK_MAX_NORM];
    int n_norms;
    tok_pre pres[TOK_MAX_PRE];
    int n_pres;
    bool byte_level; /* a ByteLevel pre-tokenizer: the model sees raw bytes */
    tok_bpe bpe;

    tok_added *added;
    int n_added;
    strmap added_map; /* content -> index into added */
    tok_trie trie_raw, trie_norm;

    tok_post post;
    tok_dec decs[TOK_MAX_DEC];
    int n_decs;

    forge_tokenizer_info info;
    char *bos_str, *eos_str, *class_name;

    pthread_mutex_t pool_lock;
    tok_scratch *pool;
};

enum { TOKF_EXISTS = 1, TOKF_SPECIAL = 2, TOKF_ADDED = 4, TOKF_BYTE = 8 };

/* tok_unicode.c */
/* The byte-level alphabet: the char (code point) standing for each byte, and back. */
uint32_t bl_byte_char(unsigned char b);
/* The byte a code point stands for, or -1 when it is outside the byte-level alphabet. */
int bl_char_byte(uint32_t cp);
/* Length of the next unit of s[0..n) as from_utf8_lossy sees it: >0 a valid character of
 * that length; <0 an invalid sequence of -return bytes (one U+FFFD); 0 when the bytes are
 * a valid but incomplete prefix (more bytes could complete it). n must be > 0. */
int utf8_lossy_unit(const unsigned char *s, size_t n);
/* Appends s[0..n) to out, each invalid sequence replaced by U+FFFD (from_utf8_lossy). */
void utf8_append_lossy(strbuf *out, const char *s, size_t n);
/* Rust regex's \w and \s (Unicode), and char::is_numeric / is_ascii_punctuation-like. */
bool uni_is_word(uint32_t cp);
bool uni_is_space(uint32_t cp);
bool uni_is_numeric(uint32_t cp);
bool uni_is_punct(uint32_t cp);
/* Decodes the code point at s[*i] (valid UTF-8 assumed) and advances *i. */
uint32_t utf8_next(const char *s, size_t *i);
/* Start of the code point that ends right before position i (valid UTF-8 assumed). */
size_t utf8_prev(const char *s, size_t i);

/* tok_pattern (tok_pretok.c) */
forge_status pattern_parse(tok_pattern *p, const json_value *v, const char *where, forge_error *err);
forge_status pattern_compile_regex(tok_pattern *p, const char *re, size_t len, const char *where,
                                   forge_error *err);
void pattern_free(tok_pattern *p);
/* Next match of p in s[0..n) at or after `from`; false when none or on error (*rc < 0). */
bool pattern_find(const tok_pattern *p, tok_scratch *sc, const char *s, size_t n, size_t from,
                  size_t *ms, size_t *me, int *rc);

/* tok_normalize.c */
forge_status norm_parse(forge_tokenizer *t, const json_value *v, forge_error *err);
/* Applies the normalizer chain to s[0..n), result in out (reset first). */
forge_status norm_apply(const forge_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                        strbuf *out, forge_error *err);

/* tok_pretok.c */
forge_status pre_parse(forge_tokenizer *t, const json_value *v, forge_error *err);
/* Pre-tokenizes s[0..n) (copied into the arena); pieces land in sc->pieces. */
forge_status pre_apply(const forge_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                       bool first, size_t *n_pieces, forge_error *err);

/* tok_bpe.c */
forge_status bpe_load(forge_tokenizer *t, const json_value *model, forge_error *err);
void bpe_free(tok_bpe *b);
/* Tokenizes one pre-tokenized piece, appending ids to out. */
forge_status bpe_encode(const forge_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                        forge_tokens *out, forge_error *err);
void bpe_scratch_free(tok_scratch *sc);
/* Model id of a token string (HF model.token_to_id), -1 when absent. */
int32_t bpe_token_to_id(const forge_tokenizer *t, const char *s, size_t n);

/* tok_added.c */
forge_status added_parse(forge_tokenizer *t, const json_value *arr, forge_error *err);
forge_status added_build(forge_tokenizer *t, forge_error *err);
void added_free(forge_tokenizer *t);
/* Finds the next added-token match in s[0..n) starting the search at `from`, with HF's
 * single_word / lstrip / rstrip rules. Returns the index into t->added (-1 when none) and
 * the span [*ms, *me) to cut (lstrip never reaches below `floor`). */
int added_next(const forge_tokenizer *t, const tok_trie *tr, const char *s, size_t n, size_t from,
               size_t floor, bool split_special, size_t *ms, size_t *me);

/* tok_decode.c */
forge_status dec_parse(forge_tokenizer *t, const json_value *v, forge_error *err);
void dec_free(forge_tokenizer *t);

/* tok_encode.c */
forge_status post_parse(forge_tokenizer *t, const json_value *v, forge_error *err);
tok_scratch *scratch_get(const forge_tokenizer *t);
void scratch_put(const forge_tokenizer *t, tok_scratch *sc);
void scratch_free(tok_scratch *sc);

/* Token string of an id (HF id_to_token: added tokens' normalized content first), or NULL. */
static inline const char *tok_str(const forge_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_ids || !(t->id_flags[id] & TOKF_EXISTS)) return NULL;
    *len = t->tok_off[id + 1] - t->tok_off[id] - 1;
    return t->tok_pool + t->tok_off[id];
}

#endif
