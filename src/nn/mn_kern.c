/* mn_kern.c — fused AVX-512 depthwise, stem and pointwise kernels (see mn_kern.h).
 *
 * Depthwise, stride 1: 16 outputs of a row per vector, 4 rows at a time where every tap is
 * inside (weights broadcast once into registers), elsewhere masked unaligned loads whose masks
 * drop the columns left or right of the map (the zero padding); rows outside the map are
 * skipped. Stride 2 (and the stem): the input deinterleaved once into zero-padded even/odd
 * column planes, then plain loads, 4 rows at a time. Pointwise: a register tile of 8 output
 * channels x 32 columns, Σ over input channels by broadcast-weight FMAs, bias/activation/
 * residual before the store. Summation orders are conv2d.c's, so the outputs match it. Functions
 * carry target attributes and are chosen at run time, so no -march flag is needed. Leaves out:
 * other ISAs (callers fall back to conv2d.c), dilation.
 */
#include "nn/mn_kern.h"

#include "core/cpu.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define MNK_X86 1
#include <immintrin.h>
#else
#define MNK_X86 0
#endif

int mm_mnk_available(void)
{
#if MNK_X86
    return mm_cpu_avx512();
#else
    return 0;
#endif
}

#if MNK_X86

#define TGT __attribute__((target("avx512f,fma")))

/* Lanes i of a 16-float load starting at column c0 with 0 <= c0 + i < w (the others are the
 * zero padding, or past the row). */
TGT static inline __mmask16 col_mask(int c0, int w)
{
    int lo = c0 < 0 ? -c0 : 0, hi = w - c0 < 16 ? w - c0 : 16;
    if (hi <= lo) return 0;
    unsigned m = (hi >= 16 ? 0xFFFFu : (1u << hi) - 1u) & ~((1u << lo) - 1u);
    return (__mmask16)m;
}

/* act as conv2d.c's mm_act_apply, lane-wise with the same operations (ReLU: v < 0 ? 0 : v,
 * NaN kept; hardswish: v · clamp(v + 3, 0, 6) / 6). */
TGT static inline __m512 act16(__m512 v, mm_act act)
{
    switch (act) {
    case MM_ACT_RELU:
        return _mm512_max_ps(_mm512_setzero_ps(), v);   /* max(0, v): v when not 0 > v */
    case MM_ACT_HARDSWISH: {
        __m512 t = _mm512_add_ps(v, _mm512_set1_ps(3.0f));
        t = _mm512_max_ps(_mm512_setzero_ps(), t);
        t = _mm512_min_ps(_mm512_set1_ps(6.0f), t);     /* 6 < t ? 6 : t */
        return _mm512_div_ps(_mm512_mul_ps(v, t), _mm512_set1_ps(6.0f));
    }
    case MM_ACT_SIGMOID: {
        float tmp[16];
        _mm512_storeu_ps(tmp, v);
        mm_act_apply(tmp, 16, MM_ACT_SIGMOID);
        return _mm512_loadu_ps(tmp);
    }
    default:
        return v;
    }
}

/* One output chunk of 16 columns starting at ox in row oy: acc over the taps of rows
 * [ky0, ky1). Masked variant (borders): load kx of the chunk masked by mlo[kx] (and, stride 2,
 * its second half by mhi[kx]) to the columns inside the row. */
#define AI __attribute__((always_inline)) inline
TGT static AI __m512 chunk_masked(const float *x, int w_, const float *wk, int k, int stride,
                                  int pad, int oy, int ox, int ky0, int ky1, __m512 acc,
                                  const __mmask16 *mlo, const __mmask16 *mhi)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    for (int ky = ky0; ky < ky1; ky++) {
        const float *xr = x + (size_t)(oy * stride + ky - pad) * w_;
        const float *wr = wk + ky * k;
        for (int kx = 0; kx < k; kx++) {
            __m512 v;
            int c0 = ox * stride + kx - pad;
            if (stride == 1) {
                v = _mm512_maskz_loadu_ps(mlo[kx], xr + c0);
            } else {
                __m512 lo = _mm512_maskz_loadu_ps(mlo[kx], xr + c0);
                __m512 hi = _mm512_maskz_loadu_ps(mhi[kx], xr + c0 + 16);
                v = _mm512_permutex2var_ps(lo, even, hi);
            }
            acc = _mm512_fmadd_ps(_mm512_set1_ps(wr[kx]), v, acc);
        }
    }
    return acc;
}

