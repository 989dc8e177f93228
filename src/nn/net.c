/* net.c — sequential network container (see net.h): shapes, one flat
 * parameter vector, activations cached per layer for backward, inference in
 * chunks with its own workspace, HDF5 save/load.
 * Reference: Keras Sequential over channels-last tensors (layer semantics as
 * in layers.h, batch-norm constants as PyTorch's). Leaves out branching
 * graphs, recurrent layers and mixed precision. */
#include "nn/net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "nn/par.h"
#include "io/h5.h"

#define MAX_LAYERS 64
#define MAX_UNITS (1 << 20)
#define MAX_KERNEL 4096
#define MAX_PARAMS ((size_t)1 << 31)
#define INFER_CHUNK 256

typedef struct layer {
    mm_net_spec s;
    size_t in_len, in_ch, out_len, out_ch;
    size_t pad_left;       /* conv / pool */
    size_t p_off, w_n, b_n;/* params: first tensor (w_n) then second (b_n) at p_off */
    size_t buf_off;        /* BN running mean (C) then var (C) */
    /* training workspace, capacity cap rows of the batch */
    float *out;            /* (cap, out_len, out_ch), or an alias of the input */
    float *col;            /* conv: (cap * out_len, kernel * in_ch) */
    int32_t *arg;          /* pool: (cap * out_len * out_ch) */
    uint8_t *mask;         /* dropout: (cap * in_len * in_ch) */
    float *mean, *invstd;  /* batch norm: (out_ch) each */
} layer;

struct mm_net {
    size_t in_len, in_ch;
    size_t n;              /* layers */
    layer l[MAX_LAYERS];
    int built;
    size_t n_params, n_buffers;
    float *params, *grads; /* (n_params) */
    float *buffers;        /* (n_buffers) */
    size_t cap;            /* batch capacity of the workspace */
    size_t B;              /* rows of the last forward */
    const float *X;        /* input of the last forward */
    float *g0, *g1;        /* (cap * max activation) ping-pong gradients */
    float *dcol;           /* (cap * max col) */
};

static const char *kind_name(int k)
{
    static const char *names[] = {"?", "dense", "conv1d", "batchnorm", "maxpool1d", "dropout",
                                  "activation", "flatten"};
    return k >= 1 && k <= 7 ? names[k] : "?";
}

int mm_net_create(size_t in_len, size_t in_ch, mm_net **out, mm_err *err)
{
    if (in_len < 1 || in_ch < 1 || in_len > MAX_PARAMS / in_ch)
        return mm_err_set(err, MM_EINVAL, "network input: implausible shape (%zu, %zu)", in_len, in_ch);
    mm_net *n = mm_calloc(1, sizeof *n, err);
    if (!n) return MM_ENOMEM;
    n->in_len = in_len;
    n->in_ch = in_ch;
    *out = n;
    return 0;
}

static void free_workspace(mm_net *n)
{
    for (size_t i = 0; i < n->n; i++) {
        layer *L = &n->l[i];
        if (L->s.kind != MM_NET_FLATTEN) free(L->out);
        free(L->col); free(L->arg); free(L->mask);
        L->out = NULL; L->col = NULL; L->arg = NULL; L->mask = NULL;
    }
    free(n->g0); free(n->g1); free(n->dcol);
    n->g0 = n->g1 = n->dcol = NULL;
    n->cap = 0;
}

void mm_net_free(mm_net *n)
{
    if (!n) return;
    free_workspace(n);
    for (size_t i = 0; i < n->n; i++) { free(n->l[i].mean); free(n->l[i].invstd); }
    free(n->params); free(n->grads); free(n->buffers);
    free(n);
}

