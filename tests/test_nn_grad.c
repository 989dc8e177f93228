/* test_nn_grad.c — every layer's backward kernel against central finite
 * differences, in double precision (the _d instantiation of the same kernel
 * source the engine runs in float).
 *
 * Method: a random projection u turns a layer's output into a scalar
 * f = sum(u * y); the analytic gradient (backward given dy = u) is compared
 * with (f(p + h) - f(p - h)) / 2h for every input and parameter, h = 1e-6.
 * Metric: max |analytic - numeric| / max(1, max |numeric|). Tolerance 1e-6:
 * in double the truncation error is O(h^2 f''') ~ 1e-12 and rounding
 * ~ 1e-16 / h = 1e-10, so 1e-6 fails only on a wrong formula. */
#include "testutil.h"
#include "nn/layers.h"
#include "nn/sgemm.h"
#include "core/rng.h"

#define H 1e-6
#define TOL 1e-6

static mm_rng rng;

static void fill(double *a, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) a[i] = (2 * mm_rng_uniform(&rng) - 1) * scale;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* A forward pass producing y from the current contents of the buffers it closes over. */
typedef struct probe {
    void (*fwd)(struct probe *p, double *y);
    size_t ny;
    const double *u;
    void *ctx;
} probe;

static double f_of(probe *p, double *y) { p->fwd(p, y); return dot(y, p->u, p->ny); }

/* Compare analytic gradient g (n) of f w.r.t. the n values of v. */
static double check(const char *what, probe *p, double *v, const double *g, size_t n)
{
    double *y = malloc(p->ny * sizeof *y);
    double maxd = 0, maxn = 1;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + H; double fp = f_of(p, y);
        v[i] = keep - H; double fm = f_of(p, y);
        v[i] = keep;
        double num = (fp - fm) / (2 * H);
        if (fabs(num) > maxn) maxn = fabs(num);
        double d = fabs(num - g[i]);
        if (d > maxd) maxd = d;
    }
    free(y);
    double rel = maxd / maxn;
    printf("  %-28s max rel error %.3g\n", what, rel);
    assert_true(rel < TOL);
    return rel;
}

/* ---- dense ---- */
typedef struct { size_t R, in, out; double *x, *W, *b; } dense_ctx;
static void dense_fwd(probe *p, double *y)
{
    dense_ctx *c = p->ctx;
    mm_nn_dense_forward_d(c->R, c->in, c->out, c->x, c->W, c->b, y);
}

static void test_dense(void **st)
{
    dense_ctx c = {.R = 5, .in = 4, .out = 3};
    double x[20], W[12], b[3], u[15], dW[12], db[3], dx[20];
    fill(x, 20, 1); fill(W, 12, 1); fill(b, 3, 1); fill(u, 15, 1);
    c.x = x; c.W = W; c.b = b;
    probe p = {dense_fwd, 15, u, &c};
    mm_nn_dense_backward_d(c.R, c.in, c.out, x, W, u, dW, db, dx);
    check("dense dx", &p, x, dx, 20);
    check("dense dW", &p, W, dW, 12);
    check("dense db", &p, b, db, 3);
}

/* ---- activations ---- */
typedef struct { mm_nn_act a; size_t n; double *x; } act_ctx;
static void act_fwd(probe *p, double *y)
{
    act_ctx *c = p->ctx;
    mm_nn_act_forward_d(c->a, c->n, c->x, y);
}

static void test_activations(void **st)
{
    const char *names[] = {"identity", "relu", "tanh", "gelu", "hardswish"};
    for (int a = MM_NN_ACT_IDENTITY; a <= MM_NN_ACT_HARDSWISH; a++) {
        double x[24], y[24], u[24], dx[24];
        fill(x, 24, 5);
        for (int i = 0; i < 24; i++) {           /* keep away from kinks at 0 and +-3 */
            if (fabs(x[i]) < 0.01) x[i] += 0.05;
            if (fabs(fabs(x[i]) - 3) < 0.01) x[i] += 0.05;
        }
        fill(u, 24, 1);
        act_ctx c = {(mm_nn_act)a, 24, x};
        probe p = {act_fwd, 24, u, &c};
        mm_nn_act_forward_d(c.a, 24, x, y);
        mm_nn_act_backward_d(c.a, 24, x, y, u, dx);
        char w[64];
        snprintf(w, sizeof w, "%s dx", names[a]);
        check(w, &p, x, dx, 24);
    }
}

