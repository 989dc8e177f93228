/* logreg.h — multinomial logistic regression with an L2 penalty, fitted by L-BFGS.
 *
 * Matches scikit-learn 1.2 LogisticRegression(penalty='l2', solver='lbfgs',
 * multi_class='multinomial'): minimise sum_i s_i CE(softmax(W x_i + b), y_i)
 * + ||W||^2 / (2C) (intercept not penalised; s_i = 1 or the 'balanced' class
 * weight), with K weight vectors even for two classes, stopped like scipy's
 * L-BFGS-B (max |grad| <= tol, or relative decrease <= ftol, or max_iter).
 * Two classes: softmax over (w0, w1) with both penalised, which is the
 * binomial model w = w1 - w0 at 2C (sklearn's default multi_class='auto'
 * fits the binomial one at C, so use C/2 here to reproduce that).
 * Left out: L1/elastic-net penalties, one-vs-rest, other solvers, warm start,
 * class-weight maps (only 'balanced'), user sample weights.
 */
#ifndef MM_LOGREG_H
#define MM_LOGREG_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"

typedef struct mm_logreg_params {
    double C;                  /* inverse penalty strength, finite > 0 (1.0) */
    long max_iter;             /* L-BFGS iterations, >= 1 (100, sklearn's default) */
    double tol;                /* stop when max |gradient| <= tol, >= 0 (1e-4; scipy's gtol) */
    double ftol;               /* stop when (f_old - f) <= ftol * max(|f_old|, |f|, 1), >= 0
                                * (2.220446049250313e-09, scipy's L-BFGS-B default; not a
                                * config key: sklearn does not expose it either) */
    int fit_intercept;         /* 1: learn an unpenalised bias per class (1) */
    int class_weight_balanced; /* 1: s_i = n / (n_present_classes * n_{y_i}) (0) */
} mm_logreg_params;

mm_logreg_params mm_logreg_params_default(void);

/* Read params from a config map (NULL → defaults). Keys: C, max_iter, tol,
 * fit_intercept, class_weight (balanced | none). Unknown keys and bad values
 * are errors naming the file, line, key and value. */
int mm_logreg_params_from_cfg(const mm_cfg *map, mm_logreg_params *out, mm_err *err);

typedef struct mm_logreg mm_logreg;

/* Fit on X (n, d) row-major float32 with labels y in [0, n_classes). Classes
 * absent from y are left out of the fit (as scikit-learn, which only knows
 * the labels it saw) and get probability 0. Needs >= 2 present classes and
 * finite X. Uses up to n_threads OpenMP threads; the result is bit-identical
 * for any n_threads. *out (caller frees with mm_logreg_free) written only on
 * success; stopping at max_iter is not an error (see mm_logreg_converged). */
int mm_logreg_train(const float *X, const int32_t *y, size_t n, size_t d, int n_classes,
                    const mm_logreg_params *p, int n_threads, mm_logreg **out, mm_err *err);

/* proba (n, n_classes): softmax rows; d must equal the fitted feature count.
 * Read-only on m: safe to call concurrently. */
int mm_logreg_predict_proba(const mm_logreg *m, const float *X, size_t n, size_t d, float *proba,
                            mm_err *err);

/* Accessors on a fitted model (pointers owned by m). */
int mm_logreg_n_present(const mm_logreg *m);          /* K: classes in the fit */
const int32_t *mm_logreg_classes(const mm_logreg *m); /* (K) their labels, increasing */
const double *mm_logreg_coef(const mm_logreg *m);     /* (K, d) row-major */
const double *mm_logreg_intercept(const mm_logreg *m);/* (K), zeros without intercept */
long mm_logreg_n_iter(const mm_logreg *m);            /* L-BFGS iterations done */
int mm_logreg_converged(const mm_logreg *m);          /* 1: tol or ftol met; 0: max_iter or line search */
double mm_logreg_objective_value(const mm_logreg *m); /* objective at the solution */
/* Mean weighted cross-entropy after each iteration, (n_iter + 1) values from
 * the starting point; *n receives the count. */
const float *mm_logreg_loss_history(const mm_logreg *m, size_t *n);
void mm_logreg_set_threads(mm_logreg *m, int n_threads);
void mm_logreg_free(mm_logreg *m);

/* The objective and its gradient at w (K, d + fit_intercept) row-major (row
 * k: coef_k then intercept_k), for labels y in [0, K), per-row weights sw
 * (NULL → 1), penalty 1/C on the coefficients only. grad (same shape as w)
 * may be NULL. Same code and summation order as the fit (exposed for tests
 * and finite-difference checks). */
int mm_logreg_objective(const float *X, const int32_t *y, const double *sw, size_t n, size_t d,
                        int K, double C, int fit_intercept, const double *w, double *obj,
                        double *grad, int n_threads, mm_err *err);

/* Write the fitted model into an (empty) HDF5 group / read it back; load
 * checks every shape and value (corrupt files → MM_EFORMAT). */
int mm_logreg_save(const mm_logreg *m, hid_t group, mm_err *err);
int mm_logreg_load(hid_t group, int n_threads, mm_logreg **out, mm_err *err);

#endif
