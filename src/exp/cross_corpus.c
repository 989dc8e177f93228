/* cross_corpus.c — the cross-corpus protocol and per-corpus standardisation; see
 * cross_corpus.h. The run is an ordinary one-round run over a combined table (training
 * rows, then test rows) whose split gives the training side the training role (less a
 * validation carve) and the test side the test role, so exp/unit.c's scaler, SMOTE and
 * augmentation touch training rows only, as in every other protocol. Classes are matched
 * by name, as the shared-class protocols of cross-corpus emotion work do (Schuller et al.
 * 2010, "Cross-corpus acoustic emotion recognition"); domain_norm is their per-corpus
 * z-normalisation.
 */
#include "exp/cross_corpus.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/paths.h"

/* ---- parsing ---- */

/* The dataset block of `test:` (a block, or a map holding one under `dataset:`). */
static const mm_cfg *test_block(const mm_cfg *t)
{
    const mm_cfg *d = t ? mm_cfg_child(t, "dataset") : NULL;
    return d && d->type == MM_CFG_MAP ? d : t;
}

/* The test block names its kind and where its clips are. */
static int check_test_block(const mm_cfg *p, const mm_cfg *b, mm_err *err)
{
    char w[600];
    if (!b || b->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: protocol cross_corpus needs 'test:' with the test corpus's dataset block, "
                          "e.g. {type: csv, manifest: corpus/manifest.csv, labels: {ang: angry}}", mm_cfg_where(b ? b : p, w, sizeof w));
    static const char *const types[] = {"ravdess", "folder", "csv", NULL};
    int type = -1, rc = mm_cfg_get_choice(b, "type", types, -1, &type, err);
    if (rc) return rc;
    if (type < 0)
        return mm_err_set(err, MM_EINVAL, "%s: protocol.test: the test dataset needs 'type: folder|csv|ravdess'", mm_cfg_where(b, w, sizeof w));
    const char *key = type == 2 ? "manifest" : "root";
    const mm_cfg *v = mm_cfg_child(b, key);
    if (!v || !v->value || !*v->value)
        return mm_err_set(err, MM_EINVAL, "%s: protocol.test: a %s dataset needs '%s: %s' (relative to the data root)", mm_cfg_where(b, w, sizeof w),
                          types[type], key, type == 2 ? "FILE.csv" : "FOLDER");
    return 0;
}

/* The cross_corpus keys other than test into sp, through the fixed-split reader (its
 * group lists, "a-b" ranges and messages). */
static int cross_split_params(const mm_cfg *p, mm_split_params *sp, mm_err *err)
{
    char w[600];
    const mm_cfg *trg = mm_cfg_child(p, "train_groups"), *teg = mm_cfg_child(p, "test_groups");
    if (!trg != !teg)
        return mm_err_set(err, MM_EINVAL, "%s: protocol cross_corpus: give both train_groups and test_groups or neither", mm_cfg_where(trg ? trg : teg, w, sizeof w));
    mm_cfg *m = mm_cfg_new_map();
    if (!m) return mm_err_set(err, MM_ENOMEM, "out of memory");
    static const char *const pass[] = {"train_groups", "test_groups", "val_fraction", "seed", NULL};
    int rc = 0;
    for (int i = 0; pass[i] && !rc; i++)
        if (mm_cfg_child(p, pass[i])) rc = mm_cfg_put(m, pass[i], mm_cfg_child(p, pass[i]), err);
    if (!rc && trg) rc = mm_cfg_put_str(m, "kind", "fixed", err);
    if (!rc) rc = mm_split_params_from_cfg(m, sp, err);
    mm_cfg_free(m);
    return rc;
}

