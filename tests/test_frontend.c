/* test_frontend.c — STFT, mel filterbanks, the three log-mel front ends, logmel_stats and
 * `melodic spectrogram`, against tests/fixtures/frontend_*.h5 (tests/ref/gen_frontend.py:
 * torch.stft, torchaudio melscale_fbanks / kaldi get_mel_banks, torchlibrosa-equivalent
 * Cnn14 log-mel, EfficientAT AugmentMelSTFT eval). */
#include "testutil.h"

#include <omp.h>

#include "audio/audio.h"
#include "dsp/frontend.h"
#include "dsp/mel.h"
#include "dsp/stft.h"
#include "features/featset.h"
#include "io/cfg.h"
#include "io/h5.h"

static hid_t open_fx(const char *path)
{
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read(path, &f, &e)) fail_msg("%s", e.msg);
    return f;
}

/* Reads a float dataset; rows/cols of a rank-2 one (cols = 1 for rank 1). */
static float *read_f32(hid_t f, const char *name, size_t *rows, size_t *cols)
{
    mm_err e = {0};
    float *d = NULL;
    int r;
    hsize_t dims[4] = {0, 1, 1, 1};
    if (mm_h5_read_f32(f, name, -1, &d, &r, dims, &e)) fail_msg("%s", e.msg);
    if (rows) *rows = r >= 1 ? dims[0] : 1;
    if (cols) *cols = r >= 2 ? dims[1] : 1;
    return d;
}

static double max_rel(const float *a, const float *b, size_t n)
{
    return tu_max_abs_diff(a, b, n) / fmax(tu_max_abs(b, n), 1e-30);
}

/* Filterbanks: torch evaluates the same formulas in float32 (linspace, log, slopes), we in
 * double; differences are float32 rounding of the slopes, amplified at most by f/Δf near the
 * triangle edges. Tolerance: max |diff| ≤ 1e-4 of the matrix's largest weight. */
static void test_filterbanks(void **st)
{
    (void)st;
    hid_t f = open_fx("tests/fixtures/frontend_fbanks.h5");
    struct {
        const char *name;
        int sr, n_fft, n_mels, kaldi, htk, norm;
        double fmin, fmax;
    } cases[] = {
        {"slaney_16k_512_64_50_8000", 16000, 512, 64, 0, 0, 1, 50, 8000},
        {"slaney_32k_1024_64_50_14000", 32000, 1024, 64, 0, 0, 1, 50, 14000},
        {"htk_16k_512_40_0_8000_nonorm", 16000, 512, 40, 0, 1, 0, 0, 8000},
        {"kaldi_32k_1024_128_0_15000", 32000, 1024, 128, 1, 0, 0, 0, 15000},
    };
    mm_err e = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t r, c;
        float *ref = read_f32(f, cases[i].name, &r, &c);
        assert_int_equal(r, (size_t)cases[i].n_mels);
        assert_int_equal(c, (size_t)cases[i].n_fft / 2 + 1);
        float *fb = NULL;
        int rc = cases[i].kaldi
                     ? mm_mel_filterbank_kaldi(cases[i].sr, cases[i].n_fft, cases[i].n_mels,
                                               cases[i].fmin, cases[i].fmax, &fb, &e)
                     : mm_mel_filterbank(cases[i].sr, cases[i].n_fft, cases[i].n_mels,
                                         cases[i].fmin, cases[i].fmax, cases[i].htk,
                                         cases[i].norm, &fb, &e);
        assert_int_equal(rc, 0);
        double m = max_rel(fb, ref, r * c);
        printf("  %-30s max |diff| / max = %.3g (tolerance 1e-4)\n", cases[i].name, m);
        assert_true(m <= 1e-4);
        if (cases[i].kaldi)
            for (size_t k = 0; k < r; k++) assert_true(fb[k * c + c - 1] == 0.0f);  /* Nyquist */
        free(fb);
        free(ref);
    }
    mm_h5_close(f);
    float *fb;
    assert_int_equal(mm_mel_filterbank(16000, 512, 64, 50, 9000, 0, 1, &fb, &e), MM_EINVAL);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "fmax 9000"));
    assert_int_equal(mm_mel_filterbank_kaldi(16000, 512, 0, 0, 8000, &fb, &e), MM_EINVAL);
}

/* STFT against torch.stft: float32 FFTs with different algorithms agree to ~1e-6 of the
 * largest bin; tolerance 1e-5 of the maximum. Windows: exact formula, float rounding only. */
