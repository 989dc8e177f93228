/* dataset.c — dataset readers; see dataset.h. */
#include "data/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/paths.h"
#include "io/csv.h"

const char *const mm_ravdess_emotions[9] = {NULL,  "neutral", "calm",    "happy",    "sad",
                                            "angry", "fearful", "disgust", "surprised"};

static const char *const default_ext[] = {"wav", "flac", "mp3", "ogg", "oga", "aiff", "aif", NULL};

/* ---- small string list ---- */
typedef struct { char **v; size_t n, cap; } slist;

static int sl_push(slist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

static void sl_free(slist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A string → int map (open addressing, FNV-1a), for the lookups below: a
 * manifest or label map of n entries costs O(n), not O(n²). Keys are
 * borrowed, not copied. */
typedef struct { const char **key; int *val; size_t cap, n; } strmap;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int sm_init(strmap *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 1) cap *= 2;
    m->key = calloc(cap, sizeof *m->key);
    m->val = calloc(cap, sizeof *m->val);
    m->cap = cap;
    m->n = 0;
    return m->key && m->val ? 0 : MM_ENOMEM;
}

static void sm_free(strmap *m) { free(m->key); free(m->val); }

/* The value of s, or -1. */
static int sm_get(const strmap *m, const char *s)
{
    for (size_t i = str_hash(s) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) return -1;
        if (!strcmp(m->key[i], s)) return m->val[i];
    }
}

/* Inserts s → v unless present; returns the value s has afterwards. The map
 * must have been sized for every key put into it (sm_init(n)). */
static int sm_put(strmap *m, const char *s, int v)
{
    for (size_t i = str_hash(s) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) { m->key[i] = s; m->val[i] = v; m->n++; return v; }
        if (!strcmp(m->key[i], s)) return m->val[i];
    }
}

static int has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (int i = 0; exts[i]; i++)
        if (!strcasecmp(dot + 1, exts[i])) return 1;
    return 0;
}

/* Recursively list audio files under dir (sorted at the end by the caller). */
static int scan_dir(const char *dir, const char *const *exts, int depth, slist *out, mm_err *err)
{
    if (depth > 8) return 0;
    DIR *d = opendir(dir);
    if (!d) return mm_err_set(err, MM_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if ((rc = scan_dir(path, exts, depth + 1, out, err))) break;
        } else if (S_ISREG(st.st_mode) && has_ext(e->d_name, exts)) {
            if (sl_push(out, path)) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
        }
    }
    closedir(d);
    return rc;
}

static void stem_of(const char *path, char *buf, size_t size)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, size, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot) *dot = 0;
}

int mm_ravdess_parse(const char *stem, int *mod, int *ch, int *emo, int *inten, int *stmt, int *rep,
                     int *actor)
{
    int v[7], pos = 0;
    for (int k = 0; k < 7; k++) {
        if (!isdigit((unsigned char)stem[pos]) || !isdigit((unsigned char)stem[pos + 1])) return -1;
        v[k] = (stem[pos] - '0') * 10 + (stem[pos + 1] - '0');
        pos += 2;
        if (k < 6) { if (stem[pos] != '-') return -1; pos++; }
    }
    if (stem[pos] != 0) return -1;
    if (v[2] < 1 || v[2] > 8 || v[6] < 1) return -1;
    *mod = v[0]; *ch = v[1]; *emo = v[2]; *inten = v[3]; *stmt = v[4]; *rep = v[5]; *actor = v[6];
    return 0;
}

void mm_dataset_free(mm_dataset *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->paths ? d->paths[i] : NULL);
        if (d->artists) free(d->artists[i]);
        if (d->titles) free(d->titles[i]);
    }
    free(d->paths);
    free(d->artists);
    free(d->titles);
    free(d->labels);
    free(d->groups);
    for (int i = 0; i < d->n_classes; i++) free(d->class_names[i]);
    free(d->class_names);
    for (size_t i = 0; i < d->n_group_ids; i++) free(d->group_names[i]);
    free(d->group_names);
    free(d->group_ids);
    free(d->group_by);
    free(d->name);
    free(d);
}

