/* gbdt.c — gradient-boosted trees, XGBoost 'hist' style (see gbdt.h).
 *
 * Reference: XGBoost 1.7 (src/common/hist_util, src/tree/hist/evaluate_splits,
 * updater_quantile_hist, objective/regression_obj + multiclass_obj): float
 * gradients, double histogram sums, gains rounded to float as XGBoost does,
 * ties going to the lower feature and the lower bin. Trees are grown depth
 * first, which for depth-wise growth without a leaf limit gives the same tree
 * as XGBoost's level order and keeps only O(max_depth) histograms alive.
 * Left out: see gbdt.h.
 */
#include "learn/gbdt.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "core/rng.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/params.h"
#include "learn/tree_common.h"

#define RT_EPS 1e-6f        /* XGBoost kRtEps: smallest loss change that counts as a split */
#define HESS_EPS 1e-16f     /* floor on hessians, as XGBoost's objectives */
#define LOSS_EPS 1e-16      /* clip of probabilities in logloss / mlogloss */
#define SPARSE_ROWS 256     /* nodes with fewer rows are searched without a histogram */

typedef struct gb_node {
    float thr;          /* go left when x < thr */
    int32_t feature;    /* -1 for a leaf */
    int32_t left;       /* tree-local left child; right is left + 1; -1 for a leaf */
    float value;        /* leaf output (learning_rate * weight); 0 inside */
} gb_node;

struct mm_gbdt {
    mm_gbdt_params params;
    int K;              /* classes */
    int G;              /* trees per round: 1 (logistic) or K (softmax) */
    size_t d;
    size_t n_rounds;    /* rounds kept */
    size_t n_nodes;
    float base;         /* initial margin of every output */
    int64_t *offsets;   /* (n_rounds * G + 1); tree of round r, class g is r * G + g */
    gb_node *nodes;     /* (n_nodes) */
    size_t hist_n;      /* rounds run */
    float *train_loss, *train_acc, *val_loss, *val_acc;   /* (hist_n); val_* may be NULL */
    long best;
};

/* ---- parameters ---- */

#define GB(f) offsetof(mm_gbdt_params, f)
static const mm_param GB_ROWS[] = {
    {"n_estimators", MM_PARAM_INT, GB(n_estimators), 1, 1000000, .def = 100, .help = "boosting rounds"},
    {"max_depth", MM_PARAM_INT, GB(max_depth), 1, 30, .def = 6, .help = "depth of each tree"},
    {"learning_rate", MM_PARAM_DOUBLE, GB(learning_rate), 0, 1, .min_open = 1, .def = 0.3,
     .help = "shrinkage (eta) of each tree's leaf weights"},
    {"reg_lambda", MM_PARAM_DOUBLE, GB(reg_lambda), 0, MM_PARAM_NOMAX, .def = 1, .help = "L2 penalty on leaf weights"},
    {"gamma", MM_PARAM_DOUBLE, GB(gamma), 0, MM_PARAM_NOMAX, .def = 0,
     .help = "minimum loss reduction to split (min_split_loss)"},
    {"min_child_weight", MM_PARAM_DOUBLE, GB(min_child_weight), 0, MM_PARAM_NOMAX, .def = 1,
     .help = "minimum hessian sum in each child"},
    {"subsample", MM_PARAM_DOUBLE, GB(subsample), 0, 1, .min_open = 1, .def = 1,
     .help = "fraction of rows per tree (Bernoulli)"},
    {"colsample_bytree", MM_PARAM_DOUBLE, GB(colsample_bytree), 0, 1, .min_open = 1, .def = 1,
     .help = "fraction of features per tree"},
    {"max_bin", MM_PARAM_INT, GB(max_bin), 2, 256, .def = 256, .help = "histogram bins per feature"},
    {"early_stopping_rounds", MM_PARAM_INT, GB(early_stopping_rounds), 0, 1000000, .def = 0,
     .help = "stop after this many rounds without a better validation loss, keep the best; 0: off"},
    {NULL},
};
#undef GB

static const mm_param_table mm_gbdt_param_table = {"gbdt", "gbdt parameters", GB_ROWS};

mm_gbdt_params mm_gbdt_params_default(void)
{
    mm_gbdt_params p;
    memset(&p, 0, sizeof p);
    mm_params_defaults(&mm_gbdt_param_table, &p);
    return p;
}

int mm_gbdt_params_check(const mm_gbdt_params *p, mm_err *err)
{
    return mm_params_check(&mm_gbdt_param_table, p, err);
}

int mm_gbdt_params_from_cfg(const mm_cfg *map, mm_gbdt_params *out, mm_err *err)
{
    mm_gbdt_params p = mm_gbdt_params_default();
    int rc = mm_params_parse(&mm_gbdt_param_table, map, &p, err);
    if (!rc) *out = p;
    return rc;
}

/* ---- quantile bins ---- */

typedef struct gb_bins {
    size_t n, d;
    uint8_t *bin;       /* (d, n) bin of X[i, f]: number of cuts <= x */
    uint32_t *off;      /* (d + 1) first histogram slot of feature f */
    float *cut;         /* (off[d]) upper edge of each bin: x < cut[off[f] + b] <=> bin <= b */
} gb_bins;

static void bins_free(gb_bins *B)
{
    free(B->bin); free(B->off); free(B->cut);
}

/* An entry of XGBoost's weighted quantile summary (ranks as float, its RType). */
typedef struct wq_entry { float rmin, rmax, wmin, value; } wq_entry;

/* WQSummary::SetPrune: keep at most maxsize entries at evenly spaced ranks. */
static size_t wq_prune(const wq_entry *src, size_t ns, size_t maxsize, wq_entry *dst)
{
    if (ns <= maxsize) {
        memmove(dst, src, ns * sizeof *dst);
        return ns;
    }
    const float begin = src[0].rmax, range = src[ns - 1].rmin - src[0].rmax;
    const size_t n = maxsize - 1;
    size_t size = 0, i = 1, lastidx = 0;
    dst[size++] = src[0];
    for (size_t k = 1; k < n; k++) {
        float dx2 = 2 * (((float)k * range) / (float)n + begin);
        while (i < ns - 1 && dx2 >= src[i + 1].rmax + src[i + 1].rmin) i++;
        if (i == ns - 1) break;
        if (dx2 < (src[i].rmin + src[i].wmin) + (src[i + 1].rmax - src[i + 1].wmin)) {
            if (i != lastidx) { dst[size++] = src[i]; lastidx = i; }
        } else if (i + 1 != lastidx) {
            dst[size++] = src[i + 1];
            lastidx = i + 1;
        }
    }
    if (lastidx != ns - 1) dst[size++] = src[ns - 1];
    return size;
}

/* Cuts of one feature from its exact summary e (U distinct values with their
 * counts, n rows), as XGBoost 1.7 for a sketch that stayed exact: prune to
 * min(n, 8 * max_bin) entries, then to max_bin + 1, then AddCutPoint (entries
 * 1 .. max_bin - 1) and a sentinel above the maximum. With U <= max_bin the
 * cuts are v1 .. v_{U-1}. e is overwritten. Returns the cut count. */
