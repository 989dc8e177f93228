/* library.c — index a music library with a music bundle; read and write it.
 *
 * Lists audio files (a folder walked recursively in path order, or a
 * manifest CSV), joins artist and title from a metadata CSV on the file stem
 * (4Q: metadata.csv, column `song`), else the file's tags (TagLib's C API
 * when linked, then libsndfile SF_STR_ARTIST / SF_STR_TITLE), else the file
 * name; with a window length, classifies each file window by window
 * (windows.h) and keeps the means and the trajectory; hashes each file
 * (SHA-256, the track id), reuses unchanged tracks of the previous library
 * and classifies the rest with the bundle, in parallel over files.
 * Track paths are stored absolute (the source folder or manifest folder made
 * absolute with realpath), so a library works from any working directory;
 * libraries written before that, with paths relative to the indexing
 * command's working directory, are resolved on loading where the files are
 * found (see resolve_track).
 * An index run is cut into phases (prepare, classify any subset, finish:
 * library_run.h) that library_dist.c shares among --shard parts and MPI
 * ranks. Leaves out watching folders for changes (and, without TagLib,
 * tags libsndfile cannot read: ID3 in MP3, MP4).
 */
#include "runtime/library.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/paths.h"
#include "core/sha256.h"
#include "io/csv.h"
#include "runtime/library_run.h"
#include "runtime/pca.h"
#include "runtime/windows.h"

#define MAX_CLASSES 4096
#define MAX_DIM (1u << 20)
#define MAX_DEPTH 32
#define MAX_TRACKS 100000000u   /* 10^8 */
#define N_TEXT 5                /* path, id, artist, title, true_label */

