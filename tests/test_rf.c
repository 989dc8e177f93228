/* test_rf.c — random forest: exact CART against scikit-learn, accuracy parity
 * with RandomForestClassifier, determinism across thread counts, HDF5 round
 * trip, and the error paths (bad parameters, NaN, single class, corrupt file).
 * Fixtures: tests/ref/gen_trees.py and tests/ref/gen_sklearn_data.py. */
#include "testutil.h"
#include "io/cfg.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/rf.h"
#include "skdata.h"

/* A forest of one tree without bootstrap and with all features is scikit-learn's
 * DecisionTreeClassifier. The fixture's configurations were checked to give the
 * same tree for 8 random states (no ties). Metric: max |proba - ref|; tolerance
 * 1e-6 because leaf frequencies are stored as float32 (exact tree → ~6e-8).
 * Importances: max abs difference <= 1e-9 (double sums in another order). */
static void test_cart_exact(void **st)
{
    (void)st;
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read("tests/fixtures/trees_cart.h5", &f, &e), 0);
    float *Xtr, *Xte, *ref;
    double *imp_ref;
    int32_t *ytr;
    hsize_t dm[4], dt[4], dp[4];
    int r;
    assert_int_equal(mm_h5_read_f32(f, "X_train", 2, &Xtr, &r, dm, &e), 0);
    assert_int_equal(mm_h5_read_f32(f, "X_test", 2, &Xte, &r, dt, &e), 0);
    assert_int_equal(mm_h5_read_i32(f, "y_train", 1, &ytr, &r, dp, &e), 0);
    size_t n = dm[0], d = dm[1], nt = dt[0];
    const char *cfgs[][2] = {
        {"gini_d4", "criterion: gini\nmax_depth: 4\n"},
        {"gini_d4_leaf10", "criterion: gini\nmax_depth: 4\nmin_samples_leaf: 10\n"},
        {"entropy_d5_split20", "criterion: entropy\nmax_depth: 5\nmin_samples_split: 20\n"},
        {"gini_balanced_d4", "criterion: gini\nmax_depth: 4\nclass_weight: balanced\n"},
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
        char text[512], path[128];
        snprintf(text, sizeof text, "n_estimators: 1\nbootstrap: false\nmax_features: null\n%s", cfgs[c][1]);
        mm_cfg *cfg = yaml(text);
        mm_rf_params p;
        assert_int_equal(mm_rf_params_from_cfg(cfg, &p, &e), 0);
        mm_rf *m = NULL;
        assert_int_equal(mm_rf_train(&p, Xtr, ytr, n, d, 3, 7, 2, &m, &e), 0);
        float *proba = malloc(nt * 3 * sizeof *proba);
        assert_int_equal(mm_rf_predict_proba(m, Xte, nt, proba, 2, &e), 0);
        snprintf(path, sizeof path, "%s/proba", cfgs[c][0]);
        assert_int_equal(mm_h5_read_f32(f, path, 2, &ref, &r, dp, &e), 0);
        assert_int_equal(dp[0], nt);
        double err_p = tu_max_abs_diff(proba, ref, nt * 3);
        snprintf(path, sizeof path, "%s/importances", cfgs[c][0]);
        assert_int_equal(mm_h5_read_f64(f, path, 1, &imp_ref, &r, dp, &e), 0);
        const double *imp = mm_rf_feature_importances(m);
        double err_i = 0;
        for (size_t j = 0; j < d; j++) err_i = fmax(err_i, fabs(imp[j] - imp_ref[j]));
        hid_t g = mm_h5_open_group(f, cfgs[c][0], &e);
        int64_t nodes;
        assert_int_equal(mm_h5_attr_get_i64(g, "node_count", &nodes, &e), 0);
        H5Gclose(g);
        printf("  cart %-20s nodes %zu (sklearn %lld)  max|proba err| %.3g  max|importance err| %.3g\n",
               cfgs[c][0], mm_rf_n_nodes(m), (long long)nodes, err_p, err_i);
        assert_int_equal(mm_rf_n_nodes(m), (size_t)nodes);
        assert_true(err_p <= 1e-6);
        assert_true(err_i <= 1e-9);
        free(ref); free(imp_ref); free(proba);
        mm_rf_free(m);
        mm_cfg_free(cfg);
    }
    free(Xtr); free(Xte); free(ytr);
    mm_h5_close(f);
}

/* Accuracy parity with RandomForestClassifier(n_estimators=100), both as the
 * mean over 5 seeds (a single wine test error is 2.2 points). Tolerance: 1.5
 * points, as the issue asks; we fail only when worse by more than that. */
