/* augment.h — data augmentation of mono audio and log-mel matrices (issue 16: speech emotion
 * that holds up beyond one recording booth).
 *
 * Every function is pure: it reads its input (never modified), draws its randomness from an
 * mm_rng seeded with (seed, a stream id of its own), and returns a new malloc'd buffer the
 * caller frees, of the input's length (signals) or shape (matrices). The same arguments give
 * the same bytes on every run and thread count; different seeds give different draws.
 * *y is written only on success. Parameters out of range are refused with one line naming
 * the parameter, the value and the range (MM_AUG_* below). Thread-safe: FFTW plans are made
 * once per size under a lock (see augment.c) and executed with the new-array interface.
 * Signals are float with full scale 1 and are never clipped: a result may exceed ±1.
 */
#ifndef MM_AUGMENT_H
#define MM_AUGMENT_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"

/* Parameter ranges (inclusive). */
#define MM_AUG_GAIN_DB_MAX 40.0          /* gain −40..40 dB */
#define MM_AUG_SNR_MIN (-10.0)           /* SNR −10..60 dB */
#define MM_AUG_SNR_MAX 60.0
#define MM_AUG_RT60_MIN 0.1              /* RT60 0.1..2.0 s */
#define MM_AUG_RT60_MAX 2.0
#define MM_AUG_DRR_MIN (-10.0)           /* direct-to-reverberant ratio −10..30 dB */
#define MM_AUG_DRR_MAX 30.0
#define MM_AUG_KBPS_MIN 8                /* codec bit rate 8..320 kbit/s (Opus 8..256) */
#define MM_AUG_KBPS_MAX 320
#define MM_AUG_OPUS_KBPS_MAX 256
#define MM_AUG_SEMITONES_MAX 12.0        /* pitch shift −12..12 semitones */

/* ---- gain ---- */

/* y = x · 10^(gain_db/20); gain_db −40..40. */
int mm_augment_gain(const float *x, size_t n, double gain_db, float **y, mm_err *err);

/* ---- additive noise ---- */

typedef enum {
    MM_NOISE_WHITE = 0,   /* flat power spectrum */
    MM_NOISE_PINK = 1,    /* power ∝ 1/f (−3 dB/octave) */
    MM_NOISE_BROWN = 2,   /* power ∝ 1/f² (−6 dB/octave) */
} mm_noise_color;

/* x plus synthetic Gaussian noise of the given colour at snr_db (−10..60). Coloured noise is
 * white noise through a linear-phase FIR whose magnitude is f^(−α/2) at every bin of a
 * 2^k ≥ sr/10-point grid (α = 1 pink, 2 brown), so the slope holds from sr/2^k (< 10 Hz) to
 * Nyquist and is flat below. SNR over the whole clip by power:
 * 10·log10(Σ x² / Σ noise²) = snr_db exactly up to float rounding. Errors: a silent x (no
 * power to refer to), bad colour or SNR. */
int mm_augment_noise(const float *x, size_t n, mm_noise_color color, double snr_db,
                     uint64_t seed, float **y, mm_err *err);

/* x plus a recorded noise (babble, music, ...; m samples at x's rate) at snr_db, SNR as above.
 * The noise is read from a seeded random offset in [0, m) and tiled (wrapping to its start)
 * or cropped to n. Errors: m == 0, a silent noise or x, SNR out of range. */
int mm_augment_mix(const float *x, size_t n, const float *noise, size_t m, double snr_db,
                   uint64_t seed, float **y, mm_err *err);

/* ---- reverberation ---- */

/* A synthetic room impulse response at sr: h[0] = 1 (the direct path) and from h[1] on
 * Gaussian noise under the envelope exp(−3·ln(10)·t / rt60) (energy falls 60 dB in rt60
 * seconds), scaled so that 10·log10(h[0]² / Σ tail²) = drr_db; length ceil(rt60·sr) + 1.
 * rt60 0.1..2.0 s, drr_db −10..30. *h malloc'd (*nh values). Leaves out: early reflections
 * of a shoebox (image-source) room, frequency-dependent decay. */
int mm_augment_rir(int sr, double rt60, double drr_db, uint64_t seed, float **h, size_t *nh,
                   mm_err *err);

/* x convolved with h (FFT overlap-add on FFTW3f), the first n samples of the full convolution:
 * aligned with x when h's direct path is h[0]; then scaled so that the output's RMS over
 * the clip equals x's (level preserved; a silent x stays silent). nh ≥ 1. */
int mm_augment_convolve(const float *x, size_t n, const float *h, size_t nh, float **y,
                        mm_err *err);

/* mm_augment_rir then mm_augment_convolve. */
int mm_augment_reverb(const float *x, size_t n, int sr, double rt60, double drr_db,
                      uint64_t seed, float **y, mm_err *err);

/* ---- telephone band ---- */

