/* cmd_recommend.c — `melodic recommend`: voice → emotion → playlist.
 *
 * Classifies a voice recording with a speech bundle, maps its probabilities
 * onto the valence–arousal plane (the installed configs/recommend/default.yaml,
 * found from the executable, or --config) and asks
 * the recommender for a playlist from an indexed library; optional per-user
 * feedback (SQLite). Also records feedback (--feedback) and runs batches of
 * probability vectors from HDF5 (--batch, for scripts/bench_congruence.py).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/util.h"
#include "core/clock.h"
#include "io/h5.h"
#include "runtime/bundle.h"
#include "runtime/recommend.h"

static const char *usage =
    "usage: melodic recommend --speech SPEECH.h5 --library LIBRARY.h5 VOICE [-n N]\n"
    "                         [--policy match|regulate] [--target WORD|V,A] [--user ID]\n"
    "                         [--db FILE] [--json] [--seed S] [--lambda L] [--temperature T]\n"
    "                         [--epsilon E] [--explore P] [--config FILE]\n"
    "       melodic recommend --db FILE --user ID --feedback like|skip|dislike --track ID|PATH\n"
    "                         [--library LIBRARY.h5]\n"
    "       melodic recommend --library LIBRARY.h5 --batch PROBA.h5 -o OUT.h5 [options]\n"
    "\n"
    "Recognises the emotion in VOICE with the speech bundle and recommends N tracks (default\n"
    "10) of the library. match (the paper's policy): music of the listener's quadrant of the\n"
    "valence–arousal plane, nearest and most confidently classified first. regulate (iso\n"
    "principle): starts at the listener's state and moves step by step to a calm–positive\n"
    "target (--target an emotion word of the config or 'valence,arousal' in [-1, 1]).\n"
    "No track twice, no artist twice in a row, diversity by maximal marginal relevance\n"
    "(--lambda, 1 = off); one reason per track. With --user and --db, disliked tracks never\n"
    "return and liked tracks and artists rank higher; --feedback records such an event.\n"
    "A SPEECH.h5 with per-speaker calibration (exported with preprocessing.group_norm)\n"
    "needs --db and --user: the user's earlier clips in the store (as `melodic serve` keeps\n"
    "them) calibrate VOICE once there are enough; VOICE joins them either way.\n"
    "--temperature T (default 0) samples each slot with probability ∝ exp(score / T):\n"
    "variety for a seed (0.05–0.2 keeps the quadrant's best tracks likely). --epsilon E\n"
    "(default 0) takes each track uniformly (seeded) among those scoring within E of the\n"
    "slot's best; --explore P (match; default: the config's recommend.explore, 0.2 in the\n"
    "shipped configs/recommend/default.yaml, else 0) makes each slot with probability\n"
    "P·2(1 − m), m the listener quadrant's share of the speech probability, a wider pick:\n"
    "a track of the listener's quadrant drawn in proportion to its confidence.\n"
    "--shortlist K caps the candidates drawn from the index (default 8192); --exhaustive\n"
    "scans every track instead (the reference; slow on large libraries).\n"
    "--batch reads /proba (N, labels) and /labels from PROBA.h5 and writes /tracks (N, n),\n"
    "library indices, -1 padded; with --temperature, --epsilon or --explore row i uses\n"
    "seed S + i (one listener each); --timing prints the library's load time and the\n"
    "time per request (mean, slowest, p50/p90/p99) to stderr.\n"
    "  --config FILE  emotions, merges, target and recommend defaults (default: the installed\n"
    "                 " MM_CLI_RECOMMEND_CONFIG "; $MELODIC_SHARE overrides)\n";

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void print_result(const mm_recommender *r, const mm_library *lib, const mm_rec_result *res,
                         const float *proba, int json)
{
    int k = mm_recommender_n_labels(r);
    if (json) {
        printf("{\"policy\": \"%s\", \"listener\": {\"label\": ", mm_policy_name(res->policy));
        json_str(stdout, mm_recommender_label(r, res->top_label));
        printf(", \"confidence\": %.4f, \"valence\": %.4f, \"arousal\": %.4f, \"quadrant\": %d, \"proba\": {",
               res->top_proba, res->listener.valence, res->listener.arousal, res->listener_quadrant);
        for (int c = 0; c < k; c++) {
            printf("%s", c ? ", " : "");
            json_str(stdout, mm_recommender_label(r, c));
            printf(": %.4f", proba[c]);
        }
        printf("}}, \"target\": {\"valence\": %.4f, \"arousal\": %.4f}, \"note\": ", res->target.valence,
               res->target.arousal);
        json_str(stdout, res->note);
        printf(", \"tracks\": [");
        for (size_t i = 0; i < res->n; i++) {
            const mm_library_track *t = mm_library_track_at(lib, res->items[i].track);
            printf("%s\n  {\"rank\": %zu, \"id\": ", i ? "," : "", i + 1);
            json_str(stdout, t->id);
            printf(", \"path\": ");
            json_str(stdout, t->path);
            printf(", \"artist\": ");
            json_str(stdout, t->artist);
            printf(", \"title\": ");
            json_str(stdout, t->title);
            printf(", \"label\": ");
            json_str(stdout, mm_library_class_name(lib, t->top_class));
            printf(", \"confidence\": %.4f, \"quadrant\": %d, \"valence\": %.4f, \"arousal\": %.4f, "
                   "\"filled\": %s, \"reason\": ",
                   t->confidence, t->quadrant, t->va.valence, t->va.arousal, res->items[i].filled ? "true" : "false");
            json_str(stdout, res->items[i].reason);
            printf("}");
        }
        printf("\n]}\n");
        return;
    }
    printf("listener: %s %.0f%% → valence %+.2f, arousal %+.2f (Q%d); policy %s\n",
           mm_recommender_label(r, res->top_label), 100.0 * res->top_proba, res->listener.valence,
           res->listener.arousal, res->listener_quadrant, mm_policy_name(res->policy));
    printf("%s\n", res->note);
    for (size_t i = 0; i < res->n; i++) {
        const mm_library_track *t = mm_library_track_at(lib, res->items[i].track);
        printf("%2zu. %s — %s  [%s %.2f]  %s\n    %s\n", i + 1, t->artist[0] ? t->artist : "(unknown artist)",
               t->title, mm_library_class_name(lib, t->top_class), t->confidence, t->path, res->items[i].reason);
    }
}

/* "valence,arousal" or an emotion word of the table. */
static int parse_target(const char *s, const mm_va_table *va, mm_va *out, mm_err *err)
{
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == ',') {
        char *e2;
        double a = strtod(end + 1, &e2);
        if (*e2 || e2 == end + 1 || v < -1 || v > 1 || a < -1 || a > 1)
            return mm_err_set(err, MM_EINVAL, "--target '%s': expected valence,arousal in [-1, 1]", s);
        out->valence = (float)v;
        out->arousal = (float)a;
        return 0;
    }
    if (mm_va_lookup(va, s, out, NULL))
        return mm_err_set(err, MM_EINVAL, "--target '%s': not an emotion of the config (or valence,arousal)", s);
    return 0;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_batch(const mm_library *lib, const mm_va_table *va, const char *batch, const char *out,
                     const mm_recommend_params *p, mm_feedback *fb, int timing, mm_err *err)
{
    hid_t f;
    int rc = mm_h5_open_read(batch, &f, err);
    if (rc) return rc;
    float *proba = NULL;
    char **labels = NULL;
    size_t nl = 0;
    int rank;
    hsize_t dims[4];
    int32_t *tr = NULL;
    double *lat = NULL;
    mm_recommender *r = NULL;
    if ((rc = mm_h5_read_f32(f, "proba", 2, &proba, &rank, dims, err))) goto done;
    if ((rc = mm_h5_read_strings(f, "labels", &labels, &nl, err))) goto done;
    if (dims[1] != nl) { rc = mm_err_set(err, MM_EFORMAT, "%s: proba has %llu columns but %zu labels", batch, (unsigned long long)dims[1], nl); goto done; }
    if ((rc = mm_recommender_create(lib, va, (const char *const *)labels, (int)nl, &r, err))) goto done;
    size_t n = dims[0];
    if (!(tr = mm_malloc(n ? n * p->n : 1, sizeof *tr, err))) { rc = MM_ENOMEM; goto done; }
    for (size_t i = 0; i < n * p->n; i++) tr[i] = -1;
    double t0 = mm_now_s(), worst = 0;
    lat = mm_malloc(n ? 2 * n : 1, sizeof *lat, err);   /* per request wall, then CPU time: percentiles */
    if (!lat) { rc = MM_ENOMEM; goto done; }
    size_t inexact = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        mm_rec_result res;
        mm_recommend_params pi = *p;
        if (p->temperature > 0 || p->epsilon > 0 || p->explore > 0) pi.seed = p->seed + i;   /* one listener per row */
        double t1 = mm_now_s(), c1 = cpu_s();
        if ((rc = mm_recommend(r, proba + i * nl, &pi, fb, &res, err))) { mm_err_prefix(err, "%s: row %zu", batch, i); break; }
        double dt = mm_now_s() - t1;
        lat[i] = dt;
        lat[n + i] = cpu_s() - c1;
        if (dt > worst) worst = dt;
        inexact += !res.exact;
        for (size_t j = 0; j < res.n; j++) tr[i * p->n + j] = (int32_t)res.items[j].track;
        mm_rec_result_free(&res);
    }
    if (rc) goto done;
    if (timing)
        fprintf(stderr, "timing: %zu requests, %.1f us per request (slowest %.1f us), %zu not certified exact\n", n,
                n ? 1e6 * (mm_now_s() - t0) / (double)n : 0.0, 1e6 * worst, inexact);
    if (timing && n) {
        qsort(lat, n, sizeof *lat, cmp_double);
        qsort(lat + n, n, sizeof *lat, cmp_double);
        const double *c = lat + n;
        fprintf(stderr, "timing: per request p50 %.1f us, p90 %.1f us, p99 %.1f us (CPU time p50 %.1f us, p99 %.1f us)\n",
                1e6 * lat[(n - 1) / 2], 1e6 * lat[(size_t)(0.90 * (double)(n - 1))],
                1e6 * lat[(size_t)(0.99 * (double)(n - 1))], 1e6 * c[(n - 1) / 2], 1e6 * c[(size_t)(0.99 * (double)(n - 1))]);
    }
    mm_h5_out o;
    if ((rc = mm_h5_create(out, &o, err))) goto done;
    hsize_t d[2] = {n, p->n};
    if ((rc = mm_h5_write_i32(o.file, "tracks", tr, 2, d, err))) { mm_h5_abort(&o); goto done; }
    rc = mm_h5_commit(&o, err);
