/* mpi.h — the MPI runtime as the commands see it: start, rank, size, agree.
 * MPI starts only when the environment shows a launcher (OMPI_COMM_WORLD_SIZE,
 * PMI_SIZE, PMIX_RANK): a singleton MPI_Init_thread costs 0.3-0.6 s here, so
 * `melodic` run by hand makes no MPI call at all. MELODIC_NO_MPI=1 forces it
 * off. MPI_THREAD_SERIALIZED is requested (sched.c's service thread); no MPI
 * call is made from inside an OpenMP region. Not covered: MPI_Comm_spawn. */
#ifndef MM_MPI_H
#define MM_MPI_H

#include <stddef.h>
#include "core/err.h"

/* Start MPI when launched by mpirun/srun (see above); otherwise a no-op.
 * Idempotent. Call from the main thread before any other mm_mpi_* call
 * that should see the job. Returns 0 or MM_EIO when MPI_Init fails. */
int mm_mpi_init(int *argc, char ***argv, mm_err *err);
/* MPI_Finalize if mm_mpi_init started MPI; otherwise nothing. */
void mm_mpi_finalize(void);

/* 1 when MPI is running with more than one rank. */
int mm_mpi_active(void);
int mm_mpi_rank(void);          /* 0 without MPI */
int mm_mpi_size(void);          /* 1 without MPI */
int mm_mpi_local_size(void);    /* ranks on this node (1 without MPI) */
/* 1 when a service thread may make MPI calls (SERIALIZED granted). */
int mm_mpi_threads_ok(void);

/* Threads for this rank: n (the one-process default, e.g. all cores)
 * divided among the ranks on this node, at least 1; n itself without MPI
 * or when OMP_NUM_THREADS is set. */
int mm_mpi_threads_per_rank(int n);

/* Collective (every rank calls it; a no-op without MPI): agree on failure.
 * Returns 0 when every rank passed rc == 0; otherwise nonzero on every
 * rank: a failing rank keeps its own code and message, the others get the
 * lowest failing rank's, prefixed "rank R: ". Waits without spinning. */
int mm_mpi_agree(int rc, mm_err *err);
/* Collective: rank 0's v on every rank (v itself without MPI). */
int mm_mpi_bcast_int(int v);
/* Collective barrier (no-op without MPI); waits without spinning. */
void mm_mpi_barrier(void);

#endif
