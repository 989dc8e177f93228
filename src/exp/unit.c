/* unit.c — one (model, round) unit: prepare, search, fit, predict; save,
 * load, pack, unpack; ensembles of finished units. See unit.h.
 *
 * The search follows scikit-learn's GridSearchCV(refit=True) inside each
 * outer training part: the inner folds split the training rows in table
 * order (eval/splits.c: sklearn's fold semantics), a candidate's score is
 * the mean of its inner-fold scores (a failed fit scores NaN, as
 * error_score=nan, and is never chosen), the first best mean wins.
 */
#include "exp/unit.h"
#include "core/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/h5.h"
#include "learn/learner.h"
#include "learn/scaler.h"
#include "learn/smote.h"
#include "learn/voting.h"

static const char *const hist_names[4] = {"train_loss", "train_acc", "val_loss", "val_acc"};

void mm_unit_clear(mm_unit *u)
{
    free(u->error);
    free(u->test_index);
    free(u->y_true);
    free(u->y_pred);
    free(u->proba);
    for (int i = 0; i < 4; i++) free(u->hist[i]);
    for (size_t c = 0; c < u->n_cand; c++) free(u->cand ? u->cand[c] : NULL);
    free(u->cand);
    free(u->scores);
    free(u->rob_proba);
    memset(u, 0, sizeof *u);
    u->chosen = -1;
}

/* ---- the rows of a round, prepared ---- */

static void round_release(mm_unit_round *r)
{
    free(r->Xtr); free(r->Xva); free(r->Xte); free(r->ytr); free(r->yva); free(r->te_idx); free(r->Xrob);
    memset(r, 0, sizeof *r);
    r->round = (size_t)-1;
}

void mm_unit_cache_free(mm_unit_cache *c)
{
    if (!c) return;
    round_release(&c->slot[0]);
    round_release(&c->slot[1]);
    c->init = 0;
}

/* Table rows of one round: training rows (with the validation rows merged
 * in, in table order, when !with_val), validation rows (with_val) and test
 * rows, each ascending; *n_train_role counts the training role alone. */
typedef struct rows {
    size_t *tr, *va, *te;
    size_t ntr, nva, nte;
} rows;

static void rows_free(rows *w)
{
    free(w->tr); free(w->va); free(w->te);
    memset(w, 0, sizeof *w);
}

