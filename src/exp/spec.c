/* spec.c — the parts of an experiment config that the runner and export
 * share: models, ensembles and the hyperparameter search over them,
 * preprocessing, augmentation, and the feature table (given, or extracted
 * once and cached by a hash of its config). Every value is checked here,
 * before any work, with errors that name file, line and key. */
#include "exp/spec.h"

#include "audio/augment.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/paths.h"
#include "data/dataset.h"
#include "data/extract.h"
#include "eval/metrics.h"
#include "learn/groupnorm.h"
#include "learn/smote.h"
#include "mpi/mpi.h"

int mm_exp_mkdirs(const char *path, mm_err *err)
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
        if (mem->n > MM_EXP_MAX_MEMBERS) { rc = mm_err_set(err, MM_EINVAL, "%s: ensemble '%s' has %zu members; at most %d are supported", mm_cfg_where(mem, w, sizeof w), x->name, mem->n, MM_EXP_MAX_MEMBERS); break; }
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
            if (!x->weights) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
            double sum = 0;
            for (size_t k = 0; k < wt->n && !rc; k++) {
                rc = mm_cfg_scalar_double(wt->items[k], "weights", &x->weights[k], err);
                if (!rc && !(x->weights[k] >= 0 && isfinite(x->weights[k]))) rc = mm_err_set(err, MM_EINVAL, "%s: weights must be finite and >= 0", mm_cfg_where(wt->items[k], w, sizeof w));
                if (!rc) sum += x->weights[k];
            }
            if (!rc && !(sum > 0)) rc = mm_err_set(err, MM_EINVAL, "%s: ensemble '%s': the weights sum to 0", mm_cfg_where(wt, w, sizeof w), x->name);
        }
        for (size_t j = 0; j < models->n + e && !rc; j++)
            if (!strcmp(s[j].name, x->name)) rc = mm_err_set(err, MM_EINVAL, "%s: ensemble name '%s' is already used", mm_cfg_where(m, w, sizeof w), x->name);
    }
    if (rc) {
        mm_exp_models_free(s, models->n + ne);
        return rc;
    }
    *out = s;
    *n_out = models->n + ne;
    *n_models = models->n;
    return 0;
}

/* Keep the labelled rows of a table, in order (in place). */
void mm_exp_keep_labelled(mm_table *full)
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
    return mm_exp_parse_augment_key(cfg, "augment", a, err);
}

/* The corruption parser names its keys augment.<kind>.<key>: under another
 * section (augment_before_split) the message names that one instead. */
static void rename_augment_key(mm_err *err, const char *key)
{
    char *p = strstr(err->msg, ": augment.");   /* after the file:line, which may hold the word */
    if (!p) return;
    p += 2;
    char rest[sizeof err->msg];
    snprintf(rest, sizeof rest, "%s", p + strlen("augment"));
    snprintf(p, sizeof err->msg - (size_t)(p - err->msg), "%s%s", key, rest);
}

/* The specaugment map without `copies`, with `seed` (a table's stream): the feature
 * sets' specaugment param. NULL when out of memory. */
static mm_cfg *specaugment_param(const mm_cfg *spec, uint64_t seed)
{
    mm_cfg *p = mm_cfg_new_map();
    for (size_t i = 0; p && i < spec->n; i++)
        if (strcmp(spec->items[i]->key, "copies") && strcmp(spec->items[i]->key, "seed") &&
            mm_cfg_put(p, spec->items[i]->key, spec->items[i], NULL)) { mm_cfg_free(p); return NULL; }
    char as[64];
    snprintf(as, sizeof as, "seed=%llu", (unsigned long long)(seed & 0x7fffffffffffffffULL));
    if (p && mm_cfg_set(p, as, NULL)) { mm_cfg_free(p); return NULL; }
    return p;
}

/* The name of a `features` entry (a name or {set: NAME, ...}); NULL if neither. */
static const char *feature_entry_name(const mm_cfg *e)
{
    if (e->type == MM_CFG_SCALAR) return e->value;
    const mm_cfg *s = e->type == MM_CFG_MAP ? mm_cfg_child(e, "set") : NULL;
    return s && s->type == MM_CFG_SCALAR ? s->value : NULL;
}

