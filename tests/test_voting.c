/* test_voting.c — voting: combination checked against hand computations,
 * the learner against its own members, nested ensembles, save/load,
 * configuration and file errors. */
#include "testutil.h"
#include "io/cfg.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/voting.h"

#define REF "tests/fixtures/svm_ref.h5"

/* Soft: hand-computed weighted means (exact to float rounding, 1e-7). */
static void test_combine_soft(void **st)
{
    const float a[6] = {0.7f, 0.2f, 0.1f, 0.1f, 0.1f, 0.8f};
    const float b[6] = {0.2f, 0.5f, 0.3f, 0.3f, 0.6f, 0.1f};
    const float c[6] = {0.1f, 0.1f, 0.8f, 0.5f, 0.25f, 0.25f};
    const float *p[3] = {a, b, c};
    const double w[3] = {1, 2, 1};
    /* row 0: (0.7 + 0.4 + 0.1)/4 = 0.3, (0.2 + 1.0 + 0.1)/4 = 0.325, (0.1 + 0.6 + 0.8)/4 = 0.375
     * row 1: (0.1 + 0.6 + 0.5)/4 = 0.3, (0.1 + 1.2 + 0.25)/4 = 0.3875, (0.8 + 0.2 + 0.25)/4 = 0.3125 */
    const float want_w[6] = {0.3f, 0.325f, 0.375f, 0.3f, 0.3875f, 0.3125f};
    /* equal weights: row 0 (1.0, 0.8, 1.2)/3, row 1 (0.9, 0.95, 1.15)/3 */
    const float want_e[6] = {1.0f / 3, 0.8f / 3, 0.4f, 0.3f, 0.95f / 3, 1.15f / 3};
    float out[6];
    mm_err e = {0};
    assert_int_equal(mm_voting_combine(p, 3, 2, 3, w, 0, out, &e), 0);
    double d1 = tu_max_abs_diff(out, want_w, 6);
    assert_int_equal(mm_voting_combine(p, 3, 2, 3, NULL, 0, out, &e), 0);
    double d2 = tu_max_abs_diff(out, want_e, 6);
    printf("  soft max error: weighted %.2e, equal %.2e\n", d1, d2);
    assert_true(d1 <= 1e-7 && d2 <= 1e-7);
}

/* Hard: weighted votes of argmax classes; ties broken by summed probability. */
static void test_combine_hard(void **st)
{
    /* row 0: votes 0, 1, 2 (a tie of three with equal weights); summed proba
     *        (0.45+0.1+0.1, 0.35+0.5+0.35, 0.2+0.4+0.55) = (0.65, 1.2, 1.15) → class 1.
     * row 1: votes 2, 2, 1 → class 2 with share 2/3. */
    const float a[6] = {0.45f, 0.35f, 0.2f, 0.1f, 0.2f, 0.7f};
    const float b[6] = {0.1f, 0.5f, 0.4f, 0.2f, 0.3f, 0.5f};
    const float c[6] = {0.1f, 0.35f, 0.55f, 0.1f, 0.8f, 0.1f};
    const float *p[3] = {a, b, c};
    float out[6];
    int32_t y[2];
    mm_err e = {0};
    assert_int_equal(mm_voting_combine(p, 3, 2, 3, NULL, 1, out, &e), 0);
    mm_proba_argmax(out, 2, 3, y);
    assert_int_equal(y[0], 1);
    assert_int_equal(y[1], 2);
    const float want[6] = {1.0f / 3, 1.0f / 3, 1.0f / 3, 0, 1.0f / 3, 2.0f / 3};
    double d = tu_max_abs_diff(out, want, 6);
    printf("  hard shares max error %.2e (tie sliver 1e-5 relative)\n", d);
    assert_true(d <= 1e-5);
    for (int i = 0; i < 2; i++) assert_true(fabs(out[i * 3] + out[i * 3 + 1] + out[i * 3 + 2] - 1) < 1e-6);
    /* weights: c counts 3 → row 0 class 2 (1 vs 1 vs 3), row 1 class 1 (2 vs 3) */
    const double w[3] = {1, 1, 3};
    assert_int_equal(mm_voting_combine(p, 3, 2, 3, w, 1, out, &e), 0);
    mm_proba_argmax(out, 2, 3, y);
    assert_int_equal(y[0], 2);
    assert_int_equal(y[1], 1);
    assert_true(fabs(out[2] - 0.6f) < 1e-6 && fabs(out[4] - 0.6f) < 1e-6);
    /* a zero weight removes a member: a vs b tie on row 0 (0 vs 1) → summed (0.55, 0.85) → 1 */
    const double w0[3] = {1, 1, 0};
    assert_int_equal(mm_voting_combine(p, 3, 2, 3, w0, 1, out, &e), 0);
    mm_proba_argmax(out, 2, 3, y);
    assert_int_equal(y[0], 1);
    /* errors */
    assert_int_equal(mm_voting_combine(p, 0, 2, 3, NULL, 1, out, &e), MM_EINVAL);
    const double wn[3] = {1, -1, 1}, wz[3] = {0, 0, 0};
    assert_int_equal(mm_voting_combine(p, 3, 2, 3, wn, 0, out, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "weight 1 is -1"));
    assert_int_equal(mm_voting_combine(p, 3, 2, 3, wz, 0, out, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "sum to 0"));
}

