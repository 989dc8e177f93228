/* tsne.c — Barnes–Hut t-SNE (2-D) after scikit-learn 1.2.1: _t_sne.py
 * (_fit, _joint_probabilities_nn, _gradient_descent), _utils.pyx (binary
 * search), _barnes_hut_tsne.pyx (gradient, KL estimate), _quad_tree.pyx
 * (insertion order, enlarged box, width^2/dist^2 < theta^2 summaries).
 * Differences: exact kNN by blocked DGEMM, PCA by LAPACK dsyev (sklearn:
 * randomized SVD), double accumulators. Leaves out 3-D and other metrics.
 */
#include "eval/tsne.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "core/rng.h"

/* LAPACK symmetric eigensolver from OpenBLAS (Fortran ABI, hidden string lengths). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info, size_t ljobz,
                   size_t luplo);

#define QT_EPS 1e-6f                 /* sklearn quadtree EPSILON: duplicate points */
#define PERPLEXITY_TOL 1e-5          /* binary search stops at |H - log(perp)| <= this */
#define N_STEPS 100                  /* binary search steps */
#define N_ITER_CHECK 50              /* error and stopping checks every 50 iterations */

static int nthreads(int n) { return n > 0 ? n : omp_get_max_threads(); }

mm_tsne_params mm_tsne_params_default(void)
{
    mm_tsne_params p;
    memset(&p, 0, sizeof p);
    p.perplexity = 30.0;
    p.early_exaggeration = 12.0;
    p.learning_rate = 0.0;
    p.n_iter = 1000;
    p.n_iter_exaggeration = 250;
    p.n_iter_without_progress = 300;
    p.min_grad_norm = 1e-7;
    p.angle = 0.5;
    p.init = MM_TSNE_INIT_PCA;
    return p;
}

int mm_tsne_params_from_cfg(const mm_cfg *map, mm_tsne_params *out, mm_err *err)
{
    static const char *const keys[] = {"perplexity", "early_exaggeration", "learning_rate",
                                       "n_iter", "n_iter_without_progress", "min_grad_norm",
                                       "angle", "init", "seed", "n_threads", NULL};
    static const char *const inits[] = {"pca", "random", NULL};
    mm_tsne_params p = mm_tsne_params_default();
    long v;
    int rc;
    if ((rc = mm_cfg_check_keys(map, "tsne", keys, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "perplexity", p.perplexity, 1e-3, 1e6, &p.perplexity, err)))
        return rc;
    if ((rc = mm_cfg_get_double(map, "early_exaggeration", p.early_exaggeration, 1.0, 1e6,
                                &p.early_exaggeration, err)))
        return rc;
    const mm_cfg *lr = map ? mm_cfg_child(map, "learning_rate") : NULL;
    if (lr && lr->type == MM_CFG_SCALAR && !strcmp(lr->value, "auto")) {
        p.learning_rate = 0.0;
    } else if ((rc = mm_cfg_get_double(map, "learning_rate", 0.0, 1e-9, 1e9, &p.learning_rate,
                                       err))) {
        return rc;
    }
    if ((rc = mm_cfg_get_int(map, "n_iter", 1000, 250, 100000000, &v, err))) return rc;
    p.n_iter = (size_t)v;
    if ((rc = mm_cfg_get_int(map, "n_iter_without_progress", 300, 1, LONG_MAX, &v, err))) return rc;
    p.n_iter_without_progress = (size_t)v;
    if ((rc = mm_cfg_get_double(map, "min_grad_norm", p.min_grad_norm, 0.0, 1e9, &p.min_grad_norm,
                                err)))
        return rc;
    if ((rc = mm_cfg_get_double(map, "angle", p.angle, 0.0, 1.0, &p.angle, err))) return rc;
    if ((rc = mm_cfg_get_choice(map, "init", inits, p.init, &p.init, err))) return rc;
    if ((rc = mm_cfg_get_int(map, "seed", 0, 0, LONG_MAX, &v, err))) return rc;
    p.seed = (uint64_t)v;
    if ((rc = mm_cfg_get_int(map, "n_threads", 0, 0, 4096, &v, err))) return rc;
    p.n_threads = (int)v;
    *out = p;
    return 0;
}

