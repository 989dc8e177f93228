/* splits.c — fold assignment, protocols, validation carving, leakage check.
 * Reference: scikit-learn 1.2.1 model_selection/_split.py, re-implemented
 * with NumPy's summation and sort orders (npcompat.c) so unshuffled folds are
 * identical. Differences: shuffles use mm_rng; a shuffled StratifiedGroupKFold
 * permutes the groups (sklearn 1.2 desynchronises rows and ids, PR #32540);
 * a class smaller than n_folds and an empty stratified-group fold (sklearn
 * issue #34828) are errors here (sklearn: a warning, a silent empty fold).
 */
#include "eval/splits.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/npcompat.h"

/* ---- small helpers ---------------------------------------------------- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct values of v[0..n) into *uniq (malloc'd, *nu values) and,
 * when inv != NULL, inv[i] = position of v[i] in uniq (np.unique). */
static int unique_i32(const int32_t *v, size_t n, int32_t **uniq, size_t *nu, size_t *inv,
                      mm_err *err)
{
    int32_t *u = mm_malloc(n, sizeof *u, err);
    if (!u) return MM_ENOMEM;
    memcpy(u, v, n * sizeof *u);
    qsort(u, n, sizeof *u, cmp_i32);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || u[m - 1] != u[i]) u[m++] = u[i];
    if (inv) {
        for (size_t i = 0; i < n; i++) {
            int32_t *p = bsearch(&v[i], u, m, sizeof *u, cmp_i32);
            inv[i] = (size_t)(p - u);
        }
    }
    *uniq = u;
    *nu = m;
    return 0;
}

static size_t find_i32(const int32_t *u, size_t m, int32_t x)
{
    const int32_t *p = bsearch(&x, u, m, sizeof *u, cmp_i32);
    return p ? (size_t)(p - u) : (size_t)-1;
}

static int check_k(const char *what, size_t n, size_t k, mm_err *err)
{
    if (k < 2)
        return mm_err_set(err, MM_EINVAL, "%s: n_folds must be at least 2, got %zu", what, k);
    if (k > n)
        return mm_err_set(err, MM_EINVAL,
                          "%s: n_folds=%zu is greater than the number of samples (%zu)", what, k,
                          n);
    return 0;
}

/* np.isclose(a, b) with its defaults (rtol 1e-5, atol 1e-8). */
static int np_isclose(double a, double b)
{
    if (!isfinite(a) || !isfinite(b)) return a == b;
    return fabs(a - b) <= 1e-8 + 1e-5 * fabs(b);
}

/* ---- fold-id functions ------------------------------------------------ */

int mm_split_group_kfold(const int32_t *groups, size_t n, size_t k, int32_t *fold, mm_err *err)
{
    int rc = check_k("group K-fold", n, k, err);
    if (rc) return rc;
    int32_t *uniq = NULL;
    size_t ng = 0, *inv = NULL, *order = NULL, *g2f = NULL;
    int64_t *cnt = NULL;
    double *w = NULL;
    rc = MM_ENOMEM;
    if (!(inv = mm_malloc(n, sizeof *inv, err))) goto done;
    if ((rc = unique_i32(groups, n, &uniq, &ng, inv, err))) goto done;
    if (k > ng) {
        rc = mm_err_set(err, MM_EINVAL,
                        "group K-fold: n_folds=%zu is greater than the number of groups (%zu)",
                        k, ng);
        goto done;
    }
    rc = MM_ENOMEM;
    if (!(cnt = mm_calloc(ng, sizeof *cnt, err)) || !(order = mm_malloc(ng, sizeof *order, err)) ||
        !(g2f = mm_malloc(ng, sizeof *g2f, err)) || !(w = mm_calloc(k, sizeof *w, err)))
        goto done;
    for (size_t i = 0; i < n; i++) cnt[inv[i]]++;
    /* np.argsort(counts)[::-1]: largest groups first, NumPy's tie order */
    mm_np_argsort_quick_i64(cnt, ng, order);
    for (size_t j = ng; j-- > 0;) {
        size_t g = order[j], light = 0;
        for (size_t f = 1; f < k; f++)
            if (w[f] < w[light]) light = f;    /* np.argmin: first minimum */
        w[light] += (double)cnt[g];
        g2f[g] = light;
    }
    for (size_t i = 0; i < n; i++) fold[i] = (int32_t)g2f[inv[i]];
    rc = 0;
done:
    free(uniq); free(inv); free(order); free(g2f); free(cnt); free(w);
    return rc;
}

