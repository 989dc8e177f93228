/* test_nn_kern.c — the training kernels give the same bits on every SIMD
 * path and every thread count, and their algorithms agree.
 *
 * A Table I-shaped CNN (widths 16-32, so the Winograd convolutions, the
 * batch norms and the pools all run; dropout on) is trained for a few Adam
 * steps from the same initial weights with each mm_sgemm micro-kernel this
 * CPU has (scalar fmaf, AVX2+FMA, AVX-512) and with 1 and 2 threads; the
 * parameters, running statistics and eval logits must be equal byte for
 * byte (memcmp), since results must not depend on the machine. Then the
 * Conv1D algorithms against each other (see test_algorithms_agree). */
#include "testutil.h"
#include <omp.h>
#include "core/rng.h"
#include "nn/layers.h"
#include "nn/net.h"
#include "nn/sgemm.h"
#include "nn/train.h"

#define L_MAX 162
#define BATCH 32
#define STEPS 4
#define N_ROWS 64
#define K_CLASSES 5

/* Two sizes: small (widths 16-32, length 40: cheap enough for the scalar
 * kernel) and wide (widths 64-128, length 162: every kernel takes its
 * multi-threaded branch at 2 threads). */
static int g_wide;
#define L_IN ((size_t)(g_wide ? 162 : 40))

static void add(mm_net *net, mm_net_spec s)
{
    mm_err e = {0};
    if (mm_net_add(net, &s, &e)) fail_msg("%s", e.msg);
}

static mm_net *build(void)
{
    static const int kern[5] = {5, 5, 5, 3, 3}, pool[5] = {5, 5, 5, 5, 3};
    const int *filters = g_wide ? (const int[5]){64, 128, 64, 96, 64} : (const int[5]){16, 32, 16, 24, 16};
    mm_net *net;
    mm_err e = {0};
    assert_int_equal(mm_net_create(L_IN, 1, &net, &e), 0);
    for (int i = 0; i < 5; i++) {
        add(net, (mm_net_spec){.kind = MM_NET_CONV1D, .units = filters[i], .kernel = kern[i], .stride = 1,
                               .padding = MM_NN_PAD_SAME});
        add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_RELU});
        add(net, (mm_net_spec){.kind = MM_NET_BATCHNORM});
        add(net, (mm_net_spec){.kind = MM_NET_MAXPOOL1D, .kernel = pool[i], .stride = 2, .padding = MM_NN_PAD_SAME});
        if (i == 1 || i == 3) add(net, (mm_net_spec){.kind = MM_NET_DROPOUT, .rate = 0.2f});
    }
    add(net, (mm_net_spec){.kind = MM_NET_FLATTEN});
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = 32});
    add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_RELU});
    add(net, (mm_net_spec){.kind = MM_NET_BATCHNORM});
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = K_CLASSES});
    assert_int_equal(mm_net_build(net, &e), 0);
    return net;
}

/* Everything a run produces: parameters, buffers, eval logits of all rows. */
typedef struct run {
    size_t np, nb;
    float *p, *b, *z;
} run;

static void free_run(run *r) { free(r->p); free(r->b); free(r->z); }

/* STEPS Adam steps on fixed batches with the current kernel settings. */
static run train(const float *X, const int32_t *y, int threads)
{
    mm_net *net = build();
    mm_net_init(net, MM_NET_INIT_GLOROT, 3);
    mm_adam_params ap = mm_adam_params_default();
    ap.lr = 1e-2;
    mm_adam *opt;
    mm_err e = {0};
    assert_int_equal(mm_adam_create(mm_net_n_params(net), &ap, &opt, &e), 0);
    int old = omp_get_max_threads();
    omp_set_num_threads(threads);
    float Xb[BATCH * L_MAX];
    int32_t yb[BATCH];
    for (size_t s = 0; s < STEPS; s++) {
        for (size_t i = 0; i < BATCH; i++) {
            size_t row = (s * 7 + i * 3) % N_ROWS;
            memcpy(Xb + i * L_IN, X + row * L_IN, sizeof(float) * L_IN);
            yb[i] = y[row];
        }
        if (mm_train_step(net, opt, Xb, yb, BATCH, NULL, 0, 0, ap.lr, 11, s, NULL, NULL, &e)) fail_msg("%s", e.msg);
    }
    omp_set_num_threads(old);
    run r = {.np = mm_net_n_params(net), .nb = mm_net_n_buffers(net)};
    r.p = malloc(r.np * sizeof(float));
    r.b = malloc(r.nb * sizeof(float));
    r.z = malloc(N_ROWS * K_CLASSES * sizeof(float));
    memcpy(r.p, mm_net_params(net), r.np * sizeof(float));
    memcpy(r.b, mm_net_buffers(net), r.nb * sizeof(float));
    assert_int_equal(mm_net_infer(net, X, N_ROWS, r.z, &e), 0);
    mm_adam_free(opt);
    mm_net_free(net);
    return r;
}

