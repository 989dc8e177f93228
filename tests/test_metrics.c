/* test_metrics.c — label metrics and ROC/PR curves against scikit-learn 1.2.1
 * (fixture tests/fixtures/eval_metrics.h5 from tests/ref/gen_eval.py): random
 * cases, tied scores, a class never predicted, a class absent from y_true,
 * a constant score column, binary ties.
 * Metric: max |ours - sklearn| over every value (NaN must match NaN).
 * Tolerance 1e-12: the C code performs the same double operations in NumPy's
 * order (pairwise sums), so differences should be 0; 1e-12 only allows for a
 * compiler contracting a multiply-add. Curve lengths must match exactly. */
#include "testutil.h"
#include "eval/curves.h"
#include "eval/metrics.h"
#include "io/h5.h"

#define FIX "tests/fixtures/eval_metrics.h5"
#define TOL 1e-12

static double maxerr;

static double *read_f64(hid_t g, const char *name, size_t *n)
{
    double *v;
    int r;
    hsize_t d[4] = {1, 1, 1, 1};
    mm_err e = {0};
    if (mm_h5_read_f64(g, name, -1, &v, &r, d, &e)) fail_msg("%s", e.msg);
    *n = r == 0 ? 1 : (size_t)(d[0] * (r > 1 ? d[1] : 1));
    return v;
}

static void cmp(const char *what, const double *got, const double *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            if (!(isnan(want[i]) && isnan(got[i])))
                fail_msg("%s[%zu]: got %.17g, sklearn %.17g", what, i, got[i], want[i]);
            continue;
        }
        double d = fabs(got[i] - want[i]);
        if (d > maxerr) maxerr = d;
        if (d > TOL) fail_msg("%s[%zu]: got %.17g, sklearn %.17g", what, i, got[i], want[i]);
    }
}

static void cmp_want(hid_t g, const char *name, const double *got, size_t n)
{
    size_t m;
    double *w = read_f64(g, name, &m);
    if (m != n) fail_msg("%s: %zu values, sklearn has %zu", name, n, m);
    cmp(name, got, w, n);
    free(w);
}

static void test_against_sklearn(void **st)
{
    (void)st;
    mm_h5_init();
    hid_t f;
    mm_err e = {0};
    if (mm_h5_open_read(FIX, &f, &e)) fail_msg("%s", e.msg);
    char name[64];
    int cases = 0;
    maxerr = 0;
    for (int ci = 0;; ci++) {
        snprintf(name, sizeof name, "case_%03d", ci);
        if (!mm_h5_exists(f, name)) break;
        hid_t g = mm_h5_open_group(f, name, &e);
        int64_t nc64;
        char *note;
        assert_int_equal(mm_h5_attr_get_i64(g, "n_classes", &nc64, &e), 0);
        assert_int_equal(mm_h5_attr_get_str(g, "note", &note, &e), 0);
        int nc = (int)nc64;
        int32_t *yt, *yp;
        float *proba;
        int r;
        hsize_t d[4];
        assert_int_equal(mm_h5_read_i32(g, "y_true", 1, &yt, &r, d, &e), 0);
        assert_int_equal(mm_h5_read_i32(g, "y_pred", 1, &yp, &r, d, &e), 0);
        size_t n = d[0];
        assert_int_equal(mm_h5_read_f32(g, "proba", 2, &proba, &r, d, &e), 0);
        mm_metrics *m;
        assert_int_equal(mm_metrics_compute(yt, yp, n, nc, &m, &e), 0);
        cmp_want(g, "accuracy", &m->accuracy, 1);
        cmp_want(g, "balanced_accuracy", &m->balanced_accuracy, 1);
        double macro[3] = {m->macro_precision, m->macro_recall, m->macro_f1};
        double wtd[3] = {m->weighted_precision, m->weighted_recall, m->weighted_f1};
        cmp_want(g, "macro", macro, 3);
        cmp_want(g, "weighted", wtd, 3);
        cmp_want(g, "precision", m->precision, (size_t)nc);
        cmp_want(g, "recall", m->recall, (size_t)nc);
        cmp_want(g, "f1", m->f1, (size_t)nc);
        int64_t *sup, *conf;
        assert_int_equal(mm_h5_read_i64(g, "support", 1, &sup, &r, d, &e), 0);
        assert_memory_equal(sup, m->support, (size_t)nc * sizeof *sup);
        assert_int_equal(mm_h5_read_i64(g, "confusion", 2, &conf, &r, d, &e), 0);
        assert_memory_equal(conf, m->confusion, (size_t)(nc * nc) * sizeof *conf);
        free(sup); free(conf);
        /* curves */
        mm_roc *roc = calloc((size_t)nc, sizeof *roc);
        mm_pr *pr = calloc((size_t)nc, sizeof *pr);
        double macro_auc, *auc = malloc((size_t)nc * sizeof *auc), *ap = malloc((size_t)nc * sizeof *ap);
        assert_int_equal(mm_curves_ovr(yt, proba, n, nc, roc, pr, &macro_auc, &e), 0);
        for (int c = 0; c < nc; c++) {
            char cn[32];
            snprintf(cn, sizeof cn, "class_%d", c);
            hid_t gc = mm_h5_open_group(g, cn, &e);
            cmp_want(gc, "fpr", roc[c].fpr, roc[c].n);
            cmp_want(gc, "tpr", roc[c].tpr, roc[c].n);
            cmp_want(gc, "roc_thr", roc[c].thresholds, roc[c].n);
            cmp_want(gc, "pr_precision", pr[c].precision, pr[c].n);
            cmp_want(gc, "pr_recall", pr[c].recall, pr[c].n);
            cmp_want(gc, "pr_thr", pr[c].thresholds, pr[c].n - 1);
            auc[c] = roc[c].auc;
            ap[c] = pr[c].ap;
            H5Gclose(gc);
            mm_roc_clear(&roc[c]);
            mm_pr_clear(&pr[c]);
        }
        cmp_want(g, "auc", auc, (size_t)nc);
        cmp_want(g, "ap", ap, (size_t)nc);
        if (nc > 2) {
            /* sklearn refuses rows not summing to 1 (the rounded "ties" case):
             * NaN there; ours still averages the per-class AUCs */
            size_t one;
            double *w = read_f64(g, "macro_auc_ovr", &one);
            if (!isnan(*w)) cmp("macro_auc_ovr", &macro_auc, w, 1);
            free(w);
        }
        printf("%s (%s): n=%zu, %d classes, accuracy %.4f, macro F1 %.4f, macro AUC %.4f\n", name,
               note, n, nc, m->accuracy, m->macro_f1, macro_auc);
        free(roc); free(pr); free(auc); free(ap); free(note);
        mm_metrics_free(m);
        free(yt); free(yp); free(proba);
        H5Gclose(g);
        cases++;
    }
    mm_h5_close(f);
    printf("max |ours - sklearn| over %d cases: %.3g (tolerance %.0e)\n", cases, maxerr, TOL);
    assert_true(cases >= 6);
}

