/* logreg.c — multinomial L2 logistic regression by L-BFGS (the `logreg` learner).
 *
 * Reference: scikit-learn 1.2 LogisticRegression(solver='lbfgs',
 * multi_class='multinomial'), whose objective is the weighted *sum* of
 * cross-entropies plus ||W||^2/(2C), minimised by scipy 1.10 L-BFGS-B without
 * bounds: memory 10, Moré–Thuente line search (ftol 1e-3, gtol 0.9, xtol 0.1,
 * at most 20 evaluations, first step 1/||d||), pair skipped when s'y <= eps
 * (-g's), memory dropped and steepest descent retried after a failed search.
 * Loss and gradient in double over fixed row chunks summed in chunk order,
 * so results do not depend on the thread count; the chunk kernel is compiled
 * per instruction set (AVX-512, AVX2, x86-64) with the same bits on each. Left out: see logreg.h.
 */
#include "learn/logreg.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "core/cpu.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/params.h"

#define LBFGS_M 10          /* scipy maxcor */
#define LS_MAX 20           /* scipy maxls */
#define MAX_FEV 15000       /* scipy maxfun */
#define LS_FTOL 1e-3        /* Moré–Thuente sufficient decrease (L-BFGS-B lnsrlb) */
#define LS_GTOL 0.9         /* curvature */
#define LS_XTOL 0.1
#define STP_MAX 1e10        /* L-BFGS-B `big` without bounds */

struct mm_logreg {
    int n_classes;          /* label space */
    int K;                  /* classes present in the fit */
    size_t d;
    int fit_intercept;
    int32_t *classes;       /* (K) labels, increasing */
    double *coef;           /* (K, d) */
    double *intercept;      /* (K) */
    long n_iter;
    int converged;
    double objective;
    float *loss_hist;       /* (n_hist) mean weighted cross-entropy per iteration */
    size_t n_hist;
    int n_threads;
};

#define LR(f) offsetof(mm_logreg_params, f)
static const mm_param LOGREG_ROWS[] = {
    {"C", MM_PARAM_DOUBLE, LR(C), 0, MM_PARAM_NOMAX, .min_open = 1, .def = 1, .range_text = "a finite number > 0",
     .help = "inverse strength of the L2 penalty"},
    {"max_iter", MM_PARAM_LONG, LR(max_iter), 1, 1000000000, .def = 100, .help = "L-BFGS iterations"},
    {"tol", MM_PARAM_DOUBLE, LR(tol), 0, MM_PARAM_NOMAX, .def = 1e-4,
     .help = "stop when the largest gradient component is at most tol (scipy's gtol)"},
    {"fit_intercept", MM_PARAM_BOOL, LR(fit_intercept), .def = 1, .help = "learn an unpenalised bias per class"},
    {"class_weight", MM_PARAM_CUSTOM, LR(class_weight_balanced), .parse = mm_param_parse_class_weight,
     .def_text = "none", .type_text = "string", .range_text = "balanced or none",
     .help = "balanced: row weight n / (n_present_classes n_class)"},
    {NULL},
};
#undef LR

static const mm_param_table LOGREG_PARAMS = {"logreg", "logreg params", LOGREG_ROWS};

mm_logreg_params mm_logreg_params_default(void)
{
    mm_logreg_params p;
    memset(&p, 0, sizeof p);
    mm_params_defaults(&LOGREG_PARAMS, &p);
    p.ftol = 2.220446049250313e-09;   /* scipy's L-BFGS-B default; not a key (sklearn has none) */
    return p;
}

int mm_logreg_params_from_cfg(const mm_cfg *map, mm_logreg_params *out, mm_err *err)
{
    mm_logreg_params p = mm_logreg_params_default();
    int rc = mm_params_parse(&LOGREG_PARAMS, map, &p, err);
    if (!rc) *out = p;
    return rc;
}

static int check_params(const mm_logreg_params *p, mm_err *err)
{
    int rc = mm_params_check(&LOGREG_PARAMS, p, err);
    if (!rc && (!(p->ftol >= 0) || !isfinite(p->ftol)))
        rc = mm_err_set(err, MM_EINVAL, "logreg: ftol must be a finite number >= 0, got %g", p->ftol);
    return rc;
}

/* ------------------------------------------------------- loss and gradient */

/* Dot product of a double vector with a float vector; 8 independent partial
 * sums in a fixed order (vectorisable without reassociation). */
static inline double dot_df(const double *w, const float *x, size_t d)
{
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= d; j += 8)
        for (int k = 0; k < 8; k++) acc[k] += w[j + k] * (double)x[j + k];
    double s = 0;
    for (; j < d; j++) s += w[j] * (double)x[j];
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}

/* GCC/Clang vector extensions: explicit 8-lane double arithmetic, each lane
 * an independent sum, so the order of operations is fixed by the source
 * (whatever the instruction set the compiler maps the lanes onto). */
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

/* Unaligned loads (macros: functions returning vectors change the ABI on
 * builds without AVX). */
#define LD8(dst, p) memcpy(&(dst), (p), sizeof(v8d))
#define LD8F(dst, p) do { v8f t_; memcpy(&t_, (p), sizeof t_); (dst) = __builtin_convertvector(t_, v8d); } while (0)

/* The kernels below are inlined into one chunk evaluation compiled three
 * times (AVX-512, AVX2, baseline x86-64; chosen at run time): the 8-lane
 * arithmetic is written out, there is no reassociation and no fused
 * multiply-add (-ffp-contract=off), so every path gives the same bits. */
#define KERNEL static inline __attribute__((always_inline))

/* Four classes × four rows: zc[r] = w_c · x_r for c < 4, each with 8
 * partial sums (one 8-lane vector), then the tail, then the lanes in order
 * (the same per-(class, row) order as dot24_dd and dot4_dd). x: the 4 rows
 * widened to double, stride d; w: 4 rows of stride D; z: (4 classes, RB). */
