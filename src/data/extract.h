/* extract.h — a dataset through one or more feature sets into a feature table.
 *
 * Files run in parallel (OpenMP, dynamic schedule); each file's row depends
 * only on that file, so the table is identical for any thread count. Without
 * skip_bad the first bad file (lowest index) fails the extraction with its
 * message; with skip_bad bad files are listed in /skipped and left out.
 * With several feature sets the vectors are concatenated in config order and
 * feature names are prefixed "<set>/".
 */
#ifndef MM_EXTRACT_H
#define MM_EXTRACT_H

#include "audio/audio.h"
#include "audio/level.h"
#include "core/err.h"
#include "data/dataset.h"
#include "data/table.h"
#include "features/featset.h"
#include "io/cfg.h"

typedef struct mm_featset_inst {
    const mm_featset_vt *vt;
    void *state;
    char *label;            /* "set" or "set(params...)" for provenance */
} mm_featset_inst;

/* `audio.normalize`: every clip scaled to a level before the front end (after decode,
 * resampling, trim and crop/pad; after a clip transform): integrated loudness (EBU R128)
 * or the RMS of the voiced part, under a sample-peak limit (audio/level.h). The clip is
 * first scaled to a 0 dBFS peak, so the result does not depend on the recorded level
 * (not even through the −70 LUFS absolute gate); only an all-zero clip is refused. */
typedef struct mm_level_opts {
    int on;                 /* 0: the clip as decoded */
    mm_level_params p;
} mm_level_opts;

/* A clip transform between decoding and level normalisation (corruptions, augmentation):
 * *x (n samples at sr, malloc'd) may be replaced (free the old buffer, store the new one
 * and its length). `clip` is the row of the clip in the dataset. Must be thread-safe.
 * Returning MM_CLIP_SKIP leaves the clip out: its row is all NaN (no features computed). */
#define MM_CLIP_SKIP 1
typedef int (*mm_clip_fn)(void *ctx, size_t clip, int sr, float **x, size_t *n, mm_err *err);

/* The audio side of a pipeline: what happens between the file and the front end. */
typedef struct mm_pipeline_audio {
    mm_audio_opts audio;    /* decode options; target_sr is set per feature set */
    mm_level_opts level;
    mm_clip_fn transform;   /* NULL: none */
    void *transform_ctx;
} mm_pipeline_audio;

/* Read an `audio:` map (NULL: defaults): the keys of mm_audio_opts_from_cfg plus
 * normalize: {method: lufs|rms, target: T, peak_limit: P, top_db: D} (defaults lufs, −23
 * LUFS or −20 dBFS for rms, −1 dBFS, 40). Unknown keys and values out of range (level.h)
 * are refused with the config's file and line. The bundle reads its /pipeline/audio
 * through this function too, so a model is served with the normalisation it was trained with. */
int mm_pipeline_audio_from_cfg(const mm_cfg *map, mm_pipeline_audio *pa, mm_err *err);

/* One progress line (no newline, no '\r'), e.g. "120/1440 files  35.2 files/s  ETA 37 s". */
typedef void (*mm_extract_progress_fn)(void *ctx, const char *line);

typedef struct mm_extract_opts {
    mm_audio_opts audio;    /* target_sr is set per feature set */
    mm_level_opts level;    /* zero: no level normalisation */
    mm_clip_fn transform;   /* NULL: none; called with the clip's dataset row */
    void *transform_ctx;
    int n_threads;          /* >= 1 */
    int skip_bad;
    /* Progress lines (NULL: none): none in the first 5 s (a quick extraction is silent);
     * then one for the last file, otherwise when 5 s have passed or another 10 % of the
     * files is done since the previous line. Called from one thread at a time (an
     * extraction thread, or under MPI rank 0's scheduler), never concurrently; must not
     * call MPI. mm_extract_dist calls it on rank 0 only. */
    mm_extract_progress_fn on_progress;
    void *progress_ctx;
    const char *config_yaml;   /* stored as the table's config attribute (may be NULL) */
} mm_extract_opts;

/* Parse `features:` (a name, a list of names, or a list of {set, params})
 * and create the feature sets. *sets malloc'd (n entries); free with
 * mm_featsets_free. */
int mm_featsets_create(const mm_cfg *features, const char *model_root, mm_featset_inst **sets,
                       size_t *n, mm_err *err);
void mm_featsets_free(mm_featset_inst *sets, size_t n);

/* One clip (a file path, or encoded bytes data/len named `name` when path is
 * NULL) through every set, vectors concatenated into x (the sets' total
 * dim). The audio is decoded once per distinct sample rate the sets ask for
 * (audio options otherwise as given), not once per set. *seconds (may be
 * NULL) receives the decoded duration. Thread-safe as the sets are. */
int mm_featsets_compute(const mm_featset_inst *sets, size_t n_sets, const mm_audio_opts *audio, const char *path,
                        const void *data, size_t len, const char *name, float *x, double *seconds, mm_err *err);
/* The same through a whole audio pipeline (transform with `clip`, level normalisation):
 * decode → pa->transform → level normalisation → each feature set. pa->level.on with a
 * clip too short for its measure (LUFS: one 400 ms block) or silent is an error naming it. */
int mm_featsets_compute_pipeline(const mm_featset_inst *sets, size_t n_sets, const mm_pipeline_audio *pa, size_t clip,
                                 const char *path, const void *data, size_t len, const char *name, float *x,
                                 double *seconds, mm_err *err);
/* The level opts as one line for provenance ("normalize: {method: lufs, target: -23, ...}"),
 * empty when off. */
const char *mm_level_opts_describe(const mm_level_opts *l, char *buf, size_t size);

int mm_extract(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
               const mm_extract_opts *o, mm_table **out, mm_err *err);

/* The distributed extraction (scheduling: mpi/sched.h). Under `mpirun -np N` it is
 * collective: every rank calls it with the same arguments. Files are handed out
 * dynamically by rank 0, largest first, in chunks of the asking rank's thread count;
 * each rank extracts with o->n_threads threads; rank 0 assembles the table. On rank 0
 * *out gets the table (identical to mm_extract's); on the others *out is set to NULL.
 * Every rank returns the same status. Refused before any work: more ranks than files.
 * Without MPI it is mm_extract. Not covered: checkpointing an MPI extraction (use
 * shards for that, data/shard_table.h). */
int mm_extract_dist(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
                    const mm_extract_opts *o, mm_table **out, mm_err *err);

#endif
