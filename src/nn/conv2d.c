/* conv2d.c — pointwise, depthwise and dense 2-D convolutions (see conv2d.h).
 *
 * Matches torch.nn.Conv2d (cross-correlation, zero padding, groups 1 or C)
 * up to float32 summation order. The arithmetic per output is exactly that of
 * the fused AVX-512 kernels (mn_kern.c), so the network gives the same bits on
 * every CPU: pointwise = one fused multiply-add chain over the input channels
 * in order from 0, then + bias, then the activation; depthwise = bias, then
 * one fma per tap row by row over a zero-padded copy of the channel; dense =
 * im2col + the pointwise kernel (as darknet). The loops are plain C with
 * fmaf(), compiled twice (AVX2+FMA and baseline x86-64, MM_SIMD_CLONES).
 * Leaves out: dilation, grouped convs other than depthwise.
 */
#include "nn/conv2d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"

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

/* Bias and activation in one pass over a row. */
static void bias_act_row(float *y, size_t n, float b, mm_act act)
{
    switch (act) {
    case MM_ACT_NONE:
        for (size_t i = 0; i < n; i++) y[i] += b;
        break;
    case MM_ACT_RELU:
        for (size_t i = 0; i < n; i++) {
            float v = y[i] + b;
            y[i] = v < 0.0f ? 0.0f : v;
        }
        break;
    case MM_ACT_HARDSWISH:
        for (size_t i = 0; i < n; i++) {
            float v = y[i] + b, t = v + 3.0f;
            t = t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t;
            y[i] = v * t / 6.0f;
        }
        break;
    default:
        for (size_t i = 0; i < n; i++) y[i] += b;
        mm_act_apply(y, n, act);
    }
}

/* Rows [o, o + R) (R <= 4) of the product, columns [j0, j1): y = Σ_k w[o][k] x[k][·], each
 * element one fmaf chain in k order from 0 (four rows share each load of x). */
MM_SIMD_CLONES static void pw_block(const float *restrict x, int cin, size_t hw, const float *restrict w, int o,
                                    int R, size_t j0, size_t j1, float *restrict y)
{
    float *y0 = y + (size_t)o * hw, *y1 = R > 1 ? y0 + hw : y0, *y2 = R > 2 ? y0 + 2 * hw : y0,
          *y3 = R > 3 ? y0 + 3 * hw : y0;
    const float *w0 = w + (size_t)o * cin;
    if (R == 4) {
        for (size_t j = j0; j < j1; j++) y0[j] = y1[j] = y2[j] = y3[j] = 0.0f;
        for (int k = 0; k < cin; k++) {
            const float *xr = x + (size_t)k * hw;
            float a = w0[k], b = w0[cin + k], c = w0[2 * (size_t)cin + k], d = w0[3 * (size_t)cin + k];
            for (size_t j = j0; j < j1; j++) {
                float v = xr[j];
                y0[j] = fmaf(a, v, y0[j]);
                y1[j] = fmaf(b, v, y1[j]);
                y2[j] = fmaf(c, v, y2[j]);
                y3[j] = fmaf(d, v, y3[j]);
            }
        }
        return;
    }
    for (int r = 0; r < R; r++) {
        float *yr = y0 + (size_t)r * hw;
        const float *wr = w0 + (size_t)r * cin;
        for (size_t j = j0; j < j1; j++) yr[j] = 0.0f;
        for (int k = 0; k < cin; k++) {
            const float *xr = x + (size_t)k * hw;
            float a = wr[k];
            for (size_t j = j0; j < j1; j++) yr[j] = fmaf(a, xr[j], yr[j]);
        }
    }
}

void mm_conv2d_pointwise(const float *x, int cin, size_t hw, const float *w, const float *b,
                         int cout, mm_act act, float *y)
{
    enum { JB = 512 };   /* columns per block: 4 rows of them stay in L1 over the k loop */
    for (size_t j0 = 0; j0 < hw; j0 += JB) {
        size_t j1 = hw - j0 < JB ? hw : j0 + JB;
        for (int o = 0; o < cout; o += 4) pw_block(x, cin, hw, w, o, cout - o < 4 ? cout - o : 4, j0, j1, y);
    }
    for (int o = 0; o < cout; o++) bias_act_row(y + (size_t)o * hw, hw, b ? b[o] : 0.0f, act);
}

/* One output row, columns [c0, c1), taps clipped to the input (borders). */
static void dw_row_clipped(const float *x, int h, int w_, const float *wk, float bias, int k,
                           int stride, int pad, int oy, int c0, int c1, float *yr)
{
    for (int ox = c0; ox < c1; ox++) {
        float acc = bias;
        for (int ky = 0; ky < k; ky++) {
            int iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < k; kx++) {
                int ix = ox * stride + kx - pad;
                if (ix >= 0 && ix < w_) acc = fmaf(wk[ky * k + kx], x[(size_t)iy * w_ + ix], acc);
            }
        }
        yr[ox] = acc;
    }
}

