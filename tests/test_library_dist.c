/* test_library_dist.c — `melodic index` scaled out (issue 17): a generated
 * library (4 quadrant folders of tones 1–3 s long, so file sizes differ,
 * and one broken file) indexed by one process, as --shard I/3 parts merged
 * in any order, and under `mpirun --oversubscribe -np 2|3`: every dataset
 * equal (h5diff; the root attributes compared one by one, `created`
 * excepted), the PCA basis and grid index included. The bundle records its
 * training clip length and `melodic index` windows by it (old bundles: 10 s
 * and a note); the summary gives the throughput. Bad input: parts missing,
 * twice, of another run, not a part, damaged (cut short, a row out of range
 * or twice); more shards than files; --shard under
 * mpirun; the generator asked for 0 or more than 10^8 tracks. Without
 * mpirun the MPI cases skip. */
#include "testutil.h"

#include <sndfile.h>

#include "io/h5.h"
#include "runtime/library.h"

static char dir[256], lib_dir[300], bundle[300];
static int have_mpirun, have_h5diff;

/* A tone of secs seconds at 16 kHz (quadrant q, variant v). */
static void write_tone(const char *path, int q, int v, double secs)
{
    static const int freqs[4] = {220, 660, 1500, 3300};
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    size_t n = (size_t)(secs * 16000);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.3f * sinf(6.2831853f * (float)(freqs[q] * (1.0 + 0.02 * v)) * (float)i / 16000.f) +
               0.01f * (float)((i * 7919 + (size_t)v * 104729) % 2001 - 1000) / 1000.f;
    assert_int_equal(sf_writef_float(f, x, (sf_count_t)n), (sf_count_t)n);
    sf_close(f);
    free(x);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_libdist_%d", (int)getpid());
    snprintf(lib_dir, sizeof lib_dir, "%s/music", dir);
    snprintf(bundle, sizeof bundle, "%s/music.h5", dir);
    tu_system("rm -rf %s && mkdir -p %s/train %s/music/Q1 %s/music/Q2 %s/music/Q3 %s/music/Q4", dir, dir, dir, dir, dir, dir);
    char p[512], w[600];
    snprintf(p, sizeof p, "%s/train.csv", dir);
    FILE *m = fopen(p, "w");
    fputs("path,label\n", m);
    for (int q = 0; q < 4; q++)
        for (int v = 0; v < 3; v++) {   /* training clips: 2 s each */
            snprintf(w, sizeof w, "%s/train/q%d_%d.wav", dir, q + 1, v);
            write_tone(w, q, v, 2.0);
            fprintf(m, "%s,Q%d\n", w, q + 1);
        }
    fclose(m);
    for (int q = 0; q < 4; q++)
        for (int v = 0; v < 4; v++) {   /* the library: 1-3 s, sizes differ */
            snprintf(w, sizeof w, "%s/Q%d/s%d.wav", lib_dir, q + 1, v);
            write_tone(w, q, v + 3, 1.0 + 0.5 * ((q + v) % 5));
        }
    snprintf(p, sizeof p, "%s/Q3/broken.wav", lib_dir);
    m = fopen(p, "w");
    fputs("RIFF garbage, not a wave file at all", m);
    fclose(m);
    snprintf(p, sizeof p, "%s/exp.yaml", dir);
    FILE *y = fopen(p, "w");
    fprintf(y, "name: libdist\nseed: 1\ncache: %s/cache\ndataset: {type: csv, manifest: %s/train.csv}\n"
               "features: [{set: logmel_stats, params: {frontend: mn04}}]\n"
               "protocol: {kind: stratified_kfold, n_folds: 2}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: 20}}\n", dir, dir);
    fclose(y);
    if (tu_system("%s export %s/exp.yaml --model forest -o %s 2>/dev/null", tu_bin(), dir, bundle)) return -1;
    have_mpirun = tu_system("command -v mpirun > /dev/null 2>&1") == 0;
    have_h5diff = tu_system("command -v h5diff > /dev/null 2>&1") == 0;
    tu_mpi_env();
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

/* melodic ARGS (np > 0: under mpirun -np np), stderr into dir/err.txt. */
static int mel(int np, const char *fmt, ...)
{
    char err[300];
    snprintf(err, sizeof err, "%s/err.txt", dir);
    va_list ap;
    va_start(ap, fmt);
    int rc = tu_vmelodic(np, "/dev/null", err, fmt, ap);
    va_end(ap);
    return rc;
}

static const char *slurp_err(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s/err.txt", dir);
    return tu_slurp(p);
}

/* Libraries a and b equal: every dataset (h5diff, root attributes left to
 * the loop below), and each root attribute but `created`. */
static void assert_same_library(const char *a, const char *b)
{
    if (have_h5diff) {
        int rc = tu_system("h5diff --exclude-attribute / %s %s > %s/diff.txt 2>&1", a, b, dir);
        if (rc) tu_system("head -20 %s/diff.txt >&2", dir);
        assert_int_equal(rc, 0);
    }
    hid_t fa, fb;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(a, &fa, &e), 0);
    assert_int_equal(mm_h5_open_read(b, &fb, &e), 0);
    static const char *const strs[] = {"format", "model", "bundle_sha256", "source"};
    for (int i = 0; i < 4; i++) {
        char *x = NULL, *y = NULL;
        assert_int_equal(mm_h5_attr_get_str(fa, strs[i], &x, &e), 0);
        assert_int_equal(mm_h5_attr_get_str(fb, strs[i], &y, &e), 0);
        assert_string_equal(x, y);
        free(x); free(y);
    }
    static const char *const ints[] = {"format_version", "embedding_dim", "grid"};
    for (int i = 0; i < 3; i++) {
        int64_t x = -1, y = -2;
        assert_int_equal(mm_h5_attr_get_i64(fa, ints[i], &x, &e), 0);
        assert_int_equal(mm_h5_attr_get_i64(fb, ints[i], &y, &e), 0);
        assert_int_equal(x, y);
    }
    for (int i = 0; i < 2; i++) {
        double x = -1, y = -2;
        assert_int_equal(mm_h5_attr_get_f64(fa, i ? "hop_s" : "window_s", &x, &e), 0);
        assert_int_equal(mm_h5_attr_get_f64(fb, i ? "hop_s" : "window_s", &y, &e), 0);
        assert_true(x == y);
    }
    mm_h5_close(fa);
    mm_h5_close(fb);
    /* and through the reader: the same tracks, vectors and grid */
    mm_library *la = NULL, *lb = NULL;
    assert_int_equal(mm_library_open(a, &la, &e), 0);
    assert_int_equal(mm_library_open(b, &lb, &e), 0);
    assert_int_equal(mm_library_size(la), mm_library_size(lb));
    assert_int_equal(mm_library_n_failed(la), mm_library_n_failed(lb));
    for (size_t i = 0; i < mm_library_size(la); i++) {
        assert_string_equal(mm_library_track_at(la, i)->id, mm_library_track_at(lb, i)->id);
        assert_memory_equal(mm_library_sim(la, i, NULL), mm_library_sim(lb, i, NULL), mm_library_sim_dim(la));
    }
    mm_library_free(la);
    mm_library_free(lb);
}

