/* test_audio.c — decoding, down-mix, resampling, trimming, crop/pad and every bad-input error.
 *
 * Fixtures: the tiny files in tests/fixtures/audio/ ( from tests/fixtures/audio/gen_audio.c) and
 * tests/fixtures/frontend_{trim,resample}.h5 (from tests/ref/gen_frontend.py: a numpy port of
 * librosa.effects.trim, torchaudio/scipy resamplers). Real-data checks skip without data. */
#include "testutil.h"
#include <sndfile.h>

#include "audio/audio.h"
#include "io/cfg.h"
#include "io/h5.h"

#define FX "tests/fixtures/audio/"

static float *read_f32(hid_t f, const char *name, size_t *n)
{
    mm_err e = {0};
    float *d = NULL;
    int r;
    hsize_t dims[4];
    if (mm_h5_read_f32(f, name, -1, &d, &r, dims, &e)) fail_msg("%s", e.msg);
    size_t t = 1;
    for (int i = 0; i < r; i++) t *= dims[i];
    if (n) *n = t;
    return d;
}

static int64_t read_i64_at(hid_t f, const char *name, size_t i)
{
    mm_err e = {0};
    int64_t *d = NULL;
    int r;
    hsize_t dims[4];
    if (mm_h5_read_i64(f, name, -1, &d, &r, dims, &e)) fail_msg("%s", e.msg);
    int64_t v = d[i];
    free(d);
    return v;
}

static void load_ok(const char *path, const mm_audio_opts *o, mm_audio *a)
{
    mm_err e = {0};
    int rc = mm_audio_load(path, o, a, &e);
    if (rc) fail_msg("%s", e.msg);
}

/* Decoding `path` from the file (data NULL) or from data[len] must fail with `code` and
 * a one-line message naming the file and containing `what`. */
static void decode_fails(const char *path, const void *data, size_t len, const mm_audio_opts *o,
                         int code, const char *what)
{
    mm_err e = {0};
    mm_audio a = {0};
    int rc = data ? mm_audio_load_memory(data, len, path, o, &a, &e) : mm_audio_load(path, o, &a, &e);
    printf("  %s -> %s\n", path, rc ? e.msg : "(no error)");
    assert_int_equal(rc, code);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, what));
    assert_null(strchr(e.msg, '\n'));
    assert_null(a.x);
}

static void load_fails(const char *path, const mm_audio_opts *o, int code, const char *what)
{
    decode_fails(path, NULL, 0, o, code, what);
}

static void test_decode_wav_stereo_downmix(void **st)
{
    (void)st;
    mm_audio a = {0};
    load_ok(FX "stereo.wav", NULL, &a);
    assert_int_equal(a.sr, 8000);
    assert_int_equal(a.orig_sr, 8000);
    assert_int_equal(a.orig_channels, 2);
    assert_int_equal(a.n, 2400);
    /* mean of L = 0.5 sin(440), R = 0.25 sin(660); each channel is 16-bit (±0.5 LSB) */
    double m = 0;
    for (size_t i = 0; i < a.n; i++) {
        double l = 0.5 * sin(2 * M_PI * 440 * i / 8000.0), r = 0.25 * sin(2 * M_PI * 660 * i / 8000.0);
        double d = fabs(a.x[i] - (l + r) / 2);
        if (d > m) m = d;
    }
    /* libsndfile writes float as round(x·32767) and reads PCM16 as v/32768: up to ~1 LSB
     * of scale error plus 0.5 LSB of rounding per channel, so allow 2 LSB. */
    printf("  stereo.wav down-mix max |err| = %.3g (tolerance 2/32768: PCM16 write/read)\n", m);
    assert_true(m <= 2.0 / 32768);
    mm_audio_free(&a);
}

static double rms_mid(const float *x, size_t n)
{
    double s = 0;
    size_t a = n / 4, b = 3 * n / 4;
    for (size_t i = a; i < b; i++) s += (double)x[i] * x[i];
    return sqrt(s / (double)(b - a));
}

