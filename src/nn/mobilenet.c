/* mobilenet.c — EfficientAT mn04_as forward pass (see mobilenet.h).
 *
 * Architecture rebuilt from reading EfficientAT's models/mn (never copied):
 * MobileNetV3-Large bottlenecks with channels scaled by 0.4 and rounded by
 * make_divisible(·, 8); stem 3x3/2 conv + BN + hardswish; per block 1x1
 * expand (when expanded != input), depthwise kxk (pad (k−1)/2), channel SE
 * (mean → Linear C→C/4 rounded → ReLU → Linear → sigmoid; EfficientAT's
 * "max" over one concurrent SE is the identity), 1x1 project, residual when
 * stride 1 and in == out; final 1x1 conv to 384 + BN + hardswish; head
 * mean-pool → Linear 384→512 → hardswish → Linear 512→527. BN eps 0.001.
 * Leaves out: dropout (inference), other widths and heads, batching (one clip
 * per call; callers parallelise over clips).
 */
#include "nn/mobilenet.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/frontend.h"
#include "io/ptload.h"
#include "nn/conv2d.h"
#include "nn/mn_kern.h"
#include "nn/par.h"

#define N_BLOCKS 15
#define BN_EPS 0.001

typedef struct conv {
    int cin, cout, k, stride, depthwise;
    mm_act act;
    float *w;       /* (cout, cin, k, k) or depthwise (cout, k, k), BN folded */
    float *b;       /* (cout) BN folded bias */
} conv;

typedef struct se {
    int c, s;       /* channels, squeeze width */
    float *w1;      /* (c, s): fc1's (s, c) weight transposed, so that the mat-vec runs over
                       contiguous outputs with each output's sum still in input order */
    float *b1;      /* (s) */
    float *w2;      /* (s, c): fc2's (c, s) weight transposed */
    float *b2;      /* (c) */
} se;

typedef struct block {
    int cin, exp, cout, k, stride, has_expand, has_se, residual;
    conv expand, dw, project;
    se se;
} block;

struct mm_mobilenet {
    conv stem;                  /* 1 → 8, 3x3 stride 2 */
    block blk[N_BLOCKS];
    conv last;                  /* 64 → 384, 1x1 */
    float *fc1_w;               /* (384, 512) classifier.2's weight transposed */
    float *fc1_b;               /* (512) */
    float *fc2_w;               /* (512, 527) classifier.5's weight transposed */
    float *fc2_b;               /* (527) */
    int hidden;                 /* 512 */
    mm_frontend *fe;            /* MM_FE_MN04 */
};

/* MobileNetV3-Large bottlenecks: in, kernel, expanded, out, SE, hardswish, stride. */
static const int BASE[N_BLOCKS][7] = {
    {16, 3, 16, 16, 0, 0, 1},   {16, 3, 64, 24, 0, 0, 2},   {24, 3, 72, 24, 0, 0, 1},
    {24, 5, 72, 40, 1, 0, 2},   {40, 5, 120, 40, 1, 0, 1},  {40, 5, 120, 40, 1, 0, 1},
    {40, 3, 240, 80, 0, 1, 2},  {80, 3, 200, 80, 0, 1, 1},  {80, 3, 184, 80, 0, 1, 1},
    {80, 3, 184, 80, 0, 1, 1},  {80, 3, 480, 112, 1, 1, 1}, {112, 3, 672, 112, 1, 1, 1},
    {112, 5, 672, 160, 1, 1, 2}, {160, 5, 960, 160, 1, 1, 1}, {160, 5, 960, 160, 1, 1, 1},
};

/* TF/torchvision make_divisible: nearest multiple of 8, >= 8, not more than 10% down. */
static int divisible8(double v)
{
    int r = (int)(v + 4.0) / 8 * 8;
    if (r < 8) r = 8;
    if (r < 0.9 * v) r += 8;
    return r;
}