struct mm_library {
    size_t n;
    mm_library_track *tracks;   /* (n) */
    int n_classes;
    char **class_names;         /* (n_classes) */
    mm_va *class_va;            /* (n_classes) */
    size_t dim;                 /* the bundle's embedding dimension D */
    float *proba;               /* (n, n_classes) owned storage behind tracks[i].proba, or NULL (mapped) */
    float *emb;                 /* (n, dim) storage behind tracks[i].embedding; NULL when read from a v2 file */
    size_t n_failed;
    char **failed_path, **failed_reason;    /* (n_failed) */
    char *model_name, *bundle_sha;
    const size_t *by_path;      /* (n) track indices sorted by path */
    const size_t *by_id;        /* (n) track indices sorted by id (strictly: ids are unique) */
    const size_t *by_artist;    /* (n) track indices sorted by artist, then index */
    int32_t *artist_id;         /* (n) equal ⇔ same artist; −1 for no artist (from by_artist) */
    int32_t *artist_ord;        /* (n) artist_id[vx.order[p]]: a walk of the VA index reads it in sequence */
    /* similarity vectors (pca.h) */
    size_t sim_dim;             /* k */
    const int8_t *sim;          /* (n, k) */
    const float *sim_inv;       /* (n) 1/‖q‖ */
    const float *basis;         /* (dim, k) projection, or NULL when the embeddings are used as they are */
    /* the valence–arousal index (vaindex.h) */
    const mm_va *va;            /* (n) */
    const float *conf;          /* (n) */
    const int32_t *quad;        /* (n) */
    mm_vaindex vx;
    /* storage: malloc'd blocks freed with the library, and the file mapping */
    void **own;
    size_t n_own, cap_own;
    void *map;
    size_t map_len;
    char **resolved;            /* (n) v2: paths made absolute at load (NULL entries: as stored) */
    int own_strings;            /* 1: the tracks' strings are malloc'd one by one (not v2) */
    double window_s, hop_s;     /* windowed indexing (0: one clip per file) */
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

/* Keep p (malloc'd) until the library is freed; frees p and fails when out of memory. */
static int own(mm_library *l, void *p, mm_err *err)
{
    if (!p) return mm_err_set(err, MM_ENOMEM, "out of memory");
    if (l->n_own == l->cap_own) {
        size_t nc = l->cap_own ? 2 * l->cap_own : 16;
        void **nv = realloc(l->own, nc * sizeof *nv);
        if (!nv) { free(p); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
        l->own = nv;
        l->cap_own = nc;
    }
    l->own[l->n_own++] = p;
    return 0;
}

void mm_library_free(mm_library *l)
{
    if (!l) return;
    if (l->own_strings)   /* else they live in the mapping or one text block */
        for (size_t i = 0; l->tracks && i < l->n; i++) {
            mm_library_track *t = &l->tracks[i];
            free(t->path); free(t->id); free(t->artist); free(t->title); free(t->true_label);
        }
    free_strv(l->resolved, l->resolved ? l->n : 0);
    free(l->tracks);
    free_strv(l->class_names, (size_t)l->n_classes);
    free(l->class_va);
    free(l->proba);
    free(l->emb);
    free_strv(l->failed_path, l->n_failed);
    free_strv(l->failed_reason, l->n_failed);
    free(l->model_name);
    free(l->bundle_sha);
    for (size_t i = 0; i < l->n_own; i++) free(l->own[i]);
    free(l->own);
    if (l->map) munmap(l->map, l->map_len);
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

static int cmp_artist(const void *a, const void *b, void *ctx)
{
    const mm_library *l = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(l->tracks[i].artist, l->tracks[j].artist);
    return c ? c : (i > j) - (i < j);
}

/* An error naming two tracks with the same id, or 0 (by_id sorted). */
static int check_unique_ids(const mm_library *l, const char *file, mm_err *err)
{
    for (size_t r = 1; r < l->n; r++) {
        const mm_library_track *a = &l->tracks[l->by_id[r - 1]], *b = &l->tracks[l->by_id[r]];
        int c = strcmp(a->id, b->id);
        if (c == 0)
            return mm_err_set(err, MM_EFORMAT, "%s: duplicate track id '%s' (%s and %s)", file, b->id, a->path, b->path);
        if (c > 0) return mm_err_set(err, MM_EFORMAT, "%s: the id lookup table is not sorted", file);
    }
    return 0;
}

/* Artist ids from the artist order: consecutive equal artists share one.
 * With file != NULL the order is also checked to be sorted (artist, then
 * index), in the same pass. */
static int artist_ids(mm_library *l, const char *file, mm_err *err)
{
    int32_t *id = mm_malloc(l->n ? l->n : 1, sizeof *id, err);
    if (own(l, id, err)) return MM_ENOMEM;
    int32_t next = 0;
    for (size_t r = 0; r < l->n; r++) {
        size_t i = l->by_artist[r];
        const char *a = l->tracks[i].artist;
        int c = 1;
        if (r) {
            size_t h = l->by_artist[r - 1];
            c = strcmp(a, l->tracks[h].artist);
            if (file && (c < 0 || (c == 0 && h > i)))
                return mm_err_set(err, MM_EFORMAT, "%s: dataset 'tracks/by_artist' is not sorted", file);
        }
        if (!a[0]) id[i] = -1;
        else id[i] = c ? next++ : id[l->by_artist[r - 1]];
    }
    l->artist_id = id;
    return 0;
}

/* Sorted lookup tables (glibc qsort_r: reentrant). */
static int build_lookup(mm_library *l, const char *file, mm_err *err)
{
    size_t *bp = mm_malloc(l->n ? l->n : 1, sizeof *bp, err);
    if (own(l, bp, err)) return MM_ENOMEM;
    size_t *bi = mm_malloc(l->n ? l->n : 1, sizeof *bi, err);
    if (own(l, bi, err)) return MM_ENOMEM;
    size_t *ba = mm_malloc(l->n ? l->n : 1, sizeof *ba, err);
    if (own(l, ba, err)) return MM_ENOMEM;
    for (size_t i = 0; i < l->n; i++) bp[i] = bi[i] = ba[i] = i;
    qsort_r(bp, l->n, sizeof *bp, cmp_path, l);
    qsort_r(bi, l->n, sizeof *bi, cmp_id, l);
    qsort_r(ba, l->n, sizeof *ba, cmp_artist, l);
    l->by_path = bp;
    l->by_id = bi;
    l->by_artist = ba;
    int rc = artist_ids(l, NULL, err);
    return rc ? rc : check_unique_ids(l, file, err);
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

/* The artist ids in the VA index's layout order (l->artist_ord), from
 * l->artist_id and a layout already checked or built here. */
static int artist_ordered(mm_library *l, mm_err *err)
{
    int32_t *ao = mm_malloc(l->n ? l->n : 1, sizeof *ao, err);
    if (own(l, ao, err)) return MM_ENOMEM;
    for (size_t p = 0; p < l->n; p++) ao[p] = l->artist_id[l->vx.order[p]];
    l->artist_ord = ao;
    return 0;
}

/* The index's points and confidences in layout order (vaindex.h), from a
 * layout already checked or built here; and the artist ids (artist_ordered). */
static int ordered_copies(mm_library *l, mm_err *err)
{
    size_t n = l->n;
    mm_va *vo = mm_malloc(n ? n : 1, sizeof *vo, err);
    if (own(l, vo, err)) return MM_ENOMEM;
    float *co = mm_malloc(n ? n : 1, sizeof *co, err);
    if (own(l, co, err)) return MM_ENOMEM;
    for (size_t p = 0; p < n; p++) {
        vo[p] = l->va[l->vx.order[p]];
        co[p] = l->conf[l->vx.order[p]];
    }
    l->vx.va_ord = vo;
    l->vx.conf_ord = co;
    return artist_ordered(l, err);
}

/* Similarity vectors and the VA index of an in-memory library whose
 * embeddings are in l->emb: basis (dim, k) given (reused from an earlier
 * library of the same bundle) or fitted when dim > MM_PCA_DIM. */
static int build_index(mm_library *l, const float *basis_in, size_t k_in, mm_err *err)
{
    int rc;
    size_t n = l->n, D = l->dim, k = D;
    float *basis = NULL;
    if (basis_in) {
        k = k_in;
        if (!(basis = mm_malloc(D * k, sizeof *basis, err))) return MM_ENOMEM;
        memcpy(basis, basis_in, D * k * sizeof *basis);
    } else if (D > MM_PCA_DIM && n > 0) {
        if ((rc = mm_pca_fit(l->emb, n, D, MM_PCA_DIM, &basis, &k, err))) return rc;
    }
    if (basis && (rc = own(l, basis, err))) return rc;
    l->basis = basis;
    l->sim_dim = k;
    int8_t *q = mm_malloc(n ? n * k : 1, sizeof *q, err);
    if ((rc = own(l, q, err))) return rc;
    float *inv = mm_malloc(n ? n : 1, sizeof *inv, err);
    if ((rc = own(l, inv, err))) return rc;
    const size_t block = 4096;
    float *proj = basis ? mm_malloc(block * k, sizeof *proj, err) : NULL;
    if (basis && !proj) return MM_ENOMEM;
    for (size_t i0 = 0; i0 < n; i0 += block) {
        size_t m = n - i0 < block ? n - i0 : block;
        const float *v = l->emb + i0 * D;
        if (basis) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)D, 1.f, v, (int)D, basis,
                        (int)k, 0.f, proj, (int)k);
            v = proj;
        }
        mm_pca_quantize(v, m, k, q + i0 * k, inv + i0);
    }
    free(proj);
    l->sim = q;
    l->sim_inv = inv;
    mm_va *va = mm_malloc(n ? n : 1, sizeof *va, err);
    if ((rc = own(l, va, err))) return rc;
    float *conf = mm_malloc(n ? n : 1, sizeof *conf, err);
    if ((rc = own(l, conf, err))) return rc;
    int32_t *quad = mm_malloc(n ? n : 1, sizeof *quad, err);
    if ((rc = own(l, quad, err))) return rc;
    for (size_t i = 0; i < n; i++) {
        va[i] = l->tracks[i].va;
        conf[i] = l->tracks[i].confidence;
        quad[i] = l->tracks[i].quadrant;
    }
    l->va = va;
    l->conf = conf;
    l->quad = quad;
    int32_t *order = NULL;
    int64_t *start = NULL;
    int grid = mm_vaindex_grid_for(n);
    if ((rc = mm_vaindex_build(va, conf, quad, n, grid, &order, &start, err))) return rc;
    if ((rc = own(l, order, err))) { free(start); return rc; }
    if ((rc = own(l, start, err))) return rc;
    l->vx = (mm_vaindex){.grid = grid, .n = n, .order = order, .cell_start = start, .va = va, .conf = conf};
    return ordered_copies(l, err);
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
size_t mm_library_artist_tracks(const mm_library *l, const char *artist, const size_t **idx)
{
    *idx = NULL;
    if (!artist || !artist[0]) return 0;
    size_t lo = 0, hi = l->n;
    while (lo < hi) {   /* first with artist ≥ key */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(l->tracks[l->by_artist[mid]].artist, artist) < 0) lo = mid + 1; else hi = mid;
    }
    size_t end = lo;
    while (end < l->n && !strcmp(l->tracks[l->by_artist[end]].artist, artist)) end++;
    *idx = l->by_artist + lo;
    return end - lo;
}
size_t mm_library_sim_dim(const mm_library *l) { return l->sim_dim; }
mm_va mm_library_point(const mm_library *l, size_t i) { return l->va[i]; }
float mm_library_confidence(const mm_library *l, size_t i) { return l->conf[i]; }
int mm_library_quadrant(const mm_library *l, size_t i) { return l->quad[i]; }
const char *mm_library_artist(const mm_library *l, size_t i) { return l->tracks[i].artist; }
const char *mm_library_id(const mm_library *l, size_t i) { return l->tracks[i].id; }
int32_t mm_library_artist_id(const mm_library *l, size_t i) { return l->artist_id[i]; }
int32_t mm_library_artist_id_at(const mm_library *l, size_t pos) { return l->artist_ord[pos]; }
float mm_library_sim_inv(const mm_library *l, size_t i) { return l->sim_inv[i]; }
float mm_library_cosine(const mm_library *l, size_t a, size_t b)
{
    size_t k = l->sim_dim;
    return mm_pca_cosine(l->sim + a * k, l->sim_inv[a], l->sim + b * k, l->sim_inv[b], k);
}
const int8_t *mm_library_sim(const mm_library *l, size_t i, float *inv_norm)
{
    if (i >= l->n) return NULL;
    if (inv_norm) *inv_norm = l->sim_inv[i];
    return l->sim + i * l->sim_dim;
}
void mm_library_prefetch_sim(const mm_library *l, size_t i)
{
    if (i >= l->n) return;
    const int8_t *row = l->sim + i * l->sim_dim;
    for (size_t b = 0; b < l->sim_dim; b += 64) __builtin_prefetch(row + b);
    __builtin_prefetch(&l->sim_inv[i]);
}
const mm_vaindex *mm_library_vaindex(const mm_library *l) { return &l->vx; }
size_t mm_library_n_failed(const mm_library *l) { return l->n_failed; }
int mm_library_failed(const mm_library *l, size_t i, const char **path, const char **reason)
{
    if (i >= l->n_failed) return MM_EINVAL;
    if (path) *path = l->failed_path[i];
    if (reason) *reason = l->failed_reason[i];
    return 0;
}
const char *mm_library_model_name(const mm_library *l) { return l->model_name ? l->model_name : ""; }
double mm_library_window(const mm_library *l, double *hop)
{
    if (hop) *hop = l->hop_s;
    return l->window_s;
}
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
    l->own_strings = 1;
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

/* Copy the stored fields of src into slot i of l (strings duplicated; an
 * embedding of NULL leaves zeros). */
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
    if (src->embedding) memcpy(t->embedding, src->embedding, l->dim * sizeof *t->embedding);
    derive(t, l->n_classes, l->class_va);
    t->segment_start = src->segment_start;
    t->n_windows = src->trajectory ? src->n_windows : 0;
    t->trajectory = NULL;
    if (t->n_windows) {
        mm_va *tr = mm_malloc(t->n_windows, sizeof *tr, err);
        if (own(l, tr, err)) return MM_ENOMEM;
        memcpy(tr, src->trajectory, t->n_windows * sizeof *tr);
        t->trajectory = tr;
    }
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

static int check_proba(const float *p, size_t i, const char *path, int k, mm_err *err)
{
    for (int c = 0; c < k; c++)
        if (!isfinite(p[c]) || p[c] < 0 || p[c] > 1.0001f)
            return mm_err_set(err, MM_EFORMAT, "library: track %zu (%s): probability %d is %g, expected 0..1",
                              i, path, c, (double)p[c]);
    return 0;
}

static int check_track(const mm_library_track *t, size_t i, int k, size_t dim, mm_err *err)
{
    if (!t->path || !t->path[0]) return mm_err_set(err, MM_EINVAL, "library: track %zu has no path", i);
    if (!t->id || !t->id[0]) return mm_err_set(err, MM_EINVAL, "library: track %zu (%s) has no id", i, t->path);
    if (!t->proba || !t->embedding) return mm_err_set(err, MM_EINVAL, "library: track %zu (%s) has no probabilities or embedding", i, t->path);
    int rc = check_proba(t->proba, i, t->path, k, err);
    if (rc) return rc;
    for (size_t d = 0; d < dim; d++)
        if (!isfinite(t->embedding[d]))
            return mm_err_set(err, MM_EFORMAT, "library: track %zu (%s): embedding value %zu is not finite", i, t->path, d);
    if (!isfinite(t->duration) || t->duration < 0)
        return mm_err_set(err, MM_EFORMAT, "library: track %zu (%s): duration %g", i, t->path, t->duration);
    if (t->n_windows > MM_WINDOWS_MAX || !isfinite(t->segment_start) || t->segment_start < 0)
        return mm_err_set(err, MM_EINVAL, "library: track %zu (%s): %zu windows, segment at %g s", i, t->path,
                          t->n_windows, t->segment_start);
    for (size_t w = 0; t->trajectory && w < t->n_windows; w++)
        if (!(fabsf(t->trajectory[w].valence) <= 1) || !(fabsf(t->trajectory[w].arousal) <= 1))
            return mm_err_set(err, MM_EINVAL, "library: track %zu (%s): window %zu outside [-1, 1]²", i, t->path, w);
    return 0;
}

int mm_library_from_tracks(const mm_library_track *tracks, size_t n, int n_classes,
                           const char *const *class_names, const mm_va *class_va, size_t dim,
                           mm_library **out, mm_err *err)
{
    int rc = check_classes(n_classes, class_names, class_va, dim, err);
    if (rc) return rc;
    if (n > MAX_TRACKS) return mm_err_set(err, MM_EINVAL, "library: %zu tracks, at most %u", n, MAX_TRACKS);
    for (size_t i = 0; i < n; i++)
        if ((rc = check_track(&tracks[i], i, n_classes, dim, err))) return rc;
    mm_library *l = lib_alloc(n, n_classes, class_names, class_va, dim, err);
    if (!l) return err ? err->code : MM_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) rc = copy_track(l, i, &tracks[i], err);
    if (!rc) rc = build_lookup(l, "library", err);
    if (!rc) rc = build_index(l, NULL, 0, err);
    if (rc) { mm_library_free(l); return rc; }
    *out = l;
    return 0;
}