static void test_decode_flac_ogg_mp3(void **st)
{
    (void)st;
    mm_audio a = {0};
    load_ok(FX "tone.flac", NULL, &a);
    assert_int_equal(a.sr, 16000);
    assert_int_equal(a.n, 4800);
    double m = 0;
    for (size_t i = 0; i < a.n; i++)
        m = fmax(m, fabs(a.x[i] - 0.5 * sin(2 * M_PI * 440 * i / 16000.0)));
    printf("  tone.flac max |err| = %.3g (lossless PCM16: <= 2/32768 as above)\n", m);
    assert_true(m <= 2.0 / 32768);
    mm_audio_free(&a);

    /* Lossy codecs: length and level, not samples. 0.5·sin has RMS 0.3536. */
    load_ok(FX "tone.ogg", NULL, &a);
    assert_int_equal(a.sr, 22050);
    assert_int_equal(a.n, 6615);
    double r = rms_mid(a.x, a.n);
    printf("  tone.ogg n=%zu rms=%.4f (expected 0.3536 ± 5%%)\n", a.n, r);
    assert_true(fabs(r - 0.35355) < 0.05 * 0.35355);
    mm_audio_free(&a);

    load_ok(FX "tone.mp3", NULL, &a);
    assert_int_equal(a.sr, 16000);
    r = rms_mid(a.x, a.n);
    printf("  tone.mp3 n=%zu rms=%.4f (expected n ≈ 4800, rms 0.3536 ± 10%%)\n", a.n, r);
    assert_true(a.n >= 4000 && a.n <= 7200);
    assert_true(fabs(r - 0.35355) < 0.10 * 0.35355);
    mm_audio_free(&a);
}

static void test_load_memory_equals_file(void **st)
{
    (void)st;
    const char *files[] = {FX "tone.flac", FX "tone.ogg", FX "tone.mp3", FX "stereo.wav"};
    for (size_t k = 0; k < 4; k++) {
        FILE *fp = fopen(files[k], "rb");
        assert_non_null(fp);
        static unsigned char buf[1 << 16];
        size_t len = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        mm_audio_opts o;
        mm_audio_opts_default(&o);
        o.target_sr = 16000;
        mm_audio a = {0}, b = {0};
        mm_err e = {0};
        load_ok(files[k], &o, &a);
        assert_int_equal(mm_audio_load_memory(buf, len, "upload", &o, &b, &e), 0);
        assert_int_equal(a.n, b.n);
        assert_int_equal(b.sr, 16000);
        assert_memory_equal(a.x, b.x, a.n * sizeof *a.x);
        mm_audio_free(&a);
        mm_audio_free(&b);
    }
    mm_err e = {0};
    mm_audio b = {0};
    assert_int_equal(mm_audio_load_memory("RIFFxxxx", 8, "upload.wav", NULL, &b, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "upload.wav"));
    assert_int_equal(mm_audio_load_memory("", 0, "upload.wav", NULL, &b, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "empty"));
}

static void test_bad_inputs(void **st)
{
    (void)st;
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    load_fails(FX "does_not_exist.wav", &o, MM_EIO, "no such file");
    load_fails(FX "empty.wav", &o, MM_EFORMAT, "empty file");
    load_fails(FX "garbage.wav", &o, MM_EFORMAT, "not a recognised audio file");
    load_fails(FX "truncated.flac", &o, MM_EFORMAT, "truncated");
    load_fails(FX "truncated.wav", &o, MM_EFORMAT, "truncated");
    load_fails(FX "badformat.aifc", &o, MM_EFORMAT, "unsupported sample format");
    load_fails(FX "badformat.wav", &o, MM_EFORMAT, "unsupported sample format");
    load_fails(FX "header_only.wav", &o, MM_EDATA, "no audio samples");
    load_fails(FX "float_nan.wav", &o, MM_EDATA, "sample 50 (channel 0) is NaN");
    /* found by fuzz_audio: a FLAC header promising 2.2e9 frames once made us allocate 61 GB */
    load_fails(FX "huge_header.flac", &o, MM_EFORMAT, "truncated");
    load_fails("tests/fixtures", &o, MM_EIO, "not a regular file");
    o.trim = 1;
    load_fails(FX "silent.wav", &o, MM_EDATA, "trims to nothing");
    o.trim = 0;
    o.min_seconds = 1.0;
    load_fails(FX "stereo.wav", &o, MM_EDATA, "expected at least 1 s");
    mm_audio_opts_default(&o);
    o.trim = 1;
    o.trim_hop = 0;
    load_fails(FX "stereo.wav", &o, MM_EINVAL, "bad audio options");
}