static uint32_t feature_cuts(wq_entry *e, size_t U, size_t n, int max_bin, float *cut)
{
    size_t inter = n < (size_t)max_bin * 8 ? n : (size_t)max_bin * 8;
    size_t max_num_bins = inter < (size_t)max_bin ? inter : (size_t)max_bin;
    size_t na = wq_prune(e, U, inter, e);
    na = wq_prune(e, na, max_num_bins + 1, e);
    size_t req = na < max_num_bins ? na : max_num_bins;
    uint32_t k = 0;
    for (size_t i = 1; i < req; i++)
        if (i == 1 || e[i].value > cut[k - 1]) cut[k++] = e[i].value;
    float last = e[na - 1].value;
    cut[k++] = last + (fabsf(last) + 1e-5f);
    return k;
}

static int bins_make(const float *X, size_t n, size_t d, int max_bin, int n_threads, gb_bins *B,
                     mm_err *err)
{
    memset(B, 0, sizeof *B);
    B->n = n; B->d = d;
    float *cuts = mm_malloc(d * ((size_t)max_bin + 1), sizeof *cuts, err);
    uint32_t *nc = mm_malloc(d, sizeof *nc, err);
    B->bin = mm_malloc(n * d, 1, err);
    B->off = mm_malloc(d + 1, sizeof *B->off, err);
    int fail = !cuts || !nc || !B->bin || !B->off;
    if (!fail) {
        #pragma omp parallel num_threads(n_threads)
        {
            uint64_t *keys = malloc(n * sizeof *keys), *tmp = malloc(n * sizeof *tmp);
            wq_entry *ent = malloc(n * sizeof *ent);
            int ok = keys && tmp && ent;
            if (!ok) {
                #pragma omp atomic write
                fail = 1;
            }
            #pragma omp for schedule(dynamic, 4)
            for (size_t f = 0; f < d; f++) {
                if (!ok) continue;
                for (size_t i = 0; i < n; i++) keys[i] = (uint64_t)mm_tree_float_key(X[i * d + f]) << 32 | i;
                mm_tree_sort_keys(keys, tmp, n, 4);
                size_t U = 0;
                for (size_t i = 0; i < n; i++) {
                    if (i == 0 || (keys[i] >> 32) != (keys[i - 1] >> 32)) {
                        float r0 = U ? ent[U - 1].rmax : 0.0f;
                        ent[U++] = (wq_entry){r0, r0 + 1.0f, 1.0f, X[(size_t)(uint32_t)keys[i] * d + f]};
                    } else {
                        ent[U - 1].rmax += 1.0f;
                        ent[U - 1].wmin += 1.0f;
                    }
                }
                float *c = cuts + f * (size_t)(max_bin + 1);
                uint32_t k = feature_cuts(ent, U, n, max_bin, c);
                nc[f] = k;
                uint8_t *bf = B->bin + f * n;
                uint32_t b = 0;
                for (size_t i = 0; i < n; i++) {
                    uint32_t row = (uint32_t)keys[i];
                    float x = X[(size_t)row * d + f];
                    while (b + 1 < k && x >= c[b]) b++;
                    bf[row] = (uint8_t)b;
                }
            }
            free(keys); free(tmp); free(ent);
        }
    }
    if (!fail) {
        B->off[0] = 0;
        for (size_t f = 0; f < d; f++) B->off[f + 1] = B->off[f] + nc[f];
        B->cut = mm_malloc(B->off[d], sizeof *B->cut, err);
        if (B->cut)
            for (size_t f = 0; f < d; f++) memcpy(B->cut + B->off[f], cuts + f * ((size_t)max_bin + 1), nc[f] * sizeof *cuts);
        else fail = 1;
    }
    free(cuts);
    free(nc);
    if (fail) {
        bins_free(B);
        return mm_err_set(err, MM_ENOMEM, "gbdt: out of memory building histogram bins");
    }
    return 0;
}

/* ---- one tree ---- */

typedef struct gb_pair { double g, h; } gb_pair;
typedef struct gb_gh { float g, h; } gb_gh;

typedef struct gb_tree {
    gb_node *nodes;
    uint8_t *sbin;      /* (cap) split bin of each internal node (training only) */
    size_t n, cap;
} gb_tree;

typedef struct gb_ctx {
    const gb_bins *B;
    const mm_gbdt_params *p;
    float lambda, mcw, gamma, eta;   /* parameters as XGBoost stores them (float) */
    uint64_t seed;
} gb_ctx;

typedef struct gb_item {
    size_t start, end;
    int depth;
    int32_t id;
    double G, H;
    gb_pair *hist;      /* NULL when searched without one (few rows) or at max_depth */
    int sorted;         /* W->srt holds this node's sorted row lists */
} gb_item;

typedef struct gb_best {
    float loss;
    int found;
    uint32_t feature, bin;
    double GL, HL;
} gb_best;

typedef struct gb_work {
    uint32_t *rows, *tmp;   /* (n) row ids; nodes own contiguous ranges, ascending */
    uint32_t *feats;        /* (d) features of this tree, ascending */
    size_t nf;
    gb_best *fbest;         /* (d) best split per feature */
    gb_pair **pool;         /* free histograms */
    size_t pool_n, pool_cap;
    gb_item *stack;         /* (2 * max_depth + 4) */
    uint32_t *srt;          /* (d, SPARSE_ROWS) per-feature row lists sorted by bin, for the
                               small subtree being grown; position p holds row slot base + p */
    size_t srt_base;        /* first row slot of that subtree */
    uint8_t *flag;          /* (n) 1 when the row goes left at the current split */
    gb_gh *ghn;             /* (n) gradient pairs of the node being histogrammed */
    int oom;
} gb_work;

static gb_pair *hist_get(gb_work *W, size_t total)
{
    if (W->pool_n) return W->pool[--W->pool_n];
    gb_pair *h = malloc(total * sizeof *h);
    if (!h) W->oom = 1;
    return h;
}

static void hist_put(gb_work *W, gb_pair *h)
{
    if (!h) return;
    if (W->pool_n == W->pool_cap) {
        size_t cap = W->pool_cap ? W->pool_cap * 2 : 16;
        gb_pair **np = realloc(W->pool, cap * sizeof *np);
        if (!np) { free(h); return; }
        W->pool = np;
        W->pool_cap = cap;
    }
    W->pool[W->pool_n++] = h;
}

static void work_free(gb_work *W)
{
    for (size_t i = 0; i < W->pool_n; i++) free(W->pool[i]);
    free(W->pool); free(W->rows); free(W->tmp); free(W->feats); free(W->fbest); free(W->stack);
    free(W->srt); free(W->flag); free(W->ghn);
    memset(W, 0, sizeof *W);
}

