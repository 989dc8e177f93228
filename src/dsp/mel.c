/* mel.c — mel filterbank matrices (n_mels × n_fft/2+1), computed in double, stored float32.
 *
 * Slaney/HTK banks as librosa.filters.mel = torchaudio melscale_fbanks(mel_scale='slaney',
 * norm='slaney'): n_mels+2 points equally spaced in mel between fmin and fmax, triangles at
 * the rfft bin frequencies k·sr/n_fft, optional area norm 2/(f[m+2] − f[m]). Kaldi banks as
 * torchaudio.compliance.kaldi.get_mel_banks: triangles in 1127·ln(1 + f/700) on n_fft/2
 * bins plus the zero Nyquist column EfficientAT pads. Leaves out: VTLN warping.
 */
#include "dsp/mel.h"

#include <math.h>
#include <stdlib.h>

static inline double dmin(double a, double b) { return a < b ? a : b; }

/* Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above. */
static double hz_to_mel(double f, int htk)
{
    if (htk) return 2595.0 * log10(1.0 + f / 700.0);
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (f >= min_log_hz) return min_log_mel + log(f / min_log_hz) / logstep;
    return f / f_sp;
}

static double mel_to_hz(double m, int htk)
{
    if (htk) return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (m >= min_log_mel) return min_log_hz * exp(logstep * (m - min_log_mel));
    return f_sp * m;
}

static int check_args(const char *what, int sr, int n_fft, int n_mels, double fmin, double fmax,
                      mm_err *err)
{
    if (sr <= 0 || n_fft < 2 || n_mels < 1 || n_mels > 4096)
        return mm_err_set(err, MM_EINVAL,
                          "%s: sr %d, n_fft %d, n_mels %d; expected sr > 0, n_fft >= 2, "
                          "1 <= n_mels <= 4096",
                          what, sr, n_fft, n_mels);
    if (!(fmin >= 0) || !(fmax > fmin) || fmax > sr / 2.0 + 1e-9)
        return mm_err_set(err, MM_EINVAL,
                          "%s: fmin %g, fmax %g; expected 0 <= fmin < fmax <= sr/2 = %g", what,
                          fmin, fmax, sr / 2.0);
    return 0;
}

int mm_mel_filterbank(int sr, int n_fft, int n_mels, double fmin, double fmax, int htk,
                      int norm_slaney, float **fb, mm_err *err)
{
    int rc = check_args("mel filterbank", sr, n_fft, n_mels, fmin, fmax, err);
    if (rc) return rc;
    int nb = n_fft / 2 + 1;
    float *w = mm_calloc((size_t)n_mels * nb, sizeof *w, err);
    double *f = mm_malloc((size_t)n_mels + 2, sizeof *f, err);
    if (!w || !f) {
        free(w);
        free(f);
        return MM_ENOMEM;
    }
    double m0 = hz_to_mel(fmin, htk), m1 = hz_to_mel(fmax, htk);
    for (int i = 0; i < n_mels + 2; i++)
        f[i] = mel_to_hz(m0 + (m1 - m0) * i / (n_mels + 1), htk);
    for (int m = 0; m < n_mels; m++) {
        double lo = f[m], c = f[m + 1], hi = f[m + 2];
        double enorm = norm_slaney ? 2.0 / (hi - lo) : 1.0;
        for (int k = 0; k < nb; k++) {
            double fk = (double)k * sr / n_fft;   /* rfft bin frequency */
            double up = (fk - lo) / (c - lo), down = (hi - fk) / (hi - c);
            double v = dmin(up, down);
            w[(size_t)m * nb + k] = v > 0 ? (float)(v * enorm) : 0.0f;
        }
    }
    free(f);
    *fb = w;
    return 0;
}

static double kaldi_mel(double f) { return 1127.0 * log(1.0 + f / 700.0); }

int mm_mel_filterbank_kaldi(int sr, int n_fft, int n_mels, double fmin, double fmax, float **fb,
                            mm_err *err)
{
    int rc = check_args("kaldi mel filterbank", sr, n_fft, n_mels, fmin, fmax, err);
    if (rc) return rc;
    int nb = n_fft / 2 + 1, nk = n_fft / 2;   /* kaldi evaluates n_fft/2 bins; Nyquist stays 0 */
    float *w = mm_calloc((size_t)n_mels * nb, sizeof *w, err);
    if (!w) return MM_ENOMEM;
    double bin_w = (double)sr / n_fft;
    double ml = kaldi_mel(fmin), mh = kaldi_mel(fmax), d = (mh - ml) / (n_mels + 1);
    for (int m = 0; m < n_mels; m++) {
        double left = ml + m * d, center = ml + (m + 1) * d, right = ml + (m + 2) * d;
        for (int k = 0; k < nk; k++) {
            double mk = kaldi_mel(bin_w * k);
            double up = (mk - left) / (center - left), down = (right - mk) / (right - center);
            double v = dmin(up, down);
            w[(size_t)m * nb + k] = v > 0 ? (float)v : 0.0f;
        }
    }
    *fb = w;
    return 0;
}
