/* smote.c — SMOTE over-sampling with exact brute-force neighbours.
 *
 * Reference: imbalanced-learn 0.10 SMOTE (Chawla et al. 2002): sampling
 * strategies as imblearn's check_sampling_strategy (counts from np.unique, so
 * ties for majority and minority go to the lower class), classes
 * generated in increasing order, new = x + u (x_nn − x). Distances by sgemm
 * (‖q‖² − 2 q·x + ‖x‖² on centred rows) in blocks. Differs: a row's own index is excluded
 * rather than dropping the first neighbour column (same unless rows are
 * duplicated); the random streams are ours. Left out: float ratios, SMOTE-NC.
 */
#include "learn/smote.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "learn/learner.h"

mm_smote_params mm_smote_params_default(void)
{
    mm_smote_params p;
    memset(&p, 0, sizeof p);
    p.k_neighbors = 5;
    p.strategy = MM_SMOTE_AUTO;
    for (int c = 0; c < MM_SMOTE_MAX_CLASSES; c++) p.target[c] = -1;
    return p;
}

int mm_smote_params_from_cfg(const mm_cfg *map, mm_smote_params *out, mm_err *err)
{
    static const char *const keys[] = {"k_neighbors", "sampling_strategy", NULL};
    static const char *const names[] = {"auto", "minority", "not minority", "not majority", "all", NULL};
    mm_smote_params p = mm_smote_params_default();
    int rc = mm_cfg_check_keys(map, "smote", keys, err);
    long k;
    if (rc || (rc = mm_cfg_get_int(map, "k_neighbors", p.k_neighbors, 1, 1000000, &k, err))) return rc;
    p.k_neighbors = (int)k;
    const mm_cfg *s = map ? mm_cfg_child(map, "sampling_strategy") : NULL;
    char w[600];
    if (s && s->type == MM_CFG_MAP) {
        p.strategy = MM_SMOTE_TARGETS;
        for (size_t i = 0; i < s->n; i++) {
            const mm_cfg *it = s->items[i];
            char *end;
            long c = strtol(it->key, &end, 10);
            if (end == it->key || *end || c < 0 || c >= MM_SMOTE_MAX_CLASSES)
                return mm_err_set(err, MM_EINVAL, "%s: key 'sampling_strategy': class '%s' is not an integer in [0, %d)",
                                  mm_cfg_where(it, w, sizeof w), it->key, MM_SMOTE_MAX_CLASSES);
            long v;
            if ((rc = mm_cfg_scalar_int(it, it->key, &v, err))) return rc;
            if (v < 0 || v > 0x7fffffff)
                return mm_err_set(err, MM_EINVAL, "%s: key 'sampling_strategy': class %ld: expected a count in [0, 2147483647], got %ld",
                                  mm_cfg_where(it, w, sizeof w), c, v);
            p.target[c] = v;
        }
    } else if (s && s->type == MM_CFG_SCALAR) {
        int found = -1;
        for (int i = 0; names[i]; i++)
            if (!strcmp(s->value, names[i])) found = i;
        if (found < 0)
            return mm_err_set(err, MM_EINVAL, "%s: key 'sampling_strategy': expected one of auto, minority, not minority, not majority, all or a map class: count, got '%s'",
                              mm_cfg_where(s, w, sizeof w), s->value);
        p.strategy = found;
    } else if (s && s->type == MM_CFG_SEQ) {
        return mm_err_set(err, MM_EINVAL, "%s: key 'sampling_strategy': expected a strategy name or a map class: count, got a list",
                          mm_cfg_where(s, w, sizeof w));
    }
    *out = p;
    return 0;
}

