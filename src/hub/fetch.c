#include "hub/fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "hub/cache.h"
#include "hub/hash.h"

static bool is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static bool is_regular(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- the file list ---------------------------------------------------------------------- */

void hub_listing_free(hub_listing *l) {
    json_free(l->doc);
    free(l->files);
    memset(l, 0, sizeof *l);
}

const hub_file *hub_listing_find(const hub_listing *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->files[i].name, name)) return &l->files[i];
    return NULL;
}

forge_status hub_listing_parse(const char *text, size_t len, const char *what, hub_listing *l,
                               forge_error *err) {
    memset(l, 0, sizeof *l);
    l->doc = json_parse(text, len, err);
    if (!l->doc) return err_prefix(err, "%s", what);
    const json_value *root = json_root(l->doc), *sha = json_get(root, "sha"),
                     *sib = json_get(root, "siblings");
    if (!json_is(sha, JSON_STRING) || !hub_is_commit(json_string(sha)))
        return err_set(err, FORGE_E_FORMAT, "%s: no commit hash (\"sha\")", what);
    memcpy(l->commit, json_string(sha), 41);
    if (!json_is(sib, JSON_ARRAY))
        return err_set(err, FORGE_E_FORMAT, "%s: no \"siblings\" list", what);
    l->files = calloc(sib->n ? sib->n : 1, sizeof *l->files);
    if (!l->files) return err_set(err, FORGE_E_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < sib->n; i++) {
        const json_value *s = json_at(sib, i), *name = json_get(s, "rfilename");
        /* never a path outside the snapshot, nor one with a NUL inside */
        if (!json_is(name, JSON_STRING) || strlen(name->u.s) != name->n ||
            !hub_safe_relpath(name->u.s))
            continue;
        hub_file *f = &l->files[l->n++];
        f->name = name->u.s;
        const json_value *size = json_get(s, "size");
        f->size = json_is(size, JSON_INT) && size->u.i >= 0 ? size->u.i : -1;
        f->blob_id = json_string(json_get(s, "blobId"));
        f->lfs_sha256 = json_string(json_get(json_get(s, "lfs"), "sha256"));
    }
    return FORGE_OK;
}

/* ---- one blob's download ---------------------------------------------------------------- */

typedef struct dl_state {
    int fd;
    hub_hash *hash; /* NULL when the file cannot be verified */
    int64_t have;   /* bytes in the .incomplete file */
    int64_t size;   /* bytes expected */
    hub_progress *progress;
    const char *path;
    bool io_error; /* a local write failed: not worth retrying */
    char error[512];
} dl_state;

/* Empties the .incomplete file and the digest: the next try starts from byte 0. */
static int dl_restart(dl_state *d) {
    hub_progress_advance(d->progress, -d->have);
    d->have = 0;
    if (ftruncate(d->fd, 0) != 0) return -1;
    return d->hash ? hub_hash_reset(d->hash) : 0;
}

