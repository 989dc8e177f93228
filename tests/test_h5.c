/* test_h5.c — HDF5 helpers: atomic writes, round trips, errors on wrong kinds. */
#include "testutil.h"
#include "io/h5.h"

static void test_roundtrip_and_atomic(void **st)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/mm_h5_%d.h5", (int)getpid());
    unlink(path);
    mm_h5_out o;
    mm_err e = {0};
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    assert_int_not_equal(access(path, F_OK), 0);     /* nothing under the final name yet */
    float x[6] = {1, 2, 3, 4, 5, 6};
    hsize_t d[2] = {2, 3};
    assert_int_equal(mm_h5_write_f32(o.file, "/a/b/x", x, 2, d, &e), 0);
    const char *s[3] = {"alpha", "béta", "gamma"};
    assert_int_equal(mm_h5_write_strings(o.file, "names", s, 3, &e), 0);
    assert_int_equal(mm_h5_attr_set_str(o.file, "note", "hello", &e), 0);
    assert_int_equal(mm_h5_stamp_format(o.file, "test-format", 1, &e), 0);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    hid_t f;
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    float *y; int r; hsize_t dd[4];
    assert_int_equal(mm_h5_read_f32(f, "/a/b/x", 2, &y, &r, dd, &e), 0);
    assert_int_equal(dd[0], 2); assert_int_equal(dd[1], 3);
    assert_memory_equal(x, y, sizeof x);
    free(y);
    assert_int_not_equal(mm_h5_read_f32(f, "/a/b/x", 1, &y, &r, dd, &e), 0);
    assert_non_null(strstr(e.msg, "expected rank 1"));
    char **names; size_t n;
    assert_int_equal(mm_h5_read_strings(f, "names", &names, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[1], "béta");
    mm_h5_free_strings(names, n);
    assert_int_not_equal(mm_h5_read_f32(f, "missing", -1, &y, &r, dd, &e), 0);
    assert_non_null(strstr(e.msg, "'missing' is missing"));
    assert_int_not_equal(mm_h5_check_format(f, "other-format", 1, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "expected a other-format file"));
    assert_int_equal(mm_h5_check_format(f, "test-format", 1, NULL, &e), 0);
    mm_h5_close(f);
    /* abort leaves nothing */
    char p2[300];
    snprintf(p2, sizeof p2, "%s.aborted", path);
    assert_int_equal(mm_h5_create(p2, &o, &e), 0);
    mm_h5_abort(&o);
    assert_int_not_equal(access(p2, F_OK), 0);
    /* a non-HDF5 file and a truncated one are clear errors */
    FILE *fp = fopen(p2, "w"); fputs("not hdf5", fp); fclose(fp);
    assert_int_not_equal(mm_h5_open_read(p2, &f, &e), 0);
    assert_non_null(strstr(e.msg, "not an HDF5 file"));
    assert_int_equal(tu_system("head -c 1000 %s > %s", path, p2), 0);
    int rc = mm_h5_open_read(p2, &f, &e);
    if (rc == 0) {     /* the superblock may survive truncation: reading must then fail cleanly */
        assert_int_not_equal(mm_h5_read_f32(f, "/a/b/x", 2, &y, &r, dd, &e), 0);
        mm_h5_close(f);
    }
    unlink(p2);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_atomic),
    };
    return cmocka_run_group_tests_name("h5", tests, NULL, NULL);
}
