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

/* assert_memory_equal that says what it compared and where: the two
 * expressions, the first differing byte and, when the size is a multiple of
 * 4 or 8, that element read as float32 / float64 / int32 (which one applies
 * is the reader's call: the compared arrays are named). Replaces cmocka's,
 * which prints a byte dump without names, in every test program. */
void cm_print_error(const char *const format, ...);   /* cmocka's, exported but not in its header */
static inline void tu_mem_equal(const char *ea, const char *eb, const void *a, const void *b, size_t n,
                                const char *file, int line)
{
    const unsigned char *x = a, *y = b;
    size_t i = 0;
    while (i < n && x[i] == y[i]) i++;
    if (i == n) return;
    char what[256] = "";
    if (n % 8 == 0) {
        double u, v;
        memcpy(&u, x + i / 8 * 8, 8);
        memcpy(&v, y + i / 8 * 8, 8);
        snprintf(what, sizeof what, "; as float64 element %zu: %.17g vs %.17g", i / 8, u, v);
    }
    if (n % 4 == 0) {
        float u, v;
        int32_t s, t;
        memcpy(&u, x + i / 4 * 4, 4);
        memcpy(&v, y + i / 4 * 4, 4);
        memcpy(&s, x + i / 4 * 4, 4);
        memcpy(&t, y + i / 4 * 4, 4);
        size_t l = strlen(what);
        snprintf(what + l, sizeof what - l, "; as float32/int32 element %zu: %.9g vs %.9g / %d vs %d", i / 4, u, v,
                 s, t);
    }
    cm_print_error("%s:%d: %s and %s (%zu bytes) differ first at byte %zu%s\n", file, line, ea, eb, n, i, what);
    _fail(file, line);
}
#undef assert_memory_equal
#define assert_memory_equal(a, b, n) \
    tu_mem_equal(#a, #b, (const void *)(a), (const void *)(b), (size_t)(n), __FILE__, __LINE__)

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

/* The whole file as a NUL-terminated string (malloc'd), or NULL when it cannot be read. */
static inline char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = s ? fread(s, 1, (size_t)n, f) : 0;
    if (s) s[got] = 0;
    fclose(f);
    return s;
}

/* The same kept by the helper until its next call ("" when unreadable), for
 * one-off reads such as a command's stderr. */
static inline const char *tu_slurp(const char *path)
{
    static char *last;
    free(last);
    last = tu_read_file(path);
    return last ? last : "";
}

/* The melodic binary under test. */
static inline const char *tu_bin(void)
{
    const char *b = getenv("MELODIC_BIN");
    return b && *b ? b : "build/melodic";
}

/* The environment for running melodic under mpirun from a test: as root
 * (CI) Open MPI wants the ALLOW_RUN_AS_ROOT pair; one machine, no network
 * probing; one OpenMP thread unless set; under ASan (MELODIC_ASAN) Open
 * MPI's own leaks are suppressed (tests/lsan_mpi.supp). */
static inline void tu_mpi_env(void)
{
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_btl", "self,vader", 0);
    setenv("OMP_NUM_THREADS", "1", 0);
    if (!getenv("MELODIC_ASAN")) return;
    char cwd[1024], s[1200];
    if (getcwd(cwd, sizeof cwd)) {
        /* full unwinding: the leaking frames sit in plugins whose own
         * frames LSan cannot name; the libmpi frames below them match */
        snprintf(s, sizeof s, "suppressions=%s/tests/lsan_mpi.supp:print_suppressions=0:fast_unwind_on_malloc=0", cwd);
        setenv("LSAN_OPTIONS", s, 1);
    }
    setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 1);
    setenv("PMIX_MCA_mca_base_component_disable_dlclose", "1", 1);
}

/* Run the melodic binary with the arguments fmt (np > 0: under `mpirun
 * --oversubscribe -np np`), stdout to out_path, stderr to err_path; the
 * exit status. */
static inline int tu_vmelodic(int np, const char *out_path, const char *err_path, const char *fmt, va_list ap)
{
    char args[4096];
    vsnprintf(args, sizeof args, fmt, ap);
    if (np)
        return tu_system("mpirun --oversubscribe -np %d %s %s > %s 2> %s", np, tu_bin(), args, out_path, err_path);
    return tu_system("%s %s > %s 2> %s", tu_bin(), args, out_path, err_path);
}

#endif
