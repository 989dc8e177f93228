/* http_parse.c — Range, multipart/form-data, media types and small values
 * from HTTP requests (see http_parse.h). Matches RFC 9110 byte ranges (one
 * range; lists ignored as §14.2 permits) and RFC 7578/2046 multipart framing
 * (CRLF line ends; bare LF tolerated after the delimiter, as browsers never
 * send it but curl scripts sometimes do). Everything is bounds-checked
 * against the given lengths; nothing allocates.
 * Left out: RFC 2231 encoded parameters (filename*=), nested multiparts.
 */
#include "runtime/http_parse.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

/* ---- Range ---- */

/* Parse digits at *p into a uint64, saturating at UINT64_MAX (a position
 * past 2^64 - 1 is past the end of any entity, which is what it means);
 * advances *p. Returns 0, or -1 when no digit. */
static int read_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s)) return -1;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

int mm_http_range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h) return MM_HTTP_RANGE_NONE;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "bytes", 5)) return MM_HTTP_RANGE_NONE;
    h += 5;
    while (*h == ' ' || *h == '\t') h++;
    if (*h++ != '=') return MM_HTTP_RANGE_NONE;
    while (*h == ' ' || *h == '\t') h++;
    uint64_t a = 0, b = 0;
    int suffix = 0, open = 0;
    if (*h == '-') {
        h++;
        if (read_u64(&h, &b)) return MM_HTTP_RANGE_NONE;
        suffix = 1;
    } else {
        if (read_u64(&h, &a) || *h++ != '-') return MM_HTTP_RANGE_NONE;
        if (isdigit((unsigned char)*h)) {
            if (read_u64(&h, &b)) return MM_HTTP_RANGE_NONE;
        } else open = 1;
    }
    while (*h == ' ' || *h == '\t') h++;
    if (*h) return MM_HTTP_RANGE_NONE;   /* a list, or trailing garbage: ignore the header */
    if (suffix) {
        if (b == 0 || size == 0) return MM_HTTP_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return MM_HTTP_RANGE_OK;
    }
    if (!open && b < a) return MM_HTTP_RANGE_NONE;   /* invalid range-spec: ignored */
    if (a >= size) return MM_HTTP_RANGE_UNSATISFIABLE;
    *first = a;
    *last = open || b >= size ? size - 1 : b;
    return MM_HTTP_RANGE_OK;
}

int mm_http_content_length(const char *const *values, size_t n, uint64_t *out)
{
    if (!values || n == 0) return 0;
    int have = 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = values[i];
        if (!p) return -1;
        for (;;) {   /* one element of a comma list, OWS around it */
            while (*p == ' ' || *p == '\t') p++;
            uint64_t x = 0;
            if (!isdigit((unsigned char)*p)) return -1;
            for (; isdigit((unsigned char)*p); p++) {
                unsigned d = (unsigned)(*p - '0');
                if (x > (UINT64_MAX - d) / 10) return -1;
                x = x * 10 + d;
            }
            if (have && x != v) return -1;
            v = x;
            have = 1;
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break;
            if (*p++ != ',') return -1;
        }
    }
    *out = v;
    return 1;
}

/* ---- media types ---- */

/* Does the media type (before any ';', spaces trimmed) equal t, ignoring case? */
static int type_is(const char *ct, const char *t)
{
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    size_t tl = strlen(t);
    if (t[tl - 1] == '*') return n >= tl - 1 && !strncasecmp(ct, t, tl - 1);
    return n == tl && !strncasecmp(ct, t, tl);
}

int mm_http_media_type_is(const char *content_type, const char *type)
{
    return content_type && type && *type && type_is(content_type, type);
}

mm_http_upload_kind mm_http_upload_kind_of(const char *ct)
{
    if (!ct) return MM_HTTP_UPLOAD_RAW;
    const char *s = ct;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return MM_HTTP_UPLOAD_RAW;
    if (type_is(s, "multipart/form-data")) return MM_HTTP_UPLOAD_MULTIPART;
    if (type_is(s, "audio/*") || type_is(s, "application/octet-stream") || type_is(s, "application/ogg") ||
        type_is(s, "video/ogg"))
        return MM_HTTP_UPLOAD_RAW;
    return MM_HTTP_UPLOAD_UNSUPPORTED;
}

