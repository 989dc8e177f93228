/* cmd_index.c — `melodic index`: a music bundle over a folder or manifest → library.
 *
 * Wraps mm_library_index: prints progress (a line rewritten in place on a
 * terminal, one line per 10 % in a log) and a summary to stderr and lists
 * the files that could not be indexed with their reasons (never fatal).
 * The valence–arousal table comes from the installed (or checkout's)
 * configs/recommend/default.yaml, or --config; 4Q bundles (labels Q1..Q4)
 * work without one. Track paths are stored absolute. Scale-out as
 * `melodic extract`: --shard I/N writes one share's part file, --merge
 * joins the parts, and under mpirun the ranks share the files and rank 0
 * writes the library (runtime/library.h: mm_library_index_shard, _merge,
 * _dist). --window defaults to the bundle's training clip length.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli/util.h"
#include "core/clock.h"
#include "mpi/mpi.h"
#include "mpi/shard.h"
#include "runtime/library.h"

static const char *usage =
    "usage: melodic index MUSIC_BUNDLE.h5 DIR|MANIFEST.csv -o LIBRARY.h5 [--config FILE]\n"
    "                     [--metadata CSV] [--key-column COL] [--no-reuse] [-j N] [--quiet]\n"
    "                     [--window S] [--hop H] [--shard I/N]\n"
    "       melodic index --merge PART.h5... -o LIBRARY.h5\n"
    "       mpirun -np N melodic index ...   (files shared among the ranks; rank 0 writes)\n"
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
    "The summary line gives the throughput in hours of audio per hour per core (per CPU\n"
    "second of the process; under mpirun per wall second × cores).\n"
    "  --config FILE     valence–arousal points of the labels (default: the installed\n"
    "                    " MM_CLI_RECOMMEND_CONFIG "; $MELODIC_SHARE overrides)\n"
    "  --metadata CSV    artist/title table (default DIR/metadata.csv when present)\n"
    "  --key-column COL  its column holding the file stem (default song|stem|file|path)\n"
    "  --no-reuse        classify every file again\n"
    "  --window S        classify each file in windows of S seconds and keep the mean\n"
    "                    probabilities, one valence–arousal point per window and the start of\n"
    "                    the window most typical of the track's class; a file up to S seconds\n"
    "                    is one window; 0: each file as one clip. Default: the length of the\n"
    "                    clips the music model was trained on, as the bundle records it\n"
    "                    (10 s for bundles exported before it was recorded: the 4Q excerpts)\n"
    "  --hop H           window step in seconds (default S/2)\n"
    "  --shard I/N       index only share I of N of the files (dealt largest first, as\n"
    "                    `melodic extract --shard`) into the part file -o PART.h5; no reuse\n"
    "  --merge           merge the part files given (every shard once) into -o LIBRARY.h5:\n"
    "                    the library equals one process's, dataset by dataset\n"
    "  -j N              threads (default: all cores; under mpirun, the node's cores divided\n"
    "                    among its ranks); the library does not depend on it\n";

/* Progress on stderr: a terminal gets one line rewritten in place (\r); a
 * log (stderr not a terminal) gets a plain line at every 10 % and at the
 * end, never a \r. */
typedef struct progress_state {
    int tty;
    int last_tenth;     /* the last 10 % step printed (−1: none) */
    double t0;
} progress_state;

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
        fprintf(stderr, "melodic index: %zu of %zu files (%d%%, %.0f s)\n", done, total, 10 * tenth, mm_now_s() - ps->t0);
    }
}

/* CPU seconds (user + system) of this process so far, all threads. */
static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* The summary's throughput, hours of audio per hour per core: audio_s
 * seconds classified per CPU second of this process (a shared machine's
 * other load does not count), or under MPI, where rank 0 sees only its own
 * CPU time, per wall second × cores. */