/* ---- joint probabilities ---------------------------------------------- */

void mm_tsne_p_free(mm_tsne_p *P)
{
    if (!P) return;
    free(P->indptr);
    free(P->indices);
    free(P->val);
    free(P);
}

typedef struct { double d; int32_t j; } nbr;

/* max-heap on (d, j): the root is the worst of the k kept */
static int nbr_worse(nbr a, nbr b) { return a.d > b.d || (a.d == b.d && a.j > b.j); }

static void heap_sift(nbr *h, size_t k, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && nbr_worse(h[l], h[m])) m = l;
        if (r < k && nbr_worse(h[r], h[m])) m = r;
        if (m == i) return;
        nbr t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static int cmp_nbr(const void *a, const void *b)
{
    const nbr *x = a, *y = b;
    return nbr_worse(*x, *y) - nbr_worse(*y, *x);
}

/* nb (n, k): the k nearest neighbours of each point (itself excluded) by
 * squared Euclidean distance, ascending, ties by index. */
static int knn(const float *X, size_t n, size_t d, size_t k, int nt, nbr *nb, mm_err *err)
{
    const size_t B = 256;
    double *Xd = mm_malloc(n * d, sizeof *Xd, err);
    double *sq = mm_malloc(n, sizeof *sq, err);
    double *G = mm_malloc(B * n, sizeof *G, err);
    if (!Xd || !sq || !G) {
        free(Xd); free(sq); free(G);
        return MM_ENOMEM;
    }
    for (size_t i = 0; i < n * d; i++) Xd[i] = X[i];
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t c = 0; c < d; c++) s += Xd[i * d + c] * Xd[i * d + c];
        sq[i] = s;
    }
    for (size_t b0 = 0; b0 < n; b0 += B) {
        size_t nb_rows = n - b0 < B ? n - b0 : B;
        /* G = Xb X^T (nb_rows, n) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb_rows, (int)n, (int)d, 1.0,
                    Xd + b0 * d, (int)d, Xd, (int)d, 0.0, G, (int)n);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t r = 0; r < nb_rows; r++) {
            size_t i = b0 + r;
            nbr *h = nb + i * k;
            size_t m = 0;
            for (size_t j = 0; j < n; j++) {
                if (j == i) continue;
                double dd = sq[i] + sq[j] - 2.0 * G[r * n + j];
                nbr c = {dd > 0 ? dd : 0.0, (int32_t)j};
                if (m < k) {
                    h[m++] = c;
                    if (m == k)
                        for (size_t s = k / 2 + 1; s-- > 0;) heap_sift(h, k, s);
                } else if (nbr_worse(h[0], c)) {
                    h[0] = c;
                    heap_sift(h, k, 0);
                }
            }
            qsort(h, k, sizeof *h, cmp_nbr);
        }
    }
    free(Xd); free(sq); free(G);
    return 0;
}

/* Conditional p_{j|i} over the k neighbours: the precision beta whose
 * entropy matches log(perplexity), by bisection (sklearn's rule: double
 * or halve until bracketed, at most 100 steps, tolerance 1e-5). */
static void binary_search_row(const nbr *nb, size_t k, double perplexity, double *P)
{
    double beta = 1.0, beta_min = -INFINITY, beta_max = INFINITY;
    double target = log(perplexity);
    for (int step = 0; step < N_STEPS; step++) {
        double sum = 0.0;
        for (size_t j = 0; j < k; j++) {
            P[j] = exp(-(double)(float)nb[j].d * beta);    /* sklearn passes float32 distances */
            sum += P[j];
        }
        if (sum == 0.0) sum = 1e-8;
        double sum_dp = 0.0;
        for (size_t j = 0; j < k; j++) {
            P[j] /= sum;
            sum_dp += (double)(float)nb[j].d * P[j];
        }
        double diff = log(sum) + beta * sum_dp - target;
        if (fabs(diff) <= PERPLEXITY_TOL) break;
        if (diff > 0.0) {
            beta_min = beta;
            beta = beta_max == INFINITY ? beta * 2.0 : (beta + beta_max) / 2.0;
        } else {
            beta_max = beta;
            beta = beta_min == -INFINITY ? beta / 2.0 : (beta + beta_min) / 2.0;
        }
    }
}

typedef struct { int32_t r, c; double v; } coo;

static int cmp_coo(const void *a, const void *b)
{
    const coo *x = a, *y = b;
    if (x->r != y->r) return (x->r > y->r) - (x->r < y->r);
    return (x->c > y->c) - (x->c < y->c);
}

int mm_tsne_joint_p(const float *X, size_t n, size_t d, double perplexity, int n_threads,
                    mm_tsne_p **out, mm_err *err)
{
    if (n < 2) return mm_err_set(err, MM_EINVAL, "t-SNE: needs at least 2 samples, got %zu", n);
    if (n > INT32_MAX / 2) return mm_err_set(err, MM_EINVAL, "t-SNE: too many samples (%zu)", n);
    int nt = nthreads(n_threads);
    size_t k = (size_t)(3.0 * perplexity + 1.0);
    if (k > n - 1) k = n - 1;
    if (k < 1) k = 1;
    int rc = MM_ENOMEM;
    nbr *nb = NULL;
    double *cond = NULL;
    coo *e = NULL;
    mm_tsne_p *P = NULL;
    if (!(nb = mm_malloc(n * k, sizeof *nb, err)) || !(cond = mm_malloc(n * k, sizeof *cond, err)) ||
        !(e = mm_malloc(2 * n * k, sizeof *e, err)))
        goto fail;
    if ((rc = knn(X, n, d, k, nt, nb, err))) goto fail;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < n; i++) binary_search_row(nb + i * k, k, perplexity, cond + i * k);
    /* P + P^T as (row, col, value) triples, duplicates merged after sorting */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++) {
            e[2 * (i * k + j)] = (coo){(int32_t)i, nb[i * k + j].j, cond[i * k + j]};
            e[2 * (i * k + j) + 1] = (coo){nb[i * k + j].j, (int32_t)i, cond[i * k + j]};
        }
    qsort(e, 2 * n * k, sizeof *e, cmp_coo);
    size_t m = 0;
    for (size_t t = 0; t < 2 * n * k; t++) {
        if (m && e[m - 1].r == e[t].r && e[m - 1].c == e[t].c) e[m - 1].v += e[t].v;
        else e[m++] = e[t];
    }
    double total = 0.0;
    for (size_t t = 0; t < m; t++) total += e[t].v;
    if (total < DBL_EPSILON) total = DBL_EPSILON;
    rc = MM_ENOMEM;
    if (!(P = mm_calloc(1, sizeof *P, err)) || !(P->indptr = mm_calloc(n + 1, sizeof *P->indptr, err)) ||
        !(P->indices = mm_malloc(m, sizeof *P->indices, err)) ||
        !(P->val = mm_malloc(m, sizeof *P->val, err)))
        goto fail;
    P->n = n;
    for (size_t t = 0; t < m; t++) {
        P->indptr[e[t].r + 1]++;
        P->indices[t] = e[t].c;
        P->val[t] = (float)(e[t].v / total);
    }
    for (size_t i = 0; i < n; i++) P->indptr[i + 1] += P->indptr[i];
    free(nb); free(cond); free(e);
    *out = P;
    return 0;
