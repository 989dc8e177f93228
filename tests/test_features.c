/* test_features.c — handcrafted features (dsp/features, dsp/pool) and the
 * feature sets music_paper, speech_162, mfcc_stats against
 * tests/fixtures/features.h5 (tests/ref/gen_features.py: a numpy port of
 * librosa 0.10.2 run on a RAVDESS excerpt and a 4Q excerpt resampled to
 * 22050 Hz, and a RAVDESS excerpt at 16 kHz with n_fft 1024, hop 256, 64
 * mels, 13 MFCCs; the waveforms are stored so both sides see the same samples),
 * plus analytic signals: a 440 Hz tone, click tracks, white noise, silence,
 * a clip shorter than one frame, and the error paths.
 */
#include "testutil.h"

#include <float.h>

#include "core/rng.h"
#include "dsp/features.h"
#include "dsp/pool.h"
#include "features/featset.h"
#include "io/cfg.h"
#include "io/h5.h"

#define FIXTURE "tests/fixtures/features.h5"

typedef struct clip {
    float *y;
    size_t n;
} clip;

static float *read_f32(hid_t f, const char *name, size_t *count)
{
    float *d = NULL;
    int rank = 0;
    hsize_t dims[4] = {0};
    mm_err e = {0};
    if (mm_h5_read_f32(f, name, -1, &d, &rank, dims, &e)) fail_msg("%s", e.msg);
    size_t c = 1;
    for (int i = 0; i < rank; i++) c *= dims[i];
    if (count) *count = c;
    return d;
}

static double read_scalar(hid_t f, const char *name)
{
    double *d = NULL;
    int rank = 0;
    hsize_t dims[4] = {0};
    mm_err e = {0};
    if (mm_h5_read_f64(f, name, -1, &d, &rank, dims, &e)) fail_msg("%s", e.msg);
    double v = d[0];
    free(d);
    return v;
}

/* Max |a - b| over n values, and the count of entries beyond tol. */
static double compare(const char *what, const float *a, const float *b, size_t n, double tol,
                      size_t *n_bad)
{
    double m = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= tol)) bad++;
        if (!(d <= m)) m = d;
    }
    printf("  %-22s max |diff| %.3g over %zu values (tol %.3g, %zu beyond)\n", what, m, n, tol,
           bad);
    if (n_bad) *n_bad = bad;
    return m;
}

static mm_feats *make_feats(const mm_feats_params *p)
{
    mm_feats_params d;
    if (!p) {
        mm_feats_params_default(&d);
        p = &d;
    }
    mm_feats *f = NULL;
    mm_err e = {0};
    if (mm_feats_create(p, &f, &e)) fail_msg("%s", e.msg);
    return f;
}

/* Tolerances, and why (the reference STFT runs numpy's double-precision FFT
 * before rounding to float32; ours is FFTW single precision, relative error
 * ~1e-6 on strong bins and larger on bins 80 dB down):
 *  - mel dB / MFCC: 0.05 dB absolute — float32 rounding of weak bins near the
 *    80 dB floor; strong bins agree to ~1e-4 dB.
 *  - chroma (max-normalised, in [0, 1]): 1e-4.
 *  - contrast: 0.05 dB (means of the quantile bins, same rounding).
 *  - centroid / bandwidth: 0.05 Hz (weighted means over 11 kHz).
 *  - roll-off: a frame may move by one FFT bin (10.77 Hz) when the cumulative
 *    sum sits on the 85% threshold; at most 2% of frames may, none by more.
 *  - ZCR is a count: exact (1e-7). RMS: 1e-6 relative (float32 means).
 *  - onset strength: 1e-3 (a mean of dB differences).
 *  - tempo: the same tempogram lag, so exactly the same BPM. */
