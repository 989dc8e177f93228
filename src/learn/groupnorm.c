/* groupnorm.c — per-group standardisation (see groupnorm.h). */
#include "learn/groupnorm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define MIN_STD 1e-6

/* x ← (x − mean) / std over rows rows[0..k) of X (or hist when rows NULL). */
static void standardise(const float *X, const size_t *rows, size_t k, size_t d, float *x)
{
    for (size_t j = 0; j < d; j++) {   /* two passes: no cancellation when |mean| >> sd */
        double s = 0, s2 = 0;
        for (size_t r = 0; r < k; r++) s += X[(rows ? rows[r] : r) * d + j];
        double mean = s / (double)k;
        for (size_t r = 0; r < k; r++) {
            double v = X[(rows ? rows[r] : r) * d + j] - mean;
            s2 += v * v;
        }
        double sd = sqrt(s2 / (double)k);
        x[j] = (float)(((double)x[j] - mean) / (sd < MIN_STD ? 1.0 : sd));
    }
}

void mm_group_norm_apply(const float *hist, size_t k, size_t d, float *x)
{
    if (k) standardise(hist, NULL, k, d, x);
}

int mm_group_norm(float *X, size_t n, size_t d, const int32_t *groups, size_t clips, uint64_t seed,
                  int n_threads, mm_err *err)
{
    int32_t gmax = -1;
    for (size_t i = 0; i < n; i++) {
        if (groups[i] < 0)
            return mm_err_set(err, MM_EINVAL, "group_norm: row %zu has no group; every row needs one (e.g. a speaker)", i);
        if (groups[i] > gmax) gmax = groups[i];
    }
    if ((size_t)gmax >= ((size_t)1 << 26))
        return mm_err_set(err, MM_EINVAL, "group_norm: group id %d is too large (ids are expected to be small: 0..2^26)", gmax);
    size_t G = (size_t)gmax + 1;
    size_t *start = mm_calloc(G + 1, sizeof *start, err), *rows = mm_malloc(n + 1, sizeof *rows, err);
    float *orig = mm_malloc(n * d + 1, sizeof *orig, err);
    if (!start || !rows || !orig) { free(start); free(rows); free(orig); return MM_ENOMEM; }
    for (size_t i = 0; i < n; i++) start[(size_t)groups[i] + 1]++;
    for (size_t g = 0; g < G; g++) start[g + 1] += start[g];
    {
        size_t *fill = mm_calloc(G + 1, sizeof *fill, err);
        if (!fill) { free(start); free(rows); free(orig); return MM_ENOMEM; }
        for (size_t i = 0; i < n; i++) rows[start[groups[i]] + fill[groups[i]]++] = i;
        free(fill);
    }
    int rc = 0;
    for (size_t i = 0; i < n && clips; i++) {
        size_t m = start[(size_t)groups[i] + 1] - start[groups[i]];
        if (m < 2) { rc = mm_err_set(err, MM_EINVAL, "group_norm: row %zu is alone in its group; clips: %zu needs other rows of the same group", i, clips); break; }
    }
    if (rc) { free(start); free(rows); free(orig); return rc; }
    memcpy(orig, X, n * d * sizeof *X);
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 4) num_threads(n_threads > 0 ? n_threads : 1) reduction(| : bad)
    for (size_t i = 0; i < n; i++) {
        const size_t *gr = rows + start[groups[i]];
        size_t m = start[(size_t)groups[i] + 1] - start[groups[i]];
        if (!clips) { standardise(orig, gr, m, d, X + i * d); continue; }
        size_t *pick = malloc(m * sizeof *pick), k = 0;
        if (!pick) { bad = 1; continue; }
        for (size_t r = 0; r < m; r++) if (gr[r] != i) pick[k++] = gr[r];
        if (clips < k) {   /* partial Fisher–Yates: the first `clips` of a seeded shuffle */
            mm_rng g;
            mm_rng_seed(&g, seed, i, 0x67726e6fULL);
            for (size_t r = 0; r < clips; r++) {
                size_t j = r + (size_t)mm_rng_below(&g, k - r);
                size_t tmp = pick[r]; pick[r] = pick[j]; pick[j] = tmp;
            }
            k = clips;
        }
        standardise(orig, pick, k, d, X + i * d);
        free(pick);
    }
    free(start); free(rows); free(orig);
    if (bad) return mm_err_set(err, MM_ENOMEM, "group_norm: out of memory");
    return 0;
}
