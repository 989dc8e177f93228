/* rf.c — random forest of CART classification trees (see rf.h).
 *
 * Reference: scikit-learn 1.2 RandomForestClassifier / DecisionTreeClassifier
 * (BestSplitter, Gini/Entropy criteria, compute_feature_importances). Each
 * feature is ranked once per fit (codes = index among its distinct values);
 * at a node a candidate feature's samples are either histogrammed by code
 * (few distinct codes) or radix-sorted by code, then scanned left to right.
 * Left out: see rf.h; no pruning, no missing values (inputs are finite).
 */
#include "learn/rf.h"

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

#define FEATURE_THRESHOLD 1e-7   /* scikit-learn: values closer than this are not split */

/* One node; an internal node's children are left and left + 1. */
typedef struct rf_node {
    double thr;          /* go left when (double)x[feature] <= thr */
    int32_t feature;     /* -1 for a leaf */
    int32_t left;        /* tree-local index of the left child, -1 for a leaf */
} rf_node;

struct mm_rf {
    mm_rf_params params;
    int n_classes;       /* K */
    size_t d;            /* features */
    size_t n_trees;
    size_t n_nodes;
    int64_t *offsets;    /* (n_trees + 1) first node of each tree */
    rf_node *nodes;      /* (n_nodes) tree-local child indices */
    float *value;        /* (n_nodes, K) weighted class frequencies of the node's samples */
    double *importances; /* (d) */
};

/* ---- parameters ---- */

/* max_features: sqrt (or auto), log2, all (or None, null), a count >= 1 or a
 * fraction in (0, 1]; missing: sqrt. */
static int parse_max_features(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    mm_rf_params *p = (mm_rf_params *)((char *)field - offsetof(mm_rf_params, max_features));
    const mm_cfg *c = map ? mm_cfg_child(map, "max_features") : NULL;
    if (!c) { p->max_features = MM_RF_MAXF_SQRT; p->max_features_value = 0; return 0; }
    if (c->type == MM_CFG_NULL) { p->max_features = MM_RF_MAXF_ALL; return 0; }   /* None */
    char w[600];
    mm_cfg_where(c, w, sizeof w);
    const char *bad = "expected sqrt, log2, all, null, an integer >= 1 or a fraction in (0, 1]";
    if (c->type != MM_CFG_SCALAR)
        return mm_err_set(err, MM_EINVAL, "%s: key 'max_features': %s", w, bad);
    const char *v = c->value;
    if (!strcmp(v, "sqrt") || !strcmp(v, "auto")) { p->max_features = MM_RF_MAXF_SQRT; return 0; }
    if (!strcmp(v, "log2")) { p->max_features = MM_RF_MAXF_LOG2; return 0; }
    if (!strcmp(v, "all") || !strcmp(v, "None")) { p->max_features = MM_RF_MAXF_ALL; return 0; }
    char *end;
    long iv = strtol(v, &end, 10);
    if (end != v && !*end) {
        if (iv < 1) return mm_err_set(err, MM_EINVAL, "%s: key 'max_features': %s, got %ld", w, bad, iv);
        p->max_features = MM_RF_MAXF_COUNT;
        p->max_features_value = (double)iv;
        return 0;
    }
    double dv = strtod(v, &end);
    if (end != v && !*end && dv > 0 && dv <= 1) {
        p->max_features = MM_RF_MAXF_FRACTION;
        p->max_features_value = dv;
        return 0;
    }
    return mm_err_set(err, MM_EINVAL, "%s: key 'max_features': %s, got '%s'", w, bad, v);
}

static const char *const RF_CRITERIA[] = {"gini", "entropy", "log_loss", NULL};
static const int RF_CRITERION_VALUES[] = {MM_RF_GINI, MM_RF_ENTROPY, MM_RF_ENTROPY};

#define RF(f) offsetof(mm_rf_params, f)
static const mm_param RF_ROWS[] = {
    {"n_estimators", MM_PARAM_INT, RF(n_estimators), 1, 1000000, .def = 100, .help = "trees"},
    {"criterion", MM_PARAM_CHOICE, RF(criterion), .def = 0, .choices = RF_CRITERIA, .values = RF_CRITERION_VALUES,
     .help = "split impurity (log_loss is entropy)"},
    {"max_depth", MM_PARAM_INT, RF(max_depth), 1, MM_PARAM_NOMAX, .def = -1, .def_text = "-1 (unlimited)",
     .help = "depth limit of each tree; null: unlimited"},
    {"min_samples_split", MM_PARAM_INT, RF(min_samples_split), 2, MM_PARAM_NOMAX, .def = 2,
     .help = "a node with fewer distinct samples is a leaf"},
    {"min_samples_leaf", MM_PARAM_INT, RF(min_samples_leaf), 1, MM_PARAM_NOMAX, .def = 1,
     .help = "distinct samples on each side of a split"},
    {"max_features", MM_PARAM_CUSTOM, RF(max_features), .parse = parse_max_features, .def_text = "sqrt",
     .type_text = "value", .range_text = "sqrt, log2, all, null, an integer >= 1 or a fraction in (0, 1]",
     .help = "features each node considers"},
    {"bootstrap", MM_PARAM_BOOL, RF(bootstrap), .def = 1, .help = "each tree sees n draws with replacement"},
    {"class_weight", MM_PARAM_CUSTOM, RF(class_weight_balanced), .parse = mm_param_parse_class_weight,
     .def_text = "none", .type_text = "string", .range_text = "balanced or none",
     .help = "balanced: class k weighs n / (n_present_classes * n_k)"},
    {NULL},
};
#undef RF

