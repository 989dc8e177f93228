/* cnn14.h — PANNs Cnn14 / Cnn14_16k inference (log-mel → embedding, scores).
 *
 * The network of qiuqiangkong/audioset_tagging_cnn (pytorch/models.py,
 * class Cnn14; Cnn14_16k has the same layers) after its front end, in eval
 * mode: bn0 over the mel bins; six blocks of [3×3 conv (no bias, pad 1) →
 * BN → ReLU] × 2 → 2×2 average pooling (1×1 in the last), widths taken from
 * the checkpoint (64 … 2048 for the official ones); mean over mel; max +
 * mean over time; fc1 + ReLU → embedding; fc_audioset + sigmoid → scores.
 * Dropout is the identity. Block BNs are folded into the convolutions at load
 * time; bn0 is applied to the input as such (folding it into conv1 would be
 * wrong at the zero-padded borders).
 *
 * Short inputs: PANNs fails on fewer than 32 frames (five 2×2 poolings leave
 * no frame). Here such inputs are padded at the end with rows of -100 dB,
 * the log-mel of digital silence (10·log10(1e-10)), up to 32 frames.
 * Memory: one forward holds one clip's activations (two buffers of
 * width1 × frames × mels floats) plus bounded conv scratch. The model keeps
 * up to 4 such workspaces (the largest sizes seen, for concurrent callers)
 * between calls to spare re-faulting fresh pages; mm_cnn14_free releases them.
 * Leaves out: the front end (src/dsp/frontend.h), training, the other PANNs
 * models.
 */
#ifndef MM_CNN14_H
#define MM_CNN14_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "dsp/frontend.h"
#include "nn/conv3x3.h"

#define MM_CNN14_MIN_FRAMES 32
#define MM_CNN14_PAD_DB (-100.0f)

typedef struct mm_cnn14 mm_cnn14;

typedef struct mm_cnn14_params {
    /* Convolution algorithm. MM_CONV3X3_AUTO (default): Winograd in blocks
     * 1–5, im2col in block 6 (its weights are half the model; Winograd would
     * need 16/9 of them for an image of only T/32 × 2 after five poolings).
     * Block 1's first conv (one input channel) is always im2col. */
    mm_conv3x3_algo algo;
} mm_cnn14_params;

void mm_cnn14_params_default(mm_cnn14_params *p);

/* A float32 state-dict tensor handed to mm_cnn14_build (row-major, contiguous;
 * data owned by the lookup's provider and only read during the build). */
typedef struct mm_cnn14_tensor {
    const float *data;
    int rank;
    int64_t shape[4];
} mm_cnn14_tensor;

/* Find a state-dict entry by its PANNs name ("conv_block3.bn1.running_var").
 * Returns 0 and fills *t, or a negative code with a message naming the
 * tensor (missing, not float32, unreadable). */
typedef int (*mm_cnn14_lookup_fn)(void *ctx, const char *name, mm_cnn14_tensor *t,
                                  mm_err *err);

/* Build the network from state-dict tensors: widths from the shapes of
 * conv_block<k>.conv1.weight, every other shape checked against them; all
 * values must be finite and running variances >= 0. `what` (a file name)
 * prefixes messages: "<what>: tensor 'fc1.weight': expected shape (2048, 2048),
 * got (2048, 1024)". params may be NULL (defaults). */
int mm_cnn14_build(mm_cnn14_lookup_fn lookup, void *ctx, const char *what,
                   const mm_cnn14_params *params, mm_cnn14 **out, mm_err *err);

/* Load a checkpoint: a PANNs PyTorch file (zip; the state dict under 'model',
 * or the state dict itself) or an HDF5 file whose group "model" holds one
 * dataset per state-dict key (as tests/ref/gen_cnn14.py writes). */
int mm_cnn14_load(const char *path, const mm_cnn14_params *params, mm_cnn14 **out,
                  mm_err *err);
void mm_cnn14_free(mm_cnn14 *m);

size_t mm_cnn14_n_mels(const mm_cnn14 *m);        /* 64 */
size_t mm_cnn14_embedding_dim(const mm_cnn14 *m); /* fc1 outputs: 2048 */
size_t mm_cnn14_n_classes(const mm_cnn14 *m);     /* fc_audioset outputs: 527 */
size_t mm_cnn14_width(const mm_cnn14 *m, int block); /* channels of block 0..5 */

/* Multiply-adds of one forward over n_frames (convolutions and linear layers). */
double mm_cnn14_macs(const mm_cnn14 *m, size_t n_frames);

/* logmel: (n_frames, n_mels) row-major, as mm_frontend_compute writes it.
 * embedding: (embedding_dim) or NULL; scores: (n_classes) or NULL.
 * n_threads >= 1 threads inside this call (use 1 when calling from several
 * threads at once); results do not depend on it. Thread-safe: weights are
 * read-only and the workspace pool is locked. Errors: n_frames == 0,
 * non-finite input, out of memory. */
int mm_cnn14_forward(const mm_cnn14 *m, const float *logmel, size_t n_frames, int n_threads,
                     float *embedding, float *scores, mm_err *err);

/* ---- audio in: front end + network ---------------------------------------- */

/* A checkpoint with the PANNs front end it expects (MM_FE_CNN14 for
 * Cnn14_mAP=0.431.pth, MM_FE_CNN14_16K for Cnn14_16k_mAP=0.438.pth). Opaque;
 * read-only after load, so runs may be concurrent. */
typedef struct mm_cnn14_clip mm_cnn14_clip;

/* Load `weights` (as mm_cnn14_load, default params) and create the front end;
 * the network's mel bins must match the front end's (64). */
int mm_cnn14_clip_load(const char *weights, mm_frontend_kind kind, mm_cnn14_clip **out,
                       mm_err *err);
void mm_cnn14_clip_free(mm_cnn14_clip *c);
int mm_cnn14_clip_sample_rate(const mm_cnn14_clip *c);
const mm_cnn14 *mm_cnn14_clip_net(const mm_cnn14_clip *c);
const mm_frontend *mm_cnn14_clip_frontend(const mm_cnn14_clip *c);

/* Mono audio x (n samples at the front end's rate, n >= 1) → embedding
 * (embedding_dim) and scores (n_classes), either may be NULL. The whole clip
 * is one input, as PANNs' inference does; clips shorter than
 * MM_CNN14_MIN_FRAMES frames are zero-padded at the end to that many frames
 * (PANNs itself fails on them). n_threads as in mm_cnn14_forward. */
int mm_cnn14_clip_run(const mm_cnn14_clip *c, const float *x, size_t n, int n_threads,
                      float *embedding, float *scores, mm_err *err);

#endif