KERNEL void dot44_dd(const double *w, size_t D, const double *x, size_t d, double *z)
{
    v8d a[4][4] = {{{0}}};
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        v8d wv[4], xv[4];
        for (int c = 0; c < 4; c++) LD8(wv[c], w + c * D + j);
        for (int r = 0; r < 4; r++) LD8(xv[r], x + r * d + j);
        for (int c = 0; c < 4; c++)
            for (int r = 0; r < 4; r++) a[c][r] += wv[c] * xv[r];
    }
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++) {
            double s = 0;
            for (size_t t = j; t < d; t++) s += w[c * D + t] * x[r * d + t];
            for (int k = 0; k < 8; k++) s += a[c][r][k];
            z[c * 4 + r] = s;
        }
}

/* Two classes × four rows (w streamed once per row block): z0[r] = w0 · x_r,
 * z1[r] = w1 · x_r, each with 8 partial sums (one 8-lane vector), then the
 * tail, then the lanes in order. x: the 4 rows widened to double, stride d. */
KERNEL void dot24_dd(const double *w0p, const double *w1p, const double *x, size_t d, double z0[4],
                            double z1[4])
{
    v8d a0[4] = {{0}}, a1[4] = {{0}};
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        v8d w0, w1, xv;
        LD8(w0, w0p + j);
        LD8(w1, w1p + j);
        for (int r = 0; r < 4; r++) {
            LD8(xv, x + r * d + j);
            a0[r] += w0 * xv;
            a1[r] += w1 * xv;
        }
    }
    for (int r = 0; r < 4; r++) {
        double s0 = 0, s1 = 0;
        for (size_t t = j; t < d; t++) {
            s0 += w0p[t] * x[r * d + t];
            s1 += w1p[t] * x[r * d + t];
        }
        for (int k = 0; k < 8; k++) {
            s0 += a0[r][k];
            s1 += a1[r][k];
        }
        z0[r] = s0;
        z1[r] = s1;
    }
}

/* One class × four rows, the same operation order per (class, row). */
KERNEL void dot4_dd(const double *w, const double *x, size_t d, double z[4])
{
    v8d a[4] = {{0}};
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        v8d wv, xv;
        LD8(wv, w + j);
        for (int r = 0; r < 4; r++) {
            LD8(xv, x + r * d + j);
            a[r] += wv * xv;
        }
    }
    for (int r = 0; r < 4; r++) {
        double s = 0;
        for (size_t t = j; t < d; t++) s += w[t] * x[r * d + t];
        for (int k = 0; k < 8; k++) s += a[r][k];
        z[r] = s;
    }
}

/* The chunk's gradient as one small GEMM, gc (K, D) = gzc^T X_c: for every
 * 8-column slice, 8 classes at a time accumulate over the chunk's rows in row
 * order in registers, then are stored once (no read-modify-write of gc).
 * gzc: (nrows, Kp) logit gradients, Kp a multiple of 8, padding zero. */
KERNEL void grad_chunk(double *gc, size_t D, int fi, const float *X, size_t d, size_t nrows,
                       const double *gzc, int K, int Kp)
{
    for (int k0 = 0; k0 < K; k0 += 8) {
        int kn = K - k0 < 8 ? K - k0 : 8;
        size_t j = 0;
        for (; j + 8 <= d; j += 8) {
            v8d acc[8] = {{0}};
            for (size_t r = 0; r < nrows; r++) {
                v8d xv;
                LD8F(xv, X + r * d + j);
                const double *gr = gzc + r * (size_t)Kp + k0;
                for (int k = 0; k < 8; k++) acc[k] += gr[k] * xv;
            }
            for (int k = 0; k < kn; k++) memcpy(gc + (size_t)(k0 + k) * D + j, &acc[k], sizeof acc[k]);
        }
        for (; j < d; j++)
            for (int k = 0; k < kn; k++) {
                double sum = 0;
                for (size_t r = 0; r < nrows; r++) sum += gzc[r * (size_t)Kp + k0 + k] * (double)X[r * d + j];
                gc[(size_t)(k0 + k) * D + j] = sum;
            }
    }
    if (fi)
        for (int k = 0; k < K; k++) {
            double sum = 0;
            for (size_t r = 0; r < nrows; r++) sum += gzc[r * (size_t)Kp + k];
            gc[(size_t)k * D + d] = sum;
        }
}

#define RB 4   /* rows per block in the loss kernel */

typedef struct problem problem;
typedef void (*chunk_fn)(const problem *pb, const double *w, int want_g, size_t c);
struct problem {
    const float *X;        /* (n, d) */
    const int32_t *y;      /* (n) in [0, K) */
    const double *sw;      /* (n) row weights or NULL (all 1) */
    size_t n, d, D;        /* D = d + fit_intercept: row stride of w */
    int K, fi, nt;
    double alpha;          /* 1 / C */
    size_t P;              /* K * D parameters */
    int Kp;                /* K rounded up to a multiple of 8 */
    size_t chunk, n_chunks;/* fixed row chunks (depend on n and P only, never on threads) */
    size_t stride;         /* per chunk: P + 2 + RB K + RB d + chunk Kp */
    double *part;          /* (n_chunks, stride): partial gradient (P), loss, weight sum, the
                            * logits of one row block (K, RB), its rows widened to double
                            * (RB, d), the chunk's logit gradients (chunk, Kp) */
    chunk_fn eval_chunk;   /* eval_chunk_{avx512,avx2,base}: the CPU's widest, same bits */
};

/* Chunk c of the data term at w: its loss, weight sum and (want_g) partial
 * gradient into its slot of pb->part. Rows in order, RB at a time. */
