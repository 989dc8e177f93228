/* table.c — feature tables in HDF5 and CSV; see table.h. */
#include "data/table.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/csv.h"
#include "io/h5.h"

static void free_strs(char **s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

void mm_table_free(mm_table *t)
{
    if (!t) return;
    free(t->X);
    free_strs(t->feature_names, t->d);
    free(t->labels);
    free_strs(t->label_names, (size_t)t->n_classes);
    free(t->groups);
    free(t->group_ids);
    free_strs(t->group_names, t->n_group_ids);
    free(t->group_by);
    free_strs(t->paths, t->n);
    free(t->durations);
    free_strs(t->artists, t->n);
    free_strs(t->titles, t->n);
    free_strs(t->skipped_paths, t->n_skipped);
    free_strs(t->skipped_reasons, t->n_skipped);
    free(t->config_yaml);
    free(t->feature_set);
    free(t->settings);
    free(t);
}

uint64_t mm_table_fingerprint(const mm_table *t)
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)t->X;
    for (size_t i = 0; i < t->n * t->d * sizeof(float); i++) { h ^= p[i]; h *= 1099511628211ULL; }
    p = (const unsigned char *)t->labels;
    for (size_t i = 0; i < t->n * sizeof(int32_t); i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

int mm_table_write(const mm_table *t, const char *path, mm_err *err)
{
    mm_h5_out o;
    int rc = mm_h5_create(path, &o, err);
    if (rc) return rc;
    hid_t f = o.file;
    hsize_t dims[2] = {t->n, t->d};
    hsize_t n1 = t->n;
    rc = mm_h5_stamp_format(f, MM_TABLE_FORMAT, MM_TABLE_VERSION, err);
    if (!rc) rc = mm_h5_write_f32(f, "features", t->X, 2, dims, err);
    if (!rc) rc = mm_h5_write_strings(f, "feature_names", (const char *const *)t->feature_names, t->d, err);
    if (!rc) rc = mm_h5_write_i32(f, "labels", t->labels, 1, &n1, err);
    if (!rc) rc = mm_h5_write_strings(f, "label_names", (const char *const *)t->label_names, (size_t)t->n_classes, err);
    if (!rc) rc = mm_h5_write_i32(f, "groups", t->groups, 1, &n1, err);
    if (!rc && t->n_group_ids) {
        hsize_t g = t->n_group_ids;
        rc = mm_h5_write_i32(f, "group_ids", t->group_ids, 1, &g, err);
        if (!rc) rc = mm_h5_write_strings(f, "group_names", (const char *const *)t->group_names, t->n_group_ids, err);
    }
    if (!rc) rc = mm_h5_write_strings(f, "paths", (const char *const *)t->paths, t->n, err);
    if (!rc && t->durations) rc = mm_h5_write_f32(f, "durations", t->durations, 1, &n1, err);
    if (!rc && t->artists) rc = mm_h5_write_strings(f, "artists", (const char *const *)t->artists, t->n, err);
    if (!rc && t->titles) rc = mm_h5_write_strings(f, "titles", (const char *const *)t->titles, t->n, err);
    if (!rc && t->n_skipped) {
        rc = mm_h5_write_strings(f, "skipped/paths", (const char *const *)t->skipped_paths, t->n_skipped, err);
        if (!rc) rc = mm_h5_write_strings(f, "skipped/reasons", (const char *const *)t->skipped_reasons, t->n_skipped, err);
    }
    if (!rc && t->config_yaml) rc = mm_h5_attr_set_str(f, "config", t->config_yaml, err);
    if (!rc && t->feature_set) rc = mm_h5_attr_set_str(f, "feature_set", t->feature_set, err);
    if (!rc && t->settings) rc = mm_h5_attr_set_str(f, "settings", t->settings, err);
    if (!rc && t->group_by) rc = mm_h5_attr_set_str(f, "group_by", t->group_by, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "sample_rate", t->sample_rate, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "version", "melodic 0.1.0", err);
    if (!rc) {
        char ts[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        rc = mm_h5_attr_set_str(f, "created", ts, err);
    }
    if (rc) { mm_h5_abort(&o); return rc; }
    return mm_h5_commit(&o, err);
}

static int read_opt_strings(hid_t f, const char *name, size_t want, char ***out, const char *path, mm_err *err)
{
    *out = NULL;
    if (!mm_h5_exists(f, name)) return 0;
    size_t n;
    int rc = mm_h5_read_strings(f, name, out, &n, err);
    if (rc) return rc;
    if (n != want) {
        mm_h5_free_strings(*out, n);
        *out = NULL;
        return mm_err_set(err, MM_EFORMAT, "%s: '%s' has %zu entries, expected %zu", path, name, n, want);
    }
    return 0;
}

static int read_h5(const char *path, mm_table **out, mm_err *err)
{
    hid_t f;
    int rc = mm_h5_open_read(path, &f, err);
    if (rc) return rc;
    mm_table *t = calloc(1, sizeof *t);
    if (!t) { mm_h5_close(f); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    rc = mm_h5_check_format(f, MM_TABLE_FORMAT, MM_TABLE_VERSION, NULL, err);
    hsize_t dims[4];
    int rank;
    if (!rc) rc = mm_h5_read_f32(f, "features", 2, &t->X, &rank, dims, err);
    if (!rc) {
        t->n = dims[0];
        t->d = dims[1];
        size_t nn;
        rc = mm_h5_read_strings(f, "feature_names", &t->feature_names, &nn, err);
        if (!rc && nn != t->d) { mm_h5_free_strings(t->feature_names, nn); t->feature_names = NULL; rc = mm_err_set(err, MM_EFORMAT, "%s: %zu feature names for %zu columns", path, nn, t->d); }
    }
    if (!rc) {
        rc = mm_h5_read_i32(f, "labels", 1, &t->labels, &rank, dims, err);
        if (!rc && dims[0] != t->n) rc = mm_err_set(err, MM_EFORMAT, "%s: %llu labels for %zu rows", path, (unsigned long long)dims[0], t->n);
    }
    if (!rc) {
        size_t k;
        rc = mm_h5_read_strings(f, "label_names", &t->label_names, &k, err);
        if (!rc) t->n_classes = (int)k;
    }
    for (size_t i = 0; !rc && i < t->n; i++)
        if (t->labels[i] < -1 || t->labels[i] >= t->n_classes)
            rc = mm_err_set(err, MM_EFORMAT, "%s: label %d at row %zu outside [-1, %d)", path, t->labels[i], i, t->n_classes);
    if (!rc) {
        rc = mm_h5_read_i32(f, "groups", 1, &t->groups, &rank, dims, err);
        if (!rc && dims[0] != t->n) rc = mm_err_set(err, MM_EFORMAT, "%s: %llu groups for %zu rows", path, (unsigned long long)dims[0], t->n);
    }
    if (!rc && mm_h5_exists(f, "group_ids")) {
        rc = mm_h5_read_i32(f, "group_ids", 1, &t->group_ids, &rank, dims, err);
        if (!rc) { t->n_group_ids = dims[0]; rc = read_opt_strings(f, "group_names", t->n_group_ids, &t->group_names, path, err); }
    }
    if (!rc) rc = read_opt_strings(f, "paths", t->n, &t->paths, path, err);
    if (!rc && !t->paths) {
        t->paths = calloc(t->n + 1, sizeof *t->paths);
        for (size_t i = 0; t->paths && i < t->n; i++) t->paths[i] = strdup("");
    }
    if (!rc && mm_h5_exists(f, "durations")) {
        rc = mm_h5_read_f32(f, "durations", 1, &t->durations, &rank, dims, err);
        if (!rc && dims[0] != t->n) rc = mm_err_set(err, MM_EFORMAT, "%s: %llu durations for %zu rows", path, (unsigned long long)dims[0], t->n);
    }
    if (!rc) rc = read_opt_strings(f, "artists", t->n, &t->artists, path, err);
    if (!rc) rc = read_opt_strings(f, "titles", t->n, &t->titles, path, err);
    if (!rc) {
        mm_err tmp = {0};
        int64_t sr = 0;
        if (!mm_h5_attr_get_i64(f, "sample_rate", &sr, &tmp)) t->sample_rate = (int)sr;
        mm_h5_attr_get_str(f, "config", &t->config_yaml, &tmp);
        mm_h5_attr_get_str(f, "feature_set", &t->feature_set, &tmp);
        mm_h5_attr_get_str(f, "settings", &t->settings, &tmp);
        mm_h5_attr_get_str(f, "group_by", &t->group_by, &tmp);
    }
    mm_h5_close(f);
    if (rc) { mm_table_free(t); return rc; }
    *out = t;
    return 0;
}

typedef struct { const char *s; size_t row; } cell_ref;

static int cmp_cell_ref(const void *a, const void *b)
{
    const cell_ref *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* Classes from CSV column col: label_names = its distinct values in strcmp order,
 * labels[i] = the class of row i. Sorting (value, row) pairs: n·log n. -1 when out
 * of memory. */
static int csv_classes(const mm_csv *c, size_t col, mm_table *t)
{
    cell_ref *r = malloc((t->n ? t->n : 1) * sizeof *r);
    if (!r) return -1;
    for (size_t i = 0; i < t->n; i++) r[i] = (cell_ref){mm_csv_cell(c, i, col), i};
    qsort(r, t->n, sizeof *r, cmp_cell_ref);
    int rc = 0;
    for (size_t i = 0; i < t->n && !rc; i++) {
        if (i == 0 || strcmp(r[i - 1].s, r[i].s)) {
            if (!(t->label_names[t->n_classes] = strdup(r[i].s))) rc = -1;
            else t->n_classes++;
        }
        t->labels[r[i].row] = t->n_classes - 1;
    }
    free(r);
    return rc;
}

static int read_csv(const char *path, mm_table **out, mm_err *err)
{
    mm_csv *c = NULL;
    int rc = mm_csv_read(path, &c, err);
    if (rc) return rc;
    int cl = mm_csv_col(c, "label"), cg = mm_csv_col(c, "group"), cp = mm_csv_col(c, "path");
    mm_table *t = calloc(1, sizeof *t);
    if (!t) { mm_csv_free(c); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    t->n = c->n_rows;
    t->d = c->n_cols - (cl >= 0) - (cg >= 0) - (cp >= 0);
    if (t->d == 0 || t->n == 0) {
        mm_csv_free(c); mm_table_free(t);
        return mm_err_set(err, MM_EFORMAT, "%s: expected numeric feature columns and at least one row", path);
    }
    t->X = malloc(t->n * t->d * sizeof *t->X);
    t->feature_names = calloc(t->d, sizeof *t->feature_names);
    t->labels = malloc(t->n * sizeof *t->labels);
    t->groups = malloc(t->n * sizeof *t->groups);
    t->paths = calloc(t->n, sizeof *t->paths);
    t->label_names = calloc(t->n + 1, sizeof *t->label_names);
    if (!t->X || !t->feature_names || !t->labels || !t->groups || !t->paths || !t->label_names) {
        mm_csv_free(c); mm_table_free(t); return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    size_t j = 0;
    for (size_t col = 0; col < c->n_cols; col++)
        if ((int)col != cl && (int)col != cg && (int)col != cp) t->feature_names[j++] = strdup(c->header[col]);
    /* labels: sorted distinct strings → classes */
    if (cl >= 0 && csv_classes(c, (size_t)cl, t))
        rc = mm_err_set(err, MM_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < t->n && !rc; i++) {
        j = 0;
        for (size_t col = 0; col < c->n_cols && !rc; col++) {
            const char *s = mm_csv_cell(c, i, col);
            if ((int)col == cl) {
                continue;
            } else if ((int)col == cg) {
                char *end;
                errno = 0;
                long long g = strtoll(s, &end, 10);
                if (*s == 0) g = -1;
                else if (*end) rc = mm_err_set(err, MM_EFORMAT, "%s:%d: group '%s' is not an integer", path, c->lines[i], s);
                else if (errno || g < INT32_MIN || g > INT32_MAX)
                    rc = mm_err_set(err, MM_EFORMAT, "%s:%d: group '%s' is outside [%d, %d]", path,
                                    c->lines[i], s, INT32_MIN, INT32_MAX);
                t->groups[i] = (int32_t)g;
            } else if ((int)col == cp) {
                t->paths[i] = strdup(s);
            } else {
                char *end;
                errno = 0;
                double v = strtod(s, &end);
                if (*s == 0 || *end || errno || !isfinite(v))
                    rc = mm_err_set(err, MM_EFORMAT, "%s:%d: column '%s': expected a finite number, got '%s'", path, c->lines[i], c->header[col], s);
                t->X[i * t->d + j++] = (float)v;
            }
        }
        if (cl < 0) t->labels[i] = -1;
        if (cg < 0) t->groups[i] = -1;
        if (cp < 0) t->paths[i] = strdup("");
    }
    mm_csv_free(c);
    if (rc) { mm_table_free(t); return rc; }
    *out = t;
    return 0;
}

int mm_table_read(const char *path, mm_table **out, mm_err *err)
{
    size_t len = strlen(path);
    if (len > 4 && !strcasecmp(path + len - 4, ".csv")) return read_csv(path, out, err);
    return read_h5(path, out, err);
}
