/* fuzz_http.c — libFuzzer target for the HTTP server's request parsing
 * (src/runtime/http_parse.c): the input's first line is a header value used
 * as a Content-Type (multipart boundary, exact media type), a Range header,
 * Content-Length values, an integer and a URL; the rest is a request body
 * searched for the multipart field "audio".
 * Invariants checked (abort on violation): a satisfiable range lies inside
 * the entity, a found part lies inside the body, parsed integers are in
 * range, a Content-Length accepted once is accepted twice with the same
 * value and rejected beside a different one, and an exact media type match
 * implies the same match with a parameter appended.
 * Build: clang -fsanitize=fuzzer,address -Isrc tests/fuzz/fuzz_http.c <sources> <libs> */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size;
    if (hl > 4096) hl = 4096;
    char *h = malloc(hl + 1);   /* exact size, so ASan sees any overread */
    if (!h) return 0;
    memcpy(h, data, hl);
    h[hl] = 0;
    size_t blen = nl ? size - hl - 1 : 0;
    uint8_t *body = malloc(blen ? blen : 1);
    if (!body) { free(h); return 0; }
    if (blen) memcpy(body, nl + 1, blen);

    /* Range against a few entity sizes */
    const uint64_t sizes[] = {0, 1, 2, 1000, (uint64_t)blen, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint64_t a = 7, b = 7;
        int rk = mm_http_range_parse(h, sizes[i], &a, &b);
        if (rk == MM_HTTP_RANGE_OK && !(a <= b && b < sizes[i])) abort();
        if (rk != MM_HTTP_RANGE_OK && rk != MM_HTTP_RANGE_NONE && rk != MM_HTTP_RANGE_UNSATISFIABLE) abort();
    }
    /* Content-Type → kind, boundary → multipart */
    (void)mm_http_upload_kind_of(h);
    char boundary[80];
    if (mm_http_multipart_boundary(h, boundary, sizeof boundary) == 0) {
        if (strlen(boundary) == 0 || strlen(boundary) > 70) abort();
        mm_http_part part;
        int rc = mm_http_multipart_find(body, blen, boundary, "audio", &part);
        if (rc == 0) {
            if (part.data < body || part.data + part.len > body + blen) abort();
            if (part.type && ((const uint8_t *)part.type < body || (const uint8_t *)part.type + part.type_len > body + blen)) abort();
            if (part.filename && ((const uint8_t *)part.filename < body ||
                                  (const uint8_t *)part.filename + part.filename_len > body + blen)) abort();
            (void)mm_http_sniff_audio(part.data, part.len);
        }
    }
    /* the body with a fixed boundary too, so that bodies get explored without a matching header */
    mm_http_part part;
    if (mm_http_multipart_find(body, blen, "XyZ", "audio", &part) == 0 &&
        (part.data < body || part.data + part.len > body + blen))
        abort();
    /* Content-Length: the line as one value, twice, and beside another value */
    uint64_t cl = 0, cl2 = 0;
    const char *one[1] = {h}, *two[2] = {h, h};
    int rc1 = mm_http_content_length(one, 1, &cl);
    if (rc1 != 1 && rc1 != -1) abort();
    if (rc1 == 1) {
        if (mm_http_content_length(two, 2, &cl2) != 1 || cl2 != cl) abort();
        char other[24];
        snprintf(other, sizeof other, "%llu", (unsigned long long)(cl ^ 1));
        const char *mixed[2] = {h, other};
        if (mm_http_content_length(mixed, 2, &cl2) != -1) abort();
    }
    /* exact media types: a match stays a match with a parameter after it */
    if (mm_http_media_type_is(h, "application/json") && strchr(h, ';') == NULL) {
        char *withp = malloc(hl + 16);
        if (withp) {
            memcpy(withp, h, hl);
            memcpy(withp + hl, "; charset=utf-8", 16);
            if (!mm_http_media_type_is(withp, "application/json")) abort();
            free(withp);
        }
    }
    (void)mm_http_media_type_is(h, "audio/*");
    long v = 0;
    if (mm_http_parse_long(h, -5, 1000, 3, &v) == 0 && (v < -5 || v > 1000)) abort();
    char id[65];
    if (mm_http_track_audio_path(h, id) == 0 && !mm_http_valid_track_id(id)) abort();
    (void)mm_http_valid_user(h);
    (void)mm_http_audio_type(h, body, blen);
    free(body);
    free(h);
    return 0;
}
