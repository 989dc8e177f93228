/* runner.c — the experiment runner; see runner.h.
 *
 * Order of work: validate everything (dataset/table, protocol, models,
 * ensembles, leakage) → for each round: fit the scaler and SMOTE on the
 * training part, then fit and predict every model (a unit), saving each
 * unit to DIR/units/ → ensembles from their members' probabilities →
 * metrics, curves, t-SNE → results.h5, summary.md, summary.json.
 * Units run one after another, each learner using all threads, so results
 * do not depend on the thread count. Scale-out (mm_experiment_run_dist,
 * src/mpi/dist.h): under MPI rank 0 hands the missing units out one at a
 * time (src/mpi/sched.h) and gathers them as bytes; with --shard a job
 * array's task fits every N-th unit and leaves a part file for merge.
 */
#include "exp/runner.h"
#include "exp/spec.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/paths.h"
#include "core/rng.h"
#include "data/extract.h"
#include "data/table.h"
#include "eval/splits.h"
#include "exp/report.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/groupnorm.h"
#include "learn/scaler.h"
#include "learn/smote.h"
#include "mpi/dist.h"
#include "mpi/mpi.h"
#include "mpi/sched.h"

const char *const mm_experiment_keys[] = {
    "name", "description", "seed", "table", "dataset", "features", "audio", "cache",
    "data_root", "model_root", "protocol", "preprocessing", "models", "ensembles", "tsne",
    "allow_group_leakage", "output", "augment", NULL};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int mkdirs(const char *path, mm_err *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mm_err_set(err, MM_EIO, "%s: cannot create folder: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return mm_err_set(err, MM_EIO, "%s: cannot create folder: %s", buf, strerror(errno));
    return 0;
}

/* ---- config parsing ---- */

int mm_exp_parse_models(const mm_cfg *cfg, mm_exp_model **out, size_t *n_out, size_t *n_models, mm_err *err)
{
    char w[600];
    const mm_cfg *models = mm_cfg_child(cfg, "models");
    const mm_cfg *ens = mm_cfg_child(cfg, "ensembles");
    if (!models || models->type != MM_CFG_SEQ || models->n == 0)
        return mm_err_set(err, MM_EINVAL, "%s: 'models' must be a non-empty list of {name, model, params}", mm_cfg_where(models ? models : cfg, w, sizeof w));
    if (ens && ens->type != MM_CFG_SEQ && ens->type != MM_CFG_NULL)
        return mm_err_set(err, MM_EINVAL, "%s: 'ensembles' must be a list of {name, members, voting, weights}", mm_cfg_where(ens, w, sizeof w));
    size_t ne = ens && ens->type == MM_CFG_SEQ ? ens->n : 0;
    mm_exp_model *s = calloc(models->n + ne, sizeof *s);
    if (!s) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = 0;
    static const char *const mkeys[] = {"name", "model", "params", NULL};
    for (size_t i = 0; i < models->n && !rc; i++) {
        const mm_cfg *m = models->items[i];
        if (m->type == MM_CFG_SCALAR) { s[i].name = s[i].learner = m->value; }
        else {
            if ((rc = mm_cfg_check_keys(m, "models", mkeys, err))) break;
            if ((rc = mm_cfg_get_str(m, "model", NULL, &s[i].learner, err))) break;
            if ((rc = mm_cfg_get_str(m, "name", s[i].learner, &s[i].name, err))) break;
            s[i].params = mm_cfg_child(m, "params");
        }
        if (!s[i].learner) { rc = mm_err_set(err, MM_EINVAL, "%s: model entry needs 'model: NAME'", mm_cfg_where(m, w, sizeof w)); break; }
        s[i].vt = mm_learner_find(s[i].learner);
        if (!s[i].vt) {
            mm_learner *tmp = NULL;
            mm_learner_create(s[i].learner, NULL, 0, 1, &tmp, err);   /* for the list of names */
            mm_learner_free(tmp);
            rc = mm_err_prefix(err, "%s", mm_cfg_where(m, w, sizeof w));
            break;
        }
        /* validate params now, before any work */
        mm_learner *tmp = NULL;
        if ((rc = mm_learner_create(s[i].learner, s[i].params, 0, 1, &tmp, err))) break;
        s[i].uses_val = mm_learner_uses_validation(tmp);
        mm_learner_free(tmp);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s[j].name, s[i].name)) { rc = mm_err_set(err, MM_EINVAL, "%s: two models are named '%s'", mm_cfg_where(m, w, sizeof w), s[i].name); break; }
    }
    static const char *const ekeys[] = {"name", "members", "voting", "weights", NULL};
    for (size_t e = 0; e < ne && !rc; e++) {
        const mm_cfg *m = ens->items[e];
        mm_exp_model *x = &s[models->n + e];
        x->is_ensemble = 1;
        if ((rc = mm_cfg_check_keys(m, "ensembles", ekeys, err))) break;
        if ((rc = mm_cfg_get_str(m, "name", "ensemble", &x->name, err))) break;
        x->learner = "voting";
        static const char *const votes[] = {"soft", "hard", NULL};
        if ((rc = mm_cfg_get_choice(m, "voting", votes, 0, &x->hard, err))) break;
        const mm_cfg *mem = mm_cfg_child(m, "members");
        if (!mem || mem->type != MM_CFG_SEQ || mem->n < 2) { rc = mm_err_set(err, MM_EINVAL, "%s: ensemble '%s' needs 'members: [at least two model names]'", mm_cfg_where(m, w, sizeof w), x->name); break; }
        x->n_members = mem->n;
        x->members = calloc(mem->n, sizeof *x->members);
        if (!x->members) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
        for (size_t k = 0; k < mem->n && !rc; k++) {
            int found = -1;
            for (size_t j = 0; j < models->n; j++)
                if (mem->items[k]->value && !strcmp(s[j].name, mem->items[k]->value)) found = (int)j;
            if (found < 0) rc = mm_err_set(err, MM_EINVAL, "%s: ensemble '%s': no model named '%s' in 'models'", mm_cfg_where(mem->items[k], w, sizeof w), x->name, mem->items[k]->value ? mem->items[k]->value : "?");
            x->members[k] = found;
            if (found >= 0 && s[found].uses_val) x->uses_val = 1;
        }
        const mm_cfg *wt = mm_cfg_child(m, "weights");
        if (!rc && wt && wt->type != MM_CFG_NULL) {
            if (wt->type != MM_CFG_SEQ || wt->n != mem->n) { rc = mm_err_set(err, MM_EINVAL, "%s: ensemble '%s': 'weights' needs one number per member", mm_cfg_where(wt, w, sizeof w), x->name); break; }
            x->weights = calloc(wt->n, sizeof *x->weights);
            for (size_t k = 0; k < wt->n && !rc; k++) {
                rc = mm_cfg_scalar_double(wt->items[k], "weights", &x->weights[k], err);
                if (!rc && x->weights[k] < 0) rc = mm_err_set(err, MM_EINVAL, "%s: weights must be >= 0", mm_cfg_where(wt->items[k], w, sizeof w));
            }
        }
        for (size_t j = 0; j < models->n + e && !rc; j++)
            if (!strcmp(s[j].name, x->name)) rc = mm_err_set(err, MM_EINVAL, "%s: ensemble name '%s' is already used", mm_cfg_where(m, w, sizeof w), x->name);
    }
    if (rc) {
        for (size_t i = 0; i < models->n + ne; i++) { free(s[i].members); free(s[i].weights); }
        free(s);
        return rc;
    }
    *out = s;
    *n_out = models->n + ne;
    *n_models = models->n;
    return 0;
}

/* Keep the labelled rows of a table, in order (in place). */
static void keep_labelled(mm_table *full)
{
    size_t m = 0;
    for (size_t i = 0; i < full->n; i++) if (full->labels[i] >= 0) m++;
    if (m == full->n) return;
    size_t k = 0;
    for (size_t i = 0; i < full->n; i++) {
        if (full->labels[i] < 0) continue;
        memmove(full->X + k * full->d, full->X + i * full->d, full->d * sizeof *full->X);
        full->labels[k] = full->labels[i];
        full->groups[k] = full->groups[i];
        char *p = full->paths[k]; full->paths[k] = full->paths[i]; full->paths[i] = p;
        k++;
    }
    for (size_t i = m; i < full->n; i++) { free(full->paths[i]); full->paths[i] = NULL; }
    if (full->artists) for (size_t i = 0; i < full->n; i++) { free(full->artists[i]); free(full->titles[i]); }
    free(full->artists); free(full->titles);
    full->artists = full->titles = NULL;
    full->n = m;
}