/* +inf is refused like NaN: float_nan.wav with its NaN bytes replaced by +inf, from memory. */
static void test_inf_sample_refused(void **st)
{
    (void)st;
    FILE *fp = fopen(FX "float_nan.wav", "rb");
    assert_non_null(fp);
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    int found = 0;
    for (size_t i = 0; i + 4 <= len; i++)
        if (buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 0xc0 && buf[i + 3] == 0x7f) {
            buf[i + 2] = 0x80;   /* 0x7fc00000 (NaN) → 0x7f800000 (+inf) */
            found = 1;
            break;
        }
    assert_true(found);
    mm_audio a = {0};
    mm_err e = {0};
    assert_int_equal(mm_audio_load_memory(buf, len, "inf.wav", NULL, &a, &e), MM_EDATA);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "inf.wav: sample 50 (channel 0) is inf"));
}

/* 16-bit PCM is read as integers and scaled here: the samples must equal libsndfile's own
 * float conversion bit for bit (stereo WAV, down-mixed as decode does; a mono RAVDESS FLAC
 * when the data is there). Metric: memcmp. */
static void test_pcm16_equals_float_read(void **st)
{
    (void)st;
    char flac[1024];
    const char *dr = tu_data_root();
    snprintf(flac, sizeof flac, "%s/ravdess/Actor_01/03-01-02-01-01-01-01.flac", dr ? dr : ".");
    const char *files[2] = {FX "stereo.wav", dr ? flac : NULL};
    for (int k = 0; k < 2 && files[k]; k++) {
        SF_INFO si;
        memset(&si, 0, sizeof si);
        SNDFILE *f = sf_open(files[k], SFM_READ, &si);
        assert_non_null(f);
        assert_int_equal(si.format & SF_FORMAT_SUBMASK, SF_FORMAT_PCM_16);
        float *all = malloc((size_t)si.frames * si.channels * sizeof *all);
        assert_int_equal(sf_readf_float(f, all, si.frames), si.frames);
        sf_close(f);
        float *ref = malloc((size_t)si.frames * sizeof *ref);
        for (sf_count_t i = 0; i < si.frames; i++) {
            float s = all[i * si.channels];
            for (int c = 1; c < si.channels; c++) s += all[i * si.channels + c];
            ref[i] = si.channels == 1 ? s : s / (float)si.channels;
        }
        mm_audio a = {0};
        load_ok(files[k], NULL, &a);
        assert_int_equal(a.n, (size_t)si.frames);
        assert_memory_equal(a.x, ref, a.n * sizeof *ref);
        printf("  %s: %zu samples equal to libsndfile's float read\n", files[k], a.n);
        mm_audio_free(&a);
        free(all), free(ref);
    }
}

static void test_trim_synthetic(void **st)
{
    (void)st;
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read("tests/fixtures/frontend_trim.h5", &f, &e)) fail_msg("%s", e.msg);
    int64_t nsyn;
    assert_int_equal(mm_h5_attr_get_i64(f, "n_synthetic", &nsyn, &e), 0);
    for (int i = 0; i < nsyn; i++) {
        char name[32];
        size_t n;
        snprintf(name, sizeof name, "sig%d", i);
        float *x = read_f32(f, name, &n);
        snprintf(name, sizeof name, "params%d", i);
        double *p;
        int r;
        hsize_t d[4];
        assert_int_equal(mm_h5_read_f64(f, name, 1, &p, &r, d, &e), 0);
        snprintf(name, sizeof name, "bounds%d", i);
        size_t s0 = (size_t)read_i64_at(f, name, 0), e0 = (size_t)read_i64_at(f, name, 1);
        size_t s, en;
        mm_trim_bounds(x, n, p[0], (int)p[1], (int)p[2], &s, &en);
        printf("  sig%d (n=%zu, top_db %g, frame %d, hop %d): ours [%zu, %zu), librosa [%zu, %zu)\n",
               i, n, p[0], (int)p[1], (int)p[2], s, en, s0, e0);
        assert_int_equal(s, s0);
        assert_int_equal(en, e0);
        free(x);
        free(p);
    }
    mm_h5_close(f);
    /* all zeros: librosa keeps everything (every frame is 0 dB of a zero reference) */
    float z[3000] = {0};
    size_t s, en;
    mm_trim_bounds(z, 3000, 60, 2048, 512, &s, &en);
    assert_int_equal(s, 0);
    assert_int_equal(en, 3000);
    mm_trim_bounds(z, 0, 60, 2048, 512, &s, &en);
    assert_int_equal(en, 0);
}