static void test_stft_vs_torch(void **st)
{
    (void)st;
    hid_t f = open_fx("tests/fixtures/frontend_stft.h5");
    size_t n, r, c;
    float *x = read_f32(f, "x", &n, NULL);
    float w[1024] = {0};
    float *ref = read_f32(f, "hann_periodic_512", &r, NULL);
    mm_window_hann(w, 512, 1);
    double m = tu_max_abs_diff(w, ref, 512);
    free(ref);
    ref = read_f32(f, "hann_symmetric_800", &r, NULL);
    mm_window_hann(w, 800, 0);
    m = fmax(m, tu_max_abs_diff(w, ref, 800));
    free(ref);
    printf("  Hann windows max |diff| = %.3g (tolerance 1e-6)\n", m);
    assert_true(m <= 1e-6);

    struct {
        const char *name;
        int n_fft, hop, center, win800, mag;
        mm_pad_mode pad;
    } cases[] = {
        {"power_512_160_reflect", 512, 160, 1, 0, 0, MM_PAD_REFLECT},
        {"mag_1024_320_win800_reflect", 1024, 320, 1, 1, 1, MM_PAD_REFLECT},
        {"power_400_100_constant", 400, 100, 1, 0, 0, MM_PAD_CONSTANT},
        {"power_256_128_nocenter", 256, 128, 0, 0, 0, MM_PAD_REFLECT},
    };
    mm_err e = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ref = read_f32(f, cases[i].name, &r, &c);
        const float *win = NULL;
        memset(w, 0, sizeof w);
        if (cases[i].win800) {
            mm_window_hann(w + 112, 800, 0);
            win = w;
        }
        mm_stft *s;
        assert_int_equal(mm_stft_create(cases[i].n_fft, cases[i].hop, win, cases[i].center,
                                        cases[i].pad, &s, &e), 0);
        assert_int_equal(mm_stft_n_frames(s, n), r);
        assert_int_equal(mm_stft_n_bins(s), (int)c);
        float *out = malloc(r * c * sizeof *out);
        int rc = cases[i].mag ? mm_stft_magnitude(s, x, n, out, &e) : mm_stft_power(s, x, n, out, &e);
        assert_int_equal(rc, 0);
        m = max_rel(out, ref, r * c);
        printf("  %-28s (%zu x %zu) max |diff| / max = %.3g (tolerance 1e-5)\n", cases[i].name, r,
               c, m);
        assert_true(m <= 1e-5);
        if (!cases[i].mag) {   /* a range of frames equals the same rows of the full STFT */
            float *part = malloc(4 * c * sizeof *part);
            assert_int_equal(mm_stft_power_frames(s, x, n, r - 3, r + 1, part, &e), 0);
            assert_memory_equal(part, out + (r - 3) * c, 3 * c * sizeof *part);
            assert_int_equal(mm_stft_power_frames(s, x, n, r, r + 1, part, &e), MM_EINVAL);
            free(part);
        }
        free(out);
        free(ref);
        mm_stft_free(s);
    }
    /* too short for reflect padding, and no frame without centring */
    mm_stft *s;
    assert_int_equal(mm_stft_create(512, 160, NULL, 1, MM_PAD_REFLECT, &s, &e), 0);
    float tmp[257 * 4];
    assert_int_equal(mm_stft_power(s, x, 200, tmp, &e), MM_EDATA);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "reflect"));
    mm_stft_free(s);
    assert_int_equal(mm_stft_create(512, 160, NULL, 0, MM_PAD_REFLECT, &s, &e), 0);
    assert_int_equal(mm_stft_n_frames(s, 511), 0);
    assert_int_equal(mm_stft_power(s, x, 511, tmp, &e), MM_EDATA);
    mm_stft_free(s);
    assert_int_equal(mm_stft_create(512, 0, NULL, 1, MM_PAD_REFLECT, &s, &e), MM_EINVAL);
    mm_stft_free(NULL);
    free(x);
    mm_h5_close(f);
}

/* Log-mel front ends on the stored (torchaudio-resampled) waveforms.
 * cnn14*: dB of a power mel. Our float32 FFT and torch's differ by ~1e-7 of the frame's
 * peak in every bin: ~1e-5 dB for strong bands, but cells 100+ dB below the clip's maximum
 * (e.g. above an MP3 encoder's low-pass) are themselves near the float32 round-off floor.
 * Tolerance: 0.01 dB for cells within 90 dB of the clip maximum, 0.5 dB below that.
 * mn04: log(x + 1e-5)/5 units; the 1e-5 floor bounds the sensitivity: tolerance 1e-4. */
