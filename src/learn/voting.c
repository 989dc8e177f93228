/* voting.c — voting ensemble learner and probability combination.
 *
 * Reference: scikit-learn 1.2 VotingClassifier (soft: weighted mean of
 * predict_proba; hard: weighted bincount of predictions). Hard-vote ties are
 * broken by summed probability here (sklearn: lowest class). Members are fitted
 * one after another, each with all threads. Left out: flatten_transform,
 * per-member feature subsets; members never receive a validation split.
 */
#include "learn/voting.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "learn/learner.h"
#include "learn/params.h"

int mm_voting_combine(const float *const *probas, size_t n_models, size_t n, int k,
                      const double *weights, int hard, float *out, mm_err *err)
{
    if (n_models == 0) return mm_err_set(err, MM_EINVAL, "voting: no members to combine");
    if (k < 1) return mm_err_set(err, MM_EINVAL, "voting: %d classes", k);
    double W = 0;
    for (size_t j = 0; j < n_models; j++) {
        double w = weights ? weights[j] : 1.0;
        if (!isfinite(w) || w < 0)
            return mm_err_set(err, MM_EINVAL, "voting: weight %zu is %g; expected a finite number >= 0", j, w);
        W += w;
    }
    if (!(W > 0)) return mm_err_set(err, MM_EINVAL, "voting: the weights sum to 0");
    double *sum = malloc((size_t)k * sizeof *sum), *votes = malloc((size_t)k * sizeof *votes);
    if (!sum || !votes) { free(sum); free(votes); return mm_err_set(err, MM_ENOMEM, "voting: out of memory"); }
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < k; c++) sum[c] = votes[c] = 0;
        for (size_t j = 0; j < n_models; j++) {
            double w = weights ? weights[j] : 1.0;
            const float *p = probas[j] + i * (size_t)k;
            int best = 0;
            for (int c = 0; c < k; c++) {
                sum[c] += w * p[c];
                if (p[c] > p[best]) best = c;
            }
            votes[best] += w;
        }
        float *o = out + i * (size_t)k;
        if (!hard) {
            for (int c = 0; c < k; c++) o[c] = (float)(sum[c] / W);
            continue;
        }
        int win = 0;
        for (int c = 1; c < k; c++)
            if (votes[c] > votes[win] || (votes[c] == votes[win] && sum[c] > sum[win])) win = c;
        double share_w = votes[win] / W;
        for (int c = 0; c < k; c++) {
            double s = votes[c] / W;
            if (c != win && votes[c] == votes[win] && s > 0) {   /* tied rival: hand the winner a sliver */
                double delta = 1e-5 * s;
                s -= delta;
                share_w += delta;
            }
            o[c] = (float)s;
        }
        o[win] = (float)share_w;
    }
    free(sum);
    free(votes);
    return 0;
}

/* ----------------------------------------------------------- learner table */

extern const mm_learner_vt mm_learner_voting;

typedef struct voting_state {
    size_t m;                 /* members */
    mm_learner **members;     /* (m) */
    double *weights;          /* (m) or NULL for equal */
    int hard;
    size_t d;                 /* features (after fit/load) */
    int k;                    /* classes (after fit/load) */
    uint64_t seed;            /* create: members' seeds derive from it */
    int n_threads;            /* create: handed to the members */
} voting_state;

static int vs_uses_validation(const void *state)
{
    const voting_state *s = state;
    for (size_t j = 0; j < s->m; j++)
        if (s->members[j] && mm_learner_uses_validation(s->members[j])) return 1;
    return 0;
}

static void vs_free(void *state)
{
    voting_state *s = state;
    if (!s) return;
    for (size_t j = 0; s->members && j < s->m; j++) mm_learner_free(s->members[j]);
    free(s->members);
    free(s->weights);
    free(s);
}

/* estimators: a non-empty list of {model: NAME, params: {...}, name: ...};
 * creates the members (each with a distinct, reproducible seed). */
static int parse_estimators(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    static const char *const ekeys[] = {"model", "params", "name", NULL};
    voting_state *s = (voting_state *)((char *)field - offsetof(voting_state, m));
    if (!map) return 0;   /* no default: required, checked by vs_create */
    const mm_cfg *est = mm_cfg_child(map, "estimators");
    char w[600];
    if (!est || est->type != MM_CFG_SEQ || est->n == 0)
        return mm_err_set(err, MM_EINVAL, "%s: key 'estimators': expected a non-empty list of {model: NAME, params: {...}}",
                          mm_cfg_where(est ? est : map, w, sizeof w));
    s->members = mm_calloc(est->n, sizeof *s->members, err);
    if (!s->members) return MM_ENOMEM;
    s->m = est->n;
    for (size_t j = 0; j < s->m; j++) {
        const mm_cfg *e = est->items[j];
        const char *model = NULL;
        int rc;
        if (e->type != MM_CFG_MAP)
            return mm_err_set(err, MM_EINVAL, "%s: estimators[%zu]: expected a map {model: NAME, params: {...}}",
                              mm_cfg_where(e, w, sizeof w), j);
        if ((rc = mm_cfg_check_keys(e, "estimators", ekeys, err)) || (rc = mm_cfg_get_str(e, "model", NULL, &model, err)))
            return rc;
        if (!model) return mm_err_set(err, MM_EINVAL, "%s: estimators[%zu]: missing key 'model'", mm_cfg_where(e, w, sizeof w), j);
        mm_rng r;
        mm_rng_seed(&r, s->seed, 0x766f7465, j);
        if ((rc = mm_learner_create(model, mm_cfg_child(e, "params"), mm_rng_u64(&r), s->n_threads, &s->members[j], err)))
            return mm_err_prefix(err, "estimators[%zu] (%s)", j, model), rc;
    }
    return 0;
}

