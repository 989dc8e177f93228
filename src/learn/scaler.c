/* scaler.c — StandardScaler: per-column mean and standard deviation.
 *
 * Reference: scikit-learn 1.2 StandardScaler. Mean and population variance
 * are computed in double with a two-pass algorithm (sklearn accumulates in
 * float64 too); a column is constant when var <= n*eps*var + (n*mean*eps)^2
 * (sklearn's _is_constant_feature) or sqrt(var) < 10*eps, and then gets scale 1.
 * Left out: sparse input, partial_fit, sample weights.
 */
#include "learn/scaler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "io/h5.h"

struct mm_scaler {
    size_t d;
    double *mean;    /* (d) */
    double *scale;   /* (d), > 0 */
};

static int scaler_alloc(size_t d, mm_scaler **out, mm_err *err)
{
    mm_scaler *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->d = d;
    s->mean = mm_calloc(d, sizeof *s->mean, err);
    s->scale = mm_calloc(d, sizeof *s->scale, err);
    if (!s->mean || !s->scale) { mm_scaler_free(s); return MM_ENOMEM; }
    *out = s;
    return 0;
}

int mm_scaler_fit(const float *X, size_t n, size_t d, mm_scaler **out, mm_err *err)
{
    if (n == 0 || d == 0)
        return mm_err_set(err, MM_EDATA, "scaler: empty training set (%zu rows, %zu features)", n, d);
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(X[i]))
            return mm_err_set(err, MM_EDATA, "scaler: row %zu, column %zu is %s; features must be finite",
                              i / d, i % d, isnan(X[i]) ? "NaN" : "infinite");
    mm_scaler *s;
    int rc = scaler_alloc(d, &s, err);
    if (rc) return rc;
    double *var = mm_calloc(d, sizeof *var, err);
    if (!var) { mm_scaler_free(s); return MM_ENOMEM; }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) s->mean[j] += X[i * d + j];
    for (size_t j = 0; j < d; j++) s->mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double c = X[i * d + j] - s->mean[j];
            var[j] += c * c;
        }
    const double eps = DBL_EPSILON;
    for (size_t j = 0; j < d; j++) {
        double v = var[j] / (double)n;
        double nm = (double)n * s->mean[j] * eps;
        int constant = v <= (double)n * eps * v + nm * nm;
        double sc = sqrt(v);
        s->scale[j] = (constant || sc < 10 * eps) ? 1.0 : sc;
    }
    free(var);
    *out = s;
    return 0;
}

size_t mm_scaler_dim(const mm_scaler *s) { return s->d; }
const double *mm_scaler_mean(const mm_scaler *s) { return s->mean; }
const double *mm_scaler_scale(const mm_scaler *s) { return s->scale; }

int mm_scaler_transform_to(const mm_scaler *s, const float *X, size_t n, size_t d, float *out,
                           mm_err *err)
{
    if (d != s->d)
        return mm_err_set(err, MM_EINVAL, "scaler: fitted on %zu features, got %zu", s->d, d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            out[i * d + j] = (float)(((double)X[i * d + j] - s->mean[j]) / s->scale[j]);
    return 0;
}

int mm_scaler_transform(const mm_scaler *s, float *X, size_t n, size_t d, mm_err *err)
{
    return mm_scaler_transform_to(s, X, n, d, X, err);
}

int mm_scaler_inverse(const mm_scaler *s, float *X, size_t n, size_t d, mm_err *err)
{
    if (d != s->d)
        return mm_err_set(err, MM_EINVAL, "scaler: fitted on %zu features, got %zu", s->d, d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = (float)((double)X[i * d + j] * s->scale[j] + s->mean[j]);
    return 0;
}

int mm_scaler_save(const mm_scaler *s, hid_t g, mm_err *err)
{
    hsize_t dims[1] = {s->d};
    int rc = mm_h5_attr_set_str(g, "kind", "standard_scaler", err);
    if (!rc) rc = mm_h5_write_f64(g, "mean", s->mean, 1, dims, err);
    if (!rc) rc = mm_h5_write_f64(g, "scale", s->scale, 1, dims, err);
    return rc;
}

int mm_scaler_load(hid_t g, mm_scaler **out, mm_err *err)
{
    char *kind = NULL;
    int rc = mm_h5_attr_get_str(g, "kind", &kind, err);
    if (rc) return rc;
    if (strcmp(kind, "standard_scaler")) {
        rc = mm_err_set(err, MM_EFORMAT, "scaler: group holds a '%s', expected a standard_scaler", kind);
        free(kind);
        return rc;
    }
    free(kind);
    double *mean = NULL, *scale = NULL;
    int r1, r2;
    hsize_t d1[4], d2[4];
    mm_scaler *s = NULL;
    if ((rc = mm_h5_read_f64(g, "mean", 1, &mean, &r1, d1, err))) goto done;
    if ((rc = mm_h5_read_f64(g, "scale", 1, &scale, &r2, d2, err))) goto done;
    if (d1[0] != d2[0] || d1[0] == 0) {
        rc = mm_err_set(err, MM_EFORMAT, "scaler: 'mean' has %llu values and 'scale' %llu; expected equal, non-zero",
                        (unsigned long long)d1[0], (unsigned long long)d2[0]);
        goto done;
    }
    for (hsize_t j = 0; j < d1[0]; j++)
        if (!isfinite(mean[j]) || !isfinite(scale[j]) || !(scale[j] > 0)) {
            rc = mm_err_set(err, MM_EFORMAT, "scaler: column %llu has mean %g and scale %g; expected finite values and scale > 0",
                            (unsigned long long)j, mean[j], scale[j]);
            goto done;
        }
    s = mm_calloc(1, sizeof *s, err);
    if (!s) { rc = MM_ENOMEM; goto done; }
    s->d = d1[0];
    s->mean = mean;
    s->scale = scale;
    mean = scale = NULL;
    *out = s;
done:
    free(mean);
    free(scale);
    return rc;
}

void mm_scaler_free(mm_scaler *s)
{
    if (!s) return;
    free(s->mean);
    free(s->scale);
    free(s);
}
