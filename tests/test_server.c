/* test_server.c — the HTTP server (src/runtime/server.c) and its request
 * parsing (http_parse.c): parser cases (ranges, multipart, types, ids), then
 * a server started in-process on 127.0.0.1 and a free port with a tiny
 * speech bundle (3 tones named happy/sad/angry, logmel_stats + rf, made by
 * `melodic export`) and an in-memory library of 8 generated WAV tracks:
 * every endpoint, every error code of the issue (400 404 405 413 415 503),
 * Range requests, raw and multipart uploads, garbage and truncated audio,
 * slow clients, junk on the socket — the server stays up and answers health
 * afterwards. Hostile input (issue 18): many slow connections from one
 * address (health still answers, others get 503, the slow ones are closed at
 * the request deadline), a FIFO as a track file, ambiguous Content-Length,
 * ranges past 2^64, media types that only start like JSON, feedback floods
 * (429), a model giving NaN (500); every JSON body is parsed with jansson.
 * Variety per user (issue 17): repeated requests of one user bring new
 * tracks; GET /api/tracks/{id} gives a track's trajectory.
 * Last, `melodic serve` itself started on port 0 and stopped.
 * Needs no ../shared data. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sndfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "core/sha256.h"
#include "runtime/http_parse.h"
#include "runtime/ratelimit.h"
#include "runtime/server.h"

/* ---- parsing ---- */