static int work_alloc(gb_work *W, size_t n, size_t d, int max_depth)
{
    memset(W, 0, sizeof *W);
    W->rows = malloc(n * sizeof *W->rows);
    W->tmp = malloc(n * sizeof *W->tmp);
    W->feats = malloc(d * sizeof *W->feats);
    W->fbest = malloc(d * sizeof *W->fbest);
    W->stack = malloc((2 * (size_t)max_depth + 4) * sizeof *W->stack);
    W->srt = malloc((size_t)SPARSE_ROWS * d * sizeof *W->srt);
    W->flag = malloc(n);
    W->ghn = malloc(n * sizeof *W->ghn);
    if (!W->rows || !W->tmp || !W->feats || !W->fbest || !W->stack || !W->srt || !W->flag || !W->ghn) {
        work_free(W);
        return -1;
    }
    return 0;
}

/* Sum gradient pairs of rows[start, end) per bin, for the tree's features.
 * The node's pairs are first gathered contiguously; features go four at a
 * time so each row's pair is loaded once per block. Every bin still sums its
 * rows in row order (the same sums for any blocking or thread count). */
static void hist_build(const gb_ctx *C, gb_work *W, const gb_gh *gh, size_t start, size_t end,
                       gb_pair *hist, int inner)
{
    const gb_bins *B = C->B;
    const size_t n = B->n, m = end - start;
    const uint32_t *rows = W->rows + start;
    gb_gh *ghn = W->ghn;
    for (size_t k = 0; k < m; k++) ghn[k] = gh[rows[k]];
    const size_t nblk = (W->nf + 3) / 4;
    #pragma omp parallel for num_threads(inner) schedule(dynamic, 1) if (inner > 1 && m * W->nf >= 65536)
    for (size_t jb = 0; jb < nblk; jb++) {
        size_t j0 = jb * 4, j1 = j0 + 4 < W->nf ? j0 + 4 : W->nf;
        gb_pair *h[4];
        const uint8_t *bf[4];
        for (size_t j = j0; j < j1; j++) {
            uint32_t f = W->feats[j];
            h[j - j0] = hist + B->off[f];
            memset(h[j - j0], 0, (B->off[f + 1] - B->off[f]) * sizeof(gb_pair));
            bf[j - j0] = B->bin + (size_t)f * n;
        }
        if (j1 - j0 == 4) {
            for (size_t k = 0; k < m; k++) {
                uint32_t r = rows[k];
                double g = ghn[k].g, hh = ghn[k].h;
                gb_pair *e0 = h[0] + bf[0][r], *e1 = h[1] + bf[1][r];
                gb_pair *e2 = h[2] + bf[2][r], *e3 = h[3] + bf[3][r];
                e0->g += g; e0->h += hh;
                e1->g += g; e1->h += hh;
                e2->g += g; e2->h += hh;
                e3->g += g; e3->h += hh;
            }
        } else {
            for (size_t j = 0; j < j1 - j0; j++)
                for (size_t k = 0; k < m; k++) {
                    gb_pair *e = h[j] + bf[j][rows[k]];
                    e->g += ghn[k].g;
                    e->h += ghn[k].h;
                }
        }
    }
}

/* XGBoost's CalcGainGivenWeight without constraints: G^2 / (H + lambda), as float. */
static inline float gain_of(double G, double H, float lambda)
{
    return H <= 0 ? 0.0f : (float)(G * G / (H + (double)lambda));
}

/* XGBoost's CalcWeight: -G / (H + lambda), 0 when H < min_child_weight. */
static inline float weight_of(double G, double H, float lambda, float mcw)
{
    return (H < (double)mcw || H <= 0) ? 0.0f : (float)(-G / (H + (double)lambda));
}

/* Best split of a node from its histogram: forward scan of each feature's bins,
 * both children with hessian >= min_child_weight, strictly larger loss change
 * wins (ties: lower bin, then lower feature). */
static void eval_split(const gb_ctx *C, gb_work *W, const gb_pair *hist, double G, double H,
                       size_t m, int inner, gb_best *best)
{
    const gb_bins *B = C->B;
    const float root = gain_of(G, H, C->lambda);
    const double mcw = C->mcw;
    #pragma omp parallel for num_threads(inner) schedule(dynamic, 8) if (inner > 1 && W->nf * 64 >= 65536 && m > 256)
    for (size_t j = 0; j < W->nf; j++) {
        uint32_t f = W->feats[j];
        const gb_pair *h = hist + B->off[f];
        uint32_t nb = B->off[f + 1] - B->off[f];
        gb_best b = {.loss = 0.0f, .found = 0, .feature = f};
        /* prefix sums, then every candidate's loss change in a vectorisable pass,
         * then the first strict maximum (an empty bin repeats its predecessor's
         * loss exactly, so it never wins) */
        double GLa[256], HLa[256];
        float loss[256];
        double GL = 0, HL = 0;
        const uint32_t nc = nb - 1;                       /* the last bin cannot split */
        for (uint32_t k = 0; k < nc; k++) {
            GL += h[k].g;
            HL += h[k].h;
            GLa[k] = GL;
            HLa[k] = HL;
        }
        const double lam = (double)C->lambda;
        double ql[256], qr[256];
        for (uint32_t k = 0; k < nc; k++) {                /* the divisions, vectorised */
            double gr = G - GLa[k];
            ql[k] = GLa[k] * GLa[k] / (HLa[k] + lam);
            qr[k] = gr * gr / ((H - HLa[k]) + lam);
        }
        for (uint32_t k = 0; k < nc; k++) {
            double hl = HLa[k], hr = H - hl;
            float sl = hl <= 0 ? 0.0f : (float)ql[k];
            float sr = hr <= 0 ? 0.0f : (float)qr[k];
            float l = (sl + sr) - root;
            loss[k] = (hl >= mcw && hr >= mcw) ? l : -INFINITY;
        }
        for (uint32_t k = 0; k < nc; k++)
            if (loss[k] > b.loss) { b.loss = loss[k]; b.found = 1; b.bin = k; b.GL = GLa[k]; b.HL = HLa[k]; }
        W->fbest[j] = b;
    }
    best->found = 0;
    best->loss = 0.0f;
    for (size_t j = 0; j < W->nf; j++)
        if (W->fbest[j].found && W->fbest[j].loss > best->loss) *best = W->fbest[j];
}

/* Nodes with few rows are searched without a histogram. When such a node is
 * reached, each feature's rows are sorted by bin once (stable: ascending rows
 * within a bin, the order a histogram build sums them in); its descendants
 * inherit the order by stable partition, so their searches are linear scans
 * of occupied bins. Depth-first growth finishes one small subtree before the
 * next starts, so one buffer W->srt (feature slot j, row slots relative to
 * the subtree's first, W->srt_base) serves them all. */
