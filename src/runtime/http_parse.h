/* http_parse.h — the untrusted-input parsing of the HTTP server, kept free
 * of sockets so that it can be unit-tested and fuzzed on its own: byte
 * ranges (RFC 9110 §14, single range), Content-Length consistency,
 * multipart/form-data bodies
 * (RFC 7578), upload media types, audio type sniffing, strict integers and
 * track paths. Every function is pure, thread-safe, never allocates, and
 * never reads outside the buffers it is given.
 * Left out: multi-range requests (answered with the whole file, which the
 * RFC allows), chunked multipart streaming (bodies are parsed whole).
 */
#ifndef MM_HTTP_PARSE_H
#define MM_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* ---- Range ---- */

#define MM_HTTP_RANGE_NONE 0            /* no usable Range: send the whole entity (200) */
#define MM_HTTP_RANGE_OK 1              /* one satisfiable range: send [*first, *last] (206) */
#define MM_HTTP_RANGE_UNSATISFIABLE (-1) /* 416, Content-Range "bytes \*\/SIZE" */

/* Parse a Range header value (NULL allowed) against an entity of `size`
 * bytes. Forms: "bytes=a-b", "bytes=a-", "bytes=-n". Syntax errors, other
 * units and lists of ranges give MM_HTTP_RANGE_NONE (a server may ignore
 * Range); a first byte at or past the end, or "-0", gives UNSATISFIABLE.
 * On MM_HTTP_RANGE_OK, 0 <= *first <= *last < size (last clamped to the end).
 * Positions past 2^64 - 1 saturate: a first byte there is unsatisfiable, a
 * last byte or suffix length there is clamped to the entity. */
int mm_http_range_parse(const char *header, uint64_t size, uint64_t *first, uint64_t *last);

/* ---- framing ---- */

/* Content-Length from every value of it in a request (n header fields, each
 * possibly a comma list "5, 5"; RFC 9110 §8.6, RFC 9112 §6.3): returns 1
 * and *out when all are the same decimal number, 0 when n is 0 (no
 * Content-Length; *out untouched), -1 when one is malformed or overflows or
 * two differ (ambiguous framing: answer 400 and close the connection). */
int mm_http_content_length(const char *const *values, size_t n, uint64_t *out);

/* ---- media types ---- */

typedef enum mm_http_upload_kind {
    MM_HTTP_UPLOAD_RAW = 0,         /* audio/any, application/octet-stream, application/ogg or no type */
    MM_HTTP_UPLOAD_MULTIPART = 1,   /* multipart/form-data */
    MM_HTTP_UPLOAD_UNSUPPORTED = 2, /* anything else (text/plain, JSON, images, form-urlencoded...) */
} mm_http_upload_kind;

/* Does a Content-Type value (NULL allowed) name exactly this media type?
 * Case and parameters after ';' (charset=...) are ignored, but the type
 * itself must match whole: "application/jsonx" is not "application/json".
 * A type ending in "/\*" matches any subtype. Returns 1 or 0. */
int mm_http_media_type_is(const char *content_type, const char *type);

/* Classify a Content-Type value (NULL or "" = RAW); parameters after ';' and
 * case are ignored. */
mm_http_upload_kind mm_http_upload_kind_of(const char *content_type);

/* Copy the boundary parameter of a multipart Content-Type into out (size
 * bytes, NUL-terminated; quotes removed). Returns 0, or -1 when missing,
 * empty, longer than 70 characters (RFC 2046) or not fitting. */
int mm_http_multipart_boundary(const char *content_type, char *out, size_t size);

/* One part of a multipart body: pointers into the body (not NUL-terminated). */
typedef struct mm_http_part {
    const uint8_t *data;        /* content, len bytes */
    size_t len;
    const char *type;           /* the part's Content-Type value or NULL; type_len bytes */
    size_t type_len;
    const char *filename;       /* filename="..." of Content-Disposition or NULL */
    size_t filename_len;
} mm_http_part;

/* Find the part named `field` (Content-Disposition: form-data; name="field")
 * in a multipart body delimited by `boundary`. Returns 0 and fills *part,
 * 1 when the body is well formed but has no such part, -1 when malformed
 * (no opening delimiter, headers not terminated, part not closed). */
int mm_http_multipart_find(const uint8_t *body, size_t len, const char *boundary, const char *field,
                           mm_http_part *part);

/* Audio container from its first bytes: "audio/wav" (RIFF/WAVE, RF64),
 * "audio/flac", "audio/ogg", "audio/mpeg" (ID3 tag or MPEG frame sync),
 * "audio/aiff", or NULL when none matches. */
const char *mm_http_sniff_audio(const uint8_t *data, size_t len);

/* Content-Type to serve a file with, from its extension (case-insensitive),
 * else sniffed from head (head_len bytes, may be 0), else
 * "application/octet-stream". */
const char *mm_http_audio_type(const char *path, const uint8_t *head, size_t head_len);

/* ---- small values ---- */

/* Strict decimal integer in [min, max]: digits only (an optional leading
 * '-' when min < 0), no spaces, no overflow. NULL gives *out = dflt.
 * Returns 0, or -1 when s is not such an integer (out untouched). */
int mm_http_parse_long(const char *s, long min, long max, long dflt, long *out);

/* A track id: exactly 64 lowercase hex digits (the SHA-256 the library
 * uses). Returns 1 when s is one. */
int mm_http_valid_track_id(const char *s);

/* Match "/api/tracks/<id>/audio" with a valid track id and nothing else (no
 * trailing slash, no encoding): copies the id into id (65 bytes) and
 * returns 0, or returns -1. Requests thus never name a path. */
int mm_http_track_audio_path(const char *url, char id[65]);

/* A user name from a request: 1..64 bytes of [A-Za-z0-9._@-]. Returns 1 when valid. */
int mm_http_valid_user(const char *s);

#endif
