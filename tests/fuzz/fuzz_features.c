/* fuzz_features.c — libFuzzer target for the handcrafted feature sets.
 *
 * Byte 0 picks the feature set (music_paper, speech_162, mfcc_stats), whether
 * every statistic is pooled and whether chroma tuning is estimated; the rest
 * is read as float32 samples (any bit pattern: NaN, inf, huge, denormal, at
 * most 3 s at 22050 Hz). compute must either succeed with finite values or
 * refuse with a message; it must never crash or read out of bounds.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/featset.h"
#include "io/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const char *const sets[] = {"music_paper", "speech_162", "mfcc_stats"};
    const mm_featset_vt *vt = mm_featset_find(sets[data[0] % 3]);
    if (!vt) return 0;
    char yaml[160];
    snprintf(yaml, sizeof yaml, "%s%s", (data[0] >> 2) & 1 ?
             "stats: [mean, std, min, max, skew, delta_mean, delta_std]\n" : "",
             (data[0] >> 3) & 1 ? "tuning: estimate\n" : "");
    mm_cfg *cfg = NULL;
    mm_err e = {0};
    if (mm_cfg_parse_string(yaml, "fuzz.yaml", &cfg, &e)) return 0;
    void *st = NULL;
    if (vt->create(cfg, NULL, &st, &e)) {
        mm_cfg_free(cfg);
        abort(); /* fixed, valid configs must always be accepted */
    }
    size_t n = (size - 1) / sizeof(float);
    if (n > 22050 * 3) n = 22050 * 3;
    float *x = malloc((n ? n : 1) * sizeof *x);
    memcpy(x, data + 1, n * sizeof *x);
    size_t dim = vt->dim(st);
    float *out = malloc(dim * sizeof *out);
    if (vt->compute(st, x, n, out, &e) == 0)
        for (size_t i = 0; i < dim; i++)
            if (!isfinite(out[i])) abort();
    free(out);
    free(x);
    vt->free(st);
    mm_cfg_free(cfg);
    return 0;
}
