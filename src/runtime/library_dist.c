/* library_dist.c — `melodic index` scaled out as extraction is: --shard I/N
 * parts and their merge, and one job under mpirun (src/mpi: sched.h hands
 * out files largest first, shard.h deals static shares). Every share lists
 * the same files (sorted by path), classifies its own, and ships each job's
 * result as bytes (mm_libjob_pack); the library is then assembled by
 * library.c's mm_librun_finish from all jobs in path order, so the PCA
 * basis, the int8 vectors and the valence–arousal grid are computed over
 * the whole library and every dataset equals a single process's.
 * Leaves out reusing a previous library in --shard parts (each part
 * classifies its share afresh; mpirun and one process reuse as usual).
 */
#include "runtime/library.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sha256.h"
#include "io/h5.h"
#include "mpi/mpi.h"
#include "mpi/sched.h"
#include "mpi/shard.h"
#include "runtime/library_run.h"

#define PART_FORMAT "melodic-library-part"
#define PART_VERSION 1

/* ---- a job's result as bytes --------------------------------------------
 * i32 status, i64 old, size, mtime, n_windows; f64 duration, segment_start;
 * f32 proba (k), emb (dim), trajectory (2·n_windows); then NUL-terminated
 * path, label, reason, id, artist, title ("" for none). */

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} wbuf;

static void put(wbuf *w, const void *x, size_t n)
{
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t nc = (w->n + n) * 2 + 256;
        unsigned char *np = realloc(w->p, nc);
        if (!np) { w->oom = 1; return; }
        w->p = np;
        w->cap = nc;
    }
    if (n) memcpy(w->p + w->n, x, n);
    w->n += n;
}

static void put_str(wbuf *w, const char *s)
{
    put(w, s ? s : "", strlen(s ? s : "") + 1);
}

/* Append j's bytes to w (w->oom on failure). */
static void put_job(wbuf *w, const mm_libjob *j, int k, size_t dim)
{
    int32_t st = j->status;
    int64_t h[4] = {j->old, j->t.size, j->t.mtime, j->status < 0 ? 0 : (int64_t)j->t.n_windows};
    double d[2] = {j->t.duration, j->t.segment_start};
    put(w, &st, sizeof st);
    put(w, h, sizeof h);
    put(w, d, sizeof d);
    if (j->status >= 0) {
        put(w, j->proba, (size_t)k * sizeof(float));
        put(w, j->emb, dim * sizeof(float));
        for (size_t i = 0; i < (size_t)h[3]; i++) {
            float v[2] = {j->traj[i].valence, j->traj[i].arousal};
            put(w, v, sizeof v);
        }
    }
    const char *s[6] = {j->path, j->label, j->reason, j->t.id, j->t.artist, j->t.title};
    for (int i = 0; i < 6; i++) put_str(w, s[i]);
}