static void check_clip(hid_t h, const char *group)
{
    char path[128];
    snprintf(path, sizeof path, "%s/y", group);
    size_t n;
    float *y = read_f32(h, path, &n);
    /* optional non-default settings: [sample_rate, n_fft, hop, n_mels, n_mfcc] */
    mm_feats_params p;
    mm_feats_params_default(&p);
    snprintf(path, sizeof path, "%s/params", group);
    if (mm_h5_exists(h, path)) {
        int32_t *pv = NULL;
        int rank;
        hsize_t dims[4];
        mm_err pe = {0};
        assert_int_equal(mm_h5_read_i32(h, path, 1, &pv, &rank, dims, &pe), 0);
        assert_int_equal(dims[0], 5);
        p.sample_rate = pv[0];
        p.n_fft = pv[1];
        p.hop_length = pv[2];
        p.n_mels = pv[3];
        p.n_mfcc = pv[4];
        free(pv);
    }
    mm_feats *f = make_feats(&p);
    mm_feats_frames fr;
    mm_err e = {0};
    assert_int_equal(mm_feats_compute(f, y, n, MM_FEAT_ALL, &fr, &e), 0);
    printf("%s: %zu samples at %d Hz (n_fft %d, hop %d, %d mels, %d MFCCs), %zu frames\n", group,
           n, p.sample_rate, p.n_fft, p.hop_length, p.n_mels, p.n_mfcc, fr.n_frames);
    struct { const char *name; const float *ours; size_t dim; double tol; } cases[] = {
        {"mel_db", fr.mel_db, fr.n_mels, 0.05},    {"mfcc", fr.mfcc, fr.n_mfcc, 0.05},
        {"chroma", fr.chroma, fr.n_chroma, 1e-4},  {"contrast", fr.contrast, fr.n_contrast, 0.05},
        {"centroid", fr.centroid, 1, 0.05},        {"bandwidth", fr.bandwidth, 1, 0.05},
        {"zcr", fr.zcr, 1, 1e-7},                  {"onset", fr.onset, 1, 1e-3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        snprintf(path, sizeof path, "%s/%s", group, cases[c].name);
        size_t m;
        float *ref = read_f32(h, path, &m);
        assert_int_equal(m, fr.n_frames * cases[c].dim);
        size_t bad;
        compare(cases[c].name, cases[c].ours, ref, m, cases[c].tol, &bad);
        assert_int_equal(bad, 0);
        free(ref);
    }
    /* RMS: relative */
    size_t m;
    snprintf(path, sizeof path, "%s/rms", group);
    float *ref = read_f32(h, path, &m);
    double worst = 0;
    for (size_t i = 0; i < m; i++)
        worst = fmax(worst, fabs(fr.rms[i] - ref[i]) / fmax(ref[i], 1e-12));
    printf("  %-22s max relative diff %.3g (tol 1e-6)\n", "rms", worst);
    assert_true(worst <= 1e-6);
    free(ref);
    /* roll-off: one-bin moves allowed in <= 2% of frames */
    snprintf(path, sizeof path, "%s/rolloff", group);
    ref = read_f32(h, path, &m);
    size_t bad;
    double mx = compare("rolloff", fr.rolloff, ref, m, 1e-3, &bad);
    assert_true(mx <= (double)p.sample_rate / p.n_fft + 1e-3);
    assert_true(bad * 50 <= m);
    free(ref);
    /* tempo */
    snprintf(path, sizeof path, "%s/tempo", group);
    double tref = read_scalar(h, path);
    printf("  %-22s ours %.4f, reference %.4f BPM\n", "tempo", fr.tempo, tref);
    assert_true(fabs(fr.tempo - tref) < 1e-9);
    mm_feats_frames_free(&fr);
    mm_feats_free(f);

    /* estimated tuning: the same histogram bin (0.01 of a chroma bin) */
    p.estimate_tuning = 1;
    f = make_feats(&p);
    assert_int_equal(mm_feats_compute(f, y, n, MM_FEAT_CHROMA, &fr, &e), 0);
    snprintf(path, sizeof path, "%s/tuning_est", group);
    double tun = read_scalar(h, path);
    printf("  %-22s ours %.3f, reference %.3f\n", "estimated tuning", fr.tuning, tun);
    assert_true(fabs(fr.tuning - tun) < 0.0101);
    if (fabs(fr.tuning - tun) < 1e-9) {
        snprintf(path, sizeof path, "%s/chroma_est", group);
        ref = read_f32(h, path, &m);
        compare("chroma (estimated)", fr.chroma, ref, m, 1e-4, &bad);
        assert_int_equal(bad, 0);
        free(ref);
    }
    mm_feats_frames_free(&fr);
    mm_feats_free(f);
    free(y);
}

static void test_fixture_clips(void **st)
{
    hid_t h;
    mm_err e = {0};
    if (mm_h5_open_read(FIXTURE, &h, &e)) fail_msg("%s", e.msg);
    check_clip(h, "speech");
    check_clip(h, "music");
    check_clip(h, "speech16k");
    mm_h5_close(h);
}

/* Feature sets against the generator's pooled vectors. Tolerance: 1e-3
 * relative to max(1, |value|) — the pooled values inherit the frame-wise
 * tolerances above (dB, Hz scales) and the roll-off one-bin moves, which shift
 * a mean by at most 10.8 Hz / n_frames. */
static void check_featset(hid_t h, const char *group, const char *name, const char *yaml,
                          const char *dataset, double rolloff_slack)
{
    char path[128];
    size_t n, m;
    snprintf(path, sizeof path, "%s/y", group);
    float *y = read_f32(h, path, &n);
    snprintf(path, sizeof path, "%s/%s", group, dataset);
    float *ref = read_f32(h, path, &m);
    const mm_featset_vt *vt = mm_featset_find(name);
    assert_non_null(vt);
    mm_cfg *cfg = NULL;
    mm_err e = {0};
    if (yaml && mm_cfg_parse_string(yaml, "test.yaml", &cfg, &e)) fail_msg("%s", e.msg);
    void *state = NULL;
    if (vt->create(cfg, NULL, &state, &e)) fail_msg("%s", e.msg);
    assert_int_equal(vt->sample_rate(state), 22050);
    assert_int_equal(vt->dim(state), m);
    float *out = malloc(m * sizeof *out);
    assert_int_equal(vt->compute(state, y, n, out, &e), 0);
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < m; i++) {
        const char *fname = vt->feature_name(state, i);
        double tol = 1e-3 * fmax(1.0, fabs(ref[i]));
        if (strstr(fname, "rolloff")) tol += rolloff_slack;
        double d = fabs(out[i] - ref[i]) / tol;
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    printf("%s/%s: %zu values, worst |diff|/tol %.3f at %s (ours %.6g, ref %.6g)\n", group, name,
           m, worst, vt->feature_name(state, at), out[at], ref[at]);
    assert_true(worst <= 1.0);
    free(out);
    vt->free(state);
    mm_cfg_free(cfg);
    free(ref);
    free(y);
}

static void test_featsets_fixture(void **st)
{
    hid_t h;
    mm_err e = {0};
    if (mm_h5_open_read(FIXTURE, &h, &e)) fail_msg("%s", e.msg);
    const char *all = "stats: [mean, std, min, max, skew, delta_mean, delta_std]\n";
    /* a one-bin roll-off move shifts: mean by 10.8/n, std/skew/deltas by more */
    for (int g = 0; g < 2; g++) {
        const char *grp = g ? "music" : "speech";
        check_featset(h, grp, "music_paper", all, "music_paper", 22050.0 / 2048);
        check_featset(h, grp, "speech_162", NULL, "speech_162", 0);
        check_featset(h, grp, "mfcc_stats", "n_mfcc: 40\n", "mfcc_stats40", 0);
    }
    mm_h5_close(h);
}

static void test_featset_layout(void **st)
{
    const mm_featset_vt *vt = mm_featset_find("music_paper");
    assert_non_null(vt);
    void *s = NULL;
    mm_err e = {0};
    assert_int_equal(vt->create(NULL, NULL, &s, &e), 0);
    assert_int_equal(vt->dim(s), 89);
    assert_string_equal(vt->feature_name(s, 0), "mfcc_mean_0");
    assert_string_equal(vt->feature_name(s, 20), "mfcc_std_0");
    assert_string_equal(vt->feature_name(s, 40), "chroma_mean_C");
    assert_string_equal(vt->feature_name(s, 49), "chroma_mean_A");
    assert_string_equal(vt->feature_name(s, 64), "contrast_mean_0");
    assert_string_equal(vt->feature_name(s, 78), "centroid_mean");
    assert_string_equal(vt->feature_name(s, 88), "tempo");
    assert_null(vt->feature_name(s, 89));
    char buf[512];
    assert_non_null(strstr(vt->describe(s, buf, sizeof buf), "stats=mean,std"));
    vt->free(s);

    vt = mm_featset_find("speech_162");
    assert_int_equal(vt->create(NULL, NULL, &s, &e), 0);
    assert_int_equal(vt->dim(s), 162);
    assert_string_equal(vt->feature_name(s, 0), "zcr_mean");
    assert_string_equal(vt->feature_name(s, 1), "chroma_mean_C");
    assert_string_equal(vt->feature_name(s, 13), "mfcc_mean_0");
    assert_string_equal(vt->feature_name(s, 33), "rms_mean");
    assert_string_equal(vt->feature_name(s, 34), "mel_mean_0");
    assert_string_equal(vt->feature_name(s, 161), "mel_mean_127");
    vt->free(s);

    vt = mm_featset_find("mfcc_stats");
    assert_int_equal(vt->create(NULL, NULL, &s, &e), 0);
    assert_int_equal(vt->dim(s), 40);
    assert_string_equal(vt->feature_name(s, 39), "mfcc_std_19");
    vt->free(s);
}

/* Bad configs: one-line messages naming the file, line, key and value. */
static void test_featset_config_errors(void **st)
{
    const mm_featset_vt *vt = mm_featset_find("music_paper");
    struct { const char *yaml; const char *expect; } cases[] = {
        {"n_mfcc: 20\nwindow: hann\n", "unknown key 'window'"},
        {"stats: [mean, median]\n", "'median'"},
        {"stats: mean\n", "expected a non-empty list"},
        {"stats: [mean, mean]\n", "listed twice"},
        {"n_mfcc: 0\n", "n_mfcc"},
        {"n_mels: 40\nn_mfcc: 41\n", "n_mfcc"},
        {"tuning: sharp\n", "tuning"},
        {"tuning: 0.7\n", "tuning"},
        {"n_fft: 2047\n", "n_fft 2047"},
        {"sample_rate: 8000\n", "Nyquist"},
        {"chroma_power: 3\n", "chroma_power"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mm_cfg *c = NULL;
        mm_err e = {0};
        assert_int_equal(mm_cfg_parse_string(cases[i].yaml, "fs.yaml", &c, &e), 0);
        void *s = NULL;
        int rc = vt->create(c, NULL, &s, &e);
        printf("  %-34s -> %s\n", cases[i].yaml, e.msg);
        assert_int_not_equal(rc, 0);
        assert_null(s);
        assert_non_null(strstr(e.msg, cases[i].expect));
        assert_null(strchr(e.msg, '\n'));
        mm_cfg_free(c);
    }
    /* estimated tuning is accepted */
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string("tuning: estimate\nn_mfcc: 13\n", "fs.yaml", &c, &e), 0);
    void *s = NULL;
    assert_int_equal(vt->create(c, NULL, &s, &e), 0);
    assert_int_equal(vt->dim(s), (13 + 12 + 7 + 5) * 2 + 1);
    vt->free(s);
    mm_cfg_free(c);
}

static float *tone(size_t n, double hz, double amp, int sr)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * M_PI * hz * i / sr));
    return x;
}

