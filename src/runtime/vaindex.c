/* vaindex.c — best-first enumeration of tracks by valence–arousal relevance.
 *
 * Grid per quadrant, tracks sorted by confidence inside each cell; a
 * max-heap holds cells (key: an upper bound of their remaining tracks,
 * −mindist(point, cell) + w·confidence of the cell's next track) and
 * expanded tracks (key: their exact relevance). A track popped is the best
 * of all that remain (Fagin's threshold algorithm on one grid). Exact up to
 * the float rounding of mm_va_dist, which the bound allows for (1e-6).
 */
#include "runtime/vaindex.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 16 bytes, so that a heap of every cell of a quadrant at 1M tracks (16,384
 * cells at grid 128) stays in L2; a cell's end is cell_start[cell + 1].
 * Positions fit: n ≤ 2^31 (order holds int32 track indices, each once). */
typedef struct mm_vaindex_entry {
    double key;
    uint32_t pos;       /* cell: next position in order; track: its position in order */
    int32_t cell;       /* cell id, or −1 for a track entry */
} entry;

static int cell_of(mm_va p, int g, int grid)
{
    int cx = (int)floor(((double)p.valence + 1.0) * 0.5 * grid);
    int cy = (int)floor(((double)p.arousal + 1.0) * 0.5 * grid);
    cx = cx < 0 ? 0 : cx >= grid ? grid - 1 : cx;
    cy = cy < 0 ? 0 : cy >= grid ? grid - 1 : cy;
    return ((g - 1) * grid + cy) * grid + cx;
}

typedef struct sort_ctx {
    const int32_t *key;
    const float *conf;
} sort_ctx;

static int cmp_track(const void *a, const void *b, void *vctx)
{
    const sort_ctx *c = vctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (c->key[i] != c->key[j]) return c->key[i] < c->key[j] ? -1 : 1;
    if (c->conf[i] != c->conf[j]) return c->conf[i] > c->conf[j] ? -1 : 1;
    return (i > j) - (i < j);
}

int mm_vaindex_grid_for(size_t n)
{
    int g = MM_VAINDEX_GRID;
    while (g < 256 && n > (size_t)16 * MM_VAINDEX_GROUPS * g * g) g *= 2;
    return g;
}

int mm_vaindex_build(const mm_va *va, const float *conf, const int32_t *group, size_t n, int grid,
                     int32_t **order_out, int64_t **start_out, mm_err *err)
{
    if (grid < 1 || grid > 1024) return mm_err_set(err, MM_EINVAL, "va index: grid %d, expected 1..1024", grid);
    if (n > INT32_MAX) return mm_err_set(err, MM_EINVAL, "va index: %zu tracks, at most %d", n, INT32_MAX);
    size_t n_cells = (size_t)MM_VAINDEX_GROUPS * grid * grid;
    int32_t *order = mm_malloc(n ? n : 1, sizeof *order, err);
    int32_t *key = mm_malloc(n ? n : 1, sizeof *key, err);
    int64_t *start = mm_calloc(n_cells + 1, sizeof *start, err);
    if (!order || !key || !start) { free(order); free(key); free(start); return MM_ENOMEM; }
    for (size_t i = 0; i < n; i++) {
        if (group[i] < 1 || group[i] > MM_VAINDEX_GROUPS || !isfinite(va[i].valence) || !isfinite(va[i].arousal) ||
            !isfinite(conf[i])) {
            free(order); free(key); free(start);
            return mm_err_set(err, MM_EINVAL, "va index: track %zu: quadrant %d, point (%g, %g), confidence %g",
                              i, (int)group[i], (double)va[i].valence, (double)va[i].arousal, (double)conf[i]);
        }
        key[i] = cell_of(va[i], group[i], grid);
        order[i] = (int32_t)i;
        start[key[i] + 1]++;
    }
    for (size_t c = 0; c < n_cells; c++) start[c + 1] += start[c];
    sort_ctx ctx = {key, conf};
    qsort_r(order, n, sizeof *order, cmp_track, &ctx);
    free(key);
    *order_out = order;
    *start_out = start;
    return 0;
}