KERNEL void eval_chunk(const problem *pb, const double *w, int want_g, size_t c)
{
    const size_t P = pb->P, D = pb->D, d = pb->d, stride = pb->stride;
    const int K = pb->K, Kp = pb->Kp;
    double *gc = pb->part + c * stride;
    double *zb = gc + P + 2;                 /* (K, RB) */
    double *xb = zb + RB * (size_t)K;        /* (RB, d) */
    double *gzc = xb + RB * d;               /* (chunk rows, Kp) */
    double loss = 0, wsum = 0;
    size_t i0 = c * pb->chunk, i1 = i0 + pb->chunk < pb->n ? i0 + pb->chunk : pb->n;
    for (size_t i = i0; i < i1; i += RB) {
        int nr = i1 - i < RB ? (int)(i1 - i) : RB;
        for (int r = 0; r < RB; r++) {   /* widen once; pad with row i (its results unused) */
            const float *x = pb->X + (i + (size_t)(r < nr ? r : 0)) * d;
            for (size_t j = 0; j < d; j++) xb[(size_t)r * d + j] = x[j];
        }
        int k = 0;
        for (; k + 4 <= K; k += 4) dot44_dd(w + (size_t)k * D, D, xb, d, zb + (size_t)k * RB);
        for (; k + 2 <= K; k += 2)
            dot24_dd(w + (size_t)k * D, w + (size_t)(k + 1) * D, xb, d, zb + (size_t)k * RB,
                     zb + (size_t)(k + 1) * RB);
        if (k < K) dot4_dd(w + (size_t)k * D, xb, d, zb + (size_t)k * RB);
        if (pb->fi)
            for (k = 0; k < K; k++)
                for (int r = 0; r < RB; r++) zb[(size_t)k * RB + r] += w[(size_t)k * D + d];
        for (int r = 0; r < nr; r++) {
            double zmax = -INFINITY, se = 0;
            for (k = 0; k < K; k++) zmax = fmax(zmax, zb[(size_t)k * RB + r]);
            for (k = 0; k < K; k++) se += exp(zb[(size_t)k * RB + r] - zmax);
            double lse = zmax + log(se), s = pb->sw ? pb->sw[i + r] : 1.0;
            int yi = pb->y[i + r];
            loss += s * (lse - zb[(size_t)yi * RB + r]);   /* CE = logsumexp(z) - z_y */
            wsum += s;
            double *gr = gzc + (i - i0 + (size_t)r) * (size_t)Kp;
            for (k = 0; k < K; k++)   /* dCE/dz_k = softmax_k - [k == y] */
                gr[k] = s * (exp(zb[(size_t)k * RB + r] - lse) - (k == yi ? 1.0 : 0.0));
            for (; k < Kp; k++) gr[k] = 0;
        }
    }
    if (want_g) grad_chunk(gc, D, pb->fi, pb->X + i0 * d, d, i1 - i0, gzc, K, Kp);
    gc[P] = loss;
    gc[P + 1] = wsum;
}

__attribute__((target("avx512f"))) static void eval_chunk_avx512(const problem *pb, const double *w, int want_g, size_t c)
{
    eval_chunk(pb, w, want_g, c);
}

__attribute__((target("avx2"))) static void eval_chunk_avx2(const problem *pb, const double *w, int want_g, size_t c)
{
    eval_chunk(pb, w, want_g, c);
}

static void eval_chunk_base(const problem *pb, const double *w, int want_g, size_t c)
{
    eval_chunk(pb, w, want_g, c);
}

static int problem_init(problem *pb, const float *X, const int32_t *y, const double *sw, size_t n, size_t d,
                        int K, double C, int fi, int nt, mm_err *err)
{
    pb->X = X; pb->y = y; pb->sw = sw; pb->n = n; pb->d = d; pb->K = K; pb->fi = fi;
    pb->nt = nt < 1 ? 1 : nt;
    pb->D = d + (size_t)(fi != 0);
    pb->alpha = 1.0 / C;
    pb->P = (size_t)K * pb->D;
    pb->Kp = (K + 7) / 8 * 8;
    size_t fixed = pb->P + 2 + RB * (size_t)K + RB * d;
    /* about 64 rows a chunk, at most 64 chunks, and at most 256 MB of partials */
    size_t nc = (n + 63) / 64;
    if (nc > 64) nc = 64;
    size_t cap = ((size_t)256 << 20) / (fixed * sizeof(double));
    if (nc > cap) nc = cap;
    if (nc < 1) nc = 1;
    pb->chunk = (n + nc - 1) / nc;
    pb->n_chunks = (n + pb->chunk - 1) / pb->chunk;
    pb->stride = fixed + pb->chunk * (size_t)pb->Kp;
    pb->eval_chunk = mm_cpu_avx512() ? eval_chunk_avx512 : mm_cpu_avx2_fma() ? eval_chunk_avx2 : eval_chunk_base;
    pb->part = mm_malloc(pb->n_chunks * pb->stride, sizeof(double), err);
    return pb->part ? 0 : MM_ENOMEM;
}

/* Objective at w; gradient into g (may be NULL); *mean_ce = weighted mean
 * cross-entropy (the data term divided by the weight sum). */
static double problem_eval(const problem *pb, const double *w, double *g, double *mean_ce)
{
    const size_t P = pb->P, D = pb->D, d = pb->d, stride = pb->stride;
    const int K = pb->K;
    int par = pb->nt > 1 && pb->n_chunks > 1 && (double)pb->n * (double)P > 2e5;
    (void)par;   /* used only by the pragma (unused when OpenMP is off) */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(pb->nt) if (par)
    for (size_t c = 0; c < pb->n_chunks; c++) pb->eval_chunk(pb, w, g != NULL, c);
    double f = 0, wsum = 0;
    for (size_t c = 0; c < pb->n_chunks; c++) { f += pb->part[c * stride + P]; wsum += pb->part[c * stride + P + 1]; }
    if (mean_ce) *mean_ce = wsum > 0 ? f / wsum : 0;
    if (g) {
        memcpy(g, pb->part, P * sizeof *g);
        for (size_t c = 1; c < pb->n_chunks; c++) {
            const double *gc = pb->part + c * stride;
            for (size_t t = 0; t < P; t++) g[t] += gc[t];
        }
    }
    /* penalty ||W||^2 / (2C) on the coefficients, not the intercepts */
    double pen = 0;
    for (int k = 0; k < K; k++) {
        const double *wk = w + (size_t)k * D;
        double *gk = g ? g + (size_t)k * D : NULL;
        for (size_t j = 0; j < d; j++) {
            pen += wk[j] * wk[j];
            if (gk) gk[j] += pb->alpha * wk[j];
        }
    }
    return f + 0.5 * pb->alpha * pen;
}

