/* mobilenet.h — EfficientAT's AudioSet MobileNetV3 "mn04_as" (width 0.4), inference only.
 *
 * Reference: Schmid, Koutini & Widmer, ICASSP 2023, and fschmid56/EfficientAT
 * (models/mn/model.py, block_types.py; se_dims 'c', se_agg max, se_r 4, head
 * 'mlp', strides 2,2,2,2, no dilation). Input: the MM_FE_MN04 log-mel
 * (frames, 128). Outputs: the 384-d embedding (mean over frequency and time
 * of features.16's output, what the authors return as `features`) and the
 * 527 AudioSet scores (sigmoid of classifier.5's logits). Batch norms are
 * folded into the convolutions at load time. Leaves out: training, other
 * widths, the attention and fully-convolutional heads.
 *
 * Any length: clips too short for the front end are zero-padded to 1025
 * samples; clips of up to MM_MOBILENET_WINDOW frames (30 s) run in one pass,
 * longer ones stream through windows of at most that many frames (each
 * window's log-mel computed from its samples plus 640 samples of context, so
 * frames are those of the whole clip), their pooled feature maps averaged
 * with weights proportional to their time extent before the classifier.
 * Memory is thus bounded by one 30 s window's activations (about 40 MB).
 */
#ifndef MM_MOBILENET_H
#define MM_MOBILENET_H

#include <stddef.h>
#include "core/err.h"

#define MM_MOBILENET_N_MELS 128
#define MM_MOBILENET_EMB 384
#define MM_MOBILENET_CLASSES 527
#define MM_MOBILENET_SR 32000
#define MM_MOBILENET_WINDOW 3000   /* frames per pass (30 s at hop 320) */

typedef struct mm_mobilenet mm_mobilenet;   /* weights + front end, read-only after load */

/* Load mn04 weights from an EfficientAT checkpoint (PyTorch zip format, top
 * object the state dict). Every tensor's shape is checked against the
 * architecture; missing or unexpected tensors are errors naming them.
 * *out set only on success; free with mm_mobilenet_free (NULL is a no-op).
 * A loaded model may be used from many threads at once. */
int mm_mobilenet_load(const char *path, mm_mobilenet **out, mm_err *err);
void mm_mobilenet_free(mm_mobilenet *m);

/* Network on a log-mel: mel (n_frames, 128) frame-major, n_frames >= 1.
 * pooled (384): mean over (freq, time) of the last feature map; *t_out (may
 * be NULL) receives that map's time extent. With AVX-512 (nn/mn_kern.h) the
 * network runs on the calling thread whatever `parallel` says (its layers are
 * too small to share); without it, parallel != 0 splits the depthwise
 * channels over OpenMP threads (pass 0 inside a parallel region). Results are
 * identical either way. Allocates activations per call. */
int mm_mobilenet_pool(const mm_mobilenet *m, const float *mel, size_t n_frames, float *pooled,
                      size_t *t_out, int parallel, mm_err *err);

/* Per-thread default for the parallel argument: while on != 0, calls made from this thread
 * run as if parallel = 1 had been passed (the same results). For callers that reach the
 * network through layers that pass parallel = 0 (the feature set): the server turns it on
 * while it has a single request in flight, so that an idle machine's cores serve that
 * request. Thread-local; off by default; no effect inside an OpenMP parallel region. */
void mm_mobilenet_set_thread_parallel(int on);

/* Classifier head: pooled (384) → scores (527, sigmoid); logits (527) may be NULL. */
void mm_mobilenet_head(const mm_mobilenet *m, const float *pooled, float *scores, float *logits);

/* Whole pipeline from mono audio x (n samples at 32 kHz): front end, windows
 * as described above, network, head. emb (384) and scores (527) may each be
 * NULL. Errors on n == 0 or non-finite output. parallel != 0 (or the thread
 * default below) shares the front end's frames, in items of 32, with the
 * helper threads of nn/par.h — the caller never waits for a helper to start,
 * and a busy machine makes it run alone — with identical results; ignored
 * inside an OpenMP parallel region (callers there parallelise over clips). */
int mm_mobilenet_embed_audio(const mm_mobilenet *m, const float *x, size_t n, float *emb,
                             float *scores, int parallel, mm_err *err);

/* Layer statistics ("mn04_layers"): for each of features.2 .. features.16
 * (the outputs of blocks 2–15 and of the final 1x1 conv), the mean over
 * frequency of each channel, then its mean and standard deviation over time
 * (n − 1 denominator as torch.std; 0 when the time extent is 1), laid out
 * per layer as [means (c), stds (c)]. Streaming windows as for embed_audio,
 * pooled exactly (sums over all windows' frames). layers receives
 * mm_mobilenet_layer_dim(m) values (1760 for mn04). Errors as embed_audio. */
size_t mm_mobilenet_layer_dim(const mm_mobilenet *m);
/* Channels of features.<layer> (layer 0 stem, 1..15 blocks, 16 last conv); 0 outside. */
size_t mm_mobilenet_layer_channels(const mm_mobilenet *m, int layer);
/* The same statistics from one log-mel (n_frames, 128), no windows. */
int mm_mobilenet_layers_mel(const mm_mobilenet *m, const float *mel, size_t n_frames,
                            float *layers, int parallel, mm_err *err);
int mm_mobilenet_layers_audio(const mm_mobilenet *m, const float *x, size_t n, float *layers,
                              int parallel, mm_err *err);

/* A transform of each log-mel window before the network (training-time
 * SpecAugment masks, features/mn04_embedding.c): mel is (frames, 128) row-major
 * as the front end writes it and may be changed in place; win counts the
 * clip's windows from 0. Non-zero return: the error of the whole call. */
typedef int (*mm_mel_hook)(void *ctx, size_t win, float *mel, size_t frames, size_t bins, mm_err *err);
/* embed_audio / layers_audio (whichever of emb, layers is non-NULL) with `hook`
 * run on each window's log-mel; hook NULL: the same values as those. */
int mm_mobilenet_audio_hooked(const mm_mobilenet *m, const float *x, size_t n, float *emb, float *layers,
                              mm_mel_hook hook, void *hook_ctx, int parallel, mm_err *err);

#endif
