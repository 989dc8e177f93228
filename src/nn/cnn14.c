/* cnn14.c — PANNs Cnn14 forward pass (inference only).
 *
 * Matches qiuqiangkong/audioset_tagging_cnn pytorch/models.py Cnn14.forward
 * in eval mode from the log-mel on (see cnn14.h); checked against a PyTorch
 * re-implementation by tests/ref/gen_cnn14.py and tests/test_cnn14.c.
 * Weights come from a state dict (PANNs names); BN after each conv is folded
 * into it: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε), ε = 1e-5 (PyTorch's).
 * Leaves out: the front end, training-time layers (SpecAugment, mixup,
 * dropout), batches.
 */
#include "nn/cnn14.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5.h"
#include "io/ptload.h"

#define N_BLOCKS 6
#define BN_EPS 1e-5
#define N_SLOTS 4     /* forward workspaces kept between calls */

/* A forward's scratch (activations + conv workspace), kept for reuse so that
 * repeated calls do not page-fault fresh memory each time. */
typedef struct ws_slot {
    float *buf;
    size_t cap;       /* floats */
    int busy;
} ws_slot;

struct mm_cnn14 {
    size_t n_mels;                /* M: mel bins bn0 normalises (64) */
    size_t width[N_BLOCKS];       /* channels of each block */
    size_t emb, n_classes;        /* fc1 outputs, fc_audioset outputs */
    float *bn0_scale, *bn0_shift; /* (M) each: x·scale + shift */
    mm_conv3x3 *conv[N_BLOCKS][2];/* BN-folded convolutions */
    float *fc1_w;                 /* (emb, width[5]) */
    float *fc1_b;                 /* (emb) */
    float *fc2_w;                 /* (n_classes, emb) */
    float *fc2_b;                 /* (n_classes) */
    pthread_mutex_t lock;         /* guards slots */
    ws_slot slots[N_SLOTS];       /* reusable forward workspaces */
};

void mm_cnn14_params_default(mm_cnn14_params *p)
{
    p->algo = MM_CONV3X3_AUTO;
}

/* ---- building from a state dict ----------------------------------------- */

static const char *shape_str(char *buf, size_t size, int rank, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, size - k, "(");
    for (int i = 0; i < rank && k < size; i++)
        k += shape[i] < 0 ? (size_t)snprintf(buf + k, size - k, "%s*", i ? ", " : "")
                          : (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "",
                                             (long long)shape[i]);
    if (k < size) snprintf(buf + k, size - k, "%s)", rank == 1 ? "," : "");
    return buf;
}

/* Fetch `name` and check its shape against want[0..rank) (want[i] < 0: any,
 * the value found is written back). Values must be finite. */
static int get_tensor(mm_cnn14_lookup_fn lookup, void *ctx, const char *what, const char *name,
                      int rank, int64_t *want, const float **data, mm_err *err)
{
    mm_cnn14_tensor t;
    memset(&t, 0, sizeof t);
    int rc = lookup(ctx, name, &t, err);
    if (rc < 0) return mm_err_prefix(err, "%s", what);
    int ok = t.rank == rank && t.data != NULL;
    for (int i = 0; ok && i < rank; i++)
        if (t.shape[i] <= 0 || (want[i] >= 0 && t.shape[i] != want[i])) ok = 0;
    if (!ok) {
        char wtxt[96], b[96];
        shape_str(wtxt, sizeof wtxt, rank, want);
        return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': expected shape %s, got %s", what,
                          name, wtxt, shape_str(b, sizeof b, t.rank, t.shape));
    }
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        want[i] = t.shape[i];
        n *= (size_t)t.shape[i];
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(t.data[i]))
            return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': value %zu is not finite", what,
                              name, i);
    *data = t.data;
    return 0;
}

/* BN (γ, β, μ, σ²) of `prefix` as scale/shift (double). */
static int get_bn(mm_cnn14_lookup_fn lookup, void *ctx, const char *what, const char *prefix,
                  size_t n, double *scale, double *shift, mm_err *err)
{
    static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
    const float *p[4];
    char name[128];
    for (int k = 0; k < 4; k++) {
        int64_t want[1] = {(int64_t)n};
        snprintf(name, sizeof name, "%s.%s", prefix, parts[k]);
        int rc = get_tensor(lookup, ctx, what, name, 1, want, &p[k], err);
        if (rc < 0) return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[3][i] < 0.0f)
            return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s.running_var': value %zu is %g, "
                              "expected >= 0", what, prefix, i, (double)p[3][i]);
        double s = (double)p[0][i] / sqrt((double)p[3][i] + BN_EPS);
        scale[i] = s;
        shift[i] = (double)p[1][i] - (double)p[2][i] * s;
    }
    return 0;
}

