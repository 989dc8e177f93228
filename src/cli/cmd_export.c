/* cmd_export.c — `melodic export` and `melodic classify`: model bundles.
 *
 * export looks for the experiment's cross-validated results (summary.json)
 * where `make run` writes them (results/<name>), beside the experiment's
 * folder (<experiment dir>/../results/<name>) and where `melodic run`
 * writes them without -o (results/runs/<name>), or in --results DIR.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/util.h"
#include "exp/export.h"
#include "runtime/bundle.h"

static const char *export_usage =
    "usage: melodic export EXPERIMENT.yaml --model NAME -o BUNDLE.h5 [--embed-weights]\n"
    "                      [--results DIR] [--set key=value]... [-j N]\n"
    "\n"
    "Refits the named model or ensemble of an experiment, with its preprocessing, on all\n"
    "of the experiment's data and writes a self-contained bundle for the runtime: feature\n"
    "pipeline (backbone weights by name and SHA-256, or embedded with --embed-weights),\n"
    "scaler, model, label names, the cross-validated metrics of DIR/summary.json, and\n"
    "provenance.\n"
    "  --results DIR  the experiment's results folder (default: the first of results/<name>\n"
    "                 (as `make run` writes), <experiment dir>/../results/<name> and\n"
    "                 results/runs/<name> (as `melodic run` without -o) holding summary.json;\n"
    "                 without one the bundle carries no /metrics, with a warning)\n";

static const char *classify_usage =
    "usage: melodic classify BUNDLE.h5 AUDIO... [--calibrate] [--json] [-j N]\n"
    "\n"
    "Prints the label and the class probabilities of each audio file.\n"
    "  --calibrate  the files are clips of one speaker: each is classified after\n"
    "               per-speaker calibration with up to K others (bundles exported\n"
    "               from an experiment with preprocessing.group_norm {clips: K}\n"
    "               need it; at least min(K, 5) others)\n";

/* The results folder of experiment `name` (config at cfg_path): the first
 * candidate holding summary.json into buf, or NULL. */
