/* stft.h — short-time Fourier transform on FFTW3 (single precision).
 *
 * Frames follow torch.stft / librosa: with center=1 the signal is padded by
 * n_fft/2 on both sides (reflect or constant), frame t starts at t*hop of
 * the padded signal, n_frames = 1 + (n_padded - n_fft) / hop. The window has
 * n_fft values (a shorter window is zero-padded centred, as torch does).
 * Plans are made once in mm_stft_create (not thread-safe: call from one
 * thread); mm_stft_power/magnitude are thread-safe (new-array execute).
 */
#ifndef MM_STFT_H
#define MM_STFT_H

#include <stddef.h>
#include "core/err.h"

typedef enum { MM_PAD_REFLECT = 0, MM_PAD_CONSTANT = 1 } mm_pad_mode;

typedef struct mm_stft mm_stft;

/* window: n_fft values, or NULL for a periodic Hann of length n_fft. */
int mm_stft_create(int n_fft, int hop, const float *window, int center, mm_pad_mode pad,
                   mm_stft **out, mm_err *err);
void mm_stft_free(mm_stft *s);
int mm_stft_n_fft(const mm_stft *s);
int mm_stft_n_bins(const mm_stft *s);                /* n_fft/2 + 1 */
size_t mm_stft_n_frames(const mm_stft *s, size_t n);  /* 0 if n is too short (no center) */
/* out: (n_frames, n_bins) |X|^2 (power) or |X| (magnitude). Errors (MM_EDATA) when n
 * gives no frame, or with reflect padding when n <= n_fft/2 (torch refuses it too). */
int mm_stft_power(const mm_stft *s, const float *x, size_t n, float *out, mm_err *err);
int mm_stft_magnitude(const mm_stft *s, const float *x, size_t n, float *out, mm_err *err);
/* Frames [t0, min(t1, n_frames)) only, into out ((t1 − t0), n_bins) power: lets callers
 * stream through a long signal with a small buffer. t0 must be < n_frames. Thread-safe. */
int mm_stft_power_frames(const mm_stft *s, const float *x, size_t n, size_t t0, size_t t1,
                         float *out, mm_err *err);

/* Hann window of length n: periodic (torch default, librosa 'hann') or symmetric. */
void mm_window_hann(float *w, int n, int periodic);

#endif
