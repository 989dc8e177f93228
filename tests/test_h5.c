/* test_h5.c — HDF5 helpers: atomic writes, round trips, errors on wrong kinds. */
#include "testutil.h"
#include "io/h5.h"

#include <sys/stat.h>
#include <sys/wait.h>

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

/* The temporary is created with O_EXCL under an unpredictable name (a symlink at the
 * old predictable name is left alone) and temporaries of dead processes are removed. */
static void test_temporaries(void **st)
{
    char dir[128], path[256], p[512], host[256] = "localhost";
    snprintf(dir, sizeof dir, "/tmp/mm_h5tmp_%d", (int)getpid());
    assert_int_equal(tu_system("rm -rf %s && mkdir -p %s", dir, dir), 0);
    snprintf(path, sizeof path, "%s/out.h5", dir);
    gethostname(host, sizeof host - 1);
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    assert_true(dead > 0);
    waitpid(dead, NULL, 0);
    /* a victim file behind a symlink at "<path>.tmp.<pid>" (what the old code wrote) */
    char victim[256];
    snprintf(victim, sizeof victim, "%s/victim", dir);
    assert_int_equal(tu_system("echo keep > %s && ln -s %s %s.tmp.%d", victim, victim, path, (int)getpid()), 0);
    snprintf(p, sizeof p, "%s.tmp.%d", path, (int)dead);
    assert_int_equal(tu_system("touch %s", p), 0);
    snprintf(p, sizeof p, "%s.tmp.%s.%d.abc123", path, host, (int)dead);
    assert_int_equal(tu_system("touch %s", p), 0);
    snprintf(p, sizeof p, "%s.tmp.otherhost.%d.abc123", path, (int)dead);    /* not ours to judge */
    assert_int_equal(tu_system("touch %s", p), 0);
    snprintf(p, sizeof p, "%s.tmp.%s.%d.abc123", path, host, (int)getppid()); /* alive */
    assert_int_equal(tu_system("touch %s", p), 0);
    snprintf(p, sizeof p, "%s.tmpfoo.%d", path, (int)dead);                   /* not a temporary */
    assert_int_equal(tu_system("touch %s", p), 0);
    mm_h5_out o;
    mm_err e = {0};
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    struct stat sb;
    assert_int_equal(lstat(o.tmp, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_true(strncmp(o.tmp, path, strlen(path)) == 0);
    assert_true(strcmp(o.tmp + strlen(path), ".tmp.") > 0);
    char mine[300];
    snprintf(mine, sizeof mine, "%s.tmp.%d", path, (int)getpid());
    assert_string_not_equal(o.tmp, mine);
    float x = 1;
    hsize_t d1 = 1;
    assert_int_equal(mm_h5_write_f32(o.file, "x", &x, 1, &d1, &e), 0);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    assert_int_equal(tu_system("grep -qx keep %s", victim), 0);            /* untouched */
    /* what is left: out.h5, the victim and its link, the other host's, the live one, tmpfoo */
    assert_int_equal(tu_system("test $(ls %s | wc -l) -eq 6", dir), 0);
    snprintf(p, sizeof p, "%s.tmp.%d", path, (int)dead);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s.tmp.%s.%d.abc123", path, host, (int)dead);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s.tmp.otherhost.%d.abc123", path, (int)dead);
    assert_int_equal(access(p, F_OK), 0);
    /* an unwritable folder: a one-line error naming the path */
    assert_int_not_equal(mm_h5_create("/nonexistent_dir/x.h5", &o, &e), 0);
    assert_non_null(strstr(e.msg, "/nonexistent_dir/x.h5: cannot create output file"));
    tu_system("rm -rf %s", dir);
}

/* Datasets whose size comes from the header but whose bytes are not in the file:
 * refused before allocating (a 30 KB file made the reader allocate 1.6-1.9 GB).
 * Compressed data within deflate's ratio still reads. */
static void test_hostile_sizes(void **st)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/mm_h5_hostile_%d.h5", (int)getpid());
    mm_h5_init();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    /* 10^8 variable-length strings, chunked and compressed, never written */
    hsize_t n = 100000000, chunk = 4096;
    hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, 4);
    hid_t vt = H5Tcopy(H5T_C_S1);
    H5Tset_size(vt, H5T_VARIABLE);
    hid_t d = H5Dcreate2(f, "vstr", vt, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    /* the same count of float32 */
    d = H5Dcreate2(f, "floats", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(dcpl);
    /* two fixed-length strings of 1 GiB each, contiguous, never written */
    hsize_t two = 2;
    sp = H5Screate_simple(1, &two, NULL);
    hid_t ft = H5Tcopy(H5T_C_S1);
    H5Tset_size(ft, (size_t)1 << 30);
    d = H5Dcreate2(f, "fstr", ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(ft);
    H5Tclose(vt);
    /* 4 M zeros, compressed by our own writer: must read back */
    size_t nz = (size_t)1 << 22;
    float *z = calloc(nz, sizeof *z);
    hsize_t dz[2] = {nz / 64, 64};
    mm_err e = {0};
    assert_int_equal(mm_h5_write_f32(f, "zeros", z, 2, dz, &e), 0);
    H5Fclose(f);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    printf("# hostile file: %lld bytes\n", (long long)sb.st_size);
    assert_true(sb.st_size < (1 << 20));
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    char **s;
    size_t ns;
    assert_int_equal(mm_h5_read_strings(f, "vstr", &s, &ns, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "dataset 'vstr' claims 100000000 values of 16 bytes"));
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(mm_h5_read_strings(f, "fstr", &s, &ns, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "dataset 'fstr' claims 2 values of 1073741824 bytes"));
    float *y;
    int r;
    hsize_t dd[4];
    assert_int_equal(mm_h5_read_f32(f, "floats", 1, &y, &r, dd, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "dataset 'floats' claims 100000000 values of 4 bytes"));
    assert_int_equal(mm_h5_read_f32(f, "zeros", 2, &y, &r, dd, &e), 0);
    assert_int_equal(dd[0] * dd[1], nz);
    assert_memory_equal(y, z, nz * sizeof *z);
    free(y);
    free(z);
    mm_h5_close(f);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_atomic),
        cmocka_unit_test(test_temporaries),
        cmocka_unit_test(test_hostile_sizes),
    };
    return cmocka_run_group_tests_name("h5", tests, NULL, NULL);
}
