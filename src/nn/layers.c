/* layers.c — layer kernels for training (see layers.h), instantiated in
 * float for the engine and in double for the finite-difference gradient test
 * from the single source layers_kern.inc.
 * Matches PyTorch semantics (nn.Linear, BatchNorm1d with momentum/eps and
 * unbiased running variance, CrossEntropyLoss with weights and smoothing)
 * and TensorFlow's 'same' padding for Conv1D/MaxPool1D; channels-last as Keras.
 * Leaves out dilation, groups and average pooling. */
#include "nn/layers.h"

#include <cblas.h>
#include "core/cpu.h"
#include "nn/par.h"
#include "nn/sgemm.h"
#include <math.h>
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Kernels with an AVX-512 build beside their MM_SIMD_CLONES ones (GCC, x86-64). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define HAVE_AVX512_ITEMS 1
#else
#define HAVE_AVX512_ITEMS 0
#endif

#define COLBLK 64
#define COLSPAN 1024   /* widest column range one thread reduces over all rows */
#define DWT_RB 8       /* rows of dx per update of the fused conv's weight-gradient sums */
_Static_assert(MM_SGEMM_KC % DWT_RB == 0, "a block of DWT_RB rows never straddles a chain block");

/* Threads a kernel may use for `work` values: the caller and its helpers
 * (mm_par_helpers_for). */
static int n_workers(double work)
{
    return mm_par_helpers_for(work) + 1;
}

/* fn(ctx, i) for i < n, on this thread and up to workers - 1 nn/par helper
 * threads. Help-first (see nn/par.h): the caller starts at once and waits
 * only for items a helper has claimed, never for a helper to be scheduled,
 * so on a busy machine a step costs no fork/join stalls. Every item computes
 * the same values whoever runs it. */
static void par_for(size_t n, mm_par_fn fn, void *ctx, int workers)
{
    mm_par_for_n(n, fn, ctx, workers - 1);
}

/* Prefetch of rows r + PF_ROWS of the column-range passes (bn_fwd, bn_bwd),
 * which stream one thread's part of each row: the hardware prefetchers follow
 * that strided pattern poorly (a column-sum model of Table I's first block:
 * 2 threads 1.3x faster than 1 without, 1.9x with). pf_seg fetches the
 * cache lines of [p, p + bytes). */
#define PF_ROWS 8
static inline void pf_seg(const void *p, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o);
}

/* Column ranges for reductions over the rows of an (R, C) matrix: one range
 * per thread (at most COLSPAN wide, multiples of 16) so each thread streams
 * whole row segments. Every column is still summed in row order by one
 * thread, so the ranges never change a result. */
static size_t col_span(size_t R, size_t C)
{
    size_t nt = (size_t)n_workers((double)R * C);
    size_t w = (C + nt - 1) / nt;
    w = (w + 15) / 16 * 16;
    return w > COLSPAN ? COLSPAN : w < 16 ? 16 : w;
}

/* ---- Winograd F(m, r) for stride-1 Conv1D -------------------------------
 * k = 5: F(6, 5) on the points 0, 1, -1, 2, -2, 1/2, -1/2, 3/4, -3/4, inf
 * (alpha = 10), or F(4, 5) on the first eight (alpha = 8) when that makes
 * fewer products (short outputs), or F(9, 5) on those ten and -3/2, 1/4, 4
 * (alpha = 13) when that makes at least 10% fewer products than F(6, 5)
 * (an output of 81 in 9 whole tiles: 117 products per channel pair, not
 * 140); k = 3: F(6, 3) on the eight. Lavin &
 * Gray's formulation: a tile of m outputs is y = AT [(G w) * (BT d)] over an
 * input tile d of alpha = m + r - 1 positions. The tables come from
 * scripts/gen_winograd.py, which checks each exactly; the entries of AT and
 * BT are exact in binary (dyadic points), G's are applied in double once per
 * weight. Multiplications per output: alpha/m per (cin, cout) pair instead of
 * r (3x fewer for F(6, 5), 3.5x for F(9, 5), 2.5x for F(4, 5), 2x for
 * F(6, 3)). float32 error relative to float64 on a 512-channel tile
 * (gen_winograd.py --error): F(4, 5) 2.1x im2col's own, F(6, 3) 2.7x, F(6, 5)
 * 7.1x (3.2e-6 rms), F(9, 5) 25x (1.1e-5 rms; float32 training's own noise,
 * and TF32's 5e-4 that PyTorch's GPU convolutions use by default, are far
 * above either). */
