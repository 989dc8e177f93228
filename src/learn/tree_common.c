/* tree_common.c — forest invariants for loaded models and a radix sort for
 * the split search (see tree_common.h). */
#include "learn/tree_common.h"

#include <string.h>

int mm_tree_check_forest(const int64_t *offsets, size_t n_trees, const int32_t *feature,
                         const int32_t *left, size_t n_nodes, size_t n_features,
                         const char *what, mm_err *err)
{
    if (n_trees == 0 || offsets[0] != 0 || (uint64_t)offsets[n_trees] != (uint64_t)n_nodes)
        return mm_err_set(err, MM_EFORMAT, "%s: tree offsets must run from 0 to %zu nodes", what, n_nodes);
    for (size_t t = 0; t < n_trees; t++) {
        int64_t a = offsets[t], b = offsets[t + 1];
        if (b <= a || b > (int64_t)n_nodes || b - a > INT32_MAX)
            return mm_err_set(err, MM_EFORMAT, "%s: tree %zu: bad node range [%lld, %lld)", what, t,
                              (long long)a, (long long)b);
        int64_t size = b - a;
        for (int64_t i = 0; i < size; i++) {
            int32_t f = feature[a + i], l = left[a + i];
            if (f == -1) continue;
            if (f < 0 || (size_t)f >= n_features)
                return mm_err_set(err, MM_EFORMAT, "%s: tree %zu node %lld: feature %d outside [0, %zu)",
                                  what, t, (long long)i, f, n_features);
            if (l <= i || (int64_t)l + 1 >= size)
                return mm_err_set(err, MM_EFORMAT, "%s: tree %zu node %lld: child %d outside (%lld, %lld)",
                                  what, t, (long long)i, l, (long long)i, (long long)size - 1);
        }
    }
    return 0;
}

void mm_tree_sort_keys(uint64_t *keys, uint64_t *tmp, size_t m, int code_bytes)
{
    if (m < 64) {
        for (size_t i = 1; i < m; i++) {
            uint64_t k = keys[i];
            size_t j = i;
            while (j > 0 && keys[j - 1] > k) { keys[j] = keys[j - 1]; j--; }
            keys[j] = k;
        }
        return;
    }
    uint64_t *src = keys, *dst = tmp;
    for (int b = 0; b < code_bytes; b++) {
        int sh = 32 + 8 * b;
        size_t cnt[256] = {0};
        for (size_t i = 0; i < m; i++) cnt[(src[i] >> sh) & 255]++;
        if (cnt[(src[0] >> sh) & 255] == m) continue;     /* byte constant: pass not needed */
        size_t sum = 0;
        for (int k = 0; k < 256; k++) { size_t c = cnt[k]; cnt[k] = sum; sum += c; }
        for (size_t i = 0; i < m; i++) dst[cnt[(src[i] >> sh) & 255]++] = src[i];
        uint64_t *t = src; src = dst; dst = t;
    }
    if (src != keys) memcpy(keys, src, m * sizeof *keys);
}
