/* svm.c — C-SVC by SMO (LIBSVM's algorithm), one-vs-one, Platt probabilities.
 *
 * Reference: LIBSVM 3.x svm.cpp under scikit-learn 1.2 SVC: Solver with WSS2,
 * shrinking + gradient reconstruction, LRU column cache, rho from free vectors,
 * svm_binary_svc_probability, sigmoid_train, multiclass_probability. Kernels
 * use float32 dot products (LIBSVM: double), computed in cache-sized
 * blocks by one kernel compiled per instruction set (the same bits on
 * each); when the n×n kernel fits in cache_size it is computed once for all
 * subproblems. Left out: nu-SVC, SVR,
 * one-class, precomputed kernels, class-weight maps (only 'balanced').
 */
#include "learn/svm.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "core/cpu.h"
#include "core/rng.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/params.h"

#define TAU 1e-12
enum { ST_LOWER = 0, ST_UPPER = 1, ST_FREE = 2 };

/* ------------------------------------------------------------------ kernels */

typedef struct kctx {
    const float *X;    /* (n, d) rows the kernel is evaluated on */
    size_t n, d;
    int kernel, degree;
    double gamma, coef0;
    const float *sq;   /* (n) squared norms (RBF), else NULL */
    const float *K;    /* (n, n) precomputed kernel, or NULL */
} kctx;

/* Dot product with 16 independent partial sums (vectorisable without
 * reassociation); the same order everywhere, so results are reproducible. */
static inline float dotf(const float *a, const float *b, size_t d)
{
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= d; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0;
    for (; i < d; i++) s += a[i] * b[i];
    for (int k = 0; k < 16; k++) s += acc[k];
    return s;
}

/* GCC/Clang 16-lane float vectors: lane k of an accumulator is dotf's
 * acc[k], so the order of operations is fixed by the source whatever the
 * instruction set the lanes map onto. */
typedef float v16f __attribute__((vector_size(64)));

/* out[a * ldo + b] = dotf(A[a], B + b * ldb, d) for a < na (<= 4), b < nb,
 * bit for bit (the same 16 partial sums, tail and lane order): each row of
 * B is loaded once for the na rows of A, which stay in L1. Inlined into one
 * function per instruction set (dots4_avx512, _avx2, _base, chosen by
 * dots4_pick; no fused multiply-add: -ffp-contract=off). */
static inline __attribute__((always_inline)) void dots4(const float *const A[4], int na, const float *B, size_t ldb,
                                                        size_t nb, size_t d, float *out, size_t ldo)
{
    const float *a4[4];
    for (int a = 0; a < 4; a++) a4[a] = A[a < na ? a : 0];   /* padding rows: results unused */
    for (size_t b = 0; b < nb; b++) {
        const float *y = B + b * ldb;
        v16f acc[4] = {{0}};
        size_t j = 0;
        for (; j + 16 <= d; j += 16) {
            v16f yv, xv;
            memcpy(&yv, y + j, sizeof yv);
            for (int a = 0; a < 4; a++) {
                memcpy(&xv, a4[a] + j, sizeof xv);
                acc[a] += xv * yv;
            }
        }
        for (int a = 0; a < na; a++) {
            float s = 0;
            for (size_t t = j; t < d; t++) s += a4[a][t] * y[t];
            for (int k = 0; k < 16; k++) s += acc[a][k];
            out[(size_t)a * ldo + b] = s;
        }
    }
}

typedef void (*dots4_fn)(const float *const A[4], int na, const float *B, size_t ldb, size_t nb, size_t d,
                         float *out, size_t ldo);

__attribute__((target("avx512f"))) static void dots4_avx512(const float *const A[4], int na, const float *B,
                                                            size_t ldb, size_t nb, size_t d, float *out, size_t ldo)
{
    dots4(A, na, B, ldb, nb, d, out, ldo);
}

__attribute__((target("avx2"))) static void dots4_avx2(const float *const A[4], int na, const float *B, size_t ldb,
                                                       size_t nb, size_t d, float *out, size_t ldo)
{
    dots4(A, na, B, ldb, nb, d, out, ldo);
}

static void dots4_base(const float *const A[4], int na, const float *B, size_t ldb, size_t nb, size_t d, float *out,
                       size_t ldo)
{
    dots4(A, na, B, ldb, nb, d, out, ldo);
}

/* The widest dots4 this CPU may run (MELODIC_NO_AVX512 honoured); all agree. */
static dots4_fn dots4_pick(void)
{
    return mm_cpu_avx512() ? dots4_avx512 : mm_cpu_avx2_fma() ? dots4_avx2 : dots4_base;
}

#define PANEL 32    /* rows of A per dots_panel call: 32 × d floats stay in L2 */
#define BBLOCK 64   /* rows of B per pass over the panel, also kept in L2 */

/* out[a * ldo + b] = dotf(A[a], B + b * ldb, d) for a < na (<= PANEL), b < nb:
 * dots4 over blocks of BBLOCK rows of B, each reused for all na rows. */
static void dots_panel(dots4_fn dots, const float *const *A, int na, const float *B, size_t ldb, size_t nb, size_t d,
                       float *out, size_t ldo)
{
    for (size_t b0 = 0; b0 < nb; b0 += BBLOCK) {
        size_t bn = nb - b0 < BBLOCK ? nb - b0 : BBLOCK;
        for (int a0 = 0; a0 < na; a0 += 4)
            dots(A + a0, na - a0 < 4 ? na - a0 : 4, B + b0 * ldb, ldb, bn, d, out + (size_t)a0 * ldo + b0, ldo);
    }
}

