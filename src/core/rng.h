/* rng.h — explicit, seedable random numbers (never rand()).
 *
 * xoshiro256** seeded through splitmix64 from a seed and up to a few stream
 * ids (fold, tree, epoch...), so that each parallel unit of work draws from
 * its own stream and results do not depend on thread count or schedule.
 * An mm_rng is a plain value: copy it, keep it on the stack; not shared
 * between threads.
 */
#ifndef MM_RNG_H
#define MM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct mm_rng { uint64_t s[4]; } mm_rng;

/* Seed from (seed, stream_a, stream_b): distinct tuples give independent streams. */
void mm_rng_seed(mm_rng *r, uint64_t seed, uint64_t stream_a, uint64_t stream_b);
/* The next 64 bits (inline: hot loops such as the dropout masks draw one per value). */
static inline uint64_t mm_rng_u64(mm_rng *r)
{
    uint64_t *s = r->s, x = s[1] * 5;
    uint64_t res = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}
/* Uniform in [0, 1) with 53 random bits. */
static inline double mm_rng_uniform(mm_rng *r) { return (double)(mm_rng_u64(r) >> 11) * 0x1.0p-53; }
/* Uniform integer in [0, n), unbiased (n > 0). */
uint64_t mm_rng_below(mm_rng *r, uint64_t n);
/* Standard normal (Box–Muller, no caching so the state stays a pure value). */
double mm_rng_normal(mm_rng *r);
/* Fisher–Yates shuffle of idx[0..n). */
void mm_rng_shuffle_size(mm_rng *r, size_t *idx, size_t n);

#endif