static void check_clip(const char *clip)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/frontend_%s.h5", clip);
    hid_t f = open_fx(path);
    struct {
        mm_frontend_kind kind;
        const char *wave, *ref;
        double tol;
    } cases[] = {
        {MM_FE_CNN14_16K, "wave_16k", "logmel_cnn14_16k", 0.01},
        {MM_FE_CNN14, "wave_32k", "logmel_cnn14", 0.01},
        {MM_FE_MN04, "wave_32k", "logmel_mn04", 1e-4},
    };
    mm_err e = {0};
    for (size_t i = 0; i < 3; i++) {
        size_t n, r, c;
        float *x = read_f32(f, cases[i].wave, &n, NULL);
        float *ref = read_f32(f, cases[i].ref, &r, &c);
        mm_frontend *fe;
        assert_int_equal(mm_frontend_create(cases[i].kind, &fe, &e), 0);
        assert_int_equal(mm_frontend_n_frames(fe, n), r);
        assert_int_equal(mm_frontend_n_mels(fe), (int)c);
        float *out = malloc(r * c * sizeof *out);
        assert_int_equal(mm_frontend_compute(fe, x, n, out, &e), 0);
        int db = cases[i].kind != MM_FE_MN04;
        double top = -INFINITY, m = 0, m_low = 0, mean = 0;
        for (size_t k = 0; k < r * c; k++) top = fmax(top, ref[k]);
        for (size_t k = 0; k < r * c; k++) {
            double d = fabs((double)out[k] - ref[k]);
            if (isnan(d)) d = INFINITY;
            if (db && ref[k] < top - 90) m_low = fmax(m_low, d);
            else m = fmax(m, d);
            mean += d;
        }
        mean /= (double)(r * c);
        printf("  %-7s %-10s (%3zu x %3zu): max |diff| %.3g (tolerance %g), mean %.3g", clip,
               mm_frontend_kind_name(cases[i].kind), r, c, m, cases[i].tol, mean);
        if (db) printf(", cells > 90 dB down: max |diff| %.3g dB (tolerance 0.5)", m_low);
        printf("\n");
        assert_true(m <= cases[i].tol);
        assert_true(m_low <= 0.5);
        free(out);
        free(ref);
        free(x);
        mm_frontend_free(fe);
    }
    mm_h5_close(f);
}

static void test_frontend_speech(void **st) { (void)st; check_clip("speech"); }
static void test_frontend_stereo(void **st) { (void)st; check_clip("stereo"); }
static void test_frontend_music(void **st) { (void)st; check_clip("music"); }

/* The same front end from several threads gives bit-identical output. */
static void test_frontend_threads(void **st)
{
    (void)st;
    hid_t f = open_fx("tests/fixtures/frontend_music.h5");
    size_t n;
    float *x = read_f32(f, "wave_32k", &n, NULL);
    mm_h5_close(f);
    mm_err e = {0};
    mm_frontend *fe;
    assert_int_equal(mm_frontend_create(MM_FE_MN04, &fe, &e), 0);
    size_t nf = mm_frontend_n_frames(fe, n), sz = nf * 128;
    float *serial = malloc(sz * sizeof *serial), *par = malloc(8 * sz * sizeof *par);
    assert_int_equal(mm_frontend_compute(fe, x, n, serial, &e), 0);
    int fails = 0;
#pragma omp parallel for num_threads(2) reduction(+ : fails)
    for (int k = 0; k < 8; k++) {
        mm_err le = {0};
        fails += mm_frontend_compute(fe, x, n, par + (size_t)k * sz, &le) != 0;
    }
    assert_int_equal(fails, 0);
    for (int k = 0; k < 8; k++) assert_memory_equal(serial, par + (size_t)k * sz, sz * sizeof *par);
    free(serial);
    free(par);
    free(x);
    mm_frontend_free(fe);
}

/* mm_frontend_compute_frames: any frame range of a clip equals that slice of the whole-clip
 * log-mel bit for bit (each frame is computed the same way; the pre-emphasis is only computed
 * where the range reads, reflected ends included). Clips from one frame's worth of samples to
 * 3.5 s, ranges of one frame at either end, 32-frame blocks, ragged splits. Metric: memcmp. */