/* augment.specaugment: {copies: 1..4, mask keys of mm_specmask_params_from_cfg}; every
 * feature set must have a log-mel to mask (mn04_embedding, mn04_layers). */
static int parse_specaugment(const mm_cfg *cfg, const char *key, const mm_cfg *e, mm_exp_augment *a, mm_err *err)
{
    char w[600], what[64];
    snprintf(what, sizeof what, "%s.specaugment", key);
    if (e->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: %s: expected a map, e.g. {copies: 2, time_masks: 2, time_width: 40, "
                          "freq_masks: 2, freq_width: 15}", mm_cfg_where(e, w, sizeof w), what);
    long copies = 0;
    int rc = mm_cfg_get_int(e, "copies", 1, 1, 4, &copies, err);
    if (rc) return rc;
    if (mm_cfg_child(e, "seed"))
        return mm_err_set(err, MM_EINVAL, "%s: %s.seed: the masks' seeds come from the experiment's seed; remove it",
                          mm_cfg_where(mm_cfg_child(e, "seed"), w, sizeof w), what);
    mm_cfg *p = specaugment_param(e, 0);
    mm_specmask_params sp;
    uint64_t sd;
    rc = p ? mm_specmask_params_from_cfg(p, what, &sp, &sd, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
    mm_cfg_free(p);
    if (rc) return rc;
    const mm_cfg *f = mm_cfg_child(cfg, "features");
    for (size_t i = 0; f && i < (f->type == MM_CFG_SEQ ? f->n : 1); i++) {
        const char *name = feature_entry_name(f->type == MM_CFG_SEQ ? f->items[i] : f);
        if (!name || (strcmp(name, "mn04_embedding") && strcmp(name, "mn04_layers")))
            return mm_err_set(err, MM_EINVAL, "%s: %s: feature set '%s' has no log-mel to mask; specaugment applies "
                              "to mn04_embedding and mn04_layers", mm_cfg_where(e, w, sizeof w), what, name ? name : "?");
    }
    a->spec = e;
    a->n_spec = (size_t)copies;
    return 0;
}

/* cfg with every feature set given `specaugment: param` (the table of one specaugment
 * copy); NULL when out of memory. */
static mm_cfg *with_specaugment(const mm_cfg *cfg, const mm_cfg *param)
{
    const mm_cfg *f = mm_cfg_child(cfg, "features");
    mm_cfg *c = mm_cfg_clone(cfg), *box = mm_cfg_new_map();
    int rc = !c || !box || !f;
    for (size_t i = 0; !rc && i < (f->type == MM_CFG_SEQ ? f->n : 1); i++) {
        const mm_cfg *e = f->type == MM_CFG_SEQ ? f->items[i] : f;
        mm_cfg *item = e->type == MM_CFG_MAP ? mm_cfg_clone(e) : mm_cfg_new_map();
        const mm_cfg *old = e->type == MM_CFG_MAP ? mm_cfg_child(e, "params") : NULL;
        mm_cfg *params = old ? mm_cfg_clone(old) : mm_cfg_new_map();
        rc = !item || !params;
        if (!rc && e->type == MM_CFG_SCALAR) rc = mm_cfg_put_str(item, "set", e->value, NULL);
        if (!rc) rc = mm_cfg_put(params, "specaugment", param, NULL);
        if (!rc) rc = mm_cfg_put(item, "params", params, NULL);
        if (!rc) rc = mm_cfg_append(box, "features", item, NULL);
        mm_cfg_free(item);
        mm_cfg_free(params);
    }
    if (!rc) rc = mm_cfg_put(c, "features", mm_cfg_child(box, "features"), NULL);
    mm_cfg_free(box);
    if (rc) { mm_cfg_free(c); return NULL; }
    return c;
}

int mm_exp_parse_augment_key(const mm_cfg *cfg, const char *key, mm_exp_augment *a, mm_err *err)
{
    memset(a, 0, sizeof *a);
    const mm_cfg *m = mm_cfg_child(cfg, key);
    if (!m) return 0;
    char w[600];
    if (m->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: %s: expected a map, e.g. {speed: [0.9, 1.1], noise: {snr: [5, 20]}}", mm_cfg_where(m, w, sizeof w), key);
    int rc = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        const mm_cfg *e = m->items[i];
        if (!strcmp(e->key, "specaugment")) {
            rc = parse_specaugment(cfg, key, e, a, err);
            continue;
        }
        if (strcmp(e->key, "speed")) {
            if (a->n_corr >= MM_EXP_MAX_AUG)
                return mm_err_set(err, MM_EINVAL, "%s: %s: at most %d augmentations", mm_cfg_where(e, w, sizeof w), key, MM_EXP_MAX_AUG);
            rc = mm_corr_parse_augment(e, &a->corr[a->n_corr++], err);
            if (rc && strcmp(key, "augment")) rename_augment_key(err, key);
            continue;
        }
        if (e->type != MM_CFG_SEQ || e->n < 1 || e->n > 4)
            return mm_err_set(err, MM_EINVAL, "%s: %s.speed: expected a list of 1 to %d factors, e.g. [0.9, 1.1]", mm_cfg_where(e, w, sizeof w), key, 4);
        char what[96];
        snprintf(what, sizeof what, "%s.speed", key);
        for (size_t k = 0; k < e->n; k++) {
            double f;
            if ((rc = mm_cfg_scalar_double(e->items[k], what, &f, err))) return rc;
            if (!(f >= 0.5 && f <= 2.0) || f == 1.0)
                return mm_err_set(err, MM_EINVAL, "%s: %s.speed factor %g: expected 0.5..2 and not 1", mm_cfg_where(e->items[k], w, sizeof w), key, f);
            a->speed[a->n_speed++] = f;
        }
    }
    if (rc) return rc;
    a->n = a->n_speed + a->n_corr + a->n_spec;
    if (a->n > MM_EXP_MAX_AUG)
        return mm_err_set(err, MM_EINVAL, "%s: %s: %zu tables; at most %d", mm_cfg_where(m, w, sizeof w), key, a->n, MM_EXP_MAX_AUG);
    if (a->n && !mm_cfg_child(cfg, "dataset"))
        return mm_err_set(err, MM_EINVAL, "%s: %s needs 'dataset' and 'features' (a feature table has no audio to perturb)", mm_cfg_where(m, w, sizeof w), key);
    return 0;
}

/* FNV-1a over a split's roles (rounds × rows): the babble pools it implies. */
static unsigned long long roles_hash(const mm_split *split)
{
    unsigned long long h = 1469598103934665603ULL;
    size_t m = split->n * split->n_rounds;
    for (size_t i = 0; i < m; i++) { h ^= split->role[i]; h *= 1099511628211ULL; }
    return h;
}

/* The dataset, the babble roles of split, the decode options: a corruption context. */
static int corr_ctx(const mm_cfg *cfg, const mm_corr *c, uint64_t seed, const mm_split *split, mm_corr_ctx **out,
                    mm_err *err)
{
    const char *data_root = NULL;
    mm_dataset *ds = NULL;
    mm_pipeline_audio pa;
    uint8_t *roles = NULL;
    const uint8_t **rr = NULL;
    int rc = mm_cfg_get_str(cfg, "data_root", NULL, &data_root, err);
    if (!rc) rc = mm_pipeline_audio_from_cfg(mm_cfg_child(cfg, "audio"), &pa, err);
    if (!rc) rc = mm_dataset_load(mm_cfg_child(cfg, "dataset"), mm_data_root(data_root), &ds, err);
    if (!rc && split && c->kind == MM_CORR_BABBLE) rc = mm_corr_row_roles(ds, split, c->test_part, &roles, &rr, err);
    if (!rc) rc = mm_corr_ctx_create(c, seed, ds, rr, split ? split->n_rounds : 0, &pa.audio, mm_data_root(data_root), out, err);
    free(roles);
    free(rr);
    mm_dataset_free(ds);
    return rc;
}

int mm_exp_check_corruption(const mm_cfg *cfg, const mm_corr *c, const mm_split *split, mm_err *err)
{
    if (c->kind != MM_CORR_BABBLE && c->kind != MM_CORR_MUSIC) return 0;
    mm_corr_ctx *x = NULL;
    int rc = corr_ctx(cfg, c, 0, split, &x, err);
    mm_corr_ctx_free(x);
    return rc;
}

int mm_exp_corrupted_table(const mm_cfg *cfg, const mm_run_opts *o, const mm_corr *c, uint64_t seed,
                           const mm_split *split, mm_table **out, mm_err *err)
{
    mm_corr_ctx *x = NULL;
    mm_cfg *key = NULL;
    int rc = corr_ctx(cfg, c, seed, split, &x, err);
    if (!rc) {
        key = mm_corr_key(c, seed);
        /* babble depends on the pools: the split's role vectors join the key */
        if (key && split && c->kind == MM_CORR_BABBLE) {
            char as[64];
            snprintf(as, sizeof as, "pools=%016llx", roles_hash(split));
            rc = mm_cfg_set(key, as, err);
        }
        if (!key) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    if (!rc) rc = mm_exp_get_table_transformed(cfg, o, key, mm_corr_apply_fn, x, out, err);
    mm_cfg_free(key);
    mm_corr_ctx_free(x);
    return rc;
}

int mm_exp_augment_tables(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_augment *a, const mm_table *ref,
                          int labelled_only, const mm_exp_prep *prep, uint64_t seed, float **X, mm_err *err)
{
    return mm_exp_augment_tables_split(cfg, o, a, ref, labelled_only, prep, seed, NULL, X, err);
}

int mm_exp_augment_tables_split(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_augment *a, const mm_table *ref,
                                int labelled_only, const mm_exp_prep *prep, uint64_t seed, const mm_split *split,
                                float **X, mm_err *err)
{
    int rc = 0;
    for (size_t k = 0; k < a->n; k++) X[k] = NULL;
    for (size_t k = 0; k < a->n && !rc; k++) {
        mm_table *t = NULL;
        char what[96];
        if (k < a->n_speed) {
            mm_cfg *c = mm_cfg_clone(cfg);
            char as[64];
            snprintf(as, sizeof as, "audio.speed=%.17g", a->speed[k]);
            snprintf(what, sizeof what, "augment speed %g", a->speed[k]);
            rc = c ? mm_cfg_set(c, as, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
            if (!rc) rc = mm_exp_get_table(c, o, &t, err);
            mm_cfg_free(c);
        } else if (k >= a->n_speed + a->n_corr) {   /* specaugment copy j: its own mask stream */
            size_t j = k - a->n_speed - a->n_corr;
            snprintf(what, sizeof what, "augment specaugment copy %zu", j + 1);
            mm_cfg *param = specaugment_param(a->spec, seed ^ (0x5bd1e995ULL * (j + 1)));
            mm_cfg *c = param ? with_specaugment(cfg, param) : NULL;
            rc = c ? mm_exp_get_table(c, o, &t, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
            mm_cfg_free(c);
            mm_cfg_free(param);
        } else {
            const mm_corr *cc = &a->corr[k - a->n_speed];
            snprintf(what, sizeof what, "%s", cc->name);
            /* each augmentation its own stream of the experiment's seed */
            rc = mm_exp_corrupted_table(cfg, o, cc, seed ^ (0xa5a5a5ULL * (k + 1)), split, &t, err);
        }
        if (rc) { mm_err_prefix(err, "%s", what); break; }
        if (labelled_only) mm_exp_keep_labelled(t);
        int same = t->n == ref->n && t->d == ref->d;
        for (size_t i = 0; same && i < t->n; i++) same = t->labels[i] == ref->labels[i] && t->groups[i] == ref->groups[i];
        if (!same) rc = mm_err_set(err, MM_EDATA, "%s: the perturbed table does not line up with the original (%zu vs %zu rows)", what, t->n, ref->n);
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
    static const char *const keys[] = {"scaler", "smote", "group_norm", "domain_norm", NULL};
    int rc = mm_cfg_check_keys(m, "preprocessing", keys, err);
    if (rc) return rc;
    static const char *const scalers[] = {"none", "standard", NULL};
    if ((rc = mm_cfg_get_choice(m, "scaler", scalers, 1, &p->scaler, err))) return rc;
    static const char *const domains[] = {"none", "per_corpus", NULL};
    if ((rc = mm_cfg_get_choice(m, "domain_norm", domains, 0, &p->domain_norm, err))) return rc;
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

/* Extraction progress lines through the run's progress callback. */
static void extract_say(void *ctx, const char *line) { mm_run_say(ctx, "features: %s", line); }

/* The table of dataset + feature sets from the cache at path, else
 * extracted into it. Under MPI rank 0 looks for the cache; when it is
 * missing every rank takes part in the extraction (mm_extract_dist), rank 0
 * writes the cache and the others read it (the cache folder must be
 * shared). Takes key_yaml. */
static int cached_table(const mm_cfg *cfg, const mm_run_opts *o, const mm_cfg *ds_cfg, const mm_cfg *fs_cfg,
                        const char *data_root, const char *model_root, const char *cache, const char *path,
                        char *key_yaml, mm_clip_fn transform, void *transform_ctx, mm_table **out, mm_err *err)
{
    int rank = mm_mpi_rank(), dist = mm_mpi_active(), rc = 0;
    mm_table *t = NULL;
    mm_err e2 = {0};
    int have = rank == 0 && access(path, R_OK) == 0 && mm_table_read(path, &t, &e2) == 0;
    if (dist) have = mm_mpi_bcast_int(have);
    mm_dataset *ds = NULL;
    mm_featset_inst *fs = NULL;
    size_t n_fs = 0;
    if (have) {
        if (rank == 0) mm_run_say(o, "features: cached %s", path);
        else rc = mm_table_read(path, &t, err);
        rc = mm_mpi_agree(rc, err);
        goto done;
    }
    mm_extract_opts eo = {0};
    mm_pipeline_audio pa;
    rc = mm_pipeline_audio_from_cfg(mm_cfg_child(cfg, "audio"), &pa, err);
    eo.audio = pa.audio;
    eo.level = pa.level;
    eo.transform = transform;
    eo.transform_ctx = transform_ctx;
    if (!rc) rc = mm_dataset_load(ds_cfg, mm_data_root(data_root), &ds, err);
    if (!rc) rc = mm_featsets_create(fs_cfg, mm_model_root(model_root), &fs, &n_fs, err);
    if (!rc && rank == 0) rc = mm_exp_mkdirs(cache, err);
    rc = mm_mpi_agree(rc, err);
    if (!rc) {
        if (dist && rank == 0) mm_run_say(o, "features: extracting %zu clips on %d ranks → %s", ds->n, mm_mpi_size(), path);
        else if (!dist) mm_run_say(o, "features: extracting %zu clips → %s", ds->n, path);
        eo.n_threads = o->n_threads;
        if (rank == 0) { eo.on_progress = extract_say; eo.progress_ctx = (void *)o; }
        eo.config_yaml = key_yaml;
        rc = dist ? mm_extract_dist(ds, fs, n_fs, &eo, &t, err) : mm_extract(ds, fs, n_fs, &eo, &t, err);
    }
    if (!rc && rank == 0) rc = mm_table_write(t, path, err);
    if (dist) {
        rc = mm_mpi_agree(rc, err);
        if (!rc && rank != 0) rc = mm_table_read(path, &t, err);
        rc = mm_mpi_agree(rc, err);
    }
done:
    free(key_yaml);
    mm_featsets_free(fs, n_fs);
    mm_dataset_free(ds);
    if (rc) { mm_table_free(t); return rc; }
    *out = t;
    return 0;
}

int mm_exp_get_table(const mm_cfg *cfg, const mm_run_opts *o, mm_table **out, mm_err *err)
{
    return mm_exp_get_table_transformed(cfg, o, NULL, NULL, NULL, out, err);
}

int mm_exp_get_table_transformed(const mm_cfg *cfg, const mm_run_opts *o, const mm_cfg *transform_key,
                                 mm_clip_fn transform, void *transform_ctx, mm_table **out, mm_err *err)
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
    if (transform_key) mm_cfg_put(key, "transform", transform_key, err);   /* absent for plain tables: their keys stay as they were */
    unsigned long long h = mm_cfg_hash(key);
    char *key_yaml = mm_cfg_to_yaml(key);
    mm_cfg_free(key);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/features-%016llx.h5", cache, h);
    return cached_table(cfg, o, ds_cfg, fs_cfg, data_root, model_root, cache, path, key_yaml, transform, transform_ctx, out, err);
}

void mm_exp_models_free(mm_exp_model *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].members);
        free(m[i].weights);
        for (size_t c = 0; c < m[i].n_cand; c++) {
            mm_cfg_free(m[i].cand_params[c]);
            free(m[i].cand_text[c]);
        }
        free(m[i].cand_params);
        free(m[i].cand_text);
    }
    free(m);
}

/* ---- search ---- */

/* A node as YAML flow text (scalars as written). */
static void flow_text(const mm_cfg *c, char *buf, size_t size)
{
    size_t len = strlen(buf);
    if (len + 1 >= size) return;
    if (!c || c->type == MM_CFG_NULL) { snprintf(buf + len, size - len, "null"); return; }
    if (c->type == MM_CFG_SCALAR) { snprintf(buf + len, size - len, "%s", c->value); return; }
    int map = c->type == MM_CFG_MAP;
    snprintf(buf + len, size - len, map ? "{" : "[");
    for (size_t i = 0; i < c->n; i++) {
        len = strlen(buf);
        if (i) snprintf(buf + len, size - len, ", ");
        if (map) { len = strlen(buf); snprintf(buf + len, size - len, "%s: ", c->items[i]->key); }
        flow_text(c->items[i], buf, size);
    }
    len = strlen(buf);
    snprintf(buf + len, size - len, map ? "}" : "]");
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(const mm_cfg *const *)a)->key, (*(const mm_cfg *const *)b)->key);
}

/* The candidates of one model: the product of its grid (grid: a map of
 * key → non-empty list), keys sorted, the last varying fastest. */
static int grid_candidates(mm_exp_model *m, const mm_cfg *grid, mm_err *err)
{
    char w[600];
    if (!grid || grid->type != MM_CFG_MAP || grid->n == 0)
        return mm_err_set(err, MM_EINVAL, "%s: search.models.%s: expected a map of parameter: [values], e.g. {C: [0.01, 1.0]}", mm_cfg_where(grid, w, sizeof w), m->name);
    const mm_cfg **keys = malloc(grid->n * sizeof *keys);
    size_t *pos = calloc(grid->n, sizeof *pos);
    if (!keys || !pos) { free(keys); free(pos); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    size_t total = 1;
    int rc = 0;
    for (size_t i = 0; i < grid->n && !rc; i++) {
        keys[i] = grid->items[i];
        if (keys[i]->type != MM_CFG_SEQ || keys[i]->n == 0)
            rc = mm_err_set(err, MM_EINVAL, "%s: search.models.%s.%s: expected a non-empty list of values", mm_cfg_where(keys[i], w, sizeof w), m->name, keys[i]->key);
        else if ((total *= keys[i]->n) > MM_EXP_MAX_CANDIDATES)
            rc = mm_err_set(err, MM_EINVAL, "%s: search.models.%s: more than %d candidates", mm_cfg_where(grid, w, sizeof w), m->name, MM_EXP_MAX_CANDIDATES);
    }
    if (!rc) {
        qsort(keys, grid->n, sizeof *keys, cmp_key);
        m->cand_params = calloc(total, sizeof *m->cand_params);
        m->cand_text = calloc(total, sizeof *m->cand_text);
        if (!m->cand_params || !m->cand_text) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    for (size_t c = 0; c < total && !rc; c++) {
        mm_cfg *p = m->params ? mm_cfg_clone(m->params) : mm_cfg_new_map();
        char text[2048] = "{";
        for (size_t i = 0; i < grid->n && p && !rc; i++) {
            const mm_cfg *v = keys[i]->items[pos[i]];
            rc = mm_cfg_put(p, keys[i]->key, v, err);
            size_t len = strlen(text);
            snprintf(text + len, sizeof text - len, "%s%s: ", i ? ", " : "", keys[i]->key);
            flow_text(v, text, sizeof text);
        }
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "}");
        m->cand_params[m->n_cand] = p;
        m->cand_text[m->n_cand] = strdup(text);
        m->n_cand++;
        if (!rc && (!p || !m->cand_text[m->n_cand - 1])) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        /* validate: the learner must accept the candidate, and agree on the validation part */
        mm_learner *tmp = NULL;
        if (!rc && (rc = mm_learner_create(m->learner, p, 0, 1, &tmp, err)))
            mm_err_prefix(err, "%s: search.models.%s candidate %s", mm_cfg_where(grid, w, sizeof w), m->name, text);
        if (!rc && mm_learner_uses_validation(tmp) != m->uses_val)
            rc = mm_err_set(err, MM_EINVAL, "%s: search.models.%s: candidate %s %s a validation part and the model as given %s; search values that keep it the same",
                            mm_cfg_where(grid, w, sizeof w), m->name, text, m->uses_val ? "does not use" : "uses", m->uses_val ? "does" : "does not");
        mm_learner_free(tmp);
        for (size_t i = grid->n; i-- > 0;) {   /* odometer: the last key fastest */
            if (++pos[i] < keys[i]->n) break;
            pos[i] = 0;
        }
    }
    free(keys);
    free(pos);
    return rc;
}

int mm_exp_parse_search(const mm_cfg *cfg, mm_exp_model *specs, size_t n_models, mm_exp_search *s, mm_err *err)
{
    memset(s, 0, sizeof *s);
    s->inner = mm_split_params_default();
    const mm_cfg *m = mm_cfg_child(cfg, "search");
    if (!m || m->type == MM_CFG_NULL) return 0;
    char w[600];
    static const char *const keys[] = {"metric", "inner", "models", NULL};
    int rc = mm_cfg_check_keys(m, "search", keys, err);
    if (rc) return rc;
    static const char *const metrics[] = {"accuracy", "balanced_accuracy", "macro_f1", NULL};
    const char *metric = NULL;
    if ((rc = mm_cfg_get_str(m, "metric", "macro_f1", &metric, err))) return rc;
    s->metric = -1;
    for (int i = 0; metrics[i]; i++) if (!strcmp(metric, metrics[i])) s->metric = i;
    if (s->metric < 0)
        return mm_err_set(err, MM_EINVAL, "%s: search.metric '%s': the runner computes accuracy, balanced_accuracy or macro_f1",
                          mm_cfg_where(mm_cfg_child(m, "metric"), w, sizeof w), metric);
    s->metric_name = metrics[s->metric];
    const mm_cfg *inner = mm_cfg_child(m, "inner");
    if (!inner || inner->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: search needs 'inner: {kind: group_kfold, n_folds: K}'", mm_cfg_where(inner ? inner : m, w, sizeof w));
    if ((rc = mm_split_params_from_cfg(inner, &s->inner, err))) return mm_err_prefix(err, "search.inner");
    if ((rc = mm_cfg_get_str(inner, "kind", "stratified_kfold", &s->inner_kind, err))) return rc;
    if (s->inner.kind == MM_SPLIT_FIXED || s->inner.repeats != 1 || s->inner.val_fraction > 0) {
        return mm_err_set(err, MM_EINVAL, "%s: search.inner: expected one K-fold pass (group_kfold, stratified_group_kfold, stratified_kfold or logo) without repeats or val_fraction",
                          mm_cfg_where(inner, w, sizeof w));
    }
    const mm_cfg *models = mm_cfg_child(m, "models");
    if (!models || models->type != MM_CFG_MAP || models->n == 0)
        return mm_err_set(err, MM_EINVAL, "%s: search needs 'models: {NAME: {param: [values]}}' naming models of 'models'", mm_cfg_where(models ? models : m, w, sizeof w));
    for (size_t i = 0; i < models->n && !rc; i++) {
        const mm_cfg *g = models->items[i];
        size_t j = 0;
        while (j < n_models && strcmp(specs[j].name, g->key)) j++;
        if (j == n_models)
            rc = mm_err_set(err, MM_EINVAL, "%s: search.models: no model named '%s' in 'models' (ensembles are searched through their members)", mm_cfg_where(g, w, sizeof w), g->key);
        else rc = grid_candidates(&specs[j], g, err);
    }
    if (rc) return rc;
    s->enabled = 1;
    return 0;
}

void mm_exp_search_release(mm_exp_search *s)
{
    mm_split_params_release(&s->inner);
}

int mm_exp_score(int metric, const int32_t *y_true, const int32_t *y_pred, size_t n, int n_classes, double *score,
                 mm_err *err)
{
    mm_metrics *mt = NULL;
    int rc = mm_metrics_compute(y_true, y_pred, n, n_classes, &mt, err);
    if (rc) return rc;
    *score = metric == MM_EXP_METRIC_ACCURACY ? mt->accuracy
           : metric == MM_EXP_METRIC_BALANCED_ACCURACY ? mt->balanced_accuracy : mt->macro_f1;
    mm_metrics_free(mt);
    return 0;
}