int mm_logreg_objective(const float *X, const int32_t *y, const double *sw, size_t n, size_t d,
                        int K, double C, int fit_intercept, const double *w, double *obj,
                        double *grad, int n_threads, mm_err *err)
{
    if (n == 0 || d == 0 || K < 1) return mm_err_set(err, MM_EINVAL, "logreg objective: empty problem (%zu rows, %zu features, %d classes)", n, d, K);
    if (!(C > 0) || !isfinite(C)) return mm_err_set(err, MM_EINVAL, "logreg objective: C must be a finite number > 0, got %g", C);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K) return mm_err_set(err, MM_EINVAL, "logreg objective: label %d at row %zu outside [0, %d)", y[i], i, K);
    problem pb;
    int rc = problem_init(&pb, X, y, sw, n, d, K, C, fit_intercept, n_threads, err);
    if (rc) return rc;
    *obj = problem_eval(&pb, w, grad, NULL);
    free(pb.part);
    return 0;
}

/* ------------------------------------------------- Moré–Thuente line search */

/* MINPACK-2 dcsrch/dcstep semantics: find a step satisfying the strong Wolfe
 * conditions f(stp) <= f(0) + ftol stp f'(0), |f'(stp)| <= gtol |f'(0)|,
 * by safeguarded cubic/quadratic interpolation within a shrinking interval. */
enum { LS_FG, LS_CONV, LS_WARN };

typedef struct lsearch {
    int brackt, stage;
    double ginit, gtest, finit, width, width1;
    double stx, fx, gx, sty, fy, gy, stmin, stmax;
    double stpmin, stpmax;
} lsearch;

static void ls_start(lsearch *s, double f, double g, double stp, double stpmin, double stpmax)
{
    s->brackt = 0;
    s->stage = 1;
    s->finit = f;
    s->ginit = g;
    s->gtest = LS_FTOL * g;
    s->width = stpmax - stpmin;
    s->width1 = s->width / 0.5;
    s->stx = 0; s->fx = f; s->gx = g;
    s->sty = 0; s->fy = f; s->gy = g;
    s->stmin = 0;
    s->stmax = stp + 4.0 * stp;
    s->stpmin = stpmin;
    s->stpmax = stpmax;
}

/* One safeguarded step: update the interval (stx, sty) that brackets a
 * minimiser from the trial (stp, fp, dp) and propose the next trial. */
static void ls_step(double *stx, double *fx, double *dx, double *sty, double *fy, double *dy,
                    double *stp, double fp, double dp, int *brackt, double stpmin, double stpmax)
{
    double sgnd = dp * (*dx / fabs(*dx)), stpf, theta, s, gamma, p, q, r, stpc, stpq;
    if (fp > *fx) {
        /* higher function value: the minimiser is bracketed; cubic or cubic/quadratic mean */
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = fmax(fabs(theta), fmax(fabs(*dx), fabs(dp)));
        gamma = s * sqrt((theta / s) * (theta / s) - (*dx / s) * (dp / s));
        if (*stp < *stx) gamma = -gamma;
        p = (gamma - *dx) + theta;
        q = ((gamma - *dx) + gamma) + dp;
        r = p / q;
        stpc = *stx + r * (*stp - *stx);
        stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        stpf = fabs(stpc - *stx) < fabs(stpq - *stx) ? stpc : stpc + (stpq - stpc) / 2.0;
        *brackt = 1;
    } else if (sgnd < 0) {
        /* derivatives of opposite sign: bracketed; cubic or secant, whichever is farther */
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = fmax(fabs(theta), fmax(fabs(*dx), fabs(dp)));
        gamma = s * sqrt((theta / s) * (theta / s) - (*dx / s) * (dp / s));
        if (*stp > *stx) gamma = -gamma;
        p = (gamma - dp) + theta;
        q = ((gamma - dp) + gamma) + *dx;
        r = p / q;
        stpc = *stp + r * (*stx - *stp);
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
        *brackt = 1;
    } else if (fabs(dp) < fabs(*dx)) {
        /* same sign, derivative magnitude decreasing: cubic only if it tends to
         * infinity in the step direction or its minimum is beyond stp */
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = fmax(fabs(theta), fmax(fabs(*dx), fabs(dp)));
        gamma = s * sqrt(fmax(0.0, (theta / s) * (theta / s) - (*dx / s) * (dp / s)));
        if (*stp > *stx) gamma = -gamma;
        p = (gamma - dp) + theta;
        q = (gamma + (*dx - dp)) + gamma;
        r = p / q;
        if (r < 0 && gamma != 0) stpc = *stp + r * (*stx - *stp);
        else if (*stp > *stx) stpc = stpmax;
        else stpc = stpmin;
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if (*brackt) {
            stpf = fabs(stpc - *stp) < fabs(stpq - *stp) ? stpc : stpq;
            if (*stp > *stx) stpf = fmin(*stp + 0.66 * (*sty - *stp), stpf);
            else stpf = fmax(*stp + 0.66 * (*sty - *stp), stpf);
        } else {
            stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
            stpf = fmin(stpmax, stpf);
            stpf = fmax(stpmin, stpf);
        }
    } else {
        /* same sign, derivative not decreasing: cubic with the other end, or a bound */
        if (*brackt) {
            theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            s = fmax(fabs(theta), fmax(fabs(*dy), fabs(dp)));
            gamma = s * sqrt((theta / s) * (theta / s) - (*dy / s) * (dp / s));
            if (*stp > *sty) gamma = -gamma;
            p = (gamma - dp) + theta;
            q = ((gamma - dp) + gamma) + *dy;
            r = p / q;
            stpc = *stp + r * (*sty - *stp);
            stpf = stpc;
        } else if (*stp > *stx) stpf = stpmax;
        else stpf = stpmin;
    }
    if (fp > *fx) {
        *sty = *stp; *fy = fp; *dy = dp;
    } else {
        if (sgnd < 0) { *sty = *stx; *fy = *fx; *dy = *dx; }
        *stx = *stp; *fx = fp; *dx = dp;
    }
    *stp = stpf;
}

