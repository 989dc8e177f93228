/* pool.h — per-clip statistics of frame-wise features.
 *
 * A feature matrix (n_frames, dim) is pooled over frames into one value per
 * dimension: mean, standard deviation (population, numpy's ddof=0), min,
 * max, skewness (scipy.stats.skew, biased; 0 for a constant dimension instead
 * of NaN), and the mean / standard deviation of librosa.feature.delta
 * (width 9, order 1, mode 'interp'). Sums run in double. Pure and thread-safe.
 */
#ifndef MM_POOL_H
#define MM_POOL_H

#include <stddef.h>
#include "core/err.h"

typedef enum {
    MM_POOL_MEAN = 0,
    MM_POOL_STD,
    MM_POOL_MIN,
    MM_POOL_MAX,
    MM_POOL_SKEW,
    MM_POOL_DELTA_MEAN,
    MM_POOL_DELTA_STD,
    MM_POOL_N_STATS
} mm_pool_stat;

/* "mean" | "std" | "min" | "max" | "skew" | "delta_mean" | "delta_std". */
int mm_pool_stat_parse(const char *name, mm_pool_stat *out, mm_err *err);
const char *mm_pool_stat_name(mm_pool_stat s);

/* out[d] = stat over t of x[t * stride + d], for d < dim (stride >= dim).
 * Returns 0; MM_EINVAL for n_frames == 0 or stride < dim; MM_ENOMEM when the
 * delta stats cannot get their scratch (n doubles). out written only on success. */
int mm_pool_compute(mm_pool_stat s, const float *x, size_t n_frames, size_t dim, size_t stride,
                    float *out, mm_err *err);

/* librosa.feature.delta(x, width=9, order=1, axis=frames, mode='interp') of one
 * series x (n, stride-spaced) into d (n, contiguous): the Savitzky–Golay slope
 * sum_k k x[t+k] / sum k^2 inside, and the end windows' slope at the edges.
 * For n < 9 (librosa refuses) the least-squares slope of all n values; 0 if n < 2. */
void mm_pool_delta(const float *x, size_t n, size_t stride, double *d);

#endif
