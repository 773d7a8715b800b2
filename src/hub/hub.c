/* hub.c: the public Hub API: resolving a model id to a snapshot folder in the huggingface_hub
 * cache, asking the Hub what the revision holds, choosing the files inference needs and
 * fetching them in parallel (fetch.c), with the offline and Hub-unreachable fallbacks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forge.h"
#include "hub/cache.h"
#include "hub/fetch.h"
#include "hub/gguf_pick.h"
#include "hub/http.h"
#include "hub/progress.h"

/* The text huggingface_hub writes into <root>/CACHEDIR.TAG (the cache directory tagging
 * standard, so backup tools skip the cache). */
static const char CACHEDIR_TAG[] =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n";

static void write_cachedir_tag(const char *root) {
    char path[HUB_PATH_MAX];
    struct stat st;
    if (hub_pathf(path, "%s/CACHEDIR.TAG", root) != 0 || stat(path, &st) == 0) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return;
    ssize_t w = write(fd, CACHEDIR_TAG, sizeof CACHEDIR_TAG - 1);
    (void)w;
    close(fd);
}

static forge_status put_path(char *out, size_t n, const char *path, forge_error *err) {
    if (!out || strlen(path) >= n)
        return err_set(err, FORGE_E_RANGE, "the %zu-byte buffer cannot hold the path %s", n, path);
    memcpy(out, path, strlen(path) + 1);
    return FORGE_OK;
}

/* ---- parallel fetching ------------------------------------------------------------------ */

typedef struct pool {
    const hub_fetch_ctx *ctx;
    const hub_file *const *jobs;
    int n;
    atomic_int next;
    atomic_int *cancel;
    pthread_mutex_t mu;
    forge_status status;
    forge_error err;
} pool;

static void pool_fail(pool *p, const forge_error *e) {
    pthread_mutex_lock(&p->mu);
    if (p->status == FORGE_OK || p->status == FORGE_E_CANCELLED) {
        p->status = e->code ? e->code : FORGE_E_INTERNAL;
        p->err = *e;
    }
    atomic_store(p->cancel, 1);
    pthread_mutex_unlock(&p->mu);
}

static void *pool_worker(void *arg) {
    pool *p = arg;
    forge_error e = {0};
    hub_http *h = hub_http_create(p->ctx->conf, &e);
    if (!h) {
        pool_fail(p, &e);
        return NULL;
    }
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n || atomic_load(p->cancel)) break;
        err_clear(&e);
        if (hub_fetch_file(p->ctx, h, p->jobs[i], &e) != FORGE_OK) pool_fail(p, &e);
    }
    hub_http_free(h);
    return NULL;
}

static int parallel_files(void) {
    const char *v = getenv("FORGE_HUB_PARALLEL");
    int n = v && *v ? atoi(v) : 4;
    return n < 1 ? 1 : n > 16 ? 16 : n;
}

/* Fetches jobs[0..n) with up to FORGE_HUB_PARALLEL threads; the first error wins and stops
 * the others (their partial files stay for a later resume). */
static forge_status fetch_all(const hub_fetch_ctx *ctx, const hub_file *const *jobs, int n,
                              forge_error *err) {
    if (n == 0) return FORGE_OK;
    pool p = {.ctx = ctx, .jobs = jobs, .n = n, .cancel = ctx->conf->cancel};
    pthread_mutex_init(&p.mu, NULL);
    int nt = parallel_files();
    if (nt > n) nt = n;
    pthread_t th[16];
    int started = 0;
    for (int i = 1; i < nt; i++)
        if (pthread_create(&th[started], NULL, pool_worker, &p) == 0) started++;
    pool_worker(&p); /* the calling thread works too */
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    if (p.status != FORGE_OK && err) *err = p.err;
    return p.status;
}

/* ---- the cache alone -------------------------------------------------------------------- */

