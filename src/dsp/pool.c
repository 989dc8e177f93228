/* pool.c — pooling of frame-wise features into per-clip statistics.
 *
 * Reference: numpy mean/std/min/max, scipy.stats.skew (bias=True) and
 * librosa.feature.delta (scipy.signal.savgol_filter, polyorder 1, deriv 1,
 * mode 'interp'); checked against tests/ref/gen_features.py. Skew of a
 * constant series is 0 (scipy gives NaN); delta of fewer than 9 frames uses
 * one least-squares slope (librosa raises an error).
 */
#include "dsp/pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[MM_POOL_N_STATS] = {"mean", "std", "min", "max", "skew",
                                                   "delta_mean", "delta_std"};

int mm_pool_stat_parse(const char *name, mm_pool_stat *out, mm_err *err)
{
    for (int i = 0; i < MM_POOL_N_STATS; i++)
        if (name && !strcmp(name, names[i])) {
            *out = (mm_pool_stat)i;
            return 0;
        }
    return mm_err_set(err, MM_EINVAL, "unknown statistic '%s': expected one of mean, std, min, "
                      "max, skew, delta_mean, delta_std", name ? name : "(null)");
}

const char *mm_pool_stat_name(mm_pool_stat s)
{
    return (unsigned)s < MM_POOL_N_STATS ? names[s] : "?";
}

void mm_pool_delta(const float *x, size_t n, size_t stride, double *d)
{
    enum { W = 9, H = 4 };
    if (n < 2) {
        for (size_t t = 0; t < n; t++) d[t] = 0;
        return;
    }
    if (n < W) {
        double tm = (n - 1) / 2.0, xm = 0, num = 0, den = 0;
        for (size_t t = 0; t < n; t++) xm += x[t * stride];
        xm /= n;
        for (size_t t = 0; t < n; t++) {
            num += (t - tm) * (x[t * stride] - xm);
            den += (t - tm) * (t - tm);
        }
        for (size_t t = 0; t < n; t++) d[t] = num / den;
        return;
    }
    /* slope of the least-squares line over t-4..t+4: sum k x[t+k] / 60 */
    for (size_t t = H; t + H < n; t++) {
        double s = 0;
        for (int k = -H; k <= H; k++) s += k * (double)x[(t + k) * stride];
        d[t] = s / 60.0;
    }
    /* 'interp': a line fitted to the first / last 9 frames, so the slope of the end windows */
    for (size_t t = 0; t < H; t++) {
        d[t] = d[H];
        d[n - 1 - t] = d[n - 1 - H];
    }
}

int mm_pool_compute(mm_pool_stat s, const float *x, size_t n_frames, size_t dim, size_t stride,
                    float *out, mm_err *err)
{
    size_t n = n_frames;
    if (n == 0 || stride < dim)
        return mm_err_set(err, MM_EINVAL, "pool %s: %zu frames with stride %zu for %zu values: "
                          "expected >= 1 frame and stride >= dim", mm_pool_stat_name(s), n,
                          stride, dim);
    if (s == MM_POOL_DELTA_MEAN || s == MM_POOL_DELTA_STD) {
        double *d = mm_malloc(n, sizeof *d, err);
        if (!d) return MM_ENOMEM;
        for (size_t j = 0; j < dim; j++) {
            mm_pool_delta(x + j, n, stride, d);
            double m = 0, v = 0;
            for (size_t t = 0; t < n; t++) m += d[t];
            m /= n;
            for (size_t t = 0; t < n; t++) v += (d[t] - m) * (d[t] - m);
            out[j] = (float)(s == MM_POOL_DELTA_MEAN ? m : sqrt(v / n));
        }
        free(d);
        return 0;
    }
    for (size_t j = 0; j < dim; j++) {
        const float *c = x + j;
        double m = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t t = 0; t < n; t++) {
            double v = c[t * stride];
            m += v;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        m /= n;
        double r;
        switch (s) {
        case MM_POOL_MEAN: r = m; break;
        case MM_POOL_MIN: r = lo; break;
        case MM_POOL_MAX: r = hi; break;
        default: {
            double m2 = 0, m3 = 0;
            for (size_t t = 0; t < n; t++) {
                double e = c[t * stride] - m;
                m2 += e * e;
                m3 += e * e * e;
            }
            m2 /= n;
            m3 /= n;
            if (s == MM_POOL_STD) r = sqrt(m2);
            else r = m2 > 0 ? m3 / pow(m2, 1.5) : 0.0;
        }
        }
        out[j] = (float)r;
    }
    return 0;
}
