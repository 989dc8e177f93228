/* test_mn_kern.c — the fused MobileNet kernels (nn/mn_kern.h) against conv2d.h's, and the
 * network's result independent of the thread count.
 *
 * Depthwise: the fused kernel keeps conv2d.c's per-output summation order (bias, then taps
 * row by row), so outputs must be bit-identical (metric: memcmp; max |Δ| < 1e-6 when this
 * build compiles conv2d.c without FMA, as the sanitizer build does) on every border case: maps
 * narrower than one vector, ragged widths, one row, stride 2 with odd widths, k 3/5/7, each
 * activation. Pointwise and stem: same sums as sgemm in another order (OpenBLAS splits k),
 * metric max |Δ| relative to the largest |value|, tolerance 1e-5 (sums of <= 400 float32
 * products of values in [-1, 1] in two orders: the rounding bound grows with the length,
 * ~1e-6 measured at 400). Skipped when the CPU lacks AVX-512. Parallel runs (nn/par.h helper
 * threads) must equal serial ones bit for bit. */
#include "testutil.h"

#include <pthread.h>

#include "dsp/frontend.h"
#include "nn/conv2d.h"
#include "nn/mn_kern.h"
#include "nn/mobilenet.h"
#include "nn/par.h"

static void fill(float *p, size_t n, uint64_t *r)
{
    for (size_t i = 0; i < n; i++) {
        *r = *r * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(*r >> 11) / 9007199254740992.0 * 2 - 1);
    }
}

static void test_depthwise_bit_identical(void **st)
{
    (void)st;
    if (!mm_mnk_available()) skip();
    const int shapes[][5] = {   /* h, w, k, stride, channels */
        {1, 1, 3, 1, 3},   {1, 1, 5, 2, 2},   {4, 12, 5, 1, 5},  {4, 12, 5, 2, 5},
        {7, 33, 3, 2, 4},  {9, 50, 5, 1, 3},  {6, 17, 3, 1, 2},  {3, 70, 5, 2, 2},
        {64, 153, 3, 1, 2}, {64, 153, 3, 2, 2}, {16, 39, 5, 1, 3}, {8, 20, 5, 2, 3},
        {4, 10, 5, 1, 4},  {5, 16, 3, 2, 2},  {5, 31, 3, 2, 2},  {5, 32, 5, 2, 2},
        {2, 47, 7, 1, 2},  {9, 48, 7, 2, 2},  {3, 2, 3, 2, 1},   {2, 3, 5, 1, 1},
    };
    const mm_act acts[3] = {MM_ACT_NONE, MM_ACT_RELU, MM_ACT_HARDSWISH};
    uint64_t r = 7;
    int n = 0;
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++)
        for (int a = 0; a < 3; a++) {
            int h = shapes[t][0], w = shapes[t][1], k = shapes[t][2], s = shapes[t][3],
                c = shapes[t][4], p = (k - 1) / 2;
            int ho = mm_conv2d_out_size(h, k, s, p), wo = mm_conv2d_out_size(w, k, s, p);
            size_t nx = (size_t)c * h * w, ny = (size_t)c * ho * wo;
            float *x = malloc(nx * 4), *wt = malloc((size_t)c * k * k * 4), *b = malloc(c * 4);
            float *y0 = malloc(ny * 4), *y1 = malloc(ny * 4);
            fill(x, nx, &r), fill(wt, (size_t)c * k * k, &r), fill(b, (size_t)c, &r);
            mm_conv2d_depthwise(x, c, h, w, wt, b, k, s, p, acts[a], y0, 0);
            mm_mnk_depthwise(x, h, w, wt, b, k, s, acts[a], y1, 0, c);
            int same = !memcmp(y0, y1, ny * 4);   /* conv2d.c writes each fma as fmaf(): any build */
            double d = tu_max_abs_diff(y0, y1, ny);
            free(x), free(wt), free(b), free(y0), free(y1);
            if (!same)
                fail_msg("depthwise %dx%d k%d s%d act %d: max|d| %.3g, expected identical", h, w,
                         k, s, (int)acts[a], d);
            n++;
        }
    printf("# %d depthwise cases bit-identical to conv2d.c\n", n);
}