static inline double powi(double b, int e)
{
    double r = 1;
    for (; e > 0; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return r;
}

/* K(a, b) from the dot product and squared norms. */
static inline double kfun(int kernel, int degree, double gamma, double coef0, double dot,
                          double sqa, double sqb)
{
    switch (kernel) {
    case MM_SVM_LINEAR: return dot;
    case MM_SVM_POLY: return powi(gamma * dot + coef0, degree);
    case MM_SVM_SIGMOID: return tanh(gamma * dot + coef0);
    default: {
        double d2 = sqa + sqb - 2 * dot;   /* ||a-b||^2 */
        return exp(-gamma * (d2 > 0 ? d2 : 0));
    }
    }
}

static inline double kval(const kctx *kc, size_t a, size_t b)
{
    if (kc->K) return kc->K[a * kc->n + b];
    float dot = dotf(kc->X + a * kc->d, kc->X + b * kc->d, kc->d);
    /* rounded to float as the cached values are, so both cache modes agree bit for bit */
    return (float)kfun(kc->kernel, kc->degree, kc->gamma, kc->coef0, dot, kc->sq ? kc->sq[a] : 0,
                       kc->sq ? kc->sq[b] : 0);
}

/* ------------------------------------------------------------------ solver */

typedef struct cnode { struct cnode *prev, *next; float *data; int len; } cnode;

typedef struct solver {
    int l, active;
    const kctx *kc;
    int *row;            /* (l) kernel row of position t (permuted by shrinking swaps) */
    float *y;            /* (l) +1 / -1 */
    double *alpha;       /* (l) */
    double *G;           /* (l) gradient of the dual objective */
    double *G_bar;       /* (l) sum over upper-bound alphas of C_j Q_ij */
    double *QD;          /* (l) Q_ii */
    unsigned char *st;   /* (l) ST_* */
    int *aset;           /* (l) original position of position t */
    double Cp, Cn, eps;
    int unshrink;
    /* Q columns: full-kernel mode gathers into two rotating buffers */
    float *buf[2];
    int which;
    /* LRU mode: column per position, most recent at lru.prev */
    cnode *head, lru;
    size_t budget;       /* floats still allowed in the cache */
} solver;

static inline double get_C(const solver *s, int i) { return s->y[i] > 0 ? s->Cp : s->Cn; }
static inline int is_upper(const solver *s, int i) { return s->st[i] == ST_UPPER; }
static inline int is_lower(const solver *s, int i) { return s->st[i] == ST_LOWER; }
static inline int is_free(const solver *s, int i) { return s->st[i] == ST_FREE; }

static void update_status(solver *s, int i)
{
    if (s->alpha[i] >= get_C(s, i)) s->st[i] = ST_UPPER;
    else if (s->alpha[i] <= 0) s->st[i] = ST_LOWER;
    else s->st[i] = ST_FREE;
}

static void lru_unlink(cnode *h) { h->prev->next = h->next; h->next->prev = h->prev; }
static void lru_append(solver *s, cnode *h)
{
    h->next = &s->lru;
    h->prev = s->lru.prev;
    h->prev->next = h;
    s->lru.prev = h;
}

/* Column i of Q = y_i y_t K(row_i, row_t) for t < len; NULL when out of memory. */
static const float *get_Q(solver *s, int i, int len)
{
    const kctx *kc = s->kc;
    float yi = s->y[i];
    if (kc->K) {
        float *b = s->buf[s->which];
        s->which ^= 1;
        const float *Kr = kc->K + (size_t)s->row[i] * kc->n;
        for (int t = 0; t < len; t++) b[t] = yi * s->y[t] * Kr[s->row[t]];
        return b;
    }
    cnode *h = &s->head[i];
    if (h->len) lru_unlink(h);
    int have = h->len;
    if (len > have) {
        size_t more = (size_t)(len - have);
        while (s->budget < more) {
            cnode *o = s->lru.next;   /* least recently used; never h (unlinked) */
            lru_unlink(o);
            free(o->data);
            s->budget += (size_t)o->len;
            o->data = NULL;
            o->len = 0;
        }
        float *nd = realloc(h->data, (size_t)len * sizeof *nd);
        if (!nd) {
            if (have) lru_append(s, h);
            return NULL;
        }
        h->data = nd;
        s->budget -= more;
        size_t ri = (size_t)s->row[i];
        for (int t = have; t < len; t++) nd[t] = (float)(yi * s->y[t] * kval(kc, ri, (size_t)s->row[t]));
        h->len = len;
    }
    lru_append(s, h);
    return h->data;
}

#define SWAP(T, a, b) do { T tmp_ = (a); (a) = (b); (b) = tmp_; } while (0)

static void swap_index(solver *s, int i, int j)
{
    if (i == j) return;
    SWAP(int, s->row[i], s->row[j]);
    SWAP(float, s->y[i], s->y[j]);
    SWAP(double, s->alpha[i], s->alpha[j]);
    SWAP(double, s->G[i], s->G[j]);
    SWAP(double, s->G_bar[i], s->G_bar[j]);
    SWAP(double, s->QD[i], s->QD[j]);
    SWAP(unsigned char, s->st[i], s->st[j]);
    SWAP(int, s->aset[i], s->aset[j]);
    if (s->kc->K) return;
    /* cached columns are stored in position order: move them along */
    cnode *hi = &s->head[i], *hj = &s->head[j];
    if (hi->len) lru_unlink(hi);
    if (hj->len) lru_unlink(hj);
    SWAP(float *, hi->data, hj->data);
    SWAP(int, hi->len, hj->len);
    if (hi->len) lru_append(s, hi);
    if (hj->len) lru_append(s, hj);
    int lo = i < j ? i : j, up = i < j ? j : i;
    for (cnode *h = s->lru.next; h != &s->lru;) {
        cnode *nx = h->next;
        if (h->len > lo) {
            if (h->len > up) SWAP(float, h->data[lo], h->data[up]);
            else {   /* the column would have a hole: drop it */
                lru_unlink(h);
                free(h->data);
                s->budget += (size_t)h->len;
                h->data = NULL;
                h->len = 0;
            }
        }
        h = nx;
    }
}

/* Second-order working-set selection (WSS2). Returns 1 when optimal. */
static int select_ws(solver *s, int *out_i, int *out_j, int *oom)
{
    double Gmax = -INFINITY, Gmax2 = -INFINITY, obj_min = INFINITY;
    int imax = -1, jmin = -1, n = s->active;
    for (int t = 0; t < n; t++) {
        if (s->y[t] > 0) {
            if (!is_upper(s, t) && -s->G[t] >= Gmax) { Gmax = -s->G[t]; imax = t; }
        } else {
            if (!is_lower(s, t) && s->G[t] >= Gmax) { Gmax = s->G[t]; imax = t; }
        }
    }
    const float *Qi = NULL;
    if (imax != -1 && !(Qi = get_Q(s, imax, n))) { *oom = 1; return 1; }
    double QDi = imax != -1 ? s->QD[imax] : 0, yi = imax != -1 ? s->y[imax] : 0;
    for (int j = 0; j < n; j++) {
        double gd, quad;
        if (s->y[j] > 0) {
            if (is_lower(s, j)) continue;
            gd = Gmax + s->G[j];
            if (s->G[j] >= Gmax2) Gmax2 = s->G[j];
            if (gd <= 0) continue;
            quad = QDi + s->QD[j] - 2.0 * yi * Qi[j];
        } else {
            if (is_upper(s, j)) continue;
            gd = Gmax - s->G[j];
            if (-s->G[j] >= Gmax2) Gmax2 = -s->G[j];
            if (gd <= 0) continue;
            quad = QDi + s->QD[j] + 2.0 * yi * Qi[j];
        }
        double obj = -(gd * gd) / (quad > 0 ? quad : TAU);
        if (obj <= obj_min) { jmin = j; obj_min = obj; }
    }
    if (Gmax + Gmax2 < s->eps || jmin == -1) return 1;
    *out_i = imax;
    *out_j = jmin;
    return 0;
}

/* Recompute G on the inactive positions from G_bar and the free alphas. */
static int reconstruct_gradient(solver *s)
{
    int l = s->l, a = s->active;
    if (a == l) return 0;
    for (int j = a; j < l; j++) s->G[j] = s->G_bar[j] - 1.0;
    int nr_free = 0;
    for (int j = 0; j < a; j++) nr_free += is_free(s, j);
    if ((double)nr_free * l > 2.0 * a * (l - a)) {
        for (int i = a; i < l; i++) {
            const float *Qi = get_Q(s, i, a);
            if (!Qi) return MM_ENOMEM;
            for (int j = 0; j < a; j++)
                if (is_free(s, j)) s->G[i] += s->alpha[j] * Qi[j];
        }
    } else {
        for (int i = 0; i < a; i++) {
            if (!is_free(s, i)) continue;
            const float *Qi = get_Q(s, i, l);
            if (!Qi) return MM_ENOMEM;
            double ai = s->alpha[i];
            for (int j = a; j < l; j++) s->G[j] += ai * Qi[j];
        }
    }
    return 0;
}

static int be_shrunk(const solver *s, int i, double Gmax1, double Gmax2)
{
    if (is_upper(s, i)) return s->y[i] > 0 ? -s->G[i] > Gmax1 : -s->G[i] > Gmax2;
    if (is_lower(s, i)) return s->y[i] > 0 ? s->G[i] > Gmax2 : s->G[i] > Gmax1;
    return 0;
}

static int do_shrinking(solver *s)
{
    double Gmax1 = -INFINITY, Gmax2 = -INFINITY;   /* max -yG over I_up, max yG over I_low */
    for (int i = 0; i < s->active; i++) {
        double g = s->G[i];
        if (s->y[i] > 0) {
            if (!is_upper(s, i) && -g > Gmax1) Gmax1 = -g;
            if (!is_lower(s, i) && g > Gmax2) Gmax2 = g;
        } else {
            if (!is_upper(s, i) && -g > Gmax2) Gmax2 = -g;
            if (!is_lower(s, i) && g > Gmax1) Gmax1 = g;
        }
    }
    if (!s->unshrink && Gmax1 + Gmax2 <= s->eps * 10) {
        s->unshrink = 1;
        int rc = reconstruct_gradient(s);
        if (rc) return rc;
        s->active = s->l;
    }
    for (int i = 0; i < s->active; i++) {
        if (!be_shrunk(s, i, Gmax1, Gmax2)) continue;
        s->active--;
        while (s->active > i) {
            if (!be_shrunk(s, s->active, Gmax1, Gmax2)) { swap_index(s, i, s->active); break; }
            s->active--;
        }
    }
    return 0;
}

static double calc_rho(const solver *s)
{
    double ub = INFINITY, lb = -INFINITY, sum_free = 0;
    int nr_free = 0;
    for (int i = 0; i < s->active; i++) {
        double yG = s->y[i] * s->G[i];
        if (is_upper(s, i)) {
            if (s->y[i] < 0) { if (yG < ub) ub = yG; }
            else if (yG > lb) lb = yG;
        } else if (is_lower(s, i)) {
            if (s->y[i] > 0) { if (yG < ub) ub = yG; }
            else if (yG > lb) lb = yG;
        } else {
            nr_free++;
            sum_free += yG;
        }
    }
    return nr_free > 0 ? sum_free / nr_free : (ub + lb) / 2;
}

static void solver_free(solver *s)
{
    if (s->head)
        for (int i = 0; i < s->l; i++) free(s->head[i].data);
    free(s->head);
    free(s->buf[0]); free(s->buf[1]);
    free(s->row); free(s->y); free(s->alpha); free(s->G); free(s->G_bar); free(s->QD);
    free(s->st); free(s->aset);
}

/* Solve the C-SVC dual on l points (kernel rows `rows`, labels y ±1):
 *   min ½ αᵀQα − eᵀα,  0 ≤ α_i ≤ C_{y_i},  yᵀα = 0.
 * coef (l) receives y_i α_i in input order, *rho the offset (f(x) = Σ coef K − rho). */
static int svm_solve(const kctx *kc, const int *rows, const int8_t *y, int l, double Cp, double Cn,
                     const mm_svm_params *p, double *coef, double *rho, int *hit_max)
{
    solver s;
    memset(&s, 0, sizeof s);
    s.l = l;
    s.kc = kc;
    s.Cp = Cp;
    s.Cn = Cn;
    s.eps = p->tol;
    int rc = MM_ENOMEM;
    s.row = malloc((size_t)l * sizeof *s.row);
    s.y = malloc((size_t)l * sizeof *s.y);
    s.alpha = calloc((size_t)l, sizeof *s.alpha);
    s.G = malloc((size_t)l * sizeof *s.G);
    s.G_bar = calloc((size_t)l, sizeof *s.G_bar);
    s.QD = malloc((size_t)l * sizeof *s.QD);
    s.st = malloc((size_t)l);
    s.aset = malloc((size_t)l * sizeof *s.aset);
    if (!s.row || !s.y || !s.alpha || !s.G || !s.G_bar || !s.QD || !s.st || !s.aset) goto done;
    if (kc->K) {
        s.buf[0] = malloc((size_t)l * sizeof(float));
        s.buf[1] = malloc((size_t)l * sizeof(float));
        if (!s.buf[0] || !s.buf[1]) goto done;
    } else {
        s.head = calloc((size_t)l, sizeof *s.head);
        if (!s.head) goto done;
        s.lru.next = s.lru.prev = &s.lru;
        double floats = p->cache_size * (1 << 20) / sizeof(float);
        floats -= (double)l * sizeof(cnode) / sizeof(float);
        s.budget = floats > 2.0 * l ? (size_t)floats : (size_t)2 * l;
    }
    for (int t = 0; t < l; t++) {
        s.row[t] = rows[t];
        s.y[t] = y[t] > 0 ? 1.f : -1.f;
        s.G[t] = -1.0;           /* p = -e, alpha = 0 */
        s.st[t] = ST_LOWER;
        s.aset[t] = t;
        s.QD[t] = kval(kc, (size_t)rows[t], (size_t)rows[t]);
    }
    s.active = l;
    long max_iter = p->max_iter > 0 ? p->max_iter : (100L * l > 10000000L ? 100L * l : 10000000L);
    int counter = (l < 1000 ? l : 1000) + 1, oom = 0;
    long iter = 0;
    while (iter < max_iter) {
        if (--counter == 0) {
            counter = l < 1000 ? l : 1000;
            if (p->shrinking && (rc = do_shrinking(&s))) goto done;
        }
        int i, j;
        if (select_ws(&s, &i, &j, &oom)) {
            if (oom) { rc = MM_ENOMEM; goto done; }
            if ((rc = reconstruct_gradient(&s))) goto done;
            s.active = l;
            if (select_ws(&s, &i, &j, &oom)) {
                if (oom) { rc = MM_ENOMEM; goto done; }
                break;
            }
            counter = 1;   /* shrink again at the next iteration */
        }
        ++iter;
        const float *Qi = get_Q(&s, i, s.active), *Qj = get_Q(&s, j, s.active);
        if (!Qi || !Qj) { rc = MM_ENOMEM; goto done; }
        double Ci = get_C(&s, i), Cj = get_C(&s, j);
        double oai = s.alpha[i], oaj = s.alpha[j];
        double *ai = &s.alpha[i], *aj = &s.alpha[j];
        if (s.y[i] != s.y[j]) {
            /* two-variable subproblem along alpha_i - alpha_j = const, clipped to the box */
            double quad = s.QD[i] + s.QD[j] + 2 * Qi[j];
            if (quad <= 0) quad = TAU;
            double delta = (-s.G[i] - s.G[j]) / quad, diff = *ai - *aj;
            *ai += delta;
            *aj += delta;
            if (diff > 0) { if (*aj < 0) { *aj = 0; *ai = diff; } }
            else if (*ai < 0) { *ai = 0; *aj = -diff; }
            if (diff > Ci - Cj) { if (*ai > Ci) { *ai = Ci; *aj = Ci - diff; } }
            else if (*aj > Cj) { *aj = Cj; *ai = Cj + diff; }
        } else {
            /* along alpha_i + alpha_j = const */
            double quad = s.QD[i] + s.QD[j] - 2 * Qi[j];
            if (quad <= 0) quad = TAU;
            double delta = (s.G[i] - s.G[j]) / quad, sum = *ai + *aj;
            *ai -= delta;
            *aj += delta;
            if (sum > Ci) { if (*ai > Ci) { *ai = Ci; *aj = sum - Ci; } }
            else if (*aj < 0) { *aj = 0; *ai = sum; }
            if (sum > Cj) { if (*aj > Cj) { *aj = Cj; *ai = sum - Cj; } }
            else if (*ai < 0) { *ai = 0; *aj = sum; }
        }
        double dai = *ai - oai, daj = *aj - oaj;
        for (int k = 0; k < s.active; k++) s.G[k] += Qi[k] * dai + Qj[k] * daj;
        /* keep G_bar in step when an alpha enters or leaves its upper bound */
        int ui = is_upper(&s, i), uj = is_upper(&s, j);
        update_status(&s, i);
        update_status(&s, j);
        if (ui != is_upper(&s, i)) {
            const float *Q = get_Q(&s, i, l);
            if (!Q) { rc = MM_ENOMEM; goto done; }
            double c = ui ? -Ci : Ci;
            for (int k = 0; k < l; k++) s.G_bar[k] += c * Q[k];
        }
        if (uj != is_upper(&s, j)) {
            const float *Q = get_Q(&s, j, l);
            if (!Q) { rc = MM_ENOMEM; goto done; }
            double c = uj ? -Cj : Cj;
            for (int k = 0; k < l; k++) s.G_bar[k] += c * Q[k];
        }
    }
    if (iter >= max_iter) {
        if (s.active < l) {
            if ((rc = reconstruct_gradient(&s))) goto done;
            s.active = l;
        }
        *hit_max = 1;
    }
    *rho = calc_rho(&s);
    for (int t = 0; t < l; t++) coef[s.aset[t]] = s.alpha[t] * s.y[t];
    rc = 0;
done:
    solver_free(&s);
    return rc;
}

/* ------------------------------------------------------- Platt and coupling */

void mm_svm_sigmoid_train(size_t l, const double *dec, const int8_t *label, double *outA, double *outB)
{
    /* Minimise the cross-entropy of P(y=+1|f) = 1/(1+exp(A f + B)) against
     * regularised targets (Platt), by Newton's method with a backtracking
     * line search on a Hessian shifted by sigma (Lin, Lin, Weng 2007). */
    double prior1 = 0, prior0 = 0;
    for (size_t i = 0; i < l; i++) if (label[i] > 0) prior1 += 1; else prior0 += 1;
    const int max_iter = 100;
    const double min_step = 1e-10, sigma = 1e-12, eps = 1e-5;
    double hi = (prior1 + 1.0) / (prior1 + 2.0), lo = 1 / (prior0 + 2.0);
    double A = 0.0, B = log((prior0 + 1.0) / (prior1 + 1.0)), fval = 0.0;
    for (size_t i = 0; i < l; i++) {
        double t = label[i] > 0 ? hi : lo, f = dec[i] * A + B;
        fval += f >= 0 ? t * f + log1p(exp(-f)) : (t - 1) * f + log1p(exp(f));
    }
    for (int it = 0; it < max_iter; it++) {
        double h11 = sigma, h22 = sigma, h21 = 0, g1 = 0, g2 = 0;
        for (size_t i = 0; i < l; i++) {
            double f = dec[i] * A + B, p, q;
            if (f >= 0) { double e = exp(-f); p = e / (1.0 + e); q = 1.0 / (1.0 + e); }
            else { double e = exp(f); p = 1.0 / (1.0 + e); q = e / (1.0 + e); }
            double d2 = p * q, t = label[i] > 0 ? hi : lo, d1 = t - p;
            h11 += dec[i] * dec[i] * d2;
            h22 += d2;
            h21 += dec[i] * d2;
            g1 += dec[i] * d1;
            g2 += d1;
        }
        if (fabs(g1) < eps && fabs(g2) < eps) break;
        double det = h11 * h22 - h21 * h21;
        double dA = -(h22 * g1 - h21 * g2) / det, dB = -(-h21 * g1 + h11 * g2) / det;
        double gd = g1 * dA + g2 * dB, step = 1;
        while (step >= min_step) {
            double nA = A + step * dA, nB = B + step * dB, nf = 0;
            for (size_t i = 0; i < l; i++) {
                double t = label[i] > 0 ? hi : lo, f = dec[i] * nA + nB;
                nf += f >= 0 ? t * f + log1p(exp(-f)) : (t - 1) * f + log1p(exp(f));
            }
            if (nf < fval + 0.0001 * step * gd) { A = nA; B = nB; fval = nf; break; }
            step /= 2.0;
        }
        if (step < min_step) break;   /* line search failed: keep the last point */
    }
    *outA = A;
    *outB = B;
}

static double sigmoid_predict(double f, double A, double B)
{
    double z = f * A + B;
    return z >= 0 ? exp(-z) / (1.0 + exp(-z)) : 1.0 / (1 + exp(z));
}

void mm_svm_couple(int k, const double *r, double *p)
{
    /* Wu, Lin, Weng (2004) method 2: min pᵀQp s.t. Σp = 1 with
     * Q_tt = Σ_{j≠t} r_jt², Q_tj = −r_jt r_tj, by coordinate updates. */
    int max_iter = k > 100 ? k : 100;
    double eps = 0.005 / k;
    double *Q = malloc((size_t)k * k * sizeof *Q), *Qp = malloc((size_t)k * sizeof *Qp);
    if (!Q || !Qp) {   /* degrade to the normalised pairwise sums */
        double tot = 0;
        for (int t = 0; t < k; t++) {
            p[t] = 0;
            for (int j = 0; j < k; j++) if (j != t) p[t] += r[t * k + j];
            tot += p[t];
        }
        for (int t = 0; t < k; t++) p[t] = tot > 0 ? p[t] / tot : 1.0 / k;
        free(Q); free(Qp);
        return;
    }
    for (int t = 0; t < k; t++) {
        p[t] = 1.0 / k;
        Q[t * k + t] = 0;
        for (int j = 0; j < k; j++) {
            if (j == t) continue;
            Q[t * k + t] += r[j * k + t] * r[j * k + t];
            Q[t * k + j] = -r[j * k + t] * r[t * k + j];
        }
    }
    for (int it = 0; it < max_iter; it++) {
        double pQp = 0;
        for (int t = 0; t < k; t++) {
            Qp[t] = 0;
            for (int j = 0; j < k; j++) Qp[t] += Q[t * k + j] * p[j];
            pQp += p[t] * Qp[t];
        }
        double max_err = 0;
        for (int t = 0; t < k; t++) {
            double e = fabs(Qp[t] - pQp);
            if (e > max_err) max_err = e;
        }
        if (max_err < eps) break;
        for (int t = 0; t < k; t++) {
            double diff = (-Qp[t] + pQp) / Q[t * k + t];
            p[t] += diff;
            pQp = (pQp + diff * (diff * Q[t * k + t] + 2 * Qp[t])) / (1 + diff) / (1 + diff);
            for (int j = 0; j < k; j++) {
                Qp[j] = (Qp[j] + diff * Q[t * k + j]) / (1 + diff);
                p[j] /= (1 + diff);
            }
        }
    }
    free(Q);
    free(Qp);
}

/* ------------------------------------------------------------------ model */

struct mm_svm {
    int n_classes;       /* label space [0, n_classes) */
    int m;               /* classes present in training */
    int32_t *classes;    /* (m) present labels, increasing */
    int32_t *nsv;        /* (m) support vectors per present class */
    int32_t *start;      /* (m) first SV row of each class */
    size_t n_sv, d;
    float *sv;           /* (n_sv, d) support vectors grouped by class */
    float *sv_sq;        /* (n_sv) squared norms */
    float *center;       /* (d) RBF only: training column means, subtracted from every row
                          * (and stored SVs) so ‖a‖² + ‖b‖² − 2a·b does not cancel; else NULL */
    double *coef;        /* (m-1, n_sv) LIBSVM sv_coef layout */
    double *rho;         /* (m(m-1)/2) */
    double *probA, *probB;   /* (m(m-1)/2) or NULL */
    int kernel, degree;
    double gamma, coef0;
    int hit_max;
    int n_threads;
};

/* gamma: 'scale', 'auto' or a number > 0 (writes gamma_mode and gamma). */
static int parse_gamma(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    mm_svm_params *p = (mm_svm_params *)((char *)field - offsetof(mm_svm_params, gamma_mode));
    const mm_cfg *g = map ? mm_cfg_child(map, "gamma") : NULL;
    if (!map) { p->gamma_mode = MM_SVM_GAMMA_SCALE; p->gamma = 0; return 0; }
    if (!g || g->type == MM_CFG_NULL) return 0;
    if (g->type == MM_CFG_SCALAR && !strcmp(g->value, "scale")) { p->gamma_mode = MM_SVM_GAMMA_SCALE; return 0; }
    if (g->type == MM_CFG_SCALAR && !strcmp(g->value, "auto")) { p->gamma_mode = MM_SVM_GAMMA_AUTO; return 0; }
    char *end = NULL, w[600];
    double v = g->type == MM_CFG_SCALAR ? strtod(g->value, &end) : NAN;
    if (g->type != MM_CFG_SCALAR || end == g->value || *end || !isfinite(v) || !(v > 0))
        return mm_err_set(err, MM_EINVAL, "%s: key 'gamma': expected %s, got '%s'", mm_cfg_where(g, w, sizeof w),
                          row->range_text, g->type == MM_CFG_SCALAR ? g->value : "(a map or list)");
    p->gamma_mode = MM_SVM_GAMMA_VALUE;
    p->gamma = v;
    return 0;
}

/* max_iter: -1 (LIBSVM's limit) or an integer >= 1. */
static int parse_max_iter(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    long *f = field, v;
    if (!map) { *f = -1; return 0; }
    int rc = mm_cfg_get_int(map, "max_iter", *f, -1, 1000000000000L, &v, err);
    if (rc) return rc;
    char w[600];
    if (v == 0)
        return mm_err_set(err, MM_EINVAL, "%s: key 'max_iter': expected -1 (no limit) or an integer >= 1, got 0",
                          mm_cfg_where(mm_cfg_child(map, "max_iter"), w, sizeof w));
    *f = v;
    return 0;
}

static const char *const SVM_KERNELS[] = {"linear", "poly", "rbf", "sigmoid", NULL};

#define SV(f) offsetof(mm_svm_params, f)
static const mm_param SVM_ROWS[] = {
    {"C", MM_PARAM_DOUBLE, SV(C), 0, MM_PARAM_NOMAX, .min_open = 1, .def = 1, .help = "penalty"},
    {"kernel", MM_PARAM_CHOICE, SV(kernel), .def = MM_SVM_RBF, .choices = SVM_KERNELS, .help = "kernel function"},
    {"degree", MM_PARAM_INT, SV(degree), 0, 64, .def = 3, .help = "degree of the poly kernel"},
    {"coef0", MM_PARAM_DOUBLE, SV(coef0), -MM_PARAM_NOMAX, MM_PARAM_NOMAX, .def = 0,
     .help = "offset of the poly and sigmoid kernels"},
    {"tol", MM_PARAM_DOUBLE, SV(tol), 0, MM_PARAM_NOMAX, .min_open = 1, .def = 1e-3,
     .help = "stopping tolerance on the maximal KKT violation"},
    {"shrinking", MM_PARAM_BOOL, SV(shrinking), .def = 1, .help = "shrink the active set"},
    {"probability", MM_PARAM_BOOL, SV(probability), .def = 1,
     .help = "Platt sigmoids fitted by internal 5-fold cross-validation"},
    {"cache_size", MM_PARAM_DOUBLE, SV(cache_size), 0, MM_PARAM_NOMAX, .min_open = 1, .def = 200,
     .help = "kernel cache per subproblem, MB"},
    {"max_iter", MM_PARAM_CUSTOM, SV(max_iter), .parse = parse_max_iter, .def_text = "-1", .type_text = "int",
     .range_text = "-1 (LIBSVM's limit, max(1e7, 100 n)) or an integer >= 1", .help = "SMO iterations per subproblem"},
    {"gamma", MM_PARAM_CUSTOM, SV(gamma_mode), .parse = parse_gamma, .def_text = "scale", .type_text = "value",
     .range_text = "'scale', 'auto' or a number in (0, inf]",
     .help = "kernel width: scale 1/(d Var(X)), auto 1/d, or the value"},
    {"class_weight", MM_PARAM_CUSTOM, SV(class_weight_balanced), .parse = mm_param_parse_class_weight,
     .def_text = "none", .type_text = "string", .range_text = "balanced or none",
     .help = "balanced: C_c = C n / (n_present_classes n_c)"},
    {NULL},
};
#undef SV

static const mm_param_table SVM_PARAMS = {"svm", "svm params", SVM_ROWS};

mm_svm_params mm_svm_params_default(void)
{
    mm_svm_params p;
    memset(&p, 0, sizeof p);
    mm_params_defaults(&SVM_PARAMS, &p);
    return p;
}

int mm_svm_params_from_cfg(const mm_cfg *map, mm_svm_params *out, mm_err *err)
{
    mm_svm_params p = mm_svm_params_default();
    int rc = mm_params_parse(&SVM_PARAMS, map, &p, err);
    if (!rc) *out = p;
    return rc;
}

static int check_params(const mm_svm_params *p, mm_err *err)
{
    int rc = mm_params_check(&SVM_PARAMS, p, err);
    if (rc) return rc;
    if (p->gamma_mode == MM_SVM_GAMMA_VALUE && (!(p->gamma > 0) || !isfinite(p->gamma)))
        return mm_err_set(err, MM_EINVAL, "svm: gamma must be 'scale', 'auto' or a number > 0, got %g", p->gamma);
    if (p->gamma_mode < MM_SVM_GAMMA_SCALE || p->gamma_mode > MM_SVM_GAMMA_VALUE)
        return mm_err_set(err, MM_EINVAL, "svm: unknown gamma mode %d", p->gamma_mode);
    if (p->max_iter == 0 || p->max_iter < -1)
        return mm_err_set(err, MM_EINVAL, "svm: max_iter must be -1 or >= 1, got %ld", p->max_iter);
    return 0;
}

/* One unit of training work: a cross-validation fold of a pair, or its final fit. */
typedef struct task { int pair, fold; int rc; } task;

typedef struct pairdata {
    int a, b;            /* present-class indices */
    int l;
    int *rows;           /* (l) training rows: class a then class b, input order */
    int8_t *y;           /* (l) +1 for a, -1 for b */
    int *perm;           /* (l) CV permutation (probability) */
    double *cvdec;       /* (l) held-out decision values */
    double *coef;        /* (l) final y α */
    double rho;
    double Cp, Cn;
    int hit_max;
} pairdata;

static void run_task(const kctx *kc, pairdata *pd, task *tk, const mm_svm_params *p)
{
    int l = pd->l, hit = 0;
    if (tk->fold < 0) {
        tk->rc = svm_solve(kc, pd->rows, pd->y, l, pd->Cp, pd->Cn, p, pd->coef, &pd->rho, &hit);
        if (hit) pd->hit_max = 1;
        return;
    }
    const int nf = 5;
    int begin = (int)((long)tk->fold * l / nf), end = (int)((long)(tk->fold + 1) * l / nf);
    int lt = l - (end - begin);
    int *rows = malloc((size_t)(lt > 0 ? lt : 1) * sizeof *rows);
    int8_t *y = malloc((size_t)(lt > 0 ? lt : 1));
    double *coef = malloc((size_t)(lt > 0 ? lt : 1) * sizeof *coef);
    if (!rows || !y || !coef) { tk->rc = MM_ENOMEM; goto done; }
    int k = 0, npos = 0, nneg = 0;
    for (int j = 0; j < l; j++) {
        if (j >= begin && j < end) continue;
        rows[k] = pd->rows[pd->perm[j]];
        y[k] = pd->y[pd->perm[j]];
        if (y[k] > 0) npos++; else nneg++;
        k++;
    }
    if (npos == 0 || nneg == 0) {   /* one class left in the training part: constant decision */
        for (int j = begin; j < end; j++) pd->cvdec[pd->perm[j]] = npos ? 1 : nneg ? -1 : 0;
        tk->rc = 0;
        goto done;
    }
    /* LIBSVM trains the fold with C = 1 and class weights Cp, Cn, i.e. the same box */
    mm_svm_params sub = *p;
    sub.probability = 0;
    double rho;
    tk->rc = svm_solve(kc, rows, y, lt, pd->Cp, pd->Cn, &sub, coef, &rho, &hit);
    if (tk->rc) goto done;
    if (hit) pd->hit_max = 1;
    for (int j = begin; j < end; j++) {
        size_t r = (size_t)pd->rows[pd->perm[j]];
        double f = -rho;
        for (int t = 0; t < lt; t++)
            if (coef[t] != 0) f += coef[t] * kval(kc, r, (size_t)rows[t]);
        pd->cvdec[pd->perm[j]] = f;
    }
done:
    free(rows); free(y); free(coef);
}

/* State computed from the saved fields (the support vectors' squared norms).
 * One function, called at the end of fit and at load, and never inlined, so a
 * reloaded model predicts bit for bit what the fitted one did whatever the
 * compiler does with either call site. sv_sq must be allocated (n_sv). */
__attribute__((noinline)) static void derive_state(mm_svm *M)
{
    for (size_t i = 0; i < M->n_sv; i++) M->sv_sq[i] = dotf(M->sv + i * M->d, M->sv + i * M->d, M->d);
}

int mm_svm_train(const float *X, const int32_t *y, size_t n, size_t d, int n_classes,
                 const mm_svm_params *p, uint64_t seed, int n_threads, mm_svm **out, mm_err *err)
{
    int rc = check_params(p, err);
    if (rc) return rc;
    if (n == 0 || d == 0) return mm_err_set(err, MM_EDATA, "svm: empty training set (%zu rows, %zu features)", n, d);
    if (n > 0x3fffffff) return mm_err_set(err, MM_EINVAL, "svm: %zu training rows exceed the supported 2^30", n);
    if (n_classes < 2) return mm_err_set(err, MM_EDATA, "svm: need at least 2 classes, got %d", n_classes);
    if ((rc = mm_check_finite(X, n, d, "svm: training features", err))) return rc;
    if (n_threads < 1) n_threads = 1;
    size_t *count = mm_calloc((size_t)n_classes, sizeof *count, err);
    if (!count) return MM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= n_classes) {
            free(count);
            return mm_err_set(err, MM_EDATA, "svm: label %d at row %zu is outside [0, %d)", y[i], i, n_classes);
        }
        count[y[i]]++;
    }
    int m = 0;
    for (int c = 0; c < n_classes; c++) m += count[c] > 0;
    if (m < 2) {
        free(count);
        return mm_err_set(err, MM_EDATA, "svm: the training set holds a single class; need at least 2");
    }
    mm_svm *M = NULL;
    float *sq = NULL, *K = NULL, *Xw = NULL;
    pairdata *pd = NULL;
    task *tasks = NULL;
    int *cls_of = NULL, *order = NULL;
    size_t *cstart = NULL;
    char *nonzero = NULL;
    int npairs = m * (m - 1) / 2, ntasks = 0;
    rc = MM_ENOMEM;
    M = mm_calloc(1, sizeof *M, err);
    if (!M) goto done;
    M->n_classes = n_classes;
    M->m = m;
    M->d = d;
    M->kernel = p->kernel;
    M->degree = p->degree;
    M->coef0 = p->coef0;
    M->n_threads = n_threads;
    M->classes = mm_calloc((size_t)m, sizeof *M->classes, err);
    M->nsv = mm_calloc((size_t)m, sizeof *M->nsv, err);
    M->start = mm_calloc((size_t)m, sizeof *M->start, err);
    M->rho = mm_calloc((size_t)npairs, sizeof *M->rho, err);
    cls_of = mm_calloc((size_t)n_classes, sizeof *cls_of, err);
    order = mm_malloc(n, sizeof *order, err);
    cstart = mm_calloc((size_t)m + 1, sizeof *cstart, err);
    nonzero = mm_calloc(n, 1, err);
    pd = mm_calloc((size_t)npairs, sizeof *pd, err);
    if (!M->classes || !M->nsv || !M->start || !M->rho || !cls_of || !order || !cstart || !nonzero || !pd)
        goto done;
    if (p->probability) {
        M->probA = mm_calloc((size_t)npairs, sizeof *M->probA, err);
        M->probB = mm_calloc((size_t)npairs, sizeof *M->probB, err);
        if (!M->probA || !M->probB) goto done;
    }
    for (int c = 0, k = 0; c < n_classes; c++) {
        cls_of[c] = -1;
        if (count[c]) { M->classes[k] = c; cls_of[c] = k++; }
    }
    /* rows grouped by class, input order within a class (as LIBSVM groups them) */
    for (int k = 0; k < m; k++) cstart[k + 1] = cstart[k] + count[M->classes[k]];
    {
        size_t *fill = mm_calloc((size_t)m, sizeof *fill, err);
        if (!fill) goto done;
        for (size_t i = 0; i < n; i++) {
            int k = cls_of[y[i]];
            order[cstart[k] + fill[k]++] = (int)i;
        }
        free(fill);
    }
    /* gamma: 'scale' = 1 / (d Var(X)) over every entry, 'auto' = 1 / d */
    if (p->gamma_mode == MM_SVM_GAMMA_VALUE) M->gamma = p->gamma;
    else if (p->gamma_mode == MM_SVM_GAMMA_AUTO) M->gamma = 1.0 / (double)d;
    else {
        double mean = 0, var = 0;
        for (size_t i = 0; i < n * d; i++) mean += X[i];
        mean /= (double)(n * d);
        for (size_t i = 0; i < n * d; i++) var += (X[i] - mean) * (X[i] - mean);
        var /= (double)(n * d);
        M->gamma = var > 0 ? 1.0 / ((double)d * var) : 1.0;
    }
    kctx kc = {.X = X, .n = n, .d = d, .kernel = p->kernel, .degree = p->degree, .gamma = M->gamma,
               .coef0 = p->coef0};
    if (p->kernel == MM_SVM_RBF) {
        /* RBF is translation invariant: work on centred rows */
        M->center = mm_malloc(d, sizeof *M->center, err);
        Xw = mm_malloc(n, d * sizeof *Xw, err);
        double *mu = mm_calloc(d, sizeof *mu, err);
        sq = mm_malloc(n, sizeof *sq, err);
        if (!M->center || !Xw || !mu || !sq) { free(mu); goto done; }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++) mu[j] += X[i * d + j];
        for (size_t j = 0; j < d; j++) M->center[j] = (float)(mu[j] / (double)n);
        free(mu);
        for (size_t i = 0; i < n * d; i++) Xw[i] = X[i] - M->center[i % d];
        for (size_t i = 0; i < n; i++) sq[i] = dotf(Xw + i * d, Xw + i * d, d);
        kc.X = Xw;
        kc.sq = sq;
    }
    /* the whole kernel fits in the cache budget: compute it once (rows in parallel) */
    if ((double)n * n * sizeof(float) <= p->cache_size * (1 << 20) && (K = malloc(n * n * sizeof *K))) {
        int big = (double)n * n * d > 2e7;   /* below this, threads cost more than they save */
        dots4_fn dots = dots4_pick();
        /* PANEL rows at a time: their dot products with rows 0..i0+PANEL-1, then K(i, j)
         * for j <= i from each (as kval: the dot rounded to float, the kernel value too);
         * the raw dots left above the diagonal are overwritten by the mirror below */
        #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (big)
        for (size_t i0 = 0; i0 < n; i0 += PANEL) {
            int na = n - i0 < PANEL ? (int)(n - i0) : PANEL;
            const float *A[PANEL];
            for (int a = 0; a < na; a++) A[a] = kc.X + (i0 + (size_t)a) * d;
            dots_panel(dots, A, na, kc.X, d, i0 + (size_t)na, d, K + i0 * n, n);
            for (size_t i = i0; i < i0 + (size_t)na; i++)
                for (size_t j = 0; j <= i; j++)
                    K[i * n + j] = (float)kfun(kc.kernel, kc.degree, kc.gamma, kc.coef0, K[i * n + j],
                                               kc.sq ? kc.sq[i] : 0, kc.sq ? kc.sq[j] : 0);
        }
        /* mirror the lower triangle, in 64×64 tiles for locality */
        #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (big)
        for (size_t ib = 0; ib < n; ib += 64)
            for (size_t jb = ib; jb < n; jb += 64)
                for (size_t i = ib; i < ib + 64 && i < n; i++)
                    for (size_t j = jb > i + 1 ? jb : i + 1; j < jb + 64 && j < n; j++) K[i * n + j] = K[j * n + i];
        kc.K = K;
    }
    /* pairs and their tasks */
    ntasks = npairs * (p->probability ? 6 : 1);
    tasks = mm_calloc((size_t)ntasks, sizeof *tasks, err);
    if (!tasks) goto done;
    {
        int q = 0, t = 0;
        for (int a = 0; a < m; a++)
            for (int b = a + 1; b < m; b++, q++) {
                pairdata *P = &pd[q];
                P->a = a;
                P->b = b;
                size_t na = cstart[a + 1] - cstart[a], nb = cstart[b + 1] - cstart[b];
                P->l = (int)(na + nb);
                P->rows = mm_malloc((size_t)P->l, sizeof *P->rows, err);
                P->y = mm_malloc((size_t)P->l, 1, err);
                P->coef = mm_calloc((size_t)P->l, sizeof *P->coef, err);
                if (!P->rows || !P->y || !P->coef) goto done;
                for (size_t i = 0; i < na; i++) { P->rows[i] = order[cstart[a] + i]; P->y[i] = 1; }
                for (size_t i = 0; i < nb; i++) { P->rows[na + i] = order[cstart[b] + i]; P->y[na + i] = -1; }
                double wa = 1, wb = 1;
                if (p->class_weight_balanced) {
                    wa = (double)n / ((double)m * (double)na);
                    wb = (double)n / ((double)m * (double)nb);
                }
                P->Cp = p->C * wa;
                P->Cn = p->C * wb;
                if (p->probability) {
                    P->perm = mm_malloc((size_t)P->l, sizeof *P->perm, err);
                    P->cvdec = mm_calloc((size_t)P->l, sizeof *P->cvdec, err);
                    if (!P->perm || !P->cvdec) goto done;
                    mm_rng r;
                    mm_rng_seed(&r, seed, 0x5f3, (uint64_t)q);
                    for (int i = 0; i < P->l; i++) P->perm[i] = i;
                    for (int i = 0; i < P->l; i++) {
                        int j = i + (int)mm_rng_below(&r, (uint64_t)(P->l - i));
                        SWAP(int, P->perm[i], P->perm[j]);
                    }
                    for (int f = 0; f < 5; f++) tasks[t++] = (task){q, f, 0};
                }
                tasks[t++] = (task){q, -1, 0};
            }
    }
    /* small problems finish in milliseconds: a thread team costs more than it saves */
    int parallel = (double)n * n * d * (p->probability ? 5 : 1) > 1e8;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (parallel)
    for (int t = 0; t < ntasks; t++) run_task(&kc, &pd[tasks[t].pair], &tasks[t], p);
    for (int t = 0; t < ntasks; t++)
        if (tasks[t].rc) {
            rc = mm_err_set(err, tasks[t].rc, "svm: out of memory while solving pair %d (cache_size %g MB)",
                            tasks[t].pair, p->cache_size);
            goto done;
        }
    for (int q = 0; q < npairs; q++) {
        pairdata *P = &pd[q];
        M->rho[q] = P->rho;
        M->hit_max |= P->hit_max;
        if (p->probability) mm_svm_sigmoid_train((size_t)P->l, P->cvdec, P->y, &M->probA[q], &M->probB[q]);
        for (int i = 0; i < P->l; i++)
            if (P->coef[i] != 0) nonzero[P->rows[i]] = 1;
    }
    /* support vectors: rows with a non-zero coefficient in any pair, grouped by class */
    size_t nsv = 0;
    for (int k = 0; k < m; k++) {
        M->start[k] = (int32_t)nsv;
        for (size_t i = cstart[k]; i < cstart[k + 1]; i++)
            if (nonzero[order[i]]) { M->nsv[k]++; nsv++; }
    }
    M->n_sv = nsv;
    M->sv = mm_malloc(nsv ? nsv * d : 1, sizeof *M->sv, err);
    M->sv_sq = mm_malloc(nsv ? nsv : 1, sizeof *M->sv_sq, err);
    M->coef = mm_calloc(nsv ? nsv * (size_t)(m - 1) : 1, sizeof *M->coef, err);
    int *svpos = mm_malloc(n, sizeof *svpos, err);   /* row → SV index */
    if (!M->sv || !M->sv_sq || !M->coef || !svpos) { free(svpos); goto done; }
    {
        size_t s = 0;
        for (int k = 0; k < m; k++)
            for (size_t i = cstart[k]; i < cstart[k + 1]; i++) {
                int r = order[i];
                svpos[r] = -1;
                if (!nonzero[r]) continue;
                memcpy(M->sv + s * d, kc.X + (size_t)r * d, d * sizeof *M->sv);
                svpos[r] = (int)s++;
            }
    }
    /* LIBSVM layout: pair (a, b) puts a's coefficients in row b-1, b's in row a */
    for (int q = 0; q < npairs; q++) {
        pairdata *P = &pd[q];
        for (int i = 0; i < P->l; i++) {
            int s = svpos[P->rows[i]];
            if (s < 0) continue;
            int rowc = P->y[i] > 0 ? P->b - 1 : P->a;
            M->coef[(size_t)rowc * nsv + (size_t)s] = P->coef[i];
        }
    }
    free(svpos);
    derive_state(M);
    *out = M;
    M = NULL;
    rc = 0;