int mm_vaindex_check(const mm_vaindex *x, const int32_t *group, mm_va *va_ord, float *conf_ord, mm_err *err)
{
    int grid = x->grid;
    if (grid < 1 || grid > 1024) return mm_err_set(err, MM_EFORMAT, "va index: grid %d, expected 1..1024", grid);
    size_t n_cells = (size_t)MM_VAINDEX_GROUPS * grid * grid;
    if (x->cell_start[0] != 0 || x->cell_start[n_cells] != (int64_t)x->n)
        return mm_err_set(err, MM_EFORMAT, "va index: cell offsets run from %lld to %lld, expected 0 to %zu",
                          (long long)x->cell_start[0], (long long)x->cell_start[n_cells], x->n);
    uint8_t *seen = calloc(x->n ? x->n : 1, 1);
    if (!seen) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t c = 0; c < n_cells && !rc; c++) {
        int64_t a = x->cell_start[c], b = x->cell_start[c + 1];
        if (b < a) { rc = mm_err_set(err, MM_EFORMAT, "va index: cell %zu ends before it starts", c); break; }
        for (int64_t p = a; p < b; p++) {
            int32_t t = x->order[p];
            if (t < 0 || (size_t)t >= x->n || seen[t]) {
                rc = mm_err_set(err, MM_EFORMAT, "va index: entry %lld is track %d (out of range or repeated)", (long long)p, (int)t);
                break;
            }
            seen[t] = 1;
            if (va_ord) va_ord[p] = x->va[t];
            if (conf_ord) conf_ord[p] = x->conf[t];
            if (group[t] < 1 || group[t] > MM_VAINDEX_GROUPS || (size_t)cell_of(x->va[t], group[t], grid) != c ||
                (p > a && !(x->conf[x->order[p - 1]] >= x->conf[t]))) {
                rc = mm_err_set(err, MM_EFORMAT, "va index: track %d is in the wrong cell or out of confidence order", (int)t);
                break;
            }
        }
    }
    free(seen);
    return rc;
}

void mm_vaindex_group_range(const mm_vaindex *x, int g, size_t *begin, size_t *end)
{
    size_t g2 = (size_t)x->grid * x->grid;
    *begin = *end = 0;
    if (g < 1 || g > MM_VAINDEX_GROUPS) return;
    *begin = (size_t)x->cell_start[(size_t)(g - 1) * g2];
    *end = (size_t)x->cell_start[(size_t)g * g2];
}

int mm_vaindex_group_at(const mm_vaindex *x, size_t pos)
{
    size_t g2 = (size_t)x->grid * x->grid;
    int g = 1;
    while (g < MM_VAINDEX_GROUPS && (size_t)x->cell_start[(size_t)g * g2] <= pos) g++;
    return g;
}

