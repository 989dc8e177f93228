/* test_export.c — exp/export.c: a model of an experiment refitted on all of
 * its labelled data and written as a bundle. The bundle says what the model
 * was fitted on: n_train rows, and n_val rows of a validation part used only
 * for early stopping (0 without one); progress comes through the callback
 * (the library prints nothing); an ensemble's voting parameters are built
 * without editing config internals; a bundle opens and classifies. */
#include "testutil.h"
#include <sndfile.h>
#include "exp/export.h"
#include "io/h5.h"
#include "runtime/bundle.h"

static char dir[256];
static const int freqs[3] = {220, 880, 3520};

static void write_tone_amp(const char *path, int freq, int variant, float amp);

/* 1 s of a tone at amp, then 1 s of it at amp·10^(-70/20), float WAV. */
static void write_tone_tail(const char *path, int freq, float amp)
{
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    static float x[32000];
    for (int i = 0; i < 32000; i++)
        x[i] = (i < 16000 ? amp : amp * 3.1623e-4f) * sinf(6.2831853f * (float)freq * (float)i / 16000.f);
    assert_int_equal(sf_writef_float(f, x, 32000), 32000);
    sf_close(f);
}
static void write_tone(const char *path, int freq, int variant) { write_tone_amp(path, freq, variant, 0.3f); }

static void write_tone_amp(const char *path, int freq, int variant, float amp)
{
    /* 16-bit at 0.3, float otherwise (a quiet copy in 16 bits would differ by its quantisation noise) */
    SF_INFO info = {.samplerate = 16000, .channels = 1,
                    .format = SF_FORMAT_WAV | (amp == 0.3f ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT)};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    float x[16000];
    for (int i = 0; i < 16000; i++)
        x[i] = amp * sinf(6.2831853f * (float)(freq * (1.0 + 0.01 * variant)) * (float)i / 16000.f);
    assert_int_equal(sf_writef_float(f, x, 16000), 16000);
    sf_close(f);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_export_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s/clips", dir, dir);
    char p[512];
    snprintf(p, sizeof p, "%s/clips/manifest.csv", dir);
    FILE *m = fopen(p, "w");
    fputs("path,label,group\n", m);
    static const char *names[3] = {"low", "mid", "high"};
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 10; v++) {
            char w[512];
            snprintf(w, sizeof w, "%s/clips/%s%d.wav", dir, names[c], v);
            write_tone(w, freqs[c], v);
            fprintf(m, "%s%d.wav,%s,%d\n", names[c], v, names[c], v);
        }
    fclose(m);
    snprintf(p, sizeof p, "%s/exp.yaml", dir);
    FILE *y = fopen(p, "w");
    fprintf(y, "name: export_test\nseed: 3\ncache: %s/cache\ndataset: {type: csv, manifest: %s/clips/manifest.csv}\n"
               "features: [{set: logmel_stats, params: {frontend: cnn14_16k}}]\n"
               "protocol: {kind: group_kfold, n_folds: 2}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: 10}}\n"
               "  - {name: boost, model: gbdt, params: {n_estimators: 30, early_stopping_rounds: 3}}\n"
               "ensembles:\n  - {name: both, members: [forest, boost], weights: [1, 2]}\n", dir, dir);
    fclose(y);
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

typedef struct lines { size_t n; char last[256]; } lines;

static void collect(void *ctx, const char *line)
{
    lines *l = ctx;
    l->n++;
    snprintf(l->last, sizeof l->last, "%s", line);
}

/* Export `model`; *n_train and *n_val from the bundle's attributes. */
static void export(const char *model, int64_t *n_train, int64_t *n_val, lines *progress)
{
    char cfgp[512], out[512];
    snprintf(cfgp, sizeof cfgp, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/%s.h5", dir, model);
    mm_cfg *cfg = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_load_file(cfgp, &cfg, &e), 0);
    mm_export_opts o = {.model = model, .out_path = out, .config_path = cfgp, .results_dir = dir, .n_threads = 2,
                        .on_progress = collect, .progress_ctx = progress};
    if (mm_export_bundle(cfg, &o, &e)) fail_msg("%s", e.msg);
    mm_cfg_free(cfg);
    hid_t f;
    assert_int_equal(mm_h5_open_read(out, &f, &e), 0);
    assert_int_equal(mm_h5_attr_get_i64(f, "n_train", n_train, &e), 0);
    assert_int_equal(mm_h5_attr_get_i64(f, "n_val", n_val, &e), 0);
    mm_h5_close(f);
    mm_bundle *b = NULL;
    if (mm_bundle_open(out, NULL, 1, &b, &e)) fail_msg("%s", e.msg);
    char wav[512];
    float proba[3];
    snprintf(wav, sizeof wav, "%s/clips/high3.wav", dir);
    assert_int_equal(mm_bundle_n_classes(b), 3);
    if (mm_bundle_classify_file(b, wav, proba, NULL, NULL, &e)) fail_msg("%s", e.msg);
    mm_bundle_free(b);
    printf("  %s: n_train %lld, n_val %lld; progress: %s\n", model, (long long)*n_train, (long long)*n_val, progress->last);
}

