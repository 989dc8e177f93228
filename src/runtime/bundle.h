/* bundle.h — exported model bundles: everything needed to turn audio into
 * class probabilities, in one HDF5 file (format "melodic-bundle", v1).
 *
 * An export (exp/export.h) refits the named model (or ensemble, as a voting
 * learner) with its preprocessing on all of an experiment's labelled data;
 * mm_bundle_write then writes the feature pipeline (feature-set config,
 * audio settings, backbone weights' file name and SHA-256 — or the weights
 * themselves), the scaler, the model,
 * label names, the experiment's cross-validated metrics when its summary
 * exists, and provenance (resolved config, git commit, date, data
 * fingerprint). Layout: README "Model bundles".
 * Opening checks every part; a truncated, tampered or wrong-kind file, or
 * backbone weights whose checksum differs, is an error. A loaded bundle is
 * read-only: classify from many threads at once.
 */
#ifndef MM_BUNDLE_H
#define MM_BUNDLE_H

#include <stddef.h>
#include "core/err.h"
#include "io/cfg.h"

#define MM_BUNDLE_FORMAT "melodic-bundle"
#define MM_BUNDLE_VERSION 1

struct mm_featset_inst;
struct mm_scaler;
struct mm_learner;

/* Everything a bundle holds, as an export (exp/export.h) made it; all
 * borrowed. */
typedef struct mm_bundle_parts {
    const char *model;                  /* the model or ensemble's name in the experiment */
    const char *learner_name;           /* its learner ("voting" for an ensemble) */
    const char *experiment;             /* the experiment's name */
    const char *git_commit;             /* or NULL: "unknown" */
    unsigned long long data_fingerprint;/* of the feature table */
    size_t n_train;                     /* rows the model was fitted on (after SMOTE, augmentation) */
    size_t n_val;                       /* rows of the validation part, used only to stop early */
    size_t calibration_clips;           /* 0: an ordinary bundle; else clips of a speaker wanted */
    double clip_seconds;                /* length of the training clips in seconds (audio.fixed_seconds
                                           when the config crops/pads, else the median decoded duration
                                           of the training rows); 0: not recorded */
    const char *config_yaml;            /* the resolved experiment config */
    const char *features_yaml;          /* its `features:` */
    const char *audio_yaml;             /* its `audio:` (NULL: "{}") */
    const struct mm_featset_inst *sets; /* (n_sets) for the backbone weights' names and checksums */
    size_t n_sets;
    const char *model_root;             /* the config's model_root, or NULL for the default */
    int embed_weights;                  /* copy the weights' bytes in */
    const struct mm_scaler *scaler;     /* or NULL */
    const struct mm_learner *learner;   /* fitted */
    const char *const *label_names;     /* (n_classes) */
    size_t n_classes;
    const char *const *feature_names;   /* (n_features) */
    size_t n_features;
    const char *metrics;                /* summary.json text, or NULL for no /metrics */
} mm_bundle_parts;

/* Write a bundle to path (a temporary, renamed on success; nothing left on
 * failure). */
int mm_bundle_write(const char *path, const mm_bundle_parts *parts, mm_err *err);

typedef struct mm_bundle mm_bundle;

/* model_root: where backbone weights are looked up (NULL: the default root). */
int mm_bundle_open(const char *path, const char *model_root, int n_threads, mm_bundle **out,
                   mm_err *err);
void mm_bundle_free(mm_bundle *b);

int mm_bundle_n_classes(const mm_bundle *b);
const char *mm_bundle_class_name(const mm_bundle *b, int k);
/* Dimension of the scaled feature vector (the "embedding" used for similarity). */
size_t mm_bundle_dim(const mm_bundle *b);
const char *mm_bundle_model_name(const mm_bundle *b);
/* summary.json text of the experiment the bundle came from, or NULL. */
const char *mm_bundle_metrics(const mm_bundle *b);

/* Classify a file / encoded audio bytes: proba (n_classes); embedding
 * (mm_bundle_dim, may be NULL) receives the scaled features; *seconds (may
 * be NULL) the decoded duration. Thread-safe. */
int mm_bundle_classify_file(const mm_bundle *b, const char *path, float *proba, float *embedding,
                            double *seconds, mm_err *err);
int mm_bundle_classify_memory(const mm_bundle *b, const void *data, size_t len, const char *name,
                              float *proba, float *embedding, double *seconds, mm_err *err);

/* Per-speaker calibration. A bundle exported from an experiment with
 * preprocessing.group_norm standardises each clip's features with the
 * statistics of other clips of the same speaker (learn/groupnorm.h) before
 * its scaler: it returns here how many such clips it wants (the
 * experiment's group_norm clips, or 20 for "all"); 0 for an ordinary
 * bundle. mm_bundle_classify_* refuse a calibrated bundle (no history). */
size_t mm_bundle_calibration_clips(const mm_bundle *b);
/* Length in seconds of the clips the model was trained on (attribute
 * clip_seconds; `melodic index` windows songs by it); 0 for a bundle
 * written before it was recorded. */
double mm_bundle_clip_seconds(const mm_bundle *b);
/* SHA-256 (hex) of the bundle's feature pipeline — feature sets, audio
 * settings, backbone checksums: equal ids mean equal raw feature vectors, so
 * a calibration history stays valid across re-exports of one pipeline. */
const char *mm_bundle_pipeline_id(const mm_bundle *b);
/* Raw feature vector (mm_bundle_dim values, before calibration and scaler)
 * of a file or buffer. Thread-safe. */
int mm_bundle_features_file(const mm_bundle *b, const char *path, float *raw, double *seconds, mm_err *err);
int mm_bundle_features_memory(const mm_bundle *b, const void *data, size_t len, const char *name, float *raw,
                              double *seconds, mm_err *err);
/* Probabilities from a raw vector: calibrated with hist (k raw vectors of
 * the same speaker, k >= 1; required by a calibrated bundle, ignored by an
 * ordinary one), scaled, classified. embedding (may be NULL) as classify. */
int mm_bundle_predict(const mm_bundle *b, const float *raw, const float *hist, size_t k, float *proba,
                      float *embedding, mm_err *err);

#endif