static const mm_param_table RF_PARAMS = {"rf", "rf parameters", RF_ROWS};

mm_rf_params mm_rf_params_default(void)
{
    mm_rf_params p;
    memset(&p, 0, sizeof p);
    mm_params_defaults(&RF_PARAMS, &p);
    return p;
}

int mm_rf_params_check(const mm_rf_params *p, mm_err *err)
{
    int rc = mm_params_check(&RF_PARAMS, p, err);
    if (rc) return rc;
    switch (p->max_features) {
    case MM_RF_MAXF_SQRT: case MM_RF_MAXF_LOG2: case MM_RF_MAXF_ALL: break;
    case MM_RF_MAXF_COUNT:
        if (!(p->max_features_value >= 1) || p->max_features_value != floor(p->max_features_value))
            return mm_err_set(err, MM_EINVAL, "rf: max_features count must be an integer >= 1, got %g",
                              p->max_features_value);
        break;
    case MM_RF_MAXF_FRACTION:
        if (!(p->max_features_value > 0 && p->max_features_value <= 1))
            return mm_err_set(err, MM_EINVAL, "rf: max_features fraction must be in (0, 1], got %g",
                              p->max_features_value);
        break;
    default:
        return mm_err_set(err, MM_EINVAL, "rf: unknown max_features kind %d", (int)p->max_features);
    }
    return 0;
}

int mm_rf_params_from_cfg(const mm_cfg *map, mm_rf_params *out, mm_err *err)
{
    mm_rf_params p = mm_rf_params_default();
    int rc = mm_params_parse(&RF_PARAMS, map, &p, err);
    if (!rc) rc = mm_rf_params_check(&p, err);
    if (!rc) *out = p;
    return rc;
}

/* ---- training ---- */

/* Read-only data shared by all trees of one fit. */
typedef struct rf_data {
    const int32_t *y;        /* (n) */
    size_t n, d;
    int K;
    const uint32_t *codes;   /* (d, n) 2 * rank of X[i, f] among feature f's distinct values,
                                plus 1 when that value is within FEATURE_THRESHOLD of the
                                next smaller one (so the scan rarely needs the values) */
    const float *vals;       /* (d, n) distinct values of feature f, ascending, in row f */
    const double *cw;        /* (K) class weights */
    const mm_rf_params *p;
    size_t mtry;             /* features to visit per node */
    int max_depth;
    uint64_t seed;
} rf_data;

/* Per-thread scratch, sized for n samples. */
typedef struct rf_work {
    uint32_t *idx;       /* (n) samples of the tree; each node owns a contiguous range */
    double *w;           /* (n) weight of idx[i] (bootstrap count x class weight) */
    int32_t *yy;         /* (n) label of idx[i] */
    uint32_t *code;      /* (n) gathered codes of the current feature */
    uint64_t *keys, *tmp;/* (n) sort keys */
    double *hist;        /* (hist_cap) class weights per code */
    uint32_t *cnt;       /* (hist_cap) samples per code */
    size_t hist_cap;
    uint32_t *feat;      /* (d) feature permutation */
    uint32_t *draws;     /* (n) bootstrap counts */
    double *ct, *cl;     /* (K) node and left class weights */
    struct rf_item { size_t start, end; int depth; int32_t id; } *stack;   /* (n + 1) */
} rf_work;

/* A tree under construction. */
typedef struct rf_tree {
    rf_node *nodes;
    float *value;        /* (cap, K) */
    size_t n, cap;
    double *imp;         /* (d) unnormalised importances */
    int failed;
} rf_tree;

typedef struct rf_split {
    int found;
    uint32_t feature;
    uint32_t code;       /* last code that goes left */
    double thr;
    double proxy;
} rf_split;

static double impurity(const double *c, double w, int K, mm_rf_criterion crit)
{
    if (w <= 0) return 0;
    double s = 0;
    if (crit == MM_RF_GINI) {
        for (int k = 0; k < K; k++) s += c[k] * c[k];
        return 1.0 - s / (w * w);
    }
    for (int k = 0; k < K; k++)
        if (c[k] > 0) { double q = c[k] / w; s -= q * log2(q); }
    return s;
}

/* scikit-learn's proxy: -w_r * impurity_r - w_l * impurity_l (larger is better). */
static inline __attribute__((always_inline)) double proxy_gain(const double *cl, double wl, const double *ct, double wn, int K,
                         mm_rf_criterion crit)
{
    double wr = wn - wl;
    if (crit == MM_RF_GINI) {
        double sl = 0, sr = 0;
        for (int k = 0; k < K; k++) {
            double r = ct[k] - cl[k];
            sl += cl[k] * cl[k];
            sr += r * r;
        }
        return -wr * (1.0 - sr / (wr * wr)) - wl * (1.0 - sl / (wl * wl));
    }
    double hl = 0, hr = 0;
    for (int k = 0; k < K; k++) {
        double r = ct[k] - cl[k];
        if (cl[k] > 0) { double q = cl[k] / wl; hl -= q * log2(q); }
        if (r > 0) { double q = r / wr; hr -= q * log2(q); }
    }
    return -wr * hr - wl * hl;
}

