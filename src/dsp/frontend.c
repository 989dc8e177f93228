/* frontend.c — log-mel front ends of the pretrained backbones (PANNs Cnn14, EfficientAT mn04).
 *
 * cnn14 / cnn14_16k match torchlibrosa Spectrogram + LogmelFilterBank as PANNs uses them:
 * periodic Hann, reflect-centred STFT, power, librosa slaney mel, 10·log10(max(x, 1e-10)).
 * mn04 matches EfficientAT AugmentMelSTFT in eval mode: conv1d pre-emphasis [-0.97, 1]
 * (n−1 samples), symmetric Hann 800 centred in 1024, reflect-centred STFT, power, Kaldi mel
 * 0–15000 Hz + zero Nyquist column, (ln(x + 1e-5) + 4.5)/5. STFT blocks of 32 frames, mel
 * over each filter's non-zero band. Leaves out: training-time augmentation.
 */
#include "dsp/frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/mel.h"
#include "dsp/stft.h"

struct mm_frontend {
    mm_frontend_kind kind;
    int sr, n_fft, hop, win_length, n_mels, n_bins;
    double fmin, fmax;
    mm_stft *stft;
    float *fb;      /* (n_mels, n_bins) filterbank */
    int *band_lo;   /* (n_mels) first non-zero bin of each filter */
    int *band_hi;   /* (n_mels) one past the last non-zero bin */
};

static const char *const k_names[] = {"cnn14", "cnn14_16k", "mn04"};

int mm_frontend_kind_parse(const char *name, mm_frontend_kind *kind, mm_err *err)
{
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, k_names[i])) {
            *kind = (mm_frontend_kind)i;
            return 0;
        }
    return mm_err_set(err, MM_EINVAL, "front end '%s': expected one of cnn14, cnn14_16k, mn04",
                      name ? name : "(null)");
}

const char *mm_frontend_kind_name(mm_frontend_kind kind)
{
    return (unsigned)kind < 3 ? k_names[kind] : "unknown";
}

void mm_frontend_free(mm_frontend *fe)
{
    if (!fe) return;
    mm_stft_free(fe->stft);
    free(fe->fb);
    free(fe->band_lo);
    free(fe->band_hi);
    free(fe);
}

int mm_frontend_create(mm_frontend_kind kind, mm_frontend **out, mm_err *err)
{
    if ((unsigned)kind > MM_FE_MN04)
        return mm_err_set(err, MM_EINVAL, "front end kind %d: expected cnn14, cnn14_16k or mn04",
                          (int)kind);
    mm_frontend *fe = mm_calloc(1, sizeof *fe, err);
    if (!fe) return MM_ENOMEM;
    fe->kind = kind;
    int rc = 0;
    float *win = NULL;
    switch (kind) {
    case MM_FE_CNN14:
        fe->sr = 32000, fe->n_fft = 1024, fe->hop = 320, fe->win_length = 1024, fe->n_mels = 64;
        fe->fmin = 50, fe->fmax = 14000;
        break;
    case MM_FE_CNN14_16K:
        fe->sr = 16000, fe->n_fft = 512, fe->hop = 160, fe->win_length = 512, fe->n_mels = 64;
        fe->fmin = 50, fe->fmax = 8000;
        break;
    case MM_FE_MN04:
        fe->sr = 32000, fe->n_fft = 1024, fe->hop = 320, fe->win_length = 800, fe->n_mels = 128;
        fe->fmin = 0, fe->fmax = 15000;
        break;
    }
    fe->n_bins = fe->n_fft / 2 + 1;
    if (kind == MM_FE_MN04) {
        /* torch.stft pads a shorter window with zeros centred in n_fft: left (n_fft − win)/2. */
        win = mm_calloc((size_t)fe->n_fft, sizeof *win, err);
        if (!win) {
            rc = MM_ENOMEM;
            goto fail;
        }
        mm_window_hann(win + (fe->n_fft - fe->win_length) / 2, fe->win_length, 0);
        rc = mm_mel_filterbank_kaldi(fe->sr, fe->n_fft, fe->n_mels, fe->fmin, fe->fmax, &fe->fb,
                                     err);
    } else {
        rc = mm_mel_filterbank(fe->sr, fe->n_fft, fe->n_mels, fe->fmin, fe->fmax, 0, 1, &fe->fb,
                               err);
    }
    if (rc) goto fail;
    rc = mm_stft_create(fe->n_fft, fe->hop, win, 1, MM_PAD_REFLECT, &fe->stft, err);
    if (rc) goto fail;
    fe->band_lo = mm_malloc((size_t)fe->n_mels, sizeof *fe->band_lo, err);
    fe->band_hi = mm_malloc((size_t)fe->n_mels, sizeof *fe->band_hi, err);
    if (!fe->band_lo || !fe->band_hi) {
        rc = MM_ENOMEM;
        goto fail;
    }
    for (int m = 0; m < fe->n_mels; m++) {
        const float *row = fe->fb + (size_t)m * fe->n_bins;
        int lo = 0, hi = fe->n_bins;
        while (lo < hi && row[lo] == 0.0f) lo++;
        while (hi > lo && row[hi - 1] == 0.0f) hi--;
        fe->band_lo[m] = lo;
        fe->band_hi[m] = hi;
    }
    free(win);
    *out = fe;
    return 0;
fail:
    free(win);
    mm_frontend_free(fe);
    return rc;
}