static void presort_rows(const gb_ctx *C, gb_work *W, size_t start, size_t end, int inner)
{
    const gb_bins *B = C->B;
    const size_t n = B->n, m = end - start;
    const uint32_t *rows = W->rows + start;
    #pragma omp parallel for num_threads(inner) schedule(dynamic, 8) if (inner > 1 && m * W->nf >= 65536)
    for (size_t j = 0; j < W->nf; j++) {
        uint64_t keys[SPARSE_ROWS], tmp[SPARSE_ROWS];
        const uint8_t *bf = B->bin + (size_t)W->feats[j] * n;
        for (size_t k = 0; k < m; k++) keys[k] = (uint64_t)bf[rows[k]] << 32 | k;
        mm_tree_sort_keys(keys, tmp, m, 1);
        uint32_t *lst = W->srt + j * SPARSE_ROWS;
        for (size_t k = 0; k < m; k++) lst[k] = rows[(uint32_t)keys[k]];
    }
}

/* Split each sorted list of [start, end) stably: rows with flag set first. */
static void partition_sorted(const gb_ctx *C, gb_work *W, size_t start, size_t end, int inner)
{
    const size_t m = end - start;
    const uint8_t *flag = W->flag;
    #pragma omp parallel for num_threads(inner) schedule(dynamic, 8) if (inner > 1 && m * W->nf >= 65536)
    for (size_t j = 0; j < W->nf; j++) {
        uint32_t right[SPARSE_ROWS];
        uint32_t *lst = W->srt + j * SPARSE_ROWS + (start - W->srt_base);
        size_t a = 0, r = 0;
        for (size_t k = 0; k < m; k++) {
            uint32_t row = lst[k];
            if (flag[row]) lst[a++] = row; else right[r++] = row;
        }
        memcpy(lst + a, right, r * sizeof *right);
    }
}

/* The split search of eval_split over the sorted lists of a small node. */
static void eval_split_sorted(const gb_ctx *C, gb_work *W, const gb_gh *gh, size_t start, size_t end,
                              double G, double H, int inner, gb_best *best)
{
    const gb_bins *B = C->B;
    const size_t n = B->n, m = end - start;
    const float root = gain_of(G, H, C->lambda);
    const double mcw = C->mcw;
    #pragma omp parallel for num_threads(inner) schedule(dynamic, 8) if (inner > 1 && m * W->nf >= 65536)
    for (size_t j = 0; j < W->nf; j++) {
        uint32_t f = W->feats[j];
        uint32_t nb = B->off[f + 1] - B->off[f];
        const uint8_t *bf = B->bin + (size_t)f * n;
        const uint32_t *lst = W->srt + j * SPARSE_ROWS + (start - W->srt_base);
        gb_best b = {.loss = 0.0f, .found = 0, .feature = f};
        double GL = 0, HL = 0;
        size_t k = 0;
        while (k < m) {
            uint32_t bin = bf[lst[k]];
            if (bin + 1 >= nb) break;                     /* the last bin cannot split */
            double bg = 0, bh = 0;
            for (; k < m && bf[lst[k]] == bin; k++) {
                bg += gh[lst[k]].g;
                bh += gh[lst[k]].h;
            }
            GL += bg;
            HL += bh;
            double GR = G - GL, HR = H - HL;
            if (HL < mcw) continue;
            if (HR < mcw) break;
            float loss = (float)(gain_of(GL, HL, C->lambda) + gain_of(GR, HR, C->lambda)) - root;
            if (loss > b.loss) { b.loss = loss; b.found = 1; b.bin = bin; b.GL = GL; b.HL = HL; }
        }
        W->fbest[j] = b;
    }
    best->found = 0;
    best->loss = 0.0f;
    for (size_t j = 0; j < W->nf; j++)
        if (W->fbest[j].found && W->fbest[j].loss > best->loss) *best = W->fbest[j];
}

static int tree_add_pair(gb_tree *T)
{
    if (T->n + 2 > T->cap) {
        size_t cap = T->cap ? T->cap * 2 : 32;
        gb_node *nn = realloc(T->nodes, cap * sizeof *nn);
        if (!nn) return -1;
        T->nodes = nn;
        uint8_t *nb = realloc(T->sbin, cap);
        if (!nb) return -1;
        T->sbin = nb;
        T->cap = cap;
    }
    T->n += 2;
    return 0;
}

/* Grow one tree on gradient pairs gh (n) for tree (round, group). When margin
 * is not NULL (no row sampling: every row reaches a leaf of this tree), each
 * leaf adds its value to margin[row * n_groups + group] of its rows. */
