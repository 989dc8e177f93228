/* fuzz_shard.c — libFuzzer target for the --shard I/N parser and the LPT
 * share of files: the first line is a shard spec, the rest sizes (8 bytes
 * each). Checks: parse accepts only 1 <= I <= N, and every file gets
 * exactly one shard in range, the same one twice (determinism). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t l = nl ? (size_t)(nl - data) : size;
    char *spec = malloc(l + 1);
    if (!spec) return 0;
    memcpy(spec, data, l);
    spec[l] = 0;
    int i = 0, n = 0;
    mm_err e = {0};
    if (mm_shard_parse(spec, "--shard", &i, &n, &e) == 0) {
        if (i < 1 || i > n) abort();
        size_t m = nl ? (size - l - 1) / 8 : 0;
        if (m > 4096) m = 4096;
        if (n > 64) n = 64;
        uint64_t *sizes = malloc((m + 1) * sizeof *sizes);
        int *a = malloc((m + 1) * sizeof *a), *b = malloc((m + 1) * sizeof *b);
        if (sizes && a && b) {
            if (m) memcpy(sizes, nl + 1, m * 8);
            mm_shard_assign(sizes, m, n, a);
            mm_shard_assign(sizes, m, n, b);
            for (size_t k = 0; k < m; k++)
                if (a[k] < 0 || a[k] >= n || a[k] != b[k]) abort();
        }
        free(sizes); free(a); free(b);
    } else if (!strstr(e.msg, "--shard")) {
        abort();
    }
    free(spec);
    return 0;
}
