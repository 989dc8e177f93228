/* test_mn04.c — EfficientAT mn04 network against the PyTorch reference of
 * tests/ref/gen_mn04.py (fixture tests/fixtures/mn04_ref.h5), the full
 * decode → 32 kHz → front end → network pipeline on the same clips, the
 * Speech top-1 check on RAVDESS, windowed streaming of long inputs, short
 * inputs, and the loader's errors on wrong checkpoints. Skips when
 * ../shared/models (the weights) is absent. */
#include "testutil.h"
#include "audio/audio.h"
#include "audio/augment.h"
#include "dsp/frontend.h"
#include "features/featset.h"
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
        /* Layer statistics (mn04_layers), same input. Metric: max |Δ| over the
         * 1760 values (means and stds of features.2..16, up to ~3); tolerance
         * 5e-5: the same float32 maps as above (~1e-6 relative), then sums
         * over ≤ 64 frequency rows and 250 frames in double here vs float32
         * in PyTorch (~1e-6 relative again); 10x margin over what is seen. */
        float *ly, mine[1760];
        snprintf(n, sizeof n, "clip%d/layers", k);
        assert_int_equal(mm_h5_read_f32(f, n, 1, &ly, &r, d2, &e), 0);
        assert_int_equal(d2[0], mm_mobilenet_layer_dim(g_net));
        assert_int_equal(mm_mobilenet_layers_mel(g_net, mel, d[0], mine, k == 1, &e), 0);
        double dly = tu_max_abs_diff(mine, ly, 1760);
        printf("# clip%d layer statistics: max|d| %.2e (max %.2f)\n", k, dly, tu_max_abs(ly, 1760));
        assert_true(dly < 5e-5);
        free(ly);
        free(mel), free(emb), free(sc), free(lg);
    }
    mm_h5_close(f);
}

/* Full pipeline: decode with libsndfile, mono, soxr to 32 kHz, crop as the
 * reference did, C front end, network. The reference decoded with sox and
 * resampled with torchaudio's sinc filter, so inputs differ slightly (mostly
 * near the 16 kHz band edge, and MP3 decoder delay handling). Metric: max |Δ|
 * of the 527 scores; tolerance 0.03, and the same top-1 class. */
static void test_pipeline_vs_reference(void **st)
{
    (void)st;
    const char *dr = tu_data_root();
    if (!g_net || !dr) skip();
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read(FIX, &f, &e), 0);
    for (int k = 0; k < 3; k++) {
        char n[64], path[1024], *rel;
        snprintf(n, sizeof n, "clip%d", k);
        hid_t g = mm_h5_open_group(f, n, &e);
        assert_true(g >= 0);
        int64_t start, len;
        assert_int_equal(mm_h5_attr_get_str(g, "path", &rel, &e), 0);
        assert_int_equal(mm_h5_attr_get_i64(g, "start", &start, &e), 0);
        assert_int_equal(mm_h5_attr_get_i64(g, "length", &len, &e), 0);
        snprintf(path, sizeof path, "%s/%s", dr, rel);
        float *sc;
        int r;
        hsize_t d[4];
        assert_int_equal(mm_h5_read_f32(g, "scores", 1, &sc, &r, d, &e), 0);
        mm_audio_opts o;
        mm_audio_opts_default(&o);
        o.target_sr = MM_MOBILENET_SR;
        mm_audio a;
        if (mm_audio_load(path, &o, &a, &e)) fail_msg("%s", e.msg);
        assert_true((size_t)(start + len) <= a.n);
        float emb[384], scores[527];
        assert_int_equal(mm_mobilenet_embed_audio(g_net, a.x + start, (size_t)len, emb, scores,
                                                  0, &e), 0);
        double ds = tu_max_abs_diff(scores, sc, 527);
        printf("# %s: pipeline max|d| scores %.2e, top-1 %d (%.3f) vs reference %d (%.3f)\n",
               rel, ds, argmax(scores, 527), scores[argmax(scores, 527)], argmax(sc, 527),
               sc[argmax(sc, 527)]);
        assert_true(ds < 0.03);
        assert_int_equal(argmax(scores, 527), argmax(sc, 527));
        mm_audio_free(&a);
        free(rel), free(sc);
        H5Gclose(g);
    }
    mm_h5_close(f);
}

