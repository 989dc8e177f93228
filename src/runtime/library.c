/* library.c — index a music library with a music bundle; read and write it.
 *
 * Lists audio files (a folder walked recursively in path order, or a
 * manifest CSV), joins artist and title from a metadata CSV on the file stem
 * (4Q: metadata.csv, column `song`), else the file's tags (libsndfile
 * SF_STR_ARTIST / SF_STR_TITLE), else the file name; hashes each file
 * (SHA-256, the track id), reuses unchanged tracks of the previous library
 * and classifies the rest with the bundle, in parallel over files.
 * Track paths are stored absolute (the source folder or manifest folder made
 * absolute with realpath), so a library works from any working directory;
 * libraries written before that, with paths relative to the indexing
 * command's working directory, are resolved on loading where the files are
 * found (see resolve_track).
 * Leaves out watching folders for changes and tags libsndfile cannot read.
 */
#include "runtime/library.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/paths.h"
#include "core/sha256.h"
#include "io/csv.h"

#define MAX_CLASSES 4096
#define MAX_DIM (1u << 20)
#define MAX_DEPTH 32

struct mm_library {
    size_t n;
    mm_library_track *tracks;   /* (n) */
    int n_classes;
    char **class_names;         /* (n_classes) */
    mm_va *class_va;            /* (n_classes) */
    size_t dim;
    float *proba;               /* (n, n_classes) storage behind tracks[i].proba */
    float *emb;                 /* (n, dim) storage behind tracks[i].embedding */
    size_t n_failed;
    char **failed_path, **failed_reason;    /* (n_failed) */
    char *model_name, *bundle_sha;
    size_t *by_path;            /* (n) track indices sorted by path */
    size_t *by_id;              /* (n) track indices sorted by id */
};

/* ---- small helpers ---------------------------------------------------- */

static char *xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

