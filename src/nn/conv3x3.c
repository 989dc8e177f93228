/* conv3x3.c — 3×3 / stride 1 / pad 1 convolution kernels for CNN14.
 *
 * Reference: torch.nn.functional.conv2d(x, w, bias, stride=1, padding=1) on
 * one image; checked against PyTorch through tests/test_cnn14.c.
 * im2col: y[:, rows] = W (cout × 9·cin) · col (9·cin × rows·w) over tiles of
 * whole output rows, so scratch stays bounded for any length.
 * Winograd F(2×2,3×3) (Lavin & Gray 2016): U = G g Gᵀ, V = Bᵀ d B,
 * M = U ⊙ V summed over cin as 16 matrix products, y = Aᵀ M A.
 * The products run on one packed GEMM: A (weights) packed at create time in
 * 12-row panels, B (columns / transformed tiles) written directly in 32-column
 * panels, a 12×32 AVX-512 micro-kernel chosen at run time (portable C
 * otherwise); the Winograd transforms have AVX-512 paths too (x86-64 only).
 * Leaves out: other kernel sizes, strides, batches.
 */
#include "nn/conv3x3.h"

#include "core/cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define MM_X86 1
#else
#define MM_X86 0
#endif
#include <stdint.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define MR 12          /* rows of a packed A panel / micro-tile */
#define NR 32          /* columns of a packed B panel / micro-tile */
#define KC 128         /* k-block: a B panel slice (KC × NR) stays in L1 */
#define ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))

/* Scratch budget per thread (floats) for columns or transformed tiles. */
#define COL_BUDGET ((size_t)1 << 21)
#define TILE_MAX_COLS 2048

struct mm_conv3x3 {
    mm_conv3x3_algo algo;
    size_t cin, cout, mp;   /* mp = cout rounded up to MR */
    size_t k;               /* GEMM depth: 9·cin (im2col) or cin (Winograd) */
    float *a;               /* im2col: packed (mp/MR, k, MR) of W (cout, 9·cin);
                               Winograd: 16 such packings of U[e] (cout, cin) */
    float *bias;            /* (cout) */
};

int mm_conv3x3_algo_parse(const char *name, mm_conv3x3_algo *algo, mm_err *err)
{
    if (name && !strcmp(name, "im2col")) { *algo = MM_CONV3X3_IM2COL; return 0; }
    if (name && !strcmp(name, "winograd")) { *algo = MM_CONV3X3_WINOGRAD; return 0; }
    if (name && !strcmp(name, "auto")) { *algo = MM_CONV3X3_AUTO; return 0; }
    return mm_err_set(err, MM_EINVAL, "conv algorithm '%s': expected im2col, winograd or auto",
                      name ? name : "(null)");
}

const char *mm_conv3x3_algo_name(mm_conv3x3_algo algo)
{
    return algo == MM_CONV3X3_WINOGRAD ? "winograd" : algo == MM_CONV3X3_AUTO ? "auto" : "im2col";
}

/* ---- packed GEMM: C (mp × np, ldc) = A (mp × k) · B (k × np) ------------- */

static void micro_c(size_t kc, const float *a, const float *b, float *c, size_t ldc, int acc)
{
    float t[MR][NR];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) t[r][j] = acc ? c[(size_t)r * ldc + (size_t)j] : 0.0f;
    for (size_t p = 0; p < kc; p++, a += MR, b += NR)
        for (int r = 0; r < MR; r++) {
            float ar = a[r];
            for (int j = 0; j < NR; j++) t[r][j] += ar * b[j];
        }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) c[(size_t)r * ldc + (size_t)j] = t[r][j];
}

/* c[r][0..32) (+)= Σ_p a[p][r] · b[p][0..32): 24 zmm accumulators, B from L1,
 * A broadcast from its packed panel. */
#if MM_X86
__attribute__((target("avx512f")))
static void micro_avx512(size_t kc, const float *a, const float *b, float *c, size_t ldc, int acc)
{
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        c0[r] = acc ? _mm512_loadu_ps(c + (size_t)r * ldc) : _mm512_setzero_ps();
        c1[r] = acc ? _mm512_loadu_ps(c + (size_t)r * ldc + 16) : _mm512_setzero_ps();
    }
    for (size_t p = 0; p < kc; p++, a += MR, b += NR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(c + (size_t)r * ldc, c0[r]);
        _mm512_storeu_ps(c + (size_t)r * ldc + 16, c1[r]);
    }
}
#endif