fail:
    free(nb); free(cond); free(e);
    mm_tsne_p_free(P);
    return rc;
}

/* ---- quadtree --------------------------------------------------------- */

typedef struct qt_node {
    float minb[2], maxb[2], center[2];
    float bary[2];        /* centre of mass of the points below */
    float sqw;            /* squared largest side of the cell */
    int64_t size;         /* points below (duplicates count) */
    int32_t child[4];     /* -1 = none; index = 2 * (x >= cx) + (y >= cy) */
    int32_t point;        /* leaf: its point */
    int32_t leaf;
} qt_node;

typedef struct qtree {
    qt_node *nodes;
    size_t count, cap;
} qtree;

static void qt_init_cell(qt_node *c)
{
    c->leaf = 1;
    c->sqw = 0.0f;
    c->size = 0;
    c->point = -1;
    for (int i = 0; i < 4; i++) c->child[i] = -1;
}

/* New child of cell `cid` holding `pt` (with `size` points, index `idx`). */
static int qt_new_child(qtree *t, size_t cid, const float pt_in[2], int32_t idx, int64_t size)
{
    float pt[2] = {pt_in[0], pt_in[1]};    /* pt_in may live in the array realloc moves */
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        qt_node *nn = realloc(t->nodes, cap * sizeof *nn);
        if (!nn) return -1;
        t->nodes = nn;
        t->cap = cap;
    }
    size_t id = t->count++;
    qt_node *cell = &t->nodes[cid], *ch = &t->nodes[id];
    qt_init_cell(ch);
    cell->leaf = 0;
    cell->point = -1;
    int slot = 0;
    for (int a = 0; a < 2; a++) {
        slot *= 2;
        if (pt[a] >= cell->center[a]) {
            slot += 1;
            ch->minb[a] = cell->center[a];
            ch->maxb[a] = cell->maxb[a];
        } else {
            ch->minb[a] = cell->minb[a];
            ch->maxb[a] = cell->center[a];
        }
        ch->center[a] = (float)(((double)ch->minb[a] + ch->maxb[a]) / 2.0);
        float w = ch->maxb[a] - ch->minb[a];
        ch->bary[a] = pt[a];
        if (w * w > ch->sqw) ch->sqw = w * w;
    }
    ch->point = idx;
    ch->size = size;
    cell->child[slot] = (int32_t)id;
    return 0;
}

