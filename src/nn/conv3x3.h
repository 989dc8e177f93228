/* conv3x3.h — 3×3 convolution, stride 1, zero padding 1, for CNN inference.
 *
 * Matches torch.nn.Conv2d(cin, cout, 3, stride=1, padding=1) on one image
 * (batch 1), followed by a per-output-channel bias (a BatchNorm folded in at
 * load time) and an optional ReLU. Two algorithms share one API:
 *   MM_CONV3X3_IM2COL    im2col over tiles of output rows + cblas_sgemm;
 *   MM_CONV3X3_WINOGRAD  Winograd F(2×2, 3×3): 16 GEMMs in the transformed
 *                        domain, 2.25× fewer multiplications (16/9 the
 *                        weight memory).
 * Both run on the packed GEMM in conv3x3.c (AVX-512 micro-kernel when the CPU
 * has it, portable C otherwise), not on the system BLAS.
 * Leaves out: strides, dilation, groups, batches > 1.
 */
#ifndef MM_CONV3X3_H
#define MM_CONV3X3_H

#include <stddef.h>
#include "core/err.h"

typedef enum {
    MM_CONV3X3_IM2COL = 0,
    MM_CONV3X3_WINOGRAD = 1,
    MM_CONV3X3_AUTO = 2,     /* Winograd, except im2col for one input channel */
} mm_conv3x3_algo;

/* Parse "im2col" | "winograd" | "auto". */
int mm_conv3x3_algo_parse(const char *name, mm_conv3x3_algo *algo, mm_err *err);
const char *mm_conv3x3_algo_name(mm_conv3x3_algo algo);

/* Micro-kernel selection, process-wide: 1 (default) uses AVX-512 when the
 * CPU has it, 0 forces the portable C kernel (tests compare both). Returns
 * the previous setting. Not meant to be switched while convolutions run. */
int mm_conv3x3_use_simd(int enable);

/* Prepared weights of one layer (opaque, read-only after create: one
 * instance may run on many threads at once). */
typedef struct mm_conv3x3 mm_conv3x3;

/* w: (cout, cin, 3, 3) as PyTorch stores it; bias: (cout) or NULL for zero.
 * Both are copied (transformed for Winograd); the caller keeps ownership. */
int mm_conv3x3_create(const float *w, const float *bias, size_t cin, size_t cout,
                      mm_conv3x3_algo algo, mm_conv3x3 **out, mm_err *err);
void mm_conv3x3_free(mm_conv3x3 *c);
size_t mm_conv3x3_cin(const mm_conv3x3 *c);
size_t mm_conv3x3_cout(const mm_conv3x3 *c);

/* Floats of scratch that mm_conv3x3_forward needs for an (h, w) image with
 * n_threads threads. Bounded independently of h for h large (tiles). */
size_t mm_conv3x3_workspace(const mm_conv3x3 *c, size_t h, size_t w, int n_threads);

/* y = relu?(conv(x) + bias). x: (cin, h, w), y: (cout, h, w), row-major,
 * must not overlap. work: mm_conv3x3_workspace(c, h, w, n_threads) floats.
 * n_threads >= 1 OpenMP threads; the result does not depend on n_threads
 * (each output is summed in the same order whatever the partition). Never
 * fails for h, w >= 1. */
void mm_conv3x3_forward(const mm_conv3x3 *c, const float *x, size_t h, size_t w, float *y,
                        int relu, int n_threads, float *work);

#endif
