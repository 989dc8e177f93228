/* fitdata.h — what a learner is fitted on and the training history it
 * reports: plain views shared by learn/ (the learner interface) and nn/
 * (network training), so neither folder needs the other's headers for them.
 * Dependency-free: no HDF5, no config, no allocation. */
#ifndef MM_FITDATA_H
#define MM_FITDATA_H

#include <stddef.h>
#include <stdint.h>

/* Borrowed views; the caller keeps them alive during the fit. */
typedef struct mm_fit_data {
    const float *X;        /* (n, d) row-major training features */
    const int32_t *y;      /* (n) labels in [0, n_classes) */
    size_t n, d;
    int n_classes;
    const float *X_val;    /* (n_val, d) validation features for early stopping, or NULL */
    const int32_t *y_val;  /* (n_val) */
    size_t n_val;
    /* Optional progress of an iterative fit (neural training: once per epoch,
     * epoch counted from 1 of at most n_epochs; val_loss NaN without a
     * validation part). Called from the fitting thread; must not fail. */
    void (*on_epoch)(void *ctx, size_t epoch, size_t n_epochs, double train_loss, double val_loss);
    void *epoch_ctx;
} mm_fit_data;

/* Per-epoch (or per-round) training history, owned by the learner. Arrays
 * may be NULL when not measured (e.g. no validation set). */
typedef struct mm_history {
    size_t n;              /* epochs or boosting rounds recorded */
    const float *train_loss, *train_acc, *val_loss, *val_acc;   /* (n) each */
    long best;             /* index of the epoch kept (restore-best), -1 if none */
} mm_history;

#endif
