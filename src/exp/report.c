/* report.c — results.h5, summary.md, summary.json; see report.h.
 * Metrics and curves come from src/eval (scikit-learn's definitions). */
#include "exp/report.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include "eval/curves.h"
#include "eval/metrics.h"
#include "io/h5.h"
#include "learn/learner.h"

int mm_report_tsne_opts_from_cfg(const mm_cfg *map, mm_report_tsne_opts *o, mm_err *err)
{
    o->enabled = 1;
    o->perplexity = 30;
    o->max_points = 3000;
    o->n_iter = 1000;
    if (map && map->type == MM_CFG_SCALAR) {
        mm_cfg tmp = {.type = MM_CFG_MAP};
        (void)tmp;
        const char *v = map->value;
        if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) { o->enabled = 0; return 0; }
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) return 0;
        char w[600];
        return mm_err_set(err, MM_EINVAL, "%s: key 'tsne': expected true, false or a map", mm_cfg_where(map, w, sizeof w));
    }
    static const char *const keys[] = {"enabled", "perplexity", "max_points", "n_iter", NULL};
    int rc = mm_cfg_check_keys(map, "tsne", keys, err);
    if (!rc) rc = mm_cfg_get_bool(map, "enabled", 1, &o->enabled, err);
    if (!rc) rc = mm_cfg_get_double(map, "perplexity", 30, 1, 1000, &o->perplexity, err);
    if (!rc) rc = mm_cfg_get_int(map, "max_points", 3000, 10, 1000000, &o->max_points, err);
    if (!rc) rc = mm_cfg_get_int(map, "n_iter", 1000, 250, 100000, &o->n_iter, err);
    return rc;
}

enum { M_ACC, M_BACC, M_P, M_R, M_F1, M_FIT, M_PRED, M_N };
static const char *const m_names[M_N] = {"accuracy", "balanced_accuracy", "macro_precision",
                                         "macro_recall", "macro_f1", "fit_seconds", "predict_seconds"};

typedef struct model_summary {
    int failed;               /* every round failed */
    const char *error;
    double mean[M_N], std[M_N];
    double *per_round;        /* (M_N, R) */
    mm_metrics *pooled;       /* metrics of the pooled first-repeat predictions */
    mm_roc *roc;              /* (k) */
    mm_pr *pr;                /* (k) */
    double macro_auc;
    size_t n_pooled;
    /* robustness (in->n_rob corruptions; NULL when a round lacks them) */
    double *rob_round;        /* (n_rob, R_N, R) per round */
    double *rob_mean, *rob_std;   /* (n_rob, R_N) */
    double corruption_acc;    /* mean over corruptions of the mean accuracy */
} model_summary;

enum { R_ACC, R_BACC, R_F1, R_N };
static const char *const r_names[R_N] = {"accuracy", "balanced_accuracy", "macro_f1"};

/* Robustness metrics of model m: each round's corrupted test predictions scored. */
static int rob_summarise(const mm_report_input *in, size_t m, model_summary *ms, mm_err *err)
{
    size_t R = in->split->n_rounds, C = in->n_rob;
    int k = in->table->n_classes;
    if (!C || ms->failed) return 0;
    for (size_t r = 0; r < R; r++) {
        const mm_report_unit *u = &in->units[m * R + r];
        if (u->failed || !u->rob_proba) return 0;
    }
    ms->rob_round = calloc(C * R_N * R + 1, sizeof *ms->rob_round);
    ms->rob_mean = calloc(C * R_N + 1, sizeof *ms->rob_mean);
    ms->rob_std = calloc(C * R_N + 1, sizeof *ms->rob_std);
    if (!ms->rob_round || !ms->rob_mean || !ms->rob_std) return mm_err_set(err, MM_ENOMEM, "out of memory");
    ms->corruption_acc = 0;
    for (size_t c = 0; c < C; c++) {
        for (size_t r = 0; r < R; r++) {
            const mm_report_unit *u = &in->units[m * R + r];
            int32_t *yp = malloc((u->n_test + 1) * sizeof *yp), *yt = malloc((u->n_test + 1) * sizeof *yt);
            if (!yp || !yt) { free(yp); free(yt); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
            mm_proba_argmax(u->rob_proba + c * u->n_test * (size_t)k, u->n_test, k, yp);
            size_t ns = 0;   /* the scored rows: those corrupted */
            for (size_t i = 0; i < u->n_test; i++)
                if (!in->rob_mask || in->rob_mask[u->test_index[i]]) { yt[ns] = u->y_true[i]; yp[ns++] = yp[i]; }
            mm_metrics *mt = NULL;
            int rc = ns ? mm_metrics_compute(yt, yp, ns, k, &mt, err)
                        : mm_err_set(err, MM_EINVAL, "robustness: round %zu has no corrupted test clip (use a smaller 'every')", r + 1);
            free(yp);
            free(yt);
            if (rc) return rc;
            double v[R_N] = {mt->accuracy, mt->balanced_accuracy, mt->macro_f1};
            for (int q = 0; q < R_N; q++) ms->rob_round[(c * R_N + q) * R + r] = v[q];
            mm_metrics_free(mt);
        }
        for (int q = 0; q < R_N; q++) {
            const double *x = ms->rob_round + (c * R_N + q) * R;
            double mean = 0, var = 0;
            for (size_t r = 0; r < R; r++) mean += x[r];
            mean /= (double)R;
            for (size_t r = 0; r < R; r++) var += (x[r] - mean) * (x[r] - mean);
            ms->rob_mean[c * R_N + q] = mean;
            ms->rob_std[c * R_N + q] = sqrt(var / (double)R);
        }
        ms->corruption_acc += ms->rob_mean[c * R_N + R_ACC] / (double)C;
    }
    return 0;
}

/* /robustness/<corruption>/<model>/<metric> (per round, attrs mean and std) and
 * /robustness/corruption_accuracy (one per model, NaN when the model has none). */
static int write_rob_h5(hid_t f, const mm_report_input *in, const model_summary *ms, mm_err *err)
{
    size_t R = in->split->n_rounds;
    hsize_t hr = R, nm = in->n_models;
    int rc = mm_h5_write_strings(f, "robustness/corruptions", in->rob_names, in->n_rob, err);
    double *ca = malloc((in->n_models + 1) * sizeof *ca);
    if (!ca) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t m = 0; m < in->n_models; m++) ca[m] = ms[m].rob_mean ? ms[m].corruption_acc : NAN;
    if (!rc) rc = mm_h5_write_strings(f, "robustness/models", in->model_names, in->n_models, err);
    if (!rc) rc = mm_h5_write_f64(f, "robustness/corruption_accuracy", ca, 1, &nm, err);
    free(ca);
    for (size_t c = 0; c < in->n_rob && !rc; c++)
        for (size_t m = 0; m < in->n_models && !rc; m++) {
            if (!ms[m].rob_mean) continue;
            for (int q = 0; q < R_N && !rc; q++) {
                char p[512];
                snprintf(p, sizeof p, "robustness/%s/%s/%s", in->rob_names[c], in->model_names[m], r_names[q]);
                rc = mm_h5_write_f64(f, p, ms[m].rob_round + (c * R_N + q) * R, 1, &hr, err);
                if (!rc) {
                    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
                    if (d < 0) rc = mm_err_set(err, MM_EIO, "%s: cannot open", p);
                    else {
                        rc = mm_h5_attr_set_f64(d, "mean", ms[m].rob_mean[c * R_N + q], err);
                        if (!rc) rc = mm_h5_attr_set_f64(d, "std", ms[m].rob_std[c * R_N + q], err);
                        H5Dclose(d);
                    }
                }
            }
        }
    return rc;
}

