/* gbdt.h — gradient-boosted trees in the manner of XGBoost's 'hist' method.
 *
 * Matches XGBoost 1.7 XGBClassifier(tree_method='hist') without missing
 * values: per-feature quantile cuts (at most max_bin bins; when a feature has
 * no more distinct values than max_bin, the cuts are those values, as in
 * XGBoost), depth-wise trees, second-order gain with L2 (reg_lambda), gamma
 * and min_child_weight, leaf weight -G / (H + lambda) times learning_rate,
 * split test `x < cut`, logistic loss for two classes (base margin 0) and
 * softmax for more (one tree per class per round, base margin 0.5).
 * Histograms: the smaller child is built, its sibling is parent minus child;
 * nodes with fewer than 256 rows are searched from row lists sorted by bin.
 * When a feature has more distinct values than max_bin, the cuts come from
 * the exact weighted summary pruned by rank as XGBoost prunes its sketch:
 * identical to XGBoost while its sketch is exact (fewer than 8 * max_bin
 * rows), close to it beyond. Left out: reg_alpha, max_delta_step, sample
 * weights, missing values, categorical splits, lossguide growth.
 *
 * Deterministic for a seed whatever the thread count: tree (round, class)
 * draws its row and column samples from mm_rng(seed, round, class), and
 * sums run in a fixed order. A fitted mm_gbdt is read-only: predictions may
 * run concurrently.
 */
#ifndef MM_GBDT_H
#define MM_GBDT_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/fitdata.h"
#include "io/cfg.h"

typedef struct mm_gbdt_params {
    int n_estimators;          /* boosting rounds, >= 1 (100) */
    int max_depth;             /* >= 1 (6) */
    double learning_rate;      /* shrinkage eta, in (0, 1] (0.3) */
    double reg_lambda;         /* L2 on leaf weights, >= 0 (1) */
    double gamma;              /* min loss reduction to split (min_split_loss), >= 0 (0) */
    double min_child_weight;   /* min hessian sum in each child, >= 0 (1) */
    double subsample;          /* row fraction per tree (Bernoulli), in (0, 1] (1) */
    double colsample_bytree;   /* feature fraction per tree, in (0, 1] (1) */
    int max_bin;               /* histogram bins per feature, in [2, 256] (256) */
    int early_stopping_rounds; /* stop after this many rounds without a better
                                  validation loss and keep the best; 0 = off (0) */
} mm_gbdt_params;

typedef struct mm_gbdt mm_gbdt;

/* XGBoost's defaults, as listed above. */
mm_gbdt_params mm_gbdt_params_default(void);

/* Validate ranges; message like "gbdt: max_depth must be >= 1, got 0". */
int mm_gbdt_params_check(const mm_gbdt_params *p, mm_err *err);

/* Read a hyperparameter map (NULL → defaults) with XGBoost's names:
 * n_estimators, max_depth, learning_rate, reg_lambda, gamma, min_child_weight,
 * subsample, colsample_bytree, max_bin, early_stopping_rounds (int or null).
 * Unknown keys and bad values are errors naming file:line and key. */
int mm_gbdt_params_from_cfg(const mm_cfg *map, mm_gbdt_params *out, mm_err *err);

/* Fit on X (n, d) finite float32 with y (n) in [0, n_classes), n_classes >= 2.
 * X_val (n_val, d) / y_val may be NULL; with them the per-round validation
 * loss is recorded and, if early_stopping_rounds > 0, used to stop early
 * (early stopping without a validation set is an MM_EINVAL error).
 * Uses up to n_threads threads. *out owned by the caller (mm_gbdt_free). */
int mm_gbdt_train(const mm_gbdt_params *p, const float *X, const int32_t *y, size_t n, size_t d,
                  int n_classes, const float *X_val, const int32_t *y_val, size_t n_val,
                  uint64_t seed, int n_threads, mm_gbdt **out, mm_err *err);

/* proba (n, n_classes); X (n, d) with the fitted d. */
int mm_gbdt_predict_proba(const mm_gbdt *m, const float *X, size_t n, float *proba, int n_threads,
                          mm_err *err);

int mm_gbdt_n_classes(const mm_gbdt *m);
size_t mm_gbdt_n_features(const mm_gbdt *m);
/* Rounds kept (after early stopping, best round + 1). */
size_t mm_gbdt_n_rounds(const mm_gbdt *m);
size_t mm_gbdt_n_nodes(const mm_gbdt *m);

/* Per-round losses of the last fit (all rounds run, including those dropped by
 * early stopping): logloss for two classes, mlogloss otherwise. Arrays owned
 * by m; val_* NULL without a validation set; best = last round kept. */
typedef mm_history mm_gbdt_history;   /* the learners' common history (core/fitdata.h) */
mm_gbdt_history mm_gbdt_get_history(const mm_gbdt *m);

/* Write into / read from an open HDF5 group (attribute kind = "gbdt",
 * datasets gbdt_*). Load validates every index and value (MM_EFORMAT). */
int mm_gbdt_save(const mm_gbdt *m, hid_t group, mm_err *err);
int mm_gbdt_load(hid_t group, mm_gbdt **out, mm_err *err);

/* NULL is a no-op. */
void mm_gbdt_free(mm_gbdt *m);

#endif
