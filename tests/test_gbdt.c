/* test_gbdt.c — gradient boosting: exact agreement with XGBoost 1.7 'hist' on
 * short runs, accuracy parity with XGBClassifier, early stopping and history,
 * determinism across thread counts, HDF5 round trip, and the error paths.
 * Fixtures: tests/ref/gen_trees.py and tests/ref/gen_sklearn_data.py. */
#include "testutil.h"
#include "io/cfg.h"
#include "io/h5.h"
#include "learn/gbdt.h"
#include "learn/learner.h"

#include "skdata.h"
/* Short XGBoost runs on features with fewer distinct values than max_bin (so
 * the cuts are the values themselves), predicted on off-grid test points.
 * A stump proves the gain, leaf weight (-G/(H+lambda)) and split rule (x < cut);
 * the others add min_child_weight, lambda, gamma, softmax and several rounds.
 * Metric: max |proba - xgboost|; tolerance 1e-5: both sum float32 leaf values
 * in the same order, the only differences are double sums of gradients in
 * another order and expf implementations (~1e-7). */
static void test_xgboost_exact(void **st)
{
    (void)st;
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read("tests/fixtures/trees_gbdt.h5", &f, &e), 0);
    float *X, *Xt, *ref;
    int32_t *yb, *ym;
    hsize_t dm[4], dt[4], dp[4];
    int r;
    assert_int_equal(mm_h5_read_f32(f, "X_train", 2, &X, &r, dm, &e), 0);
    assert_int_equal(mm_h5_read_f32(f, "X_test", 2, &Xt, &r, dt, &e), 0);
    assert_int_equal(mm_h5_read_i32(f, "y_binary", 1, &yb, &r, dp, &e), 0);
    assert_int_equal(mm_h5_read_i32(f, "y_multi", 1, &ym, &r, dp, &e), 0);
    size_t n = dm[0], d = dm[1], nt = dt[0];
    struct { const char *name, *yaml; int multi; } cfgs[] = {
        {"stump_binary", "n_estimators: 1\nmax_depth: 1\nlearning_rate: 0.3\n", 0},
        {"d2_multi_lambda2_mcw3", "n_estimators: 1\nmax_depth: 2\nreg_lambda: 2.0\nmin_child_weight: 3.0\n", 1},
        {"d3_binary_gamma_5r", "n_estimators: 5\nmax_depth: 3\nlearning_rate: 0.5\ngamma: 0.5\n", 0},
        {"d3_multi_5r", "n_estimators: 5\nmax_depth: 3\nreg_lambda: 0.5\nlearning_rate: 0.4\n", 1},
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
        mm_cfg *cfg = yaml(cfgs[c].yaml);
        mm_gbdt_params p;
        assert_int_equal(mm_gbdt_params_from_cfg(cfg, &p, &e), 0);
        int K = cfgs[c].multi ? 3 : 2;
        mm_gbdt *m = NULL;
        assert_int_equal(mm_gbdt_train(&p, X, cfgs[c].multi ? ym : yb, n, d, K, NULL, NULL, 0, 1, 2, &m, &e), 0);
        float *proba = malloc(nt * K * sizeof *proba);
        assert_int_equal(mm_gbdt_predict_proba(m, Xt, nt, proba, 2, &e), 0);
        char path[128];
        snprintf(path, sizeof path, "%s/proba", cfgs[c].name);
        assert_int_equal(mm_h5_read_f32(f, path, 2, &ref, &r, dp, &e), 0);
        assert_int_equal(dp[0], nt);
        assert_int_equal(dp[1], K);
        double err = tu_max_abs_diff(proba, ref, nt * K);
        printf("  xgboost %-24s nodes %4zu  max|proba err| %.3g\n", cfgs[c].name, mm_gbdt_n_nodes(m), err);
        assert_true(err <= 1e-5);
        free(ref); free(proba);
        mm_gbdt_free(m);
        mm_cfg_free(cfg);
    }
    free(X); free(Xt); free(yb); free(ym);
    /* features with more distinct values than bins: XGBoost's rank-pruned cuts
     * (exact while the rows are fewer than 8 * max_bin; beyond that XGBoost's
     * sketch approximates and cuts may move by a few ranks) */
    table t;
    load_sk("breast_cancer", &t);
    struct { const char *name; int max_bin; } q[] = {{"bc_10r", 256}};
    for (size_t c = 0; c < 1; c++) {
        mm_gbdt_params p = mm_gbdt_params_default();
        p.n_estimators = 10;
        p.max_bin = q[c].max_bin;
        mm_gbdt *m = NULL;
        assert_int_equal(mm_gbdt_train(&p, t.Xtr, t.ytr, t.ntr, t.d, 2, NULL, NULL, 0, 1, 2, &m, &e), 0);
        float *proba = malloc(t.nte * 2 * sizeof *proba);
        assert_int_equal(mm_gbdt_predict_proba(m, t.Xte, t.nte, proba, 2, &e), 0);
        char path[128];
        snprintf(path, sizeof path, "%s/proba", q[c].name);
        assert_int_equal(mm_h5_read_f32(f, path, 2, &ref, &r, dp, &e), 0);
        double err = tu_max_abs_diff(proba, ref, t.nte * 2);
        printf("  xgboost %-24s nodes %4zu  max|proba err| %.3g\n", q[c].name, mm_gbdt_n_nodes(m), err);
        assert_true(err <= 1e-5);
        free(ref); free(proba);
        mm_gbdt_free(m);
    }
    table_free(&t);
    mm_h5_close(f);
}