/* Interior chunk (every tap column inside the row): plain loads; k and stride are
 * compile-time constants at each call, so the tap loops unroll. */
TGT static AI __m512 chunk_inner(const float *x, int w_, const float *wk, int k, int stride,
                                 int pad, int oy, int ox, int ky0, int ky1, __m512 acc)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    for (int ky = ky0; ky < ky1; ky++) {
        const float *xr = x + (size_t)(oy * stride + ky - pad) * w_ + (size_t)ox * stride - pad;
        const float *wr = wk + ky * k;
        for (int kx = 0; kx < k; kx++) {
            __m512 v;
            if (stride == 1) {
                v = _mm512_loadu_ps(xr + kx);
            } else {
                v = _mm512_permutex2var_ps(_mm512_loadu_ps(xr + kx), even,
                                           _mm512_loadu_ps(xr + kx + 16));
            }
            acc = _mm512_fmadd_ps(_mm512_set1_ps(wr[kx]), v, acc);
        }
    }
    return acc;
}

/* Interior chunk away from the top and bottom rows: all k x k taps, weights pre-broadcast
 * in wv (same order: row by row, column by column). */
#define MAXK 7
TGT static AI __m512 chunk_full(const float *x, int w_, const __m512 *wv, int k, int stride,
                                int pad, int oy, int ox, __m512 acc)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    for (int ky = 0; ky < k; ky++) {
        const float *xr = x + (size_t)(oy * stride + ky - pad) * w_ + (size_t)ox * stride - pad;
        for (int kx = 0; kx < k; kx++) {
            __m512 v = stride == 1 ? _mm512_loadu_ps(xr + kx)
                                   : _mm512_permutex2var_ps(_mm512_loadu_ps(xr + kx), even,
                                                            _mm512_loadu_ps(xr + kx + 16));
            acc = _mm512_fmadd_ps(wv[ky * k + kx], v, acc);
        }
    }
    return acc;
}

/* Four consecutive output rows oy .. oy + 3 of an interior chunk, all taps inside: four
 * independent sums (one FMA chain each would stall on its latency), each in the same tap
 * order as chunk_full. */
TGT static AI void chunk_full4(const float *x, int w_, const __m512 *wv, int k, int stride,
                               int pad, int oy, int ox, __m512 init, __m512 *out)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    __m512 a0 = init, a1 = init, a2 = init, a3 = init;
    const size_t rs = (size_t)stride * w_;   /* one output row down */
    for (int ky = 0; ky < k; ky++) {
        const float *xr = x + (size_t)(oy * stride + ky - pad) * w_ + (size_t)ox * stride - pad;
        for (int kx = 0; kx < k; kx++) {
            __m512 w = wv[ky * k + kx], v0, v1, v2, v3;
            if (stride == 1) {
                v0 = _mm512_loadu_ps(xr + kx);
                v1 = _mm512_loadu_ps(xr + rs + kx);
                v2 = _mm512_loadu_ps(xr + 2 * rs + kx);
                v3 = _mm512_loadu_ps(xr + 3 * rs + kx);
            } else {
#define EV(p) _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps((p) + 16))
                v0 = EV(xr + kx);
                v1 = EV(xr + rs + kx);
                v2 = EV(xr + 2 * rs + kx);
                v3 = EV(xr + 3 * rs + kx);
#undef EV
            }
            a0 = _mm512_fmadd_ps(w, v0, a0);
            a1 = _mm512_fmadd_ps(w, v1, a1);
            a2 = _mm512_fmadd_ps(w, v2, a2);
            a3 = _mm512_fmadd_ps(w, v3, a3);
        }
    }
    out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
}

/* One k x k plane, stride 1 or 2, pad (k−1)/2: y (ho, wo) from x (h, w_).
 * bias_first: acc = bias, then taps (depthwise order); else acc = taps from 0, then + bias
 * (im2col + sgemm order). Chunks [q_lo, q_hi) of 16 outputs read only inside the row. */
