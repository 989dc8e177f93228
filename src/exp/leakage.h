/* leakage.h — copies of one recording on both sides of a split.
 *
 * The common RAVDESS recipe (the usual Kaggle notebook) augments every clip
 * (noise, pitch, stretch) and only then splits the rows at random, so a test
 * row's perturbed twin is in training and the model is scored on recordings
 * it has heard. `augment_before_split:` reproduces it: the `augment:` grammar
 * and tables (exp/spec.h, cached alike), each copy a row of its own before the
 * protocol runs. Every row has a source clip: rows with the same path are
 * copies of one recording (an empty path is a source of its own), so copies
 * made elsewhere (a table of pre-augmented rows) are caught as well. After
 * each split, a source clip with rows in training (or validation) and in test
 * data is shared; the runner refuses shared sources unless the config says
 * `allow_copy_leakage: true` (the style of allow_group_leakage), and the
 * summary then counts the test rows that have a copy in training. Leaves out:
 * near-duplicates under other paths (the same take re-encoded elsewhere).
 */
#ifndef MM_EXP_LEAKAGE_H
#define MM_EXP_LEAKAGE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "data/table.h"
#include "eval/splits.h"
#include "exp/runner.h"
#include "exp/spec.h"
#include "io/cfg.h"

typedef struct mm_leak_count {
    size_t n_sources;    /* distinct source clips among the rows */
    size_t shared;       /* source clips with a training (or validation) and a test row in some round */
    size_t test_rows;    /* test rows, summed over the rounds */
    size_t leaky_rows;   /* of them, rows whose source clip has a training or validation row in that round */
} mm_leak_count;

typedef struct mm_leak {
    mm_exp_augment pre;  /* augment_before_split (pre.n = 0: none) */
    int allowed;         /* allow_copy_leakage: true */
    size_t n_clips;      /* rows of the table before its copies were added (mm_leak_expand) */
    mm_leak_count count; /* of the run's split (mm_leak_check) */
} mm_leak;

/* `augment_before_split:` (the `augment:` grammar) and `allow_copy_leakage:`.
 * Refused in one line: augment_before_split together with `augment:` (one or
 * the other) or with `robustness:` (its corrupted test clips line up with the
 * clips, not with their copies). */
int mm_leak_parse(const mm_cfg *cfg, mm_leak *lk, mm_err *err);

/* Source ids of n rows from their paths into src (n, the caller's): rows with
 * the same non-empty path share one id, an empty or NULL path is an id of its
 * own; ids are 0 .. *n_sources - 1. Returns MM_ENOMEM or 0. */
int mm_leak_sources(const char *const *paths, size_t n, int32_t *src, size_t *n_sources, mm_err *err);

/* Count the copies split apart by split: src (split->n) source ids in
 * [0, n_sources). Validation rows count as training (they are fitted on). */
int mm_leak_count_split(const mm_split *split, const int32_t *src, size_t n_sources, mm_leak_count *c,
                        mm_err *err);

/* The one-line refusal when c has shared sources and lk does not allow them
 * (MM_EINVAL naming the experiment, the count and the key to add); else 0. */
int mm_leak_refuse(const mm_leak *lk, const mm_leak_count *c, const char *name, mm_err *err);

/* Before any extraction: the labelled rows of a dataset (labels >= 0, with
 * their groups, or groups NULL), each entered 1 + pre.n times as the table
 * will be, split with sp, counted and refused as mm_leak_check will. No-op
 * without augment_before_split. */
int mm_leak_precheck(const mm_leak *lk, const mm_split_params *sp, const int32_t *labels, const int32_t *groups,
                     size_t n, const char *name, mm_err *err);

/* augment_before_split: the perturbed tables of t's rows (mm_exp_augment_tables,
 * group-normalised as t was, one babble pool) appended to t as rows: row
 * k·n + i is copy k of row i, with its label, group, path and duration.
 * lk->n_clips = n. No-op without augment_before_split. */
int mm_leak_expand(const mm_cfg *cfg, const mm_run_opts *o, mm_leak *lk, mm_table *t, const mm_exp_prep *prep,
                   uint64_t seed, mm_err *err);

/* The copies of augment_before_split for messages and summaries into buf:
 * "speed 0.8, noise, pitch" (speed factors, then the corruptions). */
void mm_leak_describe(const mm_leak *lk, char *buf, size_t size);

/* After the split: the sources of t's rows (by path), lk->count, and the
 * refusal of mm_leak_refuse. */
int mm_leak_check(mm_leak *lk, const mm_split *split, const mm_table *t, const char *name, mm_err *err);

#endif