/* The telephone channel: with resample = 1, x resampled to 8 kHz (soxr HQ, which removes
 * everything above ~3.9 kHz), band-passed 300–3400 Hz, resampled back to sr; with
 * resample = 0 only the band-pass at sr. The band-pass is a causal 4th-order Butterworth
 * high-pass at 300 Hz cascaded with a 4th-order Butterworth low-pass at 3400 Hz (bilinear,
 * prewarped: scipy.signal.butter(4, f, 'high' / 'low', fs=rate) as second-order sections);
 * its group delay in the pass band is about 1 ms. sr 8000..192000; output length n. */
int mm_augment_telephone(const float *x, size_t n, int sr, int resample, float **y,
                         mm_err *err);

/* ---- lossy codecs ---- */

typedef enum { MM_CODEC_MP3 = 0, MM_CODEC_OPUS = 1 } mm_codec;

/* Round trip through libsndfile's encoder and decoder in memory (MP3: LAME CBR / mpg123; Opus:
 * libopus in Ogg, VBR at a target rate). The signal is coded at a rate the codec accepts,
 * resampled there and back with soxr when it differs from sr:
 *   MP3: sr itself when it is an MPEG rate whose version allows the bit rate, else the
 *     highest MPEG rate below sr that does (MPEG-1 32–48 kHz: 32..320 kbit/s, MPEG-2
 *     16–24 kHz: 8..160, MPEG-2.5 8–12 kHz: 8..64); LAME rounds to the nearest standard rate.
 *   Opus: sr when it is 8, 12, 16, 24 or 48 kHz, else 48 kHz; 8..256 kbit/s.
 * The decoded signal is aligned with x (the codec's delay removed: Opus' pre-skip and MP3's
 * gapless tag, or LAME's 576 + mpg123's 529 samples when no tag could be written: libsndfile
 * 1.2 writes none at low rates, e.g. below 64 kbit/s at 44.1/48 kHz) and of length n; Opus
 * below 32 kbit/s (SILK/hybrid) may lead by one sample. Samples beyond ±1 are clipped by the encoders (the only place this module clips).
 * kbps 8..320 (Opus ..256). */
int mm_augment_codec(const float *x, size_t n, int sr, mm_codec codec, int kbps, float **y,
                     mm_err *err);

/* ---- pitch ---- */

/* Pitch shifted by `semitones` (−12..12) at the same tempo and length, as
 * torchaudio.functional.pitch_shift: phase-vocoder time stretch by 2^(s/12) (STFT n_fft
 * with a periodic Hann window, hop n_fft/4, reflect-padded centred frames, torchaudio's
 * phase_vocoder, inverse STFT by windowed overlap-add), then resampled by 2^(−s/12) (soxr HQ,
 * exact ratio) and cut or zero-padded to n. n_fft a power of two 256..8192, or 0 for the
 * power of two nearest to 32 ms at sr (512 at 16 kHz, 2048 at 48 kHz). n ≥ n_fft/2 + 1. */
int mm_augment_pitch(const float *x, size_t n, int sr, double semitones, int n_fft, float **y,
                     mm_err *err);

/* ---- SpecAugment ---- */

typedef struct mm_specmask_params {
    int n_time;          /* time masks (0..10) */
    int time_width;      /* largest time-mask width in frames (1..frames) */
    int n_freq;          /* frequency masks (0..10) */
    int freq_width;      /* largest frequency-mask width in bins (1..bins) */
    int fill_mean;       /* 1: masked values become the matrix's mean; 0: they become 0 */
} mm_specmask_params;

/* 2 time masks of up to 40 frames, 2 frequency masks of up to 15 bins, fill with the mean. */
void mm_specmask_params_default(mm_specmask_params *p);

/* Time and frequency masks on a log-mel matrix m (frames × bins, row-major), as
 * torchaudio.functional.mask_along_axis (iid_masks off) applied n_time times along time,
 * then n_freq times along frequency: for each mask width w = floor(u₁·W) in 0..W−1 and start
 * floor(u₂·(size − u₁·W)), u₁, u₂ uniform [0, 1) drawn in that order; masks may overlap.
 * The mean (fill_mean) is of the unmasked input. *out malloc'd (frames × bins); when
 * `masks` is not NULL it receives (n_time + n_freq) × 2 ints: start and width of each mask
 * in the order applied. */
int mm_augment_specmask(const float *m, size_t frames, size_t bins, const mm_specmask_params *p,
                        uint64_t seed, float **out, int *masks, mm_err *err);

/* A `specaugment:` map {time_masks 0..10, time_width 1..1000 frames, freq_masks 0..10,
 * freq_width 1..128 bins, fill: mean|zero, seed >= 0}; absent keys take
 * mm_specmask_params_default's values (seed 0). Unknown keys and values out of range are one
 * line naming the file, line and `what` (e.g. "mn04_layers.specaugment"). */
int mm_specmask_params_from_cfg(const mm_cfg *map, const char *what, mm_specmask_params *p, uint64_t *seed,
                                mm_err *err);

#endif
