/* server.c — `melodic serve`: HTTP API and web page on libmicrohttpd.
 *
 * I/O threads (libmicrohttpd, epoll) parse requests and collect bodies up to
 * the upload limit; audio requests are suspended and queued to a fixed pool
 * of workers, which classify (speech bundle), recommend (library) and build
 * the JSON; the connection is then resumed and answered. JSON by jansson.
 * A worker that takes the only request in flight lets the other cores help
 * with it (the mn04 front end's frames, nn/par.h helper threads; identical
 * results); with more requests in flight each runs on one core, so throughput
 * under load is unchanged. MELODIC_SERVE_INTRA=0 in the environment turns
 * that off.
 * With user=ID and a feedback store, a recommendation excludes the user's
 * recently served tracks (mm_feedback_recent), is seeded per request and is
 * recorded (mm_feedback_served_add), so asking again brings new tracks.
 * Status codes and body shapes: src/runtime/API.md. The listening socket is
 * made here (so bind errors carry errno's text) and handed to the daemon.
 * Hostile clients: every connection is tracked from accept to close (MHD's
 * connection notifications); a sweeper thread shuts down the socket of one
 * whose request (headers included, which libmicrohttpd's own timeout, an
 * idle timeout, does not bound) is not in by the deadline; connections over
 * the per-address or total limit are answered 503 as soon as their headers
 * are in. Tracks are opened only when they are regular files.
 * Left out: TLS, auth, compression, keep-alive tuning beyond the defaults,
 * a deadline for sending answers (a slow reader is bounded by the idle
 * timeout only), limits per network prefix (an attacker with many
 * addresses is limited by max_connections alone).
 */
#include "runtime/server.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nn/mobilenet.h"
#include "runtime/http_assets.h"
#include "runtime/http_parse.h"
#include "runtime/ratelimit.h"

/* What a request is, decided from method and URL on its first call. */
typedef enum {
    R_NONE = 0, R_ASSET, R_HEALTH, R_TRACKS, R_TRACK, R_AUDIO, R_EMOTION, R_RECOMMEND, R_FEEDBACK,
} route_kind;

typedef struct req {
    route_kind route;
    char method[8];             /* for the request log */
    char url[120];
    double t0;                  /* arrival (monotonic seconds) */
    double t_body;              /* body complete */
    uint8_t *body;              /* (len) upload, grown up to max_upload */
    size_t len, cap;
    int status;                 /* decided error status (while still reading the body), 0 = none */
    char msg[512];              /* its message */
    int answered;               /* a response was queued on the first call */
    int queued, done;           /* handed to a worker / worker finished */
    struct MHD_Connection *conn;
    /* parameters of /api/recommend, checked before queuing */
    mm_recommend_params rp;
    char user[72];
    /* audio to classify: a slice of body */
    const uint8_t *audio;
    size_t audio_len;
    /* the worker's answer */
    int res_status;
    char *res_json;             /* malloc'd JSON text or NULL */
    struct req *next;           /* queue link */
} req;

/* One connection from accept to close (MHD's socket context), for the
 * request deadline and the connection limits. Fields after `next` are
 * guarded by the server's conn_mu. */
typedef struct conn {
    struct conn *prev, *next;   /* the server's list of open connections */
    int fd;                     /* its socket (closed by MHD only after the CLOSED notification) */
    uint8_t addr[16];           /* client address (IPv4 in the first 4 bytes, IPv4-mapped IPv6 as IPv4) */
    int addr_len;               /* 4, 16, or 0 when unknown */
    double t_start;             /* the current request began: accept, or the end of the previous one */
    int receiving;              /* the current request is not in yet: the deadline applies */
    int refused;                /* 0, or over the limits at accept: REFUSED_ADDRESS / REFUSED_FULL */
    int shut;                   /* the sweeper has shut the socket down */
} conn;

#define REFUSED_ADDRESS 1
#define REFUSED_FULL 2
#define REFUSED_DEADLINE_S 2.0  /* a refused connection gets this long (at most) to send its headers */
#define RETRY_AFTER_S 2         /* Retry-After of a 503 for the connection limits or a full queue */

struct mm_server {
    mm_server_params p;
    mm_server_models m;
    struct MHD_Daemon *d;
    int port;
    int n_speech;
    mm_va *speech_va;           /* (n_speech) points of the speech labels */
    /* worker pool and its queue */
    pthread_t *workers;
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    req *head, *tail;
    size_t pending;             /* queued + running */
    int intra_threads;          /* cores for a request alone in flight (1: never split) */
    int stopping;
    /* open connections and the deadline sweeper */
    pthread_mutex_t conn_mu;
    pthread_cond_t sweep_cv;
    conn *conns;
    size_t n_conns;
    int sweep_stop, sweeping;
    pthread_t sweeper;
    mm_ratelimit *feedback_rl;  /* feedback events per user */
    _Atomic uint64_t n_requests, n_busy, n_jobs, n_conn_refused, n_rate_limited, n_timed_out;
};

void mm_server_params_default(mm_server_params *p)
{
    memset(p, 0, sizeof *p);
    p->host = "127.0.0.1";
    p->port = 8080;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    p->n_workers = nc > 0 ? (int)nc : 1;
    p->n_io_threads = 2;
    p->queue_max = 64;
    p->max_upload = 20u << 20;
    p->max_connections = 256;
    p->max_per_address = 32;
    p->idle_timeout_s = 10;
    p->request_timeout_s = 30;
    p->feedback_rate = 1;
    p->feedback_burst = 30;
    p->min_seconds = 0.5;
    mm_recommend_params_default(&p->rec);
}

/* ---- responses ---- */

/* Headers some answers carry, set just before sending one (same I/O
 * thread): the Allow of a 405; Retry-After seconds of a 429 or 503 (0:
 * none) and Connection: close, both cleared by the send. */
static _Thread_local const char *allow_hdr = "GET, HEAD";
static _Thread_local unsigned retry_after_s;
static _Thread_local int close_after;

