/* test_tsne.c — t-SNE against scikit-learn 1.2.1 on 300 digits PCA'd to 50
 * dims (fixture tests/fixtures/tsne_digits.h5 from tests/ref/gen_tsne.py):
 * joint P, PCA init, the gradient at a fixed embedding, and the final KL;
 * determinism across thread counts; error paths. */
#include "testutil.h"
#include "eval/tsne.h"
#include "io/h5.h"

#define FIX "tests/fixtures/tsne_digits.h5"

static float *read_f32(hid_t f, const char *name, size_t *n0, size_t *n1)
{
    float *v;
    int r;
    hsize_t d[4] = {0, 1, 1, 1};
    mm_err e = {0};
    if (mm_h5_read_f32(f, name, -1, &v, &r, d, &e)) fail_msg("%s", e.msg);
    *n0 = (size_t)d[0];
    if (n1) *n1 = r > 1 ? (size_t)d[1] : 1;
    return v;
}

static double read_scalar(hid_t f, const char *name)
{
    double *v, x;
    int r;
    hsize_t d[4];
    mm_err e = {0};
    if (mm_h5_read_f64(f, name, -1, &v, &r, d, &e)) fail_msg("%s", e.msg);
    x = v[0];
    free(v);
    return x;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    return tu_max_abs_diff(a, b, n) / tu_max_abs(b, n);
}

static hid_t fixture(void)
{
    hid_t f;
    mm_err e = {0};
    mm_h5_init();
    if (mm_h5_open_read(FIX, &f, &e)) fail_msg("%s", e.msg);
    return f;
}

static void test_pieces_match_sklearn(void **st)
{
    (void)st;
    hid_t f = fixture();
    size_t n, d, m, two;
    float *X = read_f32(f, "X", &n, &d);
    mm_err e = {0};
    /* joint P: non-zeros per row exactly (same kNN sets), row sums to 1e-5
     * relative (distances rounded differently: sklearn float32 sqrt then square;
     * P stored as float32) */
    mm_tsne_p *P;
    assert_int_equal(mm_tsne_joint_p(X, n, d, 30.0, 0, &P, &e), 0);
    float *rs = read_f32(f, "p_rowsum", &m, NULL), *ours = malloc(n * sizeof *ours);
    int32_t *nnz;
    int r;
    hsize_t dd[4];
    assert_int_equal(mm_h5_read_i32(f, "p_nnz", 1, &nnz, &r, dd, &e), 0);
    size_t bad_nnz = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t k = P->indptr[i]; k < P->indptr[i + 1]; k++) s += P->val[k];
        ours[i] = (float)s;
        bad_nnz += (P->indptr[i + 1] - P->indptr[i]) != nnz[i];
    }
    double e_rows = rel_err(ours, rs, n);
    printf("joint P: %zu rows with another non-zero count, row sums max rel err %.3g (tol 1e-5)\n",
           bad_nnz, e_rows);
    assert_int_equal(bad_nnz, 0);
    assert_true(e_rows < 1e-5);
    /* PCA init: sklearn uses randomized SVD in float32, we use LAPACK in
     * double; 1e-4 relative covers float32 rounding of the projections */
    float *init = read_f32(f, "init", &m, &two), *y0 = malloc(2 * n * sizeof *y0);
    assert_int_equal(mm_tsne_pca_init(X, n, d, y0, &e), 0);
    double e_init = rel_err(y0, init, 2 * n);
    printf("PCA init: max rel err %.3g (tol 1e-4)\n", e_init);
    assert_true(e_init < 1e-4);
    /* gradient at a fixed random embedding, max |diff| / max |sklearn|.
     * angle 0 (exact sums) and angle 0.5 (same quadtree, same summary rule,
     * so the same cells are used): only accumulation precision differs
     * (sklearn float32, ours double) → 1e-5 relative. */
    float *Y = read_f32(f, "Y", &m, &two), *g = malloc(2 * n * sizeof *g);
    float *g0 = read_f32(f, "grad_exact", &m, &two), *g5 = read_f32(f, "grad_bh", &m, &two);
    int ok;
    double kl0 = mm_tsne_gradient(P, Y, 0.0, 1, 0, g, &ok);
    assert_true(ok);
    double eg0 = rel_err(g, g0, 2 * n), ekl0 = fabs(kl0 / read_scalar(f, "kl_exact_at_Y") - 1);
    double kl5 = mm_tsne_gradient(P, Y, 0.5, 1, 0, g, &ok);
    double eg5 = rel_err(g, g5, 2 * n), ekl5 = fabs(kl5 / read_scalar(f, "kl_bh_at_Y") - 1);
    printf("gradient angle 0: rel err %.3g, KL rel err %.3g (tol 1e-5)\n", eg0, ekl0);
    printf("gradient angle 0.5: rel err %.3g, KL rel err %.3g (tol 1e-5)\n", eg5, ekl5);
    assert_true(eg0 < 1e-5 && ekl0 < 1e-5);
    assert_true(eg5 < 1e-5 && ekl5 < 1e-5);
    free(X); free(rs); free(ours); free(nnz); free(init); free(y0); free(Y); free(g); free(g0);
    free(g5);
    mm_tsne_p_free(P);
    mm_h5_close(f);
}

