/* train.c — minibatch Adam training loop for mm_net (see train.h).
 * References: scikit-learn MLPClassifier._fit_stochastic (alpha penalty,
 * 'auto' batch size, n_iter_no_change/tol stopping, best-coefficient restore,
 * loss curve as the row-weighted mean batch loss) and PyTorch's per-epoch
 * StepLR / CosineAnnealingLR. Leaves out learning-rate warm-up, gradient
 * clipping and momentum SGD. */
#include "nn/train.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"

mm_train_params mm_train_params_default(void)
{
    return (mm_train_params){.epochs = 200, .batch_size = 0, .adam = mm_adam_params_default(), .alpha = 0,
                             .schedule = MM_LR_CONSTANT, .step_size = 10, .gamma = 0.1, .lr_min = 0,
                             .early_stopping = 0, .validation_fraction = 0.1,
                             .monitor = MM_MONITOR_VAL_ACCURACY, .patience = 10, .tol = 1e-4,
                             .stop_on_train_loss = 1, .restore_best = 1, .shuffle = 1,
                             .label_smoothing = 0, .balanced = 0, .seed = 0, .n_threads = 1};
}

void mm_train_log_free(mm_train_log *log)
{
    if (!log) return;
    free(log->train_loss); free(log->train_acc); free(log->val_loss); free(log->val_acc);
    memset(log, 0, sizeof *log);
    log->best = -1;
}

int mm_train_step(mm_net *net, mm_adam *opt, const float *X, const int32_t *y, size_t B, const float *cw,
                  double smoothing, double alpha, double lr, uint64_t drop_seed, uint64_t step, double *loss,
                  size_t *correct, mm_err *err)
{
    const float *z;
    int rc = mm_net_forward(net, X, B, 1, drop_seed, step, &z, err);
    if (rc) return rc;
    size_t k = mm_net_out_dim(net);
    float *dz = mm_malloc(B * k, sizeof *dz, err);
    if (!dz) return MM_ENOMEM;
    double l = mm_nn_softmax_xent_f(B, k, z, y, cw, smoothing, dz, correct);
    mm_net_backward(net, dz);
    free(dz);
    float *w = mm_net_params(net), *g = mm_net_grads(net);
    if (alpha > 0) {   /* scikit-learn: loss += alpha/(2B) |W|^2, grad += alpha/B W (kernels only) */
        double sq = 0;
        for (size_t t = 0; t < mm_net_n_tensors(net); t++) {
            mm_net_tensor T = mm_net_tensor_at(net, t);
            if (!T.is_kernel) continue;
            float a = (float)(alpha / (double)B);
            for (size_t i = T.offset; i < T.offset + T.count; i++) {
                sq += (double)w[i] * w[i];
                g[i] += a * w[i];
            }
        }
        l += 0.5 * alpha * sq / (double)B;
    }
    mm_adam_step(opt, w, g, lr);
    if (loss) *loss = l;
    return 0;
}

int mm_net_predict_proba(const mm_net *net, const float *X, size_t n, float *proba, mm_err *err)
{
    int rc = mm_net_infer(net, X, n, proba, err);
    if (rc) return rc;
    mm_nn_softmax_f(n, mm_net_out_dim(net), proba, proba);
    return 0;
}

/* Mean cross-entropy and accuracy of the net on (X, y) in eval mode. */
static int evaluate(const mm_net *net, const float *X, const int32_t *y, size_t n, double *loss, double *acc,
                    mm_err *err)
{
    size_t k = mm_net_out_dim(net);
    float *z = mm_malloc(n * k, sizeof *z, err);
    if (!z) return MM_ENOMEM;
    int rc = mm_net_infer(net, X, n, z, err);
    size_t ok = 0;
    if (!rc) *loss = mm_nn_softmax_xent_f(n, k, z, y, NULL, 0, NULL, &ok);
    *acc = n ? (double)ok / (double)n : 0;
    free(z);
    return rc;
}

/* Stratified seeded split of the training rows: is_val[i] = 1 for about
 * frac of each class (at least one row per class with >= 2 rows). */
