/* clock.h — the monotonic clock in seconds, for progress lines, ETAs and
 * timings (never for results). */
#ifndef MM_CORE_CLOCK_H
#define MM_CORE_CLOCK_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin; differences only). */
static inline double mm_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
