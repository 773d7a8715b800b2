/* gguf_model.c: GGUF metadata -> model_config (through config_parse, so a GGUF gets the
 * same checks as a config.json), GGUF tensor names -> HF names. */
#include "model/gguf_model.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "kernels/kernels.h"

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* True when the sorted names are the shards of one split model: PREFIX-0000k-of-0000N.gguf
 * for k = 1..N, all there. */
static bool one_split(char *const *names, int count) {
    size_t n0 = strlen(names[0]);
    if (n0 < 20) return false;
    const char *t0 = names[0] + n0 - 20; /* "-00001-of-00003.gguf" */
    int k, total;
    char rest[8];
    if (sscanf(t0, "-%5d-of-%5d%7s", &k, &total, rest) != 3 || strcmp(rest, ".gguf") || k != 1 || total != count)
        return false;
    for (int i = 1; i < count; i++) {
        size_t n = strlen(names[i]);
        char want[32];
        snprintf(want, sizeof want, "-%05d-of-%05d.gguf", i + 1, total);
        if (n != n0 || strncmp(names[i], names[0], n0 - 20) || strcmp(names[i] + n - 20, want)) return false;
    }
    return true;
}

forge_status gguf_model_find(const char *path, char *file, size_t n, bool *is_gguf, forge_error *err) {
    *is_gguf = false;
    if (path_is_file(path)) {
        if (!ends_with(path, ".gguf")) return FORGE_OK;
        if (snprintf(file, n, "%s", path) >= (int)n) return err_set(err, FORGE_E_INVALID, "model path is too long");
        *is_gguf = true;
        return FORGE_OK;
    }
    if (!path_is_dir(path)) return FORGE_OK;
    char probe[4096];
    if (path_join(probe, sizeof probe, path, "model.safetensors") == 0 && path_is_file(probe)) return FORGE_OK;
    if (path_join(probe, sizeof probe, path, "model.safetensors.index.json") == 0 && path_is_file(probe))
        return FORGE_OK;
    DIR *d = opendir(path);
    if (!d) return FORGE_OK;
    char *names[256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 256)
        if (e->d_name[0] != '.' && ends_with(e->d_name, ".gguf") && !strstr(e->d_name, "mmproj")) {
            if (!(names[count] = strdup(e->d_name))) break;
            count++;
        }
    closedir(d);
    forge_status st = FORGE_OK;
    if (count == 0) goto done;
    qsort(names, (size_t)count, sizeof *names, cmp_str);
    if (count > 1 && one_split(names, count)) count = 1; /* names[0] is its first shard */
    if (count > 1) {
        strbuf sb = STRBUF_INIT;
        for (int i = 0; i < count; i++) sb_printf(&sb, "%s%s", i ? ", " : "", names[i]);
        st = err_set(err, FORGE_E_INVALID, "%s holds several GGUF files (%s): name the one to load", path,
                     sb_failed(&sb) ? "?" : sb_str(&sb));
        sb_free(&sb);
        goto done;
    }
    if (path_join(file, n, path, names[0])) {
        st = err_set(err, FORGE_E_INVALID, "model path is too long");
        goto done;
    }
    *is_gguf = true;
done:
    for (int i = 0; i < count; i++) free(names[i]);
    return st;
}

/* ---- metadata -> config.json ------------------------------------------------------------ */

static forge_status put_int(strbuf *sb, const gguf_file *g, const char *arch, const char *suffix, const char *field,
                            bool required, forge_error *err) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    forge_status st = gguf_get_int(g, key, &v, err);
    if (st == FORGE_E_NOT_FOUND) {
        if (required) return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" is missing", key);
        return FORGE_OK;
    }
    if (st) return st;
    if (v < 0 || v > 2000000000) return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" = %lld is out of range", key, (long long)v);
    sb_printf(sb, ",\"%s\":%lld", field, (long long)v);
    return FORGE_OK;
}

static forge_status put_float(strbuf *sb, const gguf_file *g, const char *key, const char *field, forge_error *err) {
    double v;
    forge_status st = gguf_get_float(g, key, &v, err);
    if (st == FORGE_E_NOT_FOUND) return FORGE_OK;
    if (st) return st;
    if (!(v == v) || v > 1e300 || v < -1e300) return err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" is not a finite number", key);
    sb_printf(sb, ",\"%s\":%.17g", field, v);
    return FORGE_OK;
}

