/* test_leakage.c — copies of one recording on both sides of a split
 * (exp/leakage.h): source clips by path and the counts on hand-made splits
 * (known answers), copies never split apart when made after the split and
 * split apart when made before it (a memorising tree tells which test clips
 * had a copy in training), and the runner end to end on a small synthetic
 * speech-like dataset: augment_before_split refused in one exact line before
 * any extraction, run and flagged LEAKY when allowed, its after-split twin on
 * the same cached copies, a group protocol that keeps copies together, and a
 * pre-augmented feature table caught by its repeated paths. */
#include "testutil.h"
#include <sndfile.h>
#include "data/table.h"
#include "eval/splits.h"
#include "exp/export.h"
#include "exp/leakage.h"
#include "exp/runner.h"
#include "exp/spec.h"
#include "exp/unit.h"

static char dir[256];

/* ---- known answers ---- */

/* Rows with the same non-empty path share one id; empty and NULL paths are ids of their own. */
static void test_sources_by_path(void **st)
{
    const char *paths[] = {"a.wav", "b.wav", "a.wav", "", "c.wav", "b.wav", NULL, "a.wav"};
    int32_t src[8];
    size_t n_src = 0;
    mm_err e = {0};
    assert_int_equal(mm_leak_sources(paths, 8, src, &n_src, &e), 0);
    assert_int_equal(n_src, 5);   /* a, b, c, and the two rows without a path */
    assert_int_equal(src[0], src[2]);
    assert_int_equal(src[0], src[7]);
    assert_int_equal(src[1], src[5]);
    int32_t distinct[5] = {src[0], src[1], src[3], src[4], src[6]};
    for (int i = 0; i < 5; i++) {
        assert_true(distinct[i] >= 0 && distinct[i] < 5);
        for (int j = 0; j < i; j++) assert_int_not_equal(distinct[i], distinct[j]);
    }
}

/* 4 clips entered as 3 rows each (row k·4 + i is copy k of clip i), two
 * hand-made rounds:
 *   round 1: test = the originals 0..3; training = the copies, except clip 3's
 *            (rows 7, 11 unused) → clips 0, 1, 2 leak, 3 of 4 test rows;
 *   round 2: test = all of clip 0 (0, 4, 8) and row 5 (a copy of clip 1);
 *            validation = row 1 (clip 1: validation counts as training);
 *            training = 2, 3, 6, 7, 10, 11; row 9 unused → 1 of 4 test rows.
 * Known answer: 4 of 8 test rows leaky, 3 of 4 source clips shared. */
static void test_count_known_answer(void **st)
{
    enum { T = MM_ROLE_TRAIN, V = MM_ROLE_VAL, S = MM_ROLE_TEST, N = MM_ROLE_NONE };
    uint8_t role[2 * 12] = {
        S, S, S, S, T, T, T, N, T, T, T, N,
        S, V, T, T, S, S, T, T, S, N, T, T,
    };
    mm_split split = {.n = 12, .n_folds = 2, .n_repeats = 1, .n_rounds = 2, .role = role};
    const char *paths[12];
    const char *names[4] = {"c0.wav", "c1.wav", "c2.wav", "c3.wav"};
    for (int r = 0; r < 12; r++) paths[r] = names[r % 4];
    int32_t src[12];
    size_t n_src = 0;
    mm_err e = {0};
    assert_int_equal(mm_leak_sources(paths, 12, src, &n_src, &e), 0);
    assert_int_equal(n_src, 4);
    mm_leak_count c;
    assert_int_equal(mm_leak_count_split(&split, src, n_src, &c, &e), 0);
    assert_int_equal(c.n_sources, 4);
    assert_int_equal(c.test_rows, 8);
    assert_int_equal(c.leaky_rows, 4);
    assert_int_equal(c.shared, 3);
    /* refused unless allowed, naming the experiment, the count and the key */
    mm_leak lk = {.allowed = 0};
    assert_int_equal(mm_leak_refuse(&lk, &c, "tiny", &e), MM_EINVAL);
    assert_string_equal(e.msg, "tiny: 3 of 4 source clips have copies (rows with the same path) in both training and test data; "
                               "add 'allow_copy_leakage: true' to run it anyway (the summary flags it), or use a protocol that keeps each clip's rows on one side");
    lk.allowed = 1;
    assert_int_equal(mm_leak_refuse(&lk, &c, "tiny", &e), 0);
}

/* ---- the unit pipeline: a memorising tree ---- */