/* Long input: 70 s (7000 frames) streams through 3 windows of 2334/2334/2332
 * frames, each framed from its own samples plus context. Check 1 (exact
 * framing): the same windows cut from the whole-clip log-mel, pooled and
 * weighted by time extent, agree to 1e-5 (float32 front-end noise only).
 * Check 2 (approximation): one pass over the whole map differs more, since
 * channel SE gates are means over the whole window and the receptive field
 * crosses window borders; reported, bounded loosely by 0.25 of max ~1. */
static void test_long_and_short_inputs(void **st)
{
    (void)st;
    if (!g_net) skip();
    mm_err e = {0};
    size_t n = 70 * 32000;
    float *x = malloc(n * sizeof *x);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {   /* a tone sweep plus a little LCG noise */
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double t = (double)i / 32000;
        x[i] = (float)(0.3 * sin(2 * M_PI * (200 + 20 * t) * t) +
                       0.05 * ((double)(s >> 11) / 9007199254740992.0 - 0.5));
    }
    float emb[384], scores[527], whole[384];
    assert_int_equal(mm_mobilenet_embed_audio(g_net, x, n, emb, scores, 1, &e), 0);
    /* one pass over the whole log-mel for comparison */
    mm_frontend *fe;
    assert_int_equal(mm_frontend_create(MM_FE_MN04, &fe, &e), 0);
    size_t nf = mm_frontend_n_frames(fe, n);
    float *mel = malloc(nf * 128 * sizeof *mel);
    assert_int_equal(mm_frontend_compute(fe, x, n, mel, &e), 0);
    assert_int_equal(mm_mobilenet_pool(g_net, mel, nf, whole, NULL, 1, &e), 0);
    double d = tu_max_abs_diff(emb, whole, 384);
    printf("# 70 s (%zu frames): windowed vs whole-map embedding max|d| %.2e (max %.2f)\n", nf,
           d, tu_max_abs(whole, 384));
    assert_true(d < 0.25);
    double acc[384] = {0}, wsum = 0;
    size_t per = (nf + 2) / 3;
    for (size_t f0 = 0; f0 < nf; f0 += per) {
        size_t nw = f0 + per <= nf ? per : nf - f0, t_out;
        float p[384];
        assert_int_equal(mm_mobilenet_pool(g_net, mel + f0 * 128, nw, p, &t_out, 1, &e), 0);
        for (int c = 0; c < 384; c++) acc[c] += (double)p[c] * (double)t_out;
        wsum += (double)t_out;
    }
    for (int c = 0; c < 384; c++) whole[c] = (float)(acc[c] / wsum);
    d = tu_max_abs_diff(emb, whole, 384);
    printf("# windowed from samples vs windows cut from the whole log-mel: max|d| %.2e\n", d);
    assert_true(d < 1e-5);
    for (int k = 0; k < 527; k++) assert_true(scores[k] >= 0 && scores[k] <= 1);
    /* windowed layer statistics: features.16's time means, pooled over the
     * windows, are the windowed embedding (same sums, another order) */
    size_t ld = mm_mobilenet_layer_dim(g_net);
    float *ly = malloc(ld * sizeof *ly);
    assert_int_equal(mm_mobilenet_layers_audio(g_net, x, n, ly, 0, &e), 0);
    d = tu_max_abs_diff(ly + ld - 768, emb, 384);
    printf("# 70 s: windowed features.16 layer means vs windowed embedding max|d| %.2e\n", d);
    assert_true(d < 1e-5);
    for (size_t k = ld - 384; k < ld; k++) assert_true(ly[k] > 0);   /* stds over 2333 frames */
    free(ly);
    /* short inputs: 1, 100 and 600 samples are padded and still give finite outputs */
    size_t shorts[3] = {1, 100, 600};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mm_mobilenet_embed_audio(g_net, x, shorts[i], emb, scores, 0, &e), 0);
        for (int k = 0; k < 384; k++) assert_true(isfinite(emb[k]));
    }
    assert_int_equal(mm_mobilenet_embed_audio(g_net, x, 0, emb, scores, 0, &e), MM_EDATA);
    /* a single frame is a valid network input */
    assert_int_equal(mm_mobilenet_pool(g_net, mel, 1, whole, NULL, 0, &e), 0);
    assert_int_equal(mm_mobilenet_pool(g_net, mel, 0, whole, NULL, 0, &e), MM_EINVAL);
    /* non-finite input is refused, not propagated */
    mel[5] = NAN;
    assert_int_equal(mm_mobilenet_pool(g_net, mel, 10, whole, NULL, 0, &e), MM_EDATA);
    assert_non_null(strstr(e.msg, "not finite"));
    mm_frontend_free(fe);
    free(mel);
    free(x);
}