/* Given f and g = f'(stp) at the current trial, either accept (LS_CONV,
 * LS_WARN: stop with this stp) or write the next trial into *stp (LS_FG). */
static int ls_next(lsearch *s, double f, double g, double *stp)
{
    double ftest = s->finit + *stp * s->gtest;
    if (s->stage == 1 && f <= ftest && g >= 0) s->stage = 2;
    int warn = (s->brackt && (*stp <= s->stmin || *stp >= s->stmax)) ||     /* rounding errors */
               (s->brackt && s->stmax - s->stmin <= LS_XTOL * s->stmax) ||  /* interval too small */
               (*stp == s->stpmax && f <= ftest && g <= s->gtest) ||
               (*stp == s->stpmin && (f > ftest || g >= s->gtest));
    if (f <= ftest && fabs(g) <= LS_GTOL * (-s->ginit)) return LS_CONV;
    if (warn) return LS_WARN;
    if (s->stage == 1 && f <= s->fx && f > ftest) {
        /* stage 1 on the modified function psi(stp) = f - stp * gtest */
        double fm = f - *stp * s->gtest, fxm = s->fx - s->stx * s->gtest, fym = s->fy - s->sty * s->gtest;
        double gm = g - s->gtest, gxm = s->gx - s->gtest, gym = s->gy - s->gtest;
        ls_step(&s->stx, &fxm, &gxm, &s->sty, &fym, &gym, stp, fm, gm, &s->brackt, s->stmin, s->stmax);
        s->fx = fxm + s->stx * s->gtest;
        s->fy = fym + s->sty * s->gtest;
        s->gx = gxm + s->gtest;
        s->gy = gym + s->gtest;
    } else {
        ls_step(&s->stx, &s->fx, &s->gx, &s->sty, &s->fy, &s->gy, stp, f, g, &s->brackt, s->stmin, s->stmax);
    }
    if (s->brackt) {   /* force sufficient shrinking of the interval */
        if (fabs(s->sty - s->stx) >= 0.66 * s->width1) *stp = s->stx + 0.5 * (s->sty - s->stx);
        s->width1 = s->width;
        s->width = fabs(s->sty - s->stx);
        s->stmin = fmin(s->stx, s->sty);
        s->stmax = fmax(s->stx, s->sty);
    } else {
        s->stmin = *stp + 1.1 * (*stp - s->stx);
        s->stmax = *stp + 4.0 * (*stp - s->stx);
    }
    *stp = fmax(*stp, s->stpmin);
    *stp = fmin(*stp, s->stpmax);
    if ((s->brackt && (*stp <= s->stmin || *stp >= s->stmax)) ||
        (s->brackt && s->stmax - s->stmin <= LS_XTOL * s->stmax))
        *stp = s->stx;   /* no further progress possible: the best step so far */
    return LS_FG;
}

/* ------------------------------------------------------------------ L-BFGS */

