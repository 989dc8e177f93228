/* test_mlp.c — the `mlp` and `cnn1d` learners end to end: accuracy parity
 * with scikit-learn's MLPClassifier on digits, determinism across thread
 * counts, HDF5 round trips, early stopping and history, parameter errors.
 *
 * Parity: tests/fixtures/nn_sklearn.h5 holds MLPClassifier's test accuracy
 * on the digits split of tests/fixtures/sk_datasets.h5 (hidden (64,),
 * defaults otherwise, seeds 0..2). Our mlp with the same settings (seeds
 * 0..2) must be within 1.5 points of sklearn's mean: the initial weights and
 * shuffles differ, so only the accuracy is comparable. */
#include "testutil.h"
#include "io/h5.h"
#include "learn/learner.h"

typedef struct ds {
    float *Xtr, *Xte;
    int32_t *ytr, *yte;
    size_t ntr, nte, d;
    int k;
} ds;

static void load_digits(ds *s)
{
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read("tests/fixtures/sk_datasets.h5", &f, &e)) fail_msg("%s", e.msg);
    int r;
    hsize_t d[4];
    assert_int_equal(mm_h5_read_f32(f, "digits/X_train", 2, &s->Xtr, &r, d, &e), 0);
    s->ntr = d[0];
    s->d = d[1];
    assert_int_equal(mm_h5_read_f32(f, "digits/X_test", 2, &s->Xte, &r, d, &e), 0);
    s->nte = d[0];
    assert_int_equal(mm_h5_read_i32(f, "digits/y_train", 1, &s->ytr, &r, d, &e), 0);
    assert_int_equal(mm_h5_read_i32(f, "digits/y_test", 1, &s->yte, &r, d, &e), 0);
    mm_h5_close(f);
    s->k = 10;
}

static void free_ds(ds *s) { free(s->Xtr); free(s->Xte); free(s->ytr); free(s->yte); }

static mm_cfg *cfg(const char *yaml)
{
    mm_cfg *c;
    mm_err e = {0};
    if (mm_cfg_parse_string(yaml, "params.yaml", &c, &e)) fail_msg("%s", e.msg);
    return c;
}

static mm_learner *fit(const char *name, const char *yaml, uint64_t seed, int threads, const mm_fit_data *d)
{
    mm_cfg *c = cfg(yaml);
    mm_learner *l;
    mm_err e = {0};
    if (mm_learner_create(name, c, seed, threads, &l, &e)) fail_msg("%s", e.msg);
    mm_cfg_free(c);
    if (mm_learner_fit(l, d, &e)) fail_msg("%s", e.msg);
    return l;
}

static double accuracy(const mm_learner *l, const float *X, const int32_t *y, size_t n, size_t d, int k)
{
    float *p = malloc(n * (size_t)k * sizeof *p);
    int32_t *yp = malloc(n * sizeof *yp);
    mm_err e = {0};
    if (mm_learner_predict_proba(l, X, n, d, p, &e)) fail_msg("%s", e.msg);
    mm_proba_argmax(p, n, k, yp);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += yp[i] == y[i];
    free(p);
    free(yp);
    return (double)ok / (double)n;
}

static void test_digits_parity(void **st)
{
    ds s;
    load_digits(&s);
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read("tests/fixtures/nn_sklearn.h5", &f, &e), 0);
    double *ref;
    int r;
    hsize_t d[4];
    assert_int_equal(mm_h5_read_f64(f, "digits_accuracy", 1, &ref, &r, d, &e), 0);
    mm_h5_close(f);
    double sk = 0, ours = 0;
    for (hsize_t i = 0; i < d[0]; i++) sk += ref[i] / (double)d[0];
    mm_fit_data fd = {.X = s.Xtr, .y = s.ytr, .n = s.ntr, .d = s.d, .n_classes = s.k};
    for (int seed = 0; seed < 3; seed++) {
        mm_learner *l = fit("mlp", "hidden_layer_sizes: [64]\nearly_stopping: false\n", (uint64_t)seed, 2, &fd);
        double a = accuracy(l, s.Xte, s.yte, s.nte, s.d, s.k);
        const mm_history *h = mm_learner_history(l);
        printf("  seed %d: accuracy %.4f after %zu epochs\n", seed, a, h->n);
        ours += a / 3;
        mm_learner_free(l);
    }
    printf("  digits accuracy: ours %.4f, MLPClassifier %.4f, difference %.2f points (tol 1.5)\n", ours, sk,
           100 * fabs(ours - sk));
    assert_true(fabs(ours - sk) <= 0.015);
    free(ref);
    free_ds(&s);
}

