/* test_svm.c — C-SVC against scikit-learn's SVC (LIBSVM): decision values,
 * support-vector counts, Platt probabilities, accuracy on real data; cache
 * modes, thread determinism, save/load, parameter and data errors. */
#include "testutil.h"
#include "io/cfg.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/scaler.h"
#include "learn/svm.h"

#define REF "tests/fixtures/svm_ref.h5"
#define DATA "tests/fixtures/sk_datasets.h5"

typedef struct set {
    float *Xtr, *Xte;
    int32_t *ytr, *yte;
    size_t ntr, nte, d;
} set;

static void load_set(hid_t f, const char *grp, set *s)
{
    mm_err e = {0};
    char p[256];
    int r;
    hsize_t dm[4];
    snprintf(p, sizeof p, "%s/X_train", grp);
    assert_int_equal(mm_h5_read_f32(f, p, 2, &s->Xtr, &r, dm, &e), 0);
    s->ntr = dm[0]; s->d = dm[1];
    snprintf(p, sizeof p, "%s/X_test", grp);
    assert_int_equal(mm_h5_read_f32(f, p, 2, &s->Xte, &r, dm, &e), 0);
    s->nte = dm[0];
    snprintf(p, sizeof p, "%s/y_train", grp);
    assert_int_equal(mm_h5_read_i32(f, p, 1, &s->ytr, &r, dm, &e), 0);
    snprintf(p, sizeof p, "%s/y_test", grp);
    assert_int_equal(mm_h5_read_i32(f, p, 1, &s->yte, &r, dm, &e), 0);
}

static void free_set(set *s) { free(s->Xtr); free(s->Xte); free(s->ytr); free(s->yte); }

static int n_labels(const int32_t *y, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) if (y[i] + 1 > k) k = y[i] + 1;
    return k;
}

/* Decision values and support-vector counts vs SVC on fixed problems. The
 * algorithm is LIBSVM's, but kernels are float32 here (double in LIBSVM) and
 * SMO stops at a KKT gap of tol = 1e-3, so the two solutions agree only to
 * about tol: we require max |dec - ref| <= 0.005 · max(1, max |ref|) and
 * support-vector counts per class within 1 (a bound vector at alpha ≈ 0). */
static void test_decision_vs_sklearn(void **st)
{
    const char *cases[] = {"binary_rbf", "binary_linear", "binary_poly", "binary_sigmoid", "multi_rbf", "multi_balanced"};
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        set s;
        load_set(f, cases[c], &s);
        hid_t g = mm_h5_open_group(f, cases[c], &e);
        char *kern;
        mm_svm_params p = mm_svm_params_default();
        p.probability = 0;
        assert_int_equal(mm_h5_attr_get_str(g, "kernel", &kern, &e), 0);
        p.kernel = !strcmp(kern, "linear") ? MM_SVM_LINEAR : !strcmp(kern, "poly") ? MM_SVM_POLY
                 : !strcmp(kern, "sigmoid") ? MM_SVM_SIGMOID : MM_SVM_RBF;
        free(kern);
        p.class_weight_balanced = H5Aexists(g, "class_weight") > 0;
        assert_int_equal(mm_h5_attr_get_f64(g, "C", &p.C, &e), 0);
        if (p.kernel != MM_SVM_LINEAR) {
            assert_int_equal(mm_h5_attr_get_f64(g, "gamma", &p.gamma, &e), 0);
            p.gamma_mode = MM_SVM_GAMMA_VALUE;
        }
        if (p.kernel == MM_SVM_POLY) {
            int64_t deg;
            assert_int_equal(mm_h5_attr_get_i64(g, "degree", &deg, &e), 0);
            p.degree = (int)deg;
        }
        if (p.kernel == MM_SVM_POLY || p.kernel == MM_SVM_SIGMOID)
            assert_int_equal(mm_h5_attr_get_f64(g, "coef0", &p.coef0, &e), 0);
        double *ref;
        int32_t *nsv_ref;
        int r;
        hsize_t dm[4], dn[4];
        assert_int_equal(mm_h5_read_f64(g, "dec", 2, &ref, &r, dm, &e), 0);
        assert_int_equal(mm_h5_read_i32(g, "n_support", 1, &nsv_ref, &r, dn, &e), 0);
        H5Gclose(g);
        int k = n_labels(s.ytr, s.ntr);
        mm_svm *m;
        assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, k, &p, 1, 2, &m, &e), 0);
        assert_int_equal(mm_svm_n_pairs(m), dm[1]);
        double *dec = malloc(s.nte * dm[1] * sizeof *dec);
        assert_int_equal(mm_svm_decision(m, s.Xte, s.nte, s.d, dec, &e), 0);
        double err = 0, scale = 1;
        for (size_t i = 0; i < s.nte * dm[1]; i++) {
            if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
            if (fabs(dec[i] - ref[i]) > err) err = fabs(dec[i] - ref[i]);
        }
        int32_t nsv[8];
        mm_svm_n_support(m, nsv);
        int nsv_diff = 0;
        for (int c2 = 0; c2 < k; c2++) {
            int dd = abs(nsv[c2] - nsv_ref[c2]);
            if (dd > nsv_diff) nsv_diff = dd;
        }
        printf("  %-14s max |dec - sklearn| = %.2e (scale %.2f), n_support max diff %d\n", cases[c], err,
               scale, nsv_diff);
        assert_true(err <= 0.005 * scale);
        assert_true(nsv_diff <= 1);
        free(dec); free(ref); free(nsv_ref);
        mm_svm_free(m);
        free_set(&s);
    }
    mm_h5_close(f);
}

