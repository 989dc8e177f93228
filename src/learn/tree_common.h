/* tree_common.h — helpers shared by the random forest and gradient boosting.
 *
 * Both learners store a forest as flat node arrays, one block of nodes per
 * tree, where an internal node's children are `left` and `left + 1` and
 * always come after their parent, so any traversal ends. This module checks
 * those invariants on arrays read from a file (so a corrupt model gives an
 * error, never an out-of-range read or an endless loop), parses the shared
 * hyperparameter shapes and sorts keys. Nothing here allocates global state.
 */
#ifndef MM_TREE_COMMON_H
#define MM_TREE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

/* Check one forest loaded from `file_what` (named in messages):
 * offsets (n_trees + 1) must start at 0, increase strictly and end at
 * n_nodes; in tree t with nodes [offsets[t], offsets[t+1]) and local index i,
 * an internal node (feature[i] >= 0) needs feature < n_features and
 * i < left[i], left[i] + 1 < tree size (children local to the tree); a leaf has
 * feature == -1. `left` holds tree-local indices. Returns 0 or MM_EFORMAT. */
int mm_tree_check_forest(const int64_t *offsets, size_t n_trees, const int32_t *feature,
                         const int32_t *left, size_t n_nodes, size_t n_features,
                         const char *file_what, mm_err *err);

/* Sort m keys of the form (code << 32 | payload) ascending by code, where
 * code < 2^(8 * code_bytes): an LSD radix sort over the code bytes, or an
 * insertion sort on the whole key when m is small. tmp holds m keys.
 * Equal codes stay grouped; their payload order is unspecified. */
void mm_tree_sort_keys(uint64_t *keys, uint64_t *tmp, size_t m, int code_bytes);

/* A float mapped to an unsigned integer with the same order (-0 == +0;
 * NaN excluded by the callers). */
static inline uint32_t mm_tree_float_key(float x)
{
    union { float f; uint32_t u; } v = {.f = x == 0.0f ? 0.0f : x};
    return (v.u & 0x80000000u) ? ~v.u : (v.u | 0x80000000u);
}

#endif