static size_t carve_validation(const int32_t *y, size_t n, int k, double frac, uint64_t seed, uint8_t *is_val)
{
    memset(is_val, 0, n);
    size_t total = 0;
    size_t *idx = malloc(n * sizeof *idx);
    if (!idx) return 0;
    for (int c = 0; c < k; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) if (y[i] == c) idx[m++] = i;
        if (m < 2) continue;
        mm_rng r;
        mm_rng_seed(&r, seed, 0x7a1, (uint64_t)c);
        mm_rng_shuffle_size(&r, idx, m);
        size_t take = (size_t)floor(frac * (double)m + 0.5);
        if (take < 1) take = 1;
        if (take > m - 1) take = m - 1;
        for (size_t j = 0; j < take; j++) is_val[idx[j]] = 1;
        total += take;
    }
    free(idx);
    return total;
}

static double lr_at(const mm_train_params *p, size_t e)
{
    switch (p->schedule) {
    case MM_LR_STEP: return p->adam.lr * pow(p->gamma, (double)(e / p->step_size));
    case MM_LR_COSINE:
        return p->lr_min + (p->adam.lr - p->lr_min) * 0.5 * (1 + cos(M_PI * (double)e / (double)p->epochs));
    default: return p->adam.lr;
    }
}

int mm_train_fit(mm_net *net, const mm_train_params *p, const mm_fit_data *data, mm_train_log *log, mm_err *err)
{
    size_t d = mm_net_in_dim(net), k = mm_net_out_dim(net);
    if (data->d != d) return mm_err_set(err, MM_EINVAL, "network expects %zu features, got %zu", d, data->d);
    if ((size_t)data->n_classes != k)
        return mm_err_set(err, MM_EINVAL, "network has %zu outputs for %d classes", k, data->n_classes);
    if (p->epochs < 1) return mm_err_set(err, MM_EINVAL, "epochs must be >= 1");

    int old_omp = omp_get_max_threads(), old_blas = openblas_get_num_threads();
    int nt = p->n_threads < 1 ? 1 : p->n_threads;
    omp_set_num_threads(nt);
    openblas_set_num_threads(1);   /* BLAS runs per block inside our OpenMP loops (layers_kern.inc) */

    int rc = 0;
    mm_adam *opt = NULL;
    float *Xt = NULL, *Xv_own = NULL, *Xb = NULL, *cw = NULL, *best_p = NULL, *best_b = NULL;
    int32_t *yt = NULL, *yv_own = NULL, *yb = NULL;
    size_t *order = NULL;
    uint8_t *is_val = NULL;
    mm_train_log L = {.best = -1};

    /* training and validation rows */
    const float *X = data->X, *Xv = data->X_val;
    const int32_t *y = data->y, *yv = data->y_val;
    size_t n = data->n, nv = data->X_val ? data->n_val : 0;
    if (p->early_stopping && !Xv && p->validation_fraction > 0 && n >= 10) {
        if (!(is_val = mm_malloc(n, 1, err))) { rc = MM_ENOMEM; goto done; }
        nv = carve_validation(y, n, data->n_classes, p->validation_fraction, p->seed, is_val);
        if (nv && nv < n) {
            Xt = mm_malloc(n - nv, d * sizeof *Xt, err); yt = mm_malloc(n - nv, sizeof *yt, err);
            Xv_own = mm_malloc(nv, d * sizeof *Xv_own, err); yv_own = mm_malloc(nv, sizeof *yv_own, err);
            if (!Xt || !yt || !Xv_own || !yv_own) { rc = MM_ENOMEM; goto done; }
            size_t a = 0, b = 0;
            for (size_t i = 0; i < n; i++) {
                if (is_val[i]) { memcpy(Xv_own + b * d, X + i * d, d * sizeof *X); yv_own[b++] = y[i]; }
                else { memcpy(Xt + a * d, X + i * d, d * sizeof *X); yt[a++] = y[i]; }
            }
            X = Xt; y = yt; n -= nv; Xv = Xv_own; yv = yv_own;
        } else {
            nv = 0;
        }
    }
    int use_val = p->early_stopping && Xv && nv > 0;
    if (!use_val) nv = 0;

    if (p->balanced) {
        if (!(cw = mm_calloc(k, sizeof *cw, err))) { rc = MM_ENOMEM; goto done; }
        for (size_t i = 0; i < n; i++) cw[y[i]] += 1;
        for (size_t c = 0; c < k; c++) cw[c] = cw[c] > 0 ? (float)((double)n / ((double)k * cw[c])) : 1;
    }

    size_t bs = p->batch_size ? p->batch_size : (n < 200 ? n : 200);
    if (bs > n) bs = n;
    size_t nb = (n + bs - 1) / bs;
    if (nb > 1 && n % bs == 1) nb--;   /* never a final batch of one row (batch norm needs two) */
    if ((rc = mm_adam_create(mm_net_n_params(net), &p->adam, &opt, err))) goto done;
    order = mm_malloc(n, sizeof *order, err);
    Xb = order ? mm_malloc(bs + 1, d * sizeof *Xb, err) : NULL;
    yb = Xb ? mm_malloc(bs + 1, sizeof *yb, err) : NULL;
    L.train_loss = yb ? mm_calloc(p->epochs, sizeof(float), err) : NULL;
    L.train_acc = L.train_loss ? mm_calloc(p->epochs, sizeof(float), err) : NULL;
    if (!L.train_acc) { rc = MM_ENOMEM; goto done; }
    if (use_val) {
        L.val_loss = mm_calloc(p->epochs, sizeof(float), err);
        L.val_acc = L.val_loss ? mm_calloc(p->epochs, sizeof(float), err) : NULL;
        best_p = L.val_acc ? mm_malloc(mm_net_n_params(net), sizeof(float), err) : NULL;
        best_b = best_p ? mm_malloc(mm_net_n_buffers(net) + 1, sizeof(float), err) : NULL;
        if (!best_b) { rc = MM_ENOMEM; goto done; }
    }

    double best = -INFINITY;
    size_t no_improve = 0;
    uint64_t step = 0;
    for (size_t e = 0; e < p->epochs; e++) {
        for (size_t i = 0; i < n; i++) order[i] = i;
        if (p->shuffle) {
            mm_rng r;
            mm_rng_seed(&r, p->seed, 0x5f, e);
            mm_rng_shuffle_size(&r, order, n);
        }
        double lr = lr_at(p, e), sum_loss = 0;
        size_t sum_ok = 0;
        for (size_t b = 0; b < nb; b++) {
            size_t lo = b * bs, hi = b + 1 == nb ? n : lo + bs;
            for (size_t i = lo; i < hi; i++) {
                memcpy(Xb + (i - lo) * d, X + order[i] * d, d * sizeof *X);
                yb[i - lo] = y[order[i]];
            }
            double bl;
            size_t ok;
            rc = mm_train_step(net, opt, Xb, yb, hi - lo, cw, p->label_smoothing, p->alpha, lr, p->seed, step++,
                               &bl, &ok, err);
            if (rc) goto done;
            sum_loss += bl * (double)(hi - lo);
            sum_ok += ok;
        }
        L.train_loss[e] = (float)(sum_loss / (double)n);
        L.train_acc[e] = (float)((double)sum_ok / (double)n);
        L.n = e + 1;
        if (!isfinite(L.train_loss[e])) {
            rc = mm_err_set(err, MM_EDATA, "training diverged at epoch %zu (loss %g); lower the learning rate",
                            e + 1, (double)L.train_loss[e]);
            goto done;
        }
        double score;
        if (use_val) {
            double vl, va;
            if ((rc = evaluate(net, Xv, yv, nv, &vl, &va, err))) goto done;
            L.val_loss[e] = (float)vl;
            L.val_acc[e] = (float)va;
            score = p->monitor == MM_MONITOR_VAL_ACCURACY ? va : -vl;
        } else {
            score = -L.train_loss[e];
        }
        if (data->on_epoch)
            data->on_epoch(data->epoch_ctx, e + 1, p->epochs, L.train_loss[e], use_val ? L.val_loss[e] : NAN);
        if (!use_val && !p->stop_on_train_loss) continue;
        if (score < best + p->tol) no_improve++;
        else no_improve = 0;
        if (score > best) {
            best = score;
            if (use_val) {
                L.best = (long)e;
                memcpy(best_p, mm_net_params(net), mm_net_n_params(net) * sizeof(float));
                memcpy(best_b, mm_net_buffers(net), mm_net_n_buffers(net) * sizeof(float));
            }
        }
        if (no_improve > p->patience) break;
    }
    if (use_val && p->restore_best && L.best >= 0) {
        memcpy(mm_net_params(net), best_p, mm_net_n_params(net) * sizeof(float));
        memcpy(mm_net_buffers(net), best_b, mm_net_n_buffers(net) * sizeof(float));
    } else {
        L.best = -1;
    }
    *log = L;
    memset(&L, 0, sizeof L);
done:
    mm_train_log_free(&L);
    mm_adam_free(opt);
    free(Xt); free(Xv_own); free(Xb); free(cw); free(best_p); free(best_b);
    free(yt); free(yv_own); free(yb); free(order); free(is_val);
    omp_set_num_threads(old_omp);
    openblas_set_num_threads(old_blas);
    return rc;
}