static void free_strv(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void mm_library_free(mm_library *l)
{
    if (!l) return;
    for (size_t i = 0; l->tracks && i < l->n; i++) {
        mm_library_track *t = &l->tracks[i];
        free(t->path); free(t->id); free(t->artist); free(t->title); free(t->true_label);
    }
    free(l->tracks);
    free_strv(l->class_names, (size_t)l->n_classes);
    free(l->class_va);
    free(l->proba);
    free(l->emb);
    free_strv(l->failed_path, l->n_failed);
    free_strv(l->failed_reason, l->n_failed);
    free(l->model_name);
    free(l->bundle_sha);
    free(l->by_path);
    free(l->by_id);
    free(l);
}

/* Derived fields of a track from its probabilities and the class points. */
static void derive(mm_library_track *t, int k, const mm_va *class_va)
{
    int best = 0;
    for (int c = 1; c < k; c++) if (t->proba[c] > t->proba[best]) best = c;
    t->top_class = best;
    t->confidence = t->proba[best];
    t->va = mm_va_expected(class_va, t->proba, k);
    t->quadrant = mm_va_quadrant(class_va[best]);
}

static int cmp_path(const void *a, const void *b, void *ctx)
{
    const mm_library *l = ctx;
    return strcmp(l->tracks[*(const size_t *)a].path, l->tracks[*(const size_t *)b].path);
}

static int cmp_id(const void *a, const void *b, void *ctx)
{
    const mm_library *l = ctx;
    return strcmp(l->tracks[*(const size_t *)a].id, l->tracks[*(const size_t *)b].id);
}

/* Sorted lookup tables (glibc qsort_r: reentrant). */
static int build_lookup(mm_library *l, mm_err *err)
{
    l->by_path = mm_malloc(l->n ? l->n : 1, sizeof *l->by_path, err);
    l->by_id = mm_malloc(l->n ? l->n : 1, sizeof *l->by_id, err);
    if (!l->by_path || !l->by_id) return MM_ENOMEM;
    for (size_t i = 0; i < l->n; i++) l->by_path[i] = l->by_id[i] = i;
    qsort_r(l->by_path, l->n, sizeof *l->by_path, cmp_path, l);
    qsort_r(l->by_id, l->n, sizeof *l->by_id, cmp_id, l);
    return 0;
}

static long lookup(const mm_library *l, const size_t *order, int by_id, const char *key)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mm_library_track *t = &l->tracks[order[mid]];
        int c = strcmp(by_id ? t->id : t->path, key);
        if (!c) return (long)order[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

/* ---- accessors -------------------------------------------------------- */

size_t mm_library_size(const mm_library *l) { return l->n; }
int mm_library_n_classes(const mm_library *l) { return l->n_classes; }
const char *mm_library_class_name(const mm_library *l, int k)
{
    return k >= 0 && k < l->n_classes ? l->class_names[k] : "?";
}
mm_va mm_library_class_va(const mm_library *l, int k)
{
    mm_va z = {0, 0};
    return k >= 0 && k < l->n_classes ? l->class_va[k] : z;
}
size_t mm_library_dim(const mm_library *l) { return l->dim; }
const mm_library_track *mm_library_track_at(const mm_library *l, size_t i)
{
    return i < l->n ? &l->tracks[i] : NULL;
}
long mm_library_find(const mm_library *l, const char *key)
{
    if (!key) return -1;
    long i = lookup(l, l->by_id, 1, key);
    if (i < 0) i = lookup(l, l->by_path, 0, key);
    if (i >= 0 || key[0] == '/' || !key[0]) return i;
    /* a relative path: as the stored absolute path (symlinks resolved, then as written) */
    char abs[PATH_MAX];
    if (realpath(key, abs) && (i = lookup(l, l->by_path, 0, abs)) >= 0) return i;
    if (!mm_path_absolute(key, abs, sizeof abs, NULL)) i = lookup(l, l->by_path, 0, abs);
    return i;
}
size_t mm_library_n_failed(const mm_library *l) { return l->n_failed; }
int mm_library_failed(const mm_library *l, size_t i, const char **path, const char **reason)
{
    if (i >= l->n_failed) return MM_EINVAL;
    if (path) *path = l->failed_path[i];
    if (reason) *reason = l->failed_reason[i];
    return 0;
}
const char *mm_library_model_name(const mm_library *l) { return l->model_name ? l->model_name : ""; }
const char *mm_library_bundle_sha256(const mm_library *l) { return l->bundle_sha ? l->bundle_sha : ""; }

/* ---- building in memory ----------------------------------------------- */

/* An empty library with classes and storage for n tracks. */
static mm_library *lib_alloc(size_t n, int k, const char *const *names, const mm_va *cva, size_t dim,
                             mm_err *err)
{
    mm_library *l = mm_calloc(1, sizeof *l, err);
    if (!l) return NULL;
    l->n = n;
    l->n_classes = k;
    l->dim = dim;
    l->tracks = mm_calloc(n ? n : 1, sizeof *l->tracks, err);
    l->class_names = mm_calloc((size_t)k, sizeof *l->class_names, err);
    l->class_va = mm_malloc((size_t)k, sizeof *l->class_va, err);
    l->proba = mm_calloc(n ? n * (size_t)k : 1, sizeof *l->proba, err);
    l->emb = mm_calloc(n ? n * dim : 1, sizeof *l->emb, err);
    if (!l->tracks || !l->class_names || !l->class_va || !l->proba || !l->emb) {
        l->n_classes = l->class_names ? k : 0;
        mm_library_free(l);
        return NULL;
    }
    for (int c = 0; c < k; c++) {
        if (!(l->class_names[c] = xstrdup(names[c]))) {
            mm_library_free(l);
            mm_err_set(err, MM_ENOMEM, "out of memory");
            return NULL;
        }
        l->class_va[c] = cva[c];
    }
    for (size_t i = 0; i < n; i++) {
        l->tracks[i].proba = l->proba + i * (size_t)k;
        l->tracks[i].embedding = l->emb + i * dim;
    }
    return l;
}

/* Copy the stored fields of src into slot i of l (strings duplicated). */
static int copy_track(mm_library *l, size_t i, const mm_library_track *src, mm_err *err)
{
    mm_library_track *t = &l->tracks[i];
    t->path = xstrdup(src->path);
    t->id = xstrdup(src->id);
    t->artist = xstrdup(src->artist);
    t->title = xstrdup(src->title);
    t->true_label = xstrdup(src->true_label);
    if (!t->path || !t->id || !t->artist || !t->title || !t->true_label)
        return mm_err_set(err, MM_ENOMEM, "out of memory");
    t->size = src->size;
    t->mtime = src->mtime;
    t->duration = src->duration;
    memcpy(t->proba, src->proba, (size_t)l->n_classes * sizeof *t->proba);
    memcpy(t->embedding, src->embedding, l->dim * sizeof *t->embedding);
    derive(t, l->n_classes, l->class_va);
    return 0;
}

static int check_classes(int k, const char *const *names, const mm_va *cva, size_t dim, mm_err *err)
{
    if (k < 1 || k > MAX_CLASSES) return mm_err_set(err, MM_EINVAL, "library: %d classes, expected 1..%d", k, MAX_CLASSES);
    if (dim < 1 || dim > MAX_DIM) return mm_err_set(err, MM_EINVAL, "library: embedding dimension %zu, expected 1..%u", dim, MAX_DIM);
    for (int c = 0; c < k; c++) {
        if (!names[c] || !names[c][0]) return mm_err_set(err, MM_EINVAL, "library: class %d has no name", c);
        if (!isfinite(cva[c].valence) || !isfinite(cva[c].arousal) || fabsf(cva[c].valence) > 1 ||
            fabsf(cva[c].arousal) > 1)
            return mm_err_set(err, MM_EINVAL, "library: class '%s': valence–arousal point outside [-1, 1]", names[c]);
    }
    return 0;
}

static int check_track(const mm_library_track *t, size_t i, int k, size_t dim, mm_err *err)
{
    if (!t->path || !t->path[0]) return mm_err_set(err, MM_EINVAL, "library: track %zu has no path", i);
    if (!t->id || !t->id[0]) return mm_err_set(err, MM_EINVAL, "library: track %zu (%s) has no id", i, t->path);
    if (!t->proba || !t->embedding) return mm_err_set(err, MM_EINVAL, "library: track %zu (%s) has no probabilities or embedding", i, t->path);
    for (int c = 0; c < k; c++)
        if (!isfinite(t->proba[c]) || t->proba[c] < 0 || t->proba[c] > 1.0001f)
            return mm_err_set(err, MM_EFORMAT, "library: track %zu (%s): probability %d is %g, expected 0..1",
                              i, t->path, c, (double)t->proba[c]);
    for (size_t d = 0; d < dim; d++)
        if (!isfinite(t->embedding[d]))
            return mm_err_set(err, MM_EFORMAT, "library: track %zu (%s): embedding value %zu is not finite", i, t->path, d);
    if (!isfinite(t->duration) || t->duration < 0)
        return mm_err_set(err, MM_EFORMAT, "library: track %zu (%s): duration %g", i, t->path, t->duration);
    return 0;
}

int mm_library_from_tracks(const mm_library_track *tracks, size_t n, int n_classes,
                           const char *const *class_names, const mm_va *class_va, size_t dim,
                           mm_library **out, mm_err *err)
{
    int rc = check_classes(n_classes, class_names, class_va, dim, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = check_track(&tracks[i], i, n_classes, dim, err))) return rc;
    mm_library *l = lib_alloc(n, n_classes, class_names, class_va, dim, err);
    if (!l) return err ? err->code : MM_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) rc = copy_track(l, i, &tracks[i], err);
    if (!rc) rc = build_lookup(l, err);
    if (rc) { mm_library_free(l); return rc; }
    *out = l;
    return 0;
}