/* Max-heap on key. */
static void sift_up(entry *h, size_t i)
{
    entry e = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key >= e.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

/* The larger child (the left one on a tie) moves up while its key exceeds
 * e's: the same moves as comparing e with the left child, then the right
 * child with the larger of the two, written so the child choice needs no
 * branch. */
static void sift_down(entry *h, size_t n, size_t i)
{
    entry e = h[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t c = l + (l + 1 < n && h[l + 1].key > h[l].key);
        if (!(h[c].key > e.key)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

static int push(mm_vaindex_iter *it, entry e)
{
    if (it->n_heap == it->cap) {
        size_t nc = it->cap ? 2 * it->cap : 256;
        entry *nh = realloc(it->heap, nc * sizeof *nh);
        if (!nh) return -1;
        it->heap = nh;
        it->cap = nc;
    }
    it->heap[it->n_heap] = e;
    sift_up(it->heap, it->n_heap++);
    return 0;
}

/* Distance from p to the cell's rectangle (0 inside), less a rounding allowance. */
static double cell_mindist(int cx, int cy, int grid, mm_va p)
{
    double w = 2.0 / grid;
    double x0 = -1 + cx * w, x1 = x0 + w, y0 = -1 + cy * w, y1 = y0 + w;
    double dx = p.valence < x0 ? x0 - p.valence : p.valence > x1 ? p.valence - x1 : 0;
    double dy = p.arousal < y0 ? y0 - p.arousal : p.arousal > y1 ? p.arousal - y1 : 0;
    double d = sqrt(dx * dx + dy * dy) - 1e-6;
    return d > 0 ? d : 0;
}

static double cell_key(const mm_vaindex_iter *it, int32_t cell, int64_t pos)
{
    int grid = it->x->grid, cx = cell % grid, cy = (cell / grid) % grid;
    const mm_vaindex *x = it->x;
    float c = x->conf_ord ? x->conf_ord[pos] : x->conf[x->order[pos]];
    return -cell_mindist(cx, cy, grid, it->point) + it->w * c;
}

int mm_vaindex_iter_init(mm_vaindex_iter *it, const mm_vaindex *x, mm_va point, double w,
                         unsigned group_mask, mm_va disc_centre, double disc_radius, mm_err *err)
{
    memset(it, 0, sizeof *it);
    it->x = x;
    it->point = point;
    it->w = w;
    it->has_disc = disc_radius >= 0;
    it->disc_centre = disc_centre;
    it->disc_radius = disc_radius;
    int grid = x->grid;
    for (int g = 0; g < MM_VAINDEX_GROUPS; g++) {
        if (!(group_mask & (1u << g))) continue;
        for (int c = 0; c < grid * grid; c++) {
            int32_t cell = (int32_t)(g * grid * grid + c);
            int64_t a = x->cell_start[cell], b = x->cell_start[cell + 1];
            if (a >= b) continue;
            if (it->has_disc && cell_mindist(c % grid, c / grid, grid, disc_centre) > disc_radius) continue;
            entry e = {cell_key(it, cell, a), (uint32_t)a, cell};
            if (it->n_heap == it->cap) {   /* appended, then heapified below */
                size_t nc = it->cap ? 2 * it->cap : 256;
                entry *nh = realloc(it->heap, nc * sizeof *nh);
                if (!nh) { mm_vaindex_iter_free(it); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
                it->heap = nh;
                it->cap = nc;
            }
            it->heap[it->n_heap++] = e;
        }
    }
    for (size_t i = it->n_heap / 2; i-- > 0;) sift_down(it->heap, it->n_heap, i);
    return 0;
}

long mm_vaindex_next(mm_vaindex_iter *it, double *rel, size_t *pos)
{
    const mm_vaindex *x = it->x;
    while (it->n_heap) {
        entry top = it->heap[0];
        if (top.cell < 0) {
            it->heap[0] = it->heap[--it->n_heap];
            if (it->n_heap) sift_down(it->heap, it->n_heap, 0);
            it->n_out++;
            if (rel) *rel = top.key;
            if (pos) *pos = (size_t)top.pos;
            return x->order[top.pos];
        }
        int64_t p = top.pos;
        int32_t t = x->order[p];
        mm_va v = x->va_ord ? x->va_ord[p] : x->va[t];
        float c = x->conf_ord ? x->conf_ord[p] : x->conf[t];
        double r = -(double)mm_va_dist(v, it->point) + it->w * c;
        if (p + 1 < x->cell_start[top.cell + 1]) {   /* the cell's next track replaces it at the top */
            it->heap[0].pos = (uint32_t)(p + 1);
            it->heap[0].key = cell_key(it, top.cell, p + 1);
        } else {
            it->heap[0] = it->heap[--it->n_heap];
        }
        if (it->n_heap) sift_down(it->heap, it->n_heap, 0);
        if (!it->n_heap || r >= it->heap[0].key) {
            it->n_out++;
            if (rel) *rel = r;
            if (pos) *pos = (size_t)p;
            return t;
        }
        entry te = {r, (uint32_t)p, -1};
        if (push(it, te)) return -1;
    }
    return -1;
}

long mm_vaindex_peek(const mm_vaindex_iter *it, size_t j)
{
    return j < it->n_heap ? it->x->order[it->heap[j].pos] : -1;
}

double mm_vaindex_bound(const mm_vaindex_iter *it)
{
    return it->n_heap ? it->heap[0].key : -INFINITY;
}

void mm_vaindex_iter_free(mm_vaindex_iter *it)
{
    if (!it) return;
    free(it->heap);
    it->heap = NULL;
    it->n_heap = it->cap = 0;
}