static int build_tree(const gb_ctx *C, gb_work *W, const gb_gh *gh, size_t round, int group, int inner,
                      gb_tree *T, float *margin, int n_groups)
{
    const gb_bins *B = C->B;
    const size_t n = B->n, d = B->d, total = B->off[d];
    const mm_gbdt_params *p = C->p;
    mm_rng rng;
    mm_rng_seed(&rng, C->seed, (uint64_t)round, (uint64_t)group);
    size_t m = 0;
    if (p->subsample < 1) {
        for (size_t i = 0; i < n; i++) if (mm_rng_uniform(&rng) < p->subsample) W->rows[m++] = (uint32_t)i;
    } else {
        for (size_t i = 0; i < n; i++) W->rows[i] = (uint32_t)i;
        m = n;
    }
    for (size_t f = 0; f < d; f++) W->feats[f] = (uint32_t)f;
    W->nf = d;
    if (p->colsample_bytree < 1) {
        size_t k = (size_t)(p->colsample_bytree * (double)d);
        if (k < 1) k = 1;
        for (size_t j = 0; j < k; j++) {
            size_t r = j + (size_t)mm_rng_below(&rng, d - j);
            uint32_t t = W->feats[r]; W->feats[r] = W->feats[j]; W->feats[j] = t;
        }
        for (size_t j = 1; j < k; j++) {            /* ascending, for the tie rule */
            uint32_t v = W->feats[j];
            size_t i = j;
            while (i > 0 && W->feats[i - 1] > v) { W->feats[i] = W->feats[i - 1]; i--; }
            W->feats[i] = v;
        }
        W->nf = k;
    }
    double G = 0, H = 0;
    for (size_t k = 0; k < m; k++) { G += gh[W->rows[k]].g; H += gh[W->rows[k]].h; }
    T->n = 0;
    if (tree_add_pair(T)) return -1;
    T->n = 1;
    gb_pair *root = NULL;
    if (m >= SPARSE_ROWS) {
        root = hist_get(W, total);
        if (!root) return -1;
        hist_build(C, W, gh, 0, m, root, inner);
    }
    size_t sp = 0;
    W->stack[sp++] = (gb_item){0, m, 0, 0, G, H, root, 0};
    while (sp) {
        gb_item it = W->stack[--sp];
        gb_node *nd = &T->nodes[it.id];
        *nd = (gb_node){0, -1, -1, C->eta * weight_of(it.G, it.H, C->lambda, C->mcw)};
        T->sbin[it.id] = 0;
        gb_best b = {0};
        if (it.depth < p->max_depth && it.end > it.start) {
            if (it.hist) {
                eval_split(C, W, it.hist, it.G, it.H, it.end - it.start, inner, &b);
            } else {
                if (!it.sorted) {
                    W->srt_base = it.start;
                    presort_rows(C, W, it.start, it.end, inner);
                }
                it.sorted = 1;
                eval_split_sorted(C, W, gh, it.start, it.end, it.G, it.H, inner, &b);
            }
        }
        if (!b.found || !(b.loss > RT_EPS) || b.loss < C->gamma) {
            hist_put(W, it.hist);
            if (margin)
                for (size_t k = it.start; k < it.end; k++) margin[(size_t)W->rows[k] * n_groups + group] += nd->value;
            continue;
        }
        /* stable partition: bin <= b.bin goes left */
        const uint8_t *bf = B->bin + (size_t)b.feature * n;
        size_t a = it.start, r = 0;
        for (size_t k = it.start; k < it.end; k++) {
            uint32_t row = W->rows[k];
            int go_left = bf[row] <= b.bin;
            W->flag[row] = (uint8_t)go_left;
            if (go_left) W->rows[a++] = row; else W->tmp[r++] = row;
        }
        memcpy(W->rows + a, W->tmp, r * sizeof *W->rows);
        int sorted = it.sorted && it.depth + 1 < p->max_depth;
        if (sorted) partition_sorted(C, W, it.start, it.end, inner);
        size_t child = T->n;
        if (child > INT32_MAX - 2 || tree_add_pair(T)) { hist_put(W, it.hist); return -1; }
        nd = &T->nodes[it.id];
        nd->feature = (int32_t)b.feature;
        nd->left = (int32_t)child;
        nd->thr = B->cut[B->off[b.feature] + b.bin];
        nd->value = 0;
        T->sbin[it.id] = (uint8_t)b.bin;
        /* children searched with a histogram need one: build the smaller child and
         * subtract it from the parent for the other; a lone dense child reuses
         * the parent's buffer */
        gb_pair *hl = NULL, *hr = NULL;
        size_t ml = a - it.start, mr = it.end - a;
        int deeper = it.depth + 1 < p->max_depth;
        int dl = deeper && ml >= SPARSE_ROWS, dr = deeper && mr >= SPARSE_ROWS;
        if (dl && dr) {
            int left_small = ml <= mr;
            gb_pair *small = hist_get(W, total);
            if (!small) { hist_put(W, it.hist); return -1; }
            if (left_small) hist_build(C, W, gh, it.start, a, small, inner);
            else hist_build(C, W, gh, a, it.end, small, inner);
            gb_pair *big = it.hist;
            for (size_t j = 0; j < W->nf; j++) {
                uint32_t f = W->feats[j];
                for (uint32_t k = B->off[f]; k < B->off[f + 1]; k++) {
                    big[k].g -= small[k].g;
                    big[k].h -= small[k].h;
                }
            }
            hl = left_small ? small : big;
            hr = left_small ? big : small;
        } else if (dl || dr) {
            if (dl) hist_build(C, W, gh, it.start, a, it.hist, inner);
            else hist_build(C, W, gh, a, it.end, it.hist, inner);
            hl = dl ? it.hist : NULL;
            hr = dr ? it.hist : NULL;
        } else {
            hist_put(W, it.hist);
        }
        W->stack[sp++] = (gb_item){a, it.end, it.depth + 1, (int32_t)child + 1, it.G - b.GL, it.H - b.HL, hr, sorted};
        W->stack[sp++] = (gb_item){it.start, a, it.depth + 1, (int32_t)child, b.GL, b.HL, hl, sorted};
    }
    return W->oom ? -1 : 0;
}

/* ---- objective ---- */

/* Gradient pairs at margins (n, G) into gh (G, n), in float as XGBoost. */
static void gradients(const float *margin, const int32_t *y, size_t n, int G, gb_gh *gh, int nt)
{
    #pragma omp parallel for num_threads(nt) schedule(static) if (n * (size_t)G > 20000)
    for (size_t i = 0; i < n; i++) {
        const float *mi = margin + i * G;
        if (G == 1) {
            float p = 1.0f / (1.0f + expf(-mi[0]));
            gh[i].g = p - (float)y[i];
            gh[i].h = fmaxf(p * (1.0f - p), HESS_EPS);
            continue;
        }
        float mx = mi[0], s = 0;
        for (int g = 1; g < G; g++) mx = fmaxf(mx, mi[g]);
        float e[G];
        for (int g = 0; g < G; g++) { e[g] = expf(mi[g] - mx); s += e[g]; }
        for (int g = 0; g < G; g++) {
            float p = e[g] / s;
            gh[(size_t)g * n + i].g = g == y[i] ? p - 1.0f : p;
            gh[(size_t)g * n + i].h = fmaxf(2.0f * p * (1.0f - p), HESS_EPS);
        }
    }
}

/* Probabilities (K) from margins (G), as XGBoost's predict_proba. */
static void margin_to_proba(const float *mg, int G, float *proba)
{
    if (G == 1) {
        float p = 1.0f / (1.0f + expf(-mg[0]));
        proba[0] = 1.0f - p;
        proba[1] = p;
        return;
    }
    float mx = mg[0], s = 0;
    for (int g = 1; g < G; g++) mx = fmaxf(mx, mg[g]);
    for (int g = 0; g < G; g++) { proba[g] = expf(mg[g] - mx); s += proba[g]; }
    for (int g = 0; g < G; g++) proba[g] /= s;
}

/* Mean logloss (binary) or mlogloss and accuracy of margins (n, G). */
static void evaluate(const float *margin, const int32_t *y, size_t n, int G, int K, float *loss,
                     float *acc)
{
    double l = 0;
    size_t ok = 0;
    float pr[K];
    for (size_t i = 0; i < n; i++) {
        margin_to_proba(margin + i * G, G, pr);
        double py = pr[y[i]];
        l -= log(py > LOSS_EPS ? py : LOSS_EPS);
        int best = 0;
        for (int k = 1; k < K; k++) if (pr[k] > pr[best]) best = k;
        ok += best == y[i];
    }
    *loss = (float)(l / (double)n);
    *acc = (float)((double)ok / (double)n);
}

/* ---- training ---- */

void mm_gbdt_free(mm_gbdt *m)
{
    if (!m) return;
    free(m->offsets); free(m->nodes);
    free(m->train_loss); free(m->train_acc); free(m->val_loss); free(m->val_acc);
    free(m);
}

static inline float tree_predict(const gb_node *nodes, const float *x)
{
    int32_t j = 0;
    while (nodes[j].feature >= 0) j = x[nodes[j].feature] < nodes[j].thr ? nodes[j].left : nodes[j].left + 1;
    return nodes[j].value;
}