int mm_smote_plan(const int32_t *y, size_t n, int n_classes, const mm_smote_params *p, size_t *n_new,
                  mm_err *err)
{
    if (n_classes < 1 || n_classes > MM_SMOTE_MAX_CLASSES)
        return mm_err_set(err, MM_EINVAL, "smote: n_classes %d outside [1, %d]", n_classes, MM_SMOTE_MAX_CLASSES);
    if (p->strategy < MM_SMOTE_AUTO || p->strategy > MM_SMOTE_TARGETS)
        return mm_err_set(err, MM_EINVAL, "smote: unknown sampling strategy %d", p->strategy);
    size_t count[MM_SMOTE_MAX_CLASSES] = {0};
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= n_classes)
            return mm_err_set(err, MM_EDATA, "smote: label %d at row %zu is outside [0, %d)", y[i], i, n_classes);
        count[y[i]]++;
    }
    /* majority / minority: the largest / smallest count, ties to the lower class */
    int maj = -1, mino = -1;
    for (int c = 0; c < n_classes; c++) {
        if (!count[c]) continue;
        if (maj < 0 || count[c] > count[maj]) maj = c;
        if (mino < 0 || count[c] < count[mino]) mino = c;
    }
    size_t out[MM_SMOTE_MAX_CLASSES] = {0};
    for (int c = 0; c < n_classes && maj >= 0; c++) {
        if (!count[c]) {
            if (p->strategy == MM_SMOTE_TARGETS && p->target[c] >= 0)
                return mm_err_set(err, MM_EDATA, "smote: sampling_strategy asks for class %d, which is not present in the data", c);
            continue;
        }
        int raise;
        switch (p->strategy) {
        case MM_SMOTE_MINORITY: raise = c == mino; break;
        case MM_SMOTE_NOT_MINORITY: raise = c != mino; break;
        case MM_SMOTE_ALL: raise = 1; break;
        case MM_SMOTE_TARGETS: raise = 0; break;
        default: raise = c != maj; break;   /* auto, not majority */
        }
        if (raise) out[c] = count[maj] - count[c];
        if (p->strategy == MM_SMOTE_TARGETS && p->target[c] >= 0) {
            if ((size_t)p->target[c] < count[c])
                return mm_err_set(err, MM_EINVAL, "smote: sampling_strategy asks for %ld samples of class %d, which already has %zu; over-sampling cannot remove samples",
                                  p->target[c], c, count[c]);
            out[c] = (size_t)p->target[c] - count[c];
        }
    }
    for (int c = n_classes; p->strategy == MM_SMOTE_TARGETS && c < MM_SMOTE_MAX_CLASSES; c++)
        if (p->target[c] >= 0)
            return mm_err_set(err, MM_EDATA, "smote: sampling_strategy asks for class %d, outside the %d classes", c, n_classes);
    memcpy(n_new, out, (size_t)n_classes * sizeof *n_new);
    return 0;
}

/* Insert (dist, idx) into the sorted best-k lists if it beats the worst. */
static inline void topk_insert(float *bd, int32_t *bi, int k, float dist, int32_t idx)
{
    if (!(dist < bd[k - 1])) return;   /* equal distance: keep the lower index seen first */
    int t = k - 1;
    while (t > 0 && dist < bd[t - 1]) { bd[t] = bd[t - 1]; bi[t] = bi[t - 1]; t--; }
    bd[t] = dist;
    bi[t] = idx;
}

int mm_smote_knn(const float *X, size_t n, size_t d, int k, int n_threads, int32_t *nn, mm_err *err)
{
    if (k < 1 || (size_t)k >= n)
        return mm_err_set(err, MM_EINVAL, "smote: %d neighbours need at least %d rows, got %zu", k, k + 1, n);
    if (n > 0x7fffffff) return mm_err_set(err, MM_EINVAL, "smote: %zu rows exceed 2^31", n);
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    size_t bm = (size_t)1 << 22;   /* floats per distance block */
    bm = bm / n < 1 ? 1 : bm / n > 256 ? 256 : bm / n;
    float *sq = mm_malloc(n, sizeof *sq, err);
    float *D = mm_malloc((size_t)nt * bm, n * sizeof *D, err);
    float *bd = mm_malloc((size_t)nt * k, sizeof *bd, err);
    int32_t *bi = mm_malloc((size_t)nt * k, sizeof *bi, err);
    float *Xc = mm_malloc(n, d * sizeof *Xc, err);
    double *mean = mm_calloc(d, sizeof *mean, err);
    if (!sq || !D || !bd || !bi || !Xc || !mean) {
        free(sq); free(D); free(bd); free(bi); free(Xc); free(mean);
        return MM_ENOMEM;
    }
    /* centre first: distances are unchanged and ‖x‖² − 2 q·x no longer
     * cancels catastrophically for features far from 0 */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mean[j] += X[i * d + j];
    for (size_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            float v = (float)(X[i * d + j] - mean[j]);
            Xc[i * d + j] = v;
            s += (double)v * v;
        }
        sq[i] = (float)s;
    }
    X = Xc;
    int old_blas = openblas_get_num_threads();
    openblas_set_num_threads(1);   /* one BLAS thread per OpenMP thread: same result for any count */
    size_t nblk = (n + bm - 1) / bm;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nblk > 1)
    for (size_t b = 0; b < nblk; b++) {
        int tid = omp_get_thread_num();
        float *Db = D + (size_t)tid * bm * n, *tbd = bd + (size_t)tid * k;
        int32_t *tbi = bi + (size_t)tid * k;
        size_t i0 = b * bm, m = i0 + bm > n ? n - i0 : bm;
        /* Db (m, n) = -2 Q Xᵀ; squared distance = ‖q‖² + ‖x‖² − 2 q·x, ‖q‖² constant per row */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)d, -2.0f, X + i0 * d,
                    (int)d, X, (int)d, 0.0f, Db, (int)n);
        for (size_t r = 0; r < m; r++) {
            size_t i = i0 + r;
            const float *row = Db + r * n;
            for (int t = 0; t < k; t++) { tbd[t] = INFINITY; tbi[t] = -1; }
            for (size_t j = 0; j < n; j++)
                if (j != i) topk_insert(tbd, tbi, k, row[j] + sq[j], (int32_t)j);
            memcpy(nn + i * (size_t)k, tbi, (size_t)k * sizeof *nn);
        }
    }
    openblas_set_num_threads(old_blas);
    free(sq); free(D); free(bd); free(bi); free(Xc); free(mean);
    return 0;
}

