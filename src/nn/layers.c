/* layers.c — layer kernels for training (see layers.h), instantiated in
 * float for the engine and in double for the finite-difference gradient test
 * from the single source layers_kern.inc.
 * Matches PyTorch semantics (nn.Linear, BatchNorm1d with momentum/eps and
 * unbiased running variance, CrossEntropyLoss with weights and smoothing)
 * and TensorFlow's 'same' padding for Conv1D/MaxPool1D; channels-last as Keras.
 * Leaves out dilation, groups and average pooling. */
#include "nn/layers.h"

#include <cblas.h>
#include "nn/sgemm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COLBLK 64

void mm_nn_window(size_t L, size_t k, size_t s, mm_nn_padding pad, size_t *out, size_t *pad_left)
{
    if (pad == MM_NN_PAD_SAME) {
        size_t o = (L + s - 1) / s;
        size_t need = o ? (o - 1) * s + k : 0;
        size_t total = need > L ? need - L : 0;
        *out = o;
        *pad_left = total / 2;
    } else {
        *out = L >= k ? (L - k) / s + 1 : 0;
        *pad_left = 0;
    }
}

void mm_nn_dropout_mask(size_t n, double rate, mm_rng *r, uint8_t *mask)
{
    for (size_t i = 0; i < n; i++) mask[i] = mm_rng_uniform(r) >= rate;
}

static void dgemm_st(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N, size_t K,
                     const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc)
{
    cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

#define T float
#define S _f
#define GEMM mm_sgemm
#include "nn/layers_kern.inc"
#undef T
#undef S
#undef GEMM

#define T double
#define S _d
#define GEMM dgemm_st
#include "nn/layers_kern.inc"
#undef T
#undef S
#undef GEMM