/* Accuracy parity with XGBClassifier(tree_method='hist', n_estimators=100)
 * defaults; both deterministic. Tolerance 1.5 points (the issue's); we fail
 * only when worse by more than that. */
static void test_accuracy_parity(void **st)
{
    (void)st;
    const char *sets[] = {"digits", "wine", "breast_cancer"};
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read("tests/fixtures/trees_acc.h5", &f, &e), 0);
    for (size_t s = 0; s < 3; s++) {
        table t;
        load_sk(sets[s], &t);
        char path[64];
        snprintf(path, sizeof path, "%s/gbdt_acc", sets[s]);
        double *ref; int r; hsize_t dm[4];
        assert_int_equal(mm_h5_read_f64(f, path, 0, &ref, &r, dm, &e), 0);
        float *proba = malloc(t.nte * t.K * sizeof *proba);
        mm_learner *l = NULL;
        assert_int_equal(mm_learner_create("gbdt", NULL, 0, 2, &l, &e), 0);
        mm_fit_data fd = {.X = t.Xtr, .y = t.ytr, .n = t.ntr, .d = t.d, .n_classes = t.K};
        assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
        assert_int_equal(mm_learner_predict_proba(l, t.Xte, t.nte, t.d, proba, &e), 0);
        double acc = accuracy(proba, t.yte, t.nte, t.K);
        printf("  %-14s gbdt accuracy %.2f%%  xgboost %.2f%%  diff %+.2f\n", sets[s], acc, *ref, acc - *ref);
        assert_true(acc >= *ref - 1.5);
        const mm_history *h = mm_learner_history(l);
        assert_non_null(h);
        assert_int_equal(h->n, 100);
        assert_null(h->val_loss);
        assert_true(h->train_loss[99] < h->train_loss[0]);
        free(ref); free(proba);
        mm_learner_free(l);
        table_free(&t);
    }
    mm_h5_close(f);
}

/* Early stopping keeps best round + 1; the history records every round run;
 * the validation loss at `best` is the minimum. */