static int qt_insert(qtree *t, const float pt[2], int32_t idx)
{
    size_t cid = 0;
    for (int depth = 0;; depth++) {
        qt_node *c = &t->nodes[cid];
        if (c->size == 0) {
            c->size = 1;
            c->bary[0] = pt[0];
            c->bary[1] = pt[1];
            c->point = idx;
            return 0;
        }
        if (!c->leaf) {
            float n = (float)c->size;
            for (int a = 0; a < 2; a++) c->bary[a] = (n * c->bary[a] + pt[a]) / (n + 1.0f);
            c->size++;
            int slot = 2 * (pt[0] >= c->center[0]) + (pt[1] >= c->center[1]);
            if (c->child[slot] < 0) return qt_new_child(t, cid, pt, idx, 1);
            cid = (size_t)c->child[slot];
            continue;
        }
        if ((fabsf(pt[0] - c->bary[0]) <= QT_EPS && fabsf(pt[1] - c->bary[1]) <= QT_EPS) ||
            depth > 120) {
            /* duplicate point (or cells too small for float32 to split): the leaf counts it */
            c->size++;
            return 0;
        }
        /* split: the resident point moves to a child, then retry this cell */
        float old[2] = {c->bary[0], c->bary[1]};
        if (qt_new_child(t, cid, old, c->point, c->size)) return -1;
    }
}

static int qt_build(qtree *t, const float *Y, size_t n)
{
    float lo[2] = {Y[0], Y[1]}, hi[2] = {Y[0], Y[1]};
    for (size_t i = 1; i < n; i++)
        for (int a = 0; a < 2; a++) {
            if (Y[2 * i + a] < lo[a]) lo[a] = Y[2 * i + a];
            if (Y[2 * i + a] > hi[a]) hi[a] = Y[2 * i + a];
        }
    if (!t->cap) {
        t->nodes = malloc(64 * sizeof *t->nodes);
        if (!t->nodes) return -1;
        t->cap = 64;
    }
    t->count = 1;
    qt_node *r = &t->nodes[0];
    qt_init_cell(r);
    for (int a = 0; a < 2; a++) {
        /* all points strictly inside: max scaled up by 1e-3 (or + 1e-3) */
        float sgn = (hi[a] > 0) - (hi[a] < 0);
        float m1 = hi[a] * (1.0f + 1e-3f * sgn), m2 = hi[a] + 1e-3f;
        r->minb[a] = lo[a];
        r->maxb[a] = m1 > m2 ? m1 : m2;
        r->center[a] = (float)(((double)r->maxb[a] + r->minb[a]) / 2.0);
        float w = r->maxb[a] - r->minb[a];
        if (w * w > r->sqw) r->sqw = w * w;
    }
    for (size_t i = 0; i < n; i++)
        if (qt_insert(t, Y + 2 * i, (int32_t)i)) return -1;
    return 0;
}