#define WAMAX 13   /* the largest alpha */
enum { MIX_STORE, MIX_BIAS, MIX_RELU, MIX_SCATTER };   /* wino_mix's output modes */
#define WINO_BT8 { \
    {-1, 0, 5.25, 0, -5.25, 0, 1, 0}, \
    {0, 1, 1, -4.25, -4.25, 1, 1, 0}, \
    {0, -1, 1, 4.25, -4.25, -1, 1, 0}, \
    {0, 0.5, 0.25, -2.5, -1.25, 2, 1, 0}, \
    {0, -0.5, 0.25, 2.5, -1.25, -2, 1, 0}, \
    {0, 2, 4, -2.5, -5, 0.5, 1, 0}, \
    {0, -2, 4, 2.5, -5, -0.5, 1, 0}, \
    {0, -1, 0, 5.25, 0, -5.25, 0, 1}}
static const double wino_bt8[8][8] = WINO_BT8;
#define WINO_AT4 { \
    {1, 1, 1, 1, 1, 1, 1, 0}, \
    {0, 1, -1, 2, -2, 0.5, -0.5, 0}, \
    {0, 1, 1, 4, 4, 0.25, 0.25, 0}, \
    {0, 1, -1, 8, -8, 0.125, -0.125, 1}}
static const double wino_at4[4][8] = WINO_AT4;
#define WINO_AT6 { \
    {1, 1, 1, 1, 1, 1, 1, 0}, \
    {0, 1, -1, 2, -2, 0.5, -0.5, 0}, \
    {0, 1, 1, 4, 4, 0.25, 0.25, 0}, \
    {0, 1, -1, 8, -8, 0.125, -0.125, 0}, \
    {0, 1, 1, 16, 16, 0.0625, 0.0625, 0}, \
    {0, 1, -1, 32, -32, 0.03125, -0.03125, 1}}
static const double wino_at6[6][8] = WINO_AT6;
static const double wino_g5[8][5] = {
    {-1, 0, 0, 0, 0},
    {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
    {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9},
    {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45},
    {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45},
    {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45},
    {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45},
    {0, 0, 0, 0, 1}};
static const double wino_g3[8][3] = {
    {-1, 0, 0},
    {-2.0 / 9, -2.0 / 9, -2.0 / 9},
    {-2.0 / 9, 2.0 / 9, -2.0 / 9},
    {1.0 / 90, 1.0 / 45, 2.0 / 45},
    {1.0 / 90, -1.0 / 45, 2.0 / 45},
    {32.0 / 45, 16.0 / 45, 8.0 / 45},
    {32.0 / 45, -16.0 / 45, 8.0 / 45},
    {0, 0, 1}};
#define WINO_BT10 { \
    {0.5625, 0, -3.953125, 0, 8.203125, 0, -5.8125, 0, 1, 0}, \
    {0, -0.5625, -0.5625, 3.390625, 3.390625, -4.8125, -4.8125, 1, 1, 0}, \
    {0, 0.5625, -0.5625, -3.390625, 3.390625, 4.8125, -4.8125, -1, 1, 0}, \
    {0, -0.28125, -0.140625, 1.90625, 0.953125, -3.625, -1.8125, 2, 1, 0}, \
    {0, 0.28125, -0.140625, -1.90625, 0.953125, 3.625, -1.8125, -2, 1, 0}, \
    {0, -1.125, -2.25, 3.40625, 6.8125, -2.78125, -5.5625, 0.5, 1, 0}, \
    {0, 1.125, -2.25, -3.40625, 6.8125, 2.78125, -5.5625, -0.5, 1, 0}, \
    {0, -0.75, -1, 3.9375, 5.25, -3.9375, -5.25, 0.75, 1, 0}, \
    {0, 0.75, -1, -3.9375, 5.25, 3.9375, -5.25, -0.75, 1, 0}, \
    {0, 0.5625, 0, -3.953125, 0, 8.203125, 0, -5.8125, 0, 1}}
