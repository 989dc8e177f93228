/* bench_cnn14_main.c — timing driver for scripts/bench_cnn14.py.
 *
 * Usage: bench_cnn14_main forward CKPT INPUTS.h5 OUT.h5 THREADS REPEATS ALGO [CLIPPAR]
 *          runs mm_cnn14_forward on every group's "logmel" of INPUTS.h5 with
 *          THREADS threads per clip (CLIPPAR=1: clips in parallel, 1 thread each),
 *          writes embeddings/scores to OUT.h5, prints one "key value" per line.
 *        bench_cnn14_main sgemm N THREADS   — measured sgemm GFLOP/s (N×N×N).
 * Not part of the library: built by the bench script against build/libmelodic.a.
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "io/h5.h"
#include "nn/cnn14.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Current resident set (MB) from /proc/self/statm. */
static double rss_now_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static int bench_sgemm(int n, int threads)
{
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b);
    float *c = malloc((size_t)n * n * sizeof *c);
    for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("sgemm_gflops %.2f\n", 2.0 * n * n * (double)n / best / 1e9);
    free(a); free(b); free(c);
    return 0;
}

typedef struct clip { char name[64]; float *lm; size_t frames; } clip;
typedef struct clips { clip *c; size_t n, cap; hid_t f; } clips;

static herr_t visit(hid_t loc, const char *name, const H5L_info_t *info, void *op)
{
    (void)info;
    clips *cs = op;
    char path[160];
    snprintf(path, sizeof path, "%s/logmel", name);
    if (!mm_h5_exists(loc, path)) return 0;
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? 2 * cs->cap : 64;
        cs->c = realloc(cs->c, cs->cap * sizeof *cs->c);
    }
    clip *c = &cs->c[cs->n];
    int rank;
    hsize_t d[4];
    mm_err err = {0};
    if (mm_h5_read_f32(loc, path, 2, &c->lm, &rank, d, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    c->frames = d[0];
    cs->n++;
    return 0;
}

int main(int argc, char **argv)
{
    mm_h5_init();
    if (argc >= 4 && !strcmp(argv[1], "sgemm")) return bench_sgemm(atoi(argv[2]), atoi(argv[3]));
    if (argc < 8 || strcmp(argv[1], "forward")) {
        fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
        return 2;
    }
    int threads = atoi(argv[5]), repeats = atoi(argv[6]), clippar = argc > 8 && atoi(argv[8]);
    mm_err err = {0};
    mm_cnn14_params p;
    mm_cnn14_params_default(&p);
    if (mm_conv3x3_algo_parse(argv[7], &p.algo, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 2; }
    double t0 = now();
    mm_cnn14 *m = NULL;
    if (mm_cnn14_load(argv[2], &p, &m, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    printf("load_s %.3f\n", now() - t0);
    double rss_model = rss_now_mb();
    clips cs = {0};
    hid_t f;
    if (mm_h5_open_read(argv[3], &f, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, &cs);
    mm_h5_close(f);
    size_t E = mm_cnn14_embedding_dim(m), K = mm_cnn14_n_classes(m);
    float *emb = malloc(cs.n * E * sizeof *emb), *sc = malloc(cs.n * K * sizeof *sc);
    double frames = 0, macs = 0;
    for (size_t i = 0; i < cs.n; i++) { frames += (double)cs.c[i].frames; macs += mm_cnn14_macs(m, cs.c[i].frames); }
    double best = 1e30;
    int fail = 0;
    for (int r = 0; r < repeats; r++) {
        double t1 = now();
        if (clippar) {
#pragma omp parallel for schedule(dynamic) num_threads(threads)
            for (size_t i = 0; i < cs.n; i++) {
                mm_err e2 = {0};
                if (mm_cnn14_forward(m, cs.c[i].lm, cs.c[i].frames, 1, emb + i * E, sc + i * K, &e2) < 0) fail = 1;
            }
        } else {
            for (size_t i = 0; i < cs.n; i++)
                if (mm_cnn14_forward(m, cs.c[i].lm, cs.c[i].frames, threads, emb + i * E, sc + i * K, &err) < 0) fail = 1;
        }
        double t = now() - t1;
        if (t < best) best = t;
    }
    if (fail) { fprintf(stderr, "forward failed: %s\n", err.msg); return 1; }
    printf("clips %zu\nframes %.0f\nbest_s %.4f\ngflops %.2f\npeak_rss_mb %.1f\nmodel_rss_mb %.1f\n"
           "rss_after_mb %.1f\n", cs.n, frames, best, 2.0 * macs / best / 1e9,
           peak_rss_kb() / 1024.0, rss_model, rss_now_mb());
    mm_h5_out o;
    if (mm_h5_create(argv[4], &o, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    for (size_t i = 0; i < cs.n; i++) {
        char name[160];
        hsize_t de[1] = {E}, ds[1] = {K};
        snprintf(name, sizeof name, "%s/embedding", cs.c[i].name);
        mm_h5_write_f32(o.file, name, emb + i * E, 1, de, &err);
        snprintf(name, sizeof name, "%s/scores", cs.c[i].name);
        mm_h5_write_f32(o.file, name, sc + i * K, 1, ds, &err);
    }
    if (mm_h5_commit(&o, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    for (size_t i = 0; i < cs.n; i++) free(cs.c[i].lm);
    free(cs.c); free(emb); free(sc);
    mm_cnn14_free(m);
    return 0;
}
