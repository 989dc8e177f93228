/* par.c — help-first parallel loops (see par.h).
 *
 * One job slot: the owner writes (fn, ctx, n), resets the item counters and publishes the job
 * by making the generation counter odd; helpers watch the counter (spinning for SPIN_NS after
 * their last job, then asleep on a condition variable), register (refs), re-check that the
 * generation is unchanged — else the job they read may be gone — and claim items from an
 * atomic counter as the owner does. The owner waits for the claimed items, closes the job
 * (even generation) and waits until no helper is registered before the slot is reused.
 * Registration and close are sequentially consistent (each side stores, then loads the
 * other's variable), so a helper either is seen by the owner or sees the close. When the
 * owner waited for a helper much longer than it should twice in a row (the helper's core is
 * busy with other work), loops run alone for a while: 10 ms, doubling with each such wait that
 * follows up to half a second, back to 10 ms after a loop whose helpers kept pace (one late
 * helper on a shared VM is noise, which must not leave 10 ms of loops to one thread; a helper
 * core that stays busy keeps the loops alone). Leaves
 * out:
 * helper shutdown (they live as long as the process), CPU affinity.
 */
#include "nn/par.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_HELPERS 7
#define SPIN_NS 200000L     /* how long an idle helper keeps watching before it sleeps */
#define WAIT_MIN_NS 50000L  /* waits for helpers shorter than this are never a reason ... */
#define WAIT_RATIO 4        /* ... nor those under a quarter of the caller's own work time */
#define BACKOFF_MIN_NS 10000000L    /* then loops run alone for 10 ms, */
#define BACKOFF_MAX_NS 500000000L   /* doubling while it repeats, up to half a second */

static struct {
    /* written by the owner while the job is closed, read by helpers once published; atomic
     * (relaxed) because a late helper may read them while the next job is being written —
     * it then finds the generation changed and drops what it read */
    _Atomic(mm_par_fn) fn;
    _Atomic(void *) ctx;
    atomic_size_t n;
    _Alignas(64) atomic_ulong gen;   /* odd: a job is open; bumped at publish and at close */
    _Alignas(64) atomic_size_t next; /* next unclaimed item */
    _Alignas(64) atomic_size_t done; /* items finished */
    _Alignas(64) atomic_int refs;    /* helpers registered for the current job */
    atomic_int slots;                /* helpers still allowed to join the current job */
    int sleeping;                    /* helpers asleep on cv (under mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t g_owner = PTHREAD_MUTEX_INITIALIZER;   /* one job owner at a time */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_helpers;                                          /* started helper threads */
static _Thread_local int t_inside;                             /* running items of a job */
static atomic_long g_backoff_until;                            /* now_ns() before which loops
                                                                  run alone */
static long g_backoff_ns = BACKOFF_MIN_NS;                     /* the next backoff (owner only) */
static int g_late;                                             /* late waits in a row (owner only) */

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claims and runs items until none is left; returns how many this thread ran. */
static size_t run_items(mm_par_fn fn, void *ctx, size_t n)
{
    size_t ran = 0;
    t_inside = 1;
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&P.next, 1, memory_order_relaxed);
        if (i >= n) break;
        fn(ctx, i);
        ran++;
        atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
    }
    t_inside = 0;
    return ran;
}

/* An open generation other than `seen`, else 0. */
static unsigned long new_job(unsigned long seen)
{
    unsigned long g = atomic_load_explicit(&P.gen, memory_order_acquire);
    return (g & 1) && g != seen ? g : 0;
}

static void *helper_main(void *arg)
{
    (void)arg;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = 0;
        /* watch for a new job for a while (one request's jobs come every few µs) */
        long until = now_ns() + SPIN_NS;
        for (unsigned k = 1; !(g = new_job(seen)); k++) {
            if (k % 1024 == 0 && now_ns() > until) break;
            CPU_RELAX();
        }
        if (!g) {
            pthread_mutex_lock(&P.mu);
            P.sleeping++;
            while (!(g = new_job(seen))) pthread_cond_wait(&P.cv, &P.mu);
            P.sleeping--;
            pthread_mutex_unlock(&P.mu);
        }
        seen = g;
        mm_par_fn fn = atomic_load_explicit(&P.fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&P.ctx, memory_order_relaxed);
        size_t n = atomic_load_explicit(&P.n, memory_order_relaxed);
        atomic_fetch_add(&P.refs, 1);
        if (atomic_load(&P.gen) == g && atomic_fetch_sub_explicit(&P.slots, 1, memory_order_relaxed) > 0)
            run_items(fn, ctx, n);   /* still open (fields valid) and a helper is wanted */
        atomic_fetch_sub_explicit(&P.refs, 1, memory_order_release);
    }
    return NULL;
}