static void data(float *X, int32_t *y)
{
    mm_rng r;
    mm_rng_seed(&r, 5, 0, 0);
    for (size_t i = 0; i < N_ROWS; i++) {
        y[i] = (int32_t)(i % K_CLASSES);
        for (size_t j = 0; j < L_IN; j++)   /* a class-dependent bump plus noise */
            X[i * L_IN + j] = (float)(mm_rng_normal(&r) + (j / 8 == (size_t)y[i] ? 1.5 : 0));
    }
}

static void assert_same(const run *a, const run *b, const char *what)
{
    assert_memory_equal(a->p, b->p, a->np * sizeof(float));
    assert_memory_equal(a->b, b->b, a->nb * sizeof(float));
    assert_memory_equal(a->z, b->z, N_ROWS * K_CLASSES * sizeof(float));
    printf("  %s: parameters, running statistics and logits bit-identical\n", what);
}

static void test_same_bits_on_every_path(void **st)
{
    float *X = malloc(N_ROWS * L_MAX * sizeof *X);
    int32_t y[N_ROWS];
    data(X, y);
    int old = mm_nn_gemm_kernel(MM_SGEMM_SCALAR);
    run ref = train(X, y, 1);
    for (int k = MM_SGEMM_AVX2; k <= MM_SGEMM_AVX512; k++) {
        if (!mm_sgemm_kernel_available((mm_sgemm_kernel)k)) {
            printf("  %s: not available on this CPU\n", mm_sgemm_kernel_name((mm_sgemm_kernel)k));
            continue;
        }
        mm_nn_gemm_kernel(k);
        for (int t = 1; t <= 2; t++) {
            run r = train(X, y, t);
            char what[64];
            snprintf(what, sizeof what, "%s, %d thread%s vs scalar, 1 thread", mm_sgemm_kernel_name((mm_sgemm_kernel)k),
                     t, t > 1 ? "s" : "");
            assert_same(&r, &ref, what);
            free_run(&r);
        }
    }
    mm_nn_gemm_kernel(old);
    run a = train(X, y, 2);   /* the automatic choice (what MELODIC_NO_AVX512 steers) */
    char what[64];
    snprintf(what, sizeof what, "auto (%s), 2 threads vs scalar", mm_sgemm_kernel_name(mm_sgemm_kernel_auto()));
    assert_same(&a, &ref, what);
    free_run(&a);
    free_run(&ref);
    /* wide: 1 vs 2 threads with every parallel branch taken */
    g_wide = 1;
    data(X, y);
    run r1 = train(X, y, 1), r2 = train(X, y, 2);
    assert_same(&r2, &r1, "wide net, 2 threads vs 1 thread");
    free_run(&r1); free_run(&r2);
    g_wide = 0;
    free(X);
}

/* One Conv1D forward + backward (y, dW, db, dx) with the current algorithm. */
static void conv_run(size_t B, size_t L, size_t cin, size_t cout, size_t k, const float *x, const float *W,
                     const float *b, const float *dy, float *out[4])
{
    size_t Lout, pl;
    mm_nn_window(L, k, 1, MM_NN_PAD_SAME, &Lout, &pl);
    float *col = malloc(B * Lout * k * cin * sizeof(float)), *dcol = malloc(B * Lout * k * cin * sizeof(float));
    mm_nn_conv1d_forward_f(B, L, cin, cout, k, 1, pl, Lout, x, W, b, col, out[0]);
    mm_nn_conv1d_backward_f(B, L, cin, cout, k, 1, pl, Lout, col, W, dy, out[1], out[2], dcol, out[3]);
    free(col);
    free(dcol);
}

/* Winograd against im2col, and Winograd without scratch memory against
 * Winograd, in float on Table I-like shapes (a partial last tile in each
 * but the first). Metric: max |a - b| / max |b| per array; tol 1e-5
 * (measured ~1e-6 for k 3, F(6, 3), and up to 7e-6 for k 5, F(6, 5):
 * float32 sums over 320-640 products in two orders; the transforms add 2.7x
 * and 7.1x im2col's own rounding, scripts/gen_winograd.py --error), 5e-5 for
 * F(9, 5) (Table I's second conv, an output of 81: its transforms add 25x,
 * 3.4x F(6, 5)'s; measured up to 2.4e-5). Whole training runs are not compared here:
 * ReLU -> batch norm -> max-pool turns 1e-7 differences into different
 * pooled positions (see test_nn_torch.c), so only the bits can be asked of
 * them, which test_same_bits_on_every_path does. */
