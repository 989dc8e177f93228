/* test_level.c — integrated loudness (BS.1770-4), voiced RMS, normalisation under a peak limit.
 *
 * Fixture: tests/fixtures/augment/level.h5 from tests/ref/gen_augment_level.py (an independent
 * numpy/scipy BS.1770-4 with the standard's typed-in 48 kHz coefficients): mono versions of
 * EBU Tech 3341 cases 1-5 and 0 dBFS sines at 48, 44.1 and 16 kHz. The C test rebuilds each
 * signal from the stored segment list and compares. */
#include "testutil.h"

#include "audio/level.h"
#include "io/h5.h"

#define FIX "tests/fixtures/augment/level.h5"

/* The generator's signal: 1 kHz, one continuous phase, segment k at dbfs[k] peak for
 * round(seconds[k]·sr) samples; float32. */
static float *sine_segments(int sr, const double *sec, const double *db, size_t nseg, size_t *n)
{
    size_t tot = 0;
    for (size_t k = 0; k < nseg; k++) tot += (size_t)llround(sec[k] * sr);
    float *x = malloc(tot * sizeof *x);
    size_t i = 0;
    for (size_t k = 0; k < nseg; k++) {
        double a = pow(10.0, db[k] / 20.0);
        size_t m = (size_t)llround(sec[k] * sr);
        for (size_t j = 0; j < m; j++, i++) x[i] = (float)(a * sin(2 * M_PI * 1000.0 * i / sr));
    }
    *n = tot;
    return x;
}

static void test_loudness_reference(void **st)
{
    (void)st;
    static const char *cases[] = {"sine_0dbfs_48k", "sine_0dbfs_44k", "sine_0dbfs_16k",
                                  "tech3341_case1", "tech3341_case2", "tech3341_case3",
                                  "tech3341_case4", "tech3341_case5"};
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read(FIX, &f, &e)) fail_msg("%s", e.msg);
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        hid_t g = H5Gopen2(f, cases[c], H5P_DEFAULT);
        assert_true(g >= 0);
        double *sec, *db, ref, nominal;
        int r;
        hsize_t dims[2];
        int64_t sr;
        if (mm_h5_read_f64(g, "seconds", 1, &sec, &r, dims, &e) ||
            mm_h5_read_f64(g, "dbfs", 1, &db, &r, dims, &e) ||
            mm_h5_attr_get_f64(g, "lufs", &ref, &e) || mm_h5_attr_get_f64(g, "nominal", &nominal, &e) ||
            mm_h5_attr_get_i64(g, "sr", &sr, &e))
            fail_msg("%s", e.msg);
        size_t n;
        float *x = sine_segments((int)sr, sec, db, dims[0], &n);
        double l;
        if (mm_level_loudness(x, n, (int)sr, &l, &e)) fail_msg("%s", e.msg);
        printf("  %-16s %9.4f LUFS  reference %9.4f  nominal %7.2f\n", cases[c], l, ref, nominal);
        /* Same filters and gates in double on the same float32 signal: only summation order
         * and libm's last bits differ, so 0.001 LU (the brief asks 0.01). */
        assert_true(fabs(l - ref) < 1e-3);
        worst = fmax(worst, fabs(l - ref));
        /* EBU Tech 3341 allows ±0.1 LU; the standard's reference sine reads −3.01 at 48 and
         * 44.1 kHz within 0.01 (the bilinear K-weighting at 16 kHz reads 0.05 high, as
         * libebur128's does, so only Tech 3341's ±0.1 is asked there). */
        double tol = strncmp(cases[c], "sine", 4) == 0 && sr >= 44100 ? 0.01 : 0.1;
        assert_true(fabs(l - nominal) < tol);
        free(x);
        free(sec);
        free(db);
        H5Gclose(g);
    }
    printf("  max |C - scipy reference| = %.2g LU\n", worst);
    mm_h5_close(f);
}

/* Digital silence is gated out: a sine followed by as much silence reads as the sine alone
 * except for the three blocks straddling the edge (3/4, 1/2, 1/4 sine), which pass the
 * relative gate: 97 full blocks become (97 + 1.5) / 100, −0.066 LU; without the gates it
 * would read 3 dB lower. All silence reads -inf. */