static enum MHD_Result send_buf(struct MHD_Connection *c, int status, const char *type, void *buf, size_t len,
                                enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (!strncmp(type, "application/json", 16)) MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow_hdr);
    if (retry_after_s && (status == 429 || status == 503)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (close_after) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    retry_after_s = 0;
    close_after = 0;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Serialise and send j (reference stolen). */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(j);
    if (!s) return send_buf(c, 500, "application/json", (void *)"{\"error\":\"out of memory\"}", 25, MHD_RESPMEM_PERSISTENT);
    return send_buf(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
}

static char *error_text(const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* {"error": message}: the message formatted, bytes outside printable
 * ASCII replaced by '?' (messages quote user input; jansson wants UTF-8). */
static json_t *error_json(const char *fmt, va_list ap)
{
    char msg[1200];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *q = msg; *q; q++) if ((unsigned char)*q >= 0x80 || (unsigned char)*q < 0x20) *q = '?';
    return json_pack("{s:s}", "error", msg);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = error_json(fmt, ap);
    va_end(ap);
    return send_json(c, status, j);
}

/* ---- JSON pieces ---- */

/* {"label": p, ...}, or NULL when a value is not finite (JSON has no NaN)
 * or memory runs out: never an object with entries missing. */
static json_t *proba_object(const float *p, int k, const char *(*name)(const void *, int), const void *ctx)
{
    json_t *o = json_object();
    for (int i = 0; o && i < k; i++)
        if (!isfinite(p[i]) || json_object_set_new(o, name(ctx, i), json_real(p[i]))) {
            json_decref(o);
            o = NULL;
        }
    return o;
}

static const char *speech_name(const void *b, int k) { return mm_bundle_class_name(b, k); }
static const char *music_name(const void *l, int k) { return mm_library_class_name(l, k); }

static json_t *track_json(const mm_server *s, size_t i, int with_proba)
{
    const mm_library_track *t = mm_library_track_at(s->m.library, i);
    char url[128];
    snprintf(url, sizeof url, "/api/tracks/%s/audio", t->id);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:i, s:f, s:s}", "id", t->id, "artist", t->artist,
                          "title", t->title, "label", mm_library_class_name(s->m.library, t->top_class),
                          "valence", (double)t->va.valence, "arousal", (double)t->va.arousal,
                          "quadrant", t->quadrant, "duration_s", t->duration, "url", url);
    if (!o) return NULL;
    if (t->true_label[0]) json_object_set_new(o, "true_label", json_string(t->true_label));
    json_object_set_new(o, "segment_start", json_real(t->segment_start));   /* checked finite, >= 0 by the library */
    if (with_proba)
        json_object_set_new(o, "proba", proba_object(t->proba, mm_library_n_classes(s->m.library), music_name, s->m.library));
    return o;
}

/* ---- GET handlers ---- */

static enum MHD_Result get_health(mm_server *s, struct MHD_Connection *c)
{
    json_t *labels = json_array();
    for (int k = 0; k < s->n_speech; k++) json_array_append_new(labels, json_string(mm_bundle_class_name(s->m.speech, k)));
    json_t *music = json_array();
    for (int k = 0; k < mm_library_n_classes(s->m.library); k++)
        json_array_append_new(music, json_string(mm_library_class_name(s->m.library, k)));
    json_t *j = json_pack("{s:s, s:I, s:o, s:o, s:s, s:s, s:b}", "status", "ok", "tracks",
                          (json_int_t)mm_library_size(s->m.library), "speech_labels", labels, "music_labels", music,
                          "speech_model", mm_bundle_model_name(s->m.speech), "music_model",
                          mm_library_model_name(s->m.library), "feedback", s->m.feedback != NULL);
    return send_json(c, 200, j);
}

static enum MHD_Result get_tracks(mm_server *s, struct MHD_Connection *c)
{
    long offset, limit;
    const char *so = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset");
    const char *sl = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    if (mm_http_parse_long(so, 0, 1L << 40, 0, &offset))
        return send_error(c, 400, "parameter 'offset': expected an integer >= 0, got '%.40s'", so);
    if (mm_http_parse_long(sl, 1, 10000, 100, &limit))
        return send_error(c, 400, "parameter 'limit': expected an integer in 1..10000, got '%.40s'", sl);
    size_t n = mm_library_size(s->m.library);
    json_t *arr = json_array();
    for (size_t i = (size_t)offset; i < n && i < (size_t)offset + (size_t)limit; i++)
        json_array_append_new(arr, track_json(s, i, 1));
    return send_json(c, 200, json_pack("{s:I, s:I, s:o}", "total", (json_int_t)n, "offset", (json_int_t)offset, "tracks", arr));
}

/* The track id of "/api/tracks/<id>" (64 lower-case hex digits, nothing
 * after) into id; 0, or -1 when url is not that. */
static int track_info_path(const char *url, char id[65])
{
    static const char pre[] = "/api/tracks/";
    if (strncmp(url, pre, sizeof pre - 1) || strlen(url + sizeof pre - 1) != 64) return -1;
    memcpy(id, url + sizeof pre - 1, 65);
    return mm_http_valid_track_id(id) ? 0 : -1;
}

/* The library index of the track that url names (/api/tracks/{id}, and
 * "/audio" after it when audio), its id into id; or -1 when url is not
 * such a path, -2 when no track has that id. */
static long track_of_url(const mm_server *s, const char *url, int audio, char id[65])
{
    if (audio ? mm_http_track_audio_path(url, id) : track_info_path(url, id)) return -1;
    long i = mm_library_find(s->m.library, id);
    return i >= 0 && !strcmp(mm_library_id(s->m.library, (size_t)i), id) ? i : -2;
}

/* The 404 of a track_of_url that found none. */
static enum MHD_Result no_track(struct MHD_Connection *c, long why, const char *id)
{
    if (why == -1) return send_error(c, 404, "no such track (ids are 64 hex digits)");
    return send_error(c, 404, "no track with id %s", id);
}

/* GET /api/tracks/{id}: the track as in the list, with its valence–arousal
 * trajectory (a [valence, arousal] pair per window, in time order; window i
 * starts at i·hop_s) and the library's window length and hop. */
static enum MHD_Result get_track(mm_server *s, struct MHD_Connection *c, const char *url)
{
    char id[65];
    long i = track_of_url(s, url, 0, id);
    if (i < 0) return no_track(c, i, id);
    const mm_library_track *t = mm_library_track_at(s->m.library, (size_t)i);
    json_t *o = track_json(s, (size_t)i, 1), *traj = json_array();
    double hop = 0, win = mm_library_window(s->m.library, &hop);
    /* the library keeps points in [-1, 1]² (checked when read), so every value is finite */
    for (size_t w = 0; traj && w < t->n_windows && t->trajectory; w++)
        if (json_array_append_new(traj, json_pack("[f, f]", (double)t->trajectory[w].valence,
                                                  (double)t->trajectory[w].arousal))) {
            json_decref(traj);
            traj = NULL;
        }
    if (!o || !traj) {
        json_decref(o);
        json_decref(traj);
        return send_error(c, 500, "out of memory");
    }
    /* the _new setters take their value even when they fail */
    if (json_object_set_new(o, "window_s", json_real(win)) | json_object_set_new(o, "hop_s", json_real(hop)) |
        json_object_set_new(o, "trajectory", traj)) {
        json_decref(o);
        return send_error(c, 500, "out of memory");
    }
    return send_json(c, 200, o);
}