/* 40 clips, one feature x = clip id, label id % 2: a fully grown tree on
 * distinct x predicts a training clip's own label (its x is a leaf's), and
 * for a clip it never saw the label of some neighbour, often wrong. */
enum { CLIPS = 40, COPIES = 2 };

static mm_cfg *tree_specs(mm_exp_model **specs, size_t *n_specs, size_t *n_models)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string("models:\n  - {name: tree, model: rf, params: {n_estimators: 1, bootstrap: false, max_features: all}}\n",
                                         "tree.yaml", &c, &e), 0);
    assert_int_equal(mm_exp_parse_models(c, specs, n_specs, n_models, &e), 0);
    return c;   /* the specs borrow their params from it */
}

static void fill_table(mm_table *t, size_t rows, float *X, int32_t *y, int32_t *g)
{
    for (size_t r = 0; r < rows; r++) {
        X[r] = (float)(r % CLIPS);
        y[r] = (int32_t)(r % CLIPS % 2);
        g[r] = -1;
    }
    *t = (mm_table){.n = rows, .d = 1, .X = X, .labels = y, .groups = g, .n_classes = 2};
}

/* Every round of env: pred[row] for each test row (one repeat: each row once). */
static void predict_rounds(const mm_unit_env *env, int32_t *pred)
{
    mm_unit_cache cache = {0};
    mm_err e = {0};
    size_t tested = 0;
    for (size_t r = 0; r < env->split->n_rounds; r++) {
        mm_unit u;
        assert_int_equal(mm_unit_fit(env, &cache, 0, r, &u, &e), 0);
        assert_false(u.failed);
        for (size_t i = 0; i < u.n_test; i++) pred[u.test_index[i]] = u.y_pred[i];
        tested += u.n_test;
        mm_unit_clear(&u);
    }
    assert_int_equal(tested, env->t->n);
    mm_unit_cache_free(&cache);
}

/* Copies made after the split (augment:) join only their own clip's side: the
 * tree's predictions are exactly those without copies (tripled training rows
 * grow the same tree), while a copy of a test clip in training would be
 * memorised and turn its wrong prediction right. Made before the split
 * (augment_before_split), every test row whose clip has a row in training,
 * as mm_leak_count_split counts them, is predicted right. */
static void test_copies_after_split_stay_together(void **st)
{
    mm_exp_model *specs = NULL;
    size_t n_specs = 0, n_models = 0;
    mm_cfg *mc = tree_specs(&specs, &n_specs, &n_models);
    mm_exp_prep prep = {0};
    mm_err e = {0};
    enum { ROWS = CLIPS * (1 + COPIES) };
    float X[ROWS];
    int32_t y[ROWS], g[ROWS], src[ROWS], plain[CLIPS], copied[CLIPS], pred[ROWS];
    mm_table t;
    fill_table(&t, CLIPS, X, y, g);
    const float *aug[COPIES] = {X, X};
    mm_split_params sp = mm_split_params_default();
    sp.kind = MM_SPLIT_STRATIFIED_KFOLD;
    sp.n_folds = 5;
    sp.shuffle = 1;
    sp.seed = 11;
    mm_split *split = NULL;
    assert_int_equal(mm_split_make(&sp, y, NULL, CLIPS, &split, &e), 0);
    mm_unit_env env = {.t = &t, .split = split, .prep = &prep, .seed = 1, .n_threads = 1, .specs = specs, .n_models = n_models};
    predict_rounds(&env, plain);
    env.aug = aug;
    env.n_aug = COPIES;
    predict_rounds(&env, copied);
    size_t wrong = 0;
    for (size_t i = 0; i < CLIPS; i++) wrong += plain[i] != y[i];
    printf("copies after the split: %zu of %d test clips wrong with and without copies\n", wrong, CLIPS);
    assert_true(wrong >= 10);   /* room for a leak to show */
    assert_memory_equal(copied, plain, sizeof plain);
    mm_split_free(split);
    /* before the split: the copies are rows of their own */
    fill_table(&t, ROWS, X, y, g);
    for (size_t r = 0; r < ROWS; r++) src[r] = (int32_t)(r % CLIPS);
    assert_int_equal(mm_split_make(&sp, y, NULL, ROWS, &split, &e), 0);
    mm_leak_count c;
    assert_int_equal(mm_leak_count_split(split, src, CLIPS, &c, &e), 0);
    env = (mm_unit_env){.t = &t, .split = split, .prep = &prep, .seed = 1, .n_threads = 1, .specs = specs, .n_models = n_models};
    predict_rounds(&env, pred);
    size_t right = 0, leaky_right = 0;
    for (size_t r = 0; r < ROWS; r++) {
        int seen = 0;   /* the row's clip has another row in training in the row's round */
        const uint8_t *role = split->role;
        size_t round = 0;
        while (split->role[round * ROWS + r] != MM_ROLE_TEST) round++;
        role += round * ROWS;
        for (size_t q = r % CLIPS; q < ROWS; q += CLIPS) seen |= role[q] == MM_ROLE_TRAIN;
        right += pred[r] == y[r];
        if (seen) { assert_int_equal(pred[r], y[r]); leaky_right++; }
    }
    printf("copies before the split: %zu of %zu test rows leaky (%zu of %d clips shared), all predicted right; %zu right in all\n",
           c.leaky_rows, c.test_rows, c.shared, CLIPS, right);
    assert_int_equal(c.test_rows, ROWS);
    assert_int_equal(leaky_right, c.leaky_rows);
    assert_true(c.leaky_rows > ROWS / 2);   /* 3 rows a clip, 5 random folds: most rows leak */
    mm_split_free(split);
    mm_exp_models_free(specs, n_specs);
    mm_cfg_free(mc);
}