/* ---- HDF5 -------------------------------------------------------------- */

static int write_lib(hid_t f, const mm_library *l, const char *source, mm_err *err)
{
    int rc;
    size_t n = l->n, k = (size_t)l->n_classes;
    if ((rc = mm_h5_stamp_format(f, MM_LIBRARY_FORMAT, MM_LIBRARY_VERSION, err))) return rc;
    if ((rc = mm_h5_attr_set_str(f, "model", mm_library_model_name(l), err))) return rc;
    if ((rc = mm_h5_attr_set_str(f, "bundle_sha256", mm_library_bundle_sha256(l), err))) return rc;
    if (source && (rc = mm_h5_attr_set_str(f, "source", source, err))) return rc;
    char when[32];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    if ((rc = mm_h5_attr_set_str(f, "created", when, err))) return rc;
    hsize_t d2[2];
    if ((rc = mm_h5_write_strings(f, "classes/names", (const char *const *)l->class_names, k, err))) return rc;
    float *cva = mm_malloc(k * 2, sizeof *cva, err);
    char **sv = mm_calloc(n ? n : 1, sizeof *sv, err);
    int64_t *i64 = mm_malloc(n ? n : 1, sizeof *i64, err);
    double *f64 = mm_malloc(n ? n : 1, sizeof *f64, err);
    float *f32 = mm_malloc(n ? 2 * n : 2, sizeof *f32, err);
    int32_t *i32 = mm_malloc(n ? n : 1, sizeof *i32, err);
    if (!cva || !sv || !i64 || !f64 || !f32 || !i32) { rc = MM_ENOMEM; goto done; }
    for (size_t c = 0; c < k; c++) { cva[2 * c] = l->class_va[c].valence; cva[2 * c + 1] = l->class_va[c].arousal; }
    d2[0] = k; d2[1] = 2;
    if ((rc = mm_h5_write_f32(f, "classes/va", cva, 2, d2, err))) goto done;
#define STRS(field, name)                                                                 \
    for (size_t i = 0; i < n; i++) sv[i] = l->tracks[i].field;                            \
    if ((rc = mm_h5_write_strings(f, "tracks/" name, (const char *const *)sv, n, err))) goto done;
    STRS(path, "path")
    STRS(id, "id")
    STRS(artist, "artist")
    STRS(title, "title")
    STRS(true_label, "true_label")
#undef STRS
    hsize_t d1[1] = {n};
    for (size_t i = 0; i < n; i++) i64[i] = l->tracks[i].size;
    if ((rc = mm_h5_write_i64(f, "tracks/size", i64, 1, d1, err))) goto done;
    for (size_t i = 0; i < n; i++) i64[i] = l->tracks[i].mtime;
    if ((rc = mm_h5_write_i64(f, "tracks/mtime", i64, 1, d1, err))) goto done;
    for (size_t i = 0; i < n; i++) f64[i] = l->tracks[i].duration;
    if ((rc = mm_h5_write_f64(f, "tracks/duration", f64, 1, d1, err))) goto done;
    d2[0] = n; d2[1] = k;
    if ((rc = mm_h5_write_f32(f, "tracks/proba", l->proba, 2, d2, err))) goto done;
    d2[1] = l->dim;
    if ((rc = mm_h5_write_f32(f, "tracks/embedding", l->emb, 2, d2, err))) goto done;
    for (size_t i = 0; i < n; i++) { f32[2 * i] = l->tracks[i].va.valence; f32[2 * i + 1] = l->tracks[i].va.arousal; }
    d2[1] = 2;
    if ((rc = mm_h5_write_f32(f, "tracks/va", f32, 2, d2, err))) goto done;
    for (size_t i = 0; i < n; i++) i32[i] = l->tracks[i].quadrant;
    if ((rc = mm_h5_write_i32(f, "tracks/quadrant", i32, 1, d1, err))) goto done;
    for (size_t i = 0; i < n; i++) i32[i] = l->tracks[i].top_class;
    if ((rc = mm_h5_write_i32(f, "tracks/top_class", i32, 1, d1, err))) goto done;
    for (size_t i = 0; i < n; i++) f32[i] = l->tracks[i].confidence;
    if ((rc = mm_h5_write_f32(f, "tracks/confidence", f32, 1, d1, err))) goto done;
    if (l->n_failed) {
        if ((rc = mm_h5_write_strings(f, "failed/path", (const char *const *)l->failed_path, l->n_failed, err))) goto done;
        if ((rc = mm_h5_write_strings(f, "failed/reason", (const char *const *)l->failed_reason, l->n_failed, err))) goto done;
    }
done:
    free(cva); free(sv); free(i64); free(f64); free(f32); free(i32);
    return rc;
}

static int save_to(const mm_library *l, const char *path, const char *source, mm_err *err)
{
    mm_h5_out o;
    int rc = mm_h5_create(path, &o, err);
    if (rc) return rc;
    rc = write_lib(o.file, l, source, err);
    if (rc) { mm_h5_abort(&o); return mm_err_prefix(err, "%s", path); }
    return mm_h5_commit(&o, err);
}