/* Naive double-precision convolution (torch.nn.Conv2d semantics, groups 1 or c). */
static void conv_ref(const float *x, int cin, int h, int w, const float *wt, const float *b,
                     int cout, int k, int s, int p, int depthwise, float *y)
{
    int ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
    for (int o = 0; o < cout; o++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                double a = b[o];
                for (int ci = depthwise ? o : 0; ci < (depthwise ? o + 1 : cin); ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * s + ky - p, ix = ox * s + kx - p;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            const float *wk = wt + ((size_t)o * (depthwise ? 1 : cin) +
                                                    (depthwise ? 0 : ci)) * k * k;
                            a += (double)wk[ky * k + kx] * x[((size_t)ci * h + iy) * w + ix];
                        }
                y[((size_t)o * ho + oy) * wo + ox] = (float)a;
            }
}

/* Depthwise (vector path and the clipped path used for stride 3) and dense
 * kernels against conv_ref on shapes from 1x1 maps to widths past one vector
 * block. Metric: max |Δ|; tolerance 1e-5 (values O(1), sums of <= 75 float32
 * products against a double reference). */
static void test_conv_kernels(void **st)
{
    (void)st;
    const int shapes[][5] = {   /* h, w, k, stride, channels */
        {1, 1, 3, 1, 3},  {4, 12, 5, 1, 5}, {4, 12, 5, 2, 5}, {7, 33, 3, 2, 4},
        {9, 50, 5, 1, 3}, {6, 17, 3, 1, 2}, {8, 40, 3, 3, 3}, {3, 70, 5, 2, 2},
    };
    uint64_t r = 99;
    double worst = 0;
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        int h = shapes[t][0], w = shapes[t][1], k = shapes[t][2], s = shapes[t][3],
            c = shapes[t][4], p = (k - 1) / 2;
        int ho = mm_conv2d_out_size(h, k, s, p), wo = mm_conv2d_out_size(w, k, s, p);
        size_t nx = (size_t)c * h * w, nwt = (size_t)c * c * k * k, ny = (size_t)c * ho * wo;
        float *x = malloc(nx * 4), *wt = malloc(nwt * 4), *b = malloc((size_t)c * 4);
        float *y = malloc(ny * 4), *yr = malloc(ny * 4);
        float *scr = malloc(mm_conv2d_dense_scratch(c, h, w, k, s, p) * 4 + 4);
        float *all[3] = {x, wt, b};
        size_t cnt[3] = {nx, nwt, (size_t)c};
        for (int a = 0; a < 3; a++)
            for (size_t i = 0; i < cnt[a]; i++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                all[a][i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2 - 1);
            }
        mm_conv2d_depthwise(x, c, h, w, wt, b, k, s, p, MM_ACT_NONE, y, t % 2);
        conv_ref(x, c, h, w, wt, b, c, k, s, p, 1, yr);
        double d1 = tu_max_abs_diff(y, yr, ny);
        mm_conv2d_dense(x, c, h, w, wt, b, c, k, s, p, MM_ACT_NONE, y, scr);
        conv_ref(x, c, h, w, wt, b, c, k, s, p, 0, yr);
        double d2 = tu_max_abs_diff(y, yr, ny);
        if (d1 > worst) worst = d1;
        if (d2 > worst) worst = d2;
        assert_true(d1 < 1e-5 && d2 < 1e-5);
        free(x), free(wt), free(b), free(y), free(yr), free(scr);
    }
    printf("# conv kernels vs double reference: max|d| %.2e\n", worst);
    float a[6] = {-4, -3, -1, 0, 2, 4}, hs[6] = {-0.0f, -0.0f, -1.0f / 3, 0, 5.0f / 3, 4};
    mm_act_apply(a, 6, MM_ACT_HARDSWISH);
    assert_true(tu_max_abs_diff(a, hs, 6) < 1e-7);
}

