/* spec.h — parts of an experiment config shared by the runner and export:
 * the models and ensembles, the nested hyperparameter search, the
 * preprocessing, augmentation and the feature table (spec.c). Parsing
 * validates everything before any work; errors name file, line and key. */
#ifndef MM_EXP_SPEC_H
#define MM_EXP_SPEC_H

#include <stddef.h>
#include "core/err.h"
#include "data/extract.h"
#include "data/table.h"
#include "eval/splits.h"
#include "exp/corrupt.h"
#include "exp/runner.h"
#include "io/cfg.h"
#include "learn/learner.h"

/* An ensemble has at most this many members (checked when parsed). */
#define MM_EXP_MAX_MEMBERS 64

typedef struct mm_exp_model {
    const char *name;         /* row name in results */
    const char *learner;      /* registry name */
    const mm_cfg *params;
    const mm_learner_vt *vt;
    int uses_val;             /* its fit uses a validation part (mm_learner_uses_validation) */
    /* ensembles */
    int is_ensemble;
    size_t n_members;         /* 2..MM_EXP_MAX_MEMBERS */
    int *members;             /* indices into specs */
    double *weights;          /* (n_members) or NULL; >= 0 with a positive sum */
    int hard;
    /* search (mm_exp_parse_search): 0 candidates = the params as given */
    size_t n_cand;
    mm_cfg **cand_params;     /* (n_cand) params with the candidate's values put in (owned) */
    char **cand_text;         /* (n_cand) the candidate's values as a YAML flow map, "{C: 0.01}" (owned) */
} mm_exp_model;

/* `search:` — nested, group-aware hyperparameter search. In every outer
 * round each candidate of a searched model is fitted on the inner folds of
 * that round's training part (scaler, SMOTE, augmentation inside each inner
 * fold), the best mean inner score wins (ties: the first candidate), and it
 * is refitted on the whole training part and tested on the outer fold. */
enum { MM_EXP_METRIC_ACCURACY, MM_EXP_METRIC_BALANCED_ACCURACY, MM_EXP_METRIC_MACRO_F1 };
#define MM_EXP_MAX_CANDIDATES 1000
typedef struct mm_exp_search {
    int enabled;
    int metric;               /* MM_EXP_METRIC_* */
    const char *metric_name;  /* as configured */
    mm_split_params inner;    /* group_kfold, stratified_group_kfold, stratified_kfold or logo */
    const char *inner_kind;   /* as configured, e.g. "group_kfold" */
} mm_exp_search;

typedef struct mm_exp_prep {
    int scaler;               /* 1: standard scaler */
    int smote;
    const mm_cfg *smote_params;
    int group_norm;           /* 1: per-group standardisation (learn/groupnorm.h) before all else */
    size_t group_norm_clips;  /* 0: all of the group's rows; K: K other rows per row */
    int domain_norm;          /* 1: per_corpus, each corpus standardised by its own statistics (exp/cross_corpus.h) */
} mm_exp_prep;

/* Parse `models:` and `ensembles:` (models first, then ensembles in *out;
 * n_models = number of plain models). Parameters are validated by creating
 * each learner once. Free with mm_exp_models_free. */
int mm_exp_parse_models(const mm_cfg *cfg, mm_exp_model **out, size_t *n_out, size_t *n_models,
                        mm_err *err);
void mm_exp_models_free(mm_exp_model *m, size_t n);
/* Parse `search:` (absent: s->enabled = 0) and fill the candidates of the
 * plain models it names (specs[0..n_models)), in scikit-learn's
 * ParameterGrid order: keys sorted by name, the last varying fastest, so
 * ties resolve as GridSearchCV's do. Refused: an unknown model or parameter
 * (each candidate is created once), an empty list, a metric the runner
 * does not compute, an inner protocol other than the K-fold kinds and logo. */
int mm_exp_parse_search(const mm_cfg *cfg, mm_exp_model *specs, size_t n_models, mm_exp_search *s,
                        mm_err *err);
void mm_exp_search_release(mm_exp_search *s);
/* The score of predictions under metric (MM_EXP_METRIC_*): sklearn's. */
int mm_exp_score(int metric, const int32_t *y_true, const int32_t *y_pred, size_t n, int n_classes,
                 double *score, mm_err *err);
/* Parse `preprocessing:` (scaler, smote, group_norm, domain_norm: none | per_corpus). */
int mm_exp_parse_prep(const mm_cfg *cfg, mm_exp_prep *p, mm_err *err);

