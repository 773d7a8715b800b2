/* tok_load.c: opening a tokenizer: tokenizer.json's sections in dependency order, the id ->
 * token string table, tokenizer_config.json (BOS/EOS, LlamaTokenizer's add_bos/add_eos),
 * and the lookups of the public API. */
#include <stdlib.h>
#include <string.h>

#include "base/mfile.h"
#include "tokenizer/tok_gguf.h"
#include "tokenizer/tok_internal.h"

#define TOK_MAX_FILE ((size_t)1 << 30)

/* tokenizer_config's special tokens are strings or {"content": ...} (AddedToken) objects */
static const json_value *cfg_token(const json_value *cfg, const char *key) {
    const json_value *v = json_get(cfg, key);
    if (json_is(v, JSON_OBJECT)) v = json_get(v, "content");
    return json_is(v, JSON_STRING) ? v : NULL;
}

static char *dup_json_str(const json_value *v) {
    char *s = malloc(v->n + 1);
    if (s) memcpy(s, v->u.s, v->n + 1);
    return s;
}

/* The id -> token string table: model vocab strings, then added tokens (their normalized
 * content when normalization changes it, as HF's simple_id_to_token gives). */
static forge_status build_strings(forge_tokenizer *t, const json_value *vocab, forge_error *err) {
    const char **src = calloc((size_t)t->n_ids, sizeof *src);
    uint32_t *len = calloc((size_t)t->n_ids, sizeof *len);
    t->id_flags = calloc((size_t)t->n_ids, 1);
    t->tok_off = malloc(((size_t)t->n_ids + 1) * sizeof *t->tok_off);
    if (!src || !len || !t->id_flags || !t->tok_off) {
        free(src);
        free(len);
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < vocab->n; i++) {
        const json_member *m = &vocab->u.members[i];
        int32_t id = (int32_t)m->value->u.i; /* checked by bpe_load */
        src[id] = m->key;
        len[id] = (uint32_t)m->key_len;
        t->id_flags[id] = TOKF_EXISTS;
    }
    for (int i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        src[a->id] = a->norm ? a->norm : a->content;
        len[a->id] = (uint32_t)(a->norm ? a->norm_len : a->len);
        t->id_flags[a->id] = TOKF_EXISTS | TOKF_ADDED;
    }
    size_t total = 0;
    for (int32_t i = 0; i < t->n_ids; i++) total += len[i] + 1;
    if (total > UINT32_MAX) {
        free(src);
        free(len);
        return err_set(err, FORGE_E_RANGE, "model.vocab: token strings exceed 4 GiB");
    }
    t->tok_pool = malloc(total);
    if (!t->tok_pool) {
        free(src);
        free(len);
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    }
    size_t o = 0;
    for (int32_t i = 0; i < t->n_ids; i++) {
        t->tok_off[i] = (uint32_t)o;
        if (len[i]) memcpy(t->tok_pool + o, src[i], len[i]);
        t->tok_pool[o + len[i]] = 0;
        o += len[i] + 1;
    }
    t->tok_off[t->n_ids] = (uint32_t)o;
    free(src);
    free(len);
    /* special: HF skips any token whose string is the content of a special added token */
    for (int i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        if (!a->special) continue;
        for (int j = 0; j < t->n_added; j++) {
            size_t n;
            const char *s = tok_str(t, t->added[j].id, &n);
            if (s && n == a->len && !memcmp(s, a->content, n)) t->id_flags[t->added[j].id] |= TOKF_SPECIAL;
        }
        int32_t mid = bpe_token_to_id(t, a->content, a->len);
        if (mid >= 0 && !(t->id_flags[mid] & TOKF_ADDED)) t->id_flags[mid] |= TOKF_SPECIAL;
    }
    return FORGE_OK;
}