/* ---- HDF5, format version 2 ------------------------------------------------
 * Every per-track array is a contiguous, unfiltered dataset (aligned to 64
 * bytes), so that a reader maps the file and uses the arrays in place:
 *   /tracks/text (bytes) NUL-terminated strings; /tracks/text_offset (N, 5)
 *   i64: path, id, artist, title, true_label of each track, in that order;
 *   /tracks/{size, mtime} i64 (N), duration f64 (N), proba f32 (N, K),
 *   va f32 (N, 2), confidence f32 (N), quadrant, top_class i32 (N);
 *   /tracks/{by_id, by_path, by_artist} i64 (N) sort orders;
 *   /index/sim i8 (N, k), /index/sim_inv_norm f32 (N), /index/basis f32
 *   (D, k) when the embeddings were reduced (attribute embedding_dim = D);
 *   /index/order i32 (N), /index/cell_start i64 (4·G² + 1), attribute grid.
 * Version 1 (vlen strings, full embeddings) is still read. */

static int wr(hid_t f, const char *name, hid_t mem_type, hid_t file_type, int rank, const hsize_t *dims,
              const void *data, mm_err *err)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    hid_t d = H5Dcreate2(f, name, file_type, space, lcpl, dcpl, H5P_DEFAULT);
    int rc = 0;
    hsize_t total = 1;
    for (int r = 0; r < rank; r++) total *= dims[r];
    if (d < 0 || (total && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        rc = mm_err_set(err, MM_EIO, "cannot write dataset '%s'", name);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(space);
    return rc;
}

/* The windows' trajectories (when the library was indexed by windows, or
 * any track has one): attributes window_s, hop_s; /tracks/segment_start
 * (N), /tracks/traj_offset (N + 1), /tracks/trajectory (M, 2). */
static int write_windows(hid_t f, const mm_library *l, mm_err *err)
{
    size_t n = l->n, m = 0;
    for (size_t i = 0; i < n; i++) m += l->tracks[i].n_windows;
    if (!(l->window_s > 0) && !m) return 0;
    int rc;
    if ((rc = mm_h5_attr_set_f64(f, "window_s", l->window_s, err))) return rc;
    if ((rc = mm_h5_attr_set_f64(f, "hop_s", l->hop_s, err))) return rc;
    double *seg = mm_malloc(n ? n : 1, sizeof *seg, err);
    int64_t *off = mm_malloc(n + 1, sizeof *off, err);
    float *tr = mm_malloc(m ? 2 * m : 2, sizeof *tr, err);
    if (!seg || !off || !tr) { rc = MM_ENOMEM; goto done; }
    off[0] = 0;
    for (size_t i = 0, w = 0; i < n; i++) {
        const mm_library_track *t = &l->tracks[i];
        seg[i] = t->segment_start;
        for (size_t j = 0; j < t->n_windows; j++, w++) {
            tr[2 * w] = t->trajectory[j].valence;
            tr[2 * w + 1] = t->trajectory[j].arousal;
        }
        off[i + 1] = off[i] + (int64_t)t->n_windows;
    }
    hsize_t d1[1] = {n}, d0[1] = {n + 1}, d2[2] = {m, 2};
    if ((rc = wr(f, "tracks/segment_start", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, d1, seg, err))) goto done;
    if ((rc = wr(f, "tracks/traj_offset", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, d0, off, err))) goto done;
    rc = wr(f, "tracks/trajectory", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, d2, tr, err);
done:
    free(seg); free(off); free(tr);
    return rc;
}

static int write_lib(hid_t f, const mm_library *l, const char *source, mm_err *err)
{
    int rc;
    size_t n = l->n, k = (size_t)l->n_classes;
    if ((rc = mm_h5_stamp_format(f, MM_LIBRARY_FORMAT, MM_LIBRARY_VERSION, err))) return rc;
    if ((rc = mm_h5_attr_set_str(f, "model", mm_library_model_name(l), err))) return rc;
    if ((rc = mm_h5_attr_set_str(f, "bundle_sha256", mm_library_bundle_sha256(l), err))) return rc;
    if (source && (rc = mm_h5_attr_set_str(f, "source", source, err))) return rc;
    if ((rc = mm_h5_attr_set_i64(f, "embedding_dim", (int64_t)l->dim, err))) return rc;
    if ((rc = mm_h5_attr_set_i64(f, "grid", l->vx.grid, err))) return rc;
    char when[32];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    if ((rc = mm_h5_attr_set_str(f, "created", when, err))) return rc;
    hsize_t d1[1] = {n}, d2[2];
    if ((rc = mm_h5_write_strings(f, "classes/names", (const char *const *)l->class_names, k, err))) return rc;
    float *cva = mm_malloc(k * 2, sizeof *cva, err);
    int64_t *i64 = mm_malloc(n ? N_TEXT * n : 1, sizeof *i64, err);
    double *f64 = mm_malloc(n ? n : 1, sizeof *f64, err);
    float *f32 = mm_malloc(n ? 2 * n : 2, sizeof *f32, err);
    int32_t *i32 = mm_malloc(n ? n : 1, sizeof *i32, err);
    char *text = NULL;
    if (!cva || !i64 || !f64 || !f32 || !i32) { rc = MM_ENOMEM; goto done; }
    for (size_t c = 0; c < k; c++) { cva[2 * c] = l->class_va[c].valence; cva[2 * c + 1] = l->class_va[c].arousal; }
    d2[0] = k; d2[1] = 2;
    if ((rc = mm_h5_write_f32(f, "classes/va", cva, 2, d2, err))) goto done;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const mm_library_track *t = &l->tracks[i];
        const char *s[N_TEXT] = {t->path, t->id, t->artist, t->title, t->true_label};
        for (int j = 0; j < N_TEXT; j++) len += strlen(s[j]) + 1;
    }
    if (!(text = mm_malloc(len ? len : 1, 1, err))) { rc = MM_ENOMEM; goto done; }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const mm_library_track *t = &l->tracks[i];
        const char *s[N_TEXT] = {t->path, t->id, t->artist, t->title, t->true_label};
        for (int j = 0; j < N_TEXT; j++) {
            size_t sl = strlen(s[j]) + 1;
            i64[i * N_TEXT + j] = (int64_t)pos;
            memcpy(text + pos, s[j], sl);
            pos += sl;
        }
    }
    {   /* the same strings as HDF5 strings, as in v1, for h5dump and h5py readers (melodic reads text) */
        const char **sv = mm_malloc(n ? n : 1, sizeof *sv, err);
        if (!sv) { rc = MM_ENOMEM; goto done; }
        static const char *const sn[N_TEXT] = {"tracks/path", "tracks/id", "tracks/artist", "tracks/title", "tracks/true_label"};
        for (int j = 0; j < N_TEXT && !rc; j++) {
            for (size_t i = 0; i < n; i++) sv[i] = text + i64[i * N_TEXT + j];
            rc = mm_h5_write_strings(f, sn[j], sv, n, err);
        }
        free(sv);
        if (rc) goto done;
    }
    hsize_t dl[1] = {len};
    if ((rc = wr(f, "tracks/text", H5T_NATIVE_UINT8, H5T_STD_U8LE, 1, dl, text, err))) goto done;
    d2[0] = n; d2[1] = N_TEXT;
    if ((rc = wr(f, "tracks/text_offset", H5T_NATIVE_INT64, H5T_STD_I64LE, 2, d2, i64, err))) goto done;
    for (size_t i = 0; i < n; i++) i64[i] = l->tracks[i].size;
    if ((rc = wr(f, "tracks/size", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, d1, i64, err))) goto done;
    for (size_t i = 0; i < n; i++) i64[i] = l->tracks[i].mtime;
    if ((rc = wr(f, "tracks/mtime", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, d1, i64, err))) goto done;
    for (size_t i = 0; i < n; i++) f64[i] = l->tracks[i].duration;
    if ((rc = wr(f, "tracks/duration", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, d1, f64, err))) goto done;
    d2[1] = k;
    float *pr = mm_malloc(n ? n * k : 1, sizeof *pr, err);
    if (!pr) { rc = MM_ENOMEM; goto done; }
    for (size_t i = 0; i < n; i++) memcpy(pr + i * k, l->tracks[i].proba, k * sizeof *pr);
    rc = wr(f, "tracks/proba", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, d2, pr, err);
    free(pr);
    if (rc) goto done;
    for (size_t i = 0; i < n; i++) { f32[2 * i] = l->va[i].valence; f32[2 * i + 1] = l->va[i].arousal; }
    d2[1] = 2;
    if ((rc = wr(f, "tracks/va", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, d2, f32, err))) goto done;
    if ((rc = wr(f, "tracks/confidence", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, d1, l->conf, err))) goto done;
    if ((rc = wr(f, "tracks/quadrant", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, d1, l->quad, err))) goto done;
    for (size_t i = 0; i < n; i++) i32[i] = l->tracks[i].top_class;
    if ((rc = wr(f, "tracks/top_class", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, d1, i32, err))) goto done;
    const size_t *orders[3] = {l->by_id, l->by_path, l->by_artist};
    const char *onames[3] = {"tracks/by_id", "tracks/by_path", "tracks/by_artist"};
    for (int o = 0; o < 3; o++) {
        for (size_t i = 0; i < n; i++) i64[i] = (int64_t)orders[o][i];
        if ((rc = wr(f, onames[o], H5T_NATIVE_INT64, H5T_STD_I64LE, 1, d1, i64, err))) goto done;
    }
    d2[1] = l->sim_dim;
    if ((rc = wr(f, "index/sim", H5T_NATIVE_INT8, H5T_STD_I8LE, 2, d2, l->sim, err))) goto done;
    if ((rc = wr(f, "index/sim_inv_norm", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, d1, l->sim_inv, err))) goto done;
    if (l->basis) {
        d2[0] = l->dim;
        if ((rc = wr(f, "index/basis", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, d2, l->basis, err))) goto done;
    }
    if ((rc = wr(f, "index/order", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, d1, l->vx.order, err))) goto done;
    hsize_t dc[1] = {(hsize_t)MM_VAINDEX_GROUPS * l->vx.grid * l->vx.grid + 1};
    if ((rc = wr(f, "index/cell_start", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, dc, l->vx.cell_start, err))) goto done;
    if ((rc = write_windows(f, l, err))) goto done;
    if (l->n_failed) {
        if ((rc = mm_h5_write_strings(f, "failed/path", (const char *const *)l->failed_path, l->n_failed, err))) goto done;
        if ((rc = mm_h5_write_strings(f, "failed/reason", (const char *const *)l->failed_reason, l->n_failed, err))) goto done;
    }
