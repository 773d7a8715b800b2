/* cache.h: the huggingface_hub cache layout, shared with transformers, vLLM and huggingface-cli.
 *
 *   <root>/models--<org>--<name>/blobs/<etag>                  file contents, named by ETag
 *   <root>/models--<org>--<name>/snapshots/<commit>/<file>     -> ../../blobs/<etag> (relative)
 *   <root>/models--<org>--<name>/refs/<revision>               the commit hash, no newline
 *   <root>/models--<org>--<name>/.no_exist/<commit>/<file>     empty: <file> is not in <commit>
 *   <root>/.locks/models--<org>--<name>/<etag>.lock            flock'd while <etag> downloads
 *
 * The root is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (legacy), else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub, as in huggingface_hub's
 * constants.py (a leading "~" is expanded; empty variables count as unset). */
#ifndef FORGE_HUB_CACHE_H
#define FORGE_HUB_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define HUB_PATH_MAX 4096
#define HUB_REPO_MAX 96 /* huggingface_hub's limit on a repo id's length */

typedef struct hub_id {
    char repo[HUB_REPO_MAX + 1]; /* "org/name" */
    char revision[256];          /* "main" unless "@revision" was given */
    char quant[64];              /* ":TAG" of a GGUF repo's id (org/name-GGUF:Q4_K_M), or "" */
} hub_id;

/* Parses "org/name", "org/name@revision", and either with a quantization tag ":TAG" after
 * the name or the revision ([A-Za-z0-9_.-], as llama.cpp's -hf takes them). Errors say
 * what is wrong with the id. */
forge_status hub_id_parse(const char *s, hub_id *id, forge_error *err);
/* True when s is spelled like a Hub id (org/name[:TAG][@revision]); says nothing of existence. */
bool hub_id_like(const char *s);
/* True for a full commit hash: 40 lowercase hex digits. */
bool hub_is_commit(const char *s);
/* True for a relative path a remote may name (a repo file or a revision): no "..", no
 * leading or doubled "/", no backslash or control character. */
bool hub_safe_relpath(const char *s);
/* True for an ETag usable as a blob file name: [A-Za-z0-9_-]+ (plus inner dots). */
bool hub_safe_etag(const char *s);

/* Python's _is_true: the variable is "1", "ON", "YES" or "TRUE" (any case). */
bool hub_env_true(const char *name);
/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
forge_status hub_home_dir(char *out, size_t n, forge_error *err);
/* The cache root: override when not NULL/empty, else from the environment (see above). */
forge_status hub_cache_root(const char *override, char *out, size_t n, forge_error *err);
/* The token: override when not NULL ("" means none), else $HF_TOKEN, else
 * $HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH, else $HF_HOME/token; CR/LF removed
 * and whitespace trimmed, empty meaning none. Returns a malloc'd string or NULL. */
char *hub_token_lookup(const char *override);

/* out = "<root>/models--<org>--<name>"; -1 when it does not fit. */
int hub_storage_dir(const char *root, const char *repo, char *out, size_t n);
/* snprintf into a path buffer of HUB_PATH_MAX; -1 when truncated. */
int hub_pathf(char *out, const char *fmt, ...) FORGE_PRINTF(2, 3);

/* mkdir -p (mode 0777 less the umask). */
forge_status hub_mkdirs(const char *dir, forge_error *err);
/* Reads refs/<revision> into commit. FORGE_E_NOT_FOUND when there is no such ref. */
forge_status hub_read_ref(const char *storage, const char *revision, char commit[41],
                          forge_error *err);
/* Writes refs/<revision> atomically (temporary file + rename); no-op when already equal. */
forge_status hub_write_ref(const char *storage, const char *revision, const char *commit,
                           forge_error *err);
/* Makes snapshots/<commit>/<file> a relative symlink to blobs/<etag>, atomically replacing
 * whatever was there. */
forge_status hub_link_blob(const char *storage, const char *commit, const char *file,
                           const char *etag, forge_error *err);
/* True when snapshots/<commit>/<file> resolves to a regular file (a complete blob). */
bool hub_snapshot_has(const char *storage, const char *commit, const char *file);
/* Creates the empty .no_exist/<commit>/<file> marker (best effort, as huggingface_hub). */
void hub_mark_no_exist(const char *storage, const char *commit, const char *file);
bool hub_has_no_exist(const char *storage, const char *commit, const char *file);

/* Checks a cached snapshot holds what inference needs: config.json, tokenizer.json (unless
 * .no_exist says the repo has none), and the weights (model.safetensors, else the index
 * model.safetensors.index.json and every shard it names). With strict, also each optional file
 * (generation_config.json, ...) is present or marked in .no_exist, i.e. nothing is left to ask the
 * Hub. On failure err names the first missing file (FORGE_E_NOT_FOUND). */
forge_status hub_snapshot_check(const char *storage, const char *commit, bool strict,
                                forge_error *err);

/* The files inference reads besides config.json and the weights, fetched when present. */
extern const char *const hub_optional_files[];
extern const int hub_n_optional_files;

/* Parses a model.safetensors.index.json: the distinct shard names of its weight_map, in
 * first-seen order, as one malloc'd array of malloc'd strings (*n entries). Each name is
 * checked to be a safe relative path ending in ".safetensors". */
forge_status hub_index_shards(const char *path, char ***shards, int *n, forge_error *err);
/* The same from the text of an index; `what` names it in errors. */
forge_status hub_index_shards_parse(const char *text, size_t len, const char *what, char ***shards,
                                    int *n, forge_error *err);
void hub_free_strings(char **s, int n);

/* Takes the exclusive flock on a lock file, creating it (and its folder) if needed. When
 * another process holds it, on_wait(ctx) is called once (if not NULL) before blocking.
 * Returns the fd to pass to hub_lock_release, or -1 with err. */
int hub_lock_acquire(const char *path, void (*on_wait)(void *ctx), void *ctx, forge_error *err);
void hub_lock_release(int fd);

#endif
