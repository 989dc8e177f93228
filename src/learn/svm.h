/* svm.h — C-support vector classification (LIBSVM's C-SVC) with Platt probabilities.
 *
 * SMO with Fan-Chen-Lin second-order working sets, shrinking and a kernel
 * cache, one-vs-one over classes, as LIBSVM 3.x (wrapped by scikit-learn's
 * SVC); probabilities from a sigmoid fitted on internal 5-fold CV decision
 * values, then pairwise coupling. Parameters carry sklearn's names and
 * defaults, except probability (true here). Left out: nu-SVC, SVR, one-class.
 */
#ifndef MM_SVM_H
#define MM_SVM_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"

enum { MM_SVM_LINEAR = 0, MM_SVM_POLY = 1, MM_SVM_RBF = 2, MM_SVM_SIGMOID = 3 };
enum { MM_SVM_GAMMA_SCALE = 0, MM_SVM_GAMMA_AUTO = 1, MM_SVM_GAMMA_VALUE = 2 };

typedef struct mm_svm_params {
    double C;              /* penalty, > 0 (1.0) */
    int kernel;            /* MM_SVM_* (rbf) */
    int gamma_mode;        /* scale: 1/(d·Var(X)); auto: 1/d; value: `gamma` (scale) */
    double gamma;          /* used when gamma_mode == MM_SVM_GAMMA_VALUE, > 0 */
    int degree;            /* poly degree, >= 0 (3) */
    double coef0;          /* poly/sigmoid offset (0) */
    double tol;            /* stopping tolerance on the maximal KKT violation, > 0 (1e-3) */
    int shrinking;         /* 1: shrink the active set (1) */
    int probability;       /* 1: fit Platt sigmoids by internal 5-fold CV (1) */
    double cache_size;     /* kernel cache per subproblem in MB, > 0 (200) */
    long max_iter;         /* SMO iterations per subproblem, -1 = LIBSVM's limit max(1e7, 100 l) (-1) */
    int class_weight_balanced; /* 1: C_c = C · n / (n_present_classes · n_c) (0) */
} mm_svm_params;

mm_svm_params mm_svm_params_default(void);
/* Read params from a config map (NULL → defaults). Keys: C, kernel, gamma,
 * degree, coef0, tol, shrinking, probability, cache_size, max_iter,
 * class_weight. Unknown keys and out-of-range values are errors naming the
 * file, line and key. */
int mm_svm_params_from_cfg(const mm_cfg *map, mm_svm_params *p, mm_err *err);

typedef struct mm_svm mm_svm;

/* Threading: training solves the one-vs-one pairs and cross-validation folds
 * in parallel on up to n_threads threads, each drawing from its own mm_rng
 * stream, so results do not depend on the thread count. A trained model is
 * read-only during prediction (concurrent predictions are safe). */

/* Train on X (n, d), y (n) in [0, n_classes). At least two classes must be
 * present; classes absent from y get probability 0. Refuses non-finite
 * features. *out owned by the caller (mm_svm_free). */
int mm_svm_train(const float *X, const int32_t *y, size_t n, size_t d, int n_classes,
                 const mm_svm_params *p, uint64_t seed, int n_threads, mm_svm **out,
                 mm_err *err);

/* Number of one-vs-one pairs = m(m-1)/2 over the m classes present in training. */
size_t mm_svm_n_pairs(const mm_svm *m);
/* dec (n, n_pairs): LIBSVM's one-vs-one decision values, pairs (a, b), a < b
 * over present classes in increasing order; positive means class a. (For two
 * classes scikit-learn's decision_function is the negation.) */
int mm_svm_decision(const mm_svm *m, const float *X, size_t n, size_t d, double *dec,
                    mm_err *err);
/* proba (n, n_classes): Platt + pairwise coupling when trained with
 * probability; otherwise the share of one-vs-one votes (rows still sum to 1). */
int mm_svm_predict_proba(const mm_svm *m, const float *X, size_t n, size_t d, float *proba,
                         mm_err *err);
/* LIBSVM's prediction: majority of one-vs-one votes, ties to the lower class. */
int mm_svm_predict(const mm_svm *m, const float *X, size_t n, size_t d, int32_t *label,
                   mm_err *err);

/* Support vectors in total; per_class (n_classes entries, may be NULL) gets
 * the count per class (scikit-learn's n_support_). */
size_t mm_svm_n_support(const mm_svm *m, int32_t *per_class);
/* Kernel coefficient actually used (after 'scale'/'auto'). */
double mm_svm_gamma(const mm_svm *m);
/* 1 when some subproblem stopped at max_iter before reaching tol. */
int mm_svm_hit_max_iter(const mm_svm *m);
/* Platt parameters (n_pairs each) or NULL without probability. */
const double *mm_svm_prob_a(const mm_svm *m);
const double *mm_svm_prob_b(const mm_svm *m);
/* Threads used by predictions of a loaded/trained model. */
void mm_svm_set_threads(mm_svm *m, int n_threads);

/* Save into an open (empty) group / load back, checking every size and value. */
int mm_svm_save(const mm_svm *m, hid_t group, mm_err *err);
int mm_svm_load(hid_t group, int n_threads, mm_svm **out, mm_err *err);
void mm_svm_free(mm_svm *m);

/* Exposed for tests: LIBSVM's sigmoid_train on (l) decision values and ±1
 * labels, and its multiclass_probability coupling of r (k, k) into p (k). */
void mm_svm_sigmoid_train(size_t l, const double *dec, const int8_t *label, double *A, double *B);
void mm_svm_couple(int k, const double *r, double *p);

#endif