/* Open path for reading only if it is a regular file: opened without
 * blocking (a FIFO's open() would wait for a writer, stalling this I/O
 * thread and with it shutdown), checked with fstat, then made blocking
 * again. Returns the fd with *st filled, -1 when it cannot be opened, -2
 * when it is not a regular file. */
static int open_regular(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return -1;
    int rc = fd, fl;
    if (fstat(fd, st)) rc = -1;
    else if (!S_ISREG(st->st_mode)) rc = -2;
    else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) rc = -1;
    if (rc < 0) close(fd);
    return rc;
}

static enum MHD_Result get_audio(mm_server *s, struct MHD_Connection *c, const char *url)
{
    char id[65];
    long i = track_of_url(s, url, 1, id);
    if (i < 0) return no_track(c, i, id);
    const mm_library_track *t = mm_library_track_at(s->m.library, (size_t)i);
    struct stat st;
    int fd = open_regular(t->path, &st);
    if (fd == -2) return send_error(c, 404, "track %s: its file is not a regular file", id);
    if (fd < 0) return send_error(c, 404, "track %s: its file is no longer readable", id);
    uint8_t head[16];
    ssize_t hn = pread(fd, head, sizeof head, 0);
    const char *type = mm_http_audio_type(t->path, head, hn > 0 ? (size_t)hn : 0);
    uint64_t size = (uint64_t)st.st_size, first = 0, last = size ? size - 1 : 0;
    int rk = mm_http_range_parse(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE), size, &first, &last);
    struct MHD_Response *r;
    int status = 200;
    char cr[96];
    if (rk == MM_HTTP_RANGE_UNSATISFIABLE) {
        close(fd);
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        status = MHD_HTTP_RANGE_NOT_SATISFIABLE;
    } else {
        uint64_t n = rk == MM_HTTP_RANGE_OK ? last - first + 1 : size;
        r = MHD_create_response_from_fd_at_offset64(n, fd, rk == MM_HTTP_RANGE_OK ? first : 0);
        if (!r) { close(fd); return MHD_NO; }
        if (rk == MM_HTTP_RANGE_OK) {
            snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
                     (unsigned long long)size);
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
            status = MHD_HTTP_PARTIAL_CONTENT;
        }
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=3600");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- POST /api/feedback ---- */

static enum MHD_Result post_feedback(mm_server *s, struct MHD_Connection *c, req *r)
{
    if (!s->m.feedback) return send_error(c, 503, "feedback is not enabled on this server (no --db)");
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return send_error(c, 400, "feedback: expected a JSON object {\"user\", \"track\", \"signal\"}%s%s",
                          j ? "" : ": ", j ? "" : je.text);
    }
    const char *user = json_string_value(json_object_get(j, "user"));
    const char *track = json_string_value(json_object_get(j, "track"));
    const char *signal = json_string_value(json_object_get(j, "signal"));
    enum MHD_Result ok;
    mm_feedback_action a;
    mm_err e = {0};
    long i;
    double wait;
    if (!mm_http_valid_user(user))
        ok = send_error(c, 400, "feedback: 'user' must be 1..64 characters of A-Z a-z 0-9 . _ @ -");
    else if (!mm_http_valid_track_id(track))
        ok = send_error(c, 400, "feedback: 'track' must be a track id (64 hex digits)");
    else if (!signal || mm_feedback_action_parse(signal, &a, &e))
        ok = send_error(c, 400, "feedback: 'signal' must be \"like\", \"skip\" or \"dislike\"");
    else if ((wait = mm_ratelimit_take(s->feedback_rl, user, mm_now_s())) > 0) {
        atomic_fetch_add(&s->n_rate_limited, 1);
        retry_after_s = (unsigned)ceil(wait);
        ok = send_error(c, 429, "feedback: user %s sends more than %g events per second; retry in %.1f s", user,
                        s->p.feedback_rate, wait);
    } else if ((i = mm_library_find(s->m.library, track)) < 0)
        ok = send_error(c, 404, "feedback: no track with id %s", track);
    else {
        const mm_library_track *t = mm_library_track_at(s->m.library, (size_t)i);
        if (mm_feedback_record(s->m.feedback, user, t->id, t->artist, a, &e))
            ok = send_error(c, 500, "feedback: %s", e.msg);
        else
            ok = send_buf(c, MHD_HTTP_NO_CONTENT, "application/json", (void *)"", 0, MHD_RESPMEM_PERSISTENT);
    }
    json_decref(j);
    return ok;
}

/* ---- audio requests: checked on the I/O thread, computed by a worker ---- */

/* Find the audio in r's body (raw or multipart field "audio"); 0 or an HTTP status with r->msg. */
static int locate_audio(struct MHD_Connection *c, req *r)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (mm_http_upload_kind_of(ct) == MM_HTTP_UPLOAD_MULTIPART) {
        char boundary[80];
        mm_http_part part;
        if (mm_http_multipart_boundary(ct, boundary, sizeof boundary)) {
            snprintf(r->msg, sizeof r->msg, "multipart upload without a valid boundary parameter");
            return 400;
        }
        int rc = mm_http_multipart_find(r->body, r->len, boundary, "audio", &part);
        if (rc < 0) { snprintf(r->msg, sizeof r->msg, "malformed multipart body"); return 400; }
        if (rc > 0) { snprintf(r->msg, sizeof r->msg, "multipart upload has no field named 'audio'"); return 400; }
        if (part.type) {
            char t[128];
            size_t n = part.type_len < sizeof t - 1 ? part.type_len : sizeof t - 1;
            memcpy(t, part.type, n);
            t[n] = 0;
            if (mm_http_upload_kind_of(t) != MM_HTTP_UPLOAD_RAW) {
                snprintf(r->msg, sizeof r->msg, "field 'audio' has type '%.60s'; expected audio (WAV, FLAC, Ogg, MP3)", t);
                return 415;
            }
        }
        r->audio = part.data;
        r->audio_len = part.len;
    } else {
        r->audio = r->body;
        r->audio_len = r->len;
    }
    if (r->audio_len == 0) { snprintf(r->msg, sizeof r->msg, "empty upload: send the audio as the body or as multipart field 'audio'"); return 400; }
    return 0;
}