int mm_library_save(const mm_library *l, const char *path, mm_err *err)
{
    return save_to(l, path, NULL, err);
}

/* Read a 1-D string dataset of exactly n entries (n == SIZE_MAX: any, returned in *n_out). */
static int read_strs(hid_t f, const char *file, const char *name, size_t want, char ***out, size_t *n_out,
                     mm_err *err)
{
    size_t n = 0;
    int rc = mm_h5_read_strings(f, name, out, &n, err);
    if (rc) return rc;
    if (want != (size_t)-1 && n != want) {
        mm_h5_free_strings(*out, n);
        *out = NULL;
        return mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' has %zu entries, expected %zu", file, name, n, want);
    }
    if (n_out) *n_out = n;
    return 0;
}

/* The path of a stored track path p of the library `file` (malloc'd).
 * Absolute paths are kept. A relative one comes from a library written
 * before paths were stored absolute, relative to the working directory of
 * the `melodic index` that wrote it: made absolute from the current working
 * directory when the file is there (as such libraries were always read),
 * else from the library's folder when it is there, else kept as stored (the
 * file is missing either way). */
static char *resolve_track(const char *file, const char *p)
{
    char buf[PATH_MAX];
    if (p[0] == '/' || !p[0]) return strdup(p);
    if (access(p, F_OK) == 0) return mm_path_absolute(p, buf, sizeof buf, NULL) ? strdup(p) : strdup(buf);
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (slash) {
        char cand[PATH_MAX * 2];
        snprintf(cand, sizeof cand, "%.*s/%s", (int)(slash - file), file, p);
        if (access(cand, F_OK) == 0 && !mm_path_absolute(cand, buf, sizeof buf, NULL)) return strdup(buf);
    }
    return strdup(p);
}

int mm_library_read(hid_t f, const char *file, mm_library **out, mm_err *err)
{
    int rc, ver = 0;
    mm_library *l = NULL;
    char **names = NULL, **s_path = NULL, **s_id = NULL, **s_artist = NULL, **s_title = NULL, **s_label = NULL;
    size_t k = 0, n = 0;
    float *cva = NULL, *proba = NULL, *emb = NULL;
    int64_t *size = NULL, *mtime = NULL;
    double *dur = NULL;
    int rank;
    hsize_t dims[4];
    if ((rc = mm_h5_check_format(f, MM_LIBRARY_FORMAT, MM_LIBRARY_VERSION, &ver, err))) {
        return mm_err_prefix(err, "%s", file);
    }
    if ((rc = read_strs(f, file, "classes/names", (size_t)-1, &names, &k, err))) goto done;
    if (k < 1 || k > MAX_CLASSES) { rc = mm_err_set(err, MM_EFORMAT, "%s: %zu classes, expected 1..%d", file, k, MAX_CLASSES); goto done; }
    if ((rc = mm_h5_read_f32(f, "classes/va", 2, &cva, &rank, dims, err))) goto done;
    if (dims[0] != k || dims[1] != 2) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset 'classes/va' is %llux%llu, expected %zux2", file, (unsigned long long)dims[0], (unsigned long long)dims[1], k); goto done; }
    if ((rc = read_strs(f, file, "tracks/path", (size_t)-1, &s_path, &n, err))) goto done;
    if ((rc = read_strs(f, file, "tracks/id", n, &s_id, NULL, err))) goto done;
    if ((rc = read_strs(f, file, "tracks/artist", n, &s_artist, NULL, err))) goto done;
    if ((rc = read_strs(f, file, "tracks/title", n, &s_title, NULL, err))) goto done;
    if ((rc = read_strs(f, file, "tracks/true_label", n, &s_label, NULL, err))) goto done;
    if ((rc = mm_h5_read_i64(f, "tracks/size", 1, &size, &rank, dims, err))) goto done;
    if (dims[0] != n) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset 'tracks/size' has %llu entries, expected %zu", file, (unsigned long long)dims[0], n); goto done; }
    if ((rc = mm_h5_read_i64(f, "tracks/mtime", 1, &mtime, &rank, dims, err))) goto done;
    if (dims[0] != n) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset 'tracks/mtime' has %llu entries, expected %zu", file, (unsigned long long)dims[0], n); goto done; }
    if ((rc = mm_h5_read_f64(f, "tracks/duration", 1, &dur, &rank, dims, err))) goto done;
    if (dims[0] != n) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset 'tracks/duration' has %llu entries, expected %zu", file, (unsigned long long)dims[0], n); goto done; }
    if ((rc = mm_h5_read_f32(f, "tracks/proba", 2, &proba, &rank, dims, err))) goto done;
    if (dims[0] != n || dims[1] != k) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset 'tracks/proba' is %llux%llu, expected %zux%zu", file, (unsigned long long)dims[0], (unsigned long long)dims[1], n, k); goto done; }
    if ((rc = mm_h5_read_f32(f, "tracks/embedding", 2, &emb, &rank, dims, err))) goto done;
    if (dims[0] != n || dims[1] < 1 || dims[1] > MAX_DIM) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset 'tracks/embedding' is %llux%llu, expected %zu rows and 1..%u columns", file, (unsigned long long)dims[0], (unsigned long long)dims[1], n, MAX_DIM); goto done; }
    size_t dim = dims[1];
    mm_va *va = mm_malloc(k, sizeof *va, err);
    if (!va) { rc = MM_ENOMEM; goto done; }
    for (size_t c = 0; c < k; c++) { va[c].valence = cva[2 * c]; va[c].arousal = cva[2 * c + 1]; }
    if ((rc = check_classes((int)k, (const char *const *)names, va, dim, err))) { free(va); mm_err_prefix(err, "%s", file); goto done; }
    l = lib_alloc(n, (int)k, (const char *const *)names, va, dim, err);
    free(va);
    if (!l) { rc = err ? err->code : MM_ENOMEM; goto done; }
    for (size_t i = 0; i < n && !rc; i++) {
        if (s_path[i][0] && s_path[i][0] != '/') {   /* an older library: see resolve_track */
            char *abs = resolve_track(file, s_path[i]);
            if (!abs) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
            free(s_path[i]);
            s_path[i] = abs;
        }
        mm_library_track t = {.path = s_path[i], .id = s_id[i], .artist = s_artist[i], .title = s_title[i],
                              .true_label = s_label[i], .size = size[i], .mtime = mtime[i], .duration = dur[i],
                              .proba = proba + i * k, .embedding = emb + i * dim};
        if ((rc = check_track(&t, i, (int)k, dim, err))) { mm_err_prefix(err, "%s", file); break; }
        rc = copy_track(l, i, &t, err);
    }
    if (rc) goto done;
    if (mm_h5_exists(f, "failed/path")) {
        size_t nf = 0;
        if ((rc = read_strs(f, file, "failed/path", (size_t)-1, &l->failed_path, &nf, err))) goto done;
        l->n_failed = nf;
        if ((rc = read_strs(f, file, "failed/reason", nf, &l->failed_reason, NULL, err))) {
            mm_h5_free_strings(l->failed_path, nf);
            l->failed_path = NULL;
            l->n_failed = 0;
            goto done;
        }
    }
    char *s = NULL;
    mm_err e2 = {0};
    l->model_name = mm_h5_attr_get_str(f, "model", &s, &e2) ? xstrdup("") : s;
    s = NULL;
    l->bundle_sha = mm_h5_attr_get_str(f, "bundle_sha256", &s, &e2) ? xstrdup("") : s;
    if (!l->model_name || !l->bundle_sha) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    rc = build_lookup(l, err);
done:
    if (names) mm_h5_free_strings(names, k);
    if (s_path) mm_h5_free_strings(s_path, n);
    if (s_id) mm_h5_free_strings(s_id, n);
    if (s_artist) mm_h5_free_strings(s_artist, n);
    if (s_title) mm_h5_free_strings(s_title, n);
    if (s_label) mm_h5_free_strings(s_label, n);
    free(cva); free(proba); free(emb); free(size); free(mtime); free(dur);
    if (rc) { mm_library_free(l); return rc; }
    *out = l;
    return 0;
}