/* Conv weight + following BN from the checkpoint, BN folded into (w, b). */
static int load_conv(const mm_pt *pt, const char *pre, conv *c, int *used, mm_err *err)
{
    char n[160];
    int64_t ws[4] = {c->cout, c->depthwise ? 1 : c->cin, c->k, c->k}, bs[1] = {c->cout};
    const float *w, *g, *be, *mu, *var;
    int rc;
    snprintf(n, sizeof n, "%s.0.weight", pre);
    if ((rc = mm_pt_get(pt, n, 4, ws, &w, err))) return rc;
    snprintf(n, sizeof n, "%s.1.weight", pre);
    if ((rc = mm_pt_get(pt, n, 1, bs, &g, err))) return rc;
    snprintf(n, sizeof n, "%s.1.bias", pre);
    if ((rc = mm_pt_get(pt, n, 1, bs, &be, err))) return rc;
    snprintf(n, sizeof n, "%s.1.running_mean", pre);
    if ((rc = mm_pt_get(pt, n, 1, bs, &mu, err))) return rc;
    snprintf(n, sizeof n, "%s.1.running_var", pre);
    if ((rc = mm_pt_get(pt, n, 1, bs, &var, err))) return rc;
    *used += 5;
    snprintf(n, sizeof n, "%s.1.num_batches_tracked", pre);
    if (mm_pt_find(pt, n)) (*used)++;
    size_t per = (size_t)ws[1] * c->k * c->k;
    c->w = mm_malloc((size_t)c->cout * per, sizeof *c->w, err);
    c->b = mm_malloc((size_t)c->cout, sizeof *c->b, err);
    if (!c->w || !c->b) return MM_ENOMEM;
    for (int o = 0; o < c->cout; o++) {
        if (!(var[o] >= 0) || !isfinite(g[o]) || !isfinite(mu[o]) || !isfinite(be[o]))
            return mm_err_set(err, MM_EFORMAT, "%s: batch norm '%s.1' channel %d is not finite "
                              "or has a negative variance", mm_pt_path(pt), pre, o);
        double s = (double)g[o] / sqrt((double)var[o] + BN_EPS);
        for (size_t i = 0; i < per; i++) c->w[o * per + i] = (float)(w[o * per + i] * s);
        c->b[o] = (float)(be[o] - mu[o] * s);
    }
    return 0;
}

/* Linear layer; *w receives the (in, out) transpose of PyTorch's (out, in) weight. */
static int load_linear(const mm_pt *pt, const char *pre, int out, int in, float **w, float **b,
                       int *used, mm_err *err)
{
    char n[160];
    int64_t ws[2] = {out, in}, bs[1] = {out};
    const float *pw, *pb;
    int rc;
    snprintf(n, sizeof n, "%s.weight", pre);
    if ((rc = mm_pt_get(pt, n, 2, ws, &pw, err))) return rc;
    snprintf(n, sizeof n, "%s.bias", pre);
    if ((rc = mm_pt_get(pt, n, 1, bs, &pb, err))) return rc;
    *used += 2;
    *w = mm_malloc((size_t)out * in, sizeof **w, err);
    *b = mm_malloc((size_t)out, sizeof **b, err);
    if (!*w || !*b) return MM_ENOMEM;
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) (*w)[(size_t)i * out + o] = pw[(size_t)o * in + i];
    memcpy(*b, pb, (size_t)out * sizeof **b);
    return 0;
}

void mm_mobilenet_free(mm_mobilenet *m)
{
    if (!m) return;
    conv *cs[2] = {&m->stem, &m->last};
    for (int i = 0; i < 2; i++) free(cs[i]->w), free(cs[i]->b);
    for (int i = 0; i < N_BLOCKS; i++) {
        block *b = &m->blk[i];
        free(b->expand.w), free(b->expand.b), free(b->dw.w), free(b->dw.b);
        free(b->project.w), free(b->project.b);
        free(b->se.w1), free(b->se.b1), free(b->se.w2), free(b->se.b2);
    }
    free(m->fc1_w), free(m->fc1_b), free(m->fc2_w), free(m->fc2_b);
    mm_frontend_free(m->fe);
    free(m);
}