static forge_status load_config(forge_tokenizer *t, const json_value *cfg, forge_error *err) {
    const json_value *v;
    if ((v = cfg_token(cfg, "bos_token")) && !(t->bos_str = dup_json_str(v))) goto oom;
    if ((v = cfg_token(cfg, "eos_token")) && !(t->eos_str = dup_json_str(v))) goto oom;
    v = json_get(cfg, "tokenizer_class");
    t->class_name = json_is(v, JSON_STRING) ? dup_json_str(v) : calloc(1, 1);
    if (!t->class_name) goto oom;
    v = json_get(cfg, "clean_up_tokenization_spaces");
    t->info.clean_up_tokenization_spaces = json_is(v, JSON_BOOL) && v->u.b;
    t->info.bos_id = t->bos_str ? forge_tokenizer_token_to_id(t, t->bos_str, strlen(t->bos_str)) : -1;
    t->info.eos_id = t->eos_str ? forge_tokenizer_token_to_id(t, t->eos_str, strlen(t->eos_str)) : -1;
    /* transformers' LlamaTokenizerFast rebuilds the post-processor from add_bos_token
     * (default true) and add_eos_token (default false) */
    if (!strcmp(t->class_name, "LlamaTokenizer") || !strcmp(t->class_name, "LlamaTokenizerFast")) {
        v = json_get(cfg, "add_bos_token");
        bool add_bos = json_is(v, JSON_BOOL) ? v->u.b : true;
        v = json_get(cfg, "add_eos_token");
        bool add_eos = json_is(v, JSON_BOOL) && v->u.b;
        if ((add_bos && t->info.bos_id < 0) || (add_eos && t->info.eos_id < 0))
            return err_set(err, FORGE_E_FORMAT, "tokenizer_config.json: add_%s_token is true but %s_token is %s",
                           add_bos && t->info.bos_id < 0 ? "bos" : "eos", add_bos && t->info.bos_id < 0 ? "bos" : "eos",
                           (add_bos && t->info.bos_id < 0 ? t->bos_str : t->eos_str) ? "not in the vocab" : "missing");
        free(t->post.prefix);
        free(t->post.suffix);
        t->post.prefix = malloc(sizeof(int32_t));
        t->post.suffix = malloc(sizeof(int32_t));
        if (!t->post.prefix || !t->post.suffix) goto oom;
        t->post.n_prefix = add_bos;
        t->post.n_suffix = add_eos;
        t->post.prefix[0] = t->info.bos_id;
        t->post.suffix[0] = t->info.eos_id;
    }
    return FORGE_OK;
oom:
    return err_set(err, FORGE_E_NOMEM, "out of memory");
}