static double dotd(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef struct lbfgs_out {
    long n_iter;
    int converged;
    double f;
    float *hist;     /* (n_iter + 1) mean cross-entropy */
} lbfgs_out;

/* Minimise the problem from w = 0 (w updated in place). */
static int lbfgs_run(const problem *pb, const mm_logreg_params *p, double *w, lbfgs_out *out, mm_err *err)
{
    const size_t P = pb->P;
    const int m = LBFGS_M;
    double *buf = mm_malloc((size_t)(2 * m + 5) * P, sizeof(double), err);
    size_t hcap = 64;
    float *hist = mm_malloc(hcap, sizeof(float), err);
    if (!buf || !hist) { free(buf); free(hist); return MM_ENOMEM; }
    double *S = buf;                      /* (m, P) ring of steps s = x_{k+1} - x_k */
    double *Yv = S + (size_t)m * P;       /* (m, P) ring of gradient changes */
    double *g = Yv + (size_t)m * P;       /* (P) gradient at w */
    double *dir = g + P;                  /* (P) search direction */
    double *xt = dir + P, *gt = xt + P;   /* (P) trial point and its gradient */
    double *q = gt + P;                   /* (P) two-loop work vector */
    double rho[LBFGS_M], alpha[LBFGS_M], theta = 1;
    int col = 0, head = 0;                /* pairs stored; index of the oldest */
    memset(w, 0, P * sizeof *w);
    double ce;
    double f = problem_eval(pb, w, g, &ce);
    long nfev = 1, iter = 0;
    size_t nh = 0;
    hist[nh++] = (float)ce;
    int converged = 0;
    double pg = 0;
    for (size_t t = 0; t < P; t++) pg = fmax(pg, fabs(g[t]));
    if (pg <= p->tol) converged = 1;
    while (!converged) {
        /* direction d = -H g by the two-loop recursion, H0 = (s'y / y'y) I */
        if (col == 0) {
            for (size_t t = 0; t < P; t++) dir[t] = -g[t];
        } else {
            memcpy(q, g, P * sizeof *q);
            for (int k = col - 1; k >= 0; k--) {
                int i = (head + k) % m;
                alpha[i] = rho[i] * dotd(S + (size_t)i * P, q, P);
                const double *yi = Yv + (size_t)i * P;
                for (size_t t = 0; t < P; t++) q[t] -= alpha[i] * yi[t];
            }
            for (size_t t = 0; t < P; t++) q[t] /= theta;
            for (int k = 0; k < col; k++) {
                int i = (head + k) % m;
                double b = rho[i] * dotd(Yv + (size_t)i * P, q, P);
                const double *si = S + (size_t)i * P;
                for (size_t t = 0; t < P; t++) q[t] += si[t] * (alpha[i] - b);
            }
            for (size_t t = 0; t < P; t++) dir[t] = -q[t];
        }
        double gd = dotd(g, dir, P);
        int failed = !(gd < 0);   /* not a descent direction (rounding) */
        double stp = 0, ft = f, gdt = gd;
        if (!failed) {
            double dnorm = sqrt(dotd(dir, dir, P));
            stp = iter == 0 ? fmin(1.0 / dnorm, STP_MAX) : 1.0;
            lsearch ls;
            ls_start(&ls, f, gd, stp, 0, STP_MAX);
            for (int nls = 0;;) {
                for (size_t t = 0; t < P; t++) xt[t] = w[t] + stp * dir[t];
                ft = problem_eval(pb, xt, gt, &ce);
                nfev++;
                nls++;
                gdt = dotd(gt, dir, P);
                if (!isfinite(ft)) { failed = 1; break; }
                int task = ls_next(&ls, ft, gdt, &stp);
                if (task != LS_FG) break;
                if (nls >= LS_MAX) { failed = 1; break; }
            }
        }
        if (failed) {
            if (col == 0) break;   /* steepest descent failed too: stop at the current point */
            col = 0;               /* drop the memory and retry along -g */
            continue;
        }
        iter++;
        /* new pair s = stp d, y = g_t - g; s'y = stp (g_t - g)'d */
        double dr = (gdt - gd) * stp, ddum = -gd * stp;
        int slot = col < m ? (head + col) % m : head;
        double *si = S + (size_t)slot * P, *yi = Yv + (size_t)slot * P;
        for (size_t t = 0; t < P; t++) {
            si[t] = xt[t] - w[t];
            yi[t] = gt[t] - g[t];
        }
        double rr = dotd(yi, yi, P);
        double fold = f;
        memcpy(w, xt, P * sizeof *w);
        memcpy(g, gt, P * sizeof *g);
        f = ft;
        if (nh == hcap) {
            float *nhb = realloc(hist, 2 * hcap * sizeof *hist);
            if (!nhb) { free(buf); free(hist); return mm_err_set(err, MM_ENOMEM, "logreg: out of memory"); }
            hist = nhb;
            hcap *= 2;
        }
        hist[nh++] = (float)ce;
        pg = 0;
        for (size_t t = 0; t < P; t++) pg = fmax(pg, fabs(g[t]));
        if (pg <= p->tol) { converged = 1; break; }
        if (fold - f <= p->ftol * fmax(fmax(fabs(fold), fabs(f)), 1.0)) { converged = 1; break; }
        if (iter >= p->max_iter || nfev > MAX_FEV) break;
        if (dr > DBL_EPSILON * ddum) {   /* keep the pair only with enough curvature */
            rho[slot] = 1.0 / dr;
            theta = rr / dr;
            if (col < m) col++;
            else head = (head + 1) % m;
        }
    }
    free(buf);
    out->n_iter = iter;
    out->converged = converged;
    out->f = f;
    out->hist = hist;
    return 0;
}

/* ------------------------------------------------------------------ fitting */

int mm_logreg_train(const float *X, const int32_t *y, size_t n, size_t d, int n_classes,
                    const mm_logreg_params *p, int n_threads, mm_logreg **out, mm_err *err)
{
    int rc = check_params(p, err);
    if (rc) return rc;
    if (n == 0 || d == 0) return mm_err_set(err, MM_EDATA, "logreg: empty training set (%zu rows, %zu features)", n, d);
    if (n_classes < 2 || n_classes > 1000000) return mm_err_set(err, MM_EINVAL, "logreg: need 2..1e6 classes, got %d", n_classes);
    if ((rc = mm_check_finite(X, n, d, "logreg: training features", err))) return rc;
    size_t *count = mm_calloc((size_t)n_classes, sizeof *count, err);
    if (!count) return MM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= n_classes) {
            free(count);
            return mm_err_set(err, MM_EDATA, "logreg: label %d at row %zu outside [0, %d)", y[i], i, n_classes);
        }
        count[y[i]]++;
    }
    int K = 0;
    for (int c = 0; c < n_classes; c++) K += count[c] > 0;
    if (K < 2) {
        free(count);
        return mm_err_set(err, MM_EDATA, "logreg: the training labels hold a single class; need at least 2");
    }
    mm_logreg *M = mm_calloc(1, sizeof *M, err);
    int32_t *cidx = mm_malloc((size_t)n_classes, sizeof *cidx, err);   /* label → present index */
    int32_t *yc = mm_malloc(n, sizeof *yc, err);
    double *sw = p->class_weight_balanced ? mm_malloc(n, sizeof *sw, err) : NULL;
    problem pb = {0};
    double *w = NULL;
    lbfgs_out lo = {0};
    if (!M || !cidx || !yc || (p->class_weight_balanced && !sw)) { rc = MM_ENOMEM; goto fail; }
    M->n_classes = n_classes;
    M->K = K;
    M->d = d;
    M->fit_intercept = p->fit_intercept != 0;
    M->n_threads = n_threads < 1 ? 1 : n_threads;
    M->classes = mm_malloc((size_t)K, sizeof *M->classes, err);
    M->coef = mm_malloc((size_t)K * d, sizeof *M->coef, err);
    M->intercept = mm_calloc((size_t)K, sizeof *M->intercept, err);
    if (!M->classes || !M->coef || !M->intercept) { rc = MM_ENOMEM; goto fail; }
    for (int c = 0, k = 0; c < n_classes; c++) {
        cidx[c] = count[c] ? k : -1;
        if (count[c]) M->classes[k++] = c;
    }
    for (size_t i = 0; i < n; i++) {
        yc[i] = cidx[y[i]];
        /* sklearn compute_class_weight('balanced'): n / (K · n_c) over the present classes */
        if (sw) sw[i] = (double)n / ((double)K * (double)count[y[i]]);
    }
    if ((rc = problem_init(&pb, X, yc, sw, n, d, K, p->C, M->fit_intercept, M->n_threads, err))) goto fail;
    w = mm_malloc(pb.P, sizeof *w, err);
    if (!w) { rc = MM_ENOMEM; goto fail; }
    if ((rc = lbfgs_run(&pb, p, w, &lo, err))) goto fail;
    if (!isfinite(lo.f)) { rc = mm_err_set(err, MM_EDATA, "logreg: the objective became non-finite; scale the features"); goto fail; }
    for (int k = 0; k < K; k++) {
        memcpy(M->coef + (size_t)k * d, w + (size_t)k * pb.D, d * sizeof *w);
        if (M->fit_intercept) M->intercept[k] = w[(size_t)k * pb.D + d];
    }
    M->n_iter = lo.n_iter;
    M->converged = lo.converged;
    M->objective = lo.f;
    M->loss_hist = lo.hist;
    M->n_hist = (size_t)lo.n_iter + 1;
    lo.hist = NULL;
    *out = M;
    M = NULL;