/* The LRU column cache (with shrinking swaps) and the precomputed kernel must
 * give the same solution: kernels are computed by the same float code, so the
 * SMO path is identical; tolerance 1e-9 (identical in practice). Also without
 * shrinking, which changes the path: within 0.01 as above. */
static void cache_modes_on(const char *grp, int kernel, int k)
{
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    set s;
    load_set(f, grp, &s);
    mm_h5_close(f);
    mm_svm_params p = mm_svm_params_default();
    p.probability = 0;
    p.kernel = kernel;
    p.C = 3;
    mm_svm *full, *lru, *noshr;
    assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, k, &p, 1, 1, &full, &e), 0);
    p.cache_size = 0.001;   /* 1 kB: below n², and below 2 columns → LIBSVM's 2·l floor */
    assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, k, &p, 1, 1, &lru, &e), 0);
    p.cache_size = 200;
    p.shrinking = 0;
    assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, k, &p, 1, 1, &noshr, &e), 0);
    size_t np = mm_svm_n_pairs(full);
    double *a = malloc(s.nte * np * sizeof *a), *b = malloc(s.nte * np * sizeof *b), *c = malloc(s.nte * np * sizeof *c);
    assert_int_equal(mm_svm_decision(full, s.Xte, s.nte, s.d, a, &e), 0);
    assert_int_equal(mm_svm_decision(lru, s.Xte, s.nte, s.d, b, &e), 0);
    assert_int_equal(mm_svm_decision(noshr, s.Xte, s.nte, s.d, c, &e), 0);
    double d1 = 0, d2 = 0, sc = 1;
    for (size_t i = 0; i < s.nte * np; i++) {
        d1 = fmax(d1, fabs(a[i] - b[i]));
        d2 = fmax(d2, fabs(a[i] - c[i]));
        sc = fmax(sc, fabs(a[i]));
    }
    printf("  %-14s full kernel vs LRU cache: %.2e; shrinking vs not: %.2e (scale %.2f)\n", grp, d1, d2, sc);
    assert_true(d1 == 0);
    assert_true(d2 <= 0.005 * sc);
    free(a); free(b); free(c);
    mm_svm_free(full); mm_svm_free(lru); mm_svm_free(noshr);
    free_set(&s);
}

/* The LRU column cache (with shrinking swaps) and the precomputed kernel must
 * give the same solution bit for bit: kernel values are computed and rounded
 * by the same code, so the SMO path is identical. Without shrinking the path
 * changes: within the tolerance of the sklearn comparison (0.005 · scale). */
static void test_cache_modes_and_shrinking(void **st)
{
    cache_modes_on("multi_rbf", MM_SVM_RBF, 4);
    cache_modes_on("binary_linear", MM_SVM_LINEAR, 2);
}