static bool has_tensor(const gguf_file *g, const char *name) { return gguf_find_tensor(g, name) != NULL; }

static forge_status build_config(gguf_model *gm, model_config *cfg, forge_error *err) {
    const gguf_file *g = &gm->file;
    gguf_str a;
    forge_status st = gguf_get_str(g, "general.architecture", &a, err);
    if (st == FORGE_E_NOT_FOUND) return err_set(err, FORGE_E_FORMAT, "GGUF key \"general.architecture\" is missing");
    if (st) return st;
    char arch[32];
    if (a.len >= sizeof arch || memchr(a.s, 0, a.len) || memchr(a.s, '"', a.len) || memchr(a.s, '\\', a.len))
        return err_set(err, FORGE_E_UNSUPPORTED, "general.architecture \"%.*s\" is not supported (llama, qwen2, qwen3)",
                       (int)(a.len < 64 ? a.len : 64), a.s);
    memcpy(arch, a.s, a.len);
    arch[a.len] = 0;
    if (strcmp(arch, "llama") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3"))
        return err_set(err, FORGE_E_UNSUPPORTED, "general.architecture \"%s\" is not supported (llama, qwen2, qwen3)", arch);
    gm->qk_permuted = !strcmp(arch, "llama");
    int64_t splits = 1;
    if ((st = gguf_get_int(g, "split.count", &splits, err)) && st != FORGE_E_NOT_FOUND) return st;
    if (splits > 1 && splits - 1 != gm->n_more)
        return err_set(err, FORGE_E_INVALID, "a split GGUF (split.count = %lld) with %d of its shards open",
                       (long long)splits, gm->n_more + 1);

    strbuf sb = STRBUF_INIT;
    sb_printf(&sb, "{\"model_type\":\"%s\",\"hidden_act\":\"silu\"", arch);
    char key[160];
    /* vocabulary: the arch key, else the token list, else the embedding's rows */
    snprintf(key, sizeof key, "%s.vocab_size", arch);
    const gguf_kv *toks = gguf_find_kv(g, "tokenizer.ggml.tokens");
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (gguf_find_kv(g, key)) {
        if ((st = put_int(&sb, g, arch, "vocab_size", "vocab_size", true, err))) goto out;
    } else if (toks && toks->type == GGUF_ARRAY) {
        sb_printf(&sb, ",\"vocab_size\":%llu", (unsigned long long)toks->arr_n);
    } else if (emb && emb->n_dims == 2) {
        sb_printf(&sb, ",\"vocab_size\":%lld", (long long)emb->ne[1]);
    }
    if ((st = put_int(&sb, g, arch, "embedding_length", "hidden_size", true, err)) ||
        (st = put_int(&sb, g, arch, "feed_forward_length", "intermediate_size", true, err)) ||
        (st = put_int(&sb, g, arch, "block_count", "num_hidden_layers", true, err)) ||
        (st = put_int(&sb, g, arch, "attention.head_count", "num_attention_heads", true, err)) ||
        (st = put_int(&sb, g, arch, "attention.head_count_kv", "num_key_value_heads", false, err)) ||
        (st = put_int(&sb, g, arch, "context_length", "max_position_embeddings", true, err)))
        goto out;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if ((st = put_float(&sb, g, key, "rms_norm_eps", err))) goto out;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if ((st = put_float(&sb, g, key, "rope_theta", err))) goto out;

    /* head_dim: attention.key_length, else hidden / heads (llama.cpp's default, also for qwen3) */
    int64_t hidden = 0, heads = 0, hd = 0, vlen = 0, rdim = 0;
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    gguf_get_int(g, key, &hidden, NULL);
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    gguf_get_int(g, key, &heads, NULL);
    if (heads <= 0) {
        st = err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be positive", key);
        goto out;
    }
    hd = hidden / heads;
    snprintf(key, sizeof key, "%s.attention.key_length", arch);
    if ((st = gguf_get_int(g, key, &hd, err)) && st != FORGE_E_NOT_FOUND) goto out;
    vlen = hd;
    snprintf(key, sizeof key, "%s.attention.value_length", arch);
    if ((st = gguf_get_int(g, key, &vlen, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if (vlen != hd) {
        st = err_set(err, FORGE_E_UNSUPPORTED, "GGUF key \"%s\" (%lld) differs from the key length (%lld)", key,
                     (long long)vlen, (long long)hd);
        goto out;
    }
    rdim = hd;
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    if ((st = gguf_get_int(g, key, &rdim, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if (rdim != hd) {
        st = err_set(err, FORGE_E_UNSUPPORTED, "GGUF key \"%s\" = %lld: partial RoPE (head dim %lld) is not supported",
                     key, (long long)rdim, (long long)hd);
        goto out;
    }
    if (hd <= 0 || hd > 100000) {
        st = err_set(err, FORGE_E_FORMAT, "head dimension %lld is out of range", (long long)hd);
        goto out;
    }
    sb_printf(&sb, ",\"head_dim\":%lld", (long long)hd);

    /* RoPE scaling */
    gguf_str stype = {0};
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if ((st = gguf_get_str(g, key, &stype, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if (stype.s && !(stype.len == 4 && !memcmp(stype.s, "none", 4))) {
        if (stype.len == 6 && !memcmp(stype.s, "linear", 6)) {
            double f = 1;
            snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
            if ((st = gguf_get_float(g, key, &f, err)) && st != FORGE_E_NOT_FOUND) goto out;
            if (!(f > 0) || f > 1e6) {
                st = err_set(err, FORGE_E_FORMAT, "GGUF key \"%s\" must be positive", key);
                goto out;
            }
            sb_printf(&sb, ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":%.17g}", f);
        } else {
            st = err_set(err, FORGE_E_UNSUPPORTED, "GGUF key \"%s.rope.scaling.type\" = \"%.*s\" is not supported (none, linear)",
                         arch, (int)(stype.len < 32 ? stype.len : 32), stype.s);
            goto out;
        }
    }
    st = FORGE_OK;
    sb_printf(&sb, ",\"tie_word_embeddings\":%s", has_tensor(g, "output.weight") ? "false" : "true");
    if (!strcmp(arch, "llama"))
        sb_printf(&sb, ",\"attention_bias\":%s", has_tensor(g, "blk.0.attn_q.bias") ? "true" : "false");
    if (!strcmp(arch, "qwen2") || !strcmp(arch, "qwen3")) sb_puts(&sb, ",\"use_sliding_window\":false");

    /* the dtype of the attention weights, for the KV cache's automatic dtype */
    const gguf_tensor *wq = gguf_find_tensor(g, "blk.0.attn_q.weight");
    sb_printf(&sb, ",\"torch_dtype\":\"%s\"", wq && wq->type == GGML_F32 ? "float32" : wq && wq->type == GGML_F16 ? "float16" : "bfloat16");

    int64_t id;
    if ((st = gguf_get_int(g, "tokenizer.ggml.bos_token_id", &id, err)) == FORGE_OK) sb_printf(&sb, ",\"bos_token_id\":%lld", (long long)id);
    else if (st != FORGE_E_NOT_FOUND) goto out;
    int64_t eos = -1, eot = -1;
    if ((st = gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos, err)) && st != FORGE_E_NOT_FOUND) goto out;
    if ((st = gguf_get_int(g, "tokenizer.ggml.eot_token_id", &eot, err)) && st != FORGE_E_NOT_FOUND) goto out;
    st = FORGE_OK;
    if (eos > INT32_MAX || eot > INT32_MAX) {
        st = err_set(err, FORGE_E_FORMAT, "tokenizer.ggml.eos_token_id / eot_token_id is out of range");
        goto out;
    }
    if (eos >= 0 && eot >= 0 && eot != eos) sb_printf(&sb, ",\"eos_token_id\":[%lld,%lld]", (long long)eos, (long long)eot);
    else if (eos >= 0 || eot >= 0) sb_printf(&sb, ",\"eos_token_id\":%lld", (long long)(eos >= 0 ? eos : eot));
    sb_putc(&sb, '}');
    if (sb_failed(&sb)) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    json_doc *doc = json_parse(sb_str(&sb), sb.len, err);
    if (!doc) {
        st = err ? err->code : FORGE_E_FORMAT;
        goto out;
    }
    st = config_parse(cfg, json_root(doc), err);
    json_free(doc);
    if (st) err_prefix(err, "GGUF metadata");
out:
    sb_free(&sb);
    return st;
}

/* ---- tensors under HF names --------------------------------------------------------------- */

static const struct { const char *gguf, *hf; } g_layer_names[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},     {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},     {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},     {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_output.bias", "self_attn.o_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},      {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

/* The HF name of a GGUF tensor into out, or false for tensors Forge does not bind. */
static bool hf_name(const char *name, char *out, size_t n) {
    if (!strcmp(name, "token_embd.weight")) return snprintf(out, n, "model.embed_tokens.weight") > 0;
    if (!strcmp(name, "output_norm.weight")) return snprintf(out, n, "model.norm.weight") > 0;
    if (!strcmp(name, "output.weight")) return snprintf(out, n, "lm_head.weight") > 0;
    if (strncmp(name, "blk.", 4)) return false;
    char *end;
    long l = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || l < 0 || l > 100000 || (name[4] == '0' && end != name + 5)) return false;
    for (size_t i = 0; i < sizeof g_layer_names / sizeof g_layer_names[0]; i++)
        if (!strcmp(end + 1, g_layer_names[i].gguf))
            return snprintf(out, n, "model.layers.%ld.%s", l, g_layer_names[i].hf) > 0;
    return false;
}

forge_status gguf_model_describe(gguf_model *gm, model_config *cfg, st_set *st, forge_error *err) {
    const gguf_file *g = &gm->file;
    memset(st, 0, sizeof *st);
    forge_status s = build_config(gm, cfg, err);
    if (s) return s;
    uint64_t total = g->n_tensors;
    for (int k = 0; k < gm->n_more; k++) total += gm->more[k].n_tensors;
    int64_t declared;
    if ((s = gguf_get_int(g, "split.tensors.count", &declared, err)) && s != FORGE_E_NOT_FOUND) return s;
    if (s == FORGE_OK && gm->n_more > 0 && (uint64_t)declared != total)
        return err_set(err, FORGE_E_FORMAT, "split.tensors.count is %lld but the %d shards hold %llu tensors",
                       (long long)declared, gm->n_more + 1, (unsigned long long)total);
    gm->names = calloc(total ? total : 1, sizeof *gm->names);
    st->tensors = calloc(total ? total : 1, sizeof *st->tensors);
    if (!gm->names || !st->tensors || !strmap_init(&st->by_name, total + 8))
        return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (uint64_t j = 0; j < total; j++) {
        const gguf_file *f = g;
        uint64_t i = j;
        for (int k = 0; i >= f->n_tensors && k < gm->n_more; k++) {
            i -= f->n_tensors;
            f = &gm->more[k];
        }
        const gguf_tensor *t = &f->tensors[i];
        if (!strcmp(t->cname, "rope_freqs.weight")) {
            if (t->type != GGML_F32 || t->n_dims != 1 || t->ne[0] != cfg->head_dim / 2)
                return err_set(err, FORGE_E_FORMAT, "tensor \"rope_freqs.weight\" must be F32 [%d], is %s [%lld]",
                               cfg->head_dim / 2, ggml_type_name(t->type), (long long)t->ne[0]);
            gm->rope_freqs = (const float *)t->data; /* the data start and offsets are 32-aligned */
            continue;
        }
        char name[256];
        if (!hf_name(t->cname, name, sizeof name)) continue;
        if (!(gm->names[gm->n_names] = strdup(name))) return err_set(err, FORGE_E_NOMEM, "out of memory");
        st_tensor *o = &st->tensors[st->n_tensors];
        o->name = gm->names[gm->n_names++];
        snprintf(o->dtype_name, sizeof o->dtype_name, "%s", ggml_type_name(t->type));
        o->dtype = t->type == GGML_F32 ? FORGE_DTYPE_F32 : t->type == GGML_F16 ? FORGE_DTYPE_F16
                 : t->type == GGML_BF16 ? FORGE_DTYPE_BF16 : -1;
        o->qtype = o->dtype < 0 ? (int)t->type : 0;
        o->ndim = t->n_dims;
        for (int d = 0; d < t->n_dims; d++) o->shape[d] = t->ne[t->n_dims - 1 - d];
        o->data = t->data;
        o->nbytes = t->nbytes;
        if (strmap_get(&st->by_name, o->name, strlen(o->name)) >= 0)
            return err_set(err, FORGE_E_FORMAT, "tensor \"%s\" appears twice", t->cname);
        if (!strmap_put(&st->by_name, o->name, strlen(o->name), st->n_tensors))
            return err_set(err, FORGE_E_NOMEM, "out of memory");
        st->n_tensors++;
    }
    return FORGE_OK;
}

/* A split model's other shards, beside the first: NAME-00001-of-0000N.gguf -> NAME-0000k-of-... */
static forge_status open_shards(gguf_model *gm, const char *path, forge_error *err) {
    int64_t count = 1, no = 0;
    forge_status s = gguf_get_int(&gm->file, "split.count", &count, err);
    if (s == FORGE_E_NOT_FOUND) return FORGE_OK;
    if (s) return s;
    if (count <= 1) return FORGE_OK;
    if (count > 9999) return err_set(err, FORGE_E_FORMAT, "split.count %lld is absurd", (long long)count);
    if ((s = gguf_get_int(&gm->file, "split.no", &no, err)) && s != FORGE_E_NOT_FOUND) return s;
    size_t n = strlen(path);
    char tail[32];
    snprintf(tail, sizeof tail, "-%05d-of-%05d.gguf", 1, (int)count);
    size_t tl = strlen(tail);
    if (no != 0 || n < tl || strcmp(path + n - tl, tail))
        return err_set(err, FORGE_E_INVALID,
                       "this is shard %lld of a GGUF split in %lld: open the first one, named like NAME%s", (long long)no + 1,
                       (long long)count, tail);
    if (!(gm->more = calloc((size_t)count - 1, sizeof *gm->more))) return err_set(err, FORGE_E_NOMEM, "out of memory");
    char *name = malloc(n + 1);
    if (!name) return err_set(err, FORGE_E_NOMEM, "out of memory");
    for (int k = 2; k <= count; k++) {
        memcpy(name, path, n - tl);
        snprintf(name + n - tl, tl + 1, "-%05d-of-%05d.gguf", k, (int)count);
        if ((s = gguf_open(&gm->more[k - 2], name, err))) {
            gguf_close(&gm->more[k - 2]);
            err_prefix(err, "shard %d of %lld", k, (long long)count);
            break;
        }
        gm->n_more++;
        int64_t c2 = 0, no2 = -1;
        gguf_get_int(&gm->more[k - 2], "split.count", &c2, NULL);
        gguf_get_int(&gm->more[k - 2], "split.no", &no2, NULL);
        if (c2 != count || no2 != k - 1) {
            s = err_set(err, FORGE_E_FORMAT, "%s: split.no %lld and split.count %lld, expected %d and %lld", name,
                        (long long)no2, (long long)c2, k - 1, (long long)count);
            break;
        }
    }
    free(name);
    return s;
}

forge_status gguf_model_open(gguf_model *gm, const char *path, model_config *cfg, st_set *st, forge_error *err) {
    memset(gm, 0, sizeof *gm);
    forge_status s = gguf_open(&gm->file, path, err);
    if (s) return s;
    if ((s = open_shards(gm, path, err))) {
        err_prefix(err, "%s", path);
        return s;
    }
    s = gguf_model_describe(gm, cfg, st, err);
    if (s) err_prefix(err, "%s", path);
    return s;
}

void gguf_model_close(gguf_model *gm) {
    for (int i = 0; i < gm->n_names; i++) free(gm->names[i]);
    free(gm->names);
    for (int k = 0; k < gm->n_more; k++) gguf_close(&gm->more[k]);
    free(gm->more);
    gguf_close(&gm->file);
    memset(gm, 0, sizeof *gm);
}