/* Classes of y: codes in order of first appearance (StratifiedKFold) or
 * sorted (StratifiedGroupKFold); counts per code. */
static int encode_classes(const int32_t *y, size_t n, int by_appearance, size_t *code,
                          size_t **count, size_t *n_classes, mm_err *err)
{
    int32_t *uniq;
    size_t nc;
    int rc = unique_i32(y, n, &uniq, &nc, code, err);
    if (rc) return rc;
    size_t *cnt = mm_calloc(nc, sizeof *cnt, err);
    size_t *perm = mm_malloc(nc, sizeof *perm, err);
    if (!cnt || !perm) {
        free(uniq); free(cnt); free(perm);
        return MM_ENOMEM;
    }
    if (by_appearance) {
        for (size_t c = 0; c < nc; c++) perm[c] = (size_t)-1;
        size_t next = 0;
        for (size_t i = 0; i < n; i++)
            if (perm[code[i]] == (size_t)-1) perm[code[i]] = next++;
        for (size_t i = 0; i < n; i++) code[i] = perm[code[i]];
    }
    for (size_t i = 0; i < n; i++) cnt[code[i]]++;
    free(uniq);
    free(perm);
    *count = cnt;
    *n_classes = nc;
    return 0;
}

static int check_class_counts(const char *what, const int32_t *y, size_t n, const size_t *code,
                              const size_t *cnt, size_t nc, size_t k, mm_err *err)
{
    size_t cmin = (size_t)-1, cmax = 0, cm = 0;
    for (size_t c = 0; c < nc; c++) {
        if (cnt[c] < cmin) { cmin = cnt[c]; cm = c; }
        if (cnt[c] > cmax) cmax = cnt[c];
    }
    if (cmax < k)
        return mm_err_set(err, MM_EINVAL,
                          "%s: n_folds=%zu is greater than the number of members in each class "
                          "(largest class: %zu)", what, k, cmax);
    if (cmin < k) {
        int32_t label = 0;
        for (size_t i = 0; i < n; i++)
            if (code[i] == cm) { label = y[i]; break; }
        return mm_err_set(err, MM_EINVAL,
                          "%s: the least populated class (label %d) has only %zu members, fewer "
                          "than n_folds=%zu", what, (int)label, cmin, k);
    }
    return 0;
}

int mm_split_stratified_kfold(const int32_t *y, size_t n, size_t k, mm_rng *rng, int32_t *fold,
                              mm_err *err)
{
    int rc = check_k("stratified K-fold", n, k, err);
    if (rc) return rc;
    size_t *code = NULL, *cnt = NULL, *alloc = NULL, *ffc = NULL, *pos = NULL, nc = 0;
    rc = MM_ENOMEM;
    if (!(code = mm_malloc(n, sizeof *code, err))) goto done;
    if ((rc = encode_classes(y, n, 1, code, &cnt, &nc, err))) goto done;
    if ((rc = check_class_counts("stratified K-fold", y, n, code, cnt, nc, k, err))) goto done;
    rc = MM_ENOMEM;
    if (!(alloc = mm_calloc(k * nc, sizeof *alloc, err)) || !(ffc = mm_malloc(n, sizeof *ffc, err)) ||
        !(pos = mm_calloc(nc, sizeof *pos, err)))
        goto done;
    /* Round robin over the sorted codes: position p of the sorted labels goes
     * to fold p % k. alloc[f * nc + c] = members of class c tested in fold f. */
    for (size_t c = 0, p = 0; c < nc; c++)
        for (size_t j = 0; j < cnt[c]; j++, p++) alloc[(p % k) * nc + c]++;
    /* Per class, the block of fold ids in fold order (shuffled if asked),
     * handed to the members of the class in sample order. */
    size_t off = 0;
    for (size_t c = 0; c < nc; c++) {
        size_t m = 0;
        for (size_t f = 0; f < k; f++)
            for (size_t j = 0; j < alloc[f * nc + c]; j++) ffc[off + m++] = f;
        if (rng) mm_rng_shuffle_size(rng, ffc + off, m);
        pos[c] = off;
        off += m;
    }
    for (size_t i = 0; i < n; i++) fold[i] = (int32_t)ffc[pos[code[i]]++];
    rc = 0;
done:
    free(code); free(cnt); free(alloc); free(ffc); free(pos);
    return rc;
}

/* np.std(row, axis=1) for one contiguous row of length m (ddof 0). */
static double np_std_row(const double *row, size_t m, double *tmp)
{
    double mean = mm_np_pairwise_sum(row, m) / (double)m;
    for (size_t j = 0; j < m; j++) {
        double d = row[j] - mean;
        tmp[j] = d * d;
    }
    return sqrt(mm_np_pairwise_sum(tmp, m) / (double)m);
}