/* Wrong checkpoints: errors name the file and tensor. */
static void test_load_errors(void **st)
{
    (void)st;
    mm_mobilenet *m = NULL;
    mm_err e = {0};
    assert_int_equal(mm_mobilenet_load("tests/fixtures/pt/small.pt", &m, &e), MM_EFORMAT);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "tensor 'features.0.0.weight' missing"));
    assert_int_equal(mm_mobilenet_load("tests/fixtures/pt/wrong_mn04.pt", &m, &e), MM_EFORMAT);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "expected shape [8, 1, 3, 3], got [8, 1, 5, 5]"));
    assert_int_equal(mm_mobilenet_load("tests/fixtures/pt/legacy.pt", &m, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "legacy"));
    assert_int_equal(mm_mobilenet_load("no/such.pt", &m, &e), MM_EIO);
    assert_null(m);
    mm_mobilenet_free(NULL);
}

/* Feature set mn04_embedding: same vector as the network API, bad params refused. */
static void test_featset(void **st)
{
    (void)st;
    const mm_featset_vt *fs = mm_featset_find("mn04_embedding");
    assert_non_null(fs);
    mm_err e = {0};
    mm_cfg *bad;
    void *state = NULL;
    assert_int_equal(mm_cfg_parse_string("weight: x.pt\n", "p.yaml", &bad, &e), 0);
    assert_int_not_equal(fs->create(bad, NULL, &state, &e), 0);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "weight"));
    mm_cfg_free(bad);
    assert_int_equal(mm_cfg_parse_string("weights: tests/fixtures/pt/small.pt\n", "p.yaml", &bad,
                                         &e), 0);
    assert_int_not_equal(fs->create(bad, NULL, &state, &e), 0);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "small.pt"));
    mm_cfg_free(bad);
    if (!g_net) skip();
    assert_int_equal(fs->create(NULL, tu_model_root(), &state, &e), 0);
    assert_int_equal(fs->sample_rate(state), 32000);
    assert_int_equal(fs->dim(state), 384);
    assert_string_equal(fs->feature_name(state, 383), "mn04_emb_383");
    float x[16000], a[384], b[384];
    for (int i = 0; i < 16000; i++) x[i] = (float)sin(0.05 * i) * 0.1f;
    assert_int_equal(fs->compute(state, x, 16000, a, &e), 0);
    assert_int_equal(mm_mobilenet_embed_audio(g_net, x, 16000, b, NULL, 0, &e), 0);
    assert_memory_equal(a, b, sizeof a);
    fs->free(state);
    /* mn04_layers: 1760 values named per layer, the network API's values */
    const mm_featset_vt *fl = mm_featset_find("mn04_layers");
    assert_non_null(fl);
    assert_int_equal(fl->create(NULL, tu_model_root(), &state, &e), 0);
    assert_int_equal(fl->dim(state), 1760);
    assert_string_equal(fl->feature_name(state, 0), "mn04_l2_mean_0");
    assert_string_equal(fl->feature_name(state, 1759), "mn04_l16_std_383");
    assert_null(fl->feature_name(state, 1760));
    float la[1760], lb[1760];
    assert_int_equal(fl->compute(state, x, 16000, la, &e), 0);
    assert_int_equal(mm_mobilenet_layers_audio(g_net, x, 16000, lb, 0, &e), 0);
    assert_memory_equal(la, lb, sizeof la);
    fl->free(state);
}

