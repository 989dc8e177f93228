/* cross_corpus.h — `protocol: {kind: cross_corpus, test: <dataset block>}`: train on the
 * experiment's dataset, test on another corpus, one round.
 *
 * The test corpus is any dataset block the data layer reads (ravdess, folder, csv with a
 * label map onto the training classes), or a map holding one under `dataset:` (so
 * `test: {include: ../configs/datasets/x.yaml}` works). Its features come from the same
 * `features` and `audio` as the training table, extracted once and cached like any table.
 * Optional `train_groups` / `test_groups` (group ids or "a-b" ranges) keep only those
 * groups of each side, label-free, e.g. RAVDESS actors 1-12 against 13-24 from one cached
 * table; `val_fraction` and `seed` carve a validation part from the training side as the
 * other protocols do.
 *
 * Classes are matched by name. The experiment's classes become the shared ones: classes
 * with rows on both sides, in training order; rows of the other classes are dropped on
 * both sides (counted in the summary), so every metric covers the shared classes only.
 * Scaler, SMOTE and augmentation are fitted on and applied to training rows only (the
 * round is an ordinary one of exp/unit.h).
 *
 * `preprocessing.domain_norm: per_corpus` standardises each side's features with that
 * side's own mean and population standard deviation (scikit-learn's StandardScaler),
 * computed over all of the side's rows before any label is looked at: training rows (and
 * their augmented copies) with training statistics, test rows with the test corpus's.
 * It is transductive: it needs the test corpus's unlabelled features at once.
 * Leaves out: several test corpora in one run, `robustness:` on the test corpus.
 */
#ifndef MM_EXP_CROSS_CORPUS_H
#define MM_EXP_CROSS_CORPUS_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "data/dataset.h"
#include "data/table.h"
#include "eval/splits.h"
#include "exp/runner.h"
#include "exp/spec.h"
#include "io/cfg.h"
#include "learn/scaler.h"

typedef struct mm_exp_cross {
    int enabled;               /* protocol.kind is cross_corpus */
    const mm_cfg *test;        /* the test corpus's dataset block (borrowed from the config) */
    const mm_cfg *protocol;    /* the protocol map, for messages */
} mm_exp_cross;

/* Parse `protocol:` and check preprocessing.domain_norm against it, before any work.
 * Cross-corpus: fills cc (cc->enabled = 1) and sp (val_fraction, seed; train_groups and
 * test_groups as the group filters, kind MM_SPLIT_FIXED when they are given); refused in
 * one line each: a test block that is not a map or lacks its type or its root/manifest,
 * unknown keys, only one of train_groups/test_groups, `table:` instead of dataset +
 * features, `robustness:`. Any other kind: mm_split_params_from_cfg, cc->enabled = 0, and
 * domain_norm is refused (one corpus has no second domain). */
int mm_exp_parse_protocol(const mm_cfg *cfg, const mm_exp_prep *prep, mm_exp_cross *cc, mm_split_params *sp,
                          mm_err *err);

/* Before any extraction: load the test dataset, match its classes with train's and refuse
 * a test set sharing no class (or one class only) with training, then the round's split.
 * *labels, *groups (n, malloc'd): the rows as mm_exp_cross_data will lay them out;
 * *split owned by the caller. */
int mm_exp_cross_precheck(const mm_cfg *cfg, const mm_exp_cross *cc, const mm_split_params *sp,
                          const mm_dataset *train, int32_t **labels, int32_t **groups, size_t *n,
                          mm_split **split, mm_err *err);

/* The run's data: both tables (cached), group filters, group_norm and domain_norm per side,
 * the augmented copies of the training rows (aug_X[k]: (n, d) aligned with *t, rows of the
 * test side zero and never read), then the combined table *t (training rows first, then
 * test rows, shared classes only; test group ids moved past the training ones when they
 * collide, their names prefixed "test:"), its one-round *split and *note (malloc'd
 * markdown for summary.md: the two corpora, rows kept and dropped per side). */
int mm_exp_cross_data(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_cross *cc, const mm_exp_prep *prep,
                      const mm_split_params *sp, const mm_exp_augment *aug, uint64_t seed, mm_table **t,
                      mm_split **split, float **aug_X, char **note, mm_err *err);

/* Standardise the rows i of X (n, d) with mask[i] != 0 (mask NULL: every row) by their own
 * column means and population standard deviations (mm_scaler: StandardScaler, constant
 * columns scale 1); other rows untouched. *sc (may be NULL) receives the fitted scaler
 * (owned by the caller). Refuses a mask selecting no row. */
int mm_exp_domain_standardise(float *X, size_t n, size_t d, const uint8_t *mask, mm_scaler **sc, mm_err *err);

#endif