static int build_conv(mm_cnn14_lookup_fn lookup, void *ctx, const char *what, int block, int k,
                      size_t cin, size_t *cout, mm_conv3x3_algo algo, mm_conv3x3 **out,
                      mm_err *err)
{
    char name[128];
    snprintf(name, sizeof name, "conv_block%d.conv%d.weight", block + 1, k + 1);
    int64_t want[4] = {k == 0 ? -1 : (int64_t)*cout, (int64_t)cin, 3, 3};
    const float *w = NULL;
    int rc = get_tensor(lookup, ctx, what, name, 4, want, &w, err);
    if (rc < 0) return rc;
    *cout = (size_t)want[0];
    size_t co = *cout, nw = co * cin * 9;
    double *scale = mm_malloc(co, sizeof(double), err);
    double *shift = mm_malloc(co, sizeof(double), err);
    float *fw = mm_malloc(nw, sizeof(float), err);
    float *fb = mm_malloc(co, sizeof(float), err);
    if (!scale || !shift || !fw || !fb) { rc = MM_ENOMEM; goto done; }
    snprintf(name, sizeof name, "conv_block%d.bn%d", block + 1, k + 1);
    rc = get_bn(lookup, ctx, what, name, co, scale, shift, err);
    if (rc < 0) goto done;
    for (size_t o = 0; o < co; o++) {
        for (size_t j = 0; j < cin * 9; j++)
            fw[o * cin * 9 + j] = (float)((double)w[o * cin * 9 + j] * scale[o]);
        fb[o] = (float)shift[o];
    }
    /* One input channel: K = 9, nothing for Winograd to save. */
    if (cin == 1 || (algo == MM_CONV3X3_AUTO && block == N_BLOCKS - 1)) algo = MM_CONV3X3_IM2COL;
    rc = mm_conv3x3_create(fw, fb, cin, co, algo, out, err);
done:
    free(scale);
    free(shift);
    free(fw);
    free(fb);
    return rc;
}

static float *copy_floats(const float *src, size_t n, mm_err *err)
{
    float *d = mm_malloc(n, sizeof(float), err);
    if (d) memcpy(d, src, n * sizeof(float));
    return d;
}

int mm_cnn14_build(mm_cnn14_lookup_fn lookup, void *ctx, const char *what,
                   const mm_cnn14_params *params, mm_cnn14 **out, mm_err *err)
{
    mm_cnn14_params def;
    if (!params) {
        mm_cnn14_params_default(&def);
        params = &def;
    }
    if (!what) what = "cnn14";
    int rc = 0;
    double *s = NULL, *b = NULL;
    mm_cnn14 *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);

    /* bn0 over mel bins: size from its weight. */
    int64_t want1[1] = {-1};
    const float *tmp;
    rc = get_tensor(lookup, ctx, what, "bn0.weight", 1, want1, &tmp, err);
    if (rc < 0) goto fail;
    m->n_mels = (size_t)want1[0];
    if (m->n_mels < MM_CNN14_MIN_FRAMES) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: tensor 'bn0.weight': %zu mel bins, expected >= %d "
                        "(five 2x2 poolings)", what, m->n_mels, MM_CNN14_MIN_FRAMES);
        goto fail;
    }
    s = mm_malloc(m->n_mels, sizeof(double), err);
    b = mm_malloc(m->n_mels, sizeof(double), err);
    m->bn0_scale = mm_malloc(m->n_mels, sizeof(float), err);
    m->bn0_shift = mm_malloc(m->n_mels, sizeof(float), err);
    if (!s || !b || !m->bn0_scale || !m->bn0_shift) { rc = MM_ENOMEM; goto fail; }
    rc = get_bn(lookup, ctx, what, "bn0", m->n_mels, s, b, err);
    if (rc < 0) goto fail;
    for (size_t i = 0; i < m->n_mels; i++) {
        m->bn0_scale[i] = (float)s[i];
        m->bn0_shift[i] = (float)b[i];
    }

    size_t cin = 1;
    for (int k = 0; k < N_BLOCKS; k++) {
        size_t cout = 0;
        rc = build_conv(lookup, ctx, what, k, 0, cin, &cout, params->algo, &m->conv[k][0], err);
        if (rc < 0) goto fail;
        rc = build_conv(lookup, ctx, what, k, 1, cout, &cout, params->algo, &m->conv[k][1], err);
        if (rc < 0) goto fail;
        m->width[k] = cout;
        cin = cout;
    }

    int64_t wfc1[2] = {-1, (int64_t)cin}, bfc1[1];
    const float *w = NULL, *bias = NULL;
    rc = get_tensor(lookup, ctx, what, "fc1.weight", 2, wfc1, &w, err);
    if (rc < 0) goto fail;
    m->emb = (size_t)wfc1[0];
    bfc1[0] = (int64_t)m->emb;
    if ((rc = get_tensor(lookup, ctx, what, "fc1.bias", 1, bfc1, &bias, err)) < 0) goto fail;
    m->fc1_w = copy_floats(w, m->emb * cin, err);
    m->fc1_b = copy_floats(bias, m->emb, err);
    if (!m->fc1_w || !m->fc1_b) { rc = MM_ENOMEM; goto fail; }

    int64_t wfc2[2] = {-1, (int64_t)m->emb}, bfc2[1];
    rc = get_tensor(lookup, ctx, what, "fc_audioset.weight", 2, wfc2, &w, err);
    if (rc < 0) goto fail;
    m->n_classes = (size_t)wfc2[0];
    bfc2[0] = (int64_t)m->n_classes;
    if ((rc = get_tensor(lookup, ctx, what, "fc_audioset.bias", 1, bfc2, &bias, err)) < 0)
        goto fail;
    m->fc2_w = copy_floats(w, m->n_classes * m->emb, err);
    m->fc2_b = copy_floats(bias, m->n_classes, err);
    if (!m->fc2_w || !m->fc2_b) { rc = MM_ENOMEM; goto fail; }

    free(s);
    free(b);
    *out = m;
    return 0;