static int round_rows(const mm_split *sp, size_t round, int with_val, rows *w, size_t *n_train_role, mm_err *err)
{
    memset(w, 0, sizeof *w);
    w->tr = malloc((sp->n + 1) * sizeof *w->tr);
    w->va = malloc((sp->n + 1) * sizeof *w->va);
    w->te = malloc((sp->n + 1) * sizeof *w->te);
    if (!w->tr || !w->va || !w->te) { rows_free(w); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    const uint8_t *role = sp->role + round * sp->n;
    size_t ntrain = 0;
    for (size_t i = 0; i < sp->n; i++) {
        int q = role[i];
        ntrain += q == MM_ROLE_TRAIN;
        if (q == MM_ROLE_TRAIN || (q == MM_ROLE_VAL && !with_val)) w->tr[w->ntr++] = i;
        else if (q == MM_ROLE_VAL) w->va[w->nva++] = i;
        else if (q == MM_ROLE_TEST) w->te[w->nte++] = i;
    }
    *n_train_role = ntrain;
    return 0;
}

static void gather(const float *X, size_t d, const size_t *idx, size_t m, float *out)
{
    for (size_t i = 0; i < m; i++) memcpy(out + i * d, X + idx[i] * d, d * sizeof *X);
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

/* Gather the rows w into r; the augmented copies of the training rows join
 * them; then the scaler and SMOTE, fitted on the training rows only.
 * round (0-based) names the round in messages. */
static int prepare_rows(const mm_unit_env *env, const rows *w, uint64_t smote_seed, size_t round, int with_rob,
                        mm_unit_round *r, mm_err *err)
{
    const mm_table *t = env->t;
    size_t d = t->d, ntr = w->ntr * (1 + env->n_aug);
    r->Xtr = malloc((ntr + 1) * d * sizeof *r->Xtr);
    r->ytr = malloc((ntr + 1) * sizeof *r->ytr);
    r->Xva = malloc((w->nva + 1) * d * sizeof *r->Xva);
    r->yva = malloc((w->nva + 1) * sizeof *r->yva);
    r->Xte = malloc((w->nte + 1) * d * sizeof *r->Xte);
    r->te_idx = malloc((w->nte + 1) * sizeof *r->te_idx);
    if (!r->Xtr || !r->ytr || !r->Xva || !r->yva || !r->Xte || !r->te_idx) return mm_err_set(err, MM_ENOMEM, "out of memory");
    gather(t->X, d, w->tr, w->ntr, r->Xtr);
    for (size_t i = 0; i < w->ntr; i++) r->ytr[i] = t->labels[w->tr[i]];
    mm_exp_append_augmented(r->Xtr, r->ytr, w->ntr, d, env->aug, env->n_aug, w->tr, t->labels);
    gather(t->X, d, w->va, w->nva, r->Xva);
    for (size_t i = 0; i < w->nva; i++) r->yva[i] = t->labels[w->va[i]];
    gather(t->X, d, w->te, w->nte, r->Xte);
    memcpy(r->te_idx, w->te, w->nte * sizeof *w->te);
    r->n_train = ntr, r->n_val = w->nva, r->n_test = w->nte;
    if (with_rob && env->n_rob) {   /* the same test rows, corrupted */
        r->Xrob = malloc((env->n_rob * w->nte + 1) * d * sizeof *r->Xrob);
        if (!r->Xrob) return mm_err_set(err, MM_ENOMEM, "out of memory");
        for (size_t c = 0; c < env->n_rob; c++) gather(env->rob[c], d, w->te, w->nte, r->Xrob + c * w->nte * d);
    }
    int rc = 0;
    if (env->prep->scaler) {
        mm_scaler *sc = NULL;
        rc = mm_scaler_fit(r->Xtr, r->n_train, d, &sc, err);
        if (!rc) rc = mm_scaler_transform(sc, r->Xtr, r->n_train, d, err);
        if (!rc && r->n_val) rc = mm_scaler_transform(sc, r->Xva, r->n_val, d, err);
        if (!rc) rc = mm_scaler_transform(sc, r->Xte, r->n_test, d, err);
        if (!rc && r->Xrob) rc = mm_scaler_transform(sc, r->Xrob, env->n_rob * r->n_test, d, err);
        mm_scaler_free(sc);
        if (rc) return rc;
    }
    if (env->prep->smote) {
        mm_smote_params p = mm_smote_params_default();
        if ((rc = mm_smote_params_from_cfg(env->prep->smote_params, &p, err))) return rc;
        p.n_threads = env->n_threads;
        float *Xs = NULL;
        int32_t *ys = NULL;
        size_t ns = 0;
        rc = mm_smote_resample(r->Xtr, r->ytr, r->n_train, d, t->n_classes, &p, smote_seed, &Xs, &ys, &ns, err);
        if (rc) return mm_err_prefix(err, "SMOTE in round %zu", round + 1);
        free(r->Xtr);
        free(r->ytr);
        r->Xtr = Xs;
        r->ytr = ys;
        r->n_train = ns;
    }
    return 0;
}

/* The outer round: with_val = 0 merges the validation rows into the
 * training rows before the scaler and SMOTE (models without a validation
 * part); validation and test rows are never augmented. */
static int prepare_round(const mm_unit_env *env, size_t round, int with_val, mm_unit_round *r, mm_err *err)
{
    rows w;
    size_t ntrain = 0;
    round_release(r);
    int rc = round_rows(env->split, round, with_val, &w, &ntrain, err);
    if (rc) return rc;
    if (ntrain == 0 || w.nte == 0)
        rc = mm_err_set(err, MM_EINVAL, "round %zu has %zu training and %zu test samples; the protocol leaves a part empty", round + 1, ntrain, w.nte);
    if (!rc) rc = prepare_rows(env, &w, env->seed ^ (0x5307eULL + round), round, 1, r, err);
    rows_free(&w);
    if (rc) { round_release(r); return rc; }
    r->round = round;
    return 0;
}

/* ---- fitting ---- */

/* Epoch progress of one unit's fit: a line at most every 5 s (and for the
 * last epoch), so a long neural round is never silent and a short one quiet. */
typedef struct epoch_ctx {
    const mm_unit_env *env;
    const char *model;
    size_t round, n_rounds;
    double last;       /* time of the last line (the fit's start before any) */
    int said;
} epoch_ctx;

static void say_epoch(void *ctx, size_t epoch, size_t n_epochs, double train_loss, double val_loss)
{
    epoch_ctx *c = ctx;
    double t = mm_now_s();
    if (t - c->last < 5.0 && epoch < n_epochs) return;
    c->last = t;
    char line[256];
    int n = snprintf(line, sizeof line, "  %s, round %zu/%zu: epoch %zu/%zu, loss %.4f", c->model, c->round + 1,
                     c->n_rounds, epoch, n_epochs, train_loss);
    if (val_loss == val_loss && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, ", validation loss %.4f", val_loss);
    c->env->say(c->env->say_ctx, line);
}

/* Fit a learner on r and predict its test rows into proba (n_test, k).
 * Learner failures are returned (nonzero) with the message in e; *keep
 * (when not NULL) receives the fitted learner. */
static int fit_predict(const mm_unit_env *env, const mm_exp_model *m, const mm_cfg *params, size_t round,
                       const mm_unit_round *r, float *proba, mm_learner **keep, double *fit_s, double *pred_s,
                       mm_err *e)
{
    int k = env->t->n_classes;
    mm_learner *l = NULL;
    int rc = mm_learner_create(m->learner, params, env->seed + 1000003ULL * round, env->n_threads, &l, e);
    mm_fit_data fd = {.X = r->Xtr, .y = r->ytr, .n = r->n_train, .d = env->t->d, .n_classes = k,
                      .X_val = r->n_val ? r->Xva : NULL, .y_val = r->n_val ? r->yva : NULL, .n_val = r->n_val};
    epoch_ctx ec = {env, m->name, round, env->split ? env->split->n_rounds : 0, mm_now_s(), 0};
    if (env->say) { fd.on_epoch = say_epoch; fd.epoch_ctx = &ec; }
    double t0 = mm_now_s();
    if (!rc) rc = mm_learner_fit(l, &fd, e);
    double t1 = mm_now_s();
    if (!rc) rc = mm_learner_predict_proba(l, r->Xte, r->n_test, env->t->d, proba, e);
    double t2 = mm_now_s();
    if (fit_s) *fit_s = t1 - t0;
    if (pred_s) *pred_s = t2 - t1;
    if (!rc && keep) *keep = l;
    else mm_learner_free(l);
    return rc;
}

int mm_unit_inner_split(const mm_unit_env *env, size_t round, int uses_val, mm_split **out, mm_err *err)
{
    rows w;
    size_t ntrain;
    int rc = round_rows(env->split, round, uses_val, &w, &ntrain, err);
    if (rc) return rc;
    int32_t *y = malloc((w.ntr + 1) * sizeof *y), *g = malloc((w.ntr + 1) * sizeof *g);
    if (!y || !g) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < w.ntr; i++) { y[i] = env->t->labels[w.tr[i]]; g[i] = env->t->groups[w.tr[i]]; }
    if (!rc) rc = mm_split_make(&env->search->inner, y, g, w.ntr, out, err);
    if (rc && rc != MM_ENOMEM) {
        const char *gb = env->t->group_by ? env->t->group_by : "group";
        size_t n_groups = 0;
        for (size_t i = 0; i < w.ntr; i++) {   /* distinct groups, for the message */
            size_t j = 0;
            while (j < i && g[j] != g[i]) j++;
            n_groups += j == i;
        }
        mm_err_prefix(err, "search.inner (%s, %zu folds) in round %zu, whose training part has %zu %ss",
                      env->search->inner_kind, env->search->inner.n_folds, round + 1, n_groups, gb);
    }
    free(y); free(g);
    rows_free(&w);
    return rc;
}

/* Inner fold f of isp over the training rows w->tr (validation rows kept). */
static int inner_rows(const rows *w, const mm_split *isp, size_t f, rows *o, mm_err *err)
{
    memset(o, 0, sizeof *o);
    o->tr = malloc((w->ntr + 1) * sizeof *o->tr);
    o->te = malloc((w->ntr + 1) * sizeof *o->te);
    o->va = malloc((w->nva + 1) * sizeof *o->va);
    if (!o->tr || !o->te || !o->va) { rows_free(o); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    const uint8_t *role = isp->role + f * isp->n;
    for (size_t i = 0; i < w->ntr; i++) {
        if (role[i] == MM_ROLE_TRAIN) o->tr[o->ntr++] = w->tr[i];
        else if (role[i] == MM_ROLE_TEST) o->te[o->nte++] = w->tr[i];
    }
    memcpy(o->va, w->va, w->nva * sizeof *w->va);
    o->nva = w->nva;
    return 0;
}

/* Inner folds [f0, f1) of isp prepared (scaler, SMOTE, augmentation fitted
 * on each inner training part) into ir[f - f0], their test labels into
 * truth[f - f0] (each (w->ntr) ints). */
static int prepare_inner(const mm_unit_env *env, const rows *w, const mm_split *isp, size_t round, size_t f0,
                         size_t f1, mm_unit_round *ir, int32_t *const *truth, mm_err *err)
{
    int rc = 0;
    for (size_t f = f0; !rc && f < f1; f++) {
        rows o;
        if ((rc = inner_rows(w, isp, f, &o, err))) break;
        uint64_t smote_seed = env->seed ^ (0x5307eULL + round) ^ ((uint64_t)(f + 1) << 40);
        rc = prepare_rows(env, &o, smote_seed, round, 0, &ir[f - f0], err);
        for (size_t i = 0; !rc && i < o.nte; i++) truth[f - f0][i] = env->t->labels[o.te[i]];
        rows_free(&o);
    }
    return rc;
}

/* Candidate c fitted on the prepared inner fold ir and scored on its test
 * rows: the metric, or NaN (a failed fit: the message in e). proba (n_test,
 * k) and pred (n_test) are scratch. */
static double score_candidate(const mm_unit_env *env, const mm_exp_model *m, size_t c, size_t round,
                              const mm_unit_round *ir, const int32_t *truth, float *proba, int32_t *pred, mm_err *e)
{
    int k = env->t->n_classes;
    double s = NAN;
    if (fit_predict(env, m, m->cand_params[c], round, ir, proba, NULL, NULL, NULL, e) == 0) {
        mm_proba_argmax(proba, ir->n_test, k, pred);
        if (mm_exp_score(env->search->metric, truth, pred, ir->n_test, k, &s, e)) s = NAN;
    }
    return s;
}

/* Every candidate on inner folds [f0, f1) into u->scores (c * F + f); a
 * failure's message into msg[c * F + f] (owned). Concurrent: the fits run
 * side by side on env's threads, one thread each (the learner's results do
 * not depend on its thread count, so neither do the scores). */
static int score_folds(const mm_unit_env *env, const mm_exp_model *m, size_t round, size_t f0, size_t f1, size_t F,
                       const mm_unit_round *ir, int32_t *const *truth, size_t max_test, int concurrent, mm_unit *u,
                       char **msg, mm_err *err)
{
    mm_unit_env one = *env;
    size_t C = m->n_cand, jobs = C * (f1 - f0);
    int nt = concurrent && env->n_threads > 1 && jobs > 1 ? env->n_threads : 1, oom = 0;
    if (nt > 1) { one.n_threads = 1; one.say = NULL; }   /* no epoch lines from side-by-side fits */
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *proba = malloc((max_test * (size_t)env->t->n_classes + 1) * sizeof *proba);
        int32_t *pred = malloc((max_test + 1) * sizeof *pred);
        #pragma omp for schedule(dynamic, 1)
        for (size_t j = 0; j < jobs; j++) {
            size_t f = f0 + j / C, c = j % C;
            mm_err e = {0};
            double s = NAN;
            if (!proba || !pred) { __atomic_store_n(&oom, 1, __ATOMIC_RELAXED); continue; }
            s = score_candidate(nt > 1 ? &one : env, m, c, round, &ir[f - f0], truth[f - f0], proba, pred, &e);
            if (isnan(s)) msg[c * F + f] = strdup(e.msg);
            u->scores[c * F + f] = s;
        }
        free(proba);
        free(pred);
    }
    return oom ? mm_err_set(err, MM_ENOMEM, "out of memory") : 0;
}

/* Score every candidate of m on every inner fold of the round's training
 * part into u->scores and choose (u->chosen; -1 when every candidate
 * failed, u->error then holds the first failure in fold, then candidate,
 * order). A learner with concurrent_fits has all its inner folds prepared
 * at once and its fits run side by side; others one fold at a time. */
static int search_candidates(const mm_unit_env *env, const mm_exp_model *m, size_t round, mm_unit *u, mm_err *err)
{
    mm_split *isp = NULL;
    rows w;
    size_t ntrain;
    int rc = round_rows(env->split, round, m->uses_val, &w, &ntrain, err);
    if (!rc) rc = mm_unit_inner_split(env, round, m->uses_val, &isp, err);
    size_t F = isp ? isp->n_rounds : 0, C = m->n_cand;
    const mm_learner_vt *vt = mm_learner_find(m->learner);
    int concurrent = vt && vt->concurrent_fits && env->n_threads > 1;
    size_t batch = concurrent ? F : 1;   /* inner folds prepared at a time */
    u->n_cand = C, u->n_inner = F;
    u->cand = calloc(C, sizeof *u->cand);
    u->scores = malloc((C * F + 1) * sizeof *u->scores);
    char **msg = calloc(C * F + 1, sizeof *msg);
    mm_unit_round *ir = calloc(batch + 1, sizeof *ir);
    int32_t **truth = calloc(batch + 1, sizeof *truth);
    if (!rc && (!u->cand || !u->scores || !msg || !ir || !truth)) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t b = 0; !rc && b < batch; b++)
        if (!(truth[b] = malloc((w.ntr + 1) * sizeof **truth))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t c = 0; !rc && c < C; c++)
        if (!(u->cand[c] = strdup(m->cand_text[c]))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t f0 = 0; !rc && f0 < F; f0 += batch) {
        size_t f1 = f0 + batch < F ? f0 + batch : F;
        rc = prepare_inner(env, &w, isp, round, f0, f1, ir, truth, err);
        if (!rc) rc = score_folds(env, m, round, f0, f1, F, ir, truth, w.ntr, concurrent, u, msg, err);
        for (size_t b = 0; b < batch; b++) round_release(&ir[b]);
    }
    u->chosen = -1;
    double best = -INFINITY;
    for (size_t c = 0; !rc && c < C; c++) {
        double sum = 0;
        for (size_t f = 0; f < F; f++) sum += u->scores[c * F + f];
        double mean = sum / (double)F;
        if (!isnan(mean) && (u->chosen < 0 || mean > best)) { best = mean; u->chosen = (int32_t)c; }
    }
    for (size_t j = 0; !rc && u->chosen < 0 && !u->error && j < C * F; j++) {   /* fold-major: the first failure */
        size_t f = j / C, c = j % C;
        if (isnan(u->scores[c * F + f])) {
            char buf[1200];
            snprintf(buf, sizeof buf, "candidate %s, inner fold %zu: %s", m->cand_text[c], f + 1,
                     msg[c * F + f] ? msg[c * F + f] : "out of memory");
            u->error = strdup(buf);
        }
    }
    for (size_t j = 0; msg && j < C * F; j++) free(msg[j]);
    for (size_t b = 0; truth && b < batch; b++) free(truth[b]);
    free(msg); free(ir); free(truth);
    mm_split_free(isp);
    rows_free(&w);
    return rc;
}

