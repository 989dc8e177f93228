/* features.c — frame-wise handcrafted features matching librosa 0.10.2.
 *
 * Reference: librosa 0.10.2 feature/spectral.py, onset.py, feature/rhythm.py,
 * filters.py (chroma) and core/pitch.py (estimate_tuning); ported to numpy in
 * tests/ref/gen_features.py. Spectra come from mm_stft (centred, zero-padded,
 * periodic Hann) and mm_mel_filterbank (slaney). Sums run in double; librosa
 * mixes float32 and float64, so results agree to float32 rounding.
 * Leaves out: CQT-based chroma, other window shapes, multichannel input.
 */
#include "dsp/features.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dsp/mel.h"
#include "dsp/stft.h"

struct mm_feats {
    mm_feats_params p;
    int n_bins;          /* n_fft/2 + 1 */
    mm_stft *stft;
    float *mel_fb;       /* (n_mels, n_bins) slaney filterbank */
    int *mel_lo, *mel_hi;/* (n_mels) non-zero column range [lo, hi) of each filter */
    float *dct_t;        /* (n_mels, n_mfcc) DCT-II ortho, transposed */
    float *chroma_t;     /* (n_bins, n_chroma) chroma filterbank for the fixed tuning, transposed */
    int tg_win;          /* tempogram window (frames) */
    int tg_pad;          /* FFT size for the autocorrelation, >= 2 tg_win - 1 */
    float *tg_window;    /* (tg_win) periodic Hann */
    fftwf_plan tg_fwd, tg_inv;
};

void mm_feats_params_default(mm_feats_params *p)
{
    memset(p, 0, sizeof *p);
    p->sample_rate = 22050;
    p->n_fft = 2048;
    p->hop_length = 512;
    p->n_mels = 128;
    p->n_mfcc = 20;
    p->n_chroma = 12;
    p->chroma_power = 2;
    p->estimate_tuning = 0;
    p->tuning = 0.0;
    p->top_db = 80.0;
    p->contrast_fmin = 200.0;
    p->contrast_bands = 6;
    p->contrast_quantile = 0.02;
    p->rolloff_percent = 0.85;
    p->onset_lag = 1;
    p->tempo_start_bpm = 120.0;
    p->tempo_std_bpm = 1.0;
    p->tempo_ac_size = 8.0;
    p->tempo_max_bpm = 320.0;
}

int mm_feats_params_check(const mm_feats_params *p, mm_err *err)
{
    if (p->sample_rate < 1000 || p->sample_rate > 384000)
        return mm_err_set(err, MM_EINVAL, "features: sample_rate %d: expected 1000..384000",
                          p->sample_rate);
    if (p->n_fft < 16 || p->n_fft > 65536 || p->n_fft % 2)
        return mm_err_set(err, MM_EINVAL, "features: n_fft %d: expected an even number in 16..65536",
                          p->n_fft);
    if (p->hop_length < 1 || p->hop_length > p->n_fft)
        return mm_err_set(err, MM_EINVAL, "features: hop_length %d: expected 1..n_fft (%d)",
                          p->hop_length, p->n_fft);
    if (p->n_mels < 1 || p->n_mels > 1024)
        return mm_err_set(err, MM_EINVAL, "features: n_mels %d: expected 1..1024", p->n_mels);
    if (p->n_mfcc < 1 || p->n_mfcc > p->n_mels)
        return mm_err_set(err, MM_EINVAL, "features: n_mfcc %d: expected 1..n_mels (%d)",
                          p->n_mfcc, p->n_mels);
    if (p->n_chroma < 1 || p->n_chroma > 120)
        return mm_err_set(err, MM_EINVAL, "features: n_chroma %d: expected 1..120", p->n_chroma);
    if (p->chroma_power != 1 && p->chroma_power != 2)
        return mm_err_set(err, MM_EINVAL, "features: chroma_power %d: expected 1 or 2",
                          p->chroma_power);
    if (!(p->tuning >= -0.5 && p->tuning < 0.5))
        return mm_err_set(err, MM_EINVAL, "features: tuning %g: expected a number in [-0.5, 0.5)",
                          p->tuning);
    if (!(p->top_db >= 0))
        return mm_err_set(err, MM_EINVAL, "features: top_db %g: expected >= 0", p->top_db);
    if (p->contrast_bands < 1 || p->contrast_bands > 16)
        return mm_err_set(err, MM_EINVAL, "features: contrast_bands %d: expected 1..16",
                          p->contrast_bands);
    if (!(p->contrast_fmin > 0) ||
        !(p->contrast_fmin * pow(2.0, p->contrast_bands - 1) < 0.5 * p->sample_rate))
        return mm_err_set(err, MM_EINVAL,
                          "features: contrast_fmin %g Hz with %d bands exceeds Nyquist (%g Hz)",
                          p->contrast_fmin, p->contrast_bands, 0.5 * p->sample_rate);
    /* every band must hold at least one STFT bin */
    if (!(p->contrast_fmin >= 2.0 * p->sample_rate / p->n_fft))
        return mm_err_set(err, MM_EINVAL,
                          "features: contrast_fmin %g Hz: expected >= 2 STFT bins (%g Hz)",
                          p->contrast_fmin, 2.0 * p->sample_rate / p->n_fft);
    if (!(p->contrast_quantile > 0 && p->contrast_quantile < 1))
        return mm_err_set(err, MM_EINVAL, "features: contrast_quantile %g: expected in (0, 1)",
                          p->contrast_quantile);
    if (!(p->rolloff_percent > 0 && p->rolloff_percent < 1))
        return mm_err_set(err, MM_EINVAL, "features: rolloff_percent %g: expected in (0, 1)",
                          p->rolloff_percent);
    if (p->onset_lag < 1 || p->onset_lag > 64)
        return mm_err_set(err, MM_EINVAL, "features: onset_lag %d: expected 1..64", p->onset_lag);
    if (!(p->tempo_start_bpm > 0) || !(p->tempo_std_bpm > 0) || !(p->tempo_max_bpm > 0))
        return mm_err_set(err, MM_EINVAL, "features: tempo prior (start %g, std %g, max %g): "
                          "expected positive values", p->tempo_start_bpm, p->tempo_std_bpm,
                          p->tempo_max_bpm);
    long win = (long)(p->tempo_ac_size * p->sample_rate) / p->hop_length;
    if (!(p->tempo_ac_size > 0) || win < 2 || win > 100000)
        return mm_err_set(err, MM_EINVAL, "features: tempo_ac_size %g s gives a %ld-frame "
                          "tempogram window: expected 2..100000", p->tempo_ac_size, win);
    return 0;
}