done:
    for (int q = 0; pd && q < npairs; q++) {
        free(pd[q].rows); free(pd[q].y); free(pd[q].perm); free(pd[q].cvdec); free(pd[q].coef);
    }
    free(pd); free(tasks); free(count); free(cls_of); free(order); free(cstart); free(nonzero);
    free(sq); free(K); free(Xw);
    mm_svm_free(M);
    return rc;
}

/* ------------------------------------------------------------- prediction */

size_t mm_svm_n_pairs(const mm_svm *m) { return (size_t)m->m * (size_t)(m->m - 1) / 2; }

/* The dot products of up to PANEL rows x (centred as the SVs are, in xc:
 * PANEL × d) with every SV into dots (PANEL, n_sv), and their squared norms
 * into xsq (RBF). */
static void dot_rows(const mm_svm *M, dots4_fn dots, const float *X, int nr, float *xc, float *dots_out, double *xsq)
{
    size_t d = M->d;
    const float *A[PANEL];
    for (int a = 0; a < nr; a++) {
        A[a] = X + (size_t)a * d;
        if (M->center) {
            float *c = xc + (size_t)a * d;
            for (size_t j = 0; j < d; j++) c[j] = A[a][j] - M->center[j];
            A[a] = c;
        }
        xsq[a] = M->kernel == MM_SVM_RBF ? dotf(A[a], A[a], d) : 0;
    }
    dots_panel(dots, A, nr, M->sv, d, M->n_sv, d, dots_out, M->n_sv);
}

