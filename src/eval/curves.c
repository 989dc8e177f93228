/* curves.c — ROC and precision-recall curves, AUC and average precision.
 * Reference: scikit-learn 1.2.1 metrics/_ranking.py (_binary_clf_curve: one
 * point per distinct score; roc_curve's collinear-point dropping; auc by
 * np.trapz; AP = -sum(diff(recall) * precision[:-1])), with NumPy's pairwise
 * sums. Checked by tests/test_metrics.c. Leaves out sample weights.
 */
#include "eval/curves.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/npcompat.h"

void mm_roc_clear(mm_roc *r)
{
    if (!r) return;
    free(r->fpr);
    free(r->tpr);
    free(r->thresholds);
    memset(r, 0, sizeof *r);
}

void mm_pr_clear(mm_pr *p)
{
    if (!p) return;
    free(p->precision);
    free(p->recall);
    free(p->thresholds);
    memset(p, 0, sizeof *p);
}

typedef struct { float s; size_t i; } scored;

/* decreasing score; ties in any order (only block ends are used) */
static int cmp_desc(const void *a, const void *b)
{
    float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

/* np.trapz(y, x) with sklearn's auc() direction rule. */
static double trapz_auc(const double *x, const double *y, size_t n, double *buf)
{
    if (n < 2) return NAN;
    int dir = 1, up = 0, down = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (x[i + 1] - x[i] < 0) down = 1;
        if (x[i + 1] - x[i] > 0) up = 1;
    }
    if (down) {
        if (up) return NAN;    /* sklearn raises: x neither increasing nor decreasing */
        dir = -1;
    }
    for (size_t i = 0; i + 1 < n; i++) buf[i] = (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0;
    return dir * mm_np_pairwise_sum(buf, n - 1);
}

int mm_curves_binary(const int32_t *y_true, int32_t positive, const float *score, size_t stride,
                     size_t n, mm_roc *roc, mm_pr *pr, mm_err *err)
{
    if (n == 0) return mm_err_set(err, MM_EINVAL, "curves: no samples");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(score[i * stride]))
            return mm_err_set(err, MM_EINVAL, "curves: score of sample %zu is %g, expected a "
                              "finite number", i, (double)score[i * stride]);
    int rc = MM_ENOMEM;
    scored *o = NULL;
    double *tps = NULL, *fps = NULL, *buf = NULL;
    float *thr = NULL;
    size_t *keep = NULL;
    mm_roc r = {0};
    mm_pr p = {0};
    if (!(o = mm_malloc(n, sizeof *o, err)) || !(tps = mm_malloc(n + 1, sizeof *tps, err)) ||
        !(fps = mm_malloc(n + 1, sizeof *fps, err)) || !(thr = mm_malloc(n, sizeof *thr, err)) ||
        !(buf = mm_malloc(n + 2, sizeof *buf, err)) || !(keep = mm_malloc(n, sizeof *keep, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        o[i].s = score[i * stride];
        o[i].i = i;
    }
    qsort(o, n, sizeof *o, cmp_desc);
    /* one point at the end of each block of equal scores */
    size_t m = 0;
    double tp = 0;
    for (size_t j = 0; j < n; j++) {
        tp += y_true[o[j].i] == positive ? 1.0 : 0.0;
        if (j + 1 == n || o[j + 1].s != o[j].s) {
            tps[m] = tp;
            fps[m] = 1.0 + (double)j - tp;
            thr[m] = o[j].s;
            m++;
        }
    }
    double P = tps[m - 1], N = fps[m - 1];
    if (roc) {
        /* keep the ends and every point where fps or tps bends */
        size_t q = 0;
        for (size_t j = 0; j < m; j++) {
            int k = j == 0 || j + 1 == m || m <= 2;
            if (!k) {
                double d2f = (fps[j + 1] - fps[j]) - (fps[j] - fps[j - 1]);
                double d2t = (tps[j + 1] - tps[j]) - (tps[j] - tps[j - 1]);
                k = d2f != 0.0 || d2t != 0.0;
            }
            if (k) keep[q++] = j;
        }
        r.n = q + 1;
        rc = MM_ENOMEM;
        if (!(r.fpr = mm_malloc(r.n, sizeof(double), err)) ||
            !(r.tpr = mm_malloc(r.n, sizeof(double), err)) ||
            !(r.thresholds = mm_malloc(r.n, sizeof(double), err)))
            goto fail;
        r.fpr[0] = N > 0 ? 0.0 : NAN;
        r.tpr[0] = P > 0 ? 0.0 : NAN;
        r.thresholds[0] = (double)(thr[keep[0]] + 1.0f);
        for (size_t j = 0; j < q; j++) {
            r.fpr[j + 1] = N > 0 ? fps[keep[j]] / N : NAN;
            r.tpr[j + 1] = P > 0 ? tps[keep[j]] / P : NAN;
            r.thresholds[j + 1] = (double)thr[keep[j]];
        }
        r.auc = (P > 0 && N > 0) ? trapz_auc(r.fpr, r.tpr, r.n, buf) : NAN;
    }
    if (pr) {
        p.n = m + 1;
        rc = MM_ENOMEM;
        if (!(p.precision = mm_malloc(p.n, sizeof(double), err)) ||
            !(p.recall = mm_malloc(p.n, sizeof(double), err)) ||
            !(p.thresholds = mm_malloc(m, sizeof(double), err)))
            goto fail;
        /* reversed so that recall decreases, then the (recall 0, precision 1) end */
        for (size_t j = 0; j < m; j++) {
            size_t s = m - 1 - j;
            double ps = tps[s] + fps[s];
            p.precision[j] = ps != 0.0 ? tps[s] / ps : 0.0;
            p.recall[j] = P == 0.0 ? 1.0 : tps[s] / P;
            p.thresholds[j] = (double)thr[s];
        }
        p.precision[m] = 1.0;
        p.recall[m] = 0.0;
        for (size_t j = 0; j < m; j++) buf[j] = (p.recall[j + 1] - p.recall[j]) * p.precision[j];
        p.ap = -mm_np_pairwise_sum(buf, m);
        if (p.ap == 0.0) p.ap = 0.0;    /* -(-0.0) is 0.0 in NumPy too; keep +0 */
    }
    free(o); free(tps); free(fps); free(thr); free(buf); free(keep);
    if (roc) *roc = r;
    if (pr) *pr = p;
    return 0;
fail:
    free(o); free(tps); free(fps); free(thr); free(buf); free(keep);
    mm_roc_clear(&r);
    mm_pr_clear(&p);
    return rc;
}

int mm_curves_ovr(const int32_t *y_true, const float *proba, size_t n, int n_classes,
                  mm_roc *roc, mm_pr *pr, double *macro_auc, mm_err *err)
{
    if (n_classes < 2)
        return mm_err_set(err, MM_EINVAL, "curves: n_classes must be >= 2, got %d", n_classes);
    size_t k = (size_t)n_classes;
    mm_roc *rr = roc ? roc : mm_calloc(k, sizeof *rr, err);
    if (!rr) return MM_ENOMEM;
    size_t c;
    int rc = 0;
    for (c = 0; c < k; c++) {
        rc = mm_curves_binary(y_true, (int32_t)c, proba + c, k, n, &rr[c], pr ? &pr[c] : NULL, err);
        if (rc) break;
    }
    if (rc) {
        while (c-- > 0) {
            mm_roc_clear(&rr[c]);
            if (pr) mm_pr_clear(&pr[c]);
        }
        if (!roc) free(rr);
        return rc;
    }
    if (macro_auc) {
        double *a = malloc(k * sizeof *a);
        int defined = a != NULL;
        for (c = 0; c < k && defined; c++) {
            a[c] = rr[c].auc;
            if (isnan(a[c])) defined = 0;
        }
        *macro_auc = defined ? mm_np_pairwise_sum(a, k) / (double)k : NAN;
        free(a);
    }
    if (!roc) {
        for (c = 0; c < k; c++) mm_roc_clear(&rr[c]);
        free(rr);
    }
    return 0;
}
