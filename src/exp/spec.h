/* spec.h — parts of an experiment config shared by the runner and export:
 * the models and ensembles, the preprocessing, and the feature table. */
#ifndef MM_EXP_SPEC_H
#define MM_EXP_SPEC_H

#include <stddef.h>
#include "core/err.h"
#include "data/table.h"
#include "exp/runner.h"
#include "io/cfg.h"
#include "learn/learner.h"

typedef struct mm_exp_model {
    const char *name;         /* row name in results */
    const char *learner;      /* registry name */
    const mm_cfg *params;
    const mm_learner_vt *vt;
    int uses_val;             /* its fit uses a validation part (mm_learner_uses_validation) */
    /* ensembles */
    int is_ensemble;
    size_t n_members;
    int *members;             /* indices into specs */
    double *weights;          /* (n_members) or NULL */
    int hard;
} mm_exp_model;

typedef struct mm_exp_prep {
    int scaler;               /* 1: standard scaler */
    int smote;
    const mm_cfg *smote_params;
    int group_norm;           /* 1: per-group standardisation (learn/groupnorm.h) before all else */
    size_t group_norm_clips;  /* 0: all of the group's rows; K: K other rows per row */
} mm_exp_prep;

/* Parse `models:` and `ensembles:` (models first, then ensembles in *out;
 * n_models = number of plain models). Parameters are validated by creating
 * each learner once. Free with mm_exp_models_free. */
int mm_exp_parse_models(const mm_cfg *cfg, mm_exp_model **out, size_t *n_out, size_t *n_models,
                        mm_err *err);
void mm_exp_models_free(mm_exp_model *m, size_t n);
/* Parse `preprocessing:` (scaler, smote). */
int mm_exp_parse_prep(const mm_cfg *cfg, mm_exp_prep *p, mm_err *err);

/* `augment: {speed: [0.9, 1.1]}`: data augmentation by speed perturbation
 * (audio.speed): each factor gives a perturbed copy of every clip, and the
 * copies of a round's training clips join its training rows (never its
 * validation or test rows). */
#define MM_EXP_MAX_AUG 4
typedef struct mm_exp_augment {
    size_t n;                     /* 0: none */
    double speed[MM_EXP_MAX_AUG];
} mm_exp_augment;
/* Parse `augment` (absent: n = 0); needs dataset + features. */
int mm_exp_parse_augment(const mm_cfg *cfg, mm_exp_augment *a, mm_err *err);
/* The perturbed tables, extracted with audio.speed set (cached like any
 * table), each checked to line up with ref (labelled_only: after keeping
 * its labelled rows, as the runner does), group-normalised as ref was: X[k]
 * receives table k's features (ref->n, ref->d), malloc'd. */
/* Rows m .. m·(1 + n_aug) of X (d columns) and y: for each table k, its rows
 * idx[0..m) with labels[idx[i]] (X and y hold room for them). */
void mm_exp_append_augmented(float *X, int32_t *y, size_t m, size_t d, const float *const *aug, size_t n_aug,
                             const size_t *idx, const int32_t *labels);
int mm_exp_augment_tables(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_augment *a, const mm_table *ref,
                          int labelled_only, const mm_exp_prep *prep, uint64_t seed, float **X, mm_err *err);
/* preprocessing.group_norm on the labelled rows of t, in place (unlabelled
 * rows untouched): the runner and export call this one function, so an
 * exported model sees the features its cross-validation saw. */
int mm_exp_group_norm(mm_table *t, const mm_exp_prep *prep, uint64_t seed, int n_threads, mm_err *err);
/* The experiment's feature table: `table:` or the cached extraction of
 * `dataset` + `features` (+ `audio`). */
int mm_exp_get_table(const mm_cfg *cfg, const mm_run_opts *o, mm_table **out, mm_err *err);

#endif