/* Repulsion on point p: sum over summary cells of size * q and
 * size * q^2 * (p - barycentre), q = 1 / (1 + |p - b|^2). */
static void qt_repulse(const qtree *t, size_t cid, const float p[2], float theta2, double *sumq,
                       double f[2])
{
    const qt_node *c = &t->nodes[cid];
    float dx = p[0] - c->bary[0], dy = p[1] - c->bary[1];
    float d2 = dx * dx + dy * dy;
    if (c->leaf && fabsf(dx) <= QT_EPS && fabsf(dy) <= QT_EPS) return;    /* itself */
    if (c->leaf || c->sqw / d2 < theta2) {
        double q = 1.0 / (1.0 + (double)d2), s = (double)c->size;
        *sumq += s * q;
        f[0] += s * q * q * dx;
        f[1] += s * q * q * dy;
        return;
    }
    for (int k = 0; k < 4; k++)
        if (c->child[k] >= 0) qt_repulse(t, (size_t)c->child[k], p, theta2, sumq, f);
}

/* ---- gradient --------------------------------------------------------- */

typedef struct tsne_ws {
    qtree tree;
    double *neg;      /* (n, 2) repulsive forces (unnormalised) */
    double *pos;      /* (n, 2) attractive forces */
    double *sumq;     /* (n) each point's share of Z */
    double *errs;     /* (n) each row's sum of p log(p / (q Z)) */
    double *psum;     /* (n) each row's sum of p */
} tsne_ws;

static void ws_free(tsne_ws *w)
{
    free(w->tree.nodes);
    free(w->neg);
    free(w->pos);
    free(w->sumq);
    free(w->errs);
    free(w->psum);
}

static int ws_alloc(tsne_ws *w, size_t n)
{
    memset(w, 0, sizeof *w);
    w->neg = malloc(2 * n * sizeof *w->neg);
    w->pos = malloc(2 * n * sizeof *w->pos);
    w->sumq = malloc(n * sizeof *w->sumq);
    w->errs = malloc(n * sizeof *w->errs);
    w->psum = malloc(n * sizeof *w->psum);
    if (!w->neg || !w->pos || !w->sumq || !w->errs || !w->psum) {
        ws_free(w);
        return -1;
    }
    return 0;
}

/* grad = 4 (sum_j p_ij q_ij (y_i - y_j) - sum_j q_ij^2 Z (y_i - y_j) / Z),
 * with q_ij Z = 1 / (1 + |y_i - y_j|^2); val: P values (maybe
 * exaggerated). One parallel pass per point (attraction, and repulsion via
 * the tree), so a single barrier per iteration; Z enters afterwards:
 * KL = sum p log(p / qZ) + log(Z) sum p (sklearn clamps q/Z at FLT_MIN,
 * which no q/Z reaches for N < 1e18). Returns the KL estimate or NaN;
 * -INFINITY on failure. */
static double gradient_ws(tsne_ws *w, const mm_tsne_p *P, const float *val, const float *Y,
                          double angle, int compute_error, int nt, float *grad)
{
    size_t n = P->n;
    if (qt_build(&w->tree, Y, n)) return -INFINITY;
    float theta2 = (float)(angle * angle);
    const qtree *t = &w->tree;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
    for (size_t i = 0; i < n; i++) {
        double f[2] = {0, 0}, s = 0;
        qt_repulse(t, 0, Y + 2 * i, theta2, &s, f);
        w->neg[2 * i] = f[0];
        w->neg[2 * i + 1] = f[1];
        w->sumq[i] = s;
        double a[2] = {0, 0}, e = 0, ps = 0;
        for (int64_t k = P->indptr[i]; k < P->indptr[i + 1]; k++) {
            size_t j = (size_t)P->indices[k];
            float dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
            float q = 1.0f / (1.0f + (dx * dx + dy * dy));
            double pij = val[k];
            if (compute_error) {
                e += pij * log((pij > FLT_MIN ? pij : FLT_MIN) / q);
                ps += pij;
            }
            a[0] += pij * q * dx;
            a[1] += pij * q * dy;
        }
        w->pos[2 * i] = a[0];
        w->pos[2 * i + 1] = a[1];
        w->errs[i] = e;
        w->psum[i] = ps;
    }
    double Z = 0;
    for (size_t i = 0; i < n; i++) Z += w->sumq[i];    /* fixed order: thread-count independent */
    if (Z < DBL_EPSILON) Z = DBL_EPSILON;
    for (size_t i = 0; i < 2 * n; i++) grad[i] = 4.0f * (float)(w->pos[i] - w->neg[i] / Z);
    if (!compute_error) return NAN;
    double kl = 0, ps = 0;
    for (size_t i = 0; i < n; i++) {
        kl += w->errs[i];
        ps += w->psum[i];
    }
    return kl + log(Z) * ps;
}