int mm_net_add(mm_net *n, const mm_net_spec *s, mm_err *err)
{
    if (n->built) return mm_err_set(err, MM_EINVAL, "network: cannot add a layer after build");
    if (n->n == MAX_LAYERS) return mm_err_set(err, MM_EINVAL, "network: more than %d layers", MAX_LAYERS);
    size_t idx = n->n;
    layer L = {.s = *s};
    L.in_len = idx ? n->l[idx - 1].out_len : n->in_len;
    L.in_ch = idx ? n->l[idx - 1].out_ch : n->in_ch;
    L.out_len = L.in_len;
    L.out_ch = L.in_ch;
    const char *kn = kind_name(s->kind);
#define BAD(...) do { mm_err_set(err, MM_EINVAL, __VA_ARGS__); \
                      return mm_err_prefix(err, "layer %zu (%s)", idx, kn); } while (0)
    switch (s->kind) {
    case MM_NET_DENSE:
        if (s->units < 1 || s->units > MAX_UNITS) BAD("units %d: expected an integer in [1, %d]", s->units, MAX_UNITS);
        L.out_ch = (size_t)s->units;
        L.w_n = L.out_ch * L.in_ch;
        L.b_n = L.out_ch;
        break;
    case MM_NET_CONV1D:
    case MM_NET_MAXPOOL1D:
        if (s->kind == MM_NET_CONV1D && (s->units < 1 || s->units > MAX_UNITS))
            BAD("filters %d: expected an integer in [1, %d]", s->units, MAX_UNITS);
        if (s->kernel < 1 || s->kernel > MAX_KERNEL) BAD("kernel size %d: expected an integer in [1, %d]", s->kernel, MAX_KERNEL);
        if (s->stride < 1 || s->stride > MAX_KERNEL) BAD("stride %d: expected an integer in [1, %d]", s->stride, MAX_KERNEL);
        if (s->padding != MM_NN_PAD_SAME && s->padding != MM_NN_PAD_VALID) BAD("padding %d: expected same or valid", (int)s->padding);
        mm_nn_window(L.in_len, (size_t)s->kernel, (size_t)s->stride, s->padding, &L.out_len, &L.pad_left);
        if (L.out_len == 0) BAD("input length %zu is shorter than the window %d", L.in_len, s->kernel);
        if (s->kind == MM_NET_CONV1D) {
            L.out_ch = (size_t)s->units;
            if (L.in_ch * (size_t)s->kernel > MAX_PARAMS / L.out_ch) BAD("too many weights");
            L.w_n = L.out_ch * (size_t)s->kernel * L.in_ch;
            L.b_n = L.out_ch;
        }
        break;
    case MM_NET_BATCHNORM:
        L.w_n = L.b_n = L.in_ch;
        break;
    case MM_NET_DROPOUT:
        if (!(s->rate >= 0 && s->rate < 1)) BAD("rate %g: expected a number in [0, 1)", (double)s->rate);
        break;
    case MM_NET_ACT:
        if ((int)s->act < MM_NN_ACT_IDENTITY || (int)s->act > MM_NN_ACT_HARDSWISH) BAD("unknown activation %d", (int)s->act);
        break;
    case MM_NET_FLATTEN:
        L.out_ch = L.in_len * L.in_ch;
        L.out_len = 1;
        break;
    default:
        BAD("unknown layer kind %d", (int)s->kind);
    }
#undef BAD
    if (L.out_len > MAX_PARAMS / L.out_ch || n->n_params + L.w_n + L.b_n > MAX_PARAMS)
        return mm_err_set(err, MM_EINVAL, "layer %zu (%s): network too large", idx, kn);
    L.p_off = n->n_params;
    n->n_params += L.w_n + L.b_n;
    if (s->kind == MM_NET_BATCHNORM) {
        L.buf_off = n->n_buffers;
        n->n_buffers += 2 * L.in_ch;
    }
    n->l[n->n++] = L;
    return 0;
}

int mm_net_build(mm_net *n, mm_err *err)
{
    if (n->built) return 0;
    if (!n->n) return mm_err_set(err, MM_EINVAL, "network: no layers");
    const layer *last = &n->l[n->n - 1];
    if (last->out_len != 1 || last->out_ch < 2)
        return mm_err_set(err, MM_EINVAL, "network: must end in a flat vector of >= 2 logits, ends in (%zu, %zu)",
                          last->out_len, last->out_ch);
    n->params = mm_calloc(n->n_params, sizeof(float), err);
    n->grads = n->params ? mm_calloc(n->n_params, sizeof(float), err) : NULL;
    n->buffers = n->grads ? mm_calloc(n->n_buffers, sizeof(float), err) : NULL;
    if (!n->buffers) return MM_ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        layer *L = &n->l[i];
        if (L->s.kind != MM_NET_BATCHNORM) continue;
        for (size_t c = 0; c < L->in_ch; c++) {
            n->params[L->p_off + c] = 1;                 /* gamma */
            n->buffers[L->buf_off + L->in_ch + c] = 1;   /* running var */
        }
        L->mean = mm_malloc(L->in_ch, sizeof(float), err);
        L->invstd = L->mean ? mm_malloc(L->in_ch, sizeof(float), err) : NULL;
        if (!L->invstd) return MM_ENOMEM;
    }
    n->built = 1;
    return 0;
}

