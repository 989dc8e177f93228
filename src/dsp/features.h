/* features.h — frame-wise handcrafted audio features as librosa 0.10 defines them.
 *
 * Matches librosa.feature.{melspectrogram, mfcc, chroma_stft, spectral_contrast,
 * spectral_centroid, spectral_bandwidth, spectral_rolloff, zero_crossing_rate,
 * rms}, librosa.onset.onset_strength and librosa.feature.tempo with their
 * defaults: centred STFT with zero padding (pad_mode='constant', librosa >= 0.10;
 * torch pads by reflection), periodic Hann, slaney mel, power_to_db(ref 1,
 * amin 1e-10, top_db 80 over the whole clip), DCT-II orthonormal. Leaves out
 * CQT chroma, flatness, poly features, tonnetz, dynamic tempo and beat tracking.
 * Frame-wise outputs are row-major (n_frames, dim): librosa's arrays transposed.
 */
#ifndef MM_FEATURES_H
#define MM_FEATURES_H

#include <stddef.h>
#include "core/err.h"

/* Which features mm_feats_compute fills (bit mask). */
enum {
    MM_FEAT_MEL = 1u << 0,       /* mel power spectrogram and its dB version */
    MM_FEAT_MFCC = 1u << 1,
    MM_FEAT_CHROMA = 1u << 2,
    MM_FEAT_CONTRAST = 1u << 3,
    MM_FEAT_CENTROID = 1u << 4,
    MM_FEAT_BANDWIDTH = 1u << 5,
    MM_FEAT_ROLLOFF = 1u << 6,
    MM_FEAT_ZCR = 1u << 7,
    MM_FEAT_RMS = 1u << 8,
    MM_FEAT_ONSET = 1u << 9,
    MM_FEAT_TEMPO = 1u << 10,    /* implies MM_FEAT_ONSET */
    MM_FEAT_ALL = (1u << 11) - 1,
};

typedef struct mm_feats_params {
    int sample_rate;          /* 22050 (librosa's default rate) */
    int n_fft;                /* 2048: STFT size, also ZCR/RMS frame length */
    int hop_length;           /* 512 */
    int n_mels;               /* 128, slaney mel from 0 to sample_rate/2 */
    int n_mfcc;               /* 20, <= n_mels */
    int n_chroma;             /* 12 */
    int chroma_power;         /* 2: chroma_stft(y=...) (power); 1: chroma_stft(S=|STFT|) */
    int estimate_tuning;      /* 0: use `tuning`; 1: librosa.estimate_tuning per clip */
    double tuning;            /* 0.0, in fractions of a chroma bin, [-0.5, 0.5) */
    double top_db;            /* 80: power_to_db floor below the clip's maximum */
    double contrast_fmin;     /* 200 Hz: first octave band edge */
    int contrast_bands;       /* 6: contrast has contrast_bands + 1 rows */
    double contrast_quantile; /* 0.02 */
    double rolloff_percent;   /* 0.85 */
    int onset_lag;            /* 1 */
    double tempo_start_bpm;   /* 120: centre of the log-normal prior */
    double tempo_std_bpm;     /* 1.0 octave */
    double tempo_ac_size;     /* 8 s: tempogram window = floor(8*sr)/hop frames (344 at 22050/512) */
    double tempo_max_bpm;     /* 320 */
} mm_feats_params;

void mm_feats_params_default(mm_feats_params *p);
/* Refuse out-of-range values with a message naming the field and value. */
int mm_feats_params_check(const mm_feats_params *p, mm_err *err);

/* Frame-wise features of one clip. Arrays are malloc'd for the requested
 * features only (others NULL); free with mm_feats_frames_free. */
typedef struct mm_feats_frames {
    size_t n_frames;   /* 1 + n / hop_length (centred) */
    size_t n_mels, n_mfcc, n_chroma, n_contrast;
    float *mel;        /* (n_frames, n_mels) mel power spectrogram */
    float *mel_db;     /* (n_frames, n_mels) power_to_db(mel) */
    float *mfcc;       /* (n_frames, n_mfcc) */
    float *chroma;     /* (n_frames, n_chroma), each frame max-normalised, C first */
    float *contrast;   /* (n_frames, n_contrast) dB, n_contrast = bands + 1 */
    float *centroid;   /* (n_frames) Hz */
    float *bandwidth;  /* (n_frames) Hz, p = 2 */
    float *rolloff;    /* (n_frames) Hz */
    float *zcr;        /* (n_frames) crossings per sample */
    float *rms;        /* (n_frames) */
    float *onset;      /* (n_frames) onset strength */
    double tempo;      /* BPM (MM_FEAT_TEMPO), else 0 */
    double tuning;     /* tuning used for chroma */
} mm_feats_frames;

typedef struct mm_feats mm_feats;