/* sklearn's _find_best_fold: the fold whose addition of `gc` gives the
 * lowest mean over classes of the std over folds of (count / class size);
 * near-ties (np.isclose) go to the fold with fewer samples. */
static size_t best_fold(double *ypf, size_t k, size_t nc, const size_t *ycnt, const double *gc,
                        double *std_c)
{
    size_t best = 0;
    double min_eval = INFINITY, min_samples = INFINITY;
    for (size_t i = 0; i < k; i++) {
        for (size_t c = 0; c < nc; c++) ypf[i * nc + c] += gc[c];
        /* std over axis 0: NumPy reduces a strided axis sequentially */
        for (size_t c = 0; c < nc; c++) {
            double s = 0.0;
            for (size_t f = 0; f < k; f++) s += ypf[f * nc + c] / (double)ycnt[c];
            double mean = s / (double)k, v = 0.0;
            for (size_t f = 0; f < k; f++) {
                double d = ypf[f * nc + c] / (double)ycnt[c] - mean;
                v += d * d;
            }
            std_c[c] = sqrt(v / (double)k);
        }
        for (size_t c = 0; c < nc; c++) ypf[i * nc + c] -= gc[c];
        double eval = mm_np_pairwise_sum(std_c, nc) / (double)nc;
        double samples = mm_np_pairwise_sum(ypf + i * nc, nc);
        if (eval < min_eval || (np_isclose(eval, min_eval) && samples < min_samples)) {
            min_eval = eval;
            min_samples = samples;
            best = i;
        }
    }
    return best;
}

