/* dist.h — the distributed entry points of extraction and experiments:
 * mm_extract_dist (src/data/extract.c) and mm_experiment_run_dist
 * (src/exp/runner.c); their declarations belong in extract.h and runner.h.
 * Under `mpirun -np N` they are collective (every rank calls them with the
 * same arguments); without MPI they are mm_extract / mm_experiment_run.
 * Not covered: checkpointing an MPI extraction (use shards for that).
 */
#ifndef MM_DIST_H
#define MM_DIST_H

#include "core/err.h"
#include "data/extract.h"
#include "exp/runner.h"

/* Collective. Files are handed out dynamically by rank 0, largest first,
 * in chunks of the asking rank's thread count; each rank extracts with
 * o->n_threads threads; rank 0 assembles the table. On rank 0 *out gets the
 * table (identical to mm_extract's); on the others *out is set to NULL.
 * Every rank returns the same status. Refused before any work: more ranks
 * than files. */
int mm_extract_dist(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
                    const mm_extract_opts *o, mm_table **out, mm_err *err);

typedef struct mm_run_dist {
    int shard_index, shard_count;  /* 1-based I of N; 0/0 = all units */
    int assemble_only;             /* 1: fit nothing; every unit must be in DIR/units */
    int parts_count;               /* assemble_only: N of the parts, for messages (0: none) */
} mm_run_dist;

/* mm_experiment_run with scale-out. Under MPI (several ranks) the missing
 * (model, round) units are scheduled dynamically by rank 0; each rank fits
 * its units with o->n_threads threads and saves them to DIR/units (DIR must
 * be on a file system every rank sees); rank 0 gathers them and writes the
 * results. With d->shard_count > 0 (no MPI), only the shard's units are
 * fitted (unit j = model * rounds + round belongs to shard j mod N + 1),
 * saved, and DIR/parts/run-I-of-N.h5 records the shard; results are written
 * by `melodic merge DIR/parts/run-*.h5` (assemble_only) or a later
 * `melodic run --resume`. Refused before any work: more ranks or shards
 * than units. */
int mm_experiment_run_dist(const mm_cfg *cfg, const mm_run_opts *o, const mm_run_dist *d,
                           mm_err *err);

/* A run part (DIR/parts/run-I-of-N.h5): *cfg_yaml (malloc'd) the resolved
 * config, *out_dir (malloc'd) DIR, shard I/N, the config hash. */
typedef struct mm_run_part {
    char *config_yaml, *out_dir, *config_path, *hash;
    int index, count;
} mm_run_part;
int mm_run_part_read(const char *path, mm_run_part *p, mm_err *err);
void mm_run_part_release(mm_run_part *p);

#endif