int mm_exp_parse_augment(const mm_cfg *cfg, mm_exp_augment *a, mm_err *err)
{
    memset(a, 0, sizeof *a);
    const mm_cfg *m = mm_cfg_child(cfg, "augment");
    if (!m) return 0;
    static const char *const keys[] = {"speed", NULL};
    char w[600];
    int rc = mm_cfg_check_keys(m, "augment", keys, err);
    if (rc) return rc;
    const mm_cfg *sp = mm_cfg_child(m, "speed");
    if (!sp) return 0;
    if (sp->type != MM_CFG_SEQ || sp->n < 1 || sp->n > MM_EXP_MAX_AUG)
        return mm_err_set(err, MM_EINVAL, "%s: augment.speed: expected a list of 1 to %d factors, e.g. [0.9, 1.1]", mm_cfg_where(sp, w, sizeof w), MM_EXP_MAX_AUG);
    for (size_t i = 0; i < sp->n; i++) {
        double f;
        if ((rc = mm_cfg_scalar_double(sp->items[i], "augment.speed", &f, err))) return rc;
        if (!(f >= 0.5 && f <= 2.0) || f == 1.0)
            return mm_err_set(err, MM_EINVAL, "%s: augment.speed factor %g: expected 0.5..2 and not 1", mm_cfg_where(sp->items[i], w, sizeof w), f);
        a->speed[a->n++] = f;
    }
    if (!mm_cfg_child(cfg, "dataset"))
        return mm_err_set(err, MM_EINVAL, "%s: augment needs 'dataset' and 'features' (a feature table has no audio to perturb)", mm_cfg_where(m, w, sizeof w));
    return 0;
}

