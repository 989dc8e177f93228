/* bench_svm_driver.c — times our SVM and SMOTE on tables written by
 * scripts/bench_svm.py, printing one key=value line per measurement.
 * Usage: bench_svm_driver FILE.h5 N_THREADS GROUP...
 * Groups with attribute kind=svm hold X_train, y_train, X_test, y_test;
 * kind=smote hold X, y. Timing is wall clock (omp_get_wtime). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/smote.h"
#include "learn/svm.h"

static int n_labels(const int32_t *y, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) if (y[i] + 1 > k) k = y[i] + 1;
    return k;
}

static int run_group(hid_t loc, const char *name, int nt)
{
    mm_err e = {0};
    hid_t g = mm_h5_open_group(loc, name, &e);
    char *kind = NULL;
    if (g < 0 || mm_h5_attr_get_str(g, "kind", &kind, &e)) { fprintf(stderr, "bench: %s\n", e.msg); return -1; }
    int r;
    hsize_t dm[4];
    if (!strcmp(kind, "svm")) {
        float *Xtr, *Xte;
        int32_t *ytr, *yte;
        size_t ntr, nte, d;
        if (mm_h5_read_f32(g, "X_train", 2, &Xtr, &r, dm, &e)) goto fail;
        ntr = dm[0]; d = dm[1];
        if (mm_h5_read_f32(g, "X_test", 2, &Xte, &r, dm, &e)) goto fail;
        nte = dm[0];
        if (mm_h5_read_i32(g, "y_train", 1, &ytr, &r, dm, &e) || mm_h5_read_i32(g, "y_test", 1, &yte, &r, dm, &e)) goto fail;
        int k = n_labels(ytr, ntr);
        int64_t with_prob = 1;
        mm_h5_attr_get_i64(g, "probability", &with_prob, &e);
        for (int prob = 0; prob <= (int)with_prob; prob++) {
            mm_svm_params p = mm_svm_params_default();
            p.probability = prob;
            mm_svm *m;
            double t0 = omp_get_wtime();
            if (mm_svm_train(Xtr, ytr, ntr, d, k, &p, 0, nt, &m, &e)) goto fail;
            double t1 = omp_get_wtime();
            int32_t *pred = malloc(nte * sizeof *pred);
            float *pr = malloc(nte * (size_t)k * sizeof *pr);
            if (prob) {
                if (mm_svm_predict_proba(m, Xte, nte, d, pr, &e)) goto fail;
                mm_proba_argmax(pr, nte, k, pred);
            } else if (mm_svm_predict(m, Xte, nte, d, pred, &e)) goto fail;
            double t2 = omp_get_wtime();
            size_t c = 0;
            for (size_t i = 0; i < nte; i++) c += pred[i] == yte[i];
            printf("svm name=%s prob=%d threads=%d fit=%.4f predict=%.4f acc=%.4f n_sv=%zu\n", name, prob, nt,
                   t1 - t0, t2 - t1, (double)c / nte, mm_svm_n_support(m, NULL));
            fflush(stdout);
            free(pred); free(pr);
            mm_svm_free(m);
        }
        free(Xtr); free(Xte); free(ytr); free(yte);
    } else if (!strcmp(kind, "smote")) {
        float *X, *Xo;
        int32_t *y, *yo;
        size_t no;
        if (mm_h5_read_f32(g, "X", 2, &X, &r, dm, &e)) goto fail;
        size_t n = dm[0], d = dm[1];
        if (mm_h5_read_i32(g, "y", 1, &y, &r, dm, &e)) goto fail;
        mm_smote_params p = mm_smote_params_default();
        p.n_threads = nt;
        double t0 = omp_get_wtime();
        if (mm_smote_resample(X, y, n, d, n_labels(y, n), &p, 0, &Xo, &yo, &no, &e)) goto fail;
        double t1 = omp_get_wtime();
        printf("smote name=%s threads=%d time=%.4f n_out=%zu\n", name, nt, t1 - t0, no);
        fflush(stdout);
        free(X); free(y); free(Xo); free(yo);
    }
    free(kind);
    H5Gclose(g);
    return 0;
fail:
    fprintf(stderr, "bench: %s: %s\n", name, e.msg);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: bench_svm_driver FILE.h5 N_THREADS GROUP...\n"); return 2; }
    mm_h5_init();
    int nt = atoi(argv[2]);
    hid_t f;
    mm_err e = {0};
    if (mm_h5_open_read(argv[1], &f, &e)) { fprintf(stderr, "bench: %s\n", e.msg); return 1; }
    int rc = 0;
    for (int a = 3; a < argc && !rc; a++) rc = run_group(f, argv[a], nt);
    mm_h5_close(f);
    return rc ? 1 : 0;
}
