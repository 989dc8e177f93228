/* test_params.c — the learners' hyperparameter tables (learn/params.h):
 * every row of every table refuses a value outside its range in one line
 * naming file:line, key, the value and the range; defaults parse; the
 * shared training rows agree with mm_train_params_default(); a struct
 * filled in code is range-checked from the same rows; class_weight is one
 * parser for every learner that has it; README.md's tables are what
 * `melodic models --params all --markdown` prints. */
#include "testutil.h"

#include <unistd.h>
#include "learn/gbdt.h"
#include "learn/learner.h"
#include "learn/netparams.h"
#include "learn/params.h"
#include "learn/rf.h"

static mm_cfg *yaml(const char *text)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    if (mm_cfg_parse_string(text, "t.yaml", &c, &e)) fail_msg("%s", e.msg);
    return c;
}

/* A value just outside row r's range, or NULL when the row has none to test. */
static const char *outside(const mm_param *r, char *buf, size_t size)
{
    switch (r->type) {
    case MM_PARAM_INT: case MM_PARAM_LONG: case MM_PARAM_SIZE:
        snprintf(buf, size, "%.0f", r->min - 1);
        return buf;
    case MM_PARAM_DOUBLE:
        if (r->min <= -MM_PARAM_NOMAX) return NULL;
        snprintf(buf, size, "%g", r->min_open ? r->min : r->min - (r->min ? r->min * 1e-3 : 1e-3));
        return buf;
    case MM_PARAM_BOOL: return "maybe";
    case MM_PARAM_CHOICE: return "no_such_choice";
    default: return NULL;
    }
}

static void test_rows_refuse_out_of_range(void **st)
{
    (void)st;
    size_t checked = 0;
    for (const mm_learner_vt *const *vt = mm_learner_list(); *vt; vt++) {
        if (!(*vt)->params || !strcmp((*vt)->name, "voting")) continue;   /* voting needs members */
        mm_learner *l = NULL;
        mm_err e = {0};
        assert_int_equal(mm_learner_create((*vt)->name, NULL, 0, 1, &l, &e), 0);   /* all defaults */
        mm_learner_free(l);
        mm_param_ref rows[MM_PARAM_MAX_ROWS];
        size_t n = mm_params_rows((*vt)->params, rows, MM_PARAM_MAX_ROWS);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
            char v[64], text[160], want[160];
            const char *bad = outside(rows[i].row, v, sizeof v);
            if (!bad) continue;
            snprintf(text, sizeof text, "%s: %s\n", rows[i].row->name, bad);
            mm_cfg *c = yaml(text);
            l = NULL;
            assert_int_equal(mm_learner_create((*vt)->name, c, 0, 1, &l, &e), MM_EINVAL);
            assert_null(l);
            snprintf(want, sizeof want, "t.yaml:1: key '%s': expected ", rows[i].row->name);
            if (!strstr(e.msg, want) || !strstr(e.msg, bad) || strchr(e.msg, '\n'))
                fail_msg("%s %s: '%s' -> %s", (*vt)->name, rows[i].row->name, bad, e.msg);
            mm_cfg_free(c);
            checked++;
        }
    }
    printf("  %zu out-of-range values refused\n", checked);
    assert_true(checked > 50);
}

/* Every learner with a class_weight key reads it with the one parser:
 * balanced, none, None and null are taken, anything else refused with the
 * same message. */
static void test_class_weight_one_parser(void **st)
{
    (void)st;
    size_t learners = 0;
    for (const mm_learner_vt *const *vt = mm_learner_list(); *vt; vt++) {
        if (!(*vt)->params || !strcmp((*vt)->name, "voting")) continue;
        mm_param_ref rows[MM_PARAM_MAX_ROWS];
        size_t n = mm_params_rows((*vt)->params, rows, MM_PARAM_MAX_ROWS), has = 0;
        for (size_t i = 0; i < n; i++) has |= !strcmp(rows[i].row->name, "class_weight");
        if (!has) continue;
        learners++;
        static const char *const ok[] = {"balanced", "none", "None", "null"};
        for (size_t k = 0; k < 4; k++) {
            char text[64];
            snprintf(text, sizeof text, "class_weight: %s\n", ok[k]);
            mm_cfg *c = yaml(text);
            mm_learner *l = NULL;
            mm_err e = {0};
            if (mm_learner_create((*vt)->name, c, 0, 1, &l, &e)) fail_msg("%s: '%s' refused: %s", (*vt)->name, ok[k], e.msg);
            mm_learner_free(l);
            mm_cfg_free(c);
        }
        mm_cfg *c = yaml("class_weight: heavy\n");
        mm_learner *l = NULL;
        mm_err e = {0};
        assert_int_equal(mm_learner_create((*vt)->name, c, 0, 1, &l, &e), MM_EINVAL);
        if (!strstr(e.msg, "t.yaml:1: key 'class_weight': expected 'balanced' or none, got 'heavy'"))
            fail_msg("%s: %s", (*vt)->name, e.msg);
        mm_cfg_free(c);
    }
    printf("  class_weight read alike by %zu learners\n", learners);
    assert_true(learners >= 4);   /* logreg, svm, rf and the neural nets at least */
}