TGT static AI void plane_k(const float *x, int h, int w_, const float *wk, float bias, int k,
                           int stride, int ho, int wo, mm_act act, int bias_first, float *y)
{
    const int pad = (k - 1) / 2;
    /* chunk q (outputs 16q ..) is interior when its first tap column is >= 0 and its last
     * load (16 columns, or 32 for stride 2) ends inside the row */
    int span = stride == 1 ? 16 : 32;
    int q_lo = 0, q_hi = 0, nq = (wo + 15) / 16;
    while (q_lo < nq && 16 * q_lo * stride - pad < 0) q_lo++;
    q_hi = q_lo;
    while (q_hi < nq && 16 * q_hi * stride - pad + (k - 1) + span <= w_) q_hi++;
    __m512 init = bias_first ? _mm512_set1_ps(bias) : _mm512_setzero_ps(), bb = _mm512_set1_ps(bias);
    __m512 wv[MAXK * MAXK];   /* broadcast taps: registers when k is a compile-time constant */
    for (int i = 0; i < k * k && i < MAXK * MAXK; i++) wv[i] = _mm512_set1_ps(wk[i]);
    for (int q = 0; q < nq; q++) {
        int ox = 16 * q, nout = wo - ox < 16 ? wo - ox : 16, inner = q >= q_lo && q < q_hi;
        __mmask16 om = (__mmask16)(nout == 16 ? 0xFFFFu : (1u << nout) - 1u);
        __mmask16 mlo[8] = {0}, mhi[8] = {0};
        if (!inner)
            for (int kx = 0; kx < k; kx++) {
                int c0 = ox * stride + kx - pad;
                mlo[kx] = col_mask(c0, w_);
                mhi[kx] = col_mask(c0 + 16, w_);
            }
        for (int oy = 0; oy < ho; oy++) {
            int ky0 = pad - oy * stride > 0 ? pad - oy * stride : 0;
            int ky1 = h + pad - oy * stride < k ? h + pad - oy * stride : k;
            /* four full rows at once where rows oy .. oy + 3 all have every tap inside */
            if (inner && ky0 == 0 && oy + 3 < ho && (oy + 3) * stride - pad + k <= h) {
                __m512 a[4];
                chunk_full4(x, w_, wv, k, stride, pad, oy, ox, init, a);
                for (int r = 0; r < 4; r++) {
                    __m512 v = bias_first ? a[r] : _mm512_add_ps(a[r], bb);
                    _mm512_mask_storeu_ps(y + (size_t)(oy + r) * wo + ox, om, act16(v, act));
                }
                oy += 3;
                continue;
            }
            __m512 acc;
            if (inner && ky0 == 0 && ky1 == k)   /* all k x k taps inside: weights in registers */
                acc = chunk_full(x, w_, wv, k, stride, pad, oy, ox, init);
            else if (inner)
                acc = chunk_inner(x, w_, wk, k, stride, pad, oy, ox, ky0, ky1, init);
            else
                acc = chunk_masked(x, w_, wk, k, stride, pad, oy, ox, ky0, ky1, init, mlo, mhi);
            if (!bias_first) acc = _mm512_add_ps(acc, bb);
            _mm512_mask_storeu_ps(y + (size_t)oy * wo + ox, om, act16(acc, act));
        }
    }
}

/* Specialisations for the kernel sizes and strides MobileNetV3 uses, else generic. */
TGT static void plane(const float *x, int h, int w_, const float *wk, float bias, int k,
                      int stride, int ho, int wo, mm_act act, int bias_first, float *y)
{
#define PLANE(K, S) plane_k(x, h, w_, wk, bias, K, S, ho, wo, act, bias_first, y)
    if (k == 3 && stride == 1) PLANE(3, 1);
    else if (k == 3 && stride == 2) PLANE(3, 2);
    else if (k == 5 && stride == 1) PLANE(5, 1);
    else if (k == 5 && stride == 2) PLANE(5, 2);
    else PLANE(k, stride);
#undef PLANE
}

/* Stride 2 through even/odd column planes: output column ox, tap kx reads input column
 * 2·ox + kx − pad, i.e. column ox + (kx − pad)/2 of the even plane E (kx − pad even) or
 * ox + (kx − pad − 1)/2 of the odd plane O. E and O hold the input deinterleaved once, with
 * `pad` zero rows above and below and EO_G zero columns left, zeros right, so that every tap
 * is a plain unaligned load (the zeros are the padding; they add exact zeros, as conv2d.c's
 * padded plane does). Per output the taps run row by row, column by column, as elsewhere. */
#define EO_G 16   /* one vector of zeros left of every row */
typedef struct eo_geom {
    int h, w_, pad, ho, wo, rows, cols;   /* planes (rows, cols) */
} eo_geom;

static eo_geom eo_plan(int h, int w_, int k, int ho, int wo)
{
    int pad = (k - 1) / 2;
    eo_geom g = {h, w_, pad, ho, wo, h + 2 * pad, 0};
    int need = EO_G + (wo + 15) / 16 * 16 + k / 2 + 1;   /* last chunk's last tap + 1 */
    int half = EO_G + (w_ + 1) / 2 + 16;                  /* deinterleaving writes 16 at a time */
    g.cols = (need > half ? need : half);
    g.cols = (g.cols + 15) / 16 * 16;                     /* rows are whole vectors */
    return g;
}