done:
    mm_h5_close(f);
    free(lat);
    free(proba);
    if (labels) mm_h5_free_strings(labels, nl);
    free(tr);
    mm_recommender_free(r);
    return rc;
}

/* A number in [lo, hi]: 0, else -1. */
static int parse_range(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int mm_cmd_recommend(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'J'},
        {"timing", no_argument, NULL, 'T'}, {"exhaustive", no_argument, NULL, 'X'},
        {"speech", required_argument, NULL, 's'}, {"library", required_argument, NULL, 'L'},
        {"config", required_argument, NULL, 'c'}, {"db", required_argument, NULL, 'D'},
        {"user", required_argument, NULL, 'u'}, {"policy", required_argument, NULL, 'P'},
        {"target", required_argument, NULL, 't'}, {"feedback", required_argument, NULL, 'F'},
        {"track", required_argument, NULL, 'k'}, {"batch", required_argument, NULL, 'B'},
        {"epsilon", required_argument, NULL, 'e'}, {"explore", required_argument, NULL, 'x'},
        {"shortlist", required_argument, NULL, 'S'}, {"temperature", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 'r'}, {"lambda", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    const char *speech = NULL, *library = NULL, *voice = NULL, *config = NULL, *db = NULL, *user = NULL;
    const char *policy = NULL, *target = NULL, *feedback = NULL, *track = NULL, *batch = NULL, *out = NULL;
    long n = -1, seed = -1;
    double lambda = -1, temperature = -1, epsilon = -1, explore = -1;
    long shortlist = -1;
    int exhaustive = 0;
    int json = 0, timing = 0, usage_rc = 0, rc = 0, c;
    mm_err err = {0};
    mm_feedback *fb = NULL;
    mm_library *lib = NULL;
    mm_cfg *cfg = NULL;
    mm_va_table *va = NULL;
    mm_bundle *sb = NULL;
    mm_recommender *r = NULL;
    float *proba = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hn:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); goto done;
        case 'J': json = 1; break;
        case 'T': timing = 1; break;
        case 'X': exhaustive = 1; break;
        case 's': speech = optarg; break;
        case 'L': library = optarg; break;
        case 'c': config = optarg; break;
        case 'D': db = optarg; break;
        case 'u': user = optarg; break;
        case 'P': policy = optarg; break;
        case 't': target = optarg; break;
        case 'F': feedback = optarg; break;
        case 'k': track = optarg; break;
        case 'B': batch = optarg; break;
        case 'o': out = optarg; break;
        case 'e':
            if (parse_range(optarg, 0, 100, &epsilon)) { usage_rc = mm_cli_usage("recommend", "--epsilon expects a number in [0, 100], got '%s'", optarg); goto done; }
            break;
        case 'x':
            if (parse_range(optarg, 0, 1, &explore)) { usage_rc = mm_cli_usage("recommend", "--explore expects a probability in [0, 1], got '%s'", optarg); goto done; }
            break;
        case 'S':
            if ((shortlist = mm_cli_parse_long(optarg, 1, 100000000)) < 0) { usage_rc = mm_cli_usage("recommend", "--shortlist expects a number of candidates >= 1, got '%s'", optarg); goto done; }
            break;
        case 'm':
            if (parse_range(optarg, 0, 100, &temperature)) { usage_rc = mm_cli_usage("recommend", "--temperature expects a number in [0, 100], got '%s'", optarg); goto done; }
            break;
        case 'n':
            if ((n = mm_cli_parse_long(optarg, 1, 1000)) < 0) { usage_rc = mm_cli_usage("recommend", "-n expects a number of tracks 1..1000, got '%s'", optarg); goto done; }
            break;
        case 'r':
            if ((seed = mm_cli_parse_long(optarg, 0, 0x7fffffffffffffffL)) < 0) { usage_rc = mm_cli_usage("recommend", "--seed expects an integer >= 0, got '%s'", optarg); goto done; }
            break;
        case 'l':
            if (parse_range(optarg, 0, 1, &lambda)) { usage_rc = mm_cli_usage("recommend", "--lambda expects a number in [0, 1], got '%s'", optarg); goto done; }
            break;
        case ':': usage_rc = mm_cli_usage("recommend", "option '%s' needs a value", argv[optind - 1]); goto done;
        default: usage_rc = mm_cli_usage("recommend", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    for (; optind < argc; optind++) {
        if (!voice) voice = argv[optind];
        else { usage_rc = mm_cli_usage("recommend", "unexpected argument '%s'", argv[optind]); goto done; }
    }

    if (feedback) {   /* record one event */
        mm_feedback_action act;
        if (!db || !user || !track) { usage_rc = mm_cli_usage("recommend", "--feedback needs --db FILE, --user ID and --track ID"); goto done; }
        if (mm_feedback_action_parse(feedback, &act, &err)) { usage_rc = mm_cli_usage("recommend", "%s", err.msg); goto done; }
        const char *id = track, *artist = NULL;
        if (library) {
            if ((rc = mm_library_open(library, &lib, &err))) goto done;
            long t = mm_library_find(lib, track);
            if (t < 0) { rc = mm_err_set(&err, MM_EINVAL, "%s: no track with id or path '%s'", library, track); goto done; }
            id = mm_library_track_at(lib, (size_t)t)->id;
            artist = mm_library_track_at(lib, (size_t)t)->artist;
        }
        if (!(rc = mm_feedback_open(db, &fb, &err))) rc = mm_feedback_record(fb, user, id, artist, act, &err);
        if (!rc) fprintf(stderr, "recorded %s of %s for %s\n", feedback, id, user);
        goto done;
    }

    if (!library) { usage_rc = mm_cli_usage("recommend", "expected --library LIBRARY.h5"); goto done; }
    if (batch && !out) { usage_rc = mm_cli_usage("recommend", "--batch needs -o OUT.h5"); goto done; }
    if (!batch && (!speech || !voice)) { usage_rc = mm_cli_usage("recommend", "expected --speech SPEECH.h5 and a VOICE recording"); goto done; }
    if (db && !user) { usage_rc = mm_cli_usage("recommend", "--db needs --user ID"); goto done; }

    mm_recommend_params p;
    mm_recommend_params_default(&p);
    char cfg_buf[PATH_MAX];
    const char *cfg_path = mm_cli_recommend_config(config, cfg_buf, sizeof cfg_buf, &err);
    if (!cfg_path) { rc = err.code; goto done; }
    if ((rc = mm_cli_load_config(cfg_path, NULL, 0, &cfg, &err))) goto done;
    if ((rc = mm_va_table_from_cfg(cfg, &va, &err))) goto done;
    if ((rc = mm_recommend_params_from_cfg(mm_cfg_child(cfg, "recommend"), va, &p, &err))) goto done;
    if (policy && (rc = mm_policy_parse(policy, &p.policy, &err))) goto done;
    if (target) {
        if ((rc = parse_target(target, va, &p.target, &err))) goto done;
        p.has_target = 1;
    }
    if (n > 0) p.n = (size_t)n;
    if (seed >= 0) p.seed = (uint64_t)seed;
    if (lambda >= 0) p.lambda = lambda;
    if (temperature >= 0) p.temperature = temperature;
    if (epsilon >= 0) p.epsilon = epsilon;
    if (explore >= 0) p.explore = explore;
    if (shortlist > 0) p.shortlist = (size_t)shortlist;
    if (exhaustive) p.exhaustive = 1;
    p.user = user;
    double t_open = mm_now_s();
    if ((rc = mm_library_open(library, &lib, &err))) goto done;
    if (timing) fprintf(stderr, "timing: library of %zu tracks opened in %.1f ms\n", mm_library_size(lib), 1e3 * (mm_now_s() - t_open));
    if (db && (rc = mm_feedback_open(db, &fb, &err))) goto done;
    if (batch) {
        rc = run_batch(lib, va, batch, out, &p, fb, timing, &err);
        goto done;
    }
    if ((rc = mm_bundle_open(speech, NULL, mm_cli_default_threads(), &sb, &err))) goto done;
    if ((rc = mm_cli_check_speech_bundle(sb, speech, lib, &err))) goto done;
    if (!(proba = mm_malloc((size_t)mm_bundle_n_classes(sb), sizeof *proba, &err))) { rc = MM_ENOMEM; goto done; }
    if ((rc = mm_cli_speech_recommender(sb, lib, va, &r, &err))) goto done;
    size_t need = mm_bundle_calibration_clips(sb);
    if (!need) {
        if ((rc = mm_bundle_classify_file(sb, voice, proba, NULL, NULL, &err))) goto done;
    } else {   /* calibrated bundle: the user's stored clips, then this one joins them */
        if (!fb || !user) {
            rc = mm_err_set(&err, MM_EINVAL, "%s has per-speaker calibration: pass --db FILE --user ID (the user's earlier clips are kept there)", speech);
            goto done;
        }
        size_t dim = mm_bundle_dim(sb), have = 0;
        float *raw = mm_malloc((need + 1) * dim, sizeof *raw, &err);
        if (!raw) { rc = MM_ENOMEM; goto done; }
        rc = mm_bundle_features_file(sb, voice, raw, NULL, &err);
        if (!rc) rc = mm_feedback_calib_get(fb, user, mm_bundle_pipeline_id(sb), dim, need, raw + dim, &have, &err);
        if (!rc) rc = mm_feedback_calib_add(fb, user, mm_bundle_pipeline_id(sb), raw, dim, need, &err);
        if (!rc && have < need)
            rc = mm_err_set(&err, MM_EINVAL, "%s: user '%s' has %zu of the %zu earlier clips this calibrated model needs (this one is kept: %zu to go)",
                            speech, user, have, need, need - have - 1);
        if (!rc) rc = mm_bundle_predict(sb, raw, raw + dim, have, proba, NULL, &err);
        free(raw);
        if (rc) goto done;
    }
    mm_rec_result res;
    if ((rc = mm_recommend(r, proba, &p, fb, &res, &err))) goto done;
    print_result(r, lib, &res, proba, json);
    mm_rec_result_free(&res);
done:
    if (rc) mm_cli_fail("recommend", &err);
    mm_recommender_free(r);
    mm_bundle_free(sb);
    mm_feedback_close(fb);
    mm_library_free(lib);
    mm_va_table_free(va);
    mm_cfg_free(cfg);
    free(proba);
    return usage_rc ? usage_rc : rc ? 1 : 0;
}
