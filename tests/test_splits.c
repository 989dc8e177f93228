/* test_splits.c — fold assignment against scikit-learn 1.2.1 (fixture from
 * tests/ref/gen_eval.py), shuffled invariants, protocols, validation carving,
 * leakage and the error messages. Fold ids are integers: compared exactly. */
#include "testutil.h"
#include "eval/npcompat.h"
#include "eval/splits.h"
#include "io/h5.h"

#define FIX "tests/fixtures/eval_splits.h5"

static hid_t open_fixture(void)
{
    hid_t f;
    mm_err e = {0};
    mm_h5_init();
    if (mm_h5_open_read(FIX, &f, &e)) fail_msg("%s", e.msg);
    return f;
}

static int32_t *read_i32(hid_t g, const char *name, size_t *n)
{
    int32_t *v;
    int r;
    hsize_t d[4];
    mm_err e = {0};
    if (mm_h5_read_i32(g, name, 1, &v, &r, d, &e)) fail_msg("%s", e.msg);
    *n = (size_t)d[0];
    return v;
}

static size_t count_diff(const int32_t *a, const int32_t *b, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += a[i] != b[i];
    return m;
}

static void test_argsort_matches_numpy(void **st)
{
    (void)st;
    hid_t f = open_fixture();
    char name[64];
    for (int c = 0;; c++) {
        snprintf(name, sizeof name, "argsort/case_%03d", c);
        if (!mm_h5_exists(f, name)) break;
        mm_err e = {0};
        hid_t g = mm_h5_open_group(f, name, &e);
        int64_t *v, *idx;
        int r;
        hsize_t d[4];
        assert_int_equal(mm_h5_read_i64(g, "v", 1, &v, &r, d, &e), 0);
        assert_int_equal(mm_h5_read_i64(g, "idx", 1, &idx, &r, d, &e), 0);
        size_t n = d[0], *got = malloc(n * sizeof *got), bad = 0;
        mm_np_argsort_quick_i64(v, n, got);
        for (size_t i = 0; i < n; i++) bad += got[i] != (size_t)idx[i];
        printf("argsort case %d (n=%zu): %zu positions differ from np.argsort\n", c, n, bad);
        assert_int_equal(bad, 0);
        free(v); free(idx); free(got);
        H5Gclose(g);
    }
    mm_h5_close(f);
}

/* kind: 0 group, 1 stratified, 2 stratified group */
static void run_kfold_cases(const char *section, int kind)
{
    hid_t f = open_fixture();
    char name[96];
    int cases = 0;
    for (int c = 0;; c++) {
        snprintf(name, sizeof name, "%s/case_%03d", section, c);
        if (!mm_h5_exists(f, name)) break;
        mm_err e = {0};
        hid_t g = mm_h5_open_group(f, name, &e);
        int64_t k;
        assert_int_equal(mm_h5_attr_get_i64(g, "k", &k, &e), 0);
        size_t n, n2;
        int32_t *want = read_i32(g, "fold", &n), *y = NULL, *grp = NULL;
        if (kind != 0) y = read_i32(g, "y", &n2);
        if (kind != 1) grp = read_i32(g, "groups", &n2);
        int32_t *got = malloc(n * sizeof *got);
        int rc = kind == 0   ? mm_split_group_kfold(grp, n, (size_t)k, got, &e)
                 : kind == 1 ? mm_split_stratified_kfold(y, n, (size_t)k, NULL, got, &e)
                             : mm_split_stratified_group_kfold(y, grp, n, (size_t)k, NULL, got, &e);
        if (rc) fail_msg("%s: %s", name, e.msg);
        size_t bad = count_diff(got, want, n);
        printf("%s (n=%zu, k=%d): %zu fold ids differ from sklearn\n", name, n, (int)k, bad);
        assert_int_equal(bad, 0);
        free(want); free(y); free(grp); free(got);
        H5Gclose(g);
        cases++;
    }
    assert_true(cases > 0);
    mm_h5_close(f);
}

static void test_group_kfold_exact(void **st) { (void)st; run_kfold_cases("group_kfold", 0); }
static void test_stratified_kfold_exact(void **st) { (void)st; run_kfold_cases("stratified_kfold", 1); }
static void test_stratified_group_kfold_exact(void **st)
{
    (void)st;
    run_kfold_cases("stratified_group_kfold", 2);
}