double mm_tsne_gradient(const mm_tsne_p *P, const float *Y, double angle, int compute_error,
                        int n_threads, float *grad, int *ok)
{
    tsne_ws w;
    if (ws_alloc(&w, P->n)) {
        if (ok) *ok = 0;
        return NAN;
    }
    double kl = gradient_ws(&w, P, P->val, Y, angle, compute_error, nthreads(n_threads), grad);
    ws_free(&w);
    if (ok) *ok = kl != -INFINITY;
    return kl == -INFINITY ? NAN : kl;
}

/* KL with Z summed over all pairs (O(n^2), rows in parallel). */
static double kl_exact(const mm_tsne_p *P, const float *Y, int nt, double *rowz, double *rowe)
{
    size_t n = P->n;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < n; i++) {
        double z = 0;
        for (size_t j = 0; j < n; j++) {
            if (j == i) continue;
            double dx = (double)Y[2 * i] - Y[2 * j], dy = (double)Y[2 * i + 1] - Y[2 * j + 1];
            z += 1.0 / (1.0 + dx * dx + dy * dy);
        }
        rowz[i] = z;
    }
    double Z = 0;
    for (size_t i = 0; i < n; i++) Z += rowz[i];
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < n; i++) {
        double e = 0;
        for (int64_t k = P->indptr[i]; k < P->indptr[i + 1]; k++) {
            size_t j = (size_t)P->indices[k];
            double dx = (double)Y[2 * i] - Y[2 * j], dy = (double)Y[2 * i + 1] - Y[2 * j + 1];
            double q = 1.0 / (1.0 + dx * dx + dy * dy) / Z, p = P->val[k];
            if (p > 0) e += p * log(p / q);
        }
        rowe[i] = e;
    }
    double kl = 0;
    for (size_t i = 0; i < n; i++) kl += rowe[i];
    return kl;
}

/* ---- initialisation --------------------------------------------------- */