typedef void (*micro_fn)(size_t, const float *, const float *, float *, size_t, int);

static int use_simd = 1;

int mm_conv3x3_use_simd(int enable)
{
    return __atomic_exchange_n(&use_simd, enable ? 1 : 0, __ATOMIC_ACQ_REL);
}

static int have_avx512(void)
{
#if MM_X86
    if (!__atomic_load_n(&use_simd, __ATOMIC_ACQUIRE)) return 0;
    return mm_cpu_avx512();
#else
    return 0;
#endif
}

static micro_fn pick_micro(void)
{
#if MM_X86
    if (have_avx512()) return micro_avx512;
#endif
    return micro_c;
}

/* Rows [i0, i1) (multiples of MR) of C = A·B; A packed (mp/MR, k, MR), B
 * packed (np/NR, k, NR); C rows start at c (row i0 of C is c[0]). The sum
 * over k runs in the same order whatever the row range. */
static void gemm_packed(const float *a, const float *b, float *c, size_t i0, size_t i1,
                        size_t np, size_t k, size_t ldc)
{
    micro_fn micro = pick_micro();
    for (size_t pc = 0; pc < k; pc += KC) {
        size_t kc = k - pc < KC ? k - pc : KC;
        for (size_t j = 0; j < np; j += NR) {
            const float *bp = b + j * k + pc * NR;
            for (size_t i = i0; i < i1; i += MR)
                micro(kc, a + i * k + pc * MR, bp, c + (i - i0) * ldc + j, ldc, pc > 0);
        }
    }
}

/* Pack W (m × k, row-major, leading dimension ldw) into (mp/MR, k, MR), zero rows past m. */
static void pack_a(const float *w, size_t m, size_t k, size_t ldw, float *dst)
{
    size_t mp = ROUND_UP(m, MR);
    for (size_t i = 0; i < mp; i += MR)
        for (size_t p = 0; p < k; p++)
            for (size_t r = 0; r < MR; r++)
                dst[i * k + p * MR + r] = i + r < m ? w[(i + r) * ldw + p] : 0.0f;
}

/* ---- weights ------------------------------------------------------------ */

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
    if (algo == MM_CONV3X3_AUTO) algo = cin == 1 ? MM_CONV3X3_IM2COL : MM_CONV3X3_WINOGRAD;
    if (algo != MM_CONV3X3_IM2COL && algo != MM_CONV3X3_WINOGRAD)
        return mm_err_set(err, MM_EINVAL, "conv3x3: unknown algorithm %d", (int)algo);
    mm_conv3x3 *c = mm_calloc(1, sizeof *c, err);
    if (!c) return MM_ENOMEM;
    int wino = algo == MM_CONV3X3_WINOGRAD;
    c->algo = algo;
    c->cin = cin;
    c->cout = cout;
    c->mp = ROUND_UP(cout, MR);
    c->k = wino ? cin : 9 * cin;
    c->a = mm_malloc(c->mp * c->k, (wino ? 16 : 1) * sizeof(float), err);
    c->bias = mm_calloc(cout, sizeof(float), err);
    if (!c->a || !c->bias) {
        mm_conv3x3_free(c);
        return MM_ENOMEM;
    }
    if (bias) memcpy(c->bias, bias, cout * sizeof(float));
    if (!wino) {
        pack_a(w, cout, c->k, c->k, c->a);
    } else {
        float *u = mm_malloc(cout * cin, 16 * sizeof(float), err);
        if (!u) {
            mm_conv3x3_free(c);
            return MM_ENOMEM;
        }
        for (size_t o = 0; o < cout; o++)
            for (size_t i = 0; i < cin; i++) {
                float t[16];
                wino_filter(w + (o * cin + i) * 9, t);
                for (int e = 0; e < 16; e++) u[((size_t)e * cout + o) * cin + i] = t[e];
            }
        for (int e = 0; e < 16; e++)
            pack_a(u + (size_t)e * cout * cin, cout, cin, cin, c->a + (size_t)e * c->mp * cin);
        free(u);
    }
    *out = c;
    return 0;
}

void mm_conv3x3_free(mm_conv3x3 *c)
{
    if (!c) return;
    free(c->a);
    free(c->bias);
    free(c);
}

size_t mm_conv3x3_cin(const mm_conv3x3 *c) { return c->cin; }
size_t mm_conv3x3_cout(const mm_conv3x3 *c) { return c->cout; }

