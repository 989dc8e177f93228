/* frontend.h — the log-mel front ends that the pretrained backbones expect.
 *
 *  MM_FE_CNN14      PANNs Cnn14: 32 kHz, n_fft 1024, hop 320, 64 mels 50–14000 Hz,
 *                   periodic Hann, reflect-centred, slaney mel with slaney norm,
 *                   10·log10(max(x, 1e-10)).
 *  MM_FE_CNN14_16K  the same at 16 kHz, n_fft 512, hop 160, 64 mels 50–8000 Hz.
 *  MM_FE_MN04       EfficientAT: 32 kHz, pre-emphasis 0.97, n_fft 1024, window 800
 *                   (symmetric Hann centred), hop 320, 128 Kaldi mels 0–15000 Hz,
 *                   (log(x + 1e-5) + 4.5) / 5.
 * A front end is created once (plans, filterbanks) and then computes from
 * many threads at once.
 */
#ifndef MM_FRONTEND_H
#define MM_FRONTEND_H

#include <stddef.h>
#include "core/err.h"

typedef enum { MM_FE_CNN14 = 0, MM_FE_CNN14_16K = 1, MM_FE_MN04 = 2 } mm_frontend_kind;

typedef struct mm_frontend mm_frontend;

/* Parse "cnn14" | "cnn14_16k" | "mn04" (MM_EINVAL naming the value otherwise). */
int mm_frontend_kind_parse(const char *name, mm_frontend_kind *kind, mm_err *err);
const char *mm_frontend_kind_name(mm_frontend_kind kind);

/* Builds the filterbank and the FFT plan (plan creation is serialised internally, but
 * create/free are meant to be called from one thread). *out owned by the caller. */
int mm_frontend_create(mm_frontend_kind kind, mm_frontend **out, mm_err *err);
void mm_frontend_free(mm_frontend *fe);      /* NULL is a no-op */
int mm_frontend_sample_rate(const mm_frontend *fe);   /* input rate the front end expects */
int mm_frontend_n_mels(const mm_frontend *fe);
/* Frames for n_samples input samples (1 + n/hop; mn04: 1 + (n−1)/hop); 0 when none. */
size_t mm_frontend_n_frames(const mm_frontend *fe, size_t n_samples);
/* x: (n) mono samples at mm_frontend_sample_rate. out: caller-allocated (n_frames, n_mels)
 * log-mel, row-major. MM_EDATA when n is too short for one reflect-padded frame
 * (n <= n_fft/2, as torch refuses it). Thread-safe: many threads may share one front end. */
int mm_frontend_compute(const mm_frontend *fe, const float *x, size_t n, float *out,
                        mm_err *err);
/* Frames [t0, min(t1, n_frames)) of the same log-mel into out ((t1 − t0), n_mels): x and n
 * are the whole clip, so every frame equals mm_frontend_compute's (framing, padding and
 * pre-emphasis at the clip's ends included). Lets callers split one clip's frames over
 * threads. MM_EINVAL when t0 >= the clip's frame count. Thread-safe. */
int mm_frontend_compute_frames(const mm_frontend *fe, const float *x, size_t n, size_t t0,
                               size_t t1, float *out, mm_err *err);
/* Settings as "key=value" lines for HDF5 attributes (writes into buf). */
const char *mm_frontend_describe(const mm_frontend *fe, char *buf, size_t size);

#endif
