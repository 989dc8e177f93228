/* sgemm.h — single-threaded float32 matrix product for the training kernels.
 *
 * C (M, N) = op(A) op(B) + beta C, row-major, op = transpose or not, beta 0
 * or 1. A packed Goto-style kernel (12 x 32 register tile) with AVX-512,
 * AVX2+FMA or scalar fmaf() micro-kernels, chosen at run time: each
 * element's sum over k is one fused multiply-add chain fma(a, b, acc) from
 * zero per block of MM_SGEMM_KC values of k, the first block's sum stored
 * (or added to C when beta is 1), the next ones added in order, so results
 * depend only on the shapes — never on
 * the CPU, the OpenBLAS core type, the kernel or the thread count.
 * Thread-safe (the kernel choice is made once, idempotently); callers
 * parallelise over blocks of rows.
 */
#ifndef MM_NN_SGEMM_H
#define MM_NN_SGEMM_H

#include <cblas.h>
#include <stddef.h>

#define MM_SGEMM_KC 256   /* the chain block (kernels that reproduce mm_sgemm's sums use it) */

typedef enum { MM_SGEMM_AUTO, MM_SGEMM_SCALAR, MM_SGEMM_AVX2, MM_SGEMM_AVX512 } mm_sgemm_kernel;

void mm_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N, size_t K, const float *A,
              size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);


/* The same with a chosen micro-kernel (for tests and benchmarks); a kernel
 * this CPU lacks falls back to the automatic choice. */
void mm_sgemm_using(mm_sgemm_kernel k, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N,
                    size_t K, const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                    size_t ldc);
/* The kernel mm_sgemm uses here (AVX-512 unless MELODIC_NO_AVX512 or the CPU
 * lacks it, else AVX2+FMA, else scalar); whether k can run; its name. */
mm_sgemm_kernel mm_sgemm_kernel_auto(void);
int mm_sgemm_kernel_available(mm_sgemm_kernel k);
const char *mm_sgemm_kernel_name(mm_sgemm_kernel k);

#endif