/* A hook that masks each window with mm_augment_specmask (seed 7 + window) and keeps a
 * copy of the masked log-mel of window 0, so the test can run the network on it alone. */
typedef struct seen { float *mel; size_t frames; int calls; } seen;

static int record_mask(void *ctx, size_t win, float *mel, size_t frames, size_t bins, mm_err *err)
{
    seen *s = ctx;
    mm_specmask_params p = {.n_time = 2, .time_width = 20, .n_freq = 2, .freq_width = 15, .fill_mean = 1};
    float *o = NULL;
    int rc = mm_augment_specmask(mel, frames, bins, &p, 7 + win, &o, NULL, err);
    if (rc) return rc;
    memcpy(mel, o, frames * bins * sizeof *mel);
    free(o);
    if (win == 0) {
        free(s->mel);
        s->mel = malloc(frames * bins * sizeof *mel);
        memcpy(s->mel, mel, frames * bins * sizeof *mel);
        s->frames = frames;
    }
    s->calls++;
    return 0;
}

/* SpecAugment (issue 16 §2): the hook sees the front end's log-mel of the clip, and what
 * the network returns is the statistics of the masked matrix (mm_mobilenet_layers_mel on
 * it); a hook that leaves the matrix alone changes nothing; the mn04_layers feature set's
 * `specaugment` param gives the same values as no param with 0 masks, other values with
 * masks, the same on a second call and other masks for another seed; bad params are one
 * line. */