void mm_net_init(mm_net *n, mm_net_init_scheme scheme, uint64_t seed)
{
    for (size_t i = 0; i < n->n; i++) {
        layer *L = &n->l[i];
        if (L->s.kind != MM_NET_DENSE && L->s.kind != MM_NET_CONV1D) continue;
        size_t k = L->s.kind == MM_NET_CONV1D ? (size_t)L->s.kernel : 1;
        double fan_in = (double)(k * L->in_ch), fan_out = (double)(k * L->out_ch);
        double bw = scheme == MM_NET_INIT_TORCH ? 1 / sqrt(fan_in) : sqrt(6 / (fan_in + fan_out));
        double bb = scheme == MM_NET_INIT_GLOROT ? 0 : bw;
        mm_rng r;
        mm_rng_seed(&r, seed, 0x1417, i);
        float *w = n->params + L->p_off;
        for (size_t j = 0; j < L->w_n; j++) w[j] = (float)((2 * mm_rng_uniform(&r) - 1) * bw);
        for (size_t j = 0; j < L->b_n; j++) w[L->w_n + j] = (float)((2 * mm_rng_uniform(&r) - 1) * bb);
    }
}

size_t mm_net_n_layers(const mm_net *n) { return n->n; }
const mm_net_spec *mm_net_layer(const mm_net *n, size_t i) { return &n->l[i].s; }
void mm_net_layer_shape(const mm_net *n, size_t i, size_t *len, size_t *ch)
{
    *len = n->l[i].out_len;
    *ch = n->l[i].out_ch;
}
size_t mm_net_in_dim(const mm_net *n) { return n->in_len * n->in_ch; }
size_t mm_net_out_dim(const mm_net *n) { return n->n ? n->l[n->n - 1].out_len * n->l[n->n - 1].out_ch : 0; }
size_t mm_net_n_params(const mm_net *n) { return n->n_params; }
float *mm_net_params(mm_net *n) { return n->params; }
const float *mm_net_params_const(const mm_net *n) { return n->params; }
float *mm_net_grads(mm_net *n) { return n->grads; }
size_t mm_net_n_buffers(const mm_net *n) { return n->n_buffers; }
float *mm_net_buffers(mm_net *n) { return n->buffers; }

size_t mm_net_n_tensors(const mm_net *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n; i++) k += n->l[i].w_n ? 2 : 0;
    return k;
}

mm_net_tensor mm_net_tensor_at(const mm_net *n, size_t t)
{
    mm_net_tensor r = {0};
    for (size_t i = 0; i < n->n; i++) {
        const layer *L = &n->l[i];
        if (!L->w_n) continue;
        if (t < 2) {
            int bn = L->s.kind == MM_NET_BATCHNORM;
            r.layer = i;
            r.name = t == 0 ? (bn ? "gamma" : "weight") : (bn ? "beta" : "bias");
            r.offset = L->p_off + (t ? L->w_n : 0);
            r.count = t ? L->b_n : L->w_n;
            r.is_kernel = !bn && t == 0;
            return r;
        }
        t -= 2;
    }
    return r;
}

/* Activation sizes per sample. */
static size_t act_size(const layer *L) { return L->out_len * L->out_ch; }
static size_t in_size(const layer *L) { return L->in_len * L->in_ch; }
static size_t col_size(const layer *L)
{
    return L->s.kind == MM_NET_CONV1D ? L->out_len * (size_t)L->s.kernel * L->in_ch : 0;
}

/* Activation and gradient arrays: 64-byte aligned (freed with free), so
 * threads working on neighbouring column ranges of one row, which start at
 * multiples of 16 floats, never write into a shared cache line. */
