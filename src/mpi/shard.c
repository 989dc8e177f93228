/* shard.c — see shard.h. The LPT rule is Graham's (1969) longest
 * processing time first; file size stands in for decode + feature time
 * (both grow with the clip's length). The feature-table parts these shares
 * become are src/data/shard_table.c's. Not covered: re-balancing shards
 * from measured times. */
#include "mpi/shard.h"

#include <stdio.h>
#include <stdlib.h>

int mm_shard_parse(const char *text, const char *what, int *index, int *count, mm_err *err)
{
    long i = 0, n = 0;
    char tail = 0;
    if (!text || sscanf(text, "%ld/%ld%c", &i, &n, &tail) != 2 || n < 1 || n > 100000 || i < 1 || i > n)
        return mm_err_set(err, MM_EINVAL, "%s: expected I/N with 1 <= I <= N (e.g. 2/8), got '%s'", what, text ? text : "");
    *index = (int)i;
    *count = (int)n;
    return 0;
}

static const uint64_t *g_sizes;   /* qsort context (single-threaded use) */

static int by_size_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (g_sizes[x] != g_sizes[y]) return g_sizes[x] > g_sizes[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

void mm_shard_assign(const uint64_t *sizes, size_t n, int count, int *owner)
{
    size_t *ord = malloc((n ? n : 1) * sizeof *ord);
    uint64_t *load = calloc((size_t)count, sizeof *load);
    if (!ord || !load) {   /* fall back to round robin: still a valid share */
        for (size_t i = 0; i < n; i++) owner[i] = (int)(i % (size_t)count);
        free(ord); free(load);
        return;
    }
    for (size_t i = 0; i < n; i++) ord[i] = i;
    g_sizes = sizes;
    qsort(ord, n, sizeof *ord, by_size_desc);
    for (size_t k = 0; k < n; k++) {
        int best = 0;
        for (int s = 1; s < count; s++) if (load[s] < load[best]) best = s;
        owner[ord[k]] = best;
        load[best] += sizes[ord[k]] + 1;   /* +1: empty files still count */
    }
    free(ord);
    free(load);
}