/* Deinterleave plane x (h, w_) into E and O (g.rows, g.cols each). */
TGT static void eo_build(const float *x, const eo_geom *g, float *E, float *O)
{
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    size_t plane = (size_t)g->rows * g->cols;
    memset(E, 0, (size_t)g->pad * g->cols * sizeof *E);
    memset(O, 0, (size_t)g->pad * g->cols * sizeof *O);
    memset(E + plane - (size_t)g->pad * g->cols, 0, (size_t)g->pad * g->cols * sizeof *E);
    memset(O + plane - (size_t)g->pad * g->cols, 0, (size_t)g->pad * g->cols * sizeof *O);
    for (int iy = 0; iy < g->h; iy++) {
        const float *xr = x + (size_t)iy * g->w_;
        float *er = E + (size_t)(iy + g->pad) * g->cols, *orow = O + (size_t)(iy + g->pad) * g->cols;
        const __m512 z = _mm512_setzero_ps();
        _mm512_storeu_ps(er, z);
        _mm512_storeu_ps(orow, z);
        int j = 0;
        for (; 2 * j < g->w_; j += 16) {   /* input columns 2j .. 2j + 31 */
            __m512 lo = _mm512_maskz_loadu_ps(col_mask(2 * j, g->w_), xr + 2 * j);
            __m512 hi = _mm512_maskz_loadu_ps(col_mask(2 * j + 16, g->w_), xr + 2 * j + 16);
            _mm512_storeu_ps(er + EO_G + j, _mm512_permutex2var_ps(lo, ev, hi));
            _mm512_storeu_ps(orow + EO_G + j, _mm512_permutex2var_ps(lo, od, hi));
        }
        /* columns past the data are zero (the masked loads gave zeros up to EO_G + j) */
        for (j += EO_G; j < g->cols; j += 16) {
            _mm512_storeu_ps(er + j, z);
            _mm512_storeu_ps(orow + j, z);
        }
    }
}

/* One output plane of a stride-2 k x k conv from E/O, 16 columns x 4 rows at a time. */
TGT static AI void plane_eo_k(const float *E, const float *O, const eo_geom *g, const float *wk,
                              float bias, int k, mm_act act, int bias_first, float *y)
{
    const int pad = g->pad;
    __m512 init = bias_first ? _mm512_set1_ps(bias) : _mm512_setzero_ps(), bb = _mm512_set1_ps(bias);
    __m512 wv[MAXK * MAXK];
    for (int i = 0; i < k * k && i < MAXK * MAXK; i++) wv[i] = _mm512_set1_ps(wk[i]);
    for (int ox = 0; ox < g->wo; ox += 16) {
        int nout = g->wo - ox < 16 ? g->wo - ox : 16;
        __mmask16 om = (__mmask16)(nout == 16 ? 0xFFFFu : (1u << nout) - 1u);
        for (int oy = 0; oy < g->ho; oy += 4) {
            int nr = g->ho - oy < 4 ? g->ho - oy : 4;
            __m512 a0 = init, a1 = init, a2 = init, a3 = init;
            for (int ky = 0; ky < k; ky++) {
                /* padded row of output row oy + r, tap ky: 2(oy + r) + ky; rows past the
                 * last output row repeat the last one (computed, not stored) */
                size_t r0 = (size_t)(2 * oy + ky), rs = 2 * (size_t)g->cols;
                size_t o1 = nr > 1 ? rs : 0, o2 = nr > 2 ? 2 * rs : o1, o3 = nr > 3 ? 3 * rs : o2;
                for (int kx = 0; kx < k; kx++) {
                    int d = kx - pad;
                    const float *src = (d & 1) ? O : E;
                    int col = EO_G + ox + ((d & 1) ? (d - 1) / 2 : d / 2);
                    const float *p = src + r0 * g->cols + col;
                    __m512 wt = wv[ky * k + kx];
                    a0 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(p), a0);
                    a1 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(p + o1), a1);
                    a2 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(p + o2), a2);
                    a3 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(p + o3), a3);
                }
            }
            __m512 a[4] = {a0, a1, a2, a3};
            for (int r = 0; r < nr; r++) {
                __m512 v = bias_first ? a[r] : _mm512_add_ps(a[r], bb);
                _mm512_mask_storeu_ps(y + (size_t)(oy + r) * g->wo + ox, om, act16(v, act));
            }
        }
    }
}

