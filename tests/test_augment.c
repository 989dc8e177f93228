/* test_augment.c — augmentations on signals whose result is known, and against references.
 *
 * Fixture: tests/fixtures/augment/augment.h5 from tests/ref/gen_augment.py (scipy.signal
 * sosfilt of the telephone band, torchaudio pitch_shift, torchaudio mask_along_axis fed the
 * engine's uniforms). Everything else is checked against what the signal must give: the SNR
 * of a mix, the RT60 of an impulse response by Schroeder's backward integral, the band's gain
 * at 100 Hz / 1 kHz / 5 kHz, a tone's frequency and level through codecs and pitch shift. */
#include "testutil.h"

#include <fftw3.h>

#include "audio/augment.h"
#include "io/h5.h"

#define FIX "tests/fixtures/augment/augment.h5"

static float *rd(hid_t f, const char *name, size_t *n)
{
    mm_err e = {0};
    float *d = NULL;
    int r;
    hsize_t dims[4];
    if (mm_h5_read_f32(f, name, -1, &d, &r, dims, &e)) fail_msg("%s", e.msg);
    size_t t = 1;
    for (int i = 0; i < r; i++) t *= dims[i];
    *n = t;
    return d;
}

static float *tone(int sr, size_t n, double hz, double amp)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * M_PI * hz * i / sr));
    return x;
}

/* uniform in [-0.5, 0.5) from a 64-bit LCG (test signals independent of the engine's rng) */
static double lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((*s >> 11) * (1.0 / 9007199254740992.0)) - 0.5;
}

/* deterministic speech-like test signal (harmonics, syllable envelope, a little noise) */
static float *speechlike(int sr, size_t n)
{
    float *x = malloc(n * sizeof *x);
    uint64_t s = 99;
    for (size_t i = 0; i < n; i++) {
        double u = lcg(&s), t = (double)i / sr, v = 0;
        for (int k = 1; k <= 8; k++) v += sin(2 * M_PI * 150.0 * k * t) / k;
        x[i] = (float)(0.2 * (0.6 + 0.4 * sin(2 * M_PI * 3 * t)) * (v + 0.3 * u));
    }
    return x;
}

/* broadband and aperiodic (for cross-correlation lags): noise in 100 ms bursts */
static float *noise_bursts(int sr, size_t n)
{
    float *x = malloc(n * sizeof *x);
    uint64_t s = 7;
    for (size_t i = 0; i < n; i++) {
        double u = lcg(&s);
        x[i] = (float)(0.5 * u * ((i / (size_t)(sr / 10)) % 2 ? 1.0 : 0.3));
    }
    return x;
}