/* Decision values of one row into dec (n_pairs) from its dot products with
 * the SVs (dot, n_sv) and squared norm xsq; kv (n_sv) is scratch. */
static void decide_row(const mm_svm *M, const float *dot, double xsq, double *kv, double *dec)
{
    for (size_t s = 0; s < M->n_sv; s++)
        kv[s] = kfun(M->kernel, M->degree, M->gamma, M->coef0, dot[s], xsq, M->sv_sq[s]);
    int q = 0;
    size_t nsv = M->n_sv;
    for (int a = 0; a < M->m; a++)
        for (int b = a + 1; b < M->m; b++, q++) {
            double sum = 0;
            const double *ca = M->coef + (size_t)(b - 1) * nsv, *cb = M->coef + (size_t)a * nsv;
            for (int s = M->start[a]; s < M->start[a] + M->nsv[a]; s++) sum += ca[s] * kv[s];
            for (int s = M->start[b]; s < M->start[b] + M->nsv[b]; s++) sum += cb[s] * kv[s];
            dec[q] = sum - M->rho[q];
        }
}

enum { OUT_DEC, OUT_PROBA, OUT_LABEL };

static int predict_any(const mm_svm *M, const float *X, size_t n, size_t d, int what, void *out, mm_err *err)
{
    if (d != M->d) return mm_err_set(err, MM_EINVAL, "svm: model was trained on %zu features, got %zu", M->d, d);
    int rc = mm_check_finite(X, n, d, "svm: features", err);
    if (rc) return rc;
    int nt = M->n_threads < 1 ? 1 : M->n_threads, m = M->m;
    size_t np = mm_svm_n_pairs(M);
    /* per-thread scratch: kernel values, decision values, pairwise r (m, m), p (m),
     * then PANEL rows' norms (PANEL), dot products (PANEL, n_sv) and centred copies (PANEL, d) */
    size_t per = M->n_sv + np + (size_t)m * m + (size_t)m + 1 + PANEL + (PANEL * (M->n_sv + M->d) + 2) / 2;
    double *scratch = mm_malloc((size_t)nt, per * sizeof(double), err);
    if (!scratch) return MM_ENOMEM;
    dots4_fn dots = dots4_pick();
    #pragma omp parallel num_threads(nt) if ((double)n * (M->n_sv + 1) * d > 2e6)
    {
        double *kv = scratch + (size_t)omp_get_thread_num() * per;
        double *dec = kv + M->n_sv, *r = dec + np, *pr = r + (size_t)m * m, *xsq = pr + m + 1;
        float *dotp = (float *)(xsq + PANEL);          /* (PANEL, n_sv) */
        float *xc = dotp + PANEL * M->n_sv;            /* (PANEL, d) */
        #pragma omp for schedule(dynamic, 1)
        for (size_t i0 = 0; i0 < n; i0 += PANEL) {
            int nr = n - i0 < PANEL ? (int)(n - i0) : PANEL;
            dot_rows(M, dots, X + i0 * d, nr, xc, dotp, xsq);
            for (size_t i = i0; i < i0 + (size_t)nr; i++) {
                decide_row(M, dotp + (i - i0) * M->n_sv, xsq[i - i0], kv, dec);
                if (what == OUT_DEC) { memcpy((double *)out + i * np, dec, np * sizeof *dec); continue; }
                float *prow = what == OUT_PROBA ? (float *)out + i * (size_t)M->n_classes : NULL;
                if (what == OUT_LABEL || !M->probA) {
                    /* one-vs-one votes */
                    for (int a = 0; a < m; a++) pr[a] = 0;
                    int q = 0;
                    for (int a = 0; a < m; a++)
                        for (int b = a + 1; b < m; b++, q++) pr[dec[q] > 0 ? a : b] += 1;
                    if (what == OUT_LABEL) {
                        int best = 0;
                        for (int a = 1; a < m; a++) if (pr[a] > pr[best]) best = a;
                        ((int32_t *)out)[i] = M->classes[best];
                        continue;
                    }
                    for (int a = 0; a < m; a++) pr[a] /= (double)np;
                } else {
                    const double min_p = 1e-7;
                    int q = 0;
                    for (int a = 0; a < m; a++)
                        for (int b = a + 1; b < m; b++, q++) {
                            double v = sigmoid_predict(dec[q], M->probA[q], M->probB[q]);
                            v = v < min_p ? min_p : v > 1 - min_p ? 1 - min_p : v;
                            r[a * m + b] = v;
                            r[b * m + a] = 1 - v;
                        }
                    if (m == 2) { pr[0] = r[1]; pr[1] = r[2]; }
                    else mm_svm_couple(m, r, pr);
                }
                for (int c = 0; c < M->n_classes; c++) prow[c] = 0;
                for (int a = 0; a < m; a++) prow[M->classes[a]] = (float)pr[a];
            }
        }
    }
    free(scratch);
    return 0;
}

