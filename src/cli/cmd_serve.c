/* cmd_serve.c — `melodic serve`: load the speech bundle, the music library
 * and the VA table once, start the HTTP server (src/runtime/server.h) and
 * run until SIGINT or SIGTERM. Prints the address, then one log line per
 * request unless --quiet. API: src/runtime/API.md. A second signal, or a
 * stop that takes over STOP_GRACE_S seconds (a worker or I/O thread stuck in
 * the kernel, e.g. on a stalled mount), exits at once.
 */
#include <cblas.h>   /* openblas_set_num_threads */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/util.h"
#include "runtime/feedback.h"
#include "runtime/library.h"
#include "runtime/recommend.h"
#include "runtime/server.h"
#include "runtime/va.h"

static const char *usage =
    "usage: melodic serve --speech SPEECH.h5 --library LIBRARY.h5 [--speech-calibrated S.h5]\n"
    "                     [--host 127.0.0.1] [--port 8080]\n"
    "                     [--threads N] [--db FILE] [--va FILE] [--max-upload MB] [--queue N]\n"
    "                     [--io-threads N] [--timeout S] [--max-connections N] [--max-per-address N]\n"
    "                     [--models DIR] [--quiet]\n"
    "\n"
    "Serves the web page at / and the JSON API (src/runtime/API.md): emotion of an uploaded\n"
    "voice clip, playlists from the library (match or regulate), track audio with Range\n"
    "support, like/skip/dislike feedback. Binds to 127.0.0.1 unless --host says otherwise.\n"
    "  --speech FILE     speech emotion bundle (melodic export)\n"
    "  --speech-calibrated FILE\n"
    "                    a bundle with per-speaker calibration (exported from an\n"
    "                    experiment with preprocessing.group_norm, same labels): used\n"
    "                    for user=ID once that user has enough earlier clips (kept in --db)\n"
    "  --library FILE    music library index (melodic index)\n"
    "  --threads N       classification workers (default: cores)\n"
    "  --db FILE         SQLite feedback store (default: feedback.sqlite beside the library;\n"
    "                    'none' disables feedback)\n"
    "  --va FILE         valence-arousal table and recommend defaults (default: the installed\n"
    "                    share/melodic/configs/recommend/default.yaml, else the checkout's)\n"
    "  --max-upload MB   request body limit (default 20)\n"
    "  --queue N         requests waiting for a worker before 503 (default 64)\n"
    "  --timeout S       seconds to receive a whole request, headers and body (default 30;\n"
    "                    idle connections: 10)\n"
    "  --max-connections N  connections served at once (default 256); more get 503\n"
    "  --max-per-address N  connections from one client address (default 32); more get 503\n"
    "  --models DIR      backbone weights root (default: $MELODIC_MODELS, else ../shared/models\n"
    "                    beside the checkout, else the installation's share/melodic/models)\n";

#define STOP_GRACE_S 20

/* After the first SIGINT/SIGTERM: a second one, or STOP_GRACE_S seconds
 * without the server stopped, ends the process (signals are blocked in
 * every thread, so this one takes them with sigtimedwait; an interruption,
 * e.g. by LeakSanitizer stopping the threads at exit, only waits again). */
static sigset_t stop_signals;

static void *stop_watchdog(void *arg)
{
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += STOP_GRACE_S;
    int sig = -1;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = (double)(end.tv_sec - now.tv_sec) + 1e-9 * (double)(end.tv_nsec - now.tv_nsec);
        if (left <= 0) break;
        struct timespec t = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        sig = sigtimedwait(&stop_signals, NULL, &t);
        if (sig > 0 || errno != EINTR) break;
    }
    fprintf(stderr, "melodic serve: %s; exiting without waiting for the server\n",
            sig > 0 ? "second signal" : "stopping takes too long");
    _exit(1);
    return NULL;
}