static int code_bytes(uint32_t maxcode)
{
    return maxcode < 256u ? 1 : maxcode < 65536u ? 2 : maxcode < 16777216u ? 3 : 4;
}

/* Consider the boundary between present codes cp < cn of feature f, given the
 * left side so far. Values are read only when cn is flagged close to its
 * predecessor or the split wins (they are the cache misses of the scan). */
static inline __attribute__((always_inline)) void
consider(rf_split *best, const rf_data *D, const double *cl, double wl, size_t nl, size_t m,
         const double *ct, double wn, const float *v, uint32_t cp, uint32_t cn, uint32_t f)
{
    size_t msl = (size_t)D->p->min_samples_leaf;
    if (nl < msl || m - nl < msl) return;
    if ((cn & 1) && !(v[cn >> 1] > v[cp >> 1] + FEATURE_THRESHOLD)) return;
    double g = proxy_gain(cl, wl, ct, wn, D->K, D->p->criterion);
    if (g > best->proxy) {
        float vprev = v[cp >> 1], vnext = v[cn >> 1];
        double thr = vprev / 2.0 + vnext / 2.0;
        if (thr == vnext || isinf(thr)) thr = vprev;
        best->found = 1;
        best->proxy = g;
        best->feature = f;
        best->code = cp;
        best->thr = thr;
    }
}

/* Best split of samples [start, end) over up to mtry non-constant features. */
static void find_split(const rf_data *D, rf_work *W, mm_rng *rng, size_t start, size_t end,
                       double wn, rf_split *best)
{
    const size_t m = end - start, n = D->n, d = D->d;
    const int K = D->K;
    const uint32_t *idx = W->idx + start;
    const double *w = W->w + start;
    const int32_t *yy = W->yy + start;
    double *cl = W->cl;
    const double *ct = W->ct;
    best->found = 0;
    best->proxy = -INFINITY;
    size_t visited = 0;
    for (size_t j = 0; j < d && visited < D->mtry; j++) {
        size_t r = j + (size_t)mm_rng_below(rng, d - j);
        uint32_t f = W->feat[r]; W->feat[r] = W->feat[j]; W->feat[j] = f;
        const uint32_t *cf = D->codes + (size_t)f * n;
        const float *v = D->vals + (size_t)f * n;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (size_t i = 0; i < m; i++) {
            uint32_t c = cf[idx[i]];
            W->code[i] = c;
            lo = c < lo ? c : lo;
            hi = c > hi ? c : hi;
        }
        if (hi == lo || ((hi & 1) && v[hi >> 1] <= v[lo >> 1] + FEATURE_THRESHOLD)) continue;  /* constant */
        visited++;
        uint32_t span = hi - lo + 1;
        int nb = code_bytes(hi - lo);
        memset(cl, 0, (size_t)K * sizeof *cl);
        double wl = 0;
        size_t nl = 0;
        if ((size_t)span * (size_t)(K + 1) <= 2 * m * (size_t)nb + 256 &&
            (size_t)span * (size_t)K <= W->hist_cap) {
            /* histogram of class weights per code, then scan the present codes */
            double *h = W->hist;
            uint32_t *cnt = W->cnt;
            memset(h, 0, (size_t)span * K * sizeof *h);
            memset(cnt, 0, (size_t)span * sizeof *cnt);
            for (size_t i = 0; i < m; i++) {
                uint32_t c = W->code[i] - lo;
                h[(size_t)c * K + yy[i]] += w[i];
                cnt[c]++;
            }
            uint32_t prev = 0;
            int have = 0;
            for (uint32_t c = 0; c < span; c++) {
                if (!cnt[c]) continue;
                if (have) {
                    if (m - nl < (size_t)D->p->min_samples_leaf) break;
                    consider(best, D, cl, wl, nl, m, ct, wn, v, lo + prev, lo + c, f);
                }
                const double *hc = h + (size_t)c * K;
                for (int k = 0; k < K; k++) { cl[k] += hc[k]; wl += hc[k]; }
                nl += cnt[c];
                prev = c;
                have = 1;
            }
        } else {
            /* radix sort (code, position) keys, then scan groups of equal codes */
            uint64_t *keys = W->keys;
            for (size_t i = 0; i < m; i++) keys[i] = (uint64_t)(W->code[i] - lo) << 32 | i;
            mm_tree_sort_keys(keys, W->tmp, m, nb);
            size_t i = 0;
            uint32_t prev = 0;
            while (i < m) {
                uint32_t c = (uint32_t)(keys[i] >> 32);
                if (i > 0) {
                    if (m - nl < (size_t)D->p->min_samples_leaf) break;
                    consider(best, D, cl, wl, nl, m, ct, wn, v, lo + prev, lo + c, f);
                }
                for (; i < m && (uint32_t)(keys[i] >> 32) == c; i++) {
                    uint32_t p = (uint32_t)keys[i];
                    cl[yy[p]] += w[p];
                    wl += w[p];
                    nl++;
                }
                prev = c;
            }
        }
    }
}