int mm_exp_augment_tables(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_augment *a, const mm_table *ref,
                          int labelled_only, const mm_exp_prep *prep, uint64_t seed, float **X, mm_err *err)
{
    int rc = 0;
    for (size_t k = 0; k < a->n; k++) X[k] = NULL;
    for (size_t k = 0; k < a->n && !rc; k++) {
        mm_cfg *c = mm_cfg_clone(cfg);
        char as[64];
        snprintf(as, sizeof as, "audio.speed=%.17g", a->speed[k]);
        mm_table *t = NULL;
        rc = c ? mm_cfg_set(c, as, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
        if (!rc) rc = mm_exp_get_table(c, o, &t, err);
        mm_cfg_free(c);
        if (rc) { mm_err_prefix(err, "augment speed %g", a->speed[k]); break; }
        if (labelled_only) keep_labelled(t);
        int same = t->n == ref->n && t->d == ref->d;
        for (size_t i = 0; same && i < t->n; i++) same = t->labels[i] == ref->labels[i] && t->groups[i] == ref->groups[i];
        if (!same) rc = mm_err_set(err, MM_EDATA, "augment speed %g: the perturbed table does not line up with the original (%zu vs %zu rows)", a->speed[k], t->n, ref->n);
        if (!rc) rc = mm_exp_group_norm(t, prep, seed, o->n_threads, err);
        if (!rc) { X[k] = t->X; t->X = NULL; }
        mm_table_free(t);
    }
    if (rc) for (size_t k = 0; k < a->n; k++) { free(X[k]); X[k] = NULL; }
    return rc;
}

int mm_exp_group_norm(mm_table *t, const mm_exp_prep *prep, uint64_t seed, int n_threads, mm_err *err)
{
    if (!prep->group_norm) return 0;
    size_t n = 0, d = t->d;
    for (size_t i = 0; i < t->n; i++) n += t->labels[i] >= 0;
    float *X = mm_malloc(n * d + 1, sizeof *X, err);
    int32_t *g = mm_malloc(n + 1, sizeof *g, err);
    if (!X || !g) { free(X); free(g); return MM_ENOMEM; }
    for (size_t i = 0, k = 0; i < t->n; i++)
        if (t->labels[i] >= 0) { memcpy(X + k * d, t->X + i * d, d * sizeof *X); g[k++] = t->groups[i]; }
    int rc = mm_group_norm(X, n, d, g, prep->group_norm_clips, seed ^ 0x67726e6fULL, n_threads, err);
    for (size_t i = 0, k = 0; !rc && i < t->n; i++)
        if (t->labels[i] >= 0) memcpy(t->X + i * d, X + k++ * d, d * sizeof *X);
    free(X);
    free(g);
    return rc;
}

int mm_exp_parse_prep(const mm_cfg *cfg, mm_exp_prep *p, mm_err *err)
{
    const mm_cfg *m = mm_cfg_child(cfg, "preprocessing");
    static const char *const keys[] = {"scaler", "smote", "group_norm", NULL};
    int rc = mm_cfg_check_keys(m, "preprocessing", keys, err);
    if (rc) return rc;
    static const char *const scalers[] = {"none", "standard", NULL};
    if ((rc = mm_cfg_get_choice(m, "scaler", scalers, 1, &p->scaler, err))) return rc;
    const mm_cfg *sm = m ? mm_cfg_child(m, "smote") : NULL;
    p->smote = 0;
    p->smote_params = NULL;
    if (sm && sm->type == MM_CFG_MAP) { p->smote = 1; p->smote_params = sm; }
    else if (sm && sm->type == MM_CFG_SCALAR) {
        if ((rc = mm_cfg_get_bool(m, "smote", 0, &p->smote, err))) return rc;
    }
    /* group_norm: true | false | {clips: K} */
    const mm_cfg *gn = m ? mm_cfg_child(m, "group_norm") : NULL;
    p->group_norm = 0;
    p->group_norm_clips = 0;
    if (gn && gn->type == MM_CFG_MAP) {
        static const char *const gkeys[] = {"clips", NULL};
        long k;
        if ((rc = mm_cfg_check_keys(gn, "group_norm", gkeys, err)) ||
            (rc = mm_cfg_get_int(gn, "clips", 0, 0, 1000, &k, err)))
            return rc;
        if (k == 1) {
            char w[600];
            return mm_err_set(err, MM_EINVAL, "%s: group_norm clips: 1 gives no deviation to divide by; use 0 (all) or 2..1000",
                              mm_cfg_where(gn, w, sizeof w));
        }
        p->group_norm = 1;
        p->group_norm_clips = (size_t)k;
    } else if (gn) {
        if ((rc = mm_cfg_get_bool(m, "group_norm", 0, &p->group_norm, err))) return rc;
    }
    if (p->smote) {   /* validate now */
        mm_smote_params sp = mm_smote_params_default();
        if ((rc = mm_smote_params_from_cfg(p->smote_params, &sp, err))) return rc;
    }
    return 0;
}

/* ---- the feature table ---- */

/* Under MPI: rank 0 looks for the cache; when it is missing every rank
 * takes part in the extraction (mm_extract_dist), rank 0 writes the cache
 * and the others read it (the cache folder must be shared). */
static int get_table_mpi(const mm_cfg *cfg, const mm_run_opts *o, const mm_cfg *ds_cfg, const mm_cfg *fs_cfg,
                         const char *data_root, const char *model_root, const char *cache, const char *path,
                         char *key_yaml, mm_table **out, mm_err *err)
{
    int rank = mm_mpi_rank(), rc = 0;
    mm_table *t = NULL;
    mm_err e2 = {0};
    int have = rank == 0 && access(path, R_OK) == 0 && mm_table_read(path, &t, &e2) == 0;
    if (mm_mpi_bcast_int(have)) {
        if (rank == 0 && o->progress) fprintf(stderr, "features: cached %s\n", path);
        if (rank != 0) rc = mm_table_read(path, &t, err);
        free(key_yaml);
        rc = mm_mpi_agree(rc, err);
        if (rc) { mm_table_free(t); return rc; }
        *out = t;
        return 0;
    }
    mm_dataset *ds = NULL;
    mm_featset_inst *fs = NULL;
    size_t n_fs = 0;
    mm_extract_opts eo = {0};
    mm_audio_opts_default(&eo.audio);
    rc = mm_audio_opts_from_cfg(mm_cfg_child(cfg, "audio"), &eo.audio, err);
    if (!rc) rc = mm_dataset_load(ds_cfg, mm_data_root(data_root), &ds, err);
    if (!rc) rc = mm_featsets_create(fs_cfg, mm_model_root(model_root), &fs, &n_fs, err);
    if (!rc && rank == 0) rc = mkdirs(cache, err);
    rc = mm_mpi_agree(rc, err);
    if (!rc) {
        if (rank == 0 && o->progress) fprintf(stderr, "features: extracting %zu clips on %d ranks → %s\n", ds->n, mm_mpi_size(), path);
        eo.n_threads = o->n_threads;
        eo.progress = o->progress && rank == 0 && isatty(2);
        eo.config_yaml = key_yaml;
        rc = mm_extract_dist(ds, fs, n_fs, &eo, &t, err);
    }
    if (!rc && rank == 0) rc = mm_table_write(t, path, err);
    rc = mm_mpi_agree(rc, err);
    if (!rc && rank != 0) rc = mm_table_read(path, &t, err);
    rc = mm_mpi_agree(rc, err);
    free(key_yaml);
    mm_featsets_free(fs, n_fs);
    mm_dataset_free(ds);
    if (rc) { mm_table_free(t); return rc; }
    *out = t;
    return 0;
}

int mm_exp_get_table(const mm_cfg *cfg, const mm_run_opts *o, mm_table **out, mm_err *err)
{
    const char *table = NULL, *data_root = NULL, *model_root = NULL, *cache = NULL;
    int rc;
    if ((rc = mm_cfg_get_str(cfg, "table", NULL, &table, err)) ||
        (rc = mm_cfg_get_str(cfg, "data_root", NULL, &data_root, err)) ||
        (rc = mm_cfg_get_str(cfg, "model_root", NULL, &model_root, err)) ||
        (rc = mm_cfg_get_str(cfg, "cache", "build/cache", &cache, err)))
        return rc;
    char w[600];
    if (table) {
        if (mm_cfg_child(cfg, "dataset") || mm_cfg_child(cfg, "features"))
            return mm_err_set(err, MM_EINVAL, "%s: give either 'table' or 'dataset' + 'features', not both", mm_cfg_where(mm_cfg_child(cfg, "table"), w, sizeof w));
        return mm_table_read(table, out, err);
    }
    const mm_cfg *ds_cfg = mm_cfg_child(cfg, "dataset"), *fs_cfg = mm_cfg_child(cfg, "features");
    if (!ds_cfg || !fs_cfg)
        return mm_err_set(err, MM_EINVAL, "%s: an experiment needs 'table: FILE.h5' or 'dataset' and 'features'", o->config_path ? o->config_path : "config");
    /* cache key: the parts of the config that determine the table */
    mm_cfg *key = mm_cfg_new_map();
    mm_cfg_put(key, "dataset", ds_cfg, err);
    mm_cfg_put(key, "features", fs_cfg, err);
    if (mm_cfg_child(cfg, "audio")) mm_cfg_put(key, "audio", mm_cfg_child(cfg, "audio"), err);
    mm_cfg_put_str(key, "data_root", mm_data_root(data_root), err);
    unsigned long long h = mm_cfg_hash(key);
    char *key_yaml = mm_cfg_to_yaml(key);
    mm_cfg_free(key);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/features-%016llx.h5", cache, h);
    if (mm_mpi_active()) return get_table_mpi(cfg, o, ds_cfg, fs_cfg, data_root, model_root, cache, path, key_yaml, out, err);
    if (access(path, R_OK) == 0) {
        mm_err e2 = {0};
        if (mm_table_read(path, out, &e2) == 0) {
            if (o->progress) fprintf(stderr, "features: cached %s\n", path);
            free(key_yaml);
            return 0;
        }
    }
    mm_dataset *ds = NULL;
    mm_featset_inst *fs = NULL;
    size_t n_fs = 0;
    mm_extract_opts eo = {0};
    mm_audio_opts_default(&eo.audio);
    rc = mm_audio_opts_from_cfg(mm_cfg_child(cfg, "audio"), &eo.audio, err);
    if (!rc) rc = mm_dataset_load(ds_cfg, mm_data_root(data_root), &ds, err);
    if (!rc) rc = mm_featsets_create(fs_cfg, mm_model_root(model_root), &fs, &n_fs, err);
    if (!rc) rc = mkdirs(cache, err);
    if (!rc) {
        if (o->progress) fprintf(stderr, "features: extracting %zu clips → %s\n", ds->n, path);
        eo.n_threads = o->n_threads;
        eo.progress = o->progress && isatty(2);
        eo.config_yaml = key_yaml;
        rc = mm_extract(ds, fs, n_fs, &eo, out, err);
    }
    if (!rc) rc = mm_table_write(*out, path, err);
    free(key_yaml);
    mm_featsets_free(fs, n_fs);
    mm_dataset_free(ds);
    return rc;
}

/* ---- units ---- */

typedef struct unit {
    int done, failed;
    char *error;
    size_t n_test;
    int32_t *test_index;     /* (n_test) row in the (labelled) table */
    int32_t *y_true, *y_pred;
    float *proba;            /* (n_test, k) */
    double fit_s, predict_s;
    size_t n_hist;
    float *hist[4];          /* train_loss, train_acc, val_loss, val_acc (n_hist) or NULL */
} unit;

static const char *const hist_names[4] = {"train_loss", "train_acc", "val_loss", "val_acc"};

static void unit_clear(unit *u)
{
    free(u->error);
    free(u->test_index);
    free(u->y_true);
    free(u->y_pred);
    free(u->proba);
    for (int i = 0; i < 4; i++) free(u->hist[i]);
    memset(u, 0, sizeof *u);
}

static void unit_path(char *buf, size_t size, const char *dir, const char *model, size_t round)
{
    snprintf(buf, size, "%s/units/%s__r%03zu.h5", dir, model, round);
}

static int unit_save(const unit *u, const char *path, unsigned long long cfg_hash, int k, mm_err *err)
{
    mm_h5_out o;
    int rc = mm_h5_create(path, &o, err);
    if (rc) return rc;
    hid_t f = o.file;
    char hs[32];
    snprintf(hs, sizeof hs, "%016llx", cfg_hash);
    rc = mm_h5_stamp_format(f, "melodic-unit", 1, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "config_hash", hs, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "failed", u->failed, err);
    if (!rc && u->error) rc = mm_h5_attr_set_str(f, "error", u->error, err);
    if (!rc && !u->failed) {
        hsize_t n = u->n_test, d2[2] = {u->n_test, (hsize_t)k};
        rc = mm_h5_write_i32(f, "test_index", u->test_index, 1, &n, err);
        if (!rc) rc = mm_h5_write_i32(f, "y_true", u->y_true, 1, &n, err);
        if (!rc) rc = mm_h5_write_i32(f, "y_pred", u->y_pred, 1, &n, err);
        if (!rc) rc = mm_h5_write_f32(f, "proba", u->proba, 2, d2, err);
        if (!rc) rc = mm_h5_attr_set_f64(f, "fit_seconds", u->fit_s, err);
        if (!rc) rc = mm_h5_attr_set_f64(f, "predict_seconds", u->predict_s, err);
        hsize_t nh = u->n_hist;
        for (int i = 0; i < 4 && !rc; i++)
            if (u->hist[i] && u->n_hist) {
                char name[64];
                snprintf(name, sizeof name, "history/%s", hist_names[i]);
                rc = mm_h5_write_f32(f, name, u->hist[i], 1, &nh, err);
            }
    }
    if (rc) { mm_h5_abort(&o); return rc; }
    return mm_h5_commit(&o, err);
}

/* Load a finished unit; returns 0 on success, nonzero when absent/stale. */
static int unit_load(unit *u, const char *path, unsigned long long cfg_hash, int k)
{
    if (access(path, R_OK) != 0) return -1;
    hid_t f;
    mm_err e = {0};
    if (mm_h5_open_read(path, &f, &e)) return -1;
    int rc = mm_h5_check_format(f, "melodic-unit", 1, NULL, &e);
    char *hs = NULL, want[32];
    snprintf(want, sizeof want, "%016llx", cfg_hash);
    if (!rc) rc = mm_h5_attr_get_str(f, "config_hash", &hs, &e);
    if (!rc && strcmp(hs, want)) rc = -1;
    free(hs);
    int64_t failed = 0;
    if (!rc) rc = mm_h5_attr_get_i64(f, "failed", &failed, &e);
    if (!rc && failed) {
        u->failed = 1;
        if (mm_h5_attr_get_str(f, "error", &u->error, &e)) u->error = strdup("failed");
    } else if (!rc) {
        hsize_t d[4];
        int r;
        rc = mm_h5_read_i32(f, "test_index", 1, &u->test_index, &r, d, &e);
        if (!rc) { u->n_test = d[0]; rc = mm_h5_read_i32(f, "y_true", 1, &u->y_true, &r, d, &e); }
        if (!rc) rc = mm_h5_read_i32(f, "y_pred", 1, &u->y_pred, &r, d, &e);
        if (!rc) rc = mm_h5_read_f32(f, "proba", 2, &u->proba, &r, d, &e);
        if (!rc && (d[0] != u->n_test || d[1] != (hsize_t)k)) rc = -1;
        if (!rc) rc = mm_h5_attr_get_f64(f, "fit_seconds", &u->fit_s, &e);
        if (!rc) rc = mm_h5_attr_get_f64(f, "predict_seconds", &u->predict_s, &e);
        for (int i = 0; i < 4 && !rc; i++) {
            char name[64];
            snprintf(name, sizeof name, "history/%s", hist_names[i]);
            if (mm_h5_exists(f, name) && !mm_h5_read_f32(f, name, 1, &u->hist[i], &r, d, &e)) u->n_hist = d[0];
        }
    }
    mm_h5_close(f);
    if (rc) { unit_clear(u); return -1; }
    u->done = 1;
    return 0;
}

static void gather(const float *X, size_t d, const size_t *idx, size_t m, float *out)
{
    for (size_t i = 0; i < m; i++) memcpy(out + i * d, X + idx[i] * d, d * sizeof *X);
}

/* Prepared data of one round (after scaler and SMOTE). */
typedef struct round_data {
    size_t n_train, n_val, n_test;
    float *Xtr, *Xva, *Xte;
    int32_t *ytr, *yva;
    size_t *te_idx;
} round_data;

static void round_free(round_data *r)
{
    free(r->Xtr); free(r->Xva); free(r->Xte); free(r->ytr); free(r->yva); free(r->te_idx);
    memset(r, 0, sizeof *r);
}

/* The rows of one role in one round: features *X (m, d), and labels *y or
 * row indices *idx (either may be NULL). Returns -1 when out of memory. */
static int gather_role(const mm_table *t, const mm_split *sp, size_t round, int role, float **X,
                       int32_t **y, size_t **idx_out, size_t *m_out)
{
    size_t *idx = malloc((t->n + 1) * sizeof *idx);
    if (!idx) return -1;
    size_t m = mm_split_indices(sp, round, role, idx);
    *X = malloc((m + 1) * t->d * sizeof **X);
    if (y) *y = malloc((m + 1) * sizeof **y);
    if (!*X || (y && !*y)) { free(idx); return -1; }
    gather(t->X, t->d, idx, m, *X);
    for (size_t i = 0; y && i < m; i++) (*y)[i] = t->labels[idx[i]];
    if (idx_out) *idx_out = idx;
    else free(idx);
    *m_out = m;
    return 0;
}

/* Augmented copies (aug: n_aug tables aligned with t, or NULL) of the training rows
 * idx[0..m) appended after them. */
static int append_augmented(const mm_table *t, const float *const *aug, size_t n_aug, const size_t *idx,
                            size_t m, round_data *r, mm_err *err)
{
    if (!n_aug) return 0;
    size_t d = t->d, total = m * (1 + n_aug);
    float *X = realloc(r->Xtr, total * d * sizeof *X);
    if (X) r->Xtr = X;
    int32_t *y = X ? realloc(r->ytr, total * sizeof *y) : NULL;
    if (y) r->ytr = y;
    if (!X || !y) return mm_err_set(err, MM_ENOMEM, "out of memory");
    mm_exp_append_augmented(X, y, m, d, aug, n_aug, idx, t->labels);
    r->n_train = total;
    return 0;
}

void mm_exp_append_augmented(float *X, int32_t *y, size_t m, size_t d, const float *const *aug, size_t n_aug,
                             const size_t *idx, const int32_t *labels)
{
    for (size_t k = 0; k < n_aug; k++)
        for (size_t i = 0; i < m; i++) {
            memcpy(X + ((k + 1) * m + i) * d, aug[k] + idx[i] * d, d * sizeof *X);
            y[(k + 1) * m + i] = labels[idx[i]];
        }
}

/* with_val = 0: the validation rows join the training rows before the
 * scaler and SMOTE (for models that do not use a validation part). aug:
 * augmented copies of the table whose training rows join too (never
 * validation or test rows). */
static int prepare_round(const mm_table *t, const mm_split *sp, size_t round, const mm_exp_prep *prep,
                         const float *const *aug, size_t n_aug, uint64_t seed, int n_threads, int with_val,
                         round_data *r, mm_err *err)
{
    size_t d = t->d, *tr_idx = NULL;
    memset(r, 0, sizeof *r);
    int rc = 0;
    if (gather_role(t, sp, round, MM_ROLE_TRAIN, &r->Xtr, &r->ytr, &tr_idx, &r->n_train) ||
        gather_role(t, sp, round, MM_ROLE_VAL, &r->Xva, &r->yva, NULL, &r->n_val) ||
        gather_role(t, sp, round, MM_ROLE_TEST, &r->Xte, NULL, &r->te_idx, &r->n_test))
        { free(tr_idx); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    if (r->n_train == 0 || r->n_test == 0) {
        free(tr_idx);
        return mm_err_set(err, MM_EINVAL, "round %zu has %zu training and %zu test samples; the protocol leaves a part empty", round, r->n_train, r->n_test);
    }
    if (!with_val && r->n_val) {   /* training and validation rows, in table order */
        size_t *a = malloc((t->n + 1) * sizeof *a), *b = malloc((t->n + 1) * sizeof *b);
        size_t m = r->n_train + r->n_val;
        float *X = malloc(m * d * sizeof *X);
        int32_t *y = malloc(m * sizeof *y);
        if (!a || !b || !X || !y) { free(a); free(b); free(X); free(y); free(tr_idx); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
        size_t na = mm_split_indices(sp, round, MM_ROLE_TRAIN, a), nb = mm_split_indices(sp, round, MM_ROLE_VAL, b);
        for (size_t i = 0, j = 0, k = 0; k < na + nb; k++) {
            size_t row = j >= nb || (i < na && a[i] < b[j]) ? a[i++] : b[j++];
            memcpy(X + k * d, t->X + row * d, d * sizeof *X);
            y[k] = t->labels[row];
            tr_idx[k] = row;   /* tr_idx (t->n + 1 entries) becomes the merged list */
        }
        free(a), free(b);
        free(r->Xtr), free(r->ytr), free(r->Xva), free(r->yva);
        r->Xtr = X, r->ytr = y, r->Xva = NULL, r->yva = NULL;
        r->n_train = m, r->n_val = 0;
    }
    rc = append_augmented(t, aug, n_aug, tr_idx, r->n_train, r, err);
    free(tr_idx);
    if (rc) return rc;
    if (prep->scaler) {
        mm_scaler *sc = NULL;
        rc = mm_scaler_fit(r->Xtr, r->n_train, d, &sc, err);
        if (!rc) rc = mm_scaler_transform(sc, r->Xtr, r->n_train, d, err);
        if (!rc && r->n_val) rc = mm_scaler_transform(sc, r->Xva, r->n_val, d, err);
        if (!rc) rc = mm_scaler_transform(sc, r->Xte, r->n_test, d, err);
        mm_scaler_free(sc);
        if (rc) return rc;
    }
    if (prep->smote) {
        mm_smote_params p = mm_smote_params_default();
        if ((rc = mm_smote_params_from_cfg(prep->smote_params, &p, err))) return rc;
        p.n_threads = n_threads;
        float *Xs = NULL;
        int32_t *ys = NULL;
        size_t ns = 0;
        rc = mm_smote_resample(r->Xtr, r->ytr, r->n_train, d, t->n_classes, &p, seed ^ (0x5307eULL + round), &Xs, &ys, &ns, err);
        if (rc) return mm_err_prefix(err, "SMOTE in round %zu", round);
        free(r->Xtr);
        free(r->ytr);
        r->Xtr = Xs;
        r->ytr = ys;
        r->n_train = ns;
    }
    return 0;
}

static int run_unit(const mm_exp_model *m, const mm_table *t, const round_data *r, uint64_t seed,
                    size_t round, int n_threads, unit *u, mm_err *err)
{
    size_t d = t->d;
    int k = t->n_classes;
    mm_learner *l = NULL;
    mm_err e = {0};
    memset(u, 0, sizeof *u);
    int rc = mm_learner_create(m->learner, m->params, seed + 1000003ULL * round, n_threads, &l, &e);
    mm_fit_data fd = {.X = r->Xtr, .y = r->ytr, .n = r->n_train, .d = d, .n_classes = k,
                      .X_val = r->n_val ? r->Xva : NULL, .y_val = r->n_val ? r->yva : NULL, .n_val = r->n_val};
    double t0 = now_s();
    if (!rc) rc = mm_learner_fit(l, &fd, &e);
    double t1 = now_s();
    u->proba = malloc((r->n_test + 1) * (size_t)k * sizeof *u->proba);
    if (!rc && !u->proba) rc = mm_err_set(&e, MM_ENOMEM, "out of memory");
    if (!rc) rc = mm_learner_predict_proba(l, r->Xte, r->n_test, d, u->proba, &e);
    double t2 = now_s();
    if (rc) {
        u->failed = 1;
        u->error = strdup(e.msg);
        free(u->proba);
        u->proba = NULL;
    } else {
        u->fit_s = t1 - t0;
        u->predict_s = t2 - t1;
        u->n_test = r->n_test;
        u->test_index = malloc(r->n_test * sizeof *u->test_index);
        u->y_true = malloc(r->n_test * sizeof *u->y_true);
        u->y_pred = malloc(r->n_test * sizeof *u->y_pred);
        if (!u->test_index || !u->y_true || !u->y_pred) { mm_learner_free(l); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
        for (size_t i = 0; i < r->n_test; i++) {
            u->test_index[i] = (int32_t)r->te_idx[i];
            u->y_true[i] = t->labels[r->te_idx[i]];
        }
        mm_proba_argmax(u->proba, r->n_test, k, u->y_pred);
        const mm_history *h = mm_learner_history(l);
        if (h && h->n) {
            const float *src[4] = {h->train_loss, h->train_acc, h->val_loss, h->val_acc};
            u->n_hist = h->n;
            for (int i = 0; i < 4; i++)
                if (src[i]) {
                    u->hist[i] = malloc(h->n * sizeof(float));
                    if (u->hist[i]) memcpy(u->hist[i], src[i], h->n * sizeof(float));
                }
        }
    }
    u->done = 1;
    mm_learner_free(l);
    return 0;
}

/* Ensemble of finished member units of one round: soft = weighted mean of
 * probabilities; hard = weighted majority of predicted labels, ties broken
 * by the summed probability. */
static void ensemble_unit(const mm_exp_model *m, unit *const *members, int k, unit *u)
{
    memset(u, 0, sizeof *u);
    u->done = 1;
    for (size_t j = 0; j < m->n_members; j++)
        if (members[j]->failed) {
            u->failed = 1;
            char buf[600];
            snprintf(buf, sizeof buf, "member failed: %s", members[j]->error ? members[j]->error : "?");
            u->error = strdup(buf);
            return;
        }
    const unit *a = members[0];
    size_t n = a->n_test;
    u->n_test = n;
    u->test_index = malloc(n * sizeof *u->test_index);
    u->y_true = malloc(n * sizeof *u->y_true);
    u->y_pred = malloc(n * sizeof *u->y_pred);
    u->proba = calloc(n * (size_t)k, sizeof *u->proba);
    double *votes = calloc((size_t)k, sizeof *votes);
    if (!u->test_index || !u->y_true || !u->y_pred || !u->proba || !votes) { free(votes); u->failed = 1; u->error = strdup("out of memory"); return; }
    memcpy(u->test_index, a->test_index, n * sizeof *u->test_index);
    memcpy(u->y_true, a->y_true, n * sizeof *u->y_true);
    double wsum = 0;
    for (size_t j = 0; j < m->n_members; j++) wsum += m->weights ? m->weights[j] : 1.0;
    if (wsum <= 0) wsum = 1;
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (size_t j = 0; j < m->n_members; j++)
                s += (m->weights ? m->weights[j] : 1.0) * members[j]->proba[i * k + c];
            u->proba[i * k + c] = (float)(s / wsum);
        }
        if (!m->hard) {
            mm_proba_argmax(u->proba + i * k, 1, k, &u->y_pred[i]);
        } else {
            for (int c = 0; c < k; c++) votes[c] = 0;
            for (size_t j = 0; j < m->n_members; j++) votes[members[j]->y_pred[i]] += m->weights ? m->weights[j] : 1.0;
            int best = 0;
            for (int c = 1; c < k; c++)
                if (votes[c] > votes[best] || (votes[c] == votes[best] && u->proba[i * k + c] > u->proba[i * k + best])) best = c;
            u->y_pred[i] = best;
            /* hard voting's probability: the vote shares (for curves the soft mean is kept) */
        }
        for (size_t j = 0; j < m->n_members; j++) { u->fit_s += 0; }
    }
    for (size_t j = 0; j < m->n_members; j++) { u->fit_s += members[j]->fit_s; u->predict_s += members[j]->predict_s; }
    free(votes);
}

/* Make the split and refuse group leakage unless allowed. *out (may be NULL)
 * receives the split. */
static int check_protocol(const mm_split_params *sp, const int32_t *labels, const int32_t *groups,
                          size_t n, const char *group_by, int allow_leak, const mm_run_opts *o,
                          mm_split **out, mm_err *err)
{
    int has_groups = 0;
    for (size_t i = 0; i < n; i++) if (groups[i] >= 0) { has_groups = 1; break; }
    mm_split *split = NULL;
    const char *cp = o->config_path ? o->config_path : "config";
    int rc = mm_split_make(sp, labels, has_groups ? groups : NULL, n, &split, err);
    if (rc) return mm_err_prefix(err, "%s: protocol", cp);
    mm_err le = {0};
    if (has_groups && !allow_leak && mm_split_check_leakage(split, groups, &le)) {
        mm_split_free(split);
        return mm_err_set(err, MM_EINVAL, "%s: this protocol puts the same %s in training and test data (%s); use a group protocol (group_kfold, stratified_group_kfold, logo, fixed) or set allow_group_leakage: true to run it anyway",
                          cp, group_by ? group_by : "group", le.msg);
    }
    if (out) *out = split;
    else mm_split_free(split);
    return 0;
}

/* ---- scale-out: units on the wire, MPI scheduling, run parts ---- */

/* A unit as bytes: header, then the error text, test_index, y_true,
 * y_pred (int32, n_test each), proba (float32, n_test × k) and the history
 * curves present (float32, n_hist each). */
typedef struct unit_wire {
    int32_t failed, k;
    uint32_t err_len, hist_mask;
    uint64_t n_test, n_hist;
    double fit_s, predict_s;
} unit_wire;

static unsigned char *unit_pack(const unit *u, int k, size_t *len)
{
    unit_wire h = {.failed = u->failed, .k = k, .n_test = u->failed ? 0 : u->n_test,
                   .n_hist = u->failed ? 0 : u->n_hist, .fit_s = u->fit_s, .predict_s = u->predict_s};
    h.err_len = u->error ? (uint32_t)strlen(u->error) : 0;
    for (int i = 0; i < 4 && !u->failed; i++) if (u->hist[i] && u->n_hist) h.hist_mask |= 1u << i;
    size_t nh = 0;
    for (int i = 0; i < 4; i++) nh += (h.hist_mask >> i) & 1;
    size_t n = (size_t)h.n_test;
    size_t total = sizeof h + h.err_len + 3 * n * sizeof(int32_t) + n * (size_t)k * sizeof(float) + nh * (size_t)h.n_hist * sizeof(float);
    unsigned char *b = malloc(total), *p = b;
    if (!b) return NULL;
    memcpy(p, &h, sizeof h); p += sizeof h;
    if (h.err_len) { memcpy(p, u->error, h.err_len); p += h.err_len; }
    if (n) {
        memcpy(p, u->test_index, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(p, u->y_true, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(p, u->y_pred, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(p, u->proba, n * (size_t)k * sizeof(float)); p += n * (size_t)k * sizeof(float);
    }
    for (int i = 0; i < 4; i++)
        if ((h.hist_mask >> i) & 1) { memcpy(p, u->hist[i], h.n_hist * sizeof(float)); p += h.n_hist * sizeof(float); }
    *len = total;
    return b;
}

/* Inverse of unit_pack; every length checked against len. Returns 0, or -1
 * when the bytes are not a unit of k classes. */
static int unit_unpack(const unsigned char *b, size_t len, int k, unit *u)
{
    unit_wire h;
    memset(u, 0, sizeof *u);
    if (len < sizeof h) return -1;
    memcpy(&h, b, sizeof h);
    const unsigned char *p = b + sizeof h, *end = b + len;
    if (h.k != k || h.hist_mask > 15 || h.n_test > len || h.n_hist > len || h.err_len > len) return -1;
    size_t nh = 0;
    for (int i = 0; i < 4; i++) nh += (h.hist_mask >> i) & 1;
    size_t n = (size_t)h.n_test;
    size_t need = h.err_len + 3 * n * sizeof(int32_t) + n * (size_t)k * sizeof(float) + nh * (size_t)h.n_hist * sizeof(float);
    if ((size_t)(end - p) != need) return -1;
    u->failed = h.failed != 0;
    u->fit_s = h.fit_s;
    u->predict_s = h.predict_s;
    u->error = malloc(h.err_len + 1);
    if (!u->error) return -1;
    memcpy(u->error, p, h.err_len); u->error[h.err_len] = 0; p += h.err_len;
    if (!h.err_len && !u->failed) { free(u->error); u->error = NULL; }
    if (!u->failed) {
        u->n_test = n;
        u->test_index = malloc((n + 1) * sizeof(int32_t));
        u->y_true = malloc((n + 1) * sizeof(int32_t));
        u->y_pred = malloc((n + 1) * sizeof(int32_t));
        u->proba = malloc((n * (size_t)k + 1) * sizeof(float));
        if (!u->test_index || !u->y_true || !u->y_pred || !u->proba) { unit_clear(u); return -1; }
        memcpy(u->test_index, p, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(u->y_true, p, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(u->y_pred, p, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(u->proba, p, n * (size_t)k * sizeof(float)); p += n * (size_t)k * sizeof(float);
        u->n_hist = (size_t)h.n_hist;
        for (int i = 0; i < 4; i++)
            if ((h.hist_mask >> i) & 1) {
                u->hist[i] = malloc((h.n_hist + 1) * sizeof(float));
                if (!u->hist[i]) { unit_clear(u); return -1; }
                memcpy(u->hist[i], p, h.n_hist * sizeof(float));
                p += h.n_hist * sizeof(float);
            }
    }
    u->done = 1;
    return 0;
}

typedef struct mpi_ctx {
    unit *units;
    const mm_exp_model *specs;
    size_t R, total, finished, n_folds;
    int k, progress;
    double t0;
} mpi_ctx;

/* Rank 0: a unit came back (from itself or another rank). */
static int on_unit(void *vctx, size_t item, const void *data, size_t len, int rank)
{
    mpi_ctx *c = vctx;
    if (item >= c->total || c->units[item].done) return 1;
    if (unit_unpack(data, len, c->k, &c->units[item])) return 1;
    c->finished++;
    if (c->progress) {
        size_t m = item / c->R, r = item % c->R;
        double el = now_s() - c->t0;
        fprintf(stderr, "[%zu/%zu] %s, round %zu/%zu (repeat %zu, fold %zu) on rank %d%s  elapsed %.0f s, ETA %.0f s\n",
                c->finished, c->total, c->specs[m].name, r + 1, c->R, r / c->n_folds + 1, r % c->n_folds + 1, rank,
                c->units[item].failed ? " FAILED" : "", el, el / c->finished * (c->total - c->finished));
    }
    return 0;
}

/* Under MPI: rank 0 loads what --resume can reuse and queues the rest in
 * the single-process order (round by round); every rank fits what it is
 * handed, saves the unit file itself, and sends it to rank 0. */
static int run_units_mpi(const mm_exp_model *specs, size_t n_models, const mm_table *t, const mm_split *split,
                         const mm_exp_prep *prep, const float *const *aug, size_t n_aug, uint64_t seed,
                         const mm_run_opts *o, const char *dir, unsigned long long cfg_hash, unit *units,
                         mm_err *err)
{
    size_t R = split->n_rounds, total = n_models * R;
    int k = t->n_classes, rank = mm_mpi_rank();
    mpi_ctx c = {.units = units, .specs = specs, .R = R, .total = total, .n_folds = split->n_folds ? split->n_folds : 1,
                 .k = k, .progress = o->progress && rank == 0, .t0 = now_s()};
    size_t *order = NULL, n_todo = 0;
    int rc = 0;
    if (rank == 0) {
        order = malloc((total + 1) * sizeof *order);
        if (!order) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        for (size_t r = 0; r < R && !rc; r++)
            for (size_t m = 0; m < n_models; m++) {
                char path[PATH_MAX + 64];
                unit_path(path, sizeof path, dir, specs[m].name, r);
                if (o->resume && unit_load(&units[m * R + r], path, cfg_hash, k) == 0) c.finished++;
                else order[n_todo++] = m * R + r;
            }
        if (!rc && c.progress)
            fprintf(stderr, "%zu units to fit on %d ranks (%zu reused)\n", n_todo, mm_mpi_size(), c.finished);
    }
    mm_sched *s = NULL;
    mm_sched_params p = {.on_result = on_unit, .ctx = &c};
    rc = mm_mpi_agree(rc, err);
    if (!rc) rc = mm_sched_create(order, n_todo, &p, &s, err);
    free(order);
    if (rc) return rc;
    round_data rd[2] = {{0}};   /* [uses_val]: without and with a validation part */
    size_t have_round[2] = {(size_t)-1, (size_t)-1}, item, n_saved = 0;
    /* fault injection for tests: this rank dies (SIGKILL) after saving so
     * many units, as a crashed node would; MPI then ends the job */
    const char *fault = getenv("MELODIC_FAULT_AFTER_UNITS");
    long fault_after = fault && *fault ? strtol(fault, NULL, 10) : 0;
    mm_err le = {0};
    int lrc = 0;
    while (mm_sched_next(s, &item, 1) == 1) {
        if (lrc) continue;
        size_t m = item / R, r = item % R;
        int v = specs[m].uses_val;
        if (have_round[v] != r) {
            round_free(&rd[v]);
            have_round[v] = (size_t)-1;
            if ((lrc = prepare_round(t, split, r, prep, aug, n_aug, seed, o->n_threads, v, &rd[v], &le))) { mm_sched_fail(s, &le); continue; }
            have_round[v] = r;
        }
        unit u = {0};
        char path[PATH_MAX + 64];
        unit_path(path, sizeof path, dir, specs[m].name, r);
        lrc = run_unit(&specs[m], t, &rd[v], seed, r, o->n_threads, &u, &le);
        if (!lrc) lrc = unit_save(&u, path, cfg_hash, k, &le);
        if (!lrc && fault_after > 0 && (long)++n_saved >= fault_after) raise(SIGKILL);
        size_t len = 0;
        unsigned char *b = lrc ? NULL : unit_pack(&u, k, &len);
        if (!lrc && !b) lrc = mm_err_set(&le, MM_ENOMEM, "out of memory");
        if (!lrc) lrc = mm_sched_put(s, item, b, len, &le);
        free(b);
        unit_clear(&u);
        if (lrc) mm_sched_fail(s, &le);
    }
    round_free(&rd[0]);
    round_free(&rd[1]);
    rc = mm_sched_finish(s, err);
    if (!rc && rank == 0 && c.finished != total)
        rc = mm_err_set(err, MM_EIO, "%zu of %zu units came back; rerun with --resume", c.finished, total);
    return rc;
}

static int run_part_write(const char *dir, const mm_run_opts *o, const mm_run_dist *d, const char *cfg_yaml,
                          unsigned long long cfg_hash, mm_err *err)
{
    char parts[PATH_MAX + 16], path[PATH_MAX + 64], hs[32];
    snprintf(parts, sizeof parts, "%s/parts", dir);
    int rc = mkdirs(parts, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/run-%d-of-%d.h5", parts, d->shard_index, d->shard_count);
    snprintf(hs, sizeof hs, "%016llx", cfg_hash);
    mm_h5_out f;
    if ((rc = mm_h5_create(path, &f, err))) return rc;
    rc = mm_h5_stamp_format(f.file, "melodic-run-part", 1, err);
    if (!rc) rc = mm_h5_attr_set_str(f.file, "config", cfg_yaml, err);
    if (!rc) rc = mm_h5_attr_set_str(f.file, "config_path", o->config_path ? o->config_path : "config", err);
    if (!rc) rc = mm_h5_attr_set_str(f.file, "out_dir", dir, err);
    if (!rc) rc = mm_h5_attr_set_str(f.file, "config_hash", hs, err);
    if (!rc) rc = mm_h5_attr_set_i64(f.file, "shard_index", d->shard_index, err);
    if (!rc) rc = mm_h5_attr_set_i64(f.file, "shard_count", d->shard_count, err);
    if (rc) { mm_h5_abort(&f); return rc; }
    return mm_h5_commit(&f, err);
}

int mm_run_part_read(const char *path, mm_run_part *p, mm_err *err)
{
    memset(p, 0, sizeof *p);
    hid_t f;
    int rc = mm_h5_open_read(path, &f, err);
    if (rc) return rc;
    int64_t i = 0, n = 0;
    rc = mm_h5_check_format(f, "melodic-run-part", 1, NULL, err);
    if (!rc) rc = mm_h5_attr_get_str(f, "config", &p->config_yaml, err);
    if (!rc) rc = mm_h5_attr_get_str(f, "config_path", &p->config_path, err);
    if (!rc) rc = mm_h5_attr_get_str(f, "out_dir", &p->out_dir, err);
    if (!rc) rc = mm_h5_attr_get_str(f, "config_hash", &p->hash, err);
    if (!rc) rc = mm_h5_attr_get_i64(f, "shard_index", &i, err);
    if (!rc) rc = mm_h5_attr_get_i64(f, "shard_count", &n, err);
    mm_h5_close(f);
    if (!rc && (n < 1 || n > 100000 || i < 1 || i > n)) rc = mm_err_set(err, MM_EFORMAT, "%s: bad shard %lld/%lld", path, (long long)i, (long long)n);
    if (rc) { mm_run_part_release(p); return rc; }
    p->index = (int)i;
    p->count = (int)n;
    return 0;
}

void mm_run_part_release(mm_run_part *p)
{
    free(p->config_yaml); free(p->out_dir); free(p->config_path); free(p->hash);
    memset(p, 0, sizeof *p);
}

/* Scale-out checks, before any work. */
static int check_scale(const mm_run_dist *d, size_t n_models, size_t R, mm_err *err)
{
    size_t total = n_models * R;
    if (d->shard_count && mm_mpi_active())
        return mm_err_set(err, MM_EINVAL, "--shard %d/%d under mpirun: use one or the other (mpirun shares the units itself)", d->shard_index, d->shard_count);
    if (d->shard_count && (size_t)d->shard_count > total)
        return mm_err_set(err, MM_EINVAL, "--shard %d/%d: %d shards for %zu units (%zu models × %zu rounds); use at most %zu shards", d->shard_index, d->shard_count, d->shard_count, total, n_models, R, total);
    if (!d->assemble_only && (size_t)mm_mpi_size() > total)
        return mm_err_set(err, MM_EINVAL, "%d MPI ranks for %zu units (%zu models × %zu rounds): use at most %zu ranks (mpirun -np)", mm_mpi_size(), total, n_models, R, total);
    return 0;
}

/* ---- the run ---- */

int mm_experiment_run_dist(const mm_cfg *cfg, const mm_run_opts *o_in, const mm_run_dist *d, mm_err *err)
{
    mm_run_opts lo = *o_in;
    const mm_run_opts *o = &lo;
    if (mm_mpi_rank() != 0) { lo.progress = 0; lo.quiet = 1; }   /* rank 0 speaks for the job */
    int rc = mm_cfg_check_keys(cfg, "experiment", mm_experiment_keys, err);
    if (rc) return rc;
    const char *name = NULL;
    long seed_l = 0;
    int allow_leak = 0;
    if ((rc = mm_cfg_get_str(cfg, "name", "experiment", &name, err)) ||
        (rc = mm_cfg_get_int(cfg, "seed", 0, 0, LONG_MAX, &seed_l, err)) ||
        (rc = mm_cfg_get_bool(cfg, "allow_group_leakage", 0, &allow_leak, err)))
        return rc;
    uint64_t seed = (uint64_t)seed_l;
    mm_exp_model *specs = NULL;
    size_t n_specs = 0, n_models = 0;
    mm_exp_prep prep = {0};
    if ((rc = mm_exp_parse_models(cfg, &specs, &n_specs, &n_models, err))) return rc;
    if ((rc = mm_exp_parse_prep(cfg, &prep, err))) goto out_specs;
    mm_exp_augment aug;
    float *aug_X[MM_EXP_MAX_AUG] = {0};
    if ((rc = mm_exp_parse_augment(cfg, &aug, err))) goto out_specs;
    mm_report_tsne_opts tsne_o;
    if ((rc = mm_report_tsne_opts_from_cfg(mm_cfg_child(cfg, "tsne"), &tsne_o, err))) goto out_specs;

    /* protocol (validated before extraction) */
    mm_split_params sp = mm_split_params_default();
    const mm_cfg *proto = mm_cfg_child(cfg, "protocol");
    if ((rc = mm_split_params_from_cfg(proto, &sp, err))) goto out_specs;
    if (!mm_cfg_find(cfg, "protocol.seed")) sp.seed = seed;
    int wants_val = 0;
    for (size_t i = 0; i < n_models; i++) wants_val |= specs[i].uses_val;
    if (wants_val && !mm_cfg_find(cfg, "protocol.val_fraction") && sp.val_fraction <= 0 && sp.n_val_groups == 0)
        sp.val_fraction = 0.1;   /* a fixed split with val_groups already has its validation part */

    /* Check the protocol on the dataset's labels and groups before any
     * extraction, so an impossible or leaking protocol fails at once. */
    if (!mm_cfg_child(cfg, "table") && mm_cfg_child(cfg, "dataset")) {
        const char *data_root = NULL;
        mm_dataset *ds = NULL;
        mm_split *early = NULL;
        if (!(rc = mm_cfg_get_str(cfg, "data_root", NULL, &data_root, err)) &&
            !(rc = mm_dataset_load(mm_cfg_child(cfg, "dataset"), mm_data_root(data_root), &ds, err)))
            rc = check_protocol(&sp, ds->labels, ds->groups, ds->n, ds->group_by, allow_leak, o, &early, err);
        mm_dataset_free(ds);
        /* more shards or ranks than units: refused before extracting */
        if (!rc) rc = check_scale(d, n_models, early->n_rounds, err);
        mm_split_free(early);
    }
    if ((rc = mm_mpi_agree(rc, err))) goto out_sp;
    mm_table *full = NULL;
    rc = mm_exp_get_table(cfg, o, &full, err);
    if ((rc = mm_mpi_agree(rc, err))) goto out_sp;
    /* keep labelled rows only */
    mm_table *t = full;
    {
        keep_labelled(full);
        if (t->n == 0) { rc = mm_err_set(err, MM_EINVAL, "the feature table has no labelled rows"); goto out_table; }
        if (t->n_classes < 2) { rc = mm_err_set(err, MM_EINVAL, "the feature table has %d class; need at least 2", t->n_classes); goto out_table; }
    }
    if (prep.group_norm) {
        /* per-speaker standardisation from each speaker's own rows (labels unused);
         * flagged in the summary: at test time it needs the test speaker's clips */
        if (!t->group_by) { rc = mm_err_set(err, MM_EINVAL, "%s: preprocessing.group_norm needs a dataset with groups (group_by, e.g. actor)", name); goto out_table; }
        if ((rc = mm_exp_group_norm(t, &prep, seed, o->n_threads, err))) goto out_table;
    }
    /* augmented copies: the same clips perturbed, extracted (and cached) once each; only
     * their training rows are ever used */
    if (aug.n && (rc = mm_mpi_agree(mm_exp_augment_tables(cfg, o, &aug, t, 1, &prep, seed, aug_X, err), err)))
        goto out_table;
    mm_split *split = NULL;
    int leak = 0;
    rc = check_protocol(&sp, t->labels, t->groups, t->n, t->group_by, allow_leak, o, &split, err);
    if ((rc = mm_mpi_agree(rc, err))) goto out_table;
    {
        mm_err le = {0};
        int has_groups = 0;
        for (size_t i = 0; i < t->n; i++) if (t->groups[i] >= 0) { has_groups = 1; break; }
        leak = has_groups && mm_split_check_leakage(split, t->groups, &le) != 0;
    }

    /* output folder */
    char dir[PATH_MAX], units_dir[PATH_MAX + 16];
    if (o->out_dir) snprintf(dir, sizeof dir, "%s", o->out_dir);
    else snprintf(dir, sizeof dir, "results/runs/%s", name);
    snprintf(units_dir, sizeof units_dir, "%s/units", dir);
    if ((rc = mm_mpi_agree(mkdirs(units_dir, err), err))) goto out_split;
    char *cfg_yaml = mm_cfg_to_yaml(cfg);
    unsigned long long cfg_hash = mm_cfg_hash(cfg) ^ mm_table_fingerprint(t);

    int k = t->n_classes;
    size_t R = split->n_rounds;
    size_t total = n_models * R, finished = 0;
    if ((rc = check_scale(d, n_models, R, err))) { free(cfg_yaml); goto out_split; }
    unit *units = calloc(n_specs * R, sizeof *units);
    if (!units) { free(cfg_yaml); rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto out_split; }
    if (o->progress)
        fprintf(stderr, "%s: %zu samples × %zu features, %d classes, %zu rounds, %zu models%s\n", name, t->n, t->d, k, R, n_specs, leak ? " (group leakage allowed)" : "");
    /* a shard owns units j = m * R + r with j mod N = I - 1 */
#define OWNED(m, r) (!d->shard_count || ((m) * R + (r)) % (size_t)d->shard_count == (size_t)(d->shard_index - 1))
    if (d->assemble_only) {   /* every unit must be there: check before writing anything */
        for (size_t m = 0; m < n_models && !rc; m++)
            for (size_t r = 0; r < R && !rc; r++) {
                char path[PATH_MAX + 64];
                unit_path(path, sizeof path, dir, specs[m].name, r);
                if (unit_load(&units[m * R + r], path, cfg_hash, k) != 0)
                {
                    char sh[64] = "";
                    if (d->parts_count > 0) snprintf(sh, sizeof sh, ", shard %zu/%d", (m * R + r) % (size_t)d->parts_count + 1, d->parts_count);
                    rc = mm_err_set(err, MM_EINVAL, "%s: unit missing or from another config (model %s, round %zu%s): finish every shard first, or 'melodic run --resume' to fit what is missing",
                                    path, specs[m].name, r + 1, sh);
                }
            }
        finished = total;
    }
    double t_start = now_s();
    if (!rc && !d->assemble_only && mm_mpi_active()) {
        rc = run_units_mpi(specs, n_models, t, split, &prep, (const float *const *)aug_X, aug.n, seed, o, dir, cfg_hash,
                           units, err);
    } else for (size_t r = 0; r < R && !rc && !d->assemble_only; r++) {
        /* resume: load finished units of this round first */
        for (size_t m = 0; m < n_models; m++) {
            if (!OWNED(m, r)) continue;
            char path[PATH_MAX + 64];
            unit_path(path, sizeof path, dir, specs[m].name, r);
            unit *u = &units[m * R + r];
            if (o->resume) (void)unit_load(u, path, cfg_hash, k);   /* sets u->done when it is there */
        }
        round_data rd[2] = {{0}};   /* [uses_val], prepared when a model needs it */
        int have[2] = {0, 0};
        for (size_t m = 0; m < n_models && !rc; m++) {
            if (!OWNED(m, r)) continue;
            unit *u = &units[m * R + r];
            int v = specs[m].uses_val;
            if (!u->done && !have[v]) {
                if ((rc = prepare_round(t, split, r, &prep, (const float *const *)aug_X, aug.n, seed, o->n_threads, v, &rd[v], err))) break;
                have[v] = 1;
            }
            if (!u->done) {
                if (o->progress) {
                    double el = now_s() - t_start;
                    double eta = finished ? el / finished * (total - finished) : 0;
                    fprintf(stderr, "[%zu/%zu] %s, round %zu/%zu (repeat %zu, fold %zu)  elapsed %.0f s, ETA %.0f s\n",
                            finished + 1, total, specs[m].name, r + 1, R, r / split->n_folds + 1, r % split->n_folds + 1, el, eta);
                }
                if ((rc = run_unit(&specs[m], t, &rd[v], seed, r, o->n_threads, u, err))) break;
                if (u->failed && o->progress) fprintf(stderr, "  %s failed: %s\n", specs[m].name, u->error);
                char path[PATH_MAX + 64];
                unit_path(path, sizeof path, dir, specs[m].name, r);
                if ((rc = unit_save(u, path, cfg_hash, k, err))) break;
            }
            finished++;
        }
        round_free(&rd[0]);
        round_free(&rd[1]);
    }
#undef OWNED
    if (!rc && d->shard_count) {   /* a shard ends with its part file; merge writes the results */
        rc = run_part_write(dir, o, d, cfg_yaml, cfg_hash, err);
        if (!rc && o->progress)
            fprintf(stderr, "shard %d/%d done; when every shard is: melodic merge %s/parts/run-*-of-%d.h5\n", d->shard_index, d->shard_count, dir, d->shard_count);
    }
    int report = !rc && !d->shard_count && mm_mpi_rank() == 0;
    for (size_t r = 0; r < R && report; r++)
        for (size_t e = n_models; e < n_specs; e++) {
            unit *mem[64];
            size_t nm = specs[e].n_members < 64 ? specs[e].n_members : 64;
            for (size_t j = 0; j < nm; j++) mem[j] = &units[(size_t)specs[e].members[j] * R + r];
            ensemble_unit(&specs[e], mem, k, &units[e * R + r]);
        }
    if (report) {
        mm_report_input in = {
            .name = name, .config_path = o->config_path, .config_yaml = cfg_yaml, .table = t, .split = split,
            .n_models = n_specs, .leakage_allowed = leak, .group_norm = prep.group_norm,
            .group_norm_clips = prep.group_norm_clips, .n_augment = aug.n, .augment_speed = aug.speed,
            .seed = seed, .tsne = &tsne_o, .n_threads = o->n_threads,
        };
        const char **names = calloc(n_specs, sizeof *names);
        mm_report_unit *ru = calloc(n_specs * R, sizeof *ru);
        if (!names || !ru) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        for (size_t m = 0; m < n_specs && !rc; m++) {
            names[m] = specs[m].name;
            for (size_t r = 0; r < R; r++) {
                unit *u = &units[m * R + r];
                mm_report_unit *x = &ru[m * R + r];
                x->failed = u->failed;
                x->error = u->error;
                x->n_test = u->n_test;
                x->test_index = u->test_index;
                x->y_true = u->y_true;
                x->y_pred = u->y_pred;
                x->proba = u->proba;
                x->fit_s = u->fit_s;
                x->predict_s = u->predict_s;
                x->n_hist = u->n_hist;
                for (int i = 0; i < 4; i++) x->hist[i] = u->hist[i];
            }
        }
        in.model_names = names;
        in.units = ru;
        if (!rc) rc = mm_report_write(&in, dir, o->quiet, err);
        free(names);
        free(ru);
    }
    for (size_t i = 0; i < n_specs * R; i++) unit_clear(&units[i]);
    free(units);
    free(cfg_yaml);
out_split:
    mm_split_free(split);
out_table:
    for (size_t k = 0; k < MM_EXP_MAX_AUG; k++) free(aug_X[k]);
    mm_table_free(full);
out_sp:
    mm_split_params_release(&sp);
out_specs:
    mm_exp_models_free(specs, n_specs);
    return mm_mpi_agree(rc, err);
}

int mm_experiment_run(const mm_cfg *cfg, const mm_run_opts *o, mm_err *err)
{
    mm_run_dist d = {0};
    return mm_experiment_run_dist(cfg, o, &d, err);
}

void mm_exp_models_free(mm_exp_model *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) { free(m[i].members); free(m[i].weights); }
    free(m);
}
