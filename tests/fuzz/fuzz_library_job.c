/* fuzz_library_job.c — libFuzzer target for the record a file's indexing
 * result travels in between MPI ranks and inside `melodic index --shard`
 * parts (runtime/library_run.h: mm_libjob_unpack, 4 classes, dimension 8).
 * Checks: unpack either fails with a message or gives a job whose strings
 * and arrays are all there (a track: path, id, artist, title; a failure:
 * its path), and packing that job gives back bytes that unpack to the same
 * packing (a fixed point). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/library_run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { K = 4, D = 8 };
    mm_libjob j = {0}, j2 = {0};
    mm_err e = {0};
    if (mm_libjob_unpack(&j, K, D, data, size, &e)) {
        if (!e.msg[0]) abort();
        mm_libjob_clear(&j);
        return 0;
    }
    if (!j.path || (j.status >= 0 && (!j.proba || !j.emb || !j.t.id || !j.t.artist || !j.t.title)) ||
        (j.status >= 0 && j.t.n_windows && !j.traj))
        abort();
    unsigned char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    if (mm_libjob_pack(&j, K, D, &a, &la, &e)) abort();
    if (mm_libjob_unpack(&j2, K, D, a, la, &e)) abort();
    if (mm_libjob_pack(&j2, K, D, &b, &lb, &e) || la != lb || memcmp(a, b, la)) abort();
    free(a);
    free(b);
    mm_libjob_clear(&j);
    mm_libjob_clear(&j2);
    return 0;
}