/* The cached snapshot of id, if complete enough to run (see hub_snapshot_check). */
static forge_status cached_snapshot(const char *storage, const hub_id *id, char *snap,
                                    forge_error *err) {
    char commit[41];
    if (hub_is_commit(id->revision)) {
        memcpy(commit, id->revision, 41);
    } else if (hub_read_ref(storage, id->revision, commit, NULL) != FORGE_OK) {
        return err_set(err, FORGE_E_NOT_FOUND, "%s@%s is not in the cache (no %s/refs/%s)",
                       id->repo, id->revision, storage, id->revision);
    }
    forge_status st = hub_snapshot_check(storage, commit, false, err);
    if (st != FORGE_OK)
        return err_prefix(err, "%s@%s is not complete in the cache", id->repo, id->revision);
    if (hub_pathf(snap, "%s/snapshots/%s", storage, commit) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s", storage);
    return FORGE_OK;
}

/* Relative names of the files under dir (two levels of folders at most), for the picker. */
static int scan_files(const char *dir, const char *prefix, int depth, char ***names, int *n, int *cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) && rc == 0) {
        if (e->d_name[0] == '.') continue;
        char full[HUB_PATH_MAX], rel[HUB_PATH_MAX];
        if (hub_pathf(full, "%s/%s", dir, e->d_name) || hub_pathf(rel, "%s%s", prefix, e->d_name)) continue;
        struct stat st;
        if (stat(full, &st) != 0) continue; /* a dangling link: a blob not there */
        if (S_ISDIR(st.st_mode)) {
            char sub[HUB_PATH_MAX];
            if (depth > 0 && !hub_pathf(sub, "%s/", rel)) rc = scan_files(full, sub, depth - 1, names, n, cap);
            continue;
        }
        if (!S_ISREG(st.st_mode) || !hub_is_model_gguf(rel)) continue;
        if (*n == *cap) {
            int nc = *cap ? 2 * *cap : 16;
            char **nn = realloc(*names, sizeof *nn * (size_t)nc);
            if (!nn) { rc = -1; break; }
            *names = nn;
            *cap = nc;
        }
        if (!((*names)[*n] = strdup(rel))) rc = -1;
        else (*n)++;
    }
    closedir(d);
    return rc;
}

/* A GGUF model of a cached snapshot, picked by id's tag: the path of its (first) file. */
static forge_status cached_gguf(const char *storage, const hub_id *id, char *path, size_t path_size,
                                forge_error *err) {
    char commit[41], snap[HUB_PATH_MAX];
    if (hub_is_commit(id->revision)) memcpy(commit, id->revision, 41);
    else if (hub_read_ref(storage, id->revision, commit, NULL) != FORGE_OK)
        return err_set(err, FORGE_E_NOT_FOUND, "%s@%s is not in the cache (no %s/refs/%s)", id->repo, id->revision,
                       storage, id->revision);
    if (hub_pathf(snap, "%s/snapshots/%s", storage, commit) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s", storage);
    char **names = NULL;
    int n = 0, cap = 0;
    forge_status st = FORGE_OK;
    int *picked = NULL, np = 0;
    if (scan_files(snap, "", 2, &names, &n, &cap) || !(picked = malloc(sizeof(int) * (size_t)(n + 1)))) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    if ((st = hub_gguf_pick((const char *const *)names, n, id->quant, picked, &np, id->repo, err))) {
        err_prefix(err, "in the cached snapshot %s", snap);
        goto out;
    }
    char file[HUB_PATH_MAX];
    if (hub_pathf(file, "%s/%s", snap, names[picked[0]]) != 0) st = err_set(err, FORGE_E_RANGE, "path too long: %s", snap);
    else st = put_path(path, path_size, file, err);
out:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(picked);
    return st;
}

/* The cached copy of id: a GGUF file when the id has a tag or the snapshot is a GGUF repo's,
 * else the snapshot folder. */
static forge_status cached_model(const char *storage, const hub_id *id, char *path, size_t path_size,
                                 forge_error *err) {
    if (id->quant[0]) return cached_gguf(storage, id, path, path_size, err);
    char snap[HUB_PATH_MAX];
    forge_status st = cached_snapshot(storage, id, snap, err);
    if (st == FORGE_OK) return put_path(path, path_size, snap, err);
    forge_error gerr;
    if (cached_gguf(storage, id, path, path_size, &gerr) == FORGE_OK) return FORGE_OK;
    return st;
}

/* ---- download --------------------------------------------------------------------------- */

static const char INDEX_NAME[] = "model.safetensors.index.json";

/* Adds a job for name unless the snapshot already has it. */
static void plan(const hub_fetch_ctx *ctx, const hub_listing *l, const char *name,
                 const hub_file **jobs, int *n, int64_t *bytes) {
    const hub_file *f = hub_listing_find(l, name);
    if (!f || hub_snapshot_has(ctx->storage, ctx->commit, name)) return;
    for (int i = 0; i < *n; i++)
        if (jobs[i] == f) return;
    jobs[(*n)++] = f;
    if (f->size > 0) *bytes += f->size;
}

/* "a, b, c" of the listing's names, as many as fit. */
static void list_names(const hub_listing *l, char *out, size_t n) {
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < l->n && k + 1 < n; i++) {
        int w = snprintf(out + k, n - k, "%s%s", i ? ", " : "", l->files[i].name);
        if (w < 0 || (size_t)w >= n - k) break;
        k += (size_t)w;
    }
}