static double energy(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* Amplitude of frequency hz in x[a, b) by projection on sine and cosine (an exact whole
 * number of periods is not needed for b − a of many periods: error ~1/(periods)). */
static double amplitude_at(const float *x, size_t a, size_t b, int sr, double hz)
{
    double c = 0, s = 0;
    for (size_t i = a; i < b; i++) {
        c += x[i] * cos(2 * M_PI * hz * i / sr);
        s += x[i] * sin(2 * M_PI * hz * i / sr);
    }
    return 2 * sqrt(c * c + s * s) / (double)(b - a);
}

/* Frequency of the spectral peak of x (Hann window, zero-padded 2^17-point FFT, parabolic
 * interpolation of the log magnitude). */
static double peak_hz(const float *x, size_t n, int sr)
{
    size_t N = 1 << 17, nc = N / 2 + 1;
    float *b = fftwf_malloc(N * sizeof *b);
    fftwf_complex *c = fftwf_malloc(nc * sizeof *c);
    fftwf_plan p = fftwf_plan_dft_r2c_1d((int)N, b, c, FFTW_ESTIMATE);
    memset(b, 0, N * sizeof *b);
    for (size_t i = 0; i < n && i < N; i++) b[i] = x[i] * (float)(0.5 - 0.5 * cos(2 * M_PI * i / n));
    fftwf_execute(p);
    size_t best = 1;
    double m[3];
    for (size_t k = 1; k + 1 < nc; k++)
        if (hypot(c[k][0], c[k][1]) > hypot(c[best][0], c[best][1])) best = k;
    for (int d = -1; d <= 1; d++) m[d + 1] = log(hypot(c[best + d][0], c[best + d][1]) + 1e-30);
    double off = 0.5 * (m[0] - m[2]) / (m[0] - 2 * m[1] + m[2]);
    fftwf_destroy_plan(p);
    fftwf_free(b);
    fftwf_free(c);
    return ((double)best + off) * sr / (double)N;
}

/* Lag (in ±maxlag) maximising Σ x[i]·y[i + lag]. */
static long best_lag(const float *x, const float *y, size_t n, long maxlag)
{
    double best = -INFINITY;
    long bl = 0;
    for (long l = -maxlag; l <= maxlag; l++) {
        double s = 0;
        for (size_t i = (size_t)maxlag; i + (size_t)maxlag < n; i++) s += (double)x[i] * y[(long)i + l];
        if (s > best) {
            best = s;
            bl = l;
        }
    }
    return bl;
}

/* The call failed with MM_EINVAL and a one-line message holding each of the strings. */
static void expect_err(int rc, const mm_err *e, const char *a, const char *b)
{
    printf("  %s\n", e->msg);
    assert_int_equal(rc, MM_EINVAL);
    assert_non_null(strstr(e->msg, a));
    assert_non_null(strstr(e->msg, b));
    assert_null(strchr(e->msg, '\n'));
}

static void test_gain(void **st)
{
    (void)st;
    float x[4] = {0.5f, -0.25f, 0, 1}, *y;
    mm_err e = {0};
    assert_int_equal(mm_augment_gain(x, 4, -6.0206, &y, &e), 0);
    for (int i = 0; i < 4; i++) assert_true(fabsf(y[i] - x[i] / 2) < 1e-6f);
    free(y);
    expect_err(mm_augment_gain(x, 4, 41, &y, &e), &e, "gain_db 41", "-40..40");
    expect_err(mm_augment_gain(x, 4, NAN, &y, &e), &e, "gain_db nan", "-40..40");
}

/* Power-spectrum slope (log10 power per log10 frequency) of v between f0 and f1 by Welch's
 * method: 4096-point Hann segments, half overlap. */
static double spectral_slope(const float *v, size_t n, int sr, double f0, double f1)
{
    size_t N = 4096, nc = N / 2 + 1;
    float *b = fftwf_malloc(N * sizeof *b);
    fftwf_complex *c = fftwf_malloc(nc * sizeof *c);
    fftwf_plan p = fftwf_plan_dft_r2c_1d((int)N, b, c, FFTW_ESTIMATE);
    double *P = calloc(nc, sizeof *P);
    for (size_t s = 0; s + N <= n; s += N / 2) {
        for (size_t i = 0; i < N; i++) b[i] = v[s + i] * (float)(0.5 - 0.5 * cos(2 * M_PI * i / N));
        fftwf_execute(p);
        for (size_t k = 0; k < nc; k++) P[k] += (double)c[k][0] * c[k][0] + (double)c[k][1] * c[k][1];
    }
    /* least squares over the bins in [f0, f1] */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (size_t k = 1; k < nc; k++) {
        double f = (double)k * sr / N;
        if (f < f0 || f > f1) continue;
        double lx = log10(f), ly = log10(P[k]);
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
        m++;
    }
    fftwf_destroy_plan(p);
    fftwf_free(b);
    fftwf_free(c);
    free(P);
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

static void test_noise_snr_and_colour(void **st)
{
    (void)st;
    int sr = 16000;
    size_t n = 4 * (size_t)sr;
    float *x = speechlike(sr, n), *d = malloc(n * sizeof *d);
    const char *names[] = {"white", "pink", "brown"};
    const double want_slope[] = {0, -1, -2};
    double worst = 0;
    for (int c = 0; c < 3; c++) {
        for (double snr = -10; snr <= 60; snr += 17.5) {
            float *y;
            mm_err e = {0};
            if (mm_augment_noise(x, n, (mm_noise_color)c, snr, 7, &y, &e)) fail_msg("%s", e.msg);
            for (size_t i = 0; i < n; i++) d[i] = y[i] - x[i];
            double got = 10 * log10(energy(x, n) / energy(d, n));
            worst = fmax(worst, fabs(got - snr));
            /* float rounding of x + g·v: far below 0.01 dB */
            assert_true(fabs(got - snr) < 0.01);
            if (snr == -10) {
                /* the noise itself, nearly alone at -10 dB: slope of its power spectrum */
                double sl = spectral_slope(d, n, sr, 100, 6000);
                printf("  %s noise: power slope %.3f per decade of frequency (expected %g)\n",
                       names[c], sl, want_slope[c]);
                assert_true(fabs(sl - want_slope[c]) < 0.1);
            }
            free(y);
        }
    }
    printf("  noise: max |measured SNR - requested| = %.2g dB over -10..60 dB\n", worst);
    float *y1, *y2, *y3;
    mm_err e = {0};
    mm_augment_noise(x, n, MM_NOISE_PINK, 10, 1, &y1, &e);
    mm_augment_noise(x, n, MM_NOISE_PINK, 10, 1, &y2, &e);
    mm_augment_noise(x, n, MM_NOISE_PINK, 10, 2, &y3, &e);
    assert_memory_equal(y1, y2, n * sizeof *y1);
    assert_true(memcmp(y1, y3, n * sizeof *y1) != 0);
    free(y1);
    free(y2);
    free(y3);
    float *y;
    expect_err(mm_augment_noise(x, n, MM_NOISE_WHITE, 61, 1, &y, &e), &e, "snr_db 61", "-10..60");
    expect_err(mm_augment_noise(x, n, (mm_noise_color)5, 10, 1, &y, &e), &e, "color 5", "brown");
    memset(x, 0, n * sizeof *x);
    assert_int_equal(mm_augment_noise(x, n, MM_NOISE_WHITE, 10, 1, &y, &e), MM_EDATA);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "silent"));
    free(x);
    free(d);
}

