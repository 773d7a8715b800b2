/* webui.h: the chat page's files (src/server/webui/), compiled into the library as byte
 * arrays by scripts/embed.c at build time (the Makefile writes $(BUILD)/gen/webui_assets.c). */
#ifndef FORGE_SERVER_WEBUI_H
#define FORGE_SERVER_WEBUI_H

#include <stddef.h>

typedef struct srv_webui_asset {
    const char *path;  /* the URL path it is served at ("/" for the page) */
    const char *ctype; /* its Content-Type */
    const char *etag;  /* a strong ETag (quoted): a hash of the bytes */
    const unsigned char *data;
    size_t len;
} srv_webui_asset;

extern const srv_webui_asset srv_webui_assets[];
extern const int srv_webui_n_assets;

#endif