int mm_gbdt_train(const mm_gbdt_params *p, const float *X, const int32_t *y, size_t n, size_t d,
                  int K, const float *Xv, const int32_t *yv, size_t nv, uint64_t seed, int n_threads,
                  mm_gbdt **out, mm_err *err)
{
    int rc = mm_gbdt_params_check(p, err);
    if (rc) return rc;
    if (n < 1 || d < 1)
        return mm_err_set(err, MM_EINVAL, "gbdt: empty training set (%zu rows, %zu features)", n, d);
    if (K < 2) return mm_err_set(err, MM_EINVAL, "gbdt: need at least 2 classes, got %d", K);
    if (n > UINT32_MAX - 2) return mm_err_set(err, MM_EINVAL, "gbdt: too many rows (%zu)", n);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K)
            return mm_err_set(err, MM_EDATA, "gbdt: label %d at row %zu is outside [0, %d)", y[i], i, K);
    if (!Xv || !yv) nv = 0;
    if (p->early_stopping_rounds > 0 && nv == 0)
        return mm_err_set(err, MM_EINVAL, "gbdt: early_stopping_rounds = %d needs a validation set, none given",
                          p->early_stopping_rounds);
    for (size_t i = 0; i < nv; i++)
        if (yv[i] < 0 || yv[i] >= K)
            return mm_err_set(err, MM_EDATA, "gbdt: validation label %d at row %zu is outside [0, %d)", yv[i], i, K);
    if (n_threads < 1) n_threads = 1;
    const int G = K == 2 ? 1 : K;
    const size_t R = (size_t)p->n_estimators;
    gb_bins B;
    if ((rc = bins_make(X, n, d, p->max_bin, n_threads, &B, err))) return rc;
    gb_ctx C = {.B = &B, .p = p, .lambda = (float)p->reg_lambda, .mcw = (float)p->min_child_weight,
                .gamma = (float)p->gamma, .eta = (float)p->learning_rate, .seed = seed};
    int outer = G > 1 ? (n_threads < G ? n_threads : G) : 1;
    int inner = G > 1 ? 1 : n_threads;
    mm_gbdt *m = mm_calloc(1, sizeof *m, err);
    float *margin = mm_malloc(n * (size_t)G, sizeof *margin, err);
    float *vmargin = nv ? mm_malloc(nv * (size_t)G, sizeof *vmargin, err) : NULL;
    gb_gh *gh = mm_malloc(n * (size_t)G, sizeof *gh, err);
    gb_tree *trees = mm_calloc(R * (size_t)G, sizeof *trees, err);
    gb_work *works = mm_calloc((size_t)outer, sizeof *works, err);
    rc = MM_ENOMEM;
    if (!m || !margin || (nv && !vmargin) || !gh || !trees || !works) goto done;
    m->train_loss = mm_malloc(R, sizeof(float), err);
    m->train_acc = mm_malloc(R, sizeof(float), err);
    if (!m->train_loss || !m->train_acc) goto done;
    if (nv) {
        m->val_loss = mm_malloc(R, sizeof(float), err);
        m->val_acc = mm_malloc(R, sizeof(float), err);
        if (!m->val_loss || !m->val_acc) goto done;
    }
    for (int w = 0; w < outer; w++)
        if (work_alloc(&works[w], n, d, p->max_depth)) { mm_err_set(err, MM_ENOMEM, "gbdt: out of memory"); goto done; }
    const float base = G == 1 ? 0.0f : 0.5f;    /* logit(0.5) for logistic; base_score 0.5 for softmax */
    for (size_t i = 0; i < n * (size_t)G; i++) margin[i] = base;
    for (size_t i = 0; i < nv * (size_t)G; i++) vmargin[i] = base;
    float best_loss = INFINITY;
    long best = -1;
    size_t r;
    for (r = 0; r < R; r++) {
        gradients(margin, y, n, G, gh, n_threads);
        int fail = 0;
        #pragma omp parallel for num_threads(outer) schedule(dynamic, 1) if (outer > 1)
        for (int g = 0; g < G; g++) {
            gb_work *W = &works[omp_get_thread_num()];
            if (build_tree(&C, W, gh + (size_t)g * n, r, g, inner, &trees[r * G + g],
                           p->subsample < 1 ? NULL : margin, G)) {
                #pragma omp atomic write
                fail = 1;
            }
        }
        if (fail) { mm_err_set(err, MM_ENOMEM, "gbdt: out of memory growing trees"); goto done; }
        /* margins: with row sampling the training rows go through the bins (else
         * the leaves added them), validation rows through the thresholds */
        #pragma omp parallel for num_threads(n_threads) schedule(static) if (n * (size_t)G > 20000)
        for (size_t i = 0; i < (p->subsample < 1 ? n : 0); i++)
            for (int g = 0; g < G; g++) {
                const gb_tree *T = &trees[r * G + g];
                int32_t j = 0;
                while (T->nodes[j].feature >= 0)
                    j = B.bin[(size_t)T->nodes[j].feature * n + i] <= T->sbin[j] ? T->nodes[j].left : T->nodes[j].left + 1;
                margin[i * G + g] += T->nodes[j].value;
            }
        #pragma omp parallel for num_threads(n_threads) schedule(static) if (nv * (size_t)G > 20000)
        for (size_t i = 0; i < nv; i++)
            for (int g = 0; g < G; g++)
                vmargin[i * G + g] += tree_predict(trees[r * G + g].nodes, Xv + i * d);
        evaluate(margin, y, n, G, K, &m->train_loss[r], &m->train_acc[r]);
        if (nv) {
            evaluate(vmargin, yv, nv, G, K, &m->val_loss[r], &m->val_acc[r]);
            if (m->val_loss[r] < best_loss) { best_loss = m->val_loss[r]; best = (long)r; }
            if (p->early_stopping_rounds > 0 && (long)r - best >= p->early_stopping_rounds) { r++; break; }
        }
    }
    m->hist_n = r;
    size_t keep = nv && p->early_stopping_rounds > 0 ? (size_t)best + 1 : r;
    m->best = (long)keep - 1;
    /* flatten the kept trees */
    size_t T = keep * (size_t)G, total = 0;
    for (size_t t = 0; t < T; t++) total += trees[t].n;
    m->offsets = mm_malloc(T + 1, sizeof *m->offsets, err);
    m->nodes = mm_malloc(total, sizeof *m->nodes, err);
    if (!m->offsets || !m->nodes) goto done;
    size_t at = 0;
    for (size_t t = 0; t < T; t++) {
        m->offsets[t] = (int64_t)at;
        memcpy(m->nodes + at, trees[t].nodes, trees[t].n * sizeof *m->nodes);
        at += trees[t].n;
    }
    m->offsets[T] = (int64_t)at;
    m->params = *p;
    m->K = K;
    m->G = G;
    m->d = d;
    m->n_rounds = keep;
    m->n_nodes = total;
    m->base = base;
    *out = m;
    m = NULL;
    rc = 0;
done:
    if (trees)
        for (size_t t = 0; t < R * (size_t)G; t++) { free(trees[t].nodes); free(trees[t].sbin); }
    free(trees);
    if (works) for (int w = 0; w < outer; w++) work_free(&works[w]);
    free(works);
    free(margin); free(vmargin); free(gh);
    bins_free(&B);
    mm_gbdt_free(m);
    return rc;
}

/* ---- prediction ---- */