static int tree_add_pair(rf_tree *T, int K)
{
    if (T->n + 2 > T->cap) {
        size_t cap = T->cap ? T->cap * 2 : 64;
        rf_node *nn = realloc(T->nodes, cap * sizeof *nn);
        if (!nn) return -1;
        T->nodes = nn;
        float *nv = realloc(T->value, cap * (size_t)K * sizeof *nv);
        if (!nv) return -1;
        T->value = nv;
        T->cap = cap;
    }
    T->n += 2;
    return 0;
}

static void build_tree(const rf_data *D, rf_work *W, size_t t, rf_tree *T)
{
    const size_t n = D->n, d = D->d;
    const int K = D->K;
    mm_rng rng;
    mm_rng_seed(&rng, D->seed, (uint64_t)t, 0);
    /* samples in the tree with their weights: bootstrap counts x class weights */
    size_t m = 0;
    if (D->p->bootstrap) {
        memset(W->draws, 0, n * sizeof *W->draws);
        for (size_t i = 0; i < n; i++) W->draws[mm_rng_below(&rng, n)]++;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t c = D->p->bootstrap ? W->draws[i] : 1;
        if (!c) continue;
        W->idx[m] = (uint32_t)i;
        W->yy[m] = D->y[i];
        W->w[m] = (double)c * D->cw[D->y[i]];
        m++;
    }
    for (size_t f = 0; f < d; f++) W->feat[f] = (uint32_t)f;
    T->n = 0;
    if (tree_add_pair(T, K)) { T->failed = 1; return; }
    T->n = 1;                       /* the root alone */
    size_t sp = 0;
    W->stack[sp++] = (struct rf_item){0, m, 0, 0};
    const size_t mss = (size_t)D->p->min_samples_split, msl = (size_t)D->p->min_samples_leaf;
    while (sp) {
        struct rf_item it = W->stack[--sp];
        size_t cnt = it.end - it.start;
        double *ct = W->ct, wn = 0;
        memset(ct, 0, (size_t)K * sizeof *ct);
        for (size_t i = it.start; i < it.end; i++) ct[W->yy[i]] += W->w[i];
        for (int k = 0; k < K; k++) wn += ct[k];
        float *val = T->value + (size_t)it.id * K;
        for (int k = 0; k < K; k++) val[k] = (float)(ct[k] / wn);
        double imp = impurity(ct, wn, K, D->p->criterion);
        rf_node *nd = &T->nodes[it.id];
        nd->feature = -1; nd->left = -1; nd->thr = 0;
        if (it.depth >= D->max_depth || cnt < mss || cnt < 2 * msl || imp <= DBL_EPSILON) continue;
        rf_split s;
        find_split(D, W, &rng, it.start, it.end, wn, &s);
        if (!s.found) continue;
        /* partition by code <= s.code, keeping w and yy aligned */
        const uint32_t *cf = D->codes + (size_t)s.feature * n;
        size_t a = it.start, b = it.end;
        while (a < b) {
            if (cf[W->idx[a]] <= s.code) { a++; continue; }
            b--;
            uint32_t ti = W->idx[a]; W->idx[a] = W->idx[b]; W->idx[b] = ti;
            double tw = W->w[a]; W->w[a] = W->w[b]; W->w[b] = tw;
            int32_t ty = W->yy[a]; W->yy[a] = W->yy[b]; W->yy[b] = ty;
        }
        double *cl = W->cl, wl = 0, cr[K > 0 ? K : 1], wr = 0;
        memset(cl, 0, (size_t)K * sizeof *cl);
        memset(cr, 0, sizeof cr);
        for (size_t i = it.start; i < a; i++) cl[W->yy[i]] += W->w[i];
        for (int k = 0; k < K; k++) wl += cl[k];
        for (size_t i = a; i < it.end; i++) cr[W->yy[i]] += W->w[i];
        for (int k = 0; k < K; k++) wr += cr[k];
        T->imp[s.feature] += wn * imp - wl * impurity(cl, wl, K, D->p->criterion) -
                             wr * impurity(cr, wr, K, D->p->criterion);
        size_t child = T->n;
        if (child > INT32_MAX - 2 || tree_add_pair(T, K)) { T->failed = 1; return; }
        nd = &T->nodes[it.id];           /* realloc may have moved it */
        nd->feature = (int32_t)s.feature;
        nd->left = (int32_t)child;
        nd->thr = s.thr;
        W->stack[sp++] = (struct rf_item){a, it.end, it.depth + 1, (int32_t)child + 1};
        W->stack[sp++] = (struct rf_item){it.start, a, it.depth + 1, (int32_t)child};
    }
}

static void work_free(rf_work *W)
{
    free(W->idx); free(W->w); free(W->yy); free(W->code); free(W->keys); free(W->tmp);
    free(W->hist); free(W->cnt); free(W->feat); free(W->draws); free(W->ct); free(W->cl);
    free(W->stack);
}

