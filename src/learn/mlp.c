/* mlp.c — the `mlp` learner: a multi-layer perceptron trained with Adam.
 *
 * Reference: scikit-learn's MLPClassifier (hidden_layer_sizes, activation,
 * alpha as the L2 penalty alpha/(2B)·||W||² per batch, batch_size 'auto' =
 * min(200, n), learning_rate_init, max_iter epochs, n_iter_no_change, tol,
 * Glorot-uniform weights and biases, early_stopping false by default: with
 * it, the runner supplies a validation split and the best epoch is restored
 * as scikit-learn does). Differences, by choice: optional dropout and batch
 * norm (Dense → BatchNorm → activation → Dropout), Adam's eps inside the
 * bias-corrected denominator (PyTorch's form). Leaves out sgd/lbfgs solvers.
 */
#include "learn/learner.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "learn/netparams.h"
#include "nn/net.h"
#include "nn/train.h"

#define MAX_HIDDEN 16

typedef struct mlp {
    mm_net_model base;    /* training parameters, the fitted network, its history */
    long hidden[MAX_HIDDEN];
    size_t n_hidden;
    int act;              /* mm_nn_act */
    double dropout;
    int batch_norm;
    int init;             /* mm_net_init_scheme */
} mlp;

static const char *const acts[] = {"identity", "relu", "tanh", "gelu", "hardswish", NULL};
static const char *const inits[] = {"glorot", "sklearn", "torch", NULL};

static int parse_hidden(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    mlp *m = (mlp *)((char *)field - offsetof(mlp, hidden));
    static const long def[] = {100};
    return mm_train_cfg_int_list(map, "hidden_layer_sizes", def, 1, 1, 1 << 16, m->hidden, MAX_HIDDEN, &m->n_hidden,
                                 err);
}

#define M(f) offsetof(mlp, f)
static const mm_param MLP_ROWS[] = {
    {"hidden_layer_sizes", MM_PARAM_CUSTOM, M(hidden), .parse = parse_hidden, .def_text = "[100]", .type_text = "list",
     .range_text = "1 to 16 integers in [1, 65536]", .help = "units of each hidden layer"},
    {"activation", MM_PARAM_CHOICE, M(act), .def = MM_NN_ACT_RELU, .choices = acts, .help = "hidden activation"},
    {"dropout", MM_PARAM_DOUBLE, M(dropout), 0, 0.95, .def = 0, .help = "dropout after each hidden layer"},
    {"batch_norm", MM_PARAM_BOOL, M(batch_norm), .def = 0, .help = "batch norm after each hidden dense layer"},
    {"init", MM_PARAM_CHOICE, M(init), .def = MM_NET_INIT_SKLEARN, .choices = inits,
     .help = "initial weights: glorot (Keras), sklearn (MLPClassifier), torch (nn.Linear)"},
    {"max_iter", MM_PARAM_SIZE, M(base.tp.epochs), 1, 1000000, .def = 200, .help = "epochs"},
    {"learning_rate_init", MM_PARAM_DOUBLE, M(base.tp.adam.lr), 1e-12, 10, .def = 1e-3, .help = "Adam's learning rate"},
    {"n_iter_no_change", MM_PARAM_SIZE, M(base.tp.patience), 0, 1000000, .def = 10,
     .help = "epochs without improvement tolerated"},
    {"alpha", MM_PARAM_DOUBLE, M(base.tp.alpha), 0, 1e6, .def = 1e-4,
     .help = "scikit-learn's L2 penalty alpha/(2B) sum W^2 over kernels"},
    {NULL, MM_PARAM_INCLUDE, M(base.tp), .sub = mm_net_train_rows},
    {NULL},
};
#undef M

static const mm_param_table MLP_PARAMS = {"mlp", "mlp", MLP_ROWS};

static void mlp_free(void *st)
{
    mlp *m = st;
    if (!m) return;
    mm_net_model_release(&m->base);
    free(m);
}

static int mlp_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    mlp *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    m->base.log.best = -1;
    m->base.tp = mm_train_params_default();
    mm_params_defaults(&MLP_PARAMS, m);   /* early_stopping off: MLPClassifier's default */
    m->base.tp.seed = seed;
    m->base.tp.n_threads = n_threads;
    int rc = mm_params_parse(&MLP_PARAMS, params, m, err);
    if (!rc) rc = mm_net_train_check(&m->base.tp, params, err);
    if (rc) { mlp_free(m); return rc; }
    *state = m;
    return 0;
}

static int mlp_fit(void *st, const mm_fit_data *data, mm_err *err)
{
    mlp *m = st;
    mm_net *net = NULL;
    int rc = mm_net_create(1, data->d, &net, err);
    for (size_t i = 0; !rc && i < m->n_hidden; i++) {
        rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_DENSE, .units = (int)m->hidden[i]}, err);
        if (!rc && m->batch_norm) rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_BATCHNORM}, err);
        if (!rc) rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_ACT, .act = (mm_nn_act)m->act}, err);
        if (!rc && m->dropout > 0)
            rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_DROPOUT, .rate = (float)m->dropout}, err);
    }
    if (!rc) rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_DENSE, .units = data->n_classes}, err);
    if (!rc) rc = mm_net_build(net, err);
    if (rc) { mm_net_free(net); return mm_err_prefix(err, "mlp"); }
    return mm_net_model_fit(&m->base, net, (mm_net_init_scheme)m->init, data, "mlp", err);
}

static int mlp_predict_proba(const void *st, const float *X, size_t n, float *proba, mm_err *err)
{
    return mm_net_model_predict_proba(&((const mlp *)st)->base, "mlp", X, n, proba, err);
}

static int mlp_save(const void *st, hid_t g, mm_err *err)
{
    return mm_net_model_save(&((const mlp *)st)->base, "mlp", g, err);
}

static int mlp_load(hid_t g, int n_threads, void **state, mm_err *err)
{
    mlp *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    int rc = mm_net_model_load(&m->base, "mlp", g, n_threads, err);
    if (rc) { free(m); return rc; }
    *state = m;
    return 0;
}

static void mlp_shape(const void *st, int *k, size_t *d)
{
    const mm_net *net = ((const mlp *)st)->base.net;
    size_t out = net ? mm_net_out_dim(net) : 0;
    *k = out > 1000000 ? -1 : (int)out;   /* no class count: refused by the caller */
    *d = net ? mm_net_in_dim(net) : 0;
}

static const mm_history *mlp_history(const void *st)
{
    return mm_net_model_history(&((const mlp *)st)->base);
}

static int mlp_uses_validation(const void *st)
{
    return ((const mlp *)st)->base.tp.early_stopping;   /* without it the part is not looked at */
}

const mm_learner_vt mm_learner_mlp = {
    .name = "mlp",
    .summary = "multi-layer perceptron, Adam, scikit-learn MLPClassifier defaults (alpha, auto batch; early stopping off unless asked)",
    .params = &MLP_PARAMS,
    .wants_validation = 1,
    .uses_validation = mlp_uses_validation,
    .create = mlp_create,
    .fit = mlp_fit,
    .predict_proba = mlp_predict_proba,
    .save = mlp_save,
    .load = mlp_load,
    .shape = mlp_shape,
    .history = mlp_history,
    .free = mlp_free,
};
