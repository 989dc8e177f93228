/* cmd_merge.c — `melodic merge PART... -o OUT`: joins the parts that
 * `extract --shard I/N` or `run --shard I/N` wrote (src/data/shard_table.h,
 * exp/runner.h). Feature-table parts become one table equal to the
 * single-process extraction; run parts (DIR/parts/run-I-of-N.h5) are checked
 * and their units assembled into DIR/results.h5 without fitting anything. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/util.h"
#include "data/shard_table.h"
#include "exp/runner.h"

static const char *usage =
    "usage: melodic merge PART.h5... -o OUT.h5          (parts of 'extract --shard I/N')\n"
    "       melodic merge DIR/parts/run-*.h5 [-o DIR] [--quiet]   (parts of 'run --shard I/N')\n"
    "\n"
    "Joins the N parts of a sharded job. Refused before any work: parts of different\n"
    "configs or datasets, different shard counts, a shard given twice or missing.\n"
    "Feature tables: the merged table equals the one a single 'melodic extract' writes.\n"
    "Runs: every unit must be in DIR/units; writes DIR/results.h5, summary.md, summary.json\n"
    "(equal to a single-process run's predictions, probabilities, metrics and curves).\n"
    "  -o OUT       output table (feature parts; required), or the run folder holding\n"
    "               units/ if it has moved (default: the folder the run parts name)\n"
    "  -j N         threads for the report (t-SNE)\n"
    "  --quiet      no summary table on stdout\n";



static int merge_runs(char **parts, size_t n, const char *out, int threads, int quiet, mm_err *err)
{
    mm_run_part *p = calloc(n, sizeof *p);
    if (!p) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = 0;
    size_t np = 0;
    for (; np < n && !rc; np++) rc = mm_run_part_read(parts[np], &p[np], err);
    for (size_t i = 1; i < n && !rc; i++) {
        if (strcmp(p[0].hash, p[i].hash) || strcmp(p[0].config_yaml, p[i].config_yaml))
            rc = mm_err_set(err, MM_EINVAL, "%s and %s come from different configs or feature tables (their resolved configs differ); merge parts of one run only", parts[0], parts[i]);
        else if (p[0].count != p[i].count)
            rc = mm_err_set(err, MM_EINVAL, "%s is shard %d/%d but %s is shard %d/%d: the shard counts differ", parts[0], p[0].index, p[0].count, parts[i], p[i].index, p[i].count);
        for (size_t j = 0; j < i && !rc; j++)
            if (p[j].index == p[i].index) rc = mm_err_set(err, MM_EINVAL, "shard %d/%d given twice: %s and %s", p[i].index, p[i].count, parts[j], parts[i]);
    }
    if (!rc && (int)n != p[0].count) {
        char have[512] = "", miss[512] = "";
        for (int s = 1; s <= p[0].count; s++) {
            int found = 0;
            for (size_t i = 0; i < n; i++) found |= p[i].index == s;
            char *dst = found ? have : miss;
            char buf[32];
            snprintf(buf, sizeof buf, "%s%d", dst[0] ? ", " : "", s);
            strncat(dst, buf, sizeof have - strlen(dst) - 1);
        }
        rc = mm_err_set(err, MM_EINVAL, "missing part: shard(s) %s of %d not given (have %s)", miss, p[0].count, have);
    }
    mm_cfg *cfg = NULL;
    if (!rc) rc = mm_cfg_parse_string(p[0].config_yaml, p[0].config_path, &cfg, err);
    if (!rc) {
        mm_run_opts o = {.out_dir = out ? out : p[0].out_dir, .config_path = p[0].config_path,
                         .n_threads = threads, .resume = 1, .progress = 1, .quiet = quiet,
                         .on_progress = mm_cli_say, .on_summary = mm_cli_show};
        mm_run_dist d = {.assemble_only = 1, .parts_count = p[0].count};
        rc = mm_experiment_run_dist(cfg, &o, &d, err);
    }
    mm_cfg_free(cfg);
    for (size_t i = 0; i < np; i++) mm_run_part_release(&p[i]);
    free(p);
    return rc;
}

int mm_cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"quiet", no_argument, NULL, 'q'}, {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    char **parts = calloc((size_t)argc + 1, sizeof *parts);
    size_t n = 0;
    int threads = mm_cli_default_threads(), quiet = 0, c, rc = 0, kind = 0, usage_rc = 0;
    mm_err err = {0};
    if (!parts) return mm_cli_usage("merge", "out of memory");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:j:", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(usage, stdout); goto done;
        case 'o': out = optarg; break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) {
                usage_rc = mm_cli_usage("merge", "-j expects a thread count >= 1, got '%s'", optarg);
                goto done;
            }
            threads = (int)v;
            break;
        case 'q': quiet = 1; break;
        default: usage_rc = mm_cli_usage("merge", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    while (optind < argc) parts[n++] = argv[optind++];
    if (n == 0) { usage_rc = mm_cli_usage("merge", "expected the part files to merge"); goto done; }
    for (size_t i = 0; i < n && !rc; i++) {
        int k = mm_shard_part_kind(parts[i], &err);
        if (k < 0) rc = k;
        else if (kind && k != kind) rc = mm_err_set(&err, MM_EINVAL, "%s: feature-table parts and run parts cannot be merged together", parts[i]);
        else kind = k;
    }
    if (!rc && kind == 1) {
        if (!out) { usage_rc = mm_cli_usage("merge", "feature-table parts need -o OUT.h5"); goto done; }
        mm_table *t = NULL;
        rc = mm_shard_merge_tables((const char *const *)parts, n, &t, &err);
        if (!rc) rc = mm_table_write(t, out, &err);
        if (!rc) fprintf(stderr, "wrote %s: %zu clips × %zu features from %zu parts\n", out, t->n, t->d, n);
        mm_table_free(t);
    } else if (!rc) {
        rc = merge_runs(parts, n, out, threads, quiet, &err);
    }
    if (rc) mm_cli_fail("merge", &err);
done:
    free(parts);
    return usage_rc ? usage_rc : rc ? 1 : 0;
}