/* ------------------------------------------------------------ kernels */

void mm_feat_power_to_db(float *x, size_t n, double ref, double amin, double top_db)
{
    /* float32 arithmetic, as librosa on a float32 spectrogram */
    float off = (float)(10.0 * log10(fmax(amin, fabs(ref))));
    float am = (float)amin, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        float d = 10.0f * log10f(x[i] > am ? x[i] : am) - off;
        x[i] = d;
        if (d > mx) mx = d;
    }
    if (top_db >= 0 && n) {
        float floor_db = (float)(mx - top_db);
        for (size_t i = 0; i < n; i++)
            if (x[i] < floor_db) x[i] = floor_db;
    }
}

float *mm_feat_dct_matrix(int n_out, int n_in, mm_err *err)
{
    float *m = mm_malloc((size_t)n_out * n_in, sizeof *m, err);
    if (!m) return NULL;
    /* y_k = s_k sum_n x_n cos(pi k (2n+1) / 2N), s_0 = sqrt(1/N), s_k = sqrt(2/N) */
    for (int k = 0; k < n_out; k++) {
        double s = k == 0 ? sqrt(1.0 / n_in) : sqrt(2.0 / n_in);
        for (int j = 0; j < n_in; j++)
            m[(size_t)k * n_in + j] = (float)(s * cos(M_PI * k * (2.0 * j + 1) / (2.0 * n_in)));
    }
    return m;
}

/* Python's remainder (sign of the divisor). */
static double pymod(double a, double n) { return a - n * floor(a / n); }

int mm_feat_chroma_filterbank(int sr, int n_fft, int n_chroma, double tuning, float **fb,
                              mm_err *err)
{
    int nb = n_fft / 2 + 1;
    double *frq = mm_malloc((size_t)nb + 1, sizeof *frq, err);
    double *w = mm_malloc((size_t)n_chroma * nb, sizeof *w, err);
    float *out = mm_malloc((size_t)n_chroma * nb, sizeof *out, err);
    if (!frq || !w || !out) {
        free(frq); free(w); free(out);
        return MM_ENOMEM;
    }
    /* frqbins: chroma-bin position of each FFT bin (bin 0 faked 1.5 octaves
     * below bin 1); columns up to nb need positions up to nb. */
    double a440 = 440.0 * pow(2.0, tuning / n_chroma);
    double step = (double)sr / n_fft;
    for (int k = 1; k <= nb; k++) frq[k] = n_chroma * log2((k * step) / (a440 / 16));
    frq[0] = frq[1] - 1.5 * n_chroma;
    double half = nearbyint(n_chroma / 2.0);
    for (int k = 0; k < nb; k++) {
        double width = fmax(frq[k + 1] - frq[k], 1.0);
        double norm2 = 0;
        for (int c = 0; c < n_chroma; c++) {
            double d = pymod(frq[k] - c + half + 10.0 * n_chroma, n_chroma) - half;
            double v = exp(-0.5 * pow(2.0 * d / width, 2));
            w[(size_t)c * nb + k] = v;
            norm2 += v * v;
        }
        norm2 = sqrt(norm2);
        if (norm2 < DBL_MIN) norm2 = 1.0;
        double oct = exp(-0.5 * pow((frq[k] / n_chroma - 5.0) / 2.0, 2));
        for (int c = 0; c < n_chroma; c++) w[(size_t)c * nb + k] *= oct / norm2;
    }
    /* base C: row r is the old row r + 3 (np.roll by -3) */
    int shift = 3 * (n_chroma / 12);
    for (int c = 0; c < n_chroma; c++) {
        int src = (c + shift) % n_chroma;
        for (int k = 0; k < nb; k++) out[(size_t)c * nb + k] = (float)w[(size_t)src * nb + k];
    }
    free(frq);
    free(w);
    *fb = out;
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double mm_feat_estimate_tuning(const float *S, size_t n_frames, int n_fft, int sr,
                               int bins_per_octave)
{
    int nb = n_fft / 2 + 1;
    double fmax_hz = fmin(4000.0, sr / 2.0);
    double val = 1.0 / (n_fft * (1.0 / sr));
    /* pass 1: (pitch, magnitude) of every thresholded local maximum (piptrack) */
    size_t cap = 0, cnt = 0;
    for (size_t t = 0; t < n_frames; t++) cap += (size_t)(nb + 1) / 2;
    float *pitch = malloc((cap ? cap : 1) * sizeof *pitch);
    float *mag = malloc((cap ? cap : 1) * sizeof *mag);
    float *tmp = malloc((cap ? cap : 1) * sizeof *tmp);
    double tuning = 0.0;
    if (!pitch || !mag || !tmp) goto done;
    for (size_t t = 0; t < n_frames; t++) {
        const float *s = S + t * nb;
        float mx = s[0];
        for (int k = 1; k < nb; k++) if (s[k] > mx) mx = s[k];
        float ref = 0.1f * mx;
#define TH(k) (s[k] > ref ? s[k] : 0.0f)
        for (int k = 1; k < nb; k++) {
            double f = k * val;
            if (!(f >= 150.0 && f < fmax_hz)) continue;
            int is_max = k < nb - 1 ? (TH(k) > TH(k - 1) && TH(k) >= TH(k + 1))
                                    : (TH(k) > TH(k - 1));
            if (!is_max) continue;
            float shift = 0, avg;
            if (k < nb - 1) {
                float a = s[k + 1] + s[k - 1] - 2 * s[k];
                float b = (s[k + 1] - s[k - 1]) / 2;
                shift = fabsf(b) >= fabsf(a) ? 0.0f : -b / a;
                avg = (s[k + 1] - s[k - 1]) / 2;
            } else {
                avg = s[k] - s[k - 1];
            }
            float pv = (float)(((double)k + shift) * (double)sr / n_fft);
            if (pv > 0 && cnt < cap) {
                pitch[cnt] = pv;
                mag[cnt] = s[k] + 0.5f * avg * shift;
                cnt++;
            }
        }
#undef TH
    }
    if (!cnt) goto done;
    /* threshold: median magnitude */
    memcpy(tmp, mag, cnt * sizeof *tmp);
    qsort(tmp, cnt, sizeof *tmp, cmp_float);
    float thr = cnt % 2 ? tmp[cnt / 2] : (tmp[cnt / 2 - 1] + tmp[cnt / 2]) / 2;
    /* pitch_tuning: histogram of residuals in 0.01-bin steps over [-0.5, 0.5] */
    enum { NBIN = 100 };
    int counts[NBIN] = {0};
    double edge[NBIN + 1];
    for (int i = 0; i <= NBIN; i++) edge[i] = i * (1.0 / NBIN) - 0.5;
    edge[NBIN] = 0.5;
    int any = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (!(mag[i] >= thr)) continue;
        float r = fmodf((float)bins_per_octave * log2f(pitch[i] / (float)(440.0 / 16)), 1.0f);
        if (r < 0) r += 1.0f;
        if (r >= 0.5f) r -= 1.0f;
        double rd = r;
        if (rd < edge[0] || rd > edge[NBIN]) continue;
        int b = (int)floor((rd + 0.5) * NBIN);
        if (b > NBIN - 1) b = NBIN - 1;
        if (b < 0) b = 0;
        while (b > 0 && rd < edge[b]) b--;
        while (b < NBIN - 1 && rd >= edge[b + 1]) b++;
        counts[b]++;
        any = 1;
    }
    if (any) {
        int best = 0;
        for (int i = 1; i < NBIN; i++) if (counts[i] > counts[best]) best = i;
        tuning = edge[best];
    }
done:
    free(pitch);
    free(mag);
    free(tmp);
    return tuning;
}