/* The old one-running-sum-per-frame rule (each frame's squares summed afresh), kept here as
 * the reference for the block-sum implementation. */
static void naive_trim(const float *x, size_t n, double top_db, int frame, int hop, size_t *start,
                       size_t *end)
{
    *start = *end = 0;
    size_t half = (size_t)frame / 2, padded = n + 2 * half;
    if (n == 0 || padded < (size_t)frame) return;
    size_t nf = 1 + (padded - (size_t)frame) / (size_t)hop;
    double *ms = malloc(nf * sizeof *ms), ref = 0;
    for (size_t t = 0; t < nf; t++) {
        long long a = (long long)(t * (size_t)hop) - (long long)half, b = a + frame;
        if (a < 0) a = 0;
        if (b > (long long)n) b = (long long)n;
        double s = 0;
        for (long long i = a; i < b; i++) s += (double)x[i] * x[i];
        ms[t] = s / frame;
        if (ms[t] > ref) ref = ms[t];
    }
    double ref_db = 10.0 * log10(ref > 1e-10 ? ref : 1e-10);
    size_t first = nf, last = 0;
    for (size_t t = 0; t < nf; t++)
        if (10.0 * log10(ms[t] > 1e-10 ? ms[t] : 1e-10) - ref_db > -top_db) {
            if (first == nf) first = t;
            last = t;
        }
    free(ms);
    if (first == nf) return;
    *start = first * (size_t)hop < n ? first * (size_t)hop : n;
    *end = (last + 1) * (size_t)hop < n ? (last + 1) * (size_t)hop : n;
}

/* Trim computes each sample's square once, into blocks of gcd(hop, frame/2, frame) samples:
 * the bounds must equal the per-frame rule's for odd frames, hops that do not divide the
 * frame, signals shorter than a frame, and quiet/loud/quiet shapes (bounds are integers:
 * metric exact equality). */
static void test_trim_blocks_equal_per_frame(void **st)
{
    (void)st;
    static const int cfg[][2] = {{2048, 512}, {2048, 500}, {1023, 256}, {1024, 1024}, {7, 3},
                                 {1, 1}, {4096, 4096}, {300, 128}};
    uint64_t r = 88172645463325252ull;
    int checked = 0;
    for (int len = 1; len <= 20000; len = len * 3 + 7)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
            for (int shape = 0; shape < 3; shape++) {
                float *x = malloc((size_t)len * sizeof *x);
                for (int i = 0; i < len; i++) {
                    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                    float u = (float)((r >> 40) / 16777216.0) - 0.5f;
                    int loud = shape == 0 || (i > len / 3 && i < 2 * len / 3);
                    x[i] = shape == 2 && !loud ? 0.0f : u * (loud ? 1.0f : 1e-4f);
                }
                size_t s0, e0, s1, e1;
                naive_trim(x, (size_t)len, 60, cfg[c][0], cfg[c][1], &s0, &e0);
                mm_trim_bounds(x, (size_t)len, 60, cfg[c][0], cfg[c][1], &s1, &e1);
                if (s0 != s1 || e0 != e1)
                    fail_msg("n=%d frame %d hop %d shape %d: blocks [%zu, %zu), per frame [%zu, %zu)",
                             len, cfg[c][0], cfg[c][1], shape, s1, e1, s0, e0);
                checked++;
                free(x);
            }
    printf("  %d signals: block-sum trim bounds equal the per-frame rule's\n", checked);
}

/* Real RAVDESS clips at 48 kHz: FLAC decodes bit-identically in libsndfile and torchaudio, so
 * the decoded, down-mixed samples must be equal and the trim bounds identical. */