static void test_pointwise_and_stem(void **st)
{
    (void)st;
    if (!mm_mnk_available()) skip();
    const int shapes[][3] = {   /* cin, cout, hw */
        {8, 24, 9792}, {24, 16, 2464}, {384, 64, 40}, {64, 384, 40}, {3, 5, 1},
        {7, 13, 33},   {16, 9, 47},    {1, 8, 16},    {400, 3, 100}, {5, 17, 31},
    };
    uint64_t r = 11;
    double worst = 0;
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++)
        for (int a = 0; a < 3; a++) {
            int cin = shapes[t][0], cout = shapes[t][1];
            size_t hw = (size_t)shapes[t][2];
            mm_act act = a == 0 ? MM_ACT_NONE : a == 1 ? MM_ACT_RELU : MM_ACT_HARDSWISH;
            float *x = malloc((size_t)cin * hw * 4), *W = malloc((size_t)cout * cin * 4);
            float *b = malloc((size_t)cout * 4), *res = malloc((size_t)cout * hw * 4);
            float *y0 = malloc((size_t)cout * hw * 4), *y1 = malloc((size_t)cout * hw * 4);
            fill(x, (size_t)cin * hw, &r), fill(W, (size_t)cout * cin, &r);
            fill(b, (size_t)cout, &r), fill(res, (size_t)cout * hw, &r);
            mm_conv2d_pointwise(x, cin, hw, W, b, cout, act, y0);
            if (a == 0)   /* residual after the activation, as the projection uses it */
                for (size_t i = 0; i < (size_t)cout * hw; i++) y0[i] += res[i];
            /* in two column ranges and ragged row blocks, as threads split it */
            size_t jm = hw / 2 / MM_MNK_PW_COLS * MM_MNK_PW_COLS;
            int om = cout / 2;
            const float *rr = a == 0 ? res : NULL;
            mm_mnk_pointwise(x, cin, hw, W, b, act, rr, y1, 0, om, 0, jm);
            mm_mnk_pointwise(x, cin, hw, W, b, act, rr, y1, om, cout, 0, jm);
            mm_mnk_pointwise(x, cin, hw, W, b, act, rr, y1, 0, cout, jm, hw);
            double d = tu_max_abs_diff(y0, y1, (size_t)cout * hw) /
                       (tu_max_abs(y0, (size_t)cout * hw) + 1e-30);
            if (d > worst) worst = d;
            if (memcmp(y0, y1, (size_t)cout * hw * 4))   /* the same fma chain on both paths */
                fail_msg("pointwise %d->%d hw %zu act %d: relative max|d| %.3g, expected identical", cin, cout,
                         hw, a, d);
            free(x), free(W), free(b), free(res), free(y0), free(y1);
        }
    const int stems[][2] = {{128, 306}, {128, 1}, {3, 17}, {1, 1}};
    for (size_t t = 0; t < sizeof stems / sizeof *stems; t++) {
        int h = stems[t][0], w = stems[t][1];
        int ho = mm_conv2d_out_size(h, 3, 2, 1), wo = mm_conv2d_out_size(w, 3, 2, 1);
        size_t ny = (size_t)8 * ho * wo;
        float *x = malloc((size_t)h * w * 4), W[72], b[8], *y0 = malloc(ny * 4), *y1 = malloc(ny * 4);
        float *cols = malloc(mm_conv2d_dense_scratch(1, h, w, 3, 2, 1) * 4);
        fill(x, (size_t)h * w, &r), fill(W, 72, &r), fill(b, 8, &r);
        mm_conv2d_dense(x, 1, h, w, W, b, 8, 3, 2, 1, MM_ACT_HARDSWISH, y0, cols);
        mm_mnk_stem(x, h, w, W, b, 3, 2, MM_ACT_HARDSWISH, y1, 0, 3);
        mm_mnk_stem(x, h, w, W, b, 3, 2, MM_ACT_HARDSWISH, y1, 3, 8);
        double d = tu_max_abs_diff(y0, y1, ny) / (tu_max_abs(y0, ny) + 1e-30);
        if (d > worst) worst = d;
        if (memcmp(y0, y1, ny * 4)) fail_msg("stem %dx%d: relative max|d| %.3g, expected identical", h, w, d);
        free(x), free(y0), free(y1), free(cols);
    }
    printf("# pointwise and stem bit-identical to conv2d.c (the portable path; worst relative |d| %.2e)\n",
           worst);
}