static void test_early_stopping(void **st)
{
    (void)st;
    table t;
    load_sk("breast_cancer", &t);
    mm_err e = {0};
    mm_gbdt_params p = mm_gbdt_params_default();
    p.n_estimators = 300;
    p.learning_rate = 0.5;
    p.early_stopping_rounds = 5;
    mm_gbdt *m = NULL;
    assert_int_equal(mm_gbdt_train(&p, t.Xtr, t.ytr, t.ntr, t.d, 2, t.Xte, t.yte, t.nte, 0, 2, &m, &e), 0);
    mm_gbdt_history h = mm_gbdt_get_history(m);
    printf("  early stopping: ran %zu rounds, kept %zu (best %ld), val loss %.4f -> %.4f\n", h.n,
           mm_gbdt_n_rounds(m), h.best, h.val_loss[0], h.val_loss[h.best]);
    assert_true(h.n < 300);
    assert_int_equal(h.n, (size_t)h.best + 1 + 5);
    assert_int_equal(mm_gbdt_n_rounds(m), (size_t)h.best + 1);
    for (size_t r = 0; r < h.n; r++) assert_true(h.val_loss[r] >= h.val_loss[h.best]);
    for (size_t r = (size_t)h.best + 1; r < h.n; r++) assert_true(h.val_loss[r] > h.val_loss[h.best] || r > (size_t)h.best);
    /* early stopping without a validation set is refused */
    mm_gbdt *m0 = NULL;
    assert_int_equal(mm_gbdt_train(&p, t.Xtr, t.ytr, t.ntr, t.d, 2, NULL, NULL, 0, 0, 2, &m0, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "needs a validation set"));
    assert_null(m0);
    /* without early stopping the validation loss is still recorded, all rounds kept */
    p.early_stopping_rounds = 0;
    p.n_estimators = 20;
    mm_gbdt *m2 = NULL;
    assert_int_equal(mm_gbdt_train(&p, t.Xtr, t.ytr, t.ntr, t.d, 2, t.Xte, t.yte, t.nte, 0, 2, &m2, &e), 0);
    h = mm_gbdt_get_history(m2);
    assert_int_equal(h.n, 20);
    assert_non_null(h.val_loss);
    assert_int_equal(mm_gbdt_n_rounds(m2), 20);
    mm_gbdt_free(m);
    mm_gbdt_free(m2);
    table_free(&t);
}

/* Same seed → identical model for 1 and 2 threads (with row and column
 * sampling on, binary and multiclass); another seed differs. */
