#include "hub/cache.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/mfile.h"

const char *const hub_optional_files[] = {
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
};
const int hub_n_optional_files = (int)(sizeof hub_optional_files / sizeof hub_optional_files[0]);

/* ---- ids -------------------------------------------------------------------------------- */

/* One part of a repo id, as huggingface_hub's REPO_ID_REGEX ([\w\-.]+ between word
 * boundaries) with ASCII word characters: it must start and end with a letter, digit or "_". */
static bool repo_part_ok(const char *s, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool word =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!word && c != '-' && c != '.') return false;
        if ((i == 0 || i == n - 1) && !word) return false;
    }
    return true;
}

static bool repo_ok(const char *s, size_t n) {
    const char *slash = memchr(s, '/', n);
    if (!slash || n > HUB_REPO_MAX) return false;
    size_t a = (size_t)(slash - s);
    if (!repo_part_ok(s, a) || !repo_part_ok(slash + 1, n - a - 1)) return false;
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == '-' && s[i + 1] == '-') || (s[i] == '.' && s[i + 1] == '.')) return false;
    return true;
}

bool hub_safe_relpath(const char *s) {
    if (!s || !*s || *s == '/') return false;
    const char *seg = s;
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == 0) {
            size_t len = (size_t)(p - seg);
            if (len == 0) return false;
            if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*p == 0) return true;
            seg = p + 1;
        } else if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\') {
            return false;
        }
    }
}

bool hub_safe_etag(const char *s) {
    if (!s || !*s || *s == '.' || strlen(s) > 200) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

bool hub_is_commit(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 40;
}

/* Splits a ":TAG" out of s into tag (cap bytes) and the rest into rest; -1 when malformed. */
static int split_tag(const char *s, char *rest, size_t rest_cap, char *tag, size_t cap) {
    const char *c = strchr(s, ':');
    tag[0] = 0;
    if (strlen(s) >= rest_cap) return -1;
    if (!c) {
        strcpy(rest, s);
        return 0;
    }
    const char *end = strchr(c + 1, '@');
    size_t t = end ? (size_t)(end - c - 1) : strlen(c + 1);
    if (t == 0 || t >= cap) return -1;
    for (size_t i = 0; i < t; i++)
        if (!isalnum((unsigned char)c[1 + i]) && !strchr("_.-", c[1 + i])) return -1;
    memcpy(tag, c + 1, t);
    tag[t] = 0;
    size_t head = (size_t)(c - s);
    memcpy(rest, s, head);
    strcpy(rest + head, end ? end : "");
    return strchr(rest, ':') ? -1 : 0;
}

bool hub_id_like(const char *s0) {
    if (!s0) return false;
    char s[1024], tag[64];
    if (split_tag(s0, s, sizeof s, tag, sizeof tag)) return false;
    const char *at = strchr(s, '@');
    size_t n = at ? (size_t)(at - s) : strlen(s);
    return repo_ok(s, n) && (!at || hub_safe_relpath(at + 1));
}

forge_status hub_id_parse(const char *s0, hub_id *id, forge_error *err) {
    memset(id, 0, sizeof *id);
    if (!s0 || !*s0)
        return err_set(err, FORGE_E_INVALID, "empty model id (expected org/name[@revision])");
    char s[1024];
    if (split_tag(s0, s, sizeof s, id->quant, sizeof id->quant))
        return err_set(err, FORGE_E_INVALID,
                       "'%.200s': a quantization tag is one ':TAG' of letters, digits, '_', '.', '-' (org/name-GGUF:Q4_K_M)",
                       s0);
    const char *at = strchr(s, '@');
    size_t n = at ? (size_t)(at - s) : strlen(s);
    if (!repo_ok(s, n))
        return err_set(
            err, FORGE_E_INVALID,
            "'%.*s' is not a Hub model id: expected org/name (letters, digits, '-', '_', '.'; "
            "at most %d characters, no '--' or '..')",
            (int)n, s, HUB_REPO_MAX);
    memcpy(id->repo, s, n);
    const char *rev = at ? at + 1 : "main";
    if (!hub_safe_relpath(rev) || strlen(rev) >= sizeof id->revision)
        return err_set(err, FORGE_E_INVALID,
                       "'%s' is not a valid revision (branch, tag or commit hash)", rev);
    strcpy(id->revision, rev);
    return FORGE_OK;
}

/* ---- environment ------------------------------------------------------------------------ */

bool hub_env_true(const char *name) {
    const char *v = getenv(name);
    if (!v) return false;
    return !strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
           !strcasecmp(v, "true");
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Copies path into out with a leading "~" or "~/" replaced by the home directory. */
static forge_status expand_user(const char *path, char *out, size_t n, forge_error *err) {
    int w;
    if (path[0] == '~' && (path[1] == 0 || path[1] == '/')) {
        const char *home = env_nonempty("HOME");
        if (!home) {
            struct passwd pw, *res = NULL;
            char buf[1024];
            if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res) home = res->pw_dir;
        }
        if (!home)
            return err_set(err, FORGE_E_INVALID, "cannot expand '%s': no home directory", path);
        w = snprintf(out, n, "%s%s", home, path + 1);
    } else {
        w = snprintf(out, n, "%s", path);
    }
    if (w < 0 || (size_t)w >= n) return err_set(err, FORGE_E_RANGE, "path too long: %s", path);
    return FORGE_OK;
}

forge_status hub_home_dir(char *out, size_t n, forge_error *err) {
    const char *v = env_nonempty("HF_HOME");
    if (v) return expand_user(v, out, n, err);
    char tmp[HUB_PATH_MAX];
    const char *xdg = env_nonempty("XDG_CACHE_HOME");
    if (hub_pathf(tmp, "%s/huggingface", xdg ? xdg : "~/.cache") != 0)
        return err_set(err, FORGE_E_RANGE, "XDG_CACHE_HOME is too long");
    return expand_user(tmp, out, n, err);
}

forge_status hub_cache_root(const char *override, char *out, size_t n, forge_error *err) {
    const char *v = override && *override ? override : env_nonempty("HF_HUB_CACHE");
    if (!v) v = env_nonempty("HUGGINGFACE_HUB_CACHE");
    if (v) return expand_user(v, out, n, err);
    char home[HUB_PATH_MAX];
    forge_status st = hub_home_dir(home, sizeof home, err);
    if (st != FORGE_OK) return st;
    int w = snprintf(out, n, "%s/hub", home);
    if (w < 0 || (size_t)w >= n)
        return err_set(err, FORGE_E_RANGE, "cache path too long: %s/hub", home);
    return FORGE_OK;
}

/* A token as huggingface_hub's _clean_token: CR and LF removed, whitespace trimmed. */
static char *clean_token(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s), k = 0;
    char *t = malloc(n + 1);
    if (!t) return NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n') t[k++] = s[i];
    t[k] = 0;
    size_t a = 0;
    while (t[a] == ' ' || t[a] == '\t' || t[a] == '\v' || t[a] == '\f') a++;
    while (k > a && (t[k - 1] == ' ' || t[k - 1] == '\t' || t[k - 1] == '\v' || t[k - 1] == '\f'))
        k--;
    memmove(t, t + a, k - a);
    t[k - a] = 0;
    if (!t[0]) {
        free(t);
        return NULL;
    }
    return t;
}