static int check_recommend_params(mm_server *s, struct MHD_Connection *c, req *r)
{
    r->rp = s->p.rec;
    long n;
    const char *sn = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    const char *sp = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "policy");
    const char *su = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "user");
    if (mm_http_parse_long(sn, 1, 100, (long)r->rp.n, &n)) {
        snprintf(r->msg, sizeof r->msg, "parameter 'n': expected an integer in 1..100, got '%.40s'", sn);
        return 400;
    }
    r->rp.n = (size_t)n;
    if (sp) {
        mm_err e = {0};
        if (mm_policy_parse(sp, &r->rp.policy, &e)) {
            snprintf(r->msg, sizeof r->msg, "parameter 'policy': expected 'match' or 'regulate', got '%.40s'", sp);
            return 400;
        }
    }
    r->rp.user = NULL;
    if (su && *su) {
        if (!mm_http_valid_user(su)) {
            snprintf(r->msg, sizeof r->msg, "parameter 'user': expected 1..64 characters of A-Z a-z 0-9 . _ @ -");
            return 400;
        }
        snprintf(r->user, sizeof r->user, "%s", su);
        r->rp.user = r->user;
    }
    return 0;
}

static void set_result(req *r, int status, json_t *j)
{
    r->res_status = status;
    r->res_json = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(j);
    if (!r->res_json) {
        r->res_status = 500;
        r->res_json = error_text("out of memory");
    }
}

static void set_error(req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_error(req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = error_json(fmt, ap);
    va_end(ap);
    set_result(r, status, j);
}

/* The upload's raw features with bundle b into raw (mm_bundle_dim(b)
 * values): 0, or the HTTP status with e set: 400 when the audio is at fault
 * (does not decode, gives non-finite features), 500 when out of memory. */
static int upload_features(const mm_bundle *b, const req *r, float *raw, double *secs, mm_err *e)
{
    int rc = mm_bundle_features_memory(b, r->audio, r->audio_len, "upload", raw, secs, e);
    if (rc) return rc == MM_ENOMEM ? 500 : 400;
    size_t dim = mm_bundle_dim(b);
    for (size_t j = 0; j < dim; j++)
        if (!isfinite(raw[j])) {
            mm_err_set(e, MM_EDATA, "the audio gives a non-finite value for feature %zu", j);
            return 400;
        }
    return 0;
}

/* The speech model's probabilities (n_speech) from finite raw features:
 * 0, or 500 with e set when the model fails or gives a value that is not
 * finite (the model's fault, not the client's; never an answer with
 * probabilities missing). */
static int model_proba(const mm_server *s, const mm_bundle *b, const float *raw, const float *hist, size_t n_hist,
                       float *proba, mm_err *e)
{
    if (mm_bundle_predict(b, raw, hist, n_hist, proba, NULL, e)) return 500;
    if (s->p.test_nonfinite) proba[0] = NAN;
    for (int i = 0; i < s->n_speech; i++)
        if (!isfinite(proba[i])) {
            mm_err_set(e, MM_EDATA, "the speech model (%s) gave a non-finite probability for '%s'",
                       mm_bundle_model_name(b), mm_bundle_class_name(b, i));
            return 500;
        }
    return 0;
}

/* The ordinary speech bundle on the upload: 0 or an HTTP status, as above. */
static int classify_plain(const mm_server *s, const req *r, float *proba, double *secs, mm_err *e)
{
    float *raw = malloc((mm_bundle_dim(s->m.speech) + 1) * sizeof *raw);
    if (!raw) {
        mm_err_set(e, MM_ENOMEM, "out of memory");
        return 500;
    }
    int st = upload_features(s->m.speech, r, raw, secs, e);
    if (!st) st = model_proba(s, s->m.speech, raw, NULL, 0, proba, e);
    free(raw);
    return st;
}

/* Speech probabilities of the upload: 0 or an HTTP status with e set. With
 * a calibrated bundle, a user and a feedback store: the user's earlier
 * clips calibrate the clip once there are enough of them (else the
 * ordinary bundle answers), and the clip joins them when it is long enough.
 * *calib: {"calibrated", "clips", "needed"}: clips = the user's earlier
 * recordings this answer could use (at most needed), calibrated = clips >= needed. */
static int classify_upload(mm_server *s, req *r, float *proba, double *secs, json_t **calib, mm_err *e)
{
    const mm_bundle *cb = s->m.speech_calibrated;
    *calib = NULL;
    if (!cb || !s->m.feedback || !r->user[0]) return classify_plain(s, r, proba, secs, e);
    size_t dim = mm_bundle_dim(cb), need = mm_bundle_calibration_clips(cb), k = 0;
    float *raw = malloc((need + 1) * dim * sizeof *raw);
    if (!raw) {
        mm_err_set(e, MM_ENOMEM, "out of memory");
        return 500;
    }
    int used = 0, st = upload_features(cb, r, raw, secs, e);
    mm_err e2 = {0};   /* a store failure costs calibration, not the answer */
    if (!st && mm_feedback_calib_get(s->m.feedback, r->user, mm_bundle_pipeline_id(cb), dim, need, raw + dim, &k, &e2))
        k = 0;
    if (!st && k >= need) {
        used = 1;
        st = model_proba(s, cb, raw, raw + dim, k, proba, e);
    } else if (!st) {
        st = classify_plain(s, r, proba, secs, e);
    }
    /* the status describes this answer: clips = the earlier recordings it could use, so
     * calibrated == (clips >= needed) always; this clip counts from the next request on */
    if (!st && *secs >= s->p.min_seconds)
        mm_feedback_calib_add(s->m.feedback, r->user, mm_bundle_pipeline_id(cb), raw, dim, need, &e2);
    free(raw);
    if (!st) *calib = json_pack("{s:b, s:I, s:I}", "calibrated", used, "clips", (json_int_t)k, "needed", (json_int_t)need);
    return st;
}

/* ---- per-user variety: recently served tracks and a seed per request ---- */

static uint64_t mix64(uint64_t x)   /* splitmix64's finaliser */
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The seed of a user's request: the configured seed mixed with the user id
 * (FNV-1a) and the number of answers the user has had, so each request of a
 * user draws anew and the same (seed, user, count) draws the same. */
static uint64_t user_seed(uint64_t base, const char *user, uint64_t answers)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
    return mix64(base ^ mix64(h ^ mix64(answers + 0x9e3779b97f4a7c15ULL)));
}