int mm_train_cfg_int_list(const mm_cfg *m, const char *key, const long *def, size_t ndef, long min, long max,
                          long *out, size_t maxn, size_t *n, mm_err *err)
{
    const mm_cfg *c = m ? mm_cfg_child(m, key) : NULL;
    char w[600];
    if (!c || c->type == MM_CFG_NULL) {
        memcpy(out, def, ndef * sizeof *def);
        *n = ndef;
        return 0;
    }
    if (c->type == MM_CFG_SCALAR) {
        long v;
        int rc = mm_cfg_get_int(m, key, 0, min, max, &v, err);
        if (rc) return rc;
        out[0] = v;
        *n = 1;
        return 0;
    }
    if (c->type != MM_CFG_SEQ || c->n == 0 || c->n > maxn)
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected a list of 1 to %zu integers",
                          mm_cfg_where(c, w, sizeof w), key, maxn);
    for (size_t i = 0; i < c->n; i++) {
        long v;
        int rc = mm_cfg_scalar_int(c->items[i], key, &v, err);
        if (rc) return rc;
        if (v < min || v > max)
            return mm_err_set(err, MM_EINVAL, "%s: key '%s': item %zu: expected an integer in [%ld, %ld], got %ld",
                              mm_cfg_where(c->items[i], w, sizeof w), key, i + 1, min, max, v);
        out[i] = v;
    }
    *n = c->n;
    return 0;
}

