/* par.h — help-first parallel loops for one latency-bound caller (private to nn/).
 *
 * mm_par_for runs fn(ctx, i) for i in [0, n): the calling thread starts on the items at once
 * and the process's helper threads (one fewer than the cores, at most 7, created on first
 * use) join if they are awake; items are claimed one by one from a shared counter, and the
 * call returns when every item is done. The caller never waits for a helper to arrive — only
 * for the items a helper has claimed — so a busy machine costs at most the serial time plus a
 * few atomic operations, whereas OpenMP's fork/join waits for every team thread to be
 * scheduled; and when a helper runs slowly (its core shared with other work), loops run alone
 * for a while. One caller at a time uses the helpers; a concurrent caller runs its loop alone.
 * Each item must compute the same values whoever runs it (results never depend on the split).
 * Leaves out: nested loops (an fn that calls mm_par_for runs that inner loop alone), priorities.
 */
#ifndef MM_NN_PAR_H
#define MM_NN_PAR_H

#include <stddef.h>

typedef void (*mm_par_fn)(void *ctx, size_t i);

/* Run fn(ctx, 0 .. n−1), each exactly once. helpers == 0: on the calling thread only.
 * Thread-safe; never fails (without helper threads it runs serially). */
void mm_par_for(size_t n, mm_par_fn fn, void *ctx, int helpers);

/* The same with at most max_helpers helper threads joining (0: on the calling thread only),
 * for callers that honour a thread count. */
void mm_par_for_n(size_t n, mm_par_fn fn, void *ctx, int max_helpers);

/* Helpers a loop over `work` values asks mm_par_for_n for: omp_get_max_threads() - 1
 * (mm_train_fit sets it from n_threads) when work > 65536 and the caller is not inside an
 * OpenMP parallel region, else 0. */
int mm_par_helpers_for(double work);

/* Helper threads this process can use (0 on one core or before any could start). */
int mm_par_helpers(void);

#endif
