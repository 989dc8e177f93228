/* npcompat.c — NumPy 1.24 pairwise summation and argsort orders (see
 * npcompat.h). Re-implemented from the algorithms' description; checked
 * against NumPy itself by tests/test_splits.c (fixture eval_splits.h5).
 */
#include "eval/npcompat.h"

#include <stdlib.h>
#include <string.h>

double mm_np_pairwise_sum(const double *x, size_t n)
{
    if (n < 8) {
        double s = 0.0;    /* NumPy starts the reduction from the identity 0 */
        for (size_t i = 0; i < n; i++) s += x[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = x[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += x[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += x[i];
        return s;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return mm_np_pairwise_sum(x, n2) + mm_np_pairwise_sum(x + n2, n - n2);
}

static void swap_idx(size_t *a, size_t *b)
{
    size_t t = *a;
    *a = *b;
    *b = t;
}

/* NumPy aheapsort_ on idx[0..n), 1-based heap indexing. */
static void heapsort_idx(const int64_t *v, size_t *idx, size_t n)
{
    size_t *a = idx - 1;
    size_t i, j, l, tmp;
    for (l = n >> 1; l > 0; --l) {
        tmp = a[l];
        for (i = l, j = l << 1; j <= n;) {
            if (j < n && v[a[j]] < v[a[j + 1]]) j += 1;
            if (v[tmp] < v[a[j]]) {
                a[i] = a[j];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        a[i] = tmp;
    }
    for (; n > 1;) {
        tmp = a[n];
        a[n] = a[1];
        n -= 1;
        for (i = 1, j = 2; j <= n;) {
            if (j < n && v[a[j]] < v[a[j + 1]]) j++;
            if (v[tmp] < v[a[j]]) {
                a[i] = a[j];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        a[i] = tmp;
    }
}

void mm_np_argsort_quick_i64(const int64_t *v, size_t n, size_t *idx)
{
    for (size_t i = 0; i < n; i++) idx[i] = i;
    if (n < 2) return;
    enum { SMALL = 15, STACK = 128 };
    size_t *pl = idx, *pr = idx + n - 1;
    size_t *stack[STACK], **sp = stack;
    int depth[STACK / 2], *dp = depth;
    int msb = 0;
    for (size_t u = n; u >>= 1;) msb++;
    int cdepth = msb * 2;
    for (;;) {
        if (cdepth < 0) {
            heapsort_idx(v, pl, (size_t)(pr - pl) + 1);
            goto pop;
        }
        while (pr - pl > SMALL) {
            size_t *pm = pl + ((pr - pl) >> 1);
            if (v[*pm] < v[*pl]) swap_idx(pm, pl);
            if (v[*pr] < v[*pm]) swap_idx(pr, pm);
            if (v[*pm] < v[*pl]) swap_idx(pm, pl);
            int64_t vp = v[*pm];
            size_t *pi = pl, *pj = pr - 1;
            swap_idx(pm, pj);
            for (;;) {
                do ++pi; while (v[*pi] < vp);
                do --pj; while (vp < v[*pj]);
                if (pi >= pj) break;
                swap_idx(pi, pj);
            }
            swap_idx(pi, pr - 1);
            /* the larger part goes on the stack */
            if (pi - pl < pr - pi) {
                *sp++ = pi + 1;
                *sp++ = pr;
                pr = pi - 1;
            } else {
                *sp++ = pl;
                *sp++ = pi - 1;
                pl = pi + 1;
            }
            *dp++ = --cdepth;
        }
        for (size_t *pi = pl + 1; pi <= pr; ++pi) {    /* insertion sort */
            size_t vi = *pi;
            int64_t x = v[vi];
            size_t *pj = pi, *pk = pi - 1;
            while (pj > pl && x < v[*pk]) *pj-- = *pk--;
            *pj = vi;
        }
    pop:
        if (sp == stack) break;
        pr = *(--sp);
        pl = *(--sp);
        cdepth = *(--dp);
    }
}

static void merge_stable(const double *v, size_t *a, size_t *tmp, size_t n)
{
    if (n < 2) return;
    size_t h = n / 2;
    merge_stable(v, a, tmp, h);
    merge_stable(v, a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = (v[a[j]] < v[a[i]]) ? a[j++] : a[i++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

void mm_np_argsort_stable_f64(const double *v, size_t n, size_t *idx)
{
    for (size_t i = 0; i < n; i++) idx[i] = i;
    size_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (tmp) {
        merge_stable(v, idx, tmp, n);
        free(tmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {    /* out of memory: stable insertion sort */
        size_t x = idx[i], j = i;
        while (j > 0 && v[x] < v[idx[j - 1]]) { idx[j] = idx[j - 1]; j--; }
        idx[j] = x;
    }
}