/* ---- the runner on audio ---- */

/* A speech-like clip: harmonics whose pitch depends on class and speaker. */
static void write_clip(const char *path, int cls, int speaker, int take)
{
    int sr = 16000;
    size_t n = (size_t)(1.0 * sr);
    float *x = malloc(n * sizeof *x);
    double f0 = 110 + 25 * speaker + 70 * cls;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / sr, env = 0.5 + 0.5 * sin(2 * M_PI * (3 + cls) * t + take), v = 0;
        for (int h = 1; h <= 6; h++) v += sin(2 * M_PI * f0 * h * t + h * take) / (h + 1);
        x[i] = (float)(0.2 * env * v);
    }
    SF_INFO info = {.samplerate = sr, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    assert_int_equal(sf_writef_float(f, x, (sf_count_t)n), (sf_count_t)n);
    sf_close(f);
    free(x);
}

/* 4 speakers × 2 classes × 3 takes = 24 clips under dir/data/speech. */
static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_leakage_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s/data/speech", dir, dir);
    char p[512];
    snprintf(p, sizeof p, "%s/data/speech/manifest.csv", dir);
    FILE *m = fopen(p, "w");
    assert_non_null(m);
    fprintf(m, "path,label,group\n");
    for (int s = 0; s < 4; s++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 3; k++) {
                snprintf(p, sizeof p, "%s/data/speech/s%d_c%d_%d.wav", dir, s, c, k);
                write_clip(p, c, s, k);
                fprintf(m, "s%d_c%d_%d.wav,%c,%d\n", s, c, k, 'a' + c, s + 1);
            }
    fclose(m);
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

/* The experiment with extra keys; protocol unshuffled stratified 3-fold unless extra names one. */
static int run_exp(const char *extra, const char *out, mm_err *e)
{
    char text[4096];
    snprintf(text, sizeof text,
             "name: leaky\nseed: 5\ndata_root: %s/data\ncache: %s/cache\n"
             "dataset: {type: csv, manifest: speech/manifest.csv}\n"
             "features: [logmel_stats]\n%s"
             "preprocessing: {scaler: standard}\n"
             "models:\n  - {name: forest, model: rf, params: {n_estimators: 20}}\n"
             "tsne: {enabled: false}\nallow_group_leakage: true\n%s",
             dir, dir, strstr(extra, "protocol:") ? "" : "protocol: {kind: stratified_kfold, n_folds: 3}\n", extra);
    mm_cfg *c = NULL;
    int rc = mm_cfg_parse_string(text, "leaky.yaml", &c, e);
    if (rc) return rc;
    mm_run_opts o = {.out_dir = out, .config_path = "leaky.yaml", .n_threads = 2, .quiet = 1};
    rc = mm_experiment_run(c, &o, e);
    mm_cfg_free(c);
    return rc;
}

static char *read_out(const char *out, const char *file)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", out, file);
    char *s = tu_read_file(p);
    assert_non_null(s);
    return s;
}

#define BEFORE "augment_before_split: {gain: {db: [-6]}, noise: {color: [white], snr: [20]}}\n"
#define AFTER "augment: {gain: {db: [-6]}, noise: {color: [white], snr: [20]}}\n"