static void *ws_alloc(size_t n, size_t size, mm_err *err)
{
    if (size && n > (SIZE_MAX - 63) / size) {
        mm_err_set(err, MM_ENOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = (n * size + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) mm_err_set(err, MM_ENOMEM, "out of memory allocating %zu bytes", n * size);
    return p;
}

static int reserve(mm_net *n, size_t B, mm_err *err)
{
    if (B <= n->cap) return 0;
    free_workspace(n);
    size_t gmax = n->in_len * n->in_ch, cmax = 0;
    for (size_t i = 0; i < n->n; i++) {
        layer *L = &n->l[i];
        if (act_size(L) > gmax) gmax = act_size(L);
        if (col_size(L) > cmax) cmax = col_size(L);
        if (L->s.kind != MM_NET_FLATTEN && !(L->out = ws_alloc(B, act_size(L) * sizeof(float), err)))
            goto fail;
        if (L->s.kind == MM_NET_CONV1D && !(L->col = ws_alloc(B, col_size(L) * sizeof(float), err)))
            goto fail;
        if (L->s.kind == MM_NET_MAXPOOL1D && !(L->arg = ws_alloc(B, act_size(L) * sizeof(int32_t), err)))
            goto fail;
        if (L->s.kind == MM_NET_DROPOUT && !(L->mask = ws_alloc(B, in_size(L), err)))
            goto fail;
    }
    if (!(n->g0 = ws_alloc(B, gmax * sizeof(float), err)) || !(n->g1 = ws_alloc(B, gmax * sizeof(float), err)))
        goto fail;
    if (cmax && !(n->dcol = ws_alloc(B, cmax * sizeof(float), err))) goto fail;
    n->cap = B;
    return 0;
fail:
    free_workspace(n);
    return MM_ENOMEM;
}

/* Eval-mode forward of one layer from x into y (y has room for B * act_size);
 * col: conv workspace. Flatten and dropout copy. */
static void eval_layer(const mm_net *n, const layer *L, size_t B, const float *x, float *y, float *col,
                       int32_t *arg)
{
    const float *p = n->params + L->p_off;
    size_t R = B * L->in_len;
    switch (L->s.kind) {
    case MM_NET_DENSE:
        mm_nn_dense_forward_f(R, L->in_ch, L->out_ch, x, p, p + L->w_n, y);
        break;
    case MM_NET_CONV1D:
        mm_nn_conv1d_forward_f(B, L->in_len, L->in_ch, L->out_ch, (size_t)L->s.kernel, (size_t)L->s.stride,
                               L->pad_left, L->out_len, x, p, p + L->w_n, col, y);
        break;
    case MM_NET_BATCHNORM:
        mm_nn_bn_forward_eval_f(R, L->in_ch, x, p, p + L->w_n, n->buffers + L->buf_off,
                                n->buffers + L->buf_off + L->in_ch, MM_NET_BN_EPS, y);
        break;
    case MM_NET_MAXPOOL1D:
        mm_nn_maxpool_forward_f(B, L->in_len, L->in_ch, (size_t)L->s.kernel, (size_t)L->s.stride, L->pad_left,
                                L->out_len, x, y, arg);
        break;
    case MM_NET_ACT:
        mm_nn_act_forward_f(L->s.act, B * in_size(L), x, y);
        break;
    default:   /* dropout (eval), flatten */
        memcpy(y, x, B * in_size(L) * sizeof(float));
        break;
    }
}

/* Layer i is a batch norm right after a ReLU (so its input is the ReLU's
 * output): mm_net_backward fuses the two backward passes. */
static int relu_before(const mm_net *n, size_t i)
{
    return i > 0 && i < n->n && n->l[i].s.kind == MM_NET_BATCHNORM && n->l[i - 1].s.kind == MM_NET_ACT &&
           n->l[i - 1].s.act == MM_NN_ACT_RELU;
}

/* Layer i is a conv whose output gradient bn_pool_backward makes (Conv -> ReLU
 * -> BN -> MaxPool): that kernel also sums it into the conv's bias gradient. */
static int bias_from_bn_pool(const mm_net *n, size_t i)
{
    return n->l[i].s.kind == MM_NET_CONV1D && i + 3 < n->n && relu_before(n, i + 2) &&
           n->l[i + 3].s.kind == MM_NET_MAXPOOL1D;
}

/* bias_from_bn_pool with a narrow conv (k cin <= 16: one-channel input): in
 * training its output is never stored, the BN's and the pool's kernels compute
 * it where they read it (mm_nn_conv_rows). */
static int conv_rows_chain(const mm_net *n, size_t i)
{
    const layer *L = &n->l[i];
    return bias_from_bn_pool(n, i) && mm_nn_conv_rows_fit_f((size_t)L->s.kernel * L->in_ch, L->out_ch);
}

/* The mm_nn_conv_rows of conv layer i. */
static mm_nn_conv_rows conv_rows_of(const mm_net *n, size_t i)
{
    const layer *L = &n->l[i];
    const float *p = n->params + L->p_off;
    return (mm_nn_conv_rows){L->in_len, L->in_ch, (size_t)L->s.kernel, (size_t)L->s.stride, L->pad_left,
                             i ? n->l[i - 1].out : n->X, p, p + L->w_n};
}

/* Dropout masks, one nn/par item per sample (each its own stream, so the
 * masks never depend on the thread count). */
typedef struct mask_job {
    uint64_t seed, step;
    size_t layer, per;
    double rate;
    uint8_t *mask;
} mask_job;

static void mask_item(void *ctx, size_t b)
{
    const mask_job *j = ctx;
    mm_rng r;
    mm_rng_seed(&r, j->seed, j->step, ((uint64_t)j->layer << 32) | b);
    mm_nn_dropout_mask(j->per, j->rate, &r, j->mask + b * j->per);
}

/* The masks of dropout layer D (index i) for this step. */
static void draw_masks(layer *D, size_t i, size_t B, uint64_t drop_seed, uint64_t step)
{
    size_t per = in_size(D);
    mask_job mj = {drop_seed, step, i, per, D->s.rate, D->mask};
    mm_par_for_n(B, mask_item, &mj, mm_par_helpers_for((double)B * per));
}

int mm_net_forward(mm_net *n, const float *X, size_t B, int training, uint64_t drop_seed, uint64_t step,
                   const float **logits, mm_err *err)
{
    int rc = reserve(n, B, err);
    if (rc) return rc;
    n->B = B;
    n->X = X;
    const float *x = X;
    for (size_t i = 0; i < n->n; i++) {
        layer *L = &n->l[i], *next = i + 1 < n->n ? &n->l[i + 1] : NULL;   /* fused layers end at L */
        layer *after = i + 2 < n->n ? &n->l[i + 2] : NULL;
        float *p = n->params + L->p_off;
        size_t R = B * L->in_len;
        if (L->s.kind == MM_NET_FLATTEN) {
            L->out = (float *)x;   /* alias: flatten is a no-op channels-last */
        } else if (training && L->s.kind == MM_NET_BATCHNORM && next && next->s.kind == MM_NET_MAXPOOL1D) {
            /* BN -> MaxPool (-> Dropout): the pool reads the normalised values as they
             * are made and the dropout applies to its rows (the backward needs only
             * arg, the mask and the BN's input, so nothing between them is kept) */
            layer *P = next, *D = after && after->s.kind == MM_NET_DROPOUT ? after : NULL;
            if (D) draw_masks(D, i + 2, B, drop_seed, step);
            mm_nn_bn_maxpool_forward_train_f(B, L->in_len, L->in_ch, (size_t)P->s.kernel, (size_t)P->s.stride,
                                             P->pad_left, P->out_len, x, p, p + L->w_n, MM_NET_BN_EPS,
                                             MM_NET_BN_MOMENTUM, L->mean, L->invstd, n->buffers + L->buf_off,
                                             n->buffers + L->buf_off + L->in_ch, D ? D->mask : NULL,
                                             D ? D->s.rate : 0, D ? D->out : P->out, P->arg);
            L = D ? D : P;
        } else if (training && L->s.kind == MM_NET_BATCHNORM) {
            mm_nn_bn_forward_train_f(R, L->in_ch, x, p, p + L->w_n, MM_NET_BN_EPS, MM_NET_BN_MOMENTUM, L->out,
                                     L->mean, L->invstd, n->buffers + L->buf_off,
                                     n->buffers + L->buf_off + L->in_ch);
        } else if (training && conv_rows_chain(n, i)) {
            /* Conv -> ReLU -> BN -> MaxPool (-> Dropout) over a narrow conv: only the
             * im2col rows its backward needs are stored, not its output */
            layer *N = &n->l[i + 2], *P = &n->l[i + 3];
            layer *D = i + 4 < n->n && n->l[i + 4].s.kind == MM_NET_DROPOUT ? &n->l[i + 4] : NULL;
            mm_nn_conv1d_im2col_f(B, L->in_len, L->in_ch, (size_t)L->s.kernel, (size_t)L->s.stride, L->pad_left,
                                  L->out_len, x, L->col);
            if (D) draw_masks(D, i + 4, B, drop_seed, step);
            mm_nn_conv_rows cv = conv_rows_of(n, i);
            const float *pn = n->params + N->p_off;
            mm_nn_conv_bn_maxpool_forward_train_f(&cv, B, N->in_len, N->in_ch, (size_t)P->s.kernel,
                                                  (size_t)P->s.stride, P->pad_left, P->out_len, pn, pn + N->w_n,
                                                  MM_NET_BN_EPS, MM_NET_BN_MOMENTUM, N->mean, N->invstd,
                                                  n->buffers + N->buf_off, n->buffers + N->buf_off + N->in_ch,
                                                  D ? D->mask : NULL, D ? D->s.rate : 0, D ? D->out : P->out,
                                                  P->arg);
            L = D ? D : P;
        } else if (training && L->s.kind == MM_NET_CONV1D && next && next->s.kind == MM_NET_ACT &&
                   next->s.act == MM_NN_ACT_RELU && after && after->s.kind == MM_NET_BATCHNORM) {
            /* Conv -> ReLU -> BN (relu_before(n, i + 2)): the conv writes the ReLU's output
             * (its own output, the ReLU's input, is never read: the ReLU's backward is
             * the BN's) */
            layer *A = next;
            mm_nn_conv1d_relu_forward_f(B, L->in_len, L->in_ch, L->out_ch, (size_t)L->s.kernel,
                                        (size_t)L->s.stride, L->pad_left, L->out_len, x, p, p + L->w_n, L->col,
                                        A->out);
            L = A;
        } else if (training && L->s.kind == MM_NET_DROPOUT) {
            draw_masks(L, i, B, drop_seed, step);
            mm_nn_dropout_forward_f(B * in_size(L), L->s.rate, L->mask, x, L->out);
        } else {
            eval_layer(n, L, B, x, L->out, L->col, L->arg);
        }
        x = L->out;
        i = (size_t)(L - n->l);
    }
    *logits = x;
    return 0;
}

/* Layer i ends a BN -> MaxPool (-> Dropout) chain: its backward, with the BN's
 * and the pool's (and a ReLU's before the BN, see relu_before), in one kernel
 * from dy into dx. Returns the number of layers done (0: not such a chain). */
static size_t bn_pool_backward(mm_net *n, size_t i, const float *dy, float *dx)
{
    const uint8_t *mask = NULL;
    double rate = 0;
    if (n->l[i].s.kind == MM_NET_DROPOUT && i >= 2) {
        mask = n->l[i].mask;
        rate = n->l[i].s.rate;
        i--;
    }
    const layer *P = &n->l[i], *N = i ? &n->l[i - 1] : NULL;
    if (P->s.kind != MM_NET_MAXPOOL1D || !N || N->s.kind != MM_NET_BATCHNORM) return 0;
    const float *x = i >= 2 ? n->l[i - 2].out : n->X, *p = n->params + N->p_off;
    float *g = n->grads + N->p_off, *db = NULL;
    if (i >= 3 && bias_from_bn_pool(n, i - 3)) db = n->grads + n->l[i - 3].p_off + n->l[i - 3].w_n;
    if (i >= 3 && conv_rows_chain(n, i - 3)) {   /* x was never stored: the conv gives it */
        const layer *Cv = &n->l[i - 3];
        mm_nn_conv_rows cv = conv_rows_of(n, i - 3);
        /* the first layer: its dW made here too, and no gradient stored for it (its input's
         * is never needed); else, or without memory for that, dx for the conv's backward */
        if (i == 3 && !mm_nn_conv_bn_maxpool_backward_f(&cv, n->B, P->in_len, P->in_ch, (size_t)P->s.kernel,
                                                        (size_t)P->s.stride, P->pad_left, P->out_len, P->arg, mask,
                                                        rate, p, N->mean, N->invstd, dy, g, g + N->w_n, NULL, db,
                                                        Cv->col, n->grads + Cv->p_off))
            return mask ? 5 : 4;   /* the conv and its ReLU too */
        mm_nn_conv_bn_maxpool_backward_f(&cv, n->B, P->in_len, P->in_ch, (size_t)P->s.kernel, (size_t)P->s.stride,
                                         P->pad_left, P->out_len, P->arg, mask, rate, p, N->mean, N->invstd, dy, g,
                                         g + N->w_n, dx, db, NULL, NULL);
        return mask ? 3 : 2;
    }
    mm_nn_bn_maxpool_backward_f(n->B, P->in_len, P->in_ch, (size_t)P->s.kernel, (size_t)P->s.stride, P->pad_left,
                                P->out_len, P->arg, mask, rate, relu_before(n, i - 1), x, p, N->mean, N->invstd,
                                dy, g, g + N->w_n, dx, db);
    return mask ? 3 : 2;
}

void mm_net_backward(mm_net *n, const float *dlogits)
{
    size_t B = n->B;
    const float *dy = dlogits;
    for (size_t i = n->n; i-- > 0;) {
        layer *L = &n->l[i];
        const float *x = i ? n->l[i - 1].out : n->X;
        float *p = n->params + L->p_off, *g = n->grads + L->p_off;
        float *dx = dy == n->g0 ? n->g1 : n->g0;
        size_t R = B * L->in_len, done = bn_pool_backward(n, i, dy, dx);
        if (done) {   /* layers i - done + 1 .. i */
            i -= done - 1;
            dy = dx;
            continue;
        }
        switch (L->s.kind) {
        case MM_NET_DENSE:
            mm_nn_dense_backward_f(R, L->in_ch, L->out_ch, x, p, dy, g, g + L->w_n, i ? dx : NULL);
            break;
        case MM_NET_CONV1D:
            mm_nn_conv1d_backward_f(B, L->in_len, L->in_ch, L->out_ch, (size_t)L->s.kernel, (size_t)L->s.stride,
                                    L->pad_left, L->out_len, L->col, p, dy, g,
                                    bias_from_bn_pool(n, i) ? NULL : g + L->w_n, n->dcol, i ? dx : NULL);
            break;
        case MM_NET_BATCHNORM:
            if (relu_before(n, i))   /* ReLU -> BN: one pass gives the gradient at the ReLU's input */
                mm_nn_bn_relu_backward_f(R, L->in_ch, x, p, L->mean, L->invstd, dy, g, g + L->w_n, dx);
            else
                mm_nn_bn_backward_f(R, L->in_ch, x, p, L->mean, L->invstd, dy, g, g + L->w_n, dx);
            break;
        case MM_NET_MAXPOOL1D:
            mm_nn_maxpool_backward_f(B, L->in_len, L->in_ch, L->out_len, L->arg, dy, dx);
            break;
        case MM_NET_ACT:
            if (i + 1 < n->n && relu_before(n, i + 1)) continue;   /* done by the batch norm's backward */
            mm_nn_act_backward_f(L->s.act, B * in_size(L), x, L->out, dy, dx);
            break;
        case MM_NET_DROPOUT:
            mm_nn_dropout_backward_f(B * in_size(L), L->s.rate, L->mask, dy, dx);
            break;
        default:   /* flatten: the gradient passes through unchanged */
            continue;
        }
        dy = dx;
    }
}

int mm_net_infer(const mm_net *n, const float *X, size_t rows, float *logits, mm_err *err)
{
    if (!n->built) return mm_err_set(err, MM_EINVAL, "network: not built");
    size_t gmax = n->in_len * n->in_ch, cmax = 0, amax = 0;
    for (size_t i = 0; i < n->n; i++) {
        const layer *L = &n->l[i];
        if (act_size(L) > gmax) gmax = act_size(L);
        if (col_size(L) > cmax) cmax = col_size(L);
        if (L->s.kind == MM_NET_MAXPOOL1D && act_size(L) > amax) amax = act_size(L);
    }
    size_t chunk = rows < INFER_CHUNK ? rows : INFER_CHUNK;
    if (!chunk) return 0;
    float *a = ws_alloc(chunk, gmax * sizeof(float), err);
    float *b = a ? ws_alloc(chunk, gmax * sizeof(float), err) : NULL;
    float *col = b && cmax ? ws_alloc(chunk, cmax * sizeof(float), err) : NULL;
    int32_t *arg = b && amax ? ws_alloc(chunk, amax * sizeof(int32_t), err) : NULL;
    int rc = 0;
    if (!b || (cmax && !col) || (amax && !arg)) { rc = MM_ENOMEM; goto done; }
    size_t od = mm_net_out_dim(n);
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t B = rows - r0 < chunk ? rows - r0 : chunk;
        const float *x = X + r0 * mm_net_in_dim(n);
        float *cur = a;
        for (size_t i = 0; i < n->n; i++) {
            const layer *L = &n->l[i];
            if (L->s.kind == MM_NET_FLATTEN || L->s.kind == MM_NET_DROPOUT) continue;   /* identities */
            float *y = i + 1 == n->n ? logits + r0 * od : cur;
            eval_layer(n, L, B, x, y, col, arg);
            x = y;
            cur = cur == a ? b : a;
        }
        if (x != logits + r0 * od) memcpy(logits + r0 * od, x, B * od * sizeof(float));
    }
done:
    free(a); free(b); free(col); free(arg);
    return rc;
}

/* Save format: attributes in_len, in_ch; "layers" int32 (n, 6): kind, units,
 * kernel, stride, padding, act; "rates" float32 (n); "params" float32;
 * "buffers" float32 (absent when empty). */
int mm_net_save(const mm_net *n, hid_t g, mm_err *err)
{
    if (!n->built) return mm_err_set(err, MM_EINVAL, "network: not built");
    int32_t spec[MAX_LAYERS * 6];
    float rates[MAX_LAYERS];
    for (size_t i = 0; i < n->n; i++) {
        const mm_net_spec *s = &n->l[i].s;
        int32_t *r = spec + 6 * i;
        r[0] = s->kind; r[1] = s->units; r[2] = s->kernel; r[3] = s->stride; r[4] = s->padding; r[5] = s->act;
        rates[i] = s->rate;
    }
    hsize_t d2[2] = {n->n, 6}, d1 = n->n, dp = n->n_params, db = n->n_buffers;
    int rc = mm_h5_attr_set_i64(g, "in_len", (int64_t)n->in_len, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "in_ch", (int64_t)n->in_ch, err);
    if (!rc) rc = mm_h5_write_i32(g, "layers", spec, 2, d2, err);
    if (!rc) rc = mm_h5_write_f32(g, "rates", rates, 1, &d1, err);
    if (!rc) rc = mm_h5_write_f32(g, "params", n->params, 1, &dp, err);
    if (!rc && n->n_buffers) rc = mm_h5_write_f32(g, "buffers", n->buffers, 1, &db, err);
    return rc;
}

/* Number of elements of dataset `name`, or -1 when absent / not a dataset;
 * lets sizes be checked against the architecture before any allocation. */
static long long dset_points(hid_t g, const char *name)
{
    if (!mm_h5_exists(g, name)) return -1;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return (long long)n;
}

int mm_net_load(hid_t g, mm_net **out, mm_err *err)
{
    int64_t in_len = 0, in_ch = 0;
    int32_t *spec = NULL;
    float *rates = NULL, *params = NULL, *bufs = NULL;
    mm_net *n = NULL;
    int rank, rc;
    hsize_t d[4];
    if ((rc = mm_h5_attr_get_i64(g, "in_len", &in_len, err)) || (rc = mm_h5_attr_get_i64(g, "in_ch", &in_ch, err)))
        return rc;
    if (in_len < 1 || in_ch < 1 || in_len > (1 << 24) || in_ch > (1 << 24))
        return mm_err_set(err, MM_EFORMAT, "network: implausible input shape (%lld, %lld)", (long long)in_len,
                          (long long)in_ch);
    long long pts = dset_points(g, "layers");
    if (pts > MAX_LAYERS * 6)
        return mm_err_set(err, MM_EFORMAT, "network: dataset 'layers' holds %lld values, more than %d layers",
                          pts, MAX_LAYERS);
    if ((rc = mm_h5_read_i32(g, "layers", 2, &spec, &rank, d, err))) goto done;
    if (d[1] != 6 || d[0] < 1 || d[0] > MAX_LAYERS) {
        rc = mm_err_set(err, MM_EFORMAT, "network: dataset 'layers' has shape (%llu, %llu), expected (1..%d, 6)",
                        (unsigned long long)d[0], (unsigned long long)d[1], MAX_LAYERS);
        goto done;
    }
    size_t nl = (size_t)d[0];
    if ((pts = dset_points(g, "rates")) >= 0 && (size_t)pts != nl) {
        rc = mm_err_set(err, MM_EFORMAT, "network: 'rates' has %lld values for %zu layers", pts, nl);
        goto done;
    }
    if ((rc = mm_h5_read_f32(g, "rates", 1, &rates, &rank, d, err))) goto done;
    if (d[0] != nl) { rc = mm_err_set(err, MM_EFORMAT, "network: 'rates' has %llu values for %zu layers", (unsigned long long)d[0], nl); goto done; }
    if ((rc = mm_net_create((size_t)in_len, (size_t)in_ch, &n, err))) goto done;
    for (size_t i = 0; i < nl; i++) {
        const int32_t *r = spec + 6 * i;
        mm_net_spec s = {.kind = (mm_net_kind)r[0], .units = r[1], .kernel = r[2], .stride = r[3],
                         .padding = (mm_nn_padding)r[4], .act = (mm_nn_act)r[5], .rate = rates[i]};
        if ((rc = mm_net_add(n, &s, err))) { rc = MM_EFORMAT; mm_err_prefix(err, "network file"); goto done; }
    }
    /* stored sizes against the architecture before allocating anything for it */
    if ((pts = dset_points(g, "params")) < 0 || (size_t)pts != n->n_params) {
        rc = mm_err_set(err, MM_EFORMAT, "network: 'params' holds %lld values, the architecture needs %zu", pts,
                        n->n_params);
        goto done;
    }
    if (n->n_buffers && ((pts = dset_points(g, "buffers")) < 0 || (size_t)pts != n->n_buffers)) {
        rc = mm_err_set(err, MM_EFORMAT, "network: 'buffers' holds %lld values, the architecture needs %zu", pts,
                        n->n_buffers);
        goto done;
    }
    if ((rc = mm_net_build(n, err))) { rc = MM_EFORMAT; goto done; }
    if ((rc = mm_h5_read_f32(g, "params", 1, &params, &rank, d, err))) goto done;
    if (d[0] != n->n_params) {
        rc = mm_err_set(err, MM_EFORMAT, "network: 'params' holds %llu values, the architecture needs %zu",
                        (unsigned long long)d[0], n->n_params);
        goto done;
    }
    memcpy(n->params, params, n->n_params * sizeof(float));
    if (n->n_buffers) {
        if ((rc = mm_h5_read_f32(g, "buffers", 1, &bufs, &rank, d, err))) goto done;
        if (d[0] != n->n_buffers) {
            rc = mm_err_set(err, MM_EFORMAT, "network: 'buffers' holds %llu values, the architecture needs %zu",
                            (unsigned long long)d[0], n->n_buffers);
            goto done;
        }
        memcpy(n->buffers, bufs, n->n_buffers * sizeof(float));
    }
    for (size_t i = 0; i < n->n_params; i++)
        if (!isfinite(n->params[i])) { rc = mm_err_set(err, MM_EFORMAT, "network: parameter %zu is not finite", i); goto done; }
    for (size_t i = 0; i < n->n_buffers; i++)
        if (!isfinite(n->buffers[i])) { rc = mm_err_set(err, MM_EFORMAT, "network: buffer %zu is not finite", i); goto done; }
    *out = n;
    n = NULL;
done:
    free(spec); free(rates); free(params); free(bufs);
    mm_net_free(n);
    return rc;
}