/* Pool the first repeat's rounds of one model into sample order. */
static int pool_first_repeat(const mm_report_input *in, size_t m, int32_t **yt, int32_t **yp,
                             float **pr, size_t *n_out)
{
    const mm_split *s = in->split;
    int k = in->table->n_classes;
    size_t n = 0;
    for (size_t f = 0; f < s->n_folds; f++) {
        const mm_report_unit *u = &in->units[m * s->n_rounds + f];
        if (u->failed) return -1;
        n += u->n_test;
    }
    *yt = malloc((n + 1) * sizeof **yt);
    *yp = malloc((n + 1) * sizeof **yp);
    *pr = malloc((n + 1) * (size_t)k * sizeof **pr);
    if (!*yt || !*yp || !*pr) return -1;
    size_t j = 0;
    for (size_t f = 0; f < s->n_folds; f++) {
        const mm_report_unit *u = &in->units[m * s->n_rounds + f];
        memcpy(*yt + j, u->y_true, u->n_test * sizeof **yt);
        memcpy(*yp + j, u->y_pred, u->n_test * sizeof **yp);
        memcpy(*pr + j * (size_t)k, u->proba, u->n_test * (size_t)k * sizeof **pr);
        j += u->n_test;
    }
    *n_out = n;
    return 0;
}

static int summarise(const mm_report_input *in, size_t m, model_summary *ms, mm_err *err)
{
    size_t R = in->split->n_rounds;
    int k = in->table->n_classes;
    ms->per_round = malloc(M_N * R * sizeof *ms->per_round);
    if (!ms->per_round) return mm_err_set(err, MM_ENOMEM, "out of memory");
    size_t ok = 0;
    for (size_t r = 0; r < R; r++) {
        const mm_report_unit *u = &in->units[m * R + r];
        for (int q = 0; q < M_N; q++) ms->per_round[q * R + r] = NAN;
        if (u->failed) { ms->error = u->error; continue; }
        mm_metrics *mt = NULL;
        int rc = mm_metrics_compute(u->y_true, u->y_pred, u->n_test, k, &mt, err);
        if (rc) return rc;
        ms->per_round[M_ACC * R + r] = mt->accuracy;
        ms->per_round[M_BACC * R + r] = mt->balanced_accuracy;
        ms->per_round[M_P * R + r] = mt->macro_precision;
        ms->per_round[M_R * R + r] = mt->macro_recall;
        ms->per_round[M_F1 * R + r] = mt->macro_f1;
        ms->per_round[M_FIT * R + r] = u->fit_s;
        ms->per_round[M_PRED * R + r] = u->predict_s;
        mm_metrics_free(mt);
        ok++;
    }
    ms->failed = ok == 0;
    for (int q = 0; q < M_N; q++) mm_metrics_mean_std(ms->per_round + q * R, R, 1, &ms->mean[q], &ms->std[q]);
    int32_t *yt = NULL, *yp = NULL;
    float *pr = NULL;
    size_t n = 0;
    ms->macro_auc = NAN;
    if (!ms->failed && pool_first_repeat(in, m, &yt, &yp, &pr, &n) == 0) {
        ms->n_pooled = n;
        int rc = mm_metrics_compute(yt, yp, n, k, &ms->pooled, err);
        ms->roc = calloc((size_t)k, sizeof *ms->roc);
        ms->pr = calloc((size_t)k, sizeof *ms->pr);
        if (!rc && ms->roc && ms->pr) rc = mm_curves_ovr(yt, pr, n, k, ms->roc, ms->pr, &ms->macro_auc, err);
        free(yt); free(yp); free(pr);
        if (rc) return rc;
    } else {
        free(yt); free(yp); free(pr);
    }
    return 0;
}

