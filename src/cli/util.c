/* util.c — see util.h. */
#include "cli/util.h"

#include "runtime/bundle.h"
#include "runtime/library.h"
#include "runtime/recommend.h"
#include "core/paths.h"

#include <errno.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mm_cli_fail(const char *cmd, const mm_err *err)
{
    fprintf(stderr, "melodic %s: %s\n", cmd, err && err->msg[0] ? err->msg : "failed");
    return 1;
}

int mm_cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "melodic %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'melodic %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int mm_cli_default_threads(void)
{
    int n = omp_get_max_threads();
    return n < 1 ? 1 : n;
}

long mm_cli_parse_long(const char *s, long min, long max)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    return v;
}

int mm_cli_load_config(const char *path, char **sets, size_t n_sets, mm_cfg **out, mm_err *err)
{
    mm_cfg *c = NULL;
    int rc = mm_cfg_load_file(path, &c, err);
    if (rc) return rc;
    if (c->type != MM_CFG_MAP) {
        mm_cfg_free(c);
        return mm_err_set(err, MM_EINVAL, "%s: expected a map of settings at the top level", path);
    }
    for (size_t i = 0; i < n_sets; i++)
        if ((rc = mm_cfg_set(c, sets[i], err))) { mm_cfg_free(c); return rc; }
    *out = c;
    return 0;
}

int mm_cli_is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

const char *mm_cli_recommend_config(const char *given, char *buf, size_t size, mm_err *err)
{
    if (given) return given;
    return mm_share_path(MM_CLI_RECOMMEND_CONFIG, buf, size, err) ? NULL : buf;
}

int mm_cli_check_speech_bundle(const mm_bundle *speech, const char *path, const mm_library *lib, mm_err *err)
{
    int k = mm_bundle_n_classes(speech);
    if (!lib || k != mm_library_n_classes(lib)) return 0;
    for (int c = 0; c < k; c++)
        if (strcmp(mm_bundle_class_name(speech, c), mm_library_class_name(lib, c))) return 0;
    char names[256] = "";
    for (int c = 0; c < k && strlen(names) < 200; c++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", c ? ", " : "", mm_bundle_class_name(speech, c));
    return mm_err_set(err, MM_EINVAL,
                      "%s: this bundle's classes are the music library's (%s): it is a music model; pass a "
                      "speech model (exported from a speech experiment) as --speech", path, names);
}

int mm_cli_speech_recommender(const mm_bundle *speech, const mm_library *lib, const mm_va_table *va,
                              mm_recommender **out, mm_err *err)
{
    int k = mm_bundle_n_classes(speech);
    const char **labels = mm_malloc((size_t)k, sizeof *labels, err);
    if (!labels) return MM_ENOMEM;
    for (int c = 0; c < k; c++) labels[c] = mm_bundle_class_name(speech, c);
    int rc = mm_recommender_create(lib, va, labels, k, out, err);
    free(labels);
    return rc;
}

void mm_cli_say(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

void mm_cli_show(void *ctx, const char *md)
{
    (void)ctx;
    fputs(md, stdout);
}
