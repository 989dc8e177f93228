/* testutil.h — shared helpers for the cmocka test programs.
 * Tests run from the repository root (tests/run_tests.sh cds there), so
 * fixtures are at tests/fixtures/... and data at $MELODIC_DATA or ../shared/data. */
#ifndef MM_TESTUTIL_H
#define MM_TESTUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* Max |a-b| and max |a-b| / max(|b|, floor) over n values. */
static inline double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static inline double tu_max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

/* Path to a data file under the data root, or NULL when the data is absent
 * (tests that need real data then skip). */
static inline const char *tu_data_root(void)
{
    const char *e = getenv("MELODIC_DATA");
    if (e && *e) return e;
    if (access("../shared/data", R_OK) == 0) return "../shared/data";
    if (access("data", R_OK) == 0) return "data";
    return NULL;
}

static inline const char *tu_model_root(void)
{
    const char *e = getenv("MELODIC_MODELS");
    if (e && *e) return e;
    if (access("../shared/models", R_OK) == 0) return "../shared/models";
    if (access("models", R_OK) == 0) return "models";
    return NULL;
}

/* Run a shell command, return its exit status (0..255) or -1. */
static inline int tu_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The melodic binary under test. */
static inline const char *tu_bin(void)
{
    const char *b = getenv("MELODIC_BIN");
    return b && *b ? b : "build/melodic";
}

#endif