/* 440 Hz: chroma peak at A in every frame; in the full frames (the first and
 * last 4 see the zero padding's edge, a broadband step) the centroid at 440 Hz
 * within 1% (the Hann main lobe is symmetric; leakage moves it a few Hz). Roll-off sums magnitudes, whose Hann leakage
 * tails are heavy: in full frames it lies between 440 and 610 Hz (the numpy
 * port of librosa gives 452–603 Hz for this tone). */
static void test_tone_440(void **st)
{
    size_t n = 22050 * 2;
    float *x = tone(n, 440.0, 0.5, 22050);
    mm_feats *f = make_feats(NULL);
    mm_feats_frames fr;
    mm_err e = {0};
    assert_int_equal(mm_feats_compute(f, x, n, MM_FEAT_ALL, &fr, &e), 0);
    double worst_c = 0;
    for (size_t t = 0; t < fr.n_frames; t++) {
        const float *c = fr.chroma + t * 12;
        int best = 0;
        for (int k = 1; k < 12; k++) if (c[k] > c[best]) best = k;
        assert_int_equal(best, 9); /* C C# D D# E F F# G G# A */
        assert_true(fabsf(c[9] - 1.0f) < 1e-6);
        if (t < 4 || t + 4 >= fr.n_frames) continue; /* frames cut by the zero padding */
        worst_c = fmax(worst_c, fabs(fr.centroid[t] - 440.0) / 440.0);
        assert_true(fr.rolloff[t] >= 440 && fr.rolloff[t] <= 610);
    }
    printf("440 Hz tone: chroma peak A in %zu frames, worst centroid error (full frames) %.3f%%\n", fr.n_frames,
           100 * worst_c);
    assert_true(worst_c < 0.01);
    /* RMS of a sine is amp/sqrt(2) in full frames */
    assert_true(fabs(fr.rms[fr.n_frames / 2] - 0.5 / sqrt(2)) < 1e-3);
    mm_feats_frames_free(&fr);
    mm_feats_free(f);
    free(x);
}