int mm_split_stratified_group_kfold(const int32_t *y, const int32_t *groups, size_t n, size_t k,
                                    mm_rng *rng, int32_t *fold, mm_err *err)
{
    const char *what = "stratified group K-fold";
    int rc = check_k(what, n, k, err);
    if (rc) return rc;
    size_t *code = NULL, *cnt = NULL, *ginv = NULL, *order = NULL, *sorted = NULL, *g2f = NULL;
    size_t nc = 0, ng = 0;
    int32_t *guniq = NULL;
    double *ypg = NULL, *ypf = NULL, *key = NULL, *tmp = NULL, *row = NULL;
    rc = MM_ENOMEM;
    if (!(code = mm_malloc(n, sizeof *code, err))) goto done;
    if ((rc = encode_classes(y, n, 0, code, &cnt, &nc, err))) goto done;
    if ((rc = check_class_counts(what, y, n, code, cnt, nc, k, err))) goto done;
    rc = MM_ENOMEM;
    if (!(ginv = mm_malloc(n, sizeof *ginv, err))) goto done;
    if ((rc = unique_i32(groups, n, &guniq, &ng, ginv, err))) goto done;
    if (k > ng) {
        rc = mm_err_set(err, MM_EINVAL, "%s: n_folds=%zu is greater than the number of groups (%zu)",
                        what, k, ng);
        goto done;
    }
    rc = MM_ENOMEM;
    if (!(ypg = mm_calloc(ng * nc, sizeof *ypg, err)) || !(ypf = mm_calloc(k * nc, sizeof *ypf, err)) ||
        !(key = mm_malloc(ng, sizeof *key, err)) || !(tmp = mm_malloc(nc, sizeof *tmp, err)) ||
        !(order = mm_malloc(ng, sizeof *order, err)) || !(sorted = mm_malloc(ng, sizeof *sorted, err)) ||
        !(g2f = mm_malloc(ng, sizeof *g2f, err)) || !(row = mm_malloc(nc, sizeof *row, err)))
        goto done;
    for (size_t i = 0; i < n; i++) ypg[ginv[i] * nc + code[i]] += 1.0;    /* (ng, nc) */
    for (size_t g = 0; g < ng; g++) order[g] = g;
    if (rng) mm_rng_shuffle_size(rng, order, ng);
    /* stable sort of the (possibly shuffled) groups by decreasing std of
     * their class counts: argsort(-std, kind='mergesort') */
    for (size_t j = 0; j < ng; j++) key[j] = -np_std_row(ypg + order[j] * nc, nc, tmp);
    mm_np_argsort_stable_f64(key, ng, sorted);
    for (size_t j = 0; j < ng; j++) {
        size_t g = order[sorted[j]];
        size_t f = best_fold(ypf, k, nc, cnt, ypg + g * nc, row);
        for (size_t c = 0; c < nc; c++) ypf[f * nc + c] += ypg[g * nc + c];
        g2f[g] = f;
    }
    for (size_t f = 0; f < k; f++) {
        size_t g;
        for (g = 0; g < ng && g2f[g] != f; g++) {}
        if (g == ng) {
            rc = mm_err_set(err, MM_EINVAL, "%s: fold %zu received no group (%zu groups for "
                            "n_folds=%zu); use fewer folds", what, f, ng, k);
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) fold[i] = (int32_t)g2f[ginv[i]];
    rc = 0;
done:
    free(code); free(cnt); free(ginv); free(order); free(sorted); free(g2f); free(guniq);
    free(ypg); free(ypf); free(key); free(tmp); free(row);
    return rc;
}

int mm_split_logo(const int32_t *groups, size_t n, int32_t *fold, size_t *n_folds, mm_err *err)
{
    int32_t *u;
    size_t ng, *inv = mm_malloc(n, sizeof *inv, err);
    if (!inv) return MM_ENOMEM;
    int rc = unique_i32(groups, n, &u, &ng, inv, err);
    if (rc) { free(inv); return rc; }
    if (ng < 2) {
        rc = mm_err_set(err, MM_EINVAL,
                        "leave-one-group-out: needs at least 2 groups, the data has %zu", ng);
    } else {
        for (size_t i = 0; i < n; i++) fold[i] = (int32_t)inv[i];
        *n_folds = ng;
    }
    free(u);
    free(inv);
    return rc;
}

/* ---- params ----------------------------------------------------------- */

mm_split_params mm_split_params_default(void)
{
    mm_split_params p;
    memset(&p, 0, sizeof p);
    p.kind = MM_SPLIT_STRATIFIED_KFOLD;
    p.n_folds = 5;
    p.repeats = 1;
    return p;
}

void mm_split_params_release(mm_split_params *p)
{
    if (!p || !p->owns_lists) return;
    free(p->train_groups);
    free(p->val_groups);
    free(p->test_groups);
    p->train_groups = p->val_groups = p->test_groups = NULL;
    p->n_train_groups = p->n_val_groups = p->n_test_groups = 0;
    p->owns_lists = 0;
}

/* A sequence of ints and "a-b" ranges → malloc'd list. */
static int group_list(const mm_cfg *map, const char *key, int32_t **out, size_t *n, mm_err *err)
{
    const mm_cfg *c = mm_cfg_child(map, key);
    char w[600];
    *out = NULL;
    *n = 0;
    if (!c || c->type == MM_CFG_NULL) return 0;
    if (c->type != MM_CFG_SEQ)
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected a list of group ids "
                          "(integers or \"a-b\" ranges)", mm_cfg_where(c, w, sizeof w), key);
    size_t cap = 0, m = 0;
    int32_t *v = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const mm_cfg *it = c->items[i];
        long a, b;
        char *end = NULL;
        if (it->type != MM_CFG_SCALAR) goto bad;
        errno = 0;
        a = strtol(it->value, &end, 10);
        if (errno || end == it->value) goto bad;
        b = a;
        if (*end == '-') {
            const char *s = end + 1;
            b = strtol(s, &end, 10);
            if (errno || end == s || b < a) goto bad;
        }
        if (*end || a < INT32_MIN || b > INT32_MAX || b - a > 1000000) goto bad;
        for (long g = a; g <= b; g++) {
            if (m == cap) {
                cap = cap ? 2 * cap : 32;
                int32_t *nv = realloc(v, cap * sizeof *nv);
                if (!nv) { free(v); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
                v = nv;
            }
            v[m++] = (int32_t)g;
        }
        continue;
    bad:
        free(v);
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected a group id or an \"a-b\" range "
                          "with a <= b, got '%s'", mm_cfg_where(it, w, sizeof w), key,
                          it->type == MM_CFG_SCALAR ? it->value : "(not a scalar)");
    }
    *out = v;
    *n = m;
    return 0;
}

