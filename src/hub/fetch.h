/* fetch.h: bringing one repo file into the cache: HEAD for its ETag, then (unless the blob is
 * already there) a download under the blob's lock into blobs/<etag>.incomplete, resumed
 * with a Range request after an interruption, verified (sha256 for LFS files, git blob sha1
 * for small ones) and renamed into place; finally the snapshot's relative symlink. */
#ifndef FORGE_HUB_FETCH_H
#define FORGE_HUB_FETCH_H

#include <stdint.h>

#include "hub/http.h"
#include "hub/progress.h"

/* A file of the repo as the file list describes it. */
typedef struct hub_file {
    const char *name;       /* path in the repo */
    int64_t size;           /* -1: unknown */
    const char *lfs_sha256; /* NULL unless an LFS file */
    const char *blob_id;    /* git blob id (of the LFS pointer for LFS files); NULL: unknown */
} hub_file;

/* A revision's file list: the answer of GET /api/models/{repo}/revision/{rev}?blobs=true. */
typedef struct hub_listing {
    struct json_doc *doc; /* owns the strings below */
    char commit[41];
    hub_file *files;
    int n;
} hub_listing;

/* Parses the file list (`what` names it in errors). Entries whose name is not a safe
 * relative path are dropped. Free with hub_listing_free, also after a failure. */
forge_status hub_listing_parse(const char *text, size_t len, const char *what, hub_listing *l,
                               forge_error *err);
void hub_listing_free(hub_listing *l);
/* The entry named name, or NULL. */
const hub_file *hub_listing_find(const hub_listing *l, const char *name);

typedef struct hub_fetch_ctx {
    const hub_conf *conf;
    const char *repo;     /* "org/name" */
    const char *revision; /* as asked, for messages */
    const char *commit;   /* the resolved commit hash */
    const char *storage;  /* <root>/models--org--name */
    const char *lock_dir; /* <root>/.locks/models--org--name */
    hub_progress *progress;
} hub_fetch_ctx;

/* Makes snapshots/<commit>/<file> point at a complete, verified blob. */
forge_status hub_fetch_file(const hub_fetch_ctx *ctx, hub_http *http, const hub_file *file,
                            forge_error *err);

#endif