fail:
    free(lo.hist);
    free(w);
    free(pb.part);
    free(sw); free(yc); free(cidx); free(count);
    mm_logreg_free(M);
    return rc;
}

int mm_logreg_predict_proba(const mm_logreg *m, const float *X, size_t n, size_t d, float *proba,
                            mm_err *err)
{
    if (d != m->d) return mm_err_set(err, MM_EINVAL, "logreg: input has %zu features, the model was fitted on %zu", d, m->d);
    const int K = m->K, L = m->n_classes;
    int nt = m->n_threads < 1 ? 1 : m->n_threads, fail = 0;
    (void)nt;    /* used only by the pragma */
    #pragma omp parallel num_threads(nt) if (nt > 1 && (double)n * d * K > 1e6)
    {
        double *z = malloc((size_t)K * sizeof *z);
        if (!z) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            if (!z) continue;
            const float *x = X + i * d;
            float *pr = proba + i * (size_t)L;
            double zmax = -INFINITY, se = 0;
            for (int k = 0; k < K; k++) {
                z[k] = dot_df(m->coef + (size_t)k * d, x, d) + m->intercept[k];
                if (z[k] > zmax) zmax = z[k];
            }
            for (int k = 0; k < K; k++) se += (z[k] = exp(z[k] - zmax));
            for (int c = 0; c < L; c++) pr[c] = 0;
            for (int k = 0; k < K; k++) pr[m->classes[k]] = (float)(z[k] / se);
        }
        free(z);
    }
    if (fail) return mm_err_set(err, MM_ENOMEM, "logreg: out of memory");
    return 0;
}

int mm_logreg_n_present(const mm_logreg *m) { return m->K; }
const int32_t *mm_logreg_classes(const mm_logreg *m) { return m->classes; }
const double *mm_logreg_coef(const mm_logreg *m) { return m->coef; }
const double *mm_logreg_intercept(const mm_logreg *m) { return m->intercept; }
long mm_logreg_n_iter(const mm_logreg *m) { return m->n_iter; }
int mm_logreg_converged(const mm_logreg *m) { return m->converged; }
double mm_logreg_objective_value(const mm_logreg *m) { return m->objective; }
const float *mm_logreg_loss_history(const mm_logreg *m, size_t *n)
{
    *n = m->n_hist;
    return m->loss_hist;
}
void mm_logreg_set_threads(mm_logreg *m, int n_threads) { m->n_threads = n_threads < 1 ? 1 : n_threads; }

void mm_logreg_free(mm_logreg *m)
{
    if (!m) return;
    free(m->classes); free(m->coef); free(m->intercept); free(m->loss_hist);
    free(m);
}

/* ------------------------------------------------------------ persistence */

int mm_logreg_save(const mm_logreg *M, hid_t g, mm_err *err)
{
    hsize_t dk[1] = {(hsize_t)M->K}, dc[2] = {(hsize_t)M->K, M->d};
    int rc = mm_h5_attr_set_str(g, "kind", "logreg", err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "label_space", M->n_classes, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "n_features", (int64_t)M->d, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "fit_intercept", M->fit_intercept, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "n_iter", M->n_iter, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "converged", M->converged, err);
    if (!rc) rc = mm_h5_attr_set_f64(g, "objective", M->objective, err);
    if (!rc) rc = mm_h5_write_i32(g, "classes", M->classes, 1, dk, err);
    if (!rc) rc = mm_h5_write_f64(g, "coef", M->coef, 2, dc, err);
    if (!rc) rc = mm_h5_write_f64(g, "intercept", M->intercept, 1, dk, err);
    return rc;
}