static const double wino_bt10[10][10] = WINO_BT10;
#define WINO_AT6_10 { \
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, \
    {0, 1, -1, 2, -2, 0.5, -0.5, 0.75, -0.75, 0}, \
    {0, 1, 1, 4, 4, 0.25, 0.25, 0.5625, 0.5625, 0}, \
    {0, 1, -1, 8, -8, 0.125, -0.125, 0.421875, -0.421875, 0}, \
    {0, 1, 1, 16, 16, 0.0625, 0.0625, 0.31640625, 0.31640625, 0}, \
    {0, 1, -1, 32, -32, 0.03125, -0.03125, 0.2373046875, -0.2373046875, 1}}
static const double wino_at6_10[6][10] = WINO_AT6_10;
static const double wino_g5_10[10][5] = {
    {16.0 / 9, 0, 0, 0, 0},
    {-32.0 / 63, -32.0 / 63, -32.0 / 63, -32.0 / 63, -32.0 / 63},
    {-32.0 / 63, 32.0 / 63, -32.0 / 63, 32.0 / 63, -32.0 / 63},
    {8.0 / 2475, 16.0 / 2475, 32.0 / 2475, 64.0 / 2475, 128.0 / 2475},
    {8.0 / 2475, -16.0 / 2475, 32.0 / 2475, -64.0 / 2475, 128.0 / 2475},
    {-512.0 / 225, -256.0 / 225, -128.0 / 225, -64.0 / 225, -32.0 / 225},
    {-512.0 / 225, 256.0 / 225, -128.0 / 225, 64.0 / 225, -32.0 / 225},
    {32768.0 / 17325, 8192.0 / 5775, 2048.0 / 1925, 1536.0 / 1925, 1152.0 / 1925},
    {32768.0 / 17325, -8192.0 / 5775, 2048.0 / 1925, -1536.0 / 1925, 1152.0 / 1925},
    {0, 0, 0, 0, 1}};
#define WINO_BT13 { \
    {0.84375, -3.0234375, -7.4765625, 21.810546875, 23.17578125, -48.044921875, -31.27734375, 39.4453125, 17.484375, -11.1875, -2.75, 1, 0}, \
    {0, -0.84375, 2.1796875, 9.65625, -12.154296875, -35.330078125, 12.71484375, 43.9921875, 4.546875, -12.9375, -1.75, 1, 0}, \
    {0, 0.84375, -3.8671875, -3.609375, 25.419921875, -2.244140625, -45.80078125, 14.5234375, 24.921875, -7.4375, -3.75, 1, 0}, \
    {0, -0.421875, 1.30078125, 4.388671875, -8.7109375, -15.943359375, 16.05078125, 23.6640625, -7.890625, -12.6875, -0.75, 1, 0}, \
    {0, 0.421875, -1.72265625, -2.876953125, 12.34375, 5.416015625, -26.73046875, -2.2734375, 20.859375, -1.6875, -4.75, 1, 0}, \
    {0, -1.6875, 2.671875, 20.296875, -3.02734375, -52.40625, -8.72265625, 45.109375, 11.328125, -12.3125, -2.25, 1, 0}, \
    {0, 1.6875, -9.421875, 3.890625, 35.83984375, -25.328125, -45.43359375, 28.3125, 22.265625, -9.5625, -3.25, 1, 0}, \
    {0, -1.125, 2.53125, 13.34375, -11.2890625, -45.953125, 2.7890625, 45.421875, 7.96875, -12.6875, -2, 1, 0}, \
    {0, 1.125, -5.53125, -2.59375, 32.5390625, -12.484375, -47.4140625, 21.515625, 23.90625, -8.5625, -3.5, 1, 0}, \
    {0, 0.5625, -2.390625, -3.390625, 16.80078125, 4.25, -34.86328125, 2.390625, 24.703125, -4.8125, -4.25, 1, 0}, \
    {0, -3.375, -1.40625, 24.28125, 9.8828125, -53.171875, -20.5078125, 43.078125, 14.53125, -11.8125, -2.5, 1, 0}, \
    {0, -0.2109375, 0.703125, 2.044921875, -4.94140625, -7.029296875, 10.25390625, 10.3828125, -7.265625, -6.1875, 1.25, 1, 0}, \
    {0, 0.84375, -3.0234375, -7.4765625, 21.810546875, 23.17578125, -48.044921875, -31.27734375, 39.4453125, 17.484375, -11.1875, -2.75, 1}}