TGT static void plane_eo(const float *E, const float *O, const eo_geom *g, const float *wk,
                         float bias, int k, mm_act act, int bias_first, float *y)
{
    if (k == 3) plane_eo_k(E, O, g, wk, bias, 3, act, bias_first, y);
    else if (k == 5) plane_eo_k(E, O, g, wk, bias, 5, act, bias_first, y);
    else plane_eo_k(E, O, g, wk, bias, k, act, bias_first, y);
}

TGT static void depthwise_x86(const float *x, int h, int w_, const float *w, const float *b,
                              int k, int stride, mm_act act, float *y, int c0, int c1)
{
    int pad = (k - 1) / 2;
    int ho = mm_conv2d_out_size(h, k, stride, pad), wo = mm_conv2d_out_size(w_, k, stride, pad);
    if (stride == 2 && ho > 0 && wo > 0) {
        eo_geom g = eo_plan(h, w_, k, ho, wo);
        float *E = aligned_alloc(64, 2 * (size_t)g.rows * g.cols * sizeof *E);   /* whole lines */
        if (E) {   /* else the masked path below, same values */
            float *O = E + (size_t)g.rows * g.cols;
            for (int c = c0; c < c1; c++) {
                eo_build(x + (size_t)c * h * w_, &g, E, O);
                plane_eo(E, O, &g, w + (size_t)c * k * k, b ? b[c] : 0.0f, k, act, 1,
                         y + (size_t)c * ho * wo);
            }
            free(E);
            return;
        }
    }
    for (int c = c0; c < c1; c++)
        plane(x + (size_t)c * h * w_, h, w_, w + (size_t)c * k * k, b ? b[c] : 0.0f, k, stride,
              ho, wo, act, 1, y + (size_t)c * ho * wo);
}

TGT static void stem_x86(const float *x, int h, int w_, const float *w, const float *b, int k,
                         int stride, mm_act act, float *y, int o0, int o1)
{
    int pad = (k - 1) / 2;
    int ho = mm_conv2d_out_size(h, k, stride, pad), wo = mm_conv2d_out_size(w_, k, stride, pad);
    if (stride == 2 && ho > 0 && wo > 0) {   /* one deinterleave for every output channel */
        eo_geom g = eo_plan(h, w_, k, ho, wo);
        float *E = aligned_alloc(64, 2 * (size_t)g.rows * g.cols * sizeof *E);   /* whole lines */
        if (E) {
            float *O = E + (size_t)g.rows * g.cols;
            eo_build(x, &g, E, O);
            for (int o = o0; o < o1; o++)
                plane_eo(E, O, &g, w + (size_t)o * k * k, b ? b[o] : 0.0f, k, act, 0,
                         y + (size_t)o * ho * wo);
            free(E);
            return;
        }
    }
    for (int o = o0; o < o1; o++)
        plane(x, h, w_, w + (size_t)o * k * k, b ? b[o] : 0.0f, k, stride, ho, wo, act, 0,
              y + (size_t)o * ho * wo);
}

/* Epilogue of one output vector: + bias, activation, + residual, masked store. */
TGT static AI void pw_out(__m512 acc, float bias, mm_act act, const float *res, float *y,
                          __mmask16 m)
{
    __m512 v = act16(_mm512_add_ps(acc, _mm512_set1_ps(bias)), act);
    if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res));
    _mm512_mask_storeu_ps(y, m, v);
}

/* 8 output rows x 32 columns [j, j + 32): Σ_k W[o][k] x[k][j..] in k order, in 16 named
 * accumulators (arrays would be kept in memory). */
TGT static void pw_tile8x2(const float *x, int cin, size_t hw, const float *W, const float *b,
                           mm_act act, const float *res, float *y, int o, size_t j)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
    const float *xp = x + j, *wp = W + (size_t)o * cin;
    size_t rs = (size_t)cin;
    for (int kk = 0; kk < cin; kk++, xp += hw, wp++) {
        __m512 u = _mm512_loadu_ps(xp), v = _mm512_loadu_ps(xp + 16), t;
#define ROW(r, A, C)                                                                            \
    t = _mm512_set1_ps(wp[(r) * rs]);                                                            \
    A = _mm512_fmadd_ps(t, u, A);                                                                \
    C = _mm512_fmadd_ps(t, v, C)
        ROW(0, a0, c0); ROW(1, a1, c1); ROW(2, a2, c2); ROW(3, a3, c3);
        ROW(4, a4, c4); ROW(5, a5, c5); ROW(6, a6, c6); ROW(7, a7, c7);
#undef ROW
    }
    __m512 A[8] = {a0, a1, a2, a3, a4, a5, a6, a7}, C[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
    for (int r = 0; r < 8; r++) {
        size_t off = (size_t)(o + r) * hw + j;
        float bias = b ? b[o + r] : 0.0f;
        pw_out(A[r], bias, act, res ? res + off : NULL, y + off, 0xFFFF);
        pw_out(C[r], bias, act, res ? res + off + 16 : NULL, y + off + 16, 0xFFFF);
    }
}

