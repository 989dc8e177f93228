/* h5.c — see h5.h. */
#include "io/h5.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void mm_h5_init(void)
{
    static int done;
    if (!done) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); done = 1; }
}

static const char *fname(hid_t loc, char *buf, size_t size)
{
    ssize_t n = H5Fget_name(loc, buf, size);
    if (n <= 0) snprintf(buf, size, "<hdf5>");
    return buf;
}

/* ---- atomic output ----
 * The temporary is "<path>.tmp.<host>.<pid>.<6 random chars>", created with O_EXCL (so an
 * existing file or symlink of that name is never followed or truncated) and the usual
 * 0666 & ~umask mode. Killed writers leave theirs behind: each create removes the
 * temporaries of the same <path> whose process is gone (same host, or the old
 * "<path>.tmp.<pid>" form). */

/* Split "<dir>/<base>" of path into dir (or ".") and base. */
static void split_path(const char *path, char *dir, size_t dsize, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, dsize, ".");
    else if (slash == path) snprintf(dir, dsize, "/");
    else snprintf(dir, dsize, "%.*s", (int)(slash - path), path);
    *base = slash ? slash + 1 : path;
}

static int all_digits(const char *s, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* The pid of a temporary of ours from its name after "<base>.tmp.", or 0 when the name
 * is another host's or not a temporary. */
static long stale_pid(const char *rest, const char *host)
{
    size_t len = strlen(rest);
    if (all_digits(rest, len)) return strtol(rest, NULL, 10);      /* old "<pid>" form */
    const char *dot2 = strrchr(rest, '.');
    if (!dot2 || strlen(dot2 + 1) != 6 || dot2 == rest) return 0;
    const char *dot1 = dot2 - 1;
    while (dot1 > rest && *dot1 != '.') dot1--;
    if (*dot1 != '.' || !all_digits(dot1 + 1, (size_t)(dot2 - dot1 - 1))) return 0;
    if ((size_t)(dot1 - rest) != strlen(host) || strncmp(rest, host, strlen(host))) return 0;
    return strtol(dot1 + 1, NULL, 10);
}

static void remove_stale_tmps(const char *path, const char *host)
{
    char dir[4096];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    DIR *dh = opendir(dir);
    if (!dh) return;
    size_t bl = strlen(base);
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (strncmp(de->d_name, base, bl) || strncmp(de->d_name + bl, ".tmp.", 5)) continue;
        long pid = stale_pid(de->d_name + bl + 5, host);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[8192];
        if (snprintf(full, sizeof full, "%s/%s", dir, de->d_name) < (int)sizeof full) unlink(full);
    }
    closedir(dh);
}

/* Create a fresh temporary next to path (O_EXCL): its name into out->tmp. */
static int create_tmp(const char *path, const char *host, mm_h5_out *out)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(path) + strlen(host) + 48;
    if (!(out->tmp = malloc(len))) return ENOMEM;
    for (int attempt = 0; attempt < 64; attempt++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
            unsigned long x = (unsigned long)getpid() * 2654435761u ^ (unsigned long)attempt * 40503u ^
                              (unsigned long)(size_t)out;
            for (int i = 0; i < 6; i++, x /= 36) r[i] = (unsigned char)x;
        }
        char sfx[7];
        for (int i = 0; i < 6; i++) sfx[i] = abc[r[i] % 36];
        sfx[6] = 0;
        snprintf(out->tmp, len, "%s.tmp.%s.%ld.%s", path, host, (long)getpid(), sfx);
        int fd = open(out->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) { close(fd); return 0; }
        if (errno != EEXIST) { int e = errno; free(out->tmp); out->tmp = NULL; return e; }
    }
    free(out->tmp);
    out->tmp = NULL;
    return EEXIST;
}