static const double wino_bt13[13][13] = WINO_BT13;
#define WINO_AT9_13 { \
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, \
    {0, 1, -1, 2, -2, 0.5, -0.5, 0.75, -0.75, -1.5, 0.25, 4, 0}, \
    {0, 1, 1, 4, 4, 0.25, 0.25, 0.5625, 0.5625, 2.25, 0.0625, 16, 0}, \
    {0, 1, -1, 8, -8, 0.125, -0.125, 0.421875, -0.421875, -3.375, 0.015625, 64, 0}, \
    {0, 1, 1, 16, 16, 0.0625, 0.0625, 0.31640625, 0.31640625, 5.0625, 0.00390625, 256, 0}, \
    {0, 1, -1, 32, -32, 0.03125, -0.03125, 0.2373046875, -0.2373046875, -7.59375, 0.0009765625, 1024, 0}, \
    {0, 1, 1, 64, 64, 0.015625, 0.015625, 0.177978515625, 0.177978515625, 11.390625, 0.000244140625, 4096, 0}, \
    {0, 1, -1, 128, -128, 0.0078125, -0.0078125, 0.13348388671875, -0.13348388671875, -17.0859375, 6.103515625e-05, 16384, 0}, \
    {0, 1, 1, 256, 256, 0.00390625, 0.00390625, 0.1001129150390625, 0.1001129150390625, 25.62890625, 1.52587890625e-05, 65536, 1}}
static const double wino_at9_13[9][13] = WINO_AT9_13;
static const double wino_g5_13[13][5] = {
    {32.0 / 27, 0, 0, 0, 0},
    {256.0 / 2835, 256.0 / 2835, 256.0 / 2835, 256.0 / 2835, 256.0 / 2835},
    {-256.0 / 1575, 256.0 / 1575, -256.0 / 1575, 256.0 / 1575, -256.0 / 1575},
    {-32.0 / 121275, -64.0 / 121275, -128.0 / 121275, -256.0 / 121275, -512.0 / 121275},
    {-32.0 / 66825, 64.0 / 66825, -128.0 / 66825, 256.0 / 66825, -512.0 / 66825},
    {2048.0 / 1575, 1024.0 / 1575, 512.0 / 1575, 256.0 / 1575, 128.0 / 1575},
    {-4096.0 / 6075, 2048.0 / 6075, -1024.0 / 6075, 512.0 / 6075, -256.0 / 6075},
    {-1048576.0 / 2027025, -262144.0 / 675675, -65536.0 / 225225, -16384.0 / 75075, -4096.0 / 25025},
    {524288.0 / 987525, -131072.0 / 329175, 32768.0 / 109725, -8192.0 / 36575, 6144.0 / 36575},
    {2048.0 / 218295, -1024.0 / 72765, 512.0 / 24255, -256.0 / 8085, 128.0 / 2695},
    {-524288.0 / 297675, -131072.0 / 297675, -32768.0 / 297675, -8192.0 / 297675, -2048.0 / 297675},
    {32.0 / 115540425, 128.0 / 115540425, 512.0 / 115540425, 2048.0 / 115540425, 8192.0 / 115540425},
    {0, 0, 0, 0, 1}};

typedef struct wino {
    size_t m, r, a;       /* outputs per tile, kernel size, alpha = m + r - 1 */
    const double *at;     /* (m, a) */
    const double *g;      /* (a, r) */
    const double *bt;     /* (a, a) */
} wino;

static const wino wino_f45 = {4, 5, 8, &wino_at4[0][0], &wino_g5[0][0], &wino_bt8[0][0]};
static const wino wino_f65 = {6, 5, 10, &wino_at6_10[0][0], &wino_g5_10[0][0], &wino_bt10[0][0]};
static const wino wino_f95 = {9, 5, 13, &wino_at9_13[0][0], &wino_g5_13[0][0], &wino_bt13[0][0]};
static const wino wino_f63 = {6, 3, 8, &wino_at6[0][0], &wino_g3[0][0], &wino_bt8[0][0]};