static int work_alloc(rf_work *W, size_t n, size_t d, int K)
{
    memset(W, 0, sizeof *W);
    W->hist_cap = 8 * n + 256;
    W->idx = malloc(n * sizeof *W->idx);
    W->w = malloc(n * sizeof *W->w);
    W->yy = malloc(n * sizeof *W->yy);
    W->code = malloc(n * sizeof *W->code);
    W->keys = malloc(n * sizeof *W->keys);
    W->tmp = malloc(n * sizeof *W->tmp);
    W->hist = malloc(W->hist_cap * sizeof *W->hist);
    W->cnt = malloc(W->hist_cap * sizeof *W->cnt);
    W->feat = malloc(d * sizeof *W->feat);
    W->draws = malloc(n * sizeof *W->draws);
    W->ct = malloc((size_t)K * sizeof *W->ct);
    W->cl = malloc((size_t)K * sizeof *W->cl);
    W->stack = malloc((n + 2) * sizeof *W->stack);
    if (!W->idx || !W->w || !W->yy || !W->code || !W->keys || !W->tmp || !W->hist || !W->cnt ||
        !W->feat || !W->draws || !W->ct || !W->cl || !W->stack) {
        work_free(W);
        return -1;
    }
    return 0;
}

/* Rank every feature: codes (d, n) (see rf_data) and distinct values (d, n). */
static int rank_features(const float *X, size_t n, size_t d, uint32_t *codes, float *vals,
                         int n_threads)
{
    int fail = 0;
    #pragma omp parallel num_threads(n_threads)
    {
        uint64_t *keys = malloc(n * sizeof *keys), *tmp = malloc(n * sizeof *tmp);
        if (!keys || !tmp) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(dynamic, 4)
        for (size_t f = 0; f < d; f++) {
            if (!keys || !tmp) continue;
            for (size_t i = 0; i < n; i++) keys[i] = (uint64_t)mm_tree_float_key(X[i * d + f]) << 32 | i;
            mm_tree_sort_keys(keys, tmp, n, 4);
            uint32_t u = 0, close_bit = 0;
            float *v = vals + f * n;
            uint32_t *c = codes + f * n;
            for (size_t i = 0; i < n; i++) {
                uint32_t row = (uint32_t)keys[i];
                if (i > 0 && (keys[i] >> 32) != (keys[i - 1] >> 32)) u++;
                if (i == 0 || (keys[i] >> 32) != (keys[i - 1] >> 32)) {
                    v[u] = X[(size_t)row * d + f] == 0.0f ? 0.0f : X[(size_t)row * d + f];
                    close_bit = u > 0 && !(v[u] > v[u - 1] + FEATURE_THRESHOLD);
                }
                c[row] = 2 * u + close_bit;
            }
        }
        free(keys);
        free(tmp);
    }
    return fail ? -1 : 0;
}

static size_t resolve_mtry(const mm_rf_params *p, size_t d)
{
    double v;
    switch (p->max_features) {
    case MM_RF_MAXF_SQRT: v = floor(sqrt((double)d)); break;
    case MM_RF_MAXF_LOG2: v = floor(log2((double)d)); break;
    case MM_RF_MAXF_COUNT: v = p->max_features_value; break;
    case MM_RF_MAXF_FRACTION: v = floor(p->max_features_value * (double)d); break;
    default: v = (double)d;
    }
    return v < 1 ? 1 : (size_t)v;
}

void mm_rf_free(mm_rf *m)
{
    if (!m) return;
    free(m->offsets);
    free(m->nodes);
    free(m->value);
    free(m->importances);
    free(m);
}

