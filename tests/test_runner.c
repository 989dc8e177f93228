/* test_runner.c — the experiment runner end to end on a small synthetic
 * table: results layout, metrics recomputed from the stored predictions,
 * soft- and hard-voting ensembles (hard: vote shares, as bundles), the member bound, determinism across thread counts, --resume, the
 * leakage guard, and errors before any work. */
#include "testutil.h"
#include "core/rng.h"
#include "data/table.h"
#include "exp/runner.h"
#include "exp/spec.h"
#include "learn/groupnorm.h"
#include "learn/voting.h"
#include "io/h5.h"

static char dir[256], table_path[300];

/* 240 rows, 3 classes, 12 groups (speakers), 6 informative features + noise. */
static void make_table(void)
{
    size_t n = 240, d = 8;
    mm_table t = {0};
    t.n = n; t.d = d; t.n_classes = 3;
    t.X = malloc(n * d * sizeof *t.X);
    t.labels = malloc(n * sizeof *t.labels);
    t.groups = malloc(n * sizeof *t.groups);
    t.paths = calloc(n, sizeof *t.paths);
    t.feature_names = calloc(d, sizeof *t.feature_names);
    char *ln[3] = {"a", "b", "c"};
    t.label_names = ln;
    mm_rng r;
    mm_rng_seed(&r, 7, 0, 0);
    for (size_t i = 0; i < n; i++) {
        t.labels[i] = (int32_t)(i % 3);
        t.groups[i] = (int32_t)(1 + i % 12);
        for (size_t j = 0; j < d; j++)
            t.X[i * d + j] = (float)(mm_rng_normal(&r) + (j < 6 && j % 3 == (size_t)t.labels[i] ? 1.5 : 0) + 0.3 * t.groups[i] / 12.0);
        char p[32];
        snprintf(p, sizeof p, "clip%zu.wav", i);
        t.paths[i] = strdup(p);
    }
    for (size_t j = 0; j < d; j++) { char f[16]; snprintf(f, sizeof f, "f%zu", j); t.feature_names[j] = strdup(f); }
    t.group_by = "speaker";
    mm_err e = {0};
    assert_int_equal(mm_table_write(&t, table_path, &e), 0);
    for (size_t i = 0; i < n; i++) free(t.paths[i]);
    for (size_t j = 0; j < d; j++) free(t.feature_names[j]);
    free(t.paths); free(t.feature_names); free(t.X); free(t.labels); free(t.groups);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_runner_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s", dir, dir);
    snprintf(table_path, sizeof table_path, "%s/table.h5", dir);
    make_table();
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

static int run(const char *extra, const char *out, int threads, int resume, mm_err *e)
{
    char text[4096];
    snprintf(text, sizeof text,
             "name: t\nseed: 3\ntable: %s\nprotocol: {kind: group_kfold, n_folds: 4}\n"
             "%s"
             "models:\n  - {name: forest, model: rf, params: {n_estimators: 30}}\n"
             "  - {name: svm, model: svm, params: {C: 1.0}}\n"
             "ensembles:\n  - {name: both, members: [forest, svm], voting: soft}\n"
             "tsne: {enabled: false}\n%s",
             table_path, strstr(extra, "preprocessing:") ? "" : "preprocessing: {scaler: standard}\n", extra);
    mm_cfg *c = NULL;
    int rc = mm_cfg_parse_string(text, "exp.yaml", &c, e);
    if (rc) return rc;
    mm_run_opts o = {.out_dir = out, .config_path = "exp.yaml", .n_threads = threads, .resume = resume, .quiet = 1};
    rc = mm_experiment_run(c, &o, e);
    mm_cfg_free(c);
    return rc;
}

static float *read_proba(const char *out, const char *model, int round, hsize_t *dims)
{
    char p[512];
    snprintf(p, sizeof p, "%s/results.h5", out);
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(p, &f, &e), 0);
    snprintf(p, sizeof p, "models/%s/folds/%d/proba", model, round);
    float *x = NULL;
    int r;
    assert_int_equal(mm_h5_read_f32(f, p, 2, &x, &r, dims, &e), 0);
    mm_h5_close(f);
    return x;
}

