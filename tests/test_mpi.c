/* test_mpi.c — scale-out through the melodic binary: extraction and a small
 * experiment under `mpirun --oversubscribe -np 1|2|4` and as --shard parts
 * merged equal the single-process outputs (HDF5 datasets byte for byte,
 * timings excepted); a run whose rank dies resumes to identical results;
 * every bad input of issue 11 fails with one line. 24 generated WAVs,
 * logmel_stats, rf + svm. Without mpirun the MPI cases skip; under ASan
 * Open MPI's own leaks are suppressed (tests/lsan_mpi.supp). */
#include "testutil.h"

#include <hdf5.h>
#include <sndfile.h>
#include <sys/stat.h>

#include <signal.h>

#include "exp/runner.h"
#include "io/cfg.h"
#include "io/h5.h"
#include "mpi/mpi.h"

static char dir[256];
static const char *self;   /* this program, which also serves as the kill test's MPI child */
static int have_mpirun;

/* The kill test's child (`test_mpi --child-run EXP.yaml DIR K`, under
 * mpirun): the experiment with a hook that kills this rank (SIGKILL) after
 * it saved K units, as a crashed node would. The hook lives only here: the
 * melodic binary has no fault injection. */
static void kill_after(void *ctx, size_t n_saved)
{
    if (n_saved >= *(const size_t *)ctx) raise(SIGKILL);
}

static int child_run(int argc, char **argv)
{
    mm_err e = {0};
    mm_cfg *c = NULL;
    size_t after = (size_t)strtoul(argv[4], NULL, 10);
    int rc = mm_mpi_init(&argc, &argv, &e);
    if (!rc) rc = mm_cfg_load_file(argv[2], &c, &e);
    mm_run_opts o = {.out_dir = argv[3], .config_path = argv[2], .n_threads = 1, .quiet = 1,
                     .on_unit_saved = kill_after, .hook_ctx = &after};
    mm_run_dist d = {0};
    if (!rc) rc = mm_experiment_run_dist(c, &o, &d, &e);
    if (rc) fprintf(stderr, "child: %s\n", e.msg);
    mm_cfg_free(c);
    mm_mpi_finalize();
    return rc ? 1 : 0;
}

/* 3 classes × 8 clips, 8 speakers, lengths 0.2-0.6 s (so sizes differ). */
static void make_data(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/data/manifest.csv", dir);
    tu_system("mkdir -p %s/data", dir);
    FILE *m = fopen(p, "w");
    assert_non_null(m);
    fprintf(m, "path,label,group\n");
    const char *labels[3] = {"calm", "happy", "sad"};
    unsigned seed = 12345;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 8; i++) {
            SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
            int n = 16000 * (2 + (i * 3 + c) % 5) / 10;
            float *x = malloc((size_t)n * sizeof *x);
            for (int j = 0; j < n; j++) {
                seed = seed * 1103515245u + 12345u;
                double noise = ((seed >> 8) & 0xffff) / 65536.0 - 0.5;
                x[j] = (float)(0.3 * sin(2 * M_PI * (220.0 * (c + 1) + 17 * i) * j / 16000.0) + 0.1 * noise);
            }
            snprintf(p, sizeof p, "%s/data/%s%d.wav", dir, labels[c], i);
            SNDFILE *f = sf_open(p, SFM_WRITE, &info);
            assert_non_null(f);
            sf_writef_float(f, x, n);
            sf_close(f);
            free(x);
            fprintf(m, "%s%d.wav,%s,spk%d\n", labels[c], i, labels[c], i);
        }
    fclose(m);
    snprintf(p, sizeof p, "%s/ext.yaml", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "dataset: {name: tiny, type: csv, root: %s/data, manifest: %s/data/manifest.csv}\nfeatures: logmel_stats\n", dir, dir);
    fclose(f);
}

/* The experiment on a feature table. */
static void write_exp(const char *name, const char *table)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "name: tiny\nseed: 5\ntable: %s\nprotocol: {kind: group_kfold, n_folds: 4}\n"
               "preprocessing: {scaler: standard}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: 20}}\n"
               "  - {name: svm, model: svm, params: {C: 1.0}}\n"
               "ensembles:\n  - {name: both, members: [forest, svm], voting: soft}\n"
               "tsne: {enabled: false}\n", table);
    fclose(f);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_mpi_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s", dir, dir);
    make_data();
    have_mpirun = tu_system("command -v mpirun > /dev/null 2>&1") == 0;
    tu_mpi_env();
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