/* A tone tuned a quarter bin sharp: librosa's estimate_tuning (parabolic
 * interpolation on the power spectrum, biased towards the bin centre) says
 * +0.22 for it — the numpy port's value — so we assert 0.22 to one histogram
 * step (0.01) and 0.25 to 0.04; the chroma peak stays at A. */
static void test_tuning_estimate(void **st)
{
    size_t n = 22050 * 2;
    float *x = tone(n, 440.0 * pow(2.0, 0.25 / 12), 0.5, 22050);
    mm_feats_params p;
    mm_feats_params_default(&p);
    p.estimate_tuning = 1;
    mm_feats *f = make_feats(&p);
    mm_feats_frames fr;
    mm_err e = {0};
    assert_int_equal(mm_feats_compute(f, x, n, MM_FEAT_CHROMA, &fr, &e), 0);
    printf("tone +0.25 bin: estimated tuning %.3f\n", fr.tuning);
    assert_true(fabs(fr.tuning - 0.22) <= 0.0101);
    assert_true(fabs(fr.tuning - 0.25) <= 0.04);
    assert_true(fr.chroma[(fr.n_frames / 2) * 12 + 9] == 1.0f);
    mm_feats_frames_free(&fr);
    mm_feats_free(f);
    free(x);
}

/* Click tracks: unit impulses at k*60*sr/bpm (integer division, as the
 * generator builds them). The tempo is librosa's: the reference port's BPM
 * exactly. Against the true tempo: the lag grid at 22050/512 is
 * 2583.98/lag BPM, so 90 -> 89.10 (1.0%), 150 -> 152.0 (1.3%), and 120 falls
 * between lags 21 (123.0) and 22 (117.45, 2.1%): librosa itself answers
 * 117.45. We assert within 2% for 90 and 150 and within one lag step for 120. */
