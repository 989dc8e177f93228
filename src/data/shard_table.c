/* shard_table.c — see shard_table.h. Parts are feature tables with a
 * /shard group, so any table reader can still open one; the merge checks
 * that the parts belong together, then puts every row back at its dataset
 * index. The shares themselves (LPT over file sizes) are src/mpi/shard.c's.
 * Not covered: re-balancing shards from measured times. */
#include "data/shard_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5.h"

int mm_shard_file_sizes(const mm_dataset *ds, uint64_t **out, mm_err *err)
{
    uint64_t *s = calloc(ds->n ? ds->n : 1, sizeof *s);
    if (!s) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; i < ds->n; i++) {
        struct stat st;
        if (stat(ds->paths[i], &st) == 0 && st.st_size > 0) s[i] = (uint64_t)st.st_size;
    }
    *out = s;
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) { h ^= c[i]; h *= 1099511628211ULL; }
    return h;
}

uint64_t mm_shard_dataset_fingerprint(const mm_dataset *ds)
{
    uint64_t h = 1469598103934665603ULL;
    uint64_t n = ds->n;
    h = fnv(h, &n, sizeof n);
    for (size_t i = 0; i < ds->n; i++) {
        h = fnv(h, ds->paths[i], strlen(ds->paths[i]) + 1);
        h = fnv(h, &ds->labels[i], sizeof ds->labels[i]);
        h = fnv(h, &ds->groups[i], sizeof ds->groups[i]);
    }
    return h;
}

int mm_shard_subset(const mm_dataset *ds, const size_t *idx, size_t m, mm_dataset **out, mm_err *err)
{
    mm_dataset *v = calloc(1, sizeof *v);
    if (!v) return mm_err_set(err, MM_ENOMEM, "out of memory");
    *v = *ds;   /* class names, group ids, names: shared with ds */
    v->n = m;
    v->paths = calloc(m + 1, sizeof *v->paths);
    v->labels = calloc(m + 1, sizeof *v->labels);
    v->groups = calloc(m + 1, sizeof *v->groups);
    v->artists = ds->artists ? calloc(m + 1, sizeof *v->artists) : NULL;
    v->titles = ds->titles ? calloc(m + 1, sizeof *v->titles) : NULL;
    if (!v->paths || !v->labels || !v->groups || (ds->artists && !v->artists) || (ds->titles && !v->titles)) {
        mm_shard_subset_free(v);
        return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        v->paths[k] = ds->paths[i];
        v->labels[k] = ds->labels[i];
        v->groups[k] = ds->groups[i];
        if (v->artists) v->artists[k] = ds->artists[i];
        if (v->titles) v->titles[k] = ds->titles[i];
    }
    *out = v;
    return 0;
}

void mm_shard_subset_free(mm_dataset *v)
{
    if (!v) return;
    free(v->paths); free(v->labels); free(v->groups); free(v->artists); free(v->titles);
    free(v);
}

int mm_shard_write_table_part(const mm_table *t, const mm_shard_part_info *info, const char *path,
                              mm_err *err)
{
    /* rows and skipped files keep the order of info->files, so a file is
     * skipped exactly when it is the next entry of /skipped */
    size_t m = info->m, s = 0, r = 0;
    int64_t *rows = malloc((t->n + 1) * sizeof *rows), *skipped = malloc((t->n_skipped + 1) * sizeof *skipped);
    if (!rows || !skipped) { free(rows); free(skipped); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t k = 0; k < m; k++) {
        if (s < t->n_skipped && !strcmp(info->paths[k], t->skipped_paths[s])) skipped[s++] = info->files[k];
        else if (r < t->n) rows[r++] = info->files[k];
    }
    int rc = 0;
    if (r != t->n || s != t->n_skipped)
        rc = mm_err_set(err, MM_EINVAL, "%s: shard %d/%d: %zu files do not match the table's %zu rows + %zu skipped",
                        path, info->index, info->count, m, t->n, t->n_skipped);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.part.%d", path, (int)getpid());
    if (!rc) rc = mm_table_write(t, tmp, err);
    hid_t f = -1;
    if (!rc && (rc = mm_h5_open_rw(tmp, &f, err))) f = -1;
    if (!rc) {
        hsize_t nr = t->n, ns = t->n_skipped;
        char fp[32];
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)info->dataset_fp);
        rc = mm_h5_write_i64(f, "shard/rows", rows, 1, &nr, err);
        if (!rc) rc = mm_h5_write_i64(f, "shard/skipped", skipped, 1, &ns, err);
        if (!rc) rc = mm_h5_attr_set_i64(f, "shard_index", info->index, err);
        if (!rc) rc = mm_h5_attr_set_i64(f, "shard_count", info->count, err);
        if (!rc) rc = mm_h5_attr_set_i64(f, "shard_n_files", (int64_t)info->n_files, err);
        if (!rc) rc = mm_h5_attr_set_str(f, "shard_dataset", fp, err);
    }
    if (f >= 0) mm_h5_close(f);
    if (!rc && rename(tmp, path) != 0) rc = mm_err_set(err, MM_EIO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc) unlink(tmp);
    free(rows);
    free(skipped);
    return rc;
}

