/* test_cfg.c — YAML configs: includes, overrides, typed getters and the
 * error messages that name file, line and key. */
#include "testutil.h"
#include "io/cfg.h"
#include <limits.h>
#include <stdarg.h>

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

/* Growable text buffer for the generated documents below. */
typedef struct { char *s; size_t n, cap; } tbuf;

static void tb_printf(tbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)need + 1 > b->cap) {
        b->cap = (b->n + (size_t)need + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* "Billion laughs": each level is a list of ten aliases of the level below, so
 * `levels` levels expand to 10^levels values from a few hundred bytes. */
static char *laughs(int levels)
{
    tbuf b = {0};
    tb_printf(&b, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int l = 1; l < levels; l++) {
        tb_printf(&b, "l%d: &l%d [", l, l);
        for (int k = 0; k < 10; k++) tb_printf(&b, "%s*l%d", k ? ", " : "", l - 1);
        tb_printf(&b, "]\n");
    }
    return b.s;
}

static size_t count_nodes(const mm_cfg *c)
{
    size_t n = 1;
    for (size_t i = 0; i < c->n; i++) n += count_nodes(c->items[i]);
    return n;
}

static void test_alias_budget(void **st)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    /* 10^5 expanded values: within the budget, every alias expanded */
    char *ok = laughs(5);
    assert_int_equal(mm_cfg_parse_string(ok, "ok.yaml", &c, &e), 0);
    const mm_cfg *top = mm_cfg_child(c, "l4");
    assert_non_null(top);
    assert_int_equal(count_nodes(top), 1 + 10 + 100 + 1000 + 10000 + 100000);
    assert_string_equal(mm_cfg_find(c, "l4.9.9.9.9.9")->value, "x");
    mm_cfg_free(c);
    free(ok);
    /* 10^9 values from about 650 bytes: refused in one line, nothing built */
    char *bomb = laughs(9);
    assert_true(strlen(bomb) < 1000);
    c = NULL;
    assert_int_not_equal(mm_cfg_parse_string(bomb, "bomb.yaml", &c, &e), 0);
    assert_null(c);
    assert_non_null(strstr(e.msg, "bomb.yaml:"));
    assert_non_null(strstr(e.msg, "more than 1000000 values"));
    assert_null(strchr(e.msg, '\n'));
    free(bomb);
    /* 50,000 anchors and their aliases (libyaml's loader scans anchors linearly per
     * alias: quadratic); aliases as keys and values, anchors on maps */
    tbuf b = {0};
    for (int i = 0; i < 50000; i++) tb_printf(&b, "k%d: &a%d v%d\n", i, i, i);
    tb_printf(&b, "r: [");
    for (int i = 0; i < 50000; i++) tb_printf(&b, "%s*a%d", i ? ", " : "", 49999 - i);
    tb_printf(&b, "]\nm: &m {*a5: x, y: [1, 2]}\nm2: *m\n");
    assert_int_equal(mm_cfg_parse_string(b.s, "anchors.yaml", &c, &e), 0);
    assert_string_equal(mm_cfg_find(c, "r.0")->value, "v49999");
    assert_string_equal(mm_cfg_find(c, "r.49999")->value, "v0");
    assert_string_equal(mm_cfg_find(c, "m2.v5")->value, "x");
    assert_string_equal(mm_cfg_find(c, "m2.y.1")->value, "2");
    assert_null(mm_cfg_find(c, "r.0")->key);         /* a copy in a list has no key */
    assert_string_equal(mm_cfg_find(c, "m2")->key, "m2");
    mm_cfg_free(c);
    free(b.s);
    /* found by fuzz_cfg: an anchor on a key, aliased later (the key node was freed) */
    assert_int_equal(mm_cfg_parse_string("&k key: 1\n? &m [a]\n: 2\nv: *k\nw: *m\n", "k.yaml", &c, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "k.yaml:2: map keys must be plain strings"));
    assert_int_equal(mm_cfg_parse_string("&k key: 1\nv: *k\nw: [*k]\n", "k.yaml", &c, &e), 0);
    assert_string_equal(mm_cfg_child(c, "v")->value, "key");
    assert_string_equal(mm_cfg_find(c, "w.0")->value, "key");
    assert_int_equal(c->n, 3);
    mm_cfg_free(c);
    assert_int_not_equal(mm_cfg_parse_string("&k key: 1\nv: *k\n*k : 3\n", "k.yaml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "k.yaml:3: duplicate key 'key'"));
    static const struct { const char *text, *msg; } bad[] = {
        {"a: *nowhere\n", "bad.yaml:1: YAML: alias '*nowhere' of an undefined anchor"},
        {"a: &x 1\nb: &x 2\n", "bad.yaml:2: YAML: anchor '&x' defined twice"},
        {"a: &x [1, *x]\n", "alias '*x' of an undefined anchor"},     /* no recursion */
        {"a: &x {b: 1}\n*x : 2\n", "bad.yaml:2: map keys must be plain strings"},
        {"? [1, 2]\n: 3\n", "bad.yaml:1: map keys must be plain strings"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = NULL;
        assert_int_not_equal(mm_cfg_parse_string(bad[i].text, "bad.yaml", &c, &e), 0);
        assert_null(c);
        if (!strstr(e.msg, bad[i].msg)) fail_msg("%s: got '%s'", bad[i].text, e.msg);
    }
}

static void test_big_map(void **st)
{
    /* 150,000 keys (was a linear duplicate scan per key: 48 s) */
    const size_t n = 150000;
    tbuf b = {0};
    for (size_t i = 0; i < n; i++) tb_printf(&b, "key%zu: %zu\n", i, i * 7);
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(b.s, "big.yaml", &c, &e), 0);
    assert_int_equal(c->n, n);
    for (size_t i = 0; i < n; i += 9973) {
        char k[32];
        snprintf(k, sizeof k, "key%zu", i);
        assert_string_equal(c->items[i]->key, k);     /* order kept */
        long v;
        assert_int_equal(mm_cfg_get_int(c, k, -1, 0, LONG_MAX, &v, &e), 0);
        assert_int_equal(v, (long)(i * 7));
    }
    mm_cfg_free(c);
    /* a duplicate at the very end is still found, with its line */
    tb_printf(&b, "key77777: again\n");
    assert_int_not_equal(mm_cfg_parse_string(b.s, "big.yaml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "big.yaml:150001: duplicate key 'key77777'"));
    /* merging two big maps through an include: overrides and new keys in order */
    b.n = 0;
    for (size_t i = 0; i < n; i++) tb_printf(&b, "key%zu: %zu\n", i, i * 7);
    const char *inc = write_tmp("bigbase.yaml", b.s);
    b.n = 0;
    tb_printf(&b, "include: %s\n", strrchr(inc, '/') + 1);
    for (size_t i = 0; i < n; i += 2) tb_printf(&b, "key%zu: over\n", i);
    for (size_t i = 0; i < 1000; i++) tb_printf(&b, "extra%zu: %zu\n", i, i);
    const char *topf = write_tmp("bigtop.yaml", b.s);
    assert_int_equal(mm_cfg_load_file(topf, &c, &e), 0);
    assert_int_equal(c->n, n + 1000);
    assert_string_equal(c->items[0]->key, "key0");
    assert_string_equal(c->items[0]->value, "over");
    assert_string_equal(c->items[1]->value, "7");
    assert_string_equal(c->items[n]->key, "extra0");
    assert_string_equal(mm_cfg_child(c, "key149999")->value, "1049993");
    mm_cfg_free(c);
    free(b.s);
}

static void test_include_budget(void **st)
{
    /* 16 tiny files, each including the next three times: 3^15 loads were allowed
     * (only the depth was limited); now a budget on includes in all stops it */
    char name[64], text[512];
    for (int i = 15; i >= 0; i--) {
        snprintf(name, sizeof name, "inc%d.yaml", i);
        if (i == 15) snprintf(text, sizeof text, "v: 1\n");
        else snprintf(text, sizeof text, "include: [mm_cfg_%d_inc%d.yaml, mm_cfg_%d_inc%d.yaml, mm_cfg_%d_inc%d.yaml]\n",
                      (int)getpid(), i + 1, (int)getpid(), i + 1, (int)getpid(), i + 1);
        write_tmp(name, text);
    }
    char top[256];
    snprintf(top, sizeof top, "/tmp/mm_cfg_%d_inc0.yaml", (int)getpid());
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_not_equal(mm_cfg_load_file(top, &c, &e), 0);
    assert_non_null(strstr(e.msg, "more than 256 includes in all"));
    assert_null(strchr(e.msg, '\n'));
    /* four levels of three (3 + 9 + 27 + 81 = 120 includes) still load */
    snprintf(top, sizeof top, "/tmp/mm_cfg_%d_inc11.yaml", (int)getpid());
    assert_int_equal(mm_cfg_load_file(top, &c, &e), 0);
    assert_string_equal(mm_cfg_child(c, "v")->value, "1");
    mm_cfg_free(c);
    for (int i = 0; i < 16; i++) {
        snprintf(top, sizeof top, "/tmp/mm_cfg_%d_inc%d.yaml", (int)getpid(), i);
        unlink(top);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getters_and_errors),
        cmocka_unit_test(test_syntax_error_names_line),
        cmocka_unit_test(test_include_and_set),
        cmocka_unit_test(test_alias_budget),
        cmocka_unit_test(test_big_map),
        cmocka_unit_test(test_include_budget),
    };
    return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