/* The user's recently served tracks as library indices into *out (malloc'd,
 * *n of them, newest first) and their answer count: at most library size −
 * n_wanted of them, so that a small library still fills the list (it then
 * cycles through its tracks); tracks no longer in the library are skipped.
 * A store that fails leaves none (the answer loses variety, not more). */
static void recent_exclude(const mm_server *s, const char *user, size_t n_wanted, size_t **out, size_t *n,
                           uint64_t *answers)
{
    *out = NULL;
    *n = 0;
    *answers = 0;
    size_t size = mm_library_size(s->m.library), room = size > n_wanted ? size - n_wanted : 0;
    mm_feedback_recent_list rl;
    mm_err e = {0};
    if (mm_feedback_recent(s->m.feedback, user, MM_FEEDBACK_SERVED_KEEP, &rl, &e)) return;
    *answers = rl.answers;
    size_t *x = rl.n && room ? malloc(rl.n * sizeof *x) : NULL;
    for (size_t k = 0; x && k < rl.n && *n < room; k++) {
        long i = mm_library_find(s->m.library, rl.track_ids[k]);
        if (i >= 0 && !strcmp(mm_library_id(s->m.library, (size_t)i), rl.track_ids[k])) x[(*n)++] = (size_t)i;
    }
    mm_feedback_recent_free(&rl);
    *out = x;
}

/* Remember what user was served in res (failures cost variety only). */
static void record_served(const mm_server *s, const char *user, const mm_rec_result *res)
{
    const char **ids = malloc((res->n ? res->n : 1) * sizeof *ids);
    if (!ids) return;
    for (size_t i = 0; i < res->n; i++) ids[i] = mm_library_id(s->m.library, res->items[i].track);
    mm_err e = {0};
    mm_feedback_served_add(s->m.feedback, user, ids, res->n, &e);
    free(ids);
}