/* Unshuffled stratified 3-fold on the expanded rows (each class: its clips,
 * then their first copies, then their second) puts exactly one row of every
 * clip in each fold (scikit-learn's StratifiedKFold allocation): all 24 clips
 * shared, all 72 test rows leaky. Refused before any extraction. */
static void test_runner_refuses(void **st)
{
    char out[400];
    snprintf(out, sizeof out, "%s/refused", dir);
    mm_err e = {0};
    assert_int_not_equal(run_exp(BEFORE, out, &e), 0);
    assert_string_equal(e.msg, "leaky: 24 of 24 source clips have copies in both training and test data (augment_before_split makes 2 copies of every clip before the split); "
                               "add 'allow_copy_leakage: true' to run it anyway (the summary flags it), or augment after the split with 'augment:'");
    assert_int_not_equal(tu_system("test -e %s", out), 0);          /* no output */
    assert_int_not_equal(tu_system("ls %s/cache/*.h5 >/dev/null 2>&1", dir), 0);   /* nothing extracted */
    /* the key is checked like the others */
    assert_int_not_equal(run_exp(BEFORE AFTER, out, &e), 0);
    assert_non_null(strstr(e.msg, "augment_before_split and augment: give one"));
    assert_int_not_equal(run_exp("augment_before_split: {noise: {snr: [90]}}\n", out, &e), 0);
    assert_non_null(strstr(e.msg, "augment_before_split.noise.snr 90 is out of range"));
    assert_null(strchr(e.msg, '\n'));
}

/* Run extra into dir/name, which must succeed; its summary.md and summary.json. */
static void run_ok(const char *extra, const char *name, char **md, char **js)
{
    char out[400];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    mm_err e = {0};
    int rc = run_exp(extra, out, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
    *md = read_out(out, "summary.md");
    *js = read_out(out, "summary.json");
}

/* An augment_before_split experiment is not exported: the scores a bundle
 * carries would be the leaky ones. One line, nothing written. */
static void test_export_refused(void **st)
{
    char text[1024], out[400];
    snprintf(text, sizeof text, "name: leaky\ndata_root: %s/data\ncache: %s/cache\ndataset: {type: csv, manifest: speech/manifest.csv}\n"
                                "features: [logmel_stats]\n" BEFORE "allow_copy_leakage: true\n"
                                "models:\n  - {name: forest, model: rf, params: {n_estimators: 5}}\n", dir, dir);
    snprintf(out, sizeof out, "%s/leaky_bundle.h5", dir);
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "leaky.yaml", &c, &e), 0);
    mm_export_opts o = {.model = "forest", .out_path = out, .config_path = "leaky.yaml", .n_threads = 1};
    assert_int_equal(mm_export_bundle(c, &o, &e), MM_EINVAL);
    mm_cfg_free(c);
    assert_non_null(strstr(e.msg, "leaky.yaml: export of an augment_before_split experiment"));
    assert_null(strchr(e.msg, '\n'));
    assert_int_not_equal(tu_system("test -e %s", out), 0);
}

/* Allowed: it runs, the summaries flag it; the after-split twin reads the same
 * cached copies and is not flagged; a group protocol keeps every clip's rows together. */
static void test_runner_allowed_and_twin(void **st)
{
    char *md, *js;
    run_ok(BEFORE "allow_copy_leakage: true\n", "leaky", &md, &js);
    assert_non_null(strstr(md, "# leaky\n\n**LEAKY: 72 of 72 test rows have a copy of their source clip in training** "
                               "(24 of 24 source clips have rows in both training and test data; allow_copy_leakage: true). "
                               "augment_before_split entered each of the 24 clips as 3 rows (itself; gain, noise) before the split"));
    assert_non_null(strstr(js, "\"copy_leakage\": {\"leaky\": true, \"leaky_test_rows\": 72, \"test_rows\": 72, "
                               "\"shared_source_clips\": 24, \"source_clips\": 24, \"copies_per_clip\": 2, \"before_split\": \"gain, noise\"}"));
    assert_non_null(strstr(js, "\"dataset\": {\"n\": 72,"));
    free(md); free(js);
    assert_int_equal(tu_system("ls %s/cache/*.h5 | wc -l | grep -qx 3", dir), 0);   /* clean + 2 copies */
    /* the twin: the same copies after the split */
    run_ok(AFTER, "twin", &md, &js);
    assert_int_equal(tu_system("ls %s/cache/*.h5 | wc -l | grep -qx 3", dir), 0);   /* no new table */
    assert_null(strstr(md, "LEAKY"));
    assert_null(strstr(js, "copy_leakage"));
    assert_non_null(strstr(js, "\"dataset\": {\"n\": 24,"));
    free(md); free(js);
    /* speakers held out: copies share their clip's speaker, so none is split apart */
    run_ok(BEFORE "protocol: {kind: group_kfold, n_folds: 2}\n", "grouped", &md, &js);
    assert_null(strstr(md, "LEAKY"));
    assert_non_null(strstr(md, "the protocol kept every clip's rows on one side"));
    assert_non_null(strstr(js, "\"copy_leakage\": {\"leaky\": false, \"leaky_test_rows\": 0, \"test_rows\": 72, \"shared_source_clips\": 0,"));
    free(md); free(js);
}