static void summary_free(model_summary *ms, int k)
{
    free(ms->per_round);
    mm_metrics_free(ms->pooled);
    for (int c = 0; ms->roc && c < k; c++) mm_roc_clear(&ms->roc[c]);
    for (int c = 0; ms->pr && c < k; c++) mm_pr_clear(&ms->pr[c]);
    free(ms->roc);
    free(ms->pr);
    free(ms->rob_round);
    free(ms->rob_mean);
    free(ms->rob_std);
}

static const char *protocol_text(const mm_report_input *in, char *buf, size_t size)
{
    const mm_split *s = in->split;
    snprintf(buf, size, "%zu fold%s × %zu repeat%s (%zu rounds)%s%s", s->n_folds, s->n_folds == 1 ? "" : "s",
             s->n_repeats, s->n_repeats == 1 ? "" : "s", s->n_rounds,
             in->leakage_allowed ? "; GROUP LEAKAGE ALLOWED: a group is in both training and test data" : "",
             in->group_norm ? "; features normalised per group from its own unlabelled clips" : "");
    return buf;
}

static const char *protocol_kind(const mm_cfg *cfg)
{
    const mm_cfg *k = mm_cfg_find(cfg, "protocol.kind");
    return k && k->value ? k->value : "stratified_kfold";
}

/* ---- results.h5 ---- */

/* /models/<name>/search/<r>/{candidates, scores, chosen}. */
static int write_search(hid_t f, const char *base, size_t r, const mm_report_unit *u, mm_err *err)
{
    char p[700];
    hsize_t d2[2] = {u->n_cand, u->n_inner}, one = 1;
    snprintf(p, sizeof p, "%s/search/%zu/candidates", base, r);
    int rc = mm_h5_write_strings(f, p, u->cand, u->n_cand, err);
    snprintf(p, sizeof p, "%s/search/%zu/scores", base, r);
    if (!rc) rc = mm_h5_write_f64(f, p, u->scores, 2, d2, err);
    snprintf(p, sizeof p, "%s/search/%zu/chosen", base, r);
    if (!rc) rc = mm_h5_write_i32(f, p, &u->chosen, 1, &one, err);
    return rc;
}