/* Saved parameters of a fitted learner, as bytes of its predictions on X. */
static float *proba_of(const mm_learner *l, const float *X, size_t n, size_t d, int k)
{
    float *p = malloc(n * (size_t)k * sizeof *p);
    mm_err e = {0};
    if (mm_learner_predict_proba(l, X, n, d, p, &e)) fail_msg("%s", e.msg);
    return p;
}

static void roundtrip(const mm_learner *l, const float *X, size_t n, size_t d, int k)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/mm_mlp_%d.h5", (int)getpid());
    mm_err e = {0};
    mm_h5_out o;
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    hid_t g = mm_h5_group(o.file, "model", &e);
    if (mm_learner_save(l, g, &e)) fail_msg("%s", e.msg);
    H5Gclose(g);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    hid_t f;
    assert_int_equal(mm_h5_open_read(path, &f, &e), 0);
    g = mm_h5_open_group(f, "model", &e);
    mm_learner *back;
    if (mm_learner_load(g, 1, &back, &e)) fail_msg("%s", e.msg);
    H5Gclose(g);
    mm_h5_close(f);
    float *a = proba_of(l, X, n, d, k), *b = proba_of(back, X, n, d, k);
    assert_memory_equal(a, b, n * (size_t)k * sizeof *a);
    free(a); free(b);
    mm_learner_free(back);
    unlink(path);
}

#define SMALL_CNN "filters: [8, 8, 8, 8, 8]\ndense_units: 16\nepochs: 3\nbatch_size: 64\n"

/* 1 vs 2 threads: identical predictions (so identical weights), for both
 * learners with dropout and batch norm on; the save/load round trip too. */
static void test_threads_and_roundtrip(void **st)
{
    ds s;
    load_digits(&s);
    size_t n = 400;
    mm_fit_data fd = {.X = s.Xtr, .y = s.ytr, .n = n, .d = s.d, .n_classes = s.k,
                      .X_val = s.Xtr + n * s.d, .y_val = s.ytr + n, .n_val = 100};
    const char *names[2] = {"mlp", "cnn1d"};
    const char *params[2] = {"hidden_layer_sizes: [32, 16]\ndropout: 0.2\nbatch_norm: true\nmax_iter: 5\n"
                             "batch_size: 50\n", SMALL_CNN};
    for (int m = 0; m < 2; m++) {
        mm_learner *l1 = fit(names[m], params[m], 7, 1, &fd), *l2 = fit(names[m], params[m], 7, 2, &fd);
        float *a = proba_of(l1, s.Xte, 100, s.d, s.k), *b = proba_of(l2, s.Xte, 100, s.d, s.k);
        assert_memory_equal(a, b, 100 * (size_t)s.k * sizeof *a);
        printf("  %s: 1 and 2 threads give identical predictions\n", names[m]);
        roundtrip(l1, s.Xte, 100, s.d, s.k);
        printf("  %s: save/load round trip gives identical predictions\n", names[m]);
        /* a different seed gives a different model */
        mm_learner *l3 = fit(names[m], params[m], 8, 1, &fd);
        float *c = proba_of(l3, s.Xte, 100, s.d, s.k);
        assert_true(memcmp(a, c, 100 * (size_t)s.k * sizeof *a) != 0);
        free(a); free(b); free(c);
        mm_learner_free(l1); mm_learner_free(l2); mm_learner_free(l3);
    }
    free_ds(&s);
}

/* Early stopping on X_val: history with validation curves, best epoch
 * restored (restore-best), stop before max_iter on a plateau. */
