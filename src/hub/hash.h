/* hash.h: the digests the Hub names files by, computed incrementally while a file streams in:
 * sha256 (the ETag of an LFS file) and git's blob sha1 (sha1 of "blob <size>\0" + content,
 * the ETag of a small file). Built on OpenSSL's libcrypto, which libcurl already loads. */
#ifndef FORGE_HUB_HASH_H
#define FORGE_HUB_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef enum { HUB_HASH_SHA256, HUB_HASH_GIT_SHA1 } hub_hash_kind;

typedef struct hub_hash hub_hash;

/* Starts a digest; for HUB_HASH_GIT_SHA1 `size` is the content's total length (it is part of
 * the hashed header). NULL when out of memory. */
hub_hash *hub_hash_create(hub_hash_kind kind, uint64_t size);
/* Starts over, as if just created with the same kind and size. Returns 0, or -1 on failure. */
int hub_hash_reset(hub_hash *h);
/* Feeds n bytes. Returns 0, or -1 on failure (then the digest is invalid). */
int hub_hash_update(hub_hash *h, const void *data, size_t n);
/* Finishes the digest into lowercase hex (64 chars for sha256, 40 for sha1) + NUL. The hash
 * must be reset before further use. Returns 0, or -1 on failure. */
int hub_hash_hex(hub_hash *h, char out[65]);
void hub_hash_free(hub_hash *h);

/* Hex digest of a whole file; 0 on success, -1 (with err naming the path) on failure. */
int hub_hash_file(const char *path, hub_hash_kind kind, char out[65], forge_error *err);

#endif