int mm_mobilenet_load(const char *path, mm_mobilenet **out, mm_err *err)
{
    mm_pt *pt = NULL;
    mm_mobilenet *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    int rc, used = 0;
    size_t n_t;
    if ((rc = mm_pt_open(path, &pt, err))) goto fail;
    if ((rc = mm_pt_state_dict(pt, NULL, &n_t, err))) goto fail;
    const double width = 0.4;
    int c0 = divisible8(BASE[0][0] * width);
    m->stem = (conv){.cin = 1, .cout = c0, .k = 3, .stride = 2, .act = MM_ACT_HARDSWISH};
    if ((rc = load_conv(pt, "features.0", &m->stem, &used, err))) goto fail;
    char pre[96];
    for (int i = 0; i < N_BLOCKS; i++) {
        block *b = &m->blk[i];
        b->cin = divisible8(BASE[i][0] * width);
        b->k = BASE[i][1];
        b->exp = divisible8(BASE[i][2] * width);
        b->cout = divisible8(BASE[i][3] * width);
        b->has_se = BASE[i][4];
        mm_act act = BASE[i][5] ? MM_ACT_HARDSWISH : MM_ACT_RELU;
        b->stride = BASE[i][6];
        b->has_expand = b->exp != b->cin;
        b->residual = b->stride == 1 && b->cin == b->cout;
        int j = 0;
        if (b->has_expand) {
            b->expand = (conv){.cin = b->cin, .cout = b->exp, .k = 1, .stride = 1, .act = act};
            snprintf(pre, sizeof pre, "features.%d.block.%d", i + 1, j++);
            if ((rc = load_conv(pt, pre, &b->expand, &used, err))) goto fail;
        }
        b->dw = (conv){.cin = b->exp, .cout = b->exp, .k = b->k, .stride = b->stride,
                       .depthwise = 1, .act = act};
        snprintf(pre, sizeof pre, "features.%d.block.%d", i + 1, j++);
        if ((rc = load_conv(pt, pre, &b->dw, &used, err))) goto fail;
        if (b->has_se) {
            b->se.c = b->exp;
            b->se.s = divisible8(b->exp / 4);
            snprintf(pre, sizeof pre, "features.%d.block.%d.conc_se_layers.0.fc1", i + 1, j);
            if ((rc = load_linear(pt, pre, b->se.s, b->se.c, &b->se.w1, &b->se.b1, &used, err)))
                goto fail;
            snprintf(pre, sizeof pre, "features.%d.block.%d.conc_se_layers.0.fc2", i + 1, j++);
            if ((rc = load_linear(pt, pre, b->se.c, b->se.s, &b->se.w2, &b->se.b2, &used, err)))
                goto fail;
        }
        b->project = (conv){.cin = b->exp, .cout = b->cout, .k = 1, .stride = 1,
                            .act = MM_ACT_NONE};
        snprintf(pre, sizeof pre, "features.%d.block.%d", i + 1, j++);
        if ((rc = load_conv(pt, pre, &b->project, &used, err))) goto fail;
    }
    int cl = m->blk[N_BLOCKS - 1].cout;
    m->last = (conv){.cin = cl, .cout = 6 * cl, .k = 1, .stride = 1, .act = MM_ACT_HARDSWISH};
    snprintf(pre, sizeof pre, "features.%d", N_BLOCKS + 1);
    if ((rc = load_conv(pt, pre, &m->last, &used, err))) goto fail;
    if (m->last.cout != MM_MOBILENET_EMB) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: last conv has %d channels, expected %d", path,
                        m->last.cout, MM_MOBILENET_EMB);
        goto fail;
    }
    m->hidden = divisible8(1280 * width);
    if ((rc = load_linear(pt, "classifier.2", m->hidden, MM_MOBILENET_EMB, &m->fc1_w, &m->fc1_b,
                          &used, err)) ||
        (rc = load_linear(pt, "classifier.5", MM_MOBILENET_CLASSES, m->hidden, &m->fc2_w,
                          &m->fc2_b, &used, err)))
        goto fail;
    if ((size_t)used != n_t) {
        /* strict loading: name the first tensor the architecture does not use */
        for (size_t i = 0; i < n_t; i++) {
            const char *nm = mm_pt_at(pt, i)->name;
            int known = !strncmp(nm, "classifier.2.", 13) || !strncmp(nm, "classifier.5.", 13);
            if (!known && !strncmp(nm, "features.", 9)) {
                int li = atoi(nm + 9);
                known = li >= 0 && li <= N_BLOCKS + 1;
                if (known && li >= 1 && li <= N_BLOCKS) {
                    /* block.<j>[.conc_se_layers.0.fcX].<param> with j in range */
                    const char *p = strstr(nm, ".block.");
                    const block *b = &m->blk[li - 1];
                    int nj = 2 + b->has_expand + b->has_se;
                    known = p && atoi(p + 7) < nj;
                }
            }
            if (!known) {
                rc = mm_err_set(err, MM_EFORMAT, "%s: unexpected tensor '%s' for mn04", path,
                                nm);
                goto fail;
            }
        }
        rc = mm_err_set(err, MM_EFORMAT, "%s: %zu tensors, the mn04 architecture uses %d",
                        path, n_t, used);
        goto fail;
    }
    if ((rc = mm_frontend_create(MM_FE_MN04, &m->fe, err))) goto fail;
    mm_pt_free(pt);
    *out = m;
    return 0;
fail:
    mm_pt_free(pt);
    mm_mobilenet_free(m);
    return rc;
}

/* Channel squeeze-excitation gates of x (c, hw): gate (c) = sigmoid(fc2(relu(fc1(mean)))).
 * The gates are not applied to x: the caller folds them into the columns of
 * the following 1x1 projection, W·(g ⊙ x) = (W·diag g)·x, which saves a pass
 * over the map (same maths, float rounding aside). */