int mm_svm_decision(const mm_svm *m, const float *X, size_t n, size_t d, double *dec, mm_err *err)
{
    return predict_any(m, X, n, d, OUT_DEC, dec, err);
}

int mm_svm_predict_proba(const mm_svm *m, const float *X, size_t n, size_t d, float *proba, mm_err *err)
{
    return predict_any(m, X, n, d, OUT_PROBA, proba, err);
}

int mm_svm_predict(const mm_svm *m, const float *X, size_t n, size_t d, int32_t *label, mm_err *err)
{
    return predict_any(m, X, n, d, OUT_LABEL, label, err);
}

size_t mm_svm_n_support(const mm_svm *m, int32_t *per_class)
{
    if (per_class) {
        for (int c = 0; c < m->n_classes; c++) per_class[c] = 0;
        for (int a = 0; a < m->m; a++) per_class[m->classes[a]] = m->nsv[a];
    }
    return m->n_sv;
}

double mm_svm_gamma(const mm_svm *m) { return m->gamma; }
int mm_svm_hit_max_iter(const mm_svm *m) { return m->hit_max; }
const double *mm_svm_prob_a(const mm_svm *m) { return m->probA; }
const double *mm_svm_prob_b(const mm_svm *m) { return m->probB; }
void mm_svm_set_threads(mm_svm *m, int n_threads) { m->n_threads = n_threads < 1 ? 1 : n_threads; }