/* ---- dropout ---- */
typedef struct { size_t n; double rate; uint8_t *mask; double *x; } drop_ctx;
static void drop_fwd(probe *p, double *y)
{
    drop_ctx *c = p->ctx;
    mm_nn_dropout_forward_d(c->n, c->rate, c->mask, c->x, y);
}

static void test_dropout(void **st)
{
    double x[40], u[40], dx[40];
    uint8_t mask[40];
    fill(x, 40, 1); fill(u, 40, 1);
    mm_rng r;
    mm_rng_seed(&r, 1, 2, 3);
    mm_nn_dropout_mask(40, 0.3, &r, mask);
    int kept = 0;
    for (int i = 0; i < 40; i++) kept += mask[i];
    assert_true(kept > 10 && kept < 40);
    drop_ctx c = {40, 0.3, mask, x};
    probe p = {drop_fwd, 40, u, &c};
    mm_nn_dropout_backward_d(40, 0.3, mask, u, dx);
    check("dropout dx", &p, x, dx, 40);
    /* inverted: the kept values are scaled by 1/(1-rate) */
    double y[40];
    mm_nn_dropout_forward_d(40, 0.3, mask, x, y);
    for (int i = 0; i < 40; i++) assert_true(fabs(y[i] - (mask[i] ? x[i] / 0.7 : 0)) < 1e-12);
}

/* ---- batch norm ---- */
typedef struct { size_t R, C; double *x, *g, *b; } bn_ctx;
static void bn_fwd(probe *p, double *y)
{
    bn_ctx *c = p->ctx;
    double mean[8], inv[8];
    mm_nn_bn_forward_train_d(c->R, c->C, c->x, c->g, c->b, 1e-5, 0.1, y, mean, inv, NULL, NULL);
}

static void test_batchnorm(void **st)
{
    /* R = 12 rows: a feature batch of 12, or a batch of 3 sequences of length 4 */
    enum { R = 12, C = 5 };
    double x[R * C], g[C], b[C], u[R * C], y[R * C], dx[R * C], dg[C], dbeta[C], mean[C], inv[C];
    fill(x, R * C, 2); fill(g, C, 1.5); fill(b, C, 1); fill(u, R * C, 1);
    bn_ctx c = {R, C, x, g, b};
    probe p = {bn_fwd, R * C, u, &c};
    double rm[C] = {0}, rv[C] = {1, 1, 1, 1, 1};
    mm_nn_bn_forward_train_d(R, C, x, g, b, 1e-5, 0.1, y, mean, inv, rm, rv);
    mm_nn_bn_backward_d(R, C, x, g, mean, inv, u, dg, dbeta, dx);
    check("batchnorm dx", &p, x, dx, R * C);
    check("batchnorm dgamma", &p, g, dg, C);
    check("batchnorm dbeta", &p, b, dbeta, C);
    /* running statistics: momentum 0.1, unbiased variance (PyTorch) */
    for (int ch = 0; ch < C; ch++) {
        double m = 0, q = 0;
        for (int r = 0; r < R; r++) m += x[r * C + ch];
        m /= R;
        for (int r = 0; r < R; r++) q += (x[r * C + ch] - m) * (x[r * C + ch] - m);
        assert_true(fabs(rm[ch] - 0.1 * m) < 1e-12);
        assert_true(fabs(rv[ch] - (0.9 + 0.1 * q / (R - 1))) < 1e-12);
    }
    /* eval mode with the running statistics */
    mm_nn_bn_forward_eval_d(R, C, x, g, b, rm, rv, 1e-5, y);
    assert_true(fabs(y[7] - ((x[7] - rm[2]) / sqrt(rv[2] + 1e-5) * g[2] + b[2])) < 1e-12);
}

/* ---- conv1d ---- */
typedef struct { size_t B, L, cin, cout, k, s, pad, Lout; double *x, *W, *b, *col; } conv_ctx;
static void conv_fwd(probe *p, double *y)
{
    conv_ctx *c = p->ctx;
    mm_nn_conv1d_forward_d(c->B, c->L, c->cin, c->cout, c->k, c->s, c->pad, c->Lout, c->x, c->W, c->b, c->col, y);
}