int mm_shard_part_kind(const char *path, mm_err *err)
{
    hid_t f;
    int rc = mm_h5_open_read(path, &f, err);
    if (rc) return rc;
    char *fmt = NULL;
    mm_err e = {0};
    int kind = 0;
    if (mm_h5_attr_get_str(f, "format", &fmt, &e) == 0) {
        if (!strcmp(fmt, MM_TABLE_FORMAT) && mm_h5_exists(f, "shard/rows")) kind = 1;
        else if (!strcmp(fmt, "melodic-run-part")) kind = 2;
    }
    free(fmt);
    mm_h5_close(f);
    if (!kind)
        return mm_err_set(err, MM_EFORMAT, "%s: not a part file (expected a table written by 'extract --shard' or a run part from 'run --shard')", path);
    return kind;
}

typedef struct part {
    const char *path;
    mm_table *t;
    int64_t index, count, n_files;
    char *fp;
    int64_t *rows, *skipped;
    size_t n_rows, n_skipped;
    char **sk_paths, **sk_reasons;
} part;

static void part_free(part *p)
{
    mm_table_free(p->t);
    free(p->fp);
    free(p->rows);
    free(p->skipped);
    if (p->sk_paths) mm_h5_free_strings(p->sk_paths, p->n_skipped);
    if (p->sk_reasons) mm_h5_free_strings(p->sk_reasons, p->n_skipped);
}

static int part_read(const char *path, part *p, mm_err *err)
{
    memset(p, 0, sizeof *p);
    p->path = path;
    int kind = mm_shard_part_kind(path, err);
    if (kind < 0) return kind;
    if (kind != 1) return mm_err_set(err, MM_EINVAL, "%s: a run part cannot be merged with feature-table parts", path);
    int rc = mm_table_read(path, &p->t, err);
    if (rc) return rc;
    hid_t f;
    if ((rc = mm_h5_open_read(path, &f, err))) return rc;
    hsize_t d[4];
    int rk;
    rc = mm_h5_attr_get_i64(f, "shard_index", &p->index, err);
    if (!rc) rc = mm_h5_attr_get_i64(f, "shard_count", &p->count, err);
    if (!rc) rc = mm_h5_attr_get_i64(f, "shard_n_files", &p->n_files, err);
    if (!rc) rc = mm_h5_attr_get_str(f, "shard_dataset", &p->fp, err);
    if (!rc) rc = mm_h5_read_i64(f, "shard/rows", 1, &p->rows, &rk, d, err);
    if (!rc) p->n_rows = d[0];
    if (!rc) rc = mm_h5_read_i64(f, "shard/skipped", 1, &p->skipped, &rk, d, err);
    if (!rc) p->n_skipped = d[0];
    size_t ns = 0;
    if (!rc && p->n_skipped) {
        rc = mm_h5_read_strings(f, "skipped/paths", &p->sk_paths, &ns, err);
        if (!rc && ns != p->n_skipped) rc = mm_err_set(err, MM_EFORMAT, "%s: %zu skipped paths for %zu skipped files", path, ns, p->n_skipped);
        if (!rc) rc = mm_h5_read_strings(f, "skipped/reasons", &p->sk_reasons, &ns, err);
        if (!rc && ns != p->n_skipped) rc = mm_err_set(err, MM_EFORMAT, "%s: %zu skip reasons for %zu skipped files", path, ns, p->n_skipped);
    }
    mm_h5_close(f);
    if (!rc && p->n_rows != p->t->n)
        rc = mm_err_set(err, MM_EFORMAT, "%s: shard/rows has %zu entries for %zu table rows", path, p->n_rows, p->t->n);
    if (!rc && (p->count < 1 || p->index < 1 || p->index > p->count || p->n_files < 0 || p->n_files > (int64_t)1 << 40))
        rc = mm_err_set(err, MM_EFORMAT, "%s: bad shard attributes (%lld/%lld of %lld files)", path, (long long)p->index, (long long)p->count, (long long)p->n_files);
    for (size_t i = 0; !rc && i < p->n_rows; i++)
        if (p->rows[i] < 0 || p->rows[i] >= p->n_files) rc = mm_err_set(err, MM_EFORMAT, "%s: shard/rows[%zu] = %lld outside [0, %lld)", path, i, (long long)p->rows[i], (long long)p->n_files);
    for (size_t i = 0; !rc && i < p->n_skipped; i++)
        if (p->skipped[i] < 0 || p->skipped[i] >= p->n_files) rc = mm_err_set(err, MM_EFORMAT, "%s: shard/skipped[%zu] = %lld outside [0, %lld)", path, i, (long long)p->skipped[i], (long long)p->n_files);
    return rc;
}

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static int same_strs(char **a, char **b, size_t n)
{
    for (size_t i = 0; i < n; i++) if (!same_str(a[i], b[i])) return 0;
    return 1;
}