void mm_svm_free(mm_svm *m)
{
    if (!m) return;
    free(m->classes); free(m->nsv); free(m->start); free(m->sv); free(m->sv_sq);
    free(m->coef); free(m->rho); free(m->probA); free(m->probB); free(m->center);
    free(m);
}

/* ------------------------------------------------------------ persistence */

static const char *const kernel_names[] = {"linear", "poly", "rbf", "sigmoid", NULL};

int mm_svm_save(const mm_svm *M, hid_t g, mm_err *err)
{
    size_t np = mm_svm_n_pairs(M);
    hsize_t dm[1] = {(hsize_t)M->m}, dp[1] = {np}, dsv[2] = {M->n_sv, M->d},
            dc[2] = {(hsize_t)(M->m - 1), M->n_sv};
    int rc = mm_h5_attr_set_str(g, "kind", "svm", err);
    if (!rc) rc = mm_h5_attr_set_str(g, "kernel", kernel_names[M->kernel], err);
    if (!rc) rc = mm_h5_attr_set_f64(g, "gamma", M->gamma, err);
    if (!rc) rc = mm_h5_attr_set_f64(g, "coef0", M->coef0, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "degree", M->degree, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "label_space", M->n_classes, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "n_features", (int64_t)M->d, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "probability", M->probA != NULL, err);
    if (!rc) rc = mm_h5_write_i32(g, "classes", M->classes, 1, dm, err);
    if (!rc) rc = mm_h5_write_i32(g, "n_support", M->nsv, 1, dm, err);
    if (!rc && M->n_sv) rc = mm_h5_write_f32(g, "support_vectors", M->sv, 2, dsv, err);   /* minus center */
    if (!rc && M->center) {
        hsize_t dd[1] = {M->d};
        rc = mm_h5_write_f32(g, "center", M->center, 1, dd, err);
    }
    if (!rc && M->n_sv) rc = mm_h5_write_f64(g, "dual_coef", M->coef, 2, dc, err);
    if (!rc) rc = mm_h5_write_f64(g, "rho", M->rho, 1, dp, err);
    if (!rc && M->probA) rc = mm_h5_write_f64(g, "probA", M->probA, 1, dp, err);
    if (!rc && M->probB) rc = mm_h5_write_f64(g, "probB", M->probB, 1, dp, err);
    return rc;
}