static void test_results_and_metrics(void **st)
{
    char out[300];
    snprintf(out, sizeof out, "%s/run1", dir);
    mm_err e = {0};
    int rc = run("", out, 2, 0, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
    char p[512];
    snprintf(p, sizeof p, "%s/results.h5", out);
    hid_t f;
    assert_int_equal(mm_h5_open_read(p, &f, &e), 0);
    assert_int_equal(mm_h5_check_format(f, "melodic-results", 1, NULL, &e), 0);
    /* every sample tested exactly once in the first repeat; no group in two folds */
    int32_t *fold = NULL, *groups = NULL;
    int rk; hsize_t d[4];
    assert_int_equal(mm_h5_read_i32(f, "protocol/fold_of_sample", 1, &fold, &rk, d, &e), 0);
    assert_int_equal(mm_h5_read_i32(f, "dataset/groups", 1, &groups, &rk, d, &e), 0);
    for (size_t i = 0; i < d[0]; i++) {
        assert_true(fold[i] >= 0 && fold[i] < 4);
        for (size_t j = 0; j < d[0]; j++) if (groups[i] == groups[j]) assert_int_equal(fold[i], fold[j]);
    }
    free(fold); free(groups);
    /* accuracy per round recomputed from the stored predictions */
    double *acc = NULL;
    assert_int_equal(mm_h5_read_f64(f, "models/forest/metrics/accuracy", 1, &acc, &rk, d, &e), 0);
    assert_int_equal(d[0], 4);
    for (int r = 0; r < 4; r++) {
        int32_t *yt, *yp;
        hsize_t dd[4];
        snprintf(p, sizeof p, "models/forest/folds/%d/y_true", r);
        assert_int_equal(mm_h5_read_i32(f, p, 1, &yt, &rk, dd, &e), 0);
        snprintf(p, sizeof p, "models/forest/folds/%d/y_pred", r);
        assert_int_equal(mm_h5_read_i32(f, p, 1, &yp, &rk, dd, &e), 0);
        size_t ok = 0;
        for (size_t i = 0; i < dd[0]; i++) ok += yt[i] == yp[i];
        assert_true(fabs(acc[r] - (double)ok / dd[0]) < 1e-12);
        free(yt); free(yp);
    }
    /* the learners learn: well above chance (1/3) on this separable problem */
    double mean = 0;
    for (int r = 0; r < 4; r++) mean += acc[r] / 4;
    assert_true(mean > 0.6);
    free(acc);
    assert_true(mm_h5_exists(f, "models/svm/roc/a/fpr"));
    assert_true(mm_h5_exists(f, "models/both/pr/c/precision"));
    mm_h5_close(f);
    /* soft voting = mean of the members' probabilities */
    for (int r = 0; r < 4; r++) {
        hsize_t da[4], db[4], dc[4];
        float *a = read_proba(out, "forest", r, da), *b = read_proba(out, "svm", r, db), *c = read_proba(out, "both", r, dc);
        for (size_t i = 0; i < da[0] * da[1]; i++) assert_true(fabsf(c[i] - (a[i] + b[i]) / 2) < 1e-6f);
        free(a); free(b); free(c);
    }
    snprintf(p, sizeof p, "%s/summary.md", out);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    char buf[8192] = "";
    size_t nr = fread(buf, 1, sizeof buf - 1, fp);
    buf[nr] = 0;
    fclose(fp);
    assert_non_null(strstr(buf, "| forest |"));
    assert_non_null(strstr(buf, "| both |"));
    assert_non_null(strstr(buf, "group_kfold"));
    assert_null(strstr(buf, "; date "));   /* what is not reproducible lives in timing.json */
    assert_null(strstr(buf, "Fit s"));
    snprintf(p, sizeof p, "%s/summary.json", out);
    assert_int_equal(access(p, R_OK), 0);
    assert_int_equal(tu_system("grep -q '\"accuracy\"' %s/summary.json && ! grep -q 'date\\|_seconds' %s/summary.json && "
                               "grep -q '\"date\"' %s/timing.json && "
                               "grep -q '\"forest\": {\"fit_seconds\": {\"mean\"' %s/timing.json",
                               out, out, out, out), 0);
}

static void test_deterministic_and_resume(void **st)
{
    char o1[300], o2[300];
    snprintf(o1, sizeof o1, "%s/det1", dir);
    snprintf(o2, sizeof o2, "%s/det2", dir);
    mm_err e = {0};
    assert_int_equal(run("", o1, 1, 0, &e), 0);
    assert_int_equal(run("", o2, 2, 0, &e), 0);
    for (int r = 0; r < 4; r++) {
        hsize_t da[4], db[4];
        float *a = read_proba(o1, "both", r, da), *b = read_proba(o2, "both", r, db);
        assert_memory_equal(a, b, da[0] * da[1] * sizeof *a);
        free(a); free(b);
    }
    /* resume: drop the results and one unit; the rest is reused, the results equal */
    char p[512];
    snprintf(p, sizeof p, "%s/results.h5", o1);
    unlink(p);
    snprintf(p, sizeof p, "%s/units/svm__r002.h5", o1);
    unlink(p);
    assert_int_equal(tu_system("touch -d '2001-01-01' %s/units/forest__r000.h5", o1), 0);
    assert_int_equal(run("", o1, 2, 1, &e), 0);
    assert_int_equal(tu_system("test %s/units/forest__r000.h5 -ot %s/units/svm__r002.h5", o1, o1), 0);
    for (int r = 0; r < 4; r++) {
        hsize_t da[4], db[4];
        float *a = read_proba(o1, "svm", r, da), *b = read_proba(o2, "svm", r, db);
        assert_memory_equal(a, b, da[0] * da[1] * sizeof *a);
        free(a); free(b);
    }
}

static void test_leakage_guard(void **st)
{
    char out[300];
    snprintf(out, sizeof out, "%s/leak", dir);
    mm_err e = {0};
    char text[4096];
    snprintf(text, sizeof text, "name: t\ntable: %s\nprotocol: {kind: stratified_kfold, n_folds: 3, shuffle: true}\n"
             "models: [rf]\ntsne: false\n", table_path);
    mm_cfg *c = NULL;
    assert_int_equal(mm_cfg_parse_string(text, "leak.yaml", &c, &e), 0);
    mm_run_opts o = {.out_dir = out, .config_path = "leak.yaml", .n_threads = 1, .quiet = 1};
    assert_int_not_equal(mm_experiment_run(c, &o, &e), 0);
    assert_non_null(strstr(e.msg, "same speaker in training and test"));
    assert_non_null(strstr(e.msg, "allow_group_leakage"));
    mm_err e2 = {0};
    assert_int_equal(mm_cfg_set(c, "allow_group_leakage=true", &e2), 0);
    assert_int_equal(mm_experiment_run(c, &o, &e2), 0);
    char p[512];
    snprintf(p, sizeof p, "grep -q 'Group leakage allowed' %s/summary.md", out);
    assert_int_equal(tu_system("%s", p), 0);
    mm_cfg_free(c);
    /* errors before any work, naming what is wrong */
    snprintf(text, sizeof text, "name: t\ntable: %s\nprotocol: {kind: group_kfold, n_folds: 20}\nmodels: [rf]\n", table_path);
    assert_int_equal(mm_cfg_parse_string(text, "folds.yaml", &c, &e), 0);
    assert_int_not_equal(mm_experiment_run(c, &o, &e), 0);
    assert_non_null(strstr(e.msg, "20"));
    assert_non_null(strstr(e.msg, "12"));
    mm_cfg_free(c);
    snprintf(text, sizeof text, "name: t\ntable: %s\nmodels:\n  - {model: boosted_unicorn}\n", table_path);
    assert_int_equal(mm_cfg_parse_string(text, "model.yaml", &c, &e), 0);
    assert_int_not_equal(mm_experiment_run(c, &o, &e), 0);
    assert_non_null(strstr(e.msg, "model.yaml:4"));
    assert_non_null(strstr(e.msg, "boosted_unicorn"));
    mm_cfg_free(c);
    snprintf(text, sizeof text, "name: t\ntable: %s\nmodels: [rf]\nprotocl: {}\n", table_path);
    assert_int_equal(mm_cfg_parse_string(text, "key.yaml", &c, &e), 0);
    assert_int_not_equal(mm_experiment_run(c, &o, &e), 0);
    assert_non_null(strstr(e.msg, "unknown key 'protocl'"));
    mm_cfg_free(c);
    snprintf(text, sizeof text, "name: t\ntable: %s/missing.h5\nmodels: [rf]\n", dir);
    assert_int_equal(mm_cfg_parse_string(text, "miss.yaml", &c, &e), 0);
    assert_int_not_equal(mm_experiment_run(c, &o, &e), 0);
    assert_non_null(strstr(e.msg, "missing.h5"));
    mm_cfg_free(c);
}

/* preprocessing.group_norm: flagged in summary.md and results.h5, the same
 * results for 1 and 2 threads with K calibration clips, bad keys refused. */
static void test_group_norm(void **st)
{
    char out1[300], out2[300], p[1400];
    snprintf(out1, sizeof out1, "%s/gn1", dir);
    snprintf(out2, sizeof out2, "%s/gn2", dir);
    mm_err e = {0};
    const char *extra = "preprocessing: {group_norm: {clips: 5}, scaler: standard}\n";
    assert_int_equal(run(extra, out1, 1, 0, &e), 0);
    assert_int_equal(run(extra, out2, 2, 0, &e), 0);
    hsize_t d1[2], d2[2];
    float *a = read_proba(out1, "svm", 0, d1), *b = read_proba(out2, "svm", 0, d2);
    assert_memory_equal(a, b, d1[0] * d1[1] * sizeof *a);
    free(a), free(b);
    snprintf(p, sizeof p, "grep -q 'Per-speaker normalisation' %s/summary.md && grep -q '\"group_norm\": true, \"group_norm_clips\": 5' %s/summary.json", out1, out1);
    assert_int_equal(tu_system("%s", p), 0);
    snprintf(p, sizeof p, "%s/results.h5", out1);
    hid_t f;
    int64_t v = 0;
    assert_int_equal(mm_h5_open_read(p, &f, &e), 0);
    assert_int_equal(mm_h5_attr_get_i64(f, "group_norm_clips", &v, &e), 0);
    mm_h5_close(f);
    assert_int_equal(v, 5);
    /* the normalisation changes the results (the table has a per-speaker offset) */
    char out3[300];
    snprintf(out3, sizeof out3, "%s/gn0", dir);
    assert_int_equal(run("", out3, 1, 0, &e), 0);
    a = read_proba(out1, "svm", 0, d1), b = read_proba(out3, "svm", 0, d2);
    assert_memory_not_equal(a, b, d1[0] * d1[1] * sizeof *a);
    free(a), free(b);
    assert_int_not_equal(run("preprocessing: {group_norm: {clip: 5}}\n", out3, 1, 0, &e), 0);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "exp.yaml:"));
    assert_non_null(strstr(e.msg, "clip"));
    assert_int_not_equal(run("preprocessing: {group_norm: maybe}\n", out3, 1, 0, &e), 0);
    assert_non_null(strstr(e.msg, "group_norm"));
    /* augmentation needs audio: a feature table has none */
    assert_int_not_equal(run("augment: {speed: [1.1]}\n", out3, 1, 0, &e), 0);
    assert_non_null(strstr(e.msg, "augment needs 'dataset'"));
}