static void conv_case(size_t L, size_t k, size_t s, mm_nn_padding pad, size_t cin, size_t cout)
{
    conv_ctx c = {.B = 2, .L = L, .cin = cin, .cout = cout, .k = k, .s = s};
    mm_nn_window(L, k, s, pad, &c.Lout, &c.pad);
    size_t nx = c.B * L * c.cin, nw = c.cout * k * c.cin, ny = c.B * c.Lout * c.cout, ncol = c.B * c.Lout * k * c.cin;
    double *x = malloc(nx * 8), *W = malloc(nw * 8), *b = malloc(cout * 8), *u = malloc(ny * 8), *y = malloc(ny * 8);
    double *col = malloc(ncol * 8), *dcol = malloc(ncol * 8), *dx = malloc(nx * 8), *dW = malloc(nw * 8);
    double *db = malloc(cout * 8);
    fill(x, nx, 1); fill(W, nw, 1); fill(b, cout, 1); fill(u, ny, 1);
    c.x = x; c.W = W; c.b = b; c.col = col;
    probe p = {conv_fwd, ny, u, &c};
    conv_fwd(&p, y);
    mm_nn_conv1d_backward_d(c.B, L, c.cin, c.cout, k, s, c.pad, c.Lout, col, W, u, dW, db, dcol, dx);
    char w[96];
    snprintf(w, sizeof w, "conv1d L%zu k%zu s%zu %s %zu->%zu dx", L, k, s, pad ? "same" : "valid", cin, cout);
    check(w, &p, x, dx, nx);
    check("   dW", &p, W, dW, nw);
    check("   db", &p, b, db, cout);
    free(x); free(W); free(b); free(u); free(y); free(col); free(dcol); free(dx); free(dW); free(db);
}

/* The Winograd path (16+ channels, stride 1, k 3 or 5) against im2col on
 * the same data, in double: forward, and backward with and without dx (the
 * first layer's case, dcol NULL). Metric: max |wino - im2col| / max |im2col|;
 * tol 1e-12 (the transforms are exact in exact arithmetic; in double they
 * round at ~1e-16 times the transform's growth, < 1e3). */
static void wino_vs_im2col(size_t L, size_t k, size_t cin, size_t cout, mm_nn_conv_algo algo)
{
    size_t B = 3, Lout, pl;
    mm_nn_window(L, k, 1, MM_NN_PAD_SAME, &Lout, &pl);
    size_t nx = B * L * cin, nw = cout * k * cin, ny = B * Lout * cout, ncol = B * Lout * k * cin;
    double *x = malloc(nx * 8), *W = malloc(nw * 8), *b = malloc(cout * 8), *u = malloc(ny * 8);
    double *out[2][4], *col = malloc(ncol * 8), *dcol = malloc(ncol * 8);
    fill(x, nx, 1); fill(W, nw, 1); fill(b, cout, 1); fill(u, ny, 1);
    size_t n[4] = {ny, nw, cout, nx};
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < 4; i++) out[a][i] = malloc(n[i] * 8);
        mm_nn_conv_algo old = mm_nn_conv1d_algo(a ? algo : MM_NN_CONV_IM2COL);
        mm_nn_conv1d_forward_d(B, L, cin, cout, k, 1, pl, Lout, x, W, b, col, out[a][0]);
        mm_nn_conv1d_backward_d(B, L, cin, cout, k, 1, pl, Lout, col, W, u, out[a][1], out[a][2], dcol, out[a][3]);
        double *dW2 = malloc(nw * 8), *db2 = malloc(cout * 8);   /* without dx: same dW, db */
        mm_nn_conv1d_backward_d(B, L, cin, cout, k, 1, pl, Lout, col, W, u, dW2, db2, NULL, NULL);
        assert_memory_equal(dW2, out[a][1], nw * 8);
        assert_memory_equal(db2, out[a][2], cout * 8);
        free(dW2); free(db2);
        mm_nn_conv1d_algo(old);
    }
    static const char *what[4] = {"y", "dW", "db", "dx"};
    for (int i = 0; i < 4; i++) {
        double m = 0, e = 0;
        for (size_t j = 0; j < n[i]; j++) {
            m = fmax(m, fabs(out[0][i][j]));
            e = fmax(e, fabs(out[0][i][j] - out[1][i][j]));
        }
        printf("  winograd%s L%zu k%zu %zu->%zu %-2s vs im2col: rel %.2e\n",
               algo == MM_NN_CONV_WINOGRAD_NOALLOC ? " (no-alloc)" : "", L, k, cin, cout, what[i], e / m);
        assert_true(e / m < 1e-12);
        if (i == 0) assert_true(e > 0);   /* the Winograd path did run */
        free(out[0][i]); free(out[1][i]);
    }
    free(x); free(W); free(b); free(u); free(col); free(dcol);
}