int mm_h5_create(const char *path, mm_h5_out *out, mm_err *err)
{
    mm_h5_init();
    memset(out, 0, sizeof *out);
    out->file = H5I_INVALID_HID;
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    for (char *h = host; *h; h++)
        if (*h == '/') *h = '_';
    if (!(out->path = strdup(path))) return mm_err_set(err, MM_ENOMEM, "out of memory");
    remove_stale_tmps(path, host);
    int e = create_tmp(path, host, out);
    if (e) {
        mm_h5_abort(out);
        return mm_err_set(err, MM_EIO, "%s: cannot create output file (does its folder exist and is it writable?): %s",
                          path, strerror(e));
    }
    out->file = H5Fcreate(out->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (out->file < 0) {
        int rc = mm_err_set(err, MM_EIO, "%s: cannot create output file (does its folder exist and is it writable?)", path);
        mm_h5_abort(out);
        return rc;
    }
    return 0;
}

/* fsync a file or folder by name; 0 or errno. Folders that cannot be synced (EINVAL on
 * some file systems) count as synced. */
static int sync_path(const char *p, int is_dir)
{
    int fd = open(p, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return errno;
    int e = fsync(fd) ? errno : 0;
    close(fd);
    return is_dir && e == EINVAL ? 0 : e;
}

/* Close, fsync the temporary, rename it over the final path, fsync the folder. */
int mm_h5_commit(mm_h5_out *out, mm_err *err)
{
    int rc = 0, e;
    if (out->file >= 0 && H5Fclose(out->file) < 0)
        rc = mm_err_set(err, MM_EIO, "%s: error closing output file", out->path);
    out->file = H5I_INVALID_HID;
    if (!rc && (e = sync_path(out->tmp, 0)))
        rc = mm_err_set(err, MM_EIO, "%s: cannot sync %s to disk: %s", out->path, out->tmp, strerror(e));
    if (!rc && rename(out->tmp, out->path) != 0)
        rc = mm_err_set(err, MM_EIO, "%s: cannot rename from %s: %s", out->path, out->tmp, strerror(errno));
    if (rc) {
        unlink(out->tmp);
    } else {
        char dir[4096];
        const char *base;
        split_path(out->path, dir, sizeof dir, &base);
        if ((e = sync_path(dir, 1)))
            rc = mm_err_set(err, MM_EIO, "%s: written, but its folder cannot be synced to disk: %s",
                            out->path, strerror(e));
    }
    free(out->tmp);
    free(out->path);
    out->tmp = out->path = NULL;
    return rc;
}

void mm_h5_abort(mm_h5_out *out)
{
    if (out->file >= 0) H5Fclose(out->file);
    out->file = H5I_INVALID_HID;
    if (out->tmp) unlink(out->tmp);
    free(out->tmp);
    free(out->path);
    out->tmp = out->path = NULL;
}

int mm_h5_open_read(const char *path, hid_t *file, mm_err *err)
{
    mm_h5_init();
    if (access(path, R_OK) != 0)
        return mm_err_set(err, MM_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return mm_err_set(err, MM_EFORMAT, "%s: not an HDF5 file (or truncated)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return mm_err_set(err, MM_EFORMAT, "%s: cannot open as HDF5 (corrupt or truncated?)", path);
    *file = f;
    return 0;
}

int mm_h5_open_rw(const char *path, hid_t *file, mm_err *err)
{
    mm_h5_init();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return mm_err_set(err, MM_EIO, "%s: cannot open HDF5 file for update", path);
    *file = f;
    return 0;
}

void mm_h5_close(hid_t file)
{
    if (file >= 0) H5Fclose(file);
}

int mm_h5_exists(hid_t loc, const char *path)
{
    /* check every prefix so that a missing intermediate group is not an error */
    char buf[1024];
    size_t len = strlen(path);
    if (len >= sizeof buf) return 0;
    for (size_t i = 1; i <= len; i++) {
        if (i == len || path[i] == '/') {
            memcpy(buf, path, i);
            buf[i] = 0;
            if (!strcmp(buf, "/")) continue;
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
        }
    }
    return 1;
}

static hid_t lcpl(void)
{
    hid_t p = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(p, 1);
    H5Pset_char_encoding(p, H5T_CSET_UTF8);
    return p;
}

hid_t mm_h5_group(hid_t loc, const char *path, mm_err *err)
{
    if (mm_h5_exists(loc, path)) return mm_h5_open_group(loc, path, err);
    hid_t p = lcpl();
    hid_t g = H5Gcreate2(loc, path, p, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(p);
    if (g < 0) {
        char f[512];
        mm_err_set(err, MM_EIO, "%s: cannot create group '%s'", fname(loc, f, sizeof f), path);
    }
    return g;
}

hid_t mm_h5_open_group(hid_t loc, const char *path, mm_err *err)
{
    char f[512];
    if (!mm_h5_exists(loc, path)) {
        mm_err_set(err, MM_EFORMAT, "%s: group '%s' is missing", fname(loc, f, sizeof f), path);
        return H5I_INVALID_HID;
    }
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) mm_err_set(err, MM_EFORMAT, "%s: '%s' is not a group", fname(loc, f, sizeof f), path);
    return g;
}

static int write_any(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                     const void *data, int rank, const hsize_t *dims, mm_err *err)
{
    char f[512];
    if (mm_h5_exists(loc, name)) H5Ldelete(loc, name, H5P_DEFAULT);
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t p = lcpl();
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) total *= dims[i];
    /* compress large arrays; chunk along the first axis */
    if (rank >= 1 && total >= 4096 && dims[0] > 0) {
        hsize_t chunk[4];
        hsize_t row = total / dims[0];
        hsize_t rows = (1 << 18) / (row ? row : 1);
        if (rows < 1) rows = 1;
        if (rows > dims[0]) rows = dims[0];
        chunk[0] = rows;
        for (int i = 1; i < rank; i++) chunk[i] = dims[i];
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t d = H5Dcreate2(loc, name, file_type, space, p, dcpl, H5P_DEFAULT);
    int rc = 0;
    if (d < 0 || (total > 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        rc = mm_err_set(err, MM_EIO, "%s: cannot write dataset '%s'", fname(loc, f, sizeof f), name);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(p);
    H5Sclose(space);
    return rc;
}

int mm_h5_write_f32(hid_t loc, const char *name, const float *data, int rank,
                    const hsize_t *dims, mm_err *err)
{
    return write_any(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, rank, dims, err);
}
int mm_h5_write_f64(hid_t loc, const char *name, const double *data, int rank,
                    const hsize_t *dims, mm_err *err)
{
    return write_any(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, rank, dims, err);
}
int mm_h5_write_i32(hid_t loc, const char *name, const int32_t *data, int rank,
                    const hsize_t *dims, mm_err *err)
{
    return write_any(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, data, rank, dims, err);
}
int mm_h5_write_i64(hid_t loc, const char *name, const int64_t *data, int rank,
                    const hsize_t *dims, mm_err *err)
{
    return write_any(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, data, rank, dims, err);
}
int mm_h5_write_u8(hid_t loc, const char *name, const uint8_t *data, size_t n, mm_err *err)
{
    hsize_t d = n;
    return write_any(loc, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, data, 1, &d, err);
}

static hid_t vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int mm_h5_write_strings(hid_t loc, const char *name, const char *const *s, size_t n,
                        mm_err *err)
{
    hid_t t = vlen_str_type();
    hsize_t d = n;
    const char **tmp = NULL;
    /* HDF5 refuses NULL vlen pointers: substitute "" */
    if (n) {
        tmp = malloc(n * sizeof *tmp);
        if (!tmp) { H5Tclose(t); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
        for (size_t i = 0; i < n; i++) tmp[i] = s[i] ? s[i] : "";
    }
    int rc = write_any(loc, name, t, t, tmp, 1, &d, err);
    free(tmp);
    H5Tclose(t);
    return rc;
}

int mm_h5_write_text(hid_t loc, const char *name, const char *text, mm_err *err)
{
    hid_t t = vlen_str_type();
    const char *p = text ? text : "";
    int rc = write_any(loc, name, t, t, &p, 0, NULL, err);
    H5Tclose(t);
    return rc;
}

/* ---- reading: sizes are checked against what the file holds before any allocation ----
 * A dataset may decode to at most what it stores (H5Dget_storage_size), times 1100 when
 * a compressing filter such as deflate is on (deflate's largest ratio is 1032:1), plus 64 KiB for
 * fill values; variable-length strings in all to at most the file's size plus one byte
 * per string plus 64 KiB (HDF5 stores each string once in the file's heap). */

#define SLACK ((hsize_t)1 << 16)

static hsize_t file_size_of(hid_t loc)
{
    hsize_t size = 0;
    hid_t f = H5Iget_file_id(loc);
    if (f >= 0) {
        if (H5Fget_filesize(f, &size) < 0) size = 0;
        H5Fclose(f);
    }
    return size;
}

/* Bytes the dataset d may decode to (see above): 1100 times per compressing filter
 * (shuffle and checksums do not compress), at most 2^40 times. */
static hsize_t decoded_cap(hid_t d)
{
    hsize_t stored = H5Dget_storage_size(d), ratio = 1;
    hid_t dcpl = H5Dget_create_plist(d);
    int filters = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0;
    for (int i = 0; i < filters; i++) {
        unsigned flags;
        size_t nv = 0;
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nv, NULL, 0, NULL, NULL);
        if (id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32 && ratio < ((hsize_t)1 << 30))
            ratio *= 1100;
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    return (stored > ((hsize_t)1 << 20) << 20 ? ((hsize_t)1 << 60) : stored * ratio) + SLACK;
}

/* n elements of `elsize` file bytes each: within the dataset's cap? */
static int check_count(hid_t loc, hid_t d, const char *name, hsize_t n, size_t elsize, mm_err *err)
{
    hsize_t cap = decoded_cap(d);
    if (elsize && n <= cap / elsize) return 0;
    char f[512];
    return mm_err_set(err, MM_EFORMAT,
                      "%s: dataset '%s' claims %llu values of %zu bytes but stores %llu bytes "
                      "(corrupt or hostile file)", fname(loc, f, sizeof f), name,
                      (unsigned long long)n, elsize, (unsigned long long)H5Dget_storage_size(d));
}

static int read_any(hid_t loc, const char *name, hid_t mem_type, H5T_class_t want_class,
                    size_t elsize, int want_rank, void **data, int *rank, hsize_t *dims,
                    mm_err *err)
{
    char f[512];
    if (!mm_h5_exists(loc, name))
        return mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is missing", fname(loc, f, sizeof f), name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return mm_err_set(err, MM_EFORMAT, "%s: '%s' is not a dataset", fname(loc, f, sizeof f), name);
    hid_t ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    size_t file_elsize = H5Tget_size(ft);
    H5Tclose(ft);
    int rc = 0;
    hid_t space = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(space);
    hsize_t dd[8] = {0};
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s': expected numbers", fname(loc, f, sizeof f), name);
        goto done;
    }
    (void)want_class;
    if (r < 0 || r > 4 || (want_rank >= 0 && r != want_rank)) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s': expected rank %d, found %d",
                        fname(loc, f, sizeof f), name, want_rank, r);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dd, NULL);
    hsize_t total = 1;
    for (int i = 0; i < r; i++) total *= dd[i];
    if (total > ((hsize_t)1 << 34) / elsize) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is implausibly large", fname(loc, f, sizeof f), name);
        goto done;
    }
    if ((rc = check_count(loc, d, name, total, file_elsize, err))) goto done;
    void *buf = malloc(total ? total * elsize : 1);
    if (!buf) { rc = mm_err_set(err, MM_ENOMEM, "out of memory reading '%s'", name); goto done; }
    if (total && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        rc = mm_err_set(err, MM_EFORMAT, "%s: cannot read dataset '%s' (corrupt?)", fname(loc, f, sizeof f), name);
        goto done;
    }
    *data = buf;
    if (rank) *rank = r;
    if (dims) for (int i = 0; i < r; i++) dims[i] = dd[i];
done:
    H5Sclose(space);
    H5Dclose(d);
    return rc;
}

int mm_h5_read_f32(hid_t loc, const char *name, int want_rank, float **data, int *rank,
                   hsize_t *dims, mm_err *err)
{
    return read_any(loc, name, H5T_NATIVE_FLOAT, H5T_FLOAT, 4, want_rank, (void **)data, rank, dims, err);
}
int mm_h5_read_f64(hid_t loc, const char *name, int want_rank, double **data, int *rank,
                   hsize_t *dims, mm_err *err)
{
    return read_any(loc, name, H5T_NATIVE_DOUBLE, H5T_FLOAT, 8, want_rank, (void **)data, rank, dims, err);
}
int mm_h5_read_i32(hid_t loc, const char *name, int want_rank, int32_t **data, int *rank,
                   hsize_t *dims, mm_err *err)
{
    return read_any(loc, name, H5T_NATIVE_INT32, H5T_INTEGER, 4, want_rank, (void **)data, rank, dims, err);
}
int mm_h5_read_i64(hid_t loc, const char *name, int want_rank, int64_t **data, int *rank,
                   hsize_t *dims, mm_err *err)
{
    return read_any(loc, name, H5T_NATIVE_INT64, H5T_INTEGER, 8, want_rank, (void **)data, rank, dims, err);
}
int mm_h5_read_u8(hid_t loc, const char *name, uint8_t **data, size_t *n, mm_err *err)
{
    hsize_t d[4];
    int rc = read_any(loc, name, H5T_NATIVE_UINT8, H5T_INTEGER, 1, 1, (void **)data, NULL, d, err);
    if (!rc) *n = d[0];
    return rc;
}

void mm_h5_free_strings(char **s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* Variable-length strings of d (rank r, n of them) into res, in batches of 64:
 * after each batch the decoded bytes so far are checked against the file's
 * size (see above), so heap references shared by many elements cannot make the
 * read allocate more than the file holds plus one batch (each string is a heap
 * object of the file, so a batch decodes to at most 64 file sizes).
 * H5Dvlen_get_buf_size is not used: HDF5 1.10's writes past its own buffer for
 * a hyperslab that does not start at 0 (seen under ASan). */
static int read_vlen_strings(hid_t loc, hid_t d, const char *name, int r, hsize_t n, char **res,
                             mm_err *err)
{
    const hsize_t batch = 64;
    hsize_t cap = file_size_of(loc) + n + SLACK, total = 0;
    hid_t mt = vlen_str_type(), fsp = H5Dget_space(d);
    char *raw[64] = {0};
    char f[512];
    int rc = 0;
    for (hsize_t at = 0; !rc && at < n; at += batch) {
        hsize_t cnt = n - at < batch ? n - at : batch;
        hid_t msp = r == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &cnt, NULL);
        if ((r == 1 && H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &at, NULL, &cnt, NULL) < 0) ||
            H5Dread(d, mt, msp, fsp, H5P_DEFAULT, raw) < 0)
            rc = mm_err_set(err, MM_EFORMAT, "%s: cannot read strings '%s'", fname(loc, f, sizeof f), name);
        for (hsize_t i = 0; !rc && i < cnt; i++) total += (raw[i] ? strlen(raw[i]) : 0) + 1;
        if (!rc && total > cap)
            rc = mm_err_set(err, MM_EFORMAT,
                            "%s: strings '%s' decode to more than the file's %llu bytes "
                            "(corrupt or hostile file)", fname(loc, f, sizeof f), name,
                            (unsigned long long)(cap - n - SLACK));
        for (hsize_t i = 0; !rc && i < cnt; i++)
            if (!(res[at + i] = strdup(raw[i] ? raw[i] : ""))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        H5Dvlen_reclaim(mt, msp, H5P_DEFAULT, raw);
        memset(raw, 0, sizeof raw);
        H5Sclose(msp);
    }
    H5Sclose(fsp);
    H5Tclose(mt);
    return rc;
}

int mm_h5_read_strings(hid_t loc, const char *name, char ***out, size_t *n_out, mm_err *err)
{
    char f[512];
    if (!mm_h5_exists(loc, name))
        return mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is missing", fname(loc, f, sizeof f), name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return mm_err_set(err, MM_EFORMAT, "%s: '%s' is not a dataset", fname(loc, f, sizeof f), name);
    hid_t ft = H5Dget_type(d);
    hid_t space = H5Dget_space(d);
    int rc = 0;
    char **res = NULL;
    hsize_t n = 0;
    int r = H5Sget_simple_extent_ndims(space);
    if (H5Tget_class(ft) != H5T_STRING || r > 1) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s': expected a list of strings", fname(loc, f, sizeof f), name);
        goto done;
    }
    if (r == 1) H5Sget_simple_extent_dims(space, &n, NULL);
    else n = 1;
    int vlen = H5Tis_variable_str(ft) > 0;
    /* in the file a variable-length string is a 16-byte heap reference */
    if (n > ((hsize_t)1 << 31)) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: dataset '%s' is implausibly large", fname(loc, f, sizeof f), name);
        goto done;
    }
    if ((rc = check_count(loc, d, name, n, vlen ? 16 : H5Tget_size(ft), err))) goto done;
    res = calloc(n ? n : 1, sizeof *res);
    if (!res) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    if (vlen) {
        rc = read_vlen_strings(loc, d, name, r, n, res, err);
        if (rc) goto done;
    } else {
        size_t sz = H5Tget_size(ft);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        char *raw = calloc(n ? n : 1, sz);
        if (!raw || (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0)) {
            free(raw);
            H5Tclose(mt);
            rc = mm_err_set(err, MM_EFORMAT, "%s: cannot read strings '%s'", fname(loc, f, sizeof f), name);
            goto done;
        }
        for (hsize_t i = 0; i < n; i++) res[i] = strndup(raw + i * sz, sz);
        free(raw);
        H5Tclose(mt);
    }
    for (hsize_t i = 0; i < n; i++)
        if (!res[i]) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    *out = res;
    *n_out = n;
    res = NULL;
done:
    if (res) mm_h5_free_strings(res, n);
    H5Sclose(space);
    H5Tclose(ft);
    H5Dclose(d);
    return rc;
}

int mm_h5_read_text(hid_t loc, const char *name, char **text, mm_err *err)
{
    char **s;
    size_t n;
    int rc = mm_h5_read_strings(loc, name, &s, &n, err);
    if (rc) return rc;
    if (n != 1) {
        mm_h5_free_strings(s, n);
        char f[512];
        return mm_err_set(err, MM_EFORMAT, "%s: '%s': expected one string", fname(loc, f, sizeof f), name);
    }
    *text = s[0];
    free(s);
    return 0;
}

static int attr_write(hid_t obj, const char *name, hid_t type, const void *v, mm_err *err)
{
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (a < 0 || H5Awrite(a, type, v) < 0) {
        char f[512];
        rc = mm_err_set(err, MM_EIO, "%s: cannot write attribute '%s'", fname(obj, f, sizeof f), name);
    }
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

int mm_h5_attr_set_str(hid_t obj, const char *name, const char *value, mm_err *err)
{
    hid_t t = vlen_str_type();
    const char *p = value ? value : "";
    int rc = attr_write(obj, name, t, &p, err);
    H5Tclose(t);
    return rc;
}
int mm_h5_attr_set_i64(hid_t obj, const char *name, int64_t value, mm_err *err)
{
    return attr_write(obj, name, H5T_NATIVE_INT64, &value, err);
}
int mm_h5_attr_set_f64(hid_t obj, const char *name, double value, mm_err *err)
{
    return attr_write(obj, name, H5T_NATIVE_DOUBLE, &value, err);
}

static hid_t attr_open(hid_t obj, const char *name, mm_err *err)
{
    char f[512];
    if (H5Aexists(obj, name) <= 0) {
        mm_err_set(err, MM_EFORMAT, "%s: attribute '%s' is missing", fname(obj, f, sizeof f), name);
        return H5I_INVALID_HID;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) mm_err_set(err, MM_EFORMAT, "%s: cannot open attribute '%s'", fname(obj, f, sizeof f), name);
    return a;
}

int mm_h5_attr_get_str(hid_t obj, const char *name, char **value, mm_err *err)
{
    hid_t a = attr_open(obj, name, err);
    if (a < 0) return err ? err->code : MM_EFORMAT;
    hid_t ft = H5Aget_type(a);
    int rc = 0;
    char f[512];
    if (H5Tget_class(ft) != H5T_STRING) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: attribute '%s': expected a string", fname(obj, f, sizeof f), name);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = vlen_str_type();
        char *p = NULL;
        if (H5Aread(a, mt, &p) < 0 || !p) rc = mm_err_set(err, MM_EFORMAT, "%s: cannot read attribute '%s'", fname(obj, f, sizeof f), name);
        else { *value = strdup(p); H5free_memory(p); }
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        char *buf = sz <= file_size_of(obj) + SLACK ? calloc(sz + 1, 1) : NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        if (!buf || H5Aread(a, mt, buf) < 0) { free(buf); rc = mm_err_set(err, MM_EFORMAT, "%s: cannot read attribute '%s'", fname(obj, f, sizeof f), name); }
        else *value = buf;
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int mm_h5_attr_get_i64(hid_t obj, const char *name, int64_t *value, mm_err *err)
{
    hid_t a = attr_open(obj, name, err);
    if (a < 0) return err ? err->code : MM_EFORMAT;
    hid_t ft = H5Aget_type(a);
    int rc = 0;
    char f[512];
    if (H5Tget_class(ft) != H5T_INTEGER || H5Aread(a, H5T_NATIVE_INT64, value) < 0)
        rc = mm_err_set(err, MM_EFORMAT, "%s: attribute '%s': expected an integer", fname(obj, f, sizeof f), name);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int mm_h5_attr_get_f64(hid_t obj, const char *name, double *value, mm_err *err)
{
    hid_t a = attr_open(obj, name, err);
    if (a < 0) return err ? err->code : MM_EFORMAT;
    hid_t ft = H5Aget_type(a);
    H5T_class_t c = H5Tget_class(ft);
    int rc = 0;
    char f[512];
    if ((c != H5T_INTEGER && c != H5T_FLOAT) || H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0)
        rc = mm_err_set(err, MM_EFORMAT, "%s: attribute '%s': expected a number", fname(obj, f, sizeof f), name);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int mm_h5_stamp_format(hid_t obj, const char *format, int version, mm_err *err)
{
    int rc = mm_h5_attr_set_str(obj, "format", format, err);
    if (!rc) rc = mm_h5_attr_set_i64(obj, "format_version", version, err);
    return rc;
}

int mm_h5_check_format(hid_t obj, const char *format, int max_version, int *version, mm_err *err)
{
    char f[512];
    char *got = NULL;
    mm_err tmp = {0};
    if (mm_h5_attr_get_str(obj, "format", &got, &tmp))
        return mm_err_set(err, MM_EFORMAT, "%s: not a %s file (no 'format' attribute)", fname(obj, f, sizeof f), format);
    if (strcmp(got, format)) {
        int rc = mm_err_set(err, MM_EFORMAT, "%s: expected a %s file, found a %s file", fname(obj, f, sizeof f), format, got);
        free(got);
        return rc;
    }
    free(got);
    int64_t v = 0;
    if (mm_h5_attr_get_i64(obj, "format_version", &v, &tmp))
        return mm_err_set(err, MM_EFORMAT, "%s: %s file without 'format_version'", fname(obj, f, sizeof f), format);
    if (v < 1 || v > max_version)
        return mm_err_set(err, MM_EFORMAT, "%s: %s format version %lld is not supported (this build reads 1..%d)",
                          fname(obj, f, sizeof f), format, (long long)v, max_version);
    if (version) *version = (int)v;
    return 0;
}
