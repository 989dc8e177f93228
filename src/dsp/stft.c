/* stft.c — short-time Fourier transform (power / magnitude) on FFTW3 single precision.
 *
 * Matches torch.stft framing: frame t is the (reflect/zero) padded signal [t·hop, t·hop +
 * n_fft) times the n_fft-long window, r2c FFT, power re² + im² in float32. One plan per
 * object (FFTW_ESTIMATE: reproducible, no timing-dependent plan), created under a mutex
 * since FFTW's planner is not thread-safe, executed with the new-array interface on
 * per-call buffers so that computing is thread-safe. Leaves out: complex output,
 * normalisation, inverse STFT.
 */
#include "dsp/stft.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mm_stft {
    int n_fft, hop, center, n_bins;
    mm_pad_mode pad;
    float *window;      /* (n_fft) */
    fftwf_plan plan;    /* r2c of n_fft, planned on fftwf_malloc'd (SIMD-aligned) arrays */
};

static pthread_mutex_t g_fftw_lock = PTHREAD_MUTEX_INITIALIZER;

void mm_window_hann(float *w, int n, int periodic)
{
    if (n <= 0) return;
    if (n == 1) {
        w[0] = 1.0f;
        return;
    }
    /* w[i] = 0.5 − 0.5·cos(2πi / N), N = n (periodic) or n − 1 (symmetric). */
    double N = periodic ? n : n - 1;
    for (int i = 0; i < n; i++) w[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / N));
}

int mm_stft_create(int n_fft, int hop, const float *window, int center, mm_pad_mode pad,
                   mm_stft **out, mm_err *err)
{
    if (n_fft < 2 || n_fft > (1 << 20))
        return mm_err_set(err, MM_EINVAL, "stft: n_fft %d; expected 2 to 1048576", n_fft);
    if (hop < 1)
        return mm_err_set(err, MM_EINVAL, "stft: hop %d; expected >= 1", hop);
    if (pad != MM_PAD_REFLECT && pad != MM_PAD_CONSTANT)
        return mm_err_set(err, MM_EINVAL, "stft: unknown pad mode %d", (int)pad);
    mm_stft *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->n_fft = n_fft;
    s->hop = hop;
    s->center = center ? 1 : 0;
    s->pad = pad;
    s->n_bins = n_fft / 2 + 1;
    s->window = mm_malloc((size_t)n_fft, sizeof *s->window, err);
    if (!s->window) {
        free(s);
        return MM_ENOMEM;
    }
    if (window)
        memcpy(s->window, window, (size_t)n_fft * sizeof *s->window);
    else
        mm_window_hann(s->window, n_fft, 1);
    float *in = fftwf_malloc((size_t)n_fft * sizeof *in);
    fftwf_complex *spec = fftwf_malloc((size_t)s->n_bins * sizeof *spec);
    if (in && spec) {
        pthread_mutex_lock(&g_fftw_lock);
        s->plan = fftwf_plan_dft_r2c_1d(n_fft, in, spec, FFTW_ESTIMATE);
        pthread_mutex_unlock(&g_fftw_lock);
    }
    fftwf_free(in);
    fftwf_free(spec);
    if (!s->plan) {
        free(s->window);
        free(s);
        return mm_err_set(err, MM_ENOMEM, "stft: FFTW could not plan an FFT of size %d", n_fft);
    }
    *out = s;
    return 0;
}

void mm_stft_free(mm_stft *s)
{
    if (!s) return;
    pthread_mutex_lock(&g_fftw_lock);
    fftwf_destroy_plan(s->plan);
    pthread_mutex_unlock(&g_fftw_lock);
    free(s->window);
    free(s);
}

int mm_stft_n_fft(const mm_stft *s) { return s->n_fft; }
int mm_stft_n_bins(const mm_stft *s) { return s->n_bins; }

size_t mm_stft_n_frames(const mm_stft *s, size_t n)
{
    size_t padded = s->center ? n + 2 * (size_t)(s->n_fft / 2) : n;
    if (n == 0 || padded < (size_t)s->n_fft) return 0;
    return 1 + (padded - (size_t)s->n_fft) / (size_t)s->hop;
}

/* Sample i of the padded signal (i may be < 0 or >= n in original coordinates). */
static inline float padded_at(const float *x, long long n, long long i, mm_pad_mode pad)
{
    if (i >= 0 && i < n) return x[i];
    if (pad == MM_PAD_CONSTANT) return 0.0f;
    /* reflect without repeating the edge sample: x[-k] = x[k], x[n-1+k] = x[n-1-k] */
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return (i >= 0 && i < n) ? x[i] : 0.0f;
}

static int stft_run(const mm_stft *s, const float *x, size_t n, size_t t0, size_t t1,
                    float *out, int magnitude, mm_err *err)
{
    size_t nf = mm_stft_n_frames(s, n);
    int half = s->center ? s->n_fft / 2 : 0;
    if (nf == 0)
        return mm_err_set(err, MM_EDATA, "stft: %zu samples; expected at least %d", n,
                          s->center ? 1 : s->n_fft);
    if (s->center && s->pad == MM_PAD_REFLECT && n <= (size_t)half)
        return mm_err_set(err, MM_EDATA,
                          "stft: %zu samples is too short for reflect padding of %d; expected "
                          "more than %d samples",
                          n, half, half);
    if (t1 > nf) t1 = nf;
    if (t0 >= t1)
        return mm_err_set(err, MM_EINVAL, "stft: frame range [%zu, %zu) outside [0, %zu)", t0,
                          t1, nf);
    int N = s->n_fft, nb = s->n_bins;
    float *fr = fftwf_malloc((size_t)N * sizeof *fr);
    fftwf_complex *sp = fftwf_malloc((size_t)nb * sizeof *sp);
    if (!fr || !sp) {
        fftwf_free(fr);
        fftwf_free(sp);
        return mm_err_set(err, MM_ENOMEM, "stft: out of memory");
    }
    const float *w = s->window;
    for (size_t t = t0; t < t1; t++) {
        long long a = (long long)(t * (size_t)s->hop) - half;
        if (a >= 0 && a + N <= (long long)n) {
            const float *xs = x + a;
            for (int i = 0; i < N; i++) fr[i] = xs[i] * w[i];
        } else {
            for (int i = 0; i < N; i++) fr[i] = padded_at(x, (long long)n, a + i, s->pad) * w[i];
        }
        fftwf_execute_dft_r2c(s->plan, fr, sp);
        float *row = out + (t - t0) * (size_t)nb;
        if (magnitude)
            for (int k = 0; k < nb; k++) row[k] = sqrtf(sp[k][0] * sp[k][0] + sp[k][1] * sp[k][1]);
        else
            for (int k = 0; k < nb; k++) row[k] = sp[k][0] * sp[k][0] + sp[k][1] * sp[k][1];
    }
    fftwf_free(fr);
    fftwf_free(sp);
    return 0;
}

int mm_stft_power(const mm_stft *s, const float *x, size_t n, float *out, mm_err *err)
{
    return stft_run(s, x, n, 0, SIZE_MAX, out, 0, err);
}

int mm_stft_magnitude(const mm_stft *s, const float *x, size_t n, float *out, mm_err *err)
{
    return stft_run(s, x, n, 0, SIZE_MAX, out, 1, err);
}

int mm_stft_power_frames(const mm_stft *s, const float *x, size_t n, size_t t0, size_t t1,
                         float *out, mm_err *err)
{
    return stft_run(s, x, n, t0, t1, out, 0, err);
}