static void test_n_train_and_n_val(void **st)
{
    int64_t nt, nv;
    lines pr = {0};
    export("forest", &nt, &nv, &pr);       /* no validation part: every row trains */
    assert_int_equal(nt, 30);
    assert_int_equal(nv, 0);
    assert_true(pr.n >= 1);
    assert_non_null(strstr(pr.last, "export: fitting forest (rf) on 30 rows"));
    lines pb = {0};
    export("boost", &nt, &nv, &pb);        /* early stopping: a validation part aside */
    assert_true(nv > 0);
    assert_int_equal(nt + nv, 30);
    assert_non_null(strstr(pb.last, "(+ validation part)"));
    lines pe = {0};
    export("both", &nt, &nv, &pe);         /* an ensemble with an early-stopped member */
    assert_true(nv > 0);
    assert_int_equal(nt + nv, 30);
}

/* A bundle from an experiment with audio.normalize applies it: the same clip
 * recorded 40 dB quieter gives the same features (log-mel statistics within
 * 1e-3; float rounding of the gain), while a bundle without it sees the level. */
static void test_bundle_applies_normalize(void **st)
{
    char cfgp[512], out[512], loud[512], quiet[512];
    snprintf(cfgp, sizeof cfgp, "%s/exp_norm.yaml", dir);
    FILE *y = fopen(cfgp, "w");
    assert_non_null(y);
    fprintf(y, "include: exp.yaml\nname: export_norm\n"
               "audio: {trim: true, trim_top_db: 60, normalize: {method: lufs, target: -23, peak_limit: -1}}\n");
    fclose(y);
    snprintf(loud, sizeof loud, "%s/loud.wav", dir);
    snprintf(quiet, sizeof quiet, "%s/quiet.wav", dir);
    /* float WAVs 40 dB apart, a tone then a tail 70 dB below it: trimmed at the recording's
     * level, librosa's RMS floor (1e-5) would keep the quiet copy's tail and cut the loud one's */
    write_tone_tail(loud, 880, 0.29f);
    write_tone_tail(quiet, 880, 0.0029f);
    double diff[2];
    for (int norm = 0; norm < 2; norm++) {
        mm_cfg *cfg = NULL;
        mm_err e = {0};
        snprintf(cfgp, sizeof cfgp, "%s/%s", dir, norm ? "exp_norm.yaml" : "exp.yaml");
        snprintf(out, sizeof out, "%s/norm%d.h5", dir, norm);
        assert_int_equal(mm_cfg_load_file(cfgp, &cfg, &e), 0);
        mm_export_opts o = {.model = "forest", .out_path = out, .config_path = cfgp, .results_dir = dir, .n_threads = 2};
        if (mm_export_bundle(cfg, &o, &e)) fail_msg("%s", e.msg);
        mm_cfg_free(cfg);
        mm_bundle *b = NULL;
        if (mm_bundle_open(out, NULL, 1, &b, &e)) fail_msg("%s", e.msg);
        size_t d = mm_bundle_dim(b);
        float *a = malloc(d * sizeof *a), *q = malloc(d * sizeof *q);
        if (mm_bundle_features_file(b, loud, a, NULL, &e) || mm_bundle_features_file(b, quiet, q, NULL, &e))
            fail_msg("%s", e.msg);
        diff[norm] = tu_max_abs_diff(a, q, d);
        free(a), free(q);
        mm_bundle_free(b);
    }
    printf("  features of a clip and its -40 dB copy: max |d| %.3g without audio.normalize, %.3g with\n", diff[0],
           diff[1]);
    assert_true(diff[0] > 1.0);    /* log-mel moves with the level ... */
    assert_true(diff[1] < 1e-3);   /* ... unless the bundle normalises, as the experiment did */
}

static void test_unknown_model(void **st)
{
    char cfgp[512], out[512];
    snprintf(cfgp, sizeof cfgp, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/none.h5", dir);
    mm_cfg *cfg = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_load_file(cfgp, &cfg, &e), 0);
    mm_export_opts o = {.model = "nope", .out_path = out, .config_path = cfgp, .n_threads = 1};
    assert_int_equal(mm_export_bundle(cfg, &o, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "no model or ensemble named 'nope' (the experiment has: forest, boost, both)"));
    assert_int_not_equal(access(out, F_OK), 0);
    mm_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_n_train_and_n_val),
        cmocka_unit_test(test_bundle_applies_normalize),
        cmocka_unit_test(test_unknown_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