static void test_deterministic(void **st)
{
    (void)st;
    const char *sets[] = {"breast_cancer", "wine"};
    for (int s = 0; s < 2; s++) {
        table t;
        load_sk(sets[s], &t);
        mm_err e = {0};
        mm_gbdt_params p = mm_gbdt_params_default();
        p.n_estimators = 15;
        p.subsample = 0.7;
        p.colsample_bytree = 0.5;
        size_t sz = t.nte * t.K * sizeof(float);
        float *a = malloc(sz), *b = malloc(sz), *c = malloc(sz);
        mm_gbdt *m1, *m2, *m3;
        assert_int_equal(mm_gbdt_train(&p, t.Xtr, t.ytr, t.ntr, t.d, t.K, NULL, NULL, 0, 5, 1, &m1, &e), 0);
        assert_int_equal(mm_gbdt_train(&p, t.Xtr, t.ytr, t.ntr, t.d, t.K, NULL, NULL, 0, 5, 2, &m2, &e), 0);
        assert_int_equal(mm_gbdt_train(&p, t.Xtr, t.ytr, t.ntr, t.d, t.K, NULL, NULL, 0, 6, 2, &m3, &e), 0);
        assert_int_equal(mm_gbdt_predict_proba(m1, t.Xte, t.nte, a, 1, &e), 0);
        assert_int_equal(mm_gbdt_predict_proba(m2, t.Xte, t.nte, b, 2, &e), 0);
        assert_int_equal(mm_gbdt_predict_proba(m3, t.Xte, t.nte, c, 2, &e), 0);
        assert_memory_equal(a, b, sz);
        assert_true(memcmp(a, c, sz) != 0);
        for (size_t i = 0; i < t.nte; i++) {
            double sum = 0;
            for (int k = 0; k < t.K; k++) sum += a[i * t.K + k];
            assert_true(fabs(sum - 1) < 1e-5);
        }
        mm_gbdt_free(m1); mm_gbdt_free(m2); mm_gbdt_free(m3);
        free(a); free(b); free(c);
        table_free(&t);
    }
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

/* Round trip: identical predictions and history; corruptions are refused. */
static void test_save_load(void **st)
{
    (void)st;
    table t;
    load_sk("wine", &t);
    mm_err e = {0};
    mm_cfg *cfg = yaml("n_estimators: 12\nmax_depth: 3\nlearning_rate: 0.2\n");
    mm_learner *l = NULL, *l2 = NULL;
    assert_int_equal(mm_learner_create("gbdt", cfg, 3, 2, &l, &e), 0);
    mm_fit_data fd = {.X = t.Xtr, .y = t.ytr, .n = t.ntr, .d = t.d, .n_classes = t.K,
                      .X_val = t.Xte, .y_val = t.yte, .n_val = t.nte};
    assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
    char path[128];
    snprintf(path, sizeof path, "/tmp/mm_test_gbdt_%d.h5", (int)getpid());
    save_model(l, path);
    assert_int_equal(load_model(path, &l2, &e), 0);
    size_t sz = t.nte * t.K * sizeof(float);
    float *a = malloc(sz), *b = malloc(sz);
    assert_int_equal(mm_learner_predict_proba(l, t.Xte, t.nte, t.d, a, &e), 0);
    assert_int_equal(mm_learner_predict_proba(l2, t.Xte, t.nte, t.d, b, &e), 0);
    assert_memory_equal(a, b, sz);
    const mm_history *h1 = mm_learner_history(l), *h2 = mm_learner_history(l2);
    assert_int_equal(h1->n, h2->n);
    assert_memory_equal(h1->val_loss, h2->val_loss, h1->n * sizeof(float));
    mm_learner_free(l2);
    struct { const char *ds; int64_t at; int32_t v; const char *msg; } bad[] = {
        {"gbdt_left", 0, 7000, "child"},
        {"gbdt_left", 0, -3, "child"},
        {"gbdt_feature", 0, 13, "feature 13"},
        {"gbdt_feature", 0, -2, "feature -2"},
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
        assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);
        g = mm_h5_open_group(f, "model", &e);
        v[bad[k].at] = old;
        assert_int_equal(mm_h5_write_i32(g, bad[k].ds, v, 1, dm, &e), 0);
        free(v);
        H5Gclose(g);
        mm_h5_close(f);
    }
    /* a NaN leaf value, a shortened offsets table, and a random forest file */
    hid_t f;
    assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);
    hid_t g = mm_h5_open_group(f, "model", &e);
    float *v; int r; hsize_t dm[4];
    assert_int_equal(mm_h5_read_f32(g, "gbdt_value", 1, &v, &r, dm, &e), 0);
    v[3] = NAN;
    assert_int_equal(mm_h5_write_f32(g, "gbdt_value", v, 1, dm, &e), 0);
    free(v);
    H5Gclose(g);
    mm_h5_close(f);
    assert_int_equal(load_model(path, &l2, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "non-finite"));
    assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    int64_t *o;
    assert_int_equal(mm_h5_read_i64(g, "gbdt_tree_offsets", 1, &o, &r, dm, &e), 0);
    dm[0] -= 1;
    assert_int_equal(mm_h5_write_i64(g, "gbdt_tree_offsets", o, 1, dm, &e), 0);
    free(o);
    assert_int_equal(mm_h5_attr_set_str(g, "kind", "rf", &e), 0);
    H5Gclose(g);
    mm_h5_close(f);
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    mm_gbdt *m = NULL;
    assert_int_equal(mm_gbdt_load(g, &m, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "not a gradient boosting model"));
    H5Gclose(g);
    mm_h5_close(f);
    assert_int_equal(tu_system("/bin/sh -c 'h5dump -H %s >/dev/null 2>&1' || true", path), 0);
    char p2[160];
    snprintf(p2, sizeof p2, "%s.cut", path);
    assert_int_equal(tu_system("head -c 2500 %s > %s", path, p2), 0);
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