/* Products rounded before they are added (no fused multiply-add), as the dot-product loops this
 * replaces compiled: the gates and head outputs keep their exact values. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define NO_CONTRACT
#endif

NO_CONTRACT static void se_gates(const se *s, const float *x, size_t hw, float *gate)
{
    float g[1024], h[256];
    for (int c = 0; c < s->c; c++) {
        const float *xc = x + (size_t)c * hw;
        /* 8 float partial sums (vectorisable), combined in double: fixed order */
        float part[8] = {0};
        size_t i = 0;
        for (; i + 8 <= hw; i += 8)
            for (int j = 0; j < 8; j++) part[j] += xc[i + j];
        double acc = 0;
        for (int j = 0; j < 8; j++) acc += part[j];
        for (; i < hw; i++) acc += xc[i];
        g[c] = (float)(acc / (double)hw);
    }
    /* h = relu(b1 + Σ_c w1[c]·g[c]), each output summed over c in order (as a dot product
     * per output would), the loop over outputs innermost so that it vectorises */
    memcpy(h, s->b1, (size_t)s->s * sizeof *h);
    for (int c = 0; c < s->c; c++) {
        const float *w = s->w1 + (size_t)c * s->s;
        for (int j = 0; j < s->s; j++) h[j] += w[j] * g[c];
    }
    for (int j = 0; j < s->s; j++) h[j] = h[j] > 0.0f ? h[j] : 0.0f;
    float a[1024];
    memcpy(a, s->b2, (size_t)s->c * sizeof *a);
    for (int j = 0; j < s->s; j++) {
        const float *w = s->w2 + (size_t)j * s->c;
        for (int c = 0; c < s->c; c++) a[c] += w[c] * h[j];
    }
    for (int c = 0; c < s->c; c++) gate[c] = 1.0f / (1.0f + expf(-a[c]));
}

static _Thread_local int t_parallel;

void mm_mobilenet_set_thread_parallel(int on) { t_parallel = on != 0; }

/* Effective parallel flag: the argument, or this thread's default; never inside an OpenMP
 * region (callers there parallelise over clips). */
static int want_parallel(int parallel)
{
    return (parallel || t_parallel) && !omp_in_parallel() && mm_par_helpers() > 0;
}

/* SE gates of d (exp, hwo) folded into the projection's columns: wse = W · diag(gate). */
static void se_fold(const block *b, const float *d, size_t hwo, float *wse)
{
    float gate[1024];
    se_gates(&b->se, d, hwo, gate);
    for (int o = 0; o < b->cout; o++)
        for (int c = 0; c < b->exp; c++)
            wse[(size_t)o * b->exp + c] = b->project.w[(size_t)o * b->exp + c] * gate[c];
}

/* Add the time extent w into acc[0] and the time sum and sum of squares of
 * the frequency mean of each channel of map x (c, h, w) into acc[1..c] and
 * acc[c+1..2c] (layer statistics, mn04_layers). */
static void tap_accumulate(const float *x, int c, int h, int w, double *acc)
{
    acc[0] += w;
    acc++;
    for (int ch = 0; ch < c; ch++) {
        double s = 0, s2 = 0;
        const float *xc = x + (size_t)ch * h * w;
        for (int t = 0; t < w; t++) {
            double v = 0;
            for (int f = 0; f < h; f++) v += xc[(size_t)f * w + t];
            v /= h;
            s += v, s2 += v * v;
        }
        acc[ch] += s, acc[c + ch] += s2;
    }
}

size_t mm_mobilenet_layer_channels(const mm_mobilenet *m, int layer)
{
    if (layer == 0) return (size_t)m->stem.cout;
    if (layer >= 1 && layer <= N_BLOCKS) return (size_t)m->blk[layer - 1].cout;
    if (layer == N_BLOCKS + 1) return (size_t)m->last.cout;
    return 0;
}

size_t mm_mobilenet_layer_dim(const mm_mobilenet *m)
{
    size_t d = 2 * (size_t)m->last.cout;
    for (int i = 1; i < N_BLOCKS; i++) d += 2 * (size_t)m->blk[i].cout;
    return d;
}

static size_t tap_size(const mm_mobilenet *m)
{
    return mm_mobilenet_layer_dim(m) + N_BLOCKS;   /* one count per tapped layer */
}

/* Tapped layers: features.2 .. features.15 (blocks 1..14) after block i, and
 * features.16 (the last conv); taps advance layer by layer. */
static double *tap_block(const mm_mobilenet *m, int i, const float *x, int h, int w, double *taps)
{
    if (!taps || i < 1) return taps;
    tap_accumulate(x, m->blk[i].cout, h, w, taps);
    return taps + 1 + 2 * (size_t)m->blk[i].cout;
}

