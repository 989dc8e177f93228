/* conv3x3.c — 3×3 / stride 1 / pad 1 convolution kernels for CNN14.
 *
 * Reference: torch.nn.functional.conv2d(x, w, bias, stride=1, padding=1)
 * on one image; checked against PyTorch through tests/test_cnn14.c.
 * im2col: out[:, rows] = W (cout × 9·cin) · col (9·cin × rows·w), tiles of
 * whole output rows so the column buffer stays bounded for any length.
 * Winograd F(2×2,3×3) (Lavin & Gray 2016): U = G g Gᵀ, V = Bᵀ d B,
 * M = U ⊙ V summed over cin as 16 sgemms, y = Aᵀ M A.
 * Leaves out: other kernel sizes, strides, batches.
 */
#include "nn/conv3x3.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct mm_conv3x3 {
    mm_conv3x3_algo algo;
    size_t cin, cout;
    float *w;       /* im2col: (cout, cin·9); Winograd: (16, cout, cin) = U */
    float *bias;    /* (cout) */
};

/* Column-buffer budget per thread (floats) for im2col tiles and for the
 * transformed tiles of Winograd. */
#define COL_BUDGET ((size_t)1 << 21)
#define TILE_MAX_COLS 2048

int mm_conv3x3_algo_parse(const char *name, mm_conv3x3_algo *algo, mm_err *err)
{
    if (name && !strcmp(name, "im2col")) { *algo = MM_CONV3X3_IM2COL; return 0; }
    if (name && !strcmp(name, "winograd")) { *algo = MM_CONV3X3_WINOGRAD; return 0; }
    return mm_err_set(err, MM_EINVAL, "conv algorithm '%s': expected im2col or winograd",
                      name ? name : "(null)");
}

const char *mm_conv3x3_algo_name(mm_conv3x3_algo algo)
{
    return algo == MM_CONV3X3_WINOGRAD ? "winograd" : "im2col";
}

/* U = G g Gᵀ for one 3×3 filter g; G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]. */
static void wino_filter(const float *g, float u[16])
{
    double t[4][3];
    for (int j = 0; j < 3; j++) {
        double g0 = g[0 * 3 + j], g1 = g[1 * 3 + j], g2 = g[2 * 3 + j];
        t[0][j] = g0;
        t[1][j] = 0.5 * (g0 + g1 + g2);
        t[2][j] = 0.5 * (g0 - g1 + g2);
        t[3][j] = g2;
    }
    for (int i = 0; i < 4; i++) {
        double a = t[i][0], b = t[i][1], c = t[i][2];
        u[i * 4 + 0] = (float)a;
        u[i * 4 + 1] = (float)(0.5 * (a + b + c));
        u[i * 4 + 2] = (float)(0.5 * (a - b + c));
        u[i * 4 + 3] = (float)c;
    }
}

int mm_conv3x3_create(const float *w, const float *bias, size_t cin, size_t cout,
                      mm_conv3x3_algo algo, mm_conv3x3 **out, mm_err *err)
{
    if (!w || cin == 0 || cout == 0)
        return mm_err_set(err, MM_EINVAL, "conv3x3: empty weights (cin %zu, cout %zu)", cin, cout);
    if (algo != MM_CONV3X3_IM2COL && algo != MM_CONV3X3_WINOGRAD)
        return mm_err_set(err, MM_EINVAL, "conv3x3: unknown algorithm %d", (int)algo);
    mm_conv3x3 *c = mm_calloc(1, sizeof *c, err);
    if (!c) return MM_ENOMEM;
    c->algo = algo;
    c->cin = cin;
    c->cout = cout;
    c->w = mm_malloc(cout * cin, algo == MM_CONV3X3_WINOGRAD ? 16 * sizeof(float)
                                                             : 9 * sizeof(float), err);
    c->bias = mm_calloc(cout, sizeof(float), err);
    if (!c->w || !c->bias) {
        mm_conv3x3_free(c);
        return MM_ENOMEM;
    }
    if (bias) memcpy(c->bias, bias, cout * sizeof(float));
    if (algo == MM_CONV3X3_IM2COL) {
        memcpy(c->w, w, cout * cin * 9 * sizeof(float));
    } else {
        for (size_t o = 0; o < cout; o++)
            for (size_t i = 0; i < cin; i++) {
                float u[16];
                wino_filter(w + (o * cin + i) * 9, u);
                for (int e = 0; e < 16; e++) c->w[((size_t)e * cout + o) * cin + i] = u[e];
            }
    }
    *out = c;
    return 0;
}