int mm_svm_load(hid_t g, int n_threads, mm_svm **out, mm_err *err)
{
    char *s = NULL;
    int rc = mm_h5_attr_get_str(g, "kind", &s, err);
    if (rc) return rc;
    if (strcmp(s, "svm")) {
        rc = mm_err_set(err, MM_EFORMAT, "svm model: group holds a '%s', expected an svm", s);
        free(s);
        return rc;
    }
    free(s);
    mm_svm *M = mm_calloc(1, sizeof *M, err);
    if (!M) return MM_ENOMEM;
    M->n_threads = n_threads < 1 ? 1 : n_threads;
    int64_t deg, ls, nf, prob;
    int r;
    hsize_t dims[4];
    if ((rc = mm_h5_attr_get_str(g, "kernel", &s, err))) goto fail;
    M->kernel = -1;
    for (int k = 0; kernel_names[k]; k++) if (!strcmp(s, kernel_names[k])) M->kernel = k;
    if (M->kernel < 0) { rc = mm_err_set(err, MM_EFORMAT, "svm model: unknown kernel '%s'", s); free(s); goto fail; }
    free(s);
    if ((rc = mm_h5_attr_get_f64(g, "gamma", &M->gamma, err)) || (rc = mm_h5_attr_get_f64(g, "coef0", &M->coef0, err)) ||
        (rc = mm_h5_attr_get_i64(g, "degree", &deg, err)) || (rc = mm_h5_attr_get_i64(g, "label_space", &ls, err)) ||
        (rc = mm_h5_attr_get_i64(g, "n_features", &nf, err)) || (rc = mm_h5_attr_get_i64(g, "probability", &prob, err)))
        goto fail;
    if (!isfinite(M->gamma) || !(M->gamma > 0) || !isfinite(M->coef0) || deg < 0 || deg > 64 || ls < 2 ||
        ls > 100000 || nf < 1 || nf > 100000000) {
        rc = mm_err_set(err, MM_EFORMAT, "svm model: implausible gamma %g, coef0 %g, degree %lld, classes %lld or features %lld",
                        M->gamma, M->coef0, (long long)deg, (long long)ls, (long long)nf);
        goto fail;
    }
    M->degree = (int)deg;
    M->n_classes = (int)ls;
    M->d = (size_t)nf;
    if ((rc = mm_h5_read_i32(g, "classes", 1, &M->classes, &r, dims, err))) goto fail;
    M->m = (int)dims[0];
    if (dims[0] < 2 || dims[0] > (hsize_t)ls) {
        rc = mm_err_set(err, MM_EFORMAT, "svm model: 'classes' has %llu entries, expected 2..%lld",
                        (unsigned long long)dims[0], (long long)ls);
        goto fail;
    }
    for (int a = 0; a < M->m; a++)
        if (M->classes[a] < 0 || M->classes[a] >= ls || (a && M->classes[a] <= M->classes[a - 1])) {
            rc = mm_err_set(err, MM_EFORMAT, "svm model: 'classes' must increase within [0, %lld)", (long long)ls);
            goto fail;
        }
    if ((rc = mm_h5_read_i32(g, "n_support", 1, &M->nsv, &r, dims, err))) goto fail;
    if (dims[0] != (hsize_t)M->m) { rc = mm_err_set(err, MM_EFORMAT, "svm model: 'n_support' has %llu entries, expected %d", (unsigned long long)dims[0], M->m); goto fail; }
    M->start = mm_calloc((size_t)M->m, sizeof *M->start, err);
    if (!M->start) { rc = MM_ENOMEM; goto fail; }
    size_t tot = 0;
    for (int a = 0; a < M->m; a++) {
        if (M->nsv[a] < 0 || M->nsv[a] > 0x3fffffff) { rc = mm_err_set(err, MM_EFORMAT, "svm model: negative or huge n_support"); goto fail; }
        M->start[a] = (int32_t)tot;
        tot += (size_t)M->nsv[a];
    }
    M->n_sv = tot;
    size_t np = mm_svm_n_pairs(M);
    if (tot) {
        if ((rc = mm_h5_read_f32(g, "support_vectors", 2, &M->sv, &r, dims, err))) goto fail;
        if (dims[0] != tot || dims[1] != M->d) {
            rc = mm_err_set(err, MM_EFORMAT, "svm model: 'support_vectors' is %llux%llu, expected %zux%zu",
                            (unsigned long long)dims[0], (unsigned long long)dims[1], tot, M->d);
            goto fail;
        }
        if ((rc = mm_check_finite(M->sv, tot, M->d, "svm model: support_vectors", err))) { rc = MM_EFORMAT; goto fail; }
        if ((rc = mm_h5_read_f64(g, "dual_coef", 2, &M->coef, &r, dims, err))) goto fail;
        if (dims[0] != (hsize_t)(M->m - 1) || dims[1] != tot) {
            rc = mm_err_set(err, MM_EFORMAT, "svm model: 'dual_coef' is %llux%llu, expected %dx%zu",
                            (unsigned long long)dims[0], (unsigned long long)dims[1], M->m - 1, tot);
            goto fail;
        }
        for (size_t i = 0; i < tot * (size_t)(M->m - 1); i++)
            if (!isfinite(M->coef[i])) { rc = mm_err_set(err, MM_EFORMAT, "svm model: non-finite dual coefficient"); goto fail; }
    }
    if (M->kernel == MM_SVM_RBF) {
        if ((rc = mm_h5_read_f32(g, "center", 1, &M->center, &r, dims, err))) goto fail;
        if (dims[0] != M->d) {
            rc = mm_err_set(err, MM_EFORMAT, "svm model: 'center' has %llu values, expected %zu", (unsigned long long)dims[0], M->d);
            goto fail;
        }
        if ((rc = mm_check_finite(M->center, 1, M->d, "svm model: center", err))) { rc = MM_EFORMAT; goto fail; }
    }
    M->sv_sq = mm_malloc(tot ? tot : 1, sizeof *M->sv_sq, err);
    if (!M->sv_sq) { rc = MM_ENOMEM; goto fail; }
    derive_state(M);
    const char *names[3] = {"rho", "probA", "probB"};
    double **dst[3] = {&M->rho, &M->probA, &M->probB};
    for (int k = 0; k < (prob ? 3 : 1); k++) {
        if ((rc = mm_h5_read_f64(g, names[k], 1, dst[k], &r, dims, err))) goto fail;
        if (dims[0] != np) {
            rc = mm_err_set(err, MM_EFORMAT, "svm model: '%s' has %llu entries, expected %zu", names[k], (unsigned long long)dims[0], np);
            goto fail;
        }
        for (size_t i = 0; i < np; i++)
            if (!isfinite((*dst[k])[i])) { rc = mm_err_set(err, MM_EFORMAT, "svm model: non-finite '%s'", names[k]); goto fail; }
    }
    *out = M;
    return 0;
fail:
    mm_svm_free(M);
    return rc;
}

