/* test_robust.c — issue 16 wiring: level normalisation before the front end
 * (audio.normalize), the training augmentation suite (augment:), robustness
 * evaluation (robustness:) on a small synthetic speech-like dataset, and every
 * bad input the issue names refused in one line before any work. */
#include "testutil.h"
#include <math.h>
#include <sndfile.h>
#include "data/extract.h"
#include "exp/corrupt.h"
#include "exp/runner.h"
#include "io/h5.h"

static char dir[256];

/* A speech-like clip: a harmonic tone whose pitch and formant depend on the
 * class, amplitude-modulated in syllables, with speaker-dependent pitch. */
static void write_clip(const char *path, int cls, int speaker, int take, int sr, double seconds, double peak)
{
    size_t n = (size_t)(seconds * sr);
    float *x = malloc(n * sizeof *x);
    double f0 = 110 + 25 * speaker + 60 * cls, m = 0;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / sr, env = 0.5 + 0.5 * sin(2 * M_PI * (3 + cls) * t + take);
        double v = 0;
        for (int h = 1; h <= 8; h++) v += sin(2 * M_PI * f0 * h * t + h * take) / (h + (cls == h % 3 ? 0 : 2));
        x[i] = (float)(env * v);
        if (fabs(x[i]) > m) m = fabs(x[i]);
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] / m * peak);
    SF_INFO info = {.samplerate = sr, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    assert_int_equal(sf_writef_float(f, x, (sf_count_t)n), (sf_count_t)n);
    sf_close(f);
    free(x);
}

/* 6 speakers × 3 classes × 3 takes under dir/data/speech (manifest.csv), and two
 * noise files in dir/data/music-4q (the default music folder). */
static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_robust_%d", (int)getpid());
    tu_system("rm -rf %s && mkdir -p %s/data/speech %s/data/music-4q %s/data/empty %s/data/short", dir, dir, dir, dir, dir);
    char p[512];
    snprintf(p, sizeof p, "%s/data/speech/manifest.csv", dir);
    FILE *m = fopen(p, "w");
    assert_non_null(m);
    fprintf(m, "path,label,group\n");
    for (int s = 0; s < 6; s++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 3; k++) {
                char name[64];
                snprintf(name, sizeof name, "s%d_c%d_%d.wav", s, c, k);
                snprintf(p, sizeof p, "%s/data/speech/%s", dir, name);
                write_clip(p, c, s, k, 16000, 1.2, 0.5);
                fprintf(m, "%s,%c,%d\n", name, 'a' + c, s + 1);
            }
    fclose(m);
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/data/music-4q/track%d.wav", dir, i);
        write_clip(p, i, 9, 1, 22050, 3.0, 0.7);
    }
    snprintf(p, sizeof p, "%s/data/short/a.wav", dir);
    write_clip(p, 0, 0, 0, 16000, 0.3, 0.5);
    snprintf(p, sizeof p, "%s/data/short/b.wav", dir);
    write_clip(p, 1, 0, 0, 16000, 0.3, 0.5);
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

static int run_exp(const char *extra, const char *out, mm_err *e)
{
    char text[8192];
    snprintf(text, sizeof text,
             "name: robust\nseed: 5\ndata_root: %s/data\ncache: %s/cache\n"
             "dataset: {type: csv, manifest: speech/manifest.csv}\n"
             "%s"
             "%s%s"
             "models:\n  - {name: logreg, model: logreg, params: {C: 0.1, max_iter: 300}}\n"
             "  - {name: forest, model: rf, params: {n_estimators: 20}}\n"
             "ensembles:\n  - {name: both, members: [logreg, forest]}\n"
             "tsne: {enabled: false}\n%s",
             dir, dir, strstr(extra, "features:") ? "" : "features: [logmel_stats]\n", strstr(extra, "protocol:") ? "" : "protocol: {kind: group_kfold, n_folds: 3}\n",
             strstr(extra, "preprocessing:") ? "" : "preprocessing: {scaler: standard}\n", extra);
    mm_cfg *c = NULL;
    int rc = mm_cfg_parse_string(text, "robust.yaml", &c, e);
    if (rc) return rc;
    mm_run_opts o = {.out_dir = out, .config_path = "robust.yaml", .n_threads = 2, .quiet = 1};
    rc = mm_experiment_run(c, &o, e);
    mm_cfg_free(c);
    return rc;
}