static void log_request(void *ctx, const char *method, const char *url, int status, double ms)
{
    (void)ctx;
    fprintf(stderr, "%s %s %d %.1f ms\n", method, url, status, ms);
}

int mm_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"quiet", no_argument, NULL, 'q'},
        {"speech", required_argument, NULL, 's'}, {"speech-calibrated", required_argument, NULL, 'C'},
        {"library", required_argument, NULL, 'L'}, {"db", required_argument, NULL, 'D'},
        {"va", required_argument, NULL, 'V'}, {"models", required_argument, NULL, 'M'},
        {"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 'j'}, {"io-threads", required_argument, NULL, 'I'},
        {"queue", required_argument, NULL, 'Q'}, {"max-upload", required_argument, NULL, 'U'},
        {"max-connections", required_argument, NULL, 'N'}, {"max-per-address", required_argument, NULL, 'A'},
        {"timeout", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *speech = NULL, *speech_cal = NULL, *library = NULL, *db = NULL, *va_path = NULL;
    const char *models = NULL;
    int quiet = 0, usage_rc = 0, rc = 0, c, idx;
    mm_server_params p;
    mm_server_params_default(&p);
    p.n_workers = mm_cli_default_threads();
    mm_err err = {0};
    mm_bundle *b = NULL, *bc = NULL;
    mm_library *lib = NULL;
    mm_va_table *va = NULL;
    mm_cfg *vcfg = NULL;
    mm_recommender *rec = NULL;
    mm_feedback *fb = NULL;
    mm_server *srv = NULL;
    optind = 1;
    opterr = 0;
    while (idx = -1, (c = getopt_long(argc, argv, ":hj:", opts, &idx)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(usage, stdout); goto done;
        case 'q': quiet = 1; break;
        case 's': speech = optarg; break;
        case 'C': speech_cal = optarg; break;
        case 'L': library = optarg; break;
        case 'D': db = optarg; break;
        case 'V': va_path = optarg; break;
        case 'M': models = optarg; break;
        case 'H': p.host = optarg; break;
        case 'p':
            if ((v = mm_cli_parse_long(optarg, 0, 65535)) < 0) { usage_rc = mm_cli_usage("serve", "--port expects 0..65535, got '%s'", optarg); goto done; }
            p.port = (int)v;
            break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) { usage_rc = mm_cli_usage("serve", "%s expects 1..1024, got '%s'", idx >= 0 ? "--threads" : "-j", optarg); goto done; }
            p.n_workers = (int)v;
            break;
        case 'I':
            if ((v = mm_cli_parse_long(optarg, 1, 64)) < 0) { usage_rc = mm_cli_usage("serve", "--io-threads expects 1..64, got '%s'", optarg); goto done; }
            p.n_io_threads = (int)v;
            break;
        case 'Q':
            if ((v = mm_cli_parse_long(optarg, 0, 100000)) < 0) { usage_rc = mm_cli_usage("serve", "--queue expects 0..100000, got '%s'", optarg); goto done; }
            p.queue_max = (size_t)v;
            break;
        case 'U':
            if ((v = mm_cli_parse_long(optarg, 1, 4096)) < 0) { usage_rc = mm_cli_usage("serve", "--max-upload expects 1..4096 (MB), got '%s'", optarg); goto done; }
            p.max_upload = (size_t)v << 20;
            break;
        case 'N':
            if ((v = mm_cli_parse_long(optarg, 1, 100000)) < 0) { usage_rc = mm_cli_usage("serve", "--max-connections expects 1..100000, got '%s'", optarg); goto done; }
            p.max_connections = (size_t)v;
            break;
        case 'A':
            if ((v = mm_cli_parse_long(optarg, 1, 100000)) < 0) { usage_rc = mm_cli_usage("serve", "--max-per-address expects 1..100000, got '%s'", optarg); goto done; }
            p.max_per_address = (size_t)v;
            break;
        case 'T':
            if ((v = mm_cli_parse_long(optarg, 1, 3600)) < 0) { usage_rc = mm_cli_usage("serve", "--timeout expects 1..3600 (s), got '%s'", optarg); goto done; }
            p.request_timeout_s = (double)v;
            break;
        case ':': usage_rc = mm_cli_usage("serve", "option '%s' needs a value", argv[optind - 1]); goto done;
        default: usage_rc = mm_cli_usage("serve", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    if (optind < argc) { usage_rc = mm_cli_usage("serve", "unexpected argument '%s'", argv[optind]); goto done; }
    if (!speech || !library) { usage_rc = mm_cli_usage("serve", "expected --speech SPEECH.h5 and --library LIBRARY.h5"); goto done; }

    rc = mm_bundle_open(speech, models, 1, &b, &err);
    if (!rc && speech_cal) rc = mm_bundle_open(speech_cal, models, 1, &bc, &err);
    if (!rc) rc = mm_library_open(library, &lib, &err);
    if (!rc) rc = mm_cli_check_speech_bundle(b, speech, lib, &err);
    char va_buf[PATH_MAX];
    if (!rc && !(va_path = mm_cli_recommend_config(va_path, va_buf, sizeof va_buf, &err))) rc = err.code;
    if (!rc) rc = mm_cfg_load_file(va_path, &vcfg, &err);
    if (!rc) rc = mm_va_table_from_cfg(vcfg, &va, &err);
    if (!rc) rc = mm_recommend_params_from_cfg(mm_cfg_child(vcfg, "recommend"), va, &p.rec, &err);
    if (!rc) rc = mm_cli_speech_recommender(b, lib, va, &rec, &err);
    char dbpath[PATH_MAX];
    if (!rc && (!db || strcmp(db, "none"))) {
        if (!db) {
            char tmp[PATH_MAX];
            snprintf(tmp, sizeof tmp, "%s", library);
            snprintf(dbpath, sizeof dbpath, "%s/feedback.sqlite", dirname(tmp));
            db = dbpath;
        }
        rc = mm_feedback_open(db, &fb, &err);
    }
    /* SIGINT/SIGTERM are waited for here; block them before threads start so they inherit the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!quiet) { p.on_request = log_request; }
    mm_server_models m = {.speech = b, .speech_calibrated = bc, .library = lib, .recommender = rec, .feedback = fb};
    /* the workers run single-threaded kernels: BLAS too (a process-wide
     * setting, so it is the command's, not the library's) */
    openblas_set_num_threads(1);
    if (!rc) rc = mm_server_start(&p, &m, &srv, &err);
    if (!rc) {
        const char *h = p.host;
        int v6 = strchr(h, ':') != NULL;
        char cal[96] = "";
        if (bc) snprintf(cal, sizeof cal, "; calibrated after %zu clips: %s", mm_bundle_calibration_clips(bc), mm_bundle_model_name(bc));
        printf("melodic serve: http://%s%s%s:%d/ (speech: %s, %d labels%s; library: %zu tracks; %d workers%s%s)\n",
               v6 ? "[" : "", h, v6 ? "]" : "", mm_server_port(srv), mm_bundle_model_name(b), mm_bundle_n_classes(b),
               cal, mm_library_size(lib), p.n_workers, fb ? "; feedback: " : "", fb ? db : "");
        fflush(stdout);
        int sig = 0;
        sigwait(&set, &sig);
        if (!quiet) fprintf(stderr, "melodic serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
        pthread_t wd;
        stop_signals = set;
        if (!pthread_create(&wd, NULL, stop_watchdog, NULL)) pthread_detach(wd);
        mm_server_stop(srv);
    }
done:
    if (rc) mm_cli_fail("serve", &err);
    mm_feedback_close(fb);
    mm_recommender_free(rec);
    mm_va_table_free(va);
    mm_cfg_free(vcfg);
    mm_library_free(lib);
    mm_bundle_free(b);
    mm_bundle_free(bc);
    return usage_rc ? usage_rc : rc ? 1 : 0;
}
