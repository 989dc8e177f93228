/* conv2d.h — 2-D convolution kernels on (C, H, W) row-major float32 maps.
 *
 * The building blocks of the pretrained CNN backbones: pointwise (1x1)
 * convolution as one sgemm, depthwise k x k convolution as direct loops
 * vectorised over the width, and a dense (groups = 1) k x k convolution
 * as im2col + sgemm. Padding is symmetric zero padding as torch.nn.Conv2d
 * (padding = pad on each side); bias and activation are fused after the sum.
 * All kernels are single-threaded unless stated, keep no state and may be
 * called from many threads at once (BLAS threads are the caller's business).
 * Leaves out: dilation, asymmetric padding, backward passes.
 */
#ifndef MM_CONV2D_H
#define MM_CONV2D_H

#include <stddef.h>

typedef enum {
    MM_ACT_NONE = 0,
    MM_ACT_RELU,        /* max(x, 0) */
    MM_ACT_HARDSWISH,   /* x · min(max(x + 3, 0), 6) / 6, as torch.nn.Hardswish */
    MM_ACT_SIGMOID,     /* 1 / (1 + e^-x) */
} mm_act;

/* Output extent of a convolution: floor((n + 2·pad − k) / stride) + 1. */
int mm_conv2d_out_size(int n, int k, int stride, int pad);

/* Apply an activation in place to n values. */
void mm_act_apply(float *x, size_t n, mm_act act);

/* y (cout, hw) = act(w (cout, cin) · x (cin, hw) + b (cout)). b may be NULL.
 * x and y must not overlap. */
void mm_conv2d_pointwise(const float *x, int cin, size_t hw, const float *w, const float *b,
                         int cout, mm_act act, float *y);

/* Depthwise: y[c] = act(x[c] ⋆ w[c] + b[c]) for each of c channels.
 * x (c, h, w_), w (c, k, k), b (c) or NULL, y (c, ho, wo) with ho/wo from
 * mm_conv2d_out_size. Each channel is copied into a zero-padded plane (one
 * malloc per thread and call; if that fails, a slower clipped loop is used,
 * same values) so that every output runs the vectorised loop. Channels are
 * independent: with parallel != 0 they are split over OpenMP threads
 * (results do not depend on the thread count). */
void mm_conv2d_depthwise(const float *x, int c, int h, int w_, const float *w, const float *b,
                         int k, int stride, int pad, mm_act act, float *y, int parallel);

/* Dense k x k convolution via im2col + sgemm: x (cin, h, w_), w (cout, cin, k, k),
 * b (cout) or NULL, y (cout, ho, wo). scratch: mm_conv2d_dense_scratch(...) floats. */
size_t mm_conv2d_dense_scratch(int cin, int h, int w_, int k, int stride, int pad);
void mm_conv2d_dense(const float *x, int cin, int h, int w_, const float *w, const float *b,
                     int cout, int k, int stride, int pad, mm_act act, float *y, float *scratch);

#endif