done:
    free(cva); free(i64); free(f64); free(f32); free(i32); free(text);
    return rc;
}

/* Write to a temporary file beside path with 64-byte aligned datasets, then rename. */
static int save_to(const mm_library *l, const char *path, const char *source, mm_err *err)
{
    mm_h5_init();
    size_t pl = strlen(path) + 64;
    char *tmp = malloc(pl);
    if (!tmp) return mm_err_set(err, MM_ENOMEM, "out of memory");
    snprintf(tmp, pl, "%s.tmp.%ld", path, (long)getpid());
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_alignment(fapl, 4096, 64);
    H5Pset_alignment(fapl, 1, 64);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    int rc;
    if (f < 0) {
        rc = mm_err_set(err, MM_EIO, "%s: cannot create output file (does its folder exist and is it writable?)", path);
        free(tmp);
        return rc;
    }
    rc = write_lib(f, l, source, err);
    if (H5Fclose(f) < 0 && !rc) rc = mm_err_set(err, MM_EIO, "%s: cannot write", path);
    if (!rc) {
        int fd = open(tmp, O_RDONLY);
        if (fd >= 0) { fsync(fd); close(fd); }
        if (rename(tmp, path) != 0) rc = mm_err_set(err, MM_EIO, "%s: cannot rename %s: %s", path, tmp, strerror(errno));
    } else {
        mm_err_prefix(err, "%s", path);
    }
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
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

static int read_failed_and_attrs(hid_t f, const char *file, mm_library *l, mm_err *err)
{
    int rc;
    if (mm_h5_exists(f, "failed/path")) {
        size_t nf = 0;
        if ((rc = read_strs(f, file, "failed/path", (size_t)-1, &l->failed_path, &nf, err))) return rc;
        l->n_failed = nf;
        if ((rc = read_strs(f, file, "failed/reason", nf, &l->failed_reason, NULL, err))) {
            mm_h5_free_strings(l->failed_path, nf);
            l->failed_path = NULL;
            l->n_failed = 0;
            return rc;
        }
    }
    char *s = NULL;
    mm_err e2 = {0};
    l->model_name = mm_h5_attr_get_str(f, "model", &s, &e2) ? xstrdup("") : s;
    s = NULL;
    l->bundle_sha = mm_h5_attr_get_str(f, "bundle_sha256", &s, &e2) ? xstrdup("") : s;
    if (!l->model_name || !l->bundle_sha) return mm_err_set(err, MM_ENOMEM, "out of memory");
    return 0;
}

static int read_v1(hid_t f, const char *file, mm_library **out, mm_err *err)
{
    int rc;
    mm_library *l = NULL;
    char **names = NULL, **s_path = NULL, **s_id = NULL, **s_artist = NULL, **s_title = NULL, **s_label = NULL;
    size_t k = 0, n = 0;
    float *cva = NULL, *proba = NULL, *emb = NULL;
    int64_t *size = NULL, *mtime = NULL;
    double *dur = NULL;
    int rank;
    hsize_t dims[4];
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
    if ((rc = read_failed_and_attrs(f, file, l, err))) goto done;
    if ((rc = build_lookup(l, file, err))) goto done;
    rc = build_index(l, NULL, 0, err);
    if (rc) mm_err_prefix(err, "%s", file);
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

/* A numeric dataset of a v2 file, in place in the mapping when it is
 * contiguous, aligned and inside the file, else read into memory kept by l.
 * Checks the type (class, size, signedness) and the shape: rank, and each
 * dimension against want[] (0: any; the found dims go to got[]). */
static int view(hid_t f, const char *file, mm_library *l, const char *name, H5T_class_t cls, size_t esize,
                int is_signed, hid_t mem_type, int rank, const hsize_t *want, hsize_t *got, const void **out,
                mm_err *err)
{
    if (!mm_h5_exists(f, name)) return mm_err_set(err, MM_EFORMAT, "%s: no dataset '%s'", file, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return mm_err_set(err, MM_EFORMAT, "%s: cannot open dataset '%s'", file, name);
    int rc = 0;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    hsize_t dims[8] = {0};
    int r = H5Sget_simple_extent_ndims(s);
    if (H5Tget_class(t) != cls || H5Tget_size(t) != esize || (esize > 1 && H5Tget_order(t) != H5T_ORDER_LE) ||
        (cls == H5T_INTEGER && (H5Tget_sign(t) == H5T_SGN_2) != is_signed)) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' has the wrong type", file, name);
        goto done;
    }
    if (r != rank) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' has rank %d, expected %d", file, name, r, rank); goto done; }
    H5Sget_simple_extent_dims(s, dims, NULL);
    for (int i = 0; i < rank; i++) {
        if (want[i] && dims[i] != want[i]) {
            rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' has %llu %s, expected %llu (the per-track arrays disagree)",
                            file, name, (unsigned long long)dims[i], i ? "columns" : "rows", (unsigned long long)want[i]);
            goto done;
        }
        got[i] = dims[i];
    }
    hsize_t total = esize;
    for (int i = 0; i < rank; i++) {
        if (dims[i] && total > ((hsize_t)1 << 62) / dims[i]) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is too large", file, name); goto done; }
        total *= dims[i];
    }
    if (!total) { *out = NULL; goto done; }
    haddr_t off = H5Dget_offset(d);
    if (off != HADDR_UNDEF && l->map && off % (esize < 8 ? esize : 8) == 0 && off <= l->map_len &&
        total <= l->map_len - off && H5Dget_storage_size(d) == total) {
        *out = (const char *)l->map + off;
    } else {
        if (total > ((hsize_t)1 << 40)) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is too large", file, name); goto done; }
        void *buf = malloc((size_t)total);
        if ((rc = own(l, buf, err))) goto done;
        if (H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) { rc = mm_err_set(err, MM_EFORMAT, "%s: cannot read dataset '%s'", file, name); goto done; }
        *out = buf;
    }
done:
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

/* A sort order (i64, n) read from a file: a permutation; which 1: sorted by
 * path (ids: check_unique_ids; artists: artist_ids). */
static int check_order(const mm_library *l, const char *file, const char *name, const int64_t *o, int which,
                       mm_err *err)
{
    uint8_t *seen = calloc(l->n ? l->n : 1, 1);
    if (!seen) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t r = 0; r < l->n && !rc; r++) {
        if (o[r] < 0 || (uint64_t)o[r] >= l->n || seen[o[r]]) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is not a permutation of the tracks", file, name); break; }
        seen[o[r]] = 1;
        if (r && which == 1 && strcmp(l->tracks[o[r - 1]].path, l->tracks[o[r]].path) > 0) {
            rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is not sorted", file, name);
        }
    }
    free(seen);
    return rc;
}

/* The windows' datasets of a v2 file (when attribute window_s is there):
 * offsets from 0, non-decreasing, ending at the trajectory's rows; points in
 * [-1, 1]²; segment starts finite, ≥ 0 and within the track. */
static int read_windows(hid_t f, const char *file, mm_library *l, mm_err *err)
{
    double ws = 0, hs = 0;
    mm_err e2 = {0};
    if (!H5Aexists(f, "window_s")) return 0;
    if (mm_h5_attr_get_f64(f, "window_s", &ws, &e2) || mm_h5_attr_get_f64(f, "hop_s", &hs, &e2) || !(ws >= 0 && ws <= 3600) ||
        !(hs >= 0 && hs <= 3600))
        return mm_err_set(err, MM_EFORMAT, "%s: attributes window_s and hop_s must be seconds in [0, 3600]", file);
    l->window_s = ws;
    l->hop_s = hs;
    size_t n = l->n;
    const void *v_seg, *v_off, *v_tr;
    hsize_t g[2], w1[1] = {n}, w0[1] = {n + 1}, w2[2] = {0, 2};
    int rc;
    if ((rc = view(f, file, l, "tracks/segment_start", H5T_FLOAT, 8, 1, H5T_NATIVE_DOUBLE, 1, w1, g, &v_seg, err))) return rc;
    if ((rc = view(f, file, l, "tracks/traj_offset", H5T_INTEGER, 8, 1, H5T_NATIVE_INT64, 1, w0, g, &v_off, err))) return rc;
    if ((rc = view(f, file, l, "tracks/trajectory", H5T_FLOAT, 4, 1, H5T_NATIVE_FLOAT, 2, w2, g, &v_tr, err))) return rc;
    size_t m = (size_t)g[0];
    const int64_t *off = v_off;
    const double *seg = v_seg;
    const mm_va *tr = v_tr;
    if (off[0] != 0 || off[n] != (int64_t)m)
        return mm_err_set(err, MM_EFORMAT, "%s: tracks/traj_offset runs from %lld to %lld, expected 0 to %zu", file,
                          (long long)off[0], (long long)off[n], m);
    for (size_t i = 0; i < n; i++) {
        mm_library_track *t = &l->tracks[i];
        if (off[i + 1] < off[i] || off[i + 1] - off[i] > MM_WINDOWS_MAX || !isfinite(seg[i]) || seg[i] < 0 ||
            seg[i] > t->duration + 1e-6)
            return mm_err_set(err, MM_EFORMAT, "%s: track %zu (%s): window offsets or segment start out of range", file, i, t->path);
        t->n_windows = (size_t)(off[i + 1] - off[i]);
        t->trajectory = t->n_windows ? tr + off[i] : NULL;
        t->segment_start = seg[i];
    }
    for (size_t w = 0; w < m; w++)
        if (!(fabsf(tr[w].valence) <= 1) || !(fabsf(tr[w].arousal) <= 1))
            return mm_err_set(err, MM_EFORMAT, "%s: tracks/trajectory row %zu is outside [-1, 1]²", file, w);
    return 0;
}

/* The class table and shape attributes of a v2 file into l: class names
 * and points (owned by l from here), embedding_dim as l->dim, and the
 * index's grid side into *grid; all checked (check_classes). 0, or an
 * error code with err naming the file and what is wrong. */
static int read_v2_classes(hid_t f, const char *file, mm_library *l, int64_t *grid, mm_err *err)
{
    int rc;
    char **names = NULL;
    size_t k = 0;
    float *cva = NULL;
    int rank;
    hsize_t dims[4];
    if ((rc = read_strs(f, file, "classes/names", (size_t)-1, &names, &k, err))) goto done;
    if (k < 1 || k > MAX_CLASSES) { rc = mm_err_set(err, MM_EFORMAT, "%s: %zu classes, expected 1..%d", file, k, MAX_CLASSES); goto done; }
    if ((rc = mm_h5_read_f32(f, "classes/va", 2, &cva, &rank, dims, err))) goto done;
    if (dims[0] != k || dims[1] != 2) { rc = mm_err_set(err, MM_EFORMAT, "%s: dataset 'classes/va' is %llux%llu, expected %zux2", file, (unsigned long long)dims[0], (unsigned long long)dims[1], k); goto done; }
    l->n_classes = (int)k;
    l->class_names = names;
    names = NULL;
    if (!(l->class_va = mm_malloc(k, sizeof *l->class_va, err))) { rc = MM_ENOMEM; goto done; }
    for (size_t c = 0; c < k; c++) { l->class_va[c].valence = cva[2 * c]; l->class_va[c].arousal = cva[2 * c + 1]; }
    int64_t dim64 = 0;
    if (mm_h5_attr_get_i64(f, "embedding_dim", &dim64, err) || mm_h5_attr_get_i64(f, "grid", grid, err)) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: attributes embedding_dim and grid are required (format version 2)", file);
        goto done;
    }
    if (dim64 < 1 || dim64 > (int64_t)MAX_DIM || *grid < 1 || *grid > 1024) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: embedding_dim %lld, grid %lld", file, (long long)dim64, (long long)*grid);
        goto done;
    }
    l->dim = (size_t)dim64;
    if ((rc = check_classes((int)k, (const char *const *)l->class_names, l->class_va, l->dim, err))) { mm_err_prefix(err, "%s", file); goto done; }