static void test_loudness_gating(void **st)
{
    (void)st;
    int sr = 48000;
    size_t n = 10 * (size_t)sr;
    float *x = calloc(2 * n, sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 * sin(2 * M_PI * 1000.0 * i / sr));
    mm_err e = {0};
    double alone, with_silence, silent;
    assert_int_equal(mm_level_loudness(x, n, sr, &alone, &e), 0);
    assert_int_equal(mm_level_loudness(x, 2 * n, sr, &with_silence, &e), 0);
    printf("  sine %.4f LUFS, sine + as much silence %.4f LUFS\n", alone, with_silence);
    double edge = 10 * log10(98.5 / 100.0);
    assert_true(fabs(with_silence - alone - edge) < 0.005);
    /* quiet noise at -80 dBFS instead of silence: below the absolute gate, same result */
    for (size_t i = n; i < 2 * n; i++) x[i] = (float)(1e-4 * sin(2 * M_PI * 300.0 * i / sr));
    double quiet;
    assert_int_equal(mm_level_loudness(x, 2 * n, sr, &quiet, &e), 0);
    assert_true(fabs(quiet - alone - edge) < 0.005);
    memset(x, 0, 2 * n * sizeof *x);
    assert_int_equal(mm_level_loudness(x, 2 * n, sr, &silent, &e), 0);
    assert_true(isinf(silent) && silent < 0);
    /* shorter than one block: an error naming the length */
    assert_int_equal(mm_level_loudness(x, 19199, sr, &silent, &e), MM_EINVAL);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "19199 samples"));
    free(x);
}

static void test_voiced_rms(void **st)
{
    (void)st;
    int sr = 16000;
    size_t n = 3 * (size_t)sr;
    float *x = calloc(n, sizeof *x);
    /* 1 s silence, 1 s of a sine at -6 dBFS peak, 1 s silence: voiced RMS = -6 - 3.01 */
    for (size_t i = sr; i < 2 * (size_t)sr; i++) x[i] = (float)(0.5 * sin(2 * M_PI * 440.0 * i / sr));
    mm_err e = {0};
    double v;
    assert_int_equal(mm_level_voiced_rms(x, n, sr, 40, 0, 0, &v, &e), 0);
    double want = 20 * log10(0.5) - 10 * log10(2.0);
    printf("  voiced RMS %.3f dBFS, expected %.3f (whole-clip RMS would be %.3f)\n", v, want,
           want - 10 * log10(3.0));
    /* the 25 ms frames at the edges of the burst are voiced and bring up to 2 x 399 silent
     * samples into the 16000 of the sine: at most 10·log10(16000/16800) = -0.21 dB */
    assert_true(v <= want + 1e-3 && v > want - 0.22);
    memset(x, 0, n * sizeof *x);
    assert_int_equal(mm_level_voiced_rms(x, n, sr, 40, 0, 0, &v, &e), 0);
    assert_true(isinf(v));
    assert_int_equal(mm_level_voiced_rms(x, n, sr, 200, 0, 0, &v, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "top_db 200"));
    free(x);
}

/* A speech-like test signal: noise bursts with a syllable envelope and pauses. */
static float *speechlike(int sr, size_t n)
{
    float *x = malloc(n * sizeof *x);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = ((s >> 11) * (1.0 / 9007199254740992.0)) - 0.5;
        double t = (double)i / sr;
        double env = fmax(0.0, sin(2 * M_PI * 2.5 * t)) * (fmod(t, 2.0) < 1.5 ? 1.0 : 0.0);
        x[i] = (float)(0.3 * env * (u + 0.5 * sin(2 * M_PI * 180.0 * t)));
    }
    return x;
}

static void test_normalize_gain_invariance(void **st)
{
    (void)st;
    int sr = 16000;
    size_t n = 4 * (size_t)sr;
    float *x = speechlike(sr, n), *xs = malloc(n * sizeof *xs);
    mm_level_params p;
    mm_level_params_default(&p);
    for (int m = 0; m < 2; m++) {
        p.measure = m ? MM_LEVEL_RMS : MM_LEVEL_LUFS;
        p.target = m ? -20.0 : -23.0;
        mm_err e = {0};
        float *y0;
        mm_level_report r0;
        if (mm_level_normalize(x, n, sr, &p, &y0, &r0, &e)) fail_msg("%s", e.msg);
        double after;
        if (m == 0) mm_level_loudness(y0, n, sr, &after, &e);
        else mm_level_voiced_rms(y0, n, sr, p.top_db, 0, 0, &after, &e);
        printf("  %s: measured %.3f, gain %.3f dB, after %.4f, peak %.2f dBFS\n", m ? "rms" : "lufs",
               r0.measured, r0.gain_db, after, r0.peak_dbfs);
        assert_true(fabs(after - p.target) < 1e-3);
        assert_false(r0.limited);
        double worst = 0;
        for (int g = -20; g <= 20; g += 5) {
            float k = (float)pow(10.0, g / 20.0);
            for (size_t i = 0; i < n; i++) xs[i] = x[i] * k;
            float *y;
            mm_level_report r;
            if (mm_level_normalize(xs, n, sr, &p, &y, &r, &e)) fail_msg("%s", e.msg);
            /* float rounding: x·k rounds each sample (2^-24 relative), the gain is computed
             * in double and rounded to float: 1e-6 of the peak */
            double d = tu_max_abs_diff(y, y0, n) / tu_max_abs(y0, n);
            worst = fmax(worst, d);
            assert_true(d < 1e-6);
            free(y);
        }
        printf("  max relative difference over gains -20..20 dB: %.2g\n", worst);
        free(y0);
    }
    free(x);
    free(xs);
}