fail:
    free(s);
    free(b);
    mm_cnn14_free(m);
    return rc;
}

void mm_cnn14_free(mm_cnn14 *m)
{
    if (!m) return;
    free(m->bn0_scale);
    free(m->bn0_shift);
    for (int k = 0; k < N_BLOCKS; k++) {
        mm_conv3x3_free(m->conv[k][0]);
        mm_conv3x3_free(m->conv[k][1]);
    }
    free(m->fc1_w);
    free(m->fc1_b);
    free(m->fc2_w);
    free(m->fc2_b);
    for (int i = 0; i < N_SLOTS; i++) free(m->slots[i].buf);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Take a workspace of at least `need` floats: a free pooled one (grown if
 * needed) or, when all are busy, a private one (*slot = -1). */
static float *ws_get(mm_cnn14 *m, size_t need, int *slot, mm_err *err)
{
    int pick = -1;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < N_SLOTS && pick < 0; i++)
        if (!m->slots[i].busy && m->slots[i].cap >= need) pick = i;
    for (int i = 0; i < N_SLOTS && pick < 0; i++)
        if (!m->slots[i].busy) pick = i;
    if (pick >= 0) m->slots[pick].busy = 1;
    pthread_mutex_unlock(&m->lock);
    *slot = pick;
    if (pick < 0) return mm_malloc(need, sizeof(float), err);
    ws_slot *w = &m->slots[pick];
    if (w->cap < need) {
        free(w->buf);
        w->cap = 0;
        if (!(w->buf = mm_malloc(need, sizeof(float), err))) {
            pthread_mutex_lock(&m->lock);
            w->busy = 0;
            pthread_mutex_unlock(&m->lock);
            return NULL;
        }
        w->cap = need;
    }
    return w->buf;
}

static void ws_put(mm_cnn14 *m, float *buf, int slot)
{
    if (slot < 0) {
        free(buf);
        return;
    }
    pthread_mutex_lock(&m->lock);
    m->slots[slot].busy = 0;
    pthread_mutex_unlock(&m->lock);
}

size_t mm_cnn14_n_mels(const mm_cnn14 *m) { return m->n_mels; }
size_t mm_cnn14_embedding_dim(const mm_cnn14 *m) { return m->emb; }
size_t mm_cnn14_n_classes(const mm_cnn14 *m) { return m->n_classes; }
size_t mm_cnn14_width(const mm_cnn14 *m, int block)
{
    return block >= 0 && block < N_BLOCKS ? m->width[block] : 0;
}

