/* test_cfg.c — YAML configs: includes, overrides, typed getters and the
 * error messages that name file, line and key. */
#include "testutil.h"
#include "io/cfg.h"
#include <limits.h>

static const char *write_tmp(const char *name, const char *text)
{
    static char path[4][256];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 256, "/tmp/mm_cfg_%d_%s", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_getters_and_errors(void **st)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string("model:\n  max_depth: 0\n  lr: abc\n  name: rf\n  ok: yes\n", "x.yaml", &c, &e), 0);
    const mm_cfg *m = mm_cfg_child(c, "model");
    long v;
    assert_int_not_equal(mm_cfg_get_int(m, "max_depth", 3, 1, LONG_MAX, &v, &e), 0);
    assert_non_null(strstr(e.msg, "x.yaml:2"));
    assert_non_null(strstr(e.msg, "max_depth"));
    assert_non_null(strstr(e.msg, ">= 1, got 0"));
    double d;
    assert_int_not_equal(mm_cfg_get_double(m, "lr", 0.1, 0, 1, &d, &e), 0);
    assert_non_null(strstr(e.msg, "x.yaml:3"));
    assert_non_null(strstr(e.msg, "'abc'"));
    assert_int_equal(mm_cfg_get_int(m, "missing", 7, 1, 10, &v, &e), 0);
    assert_int_equal(v, 7);
    int b;
    assert_int_equal(mm_cfg_get_bool(m, "ok", 0, &b, &e), 0);
    assert_int_equal(b, 1);
    const char *allowed[] = {"max_depth", "lr", "name", NULL};
    assert_int_not_equal(mm_cfg_check_keys(m, "model", allowed, &e), 0);
    assert_non_null(strstr(e.msg, "unknown key 'ok'"));
    assert_non_null(strstr(e.msg, "x.yaml:5"));
    const char *choices[] = {"gini", "entropy", NULL};
    mm_cfg_set(c, "model.criterion=log", &e);
    int ch;
    assert_int_not_equal(mm_cfg_get_choice(mm_cfg_child(c, "model"), "criterion", choices, 0, &ch, &e), 0);
    assert_non_null(strstr(e.msg, "expected one of gini, entropy"));
    mm_cfg_free(c);
}

static void test_syntax_error_names_line(void **st)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_not_equal(mm_cfg_parse_string("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "bad.yaml:"));
    assert_int_not_equal(mm_cfg_parse_string("a: 1\na: 2\n", "dup.yaml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "duplicate key 'a'"));
}

static void test_include_and_set(void **st)
{
    const char *base = write_tmp("base.yaml", "model:\n  n_estimators: 100\n  max_depth: 5\nseed: 1\n");
    char text[512];
    snprintf(text, sizeof text, "include: %s\nmodel:\n  max_depth: 8\n", strrchr(base, '/') + 1);
    const char *top = write_tmp("top.yaml", text);
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_load_file(top, &c, &e), 0);
    long v;
    assert_int_equal(mm_cfg_get_int(mm_cfg_child(c, "model"), "n_estimators", 0, 0, 1000, &v, &e), 0);
    assert_int_equal(v, 100);
    assert_int_equal(mm_cfg_get_int(mm_cfg_child(c, "model"), "max_depth", 0, 0, 1000, &v, &e), 0);
    assert_int_equal(v, 8);
    assert_int_equal(mm_cfg_set(c, "model.max_depth=12", &e), 0);
    assert_int_equal(mm_cfg_set(c, "new.deep.key=[1, 2, 3]", &e), 0);
    assert_int_equal(mm_cfg_get_int(mm_cfg_child(c, "model"), "max_depth", 0, 0, 1000, &v, &e), 0);
    assert_int_equal(v, 12);
    const mm_cfg *s = mm_cfg_find(c, "new.deep.key");
    assert_non_null(s);
    assert_int_equal(s->type, MM_CFG_SEQ);
    assert_int_equal(s->n, 3);
    assert_string_equal(mm_cfg_find(c, "new.deep.key.2")->value, "3");
    /* round trip through YAML text */
    char *y = mm_cfg_to_yaml(c);
    mm_cfg *c2 = NULL;
    assert_int_equal(mm_cfg_parse_string(y, "rt", &c2, &e), 0);
    char *y2 = mm_cfg_to_yaml(c2);
    assert_string_equal(y, y2);
    assert_true(mm_cfg_hash(c) == mm_cfg_hash(c2));
    free(y); free(y2);
    mm_cfg_free(c2);
    mm_cfg_free(c);
    /* missing include names the including line */
    const char *bad = write_tmp("bad.yaml", "a: 1\ninclude: nowhere.yaml\n");
    assert_int_not_equal(mm_cfg_load_file(bad, &c, &e), 0);
    assert_non_null(strstr(e.msg, "nowhere.yaml"));
    assert_non_null(strstr(e.msg, ":2"));
    /* self include is a cycle, refused */
    const char *cyc = write_tmp("cyc.yaml", "include: ");
    snprintf(text, sizeof text, "include: %s\n", strrchr(cyc, '/') + 1);
    cyc = write_tmp("cyc.yaml", text);
    assert_int_not_equal(mm_cfg_load_file(cyc, &c, &e), 0);
    assert_non_null(strstr(e.msg, "cycle"));
    assert_int_not_equal(mm_cfg_load_file("/nonexistent/x.yaml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "/nonexistent/x.yaml"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getters_and_errors),
        cmocka_unit_test(test_syntax_error_names_line),
        cmocka_unit_test(test_include_and_set),
    };
    return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