static void start_helpers(void)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int want = nc > 1 ? (int)(nc - 1) : 0;
    if (want > MAX_HELPERS) want = MAX_HELPERS;
    pthread_attr_t a;
    if (pthread_attr_init(&a)) return;
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 1 << 20);
    for (int i = 0; i < want; i++) {
        pthread_t t;
        if (pthread_create(&t, &a, helper_main, NULL)) break;
        g_helpers++;
    }
    pthread_attr_destroy(&a);
}

int mm_par_helpers(void)
{
    pthread_once(&g_once, start_helpers);
    return g_helpers;
}

int mm_par_helpers_for(double work)
{
    return work > 65536 && !omp_in_parallel() ? omp_get_max_threads() - 1 : 0;
}

void mm_par_for(size_t n, mm_par_fn fn, void *ctx, int helpers)
{
    mm_par_for_n(n, fn, ctx, helpers ? MAX_HELPERS : 0);
}

void mm_par_for_n(size_t n, mm_par_fn fn, void *ctx, int helpers)
{
    if (n == 0) return;
    if (helpers <= 0 || n == 1 || t_inside || mm_par_helpers() == 0 ||
        pthread_mutex_trylock(&g_owner)) {
        for (size_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    long t0 = now_ns();
    if (t0 < atomic_load_explicit(&g_backoff_until, memory_order_relaxed)) {
        pthread_mutex_unlock(&g_owner);
        for (size_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    atomic_store_explicit(&P.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&P.ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&P.n, n, memory_order_relaxed);
    atomic_store_explicit(&P.next, 0, memory_order_relaxed);
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    atomic_store_explicit(&P.slots, helpers, memory_order_relaxed);
    atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);   /* odd: open */
    pthread_mutex_lock(&P.mu);
    if (P.sleeping) pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    size_t mine = run_items(fn, ctx, n);
    /* only the items a helper has claimed are waited for */
    long t1 = now_ns();
    for (unsigned k = 1; atomic_load_explicit(&P.done, memory_order_acquire) < n; k++) {
        if (k % 1024 == 0) sched_yield();
        CPU_RELAX();
    }
    /* A wait much longer than one item means a helper ran slowly (its core is shared with
     * other work): then the helpers cost more than they give, so loops run alone for a
     * while (g_backoff_ns, doubled each time it happens again) and try again. Waiting for
     * about one item is normal when the items are few and large (a helper that woke a
     * little later finishes its last one after the caller): the wait counts against the
     * caller's work time, or against WAIT_RATIO of the caller's mean item when that is
     * longer. A caller that ran no item has nothing to compare with (the helpers took
     * them all): no verdict. */
    long waited = now_ns() - t1, item = mine ? (t1 - t0) / (long)mine : 0;
    int late = mine && waited > WAIT_MIN_NS && waited * WAIT_RATIO > t1 - t0 && waited > WAIT_RATIO * item;
    if (late && ++g_late >= 2) {
        atomic_store_explicit(&g_backoff_until, t1 + waited + g_backoff_ns, memory_order_relaxed);
        g_backoff_ns = g_backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : g_backoff_ns * 2;
    } else if (mine && !late) {
        g_late = 0;
        g_backoff_ns = BACKOFF_MIN_NS;
    }
    atomic_fetch_add(&P.gen, 1);   /* even: closed */
    /* a registered helper either ran items (all claimed and done by now) or sees the close */
    while (atomic_load(&P.refs) > 0) CPU_RELAX();
    pthread_mutex_unlock(&g_owner);
}