/* Split cout into blocks of whole MR panels when there are too few spatial
 * tiles to feed every thread. Returns the number of blocks; block b covers
 * panels [P·b/nb, P·(b+1)/nb). */
static size_t n_cout_blocks(size_t mp, size_t n_tiles, int n_threads)
{
    if (n_threads <= 1 || n_tiles >= 4 * (size_t)n_threads) return 1;
    size_t panels = mp / MR, nb = (size_t)n_threads * 2;
    if (nb > panels) nb = panels;
    return nb ? nb : 1;
}

static void block_rows(size_t mp, size_t b, size_t nb, size_t *i0, size_t *i1)
{
    size_t panels = mp / MR;
    *i0 = panels * b / nb * MR;
    *i1 = panels * (b + 1) / nb * MR;
}

/* ---- im2col ------------------------------------------------------------ */

/* Output rows per tile: whole rows, about COL_BUDGET floats of columns. */
static size_t im2col_rows(const mm_conv3x3 *c, size_t h, size_t w)
{
    size_t cols = COL_BUDGET / (c->k + c->mp);
    if (cols > TILE_MAX_COLS) cols = TILE_MAX_COLS;
    size_t rows = cols / w;
    if (rows < 1) rows = 1;
    if (rows > h) rows = h;
    return rows;
}

/* Packed columns (np/NR, 9·cin, NR) of output rows [r0, r1): column
 * q = (r - r0)·w + x, row (i·9 + ky·3 + kx) holds in[i, r+ky-1, x+kx-1]
 * (zero outside the image and for q past the tile). */
static void im2col_tile(const float *in, size_t cin, size_t h, size_t w, size_t r0, size_t r1,
                        size_t np, float *col)
{
    size_t k = cin * 9;
    for (size_t i = 0; i < cin; i++) {
        const float *img = in + i * h * w;
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                size_t row = i * 9 + (size_t)(ky * 3 + kx);
                float *dst = col + row * NR;      /* lane q at dst[(q/NR)·k·NR + q%NR] */
                size_t q = 0;
                for (size_t r = r0; r < r1; r++) {
                    long sr = (long)r + ky - 1;
                    const float *src = sr >= 0 && sr < (long)h ? img + (size_t)sr * w : NULL;
                    for (size_t x = 0; x < w; x++, q++) {
                        long sx = (long)x + kx - 1;
                        dst[(q / NR) * k * NR + q % NR] =
                            src && sx >= 0 && sx < (long)w ? src[sx] : 0.0f;
                    }
                }
                for (; q < np; q++) dst[(q / NR) * k * NR + q % NR] = 0.0f;
            }
    }
}

static void forward_im2col(const mm_conv3x3 *c, const float *x, size_t h, size_t w, float *y,
                           int relu, int n_threads, float *work)
{
    size_t hw = h * w, rows = im2col_rows(c, h, w);
    size_t n_tiles = (h + rows - 1) / rows;
    size_t n_cb = n_cout_blocks(c->mp, n_tiles, n_threads);
    size_t npmax = ROUND_UP(rows * w, NR);
    size_t per_thread = (c->k + c->mp) * npmax;
    long n_items = (long)(n_tiles * n_cb);
#pragma omp parallel num_threads(n_threads)
    {
        float *col = work + (size_t)omp_get_thread_num() * per_thread;
        float *cb = col + c->k * npmax;   /* GEMM output rows of the block */
        size_t last_tile = (size_t)-1;
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < n_items; it++) {
            size_t t = (size_t)it / n_cb, b = (size_t)it % n_cb, i0, i1;
            size_t r0 = t * rows, r1 = r0 + rows < h ? r0 + rows : h, n = (r1 - r0) * w;
            size_t np = ROUND_UP(n, NR);
            if (t != last_tile) {
                im2col_tile(x, c->cin, h, w, r0, r1, np, col);
                last_tile = t;
            }
            block_rows(c->mp, b, n_cb, &i0, &i1);
            gemm_packed(c->a, col, cb, i0, i1, np, c->k, np);
            size_t o1 = i1 < c->cout ? i1 : c->cout;
            for (size_t o = i0; o < o1; o++) {
                const float *s = cb + (o - i0) * np;
                float bo = c->bias[o], *d = y + o * hw + r0 * w;
                if (relu)
                    for (size_t j = 0; j < n; j++) { float v = s[j] + bo; d[j] = v > 0.0f ? v : 0.0f; }
                else
                    for (size_t j = 0; j < n; j++) d[j] = s[j] + bo;
            }
        }
    }
}

