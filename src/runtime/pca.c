/* pca.c — truncated SVD of the embeddings and int8 similarity vectors.
 *
 * The directions are the eigenvectors of XᵀX (D ≤ rows) or obtained from
 * those of XXᵀ (rows < D: v = Xᵀu/σ), computed in double by LAPACK dsyevr
 * (OpenBLAS); see pca.h. Leaves out incremental updates: a re-index with a
 * new bundle refits.
 */
#include "runtime/pca.h"

#include "core/cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
             const double *vl, const double *vu, const int *il, const int *iu, const double *abstol, int *m,
             double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
             const int *liwork, int *info, size_t, size_t, size_t);

/* Top-k eigenpairs of the symmetric m × m matrix a (upper triangle, row-major
 * = column-major lower: dsyevr reads 'L'); vectors into z (k, m), values
 * descending into w (k). */
static int top_eig(double *a, int m, int k, double *w, double *z, mm_err *err)
{
    int il = m - k + 1, iu = m, found = 0, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double vl = 0, vu = 0, abstol = 0, wq = 0;
    int *isuppz = malloc(2 * (size_t)k * sizeof *isuppz);
    double *wv = malloc((size_t)m * sizeof *wv), *zv = malloc((size_t)m * k * sizeof *zv);
    if (!isuppz || !wv || !zv) { free(isuppz); free(wv); free(zv); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    dsyevr_("V", "I", "L", &m, a, &m, &vl, &vu, &il, &iu, &abstol, &found, wv, zv, &m, isuppz, &wq, &lwork,
            &iwq, &liwork, &info, 1, 1, 1);
    lwork = (int)wq;
    liwork = iwq;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) info = -1000;
    else dsyevr_("V", "I", "L", &m, a, &m, &vl, &vu, &il, &iu, &abstol, &found, wv, zv, &m, isuppz, work, &lwork,
                 iwork, &liwork, &info, 1, 1, 1);
    int rc = 0;
    if (info || found != k) rc = mm_err_set(err, MM_EINVAL, "pca: eigen decomposition failed (info %d, %d of %d values)", info, found, k);
    else
        for (int j = 0; j < k; j++) {   /* ascending → descending */
            w[j] = wv[k - 1 - j];
            memcpy(z + (size_t)j * m, zv + (size_t)(k - 1 - j) * m, (size_t)m * sizeof *z);
        }
    free(isuppz); free(wv); free(zv); free(work); free(iwork);
    return rc;
}

int mm_pca_fit(const float *X, size_t n, size_t D, size_t k_want, float **basis_out, size_t *k_out, mm_err *err)
{
    size_t m = n < MM_PCA_FIT_ROWS ? n : MM_PCA_FIT_ROWS;
    if (!m || !D || !k_want) return mm_err_set(err, MM_EINVAL, "pca: %zu rows of %zu dimensions", n, D);
    double *xs = malloc(m * D * sizeof *xs);
    size_t g = m < D ? m : D, k = k_want < g ? k_want : g;
    double *a = malloc(g * g * sizeof *a), *w = malloc(k * sizeof *w), *z = malloc(k * g * sizeof *z);
    float *basis = calloc(D * k, sizeof *basis);
    int rc = 0;
    if (!xs || !a || !w || !z || !basis) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    for (size_t r = 0; r < m; r++) {
        const float *src = X + (r * n / m) * D;
        for (size_t d = 0; d < D; d++) xs[r * D + d] = src[d];
    }
    if (m < D) cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)D, 1.0, xs, (int)D, 0.0, a, (int)g);
    else cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)D, (int)m, 1.0, xs, (int)D, 0.0, a, (int)g);
    if ((rc = top_eig(a, (int)g, (int)k, w, z, err))) goto done;
    size_t kk = 0;
    for (size_t j = 0; j < k; j++) {
        if (!(w[j] > 1e-12 * (w[0] > 0 ? w[0] : 1))) break;   /* rank reached */
        double *v = malloc(D * sizeof *v);
        if (!v) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
        if (m < D) {   /* v = Xᵀ u / σ */
            double s = 1.0 / sqrt(w[j]);
            for (size_t d = 0; d < D; d++) v[d] = 0;
            for (size_t r = 0; r < m; r++) {
                double u = z[j * g + r] * s;
                for (size_t d = 0; d < D; d++) v[d] += u * xs[r * D + d];
            }
        } else {
            memcpy(v, z + j * g, D * sizeof *v);
        }
        size_t big = 0;
        for (size_t d = 1; d < D; d++) if (fabs(v[d]) > fabs(v[big])) big = d;
        double sign = v[big] < 0 ? -1 : 1;
        for (size_t d = 0; d < D; d++) basis[d * k + kk] = (float)(sign * v[d]);
        free(v);
        kk++;
    }
    if (!kk) { rc = mm_err_set(err, MM_EINVAL, "pca: the embeddings are all zero"); goto done; }
    if (kk < k) {   /* compact the columns */
        for (size_t d = 0; d < D; d++) memmove(basis + d * kk, basis + d * k, kk * sizeof *basis);
    }
    *basis_out = basis;
    *k_out = kk;
    basis = NULL;
done:
    free(xs); free(a); free(w); free(z); free(basis);
    return rc;
}

void mm_pca_quantize(const float *v, size_t n, size_t k, int8_t *q, float *inv_norm)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = v + i * k;
        float mx = 0;
        for (size_t j = 0; j < k; j++) if (fabsf(x[j]) > mx) mx = fabsf(x[j]);
        double ss = 0;
        for (size_t j = 0; j < k; j++) {
            long r = mx > 0 ? lrint(127.0 * x[j] / mx) : 0;
            q[i * k + j] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
            ss += (double)q[i * k + j] * q[i * k + j];
        }
        inv_norm[i] = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.f;
    }
}

/* An integer dot product, so every clone gives the same result: AVX2 where
 * the CPU has it (chosen at load time), SSE2 otherwise (MM_SIMD_CLONES: no
 * clones under clang, whose target_clones left the symbol undefined, or ASan). */
MM_SIMD_CLONES
float mm_pca_cosine(const int8_t *a, float inv_a, const int8_t *b, float inv_b, size_t k)
{
    int32_t s = 0;
    for (size_t j = 0; j < k; j++) s += (int32_t)a[j] * b[j];
    return (float)s * inv_a * inv_b;
}