static void test_real_ravdess_decode_and_trim(void **st)
{
    (void)st;
    const char *root = tu_data_root();
    if (!root) skip();
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read("tests/fixtures/frontend_trim.h5", &f, &e)) fail_msg("%s", e.msg);
    const char *names[] = {"speech", "stereo"};
    for (int k = 0; k < 2; k++) {
        char key[64], *rel, path[1024];
        snprintf(key, sizeof key, "%s_path", names[k]);
        assert_int_equal(mm_h5_attr_get_str(f, key, &rel, &e), 0);
        snprintf(path, sizeof path, "%s/%s", root, rel);
        free(rel);
        mm_audio a = {0};
        load_ok(path, NULL, &a);
        snprintf(key, sizeof key, "%s_n", names[k]);
        assert_int_equal(a.n, (size_t)read_i64_at(f, key, 0));
        snprintf(key, sizeof key, "%s_channels", names[k]);
        assert_int_equal(a.orig_channels, (int)read_i64_at(f, key, 0));
        snprintf(key, sizeof key, "%s_head", names[k]);
        size_t nh;
        float *head = read_f32(f, key, &nh);
        double m = tu_max_abs_diff(a.x + 48000, head, nh);
        printf("  %s: n=%zu ch=%d, decoded samples vs torchaudio max |diff| = %g (must be 0)\n",
               names[k], a.n, a.orig_channels, m);
        assert_true(m == 0);
        free(head);
        snprintf(key, sizeof key, "%s_bounds", names[k]);
        size_t s, en, s0 = (size_t)read_i64_at(f, key, 0), e0 = (size_t)read_i64_at(f, key, 1);
        mm_trim_bounds(a.x, a.n, 60, 2048, 512, &s, &en);
        printf("  %s trim: ours [%zu, %zu), librosa [%zu, %zu)\n", names[k], s, en, s0, e0);
        assert_int_equal(s, s0);
        assert_int_equal(en, e0);
        /* trim through the loader gives the same samples */
        mm_audio_opts o;
        mm_audio_opts_default(&o);
        o.trim = 1;
        mm_audio t = {0};
        load_ok(path, &o, &t);
        assert_int_equal(t.n, e0 - s0);
        assert_memory_equal(t.x, a.x + s0, t.n * sizeof *t.x);
        mm_audio_free(&t);
        mm_audio_free(&a);
    }
    mm_h5_close(f);
}

static double snr_db(const float *ref, const float *y, size_t a, size_t b, double *maxdiff)
{
    double s = 0, d = 0, m = 0;
    for (size_t i = a; i < b; i++) {
        s += (double)ref[i] * ref[i];
        double q = (double)y[i] - ref[i];
        d += q * q;
        if (fabs(q) > m) m = fabs(q);
    }
    *maxdiff = m;
    return 10 * log10(s / (d > 0 ? d : 1e-300));
}

/* soxr HQ against torchaudio's windowed-sinc and scipy's polyphase resamplers on the same 48 kHz
 * speech segment. The three filters differ (pass-band edge, stop-band, phase of the
 * transition band), so the comparison is loose: SNR over the interior (edges excluded, where
 * each resampler pads differently) must exceed 35 dB. Measured 43–49 dB. */
static void test_resample_vs_references(void **st)
{
    (void)st;
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read("tests/fixtures/frontend_resample.h5", &f, &e)) fail_msg("%s", e.msg);
    size_t n;
    float *x = read_f32(f, "x48k", &n);
    const int rates[2] = {16000, 32000};
    const char *refs[2][2] = {{"torchaudio_16k", "scipy_16k"}, {"torchaudio_32k", "scipy_32k"}};
    for (int k = 0; k < 2; k++) {
        float *y;
        size_t ny;
        assert_int_equal(mm_resample(x, n, 48000, rates[k], &y, &ny, &e), 0);
        for (int j = 0; j < 2; j++) {
            size_t nr;
            float *ref = read_f32(f, refs[k][j], &nr);
            assert_int_equal(ny, nr);
            size_t edge = (size_t)rates[k] / 100;   /* 10 ms */
            double md, snr = snr_db(ref, y, edge, ny - edge, &md);
            printf("  48k -> %d vs %s: SNR %.1f dB, max |diff| %.4f (peak %.3f)\n", rates[k],
                   refs[k][j], snr, md, tu_max_abs(ref, nr));
            assert_true(snr > 35.0);
            free(ref);
        }
        free(y);
    }
    float *y;
    size_t ny;
    assert_int_equal(mm_resample(x, 10, 48000, 48000, &y, &ny, &e), 0);
    assert_int_equal(ny, 10);
    assert_memory_equal(x, y, 10 * sizeof *x);
    free(y);
    assert_int_equal(mm_resample(x, 10, 0, 16000, &y, &ny, &e), MM_EINVAL);
    free(x);
    mm_h5_close(f);
}