done:
    if (names) mm_h5_free_strings(names, k);
    free(cva);
    return rc;
}

/* Map the file of f read-only into l->map (by its HDF5 name: dataset
 * offsets are from its start); left unmapped when that fails, and view()
 * then reads into memory instead. */
static void map_file(hid_t f, mm_library *l)
{
    char fname[PATH_MAX];
    ssize_t fnl = H5Fget_name(f, fname, sizeof fname);
    int fd = fnl > 0 && (size_t)fnl < sizeof fname ? open(fname, O_RDONLY) : -1;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) { l->map = m; l->map_len = (size_t)st.st_size; }
    }
    if (fd >= 0) close(fd);
}

/* The datasets of a v2 file, as view() gives them (in the mapping or owned
 * by the library); shapes in the comments, n tracks, k classes. */
typedef struct v2_views {
    size_t n;               /* tracks (rows of tracks/text_offset) */
    size_t text_len;        /* bytes of tracks/text */
    size_t kd;              /* similarity dimension (columns of index/sim) */
    const void *toff;       /* i64 (n, N_TEXT): offsets into text */
    const void *text;       /* u8 (text_len): NUL-terminated strings */
    const void *size, *mtime;                   /* i64 (n) */
    const void *dur;        /* f64 (n) */
    const void *proba;      /* f32 (n, k) */
    const void *va;         /* f32 (n, 2) */
    const void *conf;       /* f32 (n) */
    const void *quad, *top; /* i32 (n) */
    const void *by[3];      /* i64 (n): by_id, by_path, by_artist */
    const void *sim;        /* i8 (n, kd) */
    const void *inv;        /* f32 (n) */
    const void *basis;      /* f32 (dim, kd), or NULL when kd = dim */
    const void *order;      /* i32 (n) */
    const void *cells;      /* i64 (MM_VAINDEX_GROUPS·grid² + 1) */
} v2_views;

/* Every per-track and index dataset of a v2 file into *v, each checked for
 * type and shape against the others (l's class count and dimension, the
 * grid side); the basis also for finite values. 0, or an error code with
 * err naming the file and dataset. */
static int view_v2(hid_t f, const char *file, mm_library *l, int64_t grid, v2_views *v, mm_err *err)
{
    int rc;
    size_t k = (size_t)l->n_classes;
    hsize_t g[2], any[2] = {0, 0};
    if ((rc = view(f, file, l, "tracks/text_offset", H5T_INTEGER, 8, 1, H5T_NATIVE_INT64, 2, (hsize_t[]){0, N_TEXT}, g, &v->toff, err))) return rc;
    size_t n = (size_t)g[0];
    if (n > MAX_TRACKS) return mm_err_set(err, MM_EFORMAT, "%s: %zu tracks, at most %u", file, n, MAX_TRACKS);
    v->n = n;
    hsize_t w1[1] = {n}, w2[2] = {n, k};
    if ((rc = view(f, file, l, "tracks/text", H5T_INTEGER, 1, 0, H5T_NATIVE_UINT8, 1, any, g, &v->text, err))) return rc;
    v->text_len = (size_t)g[0];
    if ((rc = view(f, file, l, "tracks/size", H5T_INTEGER, 8, 1, H5T_NATIVE_INT64, 1, w1, g, &v->size, err))) return rc;
    if ((rc = view(f, file, l, "tracks/mtime", H5T_INTEGER, 8, 1, H5T_NATIVE_INT64, 1, w1, g, &v->mtime, err))) return rc;
    if ((rc = view(f, file, l, "tracks/duration", H5T_FLOAT, 8, 1, H5T_NATIVE_DOUBLE, 1, w1, g, &v->dur, err))) return rc;
    if ((rc = view(f, file, l, "tracks/proba", H5T_FLOAT, 4, 1, H5T_NATIVE_FLOAT, 2, w2, g, &v->proba, err))) return rc;
    w2[1] = 2;
    if ((rc = view(f, file, l, "tracks/va", H5T_FLOAT, 4, 1, H5T_NATIVE_FLOAT, 2, w2, g, &v->va, err))) return rc;
    if ((rc = view(f, file, l, "tracks/confidence", H5T_FLOAT, 4, 1, H5T_NATIVE_FLOAT, 1, w1, g, &v->conf, err))) return rc;
    if ((rc = view(f, file, l, "tracks/quadrant", H5T_INTEGER, 4, 1, H5T_NATIVE_INT32, 1, w1, g, &v->quad, err))) return rc;
    if ((rc = view(f, file, l, "tracks/top_class", H5T_INTEGER, 4, 1, H5T_NATIVE_INT32, 1, w1, g, &v->top, err))) return rc;
    static const char *const onames[3] = {"tracks/by_id", "tracks/by_path", "tracks/by_artist"};
    for (int o = 0; o < 3; o++)
        if ((rc = view(f, file, l, onames[o], H5T_INTEGER, 8, 1, H5T_NATIVE_INT64, 1, w1, g, &v->by[o], err))) return rc;
    w2[1] = 0;
    if ((rc = view(f, file, l, "index/sim", H5T_INTEGER, 1, 1, H5T_NATIVE_INT8, 2, w2, g, &v->sim, err))) return rc;
    size_t kd = (size_t)g[1];
    if (kd < 1 || kd > l->dim)
        return mm_err_set(err, MM_EFORMAT, "%s: similarity vectors of dimension %zu for embeddings of dimension %zu", file, kd, l->dim);
    v->kd = kd;
    if ((rc = view(f, file, l, "index/sim_inv_norm", H5T_FLOAT, 4, 1, H5T_NATIVE_FLOAT, 1, w1, g, &v->inv, err))) return rc;
    v->basis = NULL;
    if (mm_h5_exists(f, "index/basis")) {
        hsize_t wb[2] = {l->dim, kd};
        if ((rc = view(f, file, l, "index/basis", H5T_FLOAT, 4, 1, H5T_NATIVE_FLOAT, 2, wb, g, &v->basis, err))) return rc;
        for (size_t i = 0; i < l->dim * kd; i++)
            if (!isfinite(((const float *)v->basis)[i])) return mm_err_set(err, MM_EFORMAT, "%s: index/basis has a non-finite value", file);
    } else if (kd != l->dim) {
        return mm_err_set(err, MM_EFORMAT, "%s: similarity vectors of dimension %zu without index/basis for embeddings of dimension %zu", file, kd, l->dim);
    }
    if ((rc = view(f, file, l, "index/order", H5T_INTEGER, 4, 1, H5T_NATIVE_INT32, 1, w1, g, &v->order, err))) return rc;
    hsize_t wc[1] = {(hsize_t)MM_VAINDEX_GROUPS * grid * grid + 1};
    return view(f, file, l, "index/cell_start", H5T_INTEGER, 8, 1, H5T_NATIVE_INT64, 1, wc, g, &v->cells, err);
}