int mm_tsne_pca_init(const float *X, size_t n, size_t d, float *Y, mm_err *err)
{
    if (d < 2)
        return mm_err_set(err, MM_EINVAL, "t-SNE: PCA initialisation needs at least 2 features, "
                          "got %zu", d);
    if (d > INT_MAX / 2 || n > INT_MAX)
        return mm_err_set(err, MM_EINVAL, "t-SNE: input too large for PCA (%zu x %zu)", n, d);
    int rc = MM_ENOMEM;
    double *Xc = mm_malloc(n * d, sizeof *Xc, err), *C = mm_calloc(d * d, sizeof *C, err);
    double *w = mm_malloc(d, sizeof *w, err), *s = mm_malloc(2 * n, sizeof *s, err), *work = NULL;
    if (!Xc || !C || !w || !s) goto done;
    for (size_t c = 0; c < d; c++) {
        double m = 0;
        for (size_t i = 0; i < n; i++) m += X[i * d + c];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) Xc[i * d + c] = X[i * d + c] - m;
    }
    /* C = Xc^T Xc (upper triangle in row-major = lower in Fortran order) */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)n, 1.0, Xc, (int)d, 0.0, C,
                (int)d);
    int nd = (int)d, lwork = -1, info = 0;
    double wq;
    dsyev_("V", "L", &nd, C, &nd, w, &wq, &lwork, &info, 1, 1);
    lwork = info == 0 && wq > 0 ? (int)wq : 3 * nd;
    if (!(work = mm_malloc((size_t)lwork, sizeof *work, err))) goto done;
    dsyev_("V", "L", &nd, C, &nd, w, work, &lwork, &info, 1, 1);
    if (info != 0) {
        rc = mm_err_set(err, MM_EDATA, "t-SNE: PCA eigen-decomposition failed (LAPACK info %d)",
                        info);
        goto done;
    }
    /* eigenvalues ascending; eigenvector k is row k of C (column k in Fortran order) */
    for (int comp = 0; comp < 2; comp++) {
        const double *v = C + (d - 1 - (size_t)comp) * d;
        size_t arg = 0;
        for (size_t i = 0; i < n; i++) {
            double t = 0;
            for (size_t c = 0; c < d; c++) t += Xc[i * d + c] * v[c];
            s[2 * i + (size_t)comp] = t;
            if (fabs(t) > fabs(s[2 * arg + (size_t)comp])) arg = i;
        }
        if (s[2 * arg + (size_t)comp] < 0)    /* svd_flip: largest |score| positive */
            for (size_t i = 0; i < n; i++) s[2 * i + (size_t)comp] = -s[2 * i + (size_t)comp];
    }
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += (float)s[2 * i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) v += ((float)s[2 * i] - m) * ((float)s[2 * i] - m);
    float sd = (float)sqrt(v / (double)n);
    if (!(sd > 0)) {
        rc = mm_err_set(err, MM_EDATA, "t-SNE: PCA initialisation is degenerate (all samples "
                        "project to one point)");
        goto done;
    }
    for (size_t i = 0; i < 2 * n; i++) Y[i] = (float)s[i] / sd * 1e-4f;
    rc = 0;
done:
    free(Xc); free(C); free(w); free(s); free(work);
    return rc;
}

/* ---- optimisation ----------------------------------------------------- */

typedef struct gd_state {
    size_t it, n_iter, n_iter_without_progress;
    double momentum, lr, min_grad_norm;
    double error;     /* last computed error */
    size_t last;      /* last iteration run */
} gd_state;

/* sklearn _gradient_descent: fresh update (0) and gains (1) per call. */
static int gradient_descent(tsne_ws *ws, const mm_tsne_p *P, const float *val, float *y,
                            double angle, int nt, gd_state *g, float *grad, float *update,
                            float *gains)
{
    size_t m = 2 * P->n;
    for (size_t i = 0; i < m; i++) { update[i] = 0.0f; gains[i] = 1.0f; }
    double best_error = DBL_MAX;
    size_t best_iter = g->it, i = g->it;
    g->error = DBL_MAX;
    float mom = (float)g->momentum, lr = (float)g->lr;
    for (i = g->it; i < g->n_iter; i++) {
        int check = (i + 1) % N_ITER_CHECK == 0;
        double e = gradient_ws(ws, P, val, y, angle, check || i == g->n_iter - 1, nt, grad);
        if (e == -INFINITY) return -1;
        if (!isnan(e)) g->error = e;
        double norm2 = 0;
        for (size_t k = 0; k < m; k++) {
            if (update[k] * grad[k] < 0.0f) gains[k] += 0.2f;
            else gains[k] *= 0.8f;
            if (gains[k] < 0.01f) gains[k] = 0.01f;
            grad[k] *= gains[k];
            update[k] = mom * update[k] - lr * grad[k];
            y[k] += update[k];
            norm2 += (double)grad[k] * grad[k];
        }
        if (check) {
            if (g->error < best_error) {
                best_error = g->error;
                best_iter = i;
            } else if (i - best_iter > g->n_iter_without_progress) {
                break;
            }
            if (sqrt(norm2) <= g->min_grad_norm) break;
        }
    }
    g->last = i < g->n_iter ? i : g->n_iter - 1;
    return 0;
}