/* `augment:` data augmentation: each entry gives a perturbed copy of every clip (one
 * table, cached by a hash of its parameters and seed), and the copies of a round's
 * training clips join its training rows (never its validation or test rows).
 *   speed: [0.9, 1.1]            one table per factor (audio.speed: tempo and pitch)
 *   gain: {db: [-20, 20]}        the others one table each, every clip drawing its values
 *   noise: {color: [white, pink, brown], snr: [5, 10, 20]}
 *   babble: {snr: [...], speakers: 4}   other speakers sharing the clip's role in every round
 *   music: {snr: [...], dir: music-4q}  even-numbered files of the folder
 *   reverb: {rt60: [0.2, 0.5, 1.0]}, telephone: true, codec: {format: [mp3, opus], kbps: [16, 32, 64]},
 *   pitch: {semitones: [-2, 2]} (level matched after the shift)
 *   specaugment: {copies: 2, time_masks: 2, time_width: 40, freq_masks: 2, freq_width: 15}
 *                copies with SpecAugment masks on the log-mel before the frozen network
 *                (mn04_embedding / mn04_layers only; features/mn04_embedding.c)
 * Values out of range (exp/corrupt.h), unknown augmentations and noise folders without
 * audio are refused before any work. */
#define MM_EXP_MAX_AUG 16
typedef struct mm_exp_augment {
    size_t n;                     /* tables: speed factors, then corruptions; 0: none */
    size_t n_speed;
    double speed[MM_EXP_MAX_AUG];
    size_t n_corr;
    mm_corr corr[MM_EXP_MAX_AUG];
    size_t n_spec;                /* specaugment copies (the last tables) */
    const mm_cfg *spec;           /* the specaugment map (in the config; lives as long as it) */
} mm_exp_augment;
/* Parse `augment` (absent: n = 0); needs dataset + features. */
int mm_exp_parse_augment(const mm_cfg *cfg, mm_exp_augment *a, mm_err *err);
/* The same grammar under another top-level key (augment_before_split, exp/leakage.h);
 * messages name that key. */
int mm_exp_parse_augment_key(const mm_cfg *cfg, const char *key, mm_exp_augment *a, mm_err *err);
/* Rows m .. m·(1 + n_aug) of X (d columns) and y: for each table k, its rows
 * idx[0..m) with labels[idx[i]] (X and y hold room for them). */
void mm_exp_append_augmented(float *X, int32_t *y, size_t m, size_t d, const float *const *aug, size_t n_aug,
                             const size_t *idx, const int32_t *labels);
/* The perturbed tables, extracted with audio.speed set or through the corruption
 * (cached like any table), each checked to line up with ref (labelled_only: after keeping
 * its labelled rows, as the runner does), group-normalised as ref was: X[k] receives
 * table k's features (ref->n, ref->d), malloc'd. Babble pools come from split (rows of
 * ref, labelled_only); split NULL: every row is a training row (export). */
int mm_exp_augment_tables(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_augment *a, const mm_table *ref,
                          int labelled_only, const mm_exp_prep *prep, uint64_t seed, float **X, mm_err *err);
int mm_exp_augment_tables_split(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_augment *a, const mm_table *ref,
                                int labelled_only, const mm_exp_prep *prep, uint64_t seed, const mm_split *split,
                                float **X, mm_err *err);
/* One corrupted copy of the experiment's table (before keep-labelled): every clip
 * through corruption c with seed (cache key: the corruption's key), babble pools from
 * split (NULL: one pool). */
int mm_exp_corrupted_table(const mm_cfg *cfg, const mm_run_opts *o, const mm_corr *c, uint64_t seed,
                           const mm_split *split, mm_table **out, mm_err *err);
/* Checks a corruption can run before any work (noise folders, babble pools). */
int mm_exp_check_corruption(const mm_cfg *cfg, const mm_corr *c, const mm_split *split, mm_err *err);
/* preprocessing.group_norm on the labelled rows of t, in place (unlabelled
 * rows untouched): the runner and export call this one function, so an
 * exported model sees the features its cross-validation saw. */
int mm_exp_group_norm(mm_table *t, const mm_exp_prep *prep, uint64_t seed, int n_threads, mm_err *err);
/* Keep the labelled rows of a table, in order (in place). */
void mm_exp_keep_labelled(mm_table *t);
/* mkdir -p. */
int mm_exp_mkdirs(const char *path, mm_err *err);
/* The experiment's feature table: `table:` or the cached extraction of
 * `dataset` + `features` (+ `audio`). */
int mm_exp_get_table(const mm_cfg *cfg, const mm_run_opts *o, mm_table **out, mm_err *err);
/* The same with every clip passed through transform (data/extract.h) before level
 * normalisation and the front end; transform_key (a map describing the transform: kind,
 * parameters, seed, noise sources) joins the cache key, so each setting is its own table. */
int mm_exp_get_table_transformed(const mm_cfg *cfg, const mm_run_opts *o, const mm_cfg *transform_key,
                                 mm_clip_fn transform, void *transform_ctx, mm_table **out, mm_err *err);

#endif
