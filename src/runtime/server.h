/* server.h — the HTTP server of `melodic serve`: JSON API and the web page.
 *
 * libmicrohttpd answers connections on a few I/O threads (epoll; a slow
 * client holds a connection slot until its deadline, never a thread) and
 * hands each audio request, once its body is in, to a fixed pool of worker
 * threads through a bounded queue: when the queue is full the request gets
 * 503 at once. Hostile clients: a whole request (headers and body) must
 * arrive within the request deadline or the connection is closed; one
 * address holds at most max_per_address connections and the server
 * max_connections: beyond either, requests get 503 with Retry-After (and
 * GET /api/health its answer); feedback is rate-limited per user (429). The models (speech bundle, library, recommender) are
 * borrowed, loaded once and shared read-only by all workers; the feedback
 * store has its own lock. A recommendation for user=ID (with a feedback
 * store) leaves out the tracks the store says that user was served lately,
 * has a seed of its own (the user and their answer count), and is recorded
 * there in turn. API: src/runtime/API.md.
 * Left out: TLS, authentication, HTTP/2 (put a reverse proxy in front).
 */
#ifndef MM_SERVER_H
#define MM_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "runtime/bundle.h"
#include "runtime/feedback.h"
#include "runtime/library.h"
#include "runtime/recommend.h"

typedef struct mm_server_params {
    const char *host;           /* address to bind, numeric or a name (default "127.0.0.1") */
    int port;                   /* 1..65535, or 0 for any free port (default 8080) */
    int n_workers;              /* classification threads (default: number of cores) */
    int n_io_threads;           /* connection threads (default 2) */
    size_t queue_max;           /* requests waiting for a worker before 503 (default 64) */
    size_t max_upload;          /* request body limit in bytes; larger gets 413 (default 20 MB) */
    size_t max_connections;     /* connections served at once (default 256); up to a quarter more are
                                 * accepted only to be answered 503 (or /api/health) and closed */
    size_t max_per_address;     /* connections from one client address, the rest as above (default 32) */
    unsigned idle_timeout_s;    /* a connection idle this long is closed (default 10) */
    double request_timeout_s;   /* a request (headers and body) not in this long after its connection
                                 * opened, or after the previous request on it, is dropped (default 30) */
    double feedback_rate;       /* feedback events per second per user, sustained (default 1) */
    double feedback_burst;      /* ... and at once (default 30); more get 429 with Retry-After */
    double min_seconds;         /* shorter audio gets 400 (default 0.5) */
    mm_recommend_params rec;    /* defaults for /api/recommend (n, policy, weights, seed) */
    int test_delay_ms;          /* testing only: each worker job sleeps this long first (default 0) */
    int test_nonfinite;         /* testing only: the speech model's first probability becomes NaN (default 0) */
    /* Called once per answered request from an I/O thread (may be NULL):
     * method, url, status, milliseconds since the request arrived. */
    void (*on_request)(void *ctx, const char *method, const char *url, int status, double ms);
    void *on_request_ctx;
} mm_server_params;

void mm_server_params_default(mm_server_params *p);

/* What the server answers from. speech, library and recommender are
 * required and must outlive the server; feedback may be NULL (then
 * POST /api/feedback answers 503). The recommender must have been created
 * with the speech bundle's labels, in order. */
typedef struct mm_server_models {
    const mm_bundle *speech;
    /* Optional: a speech bundle with per-speaker calibration
     * (mm_bundle_calibration_clips > 0, same labels as speech), used for a
     * request with user=ID once that user has that many earlier clips in
     * feedback's calibration store; each such request adds its clip. */
    const mm_bundle *speech_calibrated;
    const mm_library *library;
    const mm_recommender *recommender;
    mm_feedback *feedback;
} mm_server_models;

typedef struct mm_server mm_server;

/* Bind, start the I/O and worker threads and return at once; errors name
 * the address ("127.0.0.1:8080: Address already in use") or the parameter
 * at fault. *out written only on success. */
int mm_server_start(const mm_server_params *p, const mm_server_models *m, mm_server **out,
                    mm_err *err);
/* The port actually bound (useful with port 0). */
int mm_server_port(const mm_server *s);
/* Stop accepting, let the workers finish queued requests, close every
 * connection and free the server. NULL is a no-op. Not from a callback. */
void mm_server_stop(mm_server *s);

/* Counters since start (a consistent-enough snapshot, read without locks). */
typedef struct mm_server_stats {
    uint64_t requests;          /* answered */
    uint64_t rejected_busy;     /* 503 because the queue was full */
    uint64_t rejected_conn;     /* 503 because of the connection limits */
    uint64_t rejected_rate;     /* 429: feedback over a user's rate */
    uint64_t timed_out;         /* connections closed at the request deadline */
    uint64_t jobs_done;         /* audio requests processed by workers */
    size_t queue_now;           /* waiting or running right now */
} mm_server_stats;

void mm_server_get_stats(const mm_server *s, mm_server_stats *out);

#endif