int mm_tsne_run(const float *X, size_t n, size_t d, const mm_tsne_params *p, float *xy,
                mm_tsne_info *info, mm_err *err)
{
    if (n < 2) return mm_err_set(err, MM_EINVAL, "t-SNE: needs at least 2 samples, got %zu", n);
    if (d < 1) return mm_err_set(err, MM_EINVAL, "t-SNE: samples have no features");
    if (!(p->perplexity > 0) || p->perplexity >= (double)n)
        return mm_err_set(err, MM_EINVAL, "t-SNE: perplexity %g must be in (0, number of samples "
                          "= %zu)", p->perplexity, n);
    if (p->n_iter < p->n_iter_exaggeration || p->n_iter_exaggeration < 1)
        return mm_err_set(err, MM_EINVAL, "t-SNE: n_iter (%zu) must be >= the %zu exaggeration "
                          "iterations", p->n_iter, p->n_iter_exaggeration);
    if (!(p->angle >= 0 && p->angle <= 1))
        return mm_err_set(err, MM_EINVAL, "t-SNE: angle must be in [0, 1], got %g", p->angle);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < d; c++)
            if (!isfinite(X[i * d + c]))
                return mm_err_set(err, MM_EINVAL, "t-SNE: sample %zu, feature %zu is %g, expected "
                                  "a finite number", i, c, (double)X[i * d + c]);
    int nt = nthreads(p->n_threads);
    int rc;
    mm_tsne_p *P = NULL;
    float *y = NULL, *grad = NULL, *update = NULL, *gains = NULL, *ex = NULL;
    tsne_ws ws;
    int have_ws = 0;
    if ((rc = mm_tsne_joint_p(X, n, d, p->perplexity, nt, &P, err))) return rc;
    rc = MM_ENOMEM;
    size_t nnz = (size_t)P->indptr[n];
    if (!(y = mm_malloc(2 * n, sizeof *y, err)) || !(grad = mm_malloc(2 * n, sizeof *grad, err)) ||
        !(update = mm_malloc(2 * n, sizeof *update, err)) ||
        !(gains = mm_malloc(2 * n, sizeof *gains, err)) || !(ex = mm_malloc(nnz ? nnz : 1, sizeof *ex, err)))
        goto done;
    if (ws_alloc(&ws, n)) {
        rc = mm_err_set(err, MM_ENOMEM, "t-SNE: out of memory for %zu points", n);
        goto done;
    }
    have_ws = 1;
    if (p->init == MM_TSNE_INIT_RANDOM) {
        mm_rng r;
        mm_rng_seed(&r, p->seed, 0, 0);
        for (size_t i = 0; i < 2 * n; i++) y[i] = (float)(1e-4 * mm_rng_normal(&r));
    } else if ((rc = mm_tsne_pca_init(X, n, d, y, err))) {
        goto done;
    }
    double lr = p->learning_rate > 0 ? p->learning_rate
                                     : fmax((double)n / p->early_exaggeration / 4.0, 50.0);
    for (size_t k = 0; k < nnz; k++) ex[k] = (float)((double)P->val[k] * p->early_exaggeration);
    gd_state g = {.it = 0, .n_iter = p->n_iter_exaggeration,
                  .n_iter_without_progress = p->n_iter_exaggeration, .momentum = 0.5, .lr = lr,
                  .min_grad_norm = p->min_grad_norm};
    if (gradient_descent(&ws, P, ex, y, p->angle, nt, &g, grad, update, gains)) {
        rc = mm_err_set(err, MM_ENOMEM, "t-SNE: out of memory building the quadtree");
        goto done;
    }
    g.it = g.last + 1;
    g.n_iter = p->n_iter;
    g.momentum = 0.8;
    g.n_iter_without_progress = p->n_iter_without_progress;
    if (g.it < g.n_iter &&
        gradient_descent(&ws, P, P->val, y, p->angle, nt, &g, grad, update, gains)) {
        rc = mm_err_set(err, MM_ENOMEM, "t-SNE: out of memory building the quadtree");
        goto done;
    }
    if (info) {
        info->kl = g.error;
        info->n_iter = g.last;
        info->learning_rate = lr;
        /* ws.sumq / ws.errs are n doubles each: reuse them as row buffers */
        info->kl_exact = kl_exact(P, y, nt, ws.sumq, ws.errs);
    }
    memcpy(xy, y, 2 * n * sizeof *xy);
    rc = 0;
done:
    if (have_ws) ws_free(&ws);
    mm_tsne_p_free(P);
    free(y); free(grad); free(update); free(gains); free(ex);
    return rc;
}
