/* cmd_index.c — `melodic index`: a music bundle over a folder or manifest → library.
 *
 * Wraps mm_library_index: prints progress (a line rewritten in place on a
 * terminal, one line per 10 % in a log) and a summary to stderr and lists
 * the files that could not be indexed with their reasons (never fatal).
 * The valence–arousal table comes from the installed (or checkout's)
 * configs/recommend/default.yaml, or --config; 4Q bundles (labels Q1..Q4)
 * work without one. Track paths are stored absolute.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/util.h"
#include "runtime/library.h"

static const char *usage =
    "usage: melodic index MUSIC_BUNDLE.h5 DIR|MANIFEST.csv -o LIBRARY.h5 [--config FILE]\n"
    "                     [--metadata CSV] [--key-column COL] [--no-reuse] [-j N] [--quiet]\n"
    "                     [--window S] [--hop H]\n"
    "\n"
    "Classifies every audio file of DIR (recursively; wav flac mp3 ogg opus aiff) or of a\n"
    "manifest CSV (columns path[,artist,title,label]) with a music bundle and writes the\n"
    "library used by `melodic recommend`: per track its absolute path, artist and title (DIR/metadata.csv\n"
    "or --metadata joined on the file stem, else the file's tags, else the file name),\n"
    "duration, class probabilities, a valence–arousal estimate, the embedding, the content\n"
    "hash, and the folder name as annotated label for DIR/<label>/<file> layouts (4Q: Q1..Q4).\n"
    "Tags are read with TagLib when melodic is linked with it (else libsndfile: WAV, FLAC, Ogg).\n"
    "Re-indexing into an existing LIBRARY.h5 reuses unchanged files (size, mtime, SHA-256)\n"
    "and drops removed ones; unreadable files are listed with their reasons.\n"
    "  --config FILE     valence–arousal points of the labels (default: the installed\n"
    "                    " MM_CLI_RECOMMEND_CONFIG "; $MELODIC_SHARE overrides)\n"
    "  --metadata CSV    artist/title table (default DIR/metadata.csv when present)\n"
    "  --key-column COL  its column holding the file stem (default song|stem|file|path)\n"
    "  --no-reuse        classify every file again\n"
    "  --window S        classify each file in windows of S seconds, the length of the clips\n"
    "                    the music model was trained on (default 10: the 4Q excerpts), and keep\n"
    "                    the mean probabilities, one valence–arousal point per window and the\n"
    "                    start of the window most typical of the track's class; a file up to S\n"
    "                    seconds is one window; 0: each file as one clip\n"
    "  --hop H           window step in seconds (default S/2)\n"
    "  -j N              threads (default: all cores); the library does not depend on it\n";

/* Progress on stderr: a terminal gets one line rewritten in place (\r); a
 * log (stderr not a terminal) gets a plain line at every 10 % and at the
 * end, never a \r. */
