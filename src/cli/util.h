/* util.h — helpers shared by the subcommands: option parsing, config
 * loading with --set overrides, thread counts. */
#ifndef MM_CLI_UTIL_H
#define MM_CLI_UTIL_H

#include <stddef.h>
#include "core/err.h"
#include "io/cfg.h"

/* Print "melodic <cmd>: <msg>" to stderr; returns 1 (the failure status). */
int mm_cli_fail(const char *cmd, const mm_err *err);
int mm_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Callbacks for the runner and export: a progress line to stderr (with a
 * newline), a summary table to stdout as given. ctx unused. */
void mm_cli_say(void *ctx, const char *line);
void mm_cli_show(void *ctx, const char *md);

/* Default thread count: $OMP_NUM_THREADS or the number of cores. */
int mm_cli_default_threads(void);
/* Parse a positive integer option value; returns -1 when invalid. */
long mm_cli_parse_long(const char *s, long min, long max);

/* Load a YAML config and apply `--set` assignments in order. */
int mm_cli_load_config(const char *path, char **sets, size_t n_sets, mm_cfg **out, mm_err *err);

/* The valence–arousal table and recommend defaults every command falls
 * back to, by its path in the source tree (found by mm_share_path: the
 * installation's share/melodic, then the checkout; never the cwd). */
#define MM_CLI_RECOMMEND_CONFIG "configs/recommend/default.yaml"

/* `given` when not NULL, else the installed MM_CLI_RECOMMEND_CONFIG written
 * into buf; NULL with err naming every path tried when it is nowhere. */
const char *mm_cli_recommend_config(const char *given, char *buf, size_t size, mm_err *err);

/* 0 when `speech` can serve as the speech model beside `lib`, else a
 * one-line error naming `path`: a bundle whose labels are the library's
 * music classes (a music model passed as --speech) is refused. */
struct mm_bundle;
struct mm_library;
int mm_cli_check_speech_bundle(const struct mm_bundle *speech, const char *path, const struct mm_library *lib,
                               mm_err *err);

/* A recommender over `lib` whose speech labels are `speech`'s classes, in
 * its class order (the recommender keeps its own copy of the names). */
struct mm_va_table;
struct mm_recommender;
int mm_cli_speech_recommender(const struct mm_bundle *speech, const struct mm_library *lib,
                              const struct mm_va_table *va, struct mm_recommender **out, mm_err *err);

/* Is this argument a help flag? */
int mm_cli_is_help(const char *a);

#endif
