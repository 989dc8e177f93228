/* cnn1d.c — the `cnn1d` learner: the paper's Table I 1-D CNN over a feature
 * vector seen as a one-channel sequence (Keras input shape (d, 1)).
 *
 * Architecture as printed (all convolutions 'same' + ReLU; pools TF 'same'):
 *   5 blocks Conv1D(filters[i], kernel_sizes[i]) → ReLU → BatchNorm →
 *   MaxPool1D(pool_sizes[i], stride 2) [→ Dropout after blocks 2, 4, 5];
 *   Flatten → Dense(dense_units) → ReLU → BatchNorm → Dense(n_classes) → softmax.
 * Defaults filters 512,512,256,256,128, kernels 5,5,5,3,3, pools 5,5,5,5,3,
 * dense 512, dropout 0.2; Keras-like training (Glorot init, Adam 1e-3, batch
 * 32, 30 epochs, early stopping on val_loss with patience 10, best restored).
 * Batch norm uses PyTorch's momentum 0.1 / eps 1e-5, not Keras' 0.99 / 1e-3.
 */
#include "learn/learner.h"

#include <stdlib.h>
#include <string.h>
#include "nn/net.h"
#include "nn/train.h"

#define N_BLOCKS 5

typedef struct cnn1d {
    mm_net_model base;    /* training parameters, the fitted network, its history */
    long filters[N_BLOCKS], kernels[N_BLOCKS], pools[N_BLOCKS];
    long dense_units;
    double dropout;
} cnn1d;

static const mm_train_keys keys = {"epochs", "learning_rate", "patience"};

static void cnn_free(void *st)
{
    cnn1d *m = st;
    if (!m) return;
    mm_net_model_release(&m->base);
    free(m);
}

static int cnn_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    static const char *const own[] = {"filters", "kernel_sizes", "pool_sizes", "dense_units", "dropout",
                                      "epochs", "learning_rate", "patience", NULL};
    const char *allowed[64];
    size_t k = 0;
    for (size_t i = 0; own[i]; i++) allowed[k++] = own[i];
    for (size_t i = 0; mm_train_cfg_keys[i]; i++) allowed[k++] = mm_train_cfg_keys[i];
    allowed[k] = NULL;
    int rc = mm_cfg_check_keys(params, "cnn1d", allowed, err);
    if (rc) return rc;
    cnn1d *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    m->base.log.best = -1;
    m->base.tp = mm_train_params_default();
    m->base.tp.epochs = 30;
    m->base.tp.batch_size = 32;
    m->base.tp.early_stopping = 1;
    m->base.tp.monitor = MM_MONITOR_VAL_LOSS;
    m->base.tp.tol = 0;
    m->base.tp.seed = seed;
    m->base.tp.n_threads = n_threads;
    static const long df[] = {512, 512, 256, 256, 128}, dk[] = {5, 5, 5, 3, 3}, dp[] = {5, 5, 5, 5, 3};
    size_t n;
    if ((rc = mm_train_params_from_cfg(params, &keys, &m->base.tp, err))) goto fail;
    const char *lists[3] = {"filters", "kernel_sizes", "pool_sizes"};
    const long *defs[3] = {df, dk, dp};
    long *outs[3] = {m->filters, m->kernels, m->pools};
    for (int i = 0; i < 3; i++) {
        if ((rc = mm_train_cfg_int_list(params, lists[i], defs[i], N_BLOCKS, 1, i ? 64 : 1 << 14, outs[i], N_BLOCKS,
                                        &n, err)))
            goto fail;
        if (n != N_BLOCKS) {
            char w[600];
            rc = mm_err_set(err, MM_EINVAL, "%s: key '%s': expected %d values (one per block), got %zu",
                            mm_cfg_where(mm_cfg_child(params, lists[i]), w, sizeof w), lists[i], N_BLOCKS, n);
            goto fail;
        }
    }
    if ((rc = mm_cfg_get_int(params, "dense_units", 512, 1, 1 << 16, &m->dense_units, err)) ||
        (rc = mm_cfg_get_double(params, "dropout", 0.2, 0, 0.95, &m->dropout, err)))
        goto fail;
    *state = m;
    return 0;