static void test_algorithms_agree(void **st)
{
    static const size_t shapes[][5] = {{4, 81, 128, 64, 5}, {4, 41, 128, 64, 5}, {4, 21, 64, 96, 3}, {3, 11, 32, 16, 3}};
    static const double tols[] = {5e-5, 1e-5, 1e-5, 1e-5};   /* F(9, 5), F(6, 5), F(6, 3), F(6, 3) */
    mm_rng r;
    mm_rng_seed(&r, 9, 0, 0);
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        size_t B = shapes[t][0], L = shapes[t][1], cin = shapes[t][2], cout = shapes[t][3], k = shapes[t][4];
        size_t n[4] = {B * L * cout, cout * k * cin, cout, B * L * cin};
        float *x = malloc(n[3] * sizeof(float)), *W = malloc(n[1] * sizeof(float)), *b = malloc(cout * sizeof(float));
        float *dy = malloc(n[0] * sizeof(float)), *o[3][4];
        for (size_t i = 0; i < n[3]; i++) x[i] = (float)mm_rng_normal(&r);
        for (size_t i = 0; i < n[1]; i++) W[i] = (float)(mm_rng_normal(&r) / sqrt((double)(k * cin)));
        for (size_t i = 0; i < cout; i++) b[i] = (float)mm_rng_normal(&r);
        for (size_t i = 0; i < n[0]; i++) dy[i] = (float)mm_rng_normal(&r);
        static const mm_nn_conv_algo algos[3] = {MM_NN_CONV_IM2COL, MM_NN_CONV_AUTO, MM_NN_CONV_WINOGRAD_NOALLOC};
        for (int a = 0; a < 3; a++) {
            for (int i = 0; i < 4; i++) o[a][i] = malloc(n[i] * sizeof(float));
            mm_nn_conv_algo old = mm_nn_conv1d_algo(algos[a]);
            conv_run(B, L, cin, cout, k, x, W, b, dy, o[a]);
            mm_nn_conv1d_algo(old);
        }
        static const char *what[4] = {"y", "dW", "db", "dx"};
        for (int i = 0; i < 4; i++) {
            double ew = tu_max_abs_diff(o[1][i], o[0][i], n[i]) / tu_max_abs(o[0][i], n[i]);
            double ef = tu_max_abs_diff(o[2][i], o[1][i], n[i]) / tu_max_abs(o[1][i], n[i]);
            printf("  conv1d %zux%zux%zu->%zu k%zu %-2s: winograd vs im2col %.2e, without scratch vs with %.2e "
                   "(tol %.0e)\n", B, L, cin, cout, k, what[i], ew, ef, tols[t]);
            assert_true(ew < tols[t] && ef < tols[t]);
            if (i == 0) assert_true(ew > 0);   /* the Winograd path did run */
        }
        for (int a = 0; a < 3; a++)
            for (int i = 0; i < 4; i++) free(o[a][i]);
        free(x); free(W); free(b); free(dy);
    }
}

static float *randn(size_t n, mm_rng *r)
{
    float *p = malloc(n * sizeof *p);
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = (float)mm_rng_normal(r) * 0.1f;
    return p;
}

/* 1 (and a line naming what) when a and b differ in any bit. */
static int differs(const char *what, const void *a, const void *b, size_t bytes)
{
    if (!memcmp(a, b, bytes)) return 0;
    const unsigned char *p = a, *q = b;
    size_t i = 0;
    while (p[i] == q[i]) i++;
    print_message("%s differs at byte %zu\n", what, i);
    return 1;
}

/* The fused training kernels the net uses (conv+ReLU; BN+pool(+dropout) forward, and
 * its backward with the ReLU before and the conv's bias sums) give the bits of the
 * separate kernels, on the first layer's shape (cin 1; also with the conv's output
 * computed where it is read, mm_nn_conv_rows), F(6,5) and F(6,3). */