int mm_libjob_pack(const mm_libjob *j, int k, size_t dim, unsigned char **out, size_t *len, mm_err *err)
{
    wbuf w = {0};
    put_job(&w, j, k, dim);
    if (w.oom) { free(w.p); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    *out = w.p;
    *len = w.n;
    return 0;
}

/* The next NUL-terminated string at *pos (< len), strdup'd; NULL for ""
 * when empty_null. 0, or -1 when it runs past len or out of memory. */
static int take_str(const unsigned char *data, size_t len, size_t *pos, int empty_null, char **out)
{
    const unsigned char *e = *pos < len ? memchr(data + *pos, 0, len - *pos) : NULL;
    if (!e) return -1;
    const char *s = (const char *)data + *pos;
    *pos = (size_t)(e - data) + 1;
    *out = empty_null && !s[0] ? NULL : strdup(s);
    return !*out && !(empty_null && !s[0]) ? -1 : 0;
}

int mm_libjob_unpack(mm_libjob *j, int k, size_t dim, const unsigned char *data, size_t len, mm_err *err)
{
    int32_t st;
    int64_t h[4];
    double d[2];
    size_t head = sizeof st + sizeof h + sizeof d, pos = head;
    if (len < head) return mm_err_set(err, MM_EFORMAT, "job record of %zu bytes, expected at least %zu", len, head);
    memcpy(&st, data, sizeof st);
    memcpy(h, data + sizeof st, sizeof h);
    memcpy(d, data + sizeof st + sizeof h, sizeof d);
    if (st < -1 || st > 1 || h[3] < 0 || h[3] > (int64_t)(len / 8) || (st >= 0 && (h[1] < 0 || !isfinite(d[0]))))
        return mm_err_set(err, MM_EFORMAT, "job record: status %d, %lld windows: not a job of melodic index", (int)st, (long long)h[3]);
    mm_libjob_clear(j);
    j->status = st;
    j->old = (long)h[0];
    j->t.size = h[1];
    j->t.mtime = h[2];
    j->t.n_windows = (size_t)h[3];
    j->t.duration = d[0];
    j->t.segment_start = d[1];
    if (st >= 0) {
        size_t need = ((size_t)k + dim + 2 * j->t.n_windows) * sizeof(float);
        if (len - pos < need) return mm_err_set(err, MM_EFORMAT, "job record of %zu bytes, expected more than %zu", len, head + need);
        j->proba = malloc((size_t)k * sizeof *j->proba);
        j->emb = malloc(dim * sizeof *j->emb);
        j->traj = j->t.n_windows ? malloc(j->t.n_windows * sizeof *j->traj) : NULL;
        if (!j->proba || !j->emb || (j->t.n_windows && !j->traj)) return mm_err_set(err, MM_ENOMEM, "out of memory");
        memcpy(j->proba, data + pos, (size_t)k * sizeof(float));
        pos += (size_t)k * sizeof(float);
        memcpy(j->emb, data + pos, dim * sizeof(float));
        pos += dim * sizeof(float);
        for (size_t i = 0; i < j->t.n_windows; i++, pos += 2 * sizeof(float)) {
            memcpy(&j->traj[i].valence, data + pos, sizeof(float));
            memcpy(&j->traj[i].arousal, data + pos + sizeof(float), sizeof(float));
        }
    }
    char **s[6] = {&j->path, &j->label, &j->reason, &j->t.id, &j->t.artist, &j->t.title};
    for (int i = 0; i < 6; i++)
        if (take_str(data, len, &pos, i == 1 || i == 2 || st < 0, s[i]))
            return mm_err_set(err, MM_EFORMAT, "job record: string %d runs past its %zu bytes", i, len);
    if (!j->path || (st >= 0 && (!j->t.id || !j->t.artist || !j->t.title)))
        return mm_err_set(err, MM_EFORMAT, "job record without a path or track id");
    return 0;
}

/* ---- --shard I/N parts ---------------------------------------------------- */

/* SHA-256 (hex) of the run's sorted file list: parts of one listing agree. */
static void files_fingerprint(const mm_librun *r, char hex[65])
{
    mm_sha256 h;
    mm_sha256_init(&h);
    for (size_t i = 0; i < r->jl.n; i++) mm_sha256_update(&h, r->jl.v[i].path, strlen(r->jl.v[i].path) + 1);
    mm_sha256_hex(&h, hex);
}

/* File sizes of the jobs (0 when stat fails: such files fail fast). */
static uint64_t *job_sizes(const mm_librun *r, mm_err *err)
{
    uint64_t *sz = mm_calloc(r->jl.n ? r->jl.n : 1, sizeof *sz, err);
    struct stat st;
    for (size_t i = 0; sz && i < r->jl.n; i++)
        if (stat(r->jl.v[i].path, &st) == 0) sz[i] = (uint64_t)st.st_size;
    return sz;
}

/* The run's facts as attributes and /classes of a part file. */
static int write_part_head(hid_t f, const mm_librun *r, int index, int count, mm_err *err)
{
    char fp[65];
    files_fingerprint(r, fp);
    float *cva = mm_malloc((size_t)r->k * 2, sizeof *cva, err);
    if (!cva) return MM_ENOMEM;
    for (int c = 0; c < r->k; c++) { cva[2 * c] = r->cva[c].valence; cva[2 * c + 1] = r->cva[c].arousal; }
    hsize_t d2[2] = {(hsize_t)r->k, 2};
    int rc = mm_h5_stamp_format(f, PART_FORMAT, PART_VERSION, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "shard_index", index, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "shard_count", count, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "n_files", (int64_t)r->jl.n, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "files_sha256", fp, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "model", r->model_name, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "bundle_sha256", r->bsha, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "source", r->source ? r->source : "", err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "embedding_dim", (int64_t)r->dim, err);
    if (!rc) rc = mm_h5_attr_set_f64(f, "window_s", r->md.window_s, err);
    if (!rc) rc = mm_h5_attr_set_f64(f, "hop_s", r->md.hop_s, err);
    if (!rc) rc = mm_h5_write_strings(f, "classes/names", (const char *const *)r->names, (size_t)r->k, err);
    if (!rc) rc = mm_h5_write_f32(f, "classes/va", cva, 2, d2, err);
    free(cva);
    return rc;
}

/* Jobs rows[0..m) of r, packed, as /part/rows (m) i64, /part/offset (m + 1)
 * i64 and /part/blob u8. */
static int write_part_rows(hid_t f, const mm_librun *r, const size_t *rows, size_t m, mm_err *err)
{
    int64_t *ri = mm_malloc(m ? m : 1, sizeof *ri, err), *off = mm_malloc(m + 1, sizeof *off, err);
    wbuf w = {0};
    int rc = ri && off ? 0 : MM_ENOMEM;
    if (off) off[0] = 0;
    for (size_t i = 0; i < m && !rc; i++) {
        put_job(&w, &r->jl.v[rows[i]], r->k, r->dim);
        ri[i] = (int64_t)rows[i];
        off[i + 1] = (int64_t)w.n;
    }
    if (!rc && w.oom) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    hsize_t dm[1] = {m}, dm1[1] = {m + 1};
    if (!rc) rc = mm_h5_write_i64(f, "part/rows", ri, 1, dm, err);
    if (!rc) rc = mm_h5_write_i64(f, "part/offset", off, 1, dm1, err);
    if (!rc) rc = mm_h5_write_u8(f, "part/blob", w.p ? w.p : (const uint8_t *)"", w.n, err);
    free(ri); free(off); free(w.p);
    return rc;
}

int mm_library_index_shard(const mm_bundle *b, const char *bundle_path, const mm_va_table *va, const char *source,
                           const char *part_path, int shard_index, int shard_count,
                           const mm_library_index_params *pin, mm_library_index_stats *stats, mm_err *err)
{
    mm_library_index_params p;
    if (pin) p = *pin; else mm_library_index_params_default(&p);
    mm_librun r;
    uint64_t *sz = NULL;
    int *owner = NULL;
    size_t *rows = NULL, m = 0;
    mm_h5_out out = {0};
    int rc = mm_librun_prepare(b, bundle_path, va, source, &p, &r, err);
    if (!rc && (shard_index < 1 || shard_index > shard_count || (size_t)shard_count > r.jl.n))
        rc = mm_err_set(err, MM_EINVAL, "--shard %d/%d: %d shards for %zu files; use at most %zu shards", shard_index,
                        shard_count, shard_count, r.jl.n, r.jl.n);
    if (!rc && !(sz = job_sizes(&r, err))) rc = MM_ENOMEM;
    if (!rc) {
        owner = mm_malloc(r.jl.n, sizeof *owner, err);
        rows = mm_malloc(r.jl.n, sizeof *rows, err);
        if (!owner || !rows) rc = MM_ENOMEM;
    }
    if (!rc) {
        mm_shard_assign(sz, r.jl.n, shard_count, owner);
        for (size_t i = 0; i < r.jl.n; i++)
            if (owner[i] == shard_index - 1) rows[m++] = i;
        mm_librun_classify(&r, b, NULL, rows, m, &p);
        rc = mm_h5_create(part_path, &out, err);
    }
    if (!rc) {
        if (!(rc = write_part_head(out.file, &r, shard_index, shard_count, err)) &&
            !(rc = write_part_rows(out.file, &r, rows, m, err)))
            rc = mm_h5_commit(&out, err);
        else
            mm_h5_abort(&out);
    }
    if (!rc && stats) {
        mm_library_index_stats s = {.n_files = m};
        for (size_t i = 0; i < m; i++) {
            const mm_libjob *j = &r.jl.v[rows[i]];
            if (j->status < 0) { s.n_failed++; continue; }
            s.n_indexed++;
            s.n_new++;
            s.audio_s += j->t.duration;
            if (r.md.window_s > 0 && j->t.duration < r.md.window_s - r.md.hop_s / 2) s.n_short++;
        }
        *stats = s;
    }
    free(sz); free(owner); free(rows);
    mm_librun_free(&r);
    return rc;
}

/* ---- merging parts ---------------------------------------------------------- */

/* What a part says about its run, read from its attributes and /classes. */
typedef struct part_head {
    const char *path;
    int64_t index, count, n_files, dim;
    char *fp, *model, *bsha, *source;
    double window_s, hop_s;
    char **names;
    size_t k;
    float *cva;     /* (k, 2) */
    int cva_rank;
    hsize_t cva_dims[4];
} part_head;

static void part_head_free(part_head *h)
{
    free(h->fp); free(h->model); free(h->bsha); free(h->source); free(h->cva);
    mm_h5_free_strings(h->names, h->k);
    memset(h, 0, sizeof *h);
}

static int read_part_head(hid_t f, const char *path, part_head *h, mm_err *err)
{
    int ver = 0, rc;
    h->path = path;
    if (mm_h5_check_format(f, PART_FORMAT, PART_VERSION, &ver, err))
        return mm_err_set(err, MM_EFORMAT, "%s: not a part file of `melodic index --shard` (format %s expected)", path, PART_FORMAT);
    if ((rc = mm_h5_attr_get_i64(f, "shard_index", &h->index, err)) || (rc = mm_h5_attr_get_i64(f, "shard_count", &h->count, err)) ||
        (rc = mm_h5_attr_get_i64(f, "n_files", &h->n_files, err)) || (rc = mm_h5_attr_get_i64(f, "embedding_dim", &h->dim, err)) ||
        (rc = mm_h5_attr_get_str(f, "files_sha256", &h->fp, err)) || (rc = mm_h5_attr_get_str(f, "model", &h->model, err)) ||
        (rc = mm_h5_attr_get_str(f, "bundle_sha256", &h->bsha, err)) || (rc = mm_h5_attr_get_str(f, "source", &h->source, err)) ||
        (rc = mm_h5_attr_get_f64(f, "window_s", &h->window_s, err)) || (rc = mm_h5_attr_get_f64(f, "hop_s", &h->hop_s, err)) ||
        (rc = mm_h5_read_strings(f, "classes/names", &h->names, &h->k, err)) ||
        (rc = mm_h5_read_f32(f, "classes/va", 2, &h->cva, &h->cva_rank, h->cva_dims, err))) {
        mm_err_prefix(err, "%s", path);
        return rc;
    }
    if (h->count < 1 || h->index < 1 || h->index > h->count || h->n_files < h->count || h->n_files > MM_LIBRARY_MAX_TRACKS ||
        h->k < 1 || h->cva_dims[0] != h->k || h->cva_dims[1] != 2 || h->dim < 1 || h->dim > (1 << 20))
        return mm_err_set(err, MM_EFORMAT, "%s: shard %lld/%lld of %lld files, %zu classes, dimension %lld: not a consistent part",
                          path, (long long)h->index, (long long)h->count, (long long)h->n_files, h->k, (long long)h->dim);
    return 0;
}

/* 0 when b belongs to the same run as a (same listing, bundle, classes,
 * windows, shard count), else an error naming both and what differs. */
static int same_run(const part_head *a, const part_head *b, mm_err *err)
{
    const char *what = strcmp(a->fp, b->fp) || a->n_files != b->n_files ? "file lists"
                       : strcmp(a->bsha, b->bsha) || strcmp(a->model, b->model) || a->dim != b->dim ? "bundles"
                       : a->window_s != b->window_s || a->hop_s != b->hop_s ? "windows"
                       : a->count != b->count ? "shard counts" : NULL;
    for (size_t c = 0; !what && c < a->k; c++)
        if (a->k != b->k || strcmp(a->names[c], b->names[c]) || memcmp(a->cva + 2 * c, b->cva + 2 * c, 2 * sizeof(float)))
            what = "classes";
    if (what) return mm_err_set(err, MM_EINVAL, "%s and %s come from different index runs (their %s differ); merge the parts of one run only",
                                a->path, b->path, what);
    if (a->index == b->index)
        return mm_err_set(err, MM_EINVAL, "shard %lld/%lld given twice: %s and %s", (long long)a->index, (long long)a->count, a->path, b->path);
    return 0;
}

/* The rows of part f into r's jobs (each row once, within n_files). */
static int read_part_rows(hid_t f, const char *path, mm_librun *r, mm_err *err)
{
    int64_t *rows = NULL, *off = NULL;
    uint8_t *blob = NULL;
    size_t nb = 0;
    int rank = 0;
    hsize_t dr[4], dofs[4];
    int rc = mm_h5_read_i64(f, "part/rows", 1, &rows, &rank, dr, err);
    if (!rc) rc = mm_h5_read_i64(f, "part/offset", 1, &off, &rank, dofs, err);
    if (!rc) rc = mm_h5_read_u8(f, "part/blob", &blob, &nb, err);
    if (!rc && dofs[0] != dr[0] + 1) rc = mm_err_set(err, MM_EFORMAT, "part/offset has %llu entries, expected %llu", (unsigned long long)dofs[0], (unsigned long long)dr[0] + 1);
    for (size_t i = 0; !rc && i < dr[0]; i++) {
        if (rows[i] < 0 || (size_t)rows[i] >= r->jl.n || off[i] < 0 || off[i] > off[i + 1] || (uint64_t)off[i + 1] > nb)
            rc = mm_err_set(err, MM_EFORMAT, "part row %zu: file %lld at bytes %lld..%lld of %zu: out of range", i,
                            (long long)rows[i], (long long)off[i], (long long)off[i + 1], nb);
        else if (r->jl.v[rows[i]].path)
            rc = mm_err_set(err, MM_EINVAL, "file %lld is in two parts", (long long)rows[i]);
        else
            rc = mm_libjob_unpack(&r->jl.v[rows[i]], r->k, r->dim, blob + off[i], (size_t)(off[i + 1] - off[i]), err);
    }
    if (rc) mm_err_prefix(err, "%s", path);
    free(rows); free(off); free(blob);
    return rc;
}

/* Shards 1..count not among heads[0..n), as "2, 5" into buf (empty: none). */
static void missing_shards(const part_head *h, size_t n, char *buf, size_t size)
{
    buf[0] = 0;
    for (int64_t s = 1; s <= h[0].count; s++) {
        size_t i = 0;
        while (i < n && h[i].index != s) i++;
        size_t l = strlen(buf);
        if (i == n && l + 24 < size) snprintf(buf + l, size - l, "%s%lld", l ? ", " : "", (long long)s);
    }
}

int mm_library_merge(const char *const *parts, size_t n, const char *out_path, mm_library_index_stats *stats, mm_err *err)
{
    if (!n || !out_path) return mm_err_set(err, MM_EINVAL, "merge: expected part files and an output");
    part_head *h = mm_calloc(n, sizeof *h, err);
    hid_t *f = mm_malloc(n, sizeof *f, err);
    mm_librun r = {0};
    int rc = h && f ? 0 : MM_ENOMEM;
    size_t opened = 0;
    for (; !rc && opened < n; opened++) {
        if ((rc = mm_h5_open_read(parts[opened], &f[opened], err))) break;
        if ((rc = read_part_head(f[opened], parts[opened], &h[opened], err))) { opened++; break; }
        for (size_t j = 0; j < opened && !rc; j++) rc = same_run(&h[j], &h[opened], err);
    }
    if (!rc) {
        char miss[512];
        missing_shards(h, n, miss, sizeof miss);
        if (miss[0]) rc = mm_err_set(err, MM_EINVAL, "missing part: shard(s) %s of %lld not given", miss, (long long)h[0].count);
    }
    if (!rc) {
        mm_va *cva = mm_malloc(h[0].k, sizeof *cva, err);
        if (!cva) rc = MM_ENOMEM;
        for (size_t c = 0; cva && c < h[0].k; c++) cva[c] = (mm_va){h[0].cva[2 * c], h[0].cva[2 * c + 1]};
        if (!rc) rc = mm_librun_init(&r, (int)h[0].k, (const char *const *)h[0].names, cva, (size_t)h[0].dim, h[0].model,
                                     h[0].bsha, h[0].window_s, h[0].hop_s, err);
        free(cva);
    }
    if (!rc && !(r.jl.v = mm_calloc((size_t)h[0].n_files, sizeof *r.jl.v, err))) rc = MM_ENOMEM;
    if (!rc) r.jl.n = r.jl.cap = (size_t)h[0].n_files;
    for (size_t i = 0; !rc && i < n; i++) rc = read_part_rows(f[i], parts[i], &r, err);
    for (size_t i = 0; !rc && i < r.jl.n; i++)
        if (!r.jl.v[i].path || (i && strcmp(r.jl.v[i - 1].path, r.jl.v[i].path) >= 0))
            rc = mm_err_set(err, MM_EFORMAT, "%s: file %zu of %zu is missing or out of order in the parts", parts[0], i, r.jl.n);
    if (!rc) {
        r.source = h[0].source;
        rc = mm_librun_finish(&r, NULL, 0, out_path, stats, err);
    }
    for (size_t i = 0; i < opened && f; i++) if (f[i] >= 0) mm_h5_close(f[i]);
    for (size_t i = 0; h && i < n; i++) part_head_free(&h[i]);
    free(h);
    free(f);
    mm_librun_free(&r);
    return rc;
}

/* ---- one MPI job ---------------------------------------------------------- */

typedef struct dist_ctx {
    mm_librun *r;
    const mm_library_index_params *p;
    size_t done;
    mm_err bad;     /* the first malformed result */
} dist_ctx;

/* Rank 0: a job's result into its slot (under the scheduler's lock). */
static int on_job(void *vctx, size_t item, const void *data, size_t len, int rank)
{
    dist_ctx *c = vctx;
    mm_err e = {0};
    (void)rank;
    if (item >= c->r->jl.n || mm_libjob_unpack(&c->r->jl.v[item], c->r->k, c->r->dim, data, len, &e)) {
        if (!c->bad.code) mm_err_set(&c->bad, MM_EFORMAT, "rank %d: file %zu: %s", rank, item, e.msg[0] ? e.msg : "out of range");
        return 1;
    }
    if (c->p->progress) c->p->progress(c->p->progress_ctx, ++c->done, c->r->jl.n, c->r->jl.v[item].path);
    return 0;
}

static const uint64_t *g_sizes;   /* qsort context (rank 0's main thread only) */

static int by_size_desc(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    if (g_sizes[a] != g_sizes[b]) return g_sizes[a] > g_sizes[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Rank 0: the hand-out order, largest file first (ties: path order), so
 * that no rank is left with a long file at the end. NULL: out of memory. */
static size_t *largest_first(const mm_librun *r, mm_err *err)
{
    uint64_t *sz = job_sizes(r, err);
    size_t *order = sz ? mm_malloc(r->jl.n, sizeof *order, err) : NULL;
    if (order) {
        for (size_t i = 0; i < r->jl.n; i++) order[i] = i;
        g_sizes = sz;
        qsort(order, r->jl.n, sizeof *order, by_size_desc);
        g_sizes = NULL;
    }
    free(sz);
    return order;
}

/* This rank's share: ask, classify, send back, until the queue is empty. */
static void work_share(mm_sched *s, mm_librun *r, const mm_bundle *b, const mm_library *old, const mm_library_index_params *p)
{
    mm_library_index_params q = *p;
    q.progress = NULL;   /* rank 0 reports as results arrive (on_job) */
    size_t chunk = (size_t)(p->n_threads < 1 ? 1 : p->n_threads), k;
    size_t *items = malloc(chunk * sizeof *items);
    mm_err le = {0};
    int lrc = items ? 0 : mm_err_set(&le, MM_ENOMEM, "out of memory");
    if (lrc) mm_sched_fail(s, &le);
    while ((k = mm_sched_next(s, items, lrc ? 1 : chunk)) > 0) {
        if (lrc) continue;
        mm_librun_classify(r, b, old, items, k, &q);
        for (size_t j = 0; j < k && !lrc; j++) {
            unsigned char *msg = NULL;
            size_t len = 0;
            if (!(lrc = mm_libjob_pack(&r->jl.v[items[j]], r->k, r->dim, &msg, &len, &le)))
                lrc = mm_sched_put(s, items[j], msg, len, &le);
            free(msg);
        }
        if (lrc) mm_sched_fail(s, &le);
    }
    free(items);
}

int mm_library_index_dist(const mm_bundle *b, const char *bundle_path, const mm_va_table *va, const char *source,
                          const char *out_path, const mm_library_index_params *pin, mm_library_index_stats *stats,
                          mm_err *err)
{
    if (!mm_mpi_active()) return mm_library_index(b, bundle_path, va, source, out_path, pin, stats, err);
    mm_library_index_params p;
    if (pin) p = *pin; else mm_library_index_params_default(&p);
    int rank = mm_mpi_rank(), size = mm_mpi_size(), reusable = 0;
    mm_librun r;
    mm_library *old = NULL;
    size_t *order = NULL;
    int rc = out_path ? mm_librun_prepare(b, bundle_path, va, source, &p, &r, err)
                      : mm_err_set(err, MM_EINVAL, "index: bundle, source and output are required");
    if (!out_path) memset(&r, 0, sizeof r);
    if (!rc && (size_t)size > r.jl.n)
        rc = mm_err_set(err, MM_EINVAL, "%d MPI ranks for %zu files: use at most %zu ranks (mpirun -np)", size, r.jl.n, r.jl.n);
    if (!rc && p.reuse && access(out_path, F_OK) == 0) rc = mm_librun_open_previous(&r, out_path, &old, &reusable, err);
    if (!rc && rank == 0 && !(order = largest_first(&r, err))) rc = MM_ENOMEM;
    rc = mm_mpi_agree(rc, err);
    dist_ctx c = {.r = &r, .p = &p};
    mm_sched *s = NULL;
    mm_sched_params sp = {.on_result = on_job, .ctx = &c};
    if (!rc && !(rc = mm_sched_create(order, r.jl.n, &sp, &s, err))) {
        work_share(s, &r, b, reusable ? old : NULL, &p);
        rc = mm_sched_finish(s, err);
    }
    if (!rc && rank == 0 && c.bad.code) rc = mm_err_set(err, c.bad.code, "%s", c.bad.msg);
    if (!rc && rank == 0) rc = mm_librun_finish(&r, old, reusable, out_path, stats, err);
    rc = mm_mpi_agree(rc, err);
    free(order);
    mm_library_free(old);
    mm_librun_free(&r);
    return rc;
}
