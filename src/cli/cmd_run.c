/* cmd_run.c — `melodic run EXPERIMENT.yaml`: the experiment runner; under
 * mpirun the units are shared among the ranks, and --shard I/N runs one
 * static share for job arrays (exp/runner.h). */
#include <getopt.h>
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
    "preprocessing fitted inside each training fold, models and ensembles (and, with\n"
    "search:, their hyperparameters chosen by nested group k-fold), under the config's\n"
    "protocol. Without a protocol: stratified 5-fold; data with groups (speakers,\n"
    "artists) needs a group protocol, e.g. 'protocol: {kind: stratified_group_kfold,\n"
    "n_folds: 5}'. Writes DIR/results.h5, DIR/summary.md and DIR/summary.json\n"
    "(README: Results).\n"
    "  -o DIR      output folder (default results/runs/<name>)\n"
    "  -j N        threads (default: all cores); results do not depend on it\n"
    "  --resume    reuse the (model, round) units a previous run of the same config finished\n"
    "  --set k=v   override a config value (repeatable), e.g. --set protocol.n_folds=3\n"
    "  --quiet     no summary table on stdout\n"
    "  --shard I/N fit only share I of N of the (model, round) units into DIR/units and\n"
    "              write DIR/parts/run-I-of-N.h5; when all N are done, 'melodic merge\n"
    "              DIR/parts/run-*.h5' (or 'melodic run --resume') writes the results\n"
    "Under mpirun/srun, DIR must be on a file system all ranks see, and -j defaults to\n"
    "the node's cores divided among its ranks; results equal the single-process run's.\n";



int mm_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"set", required_argument, NULL, 's'},
        {"resume", no_argument, NULL, 'r'}, {"quiet", no_argument, NULL, 'q'},
        {"shard", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0},
    };
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t n_sets = 0;
    mm_run_opts o = {.n_threads = mm_cli_default_threads(), .progress = 1, .on_progress = mm_cli_say,
                     .on_summary = mm_cli_show};
    mm_run_dist d = {0};
    int threads_set = 0, c;
    mm_err err = {0};
    if (!sets) return mm_cli_usage("run", "out of memory");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:j:h", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(usage, stdout); free(sets); return 0;
        case 'o': o.out_dir = optarg; break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) { free(sets); return mm_cli_usage("run", "-j expects a thread count >= 1, got '%s'", optarg); }
            o.n_threads = (int)v;
            threads_set = 1;
            break;
        case 'S':
            if (mm_shard_parse(optarg, "--shard", &d.shard_index, &d.shard_count, &err)) { free(sets); return mm_cli_usage("run", "%s", err.msg); }
            break;
        case 's': sets[n_sets++] = optarg; break;
        case 'r': o.resume = 1; break;
        case 'q': o.quiet = 1; break;
        default:
            free(sets);
            if (optopt && strchr("oj", optopt)) return mm_cli_usage("run", "-%c expects a value", optopt);
            return mm_cli_usage("run", "unknown option '%s'", argv[optind - 1]);
        }
    }
    const char *path = optind < argc ? argv[optind] : NULL;
    if (optind + 1 < argc) { free(sets); return mm_cli_usage("run", "unexpected argument '%s'", argv[optind + 1]); }
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