/* Run melodic (np = 0: directly; else under mpirun -np np); stderr to
 * dir/err.txt; returns the exit status. */
static int mel(int np, const char *fmt, ...)
{
    char out[300], err[300];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);
    va_list ap;
    va_start(ap, fmt);
    int rc = tu_vmelodic(np, out, err, fmt, ap);
    va_end(ap);
    return rc;
}

static const char *slurp_err(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s/err.txt", dir);
    return tu_slurp(p);
}

/* ---- comparing HDF5 files dataset by dataset ---- */

typedef struct cmp_ctx {
    hid_t other;
    const char *skip;       /* datasets whose name contains this are not compared (timings) */
    int n_compared, n_diff;
} cmp_ctx;

static herr_t cmp_one(hid_t loc, const char *name, const H5O_info_t *info, void *vc)
{
    cmp_ctx *c = vc;
    if (info->type != H5O_TYPE_DATASET || (c->skip && strstr(name, c->skip))) return 0;
    hid_t a = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t b = H5Lexists(c->other, name, H5P_DEFAULT) > 0 ? H5Dopen2(c->other, name, H5P_DEFAULT) : -1;
    if (b < 0) { fprintf(stderr, "  only in one file: %s\n", name); c->n_diff++; H5Dclose(a); return 0; }
    hid_t ta = H5Dget_type(a), tb = H5Dget_type(b);
    hid_t sa = H5Dget_space(a), sb = H5Dget_space(b);
    hssize_t na = H5Sget_simple_extent_npoints(sa), nb = H5Sget_simple_extent_npoints(sb);
    int same = na == nb && H5Tequal(ta, tb) > 0;
    if (same && H5Tget_class(ta) == H5T_STRING) {
        mm_err e = {0};
        char **x = NULL, **y = NULL, *tx = NULL, *ty = NULL;
        size_t nx = 0, ny = 0;
        if (H5Sget_simple_extent_ndims(sa) == 0) {
            same = !mm_h5_read_text(loc, name, &tx, &e) && !mm_h5_read_text(c->other, name, &ty, &e) && !strcmp(tx, ty);
            free(tx); free(ty);
        } else {
            same = !mm_h5_read_strings(loc, name, &x, &nx, &e) && !mm_h5_read_strings(c->other, name, &y, &ny, &e) && nx == ny;
            for (size_t i = 0; same && i < nx; i++) same = !strcmp(x[i], y[i]);
            mm_h5_free_strings(x, nx);
            mm_h5_free_strings(y, ny);
        }
    } else if (same) {
        size_t sz = (size_t)na * H5Tget_size(ta);
        unsigned char *x = malloc(sz + 1), *y = malloc(sz + 1);
        hid_t mt = H5Tget_native_type(ta, H5T_DIR_DEFAULT);
        same = H5Dread(a, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0 && H5Dread(b, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0 &&
               memcmp(x, y, sz) == 0;
        H5Tclose(mt);
        free(x); free(y);
    }
    if (!same) { fprintf(stderr, "  differs: %s\n", name); c->n_diff++; }
    c->n_compared++;
    H5Sclose(sa); H5Sclose(sb); H5Tclose(ta); H5Tclose(tb); H5Dclose(a); H5Dclose(b);
    return 0;
}

/* Number of differing datasets of a vs b (every dataset of a, and b must
 * hold no more); prints the names. only: compare only these datasets. */
static int h5_diff(const char *pa, const char *pb, const char *skip, const char *const *only)
{
    hid_t a, b;
    mm_err e = {0};
    if (mm_h5_open_read(pa, &a, &e) || mm_h5_open_read(pb, &b, &e)) { fprintf(stderr, "%s\n", e.msg); return 1000; }
    cmp_ctx c = {.other = b, .skip = skip};
    if (only) {
        for (const char *const *n = only; *n; n++) {
            H5O_info_t info = {.type = H5O_TYPE_DATASET};
            cmp_one(a, *n, &info, &c);
        }
    } else {
        H5Ovisit2(a, H5_INDEX_NAME, H5_ITER_NATIVE, cmp_one, &c, H5O_INFO_BASIC);
        cmp_ctx back = {.other = a, .skip = skip};
        H5Ovisit2(b, H5_INDEX_NAME, H5_ITER_NATIVE, cmp_one, &back, H5O_INFO_BASIC);
        if (back.n_compared != c.n_compared) c.n_diff++;
    }
    mm_h5_close(a);
    mm_h5_close(b);
    fprintf(stderr, "compared %s and %s: %d datasets, %d differ\n", pa, pb, c.n_compared, c.n_diff);
    return c.n_diff;
}

static const char *const table_core[] = {"features", "labels", "groups", "paths", NULL};

/* ---- tests ---- */

static void test_extract_equal(void **st)
{
    char one[300], x[300];
    snprintf(one, sizeof one, "%s/one.h5", dir);
    assert_int_equal(mel(0, "extract %s/ext.yaml -o %s", dir, one), 0);
    /* shards merged: equal to the single table (every dataset, byte for byte) */
    for (int i = 1; i <= 3; i++) assert_int_equal(mel(0, "extract %s/ext.yaml --shard %d/3 -o %s/part%d.h5", dir, i, dir, i), 0);
    snprintf(x, sizeof x, "%s/merged.h5", dir);
    assert_int_equal(mel(0, "merge %s/part3.h5 %s/part1.h5 %s/part2.h5 -o %s", dir, dir, dir, x), 0);
    assert_int_equal(h5_diff(one, x, NULL, NULL), 0);
    if (!have_mpirun) { skip(); return; }
    static const int nps[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        snprintf(x, sizeof x, "%s/np%d.h5", dir, nps[k]);
        int rc = mel(nps[k], "extract %s/ext.yaml -o %s", dir, x);
        if (rc) fprintf(stderr, "%s", slurp_err());
        assert_int_equal(rc, 0);
        assert_int_equal(h5_diff(one, x, NULL, table_core), 0);
        assert_int_equal(h5_diff(one, x, NULL, NULL), 0);
    }
    /* the plain-files form */
    char files[4096] = "";
    for (int i = 0; i < 8; i++) {
        char f[700];
        snprintf(f, sizeof f, " %s/data/happy%d.wav %s/data/sad%d.wav", dir, i, dir, i);
        strncat(files, f, sizeof files - strlen(files) - 1);
    }
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/plain1.h5", dir);
    snprintf(b, sizeof b, "%s/plain2.h5", dir);
    assert_int_equal(mel(0, "extract --features logmel_stats -o %s %s", a, files), 0);
    assert_int_equal(mel(2, "extract --features logmel_stats -o %s %s", b, files), 0);
    assert_int_equal(h5_diff(a, b, NULL, table_core), 0);
    /* a bad file: skipped the same way (/skipped included), or the same one-line failure */
    assert_int_equal(mel(0, "extract --features logmel_stats --skip-bad -o %s tests/fixtures/audio/garbage.wav %s", a, files), 0);
    assert_int_equal(mel(2, "extract --features logmel_stats --skip-bad -o %s tests/fixtures/audio/garbage.wav %s", b, files), 0);
    assert_int_equal(h5_diff(a, b, NULL, NULL), 0);
    assert_int_equal(mel(2, "extract --features logmel_stats -o %s tests/fixtures/audio/garbage.wav %s", b, files), 1);
    assert_non_null(strstr(slurp_err(), "garbage.wav: not a recognised audio file"));
}

static void test_run_equal(void **st)
{
    char table[300], ref[300], x[300], y[300];
    snprintf(table, sizeof table, "%s/one.h5", dir);
    if (access(table, R_OK)) assert_int_equal(mel(0, "extract %s/ext.yaml -o %s", dir, table), 0);
    write_exp("exp.yaml", table);
    assert_int_equal(mel(0, "run %s/exp.yaml -o %s/run1 --quiet", dir, dir), 0);
    snprintf(ref, sizeof ref, "%s/run1/results.h5", dir);
    /* shards, then merge */
    for (int i = 1; i <= 3; i++) assert_int_equal(mel(0, "run %s/exp.yaml -o %s/runs --quiet --shard %d/3", dir, dir, i), 0);
    snprintf(x, sizeof x, "%s/runs/results.h5", dir);
    assert_int_not_equal(access(x, R_OK), 0);    /* shards alone write no results */
    assert_int_equal(mel(0, "merge %s/runs/parts/run-1-of-3.h5 %s/runs/parts/run-2-of-3.h5 %s/runs/parts/run-3-of-3.h5 --quiet", dir, dir, dir), 0);
    assert_int_equal(h5_diff(ref, x, "seconds", NULL), 0);
    if (!have_mpirun) { skip(); return; }
    static const int nps[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        int rc = mel(nps[k], "run %s/exp.yaml -o %s/mpi%d --quiet", dir, dir, nps[k]);
        if (rc) fprintf(stderr, "%s", slurp_err());
        assert_int_equal(rc, 0);
        snprintf(y, sizeof y, "%s/mpi%d/results.h5", dir, nps[k]);
        assert_int_equal(h5_diff(ref, y, "seconds", NULL), 0);
    }
    /* an experiment that extracts its own table: all ranks extract, rank 0 writes the cache */
    char p[400];
    snprintf(p, sizeof p, "%s/exp_ds.yaml", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "name: tiny\nseed: 5\ndataset: {name: tiny, type: csv, root: %s/data, manifest: %s/data/manifest.csv}\n"
               "features: logmel_stats\nprotocol: {kind: group_kfold, n_folds: 4}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: 20}}\n  - {name: svm, model: svm}\n"
               "tsne: {enabled: false}\n", dir, dir);
    fclose(f);
    assert_int_equal(mel(2, "run %s/exp_ds.yaml -o %s/ds2 --quiet --set cache=%s/cache", dir, dir, dir), 0);
    tu_system("rm -rf %s/cache", dir);   /* the single run extracts again */
    assert_int_equal(mel(0, "run %s/exp_ds.yaml -o %s/ds1 --quiet --set cache=%s/cache", dir, dir, dir), 0);
    snprintf(x, sizeof x, "%s/ds1/results.h5", dir);
    snprintf(y, sizeof y, "%s/ds2/results.h5", dir);
    assert_int_equal(h5_diff(x, y, "seconds", NULL), 0);
    /* progress from rank 0 only: each unit reported once */
    assert_int_equal(mel(2, "run %s/exp.yaml -o %s/mpi2b", dir, dir), 0);
    assert_int_equal(tu_system("test $(grep -c '^\\[[0-9]*/8\\]' %s/err.txt) -eq 8", dir), 0);
}

static int count_units(const char *d)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s/units/*.h5 2>/dev/null | wc -l", d);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) { if (fscanf(p, "%d", &n) != 1) n = 0; pclose(p); }
    return n;
}

/* A rank dies (child_run: SIGKILL after saving 2 units, as a crashed node
 * would): the job ends; --resume on another number of ranks
 * reuses the saved units and completes with identical results. */
static void test_resume_after_kill(void **st)
{
    if (!have_mpirun) { skip(); return; }
    char table[300], out[300], ref[300], res[400];
    snprintf(table, sizeof table, "%s/one.h5", dir);
    if (access(table, R_OK)) assert_int_equal(mel(0, "extract %s/ext.yaml -o %s", dir, table), 0);
    write_exp("exp.yaml", table);
    snprintf(ref, sizeof ref, "%s/run1/results.h5", dir);
    if (access(ref, R_OK)) assert_int_equal(mel(0, "run %s/exp.yaml -o %s/run1 --quiet", dir, dir), 0);
    snprintf(out, sizeof out, "%s/killed", dir);
    int rc = tu_system("mpirun --oversubscribe -np 2 %s --child-run %s/exp.yaml %s 2 > %s/out.txt 2> %s/err.txt", self, dir, out, dir, dir);
    int saved = count_units(out);
    snprintf(res, sizeof res, "%s/results.h5", out);
    fprintf(stderr, "job ended with status %d after %d of 8 units\n", rc, saved);
    assert_int_not_equal(rc, 0);
    assert_true(saved >= 2 && saved < 8);
    assert_int_not_equal(access(res, R_OK), 0);
    tu_system("touch -d '2001-01-01' %s/units/*.h5", out);
    assert_int_equal(mel(4, "run %s/exp.yaml -o %s --quiet --resume", dir, out), 0);
    assert_int_equal(h5_diff(ref, res, "seconds", NULL), 0);
    /* the saved units were reused, not refitted */
    assert_int_equal(tu_system("test $(find %s/units -name '*.h5' ! -newermt '2002-01-01' | wc -l) -eq %d", out, saved), 0);
    /* and a single process resumes a sharded run's units the same way */
    assert_int_equal(mel(0, "run %s/exp.yaml -o %s/runs --quiet --resume", dir, dir), 0);
}

static void expect_fail(int np, const char *want, const char *fmt, const char *arg)
{
    char args[2048];
    snprintf(args, sizeof args, fmt, arg, arg, arg, arg);
    int rc = mel(np, "%s", args);
    const char *e = slurp_err();
    if (!strstr(e, want)) fprintf(stderr, "expected '%s' from '%s', got:\n%s", want, args, e);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e, want));
    /* one line from melodic (mpirun may add its own banner) */
    int lines = 0;
    for (char *l = strstr(e, "melodic "); l; l = strstr(l + 1, "\nmelodic ")) lines++;
    assert_int_equal(lines, 1);
}