/* ---- Winograd F(2×2, 3×3) --------------------------------------------- */

/* Tiles per chunk (a multiple of NR) within the scratch budget. */
static size_t wino_chunk(const mm_conv3x3 *c, size_t n_tiles_total)
{
    size_t per = 16 * (c->cin + c->mp);
    size_t t = (COL_BUDGET * 2) / per / NR * NR;
    if (t < NR) t = NR;
    if (t > 16 * NR) t = 16 * NR;
    size_t all = ROUND_UP(n_tiles_total, NR);
    return t < all ? t : all;
}

/* Floats of the zero-padded input rows one chunk of `chunk` tiles needs:
 * cin × rows × (2·tw + 2), rows = 2·(tile rows spanned) + 2. */
static size_t wino_pad_floats(size_t cin, size_t chunk, size_t tw)
{
    size_t tile_rows = chunk / tw + 2;
    return cin * (2 * tile_rows + 2) * (2 * tw + 2);
}

/* Bᵀ d B for 16 lanes (tiles) of one channel, d gathered from the padded
 * rows: lane l's tile starts at img[off[l]]. When the 16 tiles are
 * consecutive in one tile row (uniform), each 4×4 block row is read with
 * four contiguous loads and even/odd permutes; otherwise with gathers.
 * Lanes >= nl are zero. Results go to dst[e·ld + l], e = 4·a + b. */
#if MM_X86
__attribute__((target("avx512f")))
static void wino_input16_avx512(const float *img, const int32_t *off, int uniform, size_t nl,
                                size_t wp, float *dst, size_t ld)
{
    __m512 d[4][4];
    __mmask16 live = nl >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nl) - 1u);
    if (uniform) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                               26, 28, 30);
        const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25,
                                              27, 29, 31);
        for (int a = 0; a < 4; a++) {
            const float *r = img + off[0] + (size_t)a * wp;
            __m512 x0 = _mm512_loadu_ps(r), x1 = _mm512_loadu_ps(r + 16);
            __m512 y0 = _mm512_loadu_ps(r + 2), y1 = _mm512_loadu_ps(r + 18);
            d[a][0] = _mm512_permutex2var_ps(x0, even, x1);
            d[a][1] = _mm512_permutex2var_ps(x0, odd, x1);
            d[a][2] = _mm512_permutex2var_ps(y0, even, y1);
            d[a][3] = _mm512_permutex2var_ps(y0, odd, y1);
        }
    } else {
        __m512i base = _mm512_loadu_si512(off);
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32((int)((size_t)a * wp) + b));
                d[a][b] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, idx, img, 4);
            }
    }
    for (int b = 0; b < 4; b++) {
        __m512 t0 = _mm512_sub_ps(d[0][b], d[2][b]), t1 = _mm512_add_ps(d[1][b], d[2][b]);
        __m512 t2 = _mm512_sub_ps(d[2][b], d[1][b]), t3 = _mm512_sub_ps(d[1][b], d[3][b]);
        d[0][b] = t0; d[1][b] = t1; d[2][b] = t2; d[3][b] = t3;
    }
    for (int a = 0; a < 4; a++) {
        __m512 v0 = _mm512_sub_ps(d[a][0], d[a][2]), v1 = _mm512_add_ps(d[a][1], d[a][2]);
        __m512 v2 = _mm512_sub_ps(d[a][2], d[a][1]), v3 = _mm512_sub_ps(d[a][1], d[a][3]);
        _mm512_storeu_ps(dst + (size_t)(a * 4 + 0) * ld, _mm512_maskz_mov_ps(live, v0));
        _mm512_storeu_ps(dst + (size_t)(a * 4 + 1) * ld, _mm512_maskz_mov_ps(live, v1));
        _mm512_storeu_ps(dst + (size_t)(a * 4 + 2) * ld, _mm512_maskz_mov_ps(live, v2));
        _mm512_storeu_ps(dst + (size_t)(a * 4 + 3) * ld, _mm512_maskz_mov_ps(live, v3));
    }
}
#endif