int mm_exp_parse_protocol(const mm_cfg *cfg, const mm_exp_prep *prep, mm_exp_cross *cc, mm_split_params *sp,
                          mm_err *err)
{
    char w[600];
    const mm_cfg *p = mm_cfg_child(cfg, "protocol");
    const mm_cfg *kind = p && p->type == MM_CFG_MAP ? mm_cfg_child(p, "kind") : NULL;
    memset(cc, 0, sizeof *cc);
    if (!kind || !kind->value || strcmp(kind->value, "cross_corpus")) {
        if (prep->domain_norm)
            return mm_err_set(err, MM_EINVAL, "%s: preprocessing.domain_norm standardises each corpus with its own statistics; "
                              "it needs 'protocol: {kind: cross_corpus, test: ...}'",
                              mm_cfg_where(mm_cfg_find(cfg, "preprocessing.domain_norm"), w, sizeof w));
        return mm_split_params_from_cfg(p, sp, err);
    }
    static const char *const keys[] = {"kind", "test", "train_groups", "test_groups", "val_fraction", "seed", NULL};
    int rc = mm_cfg_check_keys(p, "protocol (cross_corpus)", keys, err);
    if (!rc) rc = check_test_block(p, test_block(mm_cfg_child(p, "test")), err);
    if (rc) return rc;
    if (mm_cfg_child(cfg, "table") || !mm_cfg_child(cfg, "dataset") || !mm_cfg_child(cfg, "features"))
        return mm_err_set(err, MM_EINVAL, "%s: protocol cross_corpus extracts both corpora: the experiment needs 'dataset' and 'features', not 'table'",
                          mm_cfg_where(p, w, sizeof w));
    if (mm_cfg_child(cfg, "robustness"))
        return mm_err_set(err, MM_EINVAL, "%s: robustness: is not supported with protocol cross_corpus (it corrupts the training corpus's clips)",
                          mm_cfg_where(mm_cfg_child(cfg, "robustness"), w, sizeof w));
    if ((rc = cross_split_params(p, sp, err))) return rc;
    cc->enabled = 1;
    cc->test = test_block(mm_cfg_child(p, "test"));
    cc->protocol = p;
    return 0;
}

/* ---- matching the two sides ---- */

/* One corpus: its rows' labels and groups, its class names, its group filter. */
typedef struct side {
    const char *what;              /* "training" or "test" */
    size_t n;
    const int32_t *labels, *groups;
    const char *group_by;          /* "actor", ... or NULL */
    char *const *classes;
    int k;
    const int32_t *keep;           /* group ids to keep (n_keep); 0: all */
    size_t n_keep;
    const char *keep_key;          /* "train_groups" or "test_groups" */
} side;

/* Which rows of each side are used and as which shared class. */
typedef struct plan {
    uint8_t *in[2];                /* (side n) row in the corpus (group filter; labels unused) */
    int *cls[2];                   /* (side k) class → shared class index, -1 when not shared */
    size_t *rows[2], nrows[2];     /* kept rows (in the corpus, shared class), ascending */
    size_t n_in[2], dropped[2];    /* rows in the corpus; of them, of classes not shared */
    char dropped_names[2][512];    /* those classes, comma-separated */
    int k;                         /* shared classes */
    char *const *names;            /* (side-0 k) training class names; shared ones are those with cls[0] >= 0 */
    int32_t goff;                  /* added to the test side's group ids */
} plan;

static void plan_free(plan *p)
{
    for (int s = 0; s < 2; s++) { free(p->in[s]); free(p->cls[s]); free(p->rows[s]); }
    memset(p, 0, sizeof *p);
}

/* in[] from the group filter; a listed group without rows is an error. */
static int corpus_rows(const side *s, uint8_t *in, const char *where, mm_err *err)
{
    for (size_t i = 0; i < s->n; i++) {
        int ok = s->labels[i] >= 0;
        if (ok && s->n_keep) {
            ok = 0;
            for (size_t j = 0; j < s->n_keep && !ok; j++) ok = s->groups[i] == s->keep[j];
        }
        in[i] = (uint8_t)ok;
    }
    for (size_t j = 0; j < s->n_keep; j++) {
        size_t i = 0;
        while (i < s->n && s->groups[i] != s->keep[j]) i++;
        if (i == s->n)
            return mm_err_set(err, MM_EINVAL, "%s: protocol.%s: group %d has no clips in the %s corpus", where, s->keep_key, (int)s->keep[j], s->what);
    }
    return 0;
}