/* The tracks of a v2 file from its views: l->tracks (allocated here, their
 * strings pointing into v->text, their arrays into the views) and the
 * similarity and index arrays; text offsets, strings and every value
 * checked. Relative paths are resolved (resolve_track) into l->resolved.
 * 0, or an error code with err naming the file and track. */
static int read_v2_tracks(const char *file, mm_library *l, const v2_views *v, mm_err *err)
{
    int rc;
    size_t n = v->n, k = (size_t)l->n_classes, text_len = v->text_len;
    l->n = n;
    l->sim_dim = v->kd;
    l->sim = v->sim;
    l->sim_inv = v->inv;
    l->basis = v->basis;
    l->va = v->va;
    l->conf = v->conf;
    l->quad = v->quad;
    if (!(l->tracks = mm_calloc(n ? n : 1, sizeof *l->tracks, err))) return MM_ENOMEM;
    const int64_t *toff = v->toff;
    const char *text = v->text;
    if (n && (!text_len || text[text_len - 1] != 0)) return mm_err_set(err, MM_EFORMAT, "%s: tracks/text does not end with a NUL", file);
    for (size_t j = 0; j < n * N_TEXT; j++) {
        int64_t a = toff[j], b = j + 1 < n * N_TEXT ? toff[j + 1] : (int64_t)text_len;
        if (a < 0 || b <= a || (uint64_t)b > text_len || (j == 0 && a != 0) || text[b - 1] != 0)
            return mm_err_set(err, MM_EFORMAT, "%s: tracks/text_offset entry %zu (track %zu) is out of order or its string is not NUL-terminated", file, j, j / N_TEXT);
    }
    const float *proba = v->proba, *conf = v->conf, *inv = v->inv;
    const mm_va *va = v->va;
    const int32_t *quad = v->quad, *top = v->top;
    const int64_t *size = v->size, *mtime = v->mtime;
    const double *dur = v->dur;
    for (size_t i = 0; i < n; i++) {
        mm_library_track *t = &l->tracks[i];
        const int64_t *o = toff + i * N_TEXT;
        t->path = (char *)text + o[0];
        t->id = (char *)text + o[1];
        t->artist = (char *)text + o[2];
        t->title = (char *)text + o[3];
        t->true_label = (char *)text + o[4];
        t->size = size[i];
        t->mtime = mtime[i];
        t->duration = dur[i];
        t->proba = (float *)proba + i * k;
        t->embedding = NULL;
        t->va = va[i];
        t->top_class = top[i];
        t->quadrant = quad[i];
        t->confidence = conf[i];
        if (!t->path[0] || !t->id[0]) return mm_err_set(err, MM_EFORMAT, "%s: track %zu has no %s", file, i, t->path[0] ? "id" : "path");
        if ((rc = check_proba(t->proba, i, t->path, (int)k, err))) { mm_err_prefix(err, "%s", file); return rc; }
        if (!isfinite(t->duration) || t->duration < 0 || !(fabsf(t->va.valence) <= 1) || !(fabsf(t->va.arousal) <= 1) ||
            !(t->confidence >= 0 && t->confidence <= 1.0001f) || t->quadrant < 1 || t->quadrant > 4 ||
            t->top_class < 0 || t->top_class >= (int)k || !(inv[i] >= 0 && isfinite(inv[i])))
            return mm_err_set(err, MM_EFORMAT, "%s: track %zu (%s): duration, point, confidence, quadrant, class or similarity norm out of range",
                              file, i, t->path);
        if (t->path[0] != '/') {   /* written by another tool with relative paths: see resolve_track */
            if (!l->resolved && !(l->resolved = mm_calloc(n, sizeof *l->resolved, err))) return MM_ENOMEM;
            if (!(l->resolved[i] = resolve_track(file, t->path))) return mm_err_set(err, MM_ENOMEM, "out of memory");
            t->path = l->resolved[i];
        }
    }
    return 0;
}

/* The sort orders and the valence–arousal index of a v2 file into l (the
 * tracks read): each order checked to be a permutation (and by_path sorted,
 * re-sorted when paths were resolved at load), ids unique, artist ids
 * derived, and the index's cells checked (mm_vaindex_check) with its
 * cell-ordered copies of the points and confidences. 0, or an error code
 * with err naming the file and dataset. */
static int read_v2_orders(const char *file, mm_library *l, const v2_views *v, int64_t grid, mm_err *err)
{
    int rc;
    size_t n = l->n;
    /* sort orders (int64 read as size_t: same width, checked in range) */
    _Static_assert(sizeof(size_t) == sizeof(int64_t), "size_t is 64 bits");
    l->by_id = v->by[0];
    l->by_path = v->by[1];
    l->by_artist = v->by[2];
    if ((rc = check_order(l, file, "tracks/by_id", v->by[0], 0, err))) return rc;
    if ((rc = check_unique_ids(l, file, err))) return rc;
    /* which 3: a permutation only — paths resolved at load (relative in the file) need a new order */
    if ((rc = check_order(l, file, "tracks/by_path", v->by[1], l->resolved ? 3 : 1, err))) return rc;
    if (l->resolved) {
        size_t *bp = mm_malloc(n ? n : 1, sizeof *bp, err);
        if (own(l, bp, err)) return MM_ENOMEM;
        memcpy(bp, v->by[1], n * sizeof *bp);
        qsort_r(bp, n, sizeof *bp, cmp_path, l);
        l->by_path = bp;
    }
    if ((rc = check_order(l, file, "tracks/by_artist", v->by[2], 3, err))) return rc;
    if ((rc = artist_ids(l, file, err))) return rc;   /* and sorted */
    l->vx = (mm_vaindex){.grid = (int)grid, .n = n, .order = v->order, .cell_start = v->cells, .va = v->va, .conf = v->conf};
    mm_va *vo = mm_malloc(n ? n : 1, sizeof *vo, err);
    if (own(l, vo, err)) return MM_ENOMEM;
    float *co = mm_malloc(n ? n : 1, sizeof *co, err);
    if (own(l, co, err)) return MM_ENOMEM;
    if ((rc = mm_vaindex_check(&l->vx, v->quad, vo, co, err))) { mm_err_prefix(err, "%s", file); return rc; }
    l->vx.va_ord = vo;
    l->vx.conf_ord = co;
    return artist_ordered(l, err);
}

/* A v2 library file (mapped where it can be: map_file, view) into *out,
 * written only on success; the caller frees it with mm_library_free. 0, or
 * an error code with err naming the file and what is wrong. */