/* A GGUF repo: the file (or the shards) the id's tag picks; *rel gets the (first) file's name. */
static forge_status download_gguf(const hub_fetch_ctx *ctx, const hub_id *id, const hub_listing *l,
                                  const char *root, char *rel, size_t rel_size, forge_error *err) {
    const char **names = malloc(sizeof *names * (size_t)(l->n + 1));
    int *picked = malloc(sizeof *picked * (size_t)(l->n + 1)), np = 0;
    const hub_file **jobs = calloc((size_t)l->n + 1, sizeof *jobs);
    forge_status st = FORGE_OK;
    if (!names || !picked || !jobs) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < l->n; i++) names[i] = l->files[i].name;
    char label[400];
    snprintf(label, sizeof label, "%s@%s", id->repo, id->revision);
    if ((st = hub_gguf_pick(names, l->n, id->quant, picked, &np, label, err))) goto out;
    if ((st = hub_mkdirs(ctx->storage, err)) != FORGE_OK) goto out;
    write_cachedir_tag(root);
    int n = 0;
    int64_t bytes = 0;
    for (int i = 0; i < np; i++) plan(ctx, l, names[picked[i]], jobs, &n, &bytes);
    if (n > 0) {
        hub_progress_begin(ctx->progress, label, n, bytes);
        st = fetch_all(ctx, jobs, n, err);
        hub_progress_end(ctx->progress, st == FORGE_OK);
        if (st) goto out;
    }
    if (snprintf(rel, rel_size, "%s", names[picked[0]]) >= (int)rel_size) {
        st = err_set(err, FORGE_E_RANGE, "file name too long: %s", names[picked[0]]);
        goto out;
    }
    if (strcmp(id->revision, ctx->commit) != 0) st = hub_write_ref(ctx->storage, id->revision, ctx->commit, err);
out:
    free(names);
    free(picked);
    free(jobs);
    return st;
}

static bool has_gguf(const hub_listing *l) {
    for (int i = 0; i < l->n; i++)
        if (hub_is_model_gguf(l->files[i].name)) return true;
    return false;
}

/* With the listing in hand: choose, fetch, link, and write the ref last. *rel gets the file
 * to open inside the snapshot ("" for a transformers folder). */