static void test_mix(void **st)
{
    (void)st;
    int sr = 16000;
    size_t n = 2 * (size_t)sr, m = 5000;   /* the noise is tiled: 32000 = 6 x 5000 + 2000 */
    float *x = speechlike(sr, n), *nz = malloc(m * sizeof *nz), *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < m; i++) nz[i] = (float)(0.1 * sin(0.37 * i) + 0.05 * sin(0.011 * i * i));
    mm_err e = {0};
    float *y, *y2, *y3;
    for (double snr = -10; snr <= 60; snr += 35) {
        if (mm_augment_mix(x, n, nz, m, snr, 3, &y, &e)) fail_msg("%s", e.msg);
        for (size_t i = 0; i < n; i++) d[i] = y[i] - x[i];
        double got = 10 * log10(energy(x, n) / energy(d, n));
        printf("  mix at %g dB: measured %.5f dB\n", snr, got);
        assert_true(fabs(got - snr) < 0.01);
        free(y);
    }
    /* tiled with period m, starting at a seeded offset: d[i] ∝ nz[(off + i) mod m] */
    mm_augment_mix(x, n, nz, m, 0, 3, &y, &e);
    for (size_t i = 0; i < n; i++) d[i] = y[i] - x[i];
    size_t off = m;
    for (size_t o = 0; o < m && off == m; o++) {
        double r = d[0] / nz[o];
        int okk = r > 0;
        for (size_t i = 0; okk && i < n; i += 97) okk = fabs(d[i] - r * nz[(o + i) % m]) < 1e-5;
        if (okk) off = o;
    }
    printf("  mix: noise read from offset %zu of %zu, tiled\n", off, m);
    assert_true(off < m);
    mm_augment_mix(x, n, nz, m, 0, 3, &y2, &e);
    mm_augment_mix(x, n, nz, m, 0, 4, &y3, &e);
    assert_memory_equal(y, y2, n * sizeof *y);
    assert_true(memcmp(y, y3, n * sizeof *y) != 0);
    free(y);
    free(y2);
    free(y3);
    expect_err(mm_augment_mix(x, n, nz, m, -11, 3, &y, &e), &e, "snr_db -11", "-10..60");
    expect_err(mm_augment_mix(x, n, nz, 0, 5, 3, &y, &e), &e, "empty noise", "at least 1");
    free(x);
    free(nz);
    free(d);
}

