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

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "learn/netparams.h"
#include "nn/net.h"
#include "nn/train.h"

#define N_BLOCKS 5

typedef struct cnn1d {
    mm_net_model base;    /* training parameters, the fitted network, its history */
    long filters[N_BLOCKS], kernels[N_BLOCKS], pools[N_BLOCKS];
    long dense_units;
    double dropout;
} cnn1d;

static const char *const MONITORS[] = {"val_loss", "val_accuracy", NULL};

/* A list of exactly N_BLOCKS integers in [1, max] (def when missing). */
static int block_list(const mm_cfg *map, const char *key, const long *def, long max, long *out, mm_err *err)
{
    size_t n;
    int rc = mm_train_cfg_int_list(map, key, def, N_BLOCKS, 1, max, out, N_BLOCKS, &n, err);
    if (!rc && n != N_BLOCKS) {
        char w[600];
        rc = mm_err_set(err, MM_EINVAL, "%s: key '%s': expected %d values (one per block), got %zu",
                        mm_cfg_where(mm_cfg_child(map, key), w, sizeof w), key, N_BLOCKS, n);
    }
    return rc;
}

static int parse_filters(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    static const long def[N_BLOCKS] = {512, 512, 256, 256, 128};
    return block_list(map, row->name, def, 1 << 14, field, err);
}

static int parse_kernels(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    static const long def[N_BLOCKS] = {5, 5, 5, 3, 3};
    return block_list(map, row->name, def, 64, field, err);
}

static int parse_pools(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    static const long def[N_BLOCKS] = {5, 5, 5, 5, 3};
    return block_list(map, row->name, def, 64, field, err);
}

#define C(f) offsetof(cnn1d, f)
static const mm_param CNN_ROWS[] = {
    {"epochs", MM_PARAM_SIZE, C(base.tp.epochs), 1, 1000000, .def = 30, .help = "maximum epochs"},
    {"learning_rate", MM_PARAM_DOUBLE, C(base.tp.adam.lr), 1e-12, 10, .def = 1e-3, .help = "Adam's learning rate"},
    {"patience", MM_PARAM_SIZE, C(base.tp.patience), 0, 1000000, .def = 10, .help = "epochs without improvement tolerated"},
    {"batch_size", MM_PARAM_CUSTOM, C(base.tp.batch_size), .parse = mm_net_parse_batch_size, .def = 32,
     .type_text = "int", .range_text = "'auto' (min(200, n)) or an integer in [1, 16777216]", .help = "rows per step"},
    {"early_stopping", MM_PARAM_BOOL, C(base.tp.early_stopping), .def = 1,
     .help = "stop on the validation part and restore the best epoch"},
    {"monitor", MM_PARAM_CHOICE, C(base.tp.monitor), .def = MM_MONITOR_VAL_LOSS,
     .choices = MONITORS, .help = "what early stopping watches"},
    {"tol", MM_PARAM_DOUBLE, C(base.tp.tol), 0, 1e9, .def = 0, .help = "minimum improvement that resets the patience"},
    {"filters", MM_PARAM_CUSTOM, C(filters), .parse = parse_filters, .def_text = "[512, 512, 256, 256, 128]",
     .type_text = "list", .range_text = "5 integers in [1, 16384]", .help = "channels of the 5 convolutions"},
    {"kernel_sizes", MM_PARAM_CUSTOM, C(kernels), .parse = parse_kernels, .def_text = "[5, 5, 5, 3, 3]",
     .type_text = "list", .range_text = "5 integers in [1, 64]", .help = "kernel width of the 5 convolutions"},
    {"pool_sizes", MM_PARAM_CUSTOM, C(pools), .parse = parse_pools, .def_text = "[5, 5, 5, 5, 3]", .type_text = "list",
     .range_text = "5 integers in [1, 64]", .help = "max-pool width after each block (stride 2)"},
    {"dense_units", MM_PARAM_LONG, C(dense_units), 1, 1 << 16, .def = 512, .help = "units of the dense layer"},
    {"dropout", MM_PARAM_DOUBLE, C(dropout), 0, 0.95, .def = 0.2, .help = "dropout after blocks 2, 4 and 5"},
    {NULL, MM_PARAM_INCLUDE, C(base.tp), .sub = mm_net_train_rows},
    {NULL},
};
#undef C

static const mm_param_table CNN_PARAMS = {"cnn1d", "cnn1d", CNN_ROWS};

static void cnn_free(void *st)
{
    cnn1d *m = st;
    if (!m) return;
    mm_net_model_release(&m->base);
    free(m);
}

static int cnn_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    cnn1d *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    m->base.log.best = -1;
    m->base.tp = mm_train_params_default();
    mm_params_defaults(&CNN_PARAMS, m);   /* Keras-like: batch 32, early stopping on val_loss, tol 0 */
    m->base.tp.seed = seed;
    m->base.tp.n_threads = n_threads;
    int rc = mm_params_parse(&CNN_PARAMS, params, m, err);
    if (!rc) rc = mm_net_train_check(&m->base.tp, params, err);
    if (rc) { cnn_free(m); return rc; }
    *state = m;
    return 0;
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
    .params = &CNN_PARAMS,
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
