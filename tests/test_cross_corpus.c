/* test_cross_corpus.c — protocol kind cross_corpus and preprocessing.domain_norm.
 *
 * Two halves of RAVDESS as two csv corpora (actors 1-12 against 13-24, statement 1,
 * repetition 1, normal intensity: 96 and 84 clips, MFCC statistics of the first second):
 * the test half names its labels differently, lacks `surprised` and has an extra class
 * (calm mapped to `bored`), so 6 classes are shared. Checked: the combined table and its
 * one round (training rows train, test rows test), the per-corpus statistics against a
 * hand computation in double, the run's test rows, classes and summary, and its
 * predictions bit for bit against a logistic regression fitted here on the training
 * side alone. Bad input (no data needed): a test set sharing no class, an unknown
 * domain_norm value, a test block without its type or its manifest, clips on both sides,
 * and the rest of the protocol's one-line errors, each before any work.
 */
#include "testutil.h"
#include <hdf5.h>
#include "data/table.h"
#include "exp/cross_corpus.h"
#include "exp/runner.h"
#include "exp/spec.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/scaler.h"

static char dir[256];
static int have_data;
static const char *const emo[8] = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"};
static const char *const code[8] = {"NEU", "CAL", "HAP", "SAD", "ANG", "FEA", "DIS", "SUR"};

/* Actors a0..a1, one clip per emotion (statement 1, repetition 1, intensity 1); the
 * test half uses codes, leaves out surprised. */
static void write_half(const char *path, const char *root, int a0, int a1, int test_half)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "path,label,group\n");
    for (int a = a0; a <= a1; a++)
        for (int e = 0; e < 8; e++) {
            if (test_half && e == 7) continue;
            fprintf(f, "%s/ravdess/Actor_%02d/03-01-%02d-01-01-01-%02d.flac,%s,%d\n", root, a, e + 1, a,
                    test_half ? code[e] : emo[e], a);
        }
    fclose(f);
}

/* Two clips of made-up classes, for the errors raised before any audio is read. */
static void write_fake(const char *name, const char *l1, const char *l2)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "path,label\nnone1.wav,%s\nnone2.wav,%s\nnone3.wav,%s\nnone4.wav,%s\n", l1, l2, l1, l2);
    fclose(f);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_cross_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s", dir, dir);
    write_fake("ab.csv", "a", "b");
    write_fake("xy.csv", "x", "y");
    write_fake("ax.csv", "a", "x");
    const char *root = tu_data_root();
    char abs_root[PATH_MAX], p[400];
    have_data = root && realpath(root, abs_root) && access("../shared/data/ravdess/Actor_24", R_OK) == 0;
    if (!have_data) return 0;
    snprintf(p, sizeof p, "%s/half1.csv", dir);
    write_half(p, abs_root, 1, 12, 0);
    snprintf(p, sizeof p, "%s/half2.csv", dir);
    write_half(p, abs_root, 13, 24, 1);
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

/* ---- per-corpus standardisation ---- */

/* Rows with mask 1 standardised by their own mean and population std (in double);
 * others untouched; a constant column gets scale 1. */