/* Sums of tap_accumulate → per layer the mean, then the standard deviation
 * (n − 1 in the denominator, as torch.std; 0 when the extent is 1). */
static void tap_finish(const mm_mobilenet *m, const double *taps, float *out)
{
    for (int i = 1; i <= N_BLOCKS; i++) {
        int c = i < N_BLOCKS ? m->blk[i].cout : m->last.cout;
        double n = taps[0];
        const double *s = taps + 1, *s2 = s + c;
        for (int ch = 0; ch < c; ch++) {
            double mean = s[ch] / n, var = n > 1 ? (s2[ch] - s[ch] * mean) / (n - 1) : 0;
            out[ch] = (float)mean;
            out[c + ch] = (float)sqrt(var > 0 ? var : 0);
        }
        taps += 1 + 2 * (size_t)c;
        out += 2 * (size_t)c;
    }
}

/* The network through conv2d.h's kernels (OpenBLAS sgemm): CPUs without AVX-512. */
static void forward_generic(const mm_mobilenet *m, float *cur, float *nxt, float *e, float *d,
                            float *cols, float *wse, int T, int parallel, double *taps, float **out,
                            int *h_out, int *w_out)
{
    int h = MM_MOBILENET_N_MELS, w = T;
    mm_conv2d_dense(e, 1, h, w, m->stem.w, m->stem.b, m->stem.cout, 3, 2, 1, m->stem.act, cur,
                    cols);
    h = mm_conv2d_out_size(h, 3, 2, 1), w = mm_conv2d_out_size(w, 3, 2, 1);
    for (int i = 0; i < N_BLOCKS; i++) {
        const block *b = &m->blk[i];
        size_t hw = (size_t)h * w;
        const float *xin = cur;
        if (b->has_expand) {
            mm_conv2d_pointwise(cur, b->cin, hw, b->expand.w, b->expand.b, b->exp,
                                b->expand.act, e);
            xin = e;
        }
        int pad = (b->k - 1) / 2;
        int ho = mm_conv2d_out_size(h, b->k, b->stride, pad);
        int wo = mm_conv2d_out_size(w, b->k, b->stride, pad);
        mm_conv2d_depthwise(xin, b->exp, h, w, b->dw.w, b->dw.b, b->k, b->stride, pad, b->dw.act,
                            d, parallel);
        size_t hwo = (size_t)ho * wo;
        const float *pw = b->project.w;
        if (b->has_se) {
            se_fold(b, d, hwo, wse);
            pw = wse;
        }
        mm_conv2d_pointwise(d, b->exp, hwo, pw, b->project.b, b->cout, MM_ACT_NONE, nxt);
        if (b->residual)
            for (size_t j = 0; j < (size_t)b->cout * hwo; j++) nxt[j] += cur[j];
        float *t = cur;
        cur = nxt, nxt = t;
        h = ho, w = wo;
        taps = tap_block(m, i, cur, h, w, taps);
    }
    mm_conv2d_pointwise(cur, m->last.cin, (size_t)h * w, m->last.w, m->last.b, m->last.cout,
                        m->last.act, nxt);
    if (taps) tap_accumulate(nxt, m->last.cout, h, w, taps);   /* features.16 */
    *out = nxt, *h_out = h, *w_out = w;
}

/* The network through the fused AVX-512 kernels (nn/mn_kern.h), on the calling thread. Its
 * layers are too small to share (tens of µs each: splitting them over cores, with OpenMP or
 * nn/par, gained under 5 % here, lost on a busy machine), so intra-clip parallelism is
 * spent on the front end instead. */