/* The worker's job: classify, maybe recommend, build the answer. */
static void process(mm_server *s, req *r)
{
    if (s->p.test_delay_ms > 0) {
        struct timespec ts = {s->p.test_delay_ms / 1000, (long)(s->p.test_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    int k = s->n_speech;
    float *proba = malloc((size_t)k * sizeof *proba);   /* (k) sized from the model */
    double secs = 0;
    mm_err e = {0};
    json_t *calib = NULL;
    int st = 500;
    if (!proba) mm_err_set(&e, MM_ENOMEM, "out of memory");
    else st = classify_upload(s, r, proba, &secs, &calib, &e);
    if (st) {
        set_error(r, st, "%s: %s", st == 400 ? "cannot use the audio" : "cannot classify the audio", e.msg);
        goto done;
    }
    if (secs < s->p.min_seconds) {
        json_decref(calib);
        set_error(r, 400, "audio too short: %.3f s, at least %.2f s needed", secs, s->p.min_seconds);
        goto done;
    }
    int top = 0;
    for (int i = 1; i < k; i++) if (proba[i] > proba[top]) top = i;
    mm_va va = mm_va_expected(s->speech_va, proba, k);
    json_t *j = json_pack("{s:s, s:o, s:f, s:f, s:f}", "emotion", mm_bundle_class_name(s->m.speech, top), "proba",
                          proba_object(proba, k, speech_name, s->m.speech), "valence", (double)va.valence,
                          "arousal", (double)va.arousal, "duration_s", secs);
    if (j && calib) json_object_set_new(j, "calibration", calib);
    else json_decref(calib);
    if (j && r->route == R_RECOMMEND) {
        /* with a user and a store: the user's recent tracks stay out, and each request has its own seed */
        mm_recommend_params rp = r->rp;
        size_t *recent = NULL;
        int remember = rp.user && s->m.feedback;
        if (remember) {
            uint64_t answers;
            recent_exclude(s, rp.user, rp.n, &recent, &rp.n_exclude, &answers);
            rp.exclude = recent;
            rp.seed = user_seed(rp.seed, rp.user, answers);
        }
        mm_rec_result res;
        int rc = mm_recommend(s->m.recommender, proba, &rp, s->m.feedback, &res, &e);
        free(recent);
        if (rc) {
            json_decref(j);
            set_error(r, 500, "%s", e.msg);
            goto done;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < res.n; i++) {
            const mm_rec_item *it = &res.items[i];
            json_t *t = track_json(s, it->track, 0);
            json_object_set_new(t, "reason", json_string(it->reason));
            json_object_set_new(t, "score", json_real(it->score));
            json_array_append_new(arr, t);
        }
        json_object_set_new(j, "tracks", arr);
        json_object_set_new(j, "policy", json_string(mm_policy_name(res.policy)));
        json_object_set_new(j, "quadrant", json_integer(res.listener_quadrant));
        json_object_set_new(j, "target", json_pack("{s:f, s:f}", "valence", (double)res.target.valence, "arousal",
                                                   (double)res.target.arousal));
        json_object_set_new(j, "note", json_string(res.note));
        if (remember) record_served(s, rp.user, &res);
        mm_rec_result_free(&res);
    }
    if (j) json_object_set_new(j, "ms", json_real(1000.0 * (mm_now_s() - r->t_body)));
    set_result(r, 200, j);
done:
    free(proba);
}

static void *worker_main(void *arg)
{
    mm_server *s = arg;
    omp_set_num_threads(1);   /* parallelism comes from the pool, not from inside a request */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
        if (!s->head) break;   /* stopping and drained */
        req *r = s->head;
        s->head = r->next;
        if (!s->head) s->tail = NULL;
        int alone = s->pending == 1;   /* this request is the only one queued or running */
        pthread_mutex_unlock(&s->mu);
        /* Alone: the other cores would idle, so they help with this request's own work
         * (same results; OpenMP threads only on CPUs without AVX-512). Requests arriving
         * meanwhile run on one core each, as under load. */
        int par = alone && s->intra_threads > 1;
        omp_set_num_threads(par ? s->intra_threads : 1);
        mm_mobilenet_set_thread_parallel(par);
        process(s, r);
        atomic_fetch_add(&s->n_jobs, 1);
        r->done = 1;
        struct MHD_Connection *c = r->conn;
        pthread_mutex_lock(&s->mu);
        s->pending--;
        pthread_mutex_unlock(&s->mu);
        MHD_resume_connection(c);   /* r may be freed from here on */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queue r for a worker, suspending its connection; 0, or 503 when full. */
static int enqueue(mm_server *s, struct MHD_Connection *c, req *r)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->pending >= (size_t)s->n_workers + s->p.queue_max) {
        pthread_mutex_unlock(&s->mu);
        return 503;
    }
    s->pending++;
    r->conn = c;
    r->queued = 1;
    r->next = NULL;
    MHD_suspend_connection(c);
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- connections: limits and the request deadline ---- */

/* The client's address into k (IPv4-mapped IPv6 as IPv4, so that one
 * client is one address on a dual-stack socket). */
static void conn_address(conn *k, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    k->addr_len = 0;
    if (sa && sa->sa_family == AF_INET) {
        memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        k->addr_len = 4;
    } else if (sa && sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        int v4 = !memcmp(a, mapped, 12);
        memcpy(k->addr, v4 ? a + 12 : a, v4 ? 4 : 16);
        k->addr_len = v4 ? 4 : 16;
    }
}

/* MHD's connection notifications: count and list each connection from
 * accept to close; at accept, mark it refused when its address already has
 * max_per_address connections or the server max_connections. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    mm_server *s = cls;
    conn *k = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (!k) return;
        pthread_mutex_lock(&s->conn_mu);
        if (k->prev) k->prev->next = k->next;
        else s->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conn_mu);
        free(k);
        *socket_context = NULL;
        return;
    }
    if (!(k = calloc(1, sizeof *k))) return;   /* untracked: neither limited nor timed */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k->fd = ci ? (int)ci->connect_fd : -1;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    conn_address(k, ci ? ci->client_addr : NULL);
    k->t_start = mm_now_s();
    k->receiving = 1;
    pthread_mutex_lock(&s->conn_mu);
    size_t same = 0;
    for (const conn *o = s->conns; o && k->addr_len; o = o->next)
        same += o->addr_len == k->addr_len && !memcmp(o->addr, k->addr, (size_t)k->addr_len);
    k->refused = same >= s->p.max_per_address ? REFUSED_ADDRESS : s->n_conns >= s->p.max_connections ? REFUSED_FULL : 0;
    k->next = s->conns;
    if (s->conns) s->conns->prev = k;
    s->conns = k;
    s->n_conns++;
    pthread_mutex_unlock(&s->conn_mu);
    *socket_context = k;
}

static conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The current request on k is in (answered or handed to a worker), or a
 * new one starts on a kept-alive connection: the deadline stops or restarts. */
static void conn_set_receiving(mm_server *s, conn *k, int receiving)
{
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    k->receiving = receiving;
    if (receiving) k->t_start = mm_now_s();
    pthread_mutex_unlock(&s->conn_mu);
}

/* Every 100 ms: shut down the socket of each connection whose request is
 * not in by its deadline (request_timeout_s; a refused one gets at most
 * REFUSED_DEADLINE_S). MHD then sees the end of the stream on its I/O
 * thread and closes the connection. The fd is still open here: MHD closes
 * it only after the CLOSED notification, which takes conn_mu. */
static void *sweeper_main(void *arg)
{
    mm_server *s = arg;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->sweep_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->sweep_cv, &s->conn_mu, &ts);
        double t = mm_now_s(), full = s->p.request_timeout_s;
        double refused = full < REFUSED_DEADLINE_S ? full : REFUSED_DEADLINE_S;
        for (conn *k = s->conns; k; k = k->next)
            if (k->receiving && !k->shut && k->fd >= 0 && t - k->t_start > (k->refused ? refused : full)) {
                shutdown(k->fd, SHUT_RDWR);
                k->shut = 1;
                atomic_fetch_add(&s->n_timed_out, 1);
            }
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

/* ---- request framing ---- */

#define MAX_LENGTH_FIELDS 8

typedef struct framing {
    const char *length[MAX_LENGTH_FIELDS];   /* Content-Length values */
    size_t n_length;                         /* how many (may exceed MAX_LENGTH_FIELDS) */
    int chunked;                             /* a Transfer-Encoding is present */
} framing;

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    framing *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (f->n_length < MAX_LENGTH_FIELDS) f->length[f->n_length] = value;
        f->n_length++;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->chunked = 1;
    }
    return MHD_YES;
}

/* The declared body length (-1 when none or chunked), or -2 when the
 * framing is ambiguous (Content-Length values that differ, or one with a
 * Transfer-Encoding: RFC 9112 §6.1, §6.3) and the request must get 400 with
 * the connection closed, as another server on the path may read it otherwise. */
static long long declared_length(struct MHD_Connection *c)
{
    framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_framing, &f);
    uint64_t n = 0;
    if (f.n_length > MAX_LENGTH_FIELDS || (f.n_length && f.chunked)) return -2;
    int rc = mm_http_content_length(f.length, f.n_length, &n);
    if (rc < 0) return -2;
    return rc == 0 || f.chunked ? -1 : n > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)n;
}

/* ---- dispatch ---- */

static route_kind route_of(const char *url, int *post_route)
{
    *post_route = 0;
    const void *d;
    size_t n;
    const char *t;
    if (!mm_http_asset(url, &d, &n, &t)) return R_ASSET;
    if (!strcmp(url, "/api/health")) return R_HEALTH;
    if (!strcmp(url, "/api/tracks")) return R_TRACKS;
    if (!strncmp(url, "/api/tracks/", 12)) return strchr(url + 12, '/') ? R_AUDIO : R_TRACK;
    *post_route = 1;
    if (!strcmp(url, "/api/emotion")) return R_EMOTION;
    if (!strcmp(url, "/api/recommend")) return R_RECOMMEND;
    if (!strcmp(url, "/api/feedback")) return R_FEEDBACK;
    *post_route = 0;
    return R_NONE;
}