static void say_throughput(double audio_s, double wall_s, double cpu, int cores, int mpi)
{
    double per = mpi ? wall_s * (cores > 0 ? cores : 1) : cpu;
    if (audio_s <= 0 || per <= 0) return;
    fprintf(stderr, "; %.2f h of audio in %.1f s (%.1f s CPU): %.0f h of audio per hour per core (%s, %d core%s)", audio_s / 3600,
            wall_s, cpu, audio_s / per, mpi ? "wall time × cores" : "CPU time", cores, cores == 1 ? "" : "s");
}

/* The --window default: the bundle's training clip length, else 10 s
 * (the 4Q excerpts) with a one-line note. */
static double default_window(const mm_bundle *b, const char *bundle_path, int quiet)
{
    double w = mm_bundle_clip_seconds(b);
    if (w > 0) return w;
    if (!quiet)
        fprintf(stderr, "melodic index: %s does not record its training clip length (exported before it was): "
                        "windows of 10 s, the 4Q excerpts; --window S sets it\n", bundle_path);
    return 10;
}

/* `melodic index --merge PART... -o OUT`. */
static int merge_parts(char **parts, size_t n, const char *out, mm_err *err)
{
    mm_library_index_stats s = {0};
    int rc = mm_library_merge((const char *const *)parts, n, out, &s, err);
    if (!rc)
        fprintf(stderr, "merged %zu parts: indexed %zu of %zu files → %s (%zu failed)\n", n, s.n_indexed, s.n_files, out, s.n_failed);
    return rc;
}

/* The files that could not be indexed, from the written library. */
static void list_failed(const char *out)
{
    mm_library *l = NULL;
    mm_err e2 = {0};
    if (mm_library_open(out, &l, &e2)) return;
    for (size_t i = 0; i < mm_library_n_failed(l); i++) {
        const char *fp, *why;
        mm_library_failed(l, i, &fp, &why);
        fprintf(stderr, "melodic index: skipped %s: %s\n", fp, why);
    }
    mm_library_free(l);
}

