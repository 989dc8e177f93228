/* shard_table.h — the dataset and feature-table side of job-array shards
 * (--shard I/N; the shares themselves: mpi/shard.h): file sizes to deal by,
 * a dataset fingerprint, a view of a shard's files, and the part files that
 * `melodic merge` joins. A part is a feature table of the shard's rows plus
 * /shard/rows and /shard/skipped (dataset indices) and attributes (shard,
 * file count, dataset fingerprint); merging checks them and restores
 * dataset order, so the merged table equals the single-process one. Not
 * covered: run parts (exp/runner.h). */
#ifndef MM_SHARD_TABLE_H
#define MM_SHARD_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "data/dataset.h"
#include "data/table.h"

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
