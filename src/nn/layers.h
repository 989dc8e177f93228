/* layers.h — forward and backward kernels of the layers used for training:
 * dense, activations (ReLU, tanh, GELU, hardswish), inverted dropout, batch
 * normalisation, Conv1D (Winograd F(6,5) or F(4,5) / F(6,3) for stride-1
 * kernels of 5 / 3 taps with >= 16 channels, im2col + GEMM otherwise),
 * MaxPool1D and softmax
 * cross-entropy.
 *
 * Layout: channels-last, row-major. A batch of sequences is (B, L, C) and is
 * seen as a matrix of R = B*L rows of C values; a plain feature batch is the
 * case L = 1 (this is Keras' layout, so Flatten is a no-op and Keras'
 * flatten order (l, c) is kept). Parameter layouts:
 *   dense  W (out, in) as PyTorch nn.Linear, b (out)
 *   conv1d W (cout, k, cin) (PyTorch's (cout, cin, k) transposed), b (cout)
 *
 * Every kernel exists in float (suffix _f, used by the engine) and double
 * (suffix _d, used by the finite-difference test) from one source
 * (layers_kern.inc). Kernels are pure functions over caller-owned buffers
 * (the Winograd convolution also allocates scratch, and runs a slower
 * allocation-free loop when it cannot have it). They split their work over
 * the samples, column ranges or fixed blocks of a matrix product (mm_sgemm
 * in float, cblas_dgemm in double) as nn/par items run by up to
 * omp_get_max_threads() threads, and give identical results for any thread
 * count and any mm_sgemm micro-kernel (every sum runs in a fixed order).
 * They never fail: shapes are the caller's contract.
 */
#ifndef MM_NN_LAYERS_H
#define MM_NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>
#include "core/rng.h"

typedef enum {
    MM_NN_ACT_IDENTITY = 0,
    MM_NN_ACT_RELU = 1,
    MM_NN_ACT_TANH = 2,
    MM_NN_ACT_GELU = 3,        /* exact (erf) GELU, PyTorch's default */
    MM_NN_ACT_HARDSWISH = 4,   /* x * relu6(x + 3) / 6 */
} mm_nn_act;

typedef enum {
    MM_NN_PAD_VALID = 0,
    MM_NN_PAD_SAME = 1,        /* TensorFlow 'same': out = ceil(L / stride) */
} mm_nn_padding;

/* Output length and left padding of a 1-D window op (conv or pool) of size k
 * and stride s over length L. 'same' follows TensorFlow: out = ceil(L/s),
 * pad_total = max((out-1)*s + k - L, 0), pad_left = pad_total/2 (for stride 1
 * this equals PyTorch's padding='same'). 'valid': out = (L-k)/s + 1, or 0
 * when L < k. */
void mm_nn_window(size_t L, size_t k, size_t s, mm_nn_padding pad, size_t *out, size_t *pad_left);

/* How Conv1D computes (process-wide; for tests and benchmarks, not to be
 * switched while kernels run). AUTO: Winograd F(6, 5) (F(4, 5) where that
 * makes fewer products, F(9, 5) where that makes at least 10 % fewer) /
 * F(6, 3) for stride-1 kernels of size 5 / 3 with >= 16 channels in and
 * out, im2col + GEMM
 * otherwise (the choice depends on the layer's shape, never on the batch).
 * IM2COL: always im2col. WINOGRAD_NOALLOC: Winograd where AUTO would, with
 * the allocation-free fallback that runs when scratch memory cannot be
 * had (same sums, slower). Returns the previous setting. */
typedef enum {
    MM_NN_CONV_AUTO = 0,
    MM_NN_CONV_IM2COL = 1,
    MM_NN_CONV_WINOGRAD_NOALLOC = 2,
} mm_nn_conv_algo;
mm_nn_conv_algo mm_nn_conv1d_algo(mm_nn_conv_algo a);

