/* dataset.c — dataset readers; see dataset.h. */
#include "data/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
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
    /* sort row indices by key for binary search */
    size_t *idx = malloc((c->n_rows ? c->n_rows : 1) * sizeof *idx);
    if (!idx) { mm_csv_free(c); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < c->n_rows; i++) idx[i] = i;
    /* insertion sort would be slow for big files; use qsort with a context via a copy */
    char **keys = malloc((c->n_rows ? c->n_rows : 1) * sizeof *keys);
    if (!keys) { free(idx); mm_csv_free(c); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < c->n_rows; i++) keys[i] = c->cells[i * c->n_cols + (size_t)ck];
    /* pair up and sort: store "key\0" pointers, recover row by pointer arithmetic */
    qsort(keys, c->n_rows, sizeof *keys, cmp_str);
    for (size_t i = 0; i < c->n_rows; i++) {
        /* find the row of keys[i] */
        for (size_t j = 0; j < c->n_rows; j++)
            if (c->cells[j * c->n_cols + (size_t)ck] == keys[i]) { idx[i] = j; break; }
    }
    for (size_t i = 0; i < r->paths.n && !rc; i++) {
        char stem[512];
        stem_of(r->paths.v[i], stem, sizeof stem);
        const char *k = stem;
        char **hit = bsearch(&k, keys, c->n_rows, sizeof *keys, cmp_str);
        const char *artist = "", *title = "", *group = "";
        if (hit) {
            size_t row = idx[hit - keys];
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
    free(keys);
    free(idx);
    mm_csv_free(c);
    return rc;
}

static int find_str(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s)) return (int)i;
    return -1;
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
    if (cls && cls->type == MM_CFG_SEQ) {
        for (size_t i = 0; i < cls->n && !rc; i++) {
            if (cls->items[i]->type != MM_CFG_SCALAR) rc = mm_err_set(err, MM_EINVAL, "%s: key 'classes': expected names", mm_cfg_where(cls->items[i], w, sizeof w));
            else if (find_str(classes.v, classes.n, cls->items[i]->value) >= 0) rc = mm_err_set(err, MM_EINVAL, "%s: class '%s' listed twice", mm_cfg_where(cls->items[i], w, sizeof w), cls->items[i]->value);
            else if (sl_push(&classes, cls->items[i]->value)) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        }
    } else if (lmap && lmap->type == MM_CFG_MAP) {
        for (size_t i = 0; i < lmap->n && !rc; i++) {
            if (lmap->items[i]->type != MM_CFG_SCALAR) rc = mm_err_set(err, MM_EINVAL, "%s: labels.%s: expected a class name", mm_cfg_where(lmap->items[i], w, sizeof w), lmap->items[i]->key);
            else if (find_str(classes.v, classes.n, lmap->items[i]->value) < 0 && sl_push(&classes, lmap->items[i]->value)) rc = MM_ENOMEM;
        }
    } else if (type == 0) {
        for (int e = 1; e <= 8 && !rc; e++)
            if (find_str(r.labels.v, r.labels.n, mm_ravdess_emotions[e]) >= 0 && sl_push(&classes, mm_ravdess_emotions[e])) rc = MM_ENOMEM;
    } else {
        for (size_t i = 0; i < r.labels.n && !rc; i++)
            if (find_str(classes.v, classes.n, r.labels.v[i]) < 0 && sl_push(&classes, r.labels.v[i])) rc = MM_ENOMEM;
        if (!rc) qsort(classes.v, classes.n, sizeof *classes.v, cmp_str);
    }
    if (rc) { sl_free(&classes); raw_free(&r); return rc == MM_ENOMEM ? mm_err_set(err, rc, "out of memory") : rc; }
    /* labels map values must be classes */
    if (lmap && lmap->type == MM_CFG_MAP) {
        for (size_t i = 0; i < lmap->n; i++)
            if (find_str(classes.v, classes.n, lmap->items[i]->value) < 0) {
                rc = mm_err_set(err, MM_EINVAL, "%s: labels.%s maps to '%s', which is not in 'classes'", mm_cfg_where(lmap->items[i], w, sizeof w), lmap->items[i]->key, lmap->items[i]->value);
                sl_free(&classes); raw_free(&r); return rc;
            }
        for (size_t i = 0; i < lmap->n; i++)
            if (find_str(r.labels.v, r.labels.n, lmap->items[i]->key) < 0) {
                rc = mm_err_set(err, MM_EINVAL, "%s: labels: no clip has the label '%s'", mm_cfg_where(lmap->items[i], w, sizeof w), lmap->items[i]->key);
                sl_free(&classes); raw_free(&r); return rc;
            }
    }
    if (classes.n < 1) { sl_free(&classes); raw_free(&r); return mm_err_set(err, MM_EINVAL, "%s: the dataset has no classes", mm_cfg_where(map, w, sizeof w)); }

    mm_dataset *d = calloc(1, sizeof *d);
    if (!d) { sl_free(&classes); raw_free(&r); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
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
        raw_free(&r); mm_dataset_free(d); return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    int64_t *taken = calloc((size_t)d->n_classes, sizeof *taken);
    for (size_t i = 0; i < r.paths.n; i++) {
        const char *lab = r.labels.v[i];
        if (lmap && lmap->type == MM_CFG_MAP) {
            const mm_cfg *m = mm_cfg_child(lmap, lab);
            if (!m) continue;                      /* dropped by the label map */
            lab = m->value;
        }
        int c = find_str(d->class_names, (size_t)d->n_classes, lab);
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
        slist distinct = {0};
        for (size_t i = 0; i < kept.n && !rc; i++)
            if (find_str(distinct.v, distinct.n, kept.v[i]) < 0 && sl_push(&distinct, kept.v[i])) rc = MM_ENOMEM;
        if (r.numeric_groups) {
            /* sort numerically */
            for (size_t a = 1; a < distinct.n; a++)
                for (size_t b = a; b > 0 && atol(distinct.v[b - 1]) > atol(distinct.v[b]); b--) {
                    char *t = distinct.v[b]; distinct.v[b] = distinct.v[b - 1]; distinct.v[b - 1] = t;
                }
        } else qsort(distinct.v, distinct.n, sizeof *distinct.v, cmp_str);
        d->n_group_ids = distinct.n;
        d->group_ids = calloc(distinct.n + 1, sizeof *d->group_ids);
        if (!d->group_ids) rc = MM_ENOMEM;
        for (size_t g = 0; g < distinct.n && !rc; g++)
            d->group_ids[g] = r.numeric_groups ? (int32_t)atol(distinct.v[g]) : (int32_t)g;
        for (size_t i = 0; i < kept.n && !rc; i++) {
            int g = find_str(distinct.v, distinct.n, kept.v[i]);
            d->groups[i] = d->group_ids[g];
        }
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
