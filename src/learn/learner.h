/* learner.h — the one interface every classifier implements.
 *
 * A learner is created from a hyperparameter map (validated before any
 * training; unknown keys refused), fitted on a float32 feature matrix with
 * int32 labels in [0, n_classes), and predicts class probabilities. The
 * experiment runner, `melodic train/predict`, voting ensembles and the
 * runtime drive every learner through this table, so a new learner plugs in
 * by defining one `const mm_learner_vt mm_learner_<name>` and listing it in
 * registry.c's constant table.
 *
 * Threading: fit and predict may use up to n_threads OpenMP threads; results
 * must be identical for any n_threads (randomness from mm_rng streams keyed
 * by seed and unit, never by thread). A fitted learner is read-only during
 * predict_proba, so predictions may run concurrently.
 */
#ifndef MM_LEARNER_H
#define MM_LEARNER_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/fitdata.h"   /* mm_fit_data, mm_history */
#include "io/cfg.h"
#include "io/h5.h"

typedef struct mm_learner_vt {
    const char *name;         /* config name: "rf", "gbdt", "svm", "mlp", ... */
    const char *summary;      /* one line for `melodic help models` */
    /* The hyperparameter table (learn/params.h): defaults, parsing, checks,
     * `melodic models --params`; NULL for none. */
    const struct mm_param_table *params;
    /* 1: fit uses X_val (the runner carves one from the training fold);
     * 0: mm_learner_fit adds X_val's rows to the training rows, so a carve
     * made for another model costs this one nothing; -1: X_val is passed
     * through as it is (ensembles hand it to their members). */
    int wants_validation;
    /* 1: fits of separate instances, each on 1 thread, may run at the same
     * time (the fit touches no process-wide state: no BLAS or OpenMP thread
     * settings); the nested search then runs its inner fits side by side.
     * 0 (the default): one fit at a time. */
    int concurrent_fits;
    /* Validate `params` (a map, or NULL for defaults) and make an unfitted state. */
    int (*create)(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err);
    int (*fit)(void *state, const mm_fit_data *data, mm_err *err);
    /* proba: (n, n_classes) rows summing to 1. */
    int (*predict_proba)(const void *state, const float *X, size_t n, float *proba, mm_err *err);
    /* Write the fitted state into an (empty) HDF5 group / read it back. */
    int (*save)(const void *state, hid_t group, mm_err *err);
    int (*load)(hid_t group, int n_threads, void **state, mm_err *err);
    /* The fitted (or loaded) state's own shapes: the width of a probability
     * row (its class or label space) and of an input row; 0 and 0 when
     * unfitted. Required: mm_learner_load compares them with the group's
     * attributes and the caller's expectations, mm_learner_fit and
     * mm_learner_predict_proba with the sizes they were given, so a model
     * whose parts disagree is refused instead of reading or writing past a
     * buffer. */
    void (*shape)(const void *state, int *n_classes, size_t *n_features);
    /* Optional (may be NULL): whether this instance needs X_val (e.g. gbdt
     * only with early_stopping_rounds > 0, mlp only with early_stopping;
     * without, a given X_val only feeds the history curves); overrides
     * wants_validation > 0 when present. The runner and export carve a
     * validation part only for instances that need one. */
    int (*uses_validation)(const void *state);
    /* Optional (may be NULL): training history of the last fit. */
    const mm_history *(*history)(const void *state);
    void (*free)(void *state);
} mm_learner_vt;

/* A created learner: its table, its state and the shapes it was fitted on. */
typedef struct mm_learner {
    const mm_learner_vt *vt;
    void *state;
    int n_classes;            /* 0 until fitted */
    size_t n_features;        /* 0 until fitted */
} mm_learner;

/* Registry (registry.c, a constant table: thread-safe). NULL when the name is unknown. */
const mm_learner_vt *mm_learner_find(const char *name);
/* The available learners, NULL-terminated. */
const mm_learner_vt *const *mm_learner_list(void);

int mm_learner_create(const char *name, const mm_cfg *params, uint64_t seed, int n_threads,
                      mm_learner **out, mm_err *err);
/* Checks data (finite values, labels in range, at least two classes present)
 * before calling vt->fit. */
/* 1 when a fit of this learner uses a validation part (see uses_validation
 * and wants_validation); ensembles: when one of their members does. */
int mm_learner_uses_validation(const mm_learner *l);
int mm_learner_fit(mm_learner *l, const mm_fit_data *data, mm_err *err);
/* proba: (n, l->n_classes), the caller's buffer. Refuses d != l->n_features
 * and a state whose shapes disagree with the learner's (nothing written);
 * an output that is not finite (weights that overflow on this input) is
 * MM_EDATA, never a result. */
int mm_learner_predict_proba(const mm_learner *l, const float *X, size_t n, size_t d,
                             float *proba, mm_err *err);
/* argmax of proba rows (ties → lowest class). */
void mm_proba_argmax(const float *proba, size_t n, int n_classes, int32_t *y_pred);
/* Save into group: attributes learner, n_classes, n_features, then vt->save. */
int mm_learner_save(const mm_learner *l, hid_t group, mm_err *err);
/* Load from group. The model's own shapes (vt->shape) must equal the group's
 * n_classes / n_features attributes, and those the caller's expectations:
 * want_classes (e.g. the number of label names) and want_features (the input
 * width), each 0 when the caller has none. A mismatch is MM_EFORMAT with a
 * message naming the group, what it holds and what was expected. */
int mm_learner_load_expect(hid_t group, int n_threads, int want_classes, size_t want_features,
                           mm_learner **out, mm_err *err);
/* mm_learner_load_expect without expectations. */
int mm_learner_load(hid_t group, int n_threads, mm_learner **out, mm_err *err);
const mm_history *mm_learner_history(const mm_learner *l);
void mm_learner_free(mm_learner *l);

/* Shared check used by learners: every value finite. Names the row/column. */
int mm_check_finite(const float *X, size_t n, size_t d, const char *what, mm_err *err);

/* Class names as outputs print them (JSON maps, TSV): 2..100000 of them
 * (a model's class count), each non-empty, valid UTF-8 without control
 * characters, all distinct. `what` names their source
 * (e.g. "label_names"); the message quotes the index at fault. */
int mm_check_class_names(const char *const *names, size_t n, const char *what, mm_err *err);

#endif
