/* ratelimit.h — per-key token buckets in a table of fixed size, for limits
 * such as feedback events per user: a key may spend `burst` events at once
 * and earns `rate` events per second back, up to `burst`.
 * Memory does not grow with the number of keys: a key hashes to a window of
 * a few slots; a new key takes an empty slot there, else one whose bucket
 * has refilled (forgetting a full bucket changes nothing), else the least
 * recently used one (that key starts again with a full bucket: an attacker
 * who floods with many keys can free a victim key of its limit, not put a
 * limit on it). Time is passed in (monotonic seconds), so tests need no
 * clock. Thread-safe: one mutex per table.
 */
#ifndef MM_RATELIMIT_H
#define MM_RATELIMIT_H

#include <stddef.h>
#include "core/err.h"

#define MM_RATELIMIT_KEY_MAX 64     /* keys compare on their first 64 bytes (and their full hash) */

typedef struct mm_ratelimit mm_ratelimit;

/* rate > 0 events per second, burst >= 1 events, slots >= 1 (rounded up to
 * a power of two). *out owned by the caller (mm_ratelimit_free). */
int mm_ratelimit_create(double rate, double burst, size_t slots, mm_ratelimit **out, mm_err *err);
/* NULL is a no-op. */
void mm_ratelimit_free(mm_ratelimit *rl);

/* Spend one event of key (NUL-terminated) at time now: returns 0 when
 * allowed, else the seconds until the key may send again (> 0; nothing
 * spent). Times that go backwards are taken as `now` equal to the last. */
double mm_ratelimit_take(mm_ratelimit *rl, const char *key, double now);

#endif
