/* sgemm.h — single-threaded float32 matrix product for the training kernels.
 *
 * C (M, N) = op(A) op(B) + beta C, row-major, op = transpose or not, beta 0
 * or 1. On CPUs with AVX-512 (checked at run time) a packed Goto-style
 * kernel (8 x 32 register tile) is used, so training does not depend on
 * which OpenBLAS core type the environment selects; elsewhere it calls
 * cblas_sgemm. Each element's sum over k runs in a fixed order (blocks of
 * 256, in order), so results depend only on the shapes, never on threads.
 * Thread-safe (no shared state); callers parallelise over blocks of rows.
 */
#ifndef MM_NN_SGEMM_H
#define MM_NN_SGEMM_H

#include <cblas.h>
#include <stddef.h>

void mm_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N, size_t K, const float *A,
              size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