void mm_dataset_class_counts(const mm_dataset *d, int64_t *counts)
{
    for (int c = 0; c < d->n_classes; c++) counts[c] = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->labels[i] >= 0) counts[d->labels[i]]++;
}

/* Raw entries before label mapping. */
typedef struct {
    slist paths, labels, groups, artists, titles;
    int numeric_groups;     /* groups are integers (RAVDESS actors) */
} raw_set;

static void raw_free(raw_set *r)
{
    sl_free(&r->paths); sl_free(&r->labels); sl_free(&r->groups);
    sl_free(&r->artists); sl_free(&r->titles);
}

static int read_exts(const mm_cfg *map, const char ***exts_out, mm_err *err)
{
    const mm_cfg *e = mm_cfg_child(map, "extensions");
    if (!e || e->type == MM_CFG_NULL) { *exts_out = NULL; return 0; }
    char w[600];
    if (e->type != MM_CFG_SEQ || e->n == 0 || e->n > 32)
        return mm_err_set(err, MM_EINVAL, "%s: key 'extensions': expected a list of file extensions", mm_cfg_where(e, w, sizeof w));
    const char **x = calloc(e->n + 1, sizeof *x);
    if (!x) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->n; i++) {
        if (e->items[i]->type != MM_CFG_SCALAR) { free(x); return mm_err_set(err, MM_EINVAL, "%s: key 'extensions': expected strings", mm_cfg_where(e, w, sizeof w)); }
        x[i] = e->items[i]->value[0] == '.' ? e->items[i]->value + 1 : e->items[i]->value;
    }
    *exts_out = x;
    return 0;
}

