/* api.c — the public runtime API (src/melodic.h) over model bundles. */
#include "melodic.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bundle.h"

struct melodic_model {
    mm_bundle *b;
};

static int fail(const mm_err *e, int rc, char *err, size_t size)
{
    if (err && size) snprintf(err, size, "%s", e->msg[0] ? e->msg : "failed");
    return rc < 0 ? rc : -1;
}

int melodic_model_open(const char *path, const char *model_root, melodic_model **out, char *err, size_t size)
{
    mm_err e = {0};
    melodic_model *m = calloc(1, sizeof *m);
    if (!m) { mm_err_set(&e, MM_ENOMEM, "out of memory"); return fail(&e, MM_ENOMEM, err, size); }
    int rc = mm_bundle_open(path, model_root, 1, &m->b, &e);
    if (!rc && mm_bundle_calibration_clips(m->b)) {   /* the API classifies clips one by one */
        rc = mm_err_set(&e, MM_EINVAL, "%s: a bundle with per-speaker calibration needs earlier clips of the speaker; "
                        "the C API classifies single clips: export a model without preprocessing.group_norm", path);
        mm_bundle_free(m->b);
    }
    if (rc) { free(m); return fail(&e, rc, err, size); }
    *out = m;
    return 0;
}

void melodic_model_close(melodic_model *m)
{
    if (!m) return;
    mm_bundle_free(m->b);
    free(m);
}

int melodic_model_n_labels(const melodic_model *m) { return mm_bundle_n_classes(m->b); }
const char *melodic_model_label(const melodic_model *m, int i) { return mm_bundle_class_name(m->b, i); }

static int argmax(const float *p, int k)
{
    int best = 0;
    for (int c = 1; c < k; c++) if (p[c] > p[best]) best = c;
    return best;
}

int melodic_classify_file(const melodic_model *m, const char *path, float *proba, char *err, size_t size)
{
    mm_err e = {0};
    int rc = mm_bundle_classify_file(m->b, path, proba, NULL, NULL, &e);
    return rc ? fail(&e, rc, err, size) : argmax(proba, mm_bundle_n_classes(m->b));
}

int melodic_classify_memory(const melodic_model *m, const void *data, size_t len, float *proba, char *err,
                            size_t size)
{
    mm_err e = {0};
    int rc = mm_bundle_classify_memory(m->b, data, len, "memory", proba, NULL, NULL, &e);
    return rc ? fail(&e, rc, err, size) : argmax(proba, mm_bundle_n_classes(m->b));
}

static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* Raw samples go through the same decoder as files: wrapped as an in-memory
 * 32-bit float WAV, so resampling and trimming are exactly the file path's. */
int melodic_classify_samples(const melodic_model *m, const float *x, size_t n, int sr, float *proba,
                             char *err, size_t size)
{
    mm_err e = {0};
    if (!x || n == 0 || sr < 1000 || sr > 768000 || n > (SIZE_MAX - 64) / 4 || n * 4 > 0xFFFFFF00u) {
        mm_err_set(&e, MM_EINVAL, "classify_samples: expected 1 or more samples at 1000..768000 Hz, got %zu at %d Hz", n, sr);
        return fail(&e, MM_EINVAL, err, size);
    }
    size_t bytes = 44 + n * 4;
    uint8_t *w = malloc(bytes);
    if (!w) { mm_err_set(&e, MM_ENOMEM, "out of memory"); return fail(&e, MM_ENOMEM, err, size); }
    memcpy(w, "RIFF", 4); put32(w + 4, (uint32_t)(bytes - 8)); memcpy(w + 8, "WAVEfmt ", 8);
    put32(w + 16, 16); put16(w + 20, 3); put16(w + 22, 1); put32(w + 24, (uint32_t)sr);
    put32(w + 28, (uint32_t)sr * 4); put16(w + 32, 4); put16(w + 34, 32);
    memcpy(w + 36, "data", 4); put32(w + 40, (uint32_t)(n * 4));
    memcpy(w + 44, x, n * 4);   /* little-endian host assumed (x86-64, arm64) */
    int rc = mm_bundle_classify_memory(m->b, w, bytes, "samples", proba, NULL, NULL, &e);
    free(w);
    return rc ? fail(&e, rc, err, size) : argmax(proba, mm_bundle_n_classes(m->b));
}
