/* featset.h — feature sets: audio clip → fixed-length vector.
 *
 * Every feature set (logmel_stats, mfcc_stats, speech_162, music_paper,
 * mn04_embedding, cnn14_embedding, ...) implements this table and is listed
 * in featset.c's constant table (as the learner registry). A state is created
 * once per extraction (load weights, make plans) and `compute` is then
 * called from many threads at once on mono audio at `sample_rate`.
 */
#ifndef MM_FEATSET_H
#define MM_FEATSET_H

#include <stddef.h>
#include "core/err.h"
#include "io/cfg.h"

typedef struct mm_featset_vt {
    const char *name;
    const char *summary;
    /* params: the feature set's config map (NULL = defaults; unknown keys
     * refused). model_root: folder holding pretrained weights. */
    int (*create)(const mm_cfg *params, const char *model_root, void **state, mm_err *err);
    int (*sample_rate)(const void *state);
    size_t (*dim)(const void *state);
    /* Name of dimension i (e.g. "mfcc_mean_3"); valid while state lives. */
    const char *(*feature_name)(const void *state, size_t i);
    /* x: (n) mono samples at sample_rate; out: (dim). Thread-safe. */
    int (*compute)(const void *state, const float *x, size_t n, float *out, mm_err *err);
    /* Settings for provenance (key=value lines), may be NULL. */
    const char *(*describe)(const void *state, char *buf, size_t size);
    void (*free)(void *state);
} mm_featset_vt;

const mm_featset_vt *mm_featset_find(const char *name);
const mm_featset_vt *const *mm_featset_list(void);

#endif
