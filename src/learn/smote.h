/* smote.h — Synthetic Minority Over-sampling (SMOTE) as imbalanced-learn 0.10 defines it.
 *
 * For each class to be raised, a new point is x + u·(x_nn − x) with x drawn
 * uniformly (with replacement) from the class, x_nn one of x's k nearest
 * same-class neighbours (Euclidean, exact) and u uniform in [0, 1). Output
 * holds the original rows first, then the synthetic rows class by class in
 * increasing class order, as imblearn orders them.
 * Threading: neighbour search runs on up to n_threads threads; randomness is
 * drawn per (seed, class, block), so output does not depend on thread count.
 */
#ifndef MM_SMOTE_H
#define MM_SMOTE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"

#define MM_SMOTE_MAX_CLASSES 256

enum {
    MM_SMOTE_AUTO = 0,          /* = not majority */
    MM_SMOTE_MINORITY,          /* raise only the smallest class to the majority's count */
    MM_SMOTE_NOT_MINORITY,      /* every class but the smallest */
    MM_SMOTE_NOT_MAJORITY,      /* every class but the largest */
    MM_SMOTE_ALL,               /* every class (the majority gets 0 new rows) */
    MM_SMOTE_TARGETS,           /* explicit total count per class in `target` */
};

typedef struct mm_smote_params {
    int k_neighbors;            /* neighbours to interpolate towards, >= 1 (5) */
    int strategy;               /* MM_SMOTE_* (AUTO) */
    long target[MM_SMOTE_MAX_CLASSES];  /* TARGETS: wanted total per class, -1 = leave as is */
    int n_threads;              /* neighbour-search threads; < 1 = OpenMP's default (0) */
} mm_smote_params;

mm_smote_params mm_smote_params_default(void);
/* Keys: k_neighbors (integer >= 1), sampling_strategy ('auto', 'minority',
 * 'not minority', 'not majority', 'all', or a map class → total count).
 * NULL map → defaults. Errors name file, line and key. */
int mm_smote_params_from_cfg(const mm_cfg *map, mm_smote_params *p, mm_err *err);

/* Number of synthetic rows per class (n_classes entries) that `p` asks for
 * given labels y; errors as mm_smote_resample (targets below the current
 * count, classes absent from y, labels out of range). */
int mm_smote_plan(const int32_t *y, size_t n, int n_classes, const mm_smote_params *p,
                  size_t *n_new, mm_err *err);

/* Resample (X (n, d), y (n)) into malloc'd *X_out (n_out, d), *y_out (n_out),
 * owned by the caller. A class that must grow needs at least k_neighbors + 1
 * rows (imblearn raises too); non-finite features are refused. Outputs are
 * written only on success. */
int mm_smote_resample(const float *X, const int32_t *y, size_t n, size_t d, int n_classes,
                      const mm_smote_params *p, uint64_t seed, float **X_out, int32_t **y_out,
                      size_t *n_out, mm_err *err);

/* Exact k nearest neighbours of every row of X (n, d) among the other rows
 * (squared Euclidean, ties to the lower index) into nn (n, k); n > k. */
int mm_smote_knn(const float *X, size_t n, size_t d, int k, int n_threads, int32_t *nn, mm_err *err);

#endif