typedef struct set { float *Xtr, *Xte; int32_t *ytr; size_t ntr, nte, d; } set;

static void load_proba_set(set *s)
{
    hid_t f;
    mm_err e = {0};
    int r;
    hsize_t dm[4];
    assert_int_equal(mm_h5_open_read(REF, &f, &e), 0);
    assert_int_equal(mm_h5_read_f32(f, "proba/X_train", 2, &s->Xtr, &r, dm, &e), 0);
    s->ntr = dm[0]; s->d = dm[1];
    assert_int_equal(mm_h5_read_f32(f, "proba/X_test", 2, &s->Xte, &r, dm, &e), 0);
    s->nte = dm[0];
    assert_int_equal(mm_h5_read_i32(f, "proba/y_train", 1, &s->ytr, &r, dm, &e), 0);
    mm_h5_close(f);
}

static const char *ENSEMBLE =
    "voting: soft\n"
    "weights: [1, 2, 0.5]\n"
    "estimators:\n"
    "  - {model: svm, params: {C: 2, gamma: 0.2}}\n"
    "  - {model: svm, params: {kernel: linear, C: 0.5}}\n"
    "  - model: voting\n"
    "    params:\n"
    "      voting: hard\n"
    "      estimators: [{model: svm, params: {kernel: poly, degree: 2}}, {model: svm}, {model: svm, params: {C: 5}}]\n";

/* The learner's probabilities equal mm_voting_combine over its members'
 * (bit for bit), nested ensembles included; save/load predicts identically. */
