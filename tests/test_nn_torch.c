/* test_nn_torch.c — the training engine against PyTorch 1.13
 * (tests/ref/gen_nn.py → tests/fixtures/nn_torch.h5), plus the network
 * container's save/load and its error paths.
 *
 * For each case (an MLP with batch norm and GELU, class weights and label
 * smoothing under Adam + coupled L2; the Table I CNN at reduced widths under
 * AdamW; the Table I CNN at the paper's widths under Adam) the same initial
 * weights and the same 20 minibatches are run through mm_train_step.
 * Metric: max |ours - torch| / max |torch| over each array (losses, final
 * parameters, batch-norm running statistics, eval logits). Tolerance 1e-4
 * (the bound): both sides compute in float32 with different
 * summation orders (~1e-6 per step). The generator also measures how far
 * torch float32 is from torch float64 on each case; where that spread is
 * itself above 1e-4 (the full-width Table I net with batch 8: near-ties in
 * ReLU → batch norm → max-pool make it ill-conditioned in float32) the bound
 * is 3x that spread, since no float32 engine can do better than torch does
 * against itself. The mlp and cnn cases are well conditioned (spread ~1e-6)
 * and held to 1e-4. */
#include "testutil.h"
#include "io/h5.h"
#include "nn/net.h"
#include "nn/train.h"

#define TOL 1e-4

static double rel_err(const float *a, const float *b, size_t n)
{
    double m = tu_max_abs(b, n);
    return tu_max_abs_diff(a, b, n) / (m > 0 ? m : 1);
}

static void add(mm_net *net, mm_net_spec s)
{
    mm_err e = {0};
    if (mm_net_add(net, &s, &e)) fail_msg("%s", e.msg);
}

static mm_net *build_mlp(void)
{
    mm_net *net;
    mm_err e = {0};
    assert_int_equal(mm_net_create(1, 20, &net, &e), 0);
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = 16});
    add(net, (mm_net_spec){.kind = MM_NET_BATCHNORM});
    add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_RELU});
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = 12});
    add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_GELU});
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = 4});
    assert_int_equal(mm_net_build(net, &e), 0);
    return net;
}

/* The Table I stack (as src/learn/cnn1d.c builds it, dropout off). */
static mm_net *build_table1(size_t L, const int *filters, int dense, int k)
{
    static const int kern[5] = {5, 5, 5, 3, 3}, pool[5] = {5, 5, 5, 5, 3};
    mm_net *net;
    mm_err e = {0};
    assert_int_equal(mm_net_create(L, 1, &net, &e), 0);
    for (int i = 0; i < 5; i++) {
        add(net, (mm_net_spec){.kind = MM_NET_CONV1D, .units = filters[i], .kernel = kern[i], .stride = 1,
                               .padding = MM_NN_PAD_SAME});
        add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_RELU});
        add(net, (mm_net_spec){.kind = MM_NET_BATCHNORM});
        add(net, (mm_net_spec){.kind = MM_NET_MAXPOOL1D, .kernel = pool[i], .stride = 2, .padding = MM_NN_PAD_SAME});
    }
    add(net, (mm_net_spec){.kind = MM_NET_FLATTEN});
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = dense});
    add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_RELU});
    add(net, (mm_net_spec){.kind = MM_NET_BATCHNORM});
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = k});
    assert_int_equal(mm_net_build(net, &e), 0);
    return net;
}

/* gen_nn.py's formula_init: value i of the tensor of layer li is
 * (2u - 1)/sqrt(fan_in), u = splitmix64(i + (2 li + is_bias) 2^32) >> 11 / 2^53. */
static uint64_t splitmix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void formula_init(mm_net *net)
{
    float *p = mm_net_params(net);
    for (size_t t = 0; t < mm_net_n_tensors(net); t++) {
        mm_net_tensor T = mm_net_tensor_at(net, t);
        const mm_net_spec *s = mm_net_layer(net, T.layer);
        if (s->kind != MM_NET_DENSE && s->kind != MM_NET_CONV1D) continue;
        mm_net_tensor W = mm_net_tensor_at(net, t & ~(size_t)1);
        double scale = 1 / sqrt((double)W.count / s->units);
        uint64_t stream = 2 * (uint64_t)T.layer + !T.is_kernel;
        for (size_t i = 0; i < T.count; i++) {
            double u = (double)(splitmix((uint64_t)i + (stream << 32)) >> 11) * 0x1.0p-53;
            p[T.offset + i] = (float)((2 * u - 1) * scale);
        }
    }
}