static void test_conv1d(void **st)
{
    conv_case(7, 3, 1, MM_NN_PAD_SAME, 3, 4);
    conv_case(8, 5, 1, MM_NN_PAD_SAME, 3, 4);    /* even length, odd kernel */
    conv_case(7, 4, 2, MM_NN_PAD_SAME, 3, 4);    /* even kernel: asymmetric padding */
    conv_case(9, 3, 2, MM_NN_PAD_VALID, 3, 4);
    /* Winograd F(6, 5), F(4, 5) (5 outputs), F(9, 5) and F(6, 3): a partial last tile, tiles reading padding
     * on both sides, more channels out than in and fewer */
    conv_case(11, 5, 1, MM_NN_PAD_SAME, 16, 20);
    conv_case(13, 3, 1, MM_NN_PAD_SAME, 17, 16);
    conv_case(9, 5, 1, MM_NN_PAD_VALID, 16, 16);
    conv_case(27, 5, 1, MM_NN_PAD_SAME, 16, 20);   /* F(9, 5) */
    mm_nn_conv_algo old = mm_nn_conv1d_algo(MM_NN_CONV_WINOGRAD_NOALLOC);
    conv_case(11, 5, 1, MM_NN_PAD_SAME, 16, 20);
    conv_case(13, 3, 1, MM_NN_PAD_SAME, 17, 16);
    mm_nn_conv1d_algo(old);
    wino_vs_im2col(21, 5, 24, 16, MM_NN_CONV_AUTO);   /* F(6, 5): 4 tiles of 10 points, not 6 of 8 */
    wino_vs_im2col(8, 5, 24, 16, MM_NN_CONV_AUTO);    /* F(4, 5): 2 tiles of 8 points, not 2 of 10 */
    wino_vs_im2col(14, 3, 32, 40, MM_NN_CONV_AUTO);
    wino_vs_im2col(21, 5, 20, 16, MM_NN_CONV_AUTO);   /* cin 20: the weight transforms' 8-wide blocks, then 4 */
    wino_vs_im2col(27, 5, 24, 16, MM_NN_CONV_AUTO);   /* F(9, 5): 3 tiles of 13 points, not 5 of 10 */
    wino_vs_im2col(25, 5, 17, 24, MM_NN_CONV_AUTO);   /* F(9, 5) with a partial last tile, cin 17 */
    wino_vs_im2col(27, 5, 24, 16, MM_NN_CONV_WINOGRAD_NOALLOC);
    wino_vs_im2col(21, 5, 24, 16, MM_NN_CONV_WINOGRAD_NOALLOC);
    wino_vs_im2col(14, 3, 32, 40, MM_NN_CONV_WINOGRAD_NOALLOC);
    /* 'same' window arithmetic (TensorFlow): out = ceil(L/s), pad_left = total/2 */
    size_t o, pl;
    mm_nn_window(162, 5, 2, MM_NN_PAD_SAME, &o, &pl);
    assert_int_equal(o, 81); assert_int_equal(pl, 1);
    mm_nn_window(11, 3, 2, MM_NN_PAD_SAME, &o, &pl);
    assert_int_equal(o, 6); assert_int_equal(pl, 1);
    mm_nn_window(10, 5, 2, MM_NN_PAD_SAME, &o, &pl);
    assert_int_equal(o, 5); assert_int_equal(pl, 1);      /* total 3: 1 left, 2 right */
    mm_nn_window(4, 5, 1, MM_NN_PAD_VALID, &o, &pl);
    assert_int_equal(o, 0);
}

