/* http_assets.c — embeds src/runtime/web/{index.html,app.js,style.css}
 * with .incbin (paths relative to the repository root, where make runs the
 * compiler) and maps URLs to them. Each blob is followed by its end label so
 * that sizes come from the assembler, not from a generated header.
 * Left out: compression and ETags (the page is ~30 KB, served on loopback).
 */
#include "runtime/http_assets.h"

#include <string.h>

#define MM_INCBIN(sym, file)                                                  \
    __asm__(".section .rodata\n"                                              \
            ".global " #sym "_start\n"                                        \
            ".global " #sym "_end\n"                                          \
            ".balign 16\n" #sym "_start:\n"                                   \
            ".incbin \"" file "\"\n" #sym "_end:\n"                           \
            ".byte 0\n"                                                       \
            ".previous\n");                                                   \
    extern const char sym##_start[], sym##_end[]

MM_INCBIN(mm_web_index_html, "src/runtime/web/index.html");
MM_INCBIN(mm_web_app_js, "src/runtime/web/app.js");
MM_INCBIN(mm_web_style_css, "src/runtime/web/style.css");

int mm_http_asset(const char *url, const void **data, size_t *len, const char **type)
{
    const char *s = NULL, *e = NULL, *t = NULL;
    if (!url) return -1;
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        s = mm_web_index_html_start; e = mm_web_index_html_end; t = "text/html; charset=utf-8";
    } else if (!strcmp(url, "/app.js")) {
        s = mm_web_app_js_start; e = mm_web_app_js_end; t = "text/javascript; charset=utf-8";
    } else if (!strcmp(url, "/style.css")) {
        s = mm_web_style_css_start; e = mm_web_style_css_end; t = "text/css; charset=utf-8";
    } else return -1;
    *data = s;
    *len = (size_t)(e - s);
    *type = t;
    return 0;
}