/* One frame's L1 length (librosa's normalize(norm=1) guard: a sum below
 * FLT_MIN leaves S as is), centroid sum_k f_k S_k / L and, when bw != NULL,
 * bandwidth sqrt(sum_k S_k (f_k - c)^2 / L). Eight independent partial sums
 * per quantity (fixed-width lanes the compiler vectorises). */
static void centroid_frame(const float *s, int nb, double val, double *centroid, double *bw)
{
    enum { L = 8 };
    double l[L] = {0}, c[L] = {0};
    int k = 0;
    for (; k + L <= nb; k += L)
        for (int j = 0; j < L; j++) {
            l[j] += fabsf(s[k + j]);
            c[j] += (double)(k + j) * val * s[k + j];
        }
    double ls = 0, cs = 0;
    for (; k < nb; k++) {
        ls += fabsf(s[k]);
        cs += (double)k * val * s[k];
    }
    for (int j = 0; j < L; j++) {
        ls += l[j];
        cs += c[j];
    }
    if (ls < FLT_MIN) ls = 1.0;
    double cen = cs / ls;
    *centroid = cen;
    if (!bw) return;
    double v[L] = {0}, vs = 0;
    for (k = 0; k + L <= nb; k += L)
        for (int j = 0; j < L; j++) {
            double d = (double)(k + j) * val - cen;
            v[j] += (double)s[k + j] * d * d;
        }
    for (; k < nb; k++) {
        double d = (double)k * val - cen;
        vs += (double)s[k] * d * d;
    }
    for (int j = 0; j < L; j++) vs += v[j];
    *bw = sqrt(vs / ls);
}

void mm_feat_centroid(const float *S, size_t n_frames, int n_fft, int sr, float *out)
{
    int nb = n_fft / 2 + 1;
    double val = 1.0 / (n_fft * (1.0 / sr));
    for (size_t t = 0; t < n_frames; t++) {
        double c;
        centroid_frame(S + t * nb, nb, val, &c, NULL);
        out[t] = (float)c;
    }
}

void mm_feat_bandwidth(const float *S, size_t n_frames, int n_fft, int sr, float *out)
{
    int nb = n_fft / 2 + 1;
    double val = 1.0 / (n_fft * (1.0 / sr));
    for (size_t t = 0; t < n_frames; t++) {
        double c, b;
        centroid_frame(S + t * nb, nb, val, &c, &b);
        out[t] = (float)b;
    }
}

/* Both at once (one centroid pass per frame). */
static void centroid_bandwidth(const float *S, size_t n_frames, int n_fft, int sr, float *cen,
                               float *bw)
{
    int nb = n_fft / 2 + 1;
    double val = 1.0 / (n_fft * (1.0 / sr));
    for (size_t t = 0; t < n_frames; t++) {
        double c, b;
        centroid_frame(S + t * nb, nb, val, &c, &b);
        cen[t] = (float)c;
        bw[t] = (float)b;
    }
}