static void test_early_stopping(void **st)
{
    ds s;
    load_digits(&s);
    assert_int_equal(mm_learner_find("mlp")->wants_validation, 1);
    assert_int_equal(mm_learner_find("cnn1d")->wants_validation, 1);
    mm_fit_data fd = {.X = s.Xtr, .y = s.ytr, .n = 1000, .d = s.d, .n_classes = s.k,
                      .X_val = s.Xtr + 1000 * s.d, .y_val = s.ytr + 1000, .n_val = s.ntr - 1000};
    /* MLPClassifier's default is no early stopping: the validation part is not looked at */
    mm_learner *l = fit("mlp", "hidden_layer_sizes: [8]\nmax_iter: 5\n", 3, 2, &fd);
    const mm_history *h = mm_learner_history(l);
    assert_non_null(h);
    assert_null(h->val_acc);
    assert_int_equal(h->n, 5);
    mm_learner_free(l);
    l = fit("mlp", "hidden_layer_sizes: [32]\nn_iter_no_change: 3\nmax_iter: 300\n"
            "learning_rate_init: 0.01\nearly_stopping: true\n", 3, 2, &fd);
    h = mm_learner_history(l);
    assert_non_null(h);
    assert_non_null(h->val_acc);
    assert_true(h->n < 300);
    assert_true(h->best >= 0 && (size_t)h->best < h->n);
    for (size_t i = 0; i < h->n; i++) assert_true(h->val_acc[i] <= h->val_acc[h->best]);
    double va = accuracy(l, fd.X_val, fd.y_val, fd.n_val, s.d, s.k);
    printf("  stopped after %zu epochs, best epoch %ld: val acc %.4f (restored model: %.4f)\n", h->n, h->best + 1,
           (double)h->val_acc[h->best], va);
    assert_true(fabs(va - h->val_acc[h->best]) < 1e-6);
    mm_learner_free(l);

    /* cnn1d on digits (64 features as a sequence), reduced widths: it learns */
    fd.n = 1000;
    l = fit("cnn1d", "filters: [16, 16, 16, 16, 16]\ndense_units: 32\nepochs: 8\nlearning_rate: 0.005\n", 1, 2, &fd);
    double a = accuracy(l, s.Xte, s.yte, s.nte, s.d, s.k);
    h = mm_learner_history(l);
    printf("  cnn1d (reduced widths) on digits: test accuracy %.4f after %zu epochs (best %ld)\n", a, h->n,
           h->best + 1);
    assert_true(a > 0.85);
    mm_learner_free(l);

    /* schedules, decoupled decay, label smoothing, balanced weights: valid and trainable */
    l = fit("mlp", "hidden_layer_sizes: 16\nmax_iter: 15\nbatch_size: 50\nlr_schedule: cosine\nweight_decay: 0.01\n"
            "weight_decay_mode: decoupled\nlabel_smoothing: 0.1\nclass_weight: balanced\nactivation: gelu\n"
            "learning_rate_init: 0.01\n", 2, 1, &fd);
    a = accuracy(l, s.Xte, s.yte, s.nte, s.d, s.k);
    printf("  mlp with cosine lr, AdamW, smoothing, balanced weights, GELU: test accuracy %.4f\n", a);
    assert_true(a > 0.8);
    mm_learner_free(l);
    /* no X_val: a validation fraction is carved from the training rows */
    fd.X_val = NULL; fd.y_val = NULL; fd.n_val = 0;
    l = fit("mlp", "hidden_layer_sizes: [16]\nmax_iter: 4\nlr_schedule: step\nstep_size: 2\nearly_stopping: true\n", 2, 1,
            &fd);
    assert_non_null(mm_learner_history(l)->val_loss);
    mm_learner_free(l);
    free_ds(&s);
}

static void expect_error(const char *name, const char *yaml, const char *needle)
{
    mm_cfg *c = cfg(yaml);
    mm_learner *l = NULL;
    mm_err e = {0};
    assert_int_not_equal(mm_learner_create(name, c, 0, 1, &l, &e), 0);
    mm_cfg_free(c);
    if (!strstr(e.msg, needle)) fail_msg("expected '%s' in: %s", needle, e.msg);
}

static void test_bad_params(void **st)
{
    expect_error("mlp", "hiden_layer_sizes: [10]\n", "hiden_layer_sizes");
    expect_error("mlp", "hidden_layer_sizes: [10, 0]\n", "params.yaml:1: key 'hidden_layer_sizes': item 2");
    expect_error("mlp", "hidden_layer_sizes: {a: 1}\n", "expected a list of 1 to 16 integers");
    expect_error("mlp", "activation: sigmoid\n", "expected one of identity, relu, tanh, gelu, hardswish");
    expect_error("mlp", "batch_size: many\n", "key 'batch_size': expected 'auto' or an integer >= 1, got 'many'");
    expect_error("mlp", "learning_rate_init: -1\n", "learning_rate_init");
    expect_error("mlp", "weight_decay_mode: l1\n", "expected one of l2, decoupled");
    expect_error("mlp", "beta_2: 1\n", "beta_2");
    expect_error("mlp", "dropout: 1.5\n", "dropout");
    expect_error("mlp", "epochs: 10\n", "epochs");                 /* the mlp says max_iter */
    expect_error("cnn1d", "max_iter: 10\n", "max_iter");           /* the cnn says epochs */
    expect_error("cnn1d", "filters: [8, 8]\n", "key 'filters': expected 5 values");
    expect_error("cnn1d", "kernel_sizes: [5, 5, 5, 3, 0]\n", "item 5");
    expect_error("cnn1d", "lr_schedule: cosine\nlr_min: 1\n", "lr_min");
    /* fit errors: unfitted predict, wrong feature count */
    mm_learner *l;
    mm_err e = {0};
    assert_int_equal(mm_learner_create("mlp", NULL, 0, 1, &l, &e), 0);
    float X[4] = {0}, p[4];
    assert_int_not_equal(mm_learner_predict_proba(l, X, 1, 4, p, &e), 0);
    assert_non_null(strstr(e.msg, "not fitted"));
    mm_learner_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits_parity),
        cmocka_unit_test(test_threads_and_roundtrip),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests_name("mlp", tests, NULL, NULL);
}