static void test_domain_standardise(void **st)
{
    size_t n = 7, d = 3;
    float X[21], Y[21];
    uint8_t mask[7] = {1, 0, 1, 1, 0, 1, 0};
    for (size_t i = 0; i < n; i++) {
        X[i * d + 0] = (float)(i * i) - 3.0f;
        X[i * d + 1] = mask[i] ? 5.0f : (float)i;        /* constant on the masked rows */
        X[i * d + 2] = 1000.0f + 0.25f * (float)(i % 3);
    }
    memcpy(Y, X, sizeof X);
    mm_err e = {0};
    mm_scaler *sc = NULL;
    assert_int_equal(mm_exp_domain_standardise(Y, n, d, mask, &sc, &e), 0);
    assert_non_null(sc);
    double maxd = 0;
    for (size_t j = 0; j < d; j++) {
        double s = 0, s2 = 0, m = 0;
        for (size_t i = 0; i < n; i++) if (mask[i]) { s += X[i * d + j]; m++; }
        double mean = s / m;
        for (size_t i = 0; i < n; i++) if (mask[i]) s2 += (X[i * d + j] - mean) * (X[i * d + j] - mean);
        double sd = sqrt(s2 / m);
        if (sd < 1e-12) sd = 1;
        assert_true(fabs(mm_scaler_mean(sc)[j] - mean) < 1e-9 * (1 + fabs(mean)));
        for (size_t i = 0; i < n; i++) {
            double want = mask[i] ? (X[i * d + j] - mean) / sd : X[i * d + j];
            double dd = fabs(Y[i * d + j] - want);
            if (dd > maxd) maxd = dd;
        }
    }
    printf("domain_standardise: max |z - hand z| = %.3g (float32 output, tolerance 1e-5)\n", maxd);
    assert_true(maxd < 1e-5);
    mm_scaler_free(sc);
    uint8_t none[7] = {0};
    assert_int_not_equal(mm_exp_domain_standardise(Y, n, d, none, NULL, &e), 0);
}

/* ---- bad input, before any work ---- */

/* Run text (an experiment) and expect a one-line error containing want, with no output
 * folder created (nothing was extracted or written). */
static void expect_error(const char *text, const char *want)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    char out[400];
    snprintf(out, sizeof out, "%s/out_bad", dir);
    tu_system("rm -rf %s", out);
    int rc = mm_cfg_parse_string(text, "exp.yaml", &c, &e);
    if (!rc) {
        mm_run_opts o = {.out_dir = out, .config_path = "exp.yaml", .n_threads = 1, .quiet = 1};
        rc = mm_experiment_run(c, &o, &e);
    }
    mm_cfg_free(c);
    printf("expected error: %s\n", e.msg);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, want));
    assert_null(strchr(e.msg, '\n'));
    assert_int_not_equal(access(out, F_OK), 0);
}

static void bad(const char *protocol, const char *prep, const char *want)
{
    char text[4096];
    snprintf(text, sizeof text,
             "name: bad\ncache: %s/cache\ndataset: {type: csv, manifest: %s/ab.csv}\nfeatures: mfcc_stats\n"
             "protocol: %s\npreprocessing: %s\nmodels: [logreg]\ntsne: {enabled: false}\n",
             dir, dir, protocol, prep);
    expect_error(text, want);
}