/* The model's history curves into u. */
static void copy_history(const mm_learner *l, mm_unit *u)
{
    const mm_history *h = mm_learner_history(l);
    if (!h || !h->n) return;
    const float *src[4] = {h->train_loss, h->train_acc, h->val_loss, h->val_acc};
    u->n_hist = h->n;
    for (int i = 0; i < 4; i++)
        if (src[i]) {
            u->hist[i] = malloc(h->n * sizeof(float));
            if (u->hist[i]) memcpy(u->hist[i], src[i], h->n * sizeof(float));
        }
}

int mm_unit_fit(const mm_unit_env *env, mm_unit_cache *cache, size_t model, size_t round, mm_unit *u,
                mm_err *err)
{
    const mm_exp_model *m = &env->specs[model];
    int v = m->uses_val != 0, k = env->t->n_classes, rc = 0;
    memset(u, 0, sizeof *u);
    u->chosen = -1;
    if (!cache->init) { cache->slot[0].round = cache->slot[1].round = (size_t)-1; cache->init = 1; }
    mm_unit_round *r = &cache->slot[v];
    if (r->round != round && (rc = prepare_round(env, round, v, r, err))) return rc;
    const mm_cfg *params = m->params;
    double t0 = mm_now_s(), fit_s = 0, pred_s = 0;
    if (env->search && env->search->enabled && m->n_cand) {
        if ((rc = search_candidates(env, m, round, u, err))) return rc;
        if (u->chosen < 0) { u->failed = 1; u->done = 1; return 0; }
        params = m->cand_params[u->chosen];
    }
    double search_s = mm_now_s() - t0;
    mm_err e = {0};
    mm_learner *l = NULL;
    u->proba = malloc((r->n_test + 1) * (size_t)k * sizeof *u->proba);
    if (!u->proba) return mm_err_set(err, MM_ENOMEM, "out of memory");
    if (fit_predict(env, m, params, round, r, u->proba, &l, &fit_s, &pred_s, &e)) {
        u->failed = 1;
        free(u->error);
        u->error = strdup(e.msg);
        free(u->proba);
        u->proba = NULL;
        u->done = 1;
        return 0;
    }
    u->fit_s = fit_s + search_s;
    u->predict_s = pred_s;
    u->n_test = r->n_test;
    u->test_index = malloc((r->n_test + 1) * sizeof *u->test_index);
    u->y_true = malloc((r->n_test + 1) * sizeof *u->y_true);
    u->y_pred = malloc((r->n_test + 1) * sizeof *u->y_pred);
    if (!u->test_index || !u->y_true || !u->y_pred) { mm_learner_free(l); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < r->n_test; i++) {
        u->test_index[i] = (int32_t)r->te_idx[i];
        u->y_true[i] = env->t->labels[r->te_idx[i]];
    }
    mm_proba_argmax(u->proba, r->n_test, k, u->y_pred);
    if (env->n_rob && r->n_test) {   /* robustness: the fitted model on the corrupted test rows */
        u->n_rob = env->n_rob;
        u->rob_proba = malloc(env->n_rob * r->n_test * (size_t)k * sizeof *u->rob_proba);
        if (!u->rob_proba) { mm_learner_free(l); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
        for (size_t c = 0; c < env->n_rob && !rc; c++)
            if (mm_learner_predict_proba(l, r->Xrob + c * r->n_test * env->t->d, r->n_test, env->t->d,
                                         u->rob_proba + c * r->n_test * (size_t)k, &e)) {
                u->failed = 1;
                free(u->error);
                u->error = strdup(e.msg);
                break;
            }
    }
    copy_history(l, u);
    mm_learner_free(l);
    u->done = 1;
    return 0;
}

/* ---- ensembles ---- */

static void unit_fail(mm_unit *u, const char *prefix, const char *msg)
{
    char buf[1200];
    snprintf(buf, sizeof buf, "%s%s", prefix, msg ? msg : "?");
    u->failed = 1;
    u->error = strdup(buf);
}

void mm_unit_ensemble(const mm_exp_model *e, const mm_unit *const *members, int k, mm_unit *u)
{
    memset(u, 0, sizeof *u);
    u->chosen = -1;
    u->done = 1;
    for (size_t j = 0; j < e->n_members; j++)
        if (members[j]->failed) { unit_fail(u, "member failed: ", members[j]->error); return; }
    const mm_unit *a = members[0];
    size_t n = a->n_test;
    const float *p[MM_EXP_MAX_MEMBERS];
    for (size_t j = 0; j < e->n_members && j < MM_EXP_MAX_MEMBERS; j++) {
        if (members[j]->n_test != n) { unit_fail(u, "", "members tested on different rows"); return; }
        p[j] = members[j]->proba;
    }
    u->n_test = n;
    u->test_index = malloc((n + 1) * sizeof *u->test_index);
    u->y_true = malloc((n + 1) * sizeof *u->y_true);
    u->y_pred = malloc((n + 1) * sizeof *u->y_pred);
    u->proba = malloc((n * (size_t)k + 1) * sizeof *u->proba);
    if (!u->test_index || !u->y_true || !u->y_pred || !u->proba) { mm_unit_clear(u); u->done = 1; unit_fail(u, "", "out of memory"); return; }
    memcpy(u->test_index, a->test_index, n * sizeof *u->test_index);
    memcpy(u->y_true, a->y_true, n * sizeof *u->y_true);
    mm_err err = {0};
    if (mm_voting_combine(p, e->n_members, n, k, e->weights, e->hard, u->proba, &err)) {
        char msg[1100];
        snprintf(msg, sizeof msg, "%s", err.msg);
        mm_unit_clear(u);
        u->done = 1;
        unit_fail(u, "", msg);
        return;
    }
    mm_proba_argmax(u->proba, n, k, u->y_pred);
    size_t nr = a->n_rob;
    for (size_t j = 0; j < e->n_members; j++) if (members[j]->n_rob != nr || !members[j]->rob_proba) nr = 0;
    if (nr && n) {
        u->rob_proba = malloc(nr * n * (size_t)k * sizeof *u->rob_proba);
        u->n_rob = u->rob_proba ? nr : 0;
        for (size_t c = 0; c < u->n_rob; c++) {
            const float *q[MM_EXP_MAX_MEMBERS];
            for (size_t j = 0; j < e->n_members && j < MM_EXP_MAX_MEMBERS; j++) q[j] = members[j]->rob_proba + c * n * (size_t)k;
            if (mm_voting_combine(q, e->n_members, n, k, e->weights, e->hard, u->rob_proba + c * n * (size_t)k, &err)) {
                free(u->rob_proba);
                u->rob_proba = NULL;
                u->n_rob = 0;
                break;
            }
        }
    }
    for (size_t j = 0; j < e->n_members; j++) { u->fit_s += members[j]->fit_s; u->predict_s += members[j]->predict_s; }
}

/* ---- files ---- */

void mm_unit_path(char *buf, size_t size, const char *dir, const char *model, size_t round)
{
    snprintf(buf, size, "%s/units/%s__r%03zu.h5", dir, model, round);
}

static int save_search(const mm_unit *u, hid_t f, mm_err *err)
{
    hsize_t nc = u->n_cand, d2[2] = {u->n_cand, u->n_inner}, one = 1;
    int rc = mm_h5_write_strings(f, "search/candidates", (const char *const *)u->cand, u->n_cand, err);
    if (!rc) rc = mm_h5_write_f64(f, "search/scores", u->scores, 2, d2, err);
    if (!rc) rc = mm_h5_write_i32(f, "search/chosen", &u->chosen, 1, &one, err);
    (void)nc;
    return rc;
}

int mm_unit_save(const mm_unit *u, const char *path, unsigned long long cfg_hash, int k, mm_err *err)
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
    if (!rc && u->n_cand) rc = save_search(u, f, err);
    if (!rc && !u->failed) {
        hsize_t n = u->n_test, d2[2] = {u->n_test, (hsize_t)k};
        rc = mm_h5_write_i32(f, "test_index", u->test_index, 1, &n, err);
        if (!rc) rc = mm_h5_write_i32(f, "y_true", u->y_true, 1, &n, err);
        if (!rc) rc = mm_h5_write_i32(f, "y_pred", u->y_pred, 1, &n, err);
        if (!rc) rc = mm_h5_write_f32(f, "proba", u->proba, 2, d2, err);
        hsize_t d3[3] = {u->n_rob, u->n_test, (hsize_t)k};
        if (!rc && u->n_rob) rc = mm_h5_write_f32(f, "robustness/proba", u->rob_proba, 3, d3, err);
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

static int load_search(mm_unit *u, hid_t f, mm_err *e)
{
    if (!mm_h5_exists(f, "search/candidates")) return 0;
    hsize_t d[4];
    int r;
    int32_t *ch = NULL;
    int rc = mm_h5_read_strings(f, "search/candidates", &u->cand, &u->n_cand, e);
    if (!rc) rc = mm_h5_read_f64(f, "search/scores", 2, &u->scores, &r, d, e);
    if (!rc && d[0] != u->n_cand) rc = -1;
    if (!rc) u->n_inner = d[1];
    if (!rc) rc = mm_h5_read_i32(f, "search/chosen", 1, &ch, &r, d, e);
    if (!rc && (d[0] != 1 || ch[0] < -1 || ch[0] >= (int32_t)u->n_cand)) rc = -1;
    if (!rc) u->chosen = ch[0];
    free(ch);
    return rc;
}

int mm_unit_load(mm_unit *u, const char *path, unsigned long long cfg_hash, int k)
{
    memset(u, 0, sizeof *u);
    u->chosen = -1;
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
    if (!rc) rc = load_search(u, f, &e);
    if (!rc && failed) {
        u->failed = 1;
        if (mm_h5_attr_get_str(f, "error", &u->error, &e)) u->error = strdup("failed");
    } else if (!rc) {
        hsize_t d[4];
        int r;
        rc = mm_h5_read_i32(f, "test_index", 1, &u->test_index, &r, d, &e);
        if (!rc) { u->n_test = d[0]; rc = mm_h5_read_i32(f, "y_true", 1, &u->y_true, &r, d, &e); }
        if (!rc && d[0] != u->n_test) rc = -1;
        if (!rc) rc = mm_h5_read_i32(f, "y_pred", 1, &u->y_pred, &r, d, &e);
        if (!rc && d[0] != u->n_test) rc = -1;
        if (!rc) rc = mm_h5_read_f32(f, "proba", 2, &u->proba, &r, d, &e);
        if (!rc && (d[0] != u->n_test || d[1] != (hsize_t)k)) rc = -1;
        if (!rc && mm_h5_exists(f, "robustness/proba")) {
            rc = mm_h5_read_f32(f, "robustness/proba", 3, &u->rob_proba, &r, d, &e);
            if (!rc && (d[1] != u->n_test || d[2] != (hsize_t)k)) rc = -1;
            if (!rc) u->n_rob = d[0];
        }
        if (!rc) rc = mm_h5_attr_get_f64(f, "fit_seconds", &u->fit_s, &e);
        if (!rc) rc = mm_h5_attr_get_f64(f, "predict_seconds", &u->predict_s, &e);
        for (int i = 0; i < 4 && !rc; i++) {
            char name[64];
            snprintf(name, sizeof name, "history/%s", hist_names[i]);
            if (mm_h5_exists(f, name) && !mm_h5_read_f32(f, name, 1, &u->hist[i], &r, d, &e)) u->n_hist = d[0];
        }
    }
    mm_h5_close(f);
    if (rc) { mm_unit_clear(u); return -1; }
    u->done = 1;
    return 0;
}

/* ---- bytes ---- */

/* Header, then the error text, test_index, y_true, y_pred (int32, n_test
 * each), proba (float32, n_test × k), the history curves present (float32,
 * n_hist each), the search scores (float64, n_cand × n_inner) and the
 * candidates (NUL-terminated, cand_len bytes in all). */
typedef struct unit_wire {
    int32_t failed, k;
    uint32_t err_len, hist_mask;
    uint64_t n_test, n_hist;
    double fit_s, predict_s;
    uint64_t n_cand, n_inner, cand_len;
    int32_t chosen, pad;
    uint64_t n_rob;          /* robustness: n_rob × n_test × k floats after the probabilities */
} unit_wire;

unsigned char *mm_unit_pack(const mm_unit *u, int k, size_t *len)
{
    unit_wire h = {.failed = u->failed, .k = k, .n_test = u->failed ? 0 : u->n_test,
                   .n_hist = u->failed ? 0 : u->n_hist, .fit_s = u->fit_s, .predict_s = u->predict_s,
                   .n_cand = u->n_cand, .n_inner = u->n_inner, .chosen = u->chosen,
                   .n_rob = u->failed || !u->rob_proba ? 0 : u->n_rob};
    h.err_len = u->error ? (uint32_t)strlen(u->error) : 0;
    for (int i = 0; i < 4 && !u->failed; i++) if (u->hist[i] && u->n_hist) h.hist_mask |= 1u << i;
    for (size_t c = 0; c < u->n_cand; c++) h.cand_len += strlen(u->cand[c]) + 1;
    size_t nh = 0;
    for (int i = 0; i < 4; i++) nh += (h.hist_mask >> i) & 1;
    size_t n = (size_t)h.n_test, ns = u->n_cand * u->n_inner;
    size_t nrob = (size_t)h.n_rob * n * (size_t)k;
    size_t total = sizeof h + h.err_len + 3 * n * sizeof(int32_t) + n * (size_t)k * sizeof(float) + nrob * sizeof(float) +
                   nh * (size_t)h.n_hist * sizeof(float) + ns * sizeof(double) + h.cand_len;
    unsigned char *b = malloc(total), *p = b;
    if (!b) return NULL;
    memcpy(p, &h, sizeof h); p += sizeof h;
    if (h.err_len) { memcpy(p, u->error, h.err_len); p += h.err_len; }
    if (n) {
        memcpy(p, u->test_index, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(p, u->y_true, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(p, u->y_pred, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(p, u->proba, n * (size_t)k * sizeof(float)); p += n * (size_t)k * sizeof(float);
        if (nrob) { memcpy(p, u->rob_proba, nrob * sizeof(float)); p += nrob * sizeof(float); }
    }
    for (int i = 0; i < 4; i++)
        if ((h.hist_mask >> i) & 1) { memcpy(p, u->hist[i], h.n_hist * sizeof(float)); p += h.n_hist * sizeof(float); }
    if (ns) { memcpy(p, u->scores, ns * sizeof(double)); p += ns * sizeof(double); }
    for (size_t c = 0; c < u->n_cand; c++) { size_t l = strlen(u->cand[c]) + 1; memcpy(p, u->cand[c], l); p += l; }
    *len = total;
    return b;
}

static int unpack_search(const unit_wire *h, const unsigned char *p, const unsigned char *end, mm_unit *u)
{
    size_t ns = (size_t)(h->n_cand * h->n_inner);
    if (h->chosen < -1 || (h->n_cand && h->chosen >= (int32_t)h->n_cand)) return -1;
    u->n_cand = (size_t)h->n_cand, u->n_inner = (size_t)h->n_inner, u->chosen = h->chosen;
    if (!u->n_cand) return 0;
    u->scores = malloc((ns + 1) * sizeof(double));
    u->cand = calloc(u->n_cand, sizeof *u->cand);
    if (!u->scores || !u->cand) return -1;
    memcpy(u->scores, p, ns * sizeof(double)); p += ns * sizeof(double);
    for (size_t c = 0; c < u->n_cand; c++) {
        const unsigned char *z = memchr(p, 0, (size_t)(end - p));
        if (!z || !(u->cand[c] = strdup((const char *)p))) return -1;
        p = z + 1;
    }
    return p == end ? 0 : -1;
}

int mm_unit_unpack(const unsigned char *b, size_t len, int k, mm_unit *u)
{
    unit_wire h;
    memset(u, 0, sizeof *u);
    u->chosen = -1;
    if (len < sizeof h) return -1;
    memcpy(&h, b, sizeof h);
    const unsigned char *p = b + sizeof h, *end = b + len;
    if (h.k != k || h.hist_mask > 15 || h.n_test > len || h.n_hist > len || h.err_len > len || h.n_cand > len ||
        h.n_inner > len || h.cand_len > len || (h.n_cand && h.n_inner > len / h.n_cand) || h.n_rob > len ||
        (h.n_rob && h.n_test && h.n_rob * h.n_test > len / (size_t)(k > 0 ? k : 1)))
        return -1;
    size_t nh = 0;
    for (int i = 0; i < 4; i++) nh += (h.hist_mask >> i) & 1;
    size_t n = (size_t)h.n_test;
    size_t nrob = h.failed ? 0 : (size_t)h.n_rob * n * (size_t)k;
    size_t need = h.err_len + 3 * n * sizeof(int32_t) + n * (size_t)k * sizeof(float) + nrob * sizeof(float) + nh * (size_t)h.n_hist * sizeof(float) +
                  (size_t)(h.n_cand * h.n_inner) * sizeof(double) + (size_t)h.cand_len;
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
        if (!u->test_index || !u->y_true || !u->y_pred || !u->proba) { mm_unit_clear(u); return -1; }
        memcpy(u->test_index, p, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(u->y_true, p, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(u->y_pred, p, n * sizeof(int32_t)); p += n * sizeof(int32_t);
        memcpy(u->proba, p, n * (size_t)k * sizeof(float)); p += n * (size_t)k * sizeof(float);
        if (nrob) {
            if (!(u->rob_proba = malloc(nrob * sizeof(float)))) { mm_unit_clear(u); return -1; }
            memcpy(u->rob_proba, p, nrob * sizeof(float)); p += nrob * sizeof(float);
            u->n_rob = (size_t)h.n_rob;
        }
        u->n_hist = (size_t)h.n_hist;
        for (int i = 0; i < 4; i++)
            if ((h.hist_mask >> i) & 1) {
                u->hist[i] = malloc((h.n_hist + 1) * sizeof(float));
                if (!u->hist[i]) { mm_unit_clear(u); return -1; }
                memcpy(u->hist[i], p, h.n_hist * sizeof(float));
                p += h.n_hist * sizeof(float);
            }
    }
    if (unpack_search(&h, p, end, u)) { mm_unit_clear(u); return -1; }
    u->done = 1;
    return 0;
}