static void test_kl_within_5_percent_and_deterministic(void **st)
{
    (void)st;
    hid_t f = fixture();
    size_t n, d;
    float *X = read_f32(f, "X", &n, &d);
    double kl_ref = read_scalar(f, "kl");
    mm_tsne_params p = mm_tsne_params_default();
    mm_tsne_info info;
    mm_err e = {0};
    float *xy1 = malloc(2 * n * sizeof *xy1), *xy2 = malloc(2 * n * sizeof *xy2);
    p.n_threads = 1;
    assert_int_equal(mm_tsne_run(X, n, d, &p, xy1, &info, &e), 0);
    /* the 5% bound is the parity criterion: both optimise the same
     * objective from the same start; float rounding makes trajectories drift */
    printf("KL ours %.5f (BH estimate; exact-Z %.5f) vs sklearn %.5f: ratio %.4f (must be in "
           "[0.95, 1.05]); %zu iterations, learning rate %.1f\n", info.kl, info.kl_exact, kl_ref,
           info.kl / kl_ref, info.n_iter + 1, info.learning_rate);
    assert_true(info.kl <= 1.05 * kl_ref && info.kl >= 0.95 * kl_ref);
    assert_true(fabs(info.kl_exact / info.kl - 1) < 0.05);
    assert_int_equal(info.n_iter, 999);
    p.n_threads = 2;
    mm_tsne_info info2;
    assert_int_equal(mm_tsne_run(X, n, d, &p, xy2, &info2, &e), 0);
    assert_memory_equal(xy1, xy2, 2 * n * sizeof *xy1);    /* bit-identical for 1 and 2 threads */
    assert_true(info.kl == info2.kl);
    free(X); free(xy1); free(xy2);
    mm_h5_close(f);
}