static void test_bad_input(void **st)
{
    /* protocol (%s: the temp folder), preprocessing, the message expected */
    static const char *const cases[][3] = {
        /* a test set sharing no class with training; one class only */
        {"{kind: cross_corpus, test: {type: csv, manifest: %s/xy.csv}}", "{scaler: standard}", "shares no class with training (training: a, b; test: x, y)"},
        {"{kind: cross_corpus, test: {type: csv, manifest: %s/ax.csv}}", "{scaler: standard}", "shares only one class"},
        /* an unknown domain_norm value; domain_norm without a second corpus */
        {"{kind: cross_corpus, test: {type: csv, manifest: %s/ab.csv}}", "{domain_norm: per_speaker}", "key 'domain_norm': expected one of none, per_corpus, got 'per_speaker'"},
        {"{kind: stratified_kfold, n_folds: 2}", "{domain_norm: per_corpus}", "domain_norm standardises each corpus"},
        /* a test block without its kind, its manifest or root; no test block; an unknown kind */
        {"{kind: cross_corpus, test: {manifest: %s/ab.csv}}", "{}", "the test dataset needs 'type: folder|csv|ravdess'"},
        {"{kind: cross_corpus, test: {type: csv, labels: {a: a}}}", "{}", "a csv dataset needs 'manifest: FILE.csv'"},
        {"{kind: cross_corpus, test: {type: folder}}", "{}", "a folder dataset needs 'root: FOLDER'"},
        {"{kind: cross_corpus}", "{}", "protocol cross_corpus needs 'test:'"},
        {"{kind: cross_corpus, test: {type: wav, root: x}}", "{}", "expected one of ravdess, folder, csv, got 'wav'"},
        /* other keys of the protocol; the test manifest missing on disk */
        {"{kind: cross_corpus, n_folds: 5, test: {type: csv, manifest: %s/ab.csv}}", "{}", "n_folds"},
        {"{kind: cross_corpus, train_groups: [1], test: {type: csv, manifest: %s/ab.csv}}", "{}", "give both train_groups and test_groups or neither"},
        {"{kind: cross_corpus, test: {type: csv, manifest: %s/missing.csv}}", "{}", "missing.csv"},
        /* one clip on both sides (the same corpus, or overlapping groups) */
        {"{kind: cross_corpus, test: {type: csv, manifest: %s/ab.csv}}", "{}", "4 clips are in both the training and the test corpus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[1200];
        snprintf(p, sizeof p, cases[i][0], dir);
        bad(p, cases[i][1], cases[i][2]);
    }
}

/* ---- two halves of RAVDESS ---- */

static const char *halves_cfg(char *text, size_t size, const char *prep, const char *models)
{
    snprintf(text, size,
             "name: halves\nseed: 5\ncache: %s/cache\n"
             "dataset: {name: half1, type: csv, manifest: %s/half1.csv, labels: {neutral: neutral, calm: neutral, happy: happy, "
             "sad: sad, angry: angry, fearful: fearful, disgust: disgust, surprised: surprised}}\n"
             "features: [{set: mfcc_stats, params: {n_mfcc: 20}}]\naudio: {fixed_seconds: 1.0}\n"
             "protocol:\n  kind: cross_corpus\n"
             "  test: {name: half2, type: csv, manifest: %s/half2.csv, labels: {NEU: neutral, HAP: happy, SAD: sad, ANG: angry, "
             "FEA: fearful, DIS: disgust, CAL: bored}}\n"
             "preprocessing: %s\nmodels: %s\ntsne: {enabled: false}\n",
             dir, dir, dir, prep, models);
    return text;
}

/* The raw table of one half: the experiment with its dataset block replaced (the
 * cached table the run read). */
static mm_table *raw_half(const mm_cfg *c, const mm_cfg *block)
{
    mm_cfg *x = mm_cfg_clone(c);
    mm_err e = {0};
    assert_int_equal(mm_cfg_put(x, "dataset", block, &e), 0);
    mm_run_opts o = {.n_threads = 2};
    mm_table *t = NULL;
    int rc = mm_exp_get_table(x, &o, &t, &e);
    if (rc) printf("%s\n", e.msg);
    assert_int_equal(rc, 0);
    mm_cfg_free(x);
    return t;
}

/* z of raw's rows (all of them: the corpus, every class) in double. */
static double *hand_z(const mm_table *raw, const uint8_t *use)
{
    size_t n = raw->n, d = raw->d;
    double *z = malloc(n * d * sizeof *z);
    for (size_t j = 0; j < d; j++) {
        double s = 0, s2 = 0, m = 0;
        for (size_t i = 0; i < n; i++) if (!use || use[i]) { s += raw->X[i * d + j]; m++; }
        double mean = s / m;
        for (size_t i = 0; i < n; i++) if (!use || use[i]) s2 += (raw->X[i * d + j] - mean) * (raw->X[i * d + j] - mean);
        double sd = sqrt(s2 / m);
        if (sd < 1e-12) sd = 1;
        for (size_t i = 0; i < n; i++) z[i * d + j] = (raw->X[i * d + j] - mean) / sd;
    }
    return z;
}

/* The experiment of halves_cfg run into out; returns its config (caller frees). */
static mm_cfg *run_halves(const char *prep, const char *models, const char *extra, const char *out, int threads)
{
    char text[4096];
    mm_cfg *c = NULL;
    mm_err e = {0};
    halves_cfg(text, sizeof text, prep, models);
    strncat(text, extra, sizeof text - strlen(text) - 1);
    assert_int_equal(mm_cfg_parse_string(text, "h.yaml", &c, &e), 0);
    if (!out) return c;
    mm_run_opts o = {.out_dir = out, .config_path = "h.yaml", .n_threads = threads, .quiet = 1};
    int rc = mm_experiment_run(c, &o, &e);
    if (rc) printf("%s\n", e.msg);
    assert_int_equal(rc, 0);
    return c;
}

/* What the runner builds from c: the combined table, its round, the summary note. */
typedef struct halves { mm_table *t; mm_split *split; char *note; mm_exp_cross cc; mm_split_params sp; } halves;

static void cross_data(const mm_cfg *c, halves *h)
{
    mm_exp_prep prep = {0};
    mm_exp_augment aug = {0};
    float *aug_X[MM_EXP_MAX_AUG] = {0};
    mm_err e = {0};
    mm_run_opts o = {.n_threads = 2};
    memset(h, 0, sizeof *h);
    h->sp = mm_split_params_default();
    assert_int_equal(mm_exp_parse_prep(c, &prep, &e), 0);
    assert_int_equal(mm_exp_parse_protocol(c, &prep, &h->cc, &h->sp, &e), 0);
    assert_true(h->cc.enabled);
    int rc = mm_exp_cross_data(c, &o, &h->cc, &prep, &h->sp, &aug, 5, &h->t, &h->split, aug_X, &h->note, &e);
    if (rc) printf("%s\n", e.msg);
    assert_int_equal(rc, 0);
}

static void halves_free(halves *h)
{
    free(h->note);
    mm_split_free(h->split);
    mm_table_free(h->t);
    mm_split_params_release(&h->sp);
}

/* models/<model>/folds/0/test_index of out's results: exactly the 72 test rows, after the 84 training rows. */
static void check_test_rows(hid_t f, const char *model)
{
    int32_t *ti = NULL;
    int r;
    hsize_t d[4];
    char ds[100];
    mm_err e = {0};
    snprintf(ds, sizeof ds, "models/%s/folds/0/test_index", model);
    assert_int_equal(mm_h5_read_i32(f, ds, 1, &ti, &r, d, &e), 0);
    assert_int_equal(d[0], 72);
    for (size_t i = 0; i < 72; i++) assert_int_equal(ti[i], 84 + (int)i);
    free(ti);
}

/* The combined table: rows, roles, classes, groups, and domain_norm's statistics per side. */
static void test_halves_data(void **st)
{
    if (!have_data) skip();
    mm_cfg *c = run_halves("{scaler: standard, domain_norm: per_corpus}", "[logreg]", "", NULL, 1);
    halves h;
    cross_data(c, &h);
    mm_table *t = h.t;
    mm_split *split = h.split;
    const char *note = h.note;
    const mm_exp_cross cc = h.cc;
    /* 96 training clips less 12 surprised, 84 test clips less 12 bored; 6 shared classes */
    assert_int_equal(t->n, 84 + 72);
    assert_int_equal(t->n_classes, 6);
    const char *want[6] = {"neutral", "happy", "sad", "angry", "fearful", "disgust"};
    for (int k = 0; k < 6; k++) assert_string_equal(t->label_names[k], want[k]);
    assert_int_equal(split->n_rounds, 1);
    for (size_t i = 0; i < t->n; i++) {
        int actor = atoi(strstr(t->paths[i], "Actor_") + 6);
        assert_true(t->labels[i] >= 0 && t->labels[i] < 6);
        assert_int_equal(split->role[i], i < 84 ? MM_ROLE_TRAIN : MM_ROLE_TEST);
        assert_true(i < 84 ? actor <= 12 : actor >= 13);
        assert_null(strstr(t->paths[i], i < 84 ? "-08-01-01-01-" : "-02-01-01-01-"));   /* surprised, calm */
        /* csv group ids are ranks of the names: both halves 0..11, so the test's move past the training's */
        assert_true(i < 84 ? t->groups[i] < 12 : t->groups[i] >= 12);
    }
    assert_non_null(strstr(note, "Left out of the test corpus: 12 clips of classes absent from training (bored)"));
    assert_non_null(strstr(note, "Left out of training: 12 clips of classes absent from the test corpus (surprised)"));
    /* domain_norm: each side by the statistics of all of its clips, dropped classes included */
    mm_table *raw[2] = {raw_half(c, mm_cfg_child(c, "dataset")), raw_half(c, cc.test)};
    double maxd = 0, max_alt = 0;
    for (int q = 0; q < 2; q++) {
        uint8_t *kept = calloc(raw[q]->n, 1);
        int drop = 6;   /* surprised in half1's classes, bored in half2's (label-map order) */
        for (size_t i = 0; i < raw[q]->n; i++) kept[i] = raw[q]->labels[i] != drop;
        double *z = hand_z(raw[q], NULL), *z_alt = hand_z(raw[q], kept);
        size_t k = q ? 84 : 0;
        for (size_t i = 0; i < raw[q]->n; i++) {
            if (!kept[i]) continue;
            assert_string_equal(t->paths[k], raw[q]->paths[i]);
            for (size_t j = 0; j < t->d; j++) {
                double dd = fabs(t->X[k * t->d + j] - z[i * t->d + j]), da = fabs(t->X[k * t->d + j] - z_alt[i * t->d + j]);
                if (dd > maxd) maxd = dd;
                if (da > max_alt) max_alt = da;
            }
            k++;
        }
        assert_int_equal(k, q ? t->n : 84);
        free(z); free(z_alt); free(kept);
    }
    printf("domain_norm: max |z - hand z| = %.3g (tolerance 1e-4); statistics without the dropped classes would differ by %.3g\n", maxd, max_alt);
    assert_true(maxd < 1e-4);
    assert_true(max_alt > 1e-2);
    mm_table_free(raw[0]); mm_table_free(raw[1]);
    halves_free(&h);
    mm_cfg_free(c);
}

/* The run: only test rows are tested, over the shared classes, the summary counts what
 * was left out, and the predictions are those of a model fitted on the training side
 * alone (scaler fitted there too), bit for bit. */
static void test_halves_run(void **st)
{
    if (!have_data) skip();
    char out[400], path[500], models[200];
    mm_err e = {0};
    snprintf(out, sizeof out, "%s/run", dir);
    const char *params = "{C: 1.0, max_iter: 300}";
    snprintf(models, sizeof models, "[{name: lr, model: logreg, params: %s}]", params);
    mm_cfg *c = run_halves("{scaler: standard, domain_norm: per_corpus}", models, "", out, 1);
    snprintf(path, sizeof path, "%s/results.h5", out);
    hid_t f;
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    char **names = NULL;
    size_t nn = 0;
    assert_int_equal(mm_h5_read_strings(f, "dataset/label_names", &names, &nn, &e), 0);
    assert_int_equal(nn, 6);
    int32_t *yt = NULL;
    float *proba = NULL;
    int r;
    hsize_t d[4];
    check_test_rows(f, "lr");
    assert_int_equal(mm_h5_read_i32(f, "models/lr/folds/0/y_true", 1, &yt, &r, d, &e), 0);
    assert_int_equal(mm_h5_read_f32(f, "models/lr/folds/0/proba", 2, &proba, &r, d, &e), 0);
    assert_int_equal(d[0], 72);
    assert_int_equal(d[1], 6);
    for (size_t i = 0; i < 72; i++) assert_true(yt[i] >= 0 && yt[i] < 6);
    int64_t dn = 0;
    assert_int_equal(mm_h5_attr_get_i64(f, "domain_norm", &dn, &e), 0);
    assert_int_equal(dn, 1);
    mm_h5_close(f);
    snprintf(path, sizeof path, "%s/summary.md", out);
    FILE *sf = fopen(path, "r");
    assert_non_null(sf);
    char md[20000];
    size_t got = fread(md, 1, sizeof md - 1, sf);
    md[got] = 0;
    fclose(sf);
    assert_non_null(strstr(md, "trained on half1 (84 clips, 12 groups), tested on half2 (72 clips, 12 groups), 6 shared classes"));
    assert_non_null(strstr(md, "Left out of the test corpus: 12 clips of classes absent from training (bored)"));
    assert_non_null(strstr(md, "transductive"));
    /* the same round by hand: the combined table, a scaler and a logistic regression on the training rows */
    halves h;
    cross_data(c, &h);
    mm_table *t = h.t;
    size_t D = t->d;
    mm_scaler *sc = NULL;
    assert_int_equal(mm_scaler_fit(t->X, 84, D, &sc, &e), 0);
    assert_int_equal(mm_scaler_transform(sc, t->X, t->n, D, &e), 0);
    mm_cfg *pc = NULL;
    assert_int_equal(mm_cfg_parse_string(params, "p.yaml", &pc, &e), 0);
    mm_learner *l = NULL;
    assert_int_equal(mm_learner_create("logreg", pc, 5, 1, &l, &e), 0);
    mm_fit_data fd = {.X = t->X, .y = t->labels, .n = 84, .d = D, .n_classes = 6};
    assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
    float *mine = malloc(72 * 6 * sizeof *mine);
    assert_int_equal(mm_learner_predict_proba(l, t->X + 84 * D, 72, D, mine, &e), 0);
    printf("cross_corpus run vs a fit on the training side alone: max |proba diff| = %.3g (bit for bit expected)\n",
           tu_max_abs_diff(proba, mine, 72 * 6));
    assert_memory_equal(proba, mine, 72 * 6 * sizeof *mine);
    /* and the test side did not enter training: a fit that includes it predicts otherwise */
    mm_learner *l2 = NULL;
    assert_int_equal(mm_learner_create("logreg", pc, 5, 1, &l2, &e), 0);
    mm_fit_data fd2 = {.X = t->X, .y = t->labels, .n = t->n, .d = D, .n_classes = 6};
    assert_int_equal(mm_learner_fit(l2, &fd2, &e), 0);
    assert_int_equal(mm_learner_predict_proba(l2, t->X + 84 * D, 72, D, mine, &e), 0);
    assert_true(tu_max_abs_diff(proba, mine, 72 * 6) > 1e-3);
    mm_learner_free(l); mm_learner_free(l2); mm_scaler_free(sc); mm_cfg_free(pc);
    free(mine); free(yt); free(proba);
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    halves_free(&h);
    mm_cfg_free(c);
}

/* Augmentation, SMOTE and a validation carve on the training side: the run goes through,
 * the test side is still exactly the 72 shared-class clips of actors 13-24, and the
 * validation part comes out of training speakers (a model that uses one trains). */
static void test_halves_augmented(void **st)
{
    if (!have_data) skip();
    char out[400], path[500];
    mm_err e = {0};
    snprintf(out, sizeof out, "%s/run_aug", dir);
    mm_cfg *c = run_halves("{scaler: standard, smote: true, domain_norm: per_corpus}",
                           "[{name: lr, model: logreg}, {name: mlp, model: mlp, params: {hidden_layer_sizes: [16], max_iter: 20, early_stopping: true}}]",
                           "augment: {gain: {db: [-6, 6]}}\n", out, 2);
    snprintf(path, sizeof path, "%s/results.h5", out);
    hid_t f;
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    check_test_rows(f, "lr");
    check_test_rows(f, "mlp");
    mm_h5_close(f);
    mm_cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_standardise),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_halves_data),
        cmocka_unit_test(test_halves_run),
        cmocka_unit_test(test_halves_augmented),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
