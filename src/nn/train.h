/* train.h — minibatch training of an mm_net with softmax cross-entropy and
 * Adam: seeded shuffling, learning-rate schedules, scikit-learn's L2 penalty
 * (alpha), class weights, label smoothing, early stopping with restore-best
 * and a per-epoch history. Shared by the `mlp` and `cnn1d` learners.
 *
 * Stopping rule (scikit-learn's n_iter_no_change): after each epoch the
 * monitored score (validation accuracy, -validation loss, or -training loss
 * when there is no validation set) counts as an improvement when it beats the
 * best so far by more than tol; training stops once more than `patience`
 * epochs in a row did not improve. With validation, the parameters of the
 * best epoch are restored (restore_best).
 *
 * Determinism: the epoch order comes from the stream (seed, 0x5f, epoch),
 * dropout masks from (seed, step, layer/sample); results are identical for
 * any n_threads (see layers.h).
 */
#ifndef MM_NN_TRAIN_H
#define MM_NN_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"
#include "core/fitdata.h"
#include "nn/adam.h"
#include "nn/net.h"

typedef enum { MM_LR_CONSTANT = 0, MM_LR_STEP = 1, MM_LR_COSINE = 2 } mm_lr_schedule;
typedef enum { MM_MONITOR_VAL_LOSS = 0, MM_MONITOR_VAL_ACCURACY = 1 } mm_train_monitor;

typedef struct mm_train_params {
    size_t epochs;            /* maximum epochs (>= 1) */
    size_t batch_size;        /* rows per step; 0 = min(200, n) (scikit-learn's 'auto') */
    mm_adam_params adam;      /* lr, betas, eps, weight_decay and its mode */
    double alpha;             /* scikit-learn L2: + alpha/(2B) sum W^2 over dense/conv kernels */
    mm_lr_schedule schedule;  /* per epoch e: step lr*gamma^floor(e/step_size); cosine to lr_min */
    size_t step_size;         /* epochs per step (MM_LR_STEP), >= 1 */
    double gamma;             /* step factor */
    double lr_min;            /* cosine floor */
    int early_stopping;       /* 1: stop and restore on validation data (X_val, or a carved fraction) */
    double validation_fraction; /* carved (stratified, seeded) when early stopping and no X_val */
    mm_train_monitor monitor; /* what early stopping watches */
    size_t patience;          /* epochs without improvement tolerated (n_iter_no_change) */
    double tol;               /* minimum improvement */
    int stop_on_train_loss;   /* without early stopping: the same rule on the training loss */
    int restore_best;         /* with early stopping: keep the best epoch's parameters */
    int shuffle;              /* reshuffle rows each epoch */
    double label_smoothing;   /* in [0, 1) */
    int balanced;             /* class weights n / (k n_c) (scikit-learn 'balanced') */
    uint64_t seed;
    int n_threads;            /* OpenMP threads during training (BLAS calls are single-threaded blocks) */
} mm_train_params;

/* epochs 200, batch 0 (auto), Adam defaults, alpha 0, constant lr, early
 * stopping off, validation_fraction 0.1, monitor val accuracy, patience 10,
 * tol 1e-4, stop_on_train_loss 1, restore_best 1, shuffle 1, no smoothing. */
mm_train_params mm_train_params_default(void);

/* Per-epoch record, owned by the caller of mm_train_fit (mm_train_log_free). */
typedef struct mm_train_log {
    size_t n;                                   /* epochs run */
    float *train_loss, *train_acc;              /* (n) */
    float *val_loss, *val_acc;                  /* (n), NULL without validation */
    long best;                                  /* epoch kept, -1 when the last */
} mm_train_log;

/* Train a built, initialised net on data (classes in [0, n_classes), which
 * must equal the net's output size). On success *log receives the history
 * (free any previous one first). */
int mm_train_fit(mm_net *net, const mm_train_params *p, const mm_fit_data *data, mm_train_log *log,
                 mm_err *err);
void mm_train_log_free(mm_train_log *log);

/* One optimiser step on the batch X (B, in_dim), y (B): training forward
 * (dropout stream (drop_seed, step)), cross-entropy with class weights cw
 * (NULL = 1) and smoothing, backward, + alpha/B * W on kernels, Adam step
 * with learning rate lr. *loss receives the batch loss including the alpha
 * term, *correct the rows predicted right (either may be NULL). */
int mm_train_step(mm_net *net, mm_adam *opt, const float *X, const int32_t *y, size_t B, const float *cw,
                  double smoothing, double alpha, double lr, uint64_t drop_seed, uint64_t step, double *loss,
                  size_t *correct, mm_err *err);


/* A list of integers in [min, max] under key: a sequence or a single
 * integer. Missing: def (ndef values). At most maxn values. */
int mm_train_cfg_int_list(const mm_cfg *map, const char *key, const long *def, size_t ndef, long min, long max,
                          long *out, size_t maxn, size_t *n, mm_err *err);

/* Softmax probabilities (n, out_dim) of the net in eval mode. */
int mm_net_predict_proba(const mm_net *net, const float *X, size_t n, float *proba, mm_err *err);

/* The state that the neural learners (mlp, cnn1d) share: training
 * parameters, the fitted network and its per-epoch history. `name` prefixes
 * every error message. */
typedef struct mm_net_model {
    mm_train_params tp;
    mm_net *net;          /* NULL until fitted or loaded */
    mm_train_log log;
    mm_history hist;      /* views into log */
} mm_net_model;

/* Free the network and the history (the struct itself is the caller's). */
void mm_net_model_release(mm_net_model *m);
/* Initialise a built `net` with `init` and m->tp.seed, train it on data and
 * keep it (replacing a previous fit). Takes ownership of net in every case. */
int mm_net_model_fit(mm_net_model *m, mm_net *net, mm_net_init_scheme init, const mm_fit_data *data,
                     const char *name, mm_err *err);
int mm_net_model_predict_proba(const mm_net_model *m, const char *name, const float *X, size_t n,
                               float *proba, mm_err *err);
int mm_net_model_save(const mm_net_model *m, const char *name, hid_t g, mm_err *err);
/* Load a saved network into a zeroed m (default training parameters). */
int mm_net_model_load(mm_net_model *m, const char *name, hid_t g, int n_threads, mm_err *err);
/* The last fit's history, or NULL when there is none (e.g. after load). */
const mm_history *mm_net_model_history(const mm_net_model *m);

#endif