/* Parameter errors name file:line and key; data errors are refused. */
static void test_errors(void **st)
{
    (void)st;
    mm_err e = {0};
    struct { const char *yaml, *msg; } bad[] = {
        {"max_depth: 0\n", "params.yaml:1: key 'max_depth': expected an integer in [1, 30], got 0"},
        {"learning_rate: 0\n", "key 'learning_rate': expected a number in (0, 1], got 0"},
        {"learning_rate: 1.5\n", "key 'learning_rate'"},
        {"reg_lambda: -1\n", "key 'reg_lambda'"},
        {"gamma: -0.1\n", "key 'gamma'"},
        {"min_child_weight: -1\n", "key 'min_child_weight'"},
        {"subsample: 0\n", "key 'subsample'"},
        {"colsample_bytree: 1.2\n", "key 'colsample_bytree'"},
        {"max_bin: 1000\n", "key 'max_bin'"},
        {"early_stopping_rounds: -1\n", "key 'early_stopping_rounds'"},
        {"n_estimators: many\n", "got 'many'"},
        {"eta: 0.1\n", "unknown key 'eta'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        mm_cfg *c = yaml(bad[k].yaml);
        mm_learner *l = NULL;
        assert_int_equal(mm_learner_create("gbdt", c, 0, 1, &l, &e), MM_EINVAL);
        printf("  %s    -> %s\n", bad[k].yaml, e.msg);
        assert_non_null(strstr(e.msg, bad[k].msg));
        mm_cfg_free(c);
    }
    mm_gbdt_params p = mm_gbdt_params_default();
    p.max_depth = 0;
    assert_int_equal(mm_gbdt_params_check(&p, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "max_depth must be in [1, 30], got 0"));
    float X[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int32_t y[4] = {0, 1, 0, 1};
    mm_learner *l = NULL;
    assert_int_equal(mm_learner_create("gbdt", NULL, 0, 1, &l, &e), 0);
    X[2] = INFINITY;
    mm_fit_data fd = {.X = X, .y = y, .n = 4, .d = 2, .n_classes = 2};
    assert_int_equal(mm_learner_fit(l, &fd, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "infinite"));
    X[2] = 2;
    int32_t y1[4] = {0, 0, 0, 0};
    fd.y = y1;
    assert_int_equal(mm_learner_fit(l, &fd, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "single class"));
    int32_t yv[2] = {0, 5};
    fd.y = y;
    fd.X_val = X; fd.y_val = yv; fd.n_val = 2;
    assert_int_equal(mm_learner_fit(l, &fd, &e), MM_EDATA);                   /* bad validation label */
    fd.X_val = NULL; fd.y_val = NULL; fd.n_val = 0;
    assert_int_equal(mm_learner_fit(l, &fd, &e), 0);                          /* tiny but valid */
    float proba[8];
    assert_int_equal(mm_learner_predict_proba(l, X, 4, 2, proba, &e), 0);
    X[1] = NAN;
    assert_int_equal(mm_learner_predict_proba(l, X, 4, 2, proba, &e), MM_EDATA);
    mm_learner_free(l);
    /* a single class straight through the typed API is not a crash */
    mm_gbdt *m = NULL;
    X[1] = 1;
    assert_int_equal(mm_gbdt_train(&p, X, y1, 4, 2, 2, NULL, NULL, 0, 0, 1, &m, &e), MM_EINVAL);  /* p has max_depth 0 */
    p = mm_gbdt_params_default();
    assert_int_equal(mm_gbdt_train(&p, X, y1, 4, 2, 1, NULL, NULL, 0, 0, 1, &m, &e), MM_EINVAL);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xgboost_exact),
        cmocka_unit_test(test_accuracy_parity),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("gbdt", tests, NULL, NULL);
}