static void test_accuracy_parity(void **st)
{
    (void)st;
    const char *sets[] = {"digits", "wine", "breast_cancer"};
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read("tests/fixtures/trees_acc.h5", &f, &e), 0);
    int asan = getenv("MELODIC_ASAN") != NULL;
    for (size_t s = 0; s < 3; s++) {
        table t;
        load_sk(sets[s], &t);
        char path[64];
        snprintf(path, sizeof path, "%s/rf_acc", sets[s]);
        double *ref; int r; hsize_t dm[4];
        assert_int_equal(mm_h5_read_f64(f, path, 0, &ref, &r, dm, &e), 0);
        int seeds = asan ? 1 : 5;
        double acc = 0;
        float *proba = malloc(t.nte * t.K * sizeof *proba);
        for (int seed = 0; seed < seeds; seed++) {
            mm_learner *l = NULL;
            assert_int_equal(mm_learner_create("rf", NULL, (uint64_t)seed, 2, &l, &e), 0);
            mm_fit_data fd = {.X = t.Xtr, .y = t.ytr, .n = t.ntr, .d = t.d, .n_classes = t.K};
            assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
            assert_int_equal(mm_learner_predict_proba(l, t.Xte, t.nte, t.d, proba, &e), 0);
            acc += accuracy(proba, t.yte, t.nte, t.K) / seeds;
            mm_learner_free(l);
        }
        printf("  %-14s rf accuracy %.2f%%  sklearn %.2f%%  diff %+.2f\n", sets[s], acc, *ref, acc - *ref);
        if (!asan) assert_true(acc >= *ref - 1.5);
        free(ref); free(proba);
        table_free(&t);
    }
    mm_h5_close(f);
}

/* Same seed → bit-identical forest for 1 and 2 threads; another seed differs. */
static void test_deterministic(void **st)
{
    (void)st;
    table t;
    load_sk("breast_cancer", &t);
    mm_err e = {0};
    mm_rf_params p = mm_rf_params_default();
    p.n_estimators = 20;
    size_t sz = t.nte * 2 * sizeof(float);
    float *a = malloc(sz), *b = malloc(sz), *c = malloc(sz);
    mm_rf *m1, *m2, *m3;
    assert_int_equal(mm_rf_train(&p, t.Xtr, t.ytr, t.ntr, t.d, 2, 11, 1, &m1, &e), 0);
    assert_int_equal(mm_rf_train(&p, t.Xtr, t.ytr, t.ntr, t.d, 2, 11, 2, &m2, &e), 0);
    assert_int_equal(mm_rf_train(&p, t.Xtr, t.ytr, t.ntr, t.d, 2, 12, 2, &m3, &e), 0);
    assert_int_equal(mm_rf_predict_proba(m1, t.Xte, t.nte, a, 1, &e), 0);
    assert_int_equal(mm_rf_predict_proba(m2, t.Xte, t.nte, b, 2, &e), 0);
    assert_int_equal(mm_rf_predict_proba(m3, t.Xte, t.nte, c, 2, &e), 0);
    assert_memory_equal(a, b, sz);
    assert_int_equal(mm_rf_n_nodes(m1), mm_rf_n_nodes(m2));
    assert_true(memcmp(a, c, sz) != 0);
    double s = 0;
    for (size_t j = 0; j < t.d; j++) s += mm_rf_feature_importances(m1)[j];
    assert_true(fabs(s - 1) < 1e-9);
    for (size_t i = 0; i < t.nte; i++) assert_true(fabs(a[2 * i] + a[2 * i + 1] - 1) < 1e-5);
    mm_rf_free(m1); mm_rf_free(m2); mm_rf_free(m3);
    free(a); free(b); free(c);
    table_free(&t);
}

static void save_model(const mm_learner *l, const char *path)
{
    mm_err e = {0};
    mm_h5_out o;
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    hid_t g = mm_h5_group(o.file, "model", &e);
    assert_true(g >= 0);
    assert_int_equal(mm_learner_save(l, g, &e), 0);
    H5Gclose(g);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
}

static int load_model(const char *path, mm_learner **l, mm_err *e)
{
    hid_t f;
    int rc = mm_h5_open_read(path, &f, e);
    if (rc) return rc;
    hid_t g = mm_h5_open_group(f, "model", e);
    if (g < 0) { mm_h5_close(f); return e->code ? e->code : MM_EFORMAT; }
    rc = mm_learner_load(g, 1, l, e);
    H5Gclose(g);
    mm_h5_close(f);
    return rc;
}