void mm_feat_rolloff(const float *S, size_t n_frames, int n_fft, int sr, double roll_percent,
                     float *out)
{
    int nb = n_fft / 2 + 1;
    double val = 1.0 / (n_fft * (1.0 / sr));
    for (size_t t = 0; t < n_frames; t++) {
        const float *s = S + t * nb;
        /* float32 running sum, as np.cumsum on librosa's float32 spectrogram */
        float total = 0;
        for (int k = 0; k < nb; k++) total += s[k];
        float thr = (float)roll_percent * total;
        float cum = 0;
        int k = 0;
        for (; k < nb; k++) {
            cum += s[k];
            if (!(cum < thr)) break;
        }
        if (k == nb) k = nb - 1;
        out[t] = (float)(k * val);
    }
}

/* Insert v into the sorted buffer b (n used of k): ascending when up == 0. */
static inline void keep_extreme(float *b, size_t *n, size_t k, float v, int up)
{
    size_t j = *n < k ? (*n)++ : k - 1;
    if (!up)
        while (j > 0 && b[j - 1] > v) { b[j] = b[j - 1]; j--; }
    else
        while (j > 0 && b[j - 1] < v) { b[j] = b[j - 1]; j--; }
    b[j] = v;
}

/* Whether any of a[0..8) is below / above thr: two SSE2 compares + movemask
 * (every x86-64 CPU has SSE2, so no -march is needed), else a plain loop.
 * No alignment assumed. A boolean: the same answer on every path. */
static inline int block_any_below(const float *a, float thr)
{
#ifdef __SSE2__
    __m128 t = _mm_set1_ps(thr);
    return _mm_movemask_ps(_mm_or_ps(_mm_cmplt_ps(_mm_loadu_ps(a), t), _mm_cmplt_ps(_mm_loadu_ps(a + 4), t)));
#else
    int any = 0;
    for (int j = 0; j < 8; j++) any |= a[j] < thr;
    return any;
#endif
}
static inline int block_any_above(const float *a, float thr)
{
#ifdef __SSE2__
    __m128 t = _mm_set1_ps(thr);
    return _mm_movemask_ps(_mm_or_ps(_mm_cmpgt_ps(_mm_loadu_ps(a), t), _mm_cmpgt_ps(_mm_loadu_ps(a + 4), t)));
#else
    int any = 0;
    for (int j = 0; j < 8; j++) any |= a[j] > thr;
    return any;
#endif
}

/* Sums of the k smallest and k largest of a[0..m) (k <= m): small sorted
 * buffers (lo ascending, hi descending) with insertion when a value beats the
 * current k-th. Spectra mostly fall with frequency, so the smallest are
 * searched from the top bin down and the largest from the bottom up: values
 * then rarely beat the k-th. k = rint(0.02 band size) is a few values. */
static void extreme_sums(const float *a, size_t m, size_t k, float *lo, float *hi, double *sum_lo,
                         double *sum_hi)
{
    size_t nl = 0, nh = 0, i = m;
    /* blocks of 8 whose values cannot enter are skipped by one branch-free test */
    while (i > 0) {
        if (nl == k && i >= 8) {
            if (!block_any_below(a + i - 8, lo[k - 1])) {
                i -= 8;
                continue;
            }
        }
        i--;
        if (nl < k || a[i] < lo[k - 1]) keep_extreme(lo, &nl, k, a[i], 0);
    }
    for (i = 0; i < m;) {
        if (nh == k && i + 8 <= m) {
            if (!block_any_above(a + i, hi[k - 1])) {
                i += 8;
                continue;
            }
        }
        if (nh < k || a[i] > hi[k - 1]) keep_extreme(hi, &nh, k, a[i], 1);
        i++;
    }
    double sl = 0, sh = 0;
    for (size_t j = 0; j < k; j++) {
        sl += lo[j];
        sh += hi[j];
    }
    *sum_lo = sl;
    *sum_hi = sh;
}

int mm_feat_contrast(const float *S, size_t n_frames, int n_fft, int sr, double fmin,
                     int n_bands, double quantile, float *out, mm_err *err)
{
    int nb = n_fft / 2 + 1, nr = n_bands + 1;
    double val = 1.0 / (n_fft * (1.0 / sr));
    int first[32], last[32], q[32];  /* bins [first, last) averaged; q of each end */
    if (nr > 32) return mm_err_set(err, MM_EINVAL, "spectral contrast: %d bands: at most 31", n_bands);
    for (int b = 0; b < nr; b++) {
        double lo = b == 0 ? 0.0 : fmin * pow(2.0, b - 1), hi = fmin * pow(2.0, b);
        int a = -1, z = -1;
        for (int k = 0; k < nb; k++) {
            double f = k * val;
            if (f >= lo && f <= hi) {
                if (a < 0) a = k;
                z = k;
            }
        }
        if (a < 0)
            return mm_err_set(err, MM_EINVAL, "spectral contrast: band %d (%g–%g Hz) holds no "
                              "STFT bin", b, lo, hi);
        if (b > 0 && a > 0) a--;            /* one bin below the band */
        if (b == n_bands) z = nb - 1;       /* the last band runs to Nyquist */
        int count = z - a + 1;
        q[b] = (int)fmax(nearbyint(quantile * count), 1.0);
        first[b] = a;
        last[b] = b < n_bands ? z : z + 1;  /* drop the top bin except in the last band */
        if (last[b] - first[b] < 1) last[b] = first[b] + 1;
        if (q[b] > last[b] - first[b]) q[b] = last[b] - first[b];
    }
    double *peak = mm_malloc(n_frames * nr, sizeof *peak, err);
    double *valley = mm_malloc(n_frames * nr, sizeof *valley, err);
    float *buf = mm_malloc(2 * (size_t)nb, sizeof *buf, err);
    if (!peak || !valley || !buf) {
        free(peak); free(valley); free(buf);
        return MM_ENOMEM;
    }
    for (size_t t = 0; t < n_frames; t++) {
        const float *s = S + t * nb;
        for (int b = 0; b < nr; b++) {
            size_t m = (size_t)(last[b] - first[b]), k = (size_t)q[b];
            double lo, hi;
            extreme_sums(s + first[b], m, k, buf, buf + nb, &lo, &hi);
            valley[t * nr + b] = lo / k;
            peak[t * nr + b] = hi / k;
        }
    }
    /* power_to_db(peak) - power_to_db(valley), each floored 80 dB below its
     * own maximum over the whole clip */
    double pmax = -INFINITY, vmax = -INFINITY;
    size_t total = n_frames * nr;
    for (size_t i = 0; i < total; i++) {
        peak[i] = 10.0 * log10(fmax(1e-10, peak[i]));
        valley[i] = 10.0 * log10(fmax(1e-10, valley[i]));
        if (peak[i] > pmax) pmax = peak[i];
        if (valley[i] > vmax) vmax = valley[i];
    }
    for (size_t i = 0; i < total; i++)
        out[i] = (float)(fmax(peak[i], pmax - 80.0) - fmax(valley[i], vmax - 80.0));
    free(peak);
    free(valley);
    free(buf);
    return 0;
}