int mm_split_params_from_cfg(const mm_cfg *map, mm_split_params *out, mm_err *err)
{
    static const char *const keys[] = {"kind", "n_folds", "shuffle", "seed", "repeats",
                                       "val_fraction", "train_groups", "val_groups",
                                       "test_groups", NULL};
    static const char *const kinds[] = {"group_kfold", "stratified_kfold",
                                        "stratified_group_kfold", "logo", "fixed", NULL};
    mm_split_params p = mm_split_params_default();
    int rc, kind;
    long nf, rep, seed;
    if ((rc = mm_cfg_check_keys(map, "protocol", keys, err))) return rc;
    if ((rc = mm_cfg_get_choice(map, "kind", kinds, (int)p.kind, &kind, err))) return rc;
    if ((rc = mm_cfg_get_int(map, "n_folds", 5, 2, 1000000, &nf, err))) return rc;
    if ((rc = mm_cfg_get_bool(map, "shuffle", 0, &p.shuffle, err))) return rc;
    if ((rc = mm_cfg_get_int(map, "seed", 0, 0, LONG_MAX, &seed, err))) return rc;
    if ((rc = mm_cfg_get_int(map, "repeats", 1, 1, 10000, &rep, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "val_fraction", 0.0, 0.0, 0.9, &p.val_fraction, err)))
        return rc;
    p.kind = (mm_split_kind)kind;
    p.n_folds = (size_t)nf;
    p.seed = (uint64_t)seed;
    p.repeats = (size_t)rep;
    char w[600];
    if (p.shuffle && (p.kind == MM_SPLIT_GROUP_KFOLD || p.kind == MM_SPLIT_LOGO ||
                      p.kind == MM_SPLIT_FIXED))
        return mm_err_set(err, MM_EINVAL, "%s: key 'shuffle': only the stratified kinds shuffle "
                          "(kind is '%s')", mm_cfg_where(mm_cfg_child(map, "shuffle"), w, sizeof w),
                          kinds[kind]);
    p.owns_lists = 1;
    if ((rc = group_list(map, "train_groups", &p.train_groups, &p.n_train_groups, err)) ||
        (rc = group_list(map, "val_groups", &p.val_groups, &p.n_val_groups, err)) ||
        (rc = group_list(map, "test_groups", &p.test_groups, &p.n_test_groups, err))) {
        mm_split_params_release(&p);
        return rc;
    }
    if (p.kind == MM_SPLIT_FIXED && (!p.n_train_groups || !p.n_test_groups)) {
        mm_split_params_release(&p);
        return mm_err_set(err, MM_EINVAL, "%s: kind 'fixed' needs non-empty train_groups and "
                          "test_groups", mm_cfg_where(map, w, sizeof w));
    }
    if (p.kind != MM_SPLIT_FIXED && (p.n_train_groups || p.n_val_groups || p.n_test_groups)) {
        mm_split_params_release(&p);
        return mm_err_set(err, MM_EINVAL, "%s: train_groups/val_groups/test_groups are only for "
                          "kind 'fixed' (kind is '%s')", mm_cfg_where(map, w, sizeof w),
                          kinds[kind]);
    }
    *out = p;
    return 0;
}

/* ---- protocols -------------------------------------------------------- */

void mm_split_free(mm_split *s)
{
    if (!s) return;
    free(s->role);
    free(s);
}

const char *mm_split_role_name(int role)
{
    switch (role) {
    case MM_ROLE_TRAIN: return "train";
    case MM_ROLE_VAL: return "validation";
    case MM_ROLE_TEST: return "test";
    default: return "unused";
    }
}

size_t mm_split_indices(const mm_split *s, size_t round, int role, size_t *idx)
{
    size_t m = 0;
    const uint8_t *r = s->role + round * s->n;
    for (size_t i = 0; i < s->n; i++)
        if (r[i] == role) idx[m++] = i;
    return m;
}

void mm_split_test_folds(const mm_split *s, size_t repeat, int32_t *fold)
{
    for (size_t i = 0; i < s->n; i++) fold[i] = -1;
    for (size_t f = s->n_folds; f-- > 0;) {
        const uint8_t *r = s->role + (repeat * s->n_folds + f) * s->n;
        for (size_t i = 0; i < s->n; i++)
            if (r[i] == MM_ROLE_TEST) fold[i] = (int32_t)f;
    }
}

