/* bench_mn04_net.c — in-process timing of the mn04 engine for scripts/bench_mn04.py.
 *   bench_mn04_net WEIGHTS REPS PARALLEL
 *       the network alone on a synthetic 1000-frame (10 s) log-mel
 *   bench_mn04_net WEIGHTS REPS PARALLEL FILE...
 *       the whole pipeline per file: decode, mono, soxr to 32 kHz, front end,
 *       network, head (what `melodic embed` does for one file)
 * Prints "ms_per_clip <mean> min <fastest pass>" over REPS passes after a warm-up
 * (the minimum is the steadier figure on a shared machine). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "audio/audio.h"
#include "nn/mobilenet.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int one_pass(const mm_mobilenet *m, int argc, char **argv, const float *mel, int par,
                    mm_err *e)
{
    float pooled[384], scores[527];
    if (argc <= 4) {
        if (mm_mobilenet_pool(m, mel, 1000, pooled, NULL, par, e)) return 1;
        mm_mobilenet_head(m, pooled, scores, NULL);
        return 0;
    }
    for (int i = 4; i < argc; i++) {
        mm_audio_opts o;
        mm_audio_opts_default(&o);
        o.target_sr = MM_MOBILENET_SR;
        mm_audio a;
        if (mm_audio_load(argv[i], &o, &a, e)) return 1;
        int rc = mm_mobilenet_embed_audio(m, a.x, a.n, pooled, scores, par, e);
        mm_audio_free(&a);
        if (rc) return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_mn04_net WEIGHTS REPS PARALLEL [FILE...]\n");
        return 2;
    }
    mm_err e = {0};
    mm_mobilenet *m;
    if (mm_mobilenet_load(argv[1], &m, &e)) {
        fprintf(stderr, "bench_mn04_net: %s\n", e.msg);
        return 1;
    }
    int reps = atoi(argv[2]), par = atoi(argv[3]);
    float *mel = malloc(1000 * 128 * sizeof *mel);
    uint64_t s = 1;
    for (size_t i = 0; i < 1000 * 128; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        mel[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    int rc = one_pass(m, argc, argv, mel, par, &e);   /* warm-up */
    double sum = 0, best = 1e300, per = argc > 4 ? argc - 4 : 1;
    for (int r = 0; r < reps && !rc; r++) {
        double t0 = now_ms();
        rc = one_pass(m, argc, argv, mel, par, &e);
        double dt = (now_ms() - t0) / per;
        sum += dt;
        if (dt < best) best = dt;
    }
    if (rc) fprintf(stderr, "bench_mn04_net: %s\n", e.msg);
    else printf("ms_per_clip %.3f min %.3f\n", sum / reps, best);
    free(mel);
    mm_mobilenet_free(m);
    return rc;
}