void mm_conv3x3_free(mm_conv3x3 *c)
{
    if (!c) return;
    free(c->w);
    free(c->bias);
    free(c);
}

size_t mm_conv3x3_cin(const mm_conv3x3 *c) { return c->cin; }
size_t mm_conv3x3_cout(const mm_conv3x3 *c) { return c->cout; }

/* ---- im2col ------------------------------------------------------------ */

/* Output rows per tile: whole rows, about COL_BUDGET floats of columns. */
static size_t im2col_rows(const mm_conv3x3 *c, size_t h, size_t w)
{
    size_t k = c->cin * 9;
    size_t cols = COL_BUDGET / k;
    if (cols > TILE_MAX_COLS) cols = TILE_MAX_COLS;
    size_t rows = cols / w;
    if (rows < 1) rows = 1;
    if (rows > h) rows = h;
    return rows;
}

/* col (cin·9, (r1-r0)·w): col[(i·9 + ky·3 + kx), (r-r0)·w + x] = in[i, r+ky-1, x+kx-1]. */
static void im2col_tile(const float *in, size_t cin, size_t h, size_t w, size_t r0, size_t r1,
                        float *col)
{
    size_t n = (r1 - r0) * w;
    for (size_t i = 0; i < cin; i++) {
        const float *img = in + i * h * w;
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                float *dst = col + (i * 9 + (size_t)(ky * 3 + kx)) * n;
                for (size_t r = r0; r < r1; r++, dst += w) {
                    long sr = (long)r + ky - 1;
                    if (sr < 0 || sr >= (long)h) {
                        memset(dst, 0, w * sizeof(float));
                        continue;
                    }
                    const float *src = img + (size_t)sr * w;
                    /* dst[x] = src[x + kx - 1], zero outside. */
                    if (kx == 1) {
                        memcpy(dst, src, w * sizeof(float));
                    } else if (kx == 0) {
                        dst[0] = 0.0f;
                        memcpy(dst + 1, src, (w - 1) * sizeof(float));
                    } else {
                        memcpy(dst, src + 1, (w - 1) * sizeof(float));
                        dst[w - 1] = 0.0f;
                    }
                }
            }
    }
}

static void bias_act(float *y, size_t ld, size_t rows, size_t n, const float *bias, int relu)
{
    for (size_t o = 0; o < rows; o++) {
        float b = bias[o], *p = y + o * ld;
        if (relu)
            for (size_t j = 0; j < n; j++) { float v = p[j] + b; p[j] = v > 0.0f ? v : 0.0f; }
        else
            for (size_t j = 0; j < n; j++) p[j] += b;
    }
}

/* Split cout into blocks when there are too few spatial tiles to feed every
 * thread; a block is a multiple of 16 rows. */
static size_t n_cout_blocks(size_t cout, size_t n_tiles, int n_threads)
{
    if (n_threads <= 1 || n_tiles >= 4 * (size_t)n_threads) return 1;
    size_t nb = (size_t)n_threads * 2;
    while (nb > 1 && cout / nb < 16) nb--;
    return nb;
}