/* Check p (mm_feats_params_check), then build the STFT plan, mel, DCT and
 * chroma matrices and the tempogram FFT plans (p is copied). Call from one
 * thread (FFTW planning). *out owned by the caller: mm_feats_free (NULL is a
 * no-op). */
int mm_feats_create(const mm_feats_params *p, mm_feats **out, mm_err *err);
void mm_feats_free(mm_feats *f);
/* The parameters f was made with (owned by f). */
const mm_feats_params *mm_feats_get_params(const mm_feats *f);
/* Frames for n_samples samples: 1 + n_samples / hop_length (centred). */
size_t mm_feats_n_frames(const mm_feats *f, size_t n_samples);

/* Compute the features in `what` for x (n mono samples at sample_rate, all
 * finite). n >= 1: clips shorter than n_fft are zero-padded by the centring,
 * as librosa does; n == 0, non-finite samples and |x| > 1e8 (which would
 * overflow float32 spectra) are refused (MM_EDATA). Thread-safe
 * (f is read only); no OpenMP inside. *out written only on success. */
int mm_feats_compute(const mm_feats *f, const float *x, size_t n, unsigned what,
                     mm_feats_frames *out, mm_err *err);
/* Free the arrays of fr and zero it (NULL is a no-op). */
void mm_feats_frames_free(mm_feats_frames *fr);

/* librosa.feature.tempo from an onset envelope (n_frames >= 1): mean
 * autocorrelation tempogram (Hann window of floor(tempo_ac_size * sr) / hop
 * frames, linear-ramp centred, each frame max-normalised), plus the log-normal
 * prior, best lag below tempo_max_bpm. *bpm written on success. Thread-safe. */
int mm_feats_tempo(const mm_feats *f, const float *onset, size_t n_frames, double *bpm,
                   mm_err *err);

/* ---- kernels on spectrograms (pure, thread-safe) ----
 * S is (n_frames, n_bins) row-major, n_bins = n_fft/2 + 1, bin k at k*sr/n_fft Hz. */

/* In place: 10 log10(max(amin, x)) - 10 log10(max(amin, ref)), then floored at
 * max - top_db over all n values (top_db < 0: no floor). */
void mm_feat_power_to_db(float *x, size_t n, double ref, double amin, double top_db);
/* DCT-II orthonormal matrix (n_out, n_in) as scipy.fft.dct(norm='ortho');
 * malloc'd (caller frees), NULL with err set when out of memory. */
float *mm_feat_dct_matrix(int n_out, int n_in, mm_err *err);
/* librosa.filters.chroma (ctroct 5, octwidth 2, norm 2, base C) with `tuning`
 * in fractions of a bin: *fb (n_chroma, n_bins) malloc'd on success (caller frees). */
int mm_feat_chroma_filterbank(int sr, int n_fft, int n_chroma, double tuning, float **fb,
                              mm_err *err);
/* librosa.estimate_tuning(S=S, sr, n_fft, bins_per_octave): piptrack (150–4000 Hz,
 * threshold 0.1), magnitudes above their median, 0.01-bin histogram. Returns
 * the tuning in [-0.5, 0.5); 0 when no pitch is found (as librosa) or when its
 * scratch memory cannot be had. */
double mm_feat_estimate_tuning(const float *S, size_t n_frames, int n_fft, int sr,
                               int bins_per_octave);
/* Spectral centroid / bandwidth (p = 2, norm) / roll-off of magnitude frames. out: (n_frames). */
void mm_feat_centroid(const float *S, size_t n_frames, int n_fft, int sr, float *out);
void mm_feat_bandwidth(const float *S, size_t n_frames, int n_fft, int sr, float *out);
void mm_feat_rolloff(const float *S, size_t n_frames, int n_fft, int sr, double roll_percent,
                     float *out);
/* Spectral contrast of magnitude frames: out (n_frames, n_bands + 1) dB. Needs
 * fmin * 2^(n_bands-1) < sr/2 (checked by mm_feats_params_check). Returns 0 or MM_ENOMEM. */
int mm_feat_contrast(const float *S, size_t n_frames, int n_fft, int sr, double fmin,
                     int n_bands, double quantile, float *out, mm_err *err);
/* Zero-crossing rate (edge-padded centred frames; |x| <= 1e-10 counts as 0)
 * and RMS (zero-padded centred frames) of x, n >= 1, frame even: out
 * (1 + n / hop). mm_feat_zcr returns 0 or MM_ENOMEM (scratch of n + frame ints). */
int mm_feat_zcr(const float *x, size_t n, int frame, int hop, float *out, mm_err *err);
void mm_feat_rms(const float *x, size_t n, int frame, int hop, float *out);
/* Onset strength from a dB mel spectrogram (n_frames, n_mels): mean over mels
 * of max(0, S[t] - S[t-lag]), shifted right by lag + n_fft/(2 hop). out: (n_frames). */
void mm_feat_onset_strength(const float *mel_db, size_t n_frames, size_t n_mels, int lag,
                            int n_fft, int hop, float *out);

#endif