/* V[e] packed (np/NR, cin, NR) for tiles p0..p0+n (zero for q >= n up to np);
 * tile p = (ty, tx) covers rows 2·ty-1 .. 2·ty+2 and columns 2·tx-1 .. 2·tx+2
 * of the zero-padded image. Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
 * The input rows the chunk spans are first copied with their zero border
 * into pad (so the gathers need no bounds checks), then each panel of NR
 * tiles is transformed with lanes innermost, so that the arithmetic and the
 * stores vectorise. */
static void wino_input(const float *x, size_t cin, size_t h, size_t w, size_t tw, size_t p0,
                       size_t n, size_t np, float *v, float *pad)
{
    size_t ld = cin * np;   /* distance between the 16 matrices */
    size_t ty0 = p0 / tw, ty1 = (p0 + n - 1) / tw;
    size_t rows = 2 * (ty1 - ty0 + 1) + 2, wp = 2 * tw + 2;
    /* pad[i][r][c] = x[i][2·ty0 - 1 + r][c - 1], zero outside the image. */
    for (size_t i = 0; i < cin; i++) {
        float *dst = pad + i * rows * wp;
        for (size_t r = 0; r < rows; r++) {
            long yy = 2 * (long)ty0 - 1 + (long)r;
            float *d = dst + r * wp;
            memset(d, 0, wp * sizeof *d);
            if (yy < 0 || yy >= (long)h) continue;
            memcpy(d + 1, x + (i * h + (size_t)yy) * w, w * sizeof *d);
        }
    }
    int simd = have_avx512();
    (void)simd;
    for (size_t j = 0; j < np; j += NR) {
        size_t off[NR];     /* top-left corner of each lane's 4×4 tile in pad */
        size_t nl = n > j ? (n - j < NR ? n - j : NR) : 0;
        for (size_t l = 0; l < NR; l++) {
            size_t p = p0 + j + (l < nl ? l : 0);
            off[l] = 2 * (p / tw - ty0) * wp + 2 * (p % tw);
        }
#if MM_X86
        if (simd) {
            /* Two halves of 16 lanes; uniform = 16 live tiles, consecutive in one row. */
            int32_t o32[NR];
            int uni[2];
            for (size_t l = 0; l < NR; l++) o32[l] = (int32_t)off[l];
            for (int hh = 0; hh < 2; hh++) {
                uni[hh] = nl >= (size_t)(16 * hh + 16);
                for (size_t l = 1; uni[hh] && l < 16; l++)
                    if (off[16 * hh + l] != off[16 * hh] + 2 * l) uni[hh] = 0;
            }
            for (size_t i = 0; i < cin; i++)
                for (int hh = 0; hh < 2; hh++) {
                    size_t live = nl > (size_t)(16 * hh) ? nl - (size_t)(16 * hh) : 0;
                    wino_input16_avx512(pad + i * rows * wp, o32 + 16 * hh, uni[hh],
                                        live > 16 ? 16 : live, wp,
                                        v + j * cin + i * NR + (size_t)(16 * hh), ld);
                }
            continue;
        }
#endif
        for (size_t i = 0; i < cin; i++) {
            const float *img = pad + i * rows * wp;
            float d[4][4][NR];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++)
                    for (size_t l = 0; l < NR; l++)
                        d[a][b][l] = img[off[l] + (size_t)a * wp + (size_t)b];
            if (nl < NR)
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++)
                        for (size_t l = nl; l < NR; l++) d[a][b][l] = 0.0f;
            float *dst = v + j * cin + i * NR;
            for (int a = 0; a < 4; a++) {
                float t0[NR], t1[NR], t2[NR], t3[NR];
                /* row a of Bᵀ d, then times B */
                for (size_t l = 0; l < NR; l++) {
                    float d0, d1, d2, d3;
#define ROW(k) (a == 0 ? d[0][k][l] - d[2][k][l] : a == 1 ? d[1][k][l] + d[2][k][l] : \
                a == 2 ? d[2][k][l] - d[1][k][l] : d[1][k][l] - d[3][k][l])
                    d0 = ROW(0); d1 = ROW(1); d2 = ROW(2); d3 = ROW(3);
#undef ROW
                    t0[l] = d0 - d2;
                    t1[l] = d1 + d2;
                    t2[l] = d2 - d1;
                    t3[l] = d1 - d3;
                }
                memcpy(dst + (size_t)(a * 4 + 0) * ld, t0, sizeof t0);
                memcpy(dst + (size_t)(a * 4 + 1) * ld, t1, sizeof t1);
                memcpy(dst + (size_t)(a * 4 + 2) * ld, t2, sizeof t2);
                memcpy(dst + (size_t)(a * 4 + 3) * ld, t3, sizeof t3);
            }
        }
    }
}