/* ---- shared learner state (mlp, cnn1d) ---- */

void mm_net_model_release(mm_net_model *m)
{
    mm_net_free(m->net);
    m->net = NULL;
    mm_train_log_free(&m->log);
}

int mm_net_model_fit(mm_net_model *m, mm_net *net, mm_net_init_scheme init, const mm_fit_data *data,
                     const char *name, mm_err *err)
{
    mm_net_init(net, init, m->tp.seed);
    mm_train_log log;
    int rc = mm_train_fit(net, &m->tp, data, &log, err);
    if (rc) { mm_net_free(net); return mm_err_prefix(err, "%s", name); }
    mm_net_model_release(m);
    m->net = net;
    m->log = log;
    m->hist = (mm_history){.n = log.n, .train_loss = log.train_loss, .train_acc = log.train_acc,
                           .val_loss = log.val_loss, .val_acc = log.val_acc, .best = log.best};
    return 0;
}

int mm_net_model_predict_proba(const mm_net_model *m, const char *name, const float *X, size_t n,
                               float *proba, mm_err *err)
{
    if (!m->net) return mm_err_set(err, MM_EINVAL, "%s: model is not fitted", name);
    return mm_net_predict_proba(m->net, X, n, proba, err);
}

int mm_net_model_save(const mm_net_model *m, const char *name, hid_t g, mm_err *err)
{
    if (!m->net) return mm_err_set(err, MM_EINVAL, "%s: model is not fitted", name);
    return mm_net_save(m->net, g, err);
}

int mm_net_model_load(mm_net_model *m, const char *name, hid_t g, int n_threads, mm_err *err)
{
    m->tp = mm_train_params_default();
    m->tp.n_threads = n_threads;
    m->log.best = -1;
    int rc = mm_net_load(g, &m->net, err);
    return rc ? mm_err_prefix(err, "%s", name) : 0;
}

const mm_history *mm_net_model_history(const mm_net_model *m)
{
    return m->log.n ? &m->hist : NULL;
}