int mm_rf_train(const mm_rf_params *p, const float *X, const int32_t *y, size_t n, size_t d,
                int K, uint64_t seed, int n_threads, mm_rf **out, mm_err *err)
{
    int rc = mm_rf_params_check(p, err);
    if (rc) return rc;
    if (n < 1 || d < 1 || K < 1)
        return mm_err_set(err, MM_EINVAL, "rf: empty training set (%zu rows, %zu features, %d classes)", n, d, K);
    if (n > UINT32_MAX / 2 - 2 || d > UINT32_MAX)
        return mm_err_set(err, MM_EINVAL, "rf: training set too large (%zu rows, %zu features)", n, d);
    if (p->max_features == MM_RF_MAXF_COUNT && p->max_features_value > (double)d)
        return mm_err_set(err, MM_EINVAL, "rf: max_features must be <= the %zu features, got %g", d,
                          p->max_features_value);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K)
            return mm_err_set(err, MM_EDATA, "rf: label %d at row %zu is outside [0, %d)", y[i], i, K);
    if (n_threads < 1) n_threads = 1;
    uint32_t *codes = mm_malloc(n * d, sizeof *codes, err);
    float *vals = mm_malloc(n * d, sizeof *vals, err);
    double *cw = mm_malloc((size_t)K, sizeof *cw, err);
    rf_tree *trees = mm_calloc((size_t)p->n_estimators, sizeof *trees, err);
    mm_rf *m = mm_calloc(1, sizeof *m, err);
    rc = MM_ENOMEM;
    if (!codes || !vals || !cw || !trees || !m) goto done;
    if (rank_features(X, n, d, codes, vals, n_threads)) {
        mm_err_set(err, MM_ENOMEM, "rf: out of memory ranking features");
        goto done;
    }
    /* class weights: 'balanced' = n / (n_present * count_k), as scikit-learn */
    size_t *count = mm_calloc((size_t)K, sizeof *count, err);
    if (!count) goto done;
    int present = 0;
    for (size_t i = 0; i < n; i++) if (!count[y[i]]++) present++;
    for (int k = 0; k < K; k++)
        cw[k] = p->class_weight_balanced && count[k] ? (double)n / ((double)present * (double)count[k]) : 1.0;
    free(count);
    rf_data D = {.y = y, .n = n, .d = d, .K = K, .codes = codes, .vals = vals,
                 .cw = cw, .p = p, .mtry = resolve_mtry(p, d),
                 .max_depth = p->max_depth < 0 ? INT_MAX : p->max_depth, .seed = seed};
    int fail = 0;
    const size_t T = (size_t)p->n_estimators;
    #pragma omp parallel num_threads(n_threads)
    {
        rf_work W;
        int ok = work_alloc(&W, n, d, K) == 0;
        #pragma omp for schedule(dynamic, 1)
        for (size_t t = 0; t < T; t++) {
            trees[t].imp = calloc(d, sizeof *trees[t].imp);
            if (!ok || !trees[t].imp) { trees[t].failed = 1; continue; }
            build_tree(&D, &W, t, &trees[t]);
        }
        if (ok) work_free(&W);
    }
    for (size_t t = 0; t < T; t++) fail |= trees[t].failed;
    if (fail) { mm_err_set(err, MM_ENOMEM, "rf: out of memory building trees"); goto done; }
    /* concatenate the trees; average the normalised importances of trees that split */
    size_t total = 0;
    for (size_t t = 0; t < T; t++) total += trees[t].n;
    m->params = *p;
    m->n_classes = K;
    m->d = d;
    m->n_trees = T;
    m->n_nodes = total;
    m->offsets = mm_malloc(T + 1, sizeof *m->offsets, err);
    m->nodes = mm_malloc(total, sizeof *m->nodes, err);
    m->value = mm_malloc(total * (size_t)K, sizeof *m->value, err);
    m->importances = mm_calloc(d, sizeof *m->importances, err);
    if (!m->offsets || !m->nodes || !m->value || !m->importances) goto done;
    size_t at = 0, split_trees = 0;
    for (size_t t = 0; t < T; t++) {
        m->offsets[t] = (int64_t)at;
        memcpy(m->nodes + at, trees[t].nodes, trees[t].n * sizeof *m->nodes);
        memcpy(m->value + at * K, trees[t].value, trees[t].n * (size_t)K * sizeof *m->value);
        at += trees[t].n;
        if (trees[t].n > 1) {
            double s = 0;
            for (size_t f = 0; f < d; f++) s += trees[t].imp[f];
            for (size_t f = 0; f < d; f++) m->importances[f] += s > 0 ? trees[t].imp[f] / s : trees[t].imp[f];
            split_trees++;
        }
    }
    m->offsets[T] = (int64_t)at;
    if (split_trees) {
        double s = 0;
        for (size_t f = 0; f < d; f++) s += m->importances[f] / (double)split_trees;
        for (size_t f = 0; f < d; f++)
            m->importances[f] = s > 0 ? m->importances[f] / (double)split_trees / s : 0;
    }
    *out = m;
    m = NULL;
    rc = 0;
done:
    if (trees)
        for (size_t t = 0; t < (size_t)p->n_estimators; t++) {
            free(trees[t].nodes); free(trees[t].value); free(trees[t].imp);
        }
    free(trees);
    free(codes); free(vals); free(cw);
    mm_rf_free(m);
    return rc;
}

/* ---- prediction ---- */

