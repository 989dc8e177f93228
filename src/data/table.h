/* table.h — the HDF5 feature table every later stage reads.
 *
 * Layout (format "melodic-features", version 1; see README "Feature table"):
 *   /features       float32 (N, D)
 *   /feature_names  D strings
 *   /labels         int32 (N), -1 where unlabelled
 *   /label_names    K strings
 *   /groups         int32 (N), -1 where none
 *   /group_ids      int32 (G) and /group_names (G strings), when groups exist
 *   /paths          N strings
 *   /durations      float32 (N) seconds of decoded audio (before trim/crop)
 *   /artists, /titles   N strings, when the dataset has metadata
 *   /skipped/paths, /skipped/reasons   files left out with --skip-bad
 *   attributes: format, format_version, config (resolved YAML), sample_rate,
 *               feature_set, frontend, audio (trim/crop settings), version,
 *               created (UTC ISO 8601), group_by
 * A table can also be read from CSV: columns label and group (optional),
 * path (optional), and every other column a numeric feature.
 */
#ifndef MM_TABLE_H
#define MM_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mm_table {
    size_t n, d;
    float *X;                 /* (n, d) */
    char **feature_names;     /* (d) */
    int32_t *labels;          /* (n) */
    int n_classes;
    char **label_names;       /* (n_classes) */
    int32_t *groups;          /* (n) */
    size_t n_group_ids;
    int32_t *group_ids;       /* (n_group_ids) */
    char **group_names;       /* (n_group_ids) */
    char *group_by;           /* or NULL */
    char **paths;             /* (n) */
    float *durations;         /* (n) */
    char **artists, **titles; /* (n) or NULL */
    size_t n_skipped;
    char **skipped_paths, **skipped_reasons;   /* (n_skipped) */
    char *config_yaml;        /* resolved config, or NULL */
    char *feature_set;        /* name(s), or NULL */
    int sample_rate;          /* 0 when unknown */
    char *settings;           /* front end / audio settings text, or NULL */
} mm_table;

#define MM_TABLE_FORMAT "melodic-features"
#define MM_TABLE_VERSION 1

/* Read .h5 (format checked) or .csv (by extension). */
int mm_table_read(const char *path, mm_table **out, mm_err *err);
/* Atomic write (temporary name, then rename). */
int mm_table_write(const mm_table *t, const char *path, mm_err *err);
void mm_table_free(mm_table *t);
/* SHA-256-free content fingerprint (FNV-1a 64 over X and labels) for provenance. */
uint64_t mm_table_fingerprint(const mm_table *t);

#endif