static const char *find_results(const char *cfg_path, const char *name, char *buf, size_t size)
{
    char dir[PATH_MAX], sum[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", cfg_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
    for (int k = 0; k < 3; k++) {
        int n;
        if (k == 0) n = snprintf(buf, size, "results/%s", name);
        else if (k == 1) n = snprintf(buf, size, "%s/../results/%s", dir, name);
        else n = snprintf(buf, size, "results/runs/%s", name);
        if (n < 0 || (size_t)n >= size) continue;
        n = snprintf(sum, sizeof sum, "%s/summary.json", buf);
        if (n > 0 && (size_t)n < sizeof sum && access(sum, R_OK) == 0) return buf;
    }
    return NULL;
}

static void git_commit(char *buf, size_t size)
{
    snprintf(buf, size, "unknown");
    FILE *p = popen("git rev-parse --short=12 HEAD 2>/dev/null", "r");
    if (!p) return;
    if (fgets(buf, (int)size, p)) buf[strcspn(buf, "\n")] = 0;
    else snprintf(buf, size, "unknown");
    pclose(p);
}


/* The results folder: --results DIR must hold summary.json; else the first
 * candidate that does, or NULL with a warning. */
static int results_dir(const mm_cfg *cfg, const char *path, mm_export_opts *o, char *buf, size_t size, mm_err *err)
{
    if (o->results_dir) {
        snprintf(buf, size, "%s/summary.json", o->results_dir);
        if (access(buf, R_OK) != 0)
            return mm_err_set(err, MM_EIO, "--results %s: no summary.json there (run the experiment with -o %s first)",
                              o->results_dir, o->results_dir);
        return 0;
    }
    const char *name = NULL;
    int rc = mm_cfg_get_str(cfg, "name", "experiment", &name, err);
    if (!rc && !(o->results_dir = find_results(path, name, buf, size)))
        fprintf(stderr, "melodic export: warning: no results of '%s' (summary.json in results/%s, "
                        "<experiment dir>/../results/%s or results/runs/%s): the bundle will carry no "
                        "cross-validated /metrics (run the experiment first, or pass --results DIR)\n",
                name, name, name, name);
    return rc;
}

int mm_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"model", required_argument, NULL, 'm'},
        {"results", required_argument, NULL, 'R'}, {"embed-weights", no_argument, NULL, 'E'},
        {"set", required_argument, NULL, 's'}, {NULL, 0, NULL, 0},
    };
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t n_sets = 0;
    mm_export_opts o = {.n_threads = mm_cli_default_threads(), .on_progress = mm_cli_say};
    mm_cfg *cfg = NULL;
    mm_err err = {0};
    int rc = 2, c;
    if (!sets) return mm_cli_usage("export", "out of memory");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:j:", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(export_usage, stdout); rc = 0; goto done;
        case 'o': o.out_path = optarg; break;
        case 'm': o.model = optarg; break;
        case 'R': o.results_dir = optarg; break;
        case 'E': o.embed_weights = 1; break;
        case 's': sets[n_sets++] = optarg; break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) { mm_cli_usage("export", "-j expects a thread count >= 1"); goto done; }
            o.n_threads = (int)v;
            break;
        default:
            mm_cli_usage("export", "unknown option '%s'", argv[optind - 1]);
            goto done;
        }
    }
    const char *path = optind < argc ? argv[optind] : NULL;
    if (optind + 1 < argc) { mm_cli_usage("export", "unexpected argument '%s'", argv[optind + 1]); goto done; }
    if (!path || !o.model || !o.out_path) {
        mm_cli_usage("export", "expected EXPERIMENT.yaml, --model NAME and -o BUNDLE.h5");
        goto done;
    }
    char commit[64], results[PATH_MAX];
    git_commit(commit, sizeof commit);
    o.git_commit = commit;
    o.config_path = path;
    rc = mm_cli_load_config(path, sets, n_sets, &cfg, &err);
    if (!rc) rc = results_dir(cfg, path, &o, results, sizeof results, &err);
    if (!rc) rc = mm_export_bundle(cfg, &o, &err);
    if (rc) { mm_cli_fail("export", &err); rc = 1; }
    else fprintf(stderr, "wrote %s\n", o.out_path);
