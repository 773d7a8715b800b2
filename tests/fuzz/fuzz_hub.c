/* libFuzzer: what the Hub layer parses from the network or a repo never crashes: the file
 * list (byte 0 = 0), a safetensors index (1), and ids, revisions, ETags, Retry-After and URL
 * quoting (other values). Names the parsers accept are safe relative paths. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/cache.h"
#include "hub/fetch.h"
#include "hub/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    forge_error err = {0};
    if (data[0] == 0) {
        hub_listing l;
        if (hub_listing_parse(text, len, "fuzz", &l, &err) == FORGE_OK) {
            if (!hub_is_commit(l.commit)) abort();
            for (int i = 0; i < l.n; i++)
                if (!hub_safe_relpath(l.files[i].name) ||
                    hub_listing_find(&l, l.files[i].name) == NULL)
                    abort();
        }
        hub_listing_free(&l);
        return 0;
    }
    if (data[0] == 1) {
        char **shards;
        int n;
        if (hub_index_shards_parse(text, len, "fuzz", &shards, &n, &err) == FORGE_OK) {
            for (int i = 0; i < n; i++)
                if (!hub_safe_relpath(shards[i])) abort();
            hub_free_strings(shards, n);
        }
        return 0;
    }
    char *s = malloc(len + 1);
    if (!s) return 0;
    memcpy(s, text, len);
    s[len] = 0;
    hub_id id;
    if (hub_id_parse(s, &id, &err) == FORGE_OK) {
        if (!hub_id_like(s) || !hub_safe_relpath(id.revision) || strchr(id.repo, '/') == NULL)
            abort();
        char dir[HUB_PATH_MAX];
        if (hub_storage_dir("/c", id.repo, dir, sizeof dir) != 0 || strstr(dir, "/../")) abort();
    }
    char out[1024];
    hub_normalize_etag(s, out, sizeof out);
    (void)hub_safe_etag(out);
    (void)hub_parse_retry_after(s);
    char q[4096];
    if (hub_url_quote(s, data[0] & 1, q, sizeof q) == 0 && strlen(q) < strlen(s)) abort();
    free(s);
    return 0;
}