/* RBF on features far from the origin (raw, unscaled): rows are centred
 * before ‖a‖² + ‖b‖² − 2a·b, so shifting every feature by 1e4 changes the
 * decision values only through the float32 rounding of the shifted inputs
 * (about 1e-3 absolute): within 0.01 · scale of the unshifted model. */
static void test_rbf_far_from_origin(void **st)
{
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    set s;
    load_set(f, "multi_rbf", &s);
    mm_h5_close(f);
    mm_svm_params p = mm_svm_params_default();
    p.probability = 0;
    p.gamma_mode = MM_SVM_GAMMA_VALUE;
    p.gamma = 0.1;
    mm_svm *m0, *m1;
    assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, 4, &p, 0, 1, &m0, &e), 0);
    size_t np = mm_svm_n_pairs(m0);
    double *a = malloc(s.nte * np * sizeof *a), *b = malloc(s.nte * np * sizeof *b);
    assert_int_equal(mm_svm_decision(m0, s.Xte, s.nte, s.d, a, &e), 0);
    for (size_t i = 0; i < s.ntr * s.d; i++) s.Xtr[i] += 1e4f;
    for (size_t i = 0; i < s.nte * s.d; i++) s.Xte[i] += 1e4f;
    assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, 4, &p, 0, 1, &m1, &e), 0);
    assert_int_equal(mm_svm_decision(m1, s.Xte, s.nte, s.d, b, &e), 0);
    double err = 0, sc = 1;
    for (size_t i = 0; i < s.nte * np; i++) { err = fmax(err, fabs(a[i] - b[i])); sc = fmax(sc, fabs(a[i])); }
    printf("  shifted by 1e4: max |dec - dec_unshifted| = %.2e (scale %.2f)\n", err, sc);
    assert_true(err <= 0.01 * sc);
    free(a); free(b);
    mm_svm_free(m0); mm_svm_free(m1);
    free_set(&s);
}

/* Platt probabilities vs SVC(probability=True). LIBSVM shuffles the internal
 * 5-fold CV with its own rand() (seeded by random_state), we with mm_rng, so
 * the sigmoids are fitted on different held-out decision values: compare
 * loosely — mean |p - p_ref| <= 0.03, max <= 0.2, argmax agreement >= 95%. */
static void test_proba_vs_sklearn(void **st)
{
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    set s;
    load_set(f, "proba", &s);
    double *ref;
    int r;
    hsize_t dm[4];
    assert_int_equal(mm_h5_read_f64(f, "proba/proba", 2, &ref, &r, dm, &e), 0);
    mm_h5_close(f);
    mm_svm_params p = mm_svm_params_default();
    p.gamma_mode = MM_SVM_GAMMA_VALUE;
    p.gamma = 0.2;
    mm_svm *m;
    assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, 3, &p, 0, 2, &m, &e), 0);
    float *pr = malloc(s.nte * 3 * sizeof *pr);
    assert_int_equal(mm_svm_predict_proba(m, s.Xte, s.nte, s.d, pr, &e), 0);
    double mean = 0, mx = 0;
    int agree = 0;
    for (size_t i = 0; i < s.nte; i++) {
        int a = 0, b = 0;
        double sum = 0;
        for (int c = 0; c < 3; c++) {
            double d = fabs(pr[i * 3 + c] - ref[i * 3 + c]);
            mean += d;
            mx = fmax(mx, d);
            sum += pr[i * 3 + c];
            if (pr[i * 3 + c] > pr[i * 3 + a]) a = c;
            if (ref[i * 3 + c] > ref[i * 3 + b]) b = c;
        }
        assert_true(fabs(sum - 1) < 1e-4);
        agree += a == b;
    }
    mean /= (double)(s.nte * 3);
    printf("  proba vs sklearn: mean |diff| %.4f, max %.4f, argmax agreement %d/%zu\n", mean, mx, agree, s.nte);
    assert_true(mean <= 0.03);
    assert_true(mx <= 0.2);
    assert_true(agree >= 0.95 * (double)s.nte);
    free(pr); free(ref);
    mm_svm_free(m);
    free_set(&s);
}

