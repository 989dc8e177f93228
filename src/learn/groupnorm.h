/* groupnorm.h — per-group (per-speaker) feature standardisation.
 *
 * Each row is standardised with the mean and standard deviation of rows of
 * its own group (for speech: the same speaker's clips), labels unused. This
 * is speaker normalisation as in the speech-emotion literature (e.g. Busso,
 * Mariooryad, Metallinou & Narayanan, IEEE TAC 2013): it removes a speaker's
 * voice and recording level, which a speaker-independent model otherwise has
 * to learn to ignore. At test time it needs unlabelled clips of the test
 * speaker — in the runtime, a user's earlier recordings ("calibration").
 * Population statistics in double (two passes); a feature whose deviation
 * is below 1e-6 is only centred (divided by 1).
 */
#ifndef MM_GROUPNORM_H
#define MM_GROUPNORM_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

/* Standardise X (n, d) in place by group. groups[i] in 0..2^26 for every
 * row (else MM_EINVAL naming the row). clips == 0: each row with the
 * statistics of all rows of its group, itself included (experiments only:
 * a runtime cannot do that, so export refuses it). clips = K > 0: each row with
 * the statistics of K other rows of its group drawn without replacement
 * (seeded per row: the same for any thread count), or all the others when
 * the group has fewer — a listener with K earlier recordings. A group of a
 * single row with clips > 0 is an error (nothing to calibrate with). */
int mm_group_norm(float *X, size_t n, size_t d, const int32_t *groups, size_t clips, uint64_t seed,
                  int n_threads, mm_err *err);

/* Standardise x (d) with the statistics of hist (k, d), k >= 1. */
void mm_group_norm_apply(const float *hist, size_t k, size_t d, float *x);

#endif