/* One channel: y (ho, wo) = x (h, w_) ⋆ k x k taps + bias, taps clipped to the
 * input (the path taken when the padded plane cannot be allocated; values equal
 * dw_channel_padded's: the zero taps it adds change no sum). */
static void dw_channel(const float *x, int h, int w_, const float *wk, float bias, int k,
                       int stride, int pad, int ho, int wo, float *y)
{
    for (int oy = 0; oy < ho; oy++) dw_row_clipped(x, h, w_, wk, bias, k, stride, pad, oy, 0, wo, y + (size_t)oy * wo);
}

/* Padded-plane geometry for one channel: rows h + 2·pad, columns wide enough for
 * whole 16-output blocks (plus one extra column for stride 2). */
static void dw_geom(int h, int w_, int k, int stride, int pad, int wo, int *hp, int *wp, int *wb)
{
    *wb = (wo + 15) / 16 * 16;
    int need = (*wb - 1) * stride + k + (stride == 2);
    *hp = h + 2 * pad;
    *wp = w_ + 2 * pad > need ? w_ + 2 * pad : need;
}

/* One output row of the padded plane P (row stride wp) into row[0, wb): bias, then
 * one fmaf per tap, row by row, column by column (mn_kern's order). */
MM_SIMD_CLONES static void dw_row_padded(const float *restrict P, int wp, const float *restrict wk, float bias,
                                         int k, int stride, int oy, int wb, float *restrict row)
{
    for (int ox = 0; ox < wb; ox++) row[ox] = bias;
    for (int ky = 0; ky < k; ky++) {
        const float *pr = P + (size_t)(oy * stride + ky) * wp;
        for (int kx = 0; kx < k; kx++) {
            float t = wk[ky * k + kx];
            const float *q = pr + kx;
            if (stride == 1)
                for (int ox = 0; ox < wb; ox++) row[ox] = fmaf(t, q[ox], row[ox]);
            else
                for (int ox = 0; ox < wb; ox++) row[ox] = fmaf(t, q[(size_t)ox * stride], row[ox]);
        }
    }
}

/* One channel through a zero-padded copy P (hp, wp): every output is a full
 * k x k sum with no clipping, a row at a time into row (wb), then copied out.
 * Zero taps add exact zeros, so values equal those of dw_channel. */
static void dw_channel_padded(const float *x, int h, int w_, const float *wk, float bias, int k,
                              int stride, int pad, int ho, int wo, float *y, float *P, float *row)
{
    int hp, wp, wb;
    dw_geom(h, w_, k, stride, pad, wo, &hp, &wp, &wb);
    /* zero only the border: pad rows, and left/right margins of the data rows */
    memset(P, 0, (size_t)pad * wp * sizeof *P);
    memset(P + (size_t)(pad + h) * wp, 0, (size_t)(hp - pad - h) * wp * sizeof *P);
    for (int iy = 0; iy < h; iy++) {
        float *pr = P + (size_t)(iy + pad) * wp;
        memset(pr, 0, (size_t)pad * sizeof *P);
        memcpy(pr + pad, x + (size_t)iy * w_, (size_t)w_ * sizeof *P);
        memset(pr + pad + w_, 0, (size_t)(wp - pad - w_) * sizeof *P);
    }
    for (int oy = 0; oy < ho; oy++) {
        dw_row_padded(P, wp, wk, bias, k, stride, oy, wb, row);
        memcpy(y + (size_t)oy * wo, row, (size_t)wo * sizeof *y);
    }
}

void mm_conv2d_depthwise(const float *x, int c, int h, int w_, const float *w, const float *b,
                         int k, int stride, int pad, mm_act act, float *y, int parallel)
{
    int ho = mm_conv2d_out_size(h, k, stride, pad), wo = mm_conv2d_out_size(w_, k, stride, pad);
    size_t in_plane = (size_t)h * w_, out_plane = (size_t)ho * wo;
    int hp, wp, wb;
    dw_geom(h, w_, k, stride, pad, wo, &hp, &wp, &wb);
    int padded = stride <= 2;
#pragma omp parallel if (parallel)
    {
        /* per-thread scratch; without it (allocation failed) the clipped path runs */
        float *P = padded ? malloc(((size_t)hp * wp + (size_t)wb) * sizeof *P) : NULL;
#pragma omp for schedule(static)
        for (int ch = 0; ch < c; ch++) {
            const float *xc = x + ch * in_plane;
            float *yc = y + ch * out_plane;
            float bias = b ? b[ch] : 0.0f;
            if (P)
                dw_channel_padded(xc, h, w_, w + (size_t)ch * k * k, bias, k, stride, pad, ho, wo,
                                  yc, P, P + (size_t)hp * wp);
            else
                dw_channel(xc, h, w_, w + (size_t)ch * k * k, bias, k, stride, pad, ho, wo, yc);
            mm_act_apply(yc, out_plane, act);
        }
        free(P);
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