static void test_fused_kernels(void **st)
{
    (void)st;
    mm_rng r;
    mm_rng_seed(&r, 3, 0, 0);
    static const size_t CIN[3] = {1, 32, 48}, COUT[3] = {64, 48, 32}, K[3] = {5, 5, 3}, LL[3] = {61, 23, 17};
    int bad = 0, conv_rows_cases = 0;
    for (int t = 0; t < 3; t++) {
        size_t B = 5, L = LL[t], cin = CIN[t], cout = COUT[t], k = K[t], Lc, pl, Lp, ppl, pool = 5;
        mm_nn_window(L, k, 1, MM_NN_PAD_SAME, &Lc, &pl);
        mm_nn_window(Lc, pool, 2, MM_NN_PAD_SAME, &Lp, &ppl);
        size_t ny = B * Lc * cout, np = B * Lp * cout;
        float *x = randn(B * L * cin, &r), *W = randn(cout * k * cin, &r), *b = randn(cout, &r);
        float *col = malloc(B * Lc * k * cin * sizeof(float)), *y0 = malloc(ny * sizeof(float));
        float *y1 = malloc(ny * sizeof(float)), *gam = randn(cout, &r), *bet = randn(cout, &r);
        /* conv -> ReLU */
        mm_nn_conv1d_forward_f(B, L, cin, cout, k, 1, pl, Lc, x, W, b, col, y0);
        mm_nn_act_forward_f(MM_NN_ACT_RELU, ny, y0, y0);
        mm_nn_conv1d_relu_forward_f(B, L, cin, cout, k, 1, pl, Lc, x, W, b, col, y1);
        bad |= differs("conv1d_relu_forward", y0, y1, ny * sizeof(float));
        for (int drop = 0; drop < 2; drop++) {
            /* BN -> pool (-> dropout) forward */
            float m0[64], i0[64], rm0[64] = {0}, rv0[64], m1[64], i1[64], rm1[64] = {0}, rv1[64];
            for (size_t c = 0; c < cout; c++) rv0[c] = rv1[c] = 1;
            uint8_t *mask = malloc(np);
            mm_nn_dropout_mask(np, 0.2, &r, mask);
            float *z = malloc(ny * sizeof(float)), *p0 = malloc(np * sizeof(float)), *p1 = malloc(np * sizeof(float));
            int32_t *a0 = malloc(np * sizeof(int32_t)), *a1 = malloc(np * sizeof(int32_t));
            mm_nn_bn_forward_train_f(B * Lc, cout, y1, gam, bet, 1e-5, 0.1, z, m0, i0, rm0, rv0);
            mm_nn_maxpool_forward_f(B, Lc, cout, pool, 2, ppl, Lp, z, p0, a0);
            if (drop) mm_nn_dropout_forward_f(np, 0.2, mask, p0, p0);
            mm_nn_bn_maxpool_forward_train_f(B, Lc, cout, pool, 2, ppl, Lp, y1, gam, bet, 1e-5, 0.1, m1, i1, rm1, rv1,
                                             drop ? mask : NULL, 0.2, p1, a1);
            bad |= differs("bn_maxpool_forward y", p0, p1, np * sizeof(float));
            bad |= differs("bn_maxpool_forward arg", a0, a1, np * sizeof(int32_t));
            bad |= differs("bn_maxpool_forward stats", m0, m1, cout * sizeof(float)) |
                   differs("bn_maxpool_forward invstd", i0, i1, cout * sizeof(float)) |
                   differs("bn_maxpool_forward running var", rv0, rv1, cout * sizeof(float));
            /* its backward, with the ReLU before and the bias sums */
            float *dp = randn(np, &r), *g0 = malloc(ny * sizeof(float)), *g1 = malloc(ny * sizeof(float));
            float *dq = malloc(np * sizeof(float)), dg0[64], db0[64], dg1[64], db1[64], s0[64], s1[64];
            if (drop) mm_nn_dropout_backward_f(np, 0.2, mask, dp, dq);
            else memcpy(dq, dp, np * sizeof(float));
            mm_nn_maxpool_backward_f(B, Lc, cout, Lp, a0, dq, z);
            mm_nn_bn_relu_backward_f(B * Lc, cout, y1, gam, m0, i0, z, dg0, db0, g0);
            for (size_t c = 0; c < cout; c++) {   /* conv1d_backward's column sums */
                double acc = 0;
                for (size_t q = 0; q < B * Lc; q++) acc += g0[q * cout + c];
                s0[c] = (float)acc;
            }
            mm_nn_bn_maxpool_backward_f(B, Lc, cout, pool, 2, ppl, Lp, a1, drop ? mask : NULL, 0.2, 1, y1, gam, m1,
                                        i1, dp, dg1, db1, g1, s1);
            bad |= differs("bn_maxpool_backward dx", g0, g1, ny * sizeof(float)) |
                   differs("bn_maxpool_backward dgamma", dg0, dg1, cout * sizeof(float)) |
                   differs("bn_maxpool_backward dbeta", db0, db1, cout * sizeof(float)) |
                   differs("bn_maxpool_backward dxsum", s0, s1, cout * sizeof(float));
            if (mm_nn_conv_rows_fit_f(k * cin, cout)) {
                /* the same with the conv's ReLU computed where it is read (y1 never stored) */
                mm_nn_conv_rows cv = {L, cin, k, 1, pl, x, W, b};
                float m2[64], i2[64], rm2[64] = {0}, rv2[64], dg2[64], db2[64], s2[64];
                for (size_t c = 0; c < cout; c++) rv2[c] = 1;
                float *p2 = malloc(np * sizeof(float)), *g2 = malloc(ny * sizeof(float));
                int32_t *a2 = malloc(np * sizeof(int32_t));
                mm_nn_conv_bn_maxpool_forward_train_f(&cv, B, Lc, cout, pool, 2, ppl, Lp, gam, bet, 1e-5, 0.1, m2,
                                                      i2, rm2, rv2, drop ? mask : NULL, 0.2, p2, a2);
                bad |= differs("conv_bn_maxpool_forward y", p1, p2, np * sizeof(float)) |
                       differs("conv_bn_maxpool_forward arg", a1, a2, np * sizeof(int32_t)) |
                       differs("conv_bn_maxpool_forward mean", m1, m2, cout * sizeof(float)) |
                       differs("conv_bn_maxpool_forward invstd", i1, i2, cout * sizeof(float)) |
                       differs("conv_bn_maxpool_forward running mean", rm1, rm2, cout * sizeof(float)) |
                       differs("conv_bn_maxpool_forward running var", rv1, rv2, cout * sizeof(float));
                assert_int_equal(mm_nn_conv_bn_maxpool_backward_f(&cv, B, Lc, cout, pool, 2, ppl, Lp, a2,
                                                                  drop ? mask : NULL, 0.2, gam, m2, i2, dp, dg2, db2,
                                                                  g2, s2, NULL, NULL), 0);
                bad |= differs("conv_bn_maxpool_backward dx", g1, g2, ny * sizeof(float)) |
                       differs("conv_bn_maxpool_backward dgamma", dg1, dg2, cout * sizeof(float)) |
                       differs("conv_bn_maxpool_backward dbeta", db1, db2, cout * sizeof(float)) |
                       differs("conv_bn_maxpool_backward dxsum", s1, s2, cout * sizeof(float));
                float *col2 = malloc(B * Lc * k * cin * sizeof(float));
                mm_nn_conv1d_im2col_f(B, L, cin, k, 1, pl, Lc, x, col2);
                bad |= differs("conv1d_im2col", col, col2, B * Lc * k * cin * sizeof(float));
                /* the first layer's case: the conv's dW made by the same pass, no dx stored;
                 * dW as conv1d_backward computes it from dx (B Lc = 305 rows: mm_sgemm's
                 * chain restarts after 256) */
                float *dW0 = malloc(cout * k * cin * sizeof(float)), *dW1 = malloc(cout * k * cin * sizeof(float));
                mm_nn_conv1d_backward_f(B, L, cin, cout, k, 1, pl, Lc, col, W, g1, dW0, NULL, NULL, NULL);
                assert_int_equal(mm_nn_conv_bn_maxpool_backward_f(&cv, B, Lc, cout, pool, 2, ppl, Lp, a2,
                                                                  drop ? mask : NULL, 0.2, gam, m2, i2, dp, dg2, db2,
                                                                  NULL, s2, col, dW1), 0);
                bad |= differs("conv_bn_maxpool_backward (no dx) dW", dW0, dW1, cout * k * cin * sizeof(float)) |
                       differs("conv_bn_maxpool_backward (no dx) dgamma", dg1, dg2, cout * sizeof(float)) |
                       differs("conv_bn_maxpool_backward (no dx) dbeta", db1, db2, cout * sizeof(float)) |
                       differs("conv_bn_maxpool_backward (no dx) dxsum", s1, s2, cout * sizeof(float));
                free(p2); free(g2); free(a2); free(col2); free(dW0); free(dW1);
                conv_rows_cases++;
            }
            free(mask); free(z); free(p0); free(p1); free(a0); free(a1); free(dp); free(g0); free(g1); free(dq);
        }
        free(x); free(W); free(b); free(col); free(y0); free(y1); free(gam); free(bet);
    }
    assert_int_equal(conv_rows_cases, 2);   /* the one-channel conv, with and without dropout */
    assert_int_equal(bad, 0);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits_on_every_path),
        cmocka_unit_test(test_algorithms_agree),
        cmocka_unit_test(test_fused_kernels),
    };
    return cmocka_run_group_tests_name("nn_kern", tests, NULL, NULL);
}