done:
    mm_cfg_free(cfg);
    free(sets);
    return rc;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int mm_cmd_classify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'J'},
        {"calibrate", no_argument, NULL, 'C'}, {NULL, 0, NULL, 0},
    };
    const char *bundle = NULL;
    char **files = calloc((size_t)argc + 1, sizeof *files);
    size_t n_files = 0, need = 0, dim = 0, n_ok = 0;
    int json = 0, calibrate = 0, threads = mm_cli_default_threads(), c, k = 0, failures = 0, rc = 0;
    mm_err err = {0};
    mm_bundle *b = NULL;
    float *p = NULL, *raw = NULL, *hist = NULL;
    double *dur = NULL;
    char **ferr = NULL;
    if (!files) return mm_cli_usage("classify", "out of memory");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hj:", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(classify_usage, stdout); goto done;
        case 'J': json = 1; break;
        case 'C': calibrate = 1; break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) { rc = mm_cli_usage("classify", "-j expects a thread count >= 1"); goto done; }
            threads = (int)v;
            break;
        default: rc = mm_cli_usage("classify", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    if (optind < argc) bundle = argv[optind++];
    while (optind < argc) files[n_files++] = argv[optind++];
    if (!bundle || !n_files) { rc = mm_cli_usage("classify", "expected BUNDLE.h5 and audio files"); goto done; }
    if (mm_bundle_open(bundle, NULL, threads, &b, &err)) { rc = mm_cli_fail("classify", &err); goto done; }
    k = mm_bundle_n_classes(b);
    need = mm_bundle_calibration_clips(b);
    dim = mm_bundle_dim(b);
    if (need && !calibrate) {
        rc = mm_cli_usage("classify", "%s was exported with per-speaker calibration: pass --calibrate and clips of one speaker (it was made for %zu)", bundle, need);
        goto done;
    }
    p = malloc((size_t)k * sizeof *p);
    /* --calibrate: every file's raw features first, then each classified
     * with the others as its speaker's history */
    raw = calibrate ? malloc((n_files + 1) * dim * sizeof *raw) : NULL;
    hist = calibrate ? malloc((n_files + 1) * dim * sizeof *hist) : NULL;
    dur = calibrate ? calloc(n_files + 1, sizeof *dur) : NULL;
    ferr = calibrate ? calloc(n_files + 1, sizeof *ferr) : NULL;
    if (!p || (calibrate && (!raw || !hist || !dur || !ferr))) {
        fprintf(stderr, "melodic classify: out of memory\n");
        rc = 1;
        goto done;
    }
    for (size_t i = 0; calibrate && i < n_files; i++) {
        mm_err e = {0};
        if (mm_bundle_features_file(b, files[i], raw + i * dim, &dur[i], &e)) {
            ferr[i] = strdup(e.msg);   /* may be NULL: dur[i] < 0 marks the file bad */
            dur[i] = -1;
            fprintf(stderr, "melodic classify: %s\n", e.msg);
        } else n_ok++;
    }
    /* each clip is calibrated with up to `need` others (the first ones, in argument order);
     * fewer than min(need, 5) others give too noisy a deviation */
    size_t floor_k = need && need < 5 ? need : 5;
    if (calibrate && n_ok < floor_k + 1) {
        fprintf(stderr, "melodic classify: --calibrate needs at least %zu readable clips of the speaker, got %zu\n", floor_k + 1, n_ok);
        rc = 1;
        goto done;
    }
    if (calibrate && need && n_ok - 1 < need)
        fprintf(stderr, "melodic classify: calibrating with %zu clips of the speaker; %s was made for %zu (fewer clips, noisier calibration)\n",
                n_ok - 1, bundle, need);
    if (json) printf("[");
    for (size_t i = 0; i < n_files; i++) {
        double secs = 0;
        mm_err e = {0};
        int r;
        if (!calibrate) r = mm_bundle_classify_file(b, files[i], p, NULL, &secs, &e);
        else if (dur[i] < 0) { r = MM_EDATA; snprintf(e.msg, sizeof e.msg, "%s", ferr[i] ? ferr[i] : "unreadable"); }
        else {   /* history: up to `need` other readable clips */
            size_t h = 0, cap = need ? need : n_files;
            for (size_t j = 0; j < n_files && h < cap; j++)
                if (j != i && dur[j] >= 0) memcpy(hist + h++ * dim, raw + j * dim, dim * sizeof *hist);
            secs = dur[i];
            r = mm_bundle_predict(b, raw + i * dim, hist, h, p, NULL, &e);
        }
        if (r) {
            failures++;
            fprintf(stderr, "melodic classify: %s\n", e.msg);
            if (json) { printf("%s{\"file\": ", i ? ",\n " : ""); json_string(files[i]); printf(", \"error\": "); json_string(e.msg); printf("}"); }
            continue;
        }
        int best = 0;
        for (int c = 1; c < k; c++) if (p[c] > p[best]) best = c;
        if (json) {
            printf("%s{\"file\": ", i ? ",\n " : "");
            json_string(files[i]);
            printf(", \"label\": ");
            json_string(mm_bundle_class_name(b, best));
            printf(", \"duration_s\": %.3f, \"proba\": {", secs);
            for (int c = 0; c < k; c++) { printf("%s", c ? ", " : ""); json_string(mm_bundle_class_name(b, c)); printf(": %.4f", p[c]); }
            printf("}}");
        } else {
            printf("%s\t%s", files[i], mm_bundle_class_name(b, best));
            for (int c = 0; c < k; c++) printf("\t%s=%.3f", mm_bundle_class_name(b, c), p[c]);
            printf("\n");
        }
    }
    if (json) printf("]\n");
    rc = failures ? 1 : 0;
done:
    for (size_t i = 0; ferr && i < n_files; i++) free(ferr[i]);
    free(p), free(raw), free(hist), free(dur), free(ferr);
    mm_bundle_free(b);
    free(files);
    return rc;
}