/* ---- level normalisation ---- */

typedef struct { double db; } gain_ctx;
static int gain_fn(void *ctx, size_t clip, int sr, float **x, size_t *n, mm_err *err)
{
    double g = pow(10, ((gain_ctx *)ctx)->db / 20);
    for (size_t i = 0; i < *n; i++) (*x)[i] = (float)((*x)[i] * g);
    return 0;
}

/* Features after audio.normalize are gain-invariant: the log-mel statistics of
 * one clip at −30..+20 dB around a −1 dBFS peak differ by at most 0.01 (they are
 * in dB; the normalised signals agree to float rounding, so only the front end's
 * float32 rounding remains); without normalisation they move by the gain. */
static void test_level_invariance(void **st)
{
    char p[512];
    snprintf(p, sizeof p, "%s/data/speech/s2_c1_0.wav", dir);
    mm_cfg *fc = NULL, *ac = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string("features: [logmel_stats]\naudio: {trim: true, normalize: {method: lufs, target: -23, peak_limit: -1}}\n", "t", &fc, &e), 0);
    mm_featset_inst *sets = NULL;
    size_t ns = 0;
    assert_int_equal(mm_featsets_create(mm_cfg_child(fc, "features"), tu_model_root(), &sets, &ns, &e), 0);
    size_t D = sets[0].vt->dim(sets[0].state);
    float *ref = malloc(D * sizeof *ref), *x = malloc(D * sizeof *x), *raw_ref = malloc(D * sizeof *x);
    mm_pipeline_audio pa;
    assert_int_equal(mm_pipeline_audio_from_cfg(mm_cfg_child(fc, "audio"), &pa, &e), 0);
    assert_true(pa.level.on);
    gain_ctx g = {.db = 0};
    pa.transform = gain_fn;
    pa.transform_ctx = &g;
    assert_int_equal(mm_featsets_compute_pipeline(sets, ns, &pa, 0, p, NULL, 0, NULL, ref, NULL, &e), 0);
    mm_pipeline_audio raw = pa;
    raw.level.on = 0;
    assert_int_equal(mm_featsets_compute_pipeline(sets, ns, &raw, 0, p, NULL, 0, NULL, raw_ref, NULL, &e), 0);
    /* the clip peaks at 0.5 (−6 dBFS): +5 dB is −1 dBFS, down to −30 dB below that */
    const double gains[] = {5, -5, -15, -25, -30 + 5 - 5, 5 - 30};
    double worst = 0, raw_min = INFINITY;
    for (size_t i = 0; i < sizeof gains / sizeof *gains; i++) {
        g.db = gains[i];
        assert_int_equal(mm_featsets_compute_pipeline(sets, ns, &pa, 0, p, NULL, 0, NULL, x, NULL, &e), 0);
        double d = tu_max_abs_diff(ref, x, D);
        if (d > worst) worst = d;
        assert_int_equal(mm_featsets_compute_pipeline(sets, ns, &raw, 0, p, NULL, 0, NULL, x, NULL, &e), 0);
        d = tu_max_abs_diff(raw_ref, x, D);
        if (d < raw_min) raw_min = d;
    }
    printf("level invariance: max |feature difference| %.2e with normalize (tolerance 0.01), >= %.2f without\n", worst, raw_min);
    assert_true(worst <= 0.01);
    assert_true(raw_min > 1.0);
    mm_featsets_free(sets, ns);
    mm_cfg_free(fc);
    mm_cfg_free(ac);
    free(ref); free(x); free(raw_ref);
}

/* ---- the experiment ---- */