double mm_cnn14_macs(const mm_cnn14 *m, size_t n_frames)
{
    size_t h = n_frames < MM_CNN14_MIN_FRAMES ? MM_CNN14_MIN_FRAMES : n_frames, w = m->n_mels;
    double macs = 0, cin = 1;
    for (int k = 0; k < N_BLOCKS; k++) {
        double c = (double)m->width[k], hw = (double)h * (double)w;
        macs += 9.0 * hw * c * (cin + c);
        cin = c;
        if (k < N_BLOCKS - 1) { h /= 2; w /= 2; }
    }
    return macs + (double)m->emb * cin + (double)m->n_classes * (double)m->emb;
}

/* ---- HDF5 state dicts ----------------------------------------------------- */

typedef struct h5_ctx {
    hid_t group;
    const char *path;
    float *bufs[128];   /* tensors read so far, freed after the build */
    size_t n;
} h5_ctx;

static int h5_lookup(void *vctx, const char *name, mm_cnn14_tensor *t, mm_err *err)
{
    h5_ctx *c = vctx;
    if (!mm_h5_exists(c->group, name))
        return mm_err_set(err, MM_EFORMAT, "tensor '%s' missing", name);
    if (c->n == sizeof c->bufs / sizeof *c->bufs)
        return mm_err_set(err, MM_EFORMAT, "tensor '%s': too many tensors", name);
    float *d = NULL;
    int rank = 0;
    hsize_t dims[4] = {0, 0, 0, 0};
    int rc = mm_h5_read_f32(c->group, name, -1, &d, &rank, dims, err);
    if (rc < 0) return mm_err_prefix(err, "tensor '%s'", name);
    c->bufs[c->n++] = d;
    t->data = d;
    t->rank = rank;
    for (int i = 0; i < 4; i++) t->shape[i] = i < rank ? (int64_t)dims[i] : 0;
    return 0;
}

static int load_h5(const char *path, const mm_cnn14_params *params, mm_cnn14 **out, mm_err *err)
{
    hid_t f;
    int rc = mm_h5_open_read(path, &f, err);
    if (rc < 0) return rc;
    h5_ctx c = {.group = -1, .path = path, .n = 0};
    if (!mm_h5_exists(f, "model")) {
        mm_h5_close(f);
        return mm_err_set(err, MM_EFORMAT, "%s: no group 'model' (the state dict)", path);
    }
    c.group = mm_h5_open_group(f, "model", err);
    if (c.group < 0) {
        mm_h5_close(f);
        return mm_err_prefix(err, "%s", path);
    }
    rc = mm_cnn14_build(h5_lookup, &c, path, params, out, err);
    for (size_t i = 0; i < c.n; i++) free(c.bufs[i]);
    H5Gclose(c.group);
    mm_h5_close(f);
    return rc;
}

/* ---- PyTorch checkpoints (src/io/ptload) ------------------------------------ */

static int pt_lookup(void *ctx, const char *name, mm_cnn14_tensor *t, mm_err *err)
{
    const mm_pt_tensor *x = mm_pt_find(ctx, name);
    if (!x) return mm_err_set(err, MM_EFORMAT, "tensor '%s' missing", name);
    if (x->dtype != MM_PT_F32 && x->dtype != MM_PT_F16 && x->dtype != MM_PT_BF16 &&
        x->dtype != MM_PT_F64)
        return mm_err_set(err, MM_EFORMAT, "tensor '%s': dtype %s, expected floating point",
                          name, mm_pt_dtype_name(x->dtype));
    if (x->ndim > 4)
        return mm_err_set(err, MM_EFORMAT, "tensor '%s': %d dimensions, expected at most 4",
                          name, x->ndim);
    t->data = x->data;
    t->rank = x->ndim;
    for (int i = 0; i < 4; i++) t->shape[i] = i < x->ndim ? x->shape[i] : 0;
    return 0;
}

/* PANNs checkpoints hold {'model': state_dict, 'iteration': ...}; a bare
 * state dict is accepted too (its top level then holds the tensors). */
static int load_pt(const char *path, const mm_cnn14_params *params, mm_cnn14 **out, mm_err *err)
{
    mm_pt *pt = NULL;
    int rc = mm_pt_open(path, &pt, err);
    if (rc < 0) return rc;
    size_t n = 0;
    rc = mm_pt_state_dict(pt, NULL, &n, err);
    if (rc == 0 && n == 0) rc = mm_pt_state_dict(pt, "model", &n, err);
    if (rc == 0) rc = mm_cnn14_build(pt_lookup, pt, path, params, out, err);
    mm_pt_free(pt);
    return rc;
}