static void test_resample_on_load(void **st)
{
    (void)st;
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.target_sr = 16000;
    mm_audio a = {0};
    load_ok(FX "stereo.wav", &o, &a);
    assert_int_equal(a.sr, 16000);
    assert_int_equal(a.orig_sr, 8000);
    assert_int_equal(a.n, 4800);
    assert_true(fabs(a.orig_seconds - 0.3) < 1e-9);
    mm_audio_free(&a);
}

/* Goertzel power of x at frequency f (Hz) for rate sr. */
static double tone_power(const float *x, size_t n, double f, int sr)
{
    double w = 2 * M_PI * f / sr, c = 2 * cos(w), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + c * s1 - s2;
        s2 = s1, s1 = s0;
    }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
}

/* Speed perturbation (data augmentation): a 1 s, 440 Hz tone at 16 kHz
 * played 1.25 times faster is 0.8 s of a 550 Hz tone at 16 kHz (the
 * definition: resampled to 12.8 kHz, read at 16 kHz). Checked: length
 * 12800 ± 2 samples, the 550 Hz Goertzel power > 1000 × the 440 Hz one,
 * and the default (speed 1) unchanged. speed outside 0.5..2 refused. */
static void test_speed_perturbation(void **st)
{
    (void)st;
    const char *path = "/tmp/mm_test_speed.wav";
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    float x[16000];
    for (int i = 0; i < 16000; i++) x[i] = 0.5f * (float)sin(2 * M_PI * 440.0 * i / 16000.0);
    sf_writef_float(f, x, 16000);
    sf_close(f);
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.target_sr = 16000;
    o.speed = 1.25;
    mm_audio a = {0};
    load_ok(path, &o, &a);
    assert_int_equal(a.sr, 16000);
    printf("# speed 1.25: %zu samples; power at 550 / 440 Hz: %.3g\n", a.n,
           tone_power(a.x + 1000, a.n - 2000, 550, 16000) / tone_power(a.x + 1000, a.n - 2000, 440, 16000));
    assert_true(a.n >= 12798 && a.n <= 12802);
    assert_true(tone_power(a.x + 1000, a.n - 2000, 550, 16000) > 1000 * tone_power(a.x + 1000, a.n - 2000, 440, 16000));
    mm_audio_free(&a);
    o.speed = 1.0;
    load_ok(path, &o, &a);
    assert_int_equal(a.n, 16000);
    assert_memory_equal(a.x, x, sizeof x);
    mm_audio_free(&a);
    o.speed = 3.0;
    mm_err e = {0};
    assert_int_equal(mm_audio_load(path, &o, &a, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "speed"));
    mm_cfg *c;
    assert_int_equal(mm_cfg_parse_string("speed: 0.2\n", "a.yaml", &c, &e), 0);
    mm_audio_opts_default(&o);
    assert_int_not_equal(mm_audio_opts_from_cfg(c, &o, &e), 0);
    assert_non_null(strstr(e.msg, "a.yaml:1"));
    mm_cfg_free(c);
    unlink(path);
}

static void test_crop_pad_normalize(void **st)
{
    (void)st;
    mm_audio base = {0}, a = {0};
    load_ok(FX "stereo.wav", NULL, &base);   /* 2400 samples at 8 kHz */
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.fixed_seconds = 0.5;                    /* pad to 4000 at the end */
    load_ok(FX "stereo.wav", &o, &a);
    assert_int_equal(a.n, 4000);
    assert_memory_equal(a.x, base.x, 2400 * sizeof *a.x);
    assert_true(a.x[2400] == 0 && a.x[3999] == 0);
    mm_audio_free(&a);
    o.fixed_center = 1;                       /* centred pad: 800 zeros each side */
    load_ok(FX "stereo.wav", &o, &a);
    assert_int_equal(a.n, 4000);
    assert_memory_equal(a.x + 800, base.x, 2400 * sizeof *a.x);
    assert_true(a.x[799] == 0 && a.x[3200] == 0);
    mm_audio_free(&a);
    o.fixed_seconds = 0.1;                    /* centred crop to 800: offset 800 */
    load_ok(FX "stereo.wav", &o, &a);
    assert_int_equal(a.n, 800);
    assert_memory_equal(a.x, base.x + 800, 800 * sizeof *a.x);
    mm_audio_free(&a);
    o.fixed_center = 0;
    o.peak_normalize = 1;
    load_ok(FX "stereo.wav", &o, &a);
    assert_int_equal(a.n, 800);
    assert_true(fabs(tu_max_abs(a.x, a.n) - 1.0) < 1e-6);
    mm_audio_free(&a);
    mm_audio_free(&base);
    mm_audio_free(NULL);
}