char *hub_token_lookup(const char *override) {
    if (override) return clean_token(override);
    /* get_token(): the environment `or` the file, so a blank HF_TOKEN falls through. */
    const char *v = getenv("HF_TOKEN");
    if (!v || !*v) v = getenv("HUGGING_FACE_HUB_TOKEN");
    char *t = v && *v ? clean_token(v) : NULL;
    if (t) return t;
    char path[HUB_PATH_MAX], home[HUB_PATH_MAX];
    const char *tp = env_nonempty("HF_TOKEN_PATH");
    if (tp) {
        if (expand_user(tp, path, sizeof path, NULL) != FORGE_OK) return NULL;
    } else {
        if (hub_home_dir(home, sizeof home, NULL) != FORGE_OK ||
            hub_pathf(path, "%s/token", home) != 0)
            return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char buf[4096];
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    return clean_token(buf);
}

/* ---- paths ------------------------------------------------------------------------------ */

int hub_pathf(char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out, HUB_PATH_MAX, fmt, ap);
    va_end(ap);
    return (w < 0 || w >= HUB_PATH_MAX) ? -1 : 0;
}

int hub_storage_dir(const char *root, const char *repo, char *out, size_t n) {
    const char *slash = strchr(repo, '/');
    if (!slash) return -1;
    int w = snprintf(out, n, "%s/models--%.*s--%s", root, (int)(slash - repo), repo, slash + 1);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

forge_status hub_mkdirs(const char *dir, forge_error *err) {
    char p[HUB_PATH_MAX];
    if (hub_pathf(p, "%s", dir) != 0) return err_set(err, FORGE_E_RANGE, "path too long: %s", dir);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return err_set(err, FORGE_E_IO, "%s: cannot create folder: %s", p, strerror(errno));
            *s = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, FORGE_E_IO, "%s: not a folder", dir);
    return FORGE_OK;
}