/* Where file f of the dataset went: part p, row (or skipped entry) i. */
typedef struct slot { int part; int skipped; size_t i; } slot;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* The parts belong together: one config, dataset, shard count, feature and
 * label lists; no shard twice, none missing. */
static int check_parts(const part *p, size_t n, mm_err *err)
{
    int rc = 0;
    const part *a = &p[0];
    for (size_t i = 1; i < n && !rc; i++) {
        const part *b = &p[i];
        if (!same_str(a->t->config_yaml, b->t->config_yaml))
            rc = mm_err_set(err, MM_EINVAL, "%s and %s come from different configs (their resolved configs differ); merge parts of one extraction only", a->path, b->path);
        else if (strcmp(a->fp, b->fp) || a->n_files != b->n_files)
            rc = mm_err_set(err, MM_EINVAL, "%s and %s come from different datasets (%lld files, fingerprint %s vs %lld files, %s)", a->path, b->path, (long long)a->n_files, a->fp, (long long)b->n_files, b->fp);
        else if (a->count != b->count)
            rc = mm_err_set(err, MM_EINVAL, "%s is shard %lld/%lld but %s is shard %lld/%lld: the shard counts differ", a->path, (long long)a->index, (long long)a->count, b->path, (long long)b->index, (long long)b->count);
        else if (a->t->d != b->t->d || !same_strs(a->t->feature_names, b->t->feature_names, a->t->d) ||
                 !same_str(a->t->settings, b->t->settings) || !same_str(a->t->feature_set, b->t->feature_set) ||
                 a->t->sample_rate != b->t->sample_rate)
            rc = mm_err_set(err, MM_EINVAL, "%s and %s hold different features or settings", a->path, b->path);
        else if (a->t->n_classes != b->t->n_classes || !same_strs(a->t->label_names, b->t->label_names, (size_t)a->t->n_classes) ||
                 a->t->n_group_ids != b->t->n_group_ids || !same_str(a->t->group_by, b->t->group_by) ||
                 (!a->t->artists) != (!b->t->artists) || (!a->t->durations) != (!b->t->durations))
            rc = mm_err_set(err, MM_EINVAL, "%s and %s hold different label or group lists", a->path, b->path);
        for (size_t j = 0; j < i && !rc; j++)
            if (p[j].index == b->index) rc = mm_err_set(err, MM_EINVAL, "shard %lld/%lld given twice: %s and %s", (long long)b->index, (long long)b->count, p[j].path, b->path);
    }
    if (!rc && (int64_t)n != a->count) {
        char have[512] = "", miss[512] = "";
        for (int64_t s = 1; s <= a->count; s++) {
            int found = 0;
            for (size_t i = 0; i < n; i++) found |= p[i].index == s;
            char buf[32];
            snprintf(buf, sizeof buf, "%s%lld", (found ? have : miss)[0] ? ", " : "", (long long)s);
            strncat(found ? have : miss, buf, sizeof have - strlen(found ? have : miss) - 1);
        }
        rc = mm_err_set(err, MM_EINVAL, "missing part: shard(s) %s of %lld not given (have %s)", miss, (long long)a->count, have);
    }
    return rc;
}

