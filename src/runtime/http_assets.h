/* http_assets.h — the web page's files (src/runtime/web/), embedded in the
 * binary at build time by the assembler's .incbin (http_assets.c), so that
 * `melodic serve` needs no files beside itself and the page works offline
 * (no CDN, no external fonts). Read-only data: thread-safe.
 */
#ifndef MM_HTTP_ASSETS_H
#define MM_HTTP_ASSETS_H

#include <stddef.h>

/* The embedded file served at url ("/" is index.html): returns 0 and sets
 * *data (static, not NUL-terminated), *len and *type (Content-Type), or -1
 * when there is none. */
int mm_http_asset(const char *url, const void **data, size_t *len, const char **type);

#endif