/* RT60 from Schroeder's backward-integrated energy decay of h: least-squares line through the
 * decay curve between -5 and -35 dB (T30), extrapolated to -60 dB. */
static double schroeder_t30(const float *h, size_t n, int sr)
{
    double *edc = malloc(n * sizeof *edc), s = 0;
    for (size_t i = n; i-- > 0;) {
        s += (double)h[i] * h[i];
        edc[i] = s;
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    long m = 0;
    for (size_t i = 0; i < n; i++) {
        double db = 10 * log10(edc[i] / edc[0]);
        if (db > -5 || db < -35) continue;
        double t = (double)i / sr;
        sx += t;
        sy += db;
        sxx += t * t;
        sxy += t * db;
        m++;
    }
    free(edc);
    double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
    return -60.0 / slope;
}

static void test_rir_rt60(void **st)
{
    (void)st;
    const double rts[] = {0.1, 0.3, 0.7, 1.2, 2.0};
    const int rates[] = {16000, 48000};
    double worst = 0;
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < 5; i++)
            for (uint64_t seed = 1; seed <= 3; seed++) {
                float *h;
                size_t nh;
                mm_err e = {0};
                if (mm_augment_rir(rates[r], rts[i], 0, seed, &h, &nh, &e)) fail_msg("%s", e.msg);
                double t30 = schroeder_t30(h, nh, rates[r]);
                double drr = 10 * log10((double)h[0] * h[0] / (energy(h, nh) - (double)h[0] * h[0]));
                double rel = fabs(t30 - rts[i]) / rts[i];
                worst = fmax(worst, rel);
                if (seed == 1)
                    printf("  RT60 %.1f s at %d Hz: T30 %.4f s (%.2f %%), DRR %.3f dB, %zu taps\n",
                           rts[i], rates[r], t30, 100 * rel, drr, nh);
                assert_true(rel < 0.10);
                assert_true(fabs(drr) < 1e-3);
                free(h);
            }
    printf("  max relative RT60 error over 30 responses: %.2f %% (asked: 10 %%)\n", 100 * worst);
    float *h;
    size_t nh;
    mm_err e = {0};
    expect_err(mm_augment_rir(16000, 2.5, 0, 1, &h, &nh, &e), &e, "rt60 2.5", "0.1..2");
    expect_err(mm_augment_rir(16000, 0.5, 31, 1, &h, &nh, &e), &e, "drr_db 31", "-10..30");
}

static void test_reverb_alignment_level(void **st)
{
    (void)st;
    int sr = 16000;
    size_t n = 2 * (size_t)sr;
    float *x = speechlike(sr, n), *y;
    mm_err e = {0};
    if (mm_augment_reverb(x, n, sr, 0.5, 6, 11, &y, &e)) fail_msg("%s", e.msg);
    double rel = fabs(energy(y, n) / energy(x, n) - 1);
    long lag = best_lag(x, y, n, 400);
    printf("  reverb RT60 0.5 s, DRR 6 dB: power ratio - 1 = %.2g, cross-correlation peak at "
           "lag %ld\n", rel, lag);
    assert_true(rel < 1e-5);
    assert_int_equal(lag, 0);
    /* against a direct convolution, before the level scale */
    float *h;
    size_t nh;
    mm_augment_rir(sr, 0.5, 6, 11, &h, &nh, &e);
    double num = 0, den = 0, sc;
    float *z = calloc(n, sizeof *z);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t k = 0; k < nh && k <= i; k++) s += (double)h[k] * x[i - k];
        z[i] = (float)s;
    }
    sc = sqrt(energy(x, n) / energy(z, n));
    for (size_t i = 0; i < n; i++) {
        num += (y[i] - sc * z[i]) * (y[i] - sc * z[i]);
        den += (double)y[i] * y[i];
    }
    printf("  FFT overlap-add vs direct convolution: relative error %.2g (float FFT)\n",
           sqrt(num / den));
    assert_true(sqrt(num / den) < 1e-5);
    float *y2, *y3;
    mm_augment_reverb(x, n, sr, 0.5, 6, 11, &y2, &e);
    mm_augment_reverb(x, n, sr, 0.5, 6, 12, &y3, &e);
    assert_memory_equal(y, y2, n * sizeof *y);
    assert_true(memcmp(y, y3, n * sizeof *y) != 0);
    free(x);
    free(y);
    free(y2);
    free(y3);
    free(h);
    free(z);
}