static void forward_im2col(const mm_conv3x3 *c, const float *x, size_t h, size_t w, float *y,
                           int relu, int n_threads, float *work)
{
    size_t k = c->cin * 9, hw = h * w;
    size_t rows = im2col_rows(c, h, w);
    size_t n_tiles = (h + rows - 1) / rows;
    size_t n_cb = n_cout_blocks(c->cout, n_tiles, n_threads);
    size_t per_thread = k * rows * w;
    long n_items = (long)(n_tiles * n_cb);
#pragma omp parallel num_threads(n_threads)
    {
        openblas_set_num_threads(1);
        float *col = work + (size_t)omp_get_thread_num() * per_thread;
        size_t last_tile = (size_t)-1;
#pragma omp for schedule(static)
        for (long it = 0; it < n_items; it++) {
            size_t t = (size_t)it / n_cb, b = (size_t)it % n_cb;
            size_t r0 = t * rows, r1 = r0 + rows < h ? r0 + rows : h, n = (r1 - r0) * w;
            if (t != last_tile) {
                im2col_tile(x, c->cin, h, w, r0, r1, col);
                last_tile = t;
            }
            size_t o0 = c->cout * b / n_cb, o1 = c->cout * (b + 1) / n_cb;
            float *yt = y + o0 * hw + r0 * w;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(o1 - o0), (int)n, (int)k,
                        1.0f, c->w + o0 * k, (int)k, col, (int)n, 0.0f, yt, (int)hw);
            bias_act(yt, hw, o1 - o0, n, c->bias + o0, relu);
        }
    }
}

/* ---- Winograd F(2×2, 3×3) --------------------------------------------- */

/* Tiles per chunk: 16·(cin + cout)·tiles floats within the budget. */
static size_t wino_chunk(const mm_conv3x3 *c, size_t n_tiles_total)
{
    size_t per = 16 * (c->cin + c->cout);
    size_t t = (COL_BUDGET * 2) / per;
    if (t < 16) t = 16;
    if (t > 512) t = 512;
    if (t > n_tiles_total) t = n_tiles_total;
    return t;
}

/* V[e][i][p] = (Bᵀ d B)[e] for input tiles p0..p0+np of channel i; tile p at
 * (2·ty - 1, 2·tx - 1) in the zero-padded image. Bᵀ = [1 0 -1 0; 0 1 1 0;
 * 0 -1 1 0; 0 1 0 -1]. */
static void wino_input(const float *x, size_t cin, size_t h, size_t w, size_t tw, size_t p0,
                       size_t np, float *v)
{
    size_t ld = cin * np;   /* stride between the 16 matrices */
    for (size_t i = 0; i < cin; i++) {
        const float *img = x + i * h * w;
        for (size_t q = 0; q < np; q++) {
            size_t p = p0 + q, ty = p / tw, tx = p % tw;
            long y0 = 2 * (long)ty - 1, x0 = 2 * (long)tx - 1;
            float d[4][4];
            if (y0 >= 0 && x0 >= 0 && y0 + 4 <= (long)h && x0 + 4 <= (long)w) {
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) d[a][b] = img[(size_t)(y0 + a) * w + (size_t)(x0 + b)];
            } else {
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) {
                        long yy = y0 + a, xx = x0 + b;
                        d[a][b] = (yy >= 0 && yy < (long)h && xx >= 0 && xx < (long)w)
                                      ? img[(size_t)yy * w + (size_t)xx] : 0.0f;
                    }
            }
            float t[4][4];
            for (int b = 0; b < 4; b++) {
                t[0][b] = d[0][b] - d[2][b];
                t[1][b] = d[1][b] + d[2][b];
                t[2][b] = d[2][b] - d[1][b];
                t[3][b] = d[1][b] - d[3][b];
            }
            float *dst = v + i * np + q;
            for (int a = 0; a < 4; a++) {
                dst[(size_t)(a * 4 + 0) * ld] = t[a][0] - t[a][2];
                dst[(size_t)(a * 4 + 1) * ld] = t[a][1] + t[a][2];
                dst[(size_t)(a * 4 + 2) * ld] = t[a][2] - t[a][1];
                dst[(size_t)(a * 4 + 3) * ld] = t[a][1] - t[a][3];
            }
        }
    }
}