/* The bundle records its 2 s training clips; index windows by it. */
static void test_clip_seconds(void **st)
{
    mm_bundle *b = NULL;
    mm_err err = {0};
    assert_int_equal(mm_bundle_open(bundle, NULL, 1, &b, &err), 0);
    printf("bundle clip_seconds = %g (training clips of 2 s)\n", mm_bundle_clip_seconds(b));
    assert_true(fabs(mm_bundle_clip_seconds(b) - 2.0) < 1e-6);
    mm_bundle_free(b);
    char out[400];
    snprintf(out, sizeof out, "%s/default_window.h5", dir);
    assert_int_equal(mel(0, "index %s %s -o %s -j 1", bundle, lib_dir, out), 0);
    const char *e = slurp_err();
    printf("%s", e);
    assert_null(strstr(e, "does not record"));
    assert_non_null(strstr(e, "h of audio per hour per core"));
    assert_non_null(strstr(e, "shorter than the 2 s window"));   /* the 1 s tracks (1.5 s: within hop/2) */
    mm_library *l = NULL;
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    double hop = 0;
    assert_true(mm_library_window(l, &hop) == 2.0 && hop == 1.0);
    mm_library_free(l);
    /* a bundle exported before clip_seconds: 10 s, and one line saying so */
    char old[400];
    snprintf(old, sizeof old, "%s/old_bundle.h5", dir);
    tu_system("cp %s %s && /usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r+'); del f.attrs['clip_seconds']\" %s",
              bundle, old, old);
    assert_int_equal(mel(0, "index %s %s -o %s -j 1 --no-reuse", old, lib_dir, out), 0);
    e = slurp_err();
    assert_non_null(strstr(e, "does not record its training clip length"));
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    assert_true(mm_library_window(l, &hop) == 10.0 && hop == 5.0);
    mm_library_free(l);
    /* a recorded length out of range: the bundle is refused, naming the attribute */
    tu_system("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r+'); f.attrs['clip_seconds']=-1.0\" %s", old);
    assert_int_not_equal(mel(0, "index %s %s -o %s/never.h5", old, lib_dir, dir), 0);
    assert_non_null(strstr(slurp_err(), "clip_seconds = -1, expected seconds in (0, 3600]"));
    /* --help says where the default comes from */
    assert_int_equal(tu_system("%s index --help | grep -q 'clips the music model was trained on'", tu_bin()), 0);
}