static void test_click_tempo(void **st)
{
    hid_t h;
    mm_err e = {0};
    if (mm_h5_open_read(FIXTURE, &h, &e)) fail_msg("%s", e.msg);
    int32_t *bpm = NULL;
    double *ref = NULL;
    int rank;
    hsize_t dims[4];
    assert_int_equal(mm_h5_read_i32(h, "clicks/bpm", 1, &bpm, &rank, dims, &e), 0);
    assert_int_equal(mm_h5_read_f64(h, "clicks/tempo", 1, &ref, &rank, dims, &e), 0);
    mm_h5_close(h);
    mm_feats *f = make_feats(NULL);
    int sr = 22050;
    size_t n = (size_t)sr * 10;
    for (hsize_t i = 0; i < dims[0]; i++) {
        float *x = calloc(n, sizeof *x);
        for (long k = 0; (k * 60 * sr) / bpm[i] < (long)n; k++) x[(k * 60 * sr) / bpm[i]] = 1.0f;
        mm_feats_frames fr;
        assert_int_equal(mm_feats_compute(f, x, n, MM_FEAT_TEMPO, &fr, &e), 0);
        double rel = fabs(fr.tempo - bpm[i]) / bpm[i];
        printf("clicks at %d BPM: tempo %.2f (reference %.2f), %.2f%% off\n", bpm[i], fr.tempo,
               ref[i], 100 * rel);
        assert_true(fabs(fr.tempo - ref[i]) < 1e-9);
        double step = bpm[i] * bpm[i] * 512.0 / (60.0 * sr); /* one lag near bpm, in BPM */
        assert_true(bpm[i] == 120 ? fabs(fr.tempo - bpm[i]) <= step : rel <= 0.02);
        mm_feats_frames_free(&fr);
        free(x);
    }
    mm_feats_free(f);
    free(bpm);
    free(ref);
}

/* White noise: contrast is flat over time and bands — every band's mean
 * contrast within 10 dB of the others' mean, frame-to-frame std < 6 dB —
 * while a tone's band holding 440 Hz exceeds the noise's by > 30 dB. */
