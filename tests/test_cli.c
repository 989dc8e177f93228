/* test_cli.c — the melodic command line as a user meets it: help and
 * version, and every bad input of the foundation issue giving a one-line
 * error that names the file or key, a non-zero exit, and no output file. */
#include "testutil.h"
#include "io/h5.h"

static char tmp[256];

static int setup(void **st)
{
    snprintf(tmp, sizeof tmp, "/tmp/mm_cli_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s", tmp, tmp);
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", tmp);
    return 0;
}

/* Run melodic with args; returns exit status, stderr's text in err (one line expected). */
static int mel(char *err, size_t size, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = tu_system("%s %s > %s/out.txt 2> %s/err.txt", tu_bin(), args, tmp, tmp);
    char p[300];
    snprintf(p, sizeof p, "%s/err.txt", tmp);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(err, 1, size - 1, f) : 0;
    err[n] = 0;
    if (f) fclose(f);
    return rc;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_help_and_version(void **st)
{
    char e[4096];
    assert_int_equal(mel(e, sizeof e, "--version"), 0);
    assert_int_equal(mel(e, sizeof e, "help"), 0);
    const char *cmds[] = {"extract", "spectrogram", "train", "predict", "run", "models"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        assert_int_equal(mel(e, sizeof e, "%s --help", cmds[i]), 0);
        assert_int_equal(mel(e, sizeof e, "help %s", cmds[i]), 0);
    }
    assert_int_equal(mel(e, sizeof e, "frobnicate"), 2);
    assert_non_null(strstr(e, "unknown command 'frobnicate'"));
    assert_int_equal(mel(e, sizeof e, "extract --bogus"), 2);
    assert_non_null(strstr(e, "unknown option '--bogus'"));
}

static void expect_bad_file(const char *file, const char *extra, const char *needle)
{
    char e[4096], out[300];
    snprintf(out, sizeof out, "%s/t.h5", tmp);
    unlink(out);
    int rc = mel(e, sizeof e, "extract --features logmel_stats %s %s -o %s", extra, file, out);
    if (rc == 0 || !strstr(e, needle)) fprintf(stderr, "file %s: rc %d, stderr: %s\n", file, rc, e);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(e, file));          /* names the file */
    assert_non_null(strstr(e, needle));        /* says what is wrong */
    assert_int_equal(lines(e), 1);             /* one line */
    assert_int_not_equal(access(out, F_OK), 0);   /* no output, not even partial */
    char ls[400];
    snprintf(ls, sizeof ls, "ls %s | grep -q tmp", tmp);
    assert_int_not_equal(tu_system("%s", ls), 0);   /* no temporary left behind */
}

static void test_bad_audio(void **st)
{
    expect_bad_file("tests/fixtures/audio/does_not_exist.wav", "", "does_not_exist.wav");
    expect_bad_file("tests/fixtures/audio/empty.wav", "", "empty.wav");
    expect_bad_file("tests/fixtures/audio/header_only.wav", "", "header_only.wav");
    expect_bad_file("tests/fixtures/audio/garbage.wav", "", "garbage.wav");
    expect_bad_file("tests/fixtures/audio/badformat.wav", "", "badformat.wav");
    expect_bad_file("tests/fixtures/audio/float_nan.wav", "", "float_nan.wav");
    expect_bad_file("tests/fixtures/audio/silent.wav", "--trim", "silent.wav");
}

