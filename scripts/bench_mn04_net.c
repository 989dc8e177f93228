/* bench_mn04_net.c — time the mn04 network alone (no decode, no front end) on a
 * synthetic log-mel of 1000 frames (10 s). Built and run by scripts/bench_mn04.py:
 *   bench_mn04_net WEIGHTS REPS PARALLEL → prints "ms_per_clip <value>". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/mobilenet.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_mn04_net WEIGHTS REPS PARALLEL\n");
        return 2;
    }
    mm_err e = {0};
    mm_mobilenet *m;
    if (mm_mobilenet_load(argv[1], &m, &e)) {
        fprintf(stderr, "bench_mn04_net: %s\n", e.msg);
        return 1;
    }
    int reps = atoi(argv[2]), par = atoi(argv[3]);
    size_t T = 1000;
    float *mel = malloc(T * 128 * sizeof *mel), pooled[384], scores[527];
    uint64_t s = 1;
    for (size_t i = 0; i < T * 128; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        mel[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    mm_mobilenet_pool(m, mel, T, pooled, NULL, par, &e);   /* warm-up */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; r++) {
        if (mm_mobilenet_pool(m, mel, T, pooled, NULL, par, &e)) {
            fprintf(stderr, "bench_mn04_net: %s\n", e.msg);
            return 1;
        }
        mm_mobilenet_head(m, pooled, scores, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6) / reps;
    printf("ms_per_clip %.3f\n", ms);
    free(mel);
    mm_mobilenet_free(m);
    return 0;
}
