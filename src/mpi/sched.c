/* sched.c — see sched.h. Master/worker self-scheduling as in the classic
 * MPI "task farm" (Gropp, Lusk, Skjellum, Using MPI, ch. 3), with rank 0
 * working too: its service thread answers requests by MPI_Iprobe polling
 * with 100 µs sleeps (Open MPI's blocking receives spin a core). Messages
 * on a duplicated communicator: REQ (max items), ITEMS (ids, 0 = done),
 * RESULT (id + bytes), FAIL (code + message). Left out: priorities, and
 * any recovery from a lost rank. */
#include "mpi/sched.h"

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi/mpi.h"

enum { TAG_REQ = 7101, TAG_ITEMS, TAG_RESULT, TAG_FAIL };

struct mm_sched {
    int mpi;                    /* 1: several ranks */
    int rank, size;
    MPI_Comm comm;
    pthread_mutex_t lock;
    size_t *queue, n, pos;      /* rank 0: hand-out order and position */
    int stopped;
    mm_sched_result_fn fn;
    void *ctx;
    int failed;                 /* rank 0: first failure recorded */
    mm_err fail;
    int workers_left;           /* rank 0: ranks not yet told "done" */
    pthread_t thread;
    int has_thread;
    int done;                   /* this rank got its "done" */
};

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* Wait for a request without spinning a core. */
static void wait_gentle(MPI_Request *rq, MPI_Status *st)
{
    int flag = 0;
    for (long spins = 0;; spins++) {
        MPI_Test(rq, &flag, st);
        if (flag) return;
        nap(spins < 100 ? 20000 : 200000);
    }
}

static size_t take(mm_sched *s, size_t *items, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&s->lock);
    while (!s->stopped && s->pos < s->n && k < max) items[k++] = s->queue[s->pos++];
    pthread_mutex_unlock(&s->lock);
    return k;
}

static void record_fail(mm_sched *s, int code, const char *msg)
{
    pthread_mutex_lock(&s->lock);
    if (!s->failed) {
        s->failed = code ? code : MM_EIO;
        snprintf(s->fail.msg, sizeof s->fail.msg, "%s", msg);
        s->fail.code = s->failed;
    }
    s->stopped = 1;
    pthread_mutex_unlock(&s->lock);
}

static void deliver(mm_sched *s, size_t item, const void *data, size_t len, int rank)
{
    pthread_mutex_lock(&s->lock);
    if (s->fn && s->fn(s->ctx, item, data, len, rank)) s->stopped = 1;
    pthread_mutex_unlock(&s->lock);
}

/* Rank 0: answer one pending message; returns 0 when none was waiting. */
static int serve_one(mm_sched *s)
{
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->comm, &flag, &st);
    if (!flag) return 0;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    unsigned char *buf = malloc(count > 0 ? (size_t)count : 1);
    if (!buf)   /* the sender blocks until this message is taken: ending the job is the only way out */
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, s->comm, MPI_STATUS_IGNORE);
    if (st.MPI_TAG == TAG_REQ && count == (int)sizeof(uint64_t)) {
        uint64_t max;
        memcpy(&max, buf, sizeof max);
        if (max < 1) max = 1;
        if (max > 4096) max = 4096;
        size_t ids[4096];
        size_t k = take(s, ids, (size_t)max);
        uint64_t out[4096];
        for (size_t i = 0; i < k; i++) out[i] = ids[i];
        MPI_Send(out, (int)k, MPI_UINT64_T, st.MPI_SOURCE, TAG_ITEMS, s->comm);
        if (k == 0) s->workers_left--;
    } else if (st.MPI_TAG == TAG_RESULT && count >= (int)sizeof(uint64_t)) {
        uint64_t item;
        memcpy(&item, buf, sizeof item);
        deliver(s, (size_t)item, buf + sizeof item, (size_t)count - sizeof item, st.MPI_SOURCE);
    } else if (st.MPI_TAG == TAG_FAIL && count > (int)sizeof(int)) {
        int code;
        memcpy(&code, buf, sizeof code);
        buf[count - 1] = 0;
        char msg[sizeof s->fail.msg];
        snprintf(msg, sizeof msg, "rank %d: %s", st.MPI_SOURCE, (char *)buf + sizeof code);
        record_fail(s, code, msg);
    }
    free(buf);
    return 1;
}

static void *service(void *arg)
{
    mm_sched *s = arg;
    while (s->workers_left > 0)
        if (!serve_one(s)) nap(100000);
    return NULL;
}