static int dl_sink(void *ctx, const hub_response *r, const void *data, size_t n) {
    dl_state *d = ctx;
    if (!data) {
        if (r->status == 206) {
            long long a = -1, b = -1, t = -1;
            if (sscanf(r->content_range, "bytes %lld-%lld/%lld", &a, &b, &t) != 3 || a != d->have ||
                t != d->size) {
                snprintf(d->error, sizeof d->error,
                         "asked for bytes %lld- of %lld, got Content-Range '%s'",
                         (long long)d->have, (long long)d->size, r->content_range);
                return -1;
            }
        } else if (d->have > 0 && dl_restart(d) != 0) { /* Range ignored: the whole file comes */
            snprintf(d->error, sizeof d->error, "%s: cannot truncate: %s", d->path,
                     strerror(errno));
            d->io_error = true;
            return -1;
        }
        return 0;
    }
    if ((int64_t)n > d->size - d->have) {
        snprintf(d->error, sizeof d->error, "the server sent more than the %lld bytes announced",
                 (long long)d->size);
        return -1;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w =
            pwrite(d->fd, (const char *)data + off, n - off, (off_t)(d->have + (int64_t)off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(d->error, sizeof d->error, "%s: write failed: %s", d->path,
                     w < 0 ? strerror(errno) : "no space");
            d->io_error = true;
            return -1;
        }
        off += (size_t)w;
    }
    if (d->hash && hub_hash_update(d->hash, data, n) != 0) {
        snprintf(d->error, sizeof d->error, "digest update failed");
        d->io_error = true;
        return -1;
    }
    d->have += (int64_t)n;
    hub_progress_advance(d->progress, (int64_t)n);
    return 0;
}

/* Feeds the first d->have bytes already in the file to the digest (a resumed download). */
static int hash_prefix(dl_state *d) {
    if (!d->hash || d->have == 0) return 0;
    char *buf = malloc(1 << 20);
    if (!buf) return -1;
    int64_t off = 0;
    int rc = 0;
    while (off < d->have && rc == 0) {
        size_t want = (size_t)(d->have - off < (1 << 20) ? d->have - off : (1 << 20));
        ssize_t n = pread(d->fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || hub_hash_update(d->hash, buf, (size_t)n) != 0)
            rc = -1;
        else
            off += n;
    }
    free(buf);
    return rc;
}

static forge_status download_blob(const hub_fetch_ctx *ctx, hub_http *http, const char *name,
                                  const char *url, int64_t size, hub_hash *hash,
                                  const char *expected, const char *blob, forge_error *err) {
    char part[HUB_PATH_MAX];
    if (hub_pathf(part, "%s.incomplete", blob) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s", blob);
    dl_state d = {.fd = -1, .hash = hash, .size = size, .progress = ctx->progress, .path = part};
    d.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    struct stat st;
    if (d.fd < 0 || fstat(d.fd, &st) != 0) {
        err_set(err, FORGE_E_IO, "%s: cannot open: %s", part, strerror(errno));
        if (d.fd >= 0) close(d.fd);
        return FORGE_E_IO;
    }
    forge_status status = FORGE_OK;
    d.have = st.st_size;
    if (d.have > size || hash_prefix(&d) != 0) {
        d.have = 0;
        if (ftruncate(d.fd, 0) != 0 || (hash && hub_hash_reset(hash) != 0)) {
            status = err_set(err, FORGE_E_IO, "%s: cannot truncate: %s", part, strerror(errno));
            goto out;
        }
    }
    if (d.have > 0) {
        char a[32], b[32];
        hub_format_bytes((double)d.have, a, sizeof a);
        hub_format_bytes((double)size, b, sizeof b);
        hub_progress_info(ctx->progress, "resuming %s at %s of %s", name, a, b);
        hub_progress_advance(ctx->progress, d.have);
    }
    int fails = 0, corrupt = 0, max = ctx->conf->max_retries;
    for (;;) {
        if (d.have < size) {
            hub_request req = {.method = "GET",
                               .url = url,
                               .follow_all = true,
                               .download = true,
                               .range_from = d.have,
                               .sink = dl_sink,
                               .sink_ctx = &d};
            hub_response r = {0};
            int64_t before = d.have;
            d.error[0] = 0;
            hub_http_once(http, &req, &r);
            bool ok = r.net == HUB_NET_OK && r.status / 100 == 2;
            if (r.net == HUB_NET_CANCELLED) {
                hub_response_free(&r);
                status = err_set(err, FORGE_E_CANCELLED, "download of %s cancelled", name);
                goto out;
            }
            if (d.io_error) {
                hub_response_free(&r);
                status = err_set(err, FORGE_E_IO, "%s", d.error);
                goto out;
            }
            if (!(ok && d.have == size)) {
                char why[700];
                bool retry = true;
                if (d.error[0]) {
                    snprintf(why, sizeof why, "%s", d.error);
                    if (dl_restart(&d) != 0) retry = false;
                } else if (r.net == HUB_NET_OK && r.status == 416) {
                    snprintf(why, sizeof why, "HTTP 416 for a resumed download");
                    if (dl_restart(&d) != 0) retry = false;
                } else if (ok) {
                    snprintf(why, sizeof why, "the transfer ended at byte %lld of %lld",
                             (long long)d.have, (long long)size);
                } else if (hub_response_retryable(&r)) {
                    if (r.net != HUB_NET_OK)
                        snprintf(why, sizeof why, "%s", r.net_error);
                    else
                        snprintf(why, sizeof why, "HTTP %ld", r.status);
                } else {
                    retry = false;
                    why[0] = 0;
                }
                /* The file grew: as huggingface_hub, start counting tries again (a restart
                 * from byte 0 is no progress, or a server cutting at one place would loop). */
                if (d.have > before) fails = 0;
                if (!retry || ++fails > max) {
                    if (why[0])
                        status = err_set(err, FORGE_E_NETWORK,
                                         "downloading %s of %s failed after %d tr%s: %s (%s)", name,
                                         ctx->repo, fails, fails == 1 ? "y" : "ies", why, r.url);
                    else
                        status =
                            hub_response_error(&r, name, ctx->repo, ctx->revision,
                                               ctx->conf->endpoint, ctx->conf->token != NULL, err);
                    hub_response_free(&r);
                    goto out;
                }
                double wait = hub_backoff_s(fails - 1, r.retry_after);
                hub_progress_note(ctx->progress,
                                  "%s: %s; resuming at byte %lld in %.3g s (try %d of %d)", name,
                                  why, (long long)d.have, wait, fails + 1, max + 1);
                hub_response_free(&r);
                hub_sleep(wait, ctx->conf->cancel);
                continue;
            }
            hub_response_free(&r);
        }
        if (hash) {
            char got[65];
            if (hub_hash_hex(hash, got) != 0) {
                status = err_set(err, FORGE_E_INTERNAL, "%s: digest failed", name);
                goto out;
            }
            if (strcmp(got, expected) != 0) {
                const char *kind = strlen(expected) == 64 ? "sha256" : "git blob sha1";
                if (dl_restart(&d) != 0 || hub_hash_reset(hash) != 0 || ++corrupt > max) {
                    unlink(part);
                    status = err_set(
                        err, FORGE_E_NETWORK,
                        "downloaded %s of %s but its %s is %s, not %s (tried %d time%s)", name,
                        ctx->repo, kind, got, expected, corrupt, corrupt == 1 ? "" : "s");
                    goto out;
                }
                hub_progress_note(ctx->progress,
                                  "%s: %s mismatch (got %s, expected %s); downloading it again",
                                  name, kind, got, expected);
                continue;
            }
        }
        break;
    }
    if (close(d.fd) != 0) {
        d.fd = -1;
        status = err_set(err, FORGE_E_IO, "%s: close failed: %s", part, strerror(errno));
        goto out;
    }
    d.fd = -1;
    if (rename(part, blob) != 0)
        status =
            err_set(err, FORGE_E_IO, "%s: cannot rename to %s: %s", part, blob, strerror(errno));
out:
    if (d.fd >= 0) close(d.fd);
    return status;
}

/* ---- one file --------------------------------------------------------------------------- */

static void on_lock_wait(void *ctx) {
    const void *const *a = ctx;
    const hub_fetch_ctx *fc = a[0];
    hub_progress_info(fc->progress, "waiting for another process downloading %s (lock %s)",
                      (const char *)a[1], (const char *)a[2]);
}

forge_status hub_fetch_file(const hub_fetch_ctx *ctx, hub_http *http, const hub_file *file,
                            forge_error *err) {
    const hub_conf *conf = ctx->conf;
    char qname[3 * HUB_PATH_MAX], url[HUB_PATH_MAX * 4];
    if (hub_url_quote(file->name, true, qname, sizeof qname) != 0 ||
        snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", conf->endpoint, ctx->repo, ctx->commit,
                 qname) >= (int)sizeof url)
        return err_set(err, FORGE_E_RANGE, "file name too long: %s", file->name);

    /* HEAD without following the CDN redirect: the Hub's own answer names the blob. */
    hub_request req = {.method = "HEAD", .url = url};
    hub_response r = {0};
    hub_http_fetch(http, &req, conf->max_retries, &r);
    forge_status st = FORGE_OK;
    bool redirect = r.status / 100 == 3;
    if (r.net != HUB_NET_OK || (r.status / 100 != 2 && !redirect)) {
        st = hub_response_error(&r, file->name, ctx->repo, ctx->revision, conf->endpoint,
                                conf->token != NULL, err);
        goto done;
    }
    if (!r.repo_commit[0]) {
        st = err_set(err, FORGE_E_NETWORK,
                     "%s does not answer like the Hub (no X-Repo-Commit header for %s): "
                     "check HF_ENDPOINT and any proxy",
                     conf->endpoint, file->name);
        goto done;
    }
    if (strcmp(r.repo_commit, ctx->commit) != 0) {
        st = err_set(err, FORGE_E_FORMAT, "the Hub answered commit %s for %s asked at commit %s",
                     r.repo_commit, file->name, ctx->commit);
        goto done;
    }
    char etag[256];
    hub_normalize_etag(r.linked_etag[0] ? r.linked_etag : r.etag, etag, sizeof etag);
    if (!hub_safe_etag(etag)) {
        st = err_set(err, FORGE_E_NETWORK, "the Hub's answer for %s has %s ETag ('%s')", file->name,
                     etag[0] ? "an unusable" : "no", etag);
        goto done;
    }
    int64_t size = r.linked_size >= 0 ? r.linked_size : redirect ? -1 : r.content_length;
    if (size < 0) {
        st = err_set(err, FORGE_E_NETWORK, "the Hub's answer for %s gives no size", file->name);
        goto done;
    }
    const char *dl_url = redirect ? r.location : r.url;

    /* What to check the bytes against: the ETag itself when it is a digest (the sha256 of an
     * LFS file, the git blob sha1 of a small one), else what the file list said. */
    hub_hash_kind kind = HUB_HASH_SHA256;
    const char *expected = NULL;
    if (is_hex(etag, 64))
        expected = etag;
    else if (is_hex(etag, 40))
        kind = HUB_HASH_GIT_SHA1, expected = etag;
    else if (file->lfs_sha256 && is_hex(file->lfs_sha256, 64))
        expected = file->lfs_sha256;
    else if (!file->lfs_sha256 && file->blob_id && is_hex(file->blob_id, 40))
        kind = HUB_HASH_GIT_SHA1, expected = file->blob_id;
    else
        hub_progress_note(ctx->progress,
                          "%s: its ETag '%s' is not a digest; it is checked by size only",
                          file->name, etag);

    char blob[HUB_PATH_MAX], blobs[HUB_PATH_MAX], lock[HUB_PATH_MAX];
    if (hub_pathf(blobs, "%s/blobs", ctx->storage) != 0 ||
        hub_pathf(blob, "%s/%s", blobs, etag) != 0 ||
        hub_pathf(lock, "%s/%s.lock", ctx->lock_dir, etag) != 0) {
        st = err_set(err, FORGE_E_RANGE, "path too long under %s", ctx->storage);
        goto done;
    }
    bool fetched = false;
    if (!is_regular(blob)) {
        if ((st = hub_mkdirs(blobs, err)) != FORGE_OK) goto done;
        const void *wait_ctx[3] = {ctx, file->name, lock};
        int lfd = hub_lock_acquire(lock, on_lock_wait, (void *)wait_ctx, err);
        if (lfd < 0) {
            st = err ? err->code : FORGE_E_IO;
            goto done;
        }
        if (!is_regular(blob)) { /* another process may have finished it while we waited */
            hub_hash *h = expected ? hub_hash_create(kind, (uint64_t)size) : NULL;
            if (expected && !h)
                st = err_set(err, FORGE_E_NOMEM, "out of memory");
            else
                st = download_blob(ctx, http, file->name, dl_url, size, h, expected, blob, err);
            hub_hash_free(h);
            fetched = true;
        }
        hub_lock_release(lfd);
        if (st != FORGE_OK) goto done;
    }
    st = hub_link_blob(ctx->storage, ctx->commit, file->name, etag, err);
    if (st == FORGE_OK) hub_progress_file_done(ctx->progress, file->name, size, fetched);
done:
    hub_response_free(&r);
    return st;
}
