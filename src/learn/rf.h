/* rf.h — random forest of CART classification trees.
 *
 * Matches scikit-learn 1.2 RandomForestClassifier: gini or entropy impurity,
 * exhaustive thresholds at midpoints between consecutive distinct values,
 * bootstrap drawn as per-sample counts (weights), max_features candidates per
 * node drawn without replacement until that many non-constant features were
 * seen, class_weight 'balanced', predict_proba as the mean over trees of the
 * leaf's (weighted) class frequencies, impurity-based feature importances.
 * Left out: min_weight_fraction_leaf, max_leaf_nodes, min_impurity_decrease,
 * max_samples, oob score, 'balanced_subsample', float min_samples_*.
 *
 * Trees are built in parallel (OpenMP, one tree per task); tree t draws from
 * the stream mm_rng(seed, t, 0), so a forest is identical for any thread count.
 * A fitted mm_rf is read-only: predictions may run concurrently.
 */
#ifndef MM_RF_H
#define MM_RF_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"

typedef enum { MM_RF_GINI = 0, MM_RF_ENTROPY = 1 } mm_rf_criterion;

typedef enum {
    MM_RF_MAXF_SQRT = 0,       /* max(1, floor(sqrt(d))) — scikit-learn's default */
    MM_RF_MAXF_LOG2 = 1,       /* max(1, floor(log2(d))) */
    MM_RF_MAXF_ALL = 2,        /* d (None in scikit-learn) */
    MM_RF_MAXF_COUNT = 3,      /* max_features_value features, 1 <= value <= d */
    MM_RF_MAXF_FRACTION = 4,   /* max(1, floor(value * d)), value in (0, 1] */
} mm_rf_max_features;

typedef struct mm_rf_params {
    int n_estimators;               /* trees, >= 1 (100) */
    mm_rf_criterion criterion;      /* split impurity (gini) */
    int max_depth;                  /* >= 1, or -1 for unlimited (-1) */
    int min_samples_split;          /* a node with fewer distinct samples is a leaf, >= 2 (2) */
    int min_samples_leaf;           /* distinct samples on each side of a split, >= 1 (1) */
    mm_rf_max_features max_features;/* how many features each node considers (sqrt) */
    double max_features_value;      /* count (COUNT) or fraction (FRACTION); else unused */
    int bootstrap;                  /* 1: each tree sees n draws with replacement (1) */
    int class_weight_balanced;      /* 1: class k weighs n / (n_present_classes * n_k) (0) */
} mm_rf_params;

/* Opaque fitted forest. */
typedef struct mm_rf mm_rf;

/* scikit-learn's defaults, as listed above. */
mm_rf_params mm_rf_params_default(void);

/* Validate ranges; message like "rf: max_depth must be >= 1 or -1 (unlimited), got 0". */
int mm_rf_params_check(const mm_rf_params *p, mm_err *err);

/* Read a hyperparameter map (NULL → defaults) with scikit-learn's names:
 * n_estimators, criterion (gini|entropy|log_loss), max_depth (int or null),
 * min_samples_split, min_samples_leaf, max_features (sqrt|log2|all|null|int|
 * float fraction), bootstrap, class_weight (null|balanced). Unknown keys and
 * bad values are errors naming file:line and key. *out written on success. */
int mm_rf_params_from_cfg(const mm_cfg *map, mm_rf_params *out, mm_err *err);

/* Fit on X (n, d) row-major finite float32 and y (n) in [0, n_classes).
 * The caller checks finiteness and labels (mm_learner_fit does); this checks
 * shapes and max_features against d. Uses up to n_threads threads. *out owned
 * by the caller (mm_rf_free). */
int mm_rf_train(const mm_rf_params *p, const float *X, const int32_t *y, size_t n, size_t d,
                int n_classes, uint64_t seed, int n_threads, mm_rf **out, mm_err *err);

/* proba (n, n_classes): mean over trees of leaf class frequencies. X (n, d)
 * with d = the fitted feature count. Uses up to n_threads threads. */
int mm_rf_predict_proba(const mm_rf *m, const float *X, size_t n, float *proba, int n_threads,
                        mm_err *err);

int mm_rf_n_classes(const mm_rf *m);
size_t mm_rf_n_features(const mm_rf *m);
size_t mm_rf_n_trees(const mm_rf *m);
/* Total nodes over all trees. */
size_t mm_rf_n_nodes(const mm_rf *m);
/* (d) impurity importances summing to 1 (all 0 if no tree split); owned by m. */
const double *mm_rf_feature_importances(const mm_rf *m);

/* Write into an open HDF5 group (datasets rf_tree_offsets, rf_feature,
 * rf_threshold, rf_left, rf_value, rf_importances; attribute kind = "rf").
 * Load validates every index and value and fails with MM_EFORMAT on a corrupt
 * or foreign group. HDF5: one thread at a time. */
int mm_rf_save(const mm_rf *m, hid_t group, mm_err *err);
int mm_rf_load(hid_t group, mm_rf **out, mm_err *err);

/* NULL is a no-op. */
void mm_rf_free(mm_rf *m);

#endif