static void test_telephone(void **st)
{
    (void)st;
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read(FIX, &f, &e)) fail_msg("%s", e.msg);
    const char *xs[] = {"telephone/x16", "telephone/x8"}, *ys[] = {"telephone/y16", "telephone/y8"};
    const int rates[] = {16000, 8000};
    for (int i = 0; i < 2; i++) {
        size_t n, m;
        float *x = rd(f, xs[i], &n), *ref = rd(f, ys[i], &m), *y;
        assert_int_equal(n, m);
        if (mm_augment_telephone(x, n, rates[i], 0, &y, &e)) fail_msg("%s", e.msg);
        double d = tu_max_abs_diff(y, ref, n);
        /* both run the same sections in double; only the float output rounding and the
         * section order (the same product) differ */
        printf("  band-pass at %d Hz vs scipy sosfilt: max |diff| %.2g (peak %.2f)\n", rates[i],
               d, tu_max_abs(ref, n));
        assert_true(d < 1e-5);
        free(x);
        free(ref);
        free(y);
    }
    mm_h5_close(f);
    /* gain of the channel at 100 Hz, 1 kHz, 5 kHz: steady-state amplitude of a 0.5 sine */
    int sr = 16000;
    size_t n = sr;
    const double hz[] = {100, 1000, 5000};
    for (int mode = 1; mode >= 0; mode--)
        for (int k = 0; k < 3; k++) {
            float *x = tone(sr, n, hz[k], 0.5), *y;
            if (mm_augment_telephone(x, n, sr, mode, &y, &e)) fail_msg("%s", e.msg);
            double db = 20 * log10(amplitude_at(y, n / 4, n - n / 8, sr, hz[k]) / 0.5);
            printf("  telephone (%s) at %5.0f Hz: %7.2f dB\n",
                   mode ? "8 kHz resampled" : "band-pass only", hz[k], db);
            if (k == 1) assert_true(fabs(db) < 0.5);                /* passed */
            else if (k == 0) assert_true(db < -35);                  /* 4th-order high-pass */
            else assert_true(db < (mode ? -80 : -15));               /* above 4 kHz / 4th-order LP */
            free(x);
            free(y);
        }
    float x[10] = {0}, *y;
    expect_err(mm_augment_telephone(x, 10, 4000, 1, &y, &e), &e, "sample rate 4000", "8000..192000");
}

/* The band edges: a 4th-order Butterworth high-pass at 300 Hz and low-pass at 3400 Hz, each
 * prewarped, pass a tone at its cut-off at -3.01 dB (|H|² = 1/2) and the other section adds
 * < 0.1 dB there; an octave outside each edge is 24 dB down (4th order) and more. Through
 * 8 kHz (resample = 1) the edges hold as well: soxr HQ's pass band reaches ~3.8 kHz. */