int mm_rf_predict_proba(const mm_rf *m, const float *X, size_t n, float *proba, int n_threads,
                        mm_err *err)
{
    if (!m) return mm_err_set(err, MM_EINVAL, "rf: model is not fitted");
    const int K = m->n_classes;
    const size_t d = m->d, T = m->n_trees;
    if (n_threads < 1) n_threads = 1;
    /* Trees outermost within a block of rows, so that one tree stays in cache
     * while the block walks it; each row still sums trees in index order. */
    const size_t BLOCK = 512;
    const size_t nblocks = (n + BLOCK - 1) / BLOCK;
    int fail = 0;
    #pragma omp parallel num_threads(n_threads) if (n * T > 20000)
    {
        double *acc = malloc(BLOCK * (size_t)K * sizeof *acc);
        if (!acc) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (size_t blk = 0; blk < nblocks; blk++) {
            if (!acc) continue;
            size_t i0 = blk * BLOCK, i1 = i0 + BLOCK < n ? i0 + BLOCK : n;
            memset(acc, 0, (i1 - i0) * (size_t)K * sizeof *acc);
            for (size_t t = 0; t < T; t++) {
                const rf_node *nodes = m->nodes + m->offsets[t];
                const float *value = m->value + (size_t)m->offsets[t] * K;
                /* 64 rows in lockstep, one level per pass: their loads overlap */
                for (size_t s0 = i0; s0 < i1; s0 += 64) {
                    size_t s1 = s0 + 64 < i1 ? s0 + 64 : i1;
                    int32_t at[64] = {0};
                    for (int moved = 1; moved;) {
                        moved = 0;
                        for (size_t i = s0; i < s1; i++) {
                            const rf_node *nd = &nodes[at[i - s0]];
                            if (nd->feature < 0) continue;
                            at[i - s0] = nd->left + (int32_t)!((double)X[i * d + nd->feature] <= nd->thr);
                            moved = 1;
                        }
                    }
                    for (size_t i = s0; i < s1; i++) {
                        const float *v = value + (size_t)at[i - s0] * K;
                        double *a = acc + (i - i0) * K;
                        for (int k = 0; k < K; k++) a[k] += v[k];
                    }
                }
            }
            for (size_t i = i0; i < i1; i++)
                for (int k = 0; k < K; k++) proba[i * K + k] = (float)(acc[(i - i0) * K + k] / (double)T);
        }
        free(acc);
    }
    if (fail) return mm_err_set(err, MM_ENOMEM, "rf: out of memory predicting");
    return 0;
}

int mm_rf_n_classes(const mm_rf *m) { return m->n_classes; }
size_t mm_rf_n_features(const mm_rf *m) { return m->d; }
size_t mm_rf_n_trees(const mm_rf *m) { return m->n_trees; }
size_t mm_rf_n_nodes(const mm_rf *m) { return m->n_nodes; }
const double *mm_rf_feature_importances(const mm_rf *m) { return m->importances; }

/* ---- persistence ---- */

int mm_rf_save(const mm_rf *m, hid_t g, mm_err *err)
{
    const size_t N = m->n_nodes, T = m->n_trees;
    int32_t *feat = mm_malloc(N, sizeof *feat, err), *left = mm_malloc(N, sizeof *left, err);
    double *thr = mm_malloc(N, sizeof *thr, err);
    int rc = MM_ENOMEM;
    if (!feat || !left || !thr) goto done;
    for (size_t i = 0; i < N; i++) {
        feat[i] = m->nodes[i].feature;
        left[i] = m->nodes[i].left;
        thr[i] = m->nodes[i].thr;
    }
    hsize_t dT = T + 1, dN = N, dV[2] = {N, (hsize_t)m->n_classes}, dD = m->d;
    if ((rc = mm_h5_attr_set_str(g, "kind", "rf", err)) ||
        (rc = mm_h5_attr_set_i64(g, "rf_n_classes", m->n_classes, err)) ||
        (rc = mm_h5_attr_set_i64(g, "rf_n_features", (int64_t)m->d, err)) ||
        (rc = mm_h5_attr_set_str(g, "rf_criterion", m->params.criterion == MM_RF_GINI ? "gini" : "entropy", err)) ||
        (rc = mm_h5_write_i64(g, "rf_tree_offsets", m->offsets, 1, &dT, err)) ||
        (rc = mm_h5_write_i32(g, "rf_feature", feat, 1, &dN, err)) ||
        (rc = mm_h5_write_i32(g, "rf_left", left, 1, &dN, err)) ||
        (rc = mm_h5_write_f64(g, "rf_threshold", thr, 1, &dN, err)) ||
        (rc = mm_h5_write_f32(g, "rf_value", m->value, 2, dV, err)) ||
        (rc = mm_h5_write_f64(g, "rf_importances", m->importances, 1, &dD, err)))
        goto done;
    rc = 0;
done:
    free(feat); free(left); free(thr);
    return rc;
}

