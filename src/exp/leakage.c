/* leakage.c — copies of one recording on both sides of a split; see leakage.h.
 *
 * Sources by path: the rows sorted by (path, row), equal non-empty paths one
 * id. Counting: per round, the sources with a training or validation row are
 * marked, then every test row of a marked source is a leaky row and its
 * source shared. The expanded table keeps the original rows first, so row
 * indices of the clean table mean the same rows after expansion.
 */
#include "exp/leakage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mm_leak_parse(const mm_cfg *cfg, mm_leak *lk, mm_err *err)
{
    memset(lk, 0, sizeof *lk);
    char w[600];
    int rc = mm_cfg_get_bool(cfg, "allow_copy_leakage", 0, &lk->allowed, err);
    if (!rc) rc = mm_exp_parse_augment_key(cfg, "augment_before_split", &lk->pre, err);
    if (rc || !lk->pre.n) return rc;
    const mm_cfg *at = mm_cfg_child(cfg, "augment_before_split");
    if (mm_cfg_child(cfg, "augment"))
        return mm_err_set(err, MM_EINVAL, "%s: augment_before_split and augment: give one (augment: copies of each round's training clips only; augment_before_split: copies of every clip before the split, the leaky recipe)",
                          mm_cfg_where(at, w, sizeof w));
    if (mm_cfg_child(cfg, "robustness"))
        return mm_err_set(err, MM_EINVAL, "%s: augment_before_split with robustness: the corrupted test clips line up with the clips, not with their copies; use augment: for a robustness run",
                          mm_cfg_where(at, w, sizeof w));
    return 0;
}

typedef struct path_row {
    const char *path;
    size_t row;
} path_row;

static int cmp_path_row(const void *a, const void *b)
{
    const path_row *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c) return c;
    return x->row < y->row ? -1 : x->row > y->row;
}

int mm_leak_sources(const char *const *paths, size_t n, int32_t *src, size_t *n_sources, mm_err *err)
{
    path_row *pr = mm_malloc(n + 1, sizeof *pr, err);
    if (!pr) return MM_ENOMEM;
    size_t m = 0, id = 0;
    for (size_t i = 0; i < n; i++) {
        if (paths && paths[i] && paths[i][0]) pr[m++] = (path_row){paths[i], i};
        else src[i] = (int32_t)id++;   /* no path: a source of its own */
    }
    qsort(pr, m, sizeof *pr, cmp_path_row);
    for (size_t j = 0; j < m; j++) {
        if (j == 0 || strcmp(pr[j].path, pr[j - 1].path)) id++;
        src[pr[j].row] = (int32_t)(id - 1);
    }
    *n_sources = id;
    free(pr);
    return 0;
}

int mm_leak_count_split(const mm_split *split, const int32_t *src, size_t n_sources, mm_leak_count *c,
                        mm_err *err)
{
    memset(c, 0, sizeof *c);
    c->n_sources = n_sources;
    uint8_t *trained = mm_malloc(n_sources + 1, 1, err), *shared = mm_calloc(n_sources + 1, 1, err);
    if (!trained || !shared) { free(trained); free(shared); return MM_ENOMEM; }
    for (size_t r = 0; r < split->n_rounds; r++) {
        const uint8_t *role = split->role + r * split->n;
        memset(trained, 0, n_sources);
        for (size_t i = 0; i < split->n; i++)
            if (role[i] == MM_ROLE_TRAIN || role[i] == MM_ROLE_VAL) trained[src[i]] = 1;
        for (size_t i = 0; i < split->n; i++) {
            if (role[i] != MM_ROLE_TEST) continue;
            c->test_rows++;
            if (trained[src[i]]) { c->leaky_rows++; shared[src[i]] = 1; }
        }
    }
    for (size_t s = 0; s < n_sources; s++) c->shared += shared[s];
    free(trained);
    free(shared);
    return 0;
}

int mm_leak_refuse(const mm_leak *lk, const mm_leak_count *c, const char *name, mm_err *err)
{
    if (!c->shared || lk->allowed) return 0;
    if (lk->pre.n)
        return mm_err_set(err, MM_EINVAL, "%s: %zu of %zu source clips have copies in both training and test data (augment_before_split makes %zu copies of every clip before the split); "
                          "add 'allow_copy_leakage: true' to run it anyway (the summary flags it), or augment after the split with 'augment:'",
                          name, c->shared, c->n_sources, lk->pre.n);
    return mm_err_set(err, MM_EINVAL, "%s: %zu of %zu source clips have copies (rows with the same path) in both training and test data; "
                      "add 'allow_copy_leakage: true' to run it anyway (the summary flags it), or use a protocol that keeps each clip's rows on one side",
                      name, c->shared, c->n_sources);
}

