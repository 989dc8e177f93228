/* unit.h — the experiment's unit of work: one model fitted and tested in
 * one round (repeat × fold). One implementation serves the local loop,
 * job-array shards and MPI ranks alike: prepare the round's data (scaler,
 * SMOTE and augmentation fitted on its training part only), search the
 * model's hyperparameters on inner folds of that training part when the
 * experiment has `search:`, fit, predict the test part; save and load a
 * unit as DIR/units/<model>__rNNN.h5 (--resume, merge), pack and unpack it
 * as bytes (MPI). Ensembles are combined from their members' units with
 * mm_voting_combine, as exported bundles are. Units run one at a time,
 * each learner on all threads; only a search's inner fits of a learner with
 * concurrent_fits run side by side, one thread each. Results do not depend
 * on the thread count either way.
 */
#ifndef MM_EXP_UNIT_H
#define MM_EXP_UNIT_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "data/table.h"
#include "eval/splits.h"
#include "exp/spec.h"

typedef struct mm_unit {
    int done, failed;
    char *error;             /* failed: what went wrong (owned) */
    size_t n_test;
    int32_t *test_index;     /* (n_test) row in the (labelled) table */
    int32_t *y_true, *y_pred;/* (n_test) */
    float *proba;            /* (n_test, k) */
    double fit_s, predict_s; /* fit_s includes the search */
    size_t n_hist;
    float *hist[4];          /* train_loss, train_acc, val_loss, val_acc (n_hist) or NULL */
    /* search: n_cand == 0 without one */
    size_t n_cand, n_inner;
    char **cand;             /* (n_cand) each candidate as a YAML flow map */
    double *scores;          /* (n_cand, n_inner) the metric on each inner fold */
    int32_t chosen;          /* index of the chosen candidate */
    /* robustness: the same model on the test rows under each corruption */
    size_t n_rob;
    float *rob_proba;        /* (n_rob, n_test, k) or NULL */
} mm_unit;

/* What every unit of a run shares; borrowed, read-only while units fit. */
typedef struct mm_unit_env {
    const mm_table *t;                 /* labelled rows only */
    const mm_split *split;
    const mm_exp_prep *prep;
    const mm_exp_search *search;       /* NULL or !enabled: no search */
    const float *const *aug;           /* (n_aug) augmented copies aligned with t */
    size_t n_aug;
    const float *const *rob;           /* (n_rob) corrupted copies aligned with t (robustness:) */
    size_t n_rob;
    uint64_t seed;
    int n_threads;
    const mm_exp_model *specs;         /* plain models first, then ensembles */
    size_t n_models;                   /* plain models */
    /* progress lines from inside a fit (epochs of neural units); NULL: none */
    void (*say)(void *ctx, const char *line);
    void *say_ctx;
} mm_unit_env;

/* Prepared round data, kept between consecutive units of one round (one
 * slot without and one with a validation part). Zero-initialise; release
 * with mm_unit_cache_free. Not thread-safe. */
typedef struct mm_unit_round {
    size_t round;                      /* (size_t)-1: empty */
    size_t n_train, n_val, n_test;
    float *Xtr, *Xva, *Xte;            /* (n_*, d) */
    int32_t *ytr, *yva;
    size_t *te_idx;                    /* (n_test) table rows */
    float *Xrob;                       /* (n_rob, n_test, d) the test rows corrupted, scaled; NULL without */
} mm_unit_round;
typedef struct mm_unit_cache {
    mm_unit_round slot[2];             /* [uses_val] */
    int init;
} mm_unit_cache;
void mm_unit_cache_free(mm_unit_cache *c);

/* Fit unit (model, round) into *u (zeroed first). A learner that fails
 * marks the unit failed (u->failed, u->error) and returns 0; nonzero only
 * for what ends the run (no memory, a protocol that leaves a part empty). */
int mm_unit_fit(const mm_unit_env *env, mm_unit_cache *cache, size_t model, size_t round, mm_unit *u,
                mm_err *err);

/* For the checks before any work: the inner split of round's training part
 * as a searched model of validation use `uses_val` sees it (*out owned by
 * the caller). Errors say what the inner protocol needs. */
int mm_unit_inner_split(const mm_unit_env *env, size_t round, int uses_val, mm_split **out, mm_err *err);

/* The ensemble spec e over its members' finished units of one round
 * (members[j] for e->members[j]): mm_voting_combine of their probabilities
 * (soft: weighted mean; hard: weighted vote shares), y_pred its argmax; the
 * robustness probabilities the same way, corruption by corruption. */
void mm_unit_ensemble(const mm_exp_model *e, const mm_unit *const *members, int k, mm_unit *u);

void mm_unit_clear(mm_unit *u);

/* DIR/units/<model>__rNNN.h5 (round 0-based, as in results.h5). */
void mm_unit_path(char *buf, size_t size, const char *dir, const char *model, size_t round);
/* Atomic write; cfg_hash binds the unit to its config and table. */
int mm_unit_save(const mm_unit *u, const char *path, unsigned long long cfg_hash, int k, mm_err *err);
/* 0 and u->done = 1 when path holds a unit of this config with k classes;
 * nonzero (u cleared) when absent, stale or unreadable. */
int mm_unit_load(mm_unit *u, const char *path, unsigned long long cfg_hash, int k);

/* A unit as bytes (malloc'd, *len) and back; unpack checks every length
 * against len and returns -1 for bytes that are not a unit of k classes. */
unsigned char *mm_unit_pack(const mm_unit *u, int k, size_t *len);
int mm_unit_unpack(const unsigned char *b, size_t len, int k, mm_unit *u);

#endif
