/* report.h — from finished units to results.h5, summary.md and summary.json.
 *
 * Metrics per model and round (accuracy, balanced accuracy, macro precision,
 * recall, F1, per-class report, confusion matrix) and their mean ± std over
 * rounds (std with ddof 0); one-vs-rest ROC and precision-recall curves per
 * class on the pooled out-of-fold predictions of the first repeat; t-SNE of
 * the (standardised) feature table. Schema: README "Results".
 */
#ifndef MM_REPORT_H
#define MM_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "data/table.h"
#include "eval/splits.h"
#include "io/cfg.h"

typedef struct mm_report_tsne_opts {
    int enabled;            /* default 1 */
    double perplexity;      /* 30 */
    long max_points;        /* 3000: larger tables are subsampled (stratified, seeded) */
    long n_iter;            /* 1000 */
} mm_report_tsne_opts;

int mm_report_tsne_opts_from_cfg(const mm_cfg *map, mm_report_tsne_opts *o, mm_err *err);

typedef struct mm_report_unit {
    int failed;
    const char *error;
    size_t n_test;
    const int32_t *test_index, *y_true, *y_pred;
    const float *proba;             /* (n_test, k) */
    double fit_s, predict_s;
    size_t n_hist;
    const float *hist[4];           /* train_loss, train_acc, val_loss, val_acc */
    size_t n_cand, n_inner;         /* search: 0 candidates without one */
    const char *const *cand;        /* (n_cand) YAML flow maps */
    const double *scores;           /* (n_cand, n_inner) */
    int32_t chosen;                 /* -1: none */
    const float *rob_proba;         /* (n_rob, n_test, k) robustness probabilities, NULL without */
} mm_report_unit;

typedef struct mm_report_input {
    const char *name, *config_path, *config_yaml;
    const mm_table *table;          /* labelled rows only */
    const mm_split *split;
    size_t n_models;                /* models then ensembles */
    const char **model_names;       /* (n_models) */
    const mm_report_unit *units;    /* (n_models, n_rounds) */
    int leakage_allowed;
    int group_norm;                 /* features standardised per group (per speaker) */
    size_t group_norm_clips;        /* 0: from all of a group's rows; K: K other rows */
    int domain_norm;                /* features standardised per corpus (cross_corpus, domain_norm: per_corpus) */
    const char *cross_note;         /* cross_corpus: its summary.md paragraph (corpora, rows left out); NULL otherwise */
    size_t n_augment;               /* perturbed copies of the training rows (speed, then corruptions) */
    const double *augment_speed;    /* (n_augment_speed) */
    size_t n_augment_speed;
    const char *const *augment_names;   /* (n_augment - n_augment_speed) corruption kinds */
    size_t n_rob;                   /* robustness: corruptions of the test rows */
    const char *const *rob_names;   /* (n_rob) */
    const uint8_t *rob_mask;        /* (table n) 1: the row was corrupted and is scored; NULL: all */
    /* copies of one recording on both sides of the split (exp/leakage.h mm_leak_count) */
    int copies_report;              /* 1: report them (augment_before_split, or shared source clips) */
    size_t copies_per_clip;         /* augment_before_split: perturbed copies of each clip among the rows; 0: none */
    size_t copy_clips;              /* rows before those copies */
    const char *copies_text;        /* the copies, e.g. "speed 0.8, noise, pitch" */
    size_t copy_sources, copy_shared, copy_test_rows, copy_leaky_rows;
    uint64_t seed;
    const char *search_metric;      /* NULL: no hyperparameter search */
    const char *search_inner;       /* inner protocol kind, e.g. "group_kfold" */
    size_t search_folds;            /* its n_folds */
    const mm_report_tsne_opts *tsne;
    int n_threads;
} mm_report_input;

/* t-SNE of the standardised table (subsampled to max_points, stratified by
 * label, seeded): *xy (n, 2), *labels and *index (row in the table), *kl the
 * final KL divergence. report_tsne.c. */
int mm_report_tsne(const mm_report_input *in, float **xy, int32_t **labels, int32_t **index,
                   size_t *n, double *kl, mm_err *err);

/* Shows the text of summary.md (e.g. the CLI prints it); may be NULL. */
typedef void (*mm_report_show_fn)(void *ctx, const char *md);

/* Write DIR/results.h5, DIR/summary.md, DIR/summary.json and timing.json
 * (each atomically), then pass summary.md's text to show. */
int mm_report_write(const mm_report_input *in, const char *dir, mm_report_show_fn show, void *ctx, mm_err *err);

#endif
