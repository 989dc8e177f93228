/* err.h — error reporting for the Melodic Mind engine.
 *
 * Contract: a function that can fail returns 0 on success or a negative
 * MM_E* code, and on failure fills an mm_err with a one-line message that
 * names the file, line, key or value at fault and what was expected.
 * Output parameters are written only on success. Nothing under src/ except
 * src/cli/ prints to stdout or exits.
 */
#ifndef MM_ERR_H
#define MM_ERR_H

#include <stddef.h>

enum {
    MM_OK = 0,
    MM_EINVAL = -1,   /* bad argument, parameter or config value */
    MM_EIO = -2,      /* file missing, unreadable, unwritable */
    MM_EFORMAT = -3,  /* file readable but content wrong (corrupt, wrong kind) */
    MM_ENOMEM = -4,   /* allocation failed */
    MM_EDATA = -5,    /* data unusable (NaN, single class, empty after trim) */
};

typedef struct mm_err {
    int code;          /* last MM_E* code, 0 when none */
    char msg[1024];    /* one line, no trailing newline */
} mm_err;

/* Fill err (may be NULL) with a printf-style message; returns code so that
 * callers can write `return mm_err_set(err, MM_EINVAL, "...")`. */
int mm_err_set(mm_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the existing message with "prefix: " (e.g. a file name). */
int mm_err_prefix(mm_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Checked allocation helpers: return NULL and set err on failure. n*size
 * overflow is detected. */
void *mm_malloc(size_t n, size_t size, mm_err *err);
void *mm_calloc(size_t n, size_t size, mm_err *err);

#endif