int mm_gbdt_predict_proba(const mm_gbdt *m, const float *X, size_t n, float *proba, int n_threads,
                          mm_err *err)
{
    if (!m) return mm_err_set(err, MM_EINVAL, "gbdt: model is not fitted");
    const int G = m->G, K = m->K;
    const size_t d = m->d, R = m->n_rounds;
    if (n_threads < 1) n_threads = 1;
    /* Rows go through each tree 64 at a time in lockstep (one level per pass),
     * so their independent node loads overlap; each row still adds the trees
     * in index order, the order training used. */
    enum { BLK = 64 };
    const size_t nblk = (n + BLK - 1) / BLK;
    int fail = 0;
    #pragma omp parallel num_threads(n_threads) if (n * R * (size_t)G > 20000)
    {
        float *mg = malloc((size_t)BLK * (size_t)G * sizeof *mg);
        if (!mg) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(static)
        for (size_t b = 0; b < nblk; b++) {
            if (!mg) continue;
            size_t i0 = b * BLK, nb = n - i0 < BLK ? n - i0 : BLK;
            for (size_t i = 0; i < nb * (size_t)G; i++) mg[i] = m->base;
            for (size_t t = 0; t < R * (size_t)G; t++) {
                const gb_node *nodes = m->nodes + m->offsets[t];
                const int g = (int)(t % (size_t)G);
                int32_t at[BLK] = {0};
                for (int moved = 1; moved;) {
                    moved = 0;
                    for (size_t i = 0; i < nb; i++) {
                        const gb_node *nd = &nodes[at[i]];
                        if (nd->feature < 0) continue;
                        at[i] = nd->left + (int32_t)!(X[(i0 + i) * d + nd->feature] < nd->thr);   /* setcc, no branch */
                        moved = 1;
                    }
                }
                for (size_t i = 0; i < nb; i++) mg[i * G + g] += nodes[at[i]].value;
            }
            for (size_t i = 0; i < nb; i++) margin_to_proba(mg + i * G, G, proba + (i0 + i) * K);
        }
        free(mg);
    }
    if (fail) return mm_err_set(err, MM_ENOMEM, "gbdt: out of memory predicting");
    return 0;
}

int mm_gbdt_n_classes(const mm_gbdt *m) { return m->K; }
size_t mm_gbdt_n_features(const mm_gbdt *m) { return m->d; }
size_t mm_gbdt_n_rounds(const mm_gbdt *m) { return m->n_rounds; }
size_t mm_gbdt_n_nodes(const mm_gbdt *m) { return m->n_nodes; }

mm_gbdt_history mm_gbdt_get_history(const mm_gbdt *m)
{
    mm_gbdt_history h = {m->hist_n, m->train_loss, m->train_acc, m->val_loss, m->val_acc, m->best};
    return h;
}

/* ---- persistence ---- */

int mm_gbdt_save(const mm_gbdt *m, hid_t g, mm_err *err)
{
    const size_t N = m->n_nodes, T = m->n_rounds * (size_t)m->G;
    int32_t *feat = mm_malloc(N, sizeof *feat, err), *left = mm_malloc(N, sizeof *left, err);
    float *thr = mm_malloc(N, sizeof *thr, err), *val = mm_malloc(N, sizeof *val, err);
    int rc = MM_ENOMEM;
    if (!feat || !left || !thr || !val) goto done;
    for (size_t i = 0; i < N; i++) {
        feat[i] = m->nodes[i].feature;
        left[i] = m->nodes[i].left;
        thr[i] = m->nodes[i].thr;
        val[i] = m->nodes[i].value;
    }
    hsize_t dT = T + 1, dN = N, dH = m->hist_n;
    if ((rc = mm_h5_attr_set_str(g, "kind", "gbdt", err)) ||
        (rc = mm_h5_attr_set_i64(g, "gbdt_n_classes", m->K, err)) ||
        (rc = mm_h5_attr_set_i64(g, "gbdt_n_features", (int64_t)m->d, err)) ||
        (rc = mm_h5_attr_set_i64(g, "gbdt_n_rounds", (int64_t)m->n_rounds, err)) ||
        (rc = mm_h5_attr_set_i64(g, "gbdt_best", m->best, err)) ||
        (rc = mm_h5_attr_set_f64(g, "gbdt_base_margin", m->base, err)) ||
        (rc = mm_h5_write_i64(g, "gbdt_tree_offsets", m->offsets, 1, &dT, err)) ||
        (rc = mm_h5_write_i32(g, "gbdt_feature", feat, 1, &dN, err)) ||
        (rc = mm_h5_write_i32(g, "gbdt_left", left, 1, &dN, err)) ||
        (rc = mm_h5_write_f32(g, "gbdt_threshold", thr, 1, &dN, err)) ||
        (rc = mm_h5_write_f32(g, "gbdt_value", val, 1, &dN, err)))
        goto done;
    if (m->hist_n && ((rc = mm_h5_write_f32(g, "gbdt_train_loss", m->train_loss, 1, &dH, err)) ||
                      (rc = mm_h5_write_f32(g, "gbdt_train_acc", m->train_acc, 1, &dH, err))))
        goto done;
    if (m->hist_n && m->val_loss && ((rc = mm_h5_write_f32(g, "gbdt_val_loss", m->val_loss, 1, &dH, err)) ||
                                     (rc = mm_h5_write_f32(g, "gbdt_val_acc", m->val_acc, 1, &dH, err))))
        goto done;
    rc = 0;
done:
    free(feat); free(left); free(thr); free(val);
    return rc;
}

/* Optional 1-D float history dataset of length n (absent → NULL). */
static int read_history(hid_t g, const char *name, size_t n, float **out, mm_err *err)
{
    *out = NULL;
    if (!mm_h5_exists(g, name)) return 0;
    int r;
    hsize_t dm[4];
    int rc = mm_h5_read_f32(g, name, 1, out, &r, dm, err);
    if (rc) return rc;
    if (dm[0] != n) {
        free(*out);
        *out = NULL;
        return mm_err_set(err, MM_EFORMAT, "gbdt model: dataset '%s' holds %llu values, expected %zu", name,
                          (unsigned long long)dm[0], n);
    }
    return 0;
}