int mm_frontend_sample_rate(const mm_frontend *fe) { return fe->sr; }
int mm_frontend_n_mels(const mm_frontend *fe) { return fe->n_mels; }

size_t mm_frontend_n_frames(const mm_frontend *fe, size_t n_samples)
{
    if (fe->kind == MM_FE_MN04) {
        if (n_samples < 2) return 0;
        n_samples -= 1;    /* the valid pre-emphasis convolution drops one sample */
    }
    return mm_stft_n_frames(fe->stft, n_samples);
}

int mm_frontend_compute(const mm_frontend *fe, const float *x, size_t n, float *out, mm_err *err)
{
    return mm_frontend_compute_frames(fe, x, n, 0, (size_t)-1, out, err);
}

int mm_frontend_compute_frames(const mm_frontend *fe, const float *x, size_t n, size_t t0,
                               size_t t1, float *out, mm_err *err)
{
    const float *sig = x;
    float *pre = NULL, *pow_ = NULL;
    size_t m = n;
    int rc = 0;
    if (fe->kind == MM_FE_MN04) {
        if (n < 2)
            return mm_err_set(err, MM_EDATA, "front end mn04: %zu samples; expected at least 2",
                              n);
        m = n - 1;
    }
    size_t nf = mm_stft_n_frames(fe->stft, m);
    int nb = fe->n_bins;
    if (nf == 0) {
        rc = mm_err_set(err, MM_EDATA, "front end %s: %zu samples give no frame",
                        mm_frontend_kind_name(fe->kind), n);
        goto done;
    }
    if (t1 > nf) t1 = nf;
    if (t0 >= t1) {
        rc = mm_err_set(err, MM_EINVAL, "front end %s: frames [%zu, %zu) outside [0, %zu)",
                        mm_frontend_kind_name(fe->kind), t0, t1, nf);
        goto done;
    }
    if (fe->kind == MM_FE_MN04) {
        /* conv1d with kernel [-0.97, 1]: y[i] = x[i+1] − 0.97·x[i], i < n − 1, computed only
         * where frames [t0, t1) read: frame t spans [t·hop − n_fft/2, t·hop + n_fft/2) of the
         * signal, reflected at its ends (so the first/last n_fft/2 + 1 samples when a frame
         * crosses an end). The rest of the buffer is never read. */
        size_t half = (size_t)fe->n_fft / 2, lo = t0 * (size_t)fe->hop, hi;
        hi = (t1 - 1) * (size_t)fe->hop + half;   /* one past the last direct index */
        if (lo < half && hi < half - lo + 1) hi = half - lo + 1;   /* reflected start */
        lo = lo > half ? lo - half : 0;
        if (hi >= m) {
            size_t r = 2 * (m - 1) >= hi ? 2 * (m - 1) - hi : 0;   /* lowest reflected index */
            if (r < lo) lo = r;
            hi = m;
        }
        pre = mm_malloc(m, sizeof *pre, err);
        if (!pre) {
            rc = MM_ENOMEM;
            goto done;
        }
        for (size_t i = lo; i < hi; i++) pre[i] = x[i + 1] + (-0.97f) * x[i];
        sig = pre;
    }
    /* Blocks of frames: STFT power into a small buffer that stays in cache, transposed to
     * (bin, frame) so that each mel band's sum runs over the block's frames as vectors. Per
     * output the sum is the same as one frame at a time: bins in order, in double, each
     * product (double)w·p exact (24-bit mantissas), so the values are unchanged. */
    enum { BLOCK = 32 };
    pow_ = mm_malloc((size_t)2 * BLOCK * (size_t)nb, sizeof *pow_, err);
    if (!pow_) {
        rc = MM_ENOMEM;
        goto done;
    }
    float *pt = pow_ + (size_t)BLOCK * nb;   /* (nb, BLOCK) */
    for (size_t b0 = t0; b0 < t1; b0 += BLOCK) {
        size_t bt = t1 - b0 < BLOCK ? t1 - b0 : BLOCK;
        rc = mm_stft_power_frames(fe->stft, sig, m, b0, b0 + bt, pow_, err);
        if (rc) {
            mm_err_prefix(err, "front end %s", mm_frontend_kind_name(fe->kind));
            goto done;
        }
        for (int b = 0; b < nb; b++) {
            float *col = pt + (size_t)b * BLOCK;
            for (size_t f = 0; f < bt; f++) col[f] = pow_[f * (size_t)nb + b];
            for (size_t f = bt; f < BLOCK; f++) col[f] = 0.0f;
        }
        for (int k = 0; k < fe->n_mels; k++) {
            const float *w = fe->fb + (size_t)k * nb;
            double acc[BLOCK] = {0};
            for (int b = fe->band_lo[k]; b < fe->band_hi[k]; b++) {
                double wb = (double)w[b];
                const float *col = pt + (size_t)b * BLOCK;
                for (int f = 0; f < BLOCK; f++) acc[f] += wb * (double)col[f];
            }
            float *o = out + (b0 - t0) * (size_t)fe->n_mels + k;
            for (size_t f = 0; f < bt; f++) {
                float v = (float)acc[f];
                if (fe->kind == MM_FE_MN04) {
                    /* (log(x + 1e-5) + 4.5) / 5, each step in float32 as torch */
                    float l = logf(v + 1e-5f);
                    o[f * (size_t)fe->n_mels] = (l + 4.5f) / 5.0f;
                } else {
                    /* power_to_db with ref 1, amin 1e-10, no top_db: 10·log10(x) computed as
                     * (10/ln 10)·ln(x) — glibc's logf is several times faster than log10f and
                     * the two differ by ~1e-6 dB. */
                    o[f * (size_t)fe->n_mels] = 4.34294481903251828f * logf(v > 1e-10f ? v : 1e-10f);
                }
            }
        }
    }
done:
    free(pre);
    free(pow_);
    return rc;
}

const char *mm_frontend_describe(const mm_frontend *fe, char *buf, size_t size)
{
    if (!buf || !size) return buf;
    int mn = fe->kind == MM_FE_MN04;
    snprintf(buf, size,
             "frontend=%s\nsample_rate=%d\nn_fft=%d\nhop=%d\nwin_length=%d\nwindow=%s\n"
             "center=reflect\nn_mels=%d\nfmin=%g\nfmax=%g\nmel=%s\npreemphasis=%s\nlog=%s\n",
             mm_frontend_kind_name(fe->kind), fe->sr, fe->n_fft, fe->hop, fe->win_length,
             mn ? "hann_symmetric_centred" : "hann_periodic", fe->n_mels, fe->fmin, fe->fmax,
             mn ? "kaldi+zero_nyquist" : "slaney_scale_slaney_norm", mn ? "0.97" : "none",
             mn ? "(ln(x+1e-5)+4.5)/5" : "10*log10(max(x,1e-10))");
    return buf;
}
