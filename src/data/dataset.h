/* dataset.h — the list of clips an experiment or extraction works on.
 *
 * Readers: `ravdess` (file names 03-01-EE-II-SS-RR-AA give emotion,
 * intensity, statement, repetition and actor; actor is the group), `folder`
 * (<root>/<label>/<file>, as MER500 and 4Q are laid out, with an optional
 * metadata CSV joined on the file stem, e.g. 4Q's artist and title; a
 * metadata column may give the groups), and `csv` (a manifest with columns
 * path,label[,group]). A label map renames or merges labels (calm → neutral)
 * and drops those it does not list; `classes` fixes the class order.
 * Clips are sorted by path, so the order never depends on the file system.
 */
#ifndef MM_DATASET_H
#define MM_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"

typedef struct mm_dataset {
    char *name;             /* dataset name for reports */
    size_t n;               /* clips */
    char **paths;           /* (n) file paths as opened */
    int32_t *labels;        /* (n) class index, -1 when unlabelled */
    int n_classes;
    char **class_names;     /* (n_classes) */
    int32_t *groups;        /* (n) group id (RAVDESS: actor number; else index into
                               the sorted distinct values), -1 when none */
    size_t n_group_ids;
    int32_t *group_ids;     /* (n_group_ids) distinct ids in ascending order */
    char **group_names;     /* (n_group_ids) their names */
    char *group_by;         /* "actor", "artist", ... or NULL when no groups */
    char **artists, **titles;   /* (n) optional metadata, NULL when absent */
} mm_dataset;

/* The keys of a `dataset:` map (see configs/datasets/):
 *   name, type (ravdess|folder|csv), root, manifest, metadata, key_column,
 *   group_by, labels (map source → class), classes (list), extensions (list),
 *   max_per_class (int, 0 = all; deterministic first-N by path, for quick runs).
 * Relative paths are taken from data_root. */
int mm_dataset_load(const mm_cfg *map, const char *data_root, mm_dataset **out, mm_err *err);
/* A dataset of plain files without labels or groups (labels and groups -1). */
int mm_dataset_from_files(char *const *paths, size_t n, mm_dataset **out, mm_err *err);
void mm_dataset_free(mm_dataset *d);
/* Counts per class into counts (n_classes). */
void mm_dataset_class_counts(const mm_dataset *d, int64_t *counts);

/* RAVDESS file name parsing: fills emotion (1..8), intensity, statement,
 * repetition, actor; returns 0 when the stem matches 03-01-EE-II-SS-RR-AA. */
int mm_ravdess_parse(const char *stem, int *modality, int *channel, int *emotion, int *intensity,
                     int *statement, int *repetition, int *actor);
extern const char *const mm_ravdess_emotions[9];   /* [1..8] names; [0] NULL */

#endif