static enum MHD_Result handle_request(mm_server *s, struct MHD_Connection *c, const char *url, const char *method,
                                      const char *upload_data, size_t *upload_size, req **con_cls)
{
    req *r = *con_cls;
    retry_after_s = 0;
    close_after = 0;
    if (!r) {   /* first call: headers are in, the body (if any) is not */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        r->t0 = mm_now_s();
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->url, sizeof r->url, "%s", url);
        int post_route;
        r->route = route_of(url, &post_route);
        r->answered = 1;   /* every return below queues a response, except the POST that waits for its body */
        long long declared = declared_length(c);
        if (declared == -2) {
            close_after = 1;
            return send_error(c, 400, "ambiguous body length: Content-Length values that differ, or Content-Length "
                                      "with Transfer-Encoding");
        }
        conn *k = conn_of(c);
        if (k && k->refused && r->route != R_HEALTH) {   /* health answers even then: it costs no more than a 503 */
            atomic_fetch_add(&s->n_conn_refused, 1);
            retry_after_s = RETRY_AFTER_S;
            close_after = 1;
            if (k->refused == REFUSED_ADDRESS)
                return send_error(c, 503, "too many connections from your address (at most %zu); retry later",
                                  s->p.max_per_address);
            return send_error(c, 503, "server at its limit of %zu connections; retry later", s->p.max_connections);
        }
        if (k && k->refused) close_after = 1;
        int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), is_post = !strcmp(method, "POST");
        if (r->route == R_NONE) return send_error(c, 404, "no such resource: %.200s", url);
        if ((post_route && !is_post) || (!post_route && !is_get)) {
            allow_hdr = post_route ? "POST" : "GET, HEAD";
            return send_error(c, 405, "method %.16s not allowed on %.200s", method, url);
        }
        switch (r->route) {
        case R_ASSET: {
            const void *d;
            size_t n;
            const char *t;
            mm_http_asset(url, &d, &n, &t);
            return send_buf(c, 200, t, (void *)d, n, MHD_RESPMEM_PERSISTENT);
        }
        case R_HEALTH: return get_health(s, c);
        case R_TRACKS: return get_tracks(s, c);
        case R_TRACK: return get_track(s, c, url);
        case R_AUDIO: return get_audio(s, c, url);
        default: break;
        }
        /* a POST: refuse what can be refused before reading the body */
        if (declared >= 0 && (unsigned long long)declared > s->p.max_upload)
            return send_error(c, 413, "upload of %lld bytes is over the limit of %zu bytes", declared, s->p.max_upload);
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (r->route == R_FEEDBACK) {
            if (!mm_http_media_type_is(ct, "application/json"))
                return send_error(c, 415, "feedback: expected Content-Type application/json, got '%.80s'",
                                  ct ? ct : "");
        } else if (mm_http_upload_kind_of(ct) == MM_HTTP_UPLOAD_UNSUPPORTED) {
            return send_error(c, 415, "unsupported Content-Type '%.80s': send audio (audio/wav, audio/flac, audio/ogg, "
                                      "audio/mpeg, application/octet-stream) or multipart/form-data with field 'audio'", ct);
        }
        /* room for the declared body, but not more than 1 MB before it arrives */
        size_t want = declared > 0 ? (size_t)declared : 0;
        if (want > (1u << 20)) want = 1u << 20;
        if (want && (r->body = malloc(want))) r->cap = want;
        r->answered = 0;
        return MHD_YES;
    }
    if (r->answered) {   /* already answered (an error before the body): ignore the rest */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {   /* a piece of the body */
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->status) return MHD_YES;                                  /* already refused: discard */
        if (n > s->p.max_upload - r->len) {
            r->status = 413;
            snprintf(r->msg, sizeof r->msg, "upload over the limit of %zu bytes", s->p.max_upload);
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 65536;
            while (cap < r->len + n) cap *= 2;
            if (cap > s->p.max_upload) cap = s->p.max_upload;
            uint8_t *nb = realloc(r->body, cap);
            if (!nb) return MHD_NO;
            r->body = nb;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    /* the body is complete, or a worker has finished */
    if (r->done) {
        char *js = r->res_json;
        r->res_json = NULL;
        if (!js) return send_error(c, 500, "internal error");
        return send_buf(c, r->res_status, "application/json", js, strlen(js), MHD_RESPMEM_MUST_FREE);
    }
    if (r->queued) return MHD_YES;   /* spurious call while suspended */
    r->t_body = mm_now_s();
    if (r->status) return send_error(c, r->status, "%s", r->msg);
    if (r->route == R_FEEDBACK) return post_feedback(s, c, r);
    int st = locate_audio(c, r);
    if (!st && r->route == R_RECOMMEND) st = check_recommend_params(s, c, r);
    if (st) return send_error(c, st, "%s", r->msg);
    if (enqueue(s, c, r)) {
        atomic_fetch_add(&s->n_busy, 1);
        retry_after_s = RETRY_AFTER_S;
        return send_error(c, 503, "server busy: %zu requests waiting; retry later", s->p.queue_max);
    }
    return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    mm_server *s = cls;
    enum MHD_Result ok = handle_request(s, c, url, method, upload_data, upload_size, (req **)con_cls);
    const req *r = *con_cls;
    conn *k = conn_of(c);
    /* answered, or the body is in (it is being processed): the request deadline no longer applies.
     * k->receiving is written only on this connection's I/O thread, so reading it here needs no lock. */
    if (r && k && k->receiving && (r->answered || r->t_body > 0)) conn_set_receiving(s, k, 0);
    return ok;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    mm_server *s = cls;
    req *r = *con_cls;
    conn_set_receiving(s, conn_of(c), 1);   /* a kept-alive connection's next request starts now */
    if (!r) return;
    atomic_fetch_add(&s->n_requests, 1);
    if (s->p.on_request) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        s->p.on_request(s->p.on_request_ctx, r->method, r->url, ci ? (int)ci->http_status : 0, 1000.0 * (mm_now_s() - r->t0));
    }
    free(r->body);
    free(r->res_json);
    free(r);
    *con_cls = NULL;
}

/* ---- start / stop ---- */

/* Stop and free what mm_server_start made: refuse new work, let the
 * workers drain the queue (each resumes its connection), stop the deadline
 * sweeper (its shutdowns need the connections alive), then the daemon. */
static void release(mm_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
    if (s->sweeping) {
        pthread_mutex_lock(&s->conn_mu);
        s->sweep_stop = 1;
        pthread_cond_signal(&s->sweep_cv);
        pthread_mutex_unlock(&s->conn_mu);
        pthread_join(s->sweeper, NULL);
    }
    if (s->d) MHD_stop_daemon(s->d);
    free(s->workers);
    free(s->speech_va);
    mm_ratelimit_free(s->feedback_rl);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->sweep_cv);
    free(s);
}