int mm_feat_zcr(const float *x, size_t n, int frame, int hop, float *out, mm_err *err)
{
    size_t half = (size_t)frame / 2;
    size_t nf = (n + 2 * half - (size_t)frame) / hop + 1;
    /* padded index i is x[clamp(i - half)] (edge padding); a crossing at i > 0
     * when the sign bits of i - 1 and i differ, |v| <= 1e-10 counting as +0.
     * cum[i] = crossings at 1..i, so frame t counts cum[b - 1] - cum[a]. */
    size_t np = n + 2 * half;
    int *cum = mm_malloc(np, sizeof *cum, err);
    if (!cum) return MM_ENOMEM;
    int prev = 0, c = 0;
    for (size_t i = 0; i < np; i++) {
        long j = (long)i - (long)half;
        if (j < 0) j = 0;
        if (j >= (long)n) j = (long)n - 1;
        double v = x[j];
        int neg = fabs(v) <= 1e-10 ? 0 : signbit(v) != 0;
        if (i > 0 && neg != prev) c++;
        prev = neg;
        cum[i] = c;
    }
    for (size_t t = 0; t < nf; t++) {
        size_t a = t * (size_t)hop, b = a + (size_t)frame;
        out[t] = (float)(cum[b - 1] - cum[a]) / (float)frame;
    }
    free(cum);
    return 0;
}

void mm_feat_rms(const float *x, size_t n, int frame, int hop, float *out)
{
    size_t half = (size_t)frame / 2;
    size_t nf = (n + 2 * half - (size_t)frame) / hop + 1;
    if (frame % hop == 0 && half % (size_t)hop == 0) {
        /* frames are whole hop blocks: sum each block once, then add frame/hop
         * block sums per frame (block b covers x[(b - half/hop) hop ...]) */
        size_t per = (size_t)(frame / hop), off = half / (size_t)hop, nblk = nf + per;
        double *blk = malloc(nblk * sizeof *blk);
        if (blk) {
            for (size_t b = 0; b < nblk; b++) {
                long a = ((long)b - (long)off) * hop, e = a + hop;
                if (a < 0) a = 0;
                if (e > (long)n) e = (long)n;
                double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                long j = a;
                for (; j + 4 <= e; j += 4) {
                    s0 += (double)x[j] * x[j];
                    s1 += (double)x[j + 1] * x[j + 1];
                    s2 += (double)x[j + 2] * x[j + 2];
                    s3 += (double)x[j + 3] * x[j + 3];
                }
                for (; j < e; j++) s0 += (double)x[j] * x[j];
                blk[b] = (s0 + s1) + (s2 + s3);
            }
            for (size_t t = 0; t < nf; t++) {
                double s = 0;
                for (size_t q = 0; q < per; q++) s += blk[t + q];
                out[t] = (float)sqrt(s / frame);
            }
            free(blk);
            return;
        }
        /* no memory for the block sums: the direct loop below */
    }
    for (size_t t = 0; t < nf; t++) {
        long a = (long)(t * hop) - (long)half, b = a + frame;
        if (a < 0) a = 0;
        if (b > (long)n) b = (long)n;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;   /* 4 partial sums: independent chains */
        long j = a;
        for (; j + 4 <= b; j += 4) {
            s0 += (double)x[j] * x[j];
            s1 += (double)x[j + 1] * x[j + 1];
            s2 += (double)x[j + 2] * x[j + 2];
            s3 += (double)x[j + 3] * x[j + 3];
        }
        for (; j < b; j++) s0 += (double)x[j] * x[j];
        out[t] = (float)sqrt((s0 + s1 + s2 + s3) / frame);
    }
}

void mm_feat_onset_strength(const float *mel_db, size_t n_frames, size_t n_mels, int lag,
                            int n_fft, int hop, float *out)
{
    size_t pad = (size_t)lag + (size_t)(n_fft / (2 * hop));
    for (size_t i = 0; i < n_frames; i++) {
        out[i] = 0;
        if (i < pad) continue;
        size_t j = i - pad;                 /* difference S[j + lag] - S[j] */
        if (j + lag >= n_frames) continue;
        const float *a = mel_db + (j + lag) * n_mels, *b = mel_db + j * n_mels;
        double s = 0;
        for (size_t m = 0; m < n_mels; m++) {
            float d = a[m] - b[m];
            if (d > 0) s += d;
        }
        out[i] = (float)(s / n_mels);
    }
}

/* ------------------------------------------------------------ tempo */

