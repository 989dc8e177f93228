/* fuzz_audio.c — libFuzzer target for the audio decoder (mm_audio_load_memory): arbitrary
 * bytes as an upload, decoded with down-mix, resampling to 16 kHz, trim and crop, must
 * either succeed with finite samples or fail with a one-line error — never crash or leak.
 * Whatever decodes is also run through the cnn14_16k front end (any length).
 * Build: clang -fsanitize=fuzzer,address -Isrc tests/fuzz/fuzz_audio.c <sources> <libs> */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "dsp/frontend.h"

/* libvorbisfile leaks the headers of a crafted multi-stream Ogg when opening fails
 * (xiph/vorbis issue #125, 5784 bytes from vorbis_info_init); not ours to fix here. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libvorbis.so\nleak:libvorbisfile.so\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mm_audio_opts o;
    mm_audio_opts_default(&o);
    /* Let the first byte pick options so that every post-processing path gets exercised. */
    if (size > 0) {
        o.target_sr = (data[0] & 1) ? 16000 : 0;
        o.trim = (data[0] >> 1) & 1;
        o.fixed_seconds = (data[0] & 4) ? 0.05 : 0;
        o.fixed_center = (data[0] >> 3) & 1;
        o.peak_normalize = (data[0] >> 4) & 1;
    }
    mm_audio a = {0};
    mm_err e = {0};
    if (mm_audio_load_memory(data, size, "fuzz-input", &o, &a, &e) == 0) {
        for (size_t i = 0; i < a.n; i++)
            if (!isfinite(a.x[i])) abort();
        static mm_frontend *fe;
        if (!fe && mm_frontend_create(MM_FE_CNN14_16K, &fe, &e)) abort();
        size_t nf = mm_frontend_n_frames(fe, a.n);
        if (nf > 0 && a.n <= 160000) {
            float *lm = malloc(nf * 64 * sizeof *lm);
            if (!lm) abort();
            int rc = mm_frontend_compute(fe, a.x, a.n, lm, &e);
            if (rc == 0)
                for (size_t i = 0; i < nf * 64; i++)
                    if (isnan(lm[i])) abort();
            free(lm);
        }
        mm_audio_free(&a);
    } else {
        if (!e.msg[0] || strchr(e.msg, '\n')) abort();
    }
    return 0;
}