int mm_leak_precheck(const mm_leak *lk, const mm_split_params *sp, const int32_t *labels, const int32_t *groups,
                     size_t n, const char *name, mm_err *err)
{
    if (!lk->pre.n) return 0;
    size_t m = 0, copies = 1 + lk->pre.n;
    for (size_t i = 0; i < n; i++) m += labels[i] >= 0;
    size_t rows = m * copies;
    int32_t *y = mm_malloc(rows + 1, sizeof *y, err), *g = mm_malloc(rows + 1, sizeof *g, err);
    int32_t *src = mm_malloc(rows + 1, sizeof *src, err);
    mm_split *split = NULL;
    int rc = !y || !g || !src ? MM_ENOMEM : 0;
    for (size_t i = 0, j = 0; !rc && i < n; i++) {
        if (labels[i] < 0) continue;
        for (size_t k = 0; k < copies; k++) {   /* row k·m + j: copy k of clip j, as mm_leak_expand lays them out */
            y[k * m + j] = labels[i];
            g[k * m + j] = groups ? groups[i] : -1;
            src[k * m + j] = (int32_t)j;
        }
        j++;
    }
    int has_groups = 0;   /* as the runner's split: groups only when some row has one */
    for (size_t i = 0; groups && i < rows && !rc; i++) has_groups |= g[i] >= 0;
    if (!rc) rc = mm_split_make(sp, y, has_groups ? g : NULL, rows, &split, err);
    mm_leak_count c;
    if (!rc) rc = mm_leak_count_split(split, src, m, &c, err);
    if (!rc) rc = mm_leak_refuse(lk, &c, name, err);
    mm_split_free(split);
    free(y); free(g); free(src);
    return rc;
}

/* A string column of n rows grown to rows, row r >= n a copy of row r mod n;
 * *col NULL stays NULL. On failure the column holds its n rows as before. */
static int grow_strings(char ***col, size_t n, size_t rows)
{
    if (!*col) return 0;
    char **c = realloc(*col, (rows + 1) * sizeof *c);
    if (!c) return MM_ENOMEM;
    *col = c;
    int rc = 0;
    for (size_t r = n; r < rows; r++)
        if (!(c[r] = strdup(c[r % n] ? c[r % n] : ""))) rc = MM_ENOMEM;
    for (size_t r = n; rc && r < rows; r++) { free(c[r]); c[r] = NULL; }
    return rc;
}

/* Grow t (n rows) to n · copies rows: row k·n + i is a copy of row i (label,
 * group, path, duration, artist, title); X is the caller's. t->n changes only
 * when every column has grown (so mm_table_free stays within each). */
static int grow_table(mm_table *t, size_t copies, mm_err *err)
{
    size_t n = t->n, rows = n * copies;
    int32_t *lab = realloc(t->labels, (rows + 1) * sizeof *lab);
    if (lab) t->labels = lab;
    int32_t *grp = realloc(t->groups, (rows + 1) * sizeof *grp);
    if (grp) t->groups = grp;
    float *dur = t->durations ? realloc(t->durations, (rows + 1) * sizeof *dur) : NULL;
    if (dur) t->durations = dur;
    if (!lab || !grp || (t->durations && !dur)) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t r = n; r < rows; r++) {
        t->labels[r] = t->labels[r % n];
        t->groups[r] = t->groups[r % n];
        if (t->durations) t->durations[r] = t->durations[r % n];
    }
    char ***cols[3] = {&t->paths, &t->artists, &t->titles};
    int c = 0, rc = 0;
    while (c < 3 && !(rc = grow_strings(cols[c], n, rows))) c++;
    if (rc) {   /* back to n rows: the columns grown before the failure lose their copies */
        for (int j = 0; j < c; j++)
            for (size_t r = n; *cols[j] && r < rows; r++) { free((*cols[j])[r]); (*cols[j])[r] = NULL; }
        return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    t->n = rows;
    return 0;
}

int mm_leak_expand(const mm_cfg *cfg, const mm_run_opts *o, mm_leak *lk, mm_table *t, const mm_exp_prep *prep,
                   uint64_t seed, mm_err *err)
{
    if (!lk->pre.n) return 0;
    float *aug[MM_EXP_MAX_AUG] = {0};
    size_t n = t->n, d = t->d, copies = 1 + lk->pre.n;
    int rc = mm_exp_augment_tables(cfg, o, &lk->pre, t, 1, prep, seed, aug, err);
    if (rc) return mm_err_prefix(err, "augment_before_split");
    float *X = realloc(t->X, (n * copies * d + 1) * sizeof *X);
    if (!X) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    else t->X = X;
    for (size_t k = 0; !rc && k < lk->pre.n; k++) memcpy(t->X + (k + 1) * n * d, aug[k], n * d * sizeof *X);
    if (!rc) rc = grow_table(t, copies, err);
    for (size_t k = 0; k < MM_EXP_MAX_AUG; k++) free(aug[k]);
    if (!rc) lk->n_clips = n;
    return rc;
}

int mm_leak_check(mm_leak *lk, const mm_split *split, const mm_table *t, const char *name, mm_err *err)
{
    int32_t *src = mm_malloc(t->n + 1, sizeof *src, err);
    size_t n_src = 0;
    if (!src) return MM_ENOMEM;
    int rc = mm_leak_sources((const char *const *)t->paths, t->n, src, &n_src, err);
    if (!rc) rc = mm_leak_count_split(split, src, n_src, &lk->count, err);
    if (!rc) rc = mm_leak_refuse(lk, &lk->count, name, err);
    free(src);
    return rc;
}

void mm_leak_describe(const mm_leak *lk, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t k = 0; k < lk->pre.n && used < size; k++) {
        const char *sep = k ? ", " : "";
        int w = k < lk->pre.n_speed
                    ? snprintf(buf + used, size - used, "%sspeed %g", sep, lk->pre.speed[k])
                    : k >= lk->pre.n_speed + lk->pre.n_corr
                    ? snprintf(buf + used, size - used, "%sspecaugment", sep)
                    : snprintf(buf + used, size - used, "%s%s", sep, lk->pre.corr[k - lk->pre.n_speed].name + strlen("augment_"));
        if (w < 0) break;
        used += (size_t)w;
    }
}