/* The mm_sgemm micro-kernel the float kernels use (an mm_sgemm_kernel from
 * nn/sgemm.h; default MM_SGEMM_AUTO), so tests can run the same training on
 * every SIMD path and compare bits. Process-wide, like mm_nn_conv1d_algo.
 * Returns the previous setting. */
int mm_nn_gemm_kernel(int k);

/* Inverted-dropout keep mask for n values: mask[i] = 1 with probability
 * 1 - rate (drawn from r), else 0; the kept values are scaled by 1/(1-rate)
 * in the forward kernel. */
void mm_nn_dropout_mask(size_t n, double rate, mm_rng *r, uint8_t *mask);

/* Declarations of one precision T with suffix S. Shapes in comments;
 * R = rows (B*L). Gradient outputs are overwritten, not accumulated. */
#define MM_NN_DECLARE(T, S)                                                                      \
    /* y (R, out) = x (R, in) W^T + b */                                                       \
    void mm_nn_dense_forward##S(size_t R, size_t in, size_t out, const T *x, const T *W,       \
                                const T *b, T *y);                                             \
    /* dW (out, in) = dy^T x; db (out) = sum_r dy; dx (R, in) = dy W (dx may be NULL) */       \
    void mm_nn_dense_backward##S(size_t R, size_t in, size_t out, const T *x, const T *W,      \
                                 const T *dy, T *dW, T *db, T *dx);                            \
    /* y = f(x) elementwise; y may alias x */                                                  \
    void mm_nn_act_forward##S(mm_nn_act a, size_t n, const T *x, T *y);                        \
    /* dx = dy * f'(x) (y = f(x) is also given); dx may alias dy */                            \
    void mm_nn_act_backward##S(mm_nn_act a, size_t n, const T *x, const T *y, const T *dy,     \
                               T *dx);                                                         \
    /* y = x * mask / (1 - rate); backward: dx = dy * mask / (1 - rate) */                     \
    void mm_nn_dropout_forward##S(size_t n, double rate, const uint8_t *mask, const T *x,      \
                                  T *y);                                                       \
    void mm_nn_dropout_backward##S(size_t n, double rate, const uint8_t *mask, const T *dy,    \
                                   T *dx);                                                     \
    /* Batch norm in training mode over the R rows of x (R, C): per channel c,                 \
     * mean and biased variance over rows; y = gamma (x - mean) * invstd + beta with           \
     * invstd = 1/sqrt(var + eps). Writes mean (C), invstd (C) for backward and,               \
     * when run_mean/run_var are non-NULL, updates them PyTorch-style:                         \
     * run = (1 - momentum) run + momentum stat, with the unbiased variance                    \
     * var * R/(R-1) (R > 1). y may be NULL (statistics only). */                            \
    void mm_nn_bn_forward_train##S(size_t R, size_t C, const T *x, const T *gamma,             \
                                   const T *beta, double eps, double momentum, T *y, T *mean,  \
                                   T *invstd, T *run_mean, T *run_var);                        \
    /* Evaluation mode: normalise with the running statistics. */                              \
    void mm_nn_bn_forward_eval##S(size_t R, size_t C, const T *x, const T *gamma,              \
                                  const T *beta, const T *run_mean, const T *run_var,          \
                                  double eps, T *y);                                           \
    /* Gradients of the training-mode forward: dgamma, dbeta (C), dx (R, C). */                \
    void mm_nn_bn_backward##S(size_t R, size_t C, const T *x, const T *gamma, const T *mean,   \
                              const T *invstd, const T *dy, T *dgamma, T *dbeta, T *dx);       \
    /* The same for a ReLU followed by batch norm, x being the ReLU's output:                  \
     * dx is then the gradient at the ReLU's input (zero where x <= 0), the                    \
     * same values as bn_backward then act_backward, in one pass. */                           \
    void mm_nn_bn_relu_backward##S(size_t R, size_t C, const T *x, const T *gamma,             \
                                   const T *mean, const T *invstd, const T *dy, T *dgamma,     \
                                   T *dbeta, T *dx);                                           \
    /* The backward of [ReLU ->] batch norm -> MaxPool1D [-> dropout] over x (B, L, C),       \
     * x being the BN's input (the ReLU's output when relu): from dy (B, Lout, C)              \
     * at the pool's output (at the dropout's output when mask is non-NULL), the               \
     * same dgamma, dbeta and dx as dropout_backward, maxpool_backward, then                   \
     * bn_backward (bn_relu_backward when relu), without storing the gradients                 \
     * between them. arg, pool geometry and mask as the forward kernels had them.              \
     * dxsum (C), when non-NULL, receives the column sums of dx as the conv1d                  \
     * backward's db would compute them from dx (then give it db NULL). */                     \
    void mm_nn_bn_maxpool_backward##S(size_t B, size_t L, size_t C, size_t pool, size_t s,      \
                                      size_t pad_left, size_t Lout, const int32_t *arg,        \
                                      const uint8_t *mask, double rate, int relu, const T *x,  \
                                      const T *gamma, const T *mean, const T *invstd,          \
                                      const T *dy, T *dgamma, T *dbeta, T *dx, T *dxsum);      \
    /* Conv1D: x (B, L, cin), W (cout, k, cin), b (cout) -> y (B, Lout, cout) with             \
     * stride s and pad_left zeros (from mm_nn_window). col (B*Lout, k*cin) is                 \
     * workspace that backward needs again (im2col rows, or Winograd's input                   \
     * transform, which fits in it, and its weight transform when that fits too:               \
     * backward must be given the W this forward had). */                                      \
    void mm_nn_conv1d_forward##S(size_t B, size_t L, size_t cin, size_t cout, size_t k,        \
                                 size_t s, size_t pad_left, size_t Lout, const T *x,           \
                                 const T *W, const T *b, T *col, T *y);                        \
    /* The same followed by a ReLU: y = max(conv, 0), the values of                          \
     * conv1d_forward then act_forward(RELU), in one pass over y. */                          \
    void mm_nn_conv1d_relu_forward##S(size_t B, size_t L, size_t cin, size_t cout, size_t k,   \
                                      size_t s, size_t pad_left, size_t Lout, const T *x,      \
                                      const T *W, const T *b, T *col, T *y);                   \
    /* dW = dy^T col, db = sum dy, dx = col2im(dy W); dcol (B*Lout, k*cin) is                  \
     * workspace; dx may be NULL (then dcol may be NULL); db may be NULL (not                  \
     * computed: the caller has it, e.g. from bn_maxpool_backward's dxsum). */                 \
    void mm_nn_conv1d_backward##S(size_t B, size_t L, size_t cin, size_t cout, size_t k,       \
                                  size_t s, size_t pad_left, size_t Lout, const T *col,        \
                                  const T *W, const T *dy, T *dW, T *db, T *dcol, T *dx);      \
    /* MaxPool1D over windows of `pool` rows with stride s; positions outside                  \
     * [0, L) count as -inf (TF 'same'). arg (B*Lout*C) keeps the row index of                 \
     * the first maximum for backward. */                                                      \
    void mm_nn_maxpool_forward##S(size_t B, size_t L, size_t C, size_t pool, size_t s,         \
                                  size_t pad_left, size_t Lout, const T *x, T *y,              \
                                  int32_t *arg);                                               \
    /* Batch norm in training mode (as bn_forward_train) followed by MaxPool1D                  \
     * over x (B, L, C) and, when mask is non-NULL, dropout: y, arg as                        \
     * maxpool_forward of bn_forward_train's y (then dropout_forward with mask and             \
     * rate), with the same bits, without storing the values between them. */                  \
    void mm_nn_bn_maxpool_forward_train##S(size_t B, size_t L, size_t C, size_t pool, size_t s,   \
                                           size_t pad_left, size_t Lout, const T *x,             \
                                           const T *gamma, const T *beta, double eps,            \
                                           double momentum, T *mean, T *invstd, T *run_mean,     \
                                           T *run_var, const uint8_t *mask, double rate, T *y,   \
                                           int32_t *arg);                                        \
    void mm_nn_maxpool_backward##S(size_t B, size_t L, size_t C, size_t Lout,                  \
                                   const int32_t *arg, const T *dy, T *dx);                    \
    /* Softmax cross-entropy with PyTorch CrossEntropyLoss semantics (mean                     \
     * reduction): with class weights w (NULL = all 1) and label smoothing e,                  \
     * q_ic = (1-e) w_{y_i} [c = y_i] + e w_c / C, loss = sum_i sum_c -q_ic                    \
     * log p_ic / sum_i w_{y_i}. Returns the loss; when dz is non-NULL writes                  \
     * dloss/dlogits (B, C). `correct` (may be NULL) receives the count of rows                \
     * whose argmax equals the label. */                                                       \
    double mm_nn_softmax_xent##S(size_t B, size_t C, const T *z, const int32_t *y,             \
                                 const T *w, double smoothing, T *dz, size_t *correct);        \
    /* Row-wise softmax: p (B, C) from logits z; p may alias z. */                             \
    void mm_nn_softmax##S(size_t B, size_t C, const T *z, T *p);