int mm_cmd_index(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"quiet", no_argument, NULL, 'q'},
        {"no-reuse", no_argument, NULL, 'R'}, {"config", required_argument, NULL, 'c'},
        {"metadata", required_argument, NULL, 'm'}, {"key-column", required_argument, NULL, 'k'},
        {"window", required_argument, NULL, 'W'}, {"hop", required_argument, NULL, 'H'},
        {"shard", required_argument, NULL, 'S'}, {"merge", no_argument, NULL, 'M'},
        {NULL, 0, NULL, 0},
    };
    const char *bundle_path = NULL, *source = NULL, *out = NULL, *config = NULL;
    mm_library_index_params p;
    mm_library_index_params_default(&p);
    int threads = mm_cli_default_threads(), threads_set = 0, quiet = 0, usage_rc = 0, rc = 0, c;
    int window_set = 0, merge = 0, shard_i = 0, shard_n = 0, mpi_on = 0, rank = 0;
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    size_t n_pos = 0;
    mm_err err = {0};
    mm_va_table *va = NULL;
    mm_bundle *b = NULL;
    if (!pos) { usage_rc = mm_cli_usage("index", "out of memory"); goto done; }
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
        case 'M': merge = 1; break;
        case 'S':
            if (mm_shard_parse(optarg, "--shard", &shard_i, &shard_n, &err)) { usage_rc = mm_cli_usage("index", "%s", err.msg); goto done; }
            break;
        case 'W':
        case 'H':
            d = strtod(optarg, &end);
            if (*end || end == optarg || !(d >= (c == 'W' ? 0 : 1e-3) && d <= 3600)) {
                usage_rc = mm_cli_usage("index", "%s expects seconds in [%s, 3600], got '%s'", c == 'W' ? "--window" : "--hop",
                                        c == 'W' ? "0" : "0.001", optarg);
                goto done;
            }
            if (c == 'W') { p.window_s = d; window_set = 1; } else p.hop_s = d;
            break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) { usage_rc = mm_cli_usage("index", "-j expects a thread count >= 1, got '%s'", optarg); goto done; }
            threads = (int)v;
            threads_set = 1;
            break;
        case ':': usage_rc = mm_cli_usage("index", "option '%s' needs a value", argv[optind - 1]); goto done;
        default: usage_rc = mm_cli_usage("index", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    for (; optind < argc; optind++) pos[n_pos++] = argv[optind];
    if (merge) {
        if (!n_pos || !out) { usage_rc = mm_cli_usage("index", "--merge expects PART.h5... and -o LIBRARY.h5"); goto done; }
        if (shard_n) { usage_rc = mm_cli_usage("index", "--merge and --shard: merge the parts, or index one share"); goto done; }
        rc = merge_parts(pos, n_pos, out, &err);
        goto done;
    }
    if (n_pos > 2) { usage_rc = mm_cli_usage("index", "unexpected argument '%s'", pos[2]); goto done; }
    bundle_path = n_pos > 0 ? pos[0] : NULL;
    source = n_pos > 1 ? pos[1] : NULL;
    if (!bundle_path || !source || !out) {
        usage_rc = mm_cli_usage("index", "expected MUSIC_BUNDLE.h5, DIR or MANIFEST.csv, and -o LIBRARY.h5");
        goto done;
    }
    if ((rc = mm_mpi_init(&argc, &argv, &err))) goto done;
    mpi_on = 1;
    rank = mm_mpi_rank();
    if (!threads_set) threads = mm_mpi_threads_per_rank(threads);
    if (shard_n && mm_mpi_active()) {
        rc = mm_err_set(&err, MM_EINVAL, "--shard %d/%d under mpirun: use one or the other (mpirun shares the files itself)", shard_i, shard_n);
        goto done;
    }
    p.n_threads = threads;
    progress_state ps = {.tty = isatty(STDERR_FILENO), .last_tenth = 0, .t0 = mm_now_s()};
    if (!quiet && rank == 0) {
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
    if (!rc && !window_set) p.window_s = default_window(b, bundle_path, quiet || rank != 0);
    mm_library_index_stats s = {0};
    double t0 = mm_now_s(), c0 = cpu_s();
    if (mpi_on) rc = mm_mpi_agree(rc, &err);
    if (!rc) {
        if (shard_n) rc = mm_library_index_shard(b, bundle_path, va, source, out, shard_i, shard_n, &p, &s, &err);
        else rc = mm_library_index_dist(b, bundle_path, va, source, out, &p, &s, &err);
        if (rc && !va && no_table.msg[0]) {   /* e.g. labels that need the table */
            size_t l = strlen(err.msg);
            if (snprintf(err.msg + l, sizeof err.msg - l, " (no valence–arousal table: %s)", no_table.msg) < 0) err.msg[l] = 0;
        }
    }
    if (!rc && rank == 0) {
        int cores = threads * mm_mpi_size();
        if (shard_n) {
            fprintf(stderr, "wrote part %s: shard %d/%d, %zu of its %zu files classified (%zu failed)", out, shard_i, shard_n,
                    s.n_indexed, s.n_files, s.n_failed);
        } else {
            list_failed(out);
            fprintf(stderr, "indexed %zu of %zu files → %s (%zu classified, %zu unchanged, %zu removed, %zu failed)",
                    s.n_indexed, s.n_files, out, s.n_new, s.n_unchanged, s.n_removed, s.n_failed);
        }
        if (s.n_short) fprintf(stderr, "; %zu shorter than the %g s window, each classified whole as one window", s.n_short, p.window_s);
        say_throughput(s.audio_s, mm_now_s() - t0, cpu_s() - c0, cores, mm_mpi_active());
        if (mm_mpi_active()) fprintf(stderr, " (%d MPI ranks × %d threads)", mm_mpi_size(), threads);
        fputc('\n', stderr);
    }
done:
    if (rc && rank == 0) mm_cli_fail("index", &err);
    if (mpi_on) mm_mpi_finalize();
    mm_bundle_free(b);
    mm_va_table_free(va);
    free(pos);
    return usage_rc ? usage_rc : rc ? 1 : 0;
}