/* mm_exp_group_norm (shared by the runner and export) normalises the
 * labelled rows as mm_group_norm does on them alone; unlabelled rows stay. */
static void test_group_norm_labelled_rows(void **st)
{
    enum { N = 40, D = 3 };
    float X[N * D], ref[N * D];
    int32_t labels[N], groups[N], g2[N];
    size_t m = 0;
    mm_rng r;
    mm_rng_seed(&r, 5, 0, 0);
    for (int i = 0; i < N; i++) {
        labels[i] = i % 5 == 0 ? -1 : i % 2;
        groups[i] = i % 4;
        for (int j = 0; j < D; j++) X[i * D + j] = (float)mm_rng_normal(&r) + (float)groups[i];
    }
    for (int i = 0; i < N; i++)
        if (labels[i] >= 0) { memcpy(ref + m * D, X + i * D, D * sizeof *X); g2[m++] = groups[i]; }
    mm_err e = {0};
    assert_int_equal(mm_group_norm(ref, m, D, g2, 3, 9 ^ 0x67726e6fULL, 1, &e), 0);
    mm_table t = {.n = N, .d = D, .X = X, .labels = labels, .groups = groups};
    mm_exp_prep prep = {.group_norm = 1, .group_norm_clips = 3};
    float before[N * D];
    memcpy(before, X, sizeof X);
    assert_int_equal(mm_exp_group_norm(&t, &prep, 9, 2, &e), 0);
    for (int i = 0, k = 0; i < N; i++) {
        if (labels[i] < 0) assert_memory_equal(X + i * D, before + i * D, D * sizeof *X);
        else assert_memory_equal(X + i * D, ref + k++ * D, D * sizeof *X);
    }
}

