/* mpi.c — see mpi.h. Start-up by environment detection, failure agreement
 * by MPI_Allreduce(MIN) over the failing ranks then MPI_Bcast of the
 * message. Not covered: MPI_Comm_spawn, several communicators, fault
 * tolerance beyond MPI's own (a dead rank ends the job). */
#include "mpi/mpi.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Wait for a non-blocking operation without spinning a core (Open MPI's
 * blocking calls poll, which would take the CPU from ranks still working). */
static void wait_gentle(MPI_Request *rq)
{
    int flag = 0;
    for (long spins = 0;; spins++) {
        MPI_Test(rq, &flag, MPI_STATUS_IGNORE);
        if (flag) return;
        struct timespec ts = {0, spins < 100 ? 20000 : 200000};
        nanosleep(&ts, NULL);
    }
}

static int g_started, g_rank, g_size = 1, g_local = 1, g_threads_ok;

static int launched_by_mpi(void)
{
    const char *off = getenv("MELODIC_NO_MPI");
    if (off && *off && strcmp(off, "0")) return 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", NULL};
    for (const char *const *v = vars; *v; v++) {
        const char *e = getenv(*v);
        if (e && *e) return 1;
    }
    return 0;
}

int mm_mpi_init(int *argc, char ***argv, mm_err *err)
{
    int inited = 0;
    if (g_started || !launched_by_mpi()) return 0;
    MPI_Initialized(&inited);
    int provided = MPI_THREAD_SINGLE;
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return mm_err_set(err, MM_EIO, "MPI_Init_thread failed (launched by mpirun/srun, but MPI could not start)");
    if (inited) MPI_Query_thread(&provided);
    g_started = !inited;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_threads_ok = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    if (!g_started) g_started = -1;   /* someone else's MPI: do not finalize it */
    return 0;
}

void mm_mpi_finalize(void)
{
    if (g_started == 1) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Finalize();
    }
    g_started = 0;
    g_rank = 0;
    g_size = g_local = 1;
}

int mm_mpi_active(void) { return g_started && g_size > 1; }
int mm_mpi_rank(void) { return g_rank; }
int mm_mpi_size(void) { return g_size; }
int mm_mpi_local_size(void) { return g_local < 1 ? 1 : g_local; }
int mm_mpi_threads_ok(void) { return g_threads_ok; }

int mm_mpi_threads_per_rank(int n)
{
    const char *e = getenv("OMP_NUM_THREADS");
    if (!mm_mpi_active() || (e && *e)) return n;
    int t = n / mm_mpi_local_size();
    return t < 1 ? 1 : t;
}

int mm_mpi_agree(int rc, mm_err *err)
{
    if (!mm_mpi_active()) return rc;
    int mine = rc ? g_rank : g_size, first = g_size;
    MPI_Request rq;
    MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &rq);
    wait_gentle(&rq);
    if (first == g_size) return 0;
    struct { int code; char msg[sizeof err->msg]; } m = {0};
    if (g_rank == first) {
        m.code = rc;
        snprintf(m.msg, sizeof m.msg, "%s", err && err->msg[0] ? err->msg : "failed");
    }
    MPI_Ibcast(&m, (int)sizeof m, MPI_BYTE, first, MPI_COMM_WORLD, &rq);
    wait_gentle(&rq);
    if (g_rank != first) {
        if (rc) return rc;     /* keep this rank's own message */
        mm_err_set(err, m.code ? m.code : MM_EIO, "rank %d: %s", first, m.msg);
        return m.code ? m.code : MM_EIO;
    }
    return rc;
}

int mm_mpi_bcast_int(int v)
{
    if (!mm_mpi_active()) return v;
    MPI_Request rq;
    MPI_Ibcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD, &rq);
    wait_gentle(&rq);
    return v;
}

void mm_mpi_barrier(void)
{
    if (!mm_mpi_active()) return;
    MPI_Request rq;
    MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    wait_gentle(&rq);
}