/* Round trip gives identical predictions; corrupted indices are refused. */
static void test_save_load(void **st)
{
    (void)st;
    table t;
    load_sk("wine", &t);
    mm_err e = {0};
    mm_cfg *cfg = yaml("n_estimators: 15\ncriterion: entropy\nmax_features: 0.5\n");
    mm_learner *l = NULL, *l2 = NULL;
    assert_int_equal(mm_learner_create("rf", cfg, 3, 2, &l, &e), 0);
    mm_fit_data fd = {.X = t.Xtr, .y = t.ytr, .n = t.ntr, .d = t.d, .n_classes = t.K};
    assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
    char path[128];
    snprintf(path, sizeof path, "/tmp/mm_test_rf_%d.h5", (int)getpid());
    save_model(l, path);
    assert_int_equal(load_model(path, &l2, &e), 0);
    size_t sz = t.nte * t.K * sizeof(float);
    float *a = malloc(sz), *b = malloc(sz);
    assert_int_equal(mm_learner_predict_proba(l, t.Xte, t.nte, t.d, a, &e), 0);
    assert_int_equal(mm_learner_predict_proba(l2, t.Xte, t.nte, t.d, b, &e), 0);
    assert_memory_equal(a, b, sz);
    mm_learner_free(l2);
    /* corruptions: each must give MM_EFORMAT, never a crash */
    struct { const char *ds; int64_t at; int32_t v; const char *msg; } bad[] = {
        {"rf_left", 0, 100000, "child"},
        {"rf_left", 0, 0, "child"},
        {"rf_feature", 0, 13, "feature 13"},
        {"rf_feature", 0, -5, "feature -5"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        hid_t f;
        assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);
        hid_t g = mm_h5_open_group(f, "model", &e);
        int32_t *v; int r; hsize_t dm[4];
        assert_int_equal(mm_h5_read_i32(g, bad[k].ds, 1, &v, &r, dm, &e), 0);
        int32_t old = v[bad[k].at];
        v[bad[k].at] = bad[k].v;
        assert_int_equal(mm_h5_write_i32(g, bad[k].ds, v, 1, dm, &e), 0);
        H5Gclose(g);
        mm_h5_close(f);
        l2 = NULL;
        assert_int_equal(load_model(path, &l2, &e), MM_EFORMAT);
        assert_null(l2);
        printf("  corrupt %s: %s\n", bad[k].ds, e.msg);
        assert_non_null(strstr(e.msg, bad[k].msg));
        assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);   /* restore */
        g = mm_h5_open_group(f, "model", &e);
        v[bad[k].at] = old;
        assert_int_equal(mm_h5_write_i32(g, bad[k].ds, v, 1, dm, &e), 0);
        free(v);
        H5Gclose(g);
        mm_h5_close(f);
    }
    /* a wrong kind and a missing dataset */
    hid_t f;
    assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);
    hid_t g = mm_h5_open_group(f, "model", &e);
    assert_int_equal(mm_h5_attr_set_str(g, "kind", "gbdt", &e), 0);
    H5Gclose(g);
    mm_h5_close(f);
    mm_rf *none = NULL;
    assert_int_not_equal(mm_rf_load(-1, &none, &e), 0);      /* an invalid HDF5 handle */
    assert_null(none);
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    mm_rf *m = NULL;
    assert_int_equal(mm_rf_load(g, &m, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "not a random forest"));
    H5Gclose(g);
    mm_h5_close(f);
    /* truncated file */
    char p2[160];
    snprintf(p2, sizeof p2, "%s.cut", path);
    assert_int_equal(tu_system("head -c 3000 %s > %s", path, p2), 0);
    l2 = NULL;
    assert_int_not_equal(load_model(p2, &l2, &e), 0);
    assert_null(l2);
    unlink(p2);
    unlink(path);
    free(a); free(b);
    mm_learner_free(l);
    mm_cfg_free(cfg);
    table_free(&t);
}

/* Every max_features form trains a usable forest on wine (13 features), and
 * forms that resolve to the same count give the same forest: sqrt = log2 = 3
 * (floor(sqrt 13) = floor(log2 13) = 3), all = null = 13; 0.5 gives 6. */
