/* fuzz_bundle.c — libFuzzer target for model bundles as whole files.
 *
 * The input is written to a temporary .h5 file and opened with
 * mm_bundle_open (model root: an empty folder, so only embedded backbone
 * weights can be used); a bundle that opens must have valid class names and
 * classify a fixed clip (1 s of a 440 Hz tone, a WAV made in memory) into
 * finite probabilities in [0, 1] written to a buffer of exactly
 * mm_bundle_n_classes floats, or fail with a one-line error; no HDF5
 * object may stay open afterwards. Seeds: small
 * bundles of each learner kind from tests/test_bundle_hostile.c
 * (MM_FUZZ_SEEDS=DIR). Build: scripts/fuzz.sh. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/h5.h"
#include "learn/learner.h"
#include "runtime/bundle.h"

/* Debian's libhdf5 (1.10) leaks small blocks of its own when H5Fopen or a
 * read fails on a corrupt file (stacks end inside libhdf5, e.g. 104 bytes
 * from a changed byte in an object header); not ours to fix here. Our own
 * handles are checked instead: none may stay open after a bundle is freed. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5_serial.so\n";
}

/* libhdf5 allocates what a corrupt file declares (a string of 2^50 bytes);
 * it handles a NULL from malloc as a read error, as a release build sees it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* 1 s, 16 kHz mono 16-bit PCM WAV of a 440 Hz tone. */
static const uint8_t *tone_wav(size_t *len)
{
    enum { SR = 16000, N = 16000 };
    static uint8_t w[44 + 2 * N];
    static int done;
    if (!done) {
        const uint32_t riff = 36 + 2 * N, fmt = 16, sr = SR, rate = 2 * SR, bytes = 2 * N;
        const uint16_t pcm = 1, ch = 1, align = 2, bits = 16;
        memcpy(w, "RIFF", 4); memcpy(w + 4, &riff, 4); memcpy(w + 8, "WAVEfmt ", 8);
        memcpy(w + 16, &fmt, 4); memcpy(w + 20, &pcm, 2); memcpy(w + 22, &ch, 2);
        memcpy(w + 24, &sr, 4); memcpy(w + 28, &rate, 4); memcpy(w + 32, &align, 2);
        memcpy(w + 34, &bits, 2); memcpy(w + 36, "data", 4); memcpy(w + 40, &bytes, 4);
        for (int i = 0; i < N; i++) {
            int16_t s = (int16_t)(8000 * sin(2 * M_PI * 440.0 * i / SR));
            memcpy(w + 44 + 2 * i, &s, 2);
        }
        done = 1;
    }
    *len = sizeof w;
    return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], root[64];
    if (!path[0]) {
        mm_h5_init();
        snprintf(path, sizeof path, "/tmp/fuzz_bundle_%d.h5", (int)getpid());
        snprintf(root, sizeof root, "/tmp/fuzz_bundle_models_%d", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(data, 1, size, f);
    fclose(f);
    if (put != size) return 0;
    mm_bundle *b = NULL;
    mm_err e = {0};
    if (mm_bundle_open(path, root, 1, &b, &e) == 0) {
        int k = mm_bundle_n_classes(b);
        if (k < 2) abort();
        const char **names = malloc((size_t)k * sizeof *names);
        for (int c = 0; c < k; c++) names[c] = mm_bundle_class_name(b, c);
        if (mm_check_class_names(names, (size_t)k, "labels", &e)) abort();
        free(names);
        size_t len, dim = mm_bundle_dim(b);
        const uint8_t *wav = tone_wav(&len);
        float *p = malloc((size_t)k * sizeof *p), *emb = malloc(dim * sizeof *emb);
        if (mm_bundle_classify_memory(b, wav, len, "tone.wav", p, emb, NULL, &e) == 0) {
            for (int c = 0; c < k; c++)
                if (!(p[c] >= 0 && p[c] <= 1)) abort();
        } else if (strchr(e.msg, '\n')) {
            abort();
        }
        free(p);
        free(emb);
        mm_bundle_free(b);
    } else if (strchr(e.msg, '\n')) {
        abort();
    }
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort();   /* a file, group, dataset or attribute left open */
    unlink(path);
    return 0;
}
