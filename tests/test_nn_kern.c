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
 * Winograd, in float on Table I-like shapes (a partial last tile in each).
 * Metric: max |a - b| / max |b| per array; tol 1e-5 (measured ~1e-6: float32
 * sums over 320-640 products in two orders; Winograd's transforms add about
 * 2.5x im2col's own rounding). Whole training runs are not compared here:
 * ReLU -> batch norm -> max-pool turns 1e-7 differences into different
 * pooled positions (see test_nn_torch.c), so only the bits can be asked of
 * them, which test_same_bits_on_every_path does. */
static void test_algorithms_agree(void **st)
{
    static const size_t shapes[][5] = {{4, 81, 128, 64, 5}, {4, 21, 64, 96, 3}, {3, 11, 32, 16, 3}};
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
                   "(tol 1e-5)\n", B, L, cin, cout, k, what[i], ew, ef);
            assert_true(ew < 1e-5 && ef < 1e-5);
            if (i == 0) assert_true(ew > 0);   /* the Winograd path did run */
        }
        for (int a = 0; a < 3; a++)
            for (int i = 0; i < 4; i++) free(o[a][i]);
        free(x); free(W); free(b); free(dy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits_on_every_path),
        cmocka_unit_test(test_algorithms_agree),
    };
    return cmocka_run_group_tests_name("nn_kern", tests, NULL, NULL);
}