/* R (<= 8) output rows x 16 columns [j, j + 16) masked by m (ragged edges). */
TGT static void pw_tile_r(const float *x, int cin, size_t hw, const float *W, const float *b,
                          mm_act act, const float *res, float *y, int o, int R, size_t j,
                          __mmask16 m)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    const float *xp = x + j, *wp = W + (size_t)o * cin;
    size_t rs = (size_t)cin;
    for (int kk = 0; kk < cin; kk++, xp += hw, wp++) {
        __m512 u = _mm512_maskz_loadu_ps(m, xp);
        /* rows past R read row 0's weight (in range) and are never stored */
#define ROW(r, A) A = _mm512_fmadd_ps(_mm512_set1_ps(wp[((r) < R ? (r) : 0) * rs]), u, A)
        ROW(0, a0); ROW(1, a1); ROW(2, a2); ROW(3, a3);
        ROW(4, a4); ROW(5, a5); ROW(6, a6); ROW(7, a7);
#undef ROW
    }
    __m512 A[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (int r = 0; r < R; r++) {
        size_t off = (size_t)(o + r) * hw + j;
        pw_out(A[r], b ? b[o + r] : 0.0f, act, res ? res + off : NULL, y + off, m);
    }
}

TGT static void pointwise_x86(const float *x, int cin, size_t hw, const float *W, const float *b,
                              mm_act act, const float *res, float *y, int o0, int o1, size_t j0,
                              size_t j1)
{
    size_t j = j0;
    for (; j + 32 <= j1; j += 32) {
        int o = o0;
        for (; o + 8 <= o1; o += 8) pw_tile8x2(x, cin, hw, W, b, act, res, y, o, j);
        for (; o < o1; o += 8) {
            int R = o1 - o < 8 ? o1 - o : 8;
            pw_tile_r(x, cin, hw, W, b, act, res, y, o, R, j, 0xFFFF);
            pw_tile_r(x, cin, hw, W, b, act, res, y, o, R, j + 16, 0xFFFF);
        }
    }
    for (; j < j1; j += 16) {
        size_t left = j1 - j;
        __mmask16 m = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
        for (int o = o0; o < o1; o += 8)
            pw_tile_r(x, cin, hw, W, b, act, res, y, o, o1 - o < 8 ? o1 - o : 8, j, m);
    }
}

#endif /* MNK_X86 */

void mm_mnk_depthwise(const float *x, int h, int w_, const float *w, const float *b, int k,
                      int stride, mm_act act, float *y, int c0, int c1)
{
#if MNK_X86
    depthwise_x86(x, h, w_, w, b, k, stride, act, y, c0, c1);
#else
    (void)x, (void)h, (void)w_, (void)w, (void)b, (void)k, (void)stride, (void)act, (void)y,
        (void)c0, (void)c1;
#endif
}

void mm_mnk_stem(const float *x, int h, int w_, const float *w, const float *b, int k,
                 int stride, mm_act act, float *y, int o0, int o1)
{
#if MNK_X86
    stem_x86(x, h, w_, w, b, k, stride, act, y, o0, o1);
#else
    (void)x, (void)h, (void)w_, (void)w, (void)b, (void)k, (void)stride, (void)act, (void)y,
        (void)o0, (void)o1;
#endif
}

void mm_mnk_pointwise(const float *x, int cin, size_t hw, const float *W, const float *b,
                      mm_act act, const float *res, float *y, int o0, int o1, size_t j0,
                      size_t j1)
{
#if MNK_X86
    pointwise_x86(x, cin, hw, W, b, act, res, y, o0, o1, j0, j1);
#else
    (void)x, (void)cin, (void)hw, (void)W, (void)b, (void)act, (void)res, (void)y, (void)o0,
        (void)o1, (void)j0, (void)j1;
#endif
}