int mm_library_open(const char *path, mm_library **out, mm_err *err)
{
    hid_t f;
    int rc = mm_h5_open_read(path, &f, err);
    if (rc) return rc;
    rc = mm_library_read(f, path, out, err);
    mm_h5_close(f);
    return rc;
}

/* ---- listing files ------------------------------------------------------ */

static const char *const default_ext[] = {"wav", "flac", "mp3", "ogg", "oga", "opus", "aif", "aiff", NULL};

static int has_ext(const char *name, const char *const *ext)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; ext[i]; i++)
        if (!strcasecmp(dot + 1, ext[i])) return 1;
    return 0;
}

/* One file to index. */
typedef struct job {
    char *path;
    char *label;        /* true label from layout / manifest, or NULL */
    char *artist, *title;   /* from metadata / manifest, or NULL */
    /* results */
    int status;         /* 0 ok, 1 reused, -1 failed */
    char *reason;
    mm_library_track t;
    float *proba, *emb;
} job;

typedef struct joblist {
    job *v;
    size_t n, cap;
} joblist;

static int push_job(joblist *jl, const char *path, const char *label, mm_err *err)
{
    if (jl->n == jl->cap) {
        size_t nc = jl->cap ? 2 * jl->cap : 256;
        job *nv = realloc(jl->v, nc * sizeof *nv);
        if (!nv) return mm_err_set(err, MM_ENOMEM, "out of memory");
        jl->v = nv;
        jl->cap = nc;
    }
    job *j = &jl->v[jl->n];
    memset(j, 0, sizeof *j);
    j->path = strdup(path);
    j->label = label ? strdup(label) : NULL;
    if (!j->path || (label && !j->label)) { free(j->path); free(j->label); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    jl->n++;
    return 0;
}

static void free_jobs(joblist *jl)
{
    for (size_t i = 0; i < jl->n; i++) {
        job *j = &jl->v[i];
        free(j->path); free(j->label); free(j->artist); free(j->title); free(j->reason);
        free(j->t.id); free(j->t.artist); free(j->t.title);
        free(j->proba); free(j->emb);
    }
    free(jl->v);
    memset(jl, 0, sizeof *jl);
}

static int cmp_job(const void *a, const void *b)
{
    return strcmp(((const job *)a)->path, ((const job *)b)->path);
}

/* Walk dir (relative name rel under root) collecting audio files; label is
 * the first path component below root for files exactly one level down. */
static int walk(const char *dir, int depth, const char *top, const char *const *ext, joblist *jl, mm_err *err)
{
    if (depth > MAX_DEPTH) return 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (depth == 0) return mm_err_set(err, MM_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
        return 0;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
        snprintf(p, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat st, lst = {0};
        if (lstat(p, &lst) == 0 && S_ISDIR(lst.st_mode)) {
            rc = walk(p, depth + 1, depth == 0 ? e->d_name : top, ext, jl, err);
        } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && has_ext(e->d_name, ext)) {
            rc = push_job(jl, p, depth == 1 ? top : NULL, err);
        } else if (has_ext(e->d_name, ext) && !S_ISDIR(lst.st_mode)) {
            rc = push_job(jl, p, depth == 1 ? top : NULL, err);   /* dangling link etc.: listed as failed */
        }
        free(p);
    }
    closedir(d);
    return rc;
}

/* Stem of a path: file name without folder and last extension, into buf. */
static const char *stem_of(const char *path, char *buf, size_t size)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, size, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

typedef struct meta_row {
    char *key;
    const char *artist, *title;
} meta_row;

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const meta_row *)a)->key, ((const meta_row *)b)->key);
}