typedef struct progress_state {
    int tty;
    int last_tenth;     /* the last 10 % step printed (−1: none) */
    double t0;
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(void *ctx, size_t done, size_t total, const char *path)
{
    (void)path;
    progress_state *ps = ctx;
    if (ps->tty) {
        if (done == total || done % 50 == 0) fprintf(stderr, "\r[%zu/%zu]%s", done, total, done == total ? "\n" : "");
        return;
    }
    int tenth = total ? (int)(10 * done / total) : 10;
    if (tenth > ps->last_tenth) {
        ps->last_tenth = tenth;
        fprintf(stderr, "melodic index: %zu of %zu files (%d%%, %.0f s)\n", done, total, 10 * tenth, now_s() - ps->t0);
    }
}

int mm_cmd_index(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"quiet", no_argument, NULL, 'q'},
        {"no-reuse", no_argument, NULL, 'R'}, {"config", required_argument, NULL, 'c'},
        {"metadata", required_argument, NULL, 'm'}, {"key-column", required_argument, NULL, 'k'},
        {"window", required_argument, NULL, 'W'}, {"hop", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    const char *bundle_path = NULL, *source = NULL, *out = NULL, *config = NULL;
    mm_library_index_params p;
    mm_library_index_params_default(&p);
    p.window_s = 10;   /* TODO(bundle): the bundle should record its training clip length; until it does, 4Q's 10 s */
    int threads = mm_cli_default_threads(), quiet = 0, usage_rc = 0, rc = 0, c;
    mm_err err = {0};
    mm_va_table *va = NULL;
    mm_bundle *b = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:j:", opts, NULL)) != -1) {
        char *end;
        double d;
        long v;
        switch (c) {
        case 'h': fputs(usage, stdout); goto done;
        case 'q': quiet = 1; break;
        case 'R': p.reuse = 0; break;
        case 'o': out = optarg; break;
        case 'c': config = optarg; break;
        case 'm': p.metadata = optarg; break;
        case 'k': p.key_column = optarg; break;
        case 'W':
        case 'H':
            d = strtod(optarg, &end);
            if (*end || end == optarg || !(d >= (c == 'W' ? 0 : 1e-3) && d <= 3600)) {
                usage_rc = mm_cli_usage("index", "%s expects seconds in [%s, 3600], got '%s'", c == 'W' ? "--window" : "--hop",
                                        c == 'W' ? "0" : "0.001", optarg);
                goto done;
            }
            if (c == 'W') p.window_s = d; else p.hop_s = d;
            break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) { usage_rc = mm_cli_usage("index", "-j expects a thread count >= 1, got '%s'", optarg); goto done; }
            threads = (int)v;
            break;
        case ':': usage_rc = mm_cli_usage("index", "option '%s' needs a value", argv[optind - 1]); goto done;
        default: usage_rc = mm_cli_usage("index", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    for (; optind < argc; optind++) {
        if (!bundle_path) bundle_path = argv[optind];
        else if (!source) source = argv[optind];
        else { usage_rc = mm_cli_usage("index", "unexpected argument '%s'", argv[optind]); goto done; }
    }
    if (!bundle_path || !source || !out) {
        usage_rc = mm_cli_usage("index", "expected MUSIC_BUNDLE.h5, DIR or MANIFEST.csv, and -o LIBRARY.h5");
        goto done;
    }
    p.n_threads = threads;
    progress_state ps = {.tty = isatty(STDERR_FILENO), .last_tenth = 0, .t0 = now_s()};
    if (!quiet) {
        p.progress = progress;
        p.progress_ctx = &ps;
    }

    char cfg_buf[PATH_MAX];
    mm_err no_table = {0};   /* why there is no table, when there is none (fine for Q1..Q4) */
    const char *cfg_path = mm_cli_recommend_config(config, cfg_buf, sizeof cfg_buf, &no_table);
    if (cfg_path) rc = mm_va_table_load(cfg_path, &va, &err);
    if (!rc) rc = mm_bundle_open(bundle_path, NULL, 1, &b, &err);
    if (!rc && mm_bundle_calibration_clips(b))
        rc = mm_err_set(&err, MM_EINVAL, "%s has per-speaker calibration (group_norm), which music tracks do not have: export the music model without it", bundle_path);
    mm_library_index_stats s = {0};
    if (!rc) {
        rc = mm_library_index(b, bundle_path, va, source, out, &p, &s, &err);
        if (rc && !va && no_table.msg[0]) {   /* e.g. labels that need the table */
            size_t l = strlen(err.msg);
            if (snprintf(err.msg + l, sizeof err.msg - l, " (no valence–arousal table: %s)", no_table.msg) < 0) err.msg[l] = 0;
        }
    }
    if (!rc) {
        mm_library *l = NULL;
        mm_err e2 = {0};
        if (!mm_library_open(out, &l, &e2)) {
            for (size_t i = 0; i < mm_library_n_failed(l); i++) {
                const char *fp, *why;
                mm_library_failed(l, i, &fp, &why);
                fprintf(stderr, "melodic index: skipped %s: %s\n", fp, why);
            }
            mm_library_free(l);
        }
        fprintf(stderr, "indexed %zu of %zu files → %s (%zu classified, %zu unchanged, %zu removed, %zu failed)\n",
                s.n_indexed, s.n_files, out, s.n_new, s.n_unchanged, s.n_removed, s.n_failed);
    }
done:
    if (rc) mm_cli_fail("index", &err);
    mm_bundle_free(b);
    mm_va_table_free(va);
    return usage_rc ? usage_rc : rc ? 1 : 0;
}
