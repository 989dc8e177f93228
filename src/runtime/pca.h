/* pca.h — reduced, quantised similarity vectors of the library's embeddings.
 *
 * The recommender compares tracks by the cosine of their embeddings (the
 * music bundle's scaled feature vectors, ~10³ dimensions). At index time the
 * embeddings are projected on their k leading principal directions
 * (MM_PCA_DIM = 128; uncentred, i.e. a truncated SVD, because the cosine is
 * of the raw vectors: a library of dimension ≤ k is kept as it is) and each
 * projection is stored as int8 (scaled so its largest component is ±127)
 * with 1/‖q‖, so cos(a, b) ≈ q_a·q_b / (‖q_a‖‖q_b‖). Thread-safe, no state.
 */
#ifndef MM_PCA_H
#define MM_PCA_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

#define MM_PCA_DIM 128
#define MM_PCA_FIT_ROWS 16384   /* rows (evenly spaced) used to fit the directions */

/* Leading right singular vectors of X (n, D), row-major, of at most
 * MM_PCA_FIT_ROWS evenly spaced rows: *basis (D, k) malloc'd, column j the
 * j-th direction (sign: largest component positive), k = min(k_want, D,
 * rows, rank). Called only when D > k_want. LAPACK dsyevr on the smaller
 * Gram matrix, in double. */
int mm_pca_fit(const float *X, size_t n, size_t D, size_t k_want, float **basis, size_t *k, mm_err *err);

/* v (n, k) → q (n, k) int8 (round(127 v/max|v|)) and inv_norm (n) = 1/‖q‖
 * (0 for a zero row). */
void mm_pca_quantize(const float *v, size_t n, size_t k, int8_t *q, float *inv_norm);

/* Cosine of two quantised vectors. */
float mm_pca_cosine(const int8_t *a, float inv_a, const int8_t *b, float inv_b, size_t k);

#endif