static void test_specaugment(void **st)
{
    (void)st;
    const mm_featset_vt *fl = mm_featset_find("mn04_layers");
    mm_err e = {0};
    void *state = NULL;
    static const char *const bad[] = {"specaugment: {time_masks: 11}\n", "specaugment: {freq_width: 0}\n",
                                      "specaugment: {fill: median}\n", "specaugment: {masks: 2}\n",
                                      "specaugment: [2, 40]\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mm_cfg *c = NULL;
        assert_int_equal(mm_cfg_parse_string(bad[i], "p.yaml", &c, &e), 0);
        assert_int_not_equal(fl->create(c, tu_model_root(), &state, &e), 0);
        printf("# %s\n", e.msg);
        assert_non_null(strstr(e.msg, "p.yaml:1"));   /* the file, line and key or section */
        assert_true(strstr(e.msg, "specaugment") || strstr(e.msg, "time_masks") || strstr(e.msg, "freq_width"));
        assert_null(strchr(e.msg, '\n'));
        mm_cfg_free(c);
    }
    if (!g_net) skip();
    size_t n = 48000;   /* 1.5 s at 32 kHz: one window */
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.1 * sin(0.03 * i) + 0.05 * sin(0.0071 * i * (1 + i / 48000.0)));
    size_t d = mm_mobilenet_layer_dim(g_net);
    float *plain = malloc(d * sizeof *plain), *hooked = malloc(d * sizeof *hooked), *ref = malloc(d * sizeof *ref);
    assert_int_equal(mm_mobilenet_layers_audio(g_net, x, n, plain, 0, &e), 0);
    seen s = {0};
    assert_int_equal(mm_mobilenet_audio_hooked(g_net, x, n, NULL, hooked, record_mask, &s, 0, &e), 0);
    assert_int_equal(s.calls, 1);
    /* the hook got the front end's log-mel: the network on the masked copy gives the same values */
    mm_frontend *fe = NULL;
    assert_int_equal(mm_frontend_create(MM_FE_MN04, &fe, &e), 0);
    size_t nf = mm_frontend_n_frames(fe, n);
    assert_int_equal(s.frames, nf);
    float *mel = malloc(nf * 128 * sizeof *mel), *masked = NULL;
    assert_int_equal(mm_frontend_compute(fe, x, n, mel, &e), 0);
    mm_specmask_params p = {.n_time = 2, .time_width = 20, .n_freq = 2, .freq_width = 15, .fill_mean = 1};
    assert_int_equal(mm_augment_specmask(mel, nf, 128, &p, 7, &masked, NULL, &e), 0);
    assert_memory_equal(masked, s.mel, nf * 128 * sizeof *mel);
    assert_int_equal(mm_mobilenet_layers_mel(g_net, masked, nf, ref, 0, &e), 0);
    assert_memory_equal(ref, hooked, d * sizeof *ref);
    double diff = 0;
    for (size_t i = 0; i < d; i++) diff = fmax(diff, fabs((double)hooked[i] - plain[i]));
    printf("# masks move the layer statistics by up to %.3g\n", diff);
    assert_true(diff > 1e-3);
    /* the feature set's param */
    float *a = malloc(d * sizeof *a), *b = malloc(d * sizeof *b);
    const char *cfgs[] = {"specaugment: {time_masks: 0, freq_masks: 0}\n", "specaugment: {seed: 3}\n",
                          "specaugment: {seed: 4}\n"};
    float *out[3];
    for (int k = 0; k < 3; k++) {
        mm_cfg *c = NULL;
        assert_int_equal(mm_cfg_parse_string(cfgs[k], "p.yaml", &c, &e), 0);
        assert_int_equal(fl->create(c, tu_model_root(), &state, &e), 0);
        out[k] = malloc(d * sizeof *a);
        assert_int_equal(fl->compute(state, x, n, out[k], &e), 0);
        assert_int_equal(fl->compute(state, x, n, a, &e), 0);
        assert_memory_equal(a, out[k], d * sizeof *a);   /* the same clip, the same masks */
        char buf[1024];
        printf("# %s", strstr(fl->describe(state, buf, sizeof buf), "specaugment="));
        fl->free(state);
        mm_cfg_free(c);
    }
    assert_memory_equal(out[0], plain, d * sizeof *a);
    assert_memory_not_equal(out[1], plain, d * sizeof *a);
    assert_memory_not_equal(out[1], out[2], d * sizeof *a);
    (void)b;
    for (int k = 0; k < 3; k++) free(out[k]);
    free(a); free(b); free(mel); free(masked); free(s.mel); free(x); free(plain); free(hooked); free(ref);
    mm_frontend_free(fe);
}