/* y tile = Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 -1 -1], plus bias, ReLU, cropped. */
static void wino_output(const float *m, size_t o0, size_t o1, size_t np, size_t p0, size_t tw,
                        size_t h, size_t w, const float *bias, int relu, float *y)
{
    size_t cout_blk = o1 - o0, ld = cout_blk * np;
    for (size_t o = 0; o < cout_blk; o++) {
        float b = bias[o0 + o];
        float *img = y + (o0 + o) * h * w;
        for (size_t q = 0; q < np; q++) {
            const float *s = m + o * np + q;
            float mm[4][4];
            for (int e = 0; e < 16; e++) mm[e / 4][e % 4] = s[(size_t)e * ld];
            float t[2][4];
            for (int b2 = 0; b2 < 4; b2++) {
                t[0][b2] = mm[0][b2] + mm[1][b2] + mm[2][b2];
                t[1][b2] = mm[1][b2] - mm[2][b2] - mm[3][b2];
            }
            float r[2][2];
            for (int a = 0; a < 2; a++) {
                r[a][0] = t[a][0] + t[a][1] + t[a][2] + b;
                r[a][1] = t[a][1] - t[a][2] - t[a][3] + b;
            }
            size_t p = p0 + q, yy = 2 * (p / tw), xx = 2 * (p % tw);
            for (int a = 0; a < 2; a++)
                for (int c2 = 0; c2 < 2; c2++) {
                    if (yy + (size_t)a >= h || xx + (size_t)c2 >= w) continue;
                    float v = r[a][c2];
                    if (relu && v < 0.0f) v = 0.0f;
                    img[(yy + (size_t)a) * w + xx + (size_t)c2] = v;
                }
        }
    }
}

static void forward_winograd(const mm_conv3x3 *c, const float *x, size_t h, size_t w, float *y,
                             int relu, int n_threads, float *work)
{
    size_t th = (h + 1) / 2, tw = (w + 1) / 2, n_tiles = th * tw;
    size_t chunk = wino_chunk(c, n_tiles);
    size_t n_chunks = (n_tiles + chunk - 1) / chunk;
    size_t n_cb = n_cout_blocks(c->cout, n_chunks, n_threads);
    size_t per_thread = 16 * (c->cin + c->cout) * chunk;
    long n_items = (long)(n_chunks * n_cb);
#pragma omp parallel num_threads(n_threads)
    {
        openblas_set_num_threads(1);
        float *v = work + (size_t)omp_get_thread_num() * per_thread;
        float *m = v + 16 * c->cin * chunk;
        size_t last = (size_t)-1;
#pragma omp for schedule(static)
        for (long it = 0; it < n_items; it++) {
            size_t ch = (size_t)it / n_cb, b = (size_t)it % n_cb;
            size_t p0 = ch * chunk, np = p0 + chunk < n_tiles ? chunk : n_tiles - p0;
            if (ch != last) {
                wino_input(x, c->cin, h, w, tw, p0, np, v);
                last = ch;
            }
            size_t o0 = c->cout * b / n_cb, o1 = c->cout * (b + 1) / n_cb, nb = o1 - o0;
            for (int e = 0; e < 16; e++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)np,
                            (int)c->cin, 1.0f, c->w + ((size_t)e * c->cout + o0) * c->cin,
                            (int)c->cin, v + (size_t)e * c->cin * np, (int)np, 0.0f,
                            m + (size_t)e * nb * np, (int)np);
            wino_output(m, o0, o1, np, p0, tw, h, w, c->bias, relu, y);
        }
    }
}

size_t mm_conv3x3_workspace(const mm_conv3x3 *c, size_t h, size_t w, int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    if (c->algo == MM_CONV3X3_WINOGRAD) {
        size_t chunk = wino_chunk(c, ((h + 1) / 2) * ((w + 1) / 2));
        return (size_t)n_threads * 16 * (c->cin + c->cout) * chunk;
    }
    return (size_t)n_threads * c->cin * 9 * im2col_rows(c, h, w) * w;
}

void mm_conv3x3_forward(const mm_conv3x3 *c, const float *x, size_t h, size_t w, float *y,
                        int relu, int n_threads, float *work)
{
    if (n_threads < 1) n_threads = 1;
    if (c->algo == MM_CONV3X3_WINOGRAD)
        forward_winograd(c, x, h, w, y, relu, n_threads, work);
    else
        forward_im2col(c, x, h, w, y, relu, n_threads, work);
}