/* ---- maxpool ---- */
typedef struct { size_t B, L, C, pool, s, pad, Lout; double *x; int32_t *arg; } pool_ctx;
static void pool_fwd(probe *p, double *y)
{
    pool_ctx *c = p->ctx;
    mm_nn_maxpool_forward_d(c->B, c->L, c->C, c->pool, c->s, c->pad, c->Lout, c->x, y, c->arg);
}

static void test_maxpool(void **st)
{
    pool_ctx c = {.B = 2, .L = 9, .C = 3, .pool = 5, .s = 2};
    mm_nn_window(c.L, c.pool, c.s, MM_NN_PAD_SAME, &c.Lout, &c.pad);
    assert_int_equal(c.Lout, 5);
    double x[54], u[30], y[30], dx[54];
    int32_t arg[30];
    fill(x, 54, 1); fill(u, 30, 1);
    c.x = x; c.arg = arg;
    probe p = {pool_fwd, 30, u, &c};
    pool_fwd(&p, y);
    mm_nn_maxpool_backward_d(c.B, c.L, c.C, c.Lout, arg, u, dx);
    check("maxpool 5/2 same dx", &p, x, dx, 54);
    /* -inf padding: an all-negative edge window still picks a real value */
    for (int i = 0; i < 54; i++) x[i] = -1 - i;
    pool_fwd(&p, y);
    assert_true(y[0] == -1.0);                /* window [-2, 2] of sample 0, channel 0 */
    assert_true(y[4 * 3] == -1 - 6 * 3.0);    /* last window [6, 10] → rows 6..8, max at row 6 */
}

/* ---- softmax cross-entropy ---- */
typedef struct { size_t B, C; double *z; const int32_t *y; const double *w; double e; } xent_ctx;
static void xent_fwd(probe *p, double *out)
{
    xent_ctx *c = p->ctx;
    out[0] = mm_nn_softmax_xent_d(c->B, c->C, c->z, c->y, c->w, c->e, NULL, NULL);
}

static void test_softmax_xent(void **st)
{
    double z[20], dz[20], one = 1, w[5] = {1, 2, 0.5, 1.5, 3};
    int32_t y[4] = {0, 3, 4, 3};
    fill(z, 20, 3);
    for (int variant = 0; variant < 4; variant++) {
        xent_ctx c = {4, 5, z, y, variant & 1 ? w : NULL, variant & 2 ? 0.1 : 0};
        probe p = {xent_fwd, 1, &one, &c};
        mm_nn_softmax_xent_d(4, 5, z, y, c.w, c.e, dz, NULL);
        check(variant == 0 ? "xent dz" : variant == 1 ? "xent+weights dz" : variant == 2 ? "xent+smoothing dz"
                                                                                           : "xent+both dz",
              &p, z, dz, 20);
    }
    /* value against the closed form for one row: -log softmax */
    double zz[3] = {1, 2, 3};
    int32_t yy = 2;
    double l = mm_nn_softmax_xent_d(1, 3, zz, &yy, NULL, 0, NULL, NULL);
    assert_true(fabs(l - (log(exp(1) + exp(2) + exp(3)) - 3)) < 1e-12);
}

/* mm_sgemm (the float product under every dense/conv kernel) against a
 * double-precision reference, all four transpose cases, sizes off the 8 x 32
 * tile and across K blocks (256) and N blocks (512). Metric: max |C - ref| /
 * (max |ref| * sqrt(K)); tol 1e-6 (float rounding grows ~sqrt(K) eps).
 * Every micro-kernel this CPU can run (scalar fmaf, AVX2+FMA, AVX-512) must
 * also give exactly the scalar kernel's bits: that is what makes training
 * results independent of the CPU. */
