/* conv2d.c — pointwise, depthwise and dense 2-D convolutions (see conv2d.h).
 *
 * Matches torch.nn.Conv2d (cross-correlation, zero padding, groups 1 or C)
 * up to float32 summation order. Pointwise = one cblas_sgemm; depthwise =
 * per output row, one pass per kernel tap over the valid column range (the
 * inner loop is contiguous for stride 1 and vectorises); dense = im2col +
 * sgemm (as darknet). Leaves out: dilation, grouped convs other than depthwise.
 */
#include "nn/conv2d.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

int mm_conv2d_out_size(int n, int k, int stride, int pad)
{
    int s = n + 2 * pad - k;
    return s < 0 ? 0 : s / stride + 1;
}

void mm_act_apply(float *x, size_t n, mm_act act)
{
    switch (act) {
    case MM_ACT_NONE:
        break;
    case MM_ACT_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];   /* NaN stays NaN */
        break;
    case MM_ACT_HARDSWISH:
        for (size_t i = 0; i < n; i++) {
            float t = x[i] + 3.0f;
            t = t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t;
            x[i] = x[i] * t / 6.0f;
        }
        break;
    case MM_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    }
}

void mm_conv2d_pointwise(const float *x, int cin, size_t hw, const float *w, const float *b,
                         int cout, mm_act act, float *y)
{
    if (b) {
        for (int o = 0; o < cout; o++) {
            float *yo = y + (size_t)o * hw;
            for (size_t i = 0; i < hw; i++) yo[i] = b[o];
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, (int)hw, cin, 1.0f, w, cin, x,
                (int)hw, b ? 1.0f : 0.0f, y, (int)hw);
    mm_act_apply(y, (size_t)cout * hw, act);
}

/* One channel: y (ho, wo) = x (h, w_) ⋆ k x k taps + bias. */
static void dw_channel(const float *x, int h, int w_, const float *wk, float bias, int k,
                       int stride, int pad, int ho, int wo, float *y)
{
    for (int oy = 0; oy < ho; oy++) {
        float *yr = y + (size_t)oy * wo;
        for (int ox = 0; ox < wo; ox++) yr[ox] = bias;
        for (int ky = 0; ky < k; ky++) {
            int iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= h) continue;
            const float *xr = x + (size_t)iy * w_;
            for (int kx = 0; kx < k; kx++) {
                const float wv = wk[ky * k + kx];
                /* ox in [lo, hi) keeps ix = ox·stride + kx − pad inside [0, w_) */
                int lo = pad - kx > 0 ? (pad - kx + stride - 1) / stride : 0;
                int hi = (w_ - 1 + pad - kx) >= 0 ? (w_ - 1 + pad - kx) / stride + 1 : 0;
                if (hi > wo) hi = wo;
                if (stride == 1) {
                    const float *xs = xr + kx - pad;
                    for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xs[ox];
                } else {
                    for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * stride + kx - pad];
                }
            }
        }
    }
}

void mm_conv2d_depthwise(const float *x, int c, int h, int w_, const float *w, const float *b,
                         int k, int stride, int pad, mm_act act, float *y, int parallel)
{
    int ho = mm_conv2d_out_size(h, k, stride, pad), wo = mm_conv2d_out_size(w_, k, stride, pad);
    size_t in_plane = (size_t)h * w_, out_plane = (size_t)ho * wo;
#pragma omp parallel for schedule(static) if (parallel)
    for (int ch = 0; ch < c; ch++) {
        dw_channel(x + ch * in_plane, h, w_, w + (size_t)ch * k * k, b ? b[ch] : 0.0f, k, stride,
                   pad, ho, wo, y + ch * out_plane);
        mm_act_apply(y + ch * out_plane, out_plane, act);
    }
}

size_t mm_conv2d_dense_scratch(int cin, int h, int w_, int k, int stride, int pad)
{
    size_t ho = (size_t)mm_conv2d_out_size(h, k, stride, pad);
    size_t wo = (size_t)mm_conv2d_out_size(w_, k, stride, pad);
    return (size_t)cin * k * k * ho * wo;
}

void mm_conv2d_dense(const float *x, int cin, int h, int w_, const float *w, const float *b,
                     int cout, int k, int stride, int pad, mm_act act, float *y, float *scratch)
{
    int ho = mm_conv2d_out_size(h, k, stride, pad), wo = mm_conv2d_out_size(w_, k, stride, pad);
    size_t n = (size_t)ho * wo;
    /* im2col: row (ci, ky, kx) holds x[ci][oy·s + ky − p][ox·s + kx − p] (0 outside). */
    for (int ci = 0; ci < cin; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *col = scratch + ((size_t)(ci * k + ky) * k + kx) * n;
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy * stride + ky - pad;
                    float *cr = col + (size_t)oy * wo;
                    if (iy < 0 || iy >= h) {
                        memset(cr, 0, (size_t)wo * sizeof *cr);
                        continue;
                    }
                    const float *xr = x + ((size_t)ci * h + iy) * w_;
                    for (int ox = 0; ox < wo; ox++) {
                        int ix = ox * stride + kx - pad;
                        cr[ox] = ix >= 0 && ix < w_ ? xr[ix] : 0.0f;
                    }
                }
            }
    mm_conv2d_pointwise(scratch, cin * k * k, n, w, b, cout, act, y);
}
