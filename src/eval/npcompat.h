/* npcompat.h — NumPy 1.24 numerics whose rounding or tie order sklearn's
 * results depend on: pairwise summation (np.sum/mean/std along a contiguous
 * axis), np.argsort's default introsort (unstable: GroupKFold's order for
 * equal group sizes) and stable mergesort. Reference: numpy/core/src/umath/
 * loops_utils.h, npysort/quicksort.cpp, heapsort.cpp. Leaves out the AVX-512
 * sorts of NumPy >= 1.25 and other dtypes.
 */
#ifndef MM_NPCOMPAT_H
#define MM_NPCOMPAT_H

#include <stddef.h>
#include <stdint.h>

/* np.add.reduce of x[0..n) (stride 1) as NumPy does it: 8-way unrolled
 * blocks of up to 128 values, halves above that. Pure, thread-safe. */
double mm_np_pairwise_sum(const double *x, size_t n);

/* idx[0..n) = np.argsort(v) with the default kind ('quicksort', an
 * introsort: median-of-3 partitions, insertion sort below 16, heapsort past
 * the depth limit). idx is fully written; v untouched. */
void mm_np_argsort_quick_i64(const int64_t *v, size_t n, size_t *idx);

/* idx[0..n) = np.argsort(v, kind='mergesort') (stable ascending). NaNs are
 * not expected. */
void mm_np_argsort_stable_f64(const double *v, size_t n, size_t *idx);

#endif
