/* sched.h — dynamic work sharing over MPI ranks (self-scheduling): rank 0
 * hands out item ids in the given order (e.g. largest first) on request;
 * every rank, rank 0 included, returns one result (bytes) per item, which
 * rank 0 passes to a callback. Rank 0's service thread answers the others
 * (polling with short sleeps) while its main thread computes and makes no
 * MPI call. Without MPI the same calls run locally. Not covered: re-issuing
 * the items of a dead rank (MPI ends the job). */
#ifndef MM_SCHED_H
#define MM_SCHED_H

#include <stddef.h>
#include "core/err.h"

/* Rank 0 only: one result. Called with the scheduler's lock held, from the
 * main thread or the service thread, never concurrently; must not call MPI
 * or HDF5. data is valid only during the call. Return nonzero to stop
 * handing out further items (e.g. a failure without --skip-bad). */
typedef int (*mm_sched_result_fn)(void *ctx, size_t item, const void *data, size_t len, int rank);

typedef struct mm_sched_params {
    mm_sched_result_fn on_result;   /* rank 0; may be NULL */
    void *ctx;
} mm_sched_params;

typedef struct mm_sched mm_sched;

/* Collective. order (n ids, rank 0's copy used; others may pass NULL) is the
 * hand-out order. *out owned by the caller until mm_sched_finish. */
int mm_sched_create(const size_t *order, size_t n, const mm_sched_params *p, mm_sched **out,
                    mm_err *err);
/* Up to max (>= 1) next item ids into items; returns the count, 0 when the
 * queue is empty or stopped. Main thread only, outside OpenMP regions. */
size_t mm_sched_next(mm_sched *s, size_t *items, size_t max);
/* Hand in the result of an item (len bytes, may be 0). Main thread only. */
int mm_sched_put(mm_sched *s, size_t item, const void *data, size_t len, mm_err *err);
/* Report a fatal error of this rank: rank 0 stops the queue and the job
 * fails with this message at mm_sched_finish. Keep calling mm_sched_next
 * (it returns 0) before finishing. */
void mm_sched_fail(mm_sched *s, const mm_err *e);
/* Collective: wait until every rank is done, free s, and return the job's
 * status (0, or the first failure reported, same code and message on every
 * rank). */
int mm_sched_finish(mm_sched *s, mm_err *err);

#endif