/* Accuracy with StandardScaler + SVC defaults (rbf, gamma 'scale', C 1,
 * probability) on digits, wine and breast cancer: within 1.5 points of
 * sklearn, both by voting (predict) and by argmax of probabilities. */
static void test_accuracy_sk_datasets(void **st)
{
    const char *names[] = {"digits", "wine", "breast_cancer"};
    hid_t f, fr;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(DATA, &f, &e), 0);
    assert_int_equal(mm_h5_open_read(REF, &fr, &e), 0);
    for (int t = 0; t < 3; t++) {
        set s;
        load_set(f, names[t], &s);
        char gp[64];
        snprintf(gp, sizeof gp, "accuracy/%s", names[t]);
        hid_t g = mm_h5_open_group(fr, gp, &e);
        double ref_pred, ref_proba;
        assert_int_equal(mm_h5_attr_get_f64(g, "acc_predict", &ref_pred, &e), 0);
        assert_int_equal(mm_h5_attr_get_f64(g, "acc_proba", &ref_proba, &e), 0);
        H5Gclose(g);
        mm_scaler *sc;
        assert_int_equal(mm_scaler_fit(s.Xtr, s.ntr, s.d, &sc, &e), 0);
        assert_int_equal(mm_scaler_transform(sc, s.Xtr, s.ntr, s.d, &e), 0);
        assert_int_equal(mm_scaler_transform(sc, s.Xte, s.nte, s.d, &e), 0);
        mm_scaler_free(sc);
        int k = n_labels(s.ytr, s.ntr);
        mm_svm_params p = mm_svm_params_default();
        mm_svm *m;
        assert_int_equal(mm_svm_train(s.Xtr, s.ytr, s.ntr, s.d, k, &p, 0, 2, &m, &e), 0);
        int32_t *lab = malloc(s.nte * sizeof *lab), *lab2 = malloc(s.nte * sizeof *lab2);
        float *pr = malloc(s.nte * (size_t)k * sizeof *pr);
        assert_int_equal(mm_svm_predict(m, s.Xte, s.nte, s.d, lab, &e), 0);
        assert_int_equal(mm_svm_predict_proba(m, s.Xte, s.nte, s.d, pr, &e), 0);
        mm_proba_argmax(pr, s.nte, k, lab2);
        int c1 = 0, c2 = 0;
        for (size_t i = 0; i < s.nte; i++) { c1 += lab[i] == s.yte[i]; c2 += lab2[i] == s.yte[i]; }
        double a1 = (double)c1 / s.nte, a2 = (double)c2 / s.nte;
        printf("  %-14s accuracy predict %.4f (sklearn %.4f), proba %.4f (sklearn %.4f), n_sv %zu\n", names[t],
               a1, ref_pred, a2, ref_proba, mm_svm_n_support(m, NULL));
        assert_true(fabs(a1 - ref_pred) <= 0.015 + 1e-9);
        assert_true(fabs(a2 - ref_proba) <= 0.015 + 1e-9);
        free(lab); free(lab2); free(pr);
        mm_svm_free(m);
        free_set(&s);
    }
    mm_h5_close(f);
    mm_h5_close(fr);
}

/* Same seed → bit-identical probabilities with 1 and 2 threads; and a
 * round trip through HDF5 (via the learner interface) predicts identically. */
