/* melodic.h — the Melodic Mind runtime for applications: one header.
 *
 * Open a model bundle made by `melodic export` (speech or music), then
 * classify audio — a file, encoded bytes (WAV, FLAC, Ogg, MP3) or raw mono
 * float samples at any rate. Link with `pkg-config --cflags --libs melodic`
 * after `make install PREFIX=...`.
 *
 * Conventions: functions return 0 on success, a negative code on failure,
 * and then write a one-line message into err (err_size bytes, may be NULL).
 * Handles own their memory; *_close(NULL) is a no-op. There are no globals:
 * once opened, a model may be used from many threads at once.
 */
#ifndef MELODIC_H
#define MELODIC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MELODIC_VERSION "0.1.0"

typedef struct melodic_model melodic_model;

/* model_root: where backbone weights are found (NULL: $MELODIC_MODELS, else
 * ../shared/models beside the checkout the running program was built in,
 * else PREFIX/share/melodic/models beside an installed library or binary —
 * never the working directory); not needed for bundles with embedded weights. */
int melodic_model_open(const char *bundle_path, const char *model_root, melodic_model **out,
                       char *err, size_t err_size);
void melodic_model_close(melodic_model *m);

int melodic_model_n_labels(const melodic_model *m);
/* Label i (0 <= i < n_labels); valid while the model is open. */
const char *melodic_model_label(const melodic_model *m, int i);

/* proba receives n_labels probabilities; the return value on success is the
 * index of the most probable label (>= 0). */
int melodic_classify_file(const melodic_model *m, const char *path, float *proba, char *err,
                          size_t err_size);
int melodic_classify_memory(const melodic_model *m, const void *data, size_t len, float *proba,
                            char *err, size_t err_size);
/* Raw mono samples in [-1, 1] at sample_rate Hz. */
int melodic_classify_samples(const melodic_model *m, const float *samples, size_t n,
                             int sample_rate, float *proba, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif

#endif