static void forward_fused(const mm_mobilenet *m, float *cur, float *nxt, float *e, float *d,
                          float *wse, int T, double *taps, float **out, int *h_out, int *w_out)
{
    int h = MM_MOBILENET_N_MELS, w = T;
    mm_mnk_stem(e, h, w, m->stem.w, m->stem.b, 3, 2, m->stem.act, cur, 0, m->stem.cout);
    h = mm_conv2d_out_size(h, 3, 2, 1), w = mm_conv2d_out_size(w, 3, 2, 1);
    for (int i = 0; i < N_BLOCKS; i++) {
        const block *b = &m->blk[i];
        size_t hw = (size_t)h * w;
        const float *xin = cur;
        if (b->has_expand) {
            mm_mnk_pointwise(cur, b->cin, hw, b->expand.w, b->expand.b, b->expand.act, NULL, e,
                             0, b->exp, 0, hw);
            xin = e;
        }
        int pad = (b->k - 1) / 2;
        int ho = mm_conv2d_out_size(h, b->k, b->stride, pad);
        int wo = mm_conv2d_out_size(w, b->k, b->stride, pad);
        mm_mnk_depthwise(xin, h, w, b->dw.w, b->dw.b, b->k, b->stride, b->dw.act, d, 0, b->exp);
        size_t hwo = (size_t)ho * wo;
        const float *pw = b->project.w;
        if (b->has_se) {
            se_fold(b, d, hwo, wse);
            pw = wse;
        }
        mm_mnk_pointwise(d, b->exp, hwo, pw, b->project.b, MM_ACT_NONE,
                         b->residual ? cur : NULL, nxt, 0, b->cout, 0, hwo);
        float *t = cur;
        cur = nxt, nxt = t;
        h = ho, w = wo;
        taps = tap_block(m, i, cur, h, w, taps);
    }
    size_t hw = (size_t)h * w;
    mm_mnk_pointwise(cur, m->last.cin, hw, m->last.w, m->last.b, m->last.act, NULL, nxt, 0,
                     m->last.cout, 0, hw);
    if (taps) tap_accumulate(nxt, m->last.cout, h, w, taps);   /* features.16 */
    *out = nxt, *h_out = h, *w_out = w;
}

/* The network; taps (NULL or tap_size(m) doubles) receives the layer sums. */
static int pool_impl(const mm_mobilenet *m, const float *mel, size_t n_frames, float *pooled,
                     size_t *t_out, int parallel, double *taps, mm_err *err);

int mm_mobilenet_pool(const mm_mobilenet *m, const float *mel, size_t n_frames, float *pooled,
                      size_t *t_out, int parallel, mm_err *err)
{
    return pool_impl(m, mel, n_frames, pooled, t_out, parallel, NULL, err);
}

int mm_mobilenet_layers_mel(const mm_mobilenet *m, const float *mel, size_t n_frames,
                            float *layers, int parallel, mm_err *err)
{
    double *taps = mm_calloc(tap_size(m), sizeof *taps, err);
    if (!taps) return MM_ENOMEM;
    float pooled[MM_MOBILENET_EMB];
    int rc = pool_impl(m, mel, n_frames, pooled, NULL, parallel, taps, err);
    if (!rc) tap_finish(m, taps, layers);
    free(taps);
    return rc;
}

static int pool_impl(const mm_mobilenet *m, const float *mel, size_t n_frames, float *pooled,
                     size_t *t_out, int parallel, double *taps, mm_err *err)
{
    if (n_frames == 0 || n_frames > (size_t)1 << 24)
        return mm_err_set(err, MM_EINVAL, "mn04: %zu frames; expected 1 .. 16777216",
                          n_frames);
    int F = MM_MOBILENET_N_MELS, T = (int)n_frames;
    for (size_t i = 0; i < n_frames * (size_t)F; i++)
        if (!isfinite(mel[i]))
            return mm_err_set(err, MM_EDATA, "mn04: log-mel value %zu (frame %zu) is not finite",
                              i, i / (size_t)F);
    int fused = mm_mnk_available();
    parallel = want_parallel(parallel);
    /* Plan: the largest map over all layers sizes the four work buffers. */
    int h = mm_conv2d_out_size(F, 3, 2, 1), w = mm_conv2d_out_size(T, 3, 2, 1);
    size_t maxsz = (size_t)F * T, stem_cols = fused ? 0 : (size_t)9 * h * w;
    if ((size_t)m->stem.cout * h * w > maxsz) maxsz = (size_t)m->stem.cout * h * w;
    for (int i = 0; i < N_BLOCKS; i++) {
        const block *b = &m->blk[i];
        size_t s = (size_t)b->exp * h * w;
        if (s > maxsz) maxsz = s;
        h = mm_conv2d_out_size(h, b->k, b->stride, (b->k - 1) / 2);
        w = mm_conv2d_out_size(w, b->k, b->stride, (b->k - 1) / 2);
    }
    if ((size_t)m->last.cout * h * w > maxsz) maxsz = (size_t)m->last.cout * h * w;
    size_t wse_sz = 0;   /* projection weights with SE gates folded in */
    for (int i = 0; i < N_BLOCKS; i++)
        if (m->blk[i].has_se && (size_t)m->blk[i].cout * m->blk[i].exp > wse_sz)
            wse_sz = (size_t)m->blk[i].cout * m->blk[i].exp;
    float *mem = mm_malloc(4 * maxsz + stem_cols + wse_sz, sizeof *mem, err);
    if (!mem) return MM_ENOMEM;
    float *cur = mem, *nxt = mem + maxsz, *e = mem + 2 * maxsz, *d = mem + 3 * maxsz;
    float *cols = mem + 4 * maxsz, *wse = cols + stem_cols;
    /* (T, F) frame-major → (1, F, T): frequency rows, time along the width. */
    for (int t = 0; t < T; t++)
        for (int f = 0; f < F; f++) e[(size_t)f * T + t] = mel[(size_t)t * F + f];
    float *last;
    if (fused)
        forward_fused(m, cur, nxt, e, d, wse, T, taps, &last, &h, &w);
    else
        forward_generic(m, cur, nxt, e, d, cols, wse, T, parallel, taps, &last, &h, &w);
    size_t hw = (size_t)h * w;
    int bad = 0;
    for (int c = 0; c < m->last.cout; c++) {
        double acc = 0;
        const float *x = last + (size_t)c * hw;
        for (size_t j = 0; j < hw; j++) acc += x[j];
        pooled[c] = (float)(acc / (double)hw);
        bad |= !isfinite(pooled[c]);
    }
    free(mem);
    if (bad) return mm_err_set(err, MM_EDATA, "mn04: non-finite activations (input not finite?)");
    if (t_out) *t_out = (size_t)w;
    return 0;
}

