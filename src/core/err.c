/* err.c — see err.h. */
#include "core/err.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mm_err_set(mm_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        char tmp[sizeof err->msg];
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        memcpy(err->msg, tmp, sizeof tmp);
        va_end(ap);
        for (char *p = err->msg; *p; p++)
            if (*p == '\n') *p = ' ';
        err->code = code;
    }
    return code;
}

int mm_err_prefix(mm_err *err, const char *fmt, ...)
{
    if (!err) return MM_EINVAL;
    char pre[256], old[sizeof err->msg - 260];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t lo = strnlen(err->msg, sizeof old - 1);
    memcpy(old, err->msg, lo);
    old[lo] = 0;
    size_t lp = strlen(pre);
    memcpy(err->msg, pre, lp);
    memcpy(err->msg + lp, ": ", 2);
    snprintf(err->msg + lp + 2, sizeof err->msg - lp - 2, "%s", old);
    return err->code;
}

void *mm_malloc(size_t n, size_t size, mm_err *err)
{
    if (size && n > SIZE_MAX / size) {
        mm_err_set(err, MM_ENOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = n * size;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) mm_err_set(err, MM_ENOMEM, "out of memory allocating %zu bytes", n * size);
    return p;
}

void *mm_calloc(size_t n, size_t size, mm_err *err)
{
    if (size && n > SIZE_MAX / size) {
        mm_err_set(err, MM_ENOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) mm_err_set(err, MM_ENOMEM, "out of memory allocating %zu bytes", n * size);
    return p;
}