/* Validation part of one round: whole groups, or stratified samples. */
static int carve_round(uint8_t *role, size_t n, const int32_t *y, const int32_t *groups,
                       double fraction, mm_rng *rng, size_t round, mm_err *err)
{
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) nt += role[i] == MM_ROLE_TRAIN;
    int rc = MM_ENOMEM;
    int32_t *vals = NULL, *uniq = NULL;
    size_t *perm = NULL, *cnt = NULL, *quota = NULL, nu = 0;
    uint8_t *bumped = NULL;
    if (!(vals = mm_malloc(nt, sizeof *vals, err))) goto done;
    for (size_t i = 0, m = 0; i < n; i++)
        if (role[i] == MM_ROLE_TRAIN) vals[m++] = groups ? groups[i] : y[i];
    if ((rc = unique_i32(vals, nt, &uniq, &nu, NULL, err))) goto done;
    if (groups) {
        size_t nv = (size_t)ceil(fraction * (double)nu);
        if (nv < 1) nv = 1;
        if (nv >= nu) {
            rc = mm_err_set(err, MM_EINVAL, "validation split: round %zu has %zu training "
                            "group(s), too few to carve %zu validation group(s) and keep one",
                            round, nu, nv);
            goto done;
        }
        rc = MM_ENOMEM;
        if (!(perm = mm_malloc(nu, sizeof *perm, err))) goto done;
        for (size_t g = 0; g < nu; g++) perm[g] = g;
        mm_rng_shuffle_size(rng, perm, nu);
        /* vals is reused as a val/not-val flag per distinct group */
        for (size_t g = 0; g < nu; g++) vals[g] = 0;
        for (size_t j = 0; j < nv; j++) vals[perm[j]] = 1;
        for (size_t i = 0; i < n; i++)
            if (role[i] == MM_ROLE_TRAIN && vals[find_i32(uniq, nu, groups[i])])
                role[i] = MM_ROLE_VAL;
    } else {
        size_t nv = (size_t)ceil(fraction * (double)nt);
        if (nv < 1) nv = 1;
        if (nv >= nt) {
            rc = mm_err_set(err, MM_EINVAL, "validation split: round %zu has %zu training "
                            "sample(s), too few to carve %zu for validation", round, nt, nv);
            goto done;
        }
        rc = MM_ENOMEM;
        if (!(cnt = mm_calloc(nu, sizeof *cnt, err)) || !(quota = mm_calloc(nu, sizeof *quota, err)) ||
            !(perm = mm_malloc(nt, sizeof *perm, err)) || !(bumped = mm_calloc(nu, 1, err)))
            goto done;
        for (size_t i = 0; i < n; i++)
            if (role[i] == MM_ROLE_TRAIN) cnt[find_i32(uniq, nu, y[i])]++;
        /* largest remainder: floor shares, then +1 to the largest fractional
         * parts (ties → smaller label) until nv is reached */
        size_t given = 0;
        for (size_t c = 0; c < nu; c++) {
            quota[c] = nv * cnt[c] / nt;
            given += quota[c];
        }
        /* quota[c] <= cnt[c] always holds: nv < nt */
        while (given < nv) {
            size_t best = (size_t)-1;
            for (size_t c = 0; c < nu; c++) {
                if (bumped[c] || quota[c] >= cnt[c]) continue;
                /* remainder of class c: nv*cnt[c] - quota[c]*nt (exact, >= 0) */
                if (best == (size_t)-1 ||
                    nv * cnt[c] - quota[c] * nt > nv * cnt[best] - quota[best] * nt)
                    best = c;
            }
            quota[best]++;
            bumped[best] = 1;
            given++;
        }
        for (size_t c = 0; c < nu; c++) {
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (role[i] == MM_ROLE_TRAIN && find_i32(uniq, nu, y[i]) == c) perm[m++] = i;
            mm_rng_shuffle_size(rng, perm, m);
            for (size_t j = 0; j < quota[c]; j++) role[perm[j]] = MM_ROLE_VAL;
        }
    }
    rc = 0;
done:
    free(vals); free(uniq); free(perm); free(cnt); free(quota); free(bumped);
    return rc;
}

int mm_split_carve_validation(mm_split *s, const int32_t *y, const int32_t *groups,
                              double fraction, uint64_t seed, mm_err *err)
{
    if (!(fraction > 0.0 && fraction < 1.0))
        return mm_err_set(err, MM_EINVAL, "validation split: fraction must be in (0, 1), got %g",
                          fraction);
    if (!y && !groups)
        return mm_err_set(err, MM_EINVAL, "validation split: needs labels or groups");
    uint8_t *copy = mm_malloc(s->n_rounds * s->n, 1, err);
    if (!copy) return MM_ENOMEM;
    memcpy(copy, s->role, s->n_rounds * s->n);
    for (size_t r = 0; r < s->n_rounds; r++) {
        mm_rng rng;
        mm_rng_seed(&rng, seed, r / s->n_folds, 1000 + r % s->n_folds);
        int rc = carve_round(copy + r * s->n, s->n, y, groups, fraction, &rng, r, err);
        if (rc) { free(copy); return rc; }
    }
    free(s->role);
    s->role = copy;
    return 0;
}