static void test_sgemm(void **st)
{
    /* whole and partial 12 x 32 tiles (partial rows 8..11 too), K past one
     * 256 block, M past one 96-row block, N past one 1536-column block */
    const size_t shapes[][3] = {{1, 1, 1},     {7, 33, 5},      {12, 32, 8}, {19, 70, 300},
                                {65, 530, 263}, {3, 1030, 17}, {10, 40, 270}, {101, 1600, 21}};
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    size_t M = shapes[t][0], N = shapes[t][1], K = shapes[t][2];
                    size_t lda = ta ? M + 3 : K + 2, ldb = tb ? K + 1 : N + 5, ldc = N + 4;
                    float *A = malloc((ta ? K : M) * lda * sizeof *A), *B = malloc((tb ? N : K) * ldb * sizeof *B);
                    float *C = malloc(M * ldc * sizeof *C);
                    double *ref = malloc(M * N * sizeof *ref);
                    for (size_t i = 0; i < (ta ? K : M) * lda; i++) A[i] = (float)(2 * mm_rng_uniform(&rng) - 1);
                    for (size_t i = 0; i < (tb ? N : K) * ldb; i++) B[i] = (float)(2 * mm_rng_uniform(&rng) - 1);
                    for (size_t i = 0; i < M * ldc; i++) C[i] = (float)(2 * mm_rng_uniform(&rng) - 1);
                    double m = 0;
                    for (size_t i = 0; i < M; i++)
                        for (size_t j = 0; j < N; j++) {
                            double acc = beta ? C[i * ldc + j] : 0;
                            for (size_t k = 0; k < K; k++)
                                acc += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                                       (tb ? B[j * ldb + k] : B[k * ldb + j]);
                            ref[i * N + j] = acc;
                            if (fabs(acc) > m) m = fabs(acc);
                        }
                    float pad = C[ldc - 1];   /* a value past column N must stay untouched */
                    float *C0 = malloc(M * ldc * sizeof *C0), *Ck = malloc(M * ldc * sizeof *Ck);
                    memcpy(C0, C, M * ldc * sizeof *C);
                    mm_sgemm_using(MM_SGEMM_SCALAR, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                                   M, N, K, A, lda, B, ldb, (float)beta, C0, ldc);
                    for (mm_sgemm_kernel k = MM_SGEMM_AVX2; k <= MM_SGEMM_AVX512; k++) {
                        if (!mm_sgemm_kernel_available(k)) continue;
                        memcpy(Ck, C, M * ldc * sizeof *C);
                        mm_sgemm_using(k, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, A,
                                       lda, B, ldb, (float)beta, Ck, ldc);
                        for (size_t i = 0; i < M * ldc; i++)
                            if (memcmp(&Ck[i], &C0[i], sizeof *Ck))
                                fail_msg("sgemm %zux%zux%zu ta %d tb %d beta %d: kernel %s differs from scalar at "
                                         "C[%zu][%zu]: %.9g vs %.9g", M, N, K, ta, tb, beta, mm_sgemm_kernel_name(k),
                                         i / ldc, i % ldc, Ck[i], C0[i]);
                    }
                    free(C0); free(Ck);
                    mm_sgemm(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, A, lda, B,
                             ldb, (float)beta, C, ldc);
                    double e = 0;
                    for (size_t i = 0; i < M; i++)
                        for (size_t j = 0; j < N; j++) e = fmax(e, fabs(C[i * ldc + j] - ref[i * N + j]));
                    e /= fmax(m, 1e-30) * sqrt((double)K);
                    if (e > 1e-6) fail_msg("sgemm %zux%zux%zu ta %d tb %d beta %d: rel err %.3g", M, N, K, ta, tb, beta, e);
                    assert_true(C[ldc - 1] == pad);
                    free(A); free(B); free(C); free(ref);
                }
    printf("  sgemm: 8 shapes x 4 transpose cases x beta 0/1 within 1e-6 of a double reference; kernels bit-equal "
           "to scalar:%s%s (auto: %s)\n", mm_sgemm_kernel_available(MM_SGEMM_AVX2) ? " avx2" : "",
           mm_sgemm_kernel_available(MM_SGEMM_AVX512) ? " avx512" : "", mm_sgemm_kernel_name(mm_sgemm_kernel_auto()));
}

int main(void)
{
    mm_rng_seed(&rng, 12345, 0, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense),       cmocka_unit_test(test_activations),
        cmocka_unit_test(test_dropout),     cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_conv1d),      cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_softmax_xent), cmocka_unit_test(test_sgemm),
    };
    return cmocka_run_group_tests_name("nn_grad", tests, NULL, NULL);
}
