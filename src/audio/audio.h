/* audio.h — decode, down-mix, resample, trim, crop/pad, normalise.
 *
 * Decoding goes through libsndfile (WAV, FLAC, Ogg/Vorbis, MP3, ...),
 * channels are averaged to mono, and libsoxr (high quality) resamples to the
 * rate a front end wants. Input rules: the file's rate must be MM_AUDIO_MIN_RATE
 * (8 kHz, telephone speech) to MM_AUDIO_MAX_RATE; NaN, infinite and float samples
 * beyond ±MM_AUDIO_MAX_ABS (36 dB above full scale) are refused, not clipped; at most
 * an hour and 2^28 samples (frames × channels) are decoded, and a signal that would
 * resample to more than 2^28 samples is refused. Each refusal is one line naming the
 * file. Trimming
 * follows librosa.effects.trim: frames of `frame_length` with `hop_length`,
 * RMS in dB relative to the loudest frame, frames quieter than top_db below
 * it dropped from both ends. All functions are thread-safe (no globals).
 */
#ifndef MM_AUDIO_H
#define MM_AUDIO_H

#include <stddef.h>
#include "core/err.h"
#include "io/cfg.h"

#define MM_AUDIO_MIN_RATE 8000
#define MM_AUDIO_MAX_RATE 1000000
#define MM_AUDIO_MAX_ABS 64.0f

typedef struct mm_audio_opts {
    int target_sr;          /* resample to this rate; 0 keeps the file's rate */
    int trim;               /* 1: librosa.effects.trim at the target rate (after resampling,
                               as librosa.load + trim), before min length, crop/pad, normalise */
    double trim_top_db;     /* 60 */
    int trim_frame;         /* 2048 */
    int trim_hop;           /* 512 */
    double fixed_seconds;   /* > 0: crop or zero-pad to this length */
    int fixed_center;       /* 0: keep/pad from the start; 1: centred crop/pad */
    int peak_normalize;     /* 1: scale so that max |x| = 1 (silence left as is) */
    double min_seconds;     /* shorter audio (after trim) is an error; 0 = any non-empty */
    double speed;           /* 1: as recorded; else speed perturbation (data augmentation):
                               played `speed` times faster, tempo and pitch together (sox
                               `speed`), by resampling to rate/speed and keeping the rate */
} mm_audio_opts;

void mm_audio_opts_default(mm_audio_opts *o);
/* Read the keys trim, trim_top_db, trim_frame, trim_hop, fixed_seconds,
 * fixed_center, peak_normalize, min_seconds, speed (0.5 .. 2) from a map
 * (unknown keys refused).
 * target_sr is left untouched (the front end sets it). */
int mm_audio_opts_from_cfg(const mm_cfg *map, mm_audio_opts *o, mm_err *err);
/* YAML-ish one-line description for provenance attributes (static buffer-free: writes into buf). */
const char *mm_audio_opts_describe(const mm_audio_opts *o, char *buf, size_t size);

typedef struct mm_audio {
    float *x;               /* (n) mono samples at sr, malloc'd */
    size_t n;
    int sr;
    int orig_sr;            /* the file's rate */
    int orig_channels;
    double orig_seconds;    /* duration as decoded, before trim/crop */
} mm_audio;

/* Decode a file with the options above (o NULL = defaults): decode → mean down-mix →
 * refuse NaN/inf → resample to target_sr → trim → min_seconds → crop/pad → peak normalise.
 * Errors name the file and what was expected: missing, empty, truncated, not audio,
 * unsupported sample format, silent after trim, too short. *out written only on success;
 * release with mm_audio_free. Thread-safe. */
int mm_audio_load(const char *path, const mm_audio_opts *o, mm_audio *out, mm_err *err);
/* The same from bytes in memory (uploads); `name` is used in messages. */
int mm_audio_load_memory(const void *data, size_t len, const char *name, const mm_audio_opts *o,
                         mm_audio *out, mm_err *err);
void mm_audio_free(mm_audio *a);

/* Resample x (n at sr_in) to sr_out with soxr high quality; *y malloc'd, *ny =
 * ceil(n·sr_out/sr_in) as torchaudio.functional.resample. Thread-safe. */
int mm_resample(const float *x, size_t n, int sr_in, int sr_out, float **y, size_t *ny,
                mm_err *err);
/* librosa.effects.trim bounds: [*start, *end) of the non-silent part.
 * Exactly librosa's rule: frame RMS with centred zero-padded frames, a frame is
 * kept when 20·log10(rms / max rms) > −top_db (amin 1e-5), start = first·hop,
 * end = min(n, (last + 1)·hop). As in librosa an all-zero signal keeps [0, n)
 * (mm_audio_load with trim refuses it as silent); start == end only for n == 0
 * or bad frame/hop. Thread-safe; x is not modified. */
void mm_trim_bounds(const float *x, size_t n, double top_db, int frame, int hop, size_t *start,
                    size_t *end);

#endif
