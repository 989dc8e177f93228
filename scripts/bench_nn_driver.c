/* bench_nn_driver.c — times training epochs of the `cnn1d` (Table I) and
 * `mlp` learners on random data for scripts/bench_nn.py, which builds it
 * against build/libmelodic.a and runs PyTorch on the same shapes.
 * Usage: bench_nn_driver cnn1d|mlp N D THREADS EPOCHS
 * Prints one line: "<model> n=N d=D threads=T epochs=E seconds_per_epoch=S". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/rng.h"
#include "learn/learner.h"

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s cnn1d|mlp N D THREADS EPOCHS\n", argv[0]);
        return 2;
    }
    const char *model = argv[1];
    size_t n = strtoul(argv[2], NULL, 10), d = strtoul(argv[3], NULL, 10);
    int threads = atoi(argv[4]), epochs = atoi(argv[5]);
    float *X = malloc(n * d * sizeof *X);
    int32_t *y = malloc(n * sizeof *y);
    if (!X || !y) return 1;
    mm_rng r;
    mm_rng_seed(&r, 1, 0, 0);
    for (size_t i = 0; i < n * d; i++) X[i] = (float)mm_rng_normal(&r);
    for (size_t i = 0; i < n; i++) y[i] = (int32_t)(i % 7);
    char yaml[256];
    if (!strcmp(model, "cnn1d"))
        snprintf(yaml, sizeof yaml, "epochs: %d\nearly_stopping: false\nbatch_size: 32\n", epochs);
    else
        snprintf(yaml, sizeof yaml, "hidden_layer_sizes: [256]\nmax_iter: %d\nearly_stopping: false\n"
                 "n_iter_no_change: 100000\nbatch_size: 200\n", epochs);
    mm_err e = {0};
    mm_cfg *c;
    mm_learner *l;
    if (mm_cfg_parse_string(yaml, "bench", &c, &e) || mm_learner_create(model, c, 1, threads, &l, &e)) {
        fprintf(stderr, "bench_nn_driver: %s\n", e.msg);
        return 1;
    }
    mm_fit_data fd = {.X = X, .y = y, .n = n, .d = d, .n_classes = 7};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (mm_learner_fit(l, &fd, &e)) {
        fprintf(stderr, "bench_nn_driver: %s\n", e.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%s n=%zu d=%zu threads=%d epochs=%d seconds_per_epoch=%.4f\n", model, n, d, threads, epochs,
           s / epochs);
    mm_learner_free(l);
    mm_cfg_free(c);
    free(X);
    free(y);
    return 0;
}