static void list_names(const side *s, const int *cls, const uint8_t *present, char *buf, size_t size)
{
    buf[0] = 0;
    for (int c = 0; c < s->k; c++)
        if (present[c] && cls[c] < 0) {
            size_t l = strlen(buf);
            snprintf(buf + l, size - l, "%s%s", l ? ", " : "", s->classes[c]);
        }
}

/* Shared classes: training classes (in training order) with rows on both sides, matched
 * by name. Fewer than two is refused. */
static int match_classes(const side s[2], plan *p, uint8_t *present[2], const char *where, mm_err *err)
{
    for (int c = 0; c < s[0].k; c++) p->cls[0][c] = -1;
    for (int j = 0; j < s[1].k; j++) p->cls[1][j] = -1;
    p->k = 0;
    for (int c = 0; c < s[0].k; c++) {
        if (!present[0][c]) continue;
        for (int j = 0; j < s[1].k; j++)
            if (present[1][j] && !strcmp(s[0].classes[c], s[1].classes[j])) { p->cls[0][c] = p->cls[1][j] = p->k++; break; }
    }
    if (p->k >= 2) return 0;
    char a[512] = "", b[512] = "";
    for (int q = 0; q < 2; q++)
        for (int c = 0; c < s[q].k; c++)
            if (present[q][c]) {
                char *t = q ? b : a;
                size_t l = strlen(t);
                snprintf(t + l, sizeof a - l, "%s%s", l ? ", " : "", s[q].classes[c]);
            }
    return mm_err_set(err, MM_EINVAL, "%s: protocol.test: the test corpus shares %s with training (training: %s; test: %s); "
                      "map its labels onto the training classes with 'labels: {its_label: class}'",
                      where, p->k ? "only one class" : "no class", a, b);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The plan of two sides: corpus rows, shared classes, kept rows, test group offset. */
static int plan_make(const side s[2], const char *where, plan *p, mm_err *err)
{
    memset(p, 0, sizeof *p);
    uint8_t *present[2] = {NULL, NULL};
    int rc = 0;
    for (int q = 0; q < 2 && !rc; q++) {
        p->in[q] = mm_malloc(s[q].n + 1, 1, err);
        p->cls[q] = mm_malloc((size_t)s[q].k + 1, sizeof *p->cls[q], err);
        p->rows[q] = mm_malloc(s[q].n + 1, sizeof *p->rows[q], err);
        present[q] = mm_calloc((size_t)s[q].k + 1, 1, err);
        if (!p->in[q] || !p->cls[q] || !p->rows[q] || !present[q]) rc = MM_ENOMEM;
        if (!rc) rc = corpus_rows(&s[q], p->in[q], where, err);
        for (size_t i = 0; !rc && i < s[q].n; i++)
            if (p->in[q][i] && s[q].labels[i] < s[q].k) present[q][s[q].labels[i]] = 1;
    }
    if (!rc) rc = match_classes(s, p, present, where, err);
    int32_t max_tr = INT32_MIN, min_te = INT32_MAX;
    int collide = 0;
    int32_t *ids = rc ? NULL : mm_malloc(s[0].n + 1, sizeof *ids, err);   /* the training side's group ids, sorted */
    size_t n_ids = 0;
    if (!rc && !ids) rc = MM_ENOMEM;
    for (int q = 0; q < 2 && !rc; q++) {
        for (size_t i = 0; i < s[q].n; i++) {
            if (!p->in[q][i]) continue;
            p->n_in[q]++;
            if (p->cls[q][s[q].labels[i]] < 0) { p->dropped[q]++; continue; }
            p->rows[q][p->nrows[q]++] = i;
        }
        list_names(&s[q], p->cls[q], present[q], p->dropped_names[q], sizeof p->dropped_names[q]);
    }
    for (size_t i = 0; !rc && i < s[0].n; i++)
        if (p->in[0][i] && s[0].groups[i] >= 0) {
            ids[n_ids++] = s[0].groups[i];
            if (s[0].groups[i] > max_tr) max_tr = s[0].groups[i];
        }
    if (!rc) qsort(ids, n_ids, sizeof *ids, cmp_i32);
    for (size_t i = 0; !rc && i < s[1].n; i++) {
        if (!p->in[1][i] || s[1].groups[i] < 0) continue;
        if (s[1].groups[i] < min_te) min_te = s[1].groups[i];
        collide |= bsearch(&s[1].groups[i], ids, n_ids, sizeof *ids, cmp_i32) != NULL;
    }
    free(ids);
    if (!rc && collide) p->goff = max_tr + 1 - min_te;
    p->names = s[0].classes;
    free(present[0]);
    free(present[1]);
    if (rc) plan_free(p);
    return rc;
}

/* The combined rows' labels and groups: training rows, then test rows. */
static int plan_index(const side s[2], const plan *p, int32_t **labels, int32_t **groups, mm_err *err)
{
    size_t n = p->nrows[0] + p->nrows[1];
    *labels = mm_malloc(n + 1, sizeof **labels, err);
    *groups = mm_malloc(n + 1, sizeof **groups, err);
    if (!*labels || !*groups) { free(*labels); free(*groups); *labels = *groups = NULL; return MM_ENOMEM; }
    for (int q = 0, k = 0; q < 2; q++)
        for (size_t j = 0; j < p->nrows[q]; j++, k++) {
            size_t i = p->rows[q][j];
            int32_t g = s[q].groups[i];
            (*labels)[k] = p->cls[q][s[q].labels[i]];
            (*groups)[k] = g >= 0 && q == 1 ? g + p->goff : g;
        }
    return 0;
}

/* One round: training rows train (less a validation carve when sp asks), test rows test. */
static int plan_split(const int32_t *labels, const int32_t *groups, size_t n_tr, size_t n, const mm_split_params *sp,
                      mm_split **out, mm_err *err)
{
    mm_split *s = mm_calloc(1, sizeof *s, err);
    if (!s || !(s->role = mm_malloc(n + 1, 1, err))) { free(s); return MM_ENOMEM; }
    s->n = n;
    s->n_folds = s->n_repeats = s->n_rounds = 1;
    for (size_t i = 0; i < n; i++) s->role[i] = i < n_tr ? MM_ROLE_TRAIN : MM_ROLE_TEST;
    int has_groups = 0;
    for (size_t i = 0; i < n_tr && !has_groups; i++) has_groups = groups[i] >= 0;
    int rc = 0;
    if (sp->val_fraction > 0)
        rc = mm_split_carve_validation(s, labels, has_groups ? groups : NULL, sp->val_fraction, sp->seed, err);
    if (rc) { mm_split_free(s); return mm_err_prefix(err, "protocol cross_corpus"); }
    *out = s;
    return 0;
}

static void sides_init(side s[2], const mm_split_params *sp)
{
    s[0] = (side){.what = "training", .keep = sp->train_groups, .n_keep = sp->n_train_groups, .keep_key = "train_groups"};
    s[1] = (side){.what = "test", .keep = sp->test_groups, .n_keep = sp->n_test_groups, .keep_key = "test_groups"};
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A clip (by path) in both corpora is refused: two halves of one corpus must not overlap. */
static int check_disjoint(const mm_dataset *const d[2], const plan *p, const char *where, mm_err *err)
{
    char **v[2] = {NULL, NULL};
    size_t m[2] = {0, 0};
    int rc = 0;
    for (int q = 0; q < 2 && !rc; q++) {
        if (!(v[q] = mm_malloc(d[q]->n + 1, sizeof *v[q], err))) { rc = MM_ENOMEM; break; }
        for (size_t i = 0; i < d[q]->n; i++) if (p->in[q][i]) v[q][m[q]++] = d[q]->paths[i];
        qsort(v[q], m[q], sizeof *v[q], cmp_str_ptr);
    }
    size_t both = 0;
    const char *first = NULL;
    for (size_t i = 0, j = 0; !rc && i < m[0] && j < m[1];) {
        int c = strcmp(v[0][i], v[1][j]);
        if (!c && !both++) first = v[0][i];
        i += c <= 0;
        j += c >= 0;
    }
    if (both)
        rc = mm_err_set(err, MM_EINVAL, "%s: protocol cross_corpus: %zu clips are in both the training and the test corpus (e.g. %s); "
                        "give disjoint corpora, or disjoint train_groups and test_groups", where, both, first);
    free(v[0]);
    free(v[1]);
    return rc;
}

int mm_exp_cross_precheck(const mm_cfg *cfg, const mm_exp_cross *cc, const mm_split_params *sp,
                          const mm_dataset *train, int32_t **labels, int32_t **groups, size_t *n,
                          mm_split **split, mm_err *err)
{
    const char *data_root = NULL;
    char where[600];
    mm_cfg_where(cc->protocol, where, sizeof where);
    mm_dataset *test = NULL;
    int rc = mm_cfg_get_str(cfg, "data_root", NULL, &data_root, err);
    if (!rc && (rc = mm_dataset_load(cc->test, mm_data_root(data_root), &test, err))) mm_err_prefix(err, "protocol.test");
    if (rc) return rc;
    side s[2];
    sides_init(s, sp);
    const mm_dataset *d[2] = {train, test};
    for (int q = 0; q < 2; q++) {
        s[q].n = d[q]->n, s[q].labels = d[q]->labels, s[q].groups = d[q]->groups;
        s[q].classes = d[q]->class_names, s[q].k = d[q]->n_classes;
    }
    plan p;
    *labels = *groups = NULL;
    rc = plan_make(s, where, &p, err);
    if (!rc) rc = check_disjoint(d, &p, where, err);
    if (!rc) rc = plan_index(s, &p, labels, groups, err);
    if (!rc) {
        *n = p.nrows[0] + p.nrows[1];
        rc = plan_split(*labels, *groups, p.nrows[0], *n, sp, split, err);
    }
    if (rc) { free(*labels); free(*groups); *labels = *groups = NULL; }
    plan_free(&p);
    mm_dataset_free(test);
    return rc;
}

/* ---- per-corpus standardisation ---- */

int mm_exp_domain_standardise(float *X, size_t n, size_t d, const uint8_t *mask, mm_scaler **sc, mm_err *err)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += !mask || mask[i];
    if (!m) return mm_err_set(err, MM_EINVAL, "domain_norm: a corpus without rows");
    float *buf = mm_malloc(m * d + 1, sizeof *buf, err);
    if (!buf) return MM_ENOMEM;
    for (size_t i = 0, k = 0; i < n; i++)
        if (!mask || mask[i]) memcpy(buf + k++ * d, X + i * d, d * sizeof *X);
    mm_scaler *s = NULL;
    int rc = mm_scaler_fit(buf, m, d, &s, err);
    if (!rc) rc = mm_scaler_transform(s, buf, m, d, err);
    for (size_t i = 0, k = 0; !rc && i < n; i++)
        if (!mask || mask[i]) memcpy(X + i * d, buf + k++ * d, d * sizeof *X);
    free(buf);
    if (rc || !sc) mm_scaler_free(s);
    else *sc = s;
    return rc;
}

/* domain_norm on both tables (corpus rows only) and, with the training statistics, on
 * the augmented copies of the training table (aug_X[k], aligned with it). */
static int domain_norm(mm_table *t[2], const plan *p, float **aug_X, size_t n_aug, mm_err *err)
{
    mm_scaler *sc = NULL;
    int rc = 0;
    for (int q = 0; q < 2 && !rc; q++)
        rc = mm_exp_domain_standardise(t[q]->X, t[q]->n, t[q]->d, p->in[q], q ? NULL : &sc, err);
    for (size_t k = 0; k < n_aug && !rc; k++)
        for (size_t i = 0; i < t[0]->n && !rc; i++)
            if (p->in[0][i]) rc = mm_scaler_transform(sc, aug_X[k] + i * t[0]->d, 1, t[0]->d, err);
    mm_scaler_free(sc);
    return rc;
}

/* ---- the combined table ---- */

/* The name of group id g in t (NULL when t does not list it). */
static const char *group_name(const mm_table *t, int32_t g)
{
    for (size_t j = 0; j < t->n_group_ids; j++)
        if (t->group_ids[j] == g) return t->group_names ? t->group_names[j] : NULL;
    return NULL;
}

/* Distinct group ids of the combined rows, ascending, with their names (a test group's
 * name prefixed "test:" when its id was moved). */
static int merge_groups(mm_table *c, mm_table *const t[2], const plan *p, mm_err *err)
{
    int32_t *ids = mm_malloc(c->n + 1, sizeof *ids, err);
    if (!ids) return MM_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++) if (c->groups[i] >= 0) ids[m++] = c->groups[i];
    qsort(ids, m, sizeof *ids, cmp_i32);
    size_t u = 0;
    for (size_t i = 0; i < m; i++) if (!u || ids[u - 1] != ids[i]) ids[u++] = ids[i];
    c->group_ids = ids;
    c->n_group_ids = u;
    c->group_names = mm_calloc(u + 1, sizeof *c->group_names, err);
    if (!c->group_names) return MM_ENOMEM;
    for (size_t j = 0; j < u; j++) {
        /* a training id, else a test id (moved by goff) */
        size_t i = 0;
        while (c->groups[i] != ids[j]) i++;
        int q = i >= p->nrows[0];
        const char *nm = group_name(t[q], q ? ids[j] - p->goff : ids[j]);
        char buf[300];
        snprintf(buf, sizeof buf, "%s%s", q && p->goff ? "test:" : "", nm ? nm : "?");
        if (!(c->group_names[j] = strdup(buf))) return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    const char *gb = t[0]->group_by ? t[0]->group_by : t[1]->group_by;
    if (gb && !(c->group_by = strdup(gb))) return mm_err_set(err, MM_ENOMEM, "out of memory");
    return 0;
}

/* The rows of both tables that the plan keeps, training first; labels and groups from
 * plan_index (taken over by *out). */
static int merge_tables(mm_table *const t[2], const plan *p, int32_t *labels, int32_t *groups, mm_table **out, mm_err *err)
{
    size_t n = p->nrows[0] + p->nrows[1], d = t[0]->d;
    mm_table *c = mm_calloc(1, sizeof *c, err);
    if (!c) { free(labels); free(groups); return MM_ENOMEM; }
    c->n = n, c->d = d, c->labels = labels, c->groups = groups, c->n_classes = p->k;
    c->sample_rate = t[0]->sample_rate;
    c->X = mm_malloc(n * d + 1, sizeof *c->X, err);
    c->paths = mm_calloc(n + 1, sizeof *c->paths, err);
    c->feature_names = mm_calloc(d + 1, sizeof *c->feature_names, err);
    c->label_names = mm_calloc((size_t)p->k + 1, sizeof *c->label_names, err);
    int rc = !c->X || !c->paths || !c->feature_names || !c->label_names ? MM_ENOMEM : 0;
    if (!rc && t[0]->durations && t[1]->durations && !(c->durations = mm_malloc(n + 1, sizeof *c->durations, err))) rc = MM_ENOMEM;
    for (int q = 0, k = 0; q < 2 && !rc; q++)
        for (size_t j = 0; j < p->nrows[q] && !rc; j++, k++) {
            size_t i = p->rows[q][j];
            memcpy(c->X + (size_t)k * d, t[q]->X + i * d, d * sizeof *c->X);
            if (c->durations) c->durations[k] = t[q]->durations[i];
            if (!(c->paths[k] = strdup(t[q]->paths && t[q]->paths[i] ? t[q]->paths[i] : ""))) rc = MM_ENOMEM;
        }
    for (size_t j = 0; j < d && !rc; j++)
        if (!(c->feature_names[j] = strdup(t[0]->feature_names && t[0]->feature_names[j] ? t[0]->feature_names[j] : ""))) rc = MM_ENOMEM;
    for (int cl = 0; cl < t[0]->n_classes && !rc; cl++)
        if (p->cls[0][cl] >= 0 && !(c->label_names[p->cls[0][cl]] = strdup(t[0]->label_names[cl]))) rc = MM_ENOMEM;
    if (!rc && t[0]->feature_set && !(c->feature_set = strdup(t[0]->feature_set))) rc = MM_ENOMEM;
    if (!rc && t[0]->settings && !(c->settings = strdup(t[0]->settings))) rc = MM_ENOMEM;
    if (!rc) rc = merge_groups(c, t, p, err);
    if (rc) {
        mm_table_free(c);
        return rc == MM_ENOMEM ? mm_err_set(err, rc, "out of memory") : rc;
    }
    *out = c;
    return 0;
}

/* aug_X[k] (n, d) of the combined table from the training table's copies aug_tr[k]. */
static int merge_aug(const plan *p, size_t d, float **aug_tr, size_t n_aug, float **aug_X, mm_err *err)
{
    size_t n = p->nrows[0] + p->nrows[1];
    for (size_t k = 0; k < n_aug; k++) {
        if (!(aug_X[k] = mm_calloc(n * d + 1, sizeof *aug_X[k], err))) return MM_ENOMEM;
        for (size_t j = 0; j < p->nrows[0]; j++) memcpy(aug_X[k] + j * d, aug_tr[k] + p->rows[0][j] * d, d * sizeof **aug_X);
    }
    return 0;
}

static const char *corpus_name(const mm_cfg *block)
{
    const mm_cfg *v = mm_cfg_child(block, "name");
    if (!v || !v->value) v = mm_cfg_child(block, "type");
    return v && v->value ? v->value : "?";
}

/* " of G groups" when the side's kept rows have groups. */
static void groups_text(const side *s, const plan *p, int q, char *buf, size_t size)
{
    size_t g = 0;
    buf[0] = 0;
    for (size_t j = 0; j < p->nrows[q]; j++) {
        int32_t id = s->groups[p->rows[q][j]];
        size_t i = 0;
        while (i < j && s->groups[p->rows[q][i]] != id) i++;
        g += id >= 0 && i == j;
    }
    if (g) snprintf(buf, size, ", %zu %ss", g, s->group_by ? s->group_by : "group");
}

/* The summary.md paragraph. */
static char *cross_note(const mm_cfg *cfg, const mm_exp_cross *cc, const side s[2], const plan *p, int domain)
{
    char buf[3000], g0[96], g1[96];
    groups_text(&s[0], p, 0, g0, sizeof g0);
    groups_text(&s[1], p, 1, g1, sizeof g1);
    int len = snprintf(buf, sizeof buf,
                       "\n**Cross-corpus**: trained on %s (%zu clips%s), tested on %s (%zu clips%s), %d shared classes; "
                       "metrics cover the shared classes only. Left out of the test corpus: %zu clips of classes absent from training%s%s%s. "
                       "Left out of training: %zu clips of classes absent from the test corpus%s%s%s.\n",
                       corpus_name(mm_cfg_child(cfg, "dataset")), p->nrows[0], g0, corpus_name(cc->test), p->nrows[1], g1, p->k,
                       p->dropped[1], p->dropped[1] ? " (" : "", p->dropped_names[1], p->dropped[1] ? ")" : "",
                       p->dropped[0], p->dropped[0] ? " (" : "", p->dropped_names[0], p->dropped[0] ? ")" : "");
    if (domain && len > 0 && (size_t)len < sizeof buf)
        snprintf(buf + len, sizeof buf - (size_t)len,
                 "\n**Per-corpus normalisation** (domain_norm: per_corpus): each corpus's features were standardised with its own "
                 "mean and standard deviation over all of its clips (labels unused), the test corpus's included: transductive, "
                 "these scores assume the test corpus's unlabelled features are at hand at once.\n");
    return strdup(buf);
}

/* Both tables, labelled rows, the same width. */
static int cross_tables(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_cross *cc, mm_table *t[2], mm_err *err)
{
    int rc = mm_exp_get_table(cfg, o, &t[0], err);
    mm_cfg *tc = rc ? NULL : mm_cfg_clone(cfg);
    if (!rc && !tc) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    if (!rc) rc = mm_cfg_put(tc, "dataset", cc->test, err);
    if (!rc && (rc = mm_exp_get_table(tc, o, &t[1], err))) mm_err_prefix(err, "protocol.test");
    mm_cfg_free(tc);
    for (int q = 0; q < 2 && !rc; q++) mm_exp_keep_labelled(t[q]);
    if (!rc && t[0]->d != t[1]->d)
        rc = mm_err_set(err, MM_EDATA, "protocol cross_corpus: the test table has %zu features and the training table %zu", t[1]->d, t[0]->d);
    return rc;
}

int mm_exp_cross_data(const mm_cfg *cfg, const mm_run_opts *o, const mm_exp_cross *cc, const mm_exp_prep *prep,
                      const mm_split_params *sp, const mm_exp_augment *aug, uint64_t seed, mm_table **out,
                      mm_split **split, float **aug_X, char **note, mm_err *err)
{
    mm_table *t[2] = {NULL, NULL};
    float *aug_tr[MM_EXP_MAX_AUG] = {0};
    int32_t *labels = NULL, *groups = NULL;
    char where[600];
    mm_cfg_where(cc->protocol, where, sizeof where);
    plan p = {0};
    side s[2];
    sides_init(s, sp);
    int rc = cross_tables(cfg, o, cc, t, err);
    for (int q = 0; q < 2 && !rc; q++) {
        s[q].n = t[q]->n, s[q].labels = t[q]->labels, s[q].groups = t[q]->groups;
        s[q].classes = t[q]->label_names, s[q].k = t[q]->n_classes, s[q].group_by = t[q]->group_by;
        if (prep->group_norm && !t[q]->group_by)
            rc = mm_err_set(err, MM_EINVAL, "%s: preprocessing.group_norm needs groups (group_by) in both corpora; the %s corpus has none", where, s[q].what);
    }
    if (!rc) rc = plan_make(s, where, &p, err);
    for (int q = 0; q < 2 && !rc; q++) rc = mm_exp_group_norm(t[q], prep, seed, o->n_threads, err);
    if (!rc && aug->n) rc = mm_exp_augment_tables(cfg, o, aug, t[0], 1, prep, seed, aug_tr, err);
    if (!rc && prep->domain_norm) rc = domain_norm(t, &p, aug_tr, aug->n, err);
    if (!rc) rc = plan_index(s, &p, &labels, &groups, err);
    if (!rc) rc = merge_tables(t, &p, labels, groups, out, err);
    if (!rc) rc = merge_aug(&p, t[0]->d, aug_tr, aug->n, aug_X, err);
    if (!rc) rc = plan_split((*out)->labels, (*out)->groups, p.nrows[0], (*out)->n, sp, split, err);
    if (!rc && !(*note = cross_note(cfg, cc, s, &p, prep->domain_norm))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    if (rc && *out) { mm_table_free(*out); *out = NULL; }
    for (size_t k = 0; k < MM_EXP_MAX_AUG; k++) free(aug_tr[k]);
    plan_free(&p);
    mm_table_free(t[0]);
    mm_table_free(t[1]);
    return rc;
}
