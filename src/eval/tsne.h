/* tsne.h — Barnes–Hut t-SNE to 2-D, following scikit-learn 1.2.1's TSNE
 * defaults and stopping rules (see mm_tsne_params). Deterministic for given
 * inputs whatever the thread count; every function is reentrant. Leaves
 * out: 3-D output, other metrics, the exact method, dof != 1.
 */
/* Threading: up to n_threads OpenMP threads; BLAS/LAPACK (kNN DGEMM, PCA
 * DSYRK/DSYEV) runs outside parallel regions, so inside your own parallel
 * region call openblas_set_num_threads(1) first. Memory: O(N * 3 *
 * perplexity) for P. Pipeline: k = min(N-1, 3*perplexity+1) exact
 * neighbours, per-point binary search of the Gaussian precision, P
 * symmetrised and normalised; PCA init scaled to std(Y[:,0]) = 1e-4;
 * learning rate 'auto' = max(N / early_exaggeration / 4, 50); exaggeration
 * 12 for 250 iterations at momentum 0.5, then momentum 0.8 up to 1000;
 * gains +0.2 / x0.8 (min 0.01); angle 0.5; checks every 50 iterations.
 */
#ifndef MM_TSNE_H
#define MM_TSNE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"

enum { MM_TSNE_INIT_PCA = 0, MM_TSNE_INIT_RANDOM = 1 };

typedef struct mm_tsne_params {
    double perplexity;              /* 30; must be < N */
    double early_exaggeration;      /* 12 */
    double learning_rate;           /* <= 0: 'auto' (default) */
    size_t n_iter;                  /* 1000 iterations in total (>= 250) */
    size_t n_iter_exaggeration;     /* 250 (sklearn's _EXPLORATION_N_ITER) */
    size_t n_iter_without_progress; /* 300 */
    double min_grad_norm;           /* 1e-7 */
    double angle;                   /* 0.5: Barnes–Hut theta; 0 = exact forces */
    int init;                       /* MM_TSNE_INIT_PCA (default) or _RANDOM (std 1e-4 normals) */
    uint64_t seed;                  /* random init only; 0 */
    int n_threads;                  /* OpenMP threads, 0 = runtime default */
} mm_tsne_params;

mm_tsne_params mm_tsne_params_default(void);
/* Keys: perplexity, early_exaggeration, learning_rate (number or "auto"),
 * n_iter, n_iter_without_progress, min_grad_norm, angle, init (pca|random),
 * seed, n_threads. Unknown keys refused; NULL map = defaults. *p is written
 * only on success. */
int mm_tsne_params_from_cfg(const mm_cfg *map, mm_tsne_params *p, mm_err *err);

typedef struct mm_tsne_info {
    /* Final KL divergence as sklearn's kl_divergence_: sum over the sparse
     * P of p log(p / q) with q normalised by the Barnes–Hut estimate of Z,
     * evaluated at the last iteration (before its update). */
    double kl;
    /* The same KL with Z summed exactly over all pairs, at the final
     * embedding (after the last update). */
    double kl_exact;
    size_t n_iter;                  /* index of the last iteration run (sklearn n_iter_) */
    double learning_rate;           /* the rate used */
} mm_tsne_info;

/* Embed X (n, d) row-major float32 into xy (n, 2). Needs n >= 2 and
 * perplexity < n; non-finite X is MM_EINVAL naming the row and column.
 * info may be NULL. xy written only on success. */
int mm_tsne_run(const float *X, size_t n, size_t d, const mm_tsne_params *p, float *xy,
                mm_tsne_info *info, mm_err *err);

/* ---- the pieces, exposed for tests and benchmarks -------------------- */

/* Symmetric joint probabilities in CSR form, rows sorted by column. */
typedef struct mm_tsne_p {
    size_t n;
    int64_t *indptr;    /* (n + 1) */
    int32_t *indices;   /* (nnz) column of each value */
    float *val;         /* (nnz) P_ij, summing to 1 over the matrix */
} mm_tsne_p;

/* kNN + binary search + symmetrisation (sklearn _joint_probabilities_nn). */
int mm_tsne_joint_p(const float *X, size_t n, size_t d, double perplexity, int n_threads,
                    mm_tsne_p **out, mm_err *err);
void mm_tsne_p_free(mm_tsne_p *P);

/* Gradient of KL(P || Q) at Y (n, 2) into grad (n, 2), including the factor
 * 4 (sklearn's _kl_divergence_bh). angle 0 gives exact forces. Returns the
 * KL estimate when compute_error, else NaN. Fails only on allocation
 * (returns NaN and leaves grad unspecified, *ok = 0). */
double mm_tsne_gradient(const mm_tsne_p *P, const float *Y, double angle, int compute_error,
                        int n_threads, float *grad, int *ok);

/* sklearn's PCA initialisation: first two principal components of X,
 * signs as sklearn's svd_flip, scaled so that std(Y[:, 0]) = 1e-4. */
int mm_tsne_pca_init(const float *X, size_t n, size_t d, float *Y, mm_err *err);

#endif
