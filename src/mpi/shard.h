/* shard.h — static shares of the work for job arrays (--shard I/N) and the
 * feature-table parts that `melodic merge` joins (run parts: dist.h).
 * Files are dealt largest first to the shard with the fewest bytes (LPT).
 * A part is a feature table of the shard's rows plus /shard/rows and
 * /shard/skipped (dataset indices) and attributes (shard, file count,
 * dataset fingerprint); merging checks them and restores dataset order, so
 * the merged table equals the single-process one. Not covered: re-balancing
 * from measured times. */
#ifndef MM_SHARD_H
#define MM_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "data/dataset.h"
#include "data/table.h"

/* Parse "I/N" (1 <= I <= N, N <= 100000) from what (e.g. "--shard").
 * Errors quote the text: "--shard: expected I/N with 1 <= I <= N, got '3/2'". */
int mm_shard_parse(const char *text, const char *what, int *index, int *count, mm_err *err);

/* LPT: item i (size sizes[i], e.g. bytes) to shard owner[i] in [0, count):
 * items by decreasing size (ties: lower index first) each to the shard with
 * the smallest total so far (ties: lower shard). Deterministic. */
void mm_shard_assign(const uint64_t *sizes, size_t n, int count, int *owner);

/* File sizes in bytes (0 when stat fails) of the dataset's files; *out
 * malloc'd (ds->n). */
int mm_shard_file_sizes(const mm_dataset *ds, uint64_t **out, mm_err *err);

/* FNV-1a 64 over the dataset's paths, labels and groups: equal for equal
 * file lists, so parts of one dataset can be told from another's. */
uint64_t mm_shard_dataset_fingerprint(const mm_dataset *ds);

/* A view of the files idx[0..m) of ds (pointers into ds, which must outlive
 * it); release with mm_shard_subset_free (not mm_dataset_free). */
int mm_shard_subset(const mm_dataset *ds, const size_t *idx, size_t m, mm_dataset **out,
                    mm_err *err);
void mm_shard_subset_free(mm_dataset *view);

typedef struct mm_shard_part_info {
    int index, count;         /* 1-based shard I of N */
    size_t n_files;           /* files in the whole dataset */
    uint64_t dataset_fp;      /* mm_shard_dataset_fingerprint */
    size_t m;                 /* files of this shard */
    const int64_t *files;     /* (m) ascending dataset indices */
    char *const *paths;       /* (m) their paths, as given to mm_extract */
} mm_shard_part_info;

/* Write t (the table of the files info->files, in that order, minus those
 * listed in t's /skipped) as a part file; atomic. */
int mm_shard_write_table_part(const mm_table *t, const mm_shard_part_info *info, const char *path,
                              mm_err *err);

/* Join table parts (paths[0..n)) into the full table. Refused with a
 * one-line message: a file that is no part, parts of different configs,
 * settings or datasets, different shard counts, a shard given twice or
 * missing. */
int mm_shard_merge_tables(const char *const *paths, size_t n, mm_table **out, mm_err *err);

/* What kind of part a file is: 1 feature-table part, 2 experiment part
 * (format "melodic-run-part"), or a negative code with a message. */
int mm_shard_part_kind(const char *path, mm_err *err);

#endif