/* A feature table of pre-augmented rows (the same path three times) is caught
 * by its paths: the runner cannot know how it was made, only that rows repeat. */
static void test_table_with_repeated_paths(void **st)
{
    size_t clips = 30, rows = 90, d = 3;
    mm_table t = {.n = rows, .d = d, .n_classes = 2};
    t.X = malloc(rows * d * sizeof *t.X);
    t.labels = malloc(rows * sizeof *t.labels);
    t.groups = malloc(rows * sizeof *t.groups);
    t.paths = calloc(rows, sizeof *t.paths);
    t.feature_names = calloc(d, sizeof *t.feature_names);
    char *ln[2] = {"a", "b"};
    t.label_names = ln;
    for (size_t r = 0; r < rows; r++) {
        size_t c = r % clips;
        t.labels[r] = (int32_t)(c % 2);
        t.groups[r] = -1;
        for (size_t j = 0; j < d; j++) t.X[r * d + j] = (float)(c * 0.1 + j + 0.01 * (double)(r / clips) + (c % 2));
        char p[32];
        snprintf(p, sizeof p, "clip%zu.wav", c);
        t.paths[r] = strdup(p);
    }
    for (size_t j = 0; j < d; j++) { char f[16]; snprintf(f, sizeof f, "f%zu", j); t.feature_names[j] = strdup(f); }
    char path[400];
    snprintf(path, sizeof path, "%s/preaugmented.h5", dir);
    mm_err e = {0};
    assert_int_equal(mm_table_write(&t, path, &e), 0);
    for (size_t r = 0; r < rows; r++) free(t.paths[r]);
    for (size_t j = 0; j < d; j++) free(t.feature_names[j]);
    free(t.paths); free(t.feature_names); free(t.X); free(t.labels); free(t.groups);
    char text[1024];
    snprintf(text, sizeof text, "name: pre\nseed: 1\ntable: %s\nprotocol: {kind: stratified_kfold, n_folds: 3}\n"
                                "models:\n  - {name: forest, model: rf, params: {n_estimators: 5}}\ntsne: {enabled: false}\n", path);
    char out[400];
    snprintf(out, sizeof out, "%s/pre", dir);
    for (int allow = 0; allow < 2; allow++) {
        char full[1200];
        snprintf(full, sizeof full, "%s%s", text, allow ? "allow_copy_leakage: true\n" : "");
        mm_cfg *c = NULL;
        assert_int_equal(mm_cfg_parse_string(full, "pre.yaml", &c, &e), 0);
        mm_run_opts o = {.out_dir = out, .config_path = "pre.yaml", .n_threads = 1, .quiet = 1};
        int rc = mm_experiment_run(c, &o, &e);
        mm_cfg_free(c);
        if (!allow) {
            assert_int_not_equal(rc, 0);
            assert_string_equal(e.msg, "pre: 30 of 30 source clips have copies (rows with the same path) in both training and test data; "
                                       "add 'allow_copy_leakage: true' to run it anyway (the summary flags it), or use a protocol that keeps each clip's rows on one side");
            continue;
        }
        if (rc) fprintf(stderr, "%s\n", e.msg);
        assert_int_equal(rc, 0);
        char *md = read_out(out, "summary.md");
        assert_non_null(strstr(md, "**LEAKY: 90 of 90 test rows have a copy of their source clip in training**"));
        free(md);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources_by_path),
        cmocka_unit_test(test_count_known_answer),
        cmocka_unit_test(test_copies_after_split_stay_together),
        cmocka_unit_test(test_runner_refuses),
        cmocka_unit_test(test_runner_allowed_and_twin),
        cmocka_unit_test(test_export_refused),
        cmocka_unit_test(test_table_with_repeated_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