static void test_opts_from_cfg(void **st)
{
    (void)st;
    mm_err e = {0};
    mm_cfg *c;
    assert_int_equal(mm_cfg_parse_string("trim: true\ntrim_top_db: 40\ntrim_frame: 1024\n"
                                         "trim_hop: 256\nfixed_seconds: 2.5\nfixed_center: true\n"
                                         "peak_normalize: true\nmin_seconds: 0.5\n",
                                         "audio.yaml", &c, &e), 0);
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.target_sr = 16000;
    assert_int_equal(mm_audio_opts_from_cfg(c, &o, &e), 0);
    assert_int_equal(o.trim, 1);
    assert_true(o.trim_top_db == 40);
    assert_int_equal(o.trim_frame, 1024);
    assert_int_equal(o.trim_hop, 256);
    assert_true(o.fixed_seconds == 2.5);
    assert_int_equal(o.fixed_center, 1);
    assert_int_equal(o.peak_normalize, 1);
    assert_true(o.min_seconds == 0.5);
    assert_int_equal(o.target_sr, 16000);
    char buf[512];
    assert_non_null(strstr(mm_audio_opts_describe(&o, buf, sizeof buf), "trim_top_db: 40"));
    mm_cfg_free(c);
    assert_int_equal(mm_cfg_parse_string("trim: true\nbogus: 1\n", "audio.yaml", &c, &e), 0);
    assert_int_not_equal(mm_audio_opts_from_cfg(c, &o, &e), 0);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "bogus"));
    mm_cfg_free(c);
    assert_int_equal(mm_cfg_parse_string("trim_hop: 0\n", "audio.yaml", &c, &e), 0);
    mm_audio_opts_default(&o);
    assert_int_not_equal(mm_audio_opts_from_cfg(c, &o, &e), 0);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "audio.yaml:1"));
    assert_non_null(strstr(e.msg, "trim_hop"));
    assert_int_equal(o.trim_hop, 512);        /* untouched on error */
    mm_cfg_free(c);
    assert_int_equal(mm_audio_opts_from_cfg(NULL, &o, &e), 0);
}

/* 4Q music is MP3 (libsndfile + mpg123), mostly stereo at 32 or 22.05 kHz. */
static void test_real_mp3(void **st)
{
    (void)st;
    const char *root = tu_data_root();
    if (!root) skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/music-4q/Q1/MT0000040632.mp3", root);
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.target_sr = 16000;
    mm_audio a = {0};
    load_ok(path, &o, &a);
    printf("  %s: %d Hz, %d ch, %.3f s -> %zu samples at 16 kHz\n", path, a.orig_sr,
           a.orig_channels, a.orig_seconds, a.n);
    assert_int_equal(a.orig_sr, 32000);
    assert_int_equal(a.orig_channels, 2);
    assert_true(a.orig_seconds > 9.9 && a.orig_seconds < 10.1);
    assert_true(a.n > 158000 && a.n < 162000);
    assert_true(rms_mid(a.x, a.n) > 0.01);
    mm_audio_free(&a);
}

