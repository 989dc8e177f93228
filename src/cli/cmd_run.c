/* cmd_run.c — `melodic run EXPERIMENT.yaml`: the experiment runner; under
 * mpirun the units are shared among the ranks, and --shard I/N runs one
 * static share for job arrays (exp/runner.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/util.h"
#include "exp/runner.h"
#include "mpi/mpi.h"
#include "mpi/shard.h"

static const char *usage =
    "usage: melodic run EXPERIMENT.yaml [-o DIR] [--set key.path=value]... [-j N] [--resume] [--quiet] [--shard I/N]\n"
    "       mpirun -np N melodic run EXPERIMENT.yaml ...   (units shared among the ranks)\n"
    "\n"
    "Runs an experiment: features (a table, or a dataset + feature sets, cached),\n"
    "preprocessing fitted inside each training fold, models and ensembles, under a\n"
    "protocol (group_kfold by speaker by default where groups exist). Writes\n"
    "DIR/results.h5, DIR/summary.md and DIR/summary.json (README: Results).\n"
    "  -o DIR      output folder (default results/runs/<name>)\n"
    "  -j N        threads (default: all cores); results do not depend on it\n"
    "  --resume    reuse the folds a previous run of the same config finished\n"
    "  --set k=v   override a config value (repeatable), e.g. --set protocol.n_folds=3\n"
    "  --quiet     no summary table on stdout\n"
    "  --shard I/N fit only share I of N of the (model, round) units into DIR/units and\n"
    "              write DIR/parts/run-I-of-N.h5; when all N are done, 'melodic merge\n"
    "              DIR/parts/run-*.h5' (or 'melodic run --resume') writes the results\n"
    "Under mpirun/srun, DIR must be on a file system all ranks see, and -j defaults to\n"
    "the node's cores divided among its ranks; results equal the single-process run's.\n";

int mm_cmd_run(int argc, char **argv)
{
    const char *path = NULL;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t n_sets = 0;
    mm_run_opts o = {.n_threads = mm_cli_default_threads(), .progress = 1};
    mm_run_dist d = {0};
    int threads_set = 0;
    mm_err err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (mm_cli_is_help(a)) { fputs(usage, stdout); free(sets); return 0; }
        else if (!strcmp(a, "-o") && i + 1 < argc) o.out_dir = argv[++i];
        else if (!strcmp(a, "-j") && i + 1 < argc) {
            long v = mm_cli_parse_long(argv[++i], 1, 1024);
            if (v < 0) { free(sets); return mm_cli_usage("run", "-j expects a thread count >= 1, got '%s'", argv[i]); }
            o.n_threads = (int)v;
            threads_set = 1;
        } else if (!strcmp(a, "--shard") && i + 1 < argc) {
            if (mm_shard_parse(argv[++i], "--shard", &d.shard_index, &d.shard_count, &err)) { free(sets); return mm_cli_usage("run", "%s", err.msg); }
        } else if (!strcmp(a, "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (a[0] == '-') { free(sets); return mm_cli_usage("run", "unknown option '%s'", a); }
        else if (!path) path = a;
        else { free(sets); return mm_cli_usage("run", "unexpected argument '%s'", a); }
    }
    if (!path) { free(sets); return mm_cli_usage("run", "expected EXPERIMENT.yaml"); }
    mm_cfg *cfg = NULL;
    int rc = mm_mpi_init(&argc, &argv, &err);
    if (!threads_set) o.n_threads = mm_mpi_threads_per_rank(o.n_threads);
    if (!rc) rc = mm_mpi_agree(mm_cli_load_config(path, sets, n_sets, &cfg, &err), &err);
    o.config_path = path;
    if (!rc) rc = mm_experiment_run_dist(cfg, &o, &d, &err);
    if (rc && mm_mpi_rank() == 0) mm_cli_fail("run", &err);
    mm_cfg_free(cfg);
    mm_mpi_finalize();
    free(sets);
    return rc ? 1 : 0;
}