static void test_noise_contrast(void **st)
{
    size_t n = 22050 * 3;
    float *x = malloc(n * sizeof *x);
    mm_rng r;
    mm_rng_seed(&r, 7, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.1 * mm_rng_normal(&r));
    mm_feats *f = make_feats(NULL);
    mm_feats_frames fr, ft;
    mm_err e = {0};
    assert_int_equal(mm_feats_compute(f, x, n, MM_FEAT_CONTRAST, &fr, &e), 0);
    size_t nb = fr.n_contrast;
    float mean[16], sd[16];
    assert_int_equal(mm_pool_compute(MM_POOL_MEAN, fr.contrast, fr.n_frames, nb, nb, mean, &e), 0);
    assert_int_equal(mm_pool_compute(MM_POOL_STD, fr.contrast, fr.n_frames, nb, nb, sd, &e), 0);
    double avg = 0;
    for (size_t b = 0; b < nb; b++) avg += mean[b] / nb;
    printf("white noise contrast (dB):");
    for (size_t b = 0; b < nb; b++) printf(" %.1f±%.1f", mean[b], sd[b]);
    printf("\n");
    for (size_t b = 0; b < nb; b++) {
        assert_true(fabs(mean[b] - avg) < 10.0);
        assert_true(sd[b] < 6.0);
    }
    float *t = tone(n, 440.0, 0.5, 22050);
    assert_int_equal(mm_feats_compute(f, t, n, MM_FEAT_CONTRAST, &ft, &e), 0);
    float tm[16];
    assert_int_equal(mm_pool_compute(MM_POOL_MEAN, ft.contrast, ft.n_frames, nb, nb, tm, &e), 0);
    printf("440 Hz tone contrast in band 2 (400-800 Hz): %.1f dB vs noise %.1f dB\n", tm[2],
           mean[2]);
    assert_true(tm[2] > mean[2] + 30.0);
    mm_feats_frames_free(&fr);
    mm_feats_frames_free(&ft);
    mm_feats_free(f);
    free(x);
    free(t);
}

static void assert_all_finite(const mm_feats_frames *fr)
{
    size_t nf = fr->n_frames;
    struct { const float *p; size_t n; } a[] = {
        {fr->mel, nf * fr->n_mels}, {fr->mel_db, nf * fr->n_mels}, {fr->mfcc, nf * fr->n_mfcc},
        {fr->chroma, nf * fr->n_chroma}, {fr->contrast, nf * fr->n_contrast},
        {fr->centroid, nf}, {fr->bandwidth, nf}, {fr->rolloff, nf}, {fr->zcr, nf},
        {fr->rms, nf}, {fr->onset, nf}};
    for (size_t i = 0; i < sizeof a / sizeof *a; i++) {
        assert_non_null(a[i].p);
        for (size_t j = 0; j < a[i].n; j++) assert_true(isfinite(a[i].p[j]));
    }
    assert_true(isfinite(fr->tempo) && fr->tempo > 0);
}

/* Silence gives finite values (zeros where librosa's normalisations leave
 * zero columns alone, -100 dB mel), and so do the feature sets. */
static void test_silence_and_short(void **st)
{
    size_t n = 22050;
    float *x = calloc(n, sizeof *x);
    mm_feats *f = make_feats(NULL);
    mm_feats_frames fr;
    mm_err e = {0};
    assert_int_equal(mm_feats_compute(f, x, n, MM_FEAT_ALL, &fr, &e), 0);
    assert_all_finite(&fr);
    assert_true(fr.mel_db[0] == -100.0f);
    assert_true(fr.chroma[0] == 0.0f && fr.centroid[0] == 0.0f && fr.contrast[0] == 0.0f);
    printf("silence: tempo %.2f BPM (the prior's mode), finite everywhere\n", fr.tempo);
    mm_feats_frames_free(&fr);
    /* shorter than one frame: zero-padded by the centring, one frame */
    float shortx[100];
    for (int i = 0; i < 100; i++) shortx[i] = (float)sin(i * 0.3);
    assert_int_equal(mm_feats_compute(f, shortx, 100, MM_FEAT_ALL, &fr, &e), 0);
    assert_int_equal(fr.n_frames, 1);
    assert_all_finite(&fr);
    mm_feats_frames_free(&fr);
    assert_int_equal(mm_feats_compute(f, shortx, 1, MM_FEAT_ALL, &fr, &e), 0);
    assert_all_finite(&fr);
    mm_feats_frames_free(&fr);
    mm_feats_free(f);
    const char *sets[] = {"music_paper", "speech_162", "mfcc_stats"};
    const char *all = "stats: [mean, std, min, max, skew, delta_mean, delta_std]\n";
    for (int i = 0; i < 3; i++) {
        const mm_featset_vt *vt = mm_featset_find(sets[i]);
        mm_cfg *c = NULL;
        assert_int_equal(mm_cfg_parse_string(all, "s.yaml", &c, &e), 0);
        void *s = NULL;
        assert_int_equal(vt->create(c, NULL, &s, &e), 0);
        float *out = malloc(vt->dim(s) * sizeof *out);
        assert_int_equal(vt->compute(s, x, n, out, &e), 0);
        for (size_t j = 0; j < vt->dim(s); j++) assert_true(isfinite(out[j]));
        assert_int_equal(vt->compute(s, shortx, 100, out, &e), 0);
        for (size_t j = 0; j < vt->dim(s); j++) assert_true(isfinite(out[j]));
        free(out);
        vt->free(s);
        mm_cfg_free(c);
    }
    free(x);
}