static void test_learner_matches_members_and_roundtrip(void **st)
{
    set s;
    load_proba_set(&s);
    mm_cfg *cfg;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(ENSEMBLE, "ens.yaml", &cfg, &e), 0);
    mm_learner *l;
    assert_int_equal(mm_learner_create("voting", cfg, 9, 2, &l, &e), 0);
    mm_fit_data fd = {.X = s.Xtr, .y = s.ytr, .n = s.ntr, .d = s.d, .n_classes = 3};
    assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
    assert_int_equal(mm_voting_n_members(l), 3);
    const mm_learner *inner = mm_voting_member(l, 2);
    assert_int_equal(mm_voting_n_members(inner), 3);
    assert_null(mm_voting_member(l, 3));
    assert_int_equal(mm_voting_n_members(mm_voting_member(l, 0)), 0);
    size_t n = s.nte;
    float *got = malloc(n * 3 * sizeof *got), *want = malloc(n * 3 * sizeof *want), *in_want = malloc(n * 3 * sizeof *in_want);
    float *pm[3], *pi[3];
    for (int j = 0; j < 3; j++) {
        pm[j] = malloc(n * 3 * sizeof *pm[j]);
        pi[j] = malloc(n * 3 * sizeof *pi[j]);
        assert_int_equal(mm_learner_predict_proba(mm_voting_member(l, j), s.Xte, n, s.d, pm[j], &e), 0);
        assert_int_equal(mm_learner_predict_proba(mm_voting_member(inner, j), s.Xte, n, s.d, pi[j], &e), 0);
    }
    assert_int_equal(mm_voting_combine((const float *const *)pi, 3, n, 3, NULL, 1, in_want, &e), 0);
    assert_memory_equal(pm[2], in_want, n * 3 * sizeof *in_want);
    const double w[3] = {1, 2, 0.5};
    assert_int_equal(mm_voting_combine((const float *const *)pm, 3, n, 3, w, 0, want, &e), 0);
    assert_int_equal(mm_learner_predict_proba(l, s.Xte, n, s.d, got, &e), 0);
    assert_memory_equal(got, want, n * 3 * sizeof *got);
    /* save / load */
    char path[256];
    snprintf(path, sizeof path, "/tmp/mm_voting_%d.h5", (int)getpid());
    mm_h5_out o;
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    hid_t g = mm_h5_group(o.file, "model", &e);
    assert_int_equal(mm_learner_save(l, g, &e), 0);
    H5Gclose(g);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    hid_t f;
    mm_learner *l2;
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    assert_int_equal(mm_learner_load(g, 1, &l2, &e), 0);
    H5Gclose(g);
    mm_h5_close(f);
    assert_int_equal(mm_learner_predict_proba(l2, s.Xte, n, s.d, want, &e), 0);
    assert_memory_equal(got, want, n * 3 * sizeof *got);
    /* corrupt: a member missing, a bad weights vector, another kind */
    assert_int_equal(mm_h5_open_rw(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    mm_learner *l3 = NULL;
    double bw[3] = {1, NAN, 1};
    hsize_t d3[1] = {3}, d4[1] = {4};
    assert_int_equal(mm_h5_write_f64(g, "weights", bw, 1, d3, &e), 0);
    assert_int_not_equal(mm_learner_load(g, 1, &l3, &e), 0);
    printf("  bad weights: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "'weights' must hold 3 finite numbers"));
    double w4[4] = {1, 1, 1, 1};
    assert_int_equal(mm_h5_write_f64(g, "weights", w4, 1, d4, &e), 0);
    assert_int_equal(mm_h5_attr_set_i64(g, "n_estimators", 4, &e), 0);
    assert_int_not_equal(mm_learner_load(g, 1, &l3, &e), 0);
    printf("  missing member: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "estimator_3"));
    assert_int_equal(mm_h5_attr_set_str(g, "kind", "svm", &e), 0);
    assert_int_not_equal(mm_learner_load(g, 1, &l3, &e), 0);
    assert_non_null(strstr(e.msg, "expected a voting ensemble"));
    assert_null(l3);
    H5Gclose(g);
    mm_h5_close(f);
    unlink(path);
    for (int j = 0; j < 3; j++) { free(pm[j]); free(pi[j]); }
    free(got); free(want); free(in_want);
    mm_learner_free(l);
    mm_learner_free(l2);
    mm_cfg_free(cfg);
    free(s.Xtr); free(s.Xte); free(s.ytr);
}

static void expect_error(const char *yaml, const char *needle)
{
    mm_cfg *cfg;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(yaml, "v.yaml", &cfg, &e), 0);
    mm_learner *l = NULL;
    assert_int_not_equal(mm_learner_create("voting", cfg, 0, 1, &l, &e), 0);
    printf("  %-58s -> %s\n", yaml, e.msg);
    assert_non_null(strstr(e.msg, needle));
    assert_null(l);
    mm_cfg_free(cfg);
}

/* A learner that does not use a validation part trains on it too: svm fitted
 * with the last 20 rows as X_val predicts exactly as svm fitted on all rows;
 * inside an ensemble too (voting passes the part through to its members). */
static void test_validation_rows_merged(void **st)
{
    set s;
    load_proba_set(&s);
    mm_err e = {0};
    size_t nv = 20, nt = s.ntr - nv, n = s.nte;
    mm_fit_data all = {.X = s.Xtr, .y = s.ytr, .n = s.ntr, .d = s.d, .n_classes = 3};
    mm_fit_data split = {.X = s.Xtr, .y = s.ytr, .n = nt, .d = s.d, .n_classes = 3,
                         .X_val = s.Xtr + nt * s.d, .y_val = s.ytr + nt, .n_val = nv};
    mm_fit_data part = {.X = s.Xtr, .y = s.ytr, .n = nt, .d = s.d, .n_classes = 3};
    const char *names[2] = {"svm", "voting"};
    mm_cfg *ens;
    assert_int_equal(mm_cfg_parse_string("estimators: [{model: svm}, {model: svm, params: {C: 3}}]\n", "e.yaml", &ens, &e), 0);
    for (int k = 0; k < 2; k++) {
        mm_learner *a, *b, *c;
        const mm_cfg *params = k ? ens : NULL;
        assert_int_equal(mm_learner_create(names[k], params, 1, 1, &a, &e), 0);
        assert_int_equal(mm_learner_create(names[k], params, 1, 1, &b, &e), 0);
        assert_int_equal(mm_learner_create(names[k], params, 1, 1, &c, &e), 0);
        assert_int_equal(mm_learner_fit(a, &all, &e), 0);
        assert_int_equal(mm_learner_fit(b, &split, &e), 0);
        assert_int_equal(mm_learner_fit(c, &part, &e), 0);
        float *pa = malloc(n * 3 * sizeof *pa), *pb = malloc(n * 3 * sizeof *pb), *pc = malloc(n * 3 * sizeof *pc);
        assert_int_equal(mm_learner_predict_proba(a, s.Xte, n, s.d, pa, &e), 0);
        assert_int_equal(mm_learner_predict_proba(b, s.Xte, n, s.d, pb, &e), 0);
        assert_int_equal(mm_learner_predict_proba(c, s.Xte, n, s.d, pc, &e), 0);
        assert_memory_equal(pa, pb, n * 3 * sizeof *pa);
        assert_memory_not_equal(pa, pc, n * 3 * sizeof *pa);   /* the 20 rows matter */
        free(pa), free(pb), free(pc);
        mm_learner_free(a), mm_learner_free(b), mm_learner_free(c);
    }
    mm_cfg_free(ens);
    free(s.Xtr), free(s.Xte), free(s.ytr);
}

static void test_config_errors(void **st)
{
    expect_error("voting: soft", "key 'estimators': expected a non-empty list");
    expect_error("estimators: svm", "key 'estimators': expected a non-empty list");
    expect_error("estimators: [svm]", "estimators[0]: expected a map");
    expect_error("estimators: [{params: {C: 1}}]", "estimators[0]: missing key 'model'");
    expect_error("estimators: [{model: nosuch}]", "unknown model 'nosuch'");
    expect_error("estimators: [{model: svm}, {model: svm, params: {C: -1}}]",
                 "estimators[1] (svm): v.yaml:1: key 'C': expected a number in (0, inf], got -1");
    expect_error("estimators: [{model: svm, extra: 1}]", "unknown key 'extra'");
    expect_error("{estimators: [{model: svm}], voting: maybe}", "key 'voting': expected one of soft, hard, got 'maybe'");
    expect_error("{estimators: [{model: svm}, {model: svm}], weights: [1]}", "key 'weights': expected a list of 2 numbers");
    expect_error("{estimators: [{model: svm}, {model: svm}], weights: [1, -2]}", "expected numbers >= 0, got -2");
    expect_error("{estimators: [{model: svm}, {model: svm}], weights: [0, 0]}", "the weights sum to 0");
    expect_error("{estimators: [{model: svm}], n_jobs: 2}", "unknown key 'n_jobs'");
}

/* Members of other kinds, when this build has them (rf, gbdt): the ensemble
 * trains, rows are distributions and a save/load round trip is identical. */
static void test_mixed_learners_when_available(void **st)
{
    const char *others[] = {"rf", "gbdt"};
    int any = 0;
    set s;
    load_proba_set(&s);
    for (int o = 0; o < 2; o++) {
        if (!mm_learner_find(others[o])) continue;
        any = 1;
        char yaml[256];
        snprintf(yaml, sizeof yaml, "voting: hard\nestimators: [{model: %s}, {model: svm}, {model: svm, params: {kernel: linear}}]\n",
                 others[o]);
        mm_cfg *cfg;
        mm_err e = {0};
        assert_int_equal(mm_cfg_parse_string(yaml, "mix.yaml", &cfg, &e), 0);
        mm_learner *l, *l2;
        assert_int_equal(mm_learner_create("voting", cfg, 3, 2, &l, &e), 0);
        mm_fit_data fd = {.X = s.Xtr, .y = s.ytr, .n = s.ntr, .d = s.d, .n_classes = 3};
        assert_int_equal(mm_learner_fit(l, &fd, &e), 0);
        float *p = malloc(s.nte * 3 * sizeof *p), *q = malloc(s.nte * 3 * sizeof *q);
        assert_int_equal(mm_learner_predict_proba(l, s.Xte, s.nte, s.d, p, &e), 0);
        for (size_t i = 0; i < s.nte; i++) assert_true(fabs(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2] - 1) < 1e-5);
        char path[256];
        snprintf(path, sizeof path, "/tmp/mm_voting_mix_%d.h5", (int)getpid());
        mm_h5_out out;
        assert_int_equal(mm_h5_create(path, &out, &e), 0);
        hid_t g = mm_h5_group(out.file, "m", &e);
        assert_int_equal(mm_learner_save(l, g, &e), 0);
        H5Gclose(g);
        assert_int_equal(mm_h5_commit(&out, &e), 0);
        hid_t f;
        assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
        g = mm_h5_open_group(f, "m", &e);
        assert_int_equal(mm_learner_load(g, 1, &l2, &e), 0);
        H5Gclose(g);
        mm_h5_close(f);
        unlink(path);
        assert_int_equal(mm_learner_predict_proba(l2, s.Xte, s.nte, s.d, q, &e), 0);
        assert_memory_equal(p, q, s.nte * 3 * sizeof *p);
        printf("  voting over %s + svm + svm(linear): trained, saved and reloaded\n", others[o]);
        free(p); free(q);
        mm_learner_free(l); mm_learner_free(l2);
        mm_cfg_free(cfg);
    }
    free(s.Xtr); free(s.Xte); free(s.ytr);
    if (!any) skip();
}

int main(void)
{
    mm_h5_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combine_soft),
        cmocka_unit_test(test_combine_hard),
        cmocka_unit_test(test_learner_matches_members_and_roundtrip),
        cmocka_unit_test(test_validation_rows_merged),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_mixed_learners_when_available),
    };
    return cmocka_run_group_tests_name("voting", tests, NULL, NULL);
}