static void test_errors_and_edges(void **st)
{
    (void)st;
    mm_err e = {0};
    mm_metrics *m;
    int32_t yt[4] = {0, 1, 2, 1}, yp[4] = {0, 1, 3, 1};
    assert_int_equal(mm_metrics_compute(yt, yp, 4, 3, &m, &e), MM_EINVAL);
    printf("error: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "y_pred[2] = 3, expected a label in [0, 3)"));
    assert_int_equal(mm_metrics_compute(yt, yp, 0, 3, &m, &e), MM_EINVAL);
    float s[4] = {0.1f, NAN, 0.3f, 0.2f};
    mm_roc r;
    assert_int_equal(mm_curves_binary(yt, 1, s, 1, 4, &r, NULL, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "score of sample 1 is nan"));
    /* a single class in y_true: AUC undefined (NaN), TPR NaN, AP 0 as sklearn */
    int32_t one[3] = {0, 0, 0};
    float sc[3] = {0.2f, 0.5f, 0.5f};
    mm_pr p;
    assert_int_equal(mm_curves_binary(one, 1, sc, 1, 3, &r, &p, &e), 0);
    assert_true(isnan(r.auc));
    assert_true(isnan(r.tpr[1]));
    assert_true(p.ap == 0.0);
    mm_roc_clear(&r);
    mm_pr_clear(&p);
    mm_roc_clear(NULL);
    mm_metrics_free(NULL);
    /* mean ± std over folds: ddof 0, NaN skipped */
    double v[5] = {0.5, NAN, 0.7, 0.6, 0.8}, mu, sd;
    assert_int_equal(mm_metrics_mean_std(v, 5, 1, &mu, &sd), 4);
    assert_true(fabs(mu - 0.65) < 1e-15);
    assert_true(fabs(sd - sqrt(0.0125)) < 1e-15);     /* population std: sqrt(0.05 / 4) */
    assert_int_equal(mm_metrics_mean_std(v + 1, 1, 1, &mu, &sd), 0);
    assert_true(isnan(mu) && isnan(sd));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_sklearn),
        cmocka_unit_test(test_errors_and_edges),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