static void test_frontend_frame_ranges(void **st)
{
    (void)st;
    mm_err e = {0};
    const mm_frontend_kind kinds[2] = {MM_FE_MN04, MM_FE_CNN14};
    const size_t lens[5] = {600, 1025, 2000, 9999, 113000};
    uint64_t r = 3;
    int checked = 0;
    for (int kk = 0; kk < 2; kk++) {
        mm_frontend *fe;
        assert_int_equal(mm_frontend_create(kinds[kk], &fe, &e), 0);
        for (int li = 0; li < 5; li++) {
            size_t n = lens[li], nf = mm_frontend_n_frames(fe, n);
            float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
            float *whole = malloc(nf * 128 * 4), *part = malloc(nf * 128 * 4);
            for (size_t i = 0; i < n; i++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                x[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
                y[i] = i % 2 ? 3e38f : -3e38f;   /* pre-emphasis overflows: inf in stale buffers */
            }
            int nm = mm_frontend_n_mels(fe);
            assert_int_equal(mm_frontend_compute(fe, x, n, whole, &e), 0);
            size_t cuts[][2] = {{0, 1}, {nf - 1, nf}, {0, nf}, {0, 32}, {32, 64}, {nf / 3, nf / 2 + 1},
                                {1, nf}, {nf / 2, nf + 50}};
            for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
                size_t t0 = cuts[c][0], t1 = cuts[c][1] < nf ? cuts[c][1] : nf;
                if (t0 >= t1) continue;
                /* another clip of the same length first: a buffer the ranged call gets back
                 * from malloc then holds other samples, so unread-but-needed values show */
                assert_int_equal(mm_frontend_compute(fe, y, n, part, &e), 0);
                memset(part, 0xff, nf * 128 * 4);
                assert_int_equal(mm_frontend_compute_frames(fe, x, n, t0, cuts[c][1], part, &e), 0);
                if (memcmp(part, whole + t0 * (size_t)nm, (t1 - t0) * (size_t)nm * 4))
                    fail_msg("%s n=%zu frames [%zu, %zu): differs from the whole clip's",
                             mm_frontend_kind_name(kinds[kk]), n, t0, t1);
                checked++;
            }
            assert_int_equal(mm_frontend_compute_frames(fe, x, n, nf, nf + 1, part, &e), MM_EINVAL);
            assert_non_null(strstr(e.msg, "outside"));
            free(x), free(y), free(whole), free(part);
        }
        mm_frontend_free(fe);
    }
    printf("  %d frame ranges equal to the whole-clip log-mel\n", checked);
}

static void test_frontend_errors(void **st)
{
    (void)st;
    mm_err e = {0};
    mm_frontend_kind k;
    assert_int_equal(mm_frontend_kind_parse("cnn14_16k", &k, &e), 0);
    assert_int_equal(k, MM_FE_CNN14_16K);
    assert_int_equal(mm_frontend_kind_parse("vggish", &k, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "'vggish'"));
    mm_frontend *fe;
    assert_int_equal(mm_frontend_create(MM_FE_CNN14_16K, &fe, &e), 0);
    assert_int_equal(mm_frontend_sample_rate(fe), 16000);
    float x[300] = {0}, out[64 * 4];
    assert_int_equal(mm_frontend_compute(fe, x, 200, out, &e), MM_EDATA);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "cnn14_16k"));
    char buf[1024];
    assert_non_null(strstr(mm_frontend_describe(fe, buf, sizeof buf), "n_fft=512"));
    mm_frontend_free(fe);
    assert_int_equal(mm_frontend_create(MM_FE_MN04, &fe, &e), 0);
    assert_int_equal(mm_frontend_n_frames(fe, 1), 0);
    assert_int_equal(mm_frontend_compute(fe, x, 1, out, &e), MM_EDATA);
    mm_frontend_free(fe);
    mm_frontend_free(NULL);
}

/* logmel_stats: mean and population std per bin of the reference log-mel (computed in
 * numpy, float64) vs ours; tolerance 0.01 dB / 1e-4 as for the front ends themselves. */