static forge_status download_listed(const hub_fetch_ctx *ctx, const hub_id *id,
                                    const hub_listing *l, const char *root, char *rel, size_t rel_size,
                                    forge_error *err) {
    forge_status st;
    rel[0] = 0;
    if (id->quant[0] || (!hub_listing_find(l, "config.json") && has_gguf(l)))
        return download_gguf(ctx, id, l, root, rel, rel_size, err);
    if (!hub_listing_find(l, "config.json"))
        return err_set(
            err, FORGE_E_UNSUPPORTED,
            "%s@%s has no config.json: Forge runs models in the transformers layout (config.json + "
            "safetensors) or GGUF files",
            id->repo, id->revision);
    bool single = hub_listing_find(l, "model.safetensors") != NULL;
    if (!single && !hub_listing_find(l, INDEX_NAME)) {
        char names[600];
        list_names(l, names, sizeof names);
        return err_set(
            err, FORGE_E_UNSUPPORTED,
            "%s@%s has no safetensors weights in the transformers layout (model.safetensors, or %s "
            "and its shards); Forge reads no other format there (consolidated*.safetensors, "
            "pytorch_model.bin, ...); a GGUF repo is named with its quantization, org/name-GGUF:Q4_K_M. Files: %s",
            id->repo, id->revision, INDEX_NAME, names);
    }
    if ((st = hub_mkdirs(ctx->storage, err)) != FORGE_OK) return st;
    write_cachedir_tag(root);
    /* Record what the revision lacks, as huggingface_hub does when a HEAD answers
     * EntryNotFound, so that offline users (Forge, transformers) need not ask again. */
    if (!hub_listing_find(l, "tokenizer.json"))
        hub_mark_no_exist(ctx->storage, ctx->commit, "tokenizer.json");
    if (!single)
        hub_mark_no_exist(ctx->storage, ctx->commit,
                          "model.safetensors"); /* transformers asks first */
    for (int i = 0; i < hub_n_optional_files; i++)
        if (!hub_listing_find(l, hub_optional_files[i]))
            hub_mark_no_exist(ctx->storage, ctx->commit, hub_optional_files[i]);

    const hub_file **jobs = calloc((size_t)l->n + 1, sizeof *jobs);
    if (!jobs) return err_set(err, FORGE_E_NOMEM, "out of memory");
    int n = 0;
    int64_t bytes = 0;
    plan(ctx, l, "config.json", jobs, &n, &bytes);
    plan(ctx, l, "tokenizer.json", jobs, &n, &bytes);
    for (int i = 0; i < hub_n_optional_files; i++)
        plan(ctx, l, hub_optional_files[i], jobs, &n, &bytes);
    plan(ctx, l, single ? "model.safetensors" : INDEX_NAME, jobs, &n, &bytes);
    char label[400];
    snprintf(label, sizeof label, "%s@%s", id->repo, id->revision);
    bool begun = false;
    if (!single) {
        /* The index says which shards to fetch: get it first (with the small files). */
        if (n > 0) {
            hub_progress_begin(ctx->progress, label, n, bytes);
            begun = true;
            if ((st = fetch_all(ctx, jobs, n, err)) != FORGE_OK) goto out;
        }
        char idx[HUB_PATH_MAX], **shards = NULL;
        int ns = 0;
        if (hub_pathf(idx, "%s/snapshots/%s/%s", ctx->storage, ctx->commit, INDEX_NAME) != 0) {
            st = err_set(err, FORGE_E_RANGE, "path too long: %s", ctx->storage);
            goto out;
        }
        if ((st = hub_index_shards(idx, &shards, &ns, err)) != FORGE_OK) goto out;
        const hub_file **sj = calloc((size_t)ns + 1, sizeof *sj);
        int nsj = 0;
        int64_t sbytes = 0;
        for (int i = 0; i < ns && sj; i++) {
            if (!hub_listing_find(l, shards[i])) {
                st = err_set(err, FORGE_E_FORMAT,
                             "%s of %s@%s names the shard %s, which the repo does not have",
                             INDEX_NAME, id->repo, id->revision, shards[i]);
                break;
            }
            plan(ctx, l, shards[i], sj, &nsj, &sbytes);
        }
        hub_free_strings(shards, ns);
        if (!sj) st = err_set(err, FORGE_E_NOMEM, "out of memory");
        if (st == FORGE_OK && nsj > 0) {
            if (!begun)
                hub_progress_begin(ctx->progress, label, nsj, sbytes);
            else
                hub_progress_add(ctx->progress, nsj, sbytes);
            begun = true;
            st = fetch_all(ctx, sj, nsj, err);
        }
        free(sj);
    } else if (n > 0) {
        hub_progress_begin(ctx->progress, label, n, bytes);
        begun = true;
        st = fetch_all(ctx, jobs, n, err);
    }
out:
    if (begun) hub_progress_end(ctx->progress, st == FORGE_OK);
    free(jobs);
    if (st != FORGE_OK) return st;
    /* The ref is written last: a reader following refs/<revision> finds a complete snapshot. */
    if (strcmp(id->revision, ctx->commit) != 0)
        st = hub_write_ref(ctx->storage, id->revision, ctx->commit, err);
    return st;
}