#define GEN_BLOCK 1024

int mm_smote_resample(const float *X, const int32_t *y, size_t n, size_t d, int n_classes,
                      const mm_smote_params *p, uint64_t seed, float **X_out, int32_t **y_out,
                      size_t *n_out, mm_err *err)
{
    if (n == 0 || d == 0) return mm_err_set(err, MM_EDATA, "smote: empty input (%zu rows, %zu features)", n, d);
    if (p->k_neighbors < 1) return mm_err_set(err, MM_EINVAL, "smote: k_neighbors must be >= 1, got %d", p->k_neighbors);
    int rc = mm_check_finite(X, n, d, "smote: features", err);
    if (rc) return rc;
    size_t add[MM_SMOTE_MAX_CLASSES], count[MM_SMOTE_MAX_CLASSES] = {0};
    if ((rc = mm_smote_plan(y, n, n_classes, p, add, err))) return rc;
    size_t total = n;
    for (int c = 0; c < n_classes; c++) total += add[c];
    if (total > 0x7fffffff || total > ((size_t)1 << 38) / d)
        return mm_err_set(err, MM_EINVAL, "smote: the sampling strategy asks for %zu rows of %zu features; too many", total, d);
    for (size_t i = 0; i < n; i++) count[y[i]]++;
    int k = p->k_neighbors;
    for (int c = 0; c < n_classes; c++)
        if (add[c] && count[c] < (size_t)k + 1)
            return mm_err_set(err, MM_EDATA, "smote: class %d has %zu samples; k_neighbors = %d needs at least %d (lower k_neighbors)",
                              c, count[c], k, k + 1);
    float *Xo = mm_malloc(total, d * sizeof *Xo, err);
    int32_t *yo = mm_malloc(total, sizeof *yo, err);
    float *Xc = NULL;
    int32_t *idx = NULL, *nn = NULL;
    if (!Xo || !yo) { rc = MM_ENOMEM; goto fail; }
    memcpy(Xo, X, n * d * sizeof *Xo);
    memcpy(yo, y, n * sizeof *yo);
    size_t pos = n;
    for (int c = 0; c < n_classes; c++) {
        if (!add[c]) continue;
        size_t nc = count[c];
        Xc = mm_malloc(nc, d * sizeof *Xc, err);
        idx = mm_malloc(nc, sizeof *idx, err);
        nn = mm_malloc(nc, (size_t)k * sizeof *nn, err);
        if (!Xc || !idx || !nn) { rc = MM_ENOMEM; goto fail; }
        for (size_t i = 0, t = 0; i < n; i++)
            if (y[i] == c) { memcpy(Xc + t * d, X + i * d, d * sizeof *Xc); idx[t++] = (int32_t)i; }
        if ((rc = mm_smote_knn(Xc, nc, d, k, p->n_threads, nn, err))) goto fail;
        size_t m = add[c], nblk = (m + GEN_BLOCK - 1) / GEN_BLOCK;
        float *dst = Xo + pos * d;
        #pragma omp parallel for schedule(static) num_threads(p->n_threads > 0 ? p->n_threads : omp_get_max_threads()) if (nblk > 1)
        for (size_t b = 0; b < nblk; b++) {
            mm_rng r;
            mm_rng_seed(&r, seed, (uint64_t)c, b);
            size_t end = (b + 1) * GEN_BLOCK < m ? (b + 1) * GEN_BLOCK : m;
            for (size_t s = b * GEN_BLOCK; s < end; s++) {
                /* a (sample, neighbour) pair uniformly among nc·k, then a step in [0, 1) */
                size_t pick = (size_t)mm_rng_below(&r, (uint64_t)nc * (uint64_t)k);
                size_t row = pick / (size_t)k, nb = (size_t)nn[pick];
                double u = mm_rng_uniform(&r);
                const float *xa = Xc + row * d, *xb = Xc + nb * d;
                for (size_t j = 0; j < d; j++) dst[s * d + j] = (float)(xa[j] + u * ((double)xb[j] - xa[j]));
            }
        }
        for (size_t s = 0; s < m; s++) yo[pos + s] = c;
        pos += m;
        free(Xc); free(idx); free(nn);
        Xc = NULL; idx = NULL; nn = NULL;
    }
    *X_out = Xo;
    *y_out = yo;
    *n_out = total;
    return 0;
fail:
    free(Xo); free(yo); free(Xc); free(idx); free(nn);
    return rc;
}