static void test_logo_exact(void **st)
{
    (void)st;
    hid_t f = open_fixture();
    mm_err e = {0};
    hid_t g = mm_h5_open_group(f, "logo", &e);
    size_t n;
    int32_t *grp = read_i32(g, "groups", &n), *want = read_i32(g, "fold", &n);
    int32_t got[16];
    size_t k;
    assert_int_equal(mm_split_logo(grp, n, got, &k, &e), 0);
    assert_int_equal(k, 4);
    assert_int_equal(count_diff(got, want, n), 0);
    int32_t one[3] = {7, 7, 7};
    assert_int_equal(mm_split_logo(one, 3, got, &k, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "at least 2 groups, the data has 1"));
    free(grp); free(want);
    H5Gclose(g);
    mm_h5_close(f);
}

/* RAVDESS-like labels/speakers: 24 x (4 neutral + 7 x 8). */
static void ravdess_like(int32_t *y, int32_t *g)
{
    size_t i = 0;
    for (int a = 1; a <= 24; a++)
        for (int c = 0; c < 8; c++)
            for (int j = 0; j < (c ? 8 : 4); j++, i++) { y[i] = c; g[i] = a; }
}

static void test_shuffled_invariants(void **st)
{
    (void)st;
    enum { N = 1440, K = 5 };
    static int32_t y[N], g[N], f1[N], f2[N];
    ravdess_like(y, g);
    mm_err e = {0};
    for (uint64_t seed = 0; seed < 3; seed++) {
        mm_rng r1, r2;
        mm_rng_seed(&r1, seed, 0, 0);
        mm_rng_seed(&r2, seed, 0, 0);
        assert_int_equal(mm_split_stratified_kfold(y, N, K, &r1, f1, &e), 0);
        assert_int_equal(mm_split_stratified_kfold(y, N, K, &r2, f2, &e), 0);
        assert_int_equal(count_diff(f1, f2, N), 0);     /* deterministic for a seed */
        int cnt[K][8] = {{0}};
        for (size_t i = 0; i < N; i++) {
            assert_true(f1[i] >= 0 && f1[i] < K);        /* each sample tested exactly once */
            cnt[f1[i]][y[i]]++;
        }
        for (int c = 0; c < 8; c++) {
            int lo = N, hi = 0;
            for (int k = 0; k < K; k++) {
                if (cnt[k][c] < lo) lo = cnt[k][c];
                if (cnt[k][c] > hi) hi = cnt[k][c];
            }
            assert_true(hi - lo <= 1);                   /* per-class counts differ by <= 1 */
        }
        /* stratified group K-fold shuffled: groups whole, every fold used */
        mm_rng_seed(&r1, seed, 0, 0);
        assert_int_equal(mm_split_stratified_group_kfold(y, g, N, K, &r1, f1, &e), 0);
        assert_int_equal(mm_split_folds_leak(f1, g, N), 0);
        int used[K] = {0}, pc[K][8] = {{0}};
        for (size_t i = 0; i < N; i++) {
            used[f1[i]]++;
            pc[f1[i]][y[i]]++;
        }
        for (int k = 0; k < K; k++) assert_true(used[k] > 0);
        /* every speaker has the same class mix: folds differ by at most one
         * speaker's share of a class (8 clips) */
        for (int c = 0; c < 8; c++) {
            int lo = N, hi = 0;
            for (int k = 0; k < K; k++) {
                if (pc[k][c] < lo) lo = pc[k][c];
                if (pc[k][c] > hi) hi = pc[k][c];
            }
            assert_true(hi - lo <= 8);
        }
    }
    /* shuffling changes something */
    mm_rng r;
    mm_rng_seed(&r, 1, 0, 0);
    assert_int_equal(mm_split_stratified_kfold(y, N, K, NULL, f1, &e), 0);
    assert_int_equal(mm_split_stratified_kfold(y, N, K, &r, f2, &e), 0);
    assert_true(count_diff(f1, f2, N) > 0);
}

