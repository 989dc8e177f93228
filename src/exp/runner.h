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
 * both training and test data is refused unless allow_group_leakage: true.
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
    int progress;             /* progress lines: through on_progress, else (legacy callers) on stderr */
    int quiet;                /* no summary table on stdout */
    mm_run_progress_fn on_progress;   /* NULL: see progress */
    void *progress_ctx;
    /* Optional: called after this process saved its n-th unit to DIR/units
     * (tests stop a run there, as a crashed node would). */
    void (*on_unit_saved)(void *ctx, size_t n_saved);
    void *hook_ctx;
} mm_run_opts;

/* A progress line for o (printf format): to o->on_progress when set, else
 * to stderr when o->progress; nothing otherwise. */
void mm_run_say(const mm_run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Validate the whole config (before any work), then run it. */
int mm_experiment_run(const mm_cfg *cfg, const mm_run_opts *o, mm_err *err);

/* The keys an experiment file may hold at the top level. */
extern const char *const mm_experiment_keys[];

#endif