/* melodic embed and melodic tag end to end on the stereo RAVDESS clip. */
static void test_cli(void **st)
{
    (void)st;
    const char *dr = tu_data_root();
    if (!g_net || !dr) skip();
    char out[256], clip[1024];
    snprintf(out, sizeof out, "/tmp/mm_embed_%d.h5", (int)getpid());
    snprintf(clip, sizeof clip, "%s/ravdess/Actor_01/03-01-02-01-01-02-01.flac", dr);
    assert_int_equal(tu_system("%s embed --model mn04 -j 2 %s %s -o %s", tu_bin(), clip, clip,
                               out), 0);
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read(out, &f, &e), 0);
    float *emb, *sc;
    int r;
    hsize_t d[4];
    assert_int_equal(mm_h5_read_f32(f, "embedding", 2, &emb, &r, d, &e), 0);
    assert_int_equal(d[0], 2);
    assert_int_equal(d[1], 384);
    assert_memory_equal(emb, emb + 384, 384 * sizeof *emb);   /* same clip, same vector */
    assert_int_equal(mm_h5_read_f32(f, "scores", 2, &sc, &r, d, &e), 0);
    assert_int_equal(d[1], 527);
    assert_int_equal(argmax(sc, 527), 0);
    char **paths;
    size_t np;
    assert_int_equal(mm_h5_read_strings(f, "paths", &paths, &np, &e), 0);
    assert_string_equal(paths[1], clip);
    mm_h5_free_strings(paths, np);
    mm_h5_close(f);
    /* one thread or two: the same bits (parallelism is over files only) */
    char mp3[1024];
    snprintf(mp3, sizeof mp3, "%s/music-4q/Q1/MT0000040632.mp3", dr);
    assert_int_equal(tu_system("%s embed -j 1 %s %s -o %s", tu_bin(), clip, mp3, out), 0);
    assert_int_equal(mm_h5_open_read(out, &f, &e), 0);
    float *e1, *e2;
    assert_int_equal(mm_h5_read_f32(f, "embedding", 2, &e1, &r, d, &e), 0);
    mm_h5_close(f);
    assert_memory_equal(e1, emb, 384 * sizeof *emb);
    assert_int_equal(tu_system("%s embed -j 2 %s %s -o %s", tu_bin(), clip, mp3, out), 0);
    assert_int_equal(mm_h5_open_read(out, &f, &e), 0);
    assert_int_equal(mm_h5_read_f32(f, "embedding", 2, &e2, &r, d, &e), 0);
    mm_h5_close(f);
    assert_memory_equal(e1, e2, 2 * 384 * sizeof *e1);
    /* the other kernel path (fused AVX-512 <-> portable conv2d.c): the same bits, so features and
     * every result built on them do not depend on the CPU (a no-op check on CPUs without AVX-512) */
    const char *env = getenv("MELODIC_NO_AVX512");
    int portable_now = env && *env && strcmp(env, "0");
    float *e3;
    assert_int_equal(tu_system("MELODIC_NO_AVX512=%d %s embed -j 1 %s %s -o %s", !portable_now, tu_bin(), clip, mp3,
                               out), 0);
    assert_int_equal(mm_h5_open_read(out, &f, &e), 0);
    assert_int_equal(mm_h5_read_f32(f, "embedding", 2, &e3, &r, d, &e), 0);
    mm_h5_close(f);
    assert_memory_equal(e3, e2, 2 * 384 * sizeof *e3);
    free(e3);
    free(e1), free(e2), free(emb), free(sc);
    unlink(out);
    /* without -o: one line per file, the path then 384 values */
    assert_int_equal(tu_system("test \"$(%s embed %s | awk -F'\\t' '{print NF, split($2, a, \" \")}')\" = "
                               "\"2 384\"", tu_bin(), clip), 0);
    char txt[256];
    snprintf(txt, sizeof txt, "/tmp/mm_tag_%d.txt", (int)getpid());
    assert_int_equal(tu_system("%s tag -k 3 %s > %s", tu_bin(), clip, txt), 0);
    assert_int_equal(tu_system("sed -n 2p %s | grep -q '^  Speech '", txt), 0);
    assert_int_equal(tu_system("test $(wc -l < %s) -eq 4", txt), 0);
    unlink(txt);
    /* errors: unknown model (usage, 2), missing file and bad weights (1), no partial output */
    assert_int_equal(tu_system("%s embed --model nope %s 2>/dev/null", tu_bin(), clip), 2);
    assert_int_equal(tu_system("%s embed %s missing.wav -o %s 2>/dev/null", tu_bin(), clip, out), 1);
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_equal(tu_system("%s tag --weights tests/fixtures/pt/legacy.pt %s 2>/dev/null",
                               tu_bin(), clip), 1);
    assert_int_equal(tu_system("%s embed --help > /dev/null", tu_bin()), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_kernels),
        cmocka_unit_test(test_network_vs_reference),
        cmocka_unit_test(test_pipeline_vs_reference),
        cmocka_unit_test(test_long_and_short_inputs),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_featset),
        cmocka_unit_test(test_specaugment),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
