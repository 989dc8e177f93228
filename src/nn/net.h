/* net.h — a small sequential network for training: a stack of layers from
 * layers.h over channels-last activations, one flat parameter vector (and
 * its gradient), batch-norm running statistics as non-trained buffers,
 * forward/backward over a batch, thread-safe inference, HDF5 save/load.
 *
 * Usage: mm_net_create(in_len, in_ch) → mm_net_add(...) per layer →
 * mm_net_build → mm_net_init → training steps (mm_net_forward, loss,
 * mm_net_backward, optimiser on mm_net_params/mm_net_grads) → mm_net_infer.
 * An input of d features with in_len = d, in_ch = 1 is Keras' (d, 1)
 * sequence; with in_len = 1, in_ch = d a flat vector. The network must end in
 * a flat vector (length 1) of logits.
 *
 * Threading: forward/backward use OpenMP and BLAS internally and are not
 * re-entrant on one net; mm_net_infer is (read-only net, own workspace).
 */
#ifndef MM_NN_NET_H
#define MM_NN_NET_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "nn/layers.h"

typedef enum {
    MM_NET_DENSE = 1,      /* units outputs per position; W (units, in_ch), b (units) */
    MM_NET_CONV1D = 2,     /* units filters, kernel, stride, padding; W (units, kernel, in_ch), b */
    MM_NET_BATCHNORM = 3,  /* per channel; gamma, beta; buffers running mean, var */
    MM_NET_MAXPOOL1D = 4,  /* kernel = pool size, stride, padding */
    MM_NET_DROPOUT = 5,    /* rate in [0, 1) */
    MM_NET_ACT = 6,        /* act */
    MM_NET_FLATTEN = 7,    /* (L, C) -> (1, L*C), order (l, c) as Keras */
} mm_net_kind;

/* One layer. Fields a kind does not use are ignored. */
typedef struct mm_net_spec {
    mm_net_kind kind;
    int units;             /* dense outputs / conv filters */
    int kernel;            /* conv kernel size / pool size */
    int stride;            /* conv / pool stride (>= 1) */
    mm_nn_padding padding; /* conv / pool */
    mm_nn_act act;         /* MM_NET_ACT */
    float rate;            /* MM_NET_DROPOUT */
} mm_net_spec;

/* Batch-norm constants (PyTorch's, not Keras' 0.99 / 1e-3). */
#define MM_NET_BN_MOMENTUM 0.1
#define MM_NET_BN_EPS 1e-5

typedef enum {
    MM_NET_INIT_GLOROT = 0,   /* Keras: W ~ U(+-sqrt(6/(fan_in+fan_out))), biases 0 */
    MM_NET_INIT_SKLEARN = 1,  /* MLPClassifier: W and b ~ U(+-sqrt(6/(fan_in+fan_out))) */
    MM_NET_INIT_TORCH = 2,    /* nn.Linear/Conv1d: W and b ~ U(+-1/sqrt(fan_in)) */
} mm_net_init_scheme;

/* A named parameter tensor (view into mm_net_params). */
typedef struct mm_net_tensor {
    size_t layer;          /* index of the layer */
    const char *name;      /* "weight", "bias", "gamma", "beta" */
    size_t offset, count;  /* into the flat parameter vector */
    int is_kernel;         /* 1 for dense/conv weights (what sklearn's alpha penalises) */
} mm_net_tensor;

typedef struct mm_net mm_net;

/* Empty network for inputs of in_len positions x in_ch channels. */
int mm_net_create(size_t in_len, size_t in_ch, mm_net **out, mm_err *err);
void mm_net_free(mm_net *net);
/* Append a layer (before mm_net_build). Checks the spec against the current
 * shape ("layer 3 (conv1d): kernel 0: expected >= 1"). */
int mm_net_add(mm_net *net, const mm_net_spec *spec, mm_err *err);
/* Allocate parameters (zero weights, BN gamma 1, running var 1). Fails when
 * the net does not end in a flat vector of >= 2 logits. */
int mm_net_build(mm_net *net, mm_err *err);
/* Fill weights from a seeded generator (one stream per layer). */
void mm_net_init(mm_net *net, mm_net_init_scheme scheme, uint64_t seed);

size_t mm_net_n_layers(const mm_net *net);
const mm_net_spec *mm_net_layer(const mm_net *net, size_t i);
/* Output shape of layer i (i = n_layers - 1: the logits). */
void mm_net_layer_shape(const mm_net *net, size_t i, size_t *len, size_t *ch);
size_t mm_net_in_dim(const mm_net *net);    /* in_len * in_ch */
size_t mm_net_out_dim(const mm_net *net);   /* number of logits */

/* Flat parameters, gradients (same layout) and buffers; owned by the net. */
size_t mm_net_n_params(const mm_net *net);
float *mm_net_params(mm_net *net);
const float *mm_net_params_const(const mm_net *net);
float *mm_net_grads(mm_net *net);
size_t mm_net_n_buffers(const mm_net *net);
float *mm_net_buffers(mm_net *net);
size_t mm_net_n_tensors(const mm_net *net);
mm_net_tensor mm_net_tensor_at(const mm_net *net, size_t i);

/* Forward a batch X (B, in_dim). training = 1: batch statistics for batch
 * norm (running statistics updated) and dropout masks drawn from the stream
 * (drop_seed, step, layer<<32 | sample); training = 0: running statistics, no
 * dropout. X must stay valid until mm_net_backward. *logits (B, out_dim)
 * points into the net, valid until the next forward. Fails only on memory. */
int mm_net_forward(mm_net *net, const float *X, size_t B, int training, uint64_t drop_seed,
                   uint64_t step, const float **logits, mm_err *err);
/* Backward of the last forward (training = 1) given dloss/dlogits (B, out_dim):
 * writes mm_net_grads. */
void mm_net_backward(mm_net *net, const float *dlogits);

/* Inference (eval mode) of n rows in chunks, logits (n, out_dim). Read-only on
 * the net; safe to call concurrently. */
int mm_net_infer(const mm_net *net, const float *X, size_t n, float *logits, mm_err *err);

/* Write the architecture, parameters and buffers into an HDF5 group / read
 * them back (every field checked; sizes checked before allocation). */
int mm_net_save(const mm_net *net, hid_t group, mm_err *err);
int mm_net_load(hid_t group, mm_net **out, mm_err *err);

#endif