int mm_feats_tempo(const mm_feats *f, const float *onset, size_t n_frames, double *bpm,
                   mm_err *err)
{
    const mm_feats_params *p = &f->p;
    int win = f->tg_win, npad = f->tg_pad, half = win / 2;
    size_t n = n_frames;
    double *tg = mm_calloc((size_t)win, sizeof *tg, err);
    float *padded = mm_malloc(n + 2 * (size_t)half + 1, sizeof *padded, err);
    float *buf = fftwf_malloc(sizeof(float) * (size_t)npad);
    fftwf_complex *spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(npad / 2 + 1));
    if (!tg || !padded || !buf || !spec) {
        free(tg); free(padded); fftwf_free(buf); fftwf_free(spec);
        return mm_err_set(err, MM_ENOMEM, "tempo: out of memory for %zu frames", n);
    }
    /* np.pad(mode='linear_ramp', end_values=0): ramps from 0 up to the edge values */
    for (int k = 0; k < half; k++) {
        padded[k] = (float)((double)onset[0] * k / half);
        padded[half + n + k] = (float)((double)onset[n - 1] * (half - 1 - k) / half);
    }
    memcpy(padded + half, onset, n * sizeof *padded);
    for (size_t t = 0; t < n; t++) {
        /* windowed frame, zero-padded to npad; autocorrelation = irfft(|rfft|^2) */
        for (int i = 0; i < win; i++) buf[i] = padded[t + i] * f->tg_window[i];
        for (int i = win; i < npad; i++) buf[i] = 0;
        fftwf_execute_dft_r2c(f->tg_fwd, buf, spec);
        for (int i = 0; i <= npad / 2; i++) {
            spec[i][0] = spec[i][0] * spec[i][0] + spec[i][1] * spec[i][1];
            spec[i][1] = 0;
        }
        fftwf_execute_dft_c2r(f->tg_inv, spec, buf);
        /* normalise each frame by its largest |lag| value (norm=inf) */
        double mx = 0;
        for (int i = 0; i < win; i++) mx = fmax(mx, fabs((double)buf[i]));
        double scale = mx < DBL_MIN ? 1.0 : 1.0 / mx;
        for (int i = 0; i < win; i++) tg[i] += buf[i] * scale;
    }
    /* best lag of log1p(1e6 tg) + log-normal prior, among lags below max_bpm */
    int best = -1;
    double best_score = -INFINITY;
    for (int k = 1; k < win; k++) {
        double b = 60.0 * p->sample_rate / (p->hop_length * (double)k);
        if (!(b < p->tempo_max_bpm)) continue;
        double z = (log2(b) - log2(p->tempo_start_bpm)) / p->tempo_std_bpm;
        double score = log1p(1e6 * (tg[k] / n)) - 0.5 * z * z;
        if (score > best_score) {
            best_score = score;
            best = k;
        }
    }
    free(tg);
    free(padded);
    fftwf_free(buf);
    fftwf_free(spec);
    if (best < 0)
        return mm_err_set(err, MM_EINVAL, "tempo: no lag below tempo_max_bpm %g",
                          p->tempo_max_bpm);
    *bpm = 60.0 * p->sample_rate / (p->hop_length * (double)best);
    return 0;
}

/* ------------------------------------------------------------ state */

/* (rows, cols) -> (cols, rows), malloc'd. */
static float *transpose(const float *a, int rows, int cols, mm_err *err)
{
    float *t = mm_malloc((size_t)rows * cols, sizeof *t, err);
    if (!t) return NULL;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) t[(size_t)c * rows + r] = a[(size_t)r * cols + c];
    return t;
}

static int chroma_transposed(const mm_feats_params *p, double tuning, float **out, mm_err *err)
{
    float *fb = NULL;
    int rc = mm_feat_chroma_filterbank(p->sample_rate, p->n_fft, p->n_chroma, tuning, &fb, err);
    if (rc) return rc;
    *out = transpose(fb, p->n_chroma, p->n_fft / 2 + 1, err);
    free(fb);
    return *out ? 0 : MM_ENOMEM;
}

int mm_feats_create(const mm_feats_params *p, mm_feats **out, mm_err *err)
{
    int rc = mm_feats_params_check(p, err);
    if (rc) return rc;
    mm_feats *f = mm_calloc(1, sizeof *f, err);
    if (!f) return MM_ENOMEM;
    f->p = *p;
    f->n_bins = p->n_fft / 2 + 1;
    float *tb = NULL;
    fftwf_complex *tc = NULL;
    if ((rc = mm_stft_create(p->n_fft, p->hop_length, NULL, 1, MM_PAD_CONSTANT, &f->stft, err)))
        goto fail;
    if ((rc = mm_mel_filterbank(p->sample_rate, p->n_fft, p->n_mels, 0.0, p->sample_rate / 2.0,
                                0, 1, &f->mel_fb, err)))
        goto fail;
    f->mel_lo = mm_malloc((size_t)p->n_mels, sizeof *f->mel_lo, err);
    f->mel_hi = mm_malloc((size_t)p->n_mels, sizeof *f->mel_hi, err);
    if (!f->mel_lo || !f->mel_hi) { rc = MM_ENOMEM; goto fail; }
    for (int m = 0; m < p->n_mels; m++) {
        const float *w = f->mel_fb + (size_t)m * f->n_bins;
        int lo = 0, hi = f->n_bins;
        while (lo < hi && w[lo] == 0) lo++;
        while (hi > lo && w[hi - 1] == 0) hi--;
        f->mel_lo[m] = lo;
        f->mel_hi[m] = hi;
    }
    float *dct = mm_feat_dct_matrix(p->n_mfcc, p->n_mels, err);
    if (!dct) { rc = MM_ENOMEM; goto fail; }
    f->dct_t = transpose(dct, p->n_mfcc, p->n_mels, err);
    free(dct);
    if (!f->dct_t) { rc = MM_ENOMEM; goto fail; }
    if ((rc = chroma_transposed(p, p->tuning, &f->chroma_t, err))) goto fail;
    f->tg_win = (int)((long)(p->tempo_ac_size * p->sample_rate) / p->hop_length);
    /* smallest 2^a 3^b 5^c >= 2 win - 1 (scipy's next_fast_len; any size
     * >= 2 win - 1 gives the same linear autocorrelation) */
    for (f->tg_pad = 2 * f->tg_win - 1;; f->tg_pad++) {
        int r = f->tg_pad;
        while (r % 2 == 0) r /= 2;
        while (r % 3 == 0) r /= 3;
        while (r % 5 == 0) r /= 5;
        if (r == 1) break;
    }
    f->tg_window = mm_malloc((size_t)f->tg_win, sizeof *f->tg_window, err);
    tb = fftwf_malloc(sizeof(float) * (size_t)f->tg_pad);
    tc = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(f->tg_pad / 2 + 1));
    if (!f->tg_window || !tb || !tc) { rc = mm_err_set(err, MM_ENOMEM, "features: out of memory"); goto fail; }
    for (int i = 0; i < f->tg_win; i++)
        f->tg_window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / f->tg_win));
    f->tg_fwd = fftwf_plan_dft_r2c_1d(f->tg_pad, tb, tc, FFTW_ESTIMATE);
    f->tg_inv = fftwf_plan_dft_c2r_1d(f->tg_pad, tc, tb, FFTW_ESTIMATE);
    fftwf_free(tb);
    fftwf_free(tc);
    tb = NULL;
    tc = NULL;
    if (!f->tg_fwd || !f->tg_inv) {
        rc = mm_err_set(err, MM_ENOMEM, "features: FFTW could not plan size %d", f->tg_pad);
        goto fail;
    }
    *out = f;
    return 0;
