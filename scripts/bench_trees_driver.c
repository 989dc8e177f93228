/* bench_trees_driver.c — times one learner of the registry on an HDF5 table.
 *
 * Usage: bench_trees_driver TABLE.h5 LEARNER 'YAML params' N_THREADS [SEED]
 * The table holds /X (n, d) float32, /y (n) int32, /X_test, /y_test. Prints
 * one line: "fit_s=... predict_s=... accuracy=... fit_cpu_s=..." (wall-clock
 * seconds, and the process CPU time of the fit over all threads).
 * Built and run by scripts/bench_trees.py against build/libmelodic.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "io/cfg.h"
#include "io/h5.h"
#include "learn/learner.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s TABLE.h5 LEARNER 'YAML params' N_THREADS [SEED]\n", argv[0]);
        return 2;
    }
    mm_err e = {0};
    hid_t f;
    float *X = NULL, *Xt = NULL, *proba = NULL;
    int32_t *y = NULL, *yt = NULL, *pred = NULL;
    hsize_t dx[4], dt[4], dy[4];
    int r, rc = 1;
    mm_cfg *cfg = NULL;
    mm_learner *l = NULL;
    mm_h5_init();
    if (mm_h5_open_read(argv[1], &f, &e) || mm_h5_read_f32(f, "X", 2, &X, &r, dx, &e) ||
        mm_h5_read_i32(f, "y", 1, &y, &r, dy, &e) || mm_h5_read_f32(f, "X_test", 2, &Xt, &r, dt, &e) ||
        mm_h5_read_i32(f, "y_test", 1, &yt, &r, dy, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        return 1;
    }
    mm_h5_close(f);
    size_t n = dx[0], d = dx[1], nt = dt[0];
    int K = 0;
    for (size_t i = 0; i < n; i++) if (y[i] + 1 > K) K = y[i] + 1;
    if (mm_cfg_parse_string(argv[3], "params", &cfg, &e) ||
        mm_learner_create(argv[2], cfg, argc > 5 ? strtoull(argv[5], NULL, 10) : 0, atoi(argv[4]), &l, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        goto done;
    }
    mm_fit_data fd = {.X = X, .y = y, .n = n, .d = d, .n_classes = K};
    double t0 = now();
    clock_t c0 = clock();
    if (mm_learner_fit(l, &fd, &e)) { fprintf(stderr, "bench: %s\n", e.msg); goto done; }
    double t1 = now();
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    proba = malloc(nt * (size_t)K * sizeof *proba);
    pred = malloc(nt * sizeof *pred);
    if (!proba || !pred) goto done;
    if (mm_learner_predict_proba(l, Xt, nt, d, proba, &e)) { fprintf(stderr, "bench: %s\n", e.msg); goto done; }
    double t2 = now();
    mm_proba_argmax(proba, nt, K, pred);
    size_t ok = 0;
    for (size_t i = 0; i < nt; i++) ok += pred[i] == yt[i];
    printf("fit_s=%.4f predict_s=%.4f accuracy=%.4f fit_cpu_s=%.4f\n", t1 - t0, t2 - t1,
           (double)ok / (double)nt, cpu);
    rc = 0;
done:
    mm_learner_free(l);
    mm_cfg_free(cfg);
    free(X); free(Xt); free(y); free(yt); free(proba); free(pred);
    return rc;
}