static void test_experiment(void **st)
{
    char out[400], out2[400], p[512];
    snprintf(out, sizeof out, "%s/run1", dir);
    snprintf(out2, sizeof out2, "%s/run2", dir);
    const char *extra =
        "audio: {normalize: {method: rms, target: -20}}\n"
        "augment:\n  speed: [1.1]\n  gain: {db: [-10, 10]}\n  noise: {color: [white, pink], snr: [10, 20]}\n"
        "  babble: {snr: [10], speakers: 2}\n  music: {snr: [10]}\n  reverb: {rt60: [0.3]}\n  telephone: true\n"
        "  codec: {format: [mp3], kbps: [32]}\n  pitch: {semitones: [1]}\n"
        "robustness: {corruptions: [gain_-20db, pink_10db, babble_10db, music_10db, reverb_0.6s, telephone, mp3_32kbps, resample_8khz]}\n";
    mm_err e = {0};
    int rc = run_exp(extra, out, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
    /* one cached table per setting: clean + 9 augmentations + 8 corruptions */
    snprintf(p, sizeof p, "ls %s/cache/features-*.h5 | wc -l | grep -qx 18", dir);
    assert_int_equal(tu_system("%s", p), 0);
    snprintf(p, sizeof p, "%s/summary.json", out);
    char *js = tu_read_file(p);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"corruption_accuracy\""));
    assert_non_null(strstr(js, "\"babble_10db\""));
    snprintf(p, sizeof p, "%s/summary.md", out);
    char *md = tu_read_file(p);
    assert_non_null(strstr(md, "| **corruption accuracy** |"));
    assert_non_null(strstr(md, "corrupted, one copy each (gain, noise, babble, music, reverb, telephone, codec, pitch"));
    /* results.h5: per corruption, model and round */
    snprintf(p, sizeof p, "%s/results.h5", out);
    hid_t f;
    assert_int_equal(mm_h5_open_read(p, &f, &e), 0);
    assert_true(mm_h5_exists(f, "robustness/pink_10db/logreg/accuracy"));
    assert_true(mm_h5_exists(f, "robustness/resample_8khz/both/macro_f1"));
    double *acc = NULL;
    int r;
    hsize_t d[4];
    assert_int_equal(mm_h5_read_f64(f, "robustness/corruption_accuracy", 1, &acc, &r, d, &e), 0);
    assert_int_equal(d[0], 3);
    for (int m = 0; m < 3; m++) assert_true(acc[m] >= 0 && acc[m] <= 1);
    free(acc);
    mm_h5_close(f);
    /* the same again (cached tables, one thread fewer): the same bytes */
    rc = run_exp(extra, out2, &e);
    assert_int_equal(rc, 0);
    snprintf(p, sizeof p, "%s/summary.json", out2);
    char *js2 = tu_read_file(p);
    assert_string_equal(js, js2);
    free(js); free(js2); free(md);
    /* every other clip corrupted: the others are scored nowhere, the run still reports */
    snprintf(out2, sizeof out2, "%s/run3", dir);
    rc = run_exp("robustness: {corruptions: [white_0db], every: 2}\n", out2, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
    snprintf(p, sizeof p, "%s/summary.json", out2);
    js = tu_read_file(p);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"white_0db\""));
    free(js);
}

/* ---- errors before any work ---- */

static void expect_error(const char *extra, const char *needle)
{
    char out[400];
    snprintf(out, sizeof out, "%s/bad", dir);
    tu_system("rm -rf %s/bad %s/cache_bad", dir, dir);
    mm_err e = {0};
    int rc = run_exp(extra, out, &e);
    if (!rc || !strstr(e.msg, needle)) fprintf(stderr, "expected '%s', got: %s\n", needle, rc ? e.msg : "success");
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, needle));
    assert_null(strchr(e.msg, '\n'));   /* one line */
    assert_int_not_equal(tu_system("test -e %s/bad", dir), 0);   /* no work done */
}

