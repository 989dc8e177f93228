/* rng.c — xoshiro256** (Blackman & Vigna 2018) seeded by splitmix64. */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mm_rng_seed(mm_rng *r, uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL);
    h = splitmix64(&x);
    x = h ^ (b * 0xa0761d6478bd642fULL + 0xe7037ed1a0b428dbULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t mm_rng_below(mm_rng *r, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = mm_rng_u64(r); while (x >= lim);
    return x % n;
}

double mm_rng_normal(mm_rng *r)
{
    double u1 = 1.0 - mm_rng_uniform(r);   /* (0, 1] */
    double u2 = mm_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void mm_rng_shuffle_size(mm_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)mm_rng_below(r, i);
        size_t t = idx[i - 1]; idx[i - 1] = idx[j]; idx[j] = t;
    }
}