int mm_cnn14_load(const char *path, const mm_cnn14_params *params, mm_cnn14 **out, mm_err *err)
{
    if (!path || !*path) return mm_err_set(err, MM_EINVAL, "cnn14: no checkpoint path given");
    FILE *fp = fopen(path, "rb");
    if (!fp) return mm_err_set(err, MM_EIO, "%s: cannot open", path);
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    if (got == 8 && !memcmp(magic, "\x89HDF\r\n\x1a\n", 8)) return load_h5(path, params, out, err);
    /* Anything else goes to ptload, which recognises zip and legacy files. */
    return load_pt(path, params, out, err);
}

/* ---- forward -------------------------------------------------------------- */

static void avg_pool2(const float *x, size_t c, size_t h, size_t w, float *y)
{
    size_t h2 = h / 2, w2 = w / 2;
    for (size_t k = 0; k < c; k++) {
        const float *img = x + k * h * w;
        float *o = y + k * h2 * w2;
        for (size_t i = 0; i < h2; i++) {
            const float *r0 = img + 2 * i * w, *r1 = r0 + w;
            for (size_t j = 0; j < w2; j++)
                o[i * w2 + j] = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) * 0.25f;
        }
    }
}

/* y (n) = W (n × k) x + b; 8 partial sums per row (vectorisable, no BLAS:
 * the global BLAS thread setting stays untouched). */
static void linear(const float *w, const float *b, const float *x, size_t n, size_t k, float *y)
{
    for (size_t i = 0; i < n; i++) {
        const float *r = w + i * k;
        float acc[8] = {0};
        size_t j = 0;
        for (; j + 8 <= k; j += 8)
            for (int l = 0; l < 8; l++) acc[l] += r[j + (size_t)l] * x[j + (size_t)l];
        float s = 0;
        for (; j < k; j++) s += r[j] * x[j];
        y[i] = b[i] + (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + s);
    }
}

int mm_cnn14_forward(const mm_cnn14 *m, const float *logmel, size_t n_frames, int n_threads,
                     float *embedding, float *scores, mm_err *err)
{
    if (n_frames == 0) return mm_err_set(err, MM_EINVAL, "cnn14: empty input (0 frames)");
    if (n_threads < 1) n_threads = 1;
    size_t M = m->n_mels;
    for (size_t i = 0; i < n_frames * M; i++)
        if (!isfinite(logmel[i]))
            return mm_err_set(err, MM_EDATA, "cnn14: log-mel value %zu (frame %zu, bin %zu) is "
                              "not finite", i, i / M, i % M);
    size_t T = n_frames < MM_CNN14_MIN_FRAMES ? MM_CNN14_MIN_FRAMES : n_frames;

    /* Sizes: activations peak at block 1 (width[0] × T × M); scratch is the
     * largest conv workspace over the layers. */
    size_t act = m->width[0] * T * M, work = 0;
    {
        size_t h = T, w = M;
        for (int k = 0; k < N_BLOCKS; k++) {
            for (int j = 0; j < 2; j++) {
                size_t need = mm_conv3x3_workspace(m->conv[k][j], h, w, n_threads);
                if (need > work) work = need;
                size_t a = mm_conv3x3_cout(m->conv[k][j]) * h * w;
                if (a > act) act = a;
            }
            if (k < N_BLOCKS - 1) { h /= 2; w /= 2; }
        }
    }
    size_t C = m->width[N_BLOCKS - 1];
    int slot;
    float *mem = ws_get((mm_cnn14 *)m, 2 * act + work + C + m->emb, &slot, err);
    if (!mem) return MM_ENOMEM;
    float *a = mem, *b = a + act, *ws = b + act, *pooled = ws + work;

    /* bn0 per mel bin, on the (T, M) image of one channel; padded rows are
     * silence normalised by the same bn0. */
    for (size_t t = 0; t < T; t++)
        for (size_t f = 0; f < M; f++) {
            float v = t < n_frames ? logmel[t * M + f] : MM_CNN14_PAD_DB;
            a[t * M + f] = v * m->bn0_scale[f] + m->bn0_shift[f];
        }

    size_t h = T, w = M;
    for (int k = 0; k < N_BLOCKS; k++) {
        mm_conv3x3_forward(m->conv[k][0], a, h, w, b, 1, n_threads, ws);
        mm_conv3x3_forward(m->conv[k][1], b, h, w, a, 1, n_threads, ws);
        if (k < N_BLOCKS - 1) {
            avg_pool2(a, m->width[k], h, w, b);
            h /= 2;
            w /= 2;
            float *t = a; a = b; b = t;
        }
    }

    /* a: (C, h, w). Mean over mel (w), then max + mean over time (h). */
    for (size_t c = 0; c < C; c++) {
        const float *img = a + c * h * w;
        float mx = -INFINITY;
        double sum = 0;
        for (size_t t = 0; t < h; t++) {
            float s = 0;
            for (size_t f = 0; f < w; f++) s += img[t * w + f];
            s /= (float)w;
            if (s > mx) mx = s;
            sum += s;
        }
        pooled[c] = mx + (float)(sum / (double)h);
    }
    float *e = pooled + C;
    linear(m->fc1_w, m->fc1_b, pooled, m->emb, C, e);
    for (size_t i = 0; i < m->emb; i++) e[i] = e[i] > 0.0f ? e[i] : 0.0f;
    if (embedding) memcpy(embedding, e, m->emb * sizeof(float));
    if (scores) {
        linear(m->fc2_w, m->fc2_b, e, m->n_classes, m->emb, scores);
        for (size_t i = 0; i < m->n_classes; i++) scores[i] = 1.0f / (1.0f + expf(-scores[i]));
    }
    ws_put((mm_cnn14 *)m, mem, slot);
    return 0;
}

