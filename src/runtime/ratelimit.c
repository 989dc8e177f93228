/* ratelimit.c — token buckets per key in an open-addressed table of fixed
 * size (see ratelimit.h). A bucket holds `tokens` as of time `t`; taking an
 * event first adds (now - t) * rate, capped at burst, then spends 1.
 * Hash: 64-bit FNV-1a of the whole key. A key probes WINDOW consecutive
 * slots. Left out: persistence across restarts, per-key rates.
 */
#include "runtime/ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 8

typedef struct slot {
    uint64_t hash;                      /* FNV-1a of the key; 0 = empty */
    char key[MM_RATELIMIT_KEY_MAX + 1]; /* its first MM_RATELIMIT_KEY_MAX bytes */
    double tokens;                      /* events available at time t */
    double t;                           /* last update (monotonic seconds) */
} slot;

struct mm_ratelimit {
    double rate, burst;
    size_t mask;                        /* slots - 1 (a power of two) */
    slot *slots;                        /* (mask + 1) */
    pthread_mutex_t mu;
};

int mm_ratelimit_create(double rate, double burst, size_t slots, mm_ratelimit **out, mm_err *err)
{
    if (!(rate > 0) || !(burst >= 1) || slots < 1 || slots > ((size_t)1 << 24))
        return mm_err_set(err, MM_EINVAL, "rate limit: rate %g/s, burst %g, %zu slots: expected rate > 0, burst >= 1, "
                          "1..16777216 slots", rate, burst, slots);
    size_t n = 1;
    while (n < slots) n <<= 1;
    mm_ratelimit *rl = mm_calloc(1, sizeof *rl, err);
    if (!rl) return MM_ENOMEM;
    if (!(rl->slots = mm_calloc(n, sizeof *rl->slots, err))) { free(rl); return MM_ENOMEM; }
    rl->rate = rate;
    rl->burst = burst;
    rl->mask = n - 1;
    pthread_mutex_init(&rl->mu, NULL);
    *out = rl;
    return 0;
}

void mm_ratelimit_free(mm_ratelimit *rl)
{
    if (!rl) return;
    pthread_mutex_destroy(&rl->mu);
    free(rl->slots);
    free(rl);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;   /* 0 marks an empty slot */
}

/* Tokens of slot x brought forward to now. */
static double refilled(const mm_ratelimit *rl, const slot *x, double now)
{
    double v = x->tokens + (now > x->t ? now - x->t : 0) * rl->rate;
    return v < rl->burst ? v : rl->burst;
}

double mm_ratelimit_take(mm_ratelimit *rl, const char *key, double now)
{
    uint64_t h = fnv1a(key);
    pthread_mutex_lock(&rl->mu);
    slot *hit = NULL, *spare = NULL;
    int spare_rank = 3;
    for (size_t i = 0; i < WINDOW; i++) {
        slot *x = &rl->slots[(h + i) & rl->mask];
        if (x->hash == h && !strncmp(x->key, key, MM_RATELIMIT_KEY_MAX)) { hit = x; break; }
        /* for a new key: an empty slot, else a full bucket (nothing lost), else the least recently used */
        int rank = !x->hash ? 0 : refilled(rl, x, now) >= rl->burst ? 1 : 2;
        if (rank < spare_rank || (rank == spare_rank && x->t < spare->t)) { spare = x; spare_rank = rank; }
    }
    if (!hit) {
        hit = spare;
        hit->hash = h;
        strncpy(hit->key, key, MM_RATELIMIT_KEY_MAX);
        hit->key[MM_RATELIMIT_KEY_MAX] = 0;
        hit->tokens = rl->burst;
        hit->t = now;
    }
    if (now < hit->t) now = hit->t;
    double tokens = refilled(rl, hit, now), wait = 0;
    hit->t = now;
    if (tokens >= 1) hit->tokens = tokens - 1;
    else {
        hit->tokens = tokens;
        wait = (1 - tokens) / rl->rate;
    }
    pthread_mutex_unlock(&rl->mu);
    return wait;
}
