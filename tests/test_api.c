/* test_api.c — model bundles and the public API (src/melodic.h): export →
 * open → classify from a file, from bytes and from raw samples (all three
 * equal), errors for missing/truncated bundles and tampered weights, and the
 * README example compiled against `make install` through pkg-config. */
#include "testutil.h"
#include <sndfile.h>
#include "melodic.h"

static char dir[256];
static const int freqs[3] = {220, 880, 3520};

static void write_tone(const char *path, int freq, int variant)
{
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    float x[16000];
    for (int i = 0; i < 16000; i++)
        x[i] = 0.3f * sinf(6.2831853f * (float)(freq * (1.0 + 0.01 * variant)) * (float)i / 16000.f) +
               0.01f * (float)((i * 7919 + variant * 104729) % 2001 - 1000) / 1000.f;
    assert_int_equal(sf_writef_float(f, x, 16000), 16000);
    sf_close(f);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_api_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s/clips", dir, dir);
    char p[512];
    snprintf(p, sizeof p, "%s/clips/manifest.csv", dir);
    FILE *m = fopen(p, "w");
    fputs("path,label,group\n", m);
    static const char *names[3] = {"low", "mid", "high"};
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 8; v++) {
            char w[512];
            snprintf(w, sizeof w, "%s/clips/%s%d.wav", dir, names[c], v);
            write_tone(w, freqs[c], v);
            fprintf(m, "%s%d.wav,%s,%d\n", names[c], v, names[c], v);
        }
    fclose(m);
    snprintf(p, sizeof p, "%s/exp.yaml", dir);
    FILE *y = fopen(p, "w");
    fprintf(y, "name: api\nseed: 1\ncache: %s/cache\ndataset: {type: csv, manifest: %s/clips/manifest.csv}\n"
               "features: [{set: logmel_stats, params: {frontend: cnn14_16k}}]\n"
               "protocol: {kind: group_kfold, n_folds: 2}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: 20}}\n"
               "  - {name: svm, model: svm}\n"
               "ensembles:\n  - {name: both, members: [forest, svm]}\n", dir, dir);
    fclose(y);
    return tu_system("%s export %s/exp.yaml --model both -o %s/bundle.h5 2>/dev/null", tu_bin(), dir, dir);
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

static void test_classify_three_ways(void **st)
{
    char p[512], err[512];
    snprintf(p, sizeof p, "%s/bundle.h5", dir);
    melodic_model *m = NULL;
    assert_int_equal(melodic_model_open(p, NULL, &m, err, sizeof err), 0);
    assert_int_equal(melodic_model_n_labels(m), 3);
    assert_string_equal(melodic_model_label(m, 0), "high");   /* sorted class names */
    float pf[3], pm[3], ps[3];
    snprintf(p, sizeof p, "%s/clips/mid3.wav", dir);
    int best = melodic_classify_file(m, p, pf, err, sizeof err);
    assert_string_equal(melodic_model_label(m, best), "mid");
    assert_true(fabsf(pf[0] + pf[1] + pf[2] - 1.f) < 1e-5f);
    /* bytes */
    FILE *f = fopen(p, "rb");
    unsigned char buf[40000];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(melodic_classify_memory(m, buf, n, pm, err, sizeof err), best);
    assert_memory_equal(pf, pm, sizeof pf);
    /* raw samples (decoded with libsndfile, as the engine does) */
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(p, SFM_READ, &info);
    float x[16000];
    assert_int_equal(sf_readf_float(sf, x, 16000), 16000);
    sf_close(sf);
    assert_int_equal(melodic_classify_samples(m, x, 16000, 16000, ps, err, sizeof err), best);
    for (int c = 0; c < 3; c++) assert_true(fabsf(ps[c] - pf[c]) < 1e-6f);
    /* errors */
    assert_true(melodic_classify_memory(m, "garbage!", 8, pm, err, sizeof err) < 0);
    assert_true(strlen(err) > 0);
    assert_true(melodic_classify_samples(m, x, 0, 16000, ps, err, sizeof err) < 0);
    assert_non_null(strstr(err, "samples"));
    melodic_model_close(m);
    melodic_model_close(NULL);
}