/* A model's results do not depend on its neighbours: svm alone, beside an
 * mlp that early-stops (a validation part is carved for the mlp only; svm's
 * scaler and fit see the whole training fold) and beside a gbdt without
 * early stopping (no carve at all) gives the same probabilities. */
static void test_validation_only_for_models_that_use_it(void **st)
{
    static const char *const models[3] = {
        "models:\n  - {name: svm, model: svm}\n",
        "models:\n  - {name: svm, model: svm}\n  - {name: net, model: mlp, params: {hidden_layer_sizes: [8], max_iter: 20}}\n",
        "models:\n  - {name: svm, model: svm}\n  - {name: boost, model: gbdt, params: {n_estimators: 5}}\n"};
    float *p[3];
    hsize_t dm[3][2];
    for (int i = 0; i < 3; i++) {
        char out[300], text[2048];
        snprintf(out, sizeof out, "%s/vo%d", dir, i);
        snprintf(text, sizeof text, "name: t\nseed: 3\ntable: %s\nprotocol: {kind: group_kfold, n_folds: 4}\n"
                 "preprocessing: {scaler: standard}\n%stsne: false\n", table_path, models[i]);
        mm_cfg *c = NULL;
        mm_err e = {0};
        assert_int_equal(mm_cfg_parse_string(text, "v.yaml", &c, &e), 0);
        mm_run_opts o = {.out_dir = out, .config_path = "v.yaml", .n_threads = 1, .quiet = 1};
        if (mm_experiment_run(c, &o, &e)) fail_msg("%s", e.msg);
        mm_cfg_free(c);
        p[i] = read_proba(out, "svm", 1, dm[i]);
    }
    assert_memory_equal(p[0], p[1], dm[0][0] * dm[0][1] * sizeof(float));
    assert_memory_equal(p[0], p[2], dm[0][0] * dm[0][1] * sizeof(float));
    for (int i = 0; i < 3; i++) free(p[i]);
}

