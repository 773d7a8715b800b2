#include "hub/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct hub_hash {
    hub_hash_kind kind;
    uint64_t size;
    EVP_MD_CTX *ctx;
};

int hub_hash_reset(hub_hash *h) {
    const EVP_MD *md = h->kind == HUB_HASH_SHA256 ? EVP_sha256() : EVP_sha1();
    if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1) return -1;
    if (h->kind == HUB_HASH_GIT_SHA1) {
        char hdr[40];
        int n = snprintf(hdr, sizeof hdr, "blob %" PRIu64, h->size);
        /* the header's terminating NUL is hashed too: "blob <size>\0" */
        if (EVP_DigestUpdate(h->ctx, hdr, (size_t)n + 1) != 1) return -1;
    }
    return 0;
}

hub_hash *hub_hash_create(hub_hash_kind kind, uint64_t size) {
    hub_hash *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->kind = kind;
    h->size = size;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || hub_hash_reset(h) != 0) {
        hub_hash_free(h);
        return NULL;
    }
    return h;
}

int hub_hash_update(hub_hash *h, const void *data, size_t n) {
    if (n == 0) return 0;
    return EVP_DigestUpdate(h->ctx, data, n) == 1 ? 0 : -1;
}

int hub_hash_hex(hub_hash *h, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    out[0] = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len > 32) return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = 0;
    return 0;
}

void hub_hash_free(hub_hash *h) {
    if (!h) return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int hub_hash_file(const char *path, hub_hash_kind kind, char out[65], forge_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        err_set(err, FORGE_E_IO, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    hub_hash *h = hub_hash_create(kind, (uint64_t)st.st_size);
    char *buf = malloc(1 << 20);
    int rc = (h && buf) ? 0 : -1;
    if (rc) err_set(err, FORGE_E_NOMEM, "%s: out of memory hashing", path);
    while (rc == 0) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -1;
            err_set(err, FORGE_E_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        if (hub_hash_update(h, buf, (size_t)n) != 0) rc = -1;
    }
    if (rc == 0 && hub_hash_hex(h, out) != 0) rc = -1;
    if (rc && err && err->code == FORGE_OK)
        err_set(err, FORGE_E_INTERNAL, "%s: digest failed", path);
    free(buf);
    hub_hash_free(h);
    close(fd);
    return rc;
}