NO_CONTRACT void mm_mobilenet_head(const mm_mobilenet *m, const float *pooled, float *scores,
                                   float *logits)
{
    /* mat-vecs over transposed weights: outputs innermost (vectorised), each output's sum
     * over inputs in order from its bias */
    float hid[1024], a[MM_MOBILENET_CLASSES];
    memcpy(hid, m->fc1_b, (size_t)m->hidden * sizeof *hid);
    for (int c = 0; c < MM_MOBILENET_EMB; c++) {
        const float *w = m->fc1_w + (size_t)c * m->hidden;
        for (int j = 0; j < m->hidden; j++) hid[j] += w[j] * pooled[c];
    }
    mm_act_apply(hid, (size_t)m->hidden, MM_ACT_HARDSWISH);
    memcpy(a, m->fc2_b, sizeof a);
    for (int j = 0; j < m->hidden; j++) {
        const float *w = m->fc2_w + (size_t)j * MM_MOBILENET_CLASSES;
        for (int k = 0; k < MM_MOBILENET_CLASSES; k++) a[k] += w[k] * hid[j];
    }
    for (int k = 0; k < MM_MOBILENET_CLASSES; k++) {
        if (logits) logits[k] = a[k];
        if (scores) scores[k] = 1.0f / (1.0f + expf(-a[k]));
    }
}

enum { MIN_SAMPLES = 1025, HOP = 320, CTX = 640 };

/* The window of frames [f0, f0 + nw) of the clip x (n samples) as a sub-clip: frame f is
 * centred on pre-emphasised sample f·HOP and spans ±512, so the samples [f0·HOP − CTX,
 * (f0 + nw − 1)·HOP + CTX + 2) — CTX = 2 hops of context each side, plus one sample for the
 * pre-emphasis — hold those frames exactly, from frame *skip of the sub-clip on (the reflect
 * padding only ever touches the clip's true ends). */
static void window_span(size_t n, size_t f0, size_t nw, size_t *s0, size_t *s1, size_t *skip)
{
    *s0 = f0 ? f0 * HOP - CTX : 0;
    *s1 = (f0 + nw - 1) * HOP + CTX + 2;
    if (*s1 > n) *s1 = n;
    *skip = f0 ? CTX / HOP : 0;
}

/* The front end of one window as mm_par_for items of FE_ITEM frames, each with its own error:
 * frames [skip + a, skip + b) of the sub-clip xs (ns samples) into dst + a·128. */
#define FE_ITEM 32
typedef struct fe_job {
    const mm_mobilenet *m;
    const float *xs;
    size_t ns, skip, nw, items;
    float *dst;
    int rc;
    mm_err err;   /* the first failing item's error (claimed through `failed`) */
    int failed;
} fe_job;

static void fe_item(void *ctx, size_t i)
{
    fe_job *j = ctx;
    size_t a = j->items == 1 ? 0 : i * FE_ITEM, b = j->items == 1 ? j->nw : a + FE_ITEM;
    if (b > j->nw) b = j->nw;
    mm_err e = {0};
    int rc = mm_frontend_compute_frames(j->m->fe, j->xs, j->ns, j->skip + a, j->skip + b,
                                        j->dst + a * MM_MOBILENET_N_MELS, &e);
    if (rc && !__atomic_exchange_n(&j->failed, 1, __ATOMIC_ACQ_REL)) {
        j->err = e;
        j->rc = rc;
    }
}

