/* conv2d.c — pointwise, depthwise and dense 2-D convolutions (see conv2d.h).
 *
 * Matches torch.nn.Conv2d (cross-correlation, zero padding, groups 1 or C)
 * up to float32 summation order. Pointwise = one cblas_sgemm then bias and
 * activation in one pass; depthwise = zero-padded copy of each channel, then
 * 16 outputs at a time held in two 8-float vectors over all k·k taps
 * (stride 2 loads pairs and keeps the even lanes); dense = im2col + sgemm (as
 * darknet). Leaves out: dilation, grouped convs other than depthwise.
 */
#include "nn/conv2d.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
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

void mm_conv2d_pointwise(const float *x, int cin, size_t hw, const float *w, const float *b,
                         int cout, mm_act act, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, (int)hw, cin, 1.0f, w, cin, x,
                (int)hw, 0.0f, y, (int)hw);
    for (int o = 0; o < cout; o++) bias_act_row(y + (size_t)o * hw, hw, b ? b[o] : 0.0f, act);
}

/* Columns [lo, hi) of one output row for which every tap column
 * ix = ox·stride + kx − pad (kx in 0..k−1) lies inside [0, w_). */
static void interior_cols(int w_, int k, int stride, int pad, int wo, int *lo, int *hi)
{
    /* stride 2 loads pairs, reading one column past the last tap: keep it inside */
    int lim = w_ - 1 + pad - (k - 1) - (stride == 2);
    *lo = (pad + stride - 1) / stride;
    *hi = lim >= 0 ? lim / stride + 1 : 0;
    if (*hi > wo) *hi = wo;
    if (*lo > *hi || stride > 2) *lo = *hi;   /* blocked loop: strides 1 and 2 only */
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
                if (ix >= 0 && ix < w_) acc += wk[ky * k + kx] * x[(size_t)iy * w_ + ix];
            }
        }
        yr[ox] = acc;
    }
}

/* 8-float vectors (GCC vector extension; AVX2 registers, SSE pairs elsewhere). */
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* Unaligned load of 8 floats, and of the even elements p[0], p[2], ..., p[14]
 * (macros, not functions: vector-returning functions change the ABI without AVX). */
#define LD8(p) ({ v8f v_; memcpy(&v_, (p), sizeof v_); v_; })
#if defined(__clang__)   /* clang (libFuzzer builds) spells the shuffle differently */
#define LD8_EVEN(p) __builtin_shufflevector(LD8(p), LD8((p) + 8), 0, 2, 4, 6, 8, 10, 12, 14)
#else
#define LD8_EVEN(p) __builtin_shuffle(LD8(p), LD8((p) + 8), k_even)
static const v8i k_even = {0, 2, 4, 6, 8, 10, 12, 14};
#endif

/* One channel: y (ho, wo) = x (h, w_) ⋆ k x k taps + bias. The interior of each
 * row is done 16 outputs at a time, kept in two vector registers over all taps
 * (same per-output summation order as the clipped border code). */
static void dw_channel(const float *x, int h, int w_, const float *wk, float bias, int k,
                       int stride, int pad, int ho, int wo, float *y)
{
    int lo, hi;
    interior_cols(w_, k, stride, pad, wo, &lo, &hi);
    for (int oy = 0; oy < ho; oy++) {
        float *yr = y + (size_t)oy * wo;
        int ky0 = pad - oy * stride > 0 ? pad - oy * stride : 0;
        int ky1 = h + pad - oy * stride < k ? h + pad - oy * stride : k;
        dw_row_clipped(x, h, w_, wk, bias, k, stride, pad, oy, 0, lo, yr);
        int ox = lo, next = lo;
        /* blocks of 16; a ragged tail is covered by one more block ending at hi
         * (overlapping outputs are recomputed with identical values) */
        while (hi - lo >= 16 && next < hi) {
            ox = next + 16 <= hi ? next : hi - 16;
            next = ox + 16;
            v8f a0 = {bias, bias, bias, bias, bias, bias, bias, bias}, a1 = a0;
            for (int ky = ky0; ky < ky1; ky++) {
                const float *xr = x + (size_t)(oy * stride + ky - pad) * w_ + (size_t)ox * stride
                                  - pad;
                const float *wr = wk + ky * k;
                if (stride == 1) {
                    for (int kx = 0; kx < k; kx++) {
                        a0 += wr[kx] * LD8(xr + kx);
                        a1 += wr[kx] * LD8(xr + kx + 8);
                    }
                } else {
                    for (int kx = 0; kx < k; kx++) {
                        a0 += wr[kx] * LD8_EVEN(xr + kx);
                        a1 += wr[kx] * LD8_EVEN(xr + kx + 16);
                    }
                }
            }
            memcpy(yr + ox, &a0, sizeof a0);
            memcpy(yr + ox + 8, &a1, sizeof a1);
        }
        ox = next;
        dw_row_clipped(x, h, w_, wk, bias, k, stride, pad, oy, ox, wo, yr);
    }
}

/* Padded-plane geometry for one channel: rows h + 2·pad, columns wide enough for
 * whole 16-output blocks (plus the extra column the stride-2 loads touch). */
static void dw_geom(int h, int w_, int k, int stride, int pad, int wo, int *hp, int *wp, int *wb)
{
    *wb = (wo + 15) / 16 * 16;
    int need = (*wb - 1) * stride + k + (stride == 2);
    *hp = h + 2 * pad;
    *wp = w_ + 2 * pad > need ? w_ + 2 * pad : need;
}

/* One channel through a zero-padded copy P (hp, wp): every output is a full
 * k x k sum with no clipping, 16 at a time into row (wb), then copied out.
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
        for (int ox = 0; ox < wb; ox += 16) {
            v8f a0 = {bias, bias, bias, bias, bias, bias, bias, bias}, a1 = a0;
            for (int ky = 0; ky < k; ky++) {
                const float *pr = P + (size_t)(oy * stride + ky) * wp + (size_t)ox * stride;
                const float *wr = wk + ky * k;
                if (stride == 1) {
                    for (int kx = 0; kx < k; kx++) {
                        a0 += wr[kx] * LD8(pr + kx);
                        a1 += wr[kx] * LD8(pr + kx + 8);
                    }
                } else {
                    for (int kx = 0; kx < k; kx++) {
                        a0 += wr[kx] * LD8_EVEN(pr + kx);
                        a1 += wr[kx] * LD8_EVEN(pr + kx + 16);
                    }
                }
            }
            memcpy(row + ox, &a0, sizeof a0);
            memcpy(row + ox + 8, &a1, sizeof a1);
        }
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