/* ----------------------------------------------------------- learner table */

typedef struct svm_state {
    mm_svm_params p;
    uint64_t seed;
    int n_threads;
    mm_svm *model;
} svm_state;

static int lv_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    mm_svm_params p;
    int rc = mm_svm_params_from_cfg(params, &p, err);
    if (rc) return rc;
    svm_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->p = p;
    s->seed = seed;
    s->n_threads = n_threads;
    *state = s;
    return 0;
}

static int lv_fit(void *state, const mm_fit_data *dt, mm_err *err)
{
    svm_state *s = state;
    mm_svm *m;
    int rc = mm_svm_train(dt->X, dt->y, dt->n, dt->d, dt->n_classes, &s->p, s->seed, s->n_threads, &m, err);
    if (rc) return rc;
    mm_svm_free(s->model);
    s->model = m;
    return 0;
}

static int lv_predict(const void *state, const float *X, size_t n, float *proba, mm_err *err)
{
    const svm_state *s = state;
    if (!s->model) return mm_err_set(err, MM_EINVAL, "svm: model is not fitted");
    return mm_svm_predict_proba(s->model, X, n, s->model->d, proba, err);
}

static int lv_save(const void *state, hid_t g, mm_err *err)
{
    const svm_state *s = state;
    if (!s->model) return mm_err_set(err, MM_EINVAL, "svm: cannot save an unfitted model");
    return mm_svm_save(s->model, g, err);
}

static int lv_load(hid_t g, int n_threads, void **state, mm_err *err)
{
    svm_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->p = mm_svm_params_default();
    s->n_threads = n_threads;
    int rc = mm_svm_load(g, n_threads, &s->model, err);
    if (rc) { free(s); return rc; }
    *state = s;
    return 0;
}

static void lv_shape(const void *state, int *k, size_t *d)
{
    const mm_svm *m = ((const svm_state *)state)->model;
    *k = m ? m->n_classes : 0;   /* the label space: the width of a probability row */
    *d = m ? m->d : 0;
}

static void lv_free(void *state)
{
    svm_state *s = state;
    if (!s) return;
    mm_svm_free(s->model);
    free(s);
}

const mm_learner_vt mm_learner_svm = {
    .name = "svm",
    .params = &SVM_PARAMS,
    .summary = "C-SVC (LIBSVM's SMO, one-vs-one) with Platt-scaled probabilities",
    .wants_validation = 0,
    .concurrent_fits = 1,
    .create = lv_create,
    .fit = lv_fit,
    .predict_proba = lv_predict,
    .save = lv_save,
    .load = lv_load,
    .shape = lv_shape,
    .history = NULL,
    .free = lv_free,
};
