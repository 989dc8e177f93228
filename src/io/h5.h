/* h5.h — small HDF5 helpers shared by feature tables, models and results.
 *
 * Writing is atomic: mm_h5_create writes to "<path>.tmp.<host>.<pid>.<random>",
 * created with O_EXCL (never through an existing file or symlink), and first
 * removes the temporaries of <path> left by processes that are gone;
 * mm_h5_commit closes it, fsyncs it, renames it over <path> and fsyncs the
 * folder; mm_h5_abort removes it, so no half-written file is ever left under the
 * final name. Readers check datatype class and rank and report
 * "<file>: dataset '<name>': ..." errors, and check every size the file declares
 * against the bytes it stores before allocating (see h5.c for the bounds).
 * Paths may contain '/' and intermediate groups are created on write.
 * HDF5's own error stack printing is silenced (mm_h5_init). HDF5 calls must
 * come from one thread at a time (Debian's serial HDF5 is not thread-safe).
 */
#ifndef MM_H5_H
#define MM_H5_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mm_h5_out {
    hid_t file;
    char *path;     /* final path */
    char *tmp;      /* temporary path written until commit */
} mm_h5_out;

void mm_h5_init(void);

int mm_h5_create(const char *path, mm_h5_out *out, mm_err *err);
int mm_h5_commit(mm_h5_out *out, mm_err *err);
void mm_h5_abort(mm_h5_out *out);

int mm_h5_open_read(const char *path, hid_t *file, mm_err *err);
/* Open read-write an existing file (for in-place updates such as --resume). */
int mm_h5_open_rw(const char *path, hid_t *file, mm_err *err);
void mm_h5_close(hid_t file);

int mm_h5_exists(hid_t loc, const char *path);
/* Open or create a group (intermediate groups created). Caller H5Gclose's it. */
hid_t mm_h5_group(hid_t loc, const char *path, mm_err *err);
hid_t mm_h5_open_group(hid_t loc, const char *path, mm_err *err);

/* Datasets (rank <= 4). Existing datasets of the same name are replaced. */
int mm_h5_write_f32(hid_t loc, const char *name, const float *data, int rank,
                    const hsize_t *dims, mm_err *err);
int mm_h5_write_f64(hid_t loc, const char *name, const double *data, int rank,
                    const hsize_t *dims, mm_err *err);
int mm_h5_write_i32(hid_t loc, const char *name, const int32_t *data, int rank,
                    const hsize_t *dims, mm_err *err);
int mm_h5_write_i64(hid_t loc, const char *name, const int64_t *data, int rank,
                    const hsize_t *dims, mm_err *err);
int mm_h5_write_u8(hid_t loc, const char *name, const uint8_t *data, size_t n, mm_err *err);
/* Variable-length UTF-8 strings, 1-D. */
int mm_h5_write_strings(hid_t loc, const char *name, const char *const *s, size_t n,
                        mm_err *err);
/* A scalar variable-length string dataset. */
int mm_h5_write_text(hid_t loc, const char *name, const char *text, mm_err *err);

/* Read a numeric dataset converted to the requested type; *data malloc'd.
 * dims receives up to 4 extents; *rank the rank. want_rank < 0 accepts any
 * rank, else it must match. */
int mm_h5_read_f32(hid_t loc, const char *name, int want_rank, float **data, int *rank,
                   hsize_t *dims, mm_err *err);
int mm_h5_read_f64(hid_t loc, const char *name, int want_rank, double **data, int *rank,
                   hsize_t *dims, mm_err *err);
int mm_h5_read_i32(hid_t loc, const char *name, int want_rank, int32_t **data, int *rank,
                   hsize_t *dims, mm_err *err);
int mm_h5_read_i64(hid_t loc, const char *name, int want_rank, int64_t **data, int *rank,
                   hsize_t *dims, mm_err *err);
int mm_h5_read_u8(hid_t loc, const char *name, uint8_t **data, size_t *n, mm_err *err);
/* Strings (fixed or variable length). *s is an array of n malloc'd strings;
 * free with mm_h5_free_strings. */
int mm_h5_read_strings(hid_t loc, const char *name, char ***s, size_t *n, mm_err *err);
int mm_h5_read_text(hid_t loc, const char *name, char **text, mm_err *err);
void mm_h5_free_strings(char **s, size_t n);

/* Attributes on an object (file, group or dataset); replaced if present. */
int mm_h5_attr_set_str(hid_t obj, const char *name, const char *value, mm_err *err);
int mm_h5_attr_set_i64(hid_t obj, const char *name, int64_t value, mm_err *err);
int mm_h5_attr_set_f64(hid_t obj, const char *name, double value, mm_err *err);
int mm_h5_attr_get_str(hid_t obj, const char *name, char **value, mm_err *err);
int mm_h5_attr_get_i64(hid_t obj, const char *name, int64_t *value, mm_err *err);
int mm_h5_attr_get_f64(hid_t obj, const char *name, double *value, mm_err *err);

/* Format stamp: attributes "format" and "format_version"; check_format
 * refuses another format or a newer major version with a clear message. */
int mm_h5_stamp_format(hid_t obj, const char *format, int version, mm_err *err);
int mm_h5_check_format(hid_t obj, const char *format, int max_version, int *version,
                       mm_err *err);

#endif
