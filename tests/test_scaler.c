/* test_scaler.c — standard scaler vs scikit-learn's StandardScaler, constant
 * columns, inverse, save/load and errors. */
#include "testutil.h"
#include "io/h5.h"
#include "learn/scaler.h"

#define REF "tests/fixtures/svm_ref.h5"

/* Mean and scale vs sklearn (float64 on both sides, float32 input): relative
 * error <= 1e-9 (summation order only). Z (float32) within 1e-5 absolute:
 * sklearn subtracts a float32-rounded mean in float32, we work in double. */
static void test_vs_sklearn(void **st)
{
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    float *X, *Z;
    double *mean, *scale;
    int r;
    hsize_t dx[4], dm[4];
    assert_int_equal(mm_h5_read_f32(f, "scaler/X", 2, &X, &r, dx, &e), 0);
    assert_int_equal(mm_h5_read_f32(f, "scaler/Z", 2, &Z, &r, dm, &e), 0);
    assert_int_equal(mm_h5_read_f64(f, "scaler/mean", 1, &mean, &r, dm, &e), 0);
    assert_int_equal(mm_h5_read_f64(f, "scaler/scale", 1, &scale, &r, dm, &e), 0);
    mm_h5_close(f);
    size_t n = dx[0], d = dx[1];
    mm_scaler *s;
    assert_int_equal(mm_scaler_fit(X, n, d, &s, &e), 0);
    assert_int_equal(mm_scaler_dim(s), d);
    double em = 0, es = 0;
    for (size_t j = 0; j < d; j++) {
        em = fmax(em, fabs(mm_scaler_mean(s)[j] - mean[j]) / fmax(1, fabs(mean[j])));
        es = fmax(es, fabs(mm_scaler_scale(s)[j] - scale[j]) / scale[j]);
    }
    assert_true(mm_scaler_scale(s)[2] == 1.0 && mm_scaler_scale(s)[4] == 1.0);   /* constant columns */
    float *Y = malloc(n * d * sizeof *Y);
    assert_int_equal(mm_scaler_transform_to(s, X, n, d, Y, &e), 0);
    double ez = tu_max_abs_diff(Y, Z, n * d);
    printf("  mean rel err %.2e, scale rel err %.2e, max |Z - sklearn| %.2e\n", em, es, ez);
    assert_true(em <= 1e-9 && es <= 1e-9);
    assert_true(ez <= 1e-5);
    assert_int_equal(mm_scaler_inverse(s, Y, n, d, &e), 0);
    double ei = 0;
    for (size_t i = 0; i < n * d; i++) ei = fmax(ei, fabs(Y[i] - X[i]) / fmax(1, fabs(X[i])));
    printf("  inverse round trip rel err %.2e\n", ei);
    assert_true(ei <= 1e-6);
    /* in place == to out */
    float *W = malloc(n * d * sizeof *W);
    memcpy(W, X, n * d * sizeof *W);
    assert_int_equal(mm_scaler_transform(s, W, n, d, &e), 0);
    assert_int_equal(mm_scaler_transform_to(s, X, n, d, Y, &e), 0);
    assert_memory_equal(W, Y, n * d * sizeof *W);
    assert_int_not_equal(mm_scaler_transform(s, W, n, d - 1, &e), 0);
    assert_non_null(strstr(e.msg, "fitted on 6 features, got 5"));
    /* save / load round trip, and corrupt groups */
    char path[256];
    snprintf(path, sizeof path, "/tmp/mm_scaler_%d.h5", (int)getpid());
    mm_h5_out o;
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    hid_t g = mm_h5_group(o.file, "scaler", &e);
    assert_int_equal(mm_scaler_save(s, g, &e), 0);
    H5Gclose(g);
    g = mm_h5_group(o.file, "bad_len", &e);
    assert_int_equal(mm_scaler_save(s, g, &e), 0);
    hsize_t d3[1] = {3};
    assert_int_equal(mm_h5_write_f64(g, "scale", scale, 1, d3, &e), 0);
    H5Gclose(g);
    g = mm_h5_group(o.file, "bad_val", &e);
    assert_int_equal(mm_scaler_save(s, g, &e), 0);
    double zero[6] = {1, 1, 0, 1, 1, 1};
    hsize_t d6[1] = {6};
    assert_int_equal(mm_h5_write_f64(g, "scale", zero, 1, d6, &e), 0);
    H5Gclose(g);
    g = mm_h5_group(o.file, "other", &e);
    assert_int_equal(mm_h5_attr_set_str(g, "kind", "svm", &e), 0);
    H5Gclose(g);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    mm_scaler *s2;
    g = mm_h5_open_group(f, "scaler", &e);
    assert_int_equal(mm_scaler_load(g, &s2, &e), 0);
    H5Gclose(g);
    assert_int_equal(mm_scaler_transform(s2, W, 0, d, &e), 0);
    assert_int_equal(mm_scaler_transform_to(s2, X, n, d, W, &e), 0);
    assert_memory_equal(W, Y, n * d * sizeof *W);
    mm_scaler_free(s2);
    const char *bad[3] = {"bad_len", "bad_val", "other"};
    const char *msg[3] = {"'mean' has 6 values and 'scale' 3", "column 2 has mean", "expected a standard_scaler"};
    for (int b = 0; b < 3; b++) {
        g = mm_h5_open_group(f, bad[b], &e);
        s2 = NULL;
        assert_int_not_equal(mm_scaler_load(g, &s2, &e), 0);
        printf("  %s: %s\n", bad[b], e.msg);
        assert_non_null(strstr(e.msg, msg[b]));
        assert_null(s2);
        H5Gclose(g);
    }
    mm_h5_close(f);
    unlink(path);
    mm_scaler_free(s);
    mm_scaler_free(NULL);
    free(X); free(Z); free(Y); free(W); free(mean); free(scale);
}

static void test_errors(void **st)
{
    float X[4] = {1, 2, INFINITY, 4};
    mm_scaler *s = NULL;
    mm_err e = {0};
    assert_int_equal(mm_scaler_fit(X, 2, 2, &s, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "row 1, column 0 is infinite"));
    assert_int_equal(mm_scaler_fit(X, 0, 2, &s, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "empty"));
    assert_null(s);
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vs_sklearn),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("scaler", tests, NULL, NULL);
}