static void test_errors(void **st)
{
    (void)st;
    mm_err e = {0};
    float X[10 * 3], xy[20];
    for (int i = 0; i < 30; i++) X[i] = (float)((i * 37) % 11);
    mm_tsne_params p = mm_tsne_params_default();
    assert_int_equal(mm_tsne_run(X, 10, 3, &p, xy, NULL, &e), MM_EINVAL);
    printf("error: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "perplexity 30 must be in (0, number of samples = 10)"));
    p.perplexity = 3;
    X[7] = NAN;
    assert_int_equal(mm_tsne_run(X, 10, 3, &p, xy, NULL, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "sample 2, feature 1 is nan"));
    X[7] = 1;
    assert_int_equal(mm_tsne_run(X, 1, 3, &p, xy, NULL, &e), MM_EINVAL);
    assert_int_equal(mm_tsne_run(X, 10, 1, &p, xy, NULL, &e), MM_EINVAL);
    assert_non_null(strstr(e.msg, "at least 2 features"));
    /* all samples identical: PCA init is degenerate, said so */
    float same[10 * 3];
    for (int i = 0; i < 30; i++) same[i] = 1.5f;
    assert_int_equal(mm_tsne_run(same, 10, 3, &p, xy, NULL, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "degenerate"));
    /* tiny input works (random init, 250 + few iterations) */
    p.init = MM_TSNE_INIT_RANDOM;
    p.n_iter = 300;
    mm_tsne_info info;
    assert_int_equal(mm_tsne_run(X, 10, 3, &p, xy, &info, &e), 0);
    for (int i = 0; i < 20; i++) assert_true(isfinite(xy[i]));
    /* config */
    mm_cfg *c;
    assert_int_equal(mm_cfg_parse_string("perplexity: 10\nlearning_rate: auto\ninit: random\n",
                                         "t.yaml", &c, &e), 0);
    assert_int_equal(mm_tsne_params_from_cfg(c, &p, &e), 0);
    assert_true(p.perplexity == 10 && p.learning_rate == 0 && p.init == MM_TSNE_INIT_RANDOM);
    mm_cfg_free(c);
    assert_int_equal(mm_cfg_parse_string("perplexity: 10\nlearning_rat: 3\n", "t.yaml", &c, &e), 0);
    assert_int_not_equal(mm_tsne_params_from_cfg(c, &p, &e), 0);
    printf("config error: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "learning_rat"));
    mm_cfg_free(c);
    assert_int_equal(mm_cfg_parse_string("angle: 2\n", "t.yaml", &c, &e), 0);
    assert_int_not_equal(mm_tsne_params_from_cfg(c, &p, &e), 0);
    assert_non_null(strstr(e.msg, "t.yaml:1: key 'angle'"));
    mm_cfg_free(c);
}


/* `melodic tsne` end to end on a small table, and its error messages. */
static void test_cli(void **st)
{
    (void)st;
    hid_t f = fixture();
    size_t n, d;
    float *X = read_f32(f, "X", &n, &d);
    mm_h5_close(f);
    n = 120;
    int32_t lab[120];
    for (size_t i = 0; i < n; i++) lab[i] = (int32_t)(i % 3);
    char in[256], out[256], log[256];
    snprintf(in, sizeof in, "/tmp/mm_tsne_in_%d.h5", (int)getpid());
    snprintf(out, sizeof out, "/tmp/mm_tsne_out_%d.h5", (int)getpid());
    snprintf(log, sizeof log, "/tmp/mm_tsne_err_%d.txt", (int)getpid());
    mm_h5_out o;
    mm_err e = {0};
    hsize_t dims[2] = {n, d}, n1 = n;
    assert_int_equal(mm_h5_create(in, &o, &e), 0);
    assert_int_equal(mm_h5_write_f32(o.file, "features", X, 2, dims, &e), 0);
    assert_int_equal(mm_h5_write_i32(o.file, "labels", lab, 1, &n1, &e), 0);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    assert_int_equal(tu_system("%s tsne %s -o %s --perplexity 10 --threads 2 --set n_iter=300 "
                               ">/dev/null", tu_bin(), in, out), 0);
    hid_t g;
    assert_int_equal(mm_h5_open_read(out, &g, &e), 0);
    size_t m, two;
    float *xy = read_f32(g, "tsne/xy", &m, &two);
    assert_int_equal(m, n);
    assert_int_equal(two, 2);
    for (size_t i = 0; i < 2 * n; i++) assert_true(isfinite(xy[i]));
    int32_t *l2;
    int r;
    hsize_t dd[4];
    assert_int_equal(mm_h5_read_i32(g, "tsne/labels", 1, &l2, &r, dd, &e), 0);
    assert_memory_equal(l2, lab, n * sizeof *lab);
    hid_t gt = mm_h5_open_group(g, "tsne", &e);
    double kl;
    assert_int_equal(mm_h5_attr_get_f64(gt, "kl", &kl, &e), 0);
    assert_true(kl > 0 && kl < 5);
    H5Gclose(gt);
    mm_h5_close(g);
    free(xy); free(l2);
    /* errors: one line naming the problem, exit status 1 or 2 */
    const struct { const char *args; int status; const char *msg; } bad[] = {
        {"/nonexistent.h5 -o /tmp/x.h5", 1, "/nonexistent.h5"},
        {"IN --set perplexty=3 -o OUT", 2, "unknown key 'perplexty'"},
        {"IN --perplexity 500 -o OUT", 1, "perplexity 500 must be in (0, number of samples = 120)"},
        {"IN", 2, "needs a TABLE.h5 and -o OUT.h5"},
        {"IN -o OUT --bogus", 2, "unknown option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[512], *p = args;
        const char *s = bad[i].args;
        while (*s && p < args + sizeof args - 300) {
            if (!strncmp(s, "IN", 2)) { p += sprintf(p, "%s", in); s += 2; }
            else if (!strncmp(s, "OUT", 3)) { p += sprintf(p, "%s.bad", out); s += 3; }
            else *p++ = *s++;
        }
        *p = 0;
        int st2 = tu_system("%s tsne %s 2>%s >/dev/null", tu_bin(), args, log);
        char line[1024] = "";
        FILE *fp = fopen(log, "r");
        assert_non_null(fp);
        if (!fgets(line, sizeof line, fp)) line[0] = 0;
        fclose(fp);
        printf("melodic tsne %s -> %d: %s", bad[i].args, st2, line);
        assert_int_equal(st2, bad[i].status);
        assert_non_null(strstr(line, "melodic tsne: "));
        assert_non_null(strstr(line, bad[i].msg));
    }
    unlink(in); unlink(out); unlink(log);
    free(X);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_match_sklearn),
        cmocka_unit_test(test_kl_within_5_percent_and_deterministic),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("tsne", tests, NULL, NULL);
}