static void test_threads_and_save_load(void **st)
{
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    set s;
    load_set(f, "multi_rbf", &s);
    mm_h5_close(f);
    mm_cfg *cfg;
    assert_int_equal(mm_cfg_parse_string("{C: 2, gamma: scale, cache_size: 0.05}", "t.yaml", &cfg, &e), 0);
    mm_learner *l1, *l2, *l3;
    assert_int_equal(mm_learner_create("svm", cfg, 42, 1, &l1, &e), 0);
    assert_int_equal(mm_learner_create("svm", cfg, 42, 2, &l2, &e), 0);
    mm_fit_data fd = {.X = s.Xtr, .y = s.ytr, .n = s.ntr, .d = s.d, .n_classes = 5};   /* class 4 absent */
    assert_int_equal(mm_learner_fit(l1, &fd, &e), 0);
    assert_int_equal(mm_learner_fit(l2, &fd, &e), 0);
    size_t n = s.nte;
    float *p1 = malloc(n * 5 * sizeof *p1), *p2 = malloc(n * 5 * sizeof *p2), *p3 = malloc(n * 5 * sizeof *p3);
    assert_int_equal(mm_learner_predict_proba(l1, s.Xte, n, s.d, p1, &e), 0);
    assert_int_equal(mm_learner_predict_proba(l2, s.Xte, n, s.d, p2, &e), 0);
    assert_memory_equal(p1, p2, n * 5 * sizeof *p1);
    for (size_t i = 0; i < n; i++) assert_true(p1[i * 5 + 4] == 0.0f);
    char path[256];
    snprintf(path, sizeof path, "/tmp/mm_svm_%d.h5", (int)getpid());
    mm_h5_out o;
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    hid_t g = mm_h5_group(o.file, "model", &e);
    assert_int_equal(mm_learner_save(l1, g, &e), 0);
    H5Gclose(g);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    assert_int_equal(mm_learner_load(g, 2, &l3, &e), 0);
    H5Gclose(g);
    mm_h5_close(f);
    assert_int_equal(mm_learner_predict_proba(l3, s.Xte, n, s.d, p3, &e), 0);
    assert_memory_equal(p1, p3, n * 5 * sizeof *p1);
    /* corrupt: rho of the wrong length, then a group of another kind */
    assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    double bad[2] = {0, 0};
    hsize_t d1[1] = {2};
    assert_int_equal(mm_h5_write_f64(g, "rho", bad, 1, d1, &e), 0);
    mm_learner *l4 = NULL;
    assert_int_not_equal(mm_learner_load(g, 1, &l4, &e), 0);
    printf("  corrupt model: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "'rho' has 2 entries, expected 6"));
    assert_int_equal(mm_h5_attr_set_str(g, "kind", "rf", &e), 0);
    assert_int_not_equal(mm_learner_load(g, 1, &l4, &e), 0);
    assert_non_null(strstr(e.msg, "expected an svm"));
    H5Gclose(g);
    mm_h5_close(f);
    unlink(path);
    free(p1); free(p2); free(p3);
    mm_learner_free(l1); mm_learner_free(l2); mm_learner_free(l3);
    mm_cfg_free(cfg);
    free_set(&s);
}

static void expect_cfg_error(const char *yaml, const char *needle)
{
    mm_cfg *cfg;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(yaml, "x.yaml", &cfg, &e), 0);
    mm_learner *l = NULL;
    assert_int_not_equal(mm_learner_create("svm", cfg, 0, 1, &l, &e), 0);
    printf("  %-40s -> %s\n", yaml, e.msg);
    assert_non_null(strstr(e.msg, needle));
    mm_cfg_free(cfg);
}

static void test_param_errors(void **st)
{
    expect_cfg_error("C: -1", "x.yaml:1: key 'C': expected a number in (0, inf], got -1");
    expect_cfg_error("C: .nan", "key 'C'");
    expect_cfg_error("kernel: cubic", "key 'kernel': expected one of linear, poly, rbf, sigmoid, got 'cubic'");
    expect_cfg_error("gamma: fast", "key 'gamma': expected 'scale', 'auto' or a number in (0, inf], got 'fast'");
    expect_cfg_error("gamma: 0", "key 'gamma'");
    expect_cfg_error("tol: 0", "key 'tol'");
    expect_cfg_error("max_iter: 0", "key 'max_iter'");
    expect_cfg_error("degree: -2", "key 'degree'");
    expect_cfg_error("cache_size: 0", "key 'cache_size'");
    expect_cfg_error("class_weight: heavy", "key 'class_weight'");
    expect_cfg_error("probability: maybe", "key 'probability'");
    expect_cfg_error("nu: 0.5", "unknown key 'nu'");
}