/* mkdir -p of the folder holding path. */
static forge_status mkdirs_parent(const char *path, forge_error *err) {
    char d[HUB_PATH_MAX];
    if (hub_pathf(d, "%s", path) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s", path);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) return FORGE_OK;
    *slash = 0;
    return hub_mkdirs(d, err);
}

/* A name unique to this thread, for temporary files renamed into place. */
static void tmp_suffix(char *out, size_t n) {
    static unsigned long counter;
    unsigned long c = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    snprintf(out, n, ".%ld.%lu.tmp", (long)getpid(), c);
}

forge_status hub_read_ref(const char *storage, const char *revision, char commit[41],
                          forge_error *err) {
    char path[HUB_PATH_MAX];
    commit[0] = 0;
    if (hub_pathf(path, "%s/refs/%s", storage, revision) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s/refs/%s", storage, revision);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, FORGE_E_NOT_FOUND, "%s: no such ref", path);
    char buf[128];
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' '))
        buf[--got] = 0;
    if (!hub_is_commit(buf)) return err_set(err, FORGE_E_FORMAT, "%s: not a commit hash", path);
    memcpy(commit, buf, 41);
    return FORGE_OK;
}

forge_status hub_write_ref(const char *storage, const char *revision, const char *commit,
                           forge_error *err) {
    char path[HUB_PATH_MAX], tmp[HUB_PATH_MAX], sfx[64], cur[41];
    if (hub_read_ref(storage, revision, cur, NULL) == FORGE_OK && !strcmp(cur, commit))
        return FORGE_OK;
    tmp_suffix(sfx, sizeof sfx);
    if (hub_pathf(path, "%s/refs/%s", storage, revision) != 0 ||
        hub_pathf(tmp, "%s%s", path, sfx) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s/refs/%s", storage, revision);
    forge_status st = mkdirs_parent(path, err);
    if (st != FORGE_OK) return st;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return err_set(err, FORGE_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    size_t n = strlen(commit);
    bool ok = write(fd, commit, n) == (ssize_t)n;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, FORGE_E_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return FORGE_OK;
}

forge_status hub_link_blob(const char *storage, const char *commit, const char *file,
                           const char *etag, forge_error *err) {
    char path[HUB_PATH_MAX], tmp[HUB_PATH_MAX], target[HUB_PATH_MAX], sfx[64];
    tmp_suffix(sfx, sizeof sfx);
    if (hub_pathf(path, "%s/snapshots/%s/%s", storage, commit, file) != 0 ||
        hub_pathf(tmp, "%s%s", path, sfx) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s/snapshots/%s/%s", storage, commit,
                       file);
    /* The link lives in snapshots/<commit>/<dirs of file>/: climb two levels plus one per
     * folder in the file's name, as os.path.relpath gives huggingface_hub. */
    size_t k = 0;
    target[0] = 0;
    int depth = 2;
    for (const char *p = file; *p; p++) depth += *p == '/';
    for (int i = 0; i < depth; i++) k += (size_t)snprintf(target + k, sizeof target - k, "../");
    if (snprintf(target + k, sizeof target - k, "blobs/%s", etag) >= (int)(sizeof target - k))
        return err_set(err, FORGE_E_RANGE, "link target too long for %s", file);
    forge_status st = mkdirs_parent(path, err);
    if (st != FORGE_OK) return st;
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return err_set(err, FORGE_E_IO, "%s: cannot create symlink: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, FORGE_E_IO, "%s: cannot rename symlink into place: %s", path,
                       strerror(e));
    }
    return FORGE_OK;
}

bool hub_snapshot_has(const char *storage, const char *commit, const char *file) {
    char path[HUB_PATH_MAX];
    struct stat st;
    return hub_pathf(path, "%s/snapshots/%s/%s", storage, commit, file) == 0 &&
           stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void hub_mark_no_exist(const char *storage, const char *commit, const char *file) {
    char path[HUB_PATH_MAX];
    if (hub_pathf(path, "%s/.no_exist/%s/%s", storage, commit, file) != 0) return;
    if (mkdirs_parent(path, NULL) != FORGE_OK) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0) close(fd);
}

bool hub_has_no_exist(const char *storage, const char *commit, const char *file) {
    char path[HUB_PATH_MAX];
    struct stat st;
    return hub_pathf(path, "%s/.no_exist/%s/%s", storage, commit, file) == 0 &&
           stat(path, &st) == 0;
}

void hub_free_strings(char **s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

forge_status hub_index_shards_parse(const char *text, size_t len, const char *what, char ***shards,
                                    int *n, forge_error *err) {
    *shards = NULL;
    *n = 0;
    json_doc *doc = json_parse(text, len, err);
    if (!doc) return err_prefix(err, "%s", what);
    const json_value *wm = json_get(json_root(doc), "weight_map");
    forge_status st = FORGE_OK;
    char **out = NULL;
    int k = 0;
    if (!json_is(wm, JSON_OBJECT) || wm->n == 0) {
        st = err_set(err, FORGE_E_FORMAT, "%s: no \"weight_map\" object", what);
        goto done;
    }
    if (!(out = calloc(wm->n, sizeof *out))) {
        st = err_set(err, FORGE_E_NOMEM, "%s: out of memory", what);
        goto done;
    }
    for (size_t i = 0; i < wm->n; i++) {
        const json_value *v = wm->u.members[i].value;
        const char *name = json_string(v);
        size_t len_name = name ? strlen(name) : 0;
        if (!name || len_name != v->n || !hub_safe_relpath(name) || len_name < 12 ||
            strcmp(name + len_name - 12, ".safetensors") != 0) {
            st = err_set(err, FORGE_E_FORMAT,
                         "%s: weight_map[\"%s\"] is not a safetensors file name", what,
                         wm->u.members[i].key);
            goto done;
        }
        bool seen = false;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j], name);
        if (seen) continue;
        if (!(out[k] = strdup(name))) {
            st = err_set(err, FORGE_E_NOMEM, "%s: out of memory", what);
            goto done;
        }
        k++;
    }
done:
    json_free(doc);
    if (st != FORGE_OK) {
        hub_free_strings(out, k);
        return st;
    }
    *shards = out;
    *n = k;
    return FORGE_OK;
}