static void test_bad_input(void **st)
{
    char table[300];
    snprintf(table, sizeof table, "%s/one.h5", dir);
    if (access(table, R_OK)) assert_int_equal(mel(0, "extract %s/ext.yaml -o %s", dir, table), 0);
    write_exp("exp.yaml", table);
    expect_fail(0, "expected I/N with 1 <= I <= N", "extract %s/ext.yaml --shard 3/2 -o %s/x.h5", dir);
    expect_fail(0, "got '0/0'", "extract %s/ext.yaml --shard 0/0 -o %s/x.h5", dir);
    expect_fail(0, "got '3/2'", "run %s/exp.yaml --shard 3/2 -o %s/x", dir);
    expect_fail(0, "25 shards for 24 files", "extract %s/ext.yaml --shard 1/25 -o %s/x.h5", dir);
    expect_fail(0, "9 shards for 8 units", "run %s/exp.yaml --shard 2/9 -o %s/x", dir);
    /* parts of different configs, datasets; a missing part; a part twice */
    assert_int_equal(mel(0, "extract %s/ext.yaml --shard 1/2 -o %s/a1.h5", dir, dir), 0);
    assert_int_equal(mel(0, "extract %s/ext.yaml --shard 2/2 -o %s/a2.h5 --set audio.trim=true", dir, dir), 0);
    expect_fail(0, "different configs", "merge %s/a1.h5 %s/a2.h5 -o %s/m.h5", dir);
    expect_fail(0, "missing part: shard(s) 2 of 2", "merge %s/a1.h5 -o %s/m.h5", dir);
    expect_fail(0, "given twice", "merge %s/a1.h5 %s/a1.h5 -o %s/m.h5", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "extract --features logmel_stats --shard 1/2 -o %s/b1.h5 %s/data/calm0.wav %s/data/calm1.wav", dir, dir, dir);
    assert_int_equal(mel(0, "%s", cmd), 0);
    snprintf(cmd, sizeof cmd, "extract --features logmel_stats --shard 2/2 -o %s/b2.h5 %s/data/sad0.wav %s/data/sad1.wav", dir, dir, dir);
    assert_int_equal(mel(0, "%s", cmd), 0);
    expect_fail(0, "different datasets", "merge %s/b1.h5 %s/b2.h5 -o %s/m.h5", dir);
    expect_fail(0, "not a part file", "merge %s/one.h5 -o %s/m.h5", dir);
    /* run parts: a missing one, and parts of another config */
    assert_int_equal(mel(0, "run %s/exp.yaml -o %s/rp --quiet --shard 1/2", dir, dir), 0);
    expect_fail(0, "missing part: shard(s) 2 of 2", "merge %s/rp/parts/run-1-of-2.h5%.0s", dir);
    assert_int_equal(mel(0, "run %s/exp.yaml -o %s/rq --quiet --shard 2/2 --set seed=6", dir, dir), 0);
    expect_fail(0, "different configs", "merge %s/rp/parts/run-1-of-2.h5 %s/rq/parts/run-2-of-2.h5", dir);
    /* all parts, but a unit lost: named, nothing written */
    assert_int_equal(mel(0, "run %s/exp.yaml -o %s/rp --quiet --shard 2/2", dir, dir), 0);
    tu_system("rm -f %s/rp/units/svm__r002.h5", dir);
    expect_fail(0, "svm__r002.h5: unit missing", "merge %s/rp/parts/run-1-of-2.h5 %s/rp/parts/run-2-of-2.h5 --quiet", dir);
    char res[400];
    snprintf(res, sizeof res, "%s/rp/results.h5", dir);
    assert_int_not_equal(access(res, F_OK), 0);
    if (!have_mpirun) { skip(); return; }
    expect_fail(4, "4 MPI ranks for 2 files", "extract --features logmel_stats %s/data/calm0.wav %s/data/calm1.wav -o %s/x.h5", dir);
    expect_fail(9, "9 MPI ranks for 8 units", "run %s/exp.yaml -o %s/x --quiet", dir);
    expect_fail(2, "use one or the other", "extract %s/ext.yaml --shard 1/2 -o %s/x.h5", dir);
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 5 && !strcmp(argv[1], "--child-run")) return child_run(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_equal),
        cmocka_unit_test(test_run_equal),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests_name("mpi", tests, setup, teardown);
}