static int run_audio(const mm_mobilenet *m, const float *x, size_t n, float *emb, float *scores,
                     float *layers, mm_mel_hook hook, void *hook_ctx, int parallel, mm_err *err);

int mm_mobilenet_embed_audio(const mm_mobilenet *m, const float *x, size_t n, float *emb,
                             float *scores, int parallel, mm_err *err)
{
    return run_audio(m, x, n, emb, scores, NULL, NULL, NULL, parallel, err);
}

int mm_mobilenet_layers_audio(const mm_mobilenet *m, const float *x, size_t n, float *layers,
                              int parallel, mm_err *err)
{
    return run_audio(m, x, n, NULL, NULL, layers, NULL, NULL, parallel, err);
}

int mm_mobilenet_audio_hooked(const mm_mobilenet *m, const float *x, size_t n, float *emb, float *layers,
                              mm_mel_hook hook, void *hook_ctx, int parallel, mm_err *err)
{
    return run_audio(m, x, n, emb, NULL, layers, hook, hook_ctx, parallel, err);
}

static int run_audio(const mm_mobilenet *m, const float *x, size_t n, float *emb, float *scores,
                     float *layers, mm_mel_hook hook, void *hook_ctx, int parallel, mm_err *err)
{
    if (n == 0) return mm_err_set(err, MM_EDATA, "mn04: empty audio");
    float *padded = NULL, *mel = NULL;
    fe_job *fj = NULL;
    int rc = 0;
    if (n < MIN_SAMPLES) {   /* too short for the reflect-padded STFT: zero-pad the end */
        padded = mm_calloc(MIN_SAMPLES, sizeof *padded, err);
        if (!padded) return MM_ENOMEM;
        memcpy(padded, x, n * sizeof *x);
        x = padded, n = MIN_SAMPLES;
    }
    parallel = want_parallel(parallel);
    size_t nf = mm_frontend_n_frames(m->fe, n);
    size_t nwin = (nf + MM_MOBILENET_WINDOW - 1) / MM_MOBILENET_WINDOW;
    size_t per = (nf + nwin - 1) / nwin;   /* balanced windows of at most WINDOW frames */
    mel = mm_malloc((per + 8) * MM_MOBILENET_N_MELS, sizeof *mel, err);
    fj = mm_malloc(1, sizeof *fj, err);
    double *taps = layers ? mm_calloc(tap_size(m), sizeof *taps, err) : NULL;
    if (!mel || !fj || (layers && !taps)) {
        rc = MM_ENOMEM;
        goto done;
    }
    double acc[MM_MOBILENET_EMB] = {0}, wsum = 0;
    float pooled[MM_MOBILENET_EMB];
    for (size_t wi = 0; wi < nwin; wi++) {
        size_t f0 = wi * per, nw = f0 + per <= nf ? per : nf - f0, s0, s1, skip;
        window_span(n, f0, nw, &s0, &s1, &skip);
        if (nwin == 1) s0 = 0, s1 = n, skip = 0;   /* the whole clip */
        if (skip + nw > mm_frontend_n_frames(m->fe, s1 - s0)) {
            rc = mm_err_set(err, MM_EINVAL, "mn04: window framing mismatch");
            goto done;
        }
        /* parallel: items of FE_ITEM frames claimed by this thread and the helpers */
        *fj = (fe_job){.m = m, .xs = x + s0, .ns = s1 - s0, .skip = skip, .nw = nw,
                       .items = parallel ? (nw + FE_ITEM - 1) / FE_ITEM : 1, .dst = mel};
        mm_par_for(fj->items, fe_item, fj, parallel);
        if (fj->rc) {
            rc = fj->rc;
            if (err) *err = fj->err;
            goto done;
        }
        if (hook && (rc = hook(hook_ctx, wi, mel, nw, MM_MOBILENET_N_MELS, err))) goto done;
        size_t t_out;
        if ((rc = pool_impl(m, mel, nw, pooled, &t_out, parallel, taps, err))) goto done;
        for (int c = 0; c < MM_MOBILENET_EMB; c++) acc[c] += (double)pooled[c] * (double)t_out;
        wsum += (double)t_out;
    }
    for (int c = 0; c < MM_MOBILENET_EMB; c++) pooled[c] = (float)(acc[c] / wsum);
    if (emb) memcpy(emb, pooled, sizeof pooled);
    if (scores) mm_mobilenet_head(m, pooled, scores, NULL);
    if (layers) tap_finish(m, taps, layers);
done:
    free(taps);
    free(fj);
    free(mel);
    free(padded);
    return rc;
}
