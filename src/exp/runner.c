/* runner.c — the experiment runner; see runner.h.
 *
 * Order of work: validate everything (config, protocol, search, leakage,
 * scale-out) → the feature table → the (model, round) units (exp/unit.h),
 * each saved to DIR/units/ as it finishes → ensembles from their members'
 * units → metrics, curves, t-SNE → results.h5, summary.md, summary.json.
 * Units run one after another, each learner using all threads, so results
 * do not depend on the thread count. Who fits which unit is a driver: the
 * local loop (all units, or every N-th with --shard I/N) or MPI (rank 0
 * hands the missing units out one at a time, src/mpi/sched.h, and gathers
 * them as bytes); all of them run the same loop over mm_unit_fit.
 */
#include "exp/runner.h"
#include "core/clock.h"
#include "exp/cross_corpus.h"
#include "exp/leakage.h"
#include "exp/spec.h"
#include "exp/unit.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/paths.h"
#include "data/dataset.h"
#include "data/table.h"
#include "eval/splits.h"
#include "exp/report.h"
#include "io/h5.h"
#include "mpi/mpi.h"
#include "mpi/sched.h"

const char *const mm_experiment_keys[] = {
    "name", "description", "seed", "table", "dataset", "features", "audio", "cache",
    "data_root", "model_root", "protocol", "preprocessing", "models", "ensembles", "tsne",
    "allow_group_leakage", "output", "augment", "search", "robustness",
    "augment_before_split", "allow_copy_leakage", NULL};

#define MAX_ROB 64   /* corruptions in a robustness: section */

void mm_run_say(const mm_run_opts *o, const char *fmt, ...)
{
    if (!o || !o->progress || !o->on_progress) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->on_progress(o->progress_ctx, line);
}

/* Progress from inside a unit's fit (epochs), through the run's progress callback. */
static void unit_say(void *ctx, const char *line) { mm_run_say(ctx, "%s", line); }

/* Make the split and refuse group leakage unless allowed. *out (may be NULL)
 * receives the split. named: the config has a `protocol:` (without one, a
 * dataset with groups is told which protocol to add). */
