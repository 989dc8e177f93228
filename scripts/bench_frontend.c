/* bench_frontend.c — engine side of scripts/bench_frontend: decode (libsndfile) + resample
 * (soxr HQ) + Cnn14_16k log-mel of every file listed in LIST, OpenMP over files.
 * usage: bench_frontend LIST THREADS
 * prints: clips N seconds S(wall) clips_per_s R cpu_ms_per_clip C mean_logmel_db M failed F */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/audio.h"
#include "dsp/frontend.h"

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIST THREADS\n", argv[0]);
        return 2;
    }
    FILE *fp = fopen(argv[1], "r");
    if (!fp) { perror(argv[1]); return 1; }
    int threads = atoi(argv[2]);
    char **files = NULL, line[4096];
    size_t n = 0, cap = 0;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        if (n == cap) files = realloc(files, (cap = cap ? 2 * cap : 256) * sizeof *files);
        files[n++] = strdup(line);
    }
    fclose(fp);
    mm_err e = {0};
    mm_frontend *fe;
    if (mm_frontend_create(MM_FE_CNN14_16K, &fe, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double *means = calloc(n, sizeof *means), *t_dec = calloc(n, sizeof *t_dec),
           *t_res = calloc(n, sizeof *t_res), *t_fe = calloc(n, sizeof *t_fe);
    int failed = 0;
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double t0 = omp_get_wtime();
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) reduction(+ : failed)
    for (size_t i = 0; i < n; i++) {
        mm_err le = {0};
        /* The same work as mm_audio_load with target_sr = 16000, split to time each stage. */
        mm_audio a = {0};
        double c0 = thread_cpu();
        if (mm_audio_load(files[i], NULL, &a, &le)) { fprintf(stderr, "%s\n", le.msg); failed++; continue; }
        double c1 = thread_cpu();
        float *y = NULL;
        size_t ny = 0;
        if (mm_resample(a.x, a.n, a.sr, 16000, &y, &ny, &le)) { failed++; mm_audio_free(&a); continue; }
        mm_audio_free(&a);
        double c2 = thread_cpu();
        size_t nf = mm_frontend_n_frames(fe, ny);
        float *lm = malloc(nf * 64 * sizeof *lm);
        if (!lm || mm_frontend_compute(fe, y, ny, lm, &le)) { failed++; free(lm); free(y); continue; }
        double c3 = thread_cpu();
        t_dec[i] = c1 - c0, t_res[i] = c2 - c1, t_fe[i] = c3 - c2;
        double s = 0;
        for (size_t k = 0; k < nf * 64; k++) s += lm[k];
        means[i] = s / (double)(nf * 64);
        free(lm);
        free(y);
    }
    double dt = omp_get_wtime() - t0, cs = 0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
    for (size_t i = 0; i < n; i++) cs += means[i];
    printf("clips %zu seconds %.3f clips_per_s %.1f cpu_ms_per_clip %.2f mean_logmel_db %.4f "
           "failed %d\n",
           n, dt, n / dt, 1e3 * cpu / (double)n, cs / (double)n, failed);
    double sd = 0, sr = 0, sf = 0;
    for (size_t i = 0; i < n; i++) sd += t_dec[i], sr += t_res[i], sf += t_fe[i];
    fprintf(stderr, "engine cpu ms per clip: decode+downmix %.2f, resample (soxr HQ) %.2f, "
                    "front end %.2f\n", 1e3 * sd / n, 1e3 * sr / n, 1e3 * sf / n);
    free(t_dec), free(t_res), free(t_fe);
    mm_frontend_free(fe);
    for (size_t i = 0; i < n; i++) free(files[i]);
    free(files);
    free(means);
    return failed ? 1 : 0;
}