int mm_logreg_load(hid_t g, int n_threads, mm_logreg **out, mm_err *err)
{
    char *s = NULL;
    int rc = mm_h5_attr_get_str(g, "kind", &s, err);
    if (rc) return rc;
    if (strcmp(s, "logreg")) {
        rc = mm_err_set(err, MM_EFORMAT, "logreg model: group holds a '%s', expected a logreg", s);
        free(s);
        return rc;
    }
    free(s);
    mm_logreg *M = mm_calloc(1, sizeof *M, err);
    if (!M) return MM_ENOMEM;
    M->n_threads = n_threads < 1 ? 1 : n_threads;
    int64_t ls, nf, fi, it, cv;
    int r;
    hsize_t dims[4];
    if ((rc = mm_h5_attr_get_i64(g, "label_space", &ls, err)) || (rc = mm_h5_attr_get_i64(g, "n_features", &nf, err)) ||
        (rc = mm_h5_attr_get_i64(g, "fit_intercept", &fi, err)) || (rc = mm_h5_attr_get_i64(g, "n_iter", &it, err)) ||
        (rc = mm_h5_attr_get_i64(g, "converged", &cv, err)) || (rc = mm_h5_attr_get_f64(g, "objective", &M->objective, err)))
        goto fail;
    if (ls < 2 || ls > 1000000 || nf < 1 || nf > 100000000 || (fi != 0 && fi != 1) || it < 0) {
        rc = mm_err_set(err, MM_EFORMAT, "logreg model: implausible classes %lld, features %lld, fit_intercept %lld or n_iter %lld",
                        (long long)ls, (long long)nf, (long long)fi, (long long)it);
        goto fail;
    }
    M->n_classes = (int)ls;
    M->d = (size_t)nf;
    M->fit_intercept = (int)fi;
    M->n_iter = it;
    M->converged = cv != 0;
    if ((rc = mm_h5_read_i32(g, "classes", 1, &M->classes, &r, dims, err))) goto fail;
    if (dims[0] < 2 || dims[0] > (hsize_t)ls) {
        rc = mm_err_set(err, MM_EFORMAT, "logreg model: 'classes' has %llu entries, expected 2..%lld",
                        (unsigned long long)dims[0], (long long)ls);
        goto fail;
    }
    M->K = (int)dims[0];
    for (int k = 0; k < M->K; k++)
        if (M->classes[k] < 0 || M->classes[k] >= ls || (k && M->classes[k] <= M->classes[k - 1])) {
            rc = mm_err_set(err, MM_EFORMAT, "logreg model: 'classes' must increase within [0, %lld)", (long long)ls);
            goto fail;
        }
    if ((rc = mm_h5_read_f64(g, "coef", 2, &M->coef, &r, dims, err))) goto fail;
    if (dims[0] != (hsize_t)M->K || dims[1] != M->d) {
        rc = mm_err_set(err, MM_EFORMAT, "logreg model: 'coef' is %llux%llu, expected %dx%zu",
                        (unsigned long long)dims[0], (unsigned long long)dims[1], M->K, M->d);
        goto fail;
    }
    if ((rc = mm_h5_read_f64(g, "intercept", 1, &M->intercept, &r, dims, err))) goto fail;
    if (dims[0] != (hsize_t)M->K) {
        rc = mm_err_set(err, MM_EFORMAT, "logreg model: 'intercept' has %llu entries, expected %d",
                        (unsigned long long)dims[0], M->K);
        goto fail;
    }
    for (size_t i = 0; i < (size_t)M->K * M->d; i++)
        if (!isfinite(M->coef[i])) { rc = mm_err_set(err, MM_EFORMAT, "logreg model: non-finite coefficient at %zu", i); goto fail; }
    for (int k = 0; k < M->K; k++)
        if (!isfinite(M->intercept[k])) { rc = mm_err_set(err, MM_EFORMAT, "logreg model: non-finite intercept %d", k); goto fail; }
    *out = M;
    return 0;
fail:
    mm_logreg_free(M);
    return rc;
}

/* ----------------------------------------------------------- learner table */

typedef struct lr_state {
    mm_logreg_params p;
    int n_threads;
    mm_logreg *model;
    mm_history hist;
} lr_state;

static int lv_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    (void)seed;   /* deterministic: no randomness */
    mm_logreg_params p;
    int rc = mm_logreg_params_from_cfg(params, &p, err);
    if (rc) return rc;
    lr_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->p = p;
    s->n_threads = n_threads;
    *state = s;
    return 0;
}

static int lv_fit(void *state, const mm_fit_data *dt, mm_err *err)
{
    lr_state *s = state;
    mm_logreg *m;
    int rc = mm_logreg_train(dt->X, dt->y, dt->n, dt->d, dt->n_classes, &s->p, s->n_threads, &m, err);
    if (rc) return rc;
    mm_logreg_free(s->model);
    s->model = m;
    s->hist = (mm_history){.n = m->n_hist, .train_loss = m->loss_hist, .best = -1};
    return 0;
}

static int lv_predict(const void *state, const float *X, size_t n, float *proba, mm_err *err)
{
    const lr_state *s = state;
    if (!s->model) return mm_err_set(err, MM_EINVAL, "logreg: model is not fitted");
    return mm_logreg_predict_proba(s->model, X, n, s->model->d, proba, err);
}

static int lv_save(const void *state, hid_t g, mm_err *err)
{
    const lr_state *s = state;
    if (!s->model) return mm_err_set(err, MM_EINVAL, "logreg: cannot save an unfitted model");
    return mm_logreg_save(s->model, g, err);
}

static int lv_load(hid_t g, int n_threads, void **state, mm_err *err)
{
    lr_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->p = mm_logreg_params_default();
    s->n_threads = n_threads;
    int rc = mm_logreg_load(g, n_threads, &s->model, err);
    if (rc) { free(s); return rc; }
    *state = s;
    return 0;
}

static void lv_shape(const void *state, int *k, size_t *d)
{
    const mm_logreg *m = ((const lr_state *)state)->model;
    *k = m ? m->n_classes : 0;   /* the label space: the width of a probability row */
    *d = m ? m->d : 0;
}

static const mm_history *lv_history(const void *state)
{
    const lr_state *s = state;
    return s->model && s->model->loss_hist ? &s->hist : NULL;
}

static void lv_free(void *state)
{
    lr_state *s = state;
    if (!s) return;
    mm_logreg_free(s->model);
    free(s);
}

const mm_learner_vt mm_learner_logreg = {
    .name = "logreg",
    .params = &LOGREG_PARAMS,
    .summary = "multinomial L2 logistic regression by L-BFGS (scikit-learn LogisticRegression, lbfgs)",
    .wants_validation = 0,
    .concurrent_fits = 1,
    .create = lv_create,
    .fit = lv_fit,
    .predict_proba = lv_predict,
    .save = lv_save,
    .load = lv_load,
    .shape = lv_shape,
    .history = lv_history,
    .free = lv_free,
};