static int check_protocol(const mm_split_params *sp, int named, const int32_t *labels, const int32_t *groups,
                          size_t n, const char *group_by, int allow_leak, const mm_run_opts *o,
                          mm_split **out, mm_err *err)
{
    int has_groups = 0;
    for (size_t i = 0; i < n; i++) if (groups[i] >= 0) { has_groups = 1; break; }
    mm_split *split = NULL;
    const char *cp = o->config_path ? o->config_path : "config";
    const char *g = group_by ? group_by : "group";
    if (has_groups && !named && !allow_leak)
        return mm_err_set(err, MM_EINVAL, "%s: the data has groups (%s) and the config names no protocol; add one that keeps each %s on one side, "
                          "e.g. 'protocol: {kind: stratified_group_kfold, n_folds: 5}' (or group_kfold, logo, fixed), "
                          "or 'allow_group_leakage: true' for the default stratified 5-fold split",
                          cp, g, g);
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

/* ---- run parts (job arrays) ---- */

static int run_part_write(const char *dir, const mm_run_opts *o, const mm_run_dist *d, const char *cfg_yaml,
                          unsigned long long cfg_hash, mm_err *err)
{
    char parts[PATH_MAX + 16], path[PATH_MAX + 64], hs[32];
    snprintf(parts, sizeof parts, "%s/parts", dir);
    int rc = mm_exp_mkdirs(parts, err);
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

/* ---- one run ---- */

typedef struct run {
    const mm_cfg *cfg;
    mm_run_opts o;                 /* rank != 0: silent */
    const mm_run_dist *d;
    const char *name;
    uint64_t seed;
    int allow_leak, leak;
    mm_exp_model *specs;           /* plain models, then ensembles */
    size_t n_specs, n_models;
    mm_exp_prep prep;
    mm_exp_augment aug;
    float *aug_X[MM_EXP_MAX_AUG];
    mm_leak copies;                /* augment_before_split, copies across the split (exp/leakage.h) */
    size_t n_rob;                  /* robustness: corruptions of the test clips */
    mm_corr rob[MAX_ROB];
    const char *rob_names[MAX_ROB];
    uint64_t rob_seed;
    long rob_every;                /* corrupt every K-th clip only */
    uint8_t *rob_mask;             /* (t->n) 1: the clip was corrupted (scored under robustness) */
    float *rob_X[MAX_ROB];
    mm_exp_search search;
    mm_report_tsne_opts tsne;
    mm_split_params sp;
    mm_exp_cross cc;               /* protocol kind cross_corpus (cc.enabled) */
    char *cc_note;                 /* its summary.md paragraph */
    mm_table *t;                   /* labelled rows */
    mm_split *split;
    char dir[PATH_MAX];
    char *cfg_yaml;
    unsigned long long cfg_hash;
    size_t R, total, finished;
    mm_unit *units;                /* (n_specs, R) */
    mm_unit_env env;
    /* progress: per plain model, units to fit in this process, fitted, their seconds */
    size_t *todo, *done;
    double *cost, t0;
    size_t n_saved;
} run;

/* `robustness: {corruptions: [names] | suite: standard, seed: S}`. */
static int parse_robustness(run *x, mm_err *err)
{
    const mm_cfg *m = mm_cfg_child(x->cfg, "robustness");
    x->n_rob = 0;
    if (!m || m->type == MM_CFG_NULL) return 0;
    char w[600];
    static const char *const keys[] = {"suite", "corruptions", "seed", "every", NULL};
    int rc = mm_cfg_check_keys(m, "robustness", keys, err);
    if (rc) return rc;
    const char *suite = NULL;
    long seed = 0;
    if ((rc = mm_cfg_get_str(m, "suite", NULL, &suite, err)) ||
        (rc = mm_cfg_get_int(m, "seed", (long)(x->seed % 1000000007ULL) + 7919, 0, LONG_MAX, &seed, err)) ||
        (rc = mm_cfg_get_int(m, "every", 1, 1, 1000, &x->rob_every, err)))
        return rc;
    if (x->rob_every > 1 && x->prep.group_norm)
        return mm_err_set(err, MM_EINVAL, "%s: robustness.every %ld with preprocessing.group_norm: per-speaker statistics need every clip corrupted; use every: 1",
                          mm_cfg_where(mm_cfg_child(m, "every"), w, sizeof w), x->rob_every);
    x->rob_seed = (uint64_t)seed ^ 0x7e57c0dULL;   /* never a training augmentation's stream */
    const char *const *names = NULL;
    size_t n = 0;
    const mm_cfg *list = mm_cfg_child(m, "corruptions");
    if (suite) {
        if (strcmp(suite, "standard"))
            return mm_err_set(err, MM_EINVAL, "%s: robustness.suite '%s': the only suite is 'standard'", mm_cfg_where(mm_cfg_child(m, "suite"), w, sizeof w), suite);
        mm_corr_standard_suite(&names, &n);
        for (size_t i = 0; i < n; i++) x->rob_names[x->n_rob++] = names[i];
    }
    if (list) {
        if (list->type != MM_CFG_SEQ || list->n == 0)
            return mm_err_set(err, MM_EINVAL, "%s: robustness.corruptions: expected a list of names, e.g. [pink_10db, reverb_0.6s, telephone]", mm_cfg_where(list, w, sizeof w));
        for (size_t i = 0; i < list->n; i++) {
            if (x->n_rob >= MAX_ROB) return mm_err_set(err, MM_EINVAL, "%s: robustness: at most %d corruptions", mm_cfg_where(list, w, sizeof w), MAX_ROB);
            if (!list->items[i]->value) return mm_err_set(err, MM_EINVAL, "%s: robustness.corruptions: expected a name", mm_cfg_where(list->items[i], w, sizeof w));
            x->rob_names[x->n_rob++] = list->items[i]->value;
        }
    }
    if (!x->n_rob) return mm_err_set(err, MM_EINVAL, "%s: robustness needs 'suite: standard' or 'corruptions: [names]'", mm_cfg_where(m, w, sizeof w));
    for (size_t i = 0; i < x->n_rob; i++) {
        if ((rc = mm_corr_parse_name(x->rob_names[i], &x->rob[i], err))) return mm_err_prefix(err, "%s", mm_cfg_where(list && !suite ? list->items[i] : m, w, sizeof w));
        x->rob[i].every = (int)x->rob_every;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(x->rob_names[j], x->rob_names[i]))
                return mm_err_set(err, MM_EINVAL, "%s: robustness: corruption '%s' is listed twice", mm_cfg_where(m, w, sizeof w), x->rob_names[i]);
    }
    if (!mm_cfg_child(x->cfg, "dataset"))
        return mm_err_set(err, MM_EINVAL, "%s: robustness needs 'dataset' and 'features' (a feature table has no audio to corrupt)", mm_cfg_where(m, w, sizeof w));
    return 0;
}

/* Everything in the config, before any data is read. */
static int run_parse(run *x, mm_err *err)
{
    const mm_cfg *cfg = x->cfg;
    long seed_l = 0;
    int rc = mm_cfg_check_keys(cfg, "experiment", mm_experiment_keys, err);
    if (!rc) rc = mm_cfg_get_str(cfg, "name", "experiment", &x->name, err);
    if (!rc) rc = mm_cfg_get_int(cfg, "seed", 0, 0, LONG_MAX, &seed_l, err);
    if (!rc) rc = mm_cfg_get_bool(cfg, "allow_group_leakage", 0, &x->allow_leak, err);
    x->seed = (uint64_t)seed_l;
    if (!rc) rc = mm_exp_parse_models(cfg, &x->specs, &x->n_specs, &x->n_models, err);
    if (!rc) rc = mm_exp_parse_prep(cfg, &x->prep, err);
    if (!rc) rc = mm_exp_parse_augment(cfg, &x->aug, err);
    if (!rc) rc = mm_leak_parse(cfg, &x->copies, err);
    if (!rc) rc = parse_robustness(x, err);
    if (!rc && mm_cfg_child(cfg, "dataset")) {   /* audio: (normalize included) checked before any work */
        mm_pipeline_audio pa;
        rc = mm_pipeline_audio_from_cfg(mm_cfg_child(cfg, "audio"), &pa, err);
    }
    if (!rc) rc = mm_exp_parse_search(cfg, x->specs, x->n_models, &x->search, err);
    if (!rc && x->search.enabled && !mm_cfg_find(cfg, "search.inner.seed")) x->search.inner.seed = x->seed;
    if (!rc) rc = mm_report_tsne_opts_from_cfg(mm_cfg_child(cfg, "tsne"), &x->tsne, err);
    if (!rc) rc = mm_exp_parse_protocol(cfg, &x->prep, &x->cc, &x->sp, err);
    if (rc) return rc;
    if (!mm_cfg_find(cfg, "protocol.seed")) x->sp.seed = x->seed;
    int wants_val = 0;
    for (size_t i = 0; i < x->n_models; i++) wants_val |= x->specs[i].uses_val;
    if (wants_val && !mm_cfg_find(cfg, "protocol.val_fraction") && x->sp.val_fraction <= 0 && x->sp.n_val_groups == 0)
        x->sp.val_fraction = 0.1;   /* a fixed split with val_groups already has its validation part */
    return 0;
}

/* The search's inner folds in every outer round, for each validation use
 * among the searched models: refused before any fitting when impossible. */
static int check_search(const mm_unit_env *env, const mm_exp_model *specs, size_t n_models, mm_err *err)
{
    if (!env->search || !env->search->enabled) return 0;
    for (int v = 0; v < 2; v++) {
        int used = 0;
        for (size_t m = 0; m < n_models; m++) used |= specs[m].n_cand && (specs[m].uses_val != 0) == v;
        for (size_t r = 0; used && r < env->split->n_rounds; r++) {
            mm_split *inner = NULL;
            int rc = mm_unit_inner_split(env, r, v, &inner, err);
            mm_split_free(inner);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Protocol, leakage, search and scale on the dataset's labels and groups
 * before any extraction, so an impossible run fails at once. */
static int run_precheck(run *x, mm_err *err)
{
    if (mm_cfg_child(x->cfg, "table") || !mm_cfg_child(x->cfg, "dataset")) return 0;
    const char *data_root = NULL;
    mm_dataset *ds = NULL;
    mm_split *early = NULL;
    int rc = mm_cfg_get_str(x->cfg, "data_root", NULL, &data_root, err);
    if (!rc) rc = mm_dataset_load(mm_cfg_child(x->cfg, "dataset"), mm_data_root(data_root), &ds, err);
    int32_t *cc_labels = NULL, *cc_groups = NULL;   /* cross_corpus: the rows of both corpora */
    size_t cc_n = 0;
    if (!rc && x->cc.enabled) rc = mm_exp_cross_precheck(x->cfg, &x->cc, &x->sp, ds, &cc_labels, &cc_groups, &cc_n, &early, err);
    else if (!rc) rc = check_protocol(&x->sp, mm_cfg_child(x->cfg, "protocol") != NULL, ds->labels, ds->groups, ds->n, ds->group_by, x->allow_leak, &x->o, &early, err);
    if (!rc) {
        mm_table view = {.n = ds->n, .labels = ds->labels, .groups = ds->groups, .group_by = ds->group_by};
        if (x->cc.enabled) view = (mm_table){.n = cc_n, .labels = cc_labels, .groups = cc_groups, .group_by = ds->group_by};
        mm_unit_env env = {.t = &view, .split = early, .search = &x->search};
        rc = check_search(&env, x->specs, x->n_models, err);
    }
    if (!rc) rc = check_scale(x->d, x->n_models, early->n_rounds, err);
    if (!rc && x->cc.enabled && x->copies.pre.n)
        rc = mm_err_set(err, MM_EINVAL, "%s: augment_before_split cannot be combined with protocol cross_corpus "
                        "(the test corpus is never split); use augment:", x->name);
    if (!rc) rc = mm_leak_precheck(&x->copies, &x->sp, ds->labels, ds->groups, ds->n, x->name, err);
    /* noise folders and babble pools, before any extraction */
    for (size_t k = 0; !rc && k < x->aug.n_corr; k++) rc = mm_exp_check_corruption(x->cfg, &x->aug.corr[k], x->cc.enabled ? NULL : early, err);
    for (size_t k = 0; !rc && k < x->copies.pre.n_corr; k++) rc = mm_exp_check_corruption(x->cfg, &x->copies.pre.corr[k], NULL, err);
    for (size_t k = 0; !rc && k < x->n_rob; k++) rc = mm_exp_check_corruption(x->cfg, &x->rob[k], early, err);
    free(cc_labels);
    free(cc_groups);
    mm_split_free(early);
    mm_dataset_free(ds);
    return rc;
}

/* The table (labelled rows), per-group normalisation, the split and its
 * checks, augmented copies: one corpus, split by the protocol. */
static int run_table_split(run *x, mm_err *err)
{
    int rc = mm_mpi_agree(mm_exp_get_table(x->cfg, &x->o, &x->t, err), err);
    if (rc) return rc;
    mm_table *t = x->t;
    mm_exp_keep_labelled(t);
    if (t->n == 0) return mm_err_set(err, MM_EINVAL, "the feature table has no labelled rows");
    if (t->n_classes < 2) return mm_err_set(err, MM_EINVAL, "the feature table has %d class; need at least 2", t->n_classes);
    if (x->prep.group_norm) {
        /* per-speaker standardisation from each speaker's own rows (labels unused);
         * flagged in the summary: at test time it needs the test speaker's clips */
        if (!t->group_by) return mm_err_set(err, MM_EINVAL, "%s: preprocessing.group_norm needs a dataset with groups (group_by, e.g. actor)", x->name);
        if ((rc = mm_exp_group_norm(t, &x->prep, x->seed, x->o.n_threads, err))) return rc;
    }
    /* augment_before_split: every clip's copies become rows before the split */
    if ((rc = mm_mpi_agree(mm_leak_expand(x->cfg, &x->o, &x->copies, t, &x->prep, x->seed, err), err))) return rc;
    rc = check_protocol(&x->sp, mm_cfg_child(x->cfg, "protocol") != NULL, t->labels, t->groups, t->n, t->group_by, x->allow_leak, &x->o, &x->split, err);
    if (!rc) rc = mm_leak_check(&x->copies, x->split, t, x->name, err);
    if ((rc = mm_mpi_agree(rc, err))) return rc;
    if (x->copies.count.leaky_rows)
        mm_run_say(&x->o, "LEAKY (allow_copy_leakage): %zu of %zu test rows have a copy of their source clip in training",
                   x->copies.count.leaky_rows, x->copies.count.test_rows);
    /* augmented copies: the same clips perturbed, extracted (and cached) once
     * each; only their training rows are ever used */
    if (x->aug.n && (rc = mm_mpi_agree(mm_exp_augment_tables_split(x->cfg, &x->o, &x->aug, t, 1, &x->prep, x->seed, x->split, x->aug_X, err), err)))
        return rc;
    return 0;
}

/* The data (one corpus split by the protocol, or two: cross_corpus), the
 * robustness copies, the output folder and the config hash. */
static int run_data(run *x, mm_err *err)
{
    int rc = !x->cc.enabled ? run_table_split(x, err)
           : mm_mpi_agree(mm_exp_cross_data(x->cfg, &x->o, &x->cc, &x->prep, &x->sp, &x->aug, x->seed, &x->t,
                                            &x->split, x->aug_X, &x->cc_note, err), err);
    if (rc) return rc;
    mm_table *t = x->t;
    /* robustness: every clip corrupted (other seeds and noise sources than training);
     * only each round's test rows are ever used */
    for (size_t c = 0; c < x->n_rob; c++) {
        mm_table *ct = NULL;
        rc = mm_exp_corrupted_table(x->cfg, &x->o, &x->rob[c], x->rob_seed + 1000003ULL * c, x->split, &ct, err);
        if (!rc) {
            mm_exp_keep_labelled(ct);
            int same = ct->n == t->n && ct->d == t->d;
            for (size_t i = 0; same && i < t->n; i++) same = ct->labels[i] == t->labels[i] && ct->groups[i] == t->groups[i];
            if (!same) rc = mm_err_set(err, MM_EDATA, "robustness %s: the corrupted table does not line up with the original", x->rob_names[c]);
        }
        if (!rc && !x->rob_mask && !(x->rob_mask = malloc(t->n + 1))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < t->n; i++) {   /* clips left out (every): clean features, not scored */
            x->rob_mask[i] = !isnan(ct->X[i * t->d]);
            if (!x->rob_mask[i]) memcpy(ct->X + i * t->d, t->X + i * t->d, t->d * sizeof *t->X);
        }
        if (!rc) rc = mm_exp_group_norm(ct, &x->prep, x->seed, x->o.n_threads, err);
        if (!rc) { x->rob_X[c] = ct->X; ct->X = NULL; }
        mm_table_free(ct);
        if (rc) { mm_err_prefix(err, "robustness %s", x->rob_names[c]); break; }
    }
    if ((rc = mm_mpi_agree(rc, err))) return rc;
    int has_groups = 0;
    for (size_t i = 0; i < t->n; i++) if (t->groups[i] >= 0) { has_groups = 1; break; }
    mm_err le = {0};
    x->leak = has_groups && mm_split_check_leakage(x->split, t->groups, &le) != 0;
    x->env = (mm_unit_env){.t = t, .split = x->split, .prep = &x->prep, .search = &x->search,
                           .aug = (const float *const *)x->aug_X, .n_aug = x->aug.n, .seed = x->seed,
                           .rob = (const float *const *)x->rob_X, .n_rob = x->n_rob,
                           .n_threads = x->o.n_threads, .specs = x->specs, .n_models = x->n_models,
                           .say = unit_say, .say_ctx = &x->o};
    if ((rc = mm_mpi_agree(check_search(&x->env, x->specs, x->n_models, err), err))) return rc;
    x->R = x->split->n_rounds;
    x->total = x->n_models * x->R;
    if ((rc = check_scale(x->d, x->n_models, x->R, err))) return rc;
    if (x->o.out_dir) snprintf(x->dir, sizeof x->dir, "%s", x->o.out_dir);
    else snprintf(x->dir, sizeof x->dir, "results/runs/%s", x->name);
    char units_dir[PATH_MAX + 16];
    snprintf(units_dir, sizeof units_dir, "%s/units", x->dir);
    if ((rc = mm_mpi_agree(mm_exp_mkdirs(units_dir, err), err))) return rc;
    x->cfg_yaml = mm_cfg_to_yaml(x->cfg);
    x->cfg_hash = mm_cfg_hash(x->cfg) ^ mm_table_fingerprint(t);
    x->units = calloc(x->n_specs * x->R, sizeof *x->units);
    x->todo = calloc(x->n_models + 1, sizeof *x->todo);
    x->done = calloc(x->n_models + 1, sizeof *x->done);
    x->cost = calloc(x->n_models + 1, sizeof *x->cost);
    if (!x->cfg_yaml || !x->units || !x->todo || !x->done || !x->cost) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; i < x->n_specs * x->R; i++) x->units[i].chosen = -1;
    mm_run_say(&x->o, "%s: %zu samples × %zu features, %d classes, %zu rounds, %zu models%s%s", x->name, t->n, t->d,
               t->n_classes, x->R, x->n_specs, x->leak ? " (group leakage allowed)" : "",
               x->search.enabled ? ", hyperparameters by nested search" : "");
    return 0;
}

/* ---- progress ---- */

/* Seconds left: each unit still to fit costs the mean of its model's
 * fitted units (else of all fitted units), shared among the workers.
 * Negative when nothing has been fitted yet. */
static double eta_s(const run *x)
{
    size_t n_all = 0;
    double c_all = 0, left = 0;
    for (size_t m = 0; m < x->n_models; m++) { n_all += x->done[m]; c_all += x->cost[m]; }
    if (!n_all) return -1;
    for (size_t m = 0; m < x->n_models; m++) {
        double per = x->done[m] ? x->cost[m] / x->done[m] : c_all / n_all;
        left += per * (double)(x->todo[m] > x->done[m] ? x->todo[m] - x->done[m] : 0);
    }
    return left / mm_mpi_size();
}

static void say_unit(const run *x, const char *what, size_t item, int rank)
{
    size_t m = item / x->R, r = item % x->R, nf = x->split->n_folds ? x->split->n_folds : 1;
    double eta = eta_s(x);
    char where[32] = "", eta_txt[32] = "ETA unknown";
    if (rank >= 0) snprintf(where, sizeof where, " on rank %d", rank);
    if (eta >= 0) snprintf(eta_txt, sizeof eta_txt, "ETA %.0f s", eta);
    mm_run_say(&x->o, "[%zu/%zu] %s, round %zu/%zu (repeat %zu, fold %zu)%s%s  elapsed %.0f s, %s", x->finished + (rank < 0),
               x->total, x->specs[m].name, r + 1, x->R, r / nf + 1, r % nf + 1, where, what, mm_now_s() - x->t0, eta_txt);
}

/* A fitted unit arrives: it becomes units[item]. */
static void take_unit(run *x, size_t item, mm_unit *u)
{
    size_t m = item / x->R;
    x->units[item] = *u;
    memset(u, 0, sizeof *u);
    x->finished++;
    x->done[m]++;
    x->cost[m] += x->units[item].fit_s + x->units[item].predict_s;
}

/* ---- drivers: who fits which unit ---- */

typedef struct driver driver;
struct driver {
    /* the next unit to fit into *item: 1, or 0 when none is left */
    int (*next)(driver *dv, size_t *item);
    /* a fitted and saved unit; the driver takes its contents */
    int (*put)(driver *dv, size_t item, mm_unit *u, mm_err *err);
    /* this process failed: stop handing out units */
    void (*fail)(driver *dv, const mm_err *e);
    run *x;
    size_t *order, n, pos;     /* local: the units to fit, in order */
    int failed;
    mm_err err;
    mm_sched *s;               /* MPI */
};

/* The loop every driver runs: fit, save, hand in. Returns the first
 * failure of this process (the driver has been told). */
static int drive(driver *dv, mm_err *err)
{
    run *x = dv->x;
    mm_unit_cache cache = {0};
    size_t item;
    int lrc = 0;
    while (dv->next(dv, &item)) {
        if (lrc) continue;     /* after a failure: drain the queue */
        size_t m = item / x->R, r = item % x->R;
        mm_unit u;
        char path[PATH_MAX + 64];
        mm_unit_path(path, sizeof path, x->dir, x->specs[m].name, r);
        lrc = mm_unit_fit(&x->env, &cache, m, r, &u, err);
        if (!lrc) lrc = mm_unit_save(&u, path, x->cfg_hash, x->t->n_classes, err);
        if (!lrc && x->o.on_unit_saved) x->o.on_unit_saved(x->o.hook_ctx, ++x->n_saved);
        if (!lrc) lrc = dv->put(dv, item, &u, err);
        mm_unit_clear(&u);
        if (lrc) dv->fail(dv, err);
    }
    mm_unit_cache_free(&cache);
    return lrc;
}

static int local_next(driver *dv, size_t *item)
{
    if (dv->failed || dv->pos >= dv->n) return 0;
    *item = dv->order[dv->pos++];
    say_unit(dv->x, "", *item, -1);
    return 1;
}

static int local_put(driver *dv, size_t item, mm_unit *u, mm_err *err)
{
    run *x = dv->x;
    if (u->failed) mm_run_say(&x->o, "  %s failed: %s", x->specs[item / x->R].name, u->error ? u->error : "?");
    take_unit(x, item, u);
    return 0;
}

static void local_fail(driver *dv, const mm_err *e)
{
    dv->failed = 1;
}

/* Rank 0 under MPI: a unit came back (from itself or another rank). */
static int mpi_on_result(void *ctx, size_t item, const void *data, size_t len, int rank)
{
    run *x = ctx;
    if (item >= x->total || x->units[item].done) return 1;
    mm_unit u;
    if (mm_unit_unpack(data, len, x->t->n_classes, &u)) return 1;
    take_unit(x, item, &u);
    say_unit(x, x->units[item].failed ? " FAILED" : "", item, rank);
    return 0;
}

static int mpi_next(driver *dv, size_t *item)
{
    return mm_sched_next(dv->s, item, 1) == 1;
}

static int mpi_put(driver *dv, size_t item, mm_unit *u, mm_err *err)
{
    size_t len = 0;
    unsigned char *b = mm_unit_pack(u, dv->x->t->n_classes, &len);
    if (!b) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = mm_sched_put(dv->s, item, b, len, err);
    free(b);
    return rc;
}

static void mpi_fail(driver *dv, const mm_err *e)
{
    mm_sched_fail(dv->s, e);
}

/* The units this process is to fit, in the single-process order (round by
 * round): those of its shard that --resume cannot reuse. */
static int plan_units(run *x, size_t **order, size_t *n, mm_err *err)
{
    const mm_run_dist *d = x->d;
    *n = 0;
    *order = malloc((x->total + 1) * sizeof **order);
    if (!*order) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t r = 0; r < x->R; r++)
        for (size_t m = 0; m < x->n_models; m++) {
            size_t j = m * x->R + r;   /* a shard owns units j with j mod N = I - 1 */
            if (d->shard_count && j % (size_t)d->shard_count != (size_t)(d->shard_index - 1)) continue;
            char path[PATH_MAX + 64];
            mm_unit_path(path, sizeof path, x->dir, x->specs[m].name, r);
            if (x->o.resume && mm_unit_load(&x->units[j], path, x->cfg_hash, x->t->n_classes) == 0) x->finished++;
            else { (*order)[(*n)++] = j; x->todo[m]++; }
        }
    return 0;
}

/* assemble_only: every unit must be there; checked before writing anything. */
static int load_all_units(run *x, mm_err *err)
{
    for (size_t m = 0; m < x->n_models; m++)
        for (size_t r = 0; r < x->R; r++) {
            char path[PATH_MAX + 64];
            mm_unit_path(path, sizeof path, x->dir, x->specs[m].name, r);
            if (mm_unit_load(&x->units[m * x->R + r], path, x->cfg_hash, x->t->n_classes) == 0) continue;
            char sh[64] = "";
            if (x->d->parts_count > 0) snprintf(sh, sizeof sh, ", shard %zu/%d", (m * x->R + r) % (size_t)x->d->parts_count + 1, x->d->parts_count);
            return mm_err_set(err, MM_EINVAL, "%s: unit missing or from another config (model %s, round %zu%s): finish every shard first, or 'melodic run --resume' to fit what is missing",
                              path, x->specs[m].name, r + 1, sh);
        }
    x->finished = x->total;
    return 0;
}

static int run_local(run *x, mm_err *err)
{
    driver dv = {.next = local_next, .put = local_put, .fail = local_fail, .x = x};
    int rc = plan_units(x, &dv.order, &dv.n, err);
    if (!rc) rc = drive(&dv, err);
    free(dv.order);
    return rc;
}

/* Under MPI: rank 0 plans (and loads what --resume can reuse); every rank
 * fits what it is handed, saves the unit file itself, and sends it to
 * rank 0. */
static int run_mpi(run *x, mm_err *err)
{
    driver dv = {.next = mpi_next, .put = mpi_put, .fail = mpi_fail, .x = x};
    int rc = 0;
    if (mm_mpi_rank() == 0) {
        rc = plan_units(x, &dv.order, &dv.n, err);
        if (!rc) mm_run_say(&x->o, "%zu units to fit on %d ranks (%zu reused)", dv.n, mm_mpi_size(), x->finished);
    }
    mm_sched_params p = {.on_result = mpi_on_result, .ctx = x};
    rc = mm_mpi_agree(rc, err);
    if (!rc) rc = mm_sched_create(dv.order, dv.n, &p, &dv.s, err);
    free(dv.order);
    if (rc) return rc;
    mm_err le = {0};
    (void)drive(&dv, &le);
    rc = mm_sched_finish(dv.s, err);
    if (!rc && mm_mpi_rank() == 0 && x->finished != x->total)
        rc = mm_err_set(err, MM_EIO, "%zu of %zu units came back; rerun with --resume", x->finished, x->total);
    return rc;
}

/* ---- results ---- */

static int run_report(run *x, mm_err *err)
{
    size_t R = x->R;
    const char *aug_names[MM_EXP_MAX_AUG];
    for (size_t k = 0; k < x->aug.n_corr; k++) aug_names[k] = x->aug.corr[k].name + strlen("augment_");
    for (size_t k = 0; k < x->aug.n_spec; k++) aug_names[x->aug.n_corr + k] = "specaugment";
    for (size_t r = 0; r < R; r++)
        for (size_t e = x->n_models; e < x->n_specs; e++) {
            const mm_unit *mem[MM_EXP_MAX_MEMBERS];
            for (size_t j = 0; j < x->specs[e].n_members; j++) mem[j] = &x->units[(size_t)x->specs[e].members[j] * R + r];
            mm_unit_ensemble(&x->specs[e], mem, x->t->n_classes, &x->units[e * R + r]);
        }
    mm_report_input in = {
        .name = x->name, .config_path = x->o.config_path, .config_yaml = x->cfg_yaml, .table = x->t, .split = x->split,
        .n_models = x->n_specs, .leakage_allowed = x->leak, .group_norm = x->prep.group_norm,
        .group_norm_clips = x->prep.group_norm_clips, .domain_norm = x->prep.domain_norm, .cross_note = x->cc_note,
        .n_augment = x->aug.n, .augment_speed = x->aug.speed,
        .n_augment_speed = x->aug.n_speed, .augment_names = aug_names, .n_rob = x->n_rob, .rob_names = x->rob_names,
        .rob_mask = x->rob_mask,
        .seed = x->seed, .tsne = &x->tsne, .n_threads = x->o.n_threads,
        .search_metric = x->search.enabled ? x->search.metric_name : NULL,
        .search_inner = x->search.enabled ? x->search.inner_kind : NULL,
        .search_folds = x->search.inner.n_folds,
    };
    char copies_text[256];
    mm_leak_describe(&x->copies, copies_text, sizeof copies_text);
    in.copies_report = x->copies.pre.n || x->copies.count.shared;
    in.copies_per_clip = x->copies.pre.n, in.copy_clips = x->copies.n_clips, in.copies_text = copies_text;
    in.copy_sources = x->copies.count.n_sources, in.copy_shared = x->copies.count.shared;
    in.copy_test_rows = x->copies.count.test_rows, in.copy_leaky_rows = x->copies.count.leaky_rows;
    const char **names = calloc(x->n_specs, sizeof *names);
    mm_report_unit *ru = calloc(x->n_specs * R, sizeof *ru);
    int rc = !names || !ru ? mm_err_set(err, MM_ENOMEM, "out of memory") : 0;
    for (size_t m = 0; m < x->n_specs && !rc; m++) {
        names[m] = x->specs[m].name;
        for (size_t r = 0; r < R; r++) {
            const mm_unit *u = &x->units[m * R + r];
            mm_report_unit *q = &ru[m * R + r];
            *q = (mm_report_unit){.failed = u->failed, .error = u->error, .n_test = u->n_test,
                                  .test_index = u->test_index, .y_true = u->y_true, .y_pred = u->y_pred,
                                  .proba = u->proba, .fit_s = u->fit_s, .predict_s = u->predict_s, .n_hist = u->n_hist,
                                  .n_cand = u->n_cand, .n_inner = u->n_inner, .cand = (const char *const *)u->cand,
                                  .scores = u->scores, .chosen = u->chosen,
                                  .rob_proba = u->n_rob == x->n_rob ? u->rob_proba : NULL};
            for (int i = 0; i < 4; i++) q->hist[i] = u->hist[i];
        }
    }
    in.model_names = names;
    in.units = ru;
    if (!rc) rc = mm_report_write(&in, x->dir, x->o.quiet ? NULL : x->o.on_summary, x->o.progress_ctx, err);
    free(names);
    free(ru);
    return rc;
}

static void run_free(run *x)
{
    for (size_t i = 0; x->units && i < x->n_specs * x->R; i++) mm_unit_clear(&x->units[i]);
    free(x->units);
    free(x->todo); free(x->done); free(x->cost);
    free(x->cfg_yaml);
    free(x->cc_note);
    mm_split_free(x->split);
    for (size_t k = 0; k < MM_EXP_MAX_AUG; k++) free(x->aug_X[k]);
    for (size_t k = 0; k < MAX_ROB; k++) free(x->rob_X[k]);
    free(x->rob_mask);
    mm_table_free(x->t);
    mm_split_params_release(&x->sp);
    mm_exp_search_release(&x->search);
    mm_exp_models_free(x->specs, x->n_specs);
}

int mm_experiment_run_dist(const mm_cfg *cfg, const mm_run_opts *o, const mm_run_dist *d, mm_err *err)
{
    run x = {.cfg = cfg, .o = *o, .d = d, .sp = mm_split_params_default()};
    if (mm_mpi_rank() != 0) { x.o.progress = 0; x.o.on_progress = NULL; x.o.quiet = 1; }   /* rank 0 speaks for the job */
    int rc = run_parse(&x, err);
    if (!rc) rc = run_precheck(&x, err);
    rc = mm_mpi_agree(rc, err);
    if (!rc) rc = run_data(&x, err);
    x.t0 = mm_now_s();
    if (!rc && d->assemble_only) rc = load_all_units(&x, err);
    else if (!rc && mm_mpi_active()) rc = run_mpi(&x, err);
    else if (!rc) rc = run_local(&x, err);
    if (!rc && d->shard_count) {   /* a shard ends with its part file; merge writes the results */
        rc = run_part_write(x.dir, &x.o, d, x.cfg_yaml, x.cfg_hash, err);
        if (!rc) mm_run_say(&x.o, "shard %d/%d done; when every shard is: melodic merge %s/parts/run-*-of-%d.h5", d->shard_index, d->shard_count, x.dir, d->shard_count);
    }
    if (!rc && !d->shard_count && mm_mpi_rank() == 0) rc = run_report(&x, err);
    run_free(&x);
    return mm_mpi_agree(rc, err);
}

int mm_experiment_run(const mm_cfg *cfg, const mm_run_opts *o, mm_err *err)
{
    mm_run_dist d = {0};
    return mm_experiment_run_dist(cfg, o, &d, err);
}