static void test_bad_bundles(void **st)
{
    char p[512], err[512];
    melodic_model *m = NULL;
    snprintf(p, sizeof p, "%s/none.h5", dir);
    assert_true(melodic_model_open(p, NULL, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, "none.h5"));
    tu_system("head -c 3000 %s/bundle.h5 > %s/trunc.h5", dir, dir);
    snprintf(p, sizeof p, "%s/trunc.h5", dir);
    assert_true(melodic_model_open(p, NULL, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, "trunc.h5"));
    /* a feature table is not a bundle */
    snprintf(p, sizeof p, "%s/exp.yaml", dir);
    assert_true(melodic_model_open(p, NULL, &m, err, sizeof err) < 0);
}

static void test_weights_checksum(void **st)
{
    const char *models = tu_model_root();
    if (!models) skip();
    char p[1024], err[512];
    /* a tiny mn04 bundle, then the same weights with one byte changed */
    tu_system("mkdir -p %s/models/efficientat && cp %s/efficientat/mn04_as_mAP_432.pt %s/models/efficientat/", dir, models, dir);
    snprintf(p, sizeof p, "%s export %s/exp.yaml --model forest -o %s/mn04.h5 --set 'features=[mn04_embedding]' --set model_root=%s/models 2>/dev/null",
             tu_bin(), dir, dir, dir);
    assert_int_equal(tu_system("%s", p), 0);
    melodic_model *m = NULL;
    snprintf(p, sizeof p, "%s/mn04.h5", dir);
    char root[512];
    snprintf(root, sizeof root, "%s/models", dir);
    assert_int_equal(melodic_model_open(p, root, &m, err, sizeof err), 0);
    melodic_model_close(m);
    m = NULL;
    /* flip one byte in the middle of the weights */
    tu_system("printf 'X' | dd of=%s/models/efficientat/mn04_as_mAP_432.pt bs=1 seek=2000000 conv=notrunc 2>/dev/null", dir);
    assert_true(melodic_model_open(p, root, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, "SHA-256"));
    /* embedded weights need no model root at all */
    tu_system("cp %s/efficientat/mn04_as_mAP_432.pt %s/models/efficientat/", models, dir);
    snprintf(p, sizeof p, "%s export %s/exp.yaml --model forest -o %s/mn04e.h5 --embed-weights --set 'features=[mn04_embedding]' --set model_root=%s/models 2>/dev/null",
             tu_bin(), dir, dir, dir);
    assert_int_equal(tu_system("%s", p), 0);
    snprintf(p, sizeof p, "%s/mn04e.h5", dir);
    assert_int_equal(melodic_model_open(p, "/nonexistent", &m, err, sizeof err), 0);
    float pr[3];
    snprintf(p, sizeof p, "%s/clips/low1.wav", dir);
    assert_true(melodic_classify_file(m, p, pr, err, sizeof err) >= 0);
    melodic_model_close(m);
}

static void test_install_and_example(void **st)
{
    if (getenv("MELODIC_ASAN")) skip();   /* the installed library is the regular build */
    assert_int_equal(tu_system("make -s install PREFIX=%s/inst > /dev/null 2>&1", dir), 0);
    assert_int_equal(tu_system("cc tests/example/classify.c $(PKG_CONFIG_PATH=%s/inst/lib/pkgconfig pkg-config --cflags --libs melodic) -o %s/classify",
                               dir, dir), 0);
    assert_int_equal(tu_system("%s/classify %s/bundle.h5 %s/clips/high2.wav > %s/ex.txt", dir, dir, dir, dir), 0);
    assert_int_equal(tu_system("grep -q 'high2.wav\thigh' %s/ex.txt", dir), 0);
    assert_int_not_equal(tu_system("%s/classify %s/bundle.h5 %s/clips/missing.wav 2>/dev/null", dir, dir, dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_three_ways),
        cmocka_unit_test(test_bad_bundles),
        cmocka_unit_test(test_weights_checksum),
        cmocka_unit_test(test_install_and_example),
    };
    return cmocka_run_group_tests_name("api", tests, setup, teardown);
}