static int fixed_roles(const mm_split_params *p, const int32_t *groups, size_t n, uint8_t *role,
                       mm_err *err)
{
    const int32_t *lists[3] = {p->train_groups, p->val_groups, p->test_groups};
    const size_t counts[3] = {p->n_train_groups, p->n_val_groups, p->n_test_groups};
    const int roles[3] = {MM_ROLE_TRAIN, MM_ROLE_VAL, MM_ROLE_TEST};
    const char *names[3] = {"train_groups", "val_groups", "test_groups"};
    if (!groups) return mm_err_set(err, MM_EINVAL, "fixed split: needs group ids");
    if (!counts[0] || !counts[2])
        return mm_err_set(err, MM_EINVAL, "fixed split: train_groups and test_groups must not "
                          "be empty");
    int32_t *u;
    size_t nu, *inv = mm_malloc(n, sizeof *inv, err);
    if (!inv) return MM_ENOMEM;
    int rc = unique_i32(groups, n, &u, &nu, inv, err);
    if (rc) { free(inv); return rc; }
    int *part = mm_malloc(nu, sizeof *part, err);
    if (!part) { free(u); free(inv); return MM_ENOMEM; }
    for (size_t g = 0; g < nu; g++) part[g] = -1;
    for (int l = 0; l < 3 && !rc; l++) {
        for (size_t j = 0; j < counts[l]; j++) {
            size_t g = find_i32(u, nu, lists[l][j]);
            if (g == (size_t)-1) {
                rc = mm_err_set(err, MM_EINVAL, "fixed split: %s: group %d has no samples",
                                names[l], (int)lists[l][j]);
                break;
            }
            if (part[g] >= 0 && part[g] != l) {
                rc = mm_err_set(err, MM_EINVAL, "fixed split: group %d is listed in both %s and %s",
                                (int)lists[l][j], names[part[g]], names[l]);
                break;
            }
            part[g] = l;
        }
    }
    if (!rc)
        for (size_t i = 0; i < n; i++)
            role[i] = part[inv[i]] < 0 ? MM_ROLE_NONE : (uint8_t)roles[part[inv[i]]];
    free(part); free(u); free(inv);
    return rc;
}

int mm_split_make(const mm_split_params *p, const int32_t *y, const int32_t *groups, size_t n,
                  mm_split **out, mm_err *err)
{
    if (n == 0) return mm_err_set(err, MM_EINVAL, "split: no samples");
    if (p->repeats < 1) return mm_err_set(err, MM_EINVAL, "split: repeats must be >= 1");
    int needs_y = p->kind == MM_SPLIT_STRATIFIED_KFOLD || p->kind == MM_SPLIT_STRATIFIED_GROUP_KFOLD;
    int needs_g = p->kind != MM_SPLIT_STRATIFIED_KFOLD;
    if (needs_y && !y) return mm_err_set(err, MM_EINVAL, "split: this protocol needs labels");
    if (needs_g && !groups)
        return mm_err_set(err, MM_EINVAL, "split: this protocol needs group ids (e.g. speakers)");
    if (p->val_fraction < 0.0 || p->val_fraction >= 1.0)
        return mm_err_set(err, MM_EINVAL, "split: val_fraction must be in [0, 1), got %g",
                          p->val_fraction);
    if (p->kind == MM_SPLIT_FIXED && p->n_val_groups && p->val_fraction > 0.0)
        return mm_err_set(err, MM_EINVAL, "split: give either val_groups or val_fraction, not both");
    if (p->shuffle && (p->kind == MM_SPLIT_GROUP_KFOLD || p->kind == MM_SPLIT_LOGO ||
                       p->kind == MM_SPLIT_FIXED))
        return mm_err_set(err, MM_EINVAL, "split: only the stratified protocols shuffle");

    int rc = MM_ENOMEM;
    int32_t *fold = NULL;
    mm_split *s = mm_calloc(1, sizeof *s, err);
    if (!s || !(fold = mm_malloc(n, sizeof *fold, err))) goto fail;
    s->n = n;
    s->n_repeats = p->repeats;
    size_t k = p->n_folds;
    if (p->kind == MM_SPLIT_LOGO) {
        if ((rc = mm_split_logo(groups, n, fold, &k, err))) goto fail;
    } else if (p->kind == MM_SPLIT_FIXED) {
        k = 1;
    }
    s->n_folds = k;
    if (p->repeats > SIZE_MAX / k) { rc = mm_err_set(err, MM_EINVAL, "split: too many rounds"); goto fail; }
    s->n_rounds = p->repeats * k;
    rc = MM_ENOMEM;
    if (!(s->role = mm_malloc(s->n_rounds, n, err))) goto fail;
    for (size_t r = 0; r < p->repeats; r++) {
        uint8_t *base = s->role + r * k * n;
        mm_rng rng;
        mm_rng_seed(&rng, p->seed, r, 0);
        mm_rng *shuffle = p->shuffle ? &rng : NULL;
        switch (p->kind) {
        case MM_SPLIT_GROUP_KFOLD: rc = mm_split_group_kfold(groups, n, k, fold, err); break;
        case MM_SPLIT_STRATIFIED_KFOLD: rc = mm_split_stratified_kfold(y, n, k, shuffle, fold, err); break;
        case MM_SPLIT_STRATIFIED_GROUP_KFOLD:
            rc = mm_split_stratified_group_kfold(y, groups, n, k, shuffle, fold, err);
            break;
        case MM_SPLIT_LOGO: rc = 0; break;    /* fold already holds the group ranks */
        case MM_SPLIT_FIXED: rc = fixed_roles(p, groups, n, base, err); break;
        default: rc = mm_err_set(err, MM_EINVAL, "split: unknown protocol kind %d", (int)p->kind);
        }
        if (rc) goto fail;
        if (p->kind != MM_SPLIT_FIXED)
            for (size_t f = 0; f < k; f++)
                for (size_t i = 0; i < n; i++)
                    base[f * n + i] = fold[i] == (int32_t)f ? MM_ROLE_TEST : MM_ROLE_TRAIN;
    }
    if (p->val_fraction > 0.0 &&
        (rc = mm_split_carve_validation(s, y, groups, p->val_fraction, p->seed, err)))
        goto fail;
    free(fold);
    *out = s;
    return 0;
fail:
    free(fold);
    mm_split_free(s);
    return rc;
}

