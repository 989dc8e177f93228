/* embed_models.h — pretrained audio backbones available to `melodic embed` and
 * `melodic tag`. The table lives in cmd_embed.c: adding a model is one entry
 * there (name, default weights, rate, sizes, load/run/free functions). */
#ifndef MM_EMBED_MODELS_H
#define MM_EMBED_MODELS_H

#include <stddef.h>
#include "core/err.h"

typedef struct mm_embed_model {
    const char *name;             /* --model value, e.g. "mn04" */
    const char *default_weights;  /* relative to the model root */
    int sample_rate;              /* audio is resampled to this rate */
    int emb_dim;                  /* embedding size */
    int n_classes;                /* AudioSet scores (527) */
    /* Load weights; *net is opaque, shared read-only by all threads. */
    int (*load)(const char *weights, void **net, mm_err *err);
    /* Mono audio x (n at sample_rate) → emb (emb_dim) and scores (n_classes),
     * either may be NULL. Thread-safe; parallel != 0 allows OpenMP inside. */
    int (*run)(const void *net, const float *x, size_t n, float *emb, float *scores,
               int parallel, mm_err *err);
    void (*free)(void *net);
} mm_embed_model;

/* The model called `name`, or NULL. */
const mm_embed_model *mm_embed_model_find(const char *name);
/* Comma-separated model names for messages ("mn04, cnn14"). */
const char *mm_embed_model_names(void);
/* Resolve a weights path: NULL → <model_root>/<default_weights>; an existing or
 * absolute path as given; otherwise relative to the model root. */
void mm_embed_weights_path(const mm_embed_model *m, const char *weights, char *buf, size_t size);

#endif