static void test_errors(void **st)
{
    expect_error("augment: {echo: {delay: 3}}\n", "unknown augmentation 'echo'");
    expect_error("augment: {noise: {snr: [80]}}\n", "augment.noise.snr 80 is out of range");
    expect_error("augment: {reverb: {rt60: [3.0]}}\n", "augment.reverb.rt60 3 is out of range");
    expect_error("augment: {codec: {format: [mp3], kbps: [400]}}\n", "augment.codec.kbps 400 is out of range");
    expect_error("augment: {codec: {format: [opus], kbps: [300]}}\n", "opus at 300 kbit/s");
    expect_error("augment: {gain: {db: [50]}}\n", "augment.gain.db 50 is out of range");
    expect_error("augment: {gain: {db: [-41]}}\n", "augment.gain.db -41 is out of range");
    expect_error("augment: {music: {snr: [10, 70]}}\n", "augment.music.snr 70 is out of range");
    expect_error("augment: {music: {snr: [-20]}}\n", "augment.music.snr -20 is out of range");
    expect_error("augment: {pitch: {semitones: [2, 13]}}\n", "augment.pitch.semitones 13 is out of range");
    expect_error("augment: {pitch: {semitones: [-12.5]}}\n", "augment.pitch.semitones -12.5 is out of range");
    expect_error("augment: {pitch: {}}\n", "augment.pitch needs 'semitones: [values]'");
    expect_error("augment: {telephone: false}\n", "augment.telephone: expected true or {}");
    expect_error("augment: {telephone: {band: [300, 3400]}}\n", "band");
    expect_error("augment: {noise: {color: [purple]}}\n", "unknown value 'purple'");
    expect_error("augment: {music: {snr: [10], dir: empty}}\n", "holds 0 audio files");
    expect_error("augment: {music: {snr: [10], dir: nowhere}}\n", "cannot be opened");
    expect_error("augment: {music: {snr: [10], dir: short}}\n", "noise files need at least 1 s");
    expect_error("robustness: {corruptions: [pink_10db, thunder_5db]}\n", "unknown corruption 'thunder_5db'");
    expect_error("robustness: {corruptions: [reverb_5s]}\n", "RT60");
    expect_error("robustness: {corruptions: [mp3_1000kbps]}\n", "bit rate");
    expect_error("robustness: {suite: tough}\n", "the only suite is 'standard'");
    expect_error("robustness: {corruptions: [pink_0db], every: 2}\npreprocessing: {scaler: standard, group_norm: true}\n", "per-speaker statistics need every clip");
    expect_error("audio: {normalize: {method: lufs, target: 5}}\n", "target");
    expect_error("audio: {normalize: {method: loud}}\n", "method");
    expect_error("audio: {normalize: {method: lufs, gain: 3}}\n", "gain");
    /* six speakers in six folds: nobody shares a side with another speaker */
    expect_error("protocol: {kind: group_kfold, n_folds: 6}\nrobustness: {corruptions: [babble_10db]}\n", "babble needs clips of another speaker");
    expect_error("augment: {specaugment: {copies: 2}}\n", "feature set 'logmel_stats' has no log-mel to mask");
    expect_error("features: [mn04_layers]\naugment: {specaugment: {copies: 5}}\n", "key 'copies'");
    expect_error("features: [mn04_layers]\naugment: {specaugment: {seed: 3}}\n", "augment.specaugment.seed");
    expect_error("features: [mn04_layers]\naugment: {specaugment: {time_masks: 12}}\n", "key 'time_masks'");
    expect_error("features: [mn04_layers]\naugment: {specaugment: {fill: noise}}\n", "augment.specaugment.fill 'noise'");
}

/* augment.specaugment (issue 16 §2) end to end on mn04 embeddings: `copies` tables of
 * masked-log-mel embeddings join the training rows (cached like the other augmentations:
 * one new table per copy, none on a rerun), the summary names them, and a rerun gives the
 * same bytes. */
static void test_specaugment_run(void **st)
{
    const char *mr = tu_model_root();
    char w[1024];
    snprintf(w, sizeof w, "%s/efficientat/mn04_as_mAP_432.pt", mr ? mr : "");
    if (!mr || access(w, R_OK)) skip();
    char out[400], p[512], extra[600];
    snprintf(extra, sizeof extra, "model_root: %s\nfeatures: [mn04_embedding]\n"
             "augment: {specaugment: {copies: 2, time_masks: 2, time_width: 10, freq_masks: 2, freq_width: 20}}\n", mr);
    snprintf(out, sizeof out, "%s/spec1", dir);
    mm_err e = {0};
    int rc = run_exp(extra, out, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(rc, 0);
    snprintf(p, sizeof p, "grep -l 'specaugment' %s/cache/features-*.h5 | wc -l | grep -qx 2", dir);
    assert_int_equal(tu_system("%s", p), 0);   /* two masked tables, each its own key */
    snprintf(p, sizeof p, "%s/summary.md", out);
    char *md = tu_read_file(p);
    assert_non_null(md);
    assert_non_null(strstr(md, "specaugment"));
    snprintf(p, sizeof p, "%s/summary.json", out);
    char *js = tu_read_file(p);
    snprintf(out, sizeof out, "%s/spec2", dir);
    assert_int_equal(run_exp(extra, out, &e), 0);
    snprintf(p, sizeof p, "%s/summary.json", out);
    char *js2 = tu_read_file(p);
    assert_string_equal(js, js2);
    free(md); free(js); free(js2);
}

/* Amplitude of frequency hz in x (projection on sine and cosine over the whole clip). */
static double amp_at(const float *x, size_t n, int sr, double hz)
{
    double c = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        c += x[i] * cos(2 * M_PI * hz * i / sr);
        s += x[i] * sin(2 * M_PI * hz * i / sr);
    }
    return 2 * sqrt(c * c + s * s) / (double)n;
}