fail:
    fftwf_free(tb);
    fftwf_free(tc);
    mm_feats_free(f);
    return rc;
}

void mm_feats_free(mm_feats *f)
{
    if (!f) return;
    mm_stft_free(f->stft);
    free(f->mel_fb);
    free(f->mel_lo);
    free(f->mel_hi);
    free(f->dct_t);
    free(f->chroma_t);
    free(f->tg_window);
    if (f->tg_fwd) fftwf_destroy_plan(f->tg_fwd);
    if (f->tg_inv) fftwf_destroy_plan(f->tg_inv);
    free(f);
}

const mm_feats_params *mm_feats_get_params(const mm_feats *f) { return &f->p; }

size_t mm_feats_n_frames(const mm_feats *f, size_t n_samples)
{
    return 1 + n_samples / (size_t)f->p.hop_length;
}

void mm_feats_frames_free(mm_feats_frames *fr)
{
    if (!fr) return;
    free(fr->mel);
    free(fr->mel_db);
    free(fr->mfcc);
    free(fr->chroma);
    free(fr->contrast);
    free(fr->centroid);
    free(fr->bandwidth);
    free(fr->rolloff);
    free(fr->zcr);
    free(fr->rms);
    free(fr->onset);
    memset(fr, 0, sizeof *fr);
}

/* acc[c] = sum_k fb_t[k][c] s[k] for 12 chroma bins: a fixed-width inner loop
 * the compiler keeps in vector registers. Float sums (1025 positive terms:
 * relative error ~1e-6, far below the test's 1e-4 on normalised chroma). */
static void chroma_frame12(const float *fb_t, const float *s, int nb, double *out)
{
    float acc[12] = {0};
    for (int k = 0; k < nb; k++) {
        const float *w = fb_t + (size_t)k * 12;
        float sk = s[k];
        for (int c = 0; c < 12; c++) acc[c] += w[c] * sk;
    }
    for (int c = 0; c < 12; c++) out[c] = acc[c];
}

int mm_feats_compute(const mm_feats *f, const float *x, size_t n, unsigned what,
                     mm_feats_frames *out, mm_err *err)
{
    const mm_feats_params *p = &f->p;
    if (!n) return mm_err_set(err, MM_EDATA, "features: empty clip (0 samples)");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return mm_err_set(err, MM_EDATA, "features: sample %zu is not finite", i);
        /* larger samples overflow float32 power spectra into inf/NaN features */
        if (fabsf(x[i]) > 1e8f)
            return mm_err_set(err, MM_EDATA, "features: sample %zu is %g: expected audio "
                              "samples with |x| <= 1e8 (decoders give [-1, 1])", i, x[i]);
    }
    if (what & MM_FEAT_TEMPO) what |= MM_FEAT_ONSET;
    if (what & (MM_FEAT_ONSET | MM_FEAT_MFCC)) what |= MM_FEAT_MEL;
    const unsigned need_mag = MM_FEAT_CONTRAST | MM_FEAT_CENTROID | MM_FEAT_BANDWIDTH |
                              MM_FEAT_ROLLOFF | (p->chroma_power == 1 ? MM_FEAT_CHROMA : 0);
    const unsigned need_pow = MM_FEAT_MEL | (p->chroma_power == 2 ? MM_FEAT_CHROMA : 0);
    int nb = f->n_bins;
    size_t nf = mm_stft_n_frames(f->stft, n);
    if (nf != mm_feats_n_frames(f, n))
        return mm_err_set(err, MM_EINVAL, "features: STFT gives %zu frames for %zu samples, "
                          "expected %zu", nf, n, mm_feats_n_frames(f, n));
    mm_feats_frames r;
    memset(&r, 0, sizeof r);
    r.n_frames = nf;
    r.n_mels = (size_t)p->n_mels;
    r.n_mfcc = (size_t)p->n_mfcc;
    r.n_chroma = (size_t)p->n_chroma;
    r.n_contrast = (size_t)p->contrast_bands + 1;
    r.tuning = p->tuning;
    float *pw = NULL, *mag = NULL, *chroma_fb = NULL;
    double *acc = NULL;
    int rc = 0;
#define ALLOC(ptr, count) \
    do { if (!((ptr) = mm_malloc((count), sizeof(float), err))) { rc = MM_ENOMEM; goto fail; } } while (0)
