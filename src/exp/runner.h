/* runner.h — experiments from config files: the product's main job.
 *
 * An experiment names a feature table (or a dataset + feature sets, extracted
 * once and cached by a hash of their config), preprocessing (standard scaler,
 * SMOTE — fitted on each training part only), models, voting ensembles over
 * them, and a protocol (src/eval/splits.h). Every (model, round) unit is
 * fitted, timed and predicted; each finished unit is saved under
 * DIR/units/ so that --resume continues where a run stopped; at the end
 * DIR/results.h5, DIR/summary.md and DIR/summary.json are written atomically.
 * Results schema: README "Results". A model that fails records its error
 * and the others go on. Leakage guard: a protocol that puts one group in
 * both training and test data is refused unless allow_group_leakage: true,
 * and one that puts copies of one recording (rows of one path, e.g. from
 * augment_before_split) on both sides unless allow_copy_leakage: true
 * (exp/leakage.h).
 */
#ifndef MM_RUNNER_H
#define MM_RUNNER_H

#include "core/err.h"
#include "io/cfg.h"

/* One progress line (no newline), e.g. "[3/20] svm, round 3/5 ...". */
typedef void (*mm_run_progress_fn)(void *ctx, const char *line);

typedef struct mm_run_opts {
    const char *out_dir;      /* NULL: results/runs/<name> */
    const char *config_path;  /* for messages and provenance */
    int n_threads;            /* >= 1 */
    int resume;               /* reuse finished units in out_dir/units */
    int progress;             /* 1: progress lines (units, epochs, feature extraction) to on_progress */
    int quiet;                /* no summary table (on_summary not called) */
    mm_run_progress_fn on_progress;   /* NULL: no progress lines (the runner prints nothing itself) */
    mm_run_progress_fn on_summary;    /* the text of summary.md unless quiet (the CLI prints it); may be NULL */
    void *progress_ctx;               /* for both */
    /* Optional: called after this process saved its n-th unit to DIR/units
     * (tests stop a run there, as a crashed node would). */
    void (*on_unit_saved)(void *ctx, size_t n_saved);
    void *hook_ctx;
} mm_run_opts;

/* A progress line for o (printf format): to o->on_progress when it is set
 * and o->progress is 1; nothing otherwise. */
void mm_run_say(const mm_run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Validate the whole config (before any work), then run it. */
int mm_experiment_run(const mm_cfg *cfg, const mm_run_opts *o, mm_err *err);

/* The keys an experiment file may hold at the top level. */
extern const char *const mm_experiment_keys[];

/* Scale-out (src/mpi/ is the transport: mpi.h, sched.h). */
typedef struct mm_run_dist {
    int shard_index, shard_count;  /* 1-based I of N; 0/0 = all units */
    int assemble_only;             /* 1: fit nothing; every unit must be in DIR/units */
    int parts_count;               /* assemble_only: N of the parts, for messages (0: none) */
} mm_run_dist;

/* mm_experiment_run with scale-out. Under MPI (several ranks) the missing
 * (model, round) units are scheduled dynamically by rank 0; each rank fits
 * its units with o->n_threads threads and saves them to DIR/units (DIR must
 * be on a file system every rank sees); rank 0 gathers them and writes the
 * results. With d->shard_count > 0 (no MPI), only the shard's units are
 * fitted (unit j = model * rounds + round belongs to shard j mod N + 1),
 * saved, and DIR/parts/run-I-of-N.h5 records the shard; results are written
 * by `melodic merge DIR/parts/run-*.h5` (assemble_only) or a later
 * `melodic run --resume`. Refused before any work: more ranks or shards
 * than units. */
int mm_experiment_run_dist(const mm_cfg *cfg, const mm_run_opts *o, const mm_run_dist *d,
                           mm_err *err);

/* A run part (DIR/parts/run-I-of-N.h5): *cfg_yaml (malloc'd) the resolved
 * config, *out_dir (malloc'd) DIR, shard I/N, the config hash. */
typedef struct mm_run_part {
    char *config_yaml, *out_dir, *config_path, *hash;
    int index, count;
} mm_run_part;
int mm_run_part_read(const char *path, mm_run_part *p, mm_err *err);
void mm_run_part_release(mm_run_part *p);

#endif