static void run_case(const char *name, mm_net *net, int wino_f65)
{
    mm_err e = {0};
    hid_t f;
    if (mm_h5_open_read("tests/fixtures/nn_torch.h5", &f, &e)) fail_msg("%s", e.msg);
    hid_t g = mm_h5_open_group(f, name, &e);
    assert_true(g >= 0);
    int64_t n_params, formula, stride, k, decoupled;
    double lr, wd, smoothing, sp_loss, sp_params, sp_logits;
    assert_int_equal(mm_h5_attr_get_i64(g, "n_params", &n_params, &e), 0);
    assert_int_equal(mm_h5_attr_get_i64(g, "formula_init", &formula, &e), 0);
    assert_int_equal(mm_h5_attr_get_i64(g, "sample_stride", &stride, &e), 0);
    assert_int_equal(mm_h5_attr_get_i64(g, "n_classes", &k, &e), 0);
    assert_int_equal(mm_h5_attr_get_i64(g, "decoupled", &decoupled, &e), 0);
    assert_int_equal(mm_h5_attr_get_f64(g, "lr", &lr, &e), 0);
    assert_int_equal(mm_h5_attr_get_f64(g, "weight_decay", &wd, &e), 0);
    assert_int_equal(mm_h5_attr_get_f64(g, "smoothing", &smoothing, &e), 0);
    assert_int_equal(mm_h5_attr_get_f64(g, "f32_vs_f64_loss", &sp_loss, &e), 0);
    assert_int_equal(mm_h5_attr_get_f64(g, "f32_vs_f64_params", &sp_params, &e), 0);
    assert_int_equal(mm_h5_attr_get_f64(g, "f32_vs_f64_logits", &sp_logits, &e), 0);
    /* 1e-4, or 3x torch's own float32-vs-float64 spread on an ill-conditioned case */
    double tl = fmax(TOL, 3 * sp_loss), tp = fmax(TOL, 3 * sp_params), tz = fmax(TOL, 3 * sp_logits);
    /* Winograd F(6, 5) (here the third conv, 10 outputs) rounds 3.4x more
     * than F(4, 5) in float32 (7.1x vs 2.1x im2col's own error, measured by
     * scripts/gen_winograd.py --error); its eval logits are held to 3x the
     * bound (measured 1.0e-4, 3.6e-5 with F(4, 5) and im2col's run). */
    if (wino_f65) tz *= 3;
    double ts = fmax(tp, fmax(tl, tz));
    assert_int_equal((size_t)n_params, mm_net_n_params(net));
    float *p0 = NULL, *p1, *b1, *X, *logits, *cw = NULL;
    int32_t *y, *batches;
    double *losses;
    int r;
    hsize_t d[4], dX[4], dB[4], dp[4], db[4];
    if (!formula) {
        assert_int_equal(mm_h5_read_f32(g, "params0", 1, &p0, &r, d, &e), 0);
        memcpy(mm_net_params(net), p0, (size_t)n_params * sizeof(float));
    } else {
        formula_init(net);
    }
    assert_int_equal(mm_h5_read_f32(g, "params1", 1, &p1, &r, dp, &e), 0);
    assert_int_equal(mm_h5_read_f32(g, "buffers1", 1, &b1, &r, db, &e), 0);
    assert_int_equal(mm_h5_read_f32(g, "X", 2, &X, &r, dX, &e), 0);
    assert_int_equal(mm_h5_read_i32(g, "y", 1, &y, &r, d, &e), 0);
    assert_int_equal(mm_h5_read_i32(g, "batches", 2, &batches, &r, dB, &e), 0);
    assert_int_equal(mm_h5_read_f64(g, "losses", 1, &losses, &r, d, &e), 0);
    assert_int_equal(mm_h5_read_f32(g, "logits", 2, &logits, &r, d, &e), 0);
    if (mm_h5_exists(g, "class_weight")) assert_int_equal(mm_h5_read_f32(g, "class_weight", 1, &cw, &r, d, &e), 0);
    H5Gclose(g);
    mm_h5_close(f);

    size_t n = dX[0], dim = dX[1], steps = dB[0], B = dB[1];
    assert_int_equal(dim, mm_net_in_dim(net));
    mm_adam_params ap = mm_adam_params_default();
    ap.lr = lr;
    ap.weight_decay = wd;
    ap.wd_mode = decoupled ? MM_ADAM_WD_DECOUPLED : MM_ADAM_WD_L2;
    mm_adam *opt;
    assert_int_equal(mm_adam_create(mm_net_n_params(net), &ap, &opt, &e), 0);
    float *Xb = malloc(B * dim * sizeof *Xb);
    int32_t *yb = malloc(B * sizeof *yb);
    double max_loss_err = 0;
    for (size_t s = 0; s < steps; s++) {
        for (size_t i = 0; i < B; i++) {
            size_t row = (size_t)batches[s * B + i];
            memcpy(Xb + i * dim, X + row * dim, dim * sizeof *X);
            yb[i] = y[row];
        }
        double loss;
        if (mm_train_step(net, opt, Xb, yb, B, cw, smoothing, 0, lr, 0, s, &loss, NULL, &e)) fail_msg("%s", e.msg);
        double le = fabs(loss - losses[s]) / fabs(losses[s]);
        if (le > max_loss_err) max_loss_err = le;
    }
    /* final parameters (every stride-th), running statistics, eval logits */
    size_t np = dp[0];
    float *ours = malloc(np * sizeof *ours);
    for (size_t i = 0; i < np; i++) ours[i] = mm_net_params(net)[i * (size_t)stride];
    double pe = rel_err(ours, p1, np);
    double be = rel_err(mm_net_buffers(net), b1, db[0]);
    float *z = malloc(n * (size_t)k * sizeof *z);
    assert_int_equal(mm_net_infer(net, X, n, z, &e), 0);
    double ze = rel_err(z, logits, n * (size_t)k);
    printf("  %-9s %zu steps: loss rel err %.2e (tol %.1e), params %.2e (%.1e), running stats %.2e (%.1e), "
           "eval logits %.2e (%.1e)\n", name, steps, max_loss_err, tl, pe, tp, be, ts, ze, tz);
    assert_true(max_loss_err < tl);
    assert_true(pe < tp);
    assert_true(be < ts);
    assert_true(ze < tz);
    free(z); free(ours); free(Xb); free(yb); mm_adam_free(opt);
    free(p0); free(p1); free(b1); free(X); free(y); free(batches); free(losses); free(logits); free(cw);
}