static void test_max_features_forms(void **st)
{
    (void)st;
    table t;
    load_sk("wine", &t);
    const char *forms[] = {"sqrt", "log2", "3", "0.5", "all", "null", "13"};
    const size_t nf = sizeof forms / sizeof *forms, sz = t.nte * t.K * sizeof(float);
    float *all = malloc(nf * sz);
    for (size_t k = 0; k < nf; k++) {
        float *proba = all + k * t.nte * t.K;
        char text[128];
        snprintf(text, sizeof text, "n_estimators: 25\nmax_features: %s\n", forms[k]);
        mm_cfg *c = yaml(text);
        mm_err e = {0};
        mm_learner *l = NULL;
        assert_int_equal(mm_learner_create("rf", c, 1, 2, &l, &e), 0);
        mm_fit_data fd = {.X = t.Xtr, .y = t.ytr, .n = t.ntr, .d = t.d, .n_classes = t.K};
        assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
        assert_int_equal(mm_learner_predict_proba(l, t.Xte, t.nte, t.d, proba, &e), 0);
        double acc = accuracy(proba, t.yte, t.nte, t.K);
        printf("  max_features %-5s accuracy %.1f%%\n", forms[k], acc);
        assert_true(acc >= 85.0);
        mm_learner_free(l);
        mm_cfg_free(c);
    }
#define P(k) (all + (k) * t.nte * t.K)
    assert_memory_equal(P(0), P(1), sz);        /* sqrt == log2 */
    assert_memory_equal(P(0), P(2), sz);        /* == 3 */
    assert_memory_equal(P(4), P(5), sz);        /* all == null */
    assert_memory_equal(P(4), P(6), sz);        /* == 13 */
    assert_true(memcmp(P(0), P(4), sz) != 0);   /* 3 != 13 */
    assert_true(memcmp(P(3), P(4), sz) != 0);   /* 6 != 13 */
#undef P
    free(all);
    table_free(&t);
}

/* Parameter errors name file:line and key; data errors are refused. */
static void test_errors(void **st)
{
    (void)st;
    mm_err e = {0};
    struct { const char *yaml, *msg; } bad[] = {
        {"max_depth: 0\n", "params.yaml:1: key 'max_depth': expected an integer >= 1, got 0"},
        {"n_estimators: -3\n", "key 'n_estimators'"},
        {"min_samples_leaf: 0\n", "key 'min_samples_leaf'"},
        {"min_samples_split: 1\n", "key 'min_samples_split'"},
        {"criterion: mse\n", "criterion"},
        {"max_features: 1.5\n", "key 'max_features'"},
        {"max_features: cube\n", "got 'cube'"},
        {"class_weight: heavy\n", "class_weight"},
        {"bootstrap: maybe\n", "bootstrap"},
        {"n_estimators: 10\nmax_dpeth: 3\n", "max_dpeth"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        mm_cfg *c = yaml(bad[k].yaml);
        mm_learner *l = NULL;
        assert_int_equal(mm_learner_create("rf", c, 0, 1, &l, &e), MM_EINVAL);
        printf("  %s", bad[k].yaml);
        printf("    -> %s\n", e.msg);
        assert_non_null(strstr(e.msg, bad[k].msg));
        mm_cfg_free(c);
    }
    mm_rf_params p = mm_rf_params_default();
    p.max_depth = 0;
    assert_int_equal(mm_rf_params_check(&p, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "max_depth must be >= 1"));
    /* max_features larger than d is refused at fit */
    float X[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int32_t y[4] = {0, 1, 0, 1};
    p = mm_rf_params_default();
    p.max_features = MM_RF_MAXF_COUNT;
    p.max_features_value = 3;
    mm_rf *m = NULL;
    assert_int_equal(mm_rf_train(&p, X, y, 4, 2, 2, 0, 1, &m, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "max_features"));
    /* NaN and single class through the learner interface */
    mm_learner *l = NULL;
    assert_int_equal(mm_learner_create("rf", NULL, 0, 1, &l, &e), 0);
    X[5] = NAN;
    mm_fit_data fd = {.X = X, .y = y, .n = 4, .d = 2, .n_classes = 2};
    assert_int_equal(mm_learner_fit(l, &fd, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "NaN"));
    X[5] = 5;
    int32_t y1[4] = {1, 1, 1, 1};
    fd.y = y1;
    assert_int_equal(mm_learner_fit(l, &fd, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "single class"));
    float proba[8];
    assert_int_not_equal(mm_learner_predict_proba(l, X, 4, 2, proba, &e), 0);   /* unfitted */
    fd.y = y;
    assert_int_equal(mm_learner_fit(l, &fd, &e), 0);                           /* tiny but valid */
    assert_int_equal(mm_learner_predict_proba(l, X, 4, 2, proba, &e), 0);
    assert_int_not_equal(mm_learner_predict_proba(l, X, 2, 4, proba, &e), 0);   /* wrong width */
    mm_learner_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cart_exact),
        cmocka_unit_test(test_accuracy_parity),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_max_features_forms),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("rf", tests, NULL, NULL);
}