static void test_data_errors_and_options(void **st)
{
    float X[12] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
    int32_t y[6] = {0, 0, 0, 1, 1, 1}, y1[6] = {1, 1, 1, 1, 1, 1};
    mm_svm_params p = mm_svm_params_default();
    mm_svm *m = NULL;
    mm_err e = {0};
    assert_int_equal(mm_svm_train(X, y1, 6, 2, 2, &p, 0, 1, &m, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "single class"));
    X[3] = NAN;
    assert_int_equal(mm_svm_train(X, y, 6, 2, 2, &p, 0, 1, &m, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "row 1, column 1 is NaN"));
    X[3] = 1;
    y[2] = 7;
    assert_int_equal(mm_svm_train(X, y, 6, 2, 2, &p, 0, 1, &m, &e), MM_EDATA);
    y[2] = 0;
    p.C = 0;
    assert_int_equal(mm_svm_train(X, y, 6, 2, 2, &p, 0, 1, &m, &e), MM_EINVAL);
    /* tiny separable problem; each option trains and predicts the training labels */
    p = mm_svm_params_default();
    p.probability = 0;
    for (int kern = 0; kern < 4; kern++) {
        p.kernel = kern;
        p.class_weight_balanced = kern & 1;
        p.max_iter = kern == 3 ? 5 : -1;
        assert_int_equal(mm_svm_train(X, y, 6, 2, 2, &p, 0, 1, &m, &e), 0);
        int32_t lab[6];
        assert_int_equal(mm_svm_predict(m, X, 6, 2, lab, &e), 0);
        if (kern != MM_SVM_SIGMOID) assert_memory_equal(lab, y, sizeof y);
        assert_int_not_equal(mm_svm_predict(m, X, 3, 4, lab, &e), 0);
        assert_non_null(strstr(e.msg, "trained on 2 features, got 4"));
        mm_svm_free(m);
    }
    /* tiny classes with probability on: folds without one class use LIBSVM's
     * constant decision values; the result is still a distribution */
    int32_t yt[6] = {0, 1, 1, 2, 2, 2};
    p = mm_svm_params_default();
    assert_int_equal(mm_svm_train(X, yt, 6, 2, 3, &p, 0, 2, &m, &e), 0);
    float pr[18];
    assert_int_equal(mm_svm_predict_proba(m, X, 6, 2, pr, &e), 0);
    for (int i = 0; i < 6; i++) {
        float s = pr[i * 3] + pr[i * 3 + 1] + pr[i * 3 + 2];
        assert_true(fabsf(s - 1) < 1e-4 && pr[i * 3] >= 0 && pr[i * 3 + 1] >= 0 && pr[i * 3 + 2] >= 0);
    }
    mm_svm_free(m);
}

/* Coupling (Wu, Lin, Weng 2004): with consistent pairwise r_ij = p_i/(p_i+p_j)
 * the solution recovers p (to the method's stopping tolerance 0.005/k).
 * Sigmoid fit: separable decision values give A < 0 (larger f → class +1). */
static void test_coupling_and_sigmoid(void **st)
{
    double p[4] = {0.1, 0.2, 0.3, 0.4}, r[16], q[4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) r[i * 4 + j] = i == j ? 0 : p[i] / (p[i] + p[j]);
    mm_svm_couple(4, r, q);
    double err = 0, sum = 0;
    for (int i = 0; i < 4; i++) { err = fmax(err, fabs(q[i] - p[i])); sum += q[i]; }
    printf("  coupling max error %.2e\n", err);
    assert_true(err < 1e-3);
    assert_true(fabs(sum - 1) < 1e-9);
    double dec[8] = {-2, -1.5, -1, -0.2, 0.3, 1, 1.4, 2};
    int8_t lab[8] = {-1, -1, -1, 1, -1, 1, 1, 1};
    double A, B;
    mm_svm_sigmoid_train(8, dec, lab, &A, &B);
    printf("  sigmoid A %.4f B %.4f\n", A, B);
    assert_true(A < 0);
    assert_true(isfinite(B));
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_vs_sklearn),
        cmocka_unit_test(test_cache_modes_and_shrinking),
        cmocka_unit_test(test_rbf_far_from_origin),
        cmocka_unit_test(test_proba_vs_sklearn),
        cmocka_unit_test(test_accuracy_sk_datasets),
        cmocka_unit_test(test_threads_and_save_load),
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_data_errors_and_options),
        cmocka_unit_test(test_coupling_and_sigmoid),
    };
    return cmocka_run_group_tests_name("svm", tests, NULL, NULL);
}
