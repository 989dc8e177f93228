/* metrics.c — accuracy, balanced accuracy, precision/recall/F1, confusion.
 *
 * Reference: scikit-learn 1.2.1 metrics/_classification.py
 * (precision_recall_fscore_support with zero_division=0: 0/0 → 0; F-score
 * as 2·P·R / (P + R) with a zero denominator replaced by 1; averages by
 * np.average, i.e. NumPy pairwise sums). Checked against sklearn by
 * tests/test_metrics.c. Leaves out sample weights and multilabel input.
 */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/npcompat.h"

void mm_metrics_free(mm_metrics *m)
{
    if (!m) return;
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->support);
    free(m->confusion);
    free(m);
}

/* np.mean of the values of x whose mask is set (packed first). */
static double masked_mean(const double *x, const uint8_t *mask, size_t k, double *buf)
{
    size_t m = 0;
    for (size_t c = 0; c < k; c++)
        if (mask[c]) buf[m++] = x[c];
    return m ? mm_np_pairwise_sum(buf, m) / (double)m : NAN;
}

int mm_metrics_compute(const int32_t *y_true, const int32_t *y_pred, size_t n, int n_classes,
                       mm_metrics **out, mm_err *err)
{
    if (n == 0) return mm_err_set(err, MM_EINVAL, "metrics: no samples");
    if (n_classes < 1) return mm_err_set(err, MM_EINVAL, "metrics: n_classes must be >= 1, got %d", n_classes);
    for (size_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || y_true[i] >= n_classes)
            return mm_err_set(err, MM_EINVAL, "metrics: y_true[%zu] = %d, expected a label in [0, %d)",
                              i, (int)y_true[i], n_classes);
        if (y_pred[i] < 0 || y_pred[i] >= n_classes)
            return mm_err_set(err, MM_EINVAL, "metrics: y_pred[%zu] = %d, expected a label in [0, %d)",
                              i, (int)y_pred[i], n_classes);
    }
    size_t k = (size_t)n_classes;
    int rc = MM_ENOMEM;
    double *buf = NULL, *tmp = NULL;
    uint8_t *in_true = NULL, *in_any = NULL;
    int64_t *pred_sum = NULL;
    mm_metrics *m = mm_calloc(1, sizeof *m, err);
    if (!m || !(m->precision = mm_calloc(k, sizeof(double), err)) ||
        !(m->recall = mm_calloc(k, sizeof(double), err)) ||
        !(m->f1 = mm_calloc(k, sizeof(double), err)) ||
        !(m->support = mm_calloc(k, sizeof(int64_t), err)) ||
        !(m->confusion = mm_calloc(k * k, sizeof(int64_t), err)) ||
        !(pred_sum = mm_calloc(k, sizeof *pred_sum, err)) ||
        !(buf = mm_malloc(k > n ? k : n, sizeof *buf, err)) ||
        !(tmp = mm_malloc(k, sizeof *tmp, err)) || !(in_true = mm_calloc(k, 1, err)) ||
        !(in_any = mm_calloc(k, 1, err)))
        goto fail;
    m->n_classes = n_classes;
    m->n = n;
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        m->confusion[(size_t)y_true[i] * k + (size_t)y_pred[i]]++;
        m->support[y_true[i]]++;
        pred_sum[y_pred[i]]++;
        correct += y_true[i] == y_pred[i];
    }
    m->accuracy = (double)correct / (double)n;
    for (size_t c = 0; c < k; c++) {
        double tp = (double)m->confusion[c * k + c];
        double p = pred_sum[c] ? tp / (double)pred_sum[c] : 0.0;
        double r = m->support[c] ? tp / (double)m->support[c] : 0.0;
        double denom = p + r;
        if (denom == 0.0) denom = 1.0;
        m->precision[c] = p;
        m->recall[c] = r;
        m->f1[c] = 2.0 * p * r / denom;
        in_true[c] = m->support[c] > 0;
        in_any[c] = m->support[c] > 0 || pred_sum[c] > 0;
    }
    m->balanced_accuracy = masked_mean(m->recall, in_true, k, buf);
    m->macro_precision = masked_mean(m->precision, in_any, k, buf);
    m->macro_recall = masked_mean(m->recall, in_any, k, buf);
    m->macro_f1 = masked_mean(m->f1, in_any, k, buf);
    /* np.average(x, weights=support) over the present labels:
     * sum(x * w) / sum(w) */
    const double *vals[3] = {m->precision, m->recall, m->f1};
    double *wout[3] = {&m->weighted_precision, &m->weighted_recall, &m->weighted_f1};
    size_t q = 0;
    for (size_t c = 0; c < k; c++)
        if (in_any[c]) tmp[q++] = (double)m->support[c];
    double wsum = mm_np_pairwise_sum(tmp, q);
    for (int v = 0; v < 3; v++) {
        q = 0;
        for (size_t c = 0; c < k; c++)
            if (in_any[c]) buf[q++] = vals[v][c] * (double)m->support[c];
        *wout[v] = wsum > 0 ? mm_np_pairwise_sum(buf, q) / wsum : 0.0;
    }
    free(buf); free(tmp); free(in_true); free(in_any); free(pred_sum);
    *out = m;
    return 0;
fail:
    free(buf); free(tmp); free(in_true); free(in_any); free(pred_sum);
    mm_metrics_free(m);
    return rc;
}

size_t mm_metrics_mean_std(const double *x, size_t n, size_t stride, double *mean, double *std)
{
    double *v = malloc((n ? n : 1) * sizeof *v);
    size_t m = 0;
    if (!v) {    /* out of memory: plain two-pass sums, same maths */
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i * stride])) { s += x[i * stride]; m++; }
        double mu = m ? s / (double)m : NAN;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i * stride])) s2 += (x[i * stride] - mu) * (x[i * stride] - mu);
        *mean = mu;
        *std = m ? sqrt(s2 / (double)m) : NAN;
        return m;
    }
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i * stride])) v[m++] = x[i * stride];
    if (!m) {
        *mean = *std = NAN;
        free(v);
        return 0;
    }
    double mu = mm_np_pairwise_sum(v, m) / (double)m;
    for (size_t i = 0; i < m; i++) v[i] = (v[i] - mu) * (v[i] - mu);
    *mean = mu;
    *std = sqrt(mm_np_pairwise_sum(v, m) / (double)m);
    free(v);
    return m;
}