static forge_status load(forge_tokenizer *t, const json_value *root, const json_value *cfg,
                         forge_error *err) {
    if (!json_is(root, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "expected a JSON object");
    const json_value *model = json_get(root, "model");
    if (!json_is(model, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "model: expected an object");
    const json_value *vocab = json_get(model, "vocab");
    if (!json_is(vocab, JSON_OBJECT)) return err_set(err, FORGE_E_FORMAT, "model.vocab: expected an object");
    forge_status st;
    if ((st = norm_parse(t, json_get(root, "normalizer"), err))) return st;
    if ((st = pre_parse(t, json_get(root, "pre_tokenizer"), err))) return st;
    if ((st = added_parse(t, json_get(root, "added_tokens"), err))) return st;
    int64_t max_id = -1;
    for (size_t i = 0; i < vocab->n; i++) {
        const json_value *id = vocab->u.members[i].value;
        if (json_is(id, JSON_INT) && id->u.i > max_id) max_id = id->u.i;
    }
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    if (max_id >= 0x7FFFFFF) return err_set(err, FORGE_E_RANGE, "model.vocab: ids beyond 2^27");
    t->n_ids = (int32_t)(max_id + 1);
    t->model_vocab = (int32_t)vocab->n;
    if ((st = bpe_load(t, model, err))) return st;
    if ((st = added_build(t, err))) return st;
    if ((st = build_strings(t, vocab, err))) return st;
    if ((st = dec_parse(t, json_get(root, "decoder"), err))) return st;
    if ((st = post_parse(t, json_get(root, "post_processor"), err))) return st;
    if ((st = load_config(t, cfg, err))) return err_prefix(err, "tokenizer_config.json");
    t->info.vocab_size = t->n_ids;
    t->info.bos_token = t->bos_str;
    t->info.eos_token = t->eos_str;
    t->info.tokenizer_class = t->class_name;
    t->info.add_bos = t->post.n_prefix > 0 && t->post.prefix[0] == t->info.bos_id && t->info.bos_id >= 0;
    t->info.add_eos = t->post.n_suffix > 0 && t->post.suffix[t->post.n_suffix - 1] == t->info.eos_id &&
                      t->info.eos_id >= 0;
    return FORGE_OK;
}

forge_tokenizer *forge_tokenizer_load(const char *json, size_t len, const char *config,
                                      size_t config_len, forge_error *err) {
    if (!json || (!config && config_len)) {
        err_set(err, FORGE_E_INVALID, "forge_tokenizer_load: %s is NULL", !json ? "json" : "config");
        return NULL;
    }
    json_doc *doc = json_parse(json, len, err);
    if (!doc) {
        err_prefix(err, "tokenizer.json");
        return NULL;
    }
    json_doc *cdoc = NULL;
    if (config) {
        cdoc = json_parse(config, config_len, err);
        if (!cdoc) {
            err_prefix(err, "tokenizer_config.json");
            json_free(doc);
            return NULL;
        }
    }
    forge_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        err_set(err, FORGE_E_NOMEM, "out of memory");
        json_free(doc);
        json_free(cdoc);
        return NULL;
    }
    pthread_mutex_init(&t->pool_lock, NULL);
    t->info.bos_id = t->info.eos_id = -1;
    forge_status st = load(t, json_root(doc), cdoc ? json_root(cdoc) : NULL, err);
    if (st && strncmp(err ? err->msg : "", "tokenizer_config", 16)) err_prefix(err, "tokenizer.json");
    json_free(doc);
    json_free(cdoc);
    if (st) {
        forge_tokenizer_close(t);
        return NULL;
    }
    return t;
}

forge_tokenizer *forge_tokenizer_open(const char *dir, forge_error *err) {
    char path[4096], cpath[4096];
    /* a .gguf file, or a folder with a GGUF and no tokenizer.json: the GGUF's own tokenizer */
    int from_gguf = 0;
    char *gj = NULL, *gc = NULL;
    size_t gjl = 0, gcl = 0;
    if (dir && gguf_tokenizer_docs_for(dir, &from_gguf, &gj, &gjl, &gc, &gcl, err)) return NULL;
    if (from_gguf) {
        forge_tokenizer *t = forge_tokenizer_load(gj, gjl, gc, gcl, err);
        free(gj);
        free(gc);
        if (!t) err_prefix(err, "%s (GGUF tokenizer)", dir);
        return t;
    }
    if (!dir || path_join(path, sizeof path, dir, "tokenizer.json") ||
        path_join(cpath, sizeof cpath, dir, "tokenizer_config.json")) {
        err_set(err, FORGE_E_INVALID, "tokenizer: bad folder name");
        return NULL;
    }
    char *json = NULL, *cfg = NULL;
    size_t len = 0, clen = 0;
    if (file_read_all(path, TOK_MAX_FILE, &json, &len, err)) return NULL;
    if (path_is_file(cpath) && file_read_all(cpath, TOK_MAX_FILE, &cfg, &clen, err)) {
        free(json);
        return NULL;
    }
    forge_tokenizer *t = forge_tokenizer_load(json, len, cfg, clen, err);
    free(json);
    free(cfg);
    if (!t) err_prefix(err, "%s", dir);
    return t;
}

void forge_tokenizer_close(forge_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_norms; i++) {
        pattern_free(&t->norms[i].pat);
        free(t->norms[i].content);
    }
    for (int i = 0; i < t->n_pres; i++) pattern_free(&t->pres[i].pat);
    bpe_free(&t->bpe);
    added_free(t);
    dec_free(t);
    free(t->post.prefix);
    free(t->post.suffix);
    free(t->tok_off);
    free(t->tok_pool);
    free(t->id_flags);
    free(t->bos_str);
    free(t->eos_str);
    free(t->class_name);
    while (t->pool) {
        tok_scratch *n = t->pool->next;
        scratch_free(t->pool);
        t->pool = n;
    }
    pthread_mutex_destroy(&t->pool_lock);
    free(t);
}

const forge_tokenizer_info *forge_tokenizer_get_info(const forge_tokenizer *t) { return t ? &t->info : NULL; }

const char *forge_tokenizer_id_to_token(const forge_tokenizer *t, int32_t id, size_t *len) {
    if (!t) return NULL;
    size_t n;
    const char *s = tok_str(t, id, &n);
    if (s && len) *len = n;
    return s;
}

int32_t forge_tokenizer_token_to_id(const forge_tokenizer *t, const char *s, size_t len) {
    if (!t || (!s && len)) return -1;
    int32_t a = strmap_get(&t->added_map, s, len);
    if (a >= 0) return t->added[a].id;
    return bpe_token_to_id(t, s, len);
}

bool forge_tokenizer_is_special(const forge_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_ids && (t->id_flags[id] & TOKF_SPECIAL);
}
