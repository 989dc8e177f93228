/* shard.h — static shares of the work for job arrays (--shard I/N): the
 * "I/N" option and the largest-first deal of opaque items (file sizes,
 * units) to shards. Files are dealt largest first to the shard with the
 * fewest bytes (LPT). The feature-table parts a share becomes, and their
 * merge, are data/shard_table.h's; run parts are exp/runner.h's. Not
 * covered: re-balancing from measured times. */
#ifndef MM_SHARD_H
#define MM_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

/* Parse "I/N" (1 <= I <= N, N <= 100000) from what (e.g. "--shard").
 * Errors quote the text: "--shard: expected I/N with 1 <= I <= N, got '3/2'". */
int mm_shard_parse(const char *text, const char *what, int *index, int *count, mm_err *err);

/* LPT: item i (size sizes[i], e.g. bytes) to shard owner[i] in [0, count):
 * items by decreasing size (ties: lower index first) each to the shard with
 * the smallest total so far (ties: lower shard). Deterministic. Not
 * thread-safe (qsort context in a static). */
void mm_shard_assign(const uint64_t *sizes, size_t n, int count, int *owner);

#endif
