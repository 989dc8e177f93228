/* level.h — how loud a clip is, and scaling it to a target level without clipping.
 *
 * Two measures of a mono float signal (full scale is 1):
 *   - integrated loudness, ITU-R BS.1770-4 / EBU R128, in LUFS: K-weighting (the standard's
 *     high shelf + RLB high-pass, derived for the signal's sample rate by the bilinear
 *     transform as libebur128 does; at 48 kHz they are the standard's table coefficients),
 *     400 ms blocks every 100 ms, absolute gate −70 LUFS, relative gate −10 LU;
 *   - voiced RMS in dBFS: RMS over the samples of the frames whose RMS is within top_db of the
 *     loudest frame (librosa.effects.trim's rule, applied inside the clip as well as at its ends).
 * mm_level_normalize scales a signal to a target in either measure under a sample-peak limit.
 * All functions are pure and thread-safe; inputs are never modified.
 */
#ifndef MM_LEVEL_H
#define MM_LEVEL_H

#include <stddef.h>
#include "core/err.h"

/* The standard's block: 400 ms, a new block every 100 ms (75 % overlap). */
#define MM_LEVEL_BLOCK_SECONDS 0.4
#define MM_LEVEL_ABS_GATE_LUFS (-70.0)
#define MM_LEVEL_REL_GATE_LU (-10.0)

/* Integrated loudness of x (n samples at sr Hz) in LUFS.
 * Blocks are 4·round(sr/10) samples starting every round(sr/10) (exactly 400/100 ms at every
 * rate that is a multiple of 10 Hz); only complete blocks count. *lufs = -INFINITY when no
 * block passes the absolute gate (silence). Errors (MM_EINVAL): sr outside 8000..1000000,
 * x NULL with n > 0, or fewer samples than one block (the value names n and the block). */
int mm_level_loudness(const float *x, size_t n, int sr, double *lufs, mm_err *err);

/* RMS of the voiced part in dBFS (a full-scale sine is −3.01). Frames of `frame` samples every
 * `hop` (0, 0 = 25 ms every 10 ms, the usual speech frames), starting at 0, the last one cut
 * at n; a frame is voiced when 20·log10(rms / max rms) >
 * −top_db (top_db 0 = 40). The result is the RMS over every sample inside a voiced frame.
 * *dbfs = -INFINITY for an all-zero signal. Errors: n == 0, top_db outside 1..120, a frame
 * shorter than a hop. */
int mm_level_voiced_rms(const float *x, size_t n, int sr, double top_db, int frame, int hop,
                        double *dbfs, mm_err *err);

typedef enum { MM_LEVEL_LUFS = 0, MM_LEVEL_RMS = 1 } mm_level_measure;

typedef struct mm_level_params {
    mm_level_measure measure;   /* what `target` is: integrated loudness or voiced RMS */
    double target;              /* LUFS (−23, EBU R128) or dBFS (voiced RMS); −70..0 */
    double peak_limit_dbfs;     /* the output's sample peak never exceeds this (−1); −20..0 */
    double top_db;              /* voiced-RMS threshold (40), MM_LEVEL_RMS only; 1..120 */
} mm_level_params;

void mm_level_params_default(mm_level_params *p);   /* LUFS, −23, −1 dBFS, top_db 40 */

/* What mm_level_normalize did. */
typedef struct mm_level_report {
    double measured;      /* input level in the chosen measure (LUFS or dBFS) */
    double gain_db;       /* gain applied */
    double wanted_db;     /* gain that would have reached the target */
    double peak_dbfs;     /* output sample peak */
    int limited;          /* 1 when the peak limit lowered the gain (gain_db < wanted_db) */
} mm_level_report;

/* The sample peak max |x[i]| of n floats (0 for n = 0; NaNs are skipped). */
float mm_level_peak_abs(const float *x, size_t n);

/* y[i] = x[i]·10^(gain_db/20), gain_db = min(target − measured, peak_limit − peak(x)), so
 * the output reaches the target unless that would push its sample peak above the limit;
 * then the gain is capped and rep->limited = 1 (nothing is ever clipped). *y (n floats,
 * malloc'd, caller frees) and *rep are written only on success; rep may be NULL.
 * Errors: parameters out of range (one line naming the parameter, value and range), a
 * silent signal (no level to scale), the errors of the measures above. Scaling x by any
 * gain gives the same output within float rounding, except where the −70 LUFS absolute
 * gate (a fixed level, by the standard's design) admits different blocks. */
int mm_level_normalize(const float *x, size_t n, int sr, const mm_level_params *p, float **y,
                       mm_level_report *rep, mm_err *err);

#endif