/* Music as background at a stated SNR, training apart from tests: the music folder holds
 * track0 (f0 335 Hz) and track1 (f0 395 Hz); a training augmentation (test_part 0) mixes
 * the even-numbered file, a robustness corruption the odd-numbered one. On a 1 kHz tone the
 * mix's SNR (signal power over the added part's) is the one asked for, and the added part
 * holds the f0 of its own track only. */
static void test_music_parts(void **st)
{
    mm_dataset ds = {.n = 1};
    mm_audio_opts ao;
    mm_audio_opts_default(&ao);
    char root[300];
    snprintf(root, sizeof root, "%s/data", dir);
    int sr = 16000;
    size_t n = 2 * (size_t)sr;
    for (int part = 0; part <= 1; part++)
        for (int k = 0; k < 2; k++) {
            const double snr = k ? 0 : 10;
            mm_corr c;
            mm_err e = {0};
            if (part) {
                char name[32];
                snprintf(name, sizeof name, "music_%gdb", snr);
                assert_int_equal(mm_corr_parse_name(name, &c, &e), 0);
            } else {
                char text[64];
                mm_cfg *m = NULL;
                snprintf(text, sizeof text, "music: {snr: [%g]}\n", snr);
                assert_int_equal(mm_cfg_parse_string(text, "t", &m, &e), 0);
                assert_int_equal(mm_corr_parse_augment(mm_cfg_child(m, "music"), &c, &e), 0);
                mm_cfg_free(m);
            }
            assert_int_equal(c.test_part, part);
            mm_corr_ctx *x = NULL;
            if (mm_corr_ctx_create(&c, 11, &ds, NULL, 0, &ao, root, &x, &e)) fail_msg("%s", e.msg);
            float *y = malloc(n * sizeof *y), *orig = malloc(n * sizeof *orig);
            for (size_t i = 0; i < n; i++) orig[i] = y[i] = (float)(0.3 * sin(2 * M_PI * 1000.0 * i / sr));
            size_t ny = n;
            if (mm_corr_apply_fn(x, 0, sr, &y, &ny, &e)) fail_msg("%s", e.msg);
            assert_int_equal(ny, n);
            double ps = 0, pn = 0;
            for (size_t i = 0; i < n; i++) {
                ps += (double)orig[i] * orig[i];
                y[i] -= orig[i];
                pn += (double)y[i] * y[i];
            }
            double got = 10 * log10(ps / pn), a335 = amp_at(y, n, sr, 335), a395 = amp_at(y, n, sr, 395);
            printf("music %s part at %g dB: SNR %.4f dB, added f0 335 Hz %.4f, 395 Hz %.4f\n", part ? "test" : "training",
                   snr, got, a335, a395);
            assert_true(fabs(got - snr) < 0.01);
            if (part) assert_true(a395 > 10 * a335);   /* track1, the odd-numbered file */
            else assert_true(a335 > 10 * a395);        /* track0, the even-numbered file */
            free(y);
            free(orig);
            mm_corr_ctx_free(x);
        }
}

/* Parsing names and the standard suite. */
static void test_names(void **st)
{
    const char *const *names;
    size_t n;
    mm_corr_standard_suite(&names, &n);
    assert_int_equal(n, 20);
    mm_err e = {0};
    for (size_t i = 0; i < n; i++) {
        mm_corr c;
        if (mm_corr_parse_name(names[i], &c, &e)) fail_msg("%s: %s", names[i], e.msg);
        assert_int_equal(c.test_part, 1);
    }
    mm_corr c;
    assert_int_equal(mm_corr_parse_name("gain_+20db", &c, &e), 0);
    assert_int_equal(c.kind, MM_CORR_GAIN);
    assert_true(c.val[0] == 20);
    assert_int_not_equal(mm_corr_parse_name("gain_+20dbx", &c, &e), 0);
    assert_int_not_equal(mm_corr_parse_name("pink_", &c, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_level_invariance),
        cmocka_unit_test(test_music_parts),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_experiment),
        cmocka_unit_test(test_specaugment_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
