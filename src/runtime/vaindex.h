/* vaindex.h — tracks on the valence–arousal plane, enumerated best first.
 *
 * A uniform G × G grid over [-1, 1]² per group (the tracks' quadrants 1..4);
 * inside a cell the tracks are ordered by confidence, highest first. An
 * iterator returns the tracks of chosen groups in exactly decreasing
 * relevance  rel = −‖va − point‖ + w · confidence  (the recommender's
 * relevance before feedback) by a best-first search over cells keyed by an
 * upper bound (−min distance to the cell + w · its best confidence) — a
 * threshold algorithm, so a request touches the cells and tracks it needs,
 * not the library. The layout (order, cell starts) is plain arrays, written
 * into the library file and memory-mapped from it (library.c); the points
 * and confidences are also kept in layout order (va_ord, conf_ord, built
 * when the layout is checked) so that a walk reads memory sequentially.
 * Leaves out: updates in place (rebuild on re-indexing).
 */
#ifndef MM_VAINDEX_H
#define MM_VAINDEX_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "runtime/va.h"

#define MM_VAINDEX_GRID 32      /* cells per axis (default, up to 65,536 tracks) */
#define MM_VAINDEX_GROUPS 4     /* quadrants */

/* The index layout over n tracks: order (n) track indices grouped by
 * (group, cell) and by confidence descending (ties: lower index first) inside a
 * cell; cell_start (GROUPS·G·G + 1) offsets into order. Plain views: the
 * arrays may be owned by the caller or mapped from a file. */
typedef struct mm_vaindex {
    int grid;                   /* G */
    size_t n;
    const int32_t *order;       /* (n) */
    const int64_t *cell_start;  /* (GROUPS·G·G + 1) */
    const mm_va *va;            /* (n) track points */
    const float *conf;          /* (n) track confidences */
    const mm_va *va_ord;        /* (n) va[order[p]], or NULL (then read through order) */
    const float *conf_ord;      /* (n) conf[order[p]], or NULL */
} mm_vaindex;

/* The grid for n tracks: MM_VAINDEX_GRID, doubled (up to 256) while the
 * cells would hold more than 16 tracks on average — so that a walk's cell
 * bounds stay tight (a cell's diagonal is the slack of its bound). */
int mm_vaindex_grid_for(size_t n);
/* Build the layout into malloc'd arrays *order (n) and *cell_start
 * (GROUPS·grid² + 1) from points, confidences and groups (1..4). grid 1..1024.
 * Errors: a group outside 1..4 or a non-finite point (naming the track). */
int mm_vaindex_build(const mm_va *va, const float *conf, const int32_t *group, size_t n, int grid,
                     int32_t **order, int64_t **cell_start, mm_err *err);
/* Check a layout read from a file against n tracks: offsets monotone from 0
 * to n, every index in range and used once, cells and confidence order
 * consistent with va/conf/group. O(n); MM_EFORMAT naming what is wrong.
 * va_ord and conf_ord (n each, may be NULL) receive the points and
 * confidences in layout order (for x->va_ord, x->conf_ord). */
int mm_vaindex_check(const mm_vaindex *x, const int32_t *group, mm_va *va_ord, float *conf_ord, mm_err *err);
/* The range [*begin, *end) of positions in order holding group g's tracks. */
void mm_vaindex_group_range(const mm_vaindex *x, int g, size_t *begin, size_t *end);

/* One enumeration (not thread-safe; one per request). */
typedef struct mm_vaindex_iter {
    const mm_vaindex *x;
    mm_va point;
    double w;
    int has_disc;               /* only cells meeting the disc (centre, radius) */
    mm_va disc_centre;
    double disc_radius;
    struct mm_vaindex_entry *heap;   /* max-heap of cells and tracks */
    size_t n_heap, cap;
    size_t n_out;               /* tracks returned so far */
} mm_vaindex_iter;

/* Start enumerating the tracks of the groups in group_mask (bit g−1 for group g)
 * by decreasing −‖va − point‖ + w·confidence (w ≥ 0). disc_radius < 0: no
 * disc; else cells wholly outside the disc around disc_centre are skipped
 * (tracks of cells that meet it are still returned: the caller filters). */
int mm_vaindex_iter_init(mm_vaindex_iter *it, const mm_vaindex *x, mm_va point, double w,
                         unsigned group_mask, mm_va disc_centre, double disc_radius, mm_err *err);
/* Next track index, its relevance in *rel and its position in x->order in
 * *pos (either may be NULL); −1 when none is left (or out of memory). The
 * relevance is computed as −(double)mm_va_dist(va, point) + w·conf, bit for
 * bit what a caller computing it directly gets. */
long mm_vaindex_next(mm_vaindex_iter *it, double *rel, size_t *pos);
/* The track heap entry j points at (j = 0: the top, which the next
 * mm_vaindex_next returns unless a cell's next track ranks below another
 * entry; 1, 2: the top's children, likely soon after), or −1 when there is
 * no entry j; changes nothing (for prefetching). */
long mm_vaindex_peek(const mm_vaindex_iter *it, size_t j);
/* The group (1..4) of the track at position pos of x->order. */
int mm_vaindex_group_at(const mm_vaindex *x, size_t pos);
/* An upper bound of the relevance of every track not yet returned (−∞ when none). */
double mm_vaindex_bound(const mm_vaindex_iter *it);
void mm_vaindex_iter_free(mm_vaindex_iter *it);

#endif