int mm_sched_create(const size_t *order, size_t n, const mm_sched_params *p, mm_sched **out,
                    mm_err *err)
{
    mm_sched *s = calloc(1, sizeof *s);
    if (!s) return mm_err_set(err, MM_ENOMEM, "out of memory");
    s->mpi = mm_mpi_active();
    s->rank = mm_mpi_rank();
    s->size = mm_mpi_size();
    pthread_mutex_init(&s->lock, NULL);
    if (p) { s->fn = p->on_result; s->ctx = p->ctx; }
    int rc = 0;
    if (s->rank == 0) {
        s->queue = malloc((n ? n : 1) * sizeof *s->queue);
        if (!s->queue) rc = mm_err_set(err, MM_ENOMEM, "out of memory for %zu work items", n);
        else if (n) memcpy(s->queue, order, n * sizeof *order);
        s->n = n;
    }
    if (s->mpi) {
        rc = mm_mpi_agree(rc, err);
        if (!rc) MPI_Comm_dup(MPI_COMM_WORLD, &s->comm);
        if (!rc && s->rank == 0) {
            s->workers_left = s->size - 1;
            if (mm_mpi_threads_ok()) {
                if (pthread_create(&s->thread, NULL, service, s) == 0) s->has_thread = 1;
            }
        }
    }
    if (rc) {
        free(s->queue);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

size_t mm_sched_next(mm_sched *s, size_t *items, size_t max)
{
    if (s->done || max == 0) return 0;
    size_t k = 0;
    if (s->rank == 0) {
        /* without a service thread rank 0 only serves (in mm_sched_finish) */
        if (!s->mpi || s->has_thread) k = take(s, items, max);
    } else {
        uint64_t want = max > 4096 ? 4096 : max;
        MPI_Send(&want, (int)sizeof want, MPI_BYTE, 0, TAG_REQ, s->comm);
        uint64_t buf[4096];
        MPI_Request rq;
        MPI_Status st;
        MPI_Irecv(buf, (int)want, MPI_UINT64_T, 0, TAG_ITEMS, s->comm, &rq);
        wait_gentle(&rq, &st);
        int count = 0;
        MPI_Get_count(&st, MPI_UINT64_T, &count);
        for (int i = 0; i < count; i++) items[i] = (size_t)buf[i];
        k = (size_t)count;
    }
    if (k == 0) s->done = 1;
    return k;
}

int mm_sched_put(mm_sched *s, size_t item, const void *data, size_t len, mm_err *err)
{
    if (s->rank == 0) {
        deliver(s, item, data, len, 0);
        return 0;
    }
    if (len > (size_t)INT32_MAX - 64) return mm_err_set(err, MM_EINVAL, "result of item %zu too large to send (%zu bytes)", item, len);
    unsigned char *buf = malloc(len + sizeof(uint64_t));
    if (!buf) return mm_err_set(err, MM_ENOMEM, "out of memory");
    uint64_t id = item;
    memcpy(buf, &id, sizeof id);
    if (len) memcpy(buf + sizeof id, data, len);
    MPI_Request rq;
    MPI_Isend(buf, (int)(len + sizeof id), MPI_BYTE, 0, TAG_RESULT, s->comm, &rq);
    wait_gentle(&rq, MPI_STATUS_IGNORE);
    free(buf);
    return 0;
}

void mm_sched_fail(mm_sched *s, const mm_err *e)
{
    const char *msg = e && e->msg[0] ? e->msg : "failed";
    int code = e && e->code ? e->code : MM_EIO;
    if (s->rank == 0) { record_fail(s, code, msg); return; }
    size_t l = strlen(msg);
    unsigned char buf[sizeof(int) + sizeof e->msg];
    if (l >= sizeof e->msg) l = sizeof e->msg - 1;
    memcpy(buf, &code, sizeof code);
    memcpy(buf + sizeof code, msg, l);
    buf[sizeof code + l] = 0;
    MPI_Send(buf, (int)(sizeof code + l + 1), MPI_BYTE, 0, TAG_FAIL, s->comm);
}

int mm_sched_finish(mm_sched *s, mm_err *err)
{
    if (!s) return 0;
    struct { int code; char msg[sizeof err->msg]; } st = {0};
    if (s->rank == 0) {
        if (s->mpi) {
            if (s->has_thread) pthread_join(s->thread, NULL);
            else service(s);
        }
        if (s->failed) { st.code = s->failed; snprintf(st.msg, sizeof st.msg, "%s", s->fail.msg); }
    }
    if (s->mpi) {
        /* a worker that stopped early still has to be told "done" by rank 0,
         * which happened in the service loop; now everyone learns the status */
        MPI_Request rq;
        MPI_Ibcast(&st, (int)sizeof st, MPI_BYTE, 0, s->comm, &rq);
        wait_gentle(&rq, MPI_STATUS_IGNORE);
        MPI_Comm_free(&s->comm);
    }
    free(s->queue);
    pthread_mutex_destroy(&s->lock);
    free(s);
    if (st.code) return mm_err_set(err, st.code, "%s", st.msg);
    return 0;
}
