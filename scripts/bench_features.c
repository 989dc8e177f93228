/* bench_features.c — engine side of scripts/bench_features.py.
 *
 * Decodes every clip listed in a file (mm_audio_load, resampled to the feature
 * set's rate, libsoxr), then times the feature set over all clips with
 * OpenMP (one clip per iteration, dynamic schedule) at the requested thread
 * count. Prints one line "decode_s=... features_s=... clips=... dim=...",
 * writes the feature matrix (clips x dim float32, raw) when a path is given,
 * and the decoded audio when a second path is given.
 * Built and run by the Python script; not part of the library.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "audio/audio.h"
#include "features/featset.h"

/* CPU seconds of the whole process (all threads): less sensitive than wall
 * time to other jobs on a shared machine. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + ru.ru_stime.tv_sec +
           1e-6 * ru.ru_stime.tv_usec;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_features FEATSET THREADS LISTFILE [OUT.f32 [AUDIO.bin]]\n");
        return 2;
    }
    const mm_featset_vt *vt = mm_featset_find(argv[1]);
    int threads = atoi(argv[2]);
    if (!vt || threads < 1) {
        fprintf(stderr, "bench_features: unknown feature set '%s' or bad thread count '%s'\n",
                argv[1], argv[2]);
        return 2;
    }
    FILE *lf = fopen(argv[3], "r");
    if (!lf) {
        fprintf(stderr, "bench_features: cannot read %s\n", argv[3]);
        return 1;
    }
    char **paths = NULL, line[4096];
    size_t n = 0, cap = 0;
    while (fgets(line, sizeof line, lf)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        if (n == cap) paths = realloc(paths, (cap = cap ? 2 * cap : 256) * sizeof *paths);
        paths[n++] = strdup(line);
    }
    fclose(lf);
    mm_err e = {0};
    void *st = NULL;
    if (vt->create(NULL, NULL, &st, &e)) {
        fprintf(stderr, "bench_features: %s\n", e.msg);
        return 1;
    }
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    o.target_sr = vt->sample_rate(st);
    mm_audio *a = calloc(n, sizeof *a);
    size_t dim = vt->dim(st);
    float *out = malloc(n * dim * sizeof *out);
    int failed = 0;
    double t0 = now();
#pragma omp parallel for schedule(dynamic) num_threads(threads) reduction(+ : failed)
    for (size_t i = 0; i < n; i++) {
        mm_err le = {0};
        if (mm_audio_load(paths[i], &o, &a[i], &le)) {
            fprintf(stderr, "bench_features: %s\n", le.msg);
            failed++;
        }
    }
    double t1 = now(), c1 = cpu_now();
#pragma omp parallel for schedule(dynamic) num_threads(threads) reduction(+ : failed)
    for (size_t i = 0; i < n; i++) {
        mm_err le = {0};
        if (a[i].x && vt->compute(st, a[i].x, a[i].n, out + i * dim, &le)) {
            fprintf(stderr, "bench_features: %s: %s\n", paths[i], le.msg);
            failed++;
        }
    }
    double t2 = now(), c2 = cpu_now();
    printf("decode_s=%.4f features_s=%.4f features_cpu_s=%.4f clips=%zu dim=%zu failed=%d\n",
           t1 - t0, t2 - t1, c2 - c1, n, dim, failed);
    if (argc > 4) {
        FILE *of = fopen(argv[4], "wb");
        if (of) {
            fwrite(out, sizeof *out, n * dim, of);
            fclose(of);
        }
    }
    if (argc > 5) {
        /* decoded audio, for the numpy side to run on the very same samples:
         * per clip an int64 length, then that many float32 samples */
        FILE *af = fopen(argv[5], "wb");
        for (size_t i = 0; af && i < n; i++) {
            long long len = (long long)a[i].n;
            fwrite(&len, sizeof len, 1, af);
            if (a[i].n) fwrite(a[i].x, sizeof(float), a[i].n, af);
        }
        if (af) fclose(af);
    }
    for (size_t i = 0; i < n; i++) {
        mm_audio_free(&a[i]);
        free(paths[i]);
    }
    free(a);
    free(paths);
    free(out);
    vt->free(st);
    return failed ? 1 : 0;
}