static void test_mlp_vs_torch(void **st)
{
    mm_net *net = build_mlp();
    run_case("mlp", net, 0);
    mm_net_free(net);
}

static void test_cnn_vs_torch(void **st)
{
    static const int f[5] = {16, 16, 8, 8, 8};
    mm_net *net = build_table1(40, f, 16, 4);
    run_case("cnn", net, 0);
    mm_net_free(net);
}

static void test_cnn_full_widths_vs_torch(void **st)
{
    static const int f[5] = {512, 512, 256, 256, 128};
    mm_net *net = build_table1(40, f, 512, 7);
    run_case("cnn_full", net, 1);
    mm_net_free(net);
}

/* The same case with every convolution by im2col: the engine's arithmetic
 * with no Winograd rounding, held to the plain bounds (1e-4 or 3x spread). */
static void test_cnn_full_widths_im2col_vs_torch(void **st)
{
    static const int f[5] = {512, 512, 256, 256, 128};
    mm_net *net = build_table1(40, f, 512, 7);
    mm_nn_conv_algo old = mm_nn_conv1d_algo(MM_NN_CONV_IM2COL);
    run_case("cnn_full", net, 0);
    mm_nn_conv1d_algo(old);
    mm_net_free(net);
}

/* Save → load gives the same architecture and identical eval logits. */
static void test_save_load(void **st)
{
    static const int f[5] = {4, 4, 3, 3, 2};
    mm_net *net = build_table1(17, f, 6, 3), *back = NULL;
    mm_net_init(net, MM_NET_INIT_GLOROT, 5);
    float X[2 * 17], z1[6], z2[6];
    for (int i = 0; i < 34; i++) X[i] = (float)sin(i * 1.3);
    for (size_t i = 0; i < mm_net_n_buffers(net); i++) mm_net_buffers(net)[i] += 0.25f;   /* non-trivial stats */
    mm_err e = {0};
    char path[256];
    snprintf(path, sizeof path, "/tmp/mm_net_%d.h5", (int)getpid());
    mm_h5_out o;
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    hid_t g = mm_h5_group(o.file, "net", &e);
    assert_int_equal(mm_net_save(net, g, &e), 0);
    H5Gclose(g);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
    hid_t fh;
    assert_int_equal(mm_h5_open_read(path, &fh, &e), 0);
    g = mm_h5_open_group(fh, "net", &e);
    if (mm_net_load(g, &back, &e)) fail_msg("%s", e.msg);
    H5Gclose(g);
    mm_h5_close(fh);
    assert_int_equal(mm_net_n_layers(back), mm_net_n_layers(net));
    assert_int_equal(mm_net_infer(net, X, 2, z1, &e), 0);
    assert_int_equal(mm_net_infer(back, X, 2, z2, &e), 0);
    assert_memory_equal(z1, z2, sizeof z1);
    mm_net_free(back);
    mm_net_free(net);

    /* a file whose params do not fit the architecture is refused clearly */
    assert_int_equal(mm_h5_open_rw(path, &fh, &e), 0);
    g = mm_h5_open_group(fh, "net", &e);
    float junk[3] = {1, 2, 3};
    hsize_t d3 = 3;
    assert_int_equal(mm_h5_write_f32(g, "params", junk, 1, &d3, &e), 0);
    assert_int_not_equal(mm_net_load(g, &back, &e), 0);
    assert_non_null(strstr(e.msg, "'params' holds 3 values"));
    /* a corrupted layer table too */
    int32_t bad[6] = {MM_NET_CONV1D, 0, 5, 1, 1, 0};
    hsize_t d2[2] = {1, 6};
    assert_int_equal(mm_h5_write_i32(g, "layers", bad, 2, d2, &e), 0);
    float rate = 0;
    hsize_t d1 = 1;
    assert_int_equal(mm_h5_write_f32(g, "rates", &rate, 1, &d1, &e), 0);
    assert_int_not_equal(mm_net_load(g, &back, &e), 0);
    assert_non_null(strstr(e.msg, "filters 0"));
    H5Gclose(g);
    mm_h5_close(fh);
    unlink(path);
}

