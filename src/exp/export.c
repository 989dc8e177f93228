/* export.c — an experiment's model refitted on all its labelled data and
 * written as a bundle (see export.h; layout in README "Model bundles").
 * The data pass through the steps of the runner's units in the same order
 * with the same seeds: group_norm, augmentation, scaler, SMOTE. */
#include "exp/export.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/paths.h"
#include "data/extract.h"
#include "eval/splits.h"
#include "exp/runner.h"
#include "exp/spec.h"
#include "learn/learner.h"
#include "learn/scaler.h"
#include "learn/smote.h"
#include "runtime/bundle.h"

/* Clips a calibrated bundle asks for when the experiment normalised with all
 * of a speaker's clips (group_norm: true): enough for stable statistics. */
#define CALIB_DEFAULT_CLIPS 20

/* The training data of the export and what was fitted on it. */
typedef struct export_fit {
    mm_table *t;
    mm_featset_inst *fs;
    size_t n_fs;
    float *Xtr, *Xva;          /* (ntr, d), (nva, d) */
    int32_t *ytr, *yva;
    size_t ntr, nva;
    mm_scaler *sc;             /* or NULL */
    mm_learner *l;
} export_fit;

static void export_fit_free(export_fit *x)
{
    free(x->Xtr); free(x->ytr); free(x->Xva); free(x->yva);
    mm_scaler_free(x->sc);
    mm_learner_free(x->l);
    mm_featsets_free(x->fs, x->n_fs);
    mm_table_free(x->t);
}

static const char *cfg_name(const mm_export_opts *o) { return o->config_path ? o->config_path : "config"; }

/* The spec named o->model, or an error listing the experiment's names. */
static const mm_exp_model *find_spec(const mm_exp_model *specs, size_t n, const mm_export_opts *o, mm_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(specs[i].name, o->model)) return &specs[i];
    char list[1024] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, specs[i].name, sizeof list - strlen(list) - 1);
    }
    mm_err_set(err, MM_EINVAL, "%s: no model or ensemble named '%s' (the experiment has: %s)", cfg_name(o), o->model, list);
    return NULL;
}

/* An ensemble's voting-learner params: {voting, estimators: [{model, name,
 * params}], weights}. NULL on error. */
static mm_cfg *voting_params(const mm_exp_model *specs, const mm_exp_model *e, mm_err *err)
{
    mm_cfg *p = mm_cfg_new_map();
    int rc = p ? mm_cfg_put_str(p, "voting", e->hard ? "hard" : "soft", err) : mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t j = 0; j < e->n_members && !rc; j++) {
        const mm_exp_model *m = &specs[e->members[j]];
        mm_cfg *item = mm_cfg_new_map();
        if (!item) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
        rc = mm_cfg_put_str(item, "model", m->learner, err);
        if (!rc) rc = mm_cfg_put_str(item, "name", m->name, err);
        if (!rc && m->params) rc = mm_cfg_put(item, "params", m->params, err);
        if (!rc) rc = mm_cfg_append(p, "estimators", item, err);
        mm_cfg_free(item);
    }
    if (!rc && e->weights) {
        char as[1100] = "weights=[";
        for (size_t j = 0; j < e->n_members; j++) {
            size_t l = strlen(as);
            snprintf(as + l, sizeof as - l, "%s%g", j ? ", " : "", e->weights[j]);
        }
        strncat(as, "]", sizeof as - strlen(as) - 1);
        rc = mm_cfg_set(p, as, err);
    }
    if (rc) { mm_cfg_free(p); return NULL; }
    return p;
}

/* Every labelled row a training row; a validation part carved (by group
 * when there are groups) when the model uses one. */