static void test_errors_name_numbers(void **st)
{
    (void)st;
    int32_t g[6] = {1, 1, 2, 2, 3, 3}, y[6] = {0, 0, 0, 1, 1, 1}, f[6];
    mm_err e = {0};
    assert_int_equal(mm_split_group_kfold(g, 6, 4, f, &e), MM_EINVAL);
    printf("error: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "n_folds=4 is greater than the number of groups (3)"));
    assert_int_equal(mm_split_group_kfold(g, 6, 7, f, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "number of samples (6)"));
    assert_int_equal(mm_split_group_kfold(g, 6, 1, f, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "at least 2, got 1"));
    int32_t y2[6] = {0, 0, 0, 0, 0, 1};
    assert_int_equal(mm_split_stratified_kfold(y2, 6, 2, NULL, f, &e), MM_EINVAL);
    printf("error: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "(label 1) has only 1 members, fewer than n_folds=2"));
    assert_int_equal(mm_split_stratified_kfold(y, 6, 4, NULL, f, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "members in each class (largest class: 3)"));
    assert_int_equal(mm_split_stratified_group_kfold(y, g, 6, 3, NULL, f, &e), 0);
    assert_int_equal(mm_split_stratified_group_kfold(y, g, 6, 4, NULL, f, &e), MM_EINVAL);
}

static void test_protocols_and_leakage(void **st)
{
    (void)st;
    enum { N = 1440 };
    static int32_t y[N], g[N];
    static size_t idx[N];
    ravdess_like(y, g);
    mm_err e = {0};
    mm_split *s;
    /* group K-fold with 2 repeats and a 10% validation part by speaker */
    mm_split_params p = mm_split_params_default();
    p.kind = MM_SPLIT_GROUP_KFOLD;
    p.repeats = 2;
    p.val_fraction = 0.1;
    p.seed = 7;
    assert_int_equal(mm_split_make(&p, y, g, N, &s, &e), 0);
    assert_int_equal(s->n_rounds, 10);
    assert_int_equal(mm_split_check_leakage(s, g, &e), 0);
    for (size_t r = 0; r < s->n_rounds; r++) {
        size_t nt = mm_split_indices(s, r, MM_ROLE_TEST, idx);
        size_t nv = mm_split_indices(s, r, MM_ROLE_VAL, idx);
        size_t ntr = mm_split_indices(s, r, MM_ROLE_TRAIN, idx);
        assert_int_equal(nt + nv + ntr, N);
        assert_int_equal(nv, 2 * 60);                /* ceil(0.1 * 19 or 20 speakers) = 2 */
    }
    mm_split_free(s);
    /* stratified K-fold: validation stratified, test parts partition the data */
    p = mm_split_params_default();
    p.shuffle = 1;
    p.val_fraction = 0.1;
    assert_int_equal(mm_split_make(&p, y, NULL, N, &s, &e), 0);
    static int tested[N];
    memset(tested, 0, sizeof tested);
    for (size_t r = 0; r < s->n_rounds; r++) {
        size_t nt = mm_split_indices(s, r, MM_ROLE_TEST, idx);
        for (size_t j = 0; j < nt; j++) tested[idx[j]]++;
        size_t nv = mm_split_indices(s, r, MM_ROLE_VAL, idx);
        assert_int_equal(nv, 116);                   /* ceil(0.1 * 1152) */
        int cnt[8] = {0};
        for (size_t j = 0; j < nv; j++) cnt[y[idx[j]]]++;
        if (r == 0) printf("validation classes: %d %d %d %d %d %d %d %d\n", cnt[0], cnt[1], cnt[2], cnt[3], cnt[4], cnt[5], cnt[6], cnt[7]);
        assert_true(cnt[0] >= 7 && cnt[0] <= 8);     /* ~77 of 1152 neutral → 7.75 of 116 */
    }
    for (size_t i = 0; i < N; i++) assert_int_equal(tested[i], 1);
    /* without groups, stratified K-fold mixes speakers: the leak is found */
    assert_int_equal(mm_split_check_leakage(s, g, &e), MM_EDATA);
    printf("leak: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "round 0 (repeat 0, fold 0): group 1 is in both"));
    mm_split_free(s);
    /* fixed split by speakers, from a config */
    mm_cfg *c;
    assert_int_equal(mm_cfg_parse_string("kind: fixed\ntrain_groups: [1-20]\n"
                                         "val_groups: [21, 22]\ntest_groups: [\"23-24\"]\n",
                                         "proto.yaml", &c, &e), 0);
    assert_int_equal(mm_split_params_from_cfg(c, &p, &e), 0);
    assert_int_equal(p.n_train_groups, 20);
    assert_int_equal(mm_split_make(&p, y, g, N, &s, &e), 0);
    assert_int_equal(s->n_rounds, 1);
    assert_int_equal(mm_split_indices(s, 0, MM_ROLE_TRAIN, idx), 1200);
    assert_int_equal(mm_split_indices(s, 0, MM_ROLE_VAL, idx), 120);
    assert_int_equal(mm_split_indices(s, 0, MM_ROLE_TEST, idx), 120);
    assert_int_equal(idx[0], 22 * 60);
    assert_int_equal(mm_split_check_leakage(s, g, &e), 0);
    mm_split_free(s);
    mm_split_params_release(&p);
    mm_cfg_free(c);
    /* config errors */
    const char *bad[][2] = {
        {"kind: fixed\ntrain_groups: [1-20]\n", "needs non-empty train_groups and test_groups"},
        {"kind: fixed\ntrain_groups: [1-20]\ntest_groups: [20-x]\n", "got '20-x'"},
        {"kind: group_kfold\nshuffle: true\n", "only the stratified kinds shuffle"},
        {"kind: kfold\n", "expected one of group_kfold"},
        {"n_folds: 1\n", "key 'n_folds': expected an integer in [2, 1000000], got 1"},
        {"folds: 3\n", "folds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(mm_cfg_parse_string(bad[i][0], "proto.yaml", &c, &e), 0);
        assert_int_not_equal(mm_split_params_from_cfg(c, &p, &e), 0);
        printf("config error: %s\n", e.msg);
        assert_non_null(strstr(e.msg, bad[i][1]));
        assert_non_null(strstr(e.msg, "proto.yaml"));
        mm_cfg_free(c);
    }
    /* fixed split errors: overlapping lists, unknown group */
    int32_t tr[2] = {1, 2}, te[2] = {2, 3}, te2[1] = {99};
    p = mm_split_params_default();
    p.kind = MM_SPLIT_FIXED;
    p.train_groups = tr; p.n_train_groups = 2;
    p.test_groups = te; p.n_test_groups = 2;
    assert_int_equal(mm_split_make(&p, y, g, N, &s, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "group 2 is listed in both train_groups and test_groups"));
    p.test_groups = te2; p.n_test_groups = 1;
    assert_int_equal(mm_split_make(&p, y, g, N, &s, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "test_groups: group 99 has no samples"));
    /* leave-one-group-out with a validation carve: 24 rounds, no leak */
    p = mm_split_params_default();
    p.kind = MM_SPLIT_LOGO;
    p.val_fraction = 0.05;
    assert_int_equal(mm_split_make(&p, y, g, N, &s, &e), 0);
    assert_int_equal(s->n_rounds, 24);
    assert_int_equal(mm_split_find_leak(s, g, NULL, NULL, NULL, NULL), 0);
    mm_split_free(s);
    /* repeats: reproducible for a seed, different between repeats; test
     * folds per repeat cover every sample once */
    p = mm_split_params_default();
    p.kind = MM_SPLIT_STRATIFIED_GROUP_KFOLD;
    p.shuffle = 1;
    p.repeats = 3;
    p.seed = 42;
    mm_split *s2;
    assert_int_equal(mm_split_make(&p, y, g, N, &s, &e), 0);
    assert_int_equal(mm_split_make(&p, y, g, N, &s2, &e), 0);
    assert_memory_equal(s->role, s2->role, s->n_rounds * N);
    static int32_t fa[N], fb[N];
    mm_split_test_folds(s, 0, fa);
    mm_split_test_folds(s, 1, fb);
    assert_true(count_diff(fa, fb, N) > 0);
    for (size_t i = 0; i < N; i++) assert_true(fa[i] >= 0 && fa[i] < 5);
    assert_int_equal(mm_split_folds_leak(fa, g, N), 0);
    mm_split_free(s);
    mm_split_free(s2);
    /* leak on raw fold ids */
    int32_t fold[4] = {0, 1, 1, 1}, gg[4] = {5, 5, 6, 6};
    assert_int_equal(mm_split_folds_leak(fold, gg, 4), 1);
    fold[0] = 1;
    assert_int_equal(mm_split_folds_leak(fold, gg, 4), 0);
    mm_split_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argsort_matches_numpy),
        cmocka_unit_test(test_group_kfold_exact),
        cmocka_unit_test(test_stratified_kfold_exact),
        cmocka_unit_test(test_stratified_group_kfold_exact),
        cmocka_unit_test(test_logo_exact),
        cmocka_unit_test(test_shuffled_invariants),
        cmocka_unit_test(test_errors_name_numbers),
        cmocka_unit_test(test_protocols_and_leakage),
    };
    return cmocka_run_group_tests_name("splits", tests, NULL, NULL);
}