static void test_bad_specs(void **st)
{
    mm_net *net;
    mm_err e = {0};
    assert_int_equal(mm_net_create(10, 1, &net, &e), 0);
    assert_int_not_equal(mm_net_add(net, &(mm_net_spec){.kind = MM_NET_CONV1D, .units = 4, .kernel = 0, .stride = 1}, &e), 0);
    assert_non_null(strstr(e.msg, "layer 0 (conv1d): kernel size 0"));
    assert_int_not_equal(mm_net_add(net, &(mm_net_spec){.kind = MM_NET_MAXPOOL1D, .kernel = 20, .stride = 1,
                                                        .padding = MM_NN_PAD_VALID}, &e), 0);
    assert_non_null(strstr(e.msg, "shorter than the window"));
    assert_int_not_equal(mm_net_add(net, &(mm_net_spec){.kind = MM_NET_DROPOUT, .rate = 1.0f}, &e), 0);
    assert_non_null(strstr(e.msg, "rate 1"));
    assert_int_not_equal(mm_net_build(net, &e), 0);                  /* no layers */
    add(net, (mm_net_spec){.kind = MM_NET_CONV1D, .units = 3, .kernel = 3, .stride = 1, .padding = MM_NN_PAD_SAME});
    assert_int_not_equal(mm_net_build(net, &e), 0);                  /* not a flat vector */
    assert_non_null(strstr(e.msg, "flat vector"));
    add(net, (mm_net_spec){.kind = MM_NET_FLATTEN});
    add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = 2});
    assert_int_equal(mm_net_build(net, &e), 0);
    assert_int_not_equal(mm_net_add(net, &(mm_net_spec){.kind = MM_NET_FLATTEN}, &e), 0);   /* after build */
    mm_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_vs_torch),
        cmocka_unit_test(test_cnn_vs_torch),
        cmocka_unit_test(test_cnn_full_widths_vs_torch),
        cmocka_unit_test(test_cnn_full_widths_im2col_vs_torch),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_bad_specs),
    };
    return cmocka_run_group_tests_name("nn_torch", tests, NULL, NULL);
}
