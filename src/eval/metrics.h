/* metrics.h — classification metrics from labels, and mean ± std over folds.
 * Matches scikit-learn 1.2.1 (zero_division=0): accuracy, balanced accuracy,
 * precision/recall/F1 per class, macro and weighted, confusion matrix, in
 * NumPy's summation order. Curves are in curves.h. Leaves out: sample
 * weights, multilabel targets, beta != 1.
 */
#ifndef MM_METRICS_H
#define MM_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mm_metrics {
    int n_classes;              /* labels are in [0, n_classes) */
    size_t n;                   /* samples scored */
    double accuracy;
    /* Mean recall over the classes present in y_true (sklearn drops classes
     * only predicted, with a warning). */
    double balanced_accuracy;
    /* Unweighted means over the classes present in y_true or y_pred
     * (sklearn's labels=None); a class absent from both does not count. */
    double macro_precision, macro_recall, macro_f1;
    /* Means weighted by support (0 when every support is 0). */
    double weighted_precision, weighted_recall, weighted_f1;
    /* Per class, (n_classes) each. A class never predicted has precision 0;
     * a class absent from y_true has recall 0; F1 = 2PR/(P+R), 0 when P+R = 0. */
    double *precision, *recall, *f1;
    int64_t *support;           /* (n_classes) samples of each class in y_true */
    int64_t *confusion;         /* (n_classes, n_classes): row = true class, column = predicted */
} mm_metrics;

/* Compute every metric above. y_true and y_pred: (n) labels in
 * [0, n_classes); n >= 1, n_classes >= 1. A label out of range is
 * MM_EINVAL naming the sample, the value and the range. *out owned by the
 * caller (mm_metrics_free). Thread-safe. */
int mm_metrics_compute(const int32_t *y_true, const int32_t *y_pred, size_t n, int n_classes,
                       mm_metrics **out, mm_err *err);
void mm_metrics_free(mm_metrics *m);

/* Mean and standard deviation of x[0], x[stride], ... (n values), skipping
 * NaNs (as np.nanmean / np.nanstd). The std uses ddof = 0 (population std,
 * NumPy's default), NOT the sample std. Returns the number of values used;
 * with 0, *mean and *std are NaN. */
size_t mm_metrics_mean_std(const double *x, size_t n, size_t stride, double *mean, double *std);

#endif