static void test_telephone_band_edges(void **st)
{
    (void)st;
    int sr = 16000;
    size_t n = 2 * (size_t)sr;
    mm_err e = {0};
    const double hz[] = {150, 300, 3400, 6800};
    for (int mode = 0; mode <= 1; mode++)
        for (int k = 0; k < 4; k++) {
            float *x = tone(sr, n, hz[k], 0.5), *y;
            if (mm_augment_telephone(x, n, sr, mode, &y, &e)) fail_msg("%s", e.msg);
            double db = 20 * log10(amplitude_at(y, n / 4, n - n / 8, sr, hz[k]) / 0.5);
            printf("  telephone (%s) at %4.0f Hz: %7.2f dB\n", mode ? "8 kHz resampled" : "band-pass only", hz[k], db);
            if (k == 1 || k == 2) assert_true(fabs(db + 3.01) < 0.05);   /* the edges */
            else assert_true(db < -24);                                     /* an octave out */
            free(x);
            free(y);
        }
}

/* Through a codec: a 440 Hz tone at -6 dBFS keeps its frequency (±1 Hz) and level (±1 dB; MP3
 * reads 0.45 dB low, Opus within 0.2 dB) and the input's length; broadband audio comes out
 * aligned (cross-correlation peak at lag 0, Opus at 16 kbit/s within one sample). */
static void test_codec(void **st)
{
    (void)st;
    const int rates[] = {8000, 16000, 22050, 44100, 48000};
    const int kbps[] = {16, 32, 64, 128};
    mm_err e = {0};
    for (int c = 0; c < 2; c++)
        for (size_t r = 0; r < 5; r++)
            for (size_t b = 0; b < 4; b++) {
                int sr = rates[r];
                size_t n = (size_t)sr + 123;
                float *x = tone(sr, n, 440, 0.5), *y;
                int rc = mm_augment_codec(x, n, sr, (mm_codec)c, kbps[b], &y, &e);
                if (rc) {
                    /* only MP3 rates a version cannot carry (e.g. 128 kbit/s at 8 kHz) */
                    printf("  %s\n", e.msg);
                    assert_int_equal(c, MM_CODEC_MP3);
                    assert_true(sr < 16000 || (sr < 32000 && kbps[b] > 160));
                    free(x);
                    continue;
                }
                double f0 = peak_hz(y, n, sr);
                double lv = 20 * log10(amplitude_at(y, n / 8, n - n / 8, sr, 440) / 0.5);
                free(y);
                free(x);
                x = noise_bursts(sr, n);
                if (mm_augment_codec(x, n, sr, (mm_codec)c, kbps[b], &y, &e)) fail_msg("%s", e.msg);
                long lag = best_lag(x, y, n, 2000);
                printf("  %-4s %3d kbit/s at %5d Hz: tone %.2f Hz, level %+.2f dB, lag %ld\n",
                       c ? "opus" : "mp3", kbps[b], sr, f0, lv, lag);
                assert_true(fabs(f0 - 440) < 1.0);
                assert_true(fabs(lv) < 1.0);
                /* MP3 exactly aligned; Opus at 16 kbit/s (SILK/hybrid mode) leads by one sample
                 * at 44.1/48 kHz (21 µs), the encoder's own delay compensation */
                assert_true(labs(lag) <= (c == MM_CODEC_OPUS && kbps[b] < 32 ? 1 : 0));
                free(x);
                free(y);
            }
    float x[100] = {0}, *y;
    expect_err(mm_augment_codec(x, 100, 16000, MM_CODEC_MP3, 321, &y, &e), &e, "kbps 321", "8..320");
    expect_err(mm_augment_codec(x, 100, 16000, MM_CODEC_OPUS, 300, &y, &e), &e, "kbps 300", "8..256");
    expect_err(mm_augment_codec(x, 100, 16000, MM_CODEC_MP3, 7, &y, &e), &e, "kbps 7", "8..320");
}