forge_status forge_hub_cache_dir(const forge_hub_params *params, char *path, size_t path_size,
                                 forge_error *err) {
    if (!path || !path_size) return err_set(err, FORGE_E_INVALID, "forge_hub_cache_dir: path is NULL or empty");
    char root[HUB_PATH_MAX];
    forge_status st = hub_cache_root(params ? params->cache_dir : NULL, root, sizeof root, err);
    return st != FORGE_OK ? st : put_path(path, path_size, root, err);
}

forge_hub_params forge_hub_default_params(void) { return (forge_hub_params){0}; }

forge_status forge_hub_download(const char *id_str, const forge_hub_params *params, char *path,
                                size_t path_size, forge_error *err) {
    if (!id_str || !path || !path_size)
        return err_set(err, FORGE_E_INVALID, "forge_hub_download: %s", !id_str ? "the model id is NULL" : "path is NULL or empty");
    static const forge_hub_params defaults = {0};
    const forge_hub_params *p = params ? params : &defaults;
    hub_id id;
    char root[HUB_PATH_MAX], storage[HUB_PATH_MAX], locks[HUB_PATH_MAX], snap[HUB_PATH_MAX];
    forge_status st = hub_id_parse(id_str, &id, err);
    if (st != FORGE_OK) return st;
    if ((st = hub_cache_root(p->cache_dir, root, sizeof root, err)) != FORGE_OK) return st;
    char folder[HUB_PATH_MAX];
    if (hub_storage_dir(root, id.repo, storage, sizeof storage) != 0 ||
        hub_storage_dir("", id.repo, folder, sizeof folder) != 0 ||
        hub_pathf(locks, "%s/.locks%s", root, folder) != 0)
        return err_set(err, FORGE_E_RANGE, "cache path too long: %s", root);

    if (p->offline || hub_env_true("HF_HUB_OFFLINE") || hub_env_true("TRANSFORMERS_OFFLINE")) {
        st = cached_model(storage, &id, path, path_size, err);
        if (st != FORGE_OK)
            return err_prefix(err,
                              "offline mode (%s) and the model is not usable from the cache at %s",
                              p->offline ? "--offline" : "HF_HUB_OFFLINE", root);
        return FORGE_OK;
    }
    /* A commit hash never changes: when its snapshot is complete there is nothing to ask. */
    if (hub_is_commit(id.revision) && !id.quant[0] &&
        hub_snapshot_check(storage, id.revision, true, NULL) == FORGE_OK &&
        hub_pathf(snap, "%s/snapshots/%s", storage, id.revision) == 0)
        return put_path(path, path_size, snap, err);

    char *token = hub_token_lookup(p->token);
    atomic_int cancel = 0;
    hub_conf conf;
    hub_conf_init(&conf, p->endpoint, token);
    conf.cancel = &cancel;
    hub_progress *progress = hub_progress_create(p->progress);
    if (progress) hub_progress_set_callback(progress, p->progress_cb, p->progress_user, &cancel);
    conf.progress = progress;
    hub_http *http = NULL;
    hub_listing l = {0};
    if (!progress) {
        st = err_set(err, FORGE_E_NOMEM, "out of memory");
        goto done;
    }
    if (!(http = hub_http_create(&conf, err))) {
        st = err ? err->code : FORGE_E_NETWORK;
        goto done;
    }
    char qrev[800], url[HUB_PATH_MAX];
    if (hub_url_quote(id.revision, false, qrev, sizeof qrev) != 0 ||
        hub_pathf(url, "%s/api/models/%s/revision/%s?blobs=true", conf.endpoint, id.repo, qrev) !=
            0) {
        st = err_set(err, FORGE_E_RANGE, "revision too long: %s", id.revision);
        goto done;
    }
    hub_request req = {.method = "GET", .url = url};
    hub_response r = {0};
    /* One quick try first: if the Hub is down or unreachable and the model is cached, use it
     * at once (as huggingface_hub does); retry with backoff only when there is no copy. */
    hub_http_once(http, &req, &r);
    if (r.net == HUB_NET_UNREACHABLE || hub_response_retryable(&r)) {
        forge_error cerr = {0};
        char why[400];
        if (r.net != HUB_NET_OK)
            snprintf(why, sizeof why, "%s", r.net_error);
        else
            snprintf(why, sizeof why, "HTTP %ld", r.status);
        if (cached_model(storage, &id, path, path_size, &cerr) == FORGE_OK) {
            hub_progress_note(progress, "cannot reach %s (%s); using the cached snapshot of %s@%s",
                              conf.endpoint, why, id.repo, id.revision);
            hub_response_free(&r);
            st = FORGE_OK;
            goto done;
        }
        if (hub_response_retryable(&r) && conf.max_retries > 0) {
            double wait = hub_backoff_s(0, r.retry_after);
            hub_progress_note(progress, "GET %s: %s; retrying in %.3g s (1 of %d)", url, why, wait,
                              conf.max_retries);
            hub_sleep(wait, NULL);
            hub_http_fetch(http, &req, conf.max_retries - 1, &r);
        }
    }
    if (r.net != HUB_NET_OK) {
        st = err_set(err, r.net == HUB_NET_CANCELLED ? FORGE_E_CANCELLED : FORGE_E_NETWORK,
                     "cannot reach %s for the file list of %s (%s), and %s@%s is not in the cache "
                     "at %s",
                     conf.endpoint, id.repo, r.net_error, id.repo, id.revision, root);
        hub_response_free(&r);
        goto done;
    }
    if (r.status != 200) {
        st = hub_response_error(&r, "the file list", id.repo, id.revision, conf.endpoint,
                                token != NULL, err);
        hub_response_free(&r);
        goto done;
    }
    char what[1700];
    snprintf(what, sizeof what, "the file list of %s@%s from %s", id.repo, id.revision,
             conf.endpoint);
    st = hub_listing_parse(sb_str(&r.body), r.body.len, what, &l, err);
    hub_response_free(&r);
    if (st != FORGE_OK) goto done;
    hub_fetch_ctx ctx = {.conf = &conf,
                         .repo = id.repo,
                         .revision = id.revision,
                         .commit = l.commit,
                         .storage = storage,
                         .lock_dir = locks,
                         .progress = progress};
    char rel[HUB_PATH_MAX];
    st = download_listed(&ctx, &id, &l, root, rel, sizeof rel, err);
    if (st == FORGE_OK) {
        if (hub_pathf(snap, rel[0] ? "%s/snapshots/%s/%s" : "%s/snapshots/%s%s", storage, l.commit, rel) != 0)
            st = err_set(err, FORGE_E_RANGE, "path too long: %s", storage);
        else
            st = put_path(path, path_size, snap, err);
    }
done:
    hub_listing_free(&l);
    hub_http_free(http);
    hub_progress_free(progress);
    free(token);
    return st;
}

