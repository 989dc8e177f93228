/* bench_logreg_driver.c — times our logreg on tables written by
 * scripts/bench_logreg.py, one key=value line per measurement.
 * Usage: bench_logreg_driver FILE.h5 N_THREADS REPEATS GROUP...
 * A group holds X_train, y_train, X_test, y_test, optionally proba_ref
 * (n_test, k) to compare with, and attributes C, max_iter, tol. Fit time is
 * the median over REPEATS wall-clock runs (omp_get_wtime). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/logreg.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_group(hid_t loc, const char *name, int nt, int reps)
{
    mm_err e = {0};
    hid_t g = mm_h5_open_group(loc, name, &e);
    if (g < 0) { fprintf(stderr, "bench: %s\n", e.msg); return -1; }
    float *Xtr = NULL, *Xte = NULL, *pr = NULL;
    int32_t *ytr = NULL, *yte = NULL, *pred = NULL;
    double *ref = NULL, times[64];
    int r, ok = -1;
    hsize_t dm[4];
    mm_logreg_params p = mm_logreg_params_default();
    int64_t mi;
    mm_logreg *m = NULL;
    if (mm_h5_read_f32(g, "X_train", 2, &Xtr, &r, dm, &e)) goto done;
    size_t ntr = dm[0], d = dm[1];
    if (mm_h5_read_f32(g, "X_test", 2, &Xte, &r, dm, &e)) goto done;
    size_t nte = dm[0];
    if (mm_h5_read_i32(g, "y_train", 1, &ytr, &r, dm, &e) || mm_h5_read_i32(g, "y_test", 1, &yte, &r, dm, &e)) goto done;
    if (mm_h5_attr_get_f64(g, "C", &p.C, &e) || mm_h5_attr_get_i64(g, "max_iter", &mi, &e) ||
        mm_h5_attr_get_f64(g, "tol", &p.tol, &e)) goto done;
    p.max_iter = mi;
    int k = 0;
    for (size_t i = 0; i < ntr; i++) if (ytr[i] + 1 > k) k = ytr[i] + 1;
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    for (int t = 0; t < reps; t++) {
        mm_logreg_free(m);
        m = NULL;
        double t0 = omp_get_wtime();
        if (mm_logreg_train(Xtr, ytr, ntr, d, k, &p, nt, &m, &e)) goto done;
        times[t] = omp_get_wtime() - t0;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_d);
    pr = malloc(nte * (size_t)k * sizeof *pr);
    pred = malloc(nte * sizeof *pred);
    if (!pr || !pred) goto done;
    double t0 = omp_get_wtime();
    if (mm_logreg_predict_proba(m, Xte, nte, d, pr, &e)) goto done;
    double tp = omp_get_wtime() - t0;
    mm_proba_argmax(pr, nte, k, pred);
    size_t c = 0;
    for (size_t i = 0; i < nte; i++) c += pred[i] == yte[i];
    double dp = -1;
    if (H5Lexists(g, "proba_ref", H5P_DEFAULT) > 0 && !mm_h5_read_f64(g, "proba_ref", 2, &ref, &r, dm, &e) &&
        dm[0] == nte && dm[1] == (hsize_t)k) {
        dp = 0;
        for (size_t i = 0; i < nte * (size_t)k; i++) dp = fmax(dp, fabs(pr[i] - ref[i]));
    }
    printf("logreg name=%s threads=%d fit=%.4f fit_min=%.4f predict=%.4f acc=%.4f n_iter=%ld converged=%d "
           "objective=%.10g proba_diff=%.3g\n", name, nt, times[reps / 2], times[0], tp, (double)c / nte,
           mm_logreg_n_iter(m), mm_logreg_converged(m), mm_logreg_objective_value(m), dp);
    fflush(stdout);
    ok = 0;
done:
    if (ok) fprintf(stderr, "bench %s: %s\n", name, e.msg);
    mm_logreg_free(m);
    free(Xtr); free(Xte); free(ytr); free(yte); free(pr); free(pred); free(ref);
    H5Gclose(g);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s FILE.h5 N_THREADS REPEATS GROUP...\n", argv[0]);
        return 2;
    }
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read(argv[1], &f, &e)) { fprintf(stderr, "bench: %s\n", e.msg); return 1; }
    int nt = atoi(argv[2]), reps = atoi(argv[3]), rc = 0;
    for (int a = 4; a < argc; a++)
        if (run_group(f, argv[a], nt, reps)) rc = 1;
    mm_h5_close(f);
    return rc;
}
