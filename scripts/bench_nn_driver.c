/* bench_nn_driver.c — times training epochs of the `cnn1d` (Table I) and
 * `mlp` learners on random data for scripts/bench_nn.py, which builds it
 * against build/libmelodic.a and runs PyTorch on the same shapes.
 * Usage: bench_nn_driver cnn1d|mlp N D THREADS EPOCHS [BATCH]
 * Prints one line: "<model> n=N d=D threads=T epochs=E batch=B proba_hash=H
 * seconds_per_epoch=S", H a hash of the trained model's probabilities.
 * `bench_nn_driver layers D THREADS STEPS BATCH` instead times each layer
 * kernel of the Table I CNN (forward and backward, CPU ms per training
 * step) — the profile behind the epoch time. (That the fused kernels give
 * the separate kernels' bits is tests/test_nn_kern.c's test_fused_kernels.) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include "core/rng.h"
#include "learn/learner.h"
#include "nn/layers.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU seconds of the process: on a shared machine the steadier figure for
 * the per-layer profile */
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static float *randn(size_t n, mm_rng *r)
{
    float *p = malloc(n * sizeof *p);
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = (float)mm_rng_normal(r) * 0.1f;
    return p;
}

/* Per-kernel times of the Table I CNN for one batch: each kernel run `steps`
 * times on random data of the layer's shape. */