/* A fixed split by groups with its own validation groups, and a learner that
 * wants a validation part: the runner must not carve a second one. */
static void test_fixed_split_with_val_groups(void **st)
{
    char out[300], text[2048];
    snprintf(out, sizeof out, "%s/fixed", dir);
    snprintf(text, sizeof text, "name: t\ntable: %s\nprotocol: {kind: fixed, train_groups: [\"1-8\"], val_groups: [9, 10], test_groups: [11, 12]}\n"
             "models:\n  - {name: mlp, model: mlp, params: {hidden_layer_sizes: [16], max_iter: 30}}\ntsne: false\n", table_path);
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "fixed.yaml", &c, &e), 0);
    mm_run_opts o = {.out_dir = out, .config_path = "fixed.yaml", .n_threads = 1, .quiet = 1};
    int rc = mm_experiment_run(c, &o, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
    mm_cfg_free(c);
    hsize_t d[4];
    float *p = read_proba(out, "mlp", 0, d);
    assert_int_equal(d[0], 40);          /* groups 11 and 12: 2 × 20 rows */
    free(p);
}

/* A neural unit reports its epochs through the run's progress callback (its
 * last epoch always; at most one line per 5 s otherwise), so a long round is
 * never silent: "  mlp, round 1/4: epoch 12/12, loss ...". */