static void test_normalize_peak_limit(void **st)
{
    (void)st;
    int sr = 48000;
    size_t n = 2 * (size_t)sr;
    /* a click track: a quiet sine with full-scale spikes, so -10 LUFS would clip */
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.05 * sin(2 * M_PI * 500.0 * i / sr));
    for (size_t i = 0; i < n; i += 4800) x[i] = 0.9f;
    mm_level_params p;
    mm_level_params_default(&p);
    p.target = -10;
    mm_err e = {0};
    float *y;
    mm_level_report r;
    if (mm_level_normalize(x, n, sr, &p, &y, &r, &e)) fail_msg("%s", e.msg);
    printf("  wanted %+.2f dB, applied %+.2f dB, peak %.4f dBFS, limited %d\n", r.wanted_db,
           r.gain_db, r.peak_dbfs, r.limited);
    assert_true(r.limited);
    assert_true(r.gain_db < r.wanted_db);
    assert_true(tu_max_abs(y, n) <= pow(10.0, -1.0 / 20.0));
    assert_true(r.peak_dbfs <= -1.0 && r.peak_dbfs > -1.0001);
    free(y);
    /* out-of-range parameters and silence: one line naming the parameter, value, range */
    p.target = 5;
    assert_int_equal(mm_level_normalize(x, n, sr, &p, &y, &r, &e), MM_EINVAL);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "target 5"));
    assert_non_null(strstr(e.msg, "-70..0"));
    p.target = -23;
    p.peak_limit_dbfs = 1;
    assert_int_equal(mm_level_normalize(x, n, sr, &p, &y, &r, &e), MM_EINVAL);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "peak_limit_dbfs 1"));
    p.peak_limit_dbfs = -1;
    memset(x, 0, n * sizeof *x);
    assert_int_equal(mm_level_normalize(x, n, sr, &p, &y, &r, &e), MM_EDATA);
    printf("  %s\n", e.msg);
    assert_non_null(strstr(e.msg, "silent"));
    free(x);
}

/* mm_level_peak_abs against a one-at-a-time scan, known answers: every
 * length 0..70 (the 16-wide body and the tail), the peak at each place and
 * negative, NaNs skipped as the scalar comparison skips them. */
static void test_peak_abs(void **st)
{
    float x[70];
    for (size_t n = 0; n <= 70; n++)
        for (size_t at = 0; at < (n ? n : 1); at++) {
            for (size_t i = 0; i < n; i++) x[i] = 0.25f * (float)sin(0.7 * (double)i);
            if (n) x[at] = (at % 2 ? -1.5f : 1.5f) + 0.001f * (float)at;
            if (n > 3) x[(at + 3) % n] = NAN;
            float ref = 0;
            for (size_t i = 0; i < n; i++) ref = fabsf(x[i]) > ref ? fabsf(x[i]) : ref;
            assert_true(mm_level_peak_abs(x, n) == ref);
            if (n && (at + 3) % n != at) assert_true(ref == fabsf(x[at]));
        }
    assert_true(mm_level_peak_abs(NULL, 0) == 0.0f);
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loudness_reference),
        cmocka_unit_test(test_loudness_gating),
        cmocka_unit_test(test_voiced_rms),
        cmocka_unit_test(test_normalize_gain_invariance),
        cmocka_unit_test(test_normalize_peak_limit),
        cmocka_unit_test(test_peak_abs),
    };
    return cmocka_run_group_tests_name("level", tests, NULL, NULL);
}
