/* splits.h — evaluation protocols: which samples train, validate and test.
 * Exactly scikit-learn 1.2 when unshuffled: GroupKFold, StratifiedKFold,
 * StratifiedGroupKFold, LeaveOneGroupOut. Shuffles draw from mm_rng (seed,
 * repeat): sklearn's invariants, not its NumPy streams. Also: fixed splits
 * by group lists, repeats, validation carved from training parts, leakage
 * check. Leaves out: sample weights, plain KFold, time-series splits.
 */
#ifndef MM_SPLITS_H
#define MM_SPLITS_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/rng.h"
#include "io/cfg.h"

/* Fold-id functions: fold[i] = index of the test fold of sample i, in
 * [0, k). y: labels (any int32 values), groups: group ids (any int32).
 * rng NULL = no shuffle (exactly sklearn); otherwise sklearn's algorithm
 * with the shuffle drawn from *rng (advanced). fold is written only on
 * success. Errors (MM_EINVAL) name the numbers: k < 2, k > n samples,
 * k > number of groups, k > members of every class. Thread-safe. */
int mm_split_group_kfold(const int32_t *groups, size_t n, size_t k, int32_t *fold,
                         mm_err *err);
int mm_split_stratified_kfold(const int32_t *y, size_t n, size_t k, mm_rng *rng,
                              int32_t *fold, mm_err *err);
int mm_split_stratified_group_kfold(const int32_t *y, const int32_t *groups, size_t n,
                                    size_t k, mm_rng *rng, int32_t *fold, mm_err *err);
/* Leave-one-group-out: fold[i] = rank of groups[i] among the sorted distinct
 * ids; *n_folds = number of groups (>= 2 required). */
int mm_split_logo(const int32_t *groups, size_t n, int32_t *fold, size_t *n_folds,
                  mm_err *err);

/* What a sample is in one round. */
enum { MM_ROLE_NONE = 0, MM_ROLE_TRAIN = 1, MM_ROLE_VAL = 2, MM_ROLE_TEST = 3 };

typedef enum {
    MM_SPLIT_GROUP_KFOLD = 0,
    MM_SPLIT_STRATIFIED_KFOLD,
    MM_SPLIT_STRATIFIED_GROUP_KFOLD,
    MM_SPLIT_LOGO,
    MM_SPLIT_FIXED,
} mm_split_kind;

typedef struct mm_split_params {
    mm_split_kind kind;      /* default MM_SPLIT_STRATIFIED_KFOLD */
    size_t n_folds;          /* k of the K-fold kinds, default 5 */
    int shuffle;             /* stratified kinds only; default 0 */
    uint64_t seed;           /* shuffle and validation seed, default 0 */
    size_t repeats;          /* rounds = repeats x folds; repeat r uses stream (seed, r); default 1 */
    double val_fraction;     /* 0 (default): no validation; else carve this fraction of each training part */
    /* MM_SPLIT_FIXED: group ids of each part (train required, val optional,
     * test required); samples of other groups get MM_ROLE_NONE. Borrowed
     * pointers unless filled by mm_split_params_from_cfg (then owned, freed
     * by mm_split_params_release). */
    int32_t *train_groups, *val_groups, *test_groups;
    size_t n_train_groups, n_val_groups, n_test_groups;
    int owns_lists;
} mm_split_params;

mm_split_params mm_split_params_default(void);
/* Read a protocol map: keys kind (group_kfold | stratified_kfold |
 * stratified_group_kfold | logo | fixed), n_folds, shuffle, seed, repeats,
 * val_fraction, train_groups, val_groups, test_groups (sequences of ints or
 * "a-b" ranges). Unknown keys refused. NULL map = defaults. On failure *p
 * is left untouched. */
int mm_split_params_from_cfg(const mm_cfg *map, mm_split_params *p, mm_err *err);
/* Free lists owned through from_cfg (no-op otherwise). */
void mm_split_params_release(mm_split_params *p);

/* A protocol applied to n samples: n_rounds = n_repeats * n_folds rounds,
 * round r = repeat r / n_folds, fold r % n_folds. Plain data owned by the
 * caller (mm_split_free). */
typedef struct mm_split {
    size_t n;              /* samples */
    size_t n_folds;        /* folds per repeat (1 for MM_SPLIT_FIXED) */
    size_t n_repeats;
    size_t n_rounds;       /* n_repeats * n_folds */
    uint8_t *role;         /* (n_rounds, n) MM_ROLE_* of each sample in each round */
} mm_split;

/* Build a protocol. y (labels) is required by the stratified kinds and by a
 * stratified validation carve, groups by the group kinds and fixed splits;
 * either may be NULL otherwise. With val_fraction > 0 each training part
 * loses a validation part: whole groups when groups != NULL (GroupShuffleSplit
 * count: ceil(fraction x training groups)), else stratified by y
 * (ceil(fraction x training samples), per-class share by largest
 * remainder), drawn from stream (seed, repeat, 1000 + fold). */
int mm_split_make(const mm_split_params *p, const int32_t *y, const int32_t *groups,
                  size_t n, mm_split **out, mm_err *err);
void mm_split_free(mm_split *s);

/* The indices (ascending) of samples with `role` in round r into idx (room
 * for s->n); returns their count. */
size_t mm_split_indices(const mm_split *s, size_t round, int role, size_t *idx);

/* fold[i] (n values) = the fold of `repeat` in which sample i is tested,
 * -1 when it is tested in none of them (fixed splits: unused, train and
 * validation samples). If a sample were tested twice the first fold wins. */
void mm_split_test_folds(const mm_split *s, size_t repeat, int32_t *fold);

/* Carve validation parts out of every round's training part (see
 * mm_split_make); callable on any split. */
int mm_split_carve_validation(mm_split *s, const int32_t *y, const int32_t *groups,
                              double fraction, uint64_t seed, mm_err *err);

/* Leakage: a group with samples in two different parts (train, val, test)
 * of one round. Returns 1 and fills the optional outputs for the first leak
 * found (round order, then sample order), 0 when there is none. */
int mm_split_find_leak(const mm_split *s, const int32_t *groups, size_t *round,
                       int32_t *group, int *role_a, int *role_b);
/* Same as an error: MM_EDATA with "round R (repeat i, fold j): group G is
 * in both the train and test parts" when a leak exists, else 0. */
int mm_split_check_leakage(const mm_split *s, const int32_t *groups, mm_err *err);
/* Leakage directly on fold ids (test fold per sample): does any group have
 * samples in two different test folds (so it is trained on when tested)?
 * Returns 1 when so, 0 when not, -1 when out of memory. */
int mm_split_folds_leak(const int32_t *fold, const int32_t *groups, size_t n);

const char *mm_split_role_name(int role);

#endif
