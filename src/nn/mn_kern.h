/* mn_kern.h — fused AVX-512 convolution kernels for the MobileNet forward pass (private to nn/).
 *
 * Same maths as conv2d.h's depthwise / pointwise / dense kernels on (C, H, W) row-major float32
 * maps, with the bias, the activation and (pointwise) a residual add done in registers before
 * the single store, and borders handled by masked loads instead of a zero-padded copy of every
 * channel. Each output's sum runs in the same order as conv2d.c's (depthwise: bias, then taps
 * row by row; pointwise: Σ over input channels in order from 0, then + bias, then + residual),
 * so results equal those kernels' (with OpenBLAS's sequential-k sgemm). Used when the CPU has
 * AVX-512F (checked once at run time: the same code runs in sanitizer builds compiled without
 * -march); mm_mnk_available() says so, else callers use conv2d.h. Leaves out: dilation, strides
 * above 2, kernels other than odd k <= 7.
 */
#ifndef MM_NN_MN_KERN_H
#define MM_NN_MN_KERN_H

#include <stddef.h>
#include "nn/conv2d.h"

/* 1 when this CPU runs the kernels below (AVX-512F) and the environment variable
 * MELODIC_NO_AVX512 is unset (or "0"), else 0; read once. Thread-safe. */
int mm_mnk_available(void);

/* Depthwise k x k, stride 1 or 2, pad (k−1)/2, channels [c0, c1) of x (c, h, w_) into
 * y (c, ho, wo): y[c] = act(b[c] + Σ taps). k odd, 1 <= k <= 7. Stride 2 allocates two
 * padded planes of scratch per call (if that fails, a slower path gives the same values);
 * channels are independent, so callers may split [c0, c1) over threads. */
void mm_mnk_depthwise(const float *x, int h, int w_, const float *w, const float *b, int k,
                      int stride, mm_act act, float *y, int c0, int c1);

/* Dense k x k stride s from ONE input channel (the stem): y[o] = act((Σ taps) + b[o]) for
 * o in [o0, o1), the sum starting from 0 as im2col + sgemm does. w (cout, 1, k, k). */
void mm_mnk_stem(const float *x, int h, int w_, const float *w, const float *b, int k,
                 int stride, mm_act act, float *y, int o0, int o1);

/* Pointwise: rows [o0, o1) and columns [j0, j1) of y (cout, hw) = act(W (cout, cin) ·
 * x (cin, hw) + b) (+ res, after the activation; res (cout, hw) or NULL). j0 a multiple of
 * MM_MNK_PW_COLS (or 0), j1 <= hw. y must not overlap x or res. Disjoint (rows, columns)
 * blocks may run on different threads. */
#define MM_MNK_PW_COLS 32
void mm_mnk_pointwise(const float *x, int cin, size_t hw, const float *W, const float *b,
                      mm_act act, const float *res, float *y, int o0, int o1, size_t j0,
                      size_t j1);

#endif