/* "group k-fold" for "group_kfold", and so on. */
static const char *inner_words(const char *kind)
{
    static const char *const map[][2] = {{"group_kfold", "group k-fold"}, {"stratified_group_kfold", "stratified group k-fold"},
                                         {"stratified_kfold", "stratified k-fold"}, {"logo", "leave-one-group-out"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (kind && !strcmp(kind, map[i][0])) return map[i][1];
    return kind ? kind : "?";
}

/* /models/<name>/...: folds, search, metrics, pooled report and curves of model m. */
static int write_model_h5(hid_t f, const mm_report_input *in, const model_summary *ms, size_t m, mm_err *err)
{
    const mm_table *t = in->table;
    int k = t->n_classes, rc = 0;
    size_t R = in->split->n_rounds;
    char base[512], p[700];
    snprintf(base, sizeof base, "models/%s", in->model_names[m]);
    for (size_t r = 0; r < R && !rc; r++) {
        const mm_report_unit *u = &in->units[m * R + r];
        snprintf(p, sizeof p, "%s/folds/%zu", base, r);
        hid_t g = mm_h5_group(f, p, err);
        if (g < 0) { rc = err->code; break; }
        if (u->failed) {
            rc = mm_h5_attr_set_str(g, "error", u->error ? u->error : "failed", err);
        } else {
            hsize_t nt = u->n_test, d2[2] = {u->n_test, (hsize_t)k};
            rc = mm_h5_write_i32(g, "test_index", u->test_index, 1, &nt, err);
            if (!rc) rc = mm_h5_write_i32(g, "y_true", u->y_true, 1, &nt, err);
            if (!rc) rc = mm_h5_write_i32(g, "y_pred", u->y_pred, 1, &nt, err);
            if (!rc) rc = mm_h5_write_f32(g, "proba", u->proba, 2, d2, err);
            if (!rc) rc = mm_h5_attr_set_f64(g, "fit_seconds", u->fit_s, err);
            if (!rc) rc = mm_h5_attr_set_f64(g, "predict_seconds", u->predict_s, err);
            static const char *const hn_[4] = {"train_loss", "train_acc", "val_loss", "val_acc"};
            for (int q = 0; q < 4 && !rc; q++)
                if (u->hist[q] && u->n_hist) {
                    hsize_t nh = u->n_hist;
                    snprintf(p, sizeof p, "%s/history/%zu/%s", base, r, hn_[q]);
                    rc = mm_h5_write_f32(f, p, u->hist[q], 1, &nh, err);
                }
        }
        H5Gclose(g);
        if (!rc && u->n_cand) rc = write_search(f, base, r, u, err);
    }
    const model_summary *x = &ms[m];
    for (int q = 0; q < M_N && !rc; q++) {
        hsize_t hr = R;
        snprintf(p, sizeof p, "%s/metrics/%s", base, m_names[q]);
        rc = mm_h5_write_f64(f, p, x->per_round + q * R, 1, &hr, err);
        if (!rc) {
            hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
            mm_h5_attr_set_f64(d, "mean", x->mean[q], err);
            mm_h5_attr_set_f64(d, "std", x->std[q], err);
            H5Dclose(d);
        }
    }
    if (!rc && x->error) {
        hid_t g = mm_h5_group(f, base, err);
        if (g >= 0) { rc = mm_h5_attr_set_str(g, "error", x->error, err); H5Gclose(g); }
    }
    if (!rc && x->pooled) {
        hsize_t kk[2] = {(hsize_t)k, (hsize_t)k};
        snprintf(p, sizeof p, "%s/metrics/confusion", base);
        rc = mm_h5_write_i64(f, p, x->pooled->confusion, 2, kk, err);
        snprintf(p, sizeof p, "%s/metrics/per_class_precision", base);
        if (!rc) rc = mm_h5_write_f64(f, p, x->pooled->precision, 1, kk, err);
        snprintf(p, sizeof p, "%s/metrics/per_class_recall", base);
        if (!rc) rc = mm_h5_write_f64(f, p, x->pooled->recall, 1, kk, err);
        snprintf(p, sizeof p, "%s/metrics/per_class_f1", base);
        if (!rc) rc = mm_h5_write_f64(f, p, x->pooled->f1, 1, kk, err);
        snprintf(p, sizeof p, "%s/metrics/per_class_support", base);
        if (!rc) rc = mm_h5_write_i64(f, p, x->pooled->support, 1, kk, err);
    }
    for (int c = 0; x->roc && c < k && !rc; c++) {
        hsize_t nr = x->roc[c].n, np_ = x->pr[c].n;
        snprintf(p, sizeof p, "%s/roc/%s/fpr", base, t->label_names[c]);
        rc = mm_h5_write_f64(f, p, x->roc[c].fpr, 1, &nr, err);
        snprintf(p, sizeof p, "%s/roc/%s/tpr", base, t->label_names[c]);
        if (!rc) rc = mm_h5_write_f64(f, p, x->roc[c].tpr, 1, &nr, err);
        snprintf(p, sizeof p, "%s/roc/%s", base, t->label_names[c]);
        if (!rc) { hid_t g = mm_h5_open_group(f, p, err); if (g >= 0) { rc = mm_h5_attr_set_f64(g, "auc", x->roc[c].auc, err); H5Gclose(g); } }
        snprintf(p, sizeof p, "%s/pr/%s/precision", base, t->label_names[c]);
        if (!rc) rc = mm_h5_write_f64(f, p, x->pr[c].precision, 1, &np_, err);
        snprintf(p, sizeof p, "%s/pr/%s/recall", base, t->label_names[c]);
        if (!rc) rc = mm_h5_write_f64(f, p, x->pr[c].recall, 1, &np_, err);
        snprintf(p, sizeof p, "%s/pr/%s", base, t->label_names[c]);
        if (!rc) { hid_t g = mm_h5_open_group(f, p, err); if (g >= 0) { rc = mm_h5_attr_set_f64(g, "ap", x->pr[c].ap, err); H5Gclose(g); } }
    }
    return rc;
}

static int write_h5(const mm_report_input *in, const model_summary *ms, const char *path,
                    const float *tsne_xy, const int32_t *tsne_lab, const int32_t *tsne_idx, size_t tsne_n,
                    double tsne_kl, mm_err *err)
{
    mm_h5_out o;
    int rc = mm_h5_create(path, &o, err);
    if (rc) return rc;
    hid_t f = o.file;
    const mm_table *t = in->table;
    const mm_split *s = in->split;
    int k = t->n_classes;
    size_t R = s->n_rounds;
    rc = mm_h5_stamp_format(f, "melodic-results", 1, err);
    if (!rc) rc = mm_h5_write_text(f, "config", in->config_yaml, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "name", in->name, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "group_leakage_allowed", in->leakage_allowed, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "group_norm", in->group_norm, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "group_norm_clips", (int64_t)in->group_norm_clips, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "domain_norm", in->domain_norm, err);
    if (!rc && in->cross_note) rc = mm_h5_attr_set_str(f, "cross_corpus", in->cross_note, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "augment_copies", (int64_t)in->n_augment, err);
    if (!rc) rc = mm_h5_write_strings(f, "dataset/label_names", (const char *const *)t->label_names, (size_t)k, err);
    int64_t *counts = calloc((size_t)k, sizeof *counts);
    for (size_t i = 0; counts && i < t->n; i++) counts[t->labels[i]]++;
    hsize_t hk = (hsize_t)k, hn = t->n;
    if (!rc) rc = counts ? mm_h5_write_i64(f, "dataset/counts", counts, 1, &hk, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
    free(counts);
    if (!rc) rc = mm_h5_write_strings(f, "dataset/paths", (const char *const *)t->paths, t->n, err);
    if (!rc) rc = mm_h5_write_i32(f, "dataset/labels", t->labels, 1, &hn, err);
    if (!rc) rc = mm_h5_write_i32(f, "dataset/groups", t->groups, 1, &hn, err);
    /* fold_of_sample: the test fold of each sample in the first repeat (-1 never tested) */
    int32_t *fold = malloc((t->n + 1) * sizeof *fold);
    if (!fold) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < t->n; i++) {
        fold[i] = -1;
        for (size_t r = 0; r < s->n_folds; r++) if (s->role[r * s->n + i] == MM_ROLE_TEST) fold[i] = (int32_t)r;
    }
    if (!rc) rc = mm_h5_write_i32(f, "protocol/fold_of_sample", fold, 1, &hn, err);
    free(fold);
    hsize_t rd[2] = {R, t->n};
    if (!rc) rc = mm_h5_write_u8(f, "protocol/roles", s->role, R * t->n, err);
    if (!rc) {
        hid_t g = mm_h5_open_group(f, "protocol", err);
        rc = g < 0 ? err->code : 0;
        if (!rc) {
            rc = mm_h5_attr_set_i64(g, "n_folds", (int64_t)s->n_folds, err);
            if (!rc) rc = mm_h5_attr_set_i64(g, "n_repeats", (int64_t)s->n_repeats, err);
            if (!rc) rc = mm_h5_attr_set_str(g, "roles", "(n_rounds x n) flattened: 0 unused, 1 train, 2 validation, 3 test", err);
            H5Gclose(g);
        }
    }
    (void)rd;
    for (size_t m = 0; m < in->n_models && !rc; m++) rc = write_model_h5(f, in, ms, m, err);
    if (!rc && in->n_rob) rc = write_rob_h5(f, in, ms, err);
    if (!rc && tsne_xy) {
        hsize_t d2[2] = {tsne_n, 2}, n1 = tsne_n;
        rc = mm_h5_write_f32(f, "tsne/xy", tsne_xy, 2, d2, err);
        if (!rc) rc = mm_h5_write_i32(f, "tsne/labels", tsne_lab, 1, &n1, err);
        if (!rc) rc = mm_h5_write_i32(f, "tsne/index", tsne_idx, 1, &n1, err);
        if (!rc) { hid_t g = mm_h5_open_group(f, "tsne", err); if (g >= 0) { rc = mm_h5_attr_set_f64(g, "kl_divergence", tsne_kl, err); H5Gclose(g); } }
    }
    if (rc) { mm_h5_abort(&o); return rc; }
    return mm_h5_commit(&o, err);
}

/* ---- summaries ---- */

static int write_text_atomic(const char *path, const char *text, mm_err *err)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return mm_err_set(err, MM_EIO, "%s: cannot write", tmp);
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) { unlink(tmp); return mm_err_set(err, MM_EIO, "%s: cannot write", path); }
    return 0;
}

