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

typedef struct mm_extract_opts {
    mm_audio_opts audio;    /* target_sr is set per feature set */
    int n_threads;          /* >= 1 */
    int skip_bad;
    int progress;           /* 1: progress line on stderr */
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

int mm_extract(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
               const mm_extract_opts *o, mm_table **out, mm_err *err);

#endif
