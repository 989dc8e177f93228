/* export.h — an experiment's model as a bundle (runtime/bundle.h): the named
 * model or ensemble is refitted, with the experiment's preprocessing, on all
 * of its labelled data, as a unit of the runner fits one round: the same
 * spec parsing (exp/spec.h), per-speaker calibration, augmented copies of
 * the training clips, scaler and SMOTE; a validation part is carved (by
 * group when the data has groups) only when the model stops early on one.
 * Not thread-safe (HDF5); the fit itself uses n_threads.
 */
#ifndef MM_EXP_EXPORT_H
#define MM_EXP_EXPORT_H

#include "core/err.h"
#include "io/cfg.h"

typedef struct mm_export_opts {
    const char *model;          /* name of a model or ensemble in the experiment */
    const char *out_path;
    const char *config_path;    /* for messages and provenance */
    const char *results_dir;    /* where summary.json may be (NULL: results/runs/<name>) */
    const char *git_commit;     /* or NULL */
    int embed_weights;          /* copy backbone weights into the bundle */
    int n_threads;
    /* Progress lines (extraction, the fit); NULL: none. */
    void (*on_progress)(void *ctx, const char *line);
    void *progress_ctx;
} mm_export_opts;

/* Refit o->model of the experiment cfg and write the bundle to o->out_path.
 * Errors name the config (o->config_path) and what is missing or wrong. */
int mm_export_bundle(const mm_cfg *cfg, const mm_export_opts *o, mm_err *err);

#endif
