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

#include <stdlib.h>
#include <string.h>
#include "nn/net.h"
#include "nn/train.h"

#define MAX_HIDDEN 16

typedef struct mlp {
    mm_net_model base;    /* training parameters, the fitted network, its history */
    long hidden[MAX_HIDDEN];
    size_t n_hidden;
    mm_nn_act act;
    double dropout;
    int batch_norm;
    mm_net_init_scheme init;
} mlp;

static const mm_train_keys keys = {"max_iter", "learning_rate_init", "n_iter_no_change"};
static const char *const acts[] = {"identity", "relu", "tanh", "gelu", "hardswish", NULL};
static const char *const inits[] = {"glorot", "sklearn", "torch", NULL};

static void mlp_free(void *st)
{
    mlp *m = st;
    if (!m) return;
    mm_net_model_release(&m->base);
    free(m);
}

static int mlp_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    static const char *const own[] = {"hidden_layer_sizes", "activation", "dropout", "batch_norm", "init",
                                      "max_iter", "learning_rate_init", "n_iter_no_change", NULL};
    const char *allowed[64];
    size_t k = 0;
    for (size_t i = 0; own[i]; i++) allowed[k++] = own[i];
    for (size_t i = 0; mm_train_cfg_keys[i]; i++) allowed[k++] = mm_train_cfg_keys[i];
    allowed[k] = NULL;
    int rc = mm_cfg_check_keys(params, "mlp", allowed, err);
    if (rc) return rc;
    mlp *m = mm_calloc(1, sizeof *m, err);
    if (!m) return MM_ENOMEM;
    m->base.log.best = -1;
    m->base.tp = mm_train_params_default();
    m->base.tp.alpha = 1e-4;
    m->base.tp.early_stopping = 0;   /* MLPClassifier's default; experiments say so when they want it */
    m->base.tp.seed = seed;
    m->base.tp.n_threads = n_threads;
    int c, b;
    double dr;
    static const long def_hidden[] = {100};
    if ((rc = mm_train_params_from_cfg(params, &keys, &m->base.tp, err)) ||
        (rc = mm_train_cfg_int_list(params, "hidden_layer_sizes", def_hidden, 1, 1, 1 << 16, m->hidden, MAX_HIDDEN,
                                    &m->n_hidden, err)) ||
        (rc = mm_cfg_get_choice(params, "activation", acts, MM_NN_ACT_RELU, &c, err)))
        goto fail;
    m->act = (mm_nn_act)c;
    if ((rc = mm_cfg_get_double(params, "dropout", 0, 0, 0.95, &dr, err)) ||
        (rc = mm_cfg_get_bool(params, "batch_norm", 0, &b, err)) ||
        (rc = mm_cfg_get_choice(params, "init", inits, MM_NET_INIT_SKLEARN, &c, err)))
        goto fail;
    m->dropout = dr;
    m->batch_norm = b;
    m->init = (mm_net_init_scheme)c;
    *state = m;
    return 0;
fail:
    mlp_free(m);
    return rc;
}

static int mlp_fit(void *st, const mm_fit_data *data, mm_err *err)
{
    mlp *m = st;
    mm_net *net = NULL;
    int rc = mm_net_create(1, data->d, &net, err);
    for (size_t i = 0; !rc && i < m->n_hidden; i++) {
        rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_DENSE, .units = (int)m->hidden[i]}, err);
        if (!rc && m->batch_norm) rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_BATCHNORM}, err);
        if (!rc) rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_ACT, .act = m->act}, err);
        if (!rc && m->dropout > 0)
            rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_DROPOUT, .rate = (float)m->dropout}, err);
    }
    if (!rc) rc = mm_net_add(net, &(mm_net_spec){.kind = MM_NET_DENSE, .units = data->n_classes}, err);
    if (!rc) rc = mm_net_build(net, err);
    if (rc) { mm_net_free(net); return mm_err_prefix(err, "mlp"); }
    return mm_net_model_fit(&m->base, net, m->init, data, "mlp", err);
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
    .summary = "multi-layer perceptron, Adam, scikit-learn MLPClassifier defaults (alpha, auto batch, early stopping)",
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