/* One process, shards merged in any order, mpirun: the same library. */
static void test_shards_equal(void **st)
{
    char one[400], merged[400];
    snprintf(one, sizeof one, "%s/one.h5", dir);
    snprintf(merged, sizeof merged, "%s/merged.h5", dir);
    assert_int_equal(mel(0, "index %s %s -o %s -j 2 --window 1 --hop 0.5", bundle, lib_dir, one), 0);
    hid_t f;
    mm_err e = {0};
    assert_int_equal(mm_h5_open_read(one, &f, &e), 0);
    assert_true(mm_h5_exists(f, "index/basis"));   /* the PCA reduction is exercised */
    assert_true(mm_h5_exists(f, "failed/path"));   /* and a failed file */
    mm_h5_close(f);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(mel(0, "index %s %s -o %s/part%d.h5 -j 1 --window 1 --hop 0.5 --shard %d/3", bundle, lib_dir, dir, i, i), 0);
    assert_non_null(strstr(slurp_err(), "shard 3/3"));
    assert_int_equal(mel(0, "index --merge %s/part3.h5 %s/part1.h5 %s/part2.h5 -o %s", dir, dir, dir, merged), 0);
    printf("%s", slurp_err());
    assert_same_library(one, merged);
    if (have_h5diff) {   /* the comparison can fail: another window length differs */
        char other[400];
        snprintf(other, sizeof other, "%s/default_window.h5", dir);
        assert_int_not_equal(tu_system("h5diff -q --exclude-attribute / %s %s > /dev/null 2>&1", one, other), 0);
    }
    /* one shard per file is allowed too (17 files) */
    char cmd[1024];
    for (int i = 1; i <= 17; i++)
        assert_int_equal(mel(0, "index %s %s -o %s/p17_%d.h5 --quiet --window 1 --hop 0.5 --shard %d/17", bundle, lib_dir, dir, i, i), 0);
    snprintf(cmd, sizeof cmd, "index --merge -o %s", merged);
    assert_int_equal(tu_system("%s %s %s/p17_*.h5 2> /dev/null", tu_bin(), cmd, dir), 0);
    assert_same_library(one, merged);
    if (!have_mpirun) { skip(); return; }
    for (int np = 2; np <= 3; np++) {
        char x[400];
        snprintf(x, sizeof x, "%s/np%d.h5", dir, np);
        int rc = mel(np, "index %s %s -o %s --window 1 --hop 0.5", bundle, lib_dir, x);
        if (rc) fprintf(stderr, "%s", slurp_err());
        assert_int_equal(rc, 0);
        printf("%s", slurp_err());
        assert_non_null(strstr(slurp_err(), "MPI ranks"));
        assert_same_library(one, x);
    }
    /* again under mpirun into the same file: every track reused, the same library */
    char x[400];
    snprintf(x, sizeof x, "%s/np2.h5", dir);
    assert_int_equal(mel(2, "index %s %s -o %s --window 1 --hop 0.5", bundle, lib_dir, x), 0);
    assert_non_null(strstr(slurp_err(), "(0 classified, 16 unchanged, 0 removed, 1 failed)"));
    assert_same_library(one, x);
}

static void expect_fail(int np, const char *want, const char *args)
{
    int rc = mel(np, "%s", args);
    const char *e = slurp_err();
    if (!strstr(e, want)) fprintf(stderr, "expected '%s' from '%s', got:\n%s", want, args, e);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e, want));
    int lines = 0;
    for (const char *l = strstr(e, "melodic "); l; l = strstr(l + 1, "\nmelodic ")) lines++;
    assert_int_equal(lines, 1);
}