typedef struct epoch_lines { int last_epoch_seen, n; } epoch_lines;

static void count_epochs(void *ctx, const char *line)
{
    epoch_lines *l = ctx;
    if (strstr(line, ": epoch 12/12, loss ") && strstr(line, "mlp, round ")) l->last_epoch_seen++;
    if (strstr(line, ": epoch ")) l->n++;
}

static void test_epoch_progress(void **st)
{
    char out[300], text[2048];
    snprintf(out, sizeof out, "%s/epochs", dir);
    snprintf(text, sizeof text, "name: t\nseed: 3\ntable: %s\nprotocol: {kind: group_kfold, n_folds: 4}\n"
             "models:\n  - {name: mlp, model: mlp, params: {hidden_layer_sizes: [8], max_iter: 12}}\n"
             "  - {name: forest, model: rf, params: {n_estimators: 5}}\ntsne: false\n", table_path);
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "e.yaml", &c, &e), 0);
    epoch_lines l = {0};
    mm_run_opts o = {.out_dir = out, .config_path = "e.yaml", .n_threads = 1, .quiet = 1, .progress = 1,
                     .on_progress = count_epochs, .progress_ctx = &l};
    if (mm_experiment_run(c, &o, &e)) fail_msg("%s", e.msg);
    mm_cfg_free(c);
    assert_int_equal(l.last_epoch_seen, 4);   /* every round of the mlp; none of the forest */
    assert_true(l.n >= 4);
}

/* Issue 15: data with groups and no protocol is told what to add (not
 * refused as leakage); `melodic` without a command prints help, status 2;
 * `run --help` states the real default protocol. */
static void test_no_protocol_and_cli(void **st)
{
    char out[300], text[1024];
    snprintf(out, sizeof out, "%s/noproto", dir);
    snprintf(text, sizeof text, "name: t\ntable: %s\nmodels: [rf]\ntsne: false\n", table_path);
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "np.yaml", &c, &e), 0);
    mm_run_opts o = {.out_dir = out, .config_path = "np.yaml", .n_threads = 1, .quiet = 1};
    assert_int_not_equal(mm_experiment_run(c, &o, &e), 0);
    assert_non_null(strstr(e.msg, "np.yaml: the data has groups (speaker) and the config names no protocol"));
    assert_non_null(strstr(e.msg, "protocol: {kind: stratified_group_kfold, n_folds: 5}"));
    assert_null(strstr(e.msg, "same speaker in training and test"));
    mm_cfg_free(c);
    assert_int_equal(tu_system("%s > %s/help.txt 2>&1", tu_bin(), dir), 2);
    assert_int_equal(tu_system("grep -q 'usage: melodic <command>' %s/help.txt", dir), 0);
    assert_int_equal(tu_system("%s run --help | tr '\\n' ' ' | grep -q 'Without a protocol: stratified 5-fold'", tu_bin()), 0);
}

