/* curves.h — one-vs-rest ROC and precision-recall curves from float32 scores.
 * Matches scikit-learn 1.2.1 roc_curve (drop_intermediate=True, first
 * threshold max + 1), roc_auc_score, precision_recall_curve and
 * average_precision_score, tied scores forming one threshold. Leaves out:
 * sample weights, max_fpr, pos_label other than a class id.
 */
#ifndef MM_CURVES_H
#define MM_CURVES_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mm_roc {
    size_t n;              /* points */
    double *fpr, *tpr;     /* (n) rising from (0, 0) to (1, 1); NaN when the
                            * rate is undefined (no negatives / no positives) */
    double *thresholds;    /* (n) decreasing; thresholds[0] = max score + 1 (float32 sum) */
    double auc;            /* NaN when y_true has a single class (sklearn raises) */
} mm_roc;

typedef struct mm_pr {
    size_t n;              /* points (n_thresholds + 1) */
    double *precision;     /* (n), last = 1 */
    double *recall;        /* (n) decreasing, last = 0; all 1 but the last when no positives */
    double *thresholds;    /* (n - 1) increasing */
    /* Average precision = sum over points of (R_k - R_{k+1}) P_k. With no
     * positive sample sklearn warns and returns 0; so does this. */
    double ap;
} mm_pr;

/* Curves for "label == positive" against score[i * stride], i < n (so a
 * column of an (n, n_classes) probability matrix: score = proba + c,
 * stride = n_classes). n >= 1; a non-finite score is MM_EINVAL naming the
 * sample. Either output may be NULL. Outputs own their arrays
 * (mm_roc_clear / mm_pr_clear); written only on success. Thread-safe. */
int mm_curves_binary(const int32_t *y_true, int32_t positive, const float *score, size_t stride,
                     size_t n, mm_roc *roc, mm_pr *pr, mm_err *err);
void mm_roc_clear(mm_roc *r);
void mm_pr_clear(mm_pr *p);

/* One-vs-rest for every class of an (n, n_classes) probability matrix:
 * roc and pr are arrays of n_classes (either may be NULL). *macro_auc (may
 * be NULL) = mean of the per-class AUCs as roc_auc_score(multi_class='ovr',
 * average='macro'), NaN when some class has no positive or no negative
 * sample (sklearn raises then). */
int mm_curves_ovr(const int32_t *y_true, const float *proba, size_t n, int n_classes,
                  mm_roc *roc, mm_pr *pr, double *macro_auc, mm_err *err);

#endif