/* dir/b2.h5 copied to dir/NAME.h5 and damaged by the h5py statements py
 * (f: the file), then merged with b1.h5: refused with a line holding want. */
static void expect_damaged(const char *name, const char *py, const char *want, const char *out)
{
    assert_int_equal(tu_system("cp %s/b2.h5 %s/%s.h5 && /usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r+'); %s\" %s/%s.h5",
                               dir, dir, name, py, dir, name), 0);
    char a[1024];
    snprintf(a, sizeof a, "index --merge %s/b1.h5 %s/%s.h5 -o %s", dir, dir, name, out);
    expect_fail(0, want, a);
}

static void test_bad_input(void **st)
{
    char a[2048], out[400];
    snprintf(out, sizeof out, "%s/bad_out.h5", dir);
    for (int i = 1; i <= 2; i++) {
        snprintf(a, sizeof a, "index %s %s -o %s/b%d.h5 --quiet --window 1 --shard %d/2", bundle, lib_dir, dir, i, i);
        assert_int_equal(mel(0, "%s", a), 0);
    }
    snprintf(a, sizeof a, "index %s %s -o %s/w2.h5 --quiet --window 2 --shard 2/2", bundle, lib_dir, dir);
    assert_int_equal(mel(0, "%s", a), 0);
    snprintf(a, sizeof a, "index --merge %s/b1.h5 -o %s", dir, out);
    expect_fail(0, "missing part: shard(s) 2 of 2", a);
    snprintf(a, sizeof a, "index --merge %s/b1.h5 %s/b1.h5 -o %s", dir, dir, out);
    expect_fail(0, "given twice", a);
    snprintf(a, sizeof a, "index --merge %s/b1.h5 %s/w2.h5 -o %s", dir, dir, out);
    expect_fail(0, "different index runs (their windows differ)", a);
    snprintf(a, sizeof a, "index --merge %s %s/b1.h5 -o %s", bundle, dir, out);
    expect_fail(0, "not a part file", a);
    snprintf(a, sizeof a, "index %s %s -o %s --shard 1/18", bundle, lib_dir, out);
    expect_fail(0, "18 shards for 17 files", a);
    snprintf(a, sizeof a, "index %s %s -o %s --shard 3/2", bundle, lib_dir, out);
    expect_fail(0, "got '3/2'", a);
    snprintf(a, sizeof a, "index --merge %s/b1.h5", dir);
    expect_fail(0, "--merge expects PART.h5... and -o LIBRARY.h5", a);
    /* a damaged part: its bytes cut short, a row out of range or twice */
    expect_damaged("cut", "b=f['part/blob'][:]; del f['part/blob']; f['part/blob']=b[:len(b)//2]", "out of range", out);
    expect_damaged("row", "r=f['part/rows']; r[0]=10**6", "row.h5: part row 0: file 1000000", out);
    expect_damaged("dup", "r=f['part/rows']; r[1]=r[0]", "is in two parts", out);
    assert_int_not_equal(access(out, F_OK), 0);   /* nothing half-written */
    /* the generator: 0 and more than 10^8 tracks, one line, no output */
    char lib[400];
    snprintf(lib, sizeof lib, "%s/b_lib.h5", dir);
    assert_int_equal(mel(0, "index --merge %s/b1.h5 %s/b2.h5 -o %s", dir, dir, lib), 0);
    static const char *const ns[] = {"0", "100000001"};
    for (int i = 0; i < 2; i++) {
        int rc = tu_system("scripts/make_synthetic_library %s %s %s 2> %s/err.txt", lib, ns[i], out, dir);
        const char *e = slurp_err();
        printf("make_synthetic_library N = %s: %s", ns[i], e);
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(e, "expected 1..100000000 tracks"));
        assert_null(strchr(e, '\n') == e + strlen(e) - 1 ? NULL : "more than one line");
        assert_int_not_equal(access(out, F_OK), 0);
    }
    if (!have_mpirun) { skip(); return; }
    snprintf(a, sizeof a, "index %s %s -o %s --shard 1/2", bundle, lib_dir, out);
    expect_fail(2, "use one or the other", a);
    snprintf(a, sizeof a, "index %s %s/Q1 -o %s", bundle, lib_dir, out);
    expect_fail(5, "5 MPI ranks for 4 files", a);
    assert_int_not_equal(access(out, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_seconds),
        cmocka_unit_test(test_shards_equal),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests_name("library_dist", tests, setup, teardown);
}