forge_status forge_model_resolve(const char *model, const forge_hub_params *params, char *path,
                                 size_t path_size, forge_error *err) {
    if (!path || !path_size) return err_set(err, FORGE_E_INVALID, "forge_model_resolve: path is NULL or empty");
    if (!model || !*model) model = getenv("FORGE_MODEL");
    if (!model || !*model)
        return err_set(err, FORGE_E_INVALID,
                       "no model given: name a model folder or a Hub id org/name (the CLI's --model), "
                       "or set FORGE_MODEL");
    struct stat st;
    if (stat(model, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return put_path(path, path_size, model, err);
        size_t ml = strlen(model);
        if (S_ISREG(st.st_mode) && ml > 5 && !strcmp(model + ml - 5, ".gguf")) return put_path(path, path_size, model, err);
        return err_set(err, FORGE_E_INVALID,
                       "%s is a file; a model is a folder (config.json, safetensors, "
                       "tokenizer.json), a .gguf file or a Hub id org/name",
                       model);
    }
    bool pathlike = model[0] == '/' || model[0] == '.' || model[0] == '~';
    if (pathlike || !hub_id_like(model))
        return err_set(err, FORGE_E_NOT_FOUND, "%s: no such folder%s", model,
                       pathlike ? "" : ", and not a Hub id (org/name or org/name@revision)");
    return forge_hub_download(model, params, path, path_size, err);
}