/* The whole network (front end included) with parallel = 1 — items shared with helper threads
 * that join whenever they wake, so the split differs from run to run — equals parallel = 0
 * bit for bit (real weights; random audio of 3.5 s, 0.02 s, and 75 s, which takes three
 * 30 s windows), also when a concurrent caller holds the helpers. */
typedef struct emb_args {
    const mm_mobilenet *m;
    const float *x;
    size_t n;
    float emb[384];
    int rc;
} emb_args;

static void *embed_thread(void *p)
{
    emb_args *a = p;
    mm_err e = {0};
    mm_mobilenet_set_thread_parallel(1);
    a->rc = mm_mobilenet_embed_audio(a->m, a->x, a->n, a->emb, NULL, 0, &e);
    return NULL;
}

static void test_parallel_identity(void **st)
{
    (void)st;
    const char *mr = tu_model_root();
    if (!mr) skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/efficientat/mn04_as_mAP_432.pt", mr);
    mm_mobilenet *m = NULL;
    mm_err e = {0};
    if (mm_mobilenet_load(path, &m, &e)) skip();
    const size_t lens[3] = {113000, 640, 32000 * 75};
    uint64_t r = 5;
    for (int f = 0; f < 3; f++) {
        size_t n = lens[f];
        float *x = malloc(n * 4), ref[384], got[384];
        fill(x, n, &r);
        for (size_t i = 0; i < n; i++) x[i] *= 0.1f;
        assert_int_equal(mm_mobilenet_embed_audio(m, x, n, ref, NULL, 0, &e), 0);
        for (int rep = 0; rep < (f == 2 ? 1 : 5); rep++) {
            assert_int_equal(mm_mobilenet_embed_audio(m, x, n, got, NULL, 1, &e), 0);
            if (memcmp(ref, got, sizeof ref))
                fail_msg("%zu samples, parallel: max|d| %.3g vs serial, expected identical", n,
                         tu_max_abs_diff(ref, got, 384));
        }
        if (f == 0) {   /* two callers at once: one gets the helpers, the other runs alone */
            emb_args a[2] = {{.m = m, .x = x, .n = n}, {.m = m, .x = x, .n = n}};
            pthread_t th[2];
            for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, embed_thread, &a[k]);
            for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
            for (int k = 0; k < 2; k++) {
                assert_int_equal(a[k].rc, 0);
                assert_memory_equal(a[k].emb, ref, sizeof ref);
            }
        }
        free(x);
    }
    printf("# mn04 embedding identical with and without helper threads (%d helpers)\n",
           mm_par_helpers());
    mm_mobilenet_free(m);
}

/* mm_par_for runs every item exactly once, with or without helpers, including calls made
 * from inside an item (run there alone). */
static void count_item(void *ctx, size_t i)
{
    int *c = ctx;
    __atomic_fetch_add(&c[i], 1, __ATOMIC_RELAXED);
}

static void nested_item(void *ctx, size_t i)
{
    int *c = ctx;
    mm_par_for(10, count_item, c + 100 + 10 * i, 1);
}

static void test_par_for(void **st)
{
    (void)st;
    int c[200];
    for (int rep = 0; rep < 200; rep++) {
        memset(c, 0, sizeof c);
        size_t n = (size_t)(rep % 97) + 1;
        mm_par_for(n, count_item, c, rep % 3 != 0);
        for (size_t i = 0; i < 100; i++) assert_int_equal(c[i], i < n ? 1 : 0);
    }
    memset(c, 0, sizeof c);
    mm_par_for(10, nested_item, c, 1);
    for (int i = 100; i < 200; i++) assert_int_equal(c[i], 1);
    mm_par_for(0, count_item, c, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depthwise_bit_identical),
        cmocka_unit_test(test_pointwise_and_stem),
        cmocka_unit_test(test_parallel_identity),
        cmocka_unit_test(test_par_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