/* A canonical WAV in memory: 44-byte header (format tag 1 = PCM, 3 = float) + data. */
static unsigned char *wav_bytes(int tag, int ch, int sr, int bits, const void *data,
                                uint32_t data_bytes, size_t *len)
{
    unsigned char *h = malloc(44 + (size_t)data_bytes);
    assert_non_null(h);
    uint32_t v;
    uint16_t s;
    memcpy(h, "RIFF", 4);
    v = 36 + data_bytes; memcpy(h + 4, &v, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    v = 16; memcpy(h + 16, &v, 4);
    s = (uint16_t)tag; memcpy(h + 20, &s, 2);
    s = (uint16_t)ch; memcpy(h + 22, &s, 2);
    v = (uint32_t)sr; memcpy(h + 24, &v, 4);
    v = (uint32_t)sr * (uint32_t)(ch * bits / 8); memcpy(h + 28, &v, 4);
    s = (uint16_t)(ch * bits / 8); memcpy(h + 32, &s, 2);
    s = (uint16_t)bits; memcpy(h + 34, &s, 2);
    memcpy(h + 36, "data", 4);
    memcpy(h + 40, &data_bytes, 4);
    memcpy(h + 44, data, data_bytes);
    *len = 44 + (size_t)data_bytes;
    return h;
}

/* A 7 KB WAV at 1 Hz once decoded and resampled to an hour of audio (450 MB): rates
 * below 8 kHz are refused; so is a signal that would resample past 2^28 samples. */
static void test_rate_and_length_limits(void **st)
{
    (void)st;
    size_t n = 3600, len;
    int16_t *pcm = calloc(2200000, sizeof *pcm);
    for (size_t i = 0; i < 2200000; i++) pcm[i] = (int16_t)((i * 37) % 2000 - 1000);
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.target_sr = 32000;
    unsigned char *w = wav_bytes(1, 1, 1, 16, pcm, (uint32_t)(n * 2), &len);
    decode_fails("one_hz.wav", w, len, &o, MM_EFORMAT, "sample rate 1 Hz; expected 8000 to 1000000 Hz");
    free(w);
    w = wav_bytes(1, 1, 7999, 16, pcm, (uint32_t)(n * 2), &len);
    decode_fails("low.wav", w, len, &o, MM_EFORMAT, "sample rate 7999 Hz");
    free(w);
    w = wav_bytes(1, 1, 8000, 16, pcm, (uint32_t)(n * 2), &len);
    mm_audio a = {0};
    mm_err e = {0};
    assert_int_equal(mm_audio_load_memory(w, len, "ok.wav", &o, &a, &e), 0);
    assert_int_equal(a.n, n * 4);
    mm_audio_free(&a);
    free(w);
    /* 2.2 M samples at 8 kHz (275 s, allowed) to 1 MHz would be 2.75e8 > 2^28 samples */
    w = wav_bytes(1, 1, 8000, 16, pcm, 2200000u * 2, &len);
    o.target_sr = 1000000;
    decode_fails("long.wav", w, len, &o, MM_EDATA, "resample to more than 268435456 at 1000000 Hz");
    free(w);
    free(pcm);
}

/* Float samples of 3e38 are finite but overflow every sum and power downstream (NaN in
 * the log-mel, read as silence): samples beyond ±64 are refused like NaN; a loud but
 * sane float file (peaks of 2) decodes unchanged. */
static void test_float_range(void **st)
{
    (void)st;
    float x[2 * 8000];
    for (int i = 0; i < 2 * 8000; i++) x[i] = 0.5f * sinf(0.01f * (float)i);
    x[21] = 2.0f;
    size_t len;
    unsigned char *w = wav_bytes(3, 2, 8000, 32, x, sizeof x, &len);
    mm_audio a = {0};
    mm_err e = {0};
    assert_int_equal(mm_audio_load_memory(w, len, "loud.wav", NULL, &a, &e), 0);
    assert_true(a.x[10] == (x[20] + x[21]) / 2);
    mm_audio_free(&a);
    free(w);
    x[21] = 3e38f;
    w = wav_bytes(3, 2, 8000, 32, x, sizeof x, &len);
    decode_fails("huge.wav", w, len, NULL, MM_EDATA, "huge.wav: sample 10 (channel 1) is 3e+38; expected finite samples within +-64");
    free(w);
    x[21] = -65.0f;
    w = wav_bytes(3, 2, 8000, 32, x, sizeof x, &len);
    decode_fails("minus65.wav", w, len, NULL, MM_EDATA, "sample 10 (channel 1) is -65;");
    free(w);
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_wav_stereo_downmix),
        cmocka_unit_test(test_decode_flac_ogg_mp3),
        cmocka_unit_test(test_load_memory_equals_file),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_inf_sample_refused),
        cmocka_unit_test(test_rate_and_length_limits),
        cmocka_unit_test(test_float_range),
        cmocka_unit_test(test_pcm16_equals_float_read),
        cmocka_unit_test(test_trim_synthetic),
        cmocka_unit_test(test_trim_blocks_equal_per_frame),
        cmocka_unit_test(test_real_ravdess_decode_and_trim),
        cmocka_unit_test(test_resample_vs_references),
        cmocka_unit_test(test_resample_on_load),
        cmocka_unit_test(test_speed_perturbation),
        cmocka_unit_test(test_crop_pad_normalize),
        cmocka_unit_test(test_opts_from_cfg),
        cmocka_unit_test(test_real_mp3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
