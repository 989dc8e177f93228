/* test_groupnorm.c — per-group standardisation (learn/groupnorm.c) against
 * the numpy reference of tests/ref/gen_groupnorm.py, the K-clip variant by
 * brute force over subsets, thread-count determinism and errors. */
#include "testutil.h"

#include "io/h5.h"
#include "learn/groupnorm.h"

#define FIX "tests/fixtures/groupnorm.h5"

static float *X, *ref_all, *ref_loo;
static int32_t *groups;
enum { N = 30, D = 5 };

static int setup(void **st)
{
    (void)st;
    mm_err e = {0};
    hid_t f;
    int r;
    hsize_t d[4];
    if (mm_h5_open_read(FIX, &f, &e)) return -1;
    int rc = mm_h5_read_f32(f, "X", 2, &X, &r, d, &e) || mm_h5_read_f32(f, "all", 2, &ref_all, &r, d, &e) ||
             mm_h5_read_f32(f, "loo", 2, &ref_loo, &r, d, &e) || mm_h5_read_i32(f, "groups", 1, &groups, &r, d, &e);
    mm_h5_close(f);
    return rc ? -1 : 0;
}

static int teardown(void **st)
{
    (void)st;
    free(X), free(ref_all), free(ref_loo), free(groups);
    return 0;
}

/* Metric: max |Δ| over the 150 standardised values (|z| up to ~3);
 * tolerance 1e-5: both compute the statistics in double and round once to
 * float32 (half an ulp at 3 is 1.2e-7); the margin covers summation order. */
static void test_vs_numpy(void **st)
{
    (void)st;
    mm_err e = {0};
    float Z[N * D];
    memcpy(Z, X, sizeof Z);
    assert_int_equal(mm_group_norm(Z, N, D, groups, 0, 1, 1, &e), 0);
    double d_all = tu_max_abs_diff(Z, ref_all, N * D);
    memcpy(Z, X, sizeof Z);
    assert_int_equal(mm_group_norm(Z, N, D, groups, 100, 1, 2, &e), 0);   /* K >= group: all others */
    double d_loo = tu_max_abs_diff(Z, ref_loo, N * D);
    printf("# all-rows statistics max|d| %.2e, leave-one-out %.2e\n", d_all, d_loo);
    assert_true(d_all < 1e-5);
    assert_true(d_loo < 1e-5);
    /* the constant column of group 1 is centred only (all zeros) */
    for (int i = 0; i < N; i++)
        if (groups[i] == 1) assert_true(fabsf(ref_all[i * D + 3]) == 0.f);
    /* mm_group_norm_apply with a history of the other rows = leave-one-out */
    float hist[N * D], x[D];
    size_t k = 0;
    for (int j = 0; j < N; j++)
        if (j != 4 && groups[j] == groups[4]) memcpy(hist + k++ * D, X + j * D, sizeof x);
    memcpy(x, X + 4 * D, sizeof x);
    mm_group_norm_apply(hist, k, D, x);
    assert_true(tu_max_abs_diff(x, ref_loo + 4 * D, D) < 1e-5);
}

/* K = 3: each row must equal its standardisation by SOME 3 other rows of its
 * group (checked over all subsets), and 1 and 2 threads agree bit for bit. */
static void test_k_clips(void **st)
{
    (void)st;
    mm_err e = {0};
    float A[N * D], B[N * D];
    memcpy(A, X, sizeof A);
    memcpy(B, X, sizeof B);
    assert_int_equal(mm_group_norm(A, N, D, groups, 3, 42, 1, &e), 0);
    assert_int_equal(mm_group_norm(B, N, D, groups, 3, 42, 2, &e), 0);
    assert_memory_equal(A, B, sizeof A);
    for (int i = 0; i < N; i++) {
        int others[N], m = 0, found = 0;
        for (int j = 0; j < N; j++) if (j != i && groups[j] == groups[i]) others[m++] = j;
        for (int a = 0; a < m && !found; a++)
            for (int b = a + 1; b < m && !found; b++)
                for (int c = b + 1; c < m && !found; c++) {
                    float h[3 * D], x[D];
                    memcpy(h, X + others[a] * D, sizeof x);
                    memcpy(h + D, X + others[b] * D, sizeof x);
                    memcpy(h + 2 * D, X + others[c] * D, sizeof x);
                    memcpy(x, X + i * D, sizeof x);
                    mm_group_norm_apply(h, 3, D, x);
                    found = tu_max_abs_diff(x, A + i * D, D) == 0;
                }
        assert_true(found);
    }
    /* another seed draws other subsets somewhere */
    memcpy(B, X, sizeof B);
    assert_int_equal(mm_group_norm(B, N, D, groups, 3, 43, 1, &e), 0);
    assert_memory_not_equal(A, B, sizeof A);
}

static void test_errors(void **st)
{
    (void)st;
    mm_err e = {0};
    float Z[N * D];
    int32_t g[N];
    memcpy(Z, X, sizeof Z);
    memcpy(g, groups, sizeof g);
    g[7] = -1;
    assert_int_equal(mm_group_norm(Z, N, D, g, 0, 1, 1, &e), MM_EINVAL);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "row 7"));
    assert_memory_equal(Z, X, sizeof Z);   /* untouched on error */
    g[7] = 9;                              /* a group of one row */
    assert_int_equal(mm_group_norm(Z, N, D, g, 0, 1, 1, &e), 0);
    memcpy(Z, X, sizeof Z);
    assert_int_equal(mm_group_norm(Z, N, D, g, 2, 1, 1, &e), MM_EINVAL);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "alone"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vs_numpy),
        cmocka_unit_test(test_k_clips),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