forge_status hub_index_shards(const char *path, char ***shards, int *n, forge_error *err) {
    char *text = NULL;
    size_t len = 0;
    *shards = NULL;
    *n = 0;
    forge_status st = file_read_all(path, 64u << 20, &text, &len, err);
    if (st != FORGE_OK) return st;
    st = hub_index_shards_parse(text, len, path, shards, n, err);
    free(text);
    return st;
}

forge_status hub_snapshot_check(const char *storage, const char *commit, bool strict,
                                forge_error *err) {
    char snap[HUB_PATH_MAX];
    if (hub_pathf(snap, "%s/snapshots/%s", storage, commit) != 0)
        return err_set(err, FORGE_E_RANGE, "path too long: %s", storage);
    struct stat st;
    if (stat(snap, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, FORGE_E_NOT_FOUND, "no snapshot %s in the cache", commit);
    if (!hub_snapshot_has(storage, commit, "config.json"))
        return err_set(err, FORGE_E_NOT_FOUND, "config.json is missing from %s", snap);
    if (!hub_snapshot_has(storage, commit, "tokenizer.json") &&
        !hub_has_no_exist(storage, commit, "tokenizer.json"))
        return err_set(err, FORGE_E_NOT_FOUND, "tokenizer.json is missing from %s", snap);
    /* model.safetensors first, as transformers prefers it when a repo has both. */
    if (!hub_snapshot_has(storage, commit, "model.safetensors")) {
        if (!hub_snapshot_has(storage, commit, "model.safetensors.index.json"))
            return err_set(err, FORGE_E_NOT_FOUND,
                           "model.safetensors (or model.safetensors.index.json and its shards) "
                           "is missing from %s",
                           snap);
        char idx[HUB_PATH_MAX], **shards;
        int n;
        if (hub_pathf(idx, "%s/model.safetensors.index.json", snap) != 0)
            return err_set(err, FORGE_E_RANGE, "path too long: %s", snap);
        forge_status s = hub_index_shards(idx, &shards, &n, err);
        if (s != FORGE_OK) return s;
        for (int i = 0; i < n; i++)
            if (!hub_snapshot_has(storage, commit, shards[i])) {
                err_set(err, FORGE_E_NOT_FOUND, "shard %s is missing from %s", shards[i], snap);
                hub_free_strings(shards, n);
                return FORGE_E_NOT_FOUND;
            }
        hub_free_strings(shards, n);
    }
    if (strict)
        for (int i = 0; i < hub_n_optional_files; i++)
            if (!hub_snapshot_has(storage, commit, hub_optional_files[i]) &&
                !hub_has_no_exist(storage, commit, hub_optional_files[i]))
                return err_set(err, FORGE_E_NOT_FOUND,
                               "%s is neither in %s nor marked absent in .no_exist",
                               hub_optional_files[i], snap);
    return FORGE_OK;
}

/* ---- locks ------------------------------------------------------------------------------ */

int hub_lock_acquire(const char *path, void (*on_wait)(void *ctx), void *ctx, forge_error *err) {
    if (mkdirs_parent(path, err) != FORGE_OK) return -1;
    /* As filelock's UnixFileLock (used by huggingface_hub): an flock on <etag>.lock, whose
     * file is kept afterwards (removing it would race with a process about to lock it). */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_set(err, FORGE_E_IO, "%s: cannot open lock file: %s", path, strerror(errno));
        return -1;
    }
    int rc;
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (rc != 0 && errno == EWOULDBLOCK) {
        if (on_wait) on_wait(ctx);
        while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
        }
    }
    if (rc != 0) {
        err_set(err, FORGE_E_IO, "%s: cannot lock: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void hub_lock_release(int fd) {
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}
