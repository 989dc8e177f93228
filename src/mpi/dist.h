/* dist.h — the distributed entry point of extraction, mm_extract_dist
 * (src/data/extract.c); its declaration belongs in data/extract.h, and with
 * it moved mpi/ includes nothing from data/ (TODO(owner of src/data): move
 * it). Experiments: mm_experiment_run_dist in exp/runner.h. Under `mpirun
 * -np N` it is collective (every rank calls it with the same arguments);
 * without MPI it is mm_extract. Not covered: checkpointing an MPI
 * extraction (use shards for that).
 */
#ifndef MM_DIST_H
#define MM_DIST_H

#include "core/err.h"
#include "data/extract.h"

/* Collective. Files are handed out dynamically by rank 0, largest first,
 * in chunks of the asking rank's thread count; each rank extracts with
 * o->n_threads threads; rank 0 assembles the table. On rank 0 *out gets the
 * table (identical to mm_extract's); on the others *out is set to NULL.
 * Every rank returns the same status. Refused before any work: more ranks
 * than files. */
int mm_extract_dist(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
                    const mm_extract_opts *o, mm_table **out, mm_err *err);

#endif