int mm_rf_load(hid_t g, mm_rf **out, mm_err *err)
{
    char *kind = NULL;
    int64_t K = 0, d = 0;
    int64_t *off = NULL;
    int32_t *feat = NULL, *left = NULL;
    double *thr = NULL, *imp = NULL;
    float *val = NULL;
    mm_rf *m = NULL;
    int r, rc = mm_h5_attr_get_str(g, "kind", &kind, err);
    if (rc) return mm_err_prefix(err, "not a random forest model");
    if (strcmp(kind, "rf")) {
        rc = mm_err_set(err, MM_EFORMAT, "not a random forest model (kind '%s')", kind);
        free(kind);
        return rc;
    }
    free(kind);
    if ((rc = mm_h5_attr_get_i64(g, "rf_n_classes", &K, err)) ||
        (rc = mm_h5_attr_get_i64(g, "rf_n_features", &d, err)))
        return rc;
    if (K < 1 || K > 100000 || d < 1 || d > 100000000)
        return mm_err_set(err, MM_EFORMAT, "rf model: implausible n_classes %lld or n_features %lld",
                          (long long)K, (long long)d);
    hsize_t dO[4], dF[4], dL[4], dT[4], dV[4], dI[4];
    if ((rc = mm_h5_read_i64(g, "rf_tree_offsets", 1, &off, &r, dO, err)) ||
        (rc = mm_h5_read_i32(g, "rf_feature", 1, &feat, &r, dF, err)) ||
        (rc = mm_h5_read_i32(g, "rf_left", 1, &left, &r, dL, err)) ||
        (rc = mm_h5_read_f64(g, "rf_threshold", 1, &thr, &r, dT, err)) ||
        (rc = mm_h5_read_f32(g, "rf_value", 2, &val, &r, dV, err)) ||
        (rc = mm_h5_read_f64(g, "rf_importances", 1, &imp, &r, dI, err)))
        goto done;
    rc = MM_EFORMAT;
    size_t N = dF[0];
    if (dO[0] < 2 || dL[0] != N || dT[0] != N || dV[0] != N || dV[1] != (hsize_t)K || dI[0] != (hsize_t)d) {
        mm_err_set(err, MM_EFORMAT, "rf model: inconsistent dataset sizes");
        goto done;
    }
    if ((rc = mm_tree_check_forest(off, dO[0] - 1, feat, left, N, (size_t)d, "rf model", err))) goto done;
    rc = MM_EFORMAT;
    for (size_t i = 0; i < N * (size_t)K; i++)
        if (!(val[i] >= 0 && val[i] <= 1)) { mm_err_set(err, MM_EFORMAT, "rf model: class frequency %g out of [0, 1]", val[i]); goto done; }
    for (size_t i = 0; i < N; i++)
        if (isnan(thr[i])) { mm_err_set(err, MM_EFORMAT, "rf model: threshold of node %zu is NaN", i); goto done; }
    for (int64_t f = 0; f < d; f++)
        if (!isfinite(imp[f])) { mm_err_set(err, MM_EFORMAT, "rf model: importance %lld is not finite", (long long)f); goto done; }
    rc = MM_ENOMEM;
    m = mm_calloc(1, sizeof *m, err);
    if (!m || !(m->nodes = mm_malloc(N, sizeof *m->nodes, err))) goto done;
    for (size_t i = 0; i < N; i++) m->nodes[i] = (rf_node){thr[i], feat[i], left[i]};
    m->params = mm_rf_params_default();
    m->n_classes = (int)K;
    m->d = (size_t)d;
    m->n_trees = dO[0] - 1;
    m->n_nodes = N;
    m->offsets = off; off = NULL;
    m->value = val; val = NULL;
    m->importances = imp; imp = NULL;
    *out = m;
    m = NULL;
    rc = 0;
done:
    free(off); free(feat); free(left); free(thr); free(val); free(imp);
    mm_rf_free(m);
    return rc;
}

/* ---- learner interface ---- */

typedef struct rf_state {
    mm_rf_params params;
    uint64_t seed;
    int n_threads;
    mm_rf *model;
} rf_state;

static int rf_create(const mm_cfg *params, uint64_t seed, int n_threads, void **state, mm_err *err)
{
    mm_rf_params p;
    int rc = mm_rf_params_from_cfg(params, &p, err);
    if (rc) return rc;
    rf_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->params = p;
    s->seed = seed;
    s->n_threads = n_threads;
    *state = s;
    return 0;
}

static int rf_fit(void *state, const mm_fit_data *data, mm_err *err)
{
    rf_state *s = state;
    mm_rf *m = NULL;
    int rc = mm_rf_train(&s->params, data->X, data->y, data->n, data->d, data->n_classes, s->seed,
                         s->n_threads, &m, err);
    if (rc) return rc;
    mm_rf_free(s->model);
    s->model = m;
    return 0;
}

static int rf_predict(const void *state, const float *X, size_t n, float *proba, mm_err *err)
{
    const rf_state *s = state;
    return mm_rf_predict_proba(s->model, X, n, proba, s->n_threads, err);
}

static int rf_save_vt(const void *state, hid_t g, mm_err *err)
{
    const rf_state *s = state;
    if (!s->model) return mm_err_set(err, MM_EINVAL, "rf: cannot save an unfitted model");
    return mm_rf_save(s->model, g, err);
}

static int rf_load_vt(hid_t g, int n_threads, void **state, mm_err *err)
{
    rf_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    int rc = mm_rf_load(g, &s->model, err);
    if (rc) { free(s); return rc; }
    s->params = s->model->params;
    s->n_threads = n_threads;
    *state = s;
    return 0;
}

static void rf_shape_vt(const void *state, int *k, size_t *d)
{
    const mm_rf *m = ((const rf_state *)state)->model;
    *k = m ? m->n_classes : 0;
    *d = m ? m->d : 0;
}

static void rf_free_vt(void *state)
{
    rf_state *s = state;
    if (!s) return;
    mm_rf_free(s->model);
    free(s);
}

const mm_learner_vt mm_learner_rf = {
    .name = "rf",
    .params = &RF_PARAMS,
    .summary = "random forest of CART trees (scikit-learn RandomForestClassifier)",
    .wants_validation = 0,
    .create = rf_create,
    .fit = rf_fit,
    .predict_proba = rf_predict,
    .save = rf_save_vt,
    .load = rf_load_vt,
    .shape = rf_shape_vt,
    .history = NULL,
    .free = rf_free_vt,
};