static void test_pitch(void **st)
{
    (void)st;
    int sr = 16000;
    size_t n = sr;
    mm_err e = {0};
    const double steps[] = {12, -12, 7};
    for (int i = 0; i < 3; i++) {
        float *x = tone(sr, n, 440, 0.5), *y;
        if (mm_augment_pitch(x, n, sr, steps[i], 0, &y, &e)) fail_msg("%s", e.msg);
        double want = 440 * pow(2, steps[i] / 12), got = peak_hz(y + n / 8, n - n / 4, sr);
        double lv = 20 * log10(amplitude_at(y, n / 8, n - n / 8, sr, want) / 0.5);
        printf("  440 Hz %+g semitones: peak %.2f Hz (expected %.2f), level %+.2f dB\n", steps[i],
               got, want, lv);
        assert_true(fabs(got - want) / want < 0.002);
        /* the phase vocoder smears a pure tone's phase between frames: torchaudio's loses
         * 4.7 dB at +12, 0.1 at -12 and 4.5 at +7 on this tone (measured with torchaudio 0.13) */
        assert_true(lv > -6 && lv < 1);
        free(x);
        free(y);
    }
    /* against torchaudio.functional.pitch_shift (n_fft 512): same STFT, phase vocoder and
     * inverse STFT; the final resampling differs (soxr with the exact ratio here, torchaudio's
     * windowed sinc with the rate truncated to an integer), so the check is the error power
     * relative to the output's over the middle of the clip */
    hid_t f;
    if (mm_h5_open_read(FIX, &f, &e)) fail_msg("%s", e.msg);
    size_t nx;
    float *x = rd(f, "pitch/x", &nx);
    const int ss[] = {3, -4, 12};
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "pitch/y_%d", ss[i]);
        size_t m;
        float *ref = rd(f, name, &m), *y;
        assert_int_equal(m, nx);
        if (mm_augment_pitch(x, nx, 16000, ss[i], 512, &y, &e)) fail_msg("%s", e.msg);
        double num = 0, den = 0;
        for (size_t k = nx / 10; k < nx - nx / 10; k++) {
            num += (y[k] - ref[k]) * (y[k] - ref[k]);
            den += (double)ref[k] * ref[k];
        }
        double snr = 10 * log10(den / num);
        printf("  vs torchaudio pitch_shift %+d: SNR %.1f dB over the middle 80 %%\n", ss[i], snr);
        assert_true(snr > 25);
        free(ref);
        free(y);
    }
    /* the same tempo: a 440 Hz burst from 0.5 to 1.5 s of a 2 s clip keeps its start and end
     * (half-amplitude crossings of the shifted tone's envelope, on a 10 ms grid, within 10 ms;
     * a tempo change of 2^(s/12) would move the end by 110 ms or more) and the clip its
     * length, while its frequency moves by 2^(s/12) */
    size_t nb = 2 * 16000;
    float *b = calloc(nb, sizeof *b);
    for (size_t i = 8000; i < 24000; i++) b[i] = (float)(0.5 * sin(2 * M_PI * 440 * i / 16000.0));
    const double sb[] = {-2, 2, 5};
    for (int i = 0; i < 3; i++) {
        float *yb;
        if (mm_augment_pitch(b, nb, 16000, sb[i], 0, &yb, &e)) fail_msg("%s", e.msg);
        double want = 440 * pow(2, sb[i] / 12), got = peak_hz(yb + 12000, 8000, 16000);
        /* envelope: amplitude at `want` over 10 ms windows; first and last window above half
         * of the steady level */
        double steady = amplitude_at(yb, 12000, 20000, 16000, want);
        long on = -1, off = -1;
        for (size_t w = 0; w + 160 <= nb; w += 160)
            if (amplitude_at(yb, w, w + 160, 16000, want) > 0.5 * steady) {
                if (on < 0) on = (long)w + 80;
                off = (long)w + 80;
            }
        printf("  burst 0.50-1.50 s %+g semitones: %.2f Hz (expected %.2f), on %.3f s, off %.3f s\n",
               sb[i], got, want, on / 16000.0, off / 16000.0);
        assert_true(fabs(got - want) / want < 0.002);
        assert_true(labs(on - 8000) <= 160 && labs(off - 24000) <= 160);
        free(yb);
    }
    free(b);
    float *y;
    expect_err(mm_augment_pitch(x, nx, 16000, 12.5, 0, &y, &e), &e, "semitones 12.5", "-12..12");
    expect_err(mm_augment_pitch(x, nx, 16000, 2, 1000, &y, &e), &e, "n_fft 1000", "256..8192");
    free(x);
    mm_h5_close(f);
}