static int listen_socket(const char *host, int port, int *fd_out, int *port_out, mm_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int g = getaddrinfo(host, ps, &hints, &ai);
    if (g) return mm_err_set(err, MM_EINVAL, "host '%s': %s", host, gai_strerror(g));
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { e = errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (!bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, 128)) break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) return mm_err_set(err, MM_EIO, "%s:%d: %s", host, port, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

int mm_server_start(const mm_server_params *pin, const mm_server_models *m, mm_server **out, mm_err *err)
{
    mm_server_params p;
    if (pin) p = *pin;
    else mm_server_params_default(&p);
    if (!m || !m->speech || !m->library || !m->recommender)
        return mm_err_set(err, MM_EINVAL, "server: a speech bundle, a library and a recommender are required");
    if (p.port < 0 || p.port > 65535) return mm_err_set(err, MM_EINVAL, "server: port %d out of range 0..65535", p.port);
    if (p.n_workers < 1 || p.n_workers > 1024) return mm_err_set(err, MM_EINVAL, "server: worker threads %d out of range 1..1024", p.n_workers);
    if (p.n_io_threads < 1 || p.n_io_threads > 64) return mm_err_set(err, MM_EINVAL, "server: I/O threads %d out of range 1..64", p.n_io_threads);
    if (p.max_upload < 64) return mm_err_set(err, MM_EINVAL, "server: upload limit %zu bytes is too small (>= 64)", p.max_upload);
    if (!(p.request_timeout_s > 0) || p.idle_timeout_s < 1)
        return mm_err_set(err, MM_EINVAL, "server: timeouts must be > 0");
    if (p.max_connections < 1 || p.max_connections > 100000 || p.max_per_address < 1)
        return mm_err_set(err, MM_EINVAL, "server: connection limits %zu (1..100000) and %zu per address (>= 1)",
                          p.max_connections, p.max_per_address);
    int k = mm_bundle_n_classes(m->speech);
    if (k < 1) return mm_err_set(err, MM_EINVAL, "server: the speech bundle has %d classes", k);
    if (mm_recommender_n_labels(m->recommender) != k)
        return mm_err_set(err, MM_EINVAL, "server: the recommender has %d speech labels, the speech bundle %d",
                          mm_recommender_n_labels(m->recommender), k);
    if (mm_bundle_calibration_clips(m->speech))
        return mm_err_set(err, MM_EINVAL, "server: the speech bundle has per-speaker calibration: pass it as the calibrated bundle (--speech-calibrated) beside an ordinary one (--speech)");
    if (m->speech_calibrated) {
        const mm_bundle *cb = m->speech_calibrated;
        if (!mm_bundle_calibration_clips(cb))
            return mm_err_set(err, MM_EINVAL, "server: the calibrated speech bundle has no per-speaker calibration (export it from an experiment with preprocessing.group_norm)");
        if (!m->feedback)
            return mm_err_set(err, MM_EINVAL, "server: a calibrated speech bundle needs the feedback database (--db) to keep users' clips");
        int same = mm_bundle_n_classes(cb) == k;
        for (int i = 0; same && i < k; i++) same = !strcmp(mm_bundle_class_name(cb, i), mm_bundle_class_name(m->speech, i));
        if (!same) return mm_err_set(err, MM_EINVAL, "server: the calibrated speech bundle's labels differ from the speech bundle's");
    }
    mm_server *s = calloc(1, sizeof *s);
    if (!s) return mm_err_set(err, MM_ENOMEM, "out of memory");
    s->p = p;
    s->m = *m;
    s->n_speech = k;
    int rc = mm_ratelimit_create(p.feedback_rate, p.feedback_burst, 4096, &s->feedback_rl, err);
    if (rc) { free(s); return rc; }
    s->speech_va = calloc((size_t)k, sizeof *s->speech_va);
    if (!s->speech_va) { mm_ratelimit_free(s->feedback_rl); free(s); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (int i = 0; i < k; i++) s->speech_va[i] = mm_recommender_label_va(m->recommender, i);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->sweep_cv, &ca);
    pthread_condattr_destroy(&ca);
    int fd = -1;
    rc = listen_socket(p.host, p.port, &fd, &s->port, err);
    if (rc) goto fail;
    if (pthread_create(&s->sweeper, NULL, sweeper_main, s)) {
        rc = mm_err_set(err, MM_EIO, "server: cannot start the deadline thread");
        close(fd);
        goto fail;
    }
    s->sweeping = 1;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    const char *intra = getenv("MELODIC_SERVE_INTRA");
    s->intra_threads = intra && !strcmp(intra, "0") ? 1 : (int)(nc < 1 ? 1 : nc > 8 ? 8 : nc);
    /* workers run single-threaded kernels; BLAS's thread count is the
     * process's (set by the caller: melodic serve sets it to 1) */
    s->workers = calloc((size_t)p.n_workers, sizeof *s->workers);
    if (!s->workers) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); close(fd); goto fail; }
    for (int i = 0; i < p.n_workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s)) {
            rc = mm_err_set(err, MM_EIO, "server: cannot start worker threads");
            close(fd);
            goto fail;
        }
        s->n_workers++;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    /* room beyond max_connections for connections that are only answered 503 */
    unsigned hard_limit = (unsigned)(p.max_connections + p.max_connections / 4 + 4);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)p.n_io_threads,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p.idle_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, hard_limit,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!s->d) {
        close(fd);
        rc = mm_err_set(err, MM_EIO, "%s:%d: cannot start the HTTP daemon", p.host, s->port);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    release(s);
    return rc;
}

int mm_server_port(const mm_server *s) { return s->port; }

void mm_server_get_stats(const mm_server *s, mm_server_stats *out)
{
    mm_server_stats st = {0};
    st.requests = atomic_load(&((mm_server *)s)->n_requests);
    st.rejected_busy = atomic_load(&((mm_server *)s)->n_busy);
    st.jobs_done = atomic_load(&((mm_server *)s)->n_jobs);
    st.rejected_conn = atomic_load(&((mm_server *)s)->n_conn_refused);
    st.rejected_rate = atomic_load(&((mm_server *)s)->n_rate_limited);
    st.timed_out = atomic_load(&((mm_server *)s)->n_timed_out);
    st.queue_now = s->pending;
    *out = st;
}

void mm_server_stop(mm_server *s)
{
    if (!s) return;
    release(s);
}