int mm_http_multipart_boundary(const char *ct, char *out, size_t size)
{
    if (!ct || !size) return -1;
    const char *p = strchr(ct, ';');
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        if (!strncasecmp(p, "boundary=", 9)) {
            p += 9;
            size_t n;
            if (*p == '"') {
                p++;
                const char *q = strchr(p, '"');
                if (!q) return -1;
                n = (size_t)(q - p);
            } else {
                n = strcspn(p, "; \t");
            }
            if (n == 0 || n > 70 || n + 1 > size) return -1;
            memcpy(out, p, n);
            out[n] = 0;
            return 0;
        }
        p = strchr(p, ';');
    }
    return -1;
}

/* memmem over [hay, hay+n) for needle of m bytes; NULL when absent. */
static const uint8_t *find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    if (m == 0 || n < m) return NULL;
    return memmem(hay, n, needle, m);
}

/* Value of parameter `name` (e.g. "name") in a header line [s, e): sets *v,
 * *vn to the (unquoted) value. Returns 1 when found. The parameter must
 * start after ';' or whitespace so that "filename" is not taken for "name". */
static int header_param(const char *s, const char *e, const char *name, const char **v, size_t *vn)
{
    size_t nl = strlen(name);
    for (const char *p = s; p + nl + 1 <= e; p++) {
        if ((p == s || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t') && !strncasecmp(p, name, nl) &&
            p[nl] == '=') {
            const char *q = p + nl + 1;
            if (q < e && *q == '"') {
                q++;
                const char *z = memchr(q, '"', (size_t)(e - q));
                if (!z) return 0;
                *v = q;
                *vn = (size_t)(z - q);
            } else {
                const char *z = q;
                while (z < e && *z != ';' && *z != ' ' && *z != '\t') z++;
                *v = q;
                *vn = (size_t)(z - q);
            }
            return 1;
        }
    }
    return 0;
}

int mm_http_multipart_find(const uint8_t *body, size_t len, const char *boundary, const char *field,
                           mm_http_part *part)
{
    if (!body || !boundary || !field) return -1;
    size_t bl = strlen(boundary), fl = strlen(field);
    if (bl == 0 || bl > 70) return -1;
    char delim[80];   /* "\r\n--" + boundary */
    delim[0] = '\r';
    delim[1] = '\n';
    delim[2] = delim[3] = '-';
    memcpy(delim + 4, boundary, bl);
    size_t dl = bl + 4;
    /* the first delimiter may open the body without the leading CRLF */
    const uint8_t *p;
    if (len >= dl - 2 && !memcmp(body, delim + 2, dl - 2)) p = body + dl - 2;
    else {
        p = find(body, len, delim, dl);
        if (!p) return -1;
        p += dl;
    }
    const uint8_t *end = body + len;
    for (;;) {
        /* after a delimiter: "--" closes, else optional spaces and a line end */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 1;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') p += 2;
        else if (p < end && *p == '\n') p++;
        else return -1;
        /* headers up to an empty line */
        const uint8_t *hend;
        size_t hsep = 4;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') { hend = p; hsep = 2; }   /* no headers */
        else if (!(hend = find(p, (size_t)(end - p), "\r\n\r\n", 4))) return -1;
        const uint8_t *content = hend + hsep;
        const uint8_t *next = find(content, (size_t)(end - content), delim, dl);
        if (!next) return -1;
        /* scan header lines for the disposition and type */
        int named = 0;
        const char *ctype = NULL, *fname = NULL;
        size_t ctype_len = 0, fname_len = 0;
        const char *h = (const char *)p, *he = (const char *)hend;
        while (h < he) {
            const char *le = memchr(h, '\n', (size_t)(he - h));
            if (!le) le = he;
            const char *lend = le;
            if (lend > h && lend[-1] == '\r') lend--;
            if ((size_t)(lend - h) > 20 && !strncasecmp(h, "content-disposition:", 20)) {
                const char *v;
                size_t vn;
                if (header_param(h + 20, lend, "name", &v, &vn) && vn == fl && !memcmp(v, field, fl)) named = 1;
                if (header_param(h + 20, lend, "filename", &v, &vn)) { fname = v; fname_len = vn; }
            } else if ((size_t)(lend - h) > 13 && !strncasecmp(h, "content-type:", 13)) {
                const char *v = h + 13;
                while (v < lend && (*v == ' ' || *v == '\t')) v++;
                ctype = v;
                ctype_len = (size_t)(lend - v);
            }
            h = le + 1;
        }
        if (named) {
            part->data = content;
            part->len = (size_t)(next - content);
            part->type = ctype;
            part->type_len = ctype_len;
            part->filename = fname;
            part->filename_len = fname_len;
            return 0;
        }
        p = next + dl;
    }
}

const char *mm_http_sniff_audio(const uint8_t *d, size_t n)
{
    if (!d) return NULL;
    if (n >= 12 && (!memcmp(d, "RIFF", 4) || !memcmp(d, "RF64", 4)) && !memcmp(d + 8, "WAVE", 4)) return "audio/wav";
    if (n >= 4 && !memcmp(d, "fLaC", 4)) return "audio/flac";
    if (n >= 4 && !memcmp(d, "OggS", 4)) return "audio/ogg";
    if (n >= 12 && !memcmp(d, "FORM", 4) && (!memcmp(d + 8, "AIFF", 4) || !memcmp(d + 8, "AIFC", 4))) return "audio/aiff";
    if (n >= 3 && !memcmp(d, "ID3", 3)) return "audio/mpeg";
    if (n >= 2 && d[0] == 0xFF && (d[1] & 0xE0) == 0xE0 && (d[1] & 0x06) != 0) return "audio/mpeg";
    return NULL;
}

const char *mm_http_audio_type(const char *path, const uint8_t *head, size_t head_len)
{
    static const struct { const char *ext, *type; } map[] = {
        {".mp3", "audio/mpeg"}, {".wav", "audio/wav"}, {".flac", "audio/flac"}, {".ogg", "audio/ogg"},
        {".oga", "audio/ogg"}, {".opus", "audio/ogg"}, {".aif", "audio/aiff"}, {".aiff", "audio/aiff"},
    };
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof map / sizeof *map; i++)
            if (!strcasecmp(dot, map[i].ext)) return map[i].type;
    const char *t = mm_http_sniff_audio(head, head_len);
    return t ? t : "application/octet-stream";
}

/* ---- small values ---- */

int mm_http_parse_long(const char *s, long min, long max, long dflt, long *out)
{
    if (!s) { *out = dflt; return 0; }
    const char *p = s;
    int neg = 0;
    if (*p == '-' && min < 0) { neg = 1; p++; }
    if (!isdigit((unsigned char)*p)) return -1;
    long v = 0;
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (v > (LONG_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (*p) return -1;
    if (neg) v = -v;
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

int mm_http_valid_track_id(const char *s)
{
    if (!s) return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[64] == 0;
}

int mm_http_track_audio_path(const char *url, char id[65])
{
    static const char pre[] = "/api/tracks/", post[] = "/audio";
    if (!url || strncmp(url, pre, sizeof pre - 1)) return -1;
    const char *p = url + sizeof pre - 1;
    if (strlen(p) != 64 + sizeof post - 1 || strcmp(p + 64, post)) return -1;
    char buf[65];
    memcpy(buf, p, 64);
    buf[64] = 0;
    if (!mm_http_valid_track_id(buf)) return -1;
    memcpy(id, buf, 65);
    return 0;
}

int mm_http_valid_user(const char *s)
{
    if (!s) return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-')) return 0;
        if (n >= 64) return 0;
    }
    return n >= 1;
}
