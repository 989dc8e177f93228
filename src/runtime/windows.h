/* windows.h — a whole song classified the way the music model was trained:
 * window by window.
 *
 * Music models here are trained on clips of a fixed length (4Q: the
 * dataset's excerpts); a full track is cut into windows of that length
 * (window_s) every hop_s seconds, each window is classified by the bundle
 * exactly as a training clip would be (its audio settings: resampling, trim,
 * crop/pad, normalisation), and the track keeps the mean of the windows'
 * probabilities and scaled feature vectors, one valence–arousal point per
 * window (its trajectory) and the start of its best-representing window.
 * Leaves out: structure-aware segmentation (windows are uniform).
 */
#ifndef MM_WINDOWS_H
#define MM_WINDOWS_H

#include <stddef.h>
#include "core/err.h"
#include "runtime/bundle.h"
#include "runtime/va.h"

#define MM_WINDOWS_MAX 100000   /* windows per track at most */

/* One track, window by window. Arrays malloc'd (mm_windows_free). */
typedef struct mm_windows {
    size_t n;               /* windows, ≥ 1 */
    int k;                  /* classes */
    size_t dim;             /* embedding dimension (0 when not asked for) */
    double duration;        /* seconds, as decoded */
    double *start;          /* (n) window starts, seconds */
    float *proba;           /* (n, k) per window */
    mm_va *va;              /* (n) per window: Σ_c p_c · point(c), the trajectory */
    float *mean_proba;      /* (k) mean over the windows: the track's probabilities */
    float *embedding;       /* (dim) mean of the windows' scaled feature vectors, or NULL */
    size_t best;            /* the best-representing window: the one giving the track's top
                               class (argmax of mean_proba) the highest probability; ties: earliest */
} mm_windows;

/* Window starts for a track of `duration` seconds: 0, hop, 2·hop, … while
 * the window fits, plus one ending at the track's end when the last one
 * stops more than hop/2 short of it (a shorter tail is left out: a 10.03 s
 * clip is one 10 s window). A track no longer than one window is one window
 * of the whole track (not an error: the model sees it as it saw short
 * training clips). Returns the count (at most
 * MM_WINDOWS_MAX; starts, when not NULL, receives that many). window_s > 0,
 * hop_s > 0. */
size_t mm_windows_starts(double duration, double window_s, double hop_s, double *starts);

/* Decode path once and classify each window with b. class_va (k points of
 * the bundle's classes) gives the trajectory. want_embedding: also average
 * the scaled feature vectors. Errors: the file (as mm_audio_load), a window
 * the bundle refuses (named by its start), window_s or hop_s not in
 * (0, 3600]. *out written only on success. Thread-safe (b is). */
int mm_windows_classify(const mm_bundle *b, const char *path, const mm_va *class_va, double window_s,
                        double hop_s, int want_embedding, mm_windows *out, mm_err *err);
void mm_windows_free(mm_windows *w);

#endif
