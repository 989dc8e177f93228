/* mel.h — mel filterbanks.
 *
 * Slaney/HTK filterbanks as librosa.filters.mel (and torchaudio's
 * melscale_fbanks with mel_scale='slaney', norm='slaney'); Kaldi filterbanks
 * as torchaudio.compliance.kaldi.get_mel_banks (used by EfficientAT).
 * Matrices are (n_mels, n_bins) row-major, n_bins = n_fft/2 + 1.
 */
#ifndef MM_MEL_H
#define MM_MEL_H

#include "core/err.h"

/* htk: 0 = Slaney mel scale (librosa default), 1 = HTK. norm_slaney: 1 = area
 * normalisation 2/(f[m+2]-f[m]), 0 = none. *fb (n_mels × (n_fft/2+1)) is malloc'd and
 * owned by the caller (free()); written only on success. Requires 0 <= fmin < fmax <= sr/2
 * (MM_EINVAL otherwise). Pure function: thread-safe. */
int mm_mel_filterbank(int sr, int n_fft, int n_mels, double fmin, double fmax, int htk,
                      int norm_slaney, float **fb, mm_err *err);
/* Kaldi triangular banks in the mel domain (1127 ln(1 + f/700)), computed on
 * n_fft/2 bins as torchaudio does, with a zero column appended for Nyquist (as EfficientAT
 * pads it), so the matrix is n_mels × (n_fft/2+1) like the slaney one. No VTLN warping.
 * Same ownership, argument checks and thread-safety as above. */
int mm_mel_filterbank_kaldi(int sr, int n_fft, int n_mels, double fmin, double fmax,
                            float **fb, mm_err *err);

#endif
