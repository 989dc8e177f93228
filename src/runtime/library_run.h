/* library_run.h — private to src/runtime/library*.c (not a public surface):
 * one `melodic index` run cut into its phases, so that library_dist.c can
 * share the classification among --shard parts and MPI ranks and still
 * build the library exactly as one process does:
 *   prepare (bundle facts, class points, the sorted file list)
 *   → classify (any subset of the files, in parallel over files)
 *   → finish (assemble in path order, sort orders, PCA/int8 similarity
 *     vectors and the valence–arousal grid over the whole library, save).
 * A job's result crosses ranks and part files as bytes (mm_libjob_pack).
 * Not thread-safe except mm_librun_classify's own parallel loop. */
#ifndef MM_LIBRARY_RUN_H
#define MM_LIBRARY_RUN_H

#include <stddef.h>
#include <stdint.h>
#include "runtime/library.h"

/* One file to index. Strings malloc'd (NULL when absent). */
typedef struct mm_libjob {
    char *path;
    char *label;            /* true label from layout / manifest, or NULL */
    char *artist, *title;   /* from metadata / manifest, or NULL */
    /* results */
    int status;             /* 0 classified, 1 reused, -1 failed */
    char *reason;           /* failed: one line */
    mm_library_track t;     /* id, artist, title, size, mtime, duration, n_windows, segment_start */
    float *proba, *emb;     /* (k), (dim) */
    long old;               /* reused: index in the previous library, else −1 */
    mm_va *traj;            /* (t.n_windows) windowed: the trajectory, or NULL */
} mm_libjob;

typedef struct mm_libjobs {
    mm_libjob *v;
    size_t n, cap;
} mm_libjobs;

/* How files are classified: whole, or by windows (window_s > 0) with the
 * classes' points for the trajectories. */
typedef struct mm_libmode {
    double window_s, hop_s;
    const mm_va *class_va;  /* (k) */
} mm_libmode;

typedef struct mm_librun {
    int k;                  /* classes */
    size_t dim;             /* embedding dimension D */
    char **names;           /* (k) class names, owned */
    mm_va *cva;             /* (k) their points, owned */
    char *model_name;       /* owned */
    char bsha[65];          /* the bundle's SHA-256 ("" when unknown) */
    mm_libmode md;          /* md.class_va == cva */
    mm_libjobs jl;          /* sorted by path */
    const char *source;     /* borrowed */
} mm_librun;

/* Everything up to classification: parameters checked, class points, the
 * bundle's SHA-256, the files listed (sorted by path; none is an error
 * naming source). On failure r is left for mm_librun_free. */
int mm_librun_prepare(const mm_bundle *b, const char *bundle_path, const mm_va_table *va, const char *source,
                      const mm_library_index_params *p, mm_librun *r, mm_err *err);
/* An empty run with the given classes etc. (the merge's, from a part file). */
int mm_librun_init(mm_librun *r, int k, const char *const *names, const mm_va *cva, size_t dim,
                   const char *model_name, const char *bsha, double window_s, double hop_s, mm_err *err);
/* Append a job for path (label may be NULL). */
int mm_libjobs_push(mm_libjobs *jl, const char *path, const char *label, mm_err *err);
void mm_librun_free(mm_librun *r);

/* Hash, reuse (from old, or NULL) or classify jobs items[0..m) (items NULL:
 * all) with b, in parallel over files (p->n_threads); p->progress once per
 * file with total m. Failures are recorded in the jobs, never returned. */
void mm_librun_classify(mm_librun *r, const mm_bundle *b, const mm_library *old, const size_t *items, size_t m,
                        const mm_library_index_params *p);
/* Open the library at out_path as *old and say whether its tracks may be
 * reused by this run (same bundle, classes, dimension and windows). */
int mm_librun_open_previous(const mm_librun *r, const char *out_path, mm_library **old, int *reusable, mm_err *err);
/* Assemble every job (all classified or failed) in path order, build the
 * index over the whole library and write out_path atomically; s filled
 * (n_files is the job count). old/reusable as from open_previous (NULL/0). */
int mm_librun_finish(mm_librun *r, const mm_library *old, int reusable, const char *out_path,
                     mm_library_index_stats *s, mm_err *err);

/* A job's listing and result as bytes (malloc'd into *out, *len); unpack
 * replaces job j's fields with the packed ones and checks every length
 * against len (k, dim: the run's). */
int mm_libjob_pack(const mm_libjob *j, int k, size_t dim, unsigned char **out, size_t *len, mm_err *err);
int mm_libjob_unpack(mm_libjob *j, int k, size_t dim, const unsigned char *data, size_t len, mm_err *err);
void mm_libjob_clear(mm_libjob *j);

#endif