/* Aᵀ M A + bias (+ReLU) for 16 lanes of one output channel; s points at
 * lane 0 of matrix e = 0 (matrices ld apart). Uniform: the 16 tiles are
 * consecutive in one tile row starting at image (yy, xx), so each output row
 * is written as 32 contiguous floats (cropped at the image's right edge and
 * bottom); otherwise lane by lane. */
#if MM_X86
__attribute__((target("avx512f")))
static void wino_output16_avx512(const float *s, size_t ld, float bias, int relu, int uniform,
                                 size_t nl, const size_t *yy, const size_t *xx, size_t h,
                                 size_t w, float *img)
{
    __m512 m[4][4];
    for (int e = 0; e < 16; e++) m[e / 4][e % 4] = _mm512_loadu_ps(s + (size_t)e * ld);
    __m512 t[2][4];
    for (int c = 0; c < 4; c++) {
        t[0][c] = _mm512_add_ps(_mm512_add_ps(m[0][c], m[1][c]), m[2][c]);
        t[1][c] = _mm512_sub_ps(_mm512_sub_ps(m[1][c], m[2][c]), m[3][c]);
    }
    __m512 b = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
    __m512 r[2][2];
    for (int a = 0; a < 2; a++) {
        r[a][0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t[a][0], t[a][1]), t[a][2]), b);
        r[a][1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t[a][1], t[a][2]), t[a][3]), b);
        if (relu) {
            r[a][0] = _mm512_max_ps(r[a][0], zero);
            r[a][1] = _mm512_max_ps(r[a][1], zero);
        }
    }
    if (uniform) {
        const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                             15, 31);
        size_t ncol = w - xx[0] < 32 ? w - xx[0] : 32;    /* columns inside the image */
        __mmask16 k0 = ncol >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << ncol) - 1u);
        __mmask16 k1 = ncol >= 32 ? (__mmask16)0xffff
                                  : ncol > 16 ? (__mmask16)((1u << (ncol - 16)) - 1u) : 0;
        for (int a = 0; a < 2; a++) {
            if (yy[0] + (size_t)a >= h) continue;
            float *row = img + (yy[0] + (size_t)a) * w + xx[0];
            _mm512_mask_storeu_ps(row, k0, _mm512_permutex2var_ps(r[a][0], lo, r[a][1]));
            _mm512_mask_storeu_ps(row + 16, k1, _mm512_permutex2var_ps(r[a][0], hi, r[a][1]));
        }
        return;
    }
    float o[2][2][16];
    for (int a = 0; a < 2; a++) {
        _mm512_storeu_ps(o[a][0], r[a][0]);
        _mm512_storeu_ps(o[a][1], r[a][1]);
    }
    for (size_t l = 0; l < nl; l++)
        for (int a = 0; a < 2; a++) {
            if (yy[l] + (size_t)a >= h) continue;
            float *row = img + (yy[l] + (size_t)a) * w + xx[l];
            row[0] = o[a][0][l];
            if (xx[l] + 1 < w) row[1] = o[a][1][l];
        }
}
#endif

/* y tile = Aᵀ M A + bias, Aᵀ = [1 1 1 0; 0 1 -1 -1], ReLU, cropped at the
 * image edge. m: 16 matrices (rows i0..i1 of cout, np columns), ld apart.
 * Lanes (tiles) innermost as in wino_input. */