/* README.md lists the learners' keys as `melodic models --params all
 * --markdown` prints them (regenerate that section when a row changes). */
static void test_readme_tables_generated(void **st)
{
    (void)st;
    char out[] = "/tmp/mm_params_md_XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tu_system("%s models --params all --markdown > %s", tu_bin(), out), 0);
    char *want = tu_read_file(out), *readme = tu_read_file("README.md");
    unlink(out);
    assert_non_null(want);
    assert_non_null(readme);
    assert_true(strlen(want) > 1000);
    if (!strstr(readme, want)) {   /* name the first table line the README lacks */
        char line[512] = "";
        for (const char *p = want; *p;) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), p);
            char *needle = malloc(n + 3);
            snprintf(needle, n + 3, "\n%s\n", line);
            int found = n == 0 || strstr(readme, needle) != NULL;
            free(needle);
            if (!found) break;
            line[0] = 0;
            p = e ? e + 1 : p + n;
        }
        fail_msg("README.md's learner tables differ from `melodic models --params all --markdown`; first line "
                 "missing: %s", line[0] ? line : "(their order)");
    }
    free(want);
    free(readme);
}

static void test_train_rows_match_nn_defaults(void **st)
{
    (void)st;
    mm_train_params want = mm_train_params_default(), got = want;
    memset(&got, 0x55, sizeof got);
    static const mm_param wrap[] = {{NULL, MM_PARAM_INCLUDE, 0, .sub = mm_net_train_rows}, {NULL}};
    mm_param_table t = {"train", "train", wrap};
    mm_params_defaults(&t, &got);
    assert_int_equal(got.batch_size, want.batch_size);
    assert_true(got.adam.beta1 == want.adam.beta1 && got.adam.beta2 == want.adam.beta2 && got.adam.eps == want.adam.eps);
    assert_true(got.adam.weight_decay == want.adam.weight_decay && got.adam.wd_mode == want.adam.wd_mode);
    assert_true(got.alpha == want.alpha && got.schedule == want.schedule && got.step_size == want.step_size);
    assert_true(got.gamma == want.gamma && got.lr_min == want.lr_min && got.early_stopping == want.early_stopping);
    assert_true(got.validation_fraction == want.validation_fraction && got.monitor == want.monitor);
    assert_true(got.tol == want.tol && got.restore_best == want.restore_best && got.shuffle == want.shuffle);
    assert_true(got.label_smoothing == want.label_smoothing && got.balanced == want.balanced);
}

static void test_struct_checks_and_defaults(void **st)
{
    (void)st;
    mm_err e = {0};
    mm_gbdt_params g = mm_gbdt_params_default();
    assert_int_equal(g.n_estimators, 100);
    assert_int_equal(g.max_depth, 6);
    assert_true(g.learning_rate == 0.3 && g.subsample == 1 && g.max_bin == 256);
    g.subsample = 0;
    assert_int_equal(mm_gbdt_params_check(&g, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "gbdt: subsample must be in (0, 1], got 0"));
    mm_rf_params r = mm_rf_params_default();
    assert_int_equal(r.max_depth, -1);
    assert_int_equal(mm_rf_params_check(&r, &e), 0);   /* -1: unlimited */
    r.criterion = (mm_rf_criterion)7;
    assert_int_equal(mm_rf_params_check(&r, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "criterion"));
    /* a key of an included table is known; the learner's own names win */
    mm_cfg *c = yaml("{beta_1: 0.8, max_iter: 3}\n");
    mm_learner *l = NULL;
    assert_int_equal(mm_learner_create("mlp", c, 0, 1, &l, &e), 0);
    mm_learner_free(l);
    mm_cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_refuse_out_of_range),
        cmocka_unit_test(test_class_weight_one_parser),
        cmocka_unit_test(test_readme_tables_generated),
        cmocka_unit_test(test_train_rows_match_nn_defaults),
        cmocka_unit_test(test_struct_checks_and_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
