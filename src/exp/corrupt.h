/* corrupt.h — named signal corruptions of a clip, for training augmentation (`augment:`)
 * and robustness evaluation (`robustness:`), on top of audio/augment.h and audio/level.h.
 *
 * A corruption is a kind (gain, noise, babble, music, reverb, telephone, codec, pitch,
 * resample) with lists of values; every clip draws one value from each list with a
 * generator seeded from (seed, clip), so a table of corrupted clips is the same on every
 * run and thread count. Recorded noise comes from two places: babble is a sum of clips
 * of other speakers that share the clip's role in every round of the protocol (so a
 * training clip is only ever mixed with training speakers, a test clip with test
 * speakers); music is drawn from a folder (default the 4Q set), even-numbered files for
 * training and odd-numbered for tests. Leaves out: measured room impulse responses,
 * noise recorded at the clip's own level.
 */
#ifndef MM_EXP_CORRUPT_H
#define MM_EXP_CORRUPT_H

#include <stddef.h>
#include <stdint.h>
#include "audio/audio.h"
#include "core/err.h"
#include "data/dataset.h"
#include "eval/splits.h"
#include "io/cfg.h"

#define MM_CORR_MAX_VALUES 16

typedef enum {
    MM_CORR_GAIN, MM_CORR_NOISE, MM_CORR_BABBLE, MM_CORR_MUSIC, MM_CORR_REVERB,
    MM_CORR_TELEPHONE, MM_CORR_CODEC, MM_CORR_PITCH, MM_CORR_RESAMPLE,
} mm_corr_kind;

typedef struct mm_corr {
    mm_corr_kind kind;
    char name[64];             /* "pink_10db", "augment_noise", ... (results, messages) */
    size_t n_val;
    double val[MM_CORR_MAX_VALUES];   /* per kind: gain dB, SNR dB, RT60 s, kbit/s, semitones, Hz */
    size_t n_alt;
    int alt[MM_CORR_MAX_VALUES];      /* noise colours (mm_noise_color) or codecs (mm_codec) */
    int speakers;              /* babble: clips summed (1..16) */
    char dir[512];             /* music: folder, relative to the data root unless absolute */
    int test_part;             /* 1: robustness (odd music files); 0: training (even) */
    int every;                 /* robustness: corrupt dataset rows i with i % every == 0 only
                                  (the others MM_CLIP_SKIP); 0 or 1: all */
} mm_corr;

/* `augment:` entries other than speed: key (gain, noise, babble, music, reverb, telephone,
 * codec, pitch) with its map (or `true` for telephone). Values out of range, unknown keys
 * and unknown augmentations are one line naming file, line and value. */
int mm_corr_parse_augment(const mm_cfg *node, mm_corr *c, mm_err *err);
extern const char *const mm_corr_augment_keys[];   /* NULL-terminated, speed first */

/* A robustness corruption by name: gain_+20db, gain_-20db, white_10db, pink_0db, brown_20db,
 * babble_10db, music_10db, reverb_0.6s, telephone, mp3_32kbps, opus_16kbps, resample_8khz,
 * pitch_+2st. Unknown names: one line listing the forms. */
int mm_corr_parse_name(const char *name, mm_corr *c, mm_err *err);
/* The suite: gain ±20 dB; white, pink, babble, music at 20/10/0 dB; reverb
 * RT60 0.3/0.6/1.0 s; telephone; MP3 32 kbit/s; 8 kHz. *names static, *n entries. */
void mm_corr_standard_suite(const char *const **names, size_t *n);

/* The cache key of a corruption (a map of its kind and values, seed and noise sources). */
mm_cfg *mm_corr_key(const mm_corr *c, uint64_t seed);

/* What a corruption needs at extraction: the dataset (paths, groups), the babble pools
 * and the music files. Build with mm_corr_ctx_create (before any work: an empty or
 * too-short music folder or a pool without another speaker is refused here); the
 * context is the ctx of mm_corr_apply_fn (data/extract.h mm_clip_fn). */
typedef struct mm_corr_ctx mm_corr_ctx;
/* ds: the dataset the table is extracted from; row_role: for each dataset row, its role
 * vector (n_rounds bytes) or NULL for rows without (unlabelled), NULL altogether = every
 * row in one pool (export: all rows train). audio: decode options of the clips (babble
 * sources are decoded as the clips are). */
int mm_corr_ctx_create(const mm_corr *c, uint64_t seed, const mm_dataset *ds, const uint8_t *const *row_role,
                       size_t n_rounds, const mm_audio_opts *audio, const char *data_root, mm_corr_ctx **out,
                       mm_err *err);
void mm_corr_ctx_free(mm_corr_ctx *x);
/* mm_clip_fn: corrupt clip `clip` (a dataset row) in place. Thread-safe. */
int mm_corr_apply_fn(void *ctx, size_t clip, int sr, float **x, size_t *n, mm_err *err);

/* The role vector of every labelled row in a split (rows × rounds) as per-dataset-row
 * pointers: rr[i] = role + k·n_rounds for the k-th labelled row i of ds, NULL for others.
 * *rr malloc'd (ds->n). With labelled-only tables the k-th labelled dataset row is row k.
 * test_only (robustness): the vector only says in which rounds a row is tested. */
int mm_corr_row_roles(const mm_dataset *ds, const mm_split *split, int test_only, uint8_t **roles_T,
                      const uint8_t ***rr, mm_err *err);

#endif