/* weights: one number >= 0 per estimator, not all 0 (after estimators). */
static int parse_weights(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    voting_state *s = (voting_state *)((char *)field - offsetof(voting_state, weights));
    const mm_cfg *wt = map ? mm_cfg_child(map, "weights") : NULL;
    if (!wt || wt->type == MM_CFG_NULL) return 0;   /* default: equal */
    char w[600];
    int rc;
    if (wt->type != MM_CFG_SEQ || wt->n != s->m)
        return mm_err_set(err, MM_EINVAL, "%s: key 'weights': expected a list of %zu numbers (one per estimator)",
                          mm_cfg_where(wt, w, sizeof w), s->m);
    s->weights = mm_calloc(s->m, sizeof *s->weights, err);
    if (!s->weights) return MM_ENOMEM;
    double tot = 0;
    for (size_t j = 0; j < s->m; j++) {
        if ((rc = mm_cfg_scalar_double(wt->items[j], "weights", &s->weights[j], err))) return rc;
        if (s->weights[j] < 0)
            return mm_err_set(err, MM_EINVAL, "%s: key 'weights': expected numbers >= 0, got %g",
                              mm_cfg_where(wt->items[j], w, sizeof w), s->weights[j]);
        tot += s->weights[j];
    }
    if (!(tot > 0)) return mm_err_set(err, MM_EINVAL, "%s: key 'weights': the weights sum to 0", mm_cfg_where(wt, w, sizeof w));
    return 0;
}

static const char *const VOTES[] = {"soft", "hard", NULL};

#define V(f) offsetof(voting_state, f)
static const mm_param VOTING_ROWS[] = {
    {"estimators", MM_PARAM_CUSTOM, V(m), .parse = parse_estimators, .def_text = "(required)", .type_text = "list",
     .range_text = "a non-empty list of {model: NAME, params: {...}, name: NAME}", .help = "the members"},
    {"voting", MM_PARAM_CHOICE, V(hard), .def = 0, .choices = VOTES,
     .help = "soft: weighted mean of probabilities; hard: weighted vote shares"},
    {"weights", MM_PARAM_CUSTOM, V(weights), .parse = parse_weights, .def_text = "equal", .type_text = "list",
     .range_text = "one number >= 0 per estimator, not all 0", .help = "weight of each member"},
    {NULL},
};
#undef V

static const mm_param_table VOTING_PARAMS = {"voting", "voting params", VOTING_ROWS};

static int vs_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    voting_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    mm_params_defaults(&VOTING_PARAMS, s);
    s->seed = seed;
    s->n_threads = n_threads;
    int rc = mm_params_parse(&VOTING_PARAMS, params, s, err);
    if (!rc && !s->m) {
        char w[600];
        rc = mm_err_set(err, MM_EINVAL, "%s: key 'estimators': expected a non-empty list of {model: NAME, params: {...}}",
                        params ? mm_cfg_where(params, w, sizeof w) : "voting");
    }
    if (rc) { vs_free(s); return rc; }
    *state = s;
    return 0;
}

static int vs_fit(void *state, const mm_fit_data *data, mm_err *err)
{
    voting_state *s = state;
    for (size_t j = 0; j < s->m; j++) {
        int rc = mm_learner_fit(s->members[j], data, err);
        if (rc) return mm_err_prefix(err, "voting member %zu (%s)", j, s->members[j]->vt->name), rc;
    }
    s->d = data->d;
    s->k = data->n_classes;
    return 0;
}

static int vs_predict(const void *state, const float *X, size_t n, float *proba, mm_err *err)
{
    const voting_state *s = state;
    if (!s->k) return mm_err_set(err, MM_EINVAL, "voting: model is not fitted");
    float **p = mm_calloc(s->m, sizeof *p, err);
    if (!p) return MM_ENOMEM;
    int rc = 0;
    for (size_t j = 0; j < s->m && !rc; j++) {
        p[j] = mm_malloc(n ? n : 1, (size_t)s->k * sizeof **p, err);
        if (!p[j]) rc = MM_ENOMEM;
        else if ((rc = mm_learner_predict_proba(s->members[j], X, n, s->d, p[j], err)))
            mm_err_prefix(err, "voting member %zu (%s)", j, s->members[j]->vt->name);
    }
    if (!rc) rc = mm_voting_combine((const float *const *)p, s->m, n, s->k, s->weights, s->hard, proba, err);
    for (size_t j = 0; j < s->m; j++) free(p[j]);
    free(p);
    return rc;
}