#define ALLOC_D(ptr, count) \
    do { if (!((ptr) = mm_malloc((count), sizeof(double), err))) { rc = MM_ENOMEM; goto fail; } } while (0)
    if (what & (need_mag | need_pow)) {
        ALLOC(pw, nf * nb);
        if ((rc = mm_stft_power(f->stft, x, n, pw, err))) goto fail;
        if (what & need_mag) {
            ALLOC(mag, nf * nb);
            for (size_t i = 0; i < nf * nb; i++) mag[i] = sqrtf(pw[i]);
        }
    }
    if (what & MM_FEAT_MEL) {
        ALLOC(r.mel, nf * r.n_mels);
        ALLOC(r.mel_db, nf * r.n_mels);
        for (size_t t = 0; t < nf; t++) {
            const float *s = pw + t * nb;
            for (int m = 0; m < p->n_mels; m++) {
                const float *w = f->mel_fb + (size_t)m * nb;
                double sum = 0;  /* slaney triangles: only their non-zero span */
                for (int k = f->mel_lo[m]; k < f->mel_hi[m]; k++) sum += (double)w[k] * s[k];
                r.mel[t * r.n_mels + m] = (float)sum;
            }
        }
        memcpy(r.mel_db, r.mel, nf * r.n_mels * sizeof(float));
        mm_feat_power_to_db(r.mel_db, nf * r.n_mels, 1.0, 1e-10, p->top_db);
    }
    if (what & MM_FEAT_MFCC) {
        ALLOC(r.mfcc, nf * r.n_mfcc);
        ALLOC_D(acc, r.n_mfcc > r.n_chroma ? r.n_mfcc : r.n_chroma);
        for (size_t t = 0; t < nf; t++) {
            /* acc[k] = sum_m dct[k][m] d[m], accumulated over m (vectorises over k) */
            const float *d = r.mel_db + t * r.n_mels;
            for (int k = 0; k < p->n_mfcc; k++) acc[k] = 0;
            for (int m = 0; m < p->n_mels; m++) {
                const float *c = f->dct_t + (size_t)m * p->n_mfcc;
                double dm = d[m];
                for (int k = 0; k < p->n_mfcc; k++) acc[k] += (double)c[k] * dm;
            }
            for (int k = 0; k < p->n_mfcc; k++) r.mfcc[t * r.n_mfcc + k] = (float)acc[k];
        }
    }
    if (what & MM_FEAT_CHROMA) {
        const float *S = p->chroma_power == 1 ? mag : pw;
        const float *fb = f->chroma_t;
        if (p->estimate_tuning) {
            r.tuning = mm_feat_estimate_tuning(S, nf, p->n_fft, p->sample_rate, p->n_chroma);
            if ((rc = chroma_transposed(p, r.tuning, &chroma_fb, err))) goto fail;
            fb = chroma_fb;
        }
        ALLOC(r.chroma, nf * r.n_chroma);
        if (!acc) ALLOC_D(acc, r.n_chroma);
        int nc = p->n_chroma;
        for (size_t t = 0; t < nf; t++) {
            const float *s = S + t * nb;
            float *o = r.chroma + t * r.n_chroma;
            if (nc == 12)
                chroma_frame12(fb, s, nb, acc);
            else {
                for (int c = 0; c < nc; c++) acc[c] = 0;
                for (int k = 0; k < nb; k++) {
                    const float *w = fb + (size_t)k * nc;
                    double sk = s[k];
                    for (int c = 0; c < nc; c++) acc[c] += (double)w[c] * sk;
                }
            }
            float mx = 0;
            for (int c = 0; c < nc; c++) {
                o[c] = (float)acc[c];
                if (fabsf(o[c]) > mx) mx = fabsf(o[c]);
            }
            if (mx >= FLT_MIN)
                for (int c = 0; c < p->n_chroma; c++) o[c] /= mx;
        }
    }
    if (what & MM_FEAT_CONTRAST) {
        ALLOC(r.contrast, nf * r.n_contrast);
        if ((rc = mm_feat_contrast(mag, nf, p->n_fft, p->sample_rate, p->contrast_fmin,
                                   p->contrast_bands, p->contrast_quantile, r.contrast, err)))
            goto fail;
    }
    if (what & MM_FEAT_CENTROID) ALLOC(r.centroid, nf);
    if (what & MM_FEAT_BANDWIDTH) ALLOC(r.bandwidth, nf);
    if (r.centroid && r.bandwidth)
        centroid_bandwidth(mag, nf, p->n_fft, p->sample_rate, r.centroid, r.bandwidth);
    else if (r.centroid)
        mm_feat_centroid(mag, nf, p->n_fft, p->sample_rate, r.centroid);
    else if (r.bandwidth)
        mm_feat_bandwidth(mag, nf, p->n_fft, p->sample_rate, r.bandwidth);
    if (what & MM_FEAT_ROLLOFF) {
        ALLOC(r.rolloff, nf);
        mm_feat_rolloff(mag, nf, p->n_fft, p->sample_rate, p->rolloff_percent, r.rolloff);
    }
    if (what & MM_FEAT_ZCR) {
        ALLOC(r.zcr, nf);
        if ((rc = mm_feat_zcr(x, n, p->n_fft, p->hop_length, r.zcr, err))) goto fail;
    }
    if (what & MM_FEAT_RMS) {
        ALLOC(r.rms, nf);
        mm_feat_rms(x, n, p->n_fft, p->hop_length, r.rms);
    }
    if (what & MM_FEAT_ONSET) {
        ALLOC(r.onset, nf);
        mm_feat_onset_strength(r.mel_db, nf, r.n_mels, p->onset_lag, p->n_fft, p->hop_length,
                               r.onset);
    }
    if (what & MM_FEAT_TEMPO)
        if ((rc = mm_feats_tempo(f, r.onset, nf, &r.tempo, err))) goto fail;
#undef ALLOC
#undef ALLOC_D
    free(pw);
    free(mag);
    free(chroma_fb);
    free(acc);
    *out = r;
    return 0;
fail:
    free(pw);
    free(mag);
    free(chroma_fb);
    free(acc);
    mm_feats_frames_free(&r);
    return rc;
}