static mm_nn_conv_algo g_conv_algo = MM_NN_CONV_AUTO;
static int g_gemm_kernel = MM_SGEMM_AUTO;

mm_nn_conv_algo mm_nn_conv1d_algo(mm_nn_conv_algo a)
{
    mm_nn_conv_algo old = g_conv_algo;
    g_conv_algo = a;
    return old;
}

int mm_nn_gemm_kernel(int k)
{
    int old = g_gemm_kernel;
    g_gemm_kernel = k;
    return old;
}

/* The Winograd variant for a Conv1D, or NULL for im2col. Depends on the
 * shapes only (never on the batch), so training and inference of any batch
 * take the same path: stride 1, k = 3 or 5, at least 16 channels in and out
 * (below that the transforms cost more than they save), at most 4096 in
 * (the fallback's stack rows), an output of at least one tile, and the
 * transformed input V (alpha x tiles x cin per sample) and the transformed
 * output gradient (alpha x tiles x cout) fitting in the col / dcol
 * workspace the caller provides (B Lout k cin). */
static size_t wino_products(const wino *w, size_t Lout) { return w->a * ((Lout + w->m - 1) / w->m); }

static const wino *wino_pick(size_t cin, size_t cout, size_t k, size_t s, size_t Lout)
{
    if (g_conv_algo == MM_NN_CONV_IM2COL || s != 1 || (k != 5 && k != 3)) return NULL;
    const wino *w = &wino_f63;
    if (k == 5) {   /* F(6, 5) where it makes fewer products than F(4, 5) (ties: F(4, 5), the more exact) */
        w = Lout >= 6 && wino_products(&wino_f65, Lout) < wino_products(&wino_f45, Lout) ? &wino_f65 : &wino_f45;
        /* F(9, 5) only where it makes at least 10% fewer products than F(6, 5):
         * it rounds 3.4x more (e.g. Lout 81: 117 against 140; Lout 41: 65
         * against 70 stays F(6, 5)) */
        if (Lout >= 9 && 10 * wino_products(&wino_f95, Lout) <= 9 * wino_products(&wino_f65, Lout)) w = &wino_f95;
    }
    if (cin < 16 || cout < 16 || cin > 4096 || Lout < w->m) return NULL;
    size_t an = wino_products(w, Lout);
    if (an > k * Lout || an * cout > k * Lout * cin) return NULL;
    return w;
}

/* Where in the col workspace (B Lout r cin) the forward leaves the weight
 * transform U (alpha cout cin) for backward: right after V (alpha tiles
 * cin), or 0 when it does not fit (backward then recomputes it). Shapes only. */
static size_t wino_u_off(const wino *w, size_t B, size_t Lout, size_t cin, size_t cout)
{
    size_t v = B * wino_products(w, Lout) * cin;
    return v + w->a * cout * cin <= B * Lout * w->r * cin ? v : 0;
}

static void sgemm_sel(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N, size_t K,
                      const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    mm_sgemm_using((mm_sgemm_kernel)g_gemm_kernel, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

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
    mm_rng s = *r;   /* a local copy: the state stays in registers */
    for (size_t i = 0; i < n; i++) mask[i] = mm_rng_uniform(&s) >= rate;
    *r = s;
}

static void dgemm_st(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N, size_t K,
                     const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc)
{
    cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* Narrow Conv1D (k cin <= CONV_DIRECT_KC) in float: the product written out
 * as mm_sgemm's fused multiply-add chains (one block, kc <= its 256). */
#define CONV_DIRECT_KC 16
#define T float
#define S _f
#define GEMM sgemm_sel
#define GEMM_ROWCUT_EXACT 1   /* a block of C's rows gets the bits of the whole product */
#define CONV_DIRECT 1
#include "nn/layers_kern.inc"
#undef T
#undef S
#undef GEMM
#undef GEMM_ROWCUT_EXACT
#undef CONV_DIRECT

#define T double
#define S _d
#define GEMM dgemm_st
#define GEMM_ROWCUT_EXACT 0
#define CONV_DIRECT 0
#include "nn/layers_kern.inc"
#undef T
#undef S
#undef GEMM
#undef GEMM_ROWCUT_EXACT