/* ---- audio in ------------------------------------------------------------------ */

struct mm_cnn14_clip {
    mm_frontend *fe;
    mm_cnn14 *net;
};

int mm_cnn14_clip_load(const char *weights, mm_frontend_kind kind, mm_cnn14_clip **out,
                       mm_err *err)
{
    mm_cnn14_clip *c = mm_calloc(1, sizeof *c, err);
    if (!c) return MM_ENOMEM;
    int rc = mm_frontend_create(kind, &c->fe, err);
    if (rc == 0) rc = mm_cnn14_load(weights, NULL, &c->net, err);
    if (rc == 0 && mm_cnn14_n_mels(c->net) != (size_t)mm_frontend_n_mels(c->fe))
        rc = mm_err_set(err, MM_EFORMAT, "%s: network expects %zu mel bins, front end %s gives %d",
                        weights, mm_cnn14_n_mels(c->net), mm_frontend_kind_name(kind),
                        mm_frontend_n_mels(c->fe));
    if (rc) {
        mm_cnn14_clip_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void mm_cnn14_clip_free(mm_cnn14_clip *c)
{
    if (!c) return;
    mm_frontend_free(c->fe);
    mm_cnn14_free(c->net);
    free(c);
}

int mm_cnn14_clip_sample_rate(const mm_cnn14_clip *c) { return mm_frontend_sample_rate(c->fe); }
const mm_cnn14 *mm_cnn14_clip_net(const mm_cnn14_clip *c) { return c->net; }
const mm_frontend *mm_cnn14_clip_frontend(const mm_cnn14_clip *c) { return c->fe; }

int mm_cnn14_clip_run(const mm_cnn14_clip *c, const float *x, size_t n, int n_threads,
                      float *embedding, float *scores, mm_err *err)
{
    if (n == 0) return mm_err_set(err, MM_EDATA, "cnn14: empty clip (0 samples)");
    /* Smallest length giving MM_CNN14_MIN_FRAMES frames (frames grow with n). */
    size_t need = n;
    if (mm_frontend_n_frames(c->fe, n) < MM_CNN14_MIN_FRAMES) {
        size_t lo = n, hi = n;
        while (mm_frontend_n_frames(c->fe, hi) < MM_CNN14_MIN_FRAMES) {
            lo = hi;
            hi *= 2;
        }
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (mm_frontend_n_frames(c->fe, mid) < MM_CNN14_MIN_FRAMES) lo = mid;
            else hi = mid;
        }
        need = hi;
    }
    const float *sig = x;
    float *padded = NULL, *lm = NULL;
    int rc = 0;
    if (need > n) {
        if (!(padded = mm_calloc(need, sizeof *padded, err))) return MM_ENOMEM;
        memcpy(padded, x, n * sizeof *x);
        sig = padded;
    }
    size_t nf = mm_frontend_n_frames(c->fe, need), M = (size_t)mm_frontend_n_mels(c->fe);
    if (!(lm = mm_malloc(nf * M, sizeof *lm, err))) {
        rc = MM_ENOMEM;
        goto done;
    }
    if ((rc = mm_frontend_compute(c->fe, sig, need, lm, err))) goto done;
    rc = mm_cnn14_forward(c->net, lm, nf, n_threads, embedding, scores, err);
done:
    free(padded);
    free(lm);
    return rc;
}