MM_NN_DECLARE(float, _f)
MM_NN_DECLARE(double, _d)

/* ---- A narrow conv's ReLU computed where it is read (float only) ----
 * The first conv of a network over one-channel input (k cin <= 16) makes a
 * large tensor (B, L, C) for a few multiply-adds per value; Conv1D -> ReLU ->
 * BatchNorm -> MaxPool1D (-> Dropout) in training need not store it: the
 * batch norm's and the pool's kernels compute each of its rows from the conv
 * where they read it, with conv1d_relu_forward's expression (the same bits
 * as storing it). mm_nn_conv_rows_fit says whether a shape can be given so. */
typedef struct mm_nn_conv_rows {
    size_t L, cin, k, s, pad_left;   /* the conv's input length, channels, taps, stride, padding */
    const float *x, *W, *b;          /* its input (B, L, cin), weights (C, k, cin), bias (C) */
} mm_nn_conv_rows;

int mm_nn_conv_rows_fit_f(size_t kc, size_t C);
/* bn_maxpool_forward_train with x the ReLU of the conv cv (L rows per sample). */
void mm_nn_conv_bn_maxpool_forward_train_f(const mm_nn_conv_rows *cv, size_t B, size_t L, size_t C,
                                           size_t pool, size_t s, size_t pad_left, size_t Lout,
                                           const float *gamma, const float *beta, double eps, double momentum,
                                           float *mean, float *invstd, float *run_mean, float *run_var,
                                           const uint8_t *mask, double rate, float *y, int32_t *arg);
/* bn_maxpool_backward (relu set) with x the ReLU of the conv cv. With dW
 * non-NULL also the conv's weight gradient dW (C, k cin) = dx^T col from its
 * im2col rows col, the bits conv1d_backward gives (mm_sgemm's chains), and
 * dx may be NULL (the conv is the first layer: nothing needs it). Returns 0,
 * or -1 without memory for dW's sums (nothing written: call it without dW). */
int mm_nn_conv_bn_maxpool_backward_f(const mm_nn_conv_rows *cv, size_t B, size_t L, size_t C, size_t pool,
                                     size_t s, size_t pad_left, size_t Lout, const int32_t *arg,
                                     const uint8_t *mask, double rate, const float *gamma, const float *mean,
                                     const float *invstd, const float *dy, float *dgamma, float *dbeta,
                                     float *dx, float *dxsum, const float *col, float *dW);
/* The conv's im2col rows (B*Lout, k*cin) alone, as conv1d_forward leaves them
 * in col for conv1d_backward. */
void mm_nn_conv1d_im2col_f(size_t B, size_t L, size_t cin, size_t k, size_t s, size_t pad_left, size_t Lout,
                           const float *x, float *col);

#endif