static int vs_save(const void *state, hid_t g, mm_err *err)
{
    const voting_state *s = state;
    int rc = mm_h5_attr_set_str(g, "kind", "voting", err);
    if (!rc) rc = mm_h5_attr_set_str(g, "voting", s->hard ? "hard" : "soft", err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "n_estimators", (int64_t)s->m, err);
    if (!rc && s->weights) {
        hsize_t dm[1] = {s->m};
        rc = mm_h5_write_f64(g, "weights", s->weights, 1, dm, err);
    }
    for (size_t j = 0; j < s->m && !rc; j++) {
        char name[64];
        snprintf(name, sizeof name, "estimator_%zu", j);
        hid_t sub = mm_h5_group(g, name, err);
        if (sub < 0) return err && err->code ? err->code : MM_EIO;
        rc = mm_learner_save(s->members[j], sub, err);
        H5Gclose(sub);
    }
    return rc;
}

static int vs_load(hid_t g, int n_threads, void **state, mm_err *err)
{
    char *kind = NULL, *vote = NULL;
    int rc = mm_h5_attr_get_str(g, "kind", &kind, err);
    if (rc) return rc;
    if (strcmp(kind, "voting")) {
        rc = mm_err_set(err, MM_EFORMAT, "voting model: group holds a '%s', expected a voting ensemble", kind);
        free(kind);
        return rc;
    }
    free(kind);
    int64_t m;
    if ((rc = mm_h5_attr_get_str(g, "voting", &vote, err))) return rc;
    int hard = !strcmp(vote, "hard");
    if (!hard && strcmp(vote, "soft")) {
        rc = mm_err_set(err, MM_EFORMAT, "voting model: voting is '%s', expected soft or hard", vote);
        free(vote);
        return rc;
    }
    free(vote);
    int64_t k = 0, d = 0;   /* the ensemble's shapes (checked by mm_learner_load): every member's too */
    if ((rc = mm_h5_attr_get_i64(g, "n_estimators", &m, err)) || (rc = mm_h5_attr_get_i64(g, "n_classes", &k, err)) ||
        (rc = mm_h5_attr_get_i64(g, "n_features", &d, err)))
        return rc;
    if (k < 2 || k > 100000 || d < 1 || d > 100000000)
        return mm_err_set(err, MM_EFORMAT, "voting model: implausible n_classes %lld or n_features %lld", (long long)k, (long long)d);
    if (m < 1 || m > 1000) return mm_err_set(err, MM_EFORMAT, "voting model: implausible n_estimators %lld", (long long)m);
    voting_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->hard = hard;
    s->m = (size_t)m;
    s->k = (int)k;
    s->d = (size_t)d;
    s->members = mm_calloc(s->m, sizeof *s->members, err);
    if (!s->members) { rc = MM_ENOMEM; goto fail; }
    if (mm_h5_exists(g, "weights")) {
        int r;
        hsize_t dm[4];
        if ((rc = mm_h5_read_f64(g, "weights", 1, &s->weights, &r, dm, err))) goto fail;
        double tot = 0;
        int bad = dm[0] != s->m;
        for (size_t j = 0; !bad && j < s->m; j++) {
            bad |= !isfinite(s->weights[j]) || s->weights[j] < 0;
            tot += s->weights[j];
        }
        if (bad || !(tot > 0)) {
            rc = mm_err_set(err, MM_EFORMAT, "voting model: 'weights' must hold %zu finite numbers >= 0 with a positive sum", s->m);
            goto fail;
        }
    }
    for (size_t j = 0; j < s->m; j++) {
        char name[64];
        snprintf(name, sizeof name, "estimator_%zu", j);
        hid_t sub = mm_h5_open_group(g, name, err);
        if (sub < 0) { rc = err && err->code ? err->code : MM_EFORMAT; goto fail; }
        rc = mm_learner_load_expect(sub, n_threads, s->k, s->d, &s->members[j], err);
        H5Gclose(sub);
        if (rc) goto fail;
    }
    *state = s;
    return 0;
fail:
    vs_free(s);
    return rc;
}

static void vs_shape(const void *state, int *k, size_t *d)
{
    const voting_state *s = state;
    *k = s->k;
    *d = s->d;
}

size_t mm_voting_n_members(const mm_learner *l)
{
    return l && l->vt == &mm_learner_voting && l->state ? ((const voting_state *)l->state)->m : 0;
}

const mm_learner *mm_voting_member(const mm_learner *l, size_t j)
{
    return j < mm_voting_n_members(l) ? ((const voting_state *)l->state)->members[j] : NULL;
}

const mm_learner_vt mm_learner_voting = {
    .name = "voting",
    .params = &VOTING_PARAMS,
    .summary = "soft or hard voting over any learners (estimators: [{model, params}], weights)",
    .wants_validation = -1,   /* members take or merge the validation part themselves */
    .uses_validation = vs_uses_validation,
    .create = vs_create,
    .fit = vs_fit,
    .predict_proba = vs_predict,
    .save = vs_save,
    .load = vs_load,
    .shape = vs_shape,
    .history = NULL,
    .free = vs_free,
};