int mm_gbdt_load(hid_t g, mm_gbdt **out, mm_err *err)
{
    char *kind = NULL;
    int64_t K = 0, d = 0, R = 0, best = -1;
    double base = 0;
    int64_t *off = NULL;
    int32_t *feat = NULL, *left = NULL;
    float *thr = NULL, *val = NULL;
    mm_gbdt *m = NULL;
    int r, rc = mm_h5_attr_get_str(g, "kind", &kind, err);
    if (rc) return mm_err_prefix(err, "not a gradient boosting model");
    if (strcmp(kind, "gbdt")) {
        rc = mm_err_set(err, MM_EFORMAT, "not a gradient boosting model (kind '%s')", kind);
        free(kind);
        return rc;
    }
    free(kind);
    if ((rc = mm_h5_attr_get_i64(g, "gbdt_n_classes", &K, err)) ||
        (rc = mm_h5_attr_get_i64(g, "gbdt_n_features", &d, err)) ||
        (rc = mm_h5_attr_get_i64(g, "gbdt_n_rounds", &R, err)) ||
        (rc = mm_h5_attr_get_i64(g, "gbdt_best", &best, err)) ||
        (rc = mm_h5_attr_get_f64(g, "gbdt_base_margin", &base, err)))
        return rc;
    if (K < 2 || K > 100000 || d < 1 || d > 100000000 || R < 1 || R > 100000000 || !isfinite(base))
        return mm_err_set(err, MM_EFORMAT, "gbdt model: implausible n_classes %lld, n_features %lld or n_rounds %lld",
                          (long long)K, (long long)d, (long long)R);
    const int G = K == 2 ? 1 : (int)K;
    hsize_t dO[4], dF[4], dL[4], dT[4], dV[4];
    if ((rc = mm_h5_read_i64(g, "gbdt_tree_offsets", 1, &off, &r, dO, err)) ||
        (rc = mm_h5_read_i32(g, "gbdt_feature", 1, &feat, &r, dF, err)) ||
        (rc = mm_h5_read_i32(g, "gbdt_left", 1, &left, &r, dL, err)) ||
        (rc = mm_h5_read_f32(g, "gbdt_threshold", 1, &thr, &r, dT, err)) ||
        (rc = mm_h5_read_f32(g, "gbdt_value", 1, &val, &r, dV, err)))
        goto done;
    rc = MM_EFORMAT;
    size_t N = dF[0];
    if (dO[0] != (hsize_t)R * (hsize_t)G + 1 || dL[0] != N || dT[0] != N || dV[0] != N) {
        mm_err_set(err, MM_EFORMAT, "gbdt model: inconsistent dataset sizes");
        goto done;
    }
    if ((rc = mm_tree_check_forest(off, dO[0] - 1, feat, left, N, (size_t)d, "gbdt model", err))) goto done;
    rc = MM_EFORMAT;
    for (size_t i = 0; i < N; i++)
        if (isnan(thr[i]) || !isfinite(val[i])) {
            mm_err_set(err, MM_EFORMAT, "gbdt model: node %zu has a NaN threshold or a non-finite value", i);
            goto done;
        }
    rc = MM_ENOMEM;
    m = mm_calloc(1, sizeof *m, err);
    if (!m || !(m->nodes = mm_malloc(N, sizeof *m->nodes, err))) goto done;
    for (size_t i = 0; i < N; i++) m->nodes[i] = (gb_node){thr[i], feat[i], left[i], val[i]};
    int64_t hn = 0;
    if (mm_h5_exists(g, "gbdt_train_loss")) {
        hsize_t dH[4];
        float *tl = NULL;
        if ((rc = mm_h5_read_f32(g, "gbdt_train_loss", 1, &tl, &r, dH, err))) goto done;
        hn = (int64_t)dH[0];
        m->train_loss = tl;
        if ((rc = read_history(g, "gbdt_train_acc", (size_t)hn, &m->train_acc, err)) ||
            (rc = read_history(g, "gbdt_val_loss", (size_t)hn, &m->val_loss, err)) ||
            (rc = read_history(g, "gbdt_val_acc", (size_t)hn, &m->val_acc, err)))
            goto done;
    }
    m->params = mm_gbdt_params_default();
    m->params.n_estimators = (int)(R > INT_MAX ? INT_MAX : R);
    m->K = (int)K;
    m->G = G;
    m->d = (size_t)d;
    m->n_rounds = (size_t)R;
    m->n_nodes = N;
    m->base = (float)base;
    m->hist_n = (size_t)hn;
    m->best = best;
    m->offsets = off; off = NULL;
    *out = m;
    m = NULL;
    rc = 0;
done:
    free(off); free(feat); free(left); free(thr); free(val);
    mm_gbdt_free(m);
    return rc;
}

/* ---- learner interface ---- */

typedef struct gb_state {
    mm_gbdt_params params;
    uint64_t seed;
    int n_threads;
    mm_gbdt *model;
    mm_history hist;
} gb_state;

static int gb_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    mm_gbdt_params p;
    int rc = mm_gbdt_params_from_cfg(params, &p, err);
    if (rc) return rc;
    gb_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->params = p;
    s->seed = seed;
    s->n_threads = n_threads;
    *state = s;
    return 0;
}

static int gb_uses_validation(const void *st)
{
    return ((const gb_state *)st)->params.early_stopping_rounds > 0;   /* else only for curves */
}

static void sync_history(gb_state *s)
{
    mm_gbdt_history h = mm_gbdt_get_history(s->model);
    s->hist = (mm_history){h.n, h.train_loss, h.train_acc, h.val_loss, h.val_acc, h.best};
}

static int gb_fit(void *state, const mm_fit_data *data, mm_err *err)
{
    gb_state *s = state;
    mm_gbdt *m = NULL;
    int rc = mm_gbdt_train(&s->params, data->X, data->y, data->n, data->d, data->n_classes, data->X_val,
                           data->y_val, data->n_val, s->seed, s->n_threads, &m, err);
    if (rc) return rc;
    mm_gbdt_free(s->model);
    s->model = m;
    sync_history(s);
    return 0;
}

static int gb_predict(const void *state, const float *X, size_t n, float *proba, mm_err *err)
{
    const gb_state *s = state;
    return mm_gbdt_predict_proba(s->model, X, n, proba, s->n_threads, err);
}

static int gb_save_vt(const void *state, hid_t g, mm_err *err)
{
    const gb_state *s = state;
    if (!s->model) return mm_err_set(err, MM_EINVAL, "gbdt: cannot save an unfitted model");
    return mm_gbdt_save(s->model, g, err);
}

static int gb_load_vt(hid_t g, int n_threads, void **state, mm_err *err)
{
    gb_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    int rc = mm_gbdt_load(g, &s->model, err);
    if (rc) { free(s); return rc; }
    s->params = s->model->params;
    s->n_threads = n_threads;
    sync_history(s);
    *state = s;
    return 0;
}

static void gb_shape_vt(const void *state, int *k, size_t *d)
{
    const mm_gbdt *m = ((const gb_state *)state)->model;
    *k = m ? m->K : 0;
    *d = m ? m->d : 0;
}

static const mm_history *gb_history(const void *state)
{
    const gb_state *s = state;
    return s->model ? &s->hist : NULL;
}

static void gb_free_vt(void *state)
{
    gb_state *s = state;
    if (!s) return;
    mm_gbdt_free(s->model);
    free(s);
}

const mm_learner_vt mm_learner_gbdt = {
    .name = "gbdt",
    .params = &mm_gbdt_param_table,
    .summary = "gradient-boosted trees, XGBoost 'hist' style (XGBClassifier)",
    .wants_validation = 1,
    .uses_validation = gb_uses_validation,
    .create = gb_create,
    .fit = gb_fit,
    .predict_proba = gb_predict,
    .save = gb_save_vt,
    .load = gb_load_vt,
    .shape = gb_shape_vt,
    .history = gb_history,
    .free = gb_free_vt,
};