static int read_v2(hid_t f, const char *file, mm_library **out, mm_err *err)
{
    int64_t grid = 0;
    v2_views v = {0};
    mm_library *l = mm_calloc(1, sizeof *l, err);
    if (!l) return MM_ENOMEM;
    int rc = read_v2_classes(f, file, l, &grid, err);
    if (!rc) {
        map_file(f, l);
        rc = view_v2(f, file, l, grid, &v, err);
    }
    if (!rc) rc = read_v2_tracks(file, l, &v, err);
    if (!rc) rc = read_windows(f, file, l, err);
    if (!rc) rc = read_v2_orders(file, l, &v, grid, err);
    if (!rc) rc = read_failed_and_attrs(f, file, l, err);
    if (rc) {
        mm_library_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int mm_library_read(hid_t f, const char *file, mm_library **out, mm_err *err)
{
    int rc, ver = 0;
    if ((rc = mm_h5_check_format(f, MM_LIBRARY_FORMAT, MM_LIBRARY_VERSION, &ver, err))) {
        return mm_err_prefix(err, "%s", file);
    }
    return ver >= 2 ? read_v2(f, file, out, err) : read_v1(f, file, out, err);
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

typedef mm_libjob job;
typedef mm_libjobs joblist;

int mm_libjobs_push(joblist *jl, const char *path, const char *label, mm_err *err)
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

void mm_libjob_clear(job *j)
{
    free(j->path); free(j->label); free(j->artist); free(j->title); free(j->reason);
    free(j->t.id); free(j->t.artist); free(j->t.title);
    free(j->proba); free(j->emb); free(j->traj);
    memset(j, 0, sizeof *j);
}

static void free_jobs(joblist *jl)
{
    for (size_t i = 0; i < jl->n; i++) mm_libjob_clear(&jl->v[i]);
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
            rc = mm_libjobs_push(jl, p, depth == 1 ? top : NULL, err);
        } else if (has_ext(e->d_name, ext) && !S_ISDIR(lst.st_mode)) {
            rc = mm_libjobs_push(jl, p, depth == 1 ? top : NULL, err);   /* dangling link etc.: listed as failed */
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
        if ((rc = mm_libjobs_push(jl, abs, lab, err))) break;
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

/* TagLib (its C API, Debian libtagc0-dev) reads the tags of every common
 * format (ID3v1/v2, Vorbis comments, FLAC, MP4, APE, RIFF INFO). It is
 * compiled in when the build has pkg-config taglib_c's flags (its
 * -I.../taglib makes <tag_c.h> visible, and its -ltag_c comes with them);
 * without them tags come from libsndfile alone. */
#if defined(__has_include)
#if __has_include(<tag_c.h>)
#include <tag_c.h>
#define MM_TAGLIB 1
#endif
#endif

int mm_library_has_taglib(void)
{
#ifdef MM_TAGLIB
    return 1;
#else
    return 0;
#endif
}

/* Artist and title from TagLib; strings it returns are strdup'd copies
 * (string management off, set once before the threads start). */
static void read_taglib(const char *path, char **artist, char **title)
{
#ifdef MM_TAGLIB
    char *a = NULL, *t = NULL;
#pragma omp critical(mm_library_taglib)
    {   /* one file at a time: TagLib's type resolution keeps shared state */
        TagLib_File *f = taglib_file_new(path);
        if (f && taglib_file_is_valid(f)) {
            TagLib_Tag *tag = taglib_file_tag(f);
            if (tag) {
                a = taglib_tag_artist(tag);
                t = taglib_tag_title(tag);
            }
        }
        if (f) taglib_file_free(f);
    }
    if (a && a[0] && !*artist) { *artist = a; a = NULL; }
    if (t && t[0] && !*title) { *title = t; t = NULL; }
    free(a);
    free(t);
#else
    (void)path; (void)artist; (void)title;
#endif
}

/* Artist and title from the file's tags: TagLib when linked, then libsndfile. */
static void read_tags(const char *path, char **artist, char **title)
{
    read_taglib(path, artist, title);
    if (*artist && *title) return;
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

typedef mm_libmode index_mode;

/* Hash, reuse or classify one file. Thread-safe given a read-only `old`. */
static void index_one(job *j, const mm_bundle *b, const mm_library *old, int k, size_t dim, const index_mode *md)
{
    mm_err e = {0};
    struct stat st;
    j->old = -1;
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
        if (ot->embedding) memcpy(j->emb, ot->embedding, dim * sizeof *j->emb);
        else memset(j->emb, 0, dim * sizeof *j->emb);   /* v2: its similarity vector is reused instead */
        j->old = o;
        j->t.duration = ot->duration;
        j->t.segment_start = ot->segment_start;
        if (ot->n_windows && ot->trajectory) {
            if (!(j->traj = malloc(ot->n_windows * sizeof *j->traj))) { j->status = -1; j->reason = strdup("out of memory"); return; }
            memcpy(j->traj, ot->trajectory, ot->n_windows * sizeof *j->traj);
            j->t.n_windows = ot->n_windows;
        }
        j->status = 1;
    } else if (md->window_s > 0) {
        mm_windows w;
        if (mm_windows_classify(b, j->path, md->class_va, md->window_s, md->hop_s, 1, &w, &e)) {
            j->status = -1;
            j->reason = one_line(e.msg);
            return;
        }
        memcpy(j->proba, w.mean_proba, (size_t)k * sizeof *j->proba);
        memcpy(j->emb, w.embedding, dim * sizeof *j->emb);
        j->t.duration = w.duration;
        j->t.segment_start = w.start[w.best];
        j->t.n_windows = w.n;
        j->traj = w.va;   /* taken over */
        w.va = NULL;
        mm_windows_free(&w);
        j->status = 0;
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

/* The bundle's k class names into names[k] (borrowed from b) and their
 * valence–arousal points from va into cva[k] (both arrays the caller's).
 * 0, or an error code with err naming the bundle (bundle_path, or
 * "bundle") when a label has no point. */
static int class_points(const mm_bundle *b, const char *bundle_path, const mm_va_table *va, int k,
                        const char **names, mm_va *cva, mm_err *err)
{
    for (int c = 0; c < k; c++) names[c] = mm_bundle_class_name(b, c);
    int rc = mm_va_label_points(va, names, k, cva, err);
    if (rc)
        mm_err_prefix(err, "%s: the music model's labels need valence–arousal points (configs/recommend)",
                      bundle_path ? bundle_path : "bundle");
    return rc;
}

/* The files to index into jl, sorted by path: a folder source walked for
 * the extensions of p (default_ext when none), artist and title joined
 * from p->metadata or the folder's metadata.csv when readable; any other
 * source is a manifest (read_manifest; a path listed twice is an error),
 * joined with p->metadata when given. 0, or an error code with err naming
 * the source, manifest or metadata file. */
static int list_files(const char *source, const mm_library_index_params *p, joblist *jl, mm_err *err)
{
    int rc;
    struct stat st;
    if (stat(source, &st) != 0) return mm_err_set(err, MM_EIO, "%s: %s", source, strerror(errno));
    const char *const *ext = p->extensions ? p->extensions : default_ext;
    if (S_ISDIR(st.st_mode)) {
        char top[PATH_MAX];   /* absolute, so that the stored paths work from anywhere */
        if (!realpath(source, top)) return mm_err_set(err, MM_EIO, "%s: %s", source, strerror(errno));
        if ((rc = walk(top, 0, NULL, ext, jl, err))) return rc;
        if (jl->n) qsort(jl->v, jl->n, sizeof *jl->v, cmp_job);
        char meta[4096];
        const char *mp = p->metadata;
        if (!mp) {
            snprintf(meta, sizeof meta, "%s%smetadata.csv", source, source[strlen(source) - 1] == '/' ? "" : "/");
            if (access(meta, R_OK) == 0) mp = meta;
        }
        if (mp && (rc = join_metadata(jl, mp, p->key_column, err))) return rc;
    } else {
        if ((rc = read_manifest(source, jl, err))) return rc;
        if (jl->n) qsort(jl->v, jl->n, sizeof *jl->v, cmp_job);
        for (size_t i = 1; i < jl->n; i++)
            if (!strcmp(jl->v[i].path, jl->v[i - 1].path)) return mm_err_set(err, MM_EINVAL, "%s: '%s' listed twice", source, jl->v[i].path);
        if (p->metadata && (rc = join_metadata(jl, p->metadata, p->key_column, err))) return rc;
    }
    return 0;
}

/* The library already at out_path into *old (the caller frees it), and
 * *reusable = 1 when its tracks may be reused: the same bundle (SHA-256),
 * the same class names and dimension, and the same windows as r. 0, or
 * MM_EFORMAT with err set when the file is not a readable library. */
int mm_librun_open_previous(const mm_librun *r, const char *out_path, mm_library **old, int *reusable, mm_err *err)
{
    mm_err e = {0};
    if (mm_library_open(out_path, old, &e))
        return mm_err_set(err, MM_EFORMAT, "%s exists and is not a readable library (%s); remove it or choose another output",
                          out_path, e.msg);
    mm_library *o = *old;
    int ok = !strcmp(mm_library_bundle_sha256(o), r->bsha) && o->n_classes == r->k && o->dim == r->dim &&
             o->window_s == r->md.window_s && o->hop_s == r->md.hop_s;   /* other windows: classify again */
    for (int c = 0; ok && c < r->k; c++) ok = !strcmp(o->class_names[c], r->names[c]);
    *reusable = ok;
    return 0;
}

/* See library_run.h; each job writes only its own slot. */
void mm_librun_classify(mm_librun *r, const mm_bundle *b, const mm_library *old, const size_t *items, size_t m,
                        const mm_library_index_params *p)
{
#ifdef MM_TAGLIB
    taglib_set_string_management_enabled(0);   /* we free what it returns */
#endif
    int nt = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
    size_t done_count = 0;
    joblist *jl = &r->jl;
    if (!items) m = jl->n;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t i = 0; i < m; i++) {
        job *j = &jl->v[items ? items[i] : i];
        index_one(j, b, old, r->k, r->dim, &r->md);
        if (p->progress) {
#pragma omp critical(mm_library_progress)
            p->progress(p->progress_ctx, ++done_count, m, j->path);
        }
    }
}

/* The new library from the classified jobs, in path order, into *out (the
 * caller frees it): the indexed tracks copied, the failed files listed
 * with their reasons, the model name, bundle SHA-256 and windows of r
 * recorded; s->n_unchanged, n_new, n_indexed, n_failed, n_short and audio_s
 * counted. Lookups and the similarity index are not built yet. 0, or an
 * error code with err set (MM_EDATA naming source and the first file when
 * none was indexed). */
static int assemble(mm_librun *r, mm_library_index_stats *s, mm_library **out, mm_err *err)
{
    int rc = 0;
    joblist *jl = &r->jl;
    size_t n_ok = 0, n_fail = 0;
    for (size_t i = 0; i < jl->n; i++) {
        if (jl->v[i].status >= 0) n_ok++; else n_fail++;
    }
    if (!n_ok)
        return mm_err_set(err, MM_EDATA, "%s: none of the %zu audio files could be indexed (first: %s: %s)",
                          r->source, jl->n, jl->v[0].path, jl->v[0].reason ? jl->v[0].reason : "?");
    mm_library *lib = lib_alloc(n_ok, r->k, (const char *const *)r->names, r->cva, r->dim, err);
    if (!lib) return err ? err->code : MM_ENOMEM;
    lib->failed_path = mm_calloc(n_fail ? n_fail : 1, sizeof *lib->failed_path, err);
    lib->failed_reason = mm_calloc(n_fail ? n_fail : 1, sizeof *lib->failed_reason, err);
    lib->model_name = xstrdup(r->model_name);
    lib->window_s = r->md.window_s;
    lib->hop_s = r->md.hop_s;
    lib->bundle_sha = xstrdup(r->bsha);
    if (!lib->failed_path || !lib->failed_reason || !lib->model_name || !lib->bundle_sha) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    size_t w = 0;
    for (size_t i = 0; i < jl->n && !rc; i++) {
        job *j = &jl->v[i];
        if (j->status < 0) {
            size_t f = lib->n_failed++;
            lib->failed_path[f] = xstrdup(j->path);
            lib->failed_reason[f] = xstrdup(j->reason ? j->reason : "unknown error");
            if (!lib->failed_path[f] || !lib->failed_reason[f]) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
            continue;
        }
        if (j->status == 1) s->n_unchanged++; else { s->n_new++; s->audio_s += j->t.duration; }
        if (r->md.window_s > 0 && j->t.duration < r->md.window_s - r->md.hop_s / 2) s->n_short++;
        mm_library_track t = j->t;
        t.path = j->path;
        t.true_label = j->label ? j->label : "";
        t.proba = j->proba;
        t.embedding = j->emb;
        t.trajectory = j->traj;
        rc = copy_track(lib, w++, &t, err);
    }
    if (rc) { mm_library_free(lib); return rc; }
    s->n_indexed = n_ok;
    s->n_failed = n_fail;
    *out = lib;
    return 0;
}

/* Tracks of the previous library old whose paths are not among the jobs. */
static size_t count_removed(const mm_library *old, const joblist *jl)
{
    size_t n = 0;
    for (size_t i = 0; i < old->n; i++) {
        job probe = {.path = old->tracks[i].path};
        if (!bsearch(&probe, jl->v, jl->n, sizeof *jl->v, cmp_job)) n++;
    }
    return n;
}

/* Copy the similarity vectors and norms of the tracks reused from old (a
 * v2 library whose basis lib's index was built with) into lib's index, row
 * by row in job order (failed jobs have no row). */
static void lend_similarity(mm_library *lib, const mm_library *old, const joblist *jl)
{
    size_t kd = lib->sim_dim, r = 0;
    for (size_t i = 0; i < jl->n; i++) {
        if (jl->v[i].status < 0) continue;
        if (jl->v[i].status == 1 && jl->v[i].old >= 0) {
            memcpy((int8_t *)lib->sim + r * kd, old->sim + (size_t)jl->v[i].old * kd, kd);
            ((float *)lib->sim_inv)[r] = old->sim_inv[jl->v[i].old];
        }
        r++;
    }
}

int mm_librun_finish(mm_librun *r, const mm_library *old, int reusable, const char *out_path,
                     mm_library_index_stats *stats, mm_err *err)
{
    mm_library_index_stats s = {.n_files = r->jl.n};
    mm_library *lib = NULL;
    int rc = assemble(r, &s, &lib, err);
    if (rc) return rc;
    if (old) s.n_removed = count_removed(old, &r->jl);
    if ((rc = build_lookup(lib, out_path, err))) goto done;
    /* similarity vectors: a previous v2 library (no embeddings kept) lends
     * its basis and the vectors of the tracks reused from it */
    int lend = reusable && old && !old->emb && s.n_unchanged;
    if ((rc = build_index(lib, lend ? old->basis : NULL, lend ? old->sim_dim : 0, err))) goto done;
    if (lend) lend_similarity(lib, old, &r->jl);
    if ((rc = save_to(lib, out_path, r->source, err))) goto done;
    if (stats) *stats = s;
done:
    mm_library_free(lib);
    return rc;
}

int mm_librun_init(mm_librun *r, int k, const char *const *names, const mm_va *cva, size_t dim,
                   const char *model_name, const char *bsha, double window_s, double hop_s, mm_err *err)
{
    memset(r, 0, sizeof *r);
    if (k < 1 || k > MAX_CLASSES || dim < 1 || dim > MAX_DIM)
        return mm_err_set(err, MM_EINVAL, "index: bundle has %d classes and %zu features", k, dim);
    r->k = k;
    r->dim = dim;
    r->names = mm_calloc((size_t)k, sizeof *r->names, err);
    r->cva = mm_malloc((size_t)k, sizeof *r->cva, err);
    r->model_name = xstrdup(model_name);
    if (!r->names || !r->cva || !r->model_name) return MM_ENOMEM;
    for (int c = 0; c < k; c++)
        if (!(r->names[c] = xstrdup(names ? names[c] : ""))) return mm_err_set(err, MM_ENOMEM, "out of memory");
    if (cva) memcpy(r->cva, cva, (size_t)k * sizeof *r->cva);
    snprintf(r->bsha, sizeof r->bsha, "%s", bsha ? bsha : "");
    r->md = (mm_libmode){.window_s = window_s, .hop_s = hop_s, .class_va = r->cva};
    return 0;
}

void mm_librun_free(mm_librun *r)
{
    if (!r) return;
    free_strv(r->names, r->names ? (size_t)r->k : 0);
    free(r->cva);
    free(r->model_name);
    free_jobs(&r->jl);
    memset(r, 0, sizeof *r);
}

int mm_librun_prepare(const mm_bundle *b, const char *bundle_path, const mm_va_table *va, const char *source,
                      const mm_library_index_params *p, mm_librun *r, mm_err *err)
{
    memset(r, 0, sizeof *r);
    if (!b || !source) return mm_err_set(err, MM_EINVAL, "index: bundle, source and output are required");
    if (p->window_s < 0 || p->window_s > 3600 || !isfinite(p->window_s) || !isfinite(p->hop_s) || p->hop_s > 3600)
        return mm_err_set(err, MM_EINVAL, "index: window %g s, hop %g s: expected a window in [0, 3600] s (0: whole files) and a hop up to 3600 s",
                          p->window_s, p->hop_s);
    int rc, k = mm_bundle_n_classes(b);
    double hop = p->window_s > 0 ? (p->hop_s > 0 ? p->hop_s : p->window_s / 2) : 0;
    const char **names = mm_malloc(k > 0 ? (size_t)k : 1, sizeof *names, err);
    mm_va *cva = mm_malloc(k > 0 ? (size_t)k : 1, sizeof *cva, err);
    if (!names || !cva) rc = MM_ENOMEM;
    else if (!(rc = mm_librun_init(r, k, NULL, NULL, mm_bundle_dim(b), mm_bundle_model_name(b), NULL, p->window_s, hop, err)) &&
             !(rc = class_points(b, bundle_path, va, k, names, cva, err))) {
        for (int c = 0; c < k && !rc; c++) {
            free(r->names[c]);
            if (!(r->names[c] = strdup(names[c]))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        }
        memcpy(r->cva, cva, (size_t)k * sizeof *cva);
    }
    free(names);
    free(cva);
    if (rc) return rc;
    r->source = source;
    if (bundle_path && (rc = mm_sha256_file(bundle_path, r->bsha, err))) return rc;
    if ((rc = list_files(source, p, &r->jl, err))) return rc;
    if (!r->jl.n) return mm_err_set(err, MM_EDATA, "%s: no audio files found", source);
    return 0;
}

int mm_library_index(const mm_bundle *b, const char *bundle_path, const mm_va_table *va,
                     const char *source, const char *out_path,
                     const mm_library_index_params *pin, mm_library_index_stats *stats,
                     mm_err *err)
{
    mm_library_index_params p;
    if (pin) p = *pin; else mm_library_index_params_default(&p);
    if (!out_path) return mm_err_set(err, MM_EINVAL, "index: bundle, source and output are required");
    mm_librun r;
    mm_library *old = NULL;
    int reusable = 0;     /* the previous library came from the same bundle */
    int rc = mm_librun_prepare(b, bundle_path, va, source, &p, &r, err);
    if (!rc && p.reuse && access(out_path, F_OK) == 0) rc = mm_librun_open_previous(&r, out_path, &old, &reusable, err);
    if (!rc) {
        mm_librun_classify(&r, b, reusable ? old : NULL, NULL, 0, &p);
        rc = mm_librun_finish(&r, old, reusable, out_path, stats, err);
    }
    mm_library_free(old);
    mm_librun_free(&r);
    return rc;
}