static void test_skip_bad(void **st)
{
    char e[4096], out[300];
    snprintf(out, sizeof out, "%s/skip.h5", tmp);
    assert_int_equal(mel(e, sizeof e, "extract --features logmel_stats --skip-bad tests/fixtures/audio/stereo.wav tests/fixtures/audio/garbage.wav -o %s", out), 0);
    hid_t f;
    mm_err err = {0};
    assert_int_equal(mm_h5_open_read(out, &f, &err), 0);
    char **paths; size_t n;
    assert_int_equal(mm_h5_read_strings(f, "skipped/paths", &paths, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(paths[0], "garbage.wav"));
    mm_h5_free_strings(paths, n);
    float *X; int r; hsize_t d[4];
    assert_int_equal(mm_h5_read_f32(f, "features", 2, &X, &r, d, &err), 0);
    assert_int_equal(d[0], 1);
    assert_int_equal(d[1], 128);
    for (size_t i = 0; i < d[1]; i++) assert_true(isfinite(X[i]));
    free(X);
    mm_h5_close(f);
}

static void test_bad_config(void **st)
{
    char e[4096], cfg[300], out[300];
    snprintf(cfg, sizeof cfg, "%s/c.yaml", tmp);
    snprintf(out, sizeof out, "%s/c.h5", tmp);
    FILE *f = fopen(cfg, "w");
    fputs("dataset:\n  type: csv\n  manifest: m.csv\nfeatures: [logmel_stats]\naudio:\n  trim: maybe\n", f);
    fclose(f);
    assert_int_equal(mel(e, sizeof e, "extract %s -o %s", cfg, out), 1);
    assert_non_null(strstr(e, "c.yaml:6"));
    assert_non_null(strstr(e, "'trim'"));
    assert_non_null(strstr(e, "true or false"));
    assert_int_equal(mel(e, sizeof e, "extract %s -o %s --set audio.trim=true --set audio.trim_top_db=-3", cfg, out), 1);
    assert_non_null(strstr(e, "trim_top_db"));
    assert_int_equal(mel(e, sizeof e, "extract %s -o %s --set audio.trim=true --set audio.colour=blue", cfg, out), 1);
    assert_non_null(strstr(e, "unknown key 'colour'"));
    assert_int_equal(mel(e, sizeof e, "extract %s -o %s --set audio.trim=true --set features=[wavelets]", cfg, out), 1);
    assert_non_null(strstr(e, "unknown feature set 'wavelets'"));
    assert_int_equal(mel(e, sizeof e, "extract %s -o %s --set audio.trim=true", cfg, out), 1);
    assert_non_null(strstr(e, "m.csv"));     /* the manifest is missing */
    assert_int_equal(lines(e), 1);
    assert_int_not_equal(access(out, F_OK), 0);
}

static void test_spectrogram(void **st)
{
    char e[4096], out[300];
    snprintf(out, sizeof out, "%s/s.h5", tmp);
    assert_int_equal(mel(e, sizeof e, "spectrogram tests/fixtures/audio/stereo.wav --frontend mn04 -o %s", out), 0);
    hid_t f;
    mm_err err = {0};
    assert_int_equal(mm_h5_open_read(out, &f, &err), 0);
    float *X; int r; hsize_t d[4];
    assert_int_equal(mm_h5_read_f32(f, "logmel", 2, &X, &r, d, &err), 0);
    assert_int_equal(d[1], 128);
    free(X);
    mm_h5_close(f);
    assert_int_not_equal(mel(e, sizeof e, "spectrogram tests/fixtures/audio/stereo.wav --frontend vggish -o %s", out), 0);
    assert_non_null(strstr(e, "vggish"));
}

/* The same table whatever the thread count (files run in parallel). */
static void test_extract_deterministic(void **st)
{
    char e[4096];
    const char *files = "tests/fixtures/audio/stereo.wav tests/fixtures/audio/tone.flac tests/fixtures/audio/tone.ogg tests/fixtures/audio/tone.mp3";
    char list[1024] = "";
    /* use whichever of the small fixture files exist */
    char buf[256];
    const char *p = files;
    while (sscanf(p, "%255s", buf) == 1) {
        if (access(buf, R_OK) == 0) { strcat(list, buf); strcat(list, " "); }
        p = strstr(p, buf) + strlen(buf);
    }
    assert_int_equal(mel(e, sizeof e, "extract --features logmel_stats,mfcc_stats -j 1 %s -o %s/d1.h5", list, tmp), 0);
    assert_int_equal(mel(e, sizeof e, "extract --features logmel_stats,mfcc_stats -j 2 %s -o %s/d2.h5", list, tmp), 0);
    hid_t f1, f2;
    mm_err err = {0};
    assert_int_equal(mm_h5_open_read(strcat(strcpy(buf, tmp), "/d1.h5"), &f1, &err), 0);
    assert_int_equal(mm_h5_open_read(strcat(strcpy(buf, tmp), "/d2.h5"), &f2, &err), 0);
    float *a, *b; int r; hsize_t da[4], db[4];
    assert_int_equal(mm_h5_read_f32(f1, "features", 2, &a, &r, da, &err), 0);
    assert_int_equal(mm_h5_read_f32(f2, "features", 2, &b, &r, db, &err), 0);
    assert_true(da[0] >= 1 && da[0] == db[0] && da[1] == db[1]);
    assert_memory_equal(a, b, da[0] * da[1] * sizeof *a);
    char **names; size_t nn;
    assert_int_equal(mm_h5_read_strings(f1, "feature_names", &names, &nn, &err), 0);
    assert_non_null(strstr(names[0], "logmel_stats/"));   /* several sets: names prefixed by set */
    mm_h5_free_strings(names, nn);
    free(a); free(b);
    mm_h5_close(f1); mm_h5_close(f2);
}

/* embed, tag, tsne, spectrogram and serve parse with getopt_long: an unknown
 * option or a missing value is one line pointing to `melodic <cmd> --help`,
 * status 2; a value is taken as --opt=value and as --opt value, before or
 * after the input file (the error or output then shows it was used). */
static void test_getopt_commands(void **st)
{
    static const struct {
        const char *cmd;
        const char *eq, *sp;         /* one call with --opt=value and with --opt value */
        int rc;                      /* its status */
        const char *needle;          /* in its stderr: the value was used */
    } cases[] = {
        {"embed", "%s/in.wav --weights=%s/nothere.pt", "--weights %s/nothere.pt %s/in.wav", 1, "nothere.pt"},
        {"tag", "%s/in.wav --labels=%s/nothere.csv", "--labels %s/nothere.csv %s/in.wav", 1, "nothere.csv"},
        {"tsne", "%s/nothere.h5 --output=%s/t.h5", "--output %s/t.h5 %s/nothere.h5", 1, "nothere.h5"},
        {"serve", "--library %s/lib.h5 --speech=%s/nothere.h5", "--speech %s/nothere.h5 --library %s/lib.h5", 1, "nothere.h5"},
        {"index", "%s/b.h5 dir -o o.h5 --config=%s/nothere.yaml", "--config %s/nothere.yaml %s/b.h5 dir -o o.h5", 1, "nothere.yaml"},
        {"recommend", "--speech %s/s.h5 v.wav --library=%s/nothere.h5", "v.wav --library %s/nothere.h5 --speech %s/s.h5", 1, "nothere.h5"},
    };
    char e[4096], args[1024], help[64], out[300];
    const char *all[] = {"embed", "tag", "tsne", "spectrogram", "serve", "index", "recommend"};
    const char *valued[] = {"--model", "-k", "--perplexity", "--frontend", "--timeout", "--window", "--lambda"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        snprintf(help, sizeof help, "melodic %s --help", all[i]);
        assert_int_equal(mel(e, sizeof e, "%s --no-such-option", all[i]), 2);
        assert_non_null(strstr(e, "unknown option '--no-such-option'"));
        assert_non_null(strstr(e, help));
        assert_int_equal(lines(e), 1);
        assert_int_equal(mel(e, sizeof e, "%s x -Z", all[i]), 2);
        assert_non_null(strstr(e, "unknown option '-Z'"));
        assert_int_equal(lines(e), 1);
        assert_int_equal(mel(e, sizeof e, "%s %s", all[i], valued[i]), 2);   /* missing value */
        assert_non_null(strstr(e, valued[i]));
        assert_non_null(strstr(e, help));
        assert_int_equal(lines(e), 1);
        assert_int_equal(mel(e, sizeof e, "%s -h", all[i]), 0);
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int form = 0; form < 2; form++) {
            snprintf(args, sizeof args, form ? cases[i].sp : cases[i].eq, tmp, tmp);
            int rc = mel(e, sizeof e, "%s %s", cases[i].cmd, args);
            if (rc != cases[i].rc || !strstr(e, cases[i].needle)) fprintf(stderr, "%s %s: rc %d, stderr: %s\n", cases[i].cmd, args, rc, e);
            assert_int_equal(rc, cases[i].rc);
            assert_non_null(strstr(e, cases[i].needle));
            assert_int_equal(lines(e), 1);
        }
    /* spectrogram runs: the output goes where --output=FILE and --output FILE say */
    const char *forms[] = {"--frontend=mn04 tests/fixtures/audio/stereo.wav --output=%s/g%d.h5",
                           "tests/fixtures/audio/stereo.wav --frontend mn04 --output %s/g%d.h5"};
    for (int form = 0; form < 2; form++) {
        snprintf(args, sizeof args, forms[form], tmp, form);
        snprintf(out, sizeof out, "%s/g%d.h5", tmp, form);
        assert_int_equal(mel(e, sizeof e, "spectrogram %s", args), 0);
        assert_int_equal(access(out, F_OK), 0);
    }
}

/* The recommend config is found from the executable, never the cwd: from an
 * unrelated folder the checkout's table is used (the error is then about the
 * missing library); a copy of the binary with no share/melodic beside it
 * names every path it tried; MELODIC_SHARE points it at a table. */
static void test_defaults_from_anywhere(void **st)
{
    char bin[4096], root[4096];
    assert_non_null(realpath(tu_bin(), bin));
    assert_non_null(getcwd(root, sizeof root));
    assert_int_equal(tu_system("cd %s && env -u MELODIC_SHARE %s recommend --speech none.h5 --library none.h5 v.wav 2> err.txt", tmp, bin), 1);
    assert_int_equal(tu_system("grep -q 'none.h5' %s/err.txt && ! grep -q 'default.yaml' %s/err.txt", tmp, tmp), 0);
    assert_int_equal(tu_system("mkdir -p %s/bare/bin && cp %s %s/bare/bin/melodic", tmp, bin, tmp), 0);
    assert_int_equal(tu_system("cd %s && env -u MELODIC_SHARE bare/bin/melodic recommend --speech none.h5 --library none.h5 v.wav 2> err.txt", tmp), 1);
    assert_int_equal(tu_system("grep -q '%s/bare/share/melodic/configs/recommend/default.yaml' %s/err.txt", tmp, tmp), 0);
    assert_int_equal(tu_system("grep -q 'MELODIC_SHARE' %s/err.txt", tmp), 0);
    assert_int_equal(tu_system("cd %s && MELODIC_SHARE=%s bare/bin/melodic recommend --speech none.h5 --library none.h5 v.wav 2> err.txt", tmp, root), 1);
    assert_int_equal(tu_system("grep -q 'none.h5' %s/err.txt && ! grep -q 'default.yaml' %s/err.txt", tmp, tmp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_bad_audio),
        cmocka_unit_test(test_skip_bad),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_spectrogram),
        cmocka_unit_test(test_extract_deterministic),
        cmocka_unit_test(test_defaults_from_anywhere),
        cmocka_unit_test(test_getopt_commands),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