static void test_logmel_stats(void **st)
{
    (void)st;
    const mm_featset_vt *vt = mm_featset_find("logmel_stats");
    assert_non_null(vt);
    hid_t f = open_fx("tests/fixtures/frontend_speech.h5");
    mm_err e = {0};
    struct {
        const char *yaml, *wave, *ref;
        double tol;
    } cases[] = {
        {NULL, "wave_16k", "stats_cnn14_16k", 0.01},
        {"frontend: mn04\n", "wave_32k", "stats_mn04", 1e-4},
    };
    for (int i = 0; i < 2; i++) {
        mm_cfg *c = NULL;
        if (cases[i].yaml) assert_int_equal(mm_cfg_parse_string(cases[i].yaml, "p.yaml", &c, &e), 0);
        void *s;
        assert_int_equal(vt->create(c, NULL, &s, &e), 0);
        size_t n, dr;
        float *x = read_f32(f, cases[i].wave, &n, NULL);
        float *ref = read_f32(f, cases[i].ref, &dr, NULL);
        assert_int_equal(vt->dim(s), dr);
        int M = (int)dr / 2;
        assert_int_equal(vt->sample_rate(s), i == 0 ? 16000 : 32000);
        assert_string_equal(vt->feature_name(s, 0), "logmel_mean_0");
        char nm[64];
        snprintf(nm, sizeof nm, "logmel_std_%d", M - 1);
        assert_string_equal(vt->feature_name(s, dr - 1), nm);
        float *out = malloc(dr * sizeof *out);
        assert_int_equal(vt->compute(s, x, n, out, &e), 0);
        double m = tu_max_abs_diff(out, ref, dr);
        printf("  logmel_stats %s: max |diff| %.3g (tolerance %g)\n",
               cases[i].yaml ? "frontend: mn04" : "(default cnn14_16k)", m, cases[i].tol);
        assert_true(m <= cases[i].tol);
        free(out);
        free(ref);
        free(x);
        vt->free(s);
        mm_cfg_free(c);
    }
    mm_h5_close(f);
    mm_cfg *c;
    void *s;
    assert_int_equal(mm_cfg_parse_string("frontend: vggish\n", "p.yaml", &c, &e), 0);
    assert_int_not_equal(vt->create(c, NULL, &s, &e), 0);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "p.yaml:1"));
    mm_cfg_free(c);
    assert_int_equal(mm_cfg_parse_string("n_mels: 40\n", "p.yaml", &c, &e), 0);
    assert_int_not_equal(vt->create(c, NULL, &s, &e), 0);
    assert_non_null(strstr(e.msg, "n_mels"));
    mm_cfg_free(c);
}

/* `melodic spectrogram` writes the same matrix the library computes, with attributes. */
static void test_cli_spectrogram(void **st)
{
    (void)st;
    char out[256];
    snprintf(out, sizeof out, "/tmp/mm_spec_%d.h5", (int)getpid());
    unlink(out);
    const char *in = "tests/fixtures/audio/stereo.wav";
    assert_int_equal(tu_system("%s spectrogram %s -o %s --frontend cnn14_16k", tu_bin(), in, out), 0);
    hid_t f = open_fx(out);
    size_t r, c;
    float *lm = read_f32(f, "logmel", &r, &c);
    mm_err e = {0};
    hid_t ds = H5Dopen2(f, "logmel", H5P_DEFAULT);
    char *kind;
    assert_int_equal(mm_h5_attr_get_str(ds, "frontend", &kind, &e), 0);
    assert_string_equal(kind, "cnn14_16k");
    free(kind);
    H5Dclose(ds);
    mm_h5_close(f);
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.target_sr = 16000;
    mm_audio a = {0};
    assert_int_equal(mm_audio_load(in, &o, &a, &e), 0);
    mm_frontend *fe;
    assert_int_equal(mm_frontend_create(MM_FE_CNN14_16K, &fe, &e), 0);
    assert_int_equal(r, mm_frontend_n_frames(fe, a.n));
    assert_int_equal(c, 64);
    float *ref = malloc(r * c * sizeof *ref);
    assert_int_equal(mm_frontend_compute(fe, a.x, a.n, ref, &e), 0);
    assert_memory_equal(lm, ref, r * c * sizeof *ref);
    free(ref);
    free(lm);
    mm_frontend_free(fe);
    mm_audio_free(&a);
    unlink(out);
    /* errors: missing input (1, nothing written), bad front end and usage (2), help (0) */
    assert_int_equal(tu_system("%s spectrogram tests/fixtures/audio/nope.wav -o %s 2>/dev/null",
                               tu_bin(), out), 1);
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_equal(tu_system("%s spectrogram %s -o %s --frontend vggish 2>/dev/null", tu_bin(),
                               in, out), 2);
    assert_int_equal(tu_system("%s spectrogram %s 2>/dev/null", tu_bin(), in), 2);
    assert_int_equal(tu_system("%s spectrogram --help >/dev/null", tu_bin()), 0);
    assert_int_equal(tu_system("%s spectrogram tests/fixtures/audio/silent.wav --trim -o %s "
                               "2>/dev/null", tu_bin(), out), 1);
    assert_int_not_equal(access(out, F_OK), 0);
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filterbanks),
        cmocka_unit_test(test_stft_vs_torch),
        cmocka_unit_test(test_frontend_speech),
        cmocka_unit_test(test_frontend_stereo),
        cmocka_unit_test(test_frontend_music),
        cmocka_unit_test(test_frontend_threads),
        cmocka_unit_test(test_frontend_frame_ranges),
        cmocka_unit_test(test_frontend_errors),
        cmocka_unit_test(test_logmel_stats),
        cmocka_unit_test(test_cli_spectrogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