static int make_split(const mm_table *t, int wants_val, uint64_t seed, mm_split **out, mm_err *err)
{
    mm_split *split = calloc(1, sizeof *split);
    if (!split || !(split->role = malloc(t->n + 1))) {
        free(split);
        return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    split->n = t->n;
    split->n_folds = split->n_repeats = split->n_rounds = 1;
    int has_groups = 0;
    for (size_t i = 0; i < t->n; i++) {
        split->role[i] = t->labels[i] >= 0 ? MM_ROLE_TRAIN : MM_ROLE_NONE;
        if (t->groups[i] >= 0) has_groups = 1;
    }
    int rc = wants_val ? mm_split_carve_validation(split, t->labels, has_groups ? t->groups : NULL, 0.1, seed, err) : 0;
    if (rc) { mm_split_free(split); return rc; }
    *out = split;
    return 0;
}

/* The rows of `role` (features and labels) into X/y; returns their count. */
static size_t take_rows(const mm_table *t, const mm_split *split, int role, size_t *idx, float *X, int32_t *y)
{
    size_t n = mm_split_indices(split, 0, role, idx);
    for (size_t i = 0; i < n; i++) {
        memcpy(X + i * t->d, t->X + idx[i] * t->d, t->d * sizeof *X);
        y[i] = t->labels[idx[i]];
    }
    return n;
}

/* Scaler fitted on the training rows (validation rows transformed with
 * it), then SMOTE on the training rows, as a unit does. */
static int preprocess(export_fit *x, const mm_exp_prep *prep, uint64_t seed, int n_threads, mm_err *err)
{
    size_t d = x->t->d;
    int rc = 0;
    if (prep->scaler && ((rc = mm_scaler_fit(x->Xtr, x->ntr, d, &x->sc, err)) ||
                         (rc = mm_scaler_transform(x->sc, x->Xtr, x->ntr, d, err)) ||
                         (x->nva && (rc = mm_scaler_transform(x->sc, x->Xva, x->nva, d, err)))))
        return rc;
    if (!prep->smote) return 0;
    mm_smote_params sp = mm_smote_params_default();
    float *Xs = NULL;
    int32_t *ys = NULL;
    size_t ns = 0;
    if ((rc = mm_smote_params_from_cfg(prep->smote_params, &sp, err))) return rc;
    sp.n_threads = n_threads;
    if ((rc = mm_smote_resample(x->Xtr, x->ytr, x->ntr, d, x->t->n_classes, &sp, seed, &Xs, &ys, &ns, err))) return rc;
    free(x->Xtr); free(x->ytr);
    x->Xtr = Xs; x->ytr = ys; x->ntr = ns;
    return 0;
}

/* The export's table and feature sets, its training (and validation) rows
 * after calibration, augmentation, scaler and SMOTE. */
static int prepare(const mm_cfg *cfg, const mm_export_opts *o, const mm_run_opts *ro, const mm_exp_prep *prep,
                   int wants_val, uint64_t seed, const char *model_root, export_fit *x, mm_err *err)
{
    mm_exp_augment aug = {0};
    float *aug_X[MM_EXP_MAX_AUG] = {0};
    mm_split *split = NULL;
    size_t *idx = NULL;
    int rc;
    if ((rc = mm_exp_get_table(cfg, ro, &x->t, err)) ||
        (rc = mm_featsets_create(mm_cfg_child(cfg, "features"), mm_model_root(model_root), &x->fs, &x->n_fs, err)) ||
        (rc = make_split(x->t, wants_val, seed, &split, err)))
        goto done;
    /* per-speaker calibration as the runner does it (same function, same seed); the
     * runtime calibrates with K earlier clips, so training must have used K too */
    if (prep->group_norm && !prep->group_norm_clips) {
        rc = mm_err_set(err, MM_EINVAL, "%s: export needs preprocessing.group_norm: {clips: K}: the runtime calibrates a clip "
                        "with K earlier clips of the speaker, and 'true' trained with all of them, the clip itself included",
                        cfg_name(o));
        goto done;
    }
    if ((rc = mm_exp_group_norm(x->t, prep, seed, o->n_threads, err))) goto done;
    /* augmented copies of the training clips, as the runner adds them */
    if ((rc = mm_exp_parse_augment(cfg, &aug, err)) ||
        (aug.n && (rc = mm_exp_augment_tables(cfg, ro, &aug, x->t, 0, prep, seed, aug_X, err))))
        goto done;
    const mm_table *t = x->t;
    idx = malloc((t->n + 1) * sizeof *idx);
    x->Xtr = malloc((t->n + 1) * (1 + aug.n) * t->d * sizeof *x->Xtr);
    x->ytr = malloc((t->n + 1) * (1 + aug.n) * sizeof *x->ytr);
    x->Xva = malloc((t->n + 1) * t->d * sizeof *x->Xva);
    x->yva = malloc((t->n + 1) * sizeof *x->yva);
    if (!idx || !x->Xtr || !x->ytr || !x->Xva || !x->yva) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    x->ntr = take_rows(t, split, MM_ROLE_TRAIN, idx, x->Xtr, x->ytr);
    mm_exp_append_augmented(x->Xtr, x->ytr, x->ntr, t->d, (const float *const *)aug_X, aug.n, idx, t->labels);
    x->ntr *= 1 + aug.n;
    x->nva = take_rows(t, split, MM_ROLE_VAL, idx, x->Xva, x->yva);
    rc = preprocess(x, prep, seed, o->n_threads, err);
done:
    for (size_t k = 0; k < MM_EXP_MAX_AUG; k++) free(aug_X[k]);
    free(idx);
    mm_split_free(split);
    return rc;
}

/* summary.json of the experiment's cross-validated run (at most 1 MB), or
 * NULL when there is none. */
static char *read_metrics(const mm_export_opts *o, const char *name)
{
    char sp[PATH_MAX];
    if (o->results_dir) snprintf(sp, sizeof sp, "%s/summary.json", o->results_dir);
    else snprintf(sp, sizeof sp, "results/runs/%s/summary.json", name);
    FILE *mf = fopen(sp, "r");
    if (!mf) return NULL;
    char *buf = malloc(1 << 20);
    size_t got = buf ? fread(buf, 1, (1 << 20) - 1, mf) : 0;
    fclose(mf);
    if (buf) buf[got] = 0;
    return buf;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The length of the clips the model learnt from, in seconds, for the
 * bundle's clip_seconds (runtime windows songs by it): audio.fixed_seconds
 * when the config crops/pads every clip to it, else the median decoded
 * duration of the table's clips (before any trim: the table keeps no
 * trimmed length). 0 when unknown (no durations, or a bad audio map). */
static double training_clip_seconds(const mm_cfg *cfg, const mm_table *t)
{
    mm_pipeline_audio pa;
    mm_err e = {0};
    if (!mm_pipeline_audio_from_cfg(mm_cfg_child(cfg, "audio"), &pa, &e) && pa.audio.fixed_seconds > 0)
        return pa.audio.fixed_seconds;
    if (!t->durations || !t->n) return 0;
    float *d = malloc(t->n * sizeof *d);
    size_t m = 0;
    for (size_t i = 0; d && i < t->n; i++)
        if (t->durations[i] > 0 && isfinite(t->durations[i])) d[m++] = t->durations[i];
    double med = 0;
    if (m) {
        qsort(d, m, sizeof *d, cmp_float);
        med = m % 2 ? d[m / 2] : 0.5 * ((double)d[m / 2 - 1] + (double)d[m / 2]);
    }
    free(d);
    return med <= 3600 ? med : 0;
}

static int write_bundle(const mm_cfg *cfg, const mm_export_opts *o, const export_fit *x, const char *learner_name,
                        const char *name, const mm_exp_prep *prep, const char *model_root, mm_err *err)
{
    char *cfg_yaml = mm_cfg_to_yaml(cfg);
    char *feat_yaml = mm_cfg_to_yaml(mm_cfg_child(cfg, "features"));
    char *audio_yaml = mm_cfg_child(cfg, "audio") ? mm_cfg_to_yaml(mm_cfg_child(cfg, "audio")) : strdup("{}\n");
    char *metrics = read_metrics(o, name);
    mm_bundle_parts p = {
        .model = o->model, .learner_name = learner_name, .experiment = name, .git_commit = o->git_commit,
        .data_fingerprint = (unsigned long long)mm_table_fingerprint(x->t), .n_train = x->ntr, .n_val = x->nva,
        .calibration_clips = !prep->group_norm ? 0 : prep->group_norm_clips ? prep->group_norm_clips : CALIB_DEFAULT_CLIPS,
        .clip_seconds = training_clip_seconds(cfg, x->t),
        .config_yaml = cfg_yaml, .features_yaml = feat_yaml, .audio_yaml = audio_yaml,
        .sets = x->fs, .n_sets = x->n_fs, .model_root = model_root, .embed_weights = o->embed_weights,
        .scaler = x->sc, .learner = x->l,
        .label_names = (const char *const *)x->t->label_names, .n_classes = (size_t)x->t->n_classes,
        .feature_names = (const char *const *)x->t->feature_names, .n_features = x->t->d,
        .metrics = metrics,
    };
    int rc = mm_bundle_write(o->out_path, &p, err);
    free(cfg_yaml); free(feat_yaml); free(audio_yaml); free(metrics);
    return rc;
}

static void say(const mm_export_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const mm_export_opts *o, const char *fmt, ...)
{
    if (!o->on_progress) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->on_progress(o->progress_ctx, line);
}

int mm_export_bundle(const mm_cfg *cfg, const mm_export_opts *o, mm_err *err)
{
    if (!mm_cfg_child(cfg, "dataset") || !mm_cfg_child(cfg, "features"))
        return mm_err_set(err, MM_EINVAL, "%s: export needs 'dataset' and 'features' (a bare feature table has no audio "
                          "pipeline to export)", cfg_name(o));
    int rc = mm_cfg_check_keys(cfg, "experiment", mm_experiment_keys, err);
    if (rc) return rc;
    if (mm_cfg_child(cfg, "augment_before_split"))   /* its scores are the leaky recipe's (exp/leakage.h) */
        return mm_err_set(err, MM_EINVAL, "%s: export of an augment_before_split experiment: its cross-validated scores count copies of test clips seen in training; "
                          "export its twin with the same copies under 'augment:'", cfg_name(o));
    mm_exp_model *specs = NULL;
    size_t n_specs = 0, n_models = 0;
    if ((rc = mm_exp_parse_models(cfg, &specs, &n_specs, &n_models, err))) return rc;
    mm_exp_prep prep = {0};
    mm_cfg *vparams = NULL;
    export_fit x = {0};
    const char *name = NULL, *model_root = NULL;
    long seed_l = 0;
    const mm_exp_model *spec = find_spec(specs, n_specs, o, err);
    if (!spec) { rc = err->code; goto done; }
    if ((rc = mm_exp_parse_prep(cfg, &prep, err)) || (rc = mm_cfg_get_str(cfg, "name", "experiment", &name, err)) ||
        (rc = mm_cfg_get_int(cfg, "seed", 0, 0, LONG_MAX, &seed_l, err)) ||
        (rc = mm_cfg_get_str(cfg, "model_root", NULL, &model_root, err)))
        goto done;
    if (prep.domain_norm) {   /* a bundle sees one clip at a time, never a corpus's statistics */
        rc = mm_err_set(err, MM_EINVAL, "%s: export: preprocessing.domain_norm standardises with the test corpus's own statistics, "
                        "which a bundle serving one clip at a time does not have; export a model trained without it", cfg_name(o));
        goto done;
    }
    const mm_cfg *params = spec->params;
    if (spec->is_ensemble && !(params = vparams = voting_params(specs, spec, err))) { rc = err->code ? err->code : MM_ENOMEM; goto done; }
    mm_run_opts ro = {.config_path = o->config_path, .n_threads = o->n_threads, .progress = o->on_progress != NULL,
                      .on_progress = o->on_progress, .progress_ctx = o->progress_ctx};
    if ((rc = mm_learner_create(spec->learner, params, (uint64_t)seed_l, o->n_threads, &x.l, err)) ||
        (rc = prepare(cfg, o, &ro, &prep, spec->uses_val, (uint64_t)seed_l, model_root, &x, err)))
        goto done;
    say(o, "export: fitting %s (%s) on %zu rows%s", o->model, spec->learner, x.ntr, x.nva ? " (+ validation part)" : "");
    mm_fit_data fd = {.X = x.Xtr, .y = x.ytr, .n = x.ntr, .d = x.t->d, .n_classes = x.t->n_classes,
                      .X_val = x.nva ? x.Xva : NULL, .y_val = x.nva ? x.yva : NULL, .n_val = x.nva};
    if ((rc = mm_learner_fit(x.l, &fd, err))) goto done;
    rc = write_bundle(cfg, o, &x, spec->learner, name, &prep, model_root, err);
done:
    export_fit_free(&x);
    mm_cfg_free(vparams);
    mm_exp_models_free(specs, n_specs);
    return rc;
}