static void test_errors(void **st)
{
    mm_feats *f = make_feats(NULL);
    mm_feats_frames fr = {0};
    mm_err e = {0};
    float x[4096] = {0};
    assert_int_equal(mm_feats_compute(f, x, 0, MM_FEAT_ALL, &fr, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "empty clip"));
    x[1000] = NAN;
    assert_int_equal(mm_feats_compute(f, x, 4096, MM_FEAT_ALL, &fr, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "sample 1000 is not finite"));
    assert_null(fr.mel);
    x[1000] = 3e9f;
    assert_int_equal(mm_feats_compute(f, x, 4096, MM_FEAT_ALL, &fr, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "sample 1000 is 3e+09"));
    x[1000] = 1e8f; /* the largest accepted: every feature still finite */
    assert_int_equal(mm_feats_compute(f, x, 4096, MM_FEAT_ALL, &fr, &e), 0);
    assert_all_finite(&fr);
    mm_feats_frames_free(&fr);
    mm_feats_free(f);
    mm_feats_free(NULL);
    mm_feats_frames_free(NULL);

    mm_feats_params p;
    mm_feats *g = NULL;
    mm_feats_params_default(&p);
    p.n_fft = 1000;
    p.contrast_fmin = 5.0;
    assert_int_equal(mm_feats_create(&p, &g, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "contrast_fmin 5"));
    mm_feats_params_default(&p);
    p.tempo_ac_size = 0.01;
    assert_int_equal(mm_feats_create(&p, &g, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "tempo_ac_size"));
    mm_feats_params_default(&p);
    p.rolloff_percent = 1.0;
    assert_int_equal(mm_feats_create(&p, &g, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "rolloff_percent 1"));
    assert_null(g);

    /* a feature set refuses the bad clip with its name in the message */
    const mm_featset_vt *vt = mm_featset_find("speech_162");
    void *s = NULL;
    assert_int_equal(vt->create(NULL, NULL, &s, &e), 0);
    float out[162];
    assert_int_not_equal(vt->compute(s, x, 0, out, &e), 0);
    assert_non_null(strstr(e.msg, "speech_162: features: empty clip"));
    vt->free(s);

    mm_pool_stat stat;
    assert_int_equal(mm_pool_stat_parse("kurtosis", &stat, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "'kurtosis'"));
}

/* Pooling on known series. */
static void test_pool(void **st)
{
    mm_err e = {0};
    float x[2 * 20];
    for (int t = 0; t < 20; t++) {
        x[2 * t] = 3.0f * t + 1;     /* ramp: delta 3 everywhere */
        x[2 * t + 1] = 5.0f;         /* constant: std 0, skew 0 */
    }
    float o[2];
    assert_int_equal(mm_pool_compute(MM_POOL_DELTA_MEAN, x, 20, 2, 2, o, &e), 0);
    assert_true(fabsf(o[0] - 3.0f) < 1e-5 && fabsf(o[1]) < 1e-6);
    assert_int_equal(mm_pool_compute(MM_POOL_DELTA_STD, x, 20, 2, 2, o, &e), 0);
    assert_true(fabsf(o[0]) < 1e-5);
    assert_int_equal(mm_pool_compute(MM_POOL_MEAN, x, 20, 2, 2, o, &e), 0);
    assert_true(fabsf(o[0] - 29.5f) < 1e-5 && o[1] == 5.0f);
    assert_int_equal(mm_pool_compute(MM_POOL_STD, x, 20, 2, 2, o, &e), 0);
    assert_true(fabsf(o[0] - 3.0f * sqrtf(399.0f / 12)) < 1e-4 && o[1] == 0.0f);
    assert_int_equal(mm_pool_compute(MM_POOL_SKEW, x, 20, 2, 2, o, &e), 0);
    assert_true(fabsf(o[0]) < 1e-6 && o[1] == 0.0f);
    assert_int_equal(mm_pool_compute(MM_POOL_MIN, x, 20, 2, 2, o, &e), 0);
    assert_true(o[0] == 1.0f);
    assert_int_equal(mm_pool_compute(MM_POOL_MAX, x, 20, 2, 2, o, &e), 0);
    assert_true(o[0] == 58.0f);
    /* fewer frames than the delta width: least-squares slope */
    assert_int_equal(mm_pool_compute(MM_POOL_DELTA_MEAN, x, 5, 2, 2, o, &e), 0);
    assert_true(fabsf(o[0] - 3.0f) < 1e-5);
    assert_int_equal(mm_pool_compute(MM_POOL_DELTA_MEAN, x, 1, 2, 2, o, &e), 0);
    assert_true(o[0] == 0.0f);
    assert_int_equal(mm_pool_compute(MM_POOL_MEAN, x, 0, 2, 2, o, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "0 frames"));
    assert_int_equal(mm_pool_compute(MM_POOL_MEAN, x, 3, 2, 1, o, &e), MM_EINVAL);
    /* right-skewed series */
    float y[5] = {0, 0, 0, 0, 10};
    assert_int_equal(mm_pool_compute(MM_POOL_SKEW, y, 5, 1, 1, o, &e), 0);
    assert_true(fabsf(o[0] - 1.5f) < 1e-5);
    for (int i = 0; i < MM_POOL_N_STATS; i++) {
        mm_pool_stat s;
        assert_int_equal(mm_pool_stat_parse(mm_pool_stat_name((mm_pool_stat)i), &s, &e), 0);
        assert_int_equal(s, i);
    }
}

