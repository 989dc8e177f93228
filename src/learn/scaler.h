/* scaler.h — standardisation of feature columns (z = (x - mean) / scale).
 *
 * Matches scikit-learn's StandardScaler (with_mean, with_std): population
 * variance accumulated in double, scale = sqrt(var), and columns that are
 * constant (var at rounding level, sklearn's _is_constant_feature test) get
 * scale 1. Fitted on training data only; applied to any later data.
 * Thread-safety: a fitted scaler is read-only; transforms may run concurrently.
 */
#ifndef MM_SCALER_H
#define MM_SCALER_H

#include <hdf5.h>
#include <stddef.h>
#include "core/err.h"

typedef struct mm_scaler mm_scaler;

/* Fit on X (n, d) row-major. Refuses n == 0, d == 0 and non-finite values.
 * *out is owned by the caller (mm_scaler_free). */
int mm_scaler_fit(const float *X, size_t n, size_t d, mm_scaler **out, mm_err *err);

/* Number of features the scaler was fitted on. */
size_t mm_scaler_dim(const mm_scaler *s);
/* (d) per-column mean and scale; pointers owned by the scaler. */
const double *mm_scaler_mean(const mm_scaler *s);
const double *mm_scaler_scale(const mm_scaler *s);

/* Standardise X (n, d) in place; d must equal mm_scaler_dim (else MM_EINVAL). */
int mm_scaler_transform(const mm_scaler *s, float *X, size_t n, size_t d, mm_err *err);
/* Same, writing to out (n, d); X and out may alias. */
int mm_scaler_transform_to(const mm_scaler *s, const float *X, size_t n, size_t d, float *out,
                           mm_err *err);
/* Undo the transform in place (x = z * scale + mean). */
int mm_scaler_inverse(const mm_scaler *s, float *X, size_t n, size_t d, mm_err *err);

/* Write datasets "mean" and "scale" (float64, (d)) and attribute kind=standard_scaler
 * into an open group; load checks the kind, matching lengths, finite values and
 * positive scales. *out owned by the caller. */
int mm_scaler_save(const mm_scaler *s, hid_t group, mm_err *err);
int mm_scaler_load(hid_t group, mm_scaler **out, mm_err *err);

/* NULL is a no-op. */
void mm_scaler_free(mm_scaler *s);

#endif