static int layers(size_t d, int threads, int steps, size_t B)
{
    omp_set_num_threads(threads);
    mm_rng r;
    mm_rng_seed(&r, 1, 0, 0);
    static const size_t F[5] = {512, 512, 256, 256, 128}, K[5] = {5, 5, 5, 3, 3}, P[5] = {5, 5, 5, 5, 3};
    size_t L = d, cin = 1;
    double total = 0;
    printf("%-28s %9s %9s   (CPU ms per step, all threads)\n", "layer (B x L x C)", "fwd ms", "bwd ms");
#define TIME(acc, stmt) do { double t0_ = cpu(); for (int s_ = 0; s_ < steps; s_++) { stmt; } \
                             acc = (cpu() - t0_) * 1e3 / steps; } while (0)
    for (int i = 0; i < 5; i++) {
        size_t cout = F[i], k = K[i], pl, Lc, Lp, ppl;
        mm_nn_window(L, k, 1, MM_NN_PAD_SAME, &Lc, &pl);
        float *x = randn(B * L * cin, &r), *W = randn(cout * k * cin, &r), *b = randn(cout, &r);
        float *col = malloc(B * Lc * k * cin * sizeof(float)), *y = malloc(B * Lc * cout * sizeof(float));
        float *dy = randn(B * Lc * cout, &r), *dW = malloc(cout * k * cin * sizeof(float));
        float *db = malloc(cout * sizeof(float)), *dcol = malloc(B * Lc * k * cin * sizeof(float));
        float *dx = malloc(B * L * cin * sizeof(float));
        double f, g;
        char name[64];
        TIME(f, mm_nn_conv1d_forward_f(B, L, cin, cout, k, 1, pl, Lc, x, W, b, col, y));
        TIME(g, mm_nn_conv1d_backward_f(B, L, cin, cout, k, 1, pl, Lc, col, W, dy, dW, db, dcol, i ? dx : NULL));
        snprintf(name, sizeof name, "conv%d %zux%zux%zu k%zu", i + 1, B, Lc, cout, k);
        printf("%-28s %9.3f %9.3f\n", name, f, g);
        total += f + g;
        size_t n = B * Lc * cout;
        float *z = malloc(n * sizeof(float));
        TIME(f, mm_nn_act_forward_f(MM_NN_ACT_RELU, n, y, z));
        TIME(g, mm_nn_act_backward_f(MM_NN_ACT_RELU, n, y, z, dy, dx == NULL ? z : z));
        printf("%-28s %9.3f %9.3f\n", "  relu", f, g);
        total += f + g;
        float *gam = randn(cout, &r), *bet = randn(cout, &r), mean[512], inv[512], rm[512] = {0}, rv[512];
        for (size_t c = 0; c < cout; c++) rv[c] = 1;
        float *dgam = malloc(cout * sizeof(float)), *dbet = malloc(cout * sizeof(float));
        TIME(f, mm_nn_bn_forward_train_f(B * Lc, cout, y, gam, bet, 1e-5, 0.1, z, mean, inv, rm, rv));
        TIME(g, mm_nn_bn_backward_f(B * Lc, cout, y, gam, mean, inv, dy, dgam, dbet, z));
        printf("%-28s %9.3f %9.3f\n", "  batchnorm", f, g);
        total += f + g;
        mm_nn_window(Lc, P[i], 2, MM_NN_PAD_SAME, &Lp, &ppl);
        float *yp = malloc(B * Lp * cout * sizeof(float));
        int32_t *arg = malloc(B * Lp * cout * sizeof(int32_t));
        TIME(f, mm_nn_maxpool_forward_f(B, Lc, cout, P[i], 2, ppl, Lp, y, yp, arg));
        TIME(g, mm_nn_maxpool_backward_f(B, Lc, cout, Lp, arg, dy, z));
        printf("%-28s %9.3f %9.3f\n", "  maxpool", f, g);
        total += f + g;
        free(x); free(W); free(b); free(col); free(y); free(dy); free(dW); free(db); free(dcol); free(dx);
        free(z); free(gam); free(bet); free(dgam); free(dbet); free(yp); free(arg);
        L = Lp;
        cin = cout;
    }
    size_t in = L * cin;
    float *x = randn(B * in, &r), *W = randn(512 * in, &r), *b = randn(512, &r), *y = malloc(B * 512 * sizeof(float));
    float *dy = randn(B * 512, &r), *dW = malloc(512 * in * sizeof(float)), *db = malloc(512 * sizeof(float));
    float *dx = malloc(B * in * sizeof(float));
    double f, g;
    TIME(f, mm_nn_dense_forward_f(B, in, 512, x, W, b, y));
    TIME(g, mm_nn_dense_backward_f(B, in, 512, x, W, dy, dW, db, dx));
    printf("%-28s %9.3f %9.3f\n", "dense 768->512", f, g);
    total += f + g;
    printf("%-28s %9.3f   (x %.1f steps per epoch of 1440 = %.3f s)\n", "total", total, 1440.0 / (double)B,
           total * 1440.0 / (double)B / 1e3);
    free(x); free(W); free(b); free(y); free(dy); free(dW); free(db); free(dx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "layers"))
        return layers(strtoul(argv[2], NULL, 10), atoi(argv[3]), atoi(argv[4]), strtoul(argv[5], NULL, 10));
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s cnn1d|mlp N D THREADS EPOCHS [BATCH]\n       %s layers D THREADS STEPS BATCH\n",
                argv[0], argv[0]);
        return 2;
    }
    const char *model = argv[1];
    size_t n = strtoul(argv[2], NULL, 10), d = strtoul(argv[3], NULL, 10);
    int threads = atoi(argv[4]), epochs = atoi(argv[5]);
    long bs = argc == 7 ? atol(argv[6]) : !strcmp(model, "cnn1d") ? 64 : 200;
    float *X = malloc(n * d * sizeof *X);
    int32_t *y = malloc(n * sizeof *y);
    if (!X || !y) return 1;
    mm_rng r;
    mm_rng_seed(&r, 1, 0, 0);
    for (size_t i = 0; i < n * d; i++) X[i] = (float)mm_rng_normal(&r);
    for (size_t i = 0; i < n; i++) y[i] = (int32_t)(i % 7);
    char yaml[256];
    if (!strcmp(model, "cnn1d"))
        snprintf(yaml, sizeof yaml, "epochs: %d\nearly_stopping: false\nbatch_size: %ld\n", epochs, bs);
    else
        snprintf(yaml, sizeof yaml, "hidden_layer_sizes: [256]\nmax_iter: %d\nearly_stopping: false\n"
                 "n_iter_no_change: 100000\nbatch_size: %ld\n", epochs, bs);
    mm_err e = {0};
    mm_cfg *c;
    mm_learner *l;
    if (mm_cfg_parse_string(yaml, "bench", &c, &e) || mm_learner_create(model, c, 1, threads, &l, &e)) {
        fprintf(stderr, "bench_nn_driver: %s\n", e.msg);
        return 1;
    }
    mm_fit_data fd = {.X = X, .y = y, .n = n, .d = d, .n_classes = 7};
    double t0 = now();
    if (mm_learner_fit(l, &fd, &e)) {
        fprintf(stderr, "bench_nn_driver: %s\n", e.msg);
        return 1;
    }
    double s = now() - t0;
    /* FNV-1a of the trained model's probabilities on the training rows: equal
     * hashes before and after a kernel change mean the same trained bits */
    float *proba = malloc(n * 7 * sizeof *proba);
    if (!proba || mm_learner_predict_proba(l, X, n, d, proba, &e)) {
        fprintf(stderr, "bench_nn_driver: predict_proba: %s\n", e.msg);
        return 1;
    }
    uint64_t h = 1469598103934665603ull;
    const unsigned char *pb = (const unsigned char *)proba;
    for (size_t i = 0; i < n * 7 * sizeof *proba; i++) h = (h ^ pb[i]) * 1099511628211ull;
    free(proba);
    printf("%s n=%zu d=%zu threads=%d epochs=%d batch=%ld proba_hash=%016llx seconds_per_epoch=%.4f\n", model, n, d,
           threads, epochs, bs, (unsigned long long)h, s / epochs);
    mm_learner_free(l);
    mm_cfg_free(c);
    free(X);
    free(y);
    return 0;
}