/* Join artist/title of a metadata CSV onto the jobs by file stem. */
static int join_metadata(joblist *jl, const char *csv_path, const char *key_col, mm_err *err)
{
    mm_csv *c = NULL;
    int rc = mm_csv_read(csv_path, &c, err);
    if (rc) return rc;
    int kc = -1;
    if (key_col) {
        kc = mm_csv_col(c, key_col);
        if (kc < 0) { rc = mm_err_set(err, MM_EINVAL, "%s: no column '%s' (the key to join on the file stem)", csv_path, key_col); goto done; }
    } else {
        static const char *const keys[] = {"song", "stem", "file", "path", NULL};
        for (size_t i = 0; keys[i] && kc < 0; i++) kc = mm_csv_col(c, keys[i]);
        if (kc < 0) { rc = mm_err_set(err, MM_EINVAL, "%s: no key column (expected one of song, stem, file, path)", csv_path); goto done; }
    }
    int ac = mm_csv_col(c, "artist"), tc = mm_csv_col(c, "title");
    if (ac < 0 && tc < 0) { rc = mm_err_set(err, MM_EINVAL, "%s: neither an 'artist' nor a 'title' column", csv_path); goto done; }
    meta_row *rows = mm_calloc(c->n_rows ? c->n_rows : 1, sizeof *rows, err);
    if (!rows) { rc = MM_ENOMEM; goto done; }
    char buf[1024];
    for (size_t r = 0; r < c->n_rows; r++) {
        rows[r].key = strdup(stem_of(mm_csv_cell(c, r, (size_t)kc), buf, sizeof buf));
        rows[r].artist = ac >= 0 ? mm_csv_cell(c, r, (size_t)ac) : NULL;
        rows[r].title = tc >= 0 ? mm_csv_cell(c, r, (size_t)tc) : NULL;
        if (!rows[r].key) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
    }
    if (!rc) {
        qsort(rows, c->n_rows, sizeof *rows, cmp_meta);
        for (size_t i = 0; i < jl->n && !rc; i++) {
            meta_row key = {.key = (char *)stem_of(jl->v[i].path, buf, sizeof buf)};
            meta_row *m = bsearch(&key, rows, c->n_rows, sizeof *rows, cmp_meta);
            if (!m) continue;
            if (m->artist && m->artist[0] && !jl->v[i].artist && !(jl->v[i].artist = strdup(m->artist))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
            if (m->title && m->title[0] && !jl->v[i].title && !(jl->v[i].title = strdup(m->title))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        }
    }
    for (size_t r = 0; r < c->n_rows; r++) free(rows[r].key);
    free(rows);
done:
    mm_csv_free(c);
    return rc;
}

/* An absolute spelling of path into buf: its folder through realpath when
 * that folder exists (the file's own name is kept, so a symlinked file keeps
 * its name and title), else lexically against the working directory. */
static void absolute_path(const char *path, char *buf, size_t size)
{
    char dir[PATH_MAX], real[PATH_MAX];
    size_t len = strlen(path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);   /* "/name": the root */
    if (dlen < sizeof dir && len < PATH_MAX) {
        if (dlen) memcpy(dir, path, dlen);
        else dir[dlen++] = '.';
        dir[dlen] = 0;
        if (base[0] && strcmp(base, ".") && strcmp(base, "..") && realpath(dir, real)) {
            int n = snprintf(buf, size, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
            if (n > 0 && (size_t)n < size) return;
        }
    }
    if (mm_path_absolute(path, buf, size, NULL) && size) {   /* too long: as given, cut */
        size_t n = len < size ? len : size - 1;
        memcpy(buf, path, n);
        buf[n] = 0;
    }
}

/* Jobs from a manifest CSV: path[, artist, title, label]; relative paths
 * from the manifest's folder, every path made absolute. */
static int read_manifest(const char *path, joblist *jl, mm_err *err)
{
    mm_csv *c = NULL;
    int rc = mm_csv_read(path, &c, err);
    if (rc) return rc;
    int pc = mm_csv_col(c, "path"), ac = mm_csv_col(c, "artist"), tc = mm_csv_col(c, "title");
    int lc = mm_csv_col(c, "label");
    if (lc < 0) lc = mm_csv_col(c, "true_label");
    if (pc < 0) { mm_csv_free(c); return mm_err_set(err, MM_EINVAL, "%s: no 'path' column (a manifest lists path[,artist,title,label])", path); }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0; else dir[0] = 0;
    for (size_t r = 0; r < c->n_rows && !rc; r++) {
        const char *p = mm_csv_cell(c, r, (size_t)pc);
        if (!p[0]) { rc = mm_err_set(err, MM_EINVAL, "%s:%d: empty path", path, c->lines[r]); break; }
        char full[8192], abs[PATH_MAX];
        if (p[0] == '/') snprintf(full, sizeof full, "%s", p);
        else snprintf(full, sizeof full, "%s%s", dir, p);
        absolute_path(full, abs, sizeof abs);
        const char *lab = lc >= 0 && mm_csv_cell(c, r, (size_t)lc)[0] ? mm_csv_cell(c, r, (size_t)lc) : NULL;
        if ((rc = push_job(jl, abs, lab, err))) break;
        job *j = &jl->v[jl->n - 1];
        if (ac >= 0 && mm_csv_cell(c, r, (size_t)ac)[0] && !(j->artist = strdup(mm_csv_cell(c, r, (size_t)ac)))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        if (tc >= 0 && mm_csv_cell(c, r, (size_t)tc)[0] && !(j->title = strdup(mm_csv_cell(c, r, (size_t)tc)))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    mm_csv_free(c);
    return rc;
}

/* ---- indexing ----------------------------------------------------------- */

void mm_library_index_params_default(mm_library_index_params *p)
{
    memset(p, 0, sizeof *p);
    p->reuse = 1;
}

/* Artist and title from the file's tags, when libsndfile can read them. */
static void read_tags(const char *path, char **artist, char **title)
{
    SF_INFO info = {0};
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) return;
    const char *a = sf_get_string(f, SF_STR_ARTIST), *t = sf_get_string(f, SF_STR_TITLE);
    if (a && a[0] && !*artist) *artist = strdup(a);
    if (t && t[0] && !*title) *title = strdup(t);
    sf_close(f);
}

static char *one_line(const char *s)
{
    char *r = strdup(s);
    for (char *p = r; p && *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
    return r;
}

/* Hash, reuse or classify one file. Thread-safe given a read-only `old`. */
static void index_one(job *j, const mm_bundle *b, const mm_library *old, int k, size_t dim)
{
    mm_err e = {0};
    struct stat st;
    if (stat(j->path, &st) != 0) { j->status = -1; j->reason = one_line(strerror(errno)); return; }
    if (!S_ISREG(st.st_mode)) { j->status = -1; j->reason = strdup("not a regular file"); return; }
    char hex[65];
    if (mm_sha256_file(j->path, hex, &e)) { j->status = -1; j->reason = one_line(e.msg); return; }
    j->t.size = (int64_t)st.st_size;
    j->t.mtime = (int64_t)st.st_mtime;
    j->t.id = strdup(hex);
    j->proba = malloc((size_t)k * sizeof *j->proba);
    j->emb = malloc(dim * sizeof *j->emb);
    if (!j->t.id || !j->proba || !j->emb) { j->status = -1; j->reason = strdup("out of memory"); return; }
    long o = old ? lookup(old, old->by_path, 0, j->path) : -1;
    const mm_library_track *ot = o >= 0 ? &old->tracks[o] : NULL;
    if (ot && ot->size == j->t.size && ot->mtime == j->t.mtime && !strcmp(ot->id, hex)) {
        memcpy(j->proba, ot->proba, (size_t)k * sizeof *j->proba);
        memcpy(j->emb, ot->embedding, dim * sizeof *j->emb);
        j->t.duration = ot->duration;
        j->status = 1;
    } else {
        double secs = 0;
        if (mm_bundle_classify_file(b, j->path, j->proba, j->emb, &secs, &e)) {
            j->status = -1;
            j->reason = one_line(e.msg);
            return;
        }
        j->t.duration = secs;
        j->status = 0;
    }
    if (!j->artist || !j->title) {
        if (ot && j->status == 1) {   /* tags of an unchanged file are unchanged */
            if (!j->artist && ot->artist[0]) j->artist = strdup(ot->artist);
            if (!j->title && ot->title[0]) j->title = strdup(ot->title);
        } else {
            read_tags(j->path, &j->artist, &j->title);
        }
    }
    char buf[1024];
    j->t.artist = strdup(j->artist ? j->artist : "");
    j->t.title = strdup(j->title ? j->title : stem_of(j->path, buf, sizeof buf));
    if (!j->t.artist || !j->t.title) { j->status = -1; j->reason = strdup("out of memory"); }
}

int mm_library_index(const mm_bundle *b, const char *bundle_path, const mm_va_table *va,
                     const char *source, const char *out_path,
                     const mm_library_index_params *pin, mm_library_index_stats *stats,
                     mm_err *err)
{
    mm_library_index_params p;
    if (pin) p = *pin; else mm_library_index_params_default(&p);
    if (!b || !source || !out_path) return mm_err_set(err, MM_EINVAL, "index: bundle, source and output are required");
    int k = mm_bundle_n_classes(b);
    size_t dim = mm_bundle_dim(b);
    if (k < 1 || k > MAX_CLASSES || dim < 1 || dim > MAX_DIM)
        return mm_err_set(err, MM_EINVAL, "index: bundle has %d classes and %zu features", k, dim);
    int rc = 0;
    joblist jl = {0};
    mm_library *old = NULL, *lib = NULL;
    mm_va *cva = NULL;
    const char **names = NULL;
    char bsha[65] = "";
    mm_library_index_stats s = {0};
    int reusable = 0;     /* the previous library came from the same bundle */

    names = mm_malloc((size_t)k, sizeof *names, err);
    cva = mm_malloc((size_t)k, sizeof *cva, err);
    if (!names || !cva) { rc = MM_ENOMEM; goto done; }
    for (int c = 0; c < k; c++) names[c] = mm_bundle_class_name(b, c);
    if ((rc = mm_va_label_points(va, names, k, cva, err))) {
        mm_err_prefix(err, "%s: the music model's labels need valence–arousal points (configs/recommend)",
                      bundle_path ? bundle_path : "bundle");
        goto done;
    }
    if (bundle_path && (rc = mm_sha256_file(bundle_path, bsha, err))) goto done;

    /* files */
    struct stat st;
    if (stat(source, &st) != 0) { rc = mm_err_set(err, MM_EIO, "%s: %s", source, strerror(errno)); goto done; }
    const char *const *ext = p.extensions ? p.extensions : default_ext;
    if (S_ISDIR(st.st_mode)) {
        char top[PATH_MAX];   /* absolute, so that the stored paths work from anywhere */
        if (!realpath(source, top)) { rc = mm_err_set(err, MM_EIO, "%s: %s", source, strerror(errno)); goto done; }
        if ((rc = walk(top, 0, NULL, ext, &jl, err))) goto done;
        if (jl.n) qsort(jl.v, jl.n, sizeof *jl.v, cmp_job);
        char meta[4096];
        const char *mp = p.metadata;
        if (!mp) {
            snprintf(meta, sizeof meta, "%s%smetadata.csv", source, source[strlen(source) - 1] == '/' ? "" : "/");
            if (access(meta, R_OK) == 0) mp = meta;
        }
        if (mp && (rc = join_metadata(&jl, mp, p.key_column, err))) goto done;
    } else {
        if ((rc = read_manifest(source, &jl, err))) goto done;
        if (jl.n) qsort(jl.v, jl.n, sizeof *jl.v, cmp_job);
        for (size_t i = 1; i < jl.n; i++)
            if (!strcmp(jl.v[i].path, jl.v[i - 1].path)) { rc = mm_err_set(err, MM_EINVAL, "%s: '%s' listed twice", source, jl.v[i].path); goto done; }
        if (p.metadata && (rc = join_metadata(&jl, p.metadata, p.key_column, err))) goto done;
    }
    s.n_files = jl.n;
    if (!jl.n) { rc = mm_err_set(err, MM_EDATA, "%s: no audio files found", source); goto done; }

    /* the previous library */
    if (p.reuse && access(out_path, F_OK) == 0) {
        mm_err e = {0};
        if (mm_library_open(out_path, &old, &e)) {
            rc = mm_err_set(err, MM_EFORMAT, "%s exists and is not a readable library (%s); remove it or choose another output",
                            out_path, e.msg);
            goto done;
        }
        reusable = !strcmp(mm_library_bundle_sha256(old), bsha) && old->n_classes == k && old->dim == dim;
        for (int c = 0; reusable && c < k; c++) reusable = !strcmp(old->class_names[c], names[c]);
    }

    /* classify, in parallel over files; each job writes only its own slot */
    int nt = p.n_threads > 0 ? p.n_threads : omp_get_max_threads();
    size_t done_count = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t i = 0; i < jl.n; i++) {
        index_one(&jl.v[i], b, reusable ? old : NULL, k, dim);
        if (p.progress) {
#pragma omp critical(mm_library_progress)
            p.progress(p.progress_ctx, ++done_count, jl.n, jl.v[i].path);
        }
    }

    /* assemble in path order */
    size_t n_ok = 0, n_fail = 0;
    for (size_t i = 0; i < jl.n; i++) {
        if (jl.v[i].status >= 0) n_ok++; else n_fail++;
    }
    if (!n_ok) {
        rc = mm_err_set(err, MM_EDATA, "%s: none of the %zu audio files could be indexed (first: %s: %s)",
                        source, jl.n, jl.v[0].path, jl.v[0].reason ? jl.v[0].reason : "?");
        goto done;
    }
    if (!(lib = lib_alloc(n_ok, k, names, cva, dim, err))) { rc = err ? err->code : MM_ENOMEM; goto done; }
    lib->failed_path = mm_calloc(n_fail ? n_fail : 1, sizeof *lib->failed_path, err);
    lib->failed_reason = mm_calloc(n_fail ? n_fail : 1, sizeof *lib->failed_reason, err);
    lib->model_name = xstrdup(mm_bundle_model_name(b));
    lib->bundle_sha = xstrdup(bsha);
    if (!lib->failed_path || !lib->failed_reason || !lib->model_name || !lib->bundle_sha) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    size_t w = 0;
    for (size_t i = 0; i < jl.n && !rc; i++) {
        job *j = &jl.v[i];
        if (j->status < 0) {
            size_t f = lib->n_failed++;
            lib->failed_path[f] = xstrdup(j->path);
            lib->failed_reason[f] = xstrdup(j->reason ? j->reason : "unknown error");
            if (!lib->failed_path[f] || !lib->failed_reason[f]) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
            continue;
        }
        if (j->status == 1) s.n_unchanged++; else s.n_new++;
        mm_library_track t = j->t;
        t.path = j->path;
        t.true_label = j->label ? j->label : "";
        t.proba = j->proba;
        t.embedding = j->emb;
        rc = copy_track(lib, w++, &t, err);
    }
    if (rc) goto done;
    if (old) {
        for (size_t i = 0; i < old->n; i++) {
            job probe = {.path = old->tracks[i].path};
            if (!bsearch(&probe, jl.v, jl.n, sizeof *jl.v, cmp_job)) s.n_removed++;
        }
    }
    s.n_indexed = n_ok;
    s.n_failed = n_fail;
    if ((rc = build_lookup(lib, err))) goto done;
    if ((rc = save_to(lib, out_path, source, err))) goto done;
    if (stats) *stats = s;
done:
    free(names);
    free(cva);
    free_jobs(&jl);
    mm_library_free(old);
    mm_library_free(lib);
    return rc;
}