/* Hard voting: the ensemble's probabilities are the members' vote shares,
 * exactly what mm_voting_combine (and so an exported bundle) gives. */
static void test_hard_voting_vote_shares(void **st)
{
    char out[300], text[2048];
    snprintf(out, sizeof out, "%s/hard", dir);
    snprintf(text, sizeof text, "name: t\nseed: 3\ntable: %s\nprotocol: {kind: group_kfold, n_folds: 4}\n"
             "models:\n  - {name: forest, model: rf, params: {n_estimators: 30}}\n  - {name: svm, model: svm}\n"
             "  - {name: lr, model: logreg}\n"
             "ensembles:\n  - {name: vote, members: [forest, svm, lr], voting: hard}\ntsne: false\n", table_path);
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "hard.yaml", &c, &e), 0);
    mm_run_opts o = {.out_dir = out, .config_path = "hard.yaml", .n_threads = 1, .quiet = 1};
    int rc = mm_experiment_run(c, &o, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
    mm_cfg_free(c);
    for (int r = 0; r < 4; r++) {
        hsize_t d[3][4], dv[4];
        float *p[3] = {read_proba(out, "forest", r, d[0]), read_proba(out, "svm", r, d[1]), read_proba(out, "lr", r, d[2])};
        float *v = read_proba(out, "vote", r, dv);
        size_t n = dv[0], k = dv[1];
        float *want = malloc(n * k * sizeof *want);
        assert_int_equal(mm_voting_combine((const float *const *)p, 3, n, (int)k, NULL, 1, want, &e), 0);
        assert_memory_equal(v, want, n * k * sizeof *v);
        for (size_t i = 0; i < n; i++) {   /* shares of 3 votes */
            double s = 0;
            for (size_t j = 0; j < k; j++) s += v[i * k + j];
            assert_true(fabs(s - 1) < 1e-5);
            assert_true(fabs(v[i * k] * 3 - floor(v[i * k] * 3 + 0.5)) < 1e-3);
        }
        for (int j = 0; j < 3; j++) free(p[j]);
        free(v); free(want);
    }
}

/* More than MM_EXP_MAX_MEMBERS members: one line when parsed. */
static void test_too_many_members(void **st)
{
    char text[8192] = "name: t\nmodels: [rf, svm]\nensembles:\n  - {name: e, members: [";
    for (int i = 0; i < MM_EXP_MAX_MEMBERS + 1; i++) strcat(text, i ? ", rf" : "rf");
    strcat(text, "]}\n");
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "many.yaml", &c, &e), 0);
    mm_exp_model *m = NULL;
    size_t n = 0, nm = 0;
    assert_int_not_equal(mm_exp_parse_models(c, &m, &n, &nm, &e), 0);
    assert_non_null(strstr(e.msg, "ensemble 'e' has 65 members; at most 64 are supported"));
    assert_null(strchr(e.msg, '\n'));
    mm_cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_and_metrics),
        cmocka_unit_test(test_deterministic_and_resume),
        cmocka_unit_test(test_leakage_guard),
        cmocka_unit_test(test_group_norm),
        cmocka_unit_test(test_group_norm_labelled_rows),
        cmocka_unit_test(test_validation_only_for_models_that_use_it),
        cmocka_unit_test(test_fixed_split_with_val_groups),
        cmocka_unit_test(test_epoch_progress),
        cmocka_unit_test(test_no_protocol_and_cli),
        cmocka_unit_test(test_hard_voting_vote_shares),
        cmocka_unit_test(test_too_many_members),
    };
    return cmocka_run_group_tests_name("runner", tests, setup, teardown);
}