static void test_parse_range(void **st)
{
    uint64_t a = 0, b = 0;
    assert_int_equal(mm_http_range_parse(NULL, 100, &a, &b), MM_HTTP_RANGE_NONE);
    assert_int_equal(mm_http_range_parse("bytes=0-9", 100, &a, &b), MM_HTTP_RANGE_OK);
    assert_true(a == 0 && b == 9);
    assert_int_equal(mm_http_range_parse("bytes=90-", 100, &a, &b), MM_HTTP_RANGE_OK);
    assert_true(a == 90 && b == 99);
    assert_int_equal(mm_http_range_parse("bytes=-10", 100, &a, &b), MM_HTTP_RANGE_OK);
    assert_true(a == 90 && b == 99);
    assert_int_equal(mm_http_range_parse("bytes=-1000", 100, &a, &b), MM_HTTP_RANGE_OK);
    assert_true(a == 0 && b == 99);
    assert_int_equal(mm_http_range_parse("bytes=50-5000", 100, &a, &b), MM_HTTP_RANGE_OK);
    assert_true(a == 50 && b == 99);
    assert_int_equal(mm_http_range_parse("bytes=100-", 100, &a, &b), MM_HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(mm_http_range_parse("bytes=-0", 100, &a, &b), MM_HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(mm_http_range_parse("bytes=0-", 0, &a, &b), MM_HTTP_RANGE_UNSATISFIABLE);
    /* positions past 2^64 - 1: a first byte there is past the end, a last byte or suffix is clamped */
    assert_int_equal(mm_http_range_parse("bytes=99999999999999999999999-", 100, &a, &b), MM_HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(mm_http_range_parse("bytes=18446744073709551616-18446744073709551617", 100, &a, &b),
                     MM_HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(mm_http_range_parse("bytes=18446744073709551615-", UINT64_MAX, &a, &b), MM_HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(mm_http_range_parse("bytes=5-99999999999999999999999", 100, &a, &b), MM_HTTP_RANGE_OK);
    assert_true(a == 5 && b == 99);
    assert_int_equal(mm_http_range_parse("bytes=-99999999999999999999999", 100, &a, &b), MM_HTTP_RANGE_OK);
    assert_true(a == 0 && b == 99);
    /* ignored: other units, lists, reversed, garbage */
    const char *ignored[] = {"items=0-1", "bytes=0-1,5-6", "bytes=9-3", "bytes=x-", "bytes=", "bytes=--1",
                             "bytes=1-2 junk", "bytes 0-1", "bytes=99999999999999999999999-5"};
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
        assert_int_equal(mm_http_range_parse(ignored[i], 100, &a, &b), MM_HTTP_RANGE_NONE);
}

static void test_parse_multipart(void **st)
{
    char bd[80];
    assert_int_equal(mm_http_multipart_boundary("multipart/form-data; boundary=abc", bd, sizeof bd), 0);
    assert_string_equal(bd, "abc");
    assert_int_equal(mm_http_multipart_boundary("multipart/form-data; charset=x; boundary=\"a b\"", bd, sizeof bd), 0);
    assert_string_equal(bd, "a b");
    assert_int_equal(mm_http_multipart_boundary("multipart/form-data", bd, sizeof bd), -1);
    assert_int_equal(mm_http_multipart_boundary("multipart/form-data; boundary=", bd, sizeof bd), -1);
    char longb[120];
    memset(longb, 'x', sizeof longb);
    memcpy(longb, "m; boundary=", 12);
    longb[119] = 0;
    assert_int_equal(mm_http_multipart_boundary(longb, bd, sizeof bd), -1);

    const char *body = "preamble\r\n--XX\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n"
                       "--XX\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"v.wav\"\r\n"
                       "Content-Type: audio/wav\r\n\r\nRIFF\r\n--not-it\r\n\r\n--XX--\r\n";
    mm_http_part p;
    assert_int_equal(mm_http_multipart_find((const uint8_t *)body, strlen(body), "XX", "audio", &p), 0);
    assert_int_equal(p.len, strlen("RIFF\r\n--not-it\r\n"));
    assert_memory_equal(p.data, "RIFF\r\n--not-it\r\n", p.len);
    assert_int_equal(p.type_len, 9);
    assert_memory_equal(p.type, "audio/wav", 9);
    assert_int_equal(p.filename_len, 5);
    assert_int_equal(mm_http_multipart_find((const uint8_t *)body, strlen(body), "XX", "user", &p), 0);
    assert_memory_equal(p.data, "bob", 3);
    assert_int_equal(mm_http_multipart_find((const uint8_t *)body, strlen(body), "XX", "file", &p), 1);
    /* "filename" must not pass for "name" */
    const char *b2 = "--XX\r\nContent-Disposition: form-data; filename=\"audio\"\r\n\r\nzz\r\n--XX--";
    assert_int_equal(mm_http_multipart_find((const uint8_t *)b2, strlen(b2), "XX", "audio", &p), 1);
    /* malformed: no delimiter, headers cut, part never closed */
    const char *bad[] = {"no delimiter at all", "--XX\r\nContent-Disposition: form-data; name=\"audio\"",
                         "--XX\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nRIFF....", "--XXjunk"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(mm_http_multipart_find((const uint8_t *)bad[i], strlen(bad[i]), "XX", "audio", &p), -1);
    /* every truncation of a good body is handled without reading past it (ASan watches) */
    size_t n = strlen(body);
    for (size_t k = 0; k < n; k++) {
        uint8_t *cut = malloc(k ? k : 1);
        memcpy(cut, body, k);
        int rc = mm_http_multipart_find(cut, k, "XX", "audio", &p);
        if (rc == 0) assert_true(p.data >= cut && p.data + p.len <= cut + k);
        free(cut);
    }
}

static void test_parse_misc(void **st)
{
    assert_int_equal(mm_http_upload_kind_of(NULL), MM_HTTP_UPLOAD_RAW);
    assert_int_equal(mm_http_upload_kind_of("audio/wav"), MM_HTTP_UPLOAD_RAW);
    assert_int_equal(mm_http_upload_kind_of("Audio/X-FLAC; rate=1"), MM_HTTP_UPLOAD_RAW);
    assert_int_equal(mm_http_upload_kind_of("application/octet-stream"), MM_HTTP_UPLOAD_RAW);
    assert_int_equal(mm_http_upload_kind_of("multipart/form-data; boundary=a"), MM_HTTP_UPLOAD_MULTIPART);
    assert_int_equal(mm_http_upload_kind_of("text/plain"), MM_HTTP_UPLOAD_UNSUPPORTED);
    assert_int_equal(mm_http_upload_kind_of("application/json"), MM_HTTP_UPLOAD_UNSUPPORTED);
    assert_int_equal(mm_http_upload_kind_of("audiox/wav"), MM_HTTP_UPLOAD_UNSUPPORTED);
    /* exact media types, parameters allowed */
    assert_true(mm_http_media_type_is("application/json", "application/json"));
    assert_true(mm_http_media_type_is(" Application/JSON ; charset=utf-8", "application/json"));
    const char *notjson[] = {"application/jsonx", "application/json-seq", "application/jso", "application/json x",
                             "text/json", "", "application/json/x"};
    for (size_t i = 0; i < sizeof notjson / sizeof *notjson; i++)
        assert_false(mm_http_media_type_is(notjson[i], "application/json"));
    assert_false(mm_http_media_type_is(NULL, "application/json"));
    /* Content-Length: every value must agree */
    uint64_t len = 7;
    assert_int_equal(mm_http_content_length(NULL, 0, &len), 0);
    assert_int_equal(len, 7);
    const char *one[] = {"42"}, *same[] = {"42", " 42 , 42"}, *differ[] = {"42", "43"}, *list[] = {"1, 2"};
    const char *bad1[] = {"-1"}, *bad2[] = {"4 2"}, *bad3[] = {"18446744073709551616"}, *bad4[] = {"42,"}, *bad5[] = {""};
    assert_int_equal(mm_http_content_length(one, 1, &len), 1);
    assert_int_equal(len, 42);
    assert_int_equal(mm_http_content_length(same, 2, &len), 1);
    assert_int_equal(len, 42);
    assert_int_equal(mm_http_content_length(differ, 2, &len), -1);
    assert_int_equal(mm_http_content_length(list, 1, &len), -1);
    const char **bads[] = {bad1, bad2, bad3, bad4, bad5};
    for (size_t i = 0; i < 5; i++) assert_int_equal(mm_http_content_length(bads[i], 1, &len), -1);
    long v = 0;
    assert_int_equal(mm_http_parse_long(NULL, 1, 10, 5, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(mm_http_parse_long("10", 1, 10, 5, &v), 0);
    assert_int_equal(v, 10);
    const char *badn[] = {"", "11", "0", "-1", "1x", " 1", "+1", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof badn / sizeof *badn; i++) assert_int_equal(mm_http_parse_long(badn[i], 1, 10, 5, &v), -1);
    char id[65];
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char url[200];
    snprintf(url, sizeof url, "/api/tracks/%s/audio", hex);
    assert_int_equal(mm_http_track_audio_path(url, id), 0);
    assert_string_equal(id, hex);
    const char *badu[] = {"/api/tracks/../../etc/passwd/audio", "/api/tracks/1/audio",
                          "/api/tracks/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef/audio",
                          "/api/tracks/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/audio/",
                          "/api/tracks/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0/audio"};
    for (size_t i = 0; i < sizeof badu / sizeof *badu; i++) assert_int_equal(mm_http_track_audio_path(badu[i], id), -1);
    assert_true(mm_http_valid_user("bob.smith@x-1_2"));
    assert_false(mm_http_valid_user(""));
    assert_false(mm_http_valid_user("a b"));
    assert_false(mm_http_valid_user("x'; DROP TABLE events;--"));
    char u65[66];
    memset(u65, 'a', 65);
    u65[65] = 0;
    assert_false(mm_http_valid_user(u65));
    assert_string_equal(mm_http_sniff_audio((const uint8_t *)"RIFF\0\0\0\0WAVEfmt ", 16), "audio/wav");
    assert_string_equal(mm_http_sniff_audio((const uint8_t *)"fLaC", 4), "audio/flac");
    assert_string_equal(mm_http_sniff_audio((const uint8_t *)"ID3\3", 4), "audio/mpeg");
    assert_null(mm_http_sniff_audio((const uint8_t *)"<html>", 6));
    assert_string_equal(mm_http_audio_type("a/b/song.MP3", NULL, 0), "audio/mpeg");
    assert_string_equal(mm_http_audio_type("noext", (const uint8_t *)"OggS", 4), "audio/ogg");
    assert_string_equal(mm_http_audio_type("x.bin", (const uint8_t *)"????", 4), "application/octet-stream");
}

/* Token buckets: burst then rate; keys apart; a table of 8 slots holds any
 * number of keys (full buckets are forgotten first). */
static void test_ratelimit(void **st)
{
    mm_ratelimit *rl = NULL;
    assert_int_equal(mm_ratelimit_create(0.5, 3, 8, &rl, NULL), 0);
    for (int i = 0; i < 3; i++) assert_true(mm_ratelimit_take(rl, "ana", 100.0) == 0);
    double w = mm_ratelimit_take(rl, "ana", 100.0);
    assert_true(fabs(w - 2.0) < 1e-9);   /* one event per 2 s */
    assert_true(mm_ratelimit_take(rl, "bob", 100.0) == 0);
    assert_true(mm_ratelimit_take(rl, "ana", 101.0) > 0);
    assert_true(mm_ratelimit_take(rl, "ana", 102.0) == 0);
    assert_true(mm_ratelimit_take(rl, "ana", 50.0) > 0);   /* time going backwards earns nothing */
    /* 100 other keys, each spending one event: ana's and bob's buckets keep their limit while not full */
    char k[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "u%d", i);
        assert_true(mm_ratelimit_take(rl, k, 102.0) == 0);
    }
    mm_ratelimit_free(rl);
    mm_ratelimit_free(NULL);
    assert_int_not_equal(mm_ratelimit_create(0, 3, 8, &rl, NULL), 0);
    assert_int_not_equal(mm_ratelimit_create(1, 0.5, 8, &rl, NULL), 0);
}

/* ---- fixtures: bundle, library, server ---- */

static char dir[256];
static mm_bundle *g_speech;
static mm_library *g_lib;
static mm_va_table *g_va;
static mm_recommender *g_rec;
static mm_feedback *g_fb;
static mm_server *g_srv;
static int g_port;
static char g_ids[8][65];
static char g_paths[8][300];

static int write_wav(const char *path, int freq, double seconds, int variant)
{
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) return -1;
    size_t n = (size_t)(seconds * 16000);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.3f * sinf(6.2831853f * (float)(freq * (1.0 + 0.01 * variant)) * (float)i / 16000.f) +
               0.01f * (float)(((long)i * 7919 + variant * 104729) % 2001 - 1000) / 1000.f;
    sf_writef_float(f, x, (sf_count_t)n);
    sf_close(f);
    free(x);
    return 0;
}

/* The file's bytes (malloc'd, *n of them), or NULL with *n = 0. */
static uint8_t *slurp(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *b = NULL;
    long sz = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (sz >= 0 && (b = malloc((size_t)sz + 1))) {
        rewind(f);
        *n = fread(b, 1, (size_t)sz, f);
    }
    fclose(f);
    return b;
}

static int start_server(const mm_server_params *p, mm_server **out)
{
    mm_server_models m = {.speech = g_speech, .library = g_lib, .recommender = g_rec, .feedback = g_fb};
    mm_err e = {0};
    int rc = mm_server_start(p, &m, out, &e);
    if (rc) fprintf(stderr, "server: %s\n", e.msg);
    return rc;
}

static void test_params(mm_server_params *p)
{
    mm_server_params_default(p);
    p->port = 0;
    p->n_workers = 2;
    p->max_upload = 1 << 20;
    p->idle_timeout_s = 2;
    p->request_timeout_s = 3;
}

/* An experiment dir/<sub>exp.yaml over dir/<clips>/manifest.csv: logmel
 * statistics and a forest of `trees` named "forest", for `melodic export`. */
static void write_experiment(const char *sub, const char *clips, int trees)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%sexp.yaml", dir, sub);
    FILE *y = fopen(p, "w");
    fprintf(y, "name: srv\nseed: 1\ncache: %s/%scache\ndataset: {type: csv, manifest: %s/%s/manifest.csv}\n"
               "features: [{set: logmel_stats, params: {frontend: cnn14_16k}}]\n"
               "protocol: {kind: group_kfold, n_folds: 2}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: %d}}\n", dir, sub, dir, clips, trees);
    fclose(y);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_server_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s/clips %s/lib", dir, dir, dir);
    char p[512];
    snprintf(p, sizeof p, "%s/clips/manifest.csv", dir);
    FILE *m = fopen(p, "w");
    fputs("path,label,group\n", m);
    static const char *names[3] = {"happy", "sad", "angry"};
    static const int freqs[3] = {220, 880, 3520};
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 6; v++) {
            char w[512];
            snprintf(w, sizeof w, "%s/clips/%s%d.wav", dir, names[c], v);
            write_wav(w, freqs[c], 1.0, v);
            fprintf(m, "%s%d.wav,%s,%d\n", names[c], v, names[c], v);
        }
    fclose(m);
    write_experiment("", "clips", 10);
    if (tu_system("%s export %s/exp.yaml --model forest -o %s/speech.h5 -j 1 2>/dev/null", tu_bin(), dir, dir)) return -1;
    /* the same with per-speaker calibration from 2 clips (groups are the 6 variants) */
    if (tu_system("%s export %s/exp.yaml --model forest -o %s/speech_cal.h5 -j 1 "
                  "--set 'preprocessing={group_norm: {clips: 2}, scaler: standard}' 2>/dev/null", tu_bin(), dir, dir))
        return -1;
    mm_err e = {0};
    snprintf(p, sizeof p, "%s/speech.h5", dir);
    if (mm_bundle_open(p, NULL, 1, &g_speech, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    /* the library: 8 tracks, two per quadrant */
    const char *cls[4] = {"Q1", "Q2", "Q3", "Q4"};
    mm_va cva[4] = {{0.5f, 0.5f}, {-0.5f, 0.5f}, {-0.5f, -0.5f}, {0.5f, -0.5f}};
    mm_library_track tr[8];
    float proba[8][4], emb[8][3];
    char art[8][32], tit[8][32];
    for (int i = 0; i < 8; i++) {
        snprintf(g_paths[i], sizeof g_paths[i], "%s/lib/track%d.wav", dir, i);
        write_wav(g_paths[i], 300 + 100 * i, 0.5, i);
        if (mm_sha256_file(g_paths[i], g_ids[i], &e)) return -1;
        snprintf(art[i], sizeof art[i], "Artist %d", i % 5);
        snprintf(tit[i], sizeof tit[i], "Song %d", i);
        for (int k = 0; k < 4; k++) proba[i][k] = k == i / 2 ? 0.7f : 0.1f;
        for (int k = 0; k < 3; k++) emb[i][k] = (float)((i * 3 + k) % 5) - 2.f;
        tr[i] = (mm_library_track){.path = g_paths[i], .id = g_ids[i], .artist = art[i], .title = tit[i],
                                   .true_label = (char *)cls[i / 2], .size = 16044, .duration = 0.5,
                                   .proba = proba[i], .embedding = emb[i]};
    }
    if (mm_library_from_tracks(tr, 8, 4, cls, cva, 3, &g_lib, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    if (mm_va_table_load("configs/recommend/default.yaml", &g_va, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    const char *labels[3];
    for (int k = 0; k < 3; k++) labels[k] = mm_bundle_class_name(g_speech, k);
    if (mm_recommender_create(g_lib, g_va, labels, 3, &g_rec, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    snprintf(p, sizeof p, "%s/feedback.sqlite", dir);
    if (mm_feedback_open(p, &g_fb, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    mm_server_params sp;
    test_params(&sp);
    if (start_server(&sp, &g_srv)) return -1;
    g_port = mm_server_port(g_srv);
    return 0;
}

static int teardown(void **st)
{
    mm_server_stop(g_srv);
    mm_feedback_close(g_fb);
    mm_recommender_free(g_rec);
    mm_va_table_free(g_va);
    mm_library_free(g_lib);
    mm_bundle_free(g_speech);
    tu_system("rm -rf %s", dir);
    return 0;
}

/* ---- a minimal HTTP/1.1 client over a blocking socket ---- */

typedef struct resp {
    int status;
    char head[8192];
    uint8_t *body;
    size_t len;
} resp;

static int g_recv_timeout_s = 15;   /* how long a client waits for an answer */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { close(fd); return -1; }
    struct timeval tv = {g_recv_timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read a whole response (the server closes: requests say Connection: close). */
static int read_resp(int fd, resp *r)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    memset(r, 0, sizeof *r);
    uint8_t *sep = n >= 4 ? memmem(buf, n, "\r\n\r\n", 4) : NULL;
    if (!sep || sscanf((char *)buf, "HTTP/1.%*d %d", &r->status) != 1) { free(buf); r->status = -1; return -1; }
    size_t hl = (size_t)(sep - buf);
    if (hl >= sizeof r->head) hl = sizeof r->head - 1;
    memcpy(r->head, buf, hl);
    r->head[hl] = 0;
    r->len = n - (size_t)(sep + 4 - buf);
    r->body = malloc(r->len + 1);
    memcpy(r->body, sep + 4, r->len);
    r->body[r->len] = 0;
    free(buf);
    return 0;
}

static const char *header(const resp *r, const char *name, char *out, size_t size)
{
    const char *p = r->head;
    size_t nl = strlen(name);
    while ((p = strchr(p, '\n'))) {
        p++;
        if (!strncasecmp(p, name, nl) && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ') p++;
            size_t n = strcspn(p, "\r\n");
            if (n >= size) n = size - 1;
            memcpy(out, p, n);
            out[n] = 0;
            return out;
        }
    }
    return NULL;
}

/* A JSON answer must parse (jansson, strict): a server that printed NaN or
 * cut an object short fails here, whatever the test looks at next. */
static void check_json(const resp *r)
{
    char ct[128];
    if (r->status <= 0 || !r->len || !header(r, "Content-Type", ct, sizeof ct) || strncmp(ct, "application/json", 16))
        return;
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body, r->len, 0, &je);
    if (!j) fprintf(stderr, "invalid JSON (%s): %.300s\n", je.text, r->body);
    assert_non_null(j);
    json_decref(j);
}

/* Send raw request bytes, read the answer (the connection must close). */
static int raw_request(int port, const char *req, resp *r)
{
    int fd = connect_to(port);
    if (fd < 0) return -1;
    int rc = send_all(fd, req, strlen(req));
    if (!rc) rc = read_resp(fd, r);
    close(fd);
    if (!rc) check_json(r);
    return rc;
}

static int http(int port, const char *method, const char *path, const char *headers, const void *body, size_t blen,
                resp *r)
{
    int fd = connect_to(port);
    if (fd < 0) return -1;
    char h[4096];
    int hn = snprintf(h, sizeof h, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                      headers ? headers : "");
    if (body) hn += snprintf(h + hn, sizeof h - (size_t)hn, "Content-Length: %zu\r\n", blen);
    hn += snprintf(h + hn, sizeof h - (size_t)hn, "\r\n");
    int rc = send_all(fd, h, (size_t)hn);
    if (!rc && body && blen) rc = send_all(fd, body, blen);
    rc = read_resp(fd, r);
    close(fd);
    check_json(r);
    return rc;
}

static void resp_free(resp *r) { free(r->body); r->body = NULL; }

/* Status of a request, checking that error bodies are {"error": "..."} JSON. */
static int status_of(const char *method, const char *path, const char *headers, const void *body, size_t blen)
{
    resp r;
    if (http(g_port, method, path, headers, body, blen, &r)) return -1;
    int s = r.status;
    if (s >= 400 && strcmp(method, "HEAD")) {
        if (!strstr((char *)r.body, "{\"error\":")) fprintf(stderr, "%s %s → %d body: %s\n", method, path, s, r.body);
        assert_non_null(strstr((char *)r.body, "{\"error\":"));
    }
    resp_free(&r);
    return s;
}

static void assert_healthy(void)
{
    resp r;
    assert_int_equal(http(g_port, "GET", "/api/health", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((char *)r.body, "\"status\":\"ok\""));
    resp_free(&r);
}

static uint8_t *clip(const char *name, int freq, double seconds, size_t *n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s.wav", dir, name);
    write_wav(p, freq, seconds, 1);
    return slurp(p, n);
}

/* ---- endpoints ---- */

static void test_health_and_tracks(void **st)
{
    resp r;
    assert_int_equal(http(g_port, "GET", "/api/health", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_non_null(header(&r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/json");
    assert_non_null(strstr((char *)r.body, "\"tracks\":8"));
    assert_non_null(strstr((char *)r.body, "\"speech_labels\":[\""));
    assert_non_null(strstr((char *)r.body, "\"happy\""));
    assert_non_null(strstr((char *)r.body, "\"angry\""));
    assert_non_null(strstr((char *)r.body, "\"music_labels\":[\"Q1\",\"Q2\",\"Q3\",\"Q4\"]"));
    resp_free(&r);
    assert_int_equal(http(g_port, "GET", "/api/tracks?offset=6&limit=5", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((char *)r.body, "\"total\":8"));
    assert_non_null(strstr((char *)r.body, g_ids[6]));
    assert_non_null(strstr((char *)r.body, g_ids[7]));
    assert_null(strstr((char *)r.body, g_ids[5]));
    assert_non_null(strstr((char *)r.body, "\"proba\":{\"Q1\":"));
    assert_non_null(strstr((char *)r.body, "\"valence\":"));
    resp_free(&r);
    assert_int_equal(status_of("GET", "/api/tracks?limit=0", NULL, NULL, 0), 400);
    assert_int_equal(status_of("GET", "/api/tracks?offset=-1", NULL, NULL, 0), 400);
    assert_int_equal(status_of("GET", "/api/tracks?offset=abc", NULL, NULL, 0), 400);
    assert_int_equal(status_of("GET", "/api/tracks?offset=100", NULL, NULL, 0), 200);
}

static void test_page(void **st)
{
    resp r;
    const char *urls[3] = {"/", "/app.js", "/style.css"}, *types[3] = {"text/html", "text/javascript", "text/css"};
    const char *needles[3] = {"<html", "getUserMedia", "--accent"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(http(g_port, "GET", urls[i], NULL, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        char ct[128];
        assert_non_null(header(&r, "Content-Type", ct, sizeof ct));
        assert_true(!strncmp(ct, types[i], strlen(types[i])));
        assert_non_null(strstr((char *)r.body, needles[i]));
        /* offline: nothing loaded from other hosts (the SVG namespace URI is only a name) */
        const char *remote[] = {"src=\"http", "href=\"http", "src=\"//", "href=\"//", "url(", "@import", "fetch('http"};
        for (size_t k = 0; k < sizeof remote / sizeof *remote; k++) assert_null(strstr((char *)r.body, remote[k]));
        resp_free(&r);
    }
    assert_int_equal(http(g_port, "HEAD", "/", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    resp_free(&r);
}

static double json_num(const char *body, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(body, k);
    return p ? atof(p + strlen(k)) : NAN;
}

static void test_emotion_raw_and_multipart(void **st)
{
    size_t n = 0;
    uint8_t *wav = clip("sad_probe", 880, 1.2, &n);
    resp r;
    assert_int_equal(http(g_port, "POST", "/api/emotion", "Content-Type: audio/wav\r\n", wav, n, &r), 0);
    assert_int_equal(r.status, 200);
    char *raw = strdup((char *)r.body);
    assert_non_null(strstr(raw, "\"emotion\":\"sad\""));
    assert_non_null(strstr(raw, "\"proba\":{\""));
    assert_non_null(strstr(raw, "\"happy\":"));
    assert_true(fabs(json_num(raw, "duration_s") - 1.2) < 1e-3);
    assert_true(json_num(raw, "ms") >= 0);
    assert_true(fabs(json_num(raw, "valence")) <= 1 && fabs(json_num(raw, "arousal")) <= 1);
    resp_free(&r);
    /* no Content-Type at all is taken as raw audio too */
    assert_int_equal(http(g_port, "POST", "/api/emotion", NULL, wav, n, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* multipart with another field first: same probabilities */
    const char *pre = "--b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
                      "--b0undary\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"v.wav\"\r\n"
                      "Content-Type: audio/wav\r\n\r\n";
    const char *post = "\r\n--b0undary--\r\n";
    size_t mn = strlen(pre) + n + strlen(post);
    uint8_t *mp = malloc(mn);
    memcpy(mp, pre, strlen(pre));
    memcpy(mp + strlen(pre), wav, n);
    memcpy(mp + strlen(pre) + n, post, strlen(post));
    assert_int_equal(http(g_port, "POST", "/api/emotion", "Content-Type: multipart/form-data; boundary=b0undary\r\n", mp, mn, &r), 0);
    assert_int_equal(r.status, 200);
    const char *a = strstr(raw, "\"proba\":"), *b = strstr((char *)r.body, "\"proba\":");
    assert_true(a && b && !strncmp(a, b, (size_t)(strstr(a, "}") - a)));
    resp_free(&r);
    /* multipart errors: no boundary, no 'audio' field, a text part */
    assert_int_equal(status_of("POST", "/api/emotion", "Content-Type: multipart/form-data\r\n", mp, mn), 400);
    assert_int_equal(status_of("POST", "/api/emotion", "Content-Type: multipart/form-data; boundary=other\r\n", mp, mn), 400);
    const char *txt = "--b\r\nContent-Disposition: form-data; name=\"audio\"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
    assert_int_equal(status_of("POST", "/api/emotion", "Content-Type: multipart/form-data; boundary=b\r\n", txt, strlen(txt)), 415);
    const char *nof = "--b\r\nContent-Disposition: form-data; name=\"voice\"\r\n\r\nhi\r\n--b--\r\n";
    assert_int_equal(status_of("POST", "/api/emotion", "Content-Type: multipart/form-data; boundary=b\r\n", nof, strlen(nof)), 400);
    free(mp);
    free(raw);
    free(wav);
}

static void test_recommend(void **st)
{
    size_t n = 0;
    uint8_t *wav = clip("happy_probe", 220, 1.0, &n);
    resp r;
    assert_int_equal(http(g_port, "POST", "/api/recommend?n=3&policy=regulate&user=alice", "Content-Type: audio/wav\r\n", wav, n, &r), 0);
    assert_int_equal(r.status, 200);
    const char *b = (char *)r.body;
    assert_non_null(strstr(b, "\"emotion\":"));
    assert_non_null(strstr(b, "\"policy\":\"regulate\""));
    assert_non_null(strstr(b, "\"tracks\":[{"));
    assert_non_null(strstr(b, "\"reason\":\""));
    int count = 0;
    for (const char *p = b; (p = strstr(p, "\"reason\":")); p++) count++;
    assert_true(count >= 1 && count <= 3);
    resp_free(&r);
    assert_int_equal(http(g_port, "POST", "/api/recommend", "Content-Type: audio/wav\r\n", wav, n, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((char *)r.body, "\"policy\":\"match\""));
    resp_free(&r);
    assert_int_equal(status_of("POST", "/api/recommend?policy=random", "Content-Type: audio/wav\r\n", wav, n), 400);
    assert_int_equal(status_of("POST", "/api/recommend?n=0", "Content-Type: audio/wav\r\n", wav, n), 400);
    assert_int_equal(status_of("POST", "/api/recommend?n=1e3", "Content-Type: audio/wav\r\n", wav, n), 400);
    assert_int_equal(status_of("POST", "/api/recommend?user=a%20b", "Content-Type: audio/wav\r\n", wav, n), 400);
    free(wav);
}

/* Per-user calibration: the calibrated bundle answers once the user has 2
 * earlier clips; its probabilities are those of mm_bundle_predict with the
 * user's two previous uploads as history; other users stay uncalibrated. */
static void test_calibration(void **st)
{
    char p[512];
    mm_err e = {0};
    mm_bundle *cal = NULL;
    snprintf(p, sizeof p, "%s/speech_cal.h5", dir);
    assert_int_equal(mm_bundle_open(p, NULL, 1, &cal, &e), 0);
    assert_int_equal(mm_bundle_calibration_clips(cal), 2);
    assert_int_equal(mm_bundle_calibration_clips(g_speech), 0);
    float proba[3];
    size_t n[3];
    uint8_t *wav[3] = {clip("cal_a", 230, 1.0, &n[0]), clip("cal_b", 3000, 1.0, &n[1]), clip("cal_c", 1500, 1.0, &n[2])};
    for (int i = 0; i < 3; i++) assert_non_null(wav[i]);
    /* export refuses group_norm: true (the runtime calibrates with K earlier clips, never with the clip itself) */
    assert_int_equal(tu_system("%s export %s/exp.yaml --model forest -o %s/never.h5 --set 'preprocessing={group_norm: true}' 2> %s/gn.err",
                               tu_bin(), dir, dir, dir), 1);
    assert_int_equal(tu_system("grep -q 'clips: K' %s/gn.err && test ! -e %s/never.h5", dir, dir), 0);
    /* a calibrated bundle refuses to classify without history */
    assert_int_equal(mm_bundle_classify_memory(cal, wav[0], n[0], "a.wav", proba, NULL, NULL, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "calibration"));
    /* start errors: an ordinary bundle as the calibrated one; no feedback store */
    mm_server_params sp;
    test_params(&sp);
    mm_server *srv = NULL;
    mm_server_models m = {.speech = g_speech, .speech_calibrated = g_speech, .library = g_lib, .recommender = g_rec, .feedback = g_fb};
    assert_int_equal(mm_server_start(&sp, &m, &srv, &e), MM_EINVAL);
    m.speech = cal, m.speech_calibrated = NULL;   /* a calibrated bundle cannot answer alone */
    assert_int_equal(mm_server_start(&sp, &m, &srv, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "--speech-calibrated"));
    m.speech = g_speech;
    m.speech_calibrated = cal, m.feedback = NULL;
    assert_int_equal(mm_server_start(&sp, &m, &srv, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "--db"));
    m.feedback = g_fb;
    assert_int_equal(mm_server_start(&sp, &m, &srv, &e), 0);
    int port = mm_server_port(srv);
    /* the status describes each answer: earlier clips it could use, calibrated iff enough */
    static const char *want[3] = {"\"calibrated\":false,\"clips\":0,\"needed\":2",
                                  "\"calibrated\":false,\"clips\":1,\"needed\":2",
                                  "\"calibrated\":true,\"clips\":2,\"needed\":2"};
    for (int i = 0; i < 3; i++) {
        resp r;
        assert_int_equal(http(port, "POST", "/api/recommend?n=2&user=carol", "Content-Type: audio/wav\r\n", wav[i], n[i], &r), 0);
        assert_int_equal(r.status, 200);
        if (!strstr((char *)r.body, want[i])) fprintf(stderr, "upload %d: %s\n", i, (char *)r.body);
        assert_non_null(strstr((char *)r.body, want[i]));
        if (i == 2) {   /* the answer is the calibrated bundle's, with the two earlier clips as history */
            size_t d = mm_bundle_dim(cal);
            float *raw = malloc(3 * d * sizeof *raw);
            for (int j = 0; j < 3; j++) assert_int_equal(mm_bundle_features_memory(cal, wav[j], n[j], "x.wav", raw + (size_t)j * d, NULL, &e), 0);
            /* history order in the store is newest first: b, a */
            float *hist = malloc(2 * d * sizeof *hist);
            memcpy(hist, raw + d, d * sizeof *raw);
            memcpy(hist + d, raw, d * sizeof *raw);
            assert_int_equal(mm_bundle_predict(cal, raw + 2 * d, hist, 2, proba, NULL, &e), 0);
            /* the history matters: calibrated with clip b twice the answer differs */
            float other[3];
            memcpy(hist + d, raw + d, d * sizeof *raw);
            assert_int_equal(mm_bundle_predict(cal, raw + 2 * d, hist, 2, other, NULL, &e), 0);
            double diff = 0;
            for (int k = 0; k < 3; k++) diff += fabs(other[k] - proba[k]);
            printf("# another history moves the probabilities by %.3f\n", diff);
            assert_true(diff > 0.05);
            free(hist);
            for (int k = 0; k < 3; k++) {
                char key[32];
                snprintf(key, sizeof key, "%.20s", mm_bundle_class_name(cal, k));
                double got = json_num(strstr((char *)r.body, "\"proba\":"), key);
                printf("# calibrated %s: server %.6f, direct %.6f\n", key, got, (double)proba[k]);
                assert_true(fabs(got - proba[k]) < 1e-5);
            }
            free(raw);
        }
        resp_free(&r);
    }
    /* another user starts from zero; no user: no calibration object */
    resp r;
    assert_int_equal(http(port, "POST", "/api/recommend?n=2&user=dave", "Content-Type: audio/wav\r\n", wav[2], n[2], &r), 0);
    assert_non_null(strstr((char *)r.body, want[0]));
    resp_free(&r);
    assert_int_equal(http(port, "POST", "/api/recommend?n=2", "Content-Type: audio/wav\r\n", wav[2], n[2], &r), 0);
    assert_null(strstr((char *)r.body, "calibration"));
    resp_free(&r);
    mm_server_stop(srv);
    /* the store keeps each user's newest clips across reopen: carol has 2 (the third pushed out the first) */
    size_t k = 0, d = mm_bundle_dim(cal);
    float *h = malloc(4 * d * sizeof *h);
    const char *pid = mm_bundle_pipeline_id(cal);
    assert_int_equal(strlen(pid), 64);
    assert_string_equal(pid, mm_bundle_pipeline_id(g_speech));   /* same features and audio settings */
    assert_int_equal(mm_feedback_calib_get(g_fb, "carol", pid, d, 4, h, &k, &e), 0);
    assert_int_equal(k, 2);
    assert_int_equal(mm_feedback_calib_get(g_fb, "carol", "another-pipeline", d, 4, h, &k, &e), 0);
    assert_int_equal(k, 0);   /* clips of another feature pipeline are not mixed in */
    assert_int_equal(mm_feedback_calib_get(g_fb, "carol", pid, d + 1, 4, h, &k, &e), 0);
    assert_int_equal(k, 0);   /* nor rows of another size */
    free(h);
    /* melodic classify: a calibrated bundle needs --calibrate; with it, one line per clip */
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/cal_a.wav", dir), snprintf(b, sizeof b, "%s/cal_b.wav", dir), snprintf(c, sizeof c, "%s/cal_c.wav", dir);
    assert_int_equal(tu_system("%s classify %s %s %s 2>/dev/null", tu_bin(), p, a, b), 2);
    assert_int_equal(tu_system("%s classify %s --calibrate %s 2>/dev/null", tu_bin(), p, a), 1);
    assert_int_equal(tu_system("%s classify %s --calibrate %s %s %s > %s/cal.txt 2>/dev/null", tu_bin(), p, a, b, c, dir), 0);
    assert_int_equal(tu_system("test $(wc -l < %s/cal.txt) -eq 3", dir), 0);
    /* an unreadable clip is named and fails the command, the others are still classified */
    assert_int_equal(tu_system("%s classify %s --calibrate %s %s %s %s/nothere.wav > %s/cal.txt 2> %s/cal.err", tu_bin(), p, a, b, c, dir, dir, dir), 1);
    assert_int_equal(tu_system("test $(wc -l < %s/cal.txt) -eq 3 && grep -q nothere %s/cal.err", dir, dir), 0);
    for (int i = 0; i < 3; i++) free(wav[i]);
    mm_bundle_free(cal);
}

/* augment: speed-perturbed copies join training only: the same for 1 and 2
 * threads, flagged, test rows unchanged in number, results changed; a table
 * config or a bad factor is refused naming the key; export accepts it. */
static void test_augment(void **st)
{
    (void)st;
    const char *aug = "--set 'augment={speed: [0.8, 1.25]}'";
    for (int j = 1; j <= 2; j++)
        assert_int_equal(tu_system("%s run %s/exp.yaml -o %s/aug%d -j %d --quiet %s 2>/dev/null", tu_bin(), dir, dir, j, j, aug), 0);
    assert_int_equal(tu_system("%s run %s/exp.yaml -o %s/noaug -j 1 --quiet 2>/dev/null", tu_bin(), dir, dir), 0);
    assert_int_equal(tu_system("grep -q 'Augmentation.*speed 0.8, 1.25' %s/aug1/summary.md", dir), 0);
    char p[600];
    mm_err e = {0};
    float *a[3];
    hsize_t dm[3][4];
    const char *runs[3] = {"aug1", "aug2", "noaug"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s/results.h5", dir, runs[i]);
        hid_t f;
        int r;
        assert_int_equal(mm_h5_open_read(p, &f, &e), 0);
        assert_int_equal(mm_h5_read_f32(f, "models/forest/folds/0/proba", 2, &a[i], &r, dm[i], &e), 0);
        mm_h5_close(f);
    }
    assert_int_equal(dm[0][0], dm[2][0]);   /* the same test rows, not their copies */
    assert_memory_equal(a[0], a[1], dm[0][0] * dm[0][1] * sizeof(float));
    assert_memory_not_equal(a[0], a[2], dm[0][0] * dm[0][1] * sizeof(float));
    for (int i = 0; i < 3; i++) free(a[i]);
    assert_int_equal(tu_system("%s run %s/exp.yaml -o %s/augbad --quiet --set 'augment={speed: [3]}' 2> %s/aug.err", tu_bin(), dir, dir, dir), 1);
    assert_int_equal(tu_system("grep -q 'augment.speed factor 3' %s/aug.err", dir), 0);
    assert_int_equal(tu_system("%s export %s/exp.yaml --model forest -o %s/aug.h5 %s 2>/dev/null", tu_bin(), dir, dir, aug), 0);
}

static void test_track_audio_ranges(void **st)
{
    size_t n = 0;
    uint8_t *file = slurp(g_paths[3], &n);
    char url[400], h[128];
    snprintf(url, sizeof url, "/api/tracks/%s/audio", g_ids[3]);
    resp r;
    assert_int_equal(http(g_port, "GET", url, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.body, file, n);
    assert_string_equal(header(&r, "Content-Type", h, sizeof h), "audio/wav");
    assert_string_equal(header(&r, "Accept-Ranges", h, sizeof h), "bytes");
    resp_free(&r);
    assert_int_equal(http(g_port, "GET", url, "Range: bytes=10-19\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.len, 10);
    assert_memory_equal(r.body, file + 10, 10);
    char want[64];
    snprintf(want, sizeof want, "bytes 10-19/%zu", n);
    assert_string_equal(header(&r, "Content-Range", h, sizeof h), want);
    resp_free(&r);
    assert_int_equal(http(g_port, "GET", url, "Range: bytes=-4\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.body, file + n - 4, 4);
    resp_free(&r);
    char rh[64];
    snprintf(rh, sizeof rh, "Range: bytes=%zu-\r\n", n);
    assert_int_equal(http(g_port, "GET", url, rh, NULL, 0, &r), 0);
    assert_int_equal(r.status, 416);
    snprintf(want, sizeof want, "bytes */%zu", n);
    assert_string_equal(header(&r, "Content-Range", h, sizeof h), want);
    resp_free(&r);
    /* a list of ranges is answered with the whole file */
    assert_int_equal(http(g_port, "GET", url, "Range: bytes=0-1,4-5\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, n);
    resp_free(&r);
    /* ids only: unknown ids, paths, traversal */
    assert_int_equal(status_of("GET", "/api/tracks/0000000000000000000000000000000000000000000000000000000000000000/audio", NULL, NULL, 0), 404);
    snprintf(url, sizeof url, "/api/tracks/%s/audio", g_paths[3]);
    assert_int_equal(status_of("GET", url, NULL, NULL, 0), 404);
    assert_int_equal(status_of("GET", "/api/tracks/..%2F..%2Fetc%2Fpasswd/audio", NULL, NULL, 0), 404);
    assert_int_equal(status_of("GET", "/api/tracks/../../../etc/passwd", NULL, NULL, 0), 404);
    free(file);
}

static void test_feedback(void **st)
{
    char body[600];
    const char *json = "Content-Type: application/json\r\n";
    snprintf(body, sizeof body, "{\"user\":\"carol\",\"track\":\"%s\",\"signal\":\"dislike\"}", g_ids[0]);
    resp r;
    assert_int_equal(http(g_port, "POST", "/api/feedback", json, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    snprintf(body, sizeof body, "{\"user\":\"carol\",\"track\":\"%s\",\"signal\":\"like\"}", g_ids[1]);
    assert_int_equal(status_of("POST", "/api/feedback", json, body, strlen(body)), 204);
    snprintf(body, sizeof body, "{\"user\":\"carol\",\"track\":\"%s\",\"signal\":\"skip\"}", g_ids[2]);
    assert_int_equal(status_of("POST", "/api/feedback", json, body, strlen(body)), 204);
    snprintf(body, sizeof body, "{\"user\":\"carol\",\"track\":\"%s\",\"signal\":\"love\"}", g_ids[1]);
    assert_int_equal(status_of("POST", "/api/feedback", json, body, strlen(body)), 400);
    snprintf(body, sizeof body, "{\"user\":\"carol\",\"track\":\"%s\",\"signal\":\"like\"}", g_paths[1]);
    assert_int_equal(status_of("POST", "/api/feedback", json, body, strlen(body)), 400);
    snprintf(body, sizeof body, "{\"user\":\"carol\",\"track\":\"%064d\",\"signal\":\"like\"}", 0);
    assert_int_equal(status_of("POST", "/api/feedback", json, body, strlen(body)), 404);
    snprintf(body, sizeof body, "{\"user\":\"x'); DROP TABLE events;--\",\"track\":\"%s\",\"signal\":\"like\"}", g_ids[1]);
    assert_int_equal(status_of("POST", "/api/feedback", json, body, strlen(body)), 400);
    assert_int_equal(status_of("POST", "/api/feedback", json, "{\"user\":", 8), 400);
    assert_int_equal(status_of("POST", "/api/feedback", json, "[1,2]", 5), 400);
    assert_int_equal(status_of("POST", "/api/feedback", json, "", 0), 400);
    assert_int_equal(status_of("POST", "/api/feedback", "Content-Type: text/plain\r\n", "{}", 2), 415);
    /* the disliked track never comes back for carol */
    size_t n = 0;
    uint8_t *wav = clip("carol", 220, 1.0, &n);
    for (int pol = 0; pol < 2; pol++) {
        assert_int_equal(http(g_port, "POST", pol ? "/api/recommend?n=8&user=carol&policy=regulate" : "/api/recommend?n=8&user=carol",
                              "Content-Type: audio/wav\r\n", wav, n, &r), 0);
        assert_int_equal(r.status, 200);
        assert_null(strstr((char *)r.body, g_ids[0]));
        resp_free(&r);
    }
    free(wav);
}

/* The ids of an answer's "tracks" into ids (up to max, 65 bytes each); their number. */
static size_t answer_ids(const resp *r, char ids[][65], size_t max)
{
    json_t *j = json_loadb((const char *)r->body, r->len, 0, NULL);
    json_t *arr = json_object_get(j, "tracks");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < max; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(arr, i), "id"));
        assert_non_null(id);
        assert_true(json_is_real(json_object_get(json_array_get(arr, i), "segment_start")));
        snprintf(ids[n++], 65, "%s", id);
    }
    json_decref(j);
    return n;
}

/* Issue 17: with user=ID the store keeps what was recommended and asking
 * again brings new tracks (a 400-track library, 10 requests of 10 with the
 * same clip: at least 80 distinct), for the default parameters and for
 * `melodic serve`'s variety settings; without a user the answer is the
 * recommender's own for the configured seed, every time. GET
 * /api/tracks/{id} returns a track's trajectory and segment start. */
static void test_variety(void **st)
{
    enum { N = 400, ASKS = 10, PER = 10 };
    const char *cls[4] = {"Q1", "Q2", "Q3", "Q4"};
    mm_va cva[4] = {{0.5f, 0.5f}, {-0.5f, 0.5f}, {-0.5f, -0.5f}, {0.5f, -0.5f}};
    mm_library_track *tr = calloc(N, sizeof *tr);
    float(*proba)[4] = calloc(N, sizeof *proba), (*emb)[3] = calloc(N, sizeof *emb);
    char(*ids)[65] = calloc(N, sizeof *ids), (*art)[32] = calloc(N, sizeof *art), (*tit)[32] = calloc(N, sizeof *tit);
    mm_va traj[3] = {{0.1f, 0.2f}, {0.3f, -0.4f}, {-0.5f, 0.6f}};
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], 65, "%056x%08x", 0xabcu, (unsigned)i);
        snprintf(art[i], sizeof art[i], "Artist %d", i % 37);
        snprintf(tit[i], sizeof tit[i], "Song %d", i);
        for (int k = 0; k < 4; k++) proba[i][k] = k == i % 4 ? 0.4f + 0.5f * (float)((i * 7919) % 101) / 100.f : 0.1f;
        for (int k = 0; k < 3; k++) emb[i][k] = (float)((i * 31 + k * 17) % 23) - 11.f;
        tr[i] = (mm_library_track){.path = g_paths[i % 8], .id = ids[i], .artist = art[i], .title = tit[i],
                                   .true_label = "", .size = 16044, .duration = 30,
                                   .proba = proba[i], .embedding = emb[i]};
        if (i == 5) tr[i].trajectory = traj, tr[i].n_windows = 3, tr[i].segment_start = 12.5;
    }
    mm_err e = {0};
    mm_library *lib = NULL;
    mm_recommender *rec = NULL;
    mm_feedback *fb = NULL;
    if (mm_library_from_tracks(tr, N, 4, cls, cva, 3, &lib, &e)) fprintf(stderr, "%s\n", e.msg);
    assert_non_null(lib);
    const char *labels[3];
    for (int k = 0; k < 3; k++) labels[k] = mm_bundle_class_name(g_speech, k);
    assert_int_equal(mm_recommender_create(lib, g_va, labels, 3, &rec, &e), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/variety.sqlite", dir);
    assert_int_equal(mm_feedback_open(p, &fb, &e), 0);
    size_t n = 0;
    uint8_t *wav = clip("variety", 220, 1.0, &n);
    float sp[3];
    assert_true(mm_bundle_classify_memory(g_speech, wav, n, "v.wav", sp, NULL, NULL, &e) >= 0);
    char(*got)[65] = calloc(ASKS * PER, sizeof *got);
    for (int setting = 0; setting < 2; setting++) {   /* defaults; melodic serve's configs/recommend */
        mm_server_params sprm;
        test_params(&sprm);
        if (setting == 1) {
            mm_cfg *cfg = NULL;
            assert_int_equal(mm_cfg_load_file("configs/recommend/default.yaml", &cfg, &e), 0);
            assert_int_equal(mm_recommend_params_from_cfg(mm_cfg_child(cfg, "recommend"), g_va, &sprm.rec, &e), 0);
            mm_cfg_free(cfg);
        }
        mm_server_models m = {.speech = g_speech, .library = lib, .recommender = rec, .feedback = fb};
        mm_server *s = NULL;
        assert_int_equal(mm_server_start(&sprm, &m, &s, &e), 0);
        int port = mm_server_port(s);
        char url[128];
        snprintf(url, sizeof url, "/api/recommend?n=%d&user=viv%d", PER, setting);
        size_t total = 0;
        for (int a = 0; a < ASKS; a++) {
            resp r;
            assert_int_equal(http(port, "POST", url, "Content-Type: audio/wav\r\n", wav, n, &r), 0);
            assert_int_equal(r.status, 200);
            total += answer_ids(&r, got + total, PER);
            resp_free(&r);
        }
        size_t distinct = 0;
        for (size_t i = 0; i < total; i++) {
            size_t k = 0;
            while (k < i && strcmp(got[k], got[i])) k++;
            distinct += k == i;
        }
        printf("# one user, %d requests of %d with the same clip (%s): %zu tracks, %zu distinct\n", ASKS, PER,
               setting ? "configs/recommend" : "defaults", total, distinct);
        assert_int_equal(total, ASKS * PER);
        assert_true(distinct >= 80);
        /* the store has them, newest first, and counted the answers */
        char user[16];
        snprintf(user, sizeof user, "viv%d", setting);
        mm_feedback_recent_list rl;
        assert_int_equal(mm_feedback_recent(fb, user, 1000, &rl, &e), 0);
        assert_int_equal(rl.n, ASKS * PER);
        assert_int_equal(rl.answers, ASKS);
        assert_string_equal(rl.track_ids[0], got[total - 1]);
        assert_string_equal(rl.track_ids[rl.n - 1], got[0]);
        mm_feedback_recent_free(&rl);
        /* without a user: the recommender's answer for the configured seed, unchanged by requests, nothing stored */
        mm_rec_result want;
        mm_recommend_params rp = sprm.rec;
        rp.n = PER;
        assert_int_equal(mm_recommend(rec, sp, &rp, fb, &want, &e), 0);
        for (int a = 0; a < 3; a++) {
            resp r;
            char one[PER][65];
            assert_int_equal(http(port, "POST", "/api/recommend?n=10", "Content-Type: audio/wav\r\n", wav, n, &r), 0);
            assert_int_equal(r.status, 200);
            assert_int_equal(answer_ids(&r, one, PER), want.n);
            for (size_t i = 0; i < want.n; i++) assert_string_equal(one[i], ids[want.items[i].track]);
            resp_free(&r);
        }
        mm_rec_result_free(&want);
        mm_server_stop(s);
    }
    /* GET /api/tracks/{id}: the trajectory, one [valence, arousal] per window, and the segment start */
    mm_server_params sprm;
    test_params(&sprm);
    mm_server_models m = {.speech = g_speech, .library = lib, .recommender = rec, .feedback = fb};
    mm_server *s = NULL;
    assert_int_equal(mm_server_start(&sprm, &m, &s, &e), 0);
    resp r;
    snprintf(p, sizeof p, "/api/tracks/%s", ids[5]);
    assert_int_equal(http(mm_server_port(s), "GET", p, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loadb((const char *)r.body, r.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "id")), ids[5]);
    assert_true(fabs(json_real_value(json_object_get(j, "segment_start")) - 12.5) < 1e-9);
    assert_true(json_is_number(json_object_get(j, "window_s")) && json_is_number(json_object_get(j, "hop_s")));
    json_t *t = json_object_get(j, "trajectory");
    assert_int_equal(json_array_size(t), 3);
    for (int w = 0; w < 3; w++) {
        assert_true(fabs(json_real_value(json_array_get(json_array_get(t, w), 0)) - traj[w].valence) < 1e-6);
        assert_true(fabs(json_real_value(json_array_get(json_array_get(t, w), 1)) - traj[w].arousal) < 1e-6);
    }
    assert_non_null(json_object_get(j, "proba"));
    json_decref(j);
    resp_free(&r);
    mm_server_stop(s);
    free(got);
    free(wav);
    mm_feedback_close(fb);
    mm_recommender_free(rec);
    mm_library_free(lib);
    free(tr), free(proba), free(emb), free(ids), free(art), free(tit);
}

/* GET /api/tracks/{id} on a library indexed without windows: an empty
 * trajectory, segment start 0; unknown or malformed ids 404, POST 405. */
static void test_track_info(void **st)
{
    char url[200];
    snprintf(url, sizeof url, "/api/tracks/%s", g_ids[2]);
    resp r;
    assert_int_equal(http(g_port, "GET", url, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((char *)r.body, "\"trajectory\":[]"));
    assert_non_null(strstr((char *)r.body, "\"window_s\":0"));
    assert_non_null(strstr((char *)r.body, "\"segment_start\":0"));
    assert_non_null(strstr((char *)r.body, g_ids[2]));
    resp_free(&r);
    assert_int_equal(status_of("GET", "/api/tracks/0000000000000000000000000000000000000000000000000000000000000000", NULL, NULL, 0), 404);
    assert_int_equal(status_of("GET", "/api/tracks/abc", NULL, NULL, 0), 404);
    snprintf(url, sizeof url, "/api/tracks/%s/", g_ids[2]);
    assert_int_equal(status_of("GET", url, NULL, NULL, 0), 404);
    snprintf(url, sizeof url, "/api/tracks/%s", g_ids[2]);
    assert_int_equal(status_of("POST", url, "Content-Type: audio/wav\r\n", "x", 1), 405);
}

static void test_error_codes(void **st)
{
    const char *wavct = "Content-Type: audio/wav\r\n";
    assert_int_equal(status_of("GET", "/nothing/here", NULL, NULL, 0), 404);
    assert_int_equal(status_of("GET", "/api/health", NULL, "a body", 6), 200);   /* a GET body is ignored */
    assert_int_equal(status_of("POST", "/api/emotion", "Content-Type: text/html\r\n", "<p>", 3), 415);
    assert_int_equal(status_of("GET", "/api/healthz", NULL, NULL, 0), 404);
    assert_int_equal(status_of("GET", "/api/emotion", NULL, NULL, 0), 405);
    assert_int_equal(status_of("DELETE", "/api/health", NULL, NULL, 0), 405);
    assert_int_equal(status_of("PUT", "/api/recommend", wavct, "x", 1), 405);
    resp r;
    assert_int_equal(http(g_port, "POST", "/api/health", NULL, "x", 1, &r), 0);
    assert_int_equal(r.status, 405);
    char h[64];
    assert_string_equal(header(&r, "Allow", h, sizeof h), "GET, HEAD");
    resp_free(&r);
    /* 415: not audio */
    assert_int_equal(status_of("POST", "/api/emotion", "Content-Type: text/plain\r\n", "hello", 5), 415);
    assert_int_equal(status_of("POST", "/api/recommend", "Content-Type: application/json\r\n", "{}", 2), 415);
    /* 400: empty, garbage, truncated, too short */
    assert_int_equal(status_of("POST", "/api/emotion", wavct, "", 0), 400);
    uint8_t junk[5000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(status_of("POST", "/api/emotion", wavct, junk, sizeof junk), 400);
    size_t n = 0;
    uint8_t *wav = clip("trunc", 880, 1.0, &n);
    assert_int_equal(status_of("POST", "/api/emotion", wavct, wav, 40), 400);
    assert_int_equal(status_of("POST", "/api/recommend", wavct, wav, 60), 400);
    free(wav);
    wav = clip("short", 880, 0.2, &n);
    resp rs;
    assert_int_equal(http(g_port, "POST", "/api/emotion", wavct, wav, n, &rs), 0);
    assert_int_equal(rs.status, 400);
    assert_non_null(strstr((char *)rs.body, "too short"));
    resp_free(&rs);
    free(wav);
    assert_healthy();
}

/* 413: a declared length over the limit is refused before the body is sent
 * (as a client using Expect: 100-continue sees it); a chunked body that
 * grows over the limit is refused once it is in. */
static void test_oversize(void **st)
{
    int fd = connect_to(g_port);
    assert_true(fd >= 0);
    const char *h = "POST /api/emotion HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nExpect: 100-continue\r\n"
                    "Content-Length: 50000000\r\nConnection: close\r\n\r\n";
    assert_int_equal(send_all(fd, h, strlen(h)), 0);
    resp r;
    assert_int_equal(read_resp(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr((char *)r.body, "over the limit"));
    resp_free(&r);
    /* the same without Expect, body following at once */
    size_t big = (1 << 20) + 10;
    uint8_t *b = calloc(1, big);
    assert_int_equal(status_of("POST", "/api/recommend", "Content-Type: audio/wav\r\n", b, big), 413);
    /* chunked */
    fd = connect_to(g_port);
    h = "POST /api/emotion HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n";
    assert_int_equal(send_all(fd, h, strlen(h)), 0);
    char ch[32];
    for (int i = 0; i < 5; i++) {
        snprintf(ch, sizeof ch, "%x\r\n", 300000);
        assert_int_equal(send_all(fd, ch, strlen(ch)), 0);
        assert_int_equal(send_all(fd, b, 300000), 0);
        assert_int_equal(send_all(fd, "\r\n", 2), 0);
    }
    assert_int_equal(send_all(fd, "0\r\n\r\n", 5), 0);
    assert_int_equal(read_resp(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(b);
    assert_healthy();
}

/* A client that sends part of its headers and stops, and one that trickles
 * its body: both are cut off by the timeouts while others are served. */
static void test_slow_clients(void **st)
{
    int fd = connect_to(g_port);
    assert_true(fd >= 0);
    assert_int_equal(send_all(fd, "GET /api/health HTTP/1.1\r\nHost:", 31), 0);
    int fd2 = connect_to(g_port);
    const char *h = "POST /api/emotion HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 1000\r\n\r\n";
    assert_int_equal(send_all(fd2, h, strlen(h)), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_healthy();   /* served meanwhile */
    /* trickle 10 bytes every 0.5 s: the 3 s request deadline drops it */
    int dropped = 0;
    for (int i = 0; i < 20 && !dropped; i++) {
        usleep(500000);
        if (send(fd2, "RIFFRIFFRI", 10, MSG_NOSIGNAL) < 0) dropped = 1;
        char c;
        if (!dropped && recv(fd2, &c, 1, MSG_DONTWAIT) == 0) dropped = 1;
    }
    assert_true(dropped);
    /* the idle one is gone too (idle timeout 2 s) */
    char c;
    ssize_t k = recv(fd, &c, 1, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr, "slow clients dropped after %.1f s\n", dt);
    assert_true(k <= 0);
    assert_true(dt < 12);
    close(fd);
    close(fd2);
    assert_healthy();
}

static void test_junk_on_socket(void **st)
{
    const char *junk[] = {"\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                          "POST /api/emotion HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                          "POST /api/emotion HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                          "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        int fd = connect_to(g_port);
        send_all(fd, junk[i], strlen(junk[i]));
        shutdown(fd, SHUT_WR);
        resp r;
        read_resp(fd, &r);
        if (r.status > 0) assert_true(r.status >= 400);
        resp_free(&r);
        close(fd);
    }
    /* an enormous header line */
    int fd = connect_to(g_port);
    char *big = malloc(200000);
    memset(big, 'a', 200000);
    memcpy(big, "GET /", 5);
    send_all(fd, big, 200000);
    resp r;
    read_resp(fd, &r);
    resp_free(&r);
    close(fd);
    free(big);
    /* binary noise in many sizes */
    uint64_t s = 88172645463325252ull;
    for (int t = 0; t < 30; t++) {
        uint8_t b[2048];
        size_t n = 1 + (size_t)(t * 67) % sizeof b;
        for (size_t i = 0; i < n; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; b[i] = (uint8_t)s; }
        fd = connect_to(g_port);
        send_all(fd, b, n);
        shutdown(fd, SHUT_WR);
        read_resp(fd, &r);
        resp_free(&r);
        close(fd);
    }
    assert_healthy();
}

/* ---- hostile input (issue 18) ---- */

/* Many connections from one address trickling a header line every 0.4 s
 * (slowloris): while they are open, a new client from the same address gets
 * health answered and other requests 503 with Retry-After, at once; every
 * slow one is closed at its deadline; then requests are served again. */
static void test_slowloris(void **st)
{
    mm_server_params p;
    test_params(&p);
    p.max_connections = 16;
    p.max_per_address = 4;
    p.idle_timeout_s = 60;      /* only the request deadline may close them */
    p.request_timeout_s = 2;
    mm_server *s = NULL;
    assert_int_equal(start_server(&p, &s), 0);
    int port = mm_server_port(s);
    enum { N = 18 };            /* within the 16 + 16/4 + 4 the server accepts */
    int fd[N];
    for (int i = 0; i < N; i++) {
        fd[i] = connect_to(port);
        assert_true(fd[i] >= 0);
        assert_int_equal(send_all(fd[i], "GET /api/tracks HTTP/1.1\r\nHost: x\r\n", 35), 0);
    }
    double t0 = mono_s(), worst = 0;
    int n_health = 0, n_busy = 0;
    while (mono_s() - t0 < 3.2) {
        for (int i = 0; i < N; i++) send(fd[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
        double a = mono_s();
        resp r;
        assert_int_equal(http(port, "GET", "/api/health", NULL, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        n_health++;
        resp_free(&r);
        int busy_expected = mono_s() - t0 < 1.5;   /* the 4 held ones are surely still there */
        assert_int_equal(http(port, "GET", "/api/tracks?limit=1", NULL, NULL, 0, &r), 0);
        if (busy_expected) {
            assert_int_equal(r.status, 503);
            char h[32];
            assert_non_null(header(&r, "Retry-After", h, sizeof h));
            assert_true(atoi(h) >= 1);
            n_busy++;
        } else {
            assert_true(r.status == 503 || r.status == 200);
        }
        resp_free(&r);
        double dt = mono_s() - a;
        if (dt > worst) worst = dt;
        usleep(400000);
    }
    /* by now (deadline 2 s) every slow connection has been closed by the server */
    int closed = 0;
    for (int i = 0; i < N; i++) {
        struct timeval tv = {2, 0};
        setsockopt(fd[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[256];
        ssize_t k;
        while ((k = recv(fd[i], buf, sizeof buf, 0)) > 0) {}
        closed += k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        close(fd[i]);
    }
    mm_server_stats stats;
    mm_server_get_stats(s, &stats);
    fprintf(stderr, "slowloris: %d slow connections; %d health answers (worst %.0f ms for health + tracks), "
            "%d busy; %d closed by the deadline; stats: %llu refused, %llu timed out\n", N, n_health, 1000 * worst,
            n_busy, closed, (unsigned long long)stats.rejected_conn, (unsigned long long)stats.timed_out);
    assert_int_equal(closed, N);
    assert_true(worst < 1.0);
    assert_true(n_busy >= 2);
    assert_true(stats.timed_out >= N);
    /* and normal service afterwards */
    resp r;
    assert_int_equal(http(port, "GET", "/api/tracks?limit=1", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    mm_server_stop(s);
}

/* A track whose file is a FIFO (or any non-regular file): an error at once,
 * not an I/O thread blocked in open(); the server still stops. */
static void test_fifo_track(void **st)
{
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/lib/fifo.wav", dir);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    const char *cls[4] = {"Q1", "Q2", "Q3", "Q4"};
    mm_va cva[4] = {{0.5f, 0.5f}, {-0.5f, 0.5f}, {-0.5f, -0.5f}, {0.5f, -0.5f}};
    float proba[4] = {0.7f, 0.1f, 0.1f, 0.1f}, emb[3] = {1, 0, 0};
    const char *id = "ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00";
    mm_library_track tr = {.path = fifo, .id = (char *)id, .artist = "Pipe", .title = "Never ends",
                           .true_label = "Q1", .size = 1000, .duration = 1, .proba = proba, .embedding = emb};
    mm_library *lib = NULL;
    mm_recommender *rec = NULL;
    mm_err e = {0};
    assert_int_equal(mm_library_from_tracks(&tr, 1, 4, cls, cva, 3, &lib, &e), 0);
    const char *labels[3];
    for (int k = 0; k < 3; k++) labels[k] = mm_bundle_class_name(g_speech, k);
    assert_int_equal(mm_recommender_create(lib, g_va, labels, 3, &rec, &e), 0);
    mm_server_params p;
    test_params(&p);
    mm_server_models m = {.speech = g_speech, .library = lib, .recommender = rec};
    mm_server *s = NULL;
    assert_int_equal(mm_server_start(&p, &m, &s, &e), 0);
    char url[200];
    snprintf(url, sizeof url, "/api/tracks/%s/audio", id);
    g_recv_timeout_s = 4;
    double t0 = mono_s();
    resp r;
    int rc = http(mm_server_port(s), "GET", url, NULL, NULL, 0, &r);
    double dt = mono_s() - t0;
    g_recv_timeout_s = 15;
    int w = open(fifo, O_WRONLY | O_NONBLOCK);   /* frees a server stuck opening it, so that a failure ends */
    if (w >= 0) close(w);
    fprintf(stderr, "FIFO track: status %d after %.0f ms\n", rc ? -1 : r.status, 1000 * dt);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr((char *)r.body, "not a regular file"));
    assert_true(dt < 2);
    resp_free(&r);
    assert_int_equal(http(mm_server_port(s), "GET", "/api/health", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    mm_server_stop(s);
    mm_recommender_free(rec);
    mm_library_free(lib);
    unlink(fifo);
}

/* RFC 9110/9112 corners: differing Content-Length values, Content-Length
 * with Transfer-Encoding, ranges past 2^64, media types that only start
 * like application/json. */
static void test_http_conformance(void **st)
{
    resp r;
    char h[64];
    assert_int_equal(raw_request(g_port, "GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                         "Content-Length: 0\r\nConnection: close\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);   /* the same value twice is one length */
    resp_free(&r);
    const char *ambiguous[] = {
        "POST /api/emotion HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 4\r\n"
        "Content-Length: 40\r\n\r\nRIFF",
        "POST /api/emotion HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 4, 40\r\n\r\nRIFF",
        "GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nGET /",
        "POST /api/emotion HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n4\r\nRIFF\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ambiguous / sizeof *ambiguous; i++) {
        assert_int_equal(raw_request(g_port, ambiguous[i], &r), 0);
        assert_int_equal(r.status, 400);
        if (i != 1) {   /* "4, 40" is refused by libmicrohttpd itself, which parses the first value alone */
            assert_non_null(strstr((char *)r.body, "ambiguous"));
            assert_string_equal(header(&r, "Connection", h, sizeof h), "close");
        }
        resp_free(&r);
    }
    /* ranges past 2^64 - 1 */
    char url[200];
    snprintf(url, sizeof url, "/api/tracks/%s/audio", g_ids[2]);
    assert_int_equal(http(g_port, "GET", url, "Range: bytes=99999999999999999999999-\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 416);
    resp_free(&r);
    assert_int_equal(http(g_port, "GET", url, "Range: bytes=18446744073709551616-18446744073709551620\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 416);
    resp_free(&r);
    size_t n = 0;
    uint8_t *file = slurp(g_paths[2], &n);
    assert_int_equal(http(g_port, "GET", url, "Range: bytes=10-99999999999999999999999\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.len, n - 10);
    assert_memory_equal(r.body, file + 10, n - 10);
    resp_free(&r);
    free(file);
    /* feedback: exactly application/json, parameters allowed */
    char body[300];
    snprintf(body, sizeof body, "{\"user\":\"fay\",\"track\":\"%s\",\"signal\":\"skip\"}", g_ids[3]);
    const char *bad_types[] = {"Content-Type: application/jsonx\r\n", "Content-Type: application/json-patch+json\r\n",
                               "Content-Type: text/json\r\n", ""};
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++)
        assert_int_equal(status_of("POST", "/api/feedback", bad_types[i], body, strlen(body)), 415);
    assert_int_equal(status_of("POST", "/api/feedback", "Content-Type: Application/JSON; charset=utf-8\r\n", body,
                               strlen(body)), 204);
    assert_healthy();
}

/* Feedback over a user's rate gets 429 with Retry-After; other users are not affected. */
static void test_feedback_rate(void **st)
{
    mm_server_params p;
    test_params(&p);
    p.feedback_rate = 0.2;
    p.feedback_burst = 3;
    mm_server *s = NULL;
    assert_int_equal(start_server(&p, &s), 0);
    const char *json = "Content-Type: application/json\r\n";
    char body[600];
    resp r;
    int port = mm_server_port(s);
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof body, "{\"user\":\"gus\",\"track\":\"%s\",\"signal\":\"like\"}", g_ids[i]);
        assert_int_equal(http(port, "POST", "/api/feedback", json, body, strlen(body), &r), 0);
        assert_int_equal(r.status, i < 3 ? 204 : 429);
        if (i == 3) {
            char h[32];
            assert_non_null(header(&r, "Retry-After", h, sizeof h));
            assert_true(atoi(h) >= 1 && atoi(h) <= 5);
            assert_non_null(strstr((char *)r.body, "{\"error\":"));
        }
        resp_free(&r);
    }
    snprintf(body, sizeof body, "{\"user\":\"hal\",\"track\":\"%s\",\"signal\":\"like\"}", g_ids[0]);
    assert_int_equal(http(port, "POST", "/api/feedback", json, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    mm_server_stats stats;
    mm_server_get_stats(s, &stats);
    assert_int_equal((int)stats.rejected_rate, 1);
    mm_server_stop(s);
}

/* A model giving a non-finite probability: 500 with a message (valid JSON),
 * never 200 with the probabilities left out. */
static void test_nonfinite_model(void **st)
{
    mm_server_params p;
    test_params(&p);
    p.test_nonfinite = 1;
    mm_server *s = NULL;
    assert_int_equal(start_server(&p, &s), 0);
    size_t n = 0;
    uint8_t *wav = clip("nan", 880, 1.0, &n);
    const char *paths[2] = {"/api/emotion", "/api/recommend?user=ivy"};
    for (int i = 0; i < 2; i++) {
        resp r;
        assert_int_equal(http(mm_server_port(s), "POST", paths[i], "Content-Type: audio/wav\r\n", wav, n, &r), 0);
        assert_int_equal(r.status, 500);
        assert_non_null(strstr((char *)r.body, "non-finite"));
        assert_null(strstr((char *)r.body, "\"proba\""));
        resp_free(&r);
    }
    free(wav);
    mm_server_stop(s);
}

/* A speech model with more classes than the old fixed 256-value buffer
 * (issue 18.1): the server sizes its buffers from the model and answers with
 * every class (ASan watches the worker). 300 one-clip classes, a forest. */
static void test_many_classes(void **st)
{
    enum { K = 300 };
    char p[600];
    snprintf(p, sizeof p, "%s/many", dir);
    tu_system("mkdir -p %s", p);
    snprintf(p, sizeof p, "%s/many/manifest.csv", dir);
    FILE *m = fopen(p, "w");
    snprintf(p, sizeof p, "%s/many/va.yaml", dir);
    FILE *va = fopen(p, "w");
    assert_true(m && va);
    fputs("path,label,group\n", m);
    fputs("scale: signed\ntarget: {valence: 0.5, arousal: -0.5}\nemotions:\n", va);
    for (int c = 0; c < K; c++) {
        snprintf(p, sizeof p, "%s/many/c%03d.wav", dir, c);
        write_wav(p, 100 + 20 * c, 0.6, c);
        fprintf(m, "c%03d.wav,e%03d,%d\n", c, c, c);
        fprintf(va, "  e%03d: {valence: %.3f, arousal: %.3f}\n", c, cos(c * 0.021), sin(c * 0.021));
    }
    fclose(m);
    fclose(va);
    write_experiment("many/", "many", 4);
    assert_int_equal(tu_system("%s export %s/many/exp.yaml --model forest -o %s/many/speech.h5 -j 1 2>%s/many/err.txt",
                               tu_bin(), dir, dir, dir), 0);
    mm_bundle *b = NULL;
    mm_va_table *vt = NULL;
    mm_recommender *rec = NULL;
    mm_err e = {0};
    snprintf(p, sizeof p, "%s/many/speech.h5", dir);
    assert_int_equal(mm_bundle_open(p, NULL, 1, &b, &e), 0);
    assert_int_equal(mm_bundle_n_classes(b), K);
    snprintf(p, sizeof p, "%s/many/va.yaml", dir);
    if (mm_va_table_load(p, &vt, &e)) fprintf(stderr, "%s\n", e.msg);
    assert_non_null(vt);
    const char *labels[K];
    for (int k = 0; k < K; k++) labels[k] = mm_bundle_class_name(b, k);
    assert_int_equal(mm_recommender_create(g_lib, vt, labels, K, &rec, &e), 0);
    mm_server_params sp;
    test_params(&sp);
    mm_server_models mm = {.speech = b, .library = g_lib, .recommender = rec};
    mm_server *s = NULL;
    if (mm_server_start(&sp, &mm, &s, &e)) fprintf(stderr, "%s\n", e.msg);
    assert_non_null(s);
    size_t n = 0;
    uint8_t *wav = clip("many_probe", 300, 1.0, &n);
    resp r;
    assert_int_equal(http(mm_server_port(s), "POST", "/api/recommend?n=2", "Content-Type: audio/wav\r\n", wav, n, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loadb((const char *)r.body, r.len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(json_object_get(j, "proba")), K);
    assert_non_null(json_object_get(json_object_get(j, "proba"), "e299"));
    json_decref(j);
    resp_free(&r);
    free(wav);
    mm_server_stop(s);
    mm_recommender_free(rec);
    mm_va_table_free(vt);
    mm_bundle_free(b);
}

/* ---- 503 when the queue is full ---- */

typedef struct { int port, status; const uint8_t *wav; size_t n; } shot;

static void *fire(void *arg)
{
    shot *s = arg;
    resp r;
    s->status = http(s->port, "POST", "/api/emotion", "Content-Type: audio/wav\r\n", s->wav, s->n, &r) ? -1 : r.status;
    resp_free(&r);
    return NULL;
}

static void test_busy(void **st)
{
    mm_server_params p;
    test_params(&p);
    p.n_workers = 1;
    p.queue_max = 1;
    p.test_delay_ms = 400;
    mm_server *s = NULL;
    assert_int_equal(start_server(&p, &s), 0);
    size_t n = 0;
    uint8_t *wav = clip("busy", 220, 1.0, &n);
    enum { N = 6 };
    shot shots[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        shots[i] = (shot){.port = mm_server_port(s), .wav = wav, .n = n};
        pthread_create(&th[i], NULL, fire, &shots[i]);
    }
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += shots[i].status == 200;
        busy += shots[i].status == 503;
    }
    fprintf(stderr, "burst of %d on 1 worker + queue 1: %d answered, %d busy\n", N, ok, busy);
    assert_int_equal(ok + busy, N);
    assert_true(ok >= 2);
    assert_true(busy >= 1);
    mm_server_stats stats;
    mm_server_get_stats(s, &stats);
    assert_int_equal((int)stats.rejected_busy, busy);
    /* a request waiting in the queue at stop is still answered */
    shots[0].status = 0;
    pthread_create(&th[0], NULL, fire, &shots[0]);
    usleep(100000);
    mm_server_stop(s);
    pthread_join(th[0], NULL);
    assert_true(shots[0].status == 200 || shots[0].status == -1);
    free(wav);
}

static void test_start_errors(void **st)
{
    mm_server_params p;
    test_params(&p);
    mm_server *s = NULL;
    mm_err e = {0};
    mm_server_models m = {.speech = g_speech, .library = g_lib, .recommender = g_rec};
    p.port = g_port;   /* taken */
    assert_int_not_equal(mm_server_start(&p, &m, &s, &e), 0);
    assert_non_null(strstr(e.msg, "in use"));
    test_params(&p);
    p.host = "no.such.host.invalid";
    assert_int_not_equal(mm_server_start(&p, &m, &s, &e), 0);
    assert_non_null(strstr(e.msg, "no.such.host.invalid"));
    test_params(&p);
    p.n_workers = 0;
    assert_int_not_equal(mm_server_start(&p, &m, &s, &e), 0);
    m.recommender = NULL;
    test_params(&p);
    assert_int_not_equal(mm_server_start(&p, &m, &s, &e), 0);
    assert_null(s);
}

/* ---- the command ---- */

static void test_cli(void **st)
{
    assert_int_equal(tu_system("%s serve --help > /dev/null", tu_bin()), 0);
    assert_int_equal(tu_system("%s serve --speech x.h5 2> /dev/null", tu_bin()), 2);
    assert_int_equal(tu_system("%s serve --speech %s/speech.h5 --library %s/none.h5 2> %s/err.txt", tu_bin(), dir, dir, dir), 1);
    assert_int_equal(tu_system("grep -q 'none.h5' %s/err.txt", dir), 0);
    assert_int_equal(tu_system("%s serve --speech a --library b --port 70000 2> /dev/null", tu_bin()), 2);
    /* a library file from the in-memory one, then the real thing on a free port */
    char lp[300];
    snprintf(lp, sizeof lp, "%s/lib.h5", dir);
    mm_err e = {0};
    assert_int_equal(mm_library_save(g_lib, lp, &e), 0);
    char sp[300], op[300], ep[300];
    snprintf(sp, sizeof sp, "%s/speech.h5", dir);
    snprintf(op, sizeof op, "%s/serve.out", dir);
    snprintf(ep, sizeof ep, "%s/serve.err", dir);
    pid_t pid = fork();
    if (pid == 0) {   /* exec melodic itself, so that the signal below reaches it */
        int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644), e2 = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e2, 2);
        execl(tu_bin(), tu_bin(), "serve", "--speech", sp, "--library", lp, "--port", "0", "--threads", "1", "--db",
              "none", "--quiet", (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 300 && !port; i++) {   /* up to 30 s under ASan */
        usleep(100000);
        FILE *f = fopen(op, "r");
        char line[512];
        if (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "http://127.0.0.1:");
            if (p) port = atoi(p + 17);
        }
        if (f) fclose(f);
    }
    /* look, then stop it before asserting, so that a failure leaves no server behind */
    resp r = {0};
    int got = port > 0 ? http(port, "GET", "/api/health", NULL, NULL, 0, &r) : -1;
    int s = 0;
    kill(pid, SIGTERM);
    waitpid(pid, &s, 0);
    if (!WIFEXITED(s) || WEXITSTATUS(s)) tu_system("cat %s/serve.err >&2", dir);
    assert_true(port > 0);
    assert_int_equal(got, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((char *)r.body, "\"tracks\":8"));
    assert_non_null(strstr((char *)r.body, "\"feedback\":false"));
    resp_free(&r);
    assert_true(WIFEXITED(s));
    assert_int_equal(WEXITSTATUS(s), 0);
}

int main(void)
{
    const struct CMUnitTest parse[] = {
        cmocka_unit_test(test_parse_range),
        cmocka_unit_test(test_parse_multipart),
        cmocka_unit_test(test_parse_misc),
        cmocka_unit_test(test_ratelimit),
    };
    const struct CMUnitTest server[] = {
        cmocka_unit_test(test_health_and_tracks),
        cmocka_unit_test(test_page),
        cmocka_unit_test(test_emotion_raw_and_multipart),
        cmocka_unit_test(test_recommend),
        cmocka_unit_test(test_calibration),
        cmocka_unit_test(test_augment),
        cmocka_unit_test(test_track_audio_ranges),
        cmocka_unit_test(test_feedback),
        cmocka_unit_test(test_variety),
        cmocka_unit_test(test_track_info),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_junk_on_socket),
        cmocka_unit_test(test_slow_clients),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_fifo_track),
        cmocka_unit_test(test_http_conformance),
        cmocka_unit_test(test_feedback_rate),
        cmocka_unit_test(test_nonfinite_model),
        cmocka_unit_test(test_many_classes),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_cli),
    };
    signal(SIGPIPE, SIG_IGN);
    int f = cmocka_run_group_tests_name("http_parse", parse, NULL, NULL);
    return f | cmocka_run_group_tests_name("server", server, setup, teardown);
}