/* The kernels alone: power_to_db floors, DCT orthonormality. */
static void test_kernels(void **st)
{
    float v[4] = {1.0f, 1e-3f, 0.0f, 1e-12f};
    mm_feat_power_to_db(v, 4, 1.0, 1e-10, 80.0);
    assert_true(v[0] == 0.0f && fabsf(v[1] + 30.0f) < 1e-4 && v[2] == -80.0f && v[3] == -80.0f);
    mm_err e = {0};
    float *d = mm_feat_dct_matrix(16, 16, &e);
    double worst = 0;
    for (int a = 0; a < 16; a++)
        for (int b = 0; b < 16; b++) {
            double s = 0;
            for (int k = 0; k < 16; k++) s += (double)d[a * 16 + k] * d[b * 16 + k];
            worst = fmax(worst, fabs(s - (a == b)));
        }
    printf("DCT-II ortho: max |D D^T - I| %.2g\n", worst);
    assert_true(worst < 1e-6);
    free(d);
}

/* compute is called from many threads at once by the extractor: results from
 * 2 threads equal the serial ones bit for bit. */
static void test_threads_deterministic(void **st)
{
    const mm_featset_vt *vt = mm_featset_find("music_paper");
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string("stats: [mean, std, skew, delta_std]\ntuning: estimate\n",
                                         "t.yaml", &c, &e), 0);
    void *s = NULL;
    assert_int_equal(vt->create(c, NULL, &s, &e), 0);
    enum { N = 6 };
    size_t n = 22050 * 2, dim = vt->dim(s);
    float *x[N], *serial = malloc(N * dim * sizeof(float)), *par = malloc(N * dim * sizeof(float));
    mm_rng r;
    for (int i = 0; i < N; i++) {
        x[i] = tone(n, 220.0 * (i + 1), 0.3, 22050);
        mm_rng_seed(&r, 11, (uint64_t)i, 0);
        for (size_t j = 0; j < n; j++) x[i][j] += (float)(0.01 * mm_rng_normal(&r));
        assert_int_equal(vt->compute(s, x[i], n, serial + i * dim, &e), 0);
    }
    int bad = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic) reduction(+ : bad)
    for (int i = 0; i < N; i++) {
        mm_err le = {0};
        bad += vt->compute(s, x[i], n, par + i * dim, &le) != 0;
    }
    assert_int_equal(bad, 0);
    assert_memory_equal(serial, par, N * dim * sizeof(float));
    for (int i = 0; i < N; i++) free(x[i]);
    free(serial);
    free(par);
    vt->free(s);
    mm_cfg_free(c);
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_fixture_clips),
        cmocka_unit_test(test_featsets_fixture),
        cmocka_unit_test(test_featset_layout),
        cmocka_unit_test(test_featset_config_errors),
        cmocka_unit_test(test_tone_440),
        cmocka_unit_test(test_tuning_estimate),
        cmocka_unit_test(test_click_tempo),
        cmocka_unit_test(test_noise_contrast),
        cmocka_unit_test(test_silence_and_short),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_threads_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