static int read_ravdess(const char *root, const char *const *exts, const char *group_by, raw_set *r,
                        mm_err *err)
{
    slist files = {0};
    int rc = scan_dir(root, exts, 0, &files, err);
    if (rc) { sl_free(&files); return rc; }
    qsort(files.v, files.n, sizeof *files.v, cmp_str);
    int by_actor = !group_by || !strcmp(group_by, "actor");
    int by_gender = group_by && !strcmp(group_by, "gender");
    r->numeric_groups = by_actor;
    for (size_t i = 0; i < files.n && !rc; i++) {
        char stem[256], buf[32];
        stem_of(files.v[i], stem, sizeof stem);
        int mod, ch, emo, inten, stmt, rep, actor;
        if (mm_ravdess_parse(stem, &mod, &ch, &emo, &inten, &stmt, &rep, &actor)) {
            rc = mm_err_set(err, MM_EFORMAT, "%s: not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA with emotion 01..08)", files.v[i]);
            break;
        }
        if (by_actor) snprintf(buf, sizeof buf, "%d", actor);
        else if (by_gender) snprintf(buf, sizeof buf, "%s", actor % 2 ? "male" : "female");
        else buf[0] = 0;
        if (sl_push(&r->paths, files.v[i]) || sl_push(&r->labels, mm_ravdess_emotions[emo]) ||
            sl_push(&r->groups, buf))
            rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    sl_free(&files);
    if (!rc && r->paths.n == 0)
        rc = mm_err_set(err, MM_EIO, "%s: no RAVDESS audio files found (is the data root right? see scripts/fetch_data.sh)", root);
    return rc;
}

static int read_folder(const char *root, const char *const *exts, raw_set *r, mm_err *err)
{
    slist files = {0};
    int rc = scan_dir(root, exts, 0, &files, err);
    if (rc) { sl_free(&files); return rc; }
    qsort(files.v, files.n, sizeof *files.v, cmp_str);
    size_t rl = strlen(root);
    for (size_t i = 0; i < files.n && !rc; i++) {
        const char *rel = files.v[i] + rl + 1;
        const char *slash = strchr(rel, '/');
        if (!slash) continue;   /* files directly under root have no label folder */
        char label[256];
        snprintf(label, sizeof label, "%.*s", (int)(slash - rel), rel);
        if (sl_push(&r->paths, files.v[i]) || sl_push(&r->labels, label) || sl_push(&r->groups, ""))
            rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    sl_free(&files);
    if (!rc && r->paths.n == 0)
        rc = mm_err_set(err, MM_EIO, "%s: no audio files in <root>/<label>/ folders", root);
    return rc;
}

static int read_manifest(const char *path, raw_set *r, mm_err *err)
{
    mm_csv *c = NULL;
    int rc = mm_csv_read(path, &c, err);
    if (rc) return rc;
    int cp = mm_csv_col(c, "path"), cl = mm_csv_col(c, "label"), cg = mm_csv_col(c, "group");
    if (cp < 0 || cl < 0) {
        mm_csv_free(c);
        return mm_err_set(err, MM_EFORMAT, "%s:1: expected columns path,label[,group]", path);
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (sl) *sl = 0; else snprintf(dir, sizeof dir, ".");
    for (size_t i = 0; i < c->n_rows && !rc; i++) {
        const char *p = mm_csv_cell(c, i, (size_t)cp);
        if (!*p) { rc = mm_err_set(err, MM_EFORMAT, "%s:%d: empty path", path, c->lines[i]); break; }
        char full[PATH_MAX];
        mm_path_join(full, sizeof full, dir, p);
        if (sl_push(&r->paths, full) || sl_push(&r->labels, mm_csv_cell(c, i, (size_t)cl)) ||
            sl_push(&r->groups, cg >= 0 ? mm_csv_cell(c, i, (size_t)cg) : ""))
            rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    mm_csv_free(c);
    if (!rc && r->paths.n == 0) rc = mm_err_set(err, MM_EFORMAT, "%s: the manifest lists no files", path);
    return rc;
}

/* Group names by numeric value, ties by first appearance (their index). */
static int cmp_numeric_group(const void *a, const void *b, void *ctx)
{
    char **v = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    long x = atol(v[i]), y = atol(v[j]);
    return x != y ? (x > y) - (x < y) : (i > j) - (i < j);
}

typedef struct { const mm_csv *c; size_t col; const char *key; } key_ctx;

static int cmp_row_key(const void *a, const void *b, void *ctx)
{
    const key_ctx *k = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int d = strcmp(k->c->cells[i * k->c->n_cols + k->col], k->c->cells[j * k->c->n_cols + k->col]);
    return d ? d : (i > j) - (i < j);
}

/* The first row (in file order) whose key column is `key`, or (size_t)-1;
 * idx: the rows sorted by cmp_row_key. */
static size_t find_row(const mm_csv *c, size_t col, const size_t *idx, const char *key)
{
    size_t lo = 0, hi = c->n_rows;
    while (lo < hi) {   /* first position whose key is >= key */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->cells[idx[mid] * c->n_cols + col], key) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n_rows && !strcmp(c->cells[idx[lo] * c->n_cols + col], key) ? idx[lo] : (size_t)-1;
}

/* Join metadata rows on the file stem: fills artists/titles and, when
 * group_by names a column, groups. */
static int join_metadata(const char *path, const char *key_col, const char *group_by, raw_set *r,
                         mm_err *err)
{
    mm_csv *c = NULL;
    int rc = mm_csv_read(path, &c, err);
    if (rc) return rc;
    int ck = key_col ? mm_csv_col(c, key_col) : 0;
    if (ck < 0) { mm_csv_free(c); return mm_err_set(err, MM_EFORMAT, "%s:1: no column '%s' to join on", path, key_col); }
    int ca = mm_csv_col(c, "artist"), ct = mm_csv_col(c, "title");
    int cg = group_by ? mm_csv_col(c, group_by) : -1;
    if (group_by && cg < 0) { mm_csv_free(c); return mm_err_set(err, MM_EFORMAT, "%s:1: no column '%s' for group_by", path, group_by); }
    /* row indices sorted by key (then row), for binary search */
    size_t *idx = malloc((c->n_rows ? c->n_rows : 1) * sizeof *idx);
    if (!idx) { mm_csv_free(c); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < c->n_rows; i++) idx[i] = i;
    key_ctx kc = {c, (size_t)ck, NULL};
    qsort_r(idx, c->n_rows, sizeof *idx, cmp_row_key, &kc);
    for (size_t i = 0; i < r->paths.n && !rc; i++) {
        char stem[512];
        stem_of(r->paths.v[i], stem, sizeof stem);
        size_t row = find_row(c, (size_t)ck, idx, stem);
        const char *artist = "", *title = "", *group = "";
        if (row != (size_t)-1) {
            if (ca >= 0) artist = mm_csv_cell(c, row, (size_t)ca);
            if (ct >= 0) title = mm_csv_cell(c, row, (size_t)ct);
            if (cg >= 0) group = mm_csv_cell(c, row, (size_t)cg);
        } else if (group_by) {
            rc = mm_err_set(err, MM_EFORMAT, "%s: no row for '%s' in %s (needed for group_by %s)", r->paths.v[i], stem, path, group_by);
            break;
        }
        if (sl_push(&r->artists, artist) || sl_push(&r->titles, title)) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        if (cg >= 0) { free(r->groups.v[i]); r->groups.v[i] = strdup(group); }
    }
    free(idx);
    mm_csv_free(c);
    return rc;
}


static const char *const dataset_keys[] = {"name", "type", "root", "manifest", "metadata", "key_column",
                                           "group_by", "labels", "classes", "extensions",
                                           "max_per_class", NULL};

int mm_dataset_load(const mm_cfg *map, const char *data_root, mm_dataset **out, mm_err *err)
{
    char w[600];
    if (!map || map->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: 'dataset' must be a map (see configs/datasets/)", mm_cfg_where(map, w, sizeof w));
    int rc = mm_cfg_check_keys(map, "dataset", dataset_keys, err);
    if (rc) return rc;
    static const char *const types[] = {"ravdess", "folder", "csv", NULL};
    int type;
    const char *root = NULL, *manifest = NULL, *metadata = NULL, *key_col = NULL, *group_by = NULL, *name = NULL;
    long max_per_class = 0;
    if ((rc = mm_cfg_get_choice(map, "type", types, -1, &type, err)) ||
        (rc = mm_cfg_get_str(map, "root", NULL, &root, err)) ||
        (rc = mm_cfg_get_str(map, "manifest", NULL, &manifest, err)) ||
        (rc = mm_cfg_get_str(map, "metadata", NULL, &metadata, err)) ||
        (rc = mm_cfg_get_str(map, "key_column", NULL, &key_col, err)) ||
        (rc = mm_cfg_get_str(map, "group_by", NULL, &group_by, err)) ||
        (rc = mm_cfg_get_str(map, "name", NULL, &name, err)) ||
        (rc = mm_cfg_get_int(map, "max_per_class", 0, 0, LONG_MAX, &max_per_class, err)))
        return rc;
    if (type < 0) return mm_err_set(err, MM_EINVAL, "%s: dataset needs 'type: ravdess|folder|csv'", mm_cfg_where(map, w, sizeof w));
    if (group_by && !strcmp(group_by, "none")) group_by = NULL;
    const char **exts = NULL;
    if ((rc = read_exts(map, &exts, err))) return rc;
    raw_set r = {0};
    char path[PATH_MAX];
    if (type == 2) {
        if (!manifest) { free(exts); return mm_err_set(err, MM_EINVAL, "%s: a csv dataset needs 'manifest: FILE.csv'", mm_cfg_where(map, w, sizeof w)); }
        mm_path_join(path, sizeof path, data_root, manifest);
        rc = read_manifest(path, &r, err);
    } else {
        if (!root) { free(exts); return mm_err_set(err, MM_EINVAL, "%s: dataset needs 'root: FOLDER' (relative to the data root)", mm_cfg_where(map, w, sizeof w)); }
        mm_path_join(path, sizeof path, data_root, root);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = mm_err_set(err, MM_EIO, "%s: dataset folder not found (data root '%s'; set MELODIC_DATA or run scripts/fetch_data.sh)", path, data_root ? data_root : ".");
        else if (type == 0) rc = read_ravdess(path, exts ? exts : default_ext, group_by, &r, err);
        else rc = read_folder(path, exts ? exts : default_ext, &r, err);
        if (!rc && metadata) {
            char mpath[PATH_MAX];
            mm_path_join(mpath, sizeof mpath, path, metadata);
            rc = join_metadata(mpath, key_col, type == 1 ? group_by : NULL, &r, err);
        }
        if (!rc && type == 1 && group_by && !metadata)
            rc = mm_err_set(err, MM_EINVAL, "%s: group_by '%s' needs a metadata CSV with that column", mm_cfg_where(map, w, sizeof w), group_by);
    }
    free(exts);
    if (rc) { raw_free(&r); return rc; }

    /* classes: explicit list, else label-map targets in order, else sorted distinct labels
     * (RAVDESS: emotion-code order). */
    const mm_cfg *lmap = mm_cfg_child(map, "labels");
    const mm_cfg *cls = mm_cfg_child(map, "classes");
    if (lmap && lmap->type != MM_CFG_MAP && lmap->type != MM_CFG_NULL) { raw_free(&r); return mm_err_set(err, MM_EINVAL, "%s: key 'labels': expected a map source: class", mm_cfg_where(lmap, w, sizeof w)); }
    if (cls && cls->type != MM_CFG_SEQ && cls->type != MM_CFG_NULL) { raw_free(&r); return mm_err_set(err, MM_EINVAL, "%s: key 'classes': expected a list", mm_cfg_where(cls, w, sizeof w)); }
    slist classes = {0};
    strmap cm = {0}, lm = {0};   /* class name -> index; distinct source labels */
    size_t n_cfg = (cls && cls->type == MM_CFG_SEQ ? cls->n : 0) + (lmap && lmap->type == MM_CFG_MAP ? lmap->n : 0);
    if (sm_init(&cm, n_cfg + r.labels.n) || sm_init(&lm, r.labels.n)) rc = MM_ENOMEM;
    for (size_t i = 0; i < r.labels.n && !rc; i++) sm_put(&lm, r.labels.v[i], 1);
    if (rc) {
    } else if (cls && cls->type == MM_CFG_SEQ) {
        for (size_t i = 0; i < cls->n && !rc; i++) {
            if (cls->items[i]->type != MM_CFG_SCALAR) rc = mm_err_set(err, MM_EINVAL, "%s: key 'classes': expected names", mm_cfg_where(cls->items[i], w, sizeof w));
            else if (sm_get(&cm, cls->items[i]->value) >= 0) rc = mm_err_set(err, MM_EINVAL, "%s: class '%s' listed twice", mm_cfg_where(cls->items[i], w, sizeof w), cls->items[i]->value);
            else if (sl_push(&classes, cls->items[i]->value)) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
            else sm_put(&cm, classes.v[classes.n - 1], (int)classes.n - 1);
        }
    } else if (lmap && lmap->type == MM_CFG_MAP) {
        for (size_t i = 0; i < lmap->n && !rc; i++) {
            if (lmap->items[i]->type != MM_CFG_SCALAR) rc = mm_err_set(err, MM_EINVAL, "%s: labels.%s: expected a class name", mm_cfg_where(lmap->items[i], w, sizeof w), lmap->items[i]->key);
            else if (sm_get(&cm, lmap->items[i]->value) < 0) {
                if (sl_push(&classes, lmap->items[i]->value)) rc = MM_ENOMEM;
                else sm_put(&cm, classes.v[classes.n - 1], (int)classes.n - 1);
            }
        }
    } else if (type == 0) {
        for (int e = 1; e <= 8 && !rc; e++)
            if (sm_get(&lm, mm_ravdess_emotions[e]) >= 0) {
                if (sl_push(&classes, mm_ravdess_emotions[e])) rc = MM_ENOMEM;
                else sm_put(&cm, classes.v[classes.n - 1], (int)classes.n - 1);
            }
    } else {   /* sorted distinct labels */
        for (size_t i = 0; i < lm.cap && !rc; i++)
            if (lm.key[i] && sl_push(&classes, lm.key[i])) rc = MM_ENOMEM;
        if (!rc) qsort(classes.v, classes.n, sizeof *classes.v, cmp_str);
        for (size_t i = 0; i < classes.n && !rc; i++) sm_put(&cm, classes.v[i], (int)i);
    }
    if (rc) { sm_free(&cm); sm_free(&lm); sl_free(&classes); raw_free(&r); return rc == MM_ENOMEM ? mm_err_set(err, rc, "out of memory") : rc; }
    /* labels map values must be classes */
    if (lmap && lmap->type == MM_CFG_MAP) {
        for (size_t i = 0; i < lmap->n; i++)
            if (sm_get(&cm, lmap->items[i]->value) < 0) {
                rc = mm_err_set(err, MM_EINVAL, "%s: labels.%s maps to '%s', which is not in 'classes'", mm_cfg_where(lmap->items[i], w, sizeof w), lmap->items[i]->key, lmap->items[i]->value);
                sm_free(&cm); sm_free(&lm); sl_free(&classes); raw_free(&r); return rc;
            }
        for (size_t i = 0; i < lmap->n; i++)
            if (sm_get(&lm, lmap->items[i]->key) < 0) {
                rc = mm_err_set(err, MM_EINVAL, "%s: labels: no clip has the label '%s'", mm_cfg_where(lmap->items[i], w, sizeof w), lmap->items[i]->key);
                sm_free(&cm); sm_free(&lm); sl_free(&classes); raw_free(&r); return rc;
            }
    }
    sm_free(&lm);
    if (classes.n < 1) { sm_free(&cm); sl_free(&classes); raw_free(&r); return mm_err_set(err, MM_EINVAL, "%s: the dataset has no classes", mm_cfg_where(map, w, sizeof w)); }

    mm_dataset *d = calloc(1, sizeof *d);
    if (!d) { sm_free(&cm); sl_free(&classes); raw_free(&r); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    d->name = strdup(name ? name : types[type]);
    d->n_classes = (int)classes.n;
    d->class_names = classes.v;
    classes.v = NULL;
    d->paths = calloc(r.paths.n + 1, sizeof *d->paths);
    d->labels = calloc(r.paths.n + 1, sizeof *d->labels);
    d->groups = calloc(r.paths.n + 1, sizeof *d->groups);
    int have_meta = r.artists.n == r.paths.n && r.paths.n > 0;
    if (have_meta) {
        d->artists = calloc(r.paths.n + 1, sizeof *d->artists);
        d->titles = calloc(r.paths.n + 1, sizeof *d->titles);
    }
    if (!d->paths || !d->labels || !d->groups || (have_meta && (!d->artists || !d->titles))) {
        sm_free(&cm); raw_free(&r); mm_dataset_free(d); return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    int64_t *taken = calloc((size_t)d->n_classes, sizeof *taken);
    for (size_t i = 0; i < r.paths.n; i++) {
        const char *lab = r.labels.v[i];
        if (lmap && lmap->type == MM_CFG_MAP) {
            const mm_cfg *m = mm_cfg_child(lmap, lab);
            if (!m) continue;                      /* dropped by the label map */
            lab = m->value;
        }
        int c = sm_get(&cm, lab);   /* keys point at d->class_names (moved from classes) */
        if (c < 0) continue;                       /* not one of the listed classes */
        if (max_per_class && taken[c] >= max_per_class) continue;
        taken[c]++;
        size_t k = d->n++;
        d->paths[k] = r.paths.v[i];
        r.paths.v[i] = NULL;
        d->labels[k] = c;
        if (have_meta) {
            d->artists[k] = r.artists.v[i]; r.artists.v[i] = NULL;
            d->titles[k] = r.titles.v[i]; r.titles.v[i] = NULL;
        }
        d->groups[k] = -1;
    }
    free(taken);
    sm_free(&cm);
    /* groups */
    int any_group = 0;
    for (size_t i = 0; i < r.groups.n; i++) if (r.groups.v[i][0]) { any_group = 1; break; }
    if (any_group) {
        d->group_by = strdup(group_by ? group_by : (type == 0 ? "actor" : "group"));
        /* rebuild the kept rows' group strings in kept order */
        slist kept = {0};
        size_t k = 0;
        for (size_t i = 0; i < r.paths.n; i++)
            if (!r.paths.v[i]) { if (sl_push(&kept, r.groups.v[i])) rc = MM_ENOMEM; k++; }
        /* distinct group names, in first-appearance order, then sorted: numerically for
         * integer groups (ties by first appearance, as a stable sort), else as strings */
        slist distinct = {0};
        strmap gm = {0};
        if (!rc && sm_init(&gm, kept.n)) rc = MM_ENOMEM;
        for (size_t i = 0; i < kept.n && !rc; i++)
            if (sm_get(&gm, kept.v[i]) < 0) {
                if (sl_push(&distinct, kept.v[i])) rc = MM_ENOMEM;
                else sm_put(&gm, distinct.v[distinct.n - 1], (int)distinct.n - 1);
            }
        if (!rc) {
            if (r.numeric_groups) {
                size_t *ord = malloc((distinct.n ? distinct.n : 1) * sizeof *ord);
                char **sorted = malloc((distinct.n ? distinct.n : 1) * sizeof *sorted);
                if (!ord || !sorted) rc = MM_ENOMEM;
                for (size_t g = 0; g < distinct.n && !rc; g++) ord[g] = g;
                if (!rc) qsort_r(ord, distinct.n, sizeof *ord, cmp_numeric_group, distinct.v);
                for (size_t g = 0; g < distinct.n && !rc; g++) sorted[g] = distinct.v[ord[g]];
                if (!rc) memcpy(distinct.v, sorted, distinct.n * sizeof *sorted);
                free(ord);
                free(sorted);
            } else qsort(distinct.v, distinct.n, sizeof *distinct.v, cmp_str);
        }
        sm_free(&gm);
        memset(&gm, 0, sizeof gm);
        if (!rc && sm_init(&gm, distinct.n)) rc = MM_ENOMEM;
        for (size_t g = 0; g < distinct.n && !rc; g++) sm_put(&gm, distinct.v[g], (int)g);
        d->n_group_ids = distinct.n;
        d->group_ids = calloc(distinct.n + 1, sizeof *d->group_ids);
        if (!d->group_ids) rc = MM_ENOMEM;
        for (size_t g = 0; g < distinct.n && !rc; g++)
            d->group_ids[g] = r.numeric_groups ? (int32_t)atol(distinct.v[g]) : (int32_t)g;
        for (size_t i = 0; i < kept.n && !rc; i++) {
            int g = sm_get(&gm, kept.v[i]);
            d->groups[i] = d->group_ids[g];
        }
        sm_free(&gm);
        d->group_names = distinct.v;
        sl_free(&kept);
        (void)k;
    }
    raw_free(&r);
    if (rc) { mm_dataset_free(d); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    if (d->n == 0) { mm_dataset_free(d); return mm_err_set(err, MM_EINVAL, "%s: no clips left after the label map", mm_cfg_where(map, w, sizeof w)); }
    *out = d;
    return 0;
}

int mm_dataset_from_files(char *const *paths, size_t n, mm_dataset **out, mm_err *err)
{
    mm_dataset *d = calloc(1, sizeof *d);
    if (!d) return mm_err_set(err, MM_ENOMEM, "out of memory");
    d->name = strdup("files");
    d->paths = calloc(n + 1, sizeof *d->paths);
    d->labels = calloc(n + 1, sizeof *d->labels);
    d->groups = calloc(n + 1, sizeof *d->groups);
    if (!d->name || !d->paths || !d->labels || !d->groups) { mm_dataset_free(d); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < n; i++) {
        d->paths[i] = strdup(paths[i]);
        d->labels[i] = -1;
        d->groups[i] = -1;
        d->n++;
        if (!d->paths[i]) { mm_dataset_free(d); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    }
    *out = d;
    return 0;
}