static void wino_output(const float *m, size_t i0, size_t i1, size_t cout, size_t n, size_t np,
                        size_t p0, size_t tw, size_t h, size_t w, const float *bias, int relu,
                        float *y)
{
    size_t ld = (i1 - i0) * np, o1 = i1 < cout ? i1 : cout;
#if MM_X86
    if (have_avx512()) {
        /* Output positions of the chunk's tiles, and which 16-lane groups are
         * uniform (n <= 16·NR tiles per chunk, see wino_chunk). */
        size_t yy[16 * NR], xx[16 * NR];
        int uni[NR];
        for (size_t q = 0; q < n; q++) {
            yy[q] = 2 * ((p0 + q) / tw);
            xx[q] = 2 * ((p0 + q) % tw);
        }
        for (size_t j = 0; j < n; j += 16) {
            int u = n - j >= 16;
            for (size_t l = 1; u && l < 16; l++)
                if (yy[j + l] != yy[j] || xx[j + l] != xx[j] + 2 * l) u = 0;
            uni[j / 16] = u;
        }
        for (size_t o = i0; o < o1; o++)
            for (size_t j = 0; j < n; j += 16)
                wino_output16_avx512(m + (o - i0) * np + j, ld, bias[o], relu, uni[j / 16],
                                     n - j < 16 ? n - j : 16, yy + j, xx + j, h, w, y + o * h * w);
        return;
    }
#endif
    for (size_t o = i0; o < o1; o++) {
        float b = bias[o];
        float *img = y + o * h * w;
        for (size_t j = 0; j < n; j += NR) {
            const float *s = m + (o - i0) * np + j;
            float r[2][2][NR];
            for (size_t l = 0; l < NR; l++) {
                float t[2][4];
                for (int c2 = 0; c2 < 4; c2++) {
                    float m0 = s[(size_t)(0 * 4 + c2) * ld + l], m1 = s[(size_t)(1 * 4 + c2) * ld + l];
                    float m2 = s[(size_t)(2 * 4 + c2) * ld + l], m3 = s[(size_t)(3 * 4 + c2) * ld + l];
                    t[0][c2] = m0 + m1 + m2;
                    t[1][c2] = m1 - m2 - m3;
                }
                for (int a = 0; a < 2; a++) {
                    float v0 = t[a][0] + t[a][1] + t[a][2] + b;
                    float v1 = t[a][1] - t[a][2] - t[a][3] + b;
                    if (relu) {
                        v0 = v0 > 0.0f ? v0 : 0.0f;
                        v1 = v1 > 0.0f ? v1 : 0.0f;
                    }
                    r[a][0][l] = v0;
                    r[a][1][l] = v1;
                }
            }
            size_t nl = n - j < NR ? n - j : NR;
            for (size_t l = 0; l < nl; l++) {
                size_t p = p0 + j + l, yy = 2 * (p / tw), xx = 2 * (p % tw);
                for (int a = 0; a < 2; a++) {
                    if (yy + (size_t)a >= h) continue;
                    float *row = img + (yy + (size_t)a) * w + xx;
                    row[0] = r[a][0][l];
                    if (xx + 1 < w) row[1] = r[a][1][l];
                }
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
    size_t n_cb = n_cout_blocks(c->mp, n_chunks, n_threads);
    size_t per_thread = 16 * (c->cin + c->mp) * chunk + wino_pad_floats(c->cin, chunk, tw);
    long n_items = (long)(n_chunks * n_cb);
#pragma omp parallel num_threads(n_threads)
    {
        float *v = work + (size_t)omp_get_thread_num() * per_thread;
        float *m = v + 16 * c->cin * chunk;
        float *pad = m + 16 * c->mp * chunk;
        size_t last = (size_t)-1;
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < n_items; it++) {
            size_t ch = (size_t)it / n_cb, b = (size_t)it % n_cb, i0, i1;
            size_t p0 = ch * chunk, n = p0 + chunk < n_tiles ? chunk : n_tiles - p0;
            size_t np = ROUND_UP(n, NR);
            if (ch != last) {
                wino_input(x, c->cin, h, w, tw, p0, n, np, v, pad);
                last = ch;
            }
            block_rows(c->mp, b, n_cb, &i0, &i1);
            size_t rows = i1 - i0;
            for (int e = 0; e < 16; e++)
                gemm_packed(c->a + (size_t)e * c->mp * c->cin, v + (size_t)e * c->cin * np,
                            m + (size_t)e * rows * np, i0, i1, np, c->cin, np);
            wino_output(m, i0, i1, c->cout, n, np, p0, tw, h, w, c->bias, relu, y);
        }
    }
}

size_t mm_conv3x3_workspace(const mm_conv3x3 *c, size_t h, size_t w, int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    if (c->algo == MM_CONV3X3_WINOGRAD) {
        size_t tw = (w + 1) / 2, chunk = wino_chunk(c, ((h + 1) / 2) * tw);
        return (size_t)n_threads *
               (16 * (c->cin + c->mp) * chunk + wino_pad_floats(c->cin, chunk, tw));
    }
    return (size_t)n_threads * (c->k + c->mp) * ROUND_UP(im2col_rows(c, h, w) * w, NR);
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