static void test_specmask(void **st)
{
    (void)st;
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read(FIX, &f, &e)) fail_msg("%s", e.msg);
    size_t nm;
    float *m = rd(f, "specmask/m", &nm);
    size_t T = 40, B = 32;
    assert_int_equal(nm, T * B);
    mm_specmask_params p = {2, 10, 2, 8, 1};
    for (int seed = 1; seed <= 3; seed++)
        for (int fill = 1; fill >= 0; fill--) {
            p.fill_mean = fill;
            char name[32];
            snprintf(name, sizeof name, "specmask/y_%d_%d", seed, fill);
            size_t nr;
            float *ref = rd(f, name, &nr), *y;
            int masks[8];
            if (mm_augment_specmask(m, T, B, &p, (uint64_t)seed, &y, masks, &e)) fail_msg("%s", e.msg);
            printf("  seed %d: time masks [%d,+%d) [%d,+%d), freq masks [%d,+%d) [%d,+%d)\n", seed,
                   masks[0], masks[1], masks[2], masks[3], masks[4], masks[5], masks[6], masks[7]);
            /* the same uniforms through torchaudio's mask_along_axis: identical bytes */
            assert_memory_equal(y, ref, nr * sizeof *y);
            /* widths 0..W-1; every cell of every mask holds the fill value */
            for (int q = 0; q < 4; q++) {
                int W = q < 2 ? 10 : 8;
                assert_true(masks[2 * q + 1] >= 0 && masks[2 * q + 1] < W);
                for (int k = masks[2 * q]; k < masks[2 * q] + masks[2 * q + 1]; k++) {
                    size_t t = q < 2 ? (size_t)k : 7, b = q < 2 ? 5 : (size_t)k;
                    assert_true(y[t * B + b] == (fill ? ref[t * B + b] : 0.0f));
                }
            }
            free(ref);
            free(y);
        }
    /* same seed -> same bytes, different seed -> different; wide masks cover their width */
    mm_specmask_params w = {3, 30, 3, 20, 0};
    float *a, *b, *c;
    int ma[12];
    mm_augment_specmask(m, T, B, &w, 5, &a, ma, &e);
    mm_augment_specmask(m, T, B, &w, 5, &b, NULL, &e);
    mm_augment_specmask(m, T, B, &w, 6, &c, NULL, &e);
    assert_memory_equal(a, b, T * B * sizeof *a);
    assert_true(memcmp(a, c, T * B * sizeof *a) != 0);
    for (int q = 0; q < 3; q++) {
        size_t cnt = 0;
        for (int t = ma[2 * q]; t < ma[2 * q] + ma[2 * q + 1]; t++)
            for (size_t k = 0; k < B; k++) cnt += a[t * B + k] == 0.0f;
        assert_int_equal(cnt, (size_t)ma[2 * q + 1] * B);
    }
    free(a);
    free(b);
    free(c);
    mm_specmask_params bad = {2, 41, 2, 8, 1};
    float *y;
    expect_err(mm_augment_specmask(m, T, B, &bad, 1, &y, NULL, &e), &e, "time_width 41", "1..40");
    bad.time_width = 10;
    bad.freq_width = 33;
    expect_err(mm_augment_specmask(m, T, B, &bad, 1, &y, NULL, &e), &e, "freq_width 33", "1..32");
    bad.freq_width = 8;
    bad.n_time = 11;
    expect_err(mm_augment_specmask(m, T, B, &bad, 1, &y, NULL, &e), &e, "n_time 11", "0..10");
    free(m);
    mm_h5_close(f);
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gain),
        cmocka_unit_test(test_noise_snr_and_colour),
        cmocka_unit_test(test_mix),
        cmocka_unit_test(test_rir_rt60),
        cmocka_unit_test(test_reverb_alignment_level),
        cmocka_unit_test(test_telephone),
        cmocka_unit_test(test_telephone_band_edges),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_pitch),
        cmocka_unit_test(test_specmask),
    };
    return cmocka_run_group_tests_name("augment", tests, NULL, NULL);
}