fail:
    cnn_free(m);
    return rc;
}

static int add(mm_net *net, mm_net_spec s, mm_err *err) { return mm_net_add(net, &s, err); }

static int cnn_fit(void *st, const mm_fit_data *data, mm_err *err)
{
    cnn1d *m = st;
    mm_net *net = NULL;
    int rc = mm_net_create(data->d, 1, &net, err);
    for (int i = 0; !rc && i < N_BLOCKS; i++) {
        rc = add(net, (mm_net_spec){.kind = MM_NET_CONV1D, .units = (int)m->filters[i], .kernel = (int)m->kernels[i],
                                    .stride = 1, .padding = MM_NN_PAD_SAME}, err);
        if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_RELU}, err);
        if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_BATCHNORM}, err);
        if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_MAXPOOL1D, .kernel = (int)m->pools[i], .stride = 2,
                                             .padding = MM_NN_PAD_SAME}, err);
        if (!rc && (i == 1 || i == 3 || i == 4) && m->dropout > 0)
            rc = add(net, (mm_net_spec){.kind = MM_NET_DROPOUT, .rate = (float)m->dropout}, err);
    }
    if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_FLATTEN}, err);
    if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = (int)m->dense_units}, err);
    if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_ACT, .act = MM_NN_ACT_RELU}, err);
    if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_BATCHNORM}, err);
    if (!rc) rc = add(net, (mm_net_spec){.kind = MM_NET_DENSE, .units = data->n_classes}, err);
    if (!rc) rc = mm_net_build(net, err);
    if (rc) { mm_net_free(net); return mm_err_prefix(err, "cnn1d"); }
    return mm_net_model_fit(&m->base, net, MM_NET_INIT_GLOROT, data, "cnn1d", err);
}

static int cnn_predict_proba(const void *st, const float *X, size_t n, float *proba, mm_err *err)
{
    return mm_net_model_predict_proba(&((const cnn1d *)st)->base, "cnn1d", X, n, proba, err);
}

static int cnn_save(const void *st, hid_t g, mm_err *err)
{
    return mm_net_model_save(&((const cnn1d *)st)->base, "cnn1d", g, err);
}

static int cnn_load(hid_t g, int n_threads, void **state, mm_err *err)
{
    cnn1d *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    int rc = mm_net_model_load(&m->base, "cnn1d", g, n_threads, err);
    if (rc) { free(m); return rc; }
    *state = m;
    return 0;
}

static void cnn_shape(const void *st, int *k, size_t *d)
{
    const mm_net *net = ((const cnn1d *)st)->base.net;
    size_t out = net ? mm_net_out_dim(net) : 0;
    *k = out > 1000000 ? -1 : (int)out;   /* no class count: refused by the caller */
    *d = net ? mm_net_in_dim(net) : 0;
}

static const mm_history *cnn_history(const void *st)
{
    return mm_net_model_history(&((const cnn1d *)st)->base);
}

static int cnn1d_uses_validation(const void *st)
{
    return ((const cnn1d *)st)->base.tp.early_stopping;   /* without it the part is not looked at */
}

const mm_learner_vt mm_learner_cnn1d = {
    .name = "cnn1d",
    .summary = "the paper's Table I 1-D CNN (5 conv blocks, dense 512) over the feature vector, Adam",
    .wants_validation = 1,
    .uses_validation = cnn1d_uses_validation,
    .create = cnn_create,
    .fit = cnn_fit,
    .predict_proba = cnn_predict_proba,
    .save = cnn_save,
    .load = cnn_load,
    .shape = cnn_shape,
    .history = cnn_history,
    .free = cnn_free,
};