int mm_shard_merge_tables(const char *const *paths, size_t n, mm_table **out, mm_err *err)
{
    if (n == 0) return mm_err_set(err, MM_EINVAL, "no parts given");
    part *p = calloc(n, sizeof *p);
    if (!p) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = 0;
    size_t np = 0;
    for (; np < n && !rc; np++) rc = part_read(paths[np], &p[np], err);
    if (!rc) rc = check_parts(p, n, err);
    const part *a = &p[0];
    /* every file of the dataset exactly once */
    size_t nf = rc ? 0 : (size_t)a->n_files;
    slot *where = NULL;
    if (!rc && !(where = malloc((nf ? nf : 1) * sizeof *where))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t f = 0; !rc && f < nf; f++) where[f].part = -1;
    size_t n_rows = 0, n_sk = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        for (int sk = 0; sk < 2 && !rc; sk++) {
            size_t cnt = sk ? p[i].n_skipped : p[i].n_rows;
            const int64_t *ids = sk ? p[i].skipped : p[i].rows;
            for (size_t k = 0; k < cnt && !rc; k++) {
                slot *w = &where[ids[k]];
                if (w->part >= 0) rc = mm_err_set(err, MM_EFORMAT, "file %lld is in both %s and %s", (long long)ids[k], p[w->part].path, p[i].path);
                w->part = (int)i; w->skipped = sk; w->i = k;
            }
            if (sk) n_sk += cnt; else n_rows += cnt;
        }
    }
    for (size_t f = 0; !rc && f < nf; f++)
        if (where[f].part < 0) rc = mm_err_set(err, MM_EFORMAT, "file %zu of %zu is in no part", f, nf);
    mm_table *t = NULL;
    if (!rc && !(t = calloc(1, sizeof *t))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    size_t D = a->t->d;
    if (!rc) {
        t->n = n_rows;
        t->d = D;
        t->X = malloc((n_rows ? n_rows : 1) * D * sizeof *t->X);
        t->labels = malloc((n_rows + 1) * sizeof *t->labels);
        t->groups = malloc((n_rows + 1) * sizeof *t->groups);
        t->paths = calloc(n_rows + 1, sizeof *t->paths);
        if (a->t->durations) t->durations = malloc((n_rows + 1) * sizeof *t->durations);
        if (a->t->artists) { t->artists = calloc(n_rows + 1, sizeof *t->artists); t->titles = calloc(n_rows + 1, sizeof *t->titles); }
        t->feature_names = calloc(D + 1, sizeof *t->feature_names);
        t->label_names = calloc((size_t)a->t->n_classes + 1, sizeof *t->label_names);
        if (n_sk) { t->skipped_paths = calloc(n_sk, sizeof(char *)); t->skipped_reasons = calloc(n_sk, sizeof(char *)); }
        if (!t->X || !t->labels || !t->groups || !t->paths || (a->t->durations && !t->durations) ||
            (a->t->artists && (!t->artists || !t->titles)) || !t->feature_names || !t->label_names ||
            (n_sk && (!t->skipped_paths || !t->skipped_reasons)))
            rc = mm_err_set(err, MM_ENOMEM, "out of memory for the merged table (%zu × %zu)", n_rows, D);
    }
    if (!rc) {
        size_t r = 0;
        for (size_t f = 0; f < nf; f++) {
            const part *q = &p[where[f].part];
            size_t i = where[f].i;
            if (where[f].skipped) {
                t->skipped_paths[t->n_skipped] = strdup(q->sk_paths[i]);
                t->skipped_reasons[t->n_skipped++] = strdup(q->sk_reasons[i]);
                continue;
            }
            memcpy(t->X + r * D, q->t->X + i * D, D * sizeof *t->X);
            t->labels[r] = q->t->labels[i];
            t->groups[r] = q->t->groups[i];
            t->paths[r] = strdup(q->t->paths[i]);
            if (t->durations) t->durations[r] = q->t->durations[i];
            if (t->artists) { t->artists[r] = strdup(q->t->artists[i]); t->titles[r] = strdup(q->t->titles[i]); }
            r++;
        }
        for (size_t j = 0; j < D; j++) t->feature_names[j] = strdup(a->t->feature_names[j]);
        t->n_classes = a->t->n_classes;
        for (int c = 0; c < t->n_classes; c++) t->label_names[c] = strdup(a->t->label_names[c]);
        if (a->t->n_group_ids) {
            t->n_group_ids = a->t->n_group_ids;
            t->group_ids = malloc(t->n_group_ids * sizeof *t->group_ids);
            t->group_names = calloc(t->n_group_ids, sizeof *t->group_names);
            for (size_t g = 0; g < t->n_group_ids && t->group_ids && t->group_names; g++) {
                t->group_ids[g] = a->t->group_ids[g];
                t->group_names[g] = dup_or_null(a->t->group_names ? a->t->group_names[g] : "");
            }
        }
        t->group_by = dup_or_null(a->t->group_by);
        t->config_yaml = dup_or_null(a->t->config_yaml);
        t->feature_set = dup_or_null(a->t->feature_set);
        t->settings = dup_or_null(a->t->settings);
        t->sample_rate = a->t->sample_rate;
    }
    free(where);
    for (size_t i = 0; i < np; i++) part_free(&p[i]);
    free(p);
    if (rc) { mm_table_free(t); return rc; }
    *out = t;
    return 0;
}