typedef struct { char *s; size_t n, cap; } sb;

static void sbf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbf(sb *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (need < 0) return;
        if (b->s && b->n + (size_t)need < b->cap) { b->n += (size_t)need; return; }
        size_t nc = (b->cap + (size_t)need + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (!ns) return;
        b->s = ns;
        b->cap = nc;
        b->s[b->n] = 0;
    }
}

static void json_str(sb *b, const char *s)
{
    sbf(b, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sbf(b, "\\%c", c);
        else if (c < 0x20) sbf(b, "\\u%04x", c);
        else sbf(b, "%c", c);
    }
    sbf(b, "\"");
}

/* The search paragraph of summary.md: the chosen values per model and round. */
static void search_md(sb *md, const mm_report_input *in)
{
    size_t R = in->split->n_rounds;
    sbf(md, "\n**Search**: hyperparameters by nested %s (%zu inner folds of each outer training part, by %s; metric %s; "
             "the best mean inner score, refitted on the training part, tested on the outer fold the search never saw). Chosen per round:\n\n",
        inner_words(in->search_inner), in->search_folds, in->table->group_by ? in->table->group_by : "group", in->search_metric);
    for (size_t m = 0; m < in->n_models; m++) {
        int any = 0;
        for (size_t r = 0; r < R; r++) any |= in->units[m * R + r].n_cand > 0;
        if (!any) continue;
        sbf(md, "- %s:", in->model_names[m]);
        for (size_t r = 0; r < R; r++) {
            const mm_report_unit *u = &in->units[m * R + r];
            sbf(md, "%s round %zu %s", r ? ";" : "", r + 1, u->chosen >= 0 && (size_t)u->chosen < u->n_cand ? u->cand[u->chosen] : "none");
        }
        sbf(md, "\n");
    }
}

static void json_num(sb *b, double v)
{
    if (isfinite(v)) sbf(b, "%.6g", v);
    else sbf(b, "null");
}

/* timing.json: the run's date and each model's fit/predict seconds (mean and
 * std over rounds) — everything of a run that is not reproducible, kept out
 * of summary.json/md so that rerunning a committed experiment changes only
 * this file. */
