/* va.h — emotions on the valence–arousal plane (format: configs/recommend/default.yaml).
 *
 * Every emotion word (speech labels such as happy, sad; music labels such as
 * MER500's romantic) gets a point (valence, arousal) in [-1, 1]² taken from a
 * cited lexicon in the config (NRC VAD v1.0, Mohammad 2018, whose [0, 1]
 * scores are mapped by x → 2x − 1). The 4Q labels Q1..Q4 are the centres of
 * Russell's quadrants: Q1 (+½, +½), Q2 (−½, +½), Q3 (−½, −½), Q4 (+½, −½).
 * A table is read-only after loading: share it between threads.
 */
#ifndef MM_VA_H
#define MM_VA_H

#include <stddef.h>
#include "core/err.h"
#include "io/cfg.h"

/* A point of the valence–arousal plane, both coordinates in [-1, 1]. */
typedef struct mm_va {
    float valence;
    float arousal;
} mm_va;

typedef struct mm_va_table mm_va_table;

/* Build a table from a config root holding `emotions:` (word → {valence,
 * arousal} in the lexicon's [0, 1] scale), optional `scale: unit|signed`
 * (default unit: mapped by 2x − 1), optional `merges:` (label → [words]: a
 * merged label sits at the mean of its words, e.g. RAVDESS-7's neutral =
 * neutral + calm) and optional `target:` (a word or {valence, arousal} in
 * [-1, 1]; the default end point of the regulate policy, default word
 * "calm"). `recommend:` (and `include:`) are left for the caller (recommend params);
 * any other top-level key is an error, so a typo is refused by every command
 * that reads the config (index, recommend, serve). Unknown keys inside these sections, values outside the scale, and a target
 * word missing from `emotions` are errors naming file, line and key.
 * *out owned by caller (mm_va_table_free). */
int mm_va_table_from_cfg(const mm_cfg *root, mm_va_table **out, mm_err *err);
/* The same from a YAML file. */
int mm_va_table_load(const char *path, mm_va_table **out, mm_err *err);
void mm_va_table_free(mm_va_table *t);

/* Points of a label set (speech or music model classes, matched case-
 * insensitively): Q1..Q4 → quadrant centres; a label listed in `merges`
 * whose other words are not themselves in `labels` → the mean of its words;
 * else the word's point. points (n) written only on success; an unknown
 * label is an error naming it. Thread-safe. */
int mm_va_label_points(const mm_va_table *t, const char *const *labels, int n, mm_va *points,
                       mm_err *err);
/* One word's point (case-insensitive); 0 when known, MM_EINVAL otherwise
 * (err may be NULL). */
int mm_va_lookup(const mm_va_table *t, const char *word, mm_va *out, mm_err *err);
/* The regulate policy's default target. */
mm_va mm_va_table_target(const mm_va_table *t);

/* Σ p_k·points_k / Σ p_k (probabilities need not sum to 1; all-zero → origin). */
mm_va mm_va_expected(const mm_va *points, const float *proba, int n);
/* Quadrant 1..4 of a point: Q1 v ≥ 0, a ≥ 0; Q2 v < 0, a ≥ 0; Q3 v < 0, a < 0;
 * Q4 v ≥ 0, a < 0. */
int mm_va_quadrant(mm_va p);
/* Euclidean distance. */
float mm_va_dist(mm_va a, mm_va b);

#endif