/* ---- leakage ---------------------------------------------------------- */

int mm_split_find_leak(const mm_split *s, const int32_t *groups, size_t *round, int32_t *group,
                       int *role_a, int *role_b)
{
    if (!s || !groups) return 0;
    int32_t *u = NULL;
    size_t nu = 0, *inv = malloc(s->n * sizeof *inv);
    uint8_t *mask = NULL;
    int found = 0;
    if (!inv || unique_i32(groups, s->n, &u, &nu, inv, NULL) ||
        !(mask = malloc(nu ? nu : 1))) {
        free(inv); free(u);
        return 0;    /* TODO(out of memory cannot be reported through this signature) */
    }
    for (size_t r = 0; r < s->n_rounds && !found; r++) {
        memset(mask, 0, nu);
        const uint8_t *ro = s->role + r * s->n;
        for (size_t i = 0; i < s->n && !found; i++) {
            int b = ro[i];
            if (b == MM_ROLE_NONE) continue;
            uint8_t other = mask[inv[i]] & (uint8_t)~(1u << b);
            if (other) {
                int a = 1;
                while (!(other & (1u << a))) a++;
                if (round) *round = r;
                if (group) *group = groups[i];
                if (role_a) *role_a = a;
                if (role_b) *role_b = b;
                found = 1;
            }
            mask[inv[i]] |= (uint8_t)(1u << b);
        }
    }
    free(inv); free(u); free(mask);
    return found;
}

int mm_split_check_leakage(const mm_split *s, const int32_t *groups, mm_err *err)
{
    size_t r;
    int32_t g;
    int a, b;
    if (!mm_split_find_leak(s, groups, &r, &g, &a, &b)) return 0;
    return mm_err_set(err, MM_EDATA, "round %zu (repeat %zu, fold %zu): group %d is in both the "
                      "%s and %s parts", r, r / s->n_folds, r % s->n_folds, (int)g,
                      mm_split_role_name(a), mm_split_role_name(b));
}

int mm_split_folds_leak(const int32_t *fold, const int32_t *groups, size_t n)
{
    int32_t *u = NULL, *first = NULL;
    size_t nu = 0, *inv = malloc((n ? n : 1) * sizeof *inv);
    int leak = 0;
    if (!inv || unique_i32(groups, n, &u, &nu, inv, NULL) ||
        !(first = malloc((nu ? nu : 1) * sizeof *first))) {
        free(inv); free(u);
        return -1;
    }
    for (size_t g = 0; g < nu; g++) first[g] = INT32_MIN;
    for (size_t i = 0; i < n && !leak; i++) {
        if (first[inv[i]] == INT32_MIN) first[inv[i]] = fold[i];
        else if (first[inv[i]] != fold[i]) leak = 1;
    }
    free(inv); free(u); free(first);
    return leak;
}