static int write_timing(const mm_report_input *in, const model_summary *ms, const char *dir, const char *date,
                        mm_err *err)
{
    sb js = {0};
    sbf(&js, "{\n  \"name\": ");
    json_str(&js, in->name);
    sbf(&js, ",\n  \"date\": ");
    json_str(&js, date);
    sbf(&js, ",\n  \"models\": {\n");
    for (size_t m = 0; m < in->n_models; m++) {
        sbf(&js, "    ");
        json_str(&js, in->model_names[m]);
        sbf(&js, ": {");
        if (!ms[m].failed)
            for (int q = M_FIT; q < M_N; q++) {
                sbf(&js, "%s\"%s\": {\"mean\": ", q > M_FIT ? ", " : "", m_names[q]);
                json_num(&js, ms[m].mean[q]);
                sbf(&js, ", \"std\": ");
                json_num(&js, ms[m].std[q]);
                sbf(&js, "}");
            }
        sbf(&js, "}%s\n", m + 1 < in->n_models ? "," : "");
    }
    sbf(&js, "  }\n}\n");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/timing.json", dir);
    int rc = js.s ? write_text_atomic(path, js.s, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
    free(js.s);
    return rc;
}


/* The copy-leakage note of summary.md, right under its title: LEAKY in bold
 * when test rows have a copy of their source clip in training. */
static void copies_md(sb *md, const mm_report_input *in)
{
    if (!in->copies_report) return;
    if (in->copy_leaky_rows)
        sbf(md, "**LEAKY: %zu of %zu test rows have a copy of their source clip in training** "
                "(%zu of %zu source clips have rows in both training and test data; allow_copy_leakage: true). ",
            in->copy_leaky_rows, in->copy_test_rows, in->copy_shared, in->copy_sources);
    if (in->copies_per_clip)
        sbf(md, "augment_before_split entered each of the %zu clips as %zu rows (itself; %s) before the split%s\n\n",
            in->copy_clips, 1 + in->copies_per_clip, in->copies_text ? in->copies_text : "perturbed copies",
            in->copy_leaky_rows ? ", so these scores measure recognising perturbed recordings the model was trained on, not new recordings."
                                : "; the protocol kept every clip's rows on one side (no test row has a copy in training).");
    else if (in->copy_leaky_rows)
        sbf(md, "Rows with the same path are copies of one recording; these scores measure recognising recordings the model was trained on.\n\n");
}

/* "copy_leakage" of summary.json (a line of the top-level object). */
static void copies_json(sb *js, const mm_report_input *in)
{
    if (!in->copies_report) return;
    sbf(js, "  \"copy_leakage\": {\"leaky\": %s, \"leaky_test_rows\": %zu, \"test_rows\": %zu, \"shared_source_clips\": %zu, "
            "\"source_clips\": %zu, \"copies_per_clip\": %zu, \"before_split\": ",
        in->copy_leaky_rows ? "true" : "false", in->copy_leaky_rows, in->copy_test_rows, in->copy_shared, in->copy_sources,
        in->copies_per_clip);
    if (in->copies_per_clip) json_str(js, in->copies_text ? in->copies_text : "");
    else sbf(js, "null");
    sbf(js, "},\n");
}

/* summary.md (malloc'd; NULL when out of memory). */
static char *summary_md(const mm_report_input *in, const model_summary *ms, const char *kind, const char *proto,
                        size_t tn, double tkl)
{
    const mm_table *t = in->table;
    int k = t->n_classes;
    sb md = {0};
    sbf(&md, "# %s\n\n", in->name);
    copies_md(&md, in);
    sbf(&md, "- dataset: %zu samples, %d classes (", t->n, k);
    for (int c = 0; c < k; c++) sbf(&md, "%s%s", c ? ", " : "", t->label_names[c]);
    sbf(&md, "), %zu features (%s)\n", t->d, t->feature_set ? t->feature_set : "table");
    sbf(&md, "- protocol: %s, %s%s%s\n", kind, proto, t->group_by ? "; groups: " : "", t->group_by ? t->group_by : "");
    sbf(&md, "- config: %s; seed %llu\n\n", in->config_path ? in->config_path : "-", (unsigned long long)in->seed);
    sbf(&md, "| Model | Precision | Recall | F1 | Accuracy | Balanced acc. | Macro AUC |\n");
    sbf(&md, "|---|---|---|---|---|---|---|\n");
    for (size_t m = 0; m < in->n_models; m++) {
        const model_summary *x = &ms[m];
        if (x->failed) {
            sbf(&md, "| %s | failed: %s | | | | | |\n", in->model_names[m], x->error ? x->error : "?");
            continue;
        }
        sbf(&md, "| %s | %.1f ± %.1f | %.1f ± %.1f | %.1f ± %.1f | %.1f ± %.1f | %.1f ± %.1f | %.3f |\n",
            in->model_names[m], 100 * x->mean[M_P], 100 * x->std[M_P], 100 * x->mean[M_R], 100 * x->std[M_R],
            100 * x->mean[M_F1], 100 * x->std[M_F1], 100 * x->mean[M_ACC], 100 * x->std[M_ACC],
            100 * x->mean[M_BACC], 100 * x->std[M_BACC], x->macro_auc);
    }
    sbf(&md, "\nPrecision, recall and F1 are macro averages in %%, mean ± std (ddof 0) over the %zu rounds; "
             "AUC is the one-vs-rest macro AUC of the pooled first-repeat predictions. "
             "Run date and fit/predict times: timing.json (kept apart so a rerun changes only that file).\n",
        in->split->n_rounds);
    for (size_t m = 0; m < in->n_models; m++)
        if (ms[m].error && !ms[m].failed) sbf(&md, "\nNote: %s failed in some rounds: %s\n", in->model_names[m], ms[m].error);
    if (in->search_metric) search_md(&md, in);
    if (in->leakage_allowed)
        sbf(&md, "\n**Group leakage allowed**: the same %s appears in training and test data, so these scores overstate performance on new %ss.\n",
            t->group_by ? t->group_by : "group", t->group_by ? t->group_by : "group");
    if (in->group_norm) {
        const char *g = t->group_by ? t->group_by : "group";
        char k_txt[64] = "all of its own clips";
        if (in->group_norm_clips) snprintf(k_txt, sizeof k_txt, "%zu other clips of its own", in->group_norm_clips);
        sbf(&md, "\n**Per-%s normalisation** (group_norm): every clip's features were standardised with the statistics of %s %s (labels unused), "
                 "test %ss included: these scores assume unlabelled recordings of each new %s (calibration), which a model without it does not need.\n",
            g, k_txt, g, g, g);
    }
    if (in->cross_note) sbf(&md, "%s", in->cross_note);
    if (in->n_augment) {
        size_t ns = in->n_augment_speed;
        sbf(&md, "\n**Augmentation**: each round's training clips also entered training");
        if (ns) {
            sbf(&md, " speed-perturbed (speed");
            for (size_t k = 0; k < ns; k++) sbf(&md, "%s %g", k ? "," : "", in->augment_speed[k]);
            sbf(&md, ")");
        }
        if (in->n_augment > ns) {
            sbf(&md, "%s corrupted, one copy each (", ns ? " and" : "");
            for (size_t k = ns; k < in->n_augment; k++) sbf(&md, "%s%s", k > ns ? ", " : "", in->augment_names[k - ns]);
            sbf(&md, "; values drawn per clip, seeded)");
        }
        sbf(&md, "; validation and test clips are never perturbed.\n");
    }
    if (in->n_rob) {
        size_t R = in->split->n_rounds;
        sbf(&md, "\n## Robustness\n\nAccuracy in %% (mean over the %zu rounds) of each round's model on its test clips corrupted "
                 "(seeds and noise sources apart from training: babble from speakers on the test side, odd-numbered music files); "
                 "the corruption accuracy is the mean over the corruptions.\n\n| Corruption |", R);
        for (size_t m = 0; m < in->n_models; m++) sbf(&md, " %s |", in->model_names[m]);
        sbf(&md, "\n|---|");
        for (size_t m = 0; m < in->n_models; m++) sbf(&md, "---|");
        sbf(&md, "\n| clean |");
        for (size_t m = 0; m < in->n_models; m++) {
            if (ms[m].failed) sbf(&md, " failed |");
            else sbf(&md, " %.1f |", 100 * ms[m].mean[M_ACC]);
        }
        for (size_t c = 0; c < in->n_rob; c++) {
            sbf(&md, "\n| %s |", in->rob_names[c]);
            for (size_t m = 0; m < in->n_models; m++) {
                if (!ms[m].rob_mean) sbf(&md, " – |");
                else sbf(&md, " %.1f |", 100 * ms[m].rob_mean[c * R_N + R_ACC]);
            }
        }
        sbf(&md, "\n| **corruption accuracy** |");
        for (size_t m = 0; m < in->n_models; m++) {
            if (!ms[m].rob_mean) sbf(&md, " – |");
            else sbf(&md, " **%.1f** |", 100 * ms[m].corruption_acc);
        }
        sbf(&md, "\n");
    }
    if (!isnan(tkl)) sbf(&md, "\nt-SNE of %zu points: final KL divergence %.4f.\n", tn, tkl);
    return md.s;
}

/* The end of summary.json: closes "models", then the robustness section when there is one. */
static void rob_json(sb *b, const mm_report_input *in, const model_summary *ms)
{
    if (!in->n_rob) { sbf(b, "  }\n}\n"); return; }
    sbf(b, "  },\n  \"robustness\": {\"corruptions\": [");
    for (size_t c = 0; c < in->n_rob; c++) { sbf(b, "%s", c ? ", " : ""); json_str(b, in->rob_names[c]); }
    sbf(b, "],\n    \"models\": {");
    int first = 1;
    for (size_t m = 0; m < in->n_models; m++) {
        if (!ms[m].rob_mean) continue;
        sbf(b, "%s\n      ", first ? "" : ",");
        first = 0;
        json_str(b, in->model_names[m]);
        sbf(b, ": {\"clean_accuracy\": ");
        json_num(b, ms[m].mean[M_ACC]);
        sbf(b, ", \"corruption_accuracy\": ");
        json_num(b, ms[m].corruption_acc);
        for (int q = 0; q < R_N; q++) {
            sbf(b, ", \"%s\": {", r_names[q]);
            for (size_t c = 0; c < in->n_rob; c++) {
                sbf(b, "%s", c ? ", " : "");
                json_str(b, in->rob_names[c]);
                sbf(b, ": ");
                json_num(b, ms[m].rob_mean[c * R_N + q]);
            }
            sbf(b, "}");
        }
        sbf(b, "}");
    }
    sbf(b, "\n    }\n  }\n}\n");
}

/* summary.json (malloc'd; NULL when out of memory). */
static char *summary_json(const mm_report_input *in, const model_summary *ms, const char *kind)
{
    const mm_table *t = in->table;
    int k = t->n_classes;
    sb js = {0};
    sbf(&js, "{\n  \"name\": ");
    json_str(&js, in->name);
    sbf(&js, ",\n  \"config\": ");
    json_str(&js, in->config_path ? in->config_path : "");
    sbf(&js, ",\n  \"protocol\": {\"kind\": ");
    json_str(&js, kind);
    sbf(&js, ", \"n_folds\": %zu, \"n_repeats\": %zu, \"group_leakage_allowed\": %s, \"group_norm\": %s, \"group_norm_clips\": %zu},\n",
        in->split->n_folds, in->split->n_repeats, in->leakage_allowed ? "true" : "false",
        in->group_norm ? "true" : "false", in->group_norm_clips);
    if (in->cross_note) sbf(&js, "  \"domain_norm\": %s,\n", in->domain_norm ? "\"per_corpus\"" : "null");
    copies_json(&js, in);
    sbf(&js, "  \"dataset\": {\"n\": %zu, \"n_features\": %zu, \"labels\": [", t->n, t->d);
    for (int c = 0; c < k; c++) { if (c) sbf(&js, ", "); json_str(&js, t->label_names[c]); }
    sbf(&js, "]},\n  \"models\": {\n");
    for (size_t m = 0; m < in->n_models; m++) {
        const model_summary *x = &ms[m];
        sbf(&js, "    ");
        json_str(&js, in->model_names[m]);
        sbf(&js, ": {");
        if (x->failed) { sbf(&js, "\"error\": "); json_str(&js, x->error ? x->error : "failed"); }
        else {
            for (int q = 0; q < M_FIT; q++) {   /* metrics only: times go to timing.json */
                sbf(&js, "%s\"%s\": {\"mean\": ", q ? ", " : "", m_names[q]);
                json_num(&js, x->mean[q]);
                sbf(&js, ", \"std\": ");
                json_num(&js, x->std[q]);
                sbf(&js, "}");
            }
            sbf(&js, ", \"macro_auc\": ");
            json_num(&js, x->macro_auc);
            if (x->roc) {
                sbf(&js, ", \"auc\": {");
                for (int c = 0; c < k; c++) { sbf(&js, "%s", c ? ", " : ""); json_str(&js, t->label_names[c]); sbf(&js, ": "); json_num(&js, x->roc[c].auc); }
                sbf(&js, "}, \"ap\": {");
                for (int c = 0; c < k; c++) { sbf(&js, "%s", c ? ", " : ""); json_str(&js, t->label_names[c]); sbf(&js, ": "); json_num(&js, x->pr[c].ap); }
                sbf(&js, "}");
            }
            size_t R = in->split->n_rounds;
            if (in->units[m * R].n_cand) {
                sbf(&js, ", \"chosen\": [");
                for (size_t r = 0; r < R; r++) {
                    const mm_report_unit *u = &in->units[m * R + r];
                    sbf(&js, "%s", r ? ", " : "");
                    json_str(&js, u->chosen >= 0 && (size_t)u->chosen < u->n_cand ? u->cand[u->chosen] : "none");
                }
                sbf(&js, "]");
            }
        }
        sbf(&js, "}%s\n", m + 1 < in->n_models ? "," : "");
    }
    rob_json(&js, in, ms);
    return js.s;
}

int mm_report_write(const mm_report_input *in, const char *dir, mm_report_show_fn show, void *ctx, mm_err *err)
{
    const mm_table *t = in->table;
    int k = t->n_classes;
    model_summary *ms = calloc(in->n_models, sizeof *ms);
    if (!ms) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t m = 0; m < in->n_models && !rc; m++) rc = summarise(in, m, &ms[m], err);
    for (size_t m = 0; m < in->n_models && !rc; m++) rc = rob_summarise(in, m, &ms[m], err);
    float *txy = NULL;
    int32_t *tlab = NULL, *tidx = NULL;
    size_t tn = 0;
    double tkl = NAN;
    if (!rc && in->tsne && in->tsne->enabled) rc = mm_report_tsne(in, &txy, &tlab, &tidx, &tn, &tkl, err);
    char path[PATH_MAX];
    if (!rc) {
        snprintf(path, sizeof path, "%s/results.h5", dir);
        rc = write_h5(in, ms, path, txy, tlab, tidx, tn, tkl, err);
    }
    char date[64], proto[512];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    protocol_text(in, proto, sizeof proto);
    mm_cfg *cfg = NULL;
    mm_err e2 = {0};
    mm_cfg_parse_string(in->config_yaml, "config", &cfg, &e2);
    const char *kind = cfg ? protocol_kind(cfg) : "?";
    if (!rc) {
        sb md = {.s = summary_md(in, ms, kind, proto, tn, tkl)};
        snprintf(path, sizeof path, "%s/summary.md", dir);
        rc = md.s ? write_text_atomic(path, md.s, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
        if (!rc && show) show(ctx, md.s);
        free(md.s);
    }
    if (!rc) {
        sb js = {.s = summary_json(in, ms, kind)};
        snprintf(path, sizeof path, "%s/summary.json", dir);
        rc = js.s ? write_text_atomic(path, js.s, err) : mm_err_set(err, MM_ENOMEM, "out of memory");
        free(js.s);
    }
    if (!rc) rc = write_timing(in, ms, dir, date, err);
    mm_cfg_free(cfg);
    free(txy); free(tlab); free(tidx);
    for (size_t m = 0; m < in->n_models; m++) summary_free(&ms[m], k);
    free(ms);
    return rc;
}
