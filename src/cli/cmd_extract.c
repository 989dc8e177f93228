/* cmd_extract.c — `melodic extract`: a dataset config or plain files through
 * feature sets into an HDF5 feature table (see src/data/table.h). Under
 * mpirun the files are shared among the ranks (mm_extract_dist) and rank 0
 * writes the table; --shard I/N extracts one static share (src/mpi/shard.h)
 * into a part file for `melodic merge` (src/data/shard_table.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/util.h"
#include "core/paths.h"
#include "data/extract.h"
#include "data/shard_table.h"
#include "mpi/mpi.h"
#include "mpi/shard.h"

static const char *usage_text =
    "usage: melodic extract CONFIG.yaml [-o OUT.h5] [-j N] [--set key.path=value]... [--skip-bad] [--shard I/N]\n"
    "       melodic extract --features SET[,SET...] [-o OUT.h5] [-j N] [--skip-bad] [--trim] [--shard I/N] FILE...\n"
    "       mpirun -np N melodic extract ...   (files shared among the ranks; one table)\n"
    "\n"
    "Runs audio through feature sets into a feature table (HDF5, layout in README).\n"
    "CONFIG keys: dataset (see configs/datasets/), features (a set name, a list, or\n"
    "{set: NAME, params: {...}}), audio (trim, trim_top_db, fixed_seconds, fixed_center,\n"
    "peak_normalize, min_seconds), output, data_root, model_root. Other experiment keys\n"
    "are ignored, so an experiment file can be extracted too.\n"
    "  -o OUT.h5      output table (default: the config's 'output', else features.h5)\n"
    "  -j N           threads (default: all cores)\n"
    "  --skip-bad     leave unreadable files out (listed in /skipped) instead of failing\n"
    "  --trim         (plain files) trim leading/trailing silence as librosa.effects.trim\n"
    "  --shard I/N    extract only share I of N (files dealt largest first) into a part\n"
    "                 file (-o, default OUT.part-I-of-N.h5); join the N parts with\n"
    "                 'melodic merge PART.h5... -o OUT.h5' (equal to one run's table)\n"
    "Under mpirun/srun, -j defaults to the node's cores divided among its ranks.\n"
    "Without a config, labels and groups are -1.\n";

static const char *const top_keys[] = {"dataset", "features", "audio", "output", "data_root",
                                       "model_root", "name", "description", "seed", "protocol",
                                       "preprocessing", "models", "ensembles", "tsne", "repeats",
                                       "allow_group_leakage", "cache", "threads", "validation",
                                       /* an experiment's own sections: an experiment file is an extraction config */
                                       "augment", "search", "robustness", "table",
                                       "augment_before_split", "allow_copy_leakage", NULL};

/* Extraction progress on stderr: on a terminal one line rewritten in place
 * ('\r'), else one line per call. */
typedef struct progress_out {
    int tty;    /* stderr is a terminal */
    int open;   /* a '\r' line is waiting for its newline */
} progress_out;

static void say_progress(void *ctx, const char *line)
{
    progress_out *p = ctx;
    if (p->tty) {
        fprintf(stderr, "\r%s   ", line);
        p->open = 1;
    } else {
        fprintf(stderr, "%s\n", line);
    }
}

/* End a rewritten line before anything else goes to stderr. */
static void end_progress(progress_out *p)
{
    if (p->open) fputc('\n', stderr);
    p->open = 0;
}

int mm_cmd_extract(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"shard", required_argument, NULL, 'S'},
        {"set", required_argument, NULL, 's'}, {"features", required_argument, NULL, 'F'},
        {"skip-bad", no_argument, NULL, 'B'}, {"trim", no_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *cfg_path = NULL, *out_path = NULL, *features = NULL;
    char **sets = calloc((size_t)argc + 1, sizeof *sets), **files = calloc((size_t)argc + 1, sizeof *files);
    size_t n_sets = 0, n_files = 0;
    int threads = mm_cli_default_threads(), threads_set = 0, skip_bad = 0, trim = 0, rc = 0, c;
    int shard_i = 0, shard_n = 0, usage = 0, mpi_on = 0, rank = 0, agreed = 0;
    mm_err err = {0};
    mm_cfg *cfg = NULL;
    mm_dataset *view = NULL;
    int64_t *part_files = NULL;
    size_t *part_idx = NULL;
    mm_dataset *ds = NULL;
    mm_featset_inst *fs = NULL;
    size_t n_fs = 0;
    mm_table *t = NULL;
    char *yaml = NULL;
    progress_out pout = {.tty = isatty(2)};
    if (!sets || !files) { usage = mm_cli_usage("extract", "out of memory"); goto fail; }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:j:", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(usage_text, stdout); goto fail;
        case 'o': out_path = optarg; break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) {
                usage = mm_cli_usage("extract", "-j expects a thread count >= 1, got '%s'", optarg);
                goto fail;
            }
            threads = (int)v;
            threads_set = 1;
            break;
        case 'S':
            if (mm_shard_parse(optarg, "--shard", &shard_i, &shard_n, &err)) { usage = mm_cli_usage("extract", "%s", err.msg); goto fail; }
            break;
        case 's': sets[n_sets++] = optarg; break;
        case 'F': features = optarg; break;
        case 'B': skip_bad = 1; break;
        case 'T': trim = 1; break;
        default: usage = mm_cli_usage("extract", "unknown option '%s'", argv[optind - 1]); goto fail;
        }
    }
    while (optind < argc) files[n_files++] = argv[optind++];
    if (!features && n_files) {     /* config form: the first positional is the config */
        cfg_path = files[0];
        memmove(files, files + 1, (n_files - 1) * sizeof *files);
        n_files--;
    }
    if (!features && !cfg_path) { usage = mm_cli_usage("extract", "expected CONFIG.yaml or --features SET FILE..."); goto fail; }
    if (features && n_files == 0) { usage = mm_cli_usage("extract", "--features needs at least one audio file"); goto fail; }
    if (!features && n_files) { usage = mm_cli_usage("extract", "unexpected argument '%s'", files[0]); goto fail; }

    if ((rc = mm_mpi_init(&argc, &argv, &err))) { agreed = 1; goto fail; }
    mpi_on = 1;
    rank = mm_mpi_rank();
    if (!threads_set) threads = mm_mpi_threads_per_rank(threads);
    if (cfg_path) {
        if ((rc = mm_cli_load_config(cfg_path, sets, n_sets, &cfg, &err))) goto fail;
        if ((rc = mm_cfg_check_keys(cfg, "extraction config", top_keys, &err))) goto fail;
    } else {
        cfg = mm_cfg_new_map();
        char list[4096];
        snprintf(list, sizeof list, "[%s]", features);
        mm_cfg *fv = NULL;
        if ((rc = mm_cfg_parse_string(list, "--features", &fv, &err))) goto fail;
        rc = mm_cfg_put(cfg, "features", fv, &err);
        mm_cfg_free(fv);
        if (rc) goto fail;
        if (trim && (rc = mm_cfg_set(cfg, "audio.trim=true", &err))) goto fail;
        for (size_t i = 0; i < n_sets; i++)
            if ((rc = mm_cfg_set(cfg, sets[i], &err))) goto fail;
    }
    const char *data_root = NULL, *model_root = NULL, *cfg_out = NULL;
    if ((rc = mm_cfg_get_str(cfg, "data_root", NULL, &data_root, &err)) ||
        (rc = mm_cfg_get_str(cfg, "model_root", NULL, &model_root, &err)) ||
        (rc = mm_cfg_get_str(cfg, "output", NULL, &cfg_out, &err)))
        goto fail;
    mm_extract_opts o = {0};
    mm_pipeline_audio pa;   /* decode options and audio.normalize, as melodic run reads them */
    if ((rc = mm_pipeline_audio_from_cfg(mm_cfg_child(cfg, "audio"), &pa, &err))) goto fail;
    o.audio = pa.audio;
    o.level = pa.level;
    if ((rc = mm_featsets_create(mm_cfg_child(cfg, "features"), mm_model_root(model_root), &fs, &n_fs, &err))) goto fail;
    if (cfg_path) {
        if ((rc = mm_dataset_load(mm_cfg_child(cfg, "dataset"), mm_data_root(data_root), &ds, &err))) goto fail;
    } else if ((rc = mm_dataset_from_files(files, n_files, &ds, &err))) goto fail;
    yaml = mm_cfg_to_yaml(cfg);
    o.n_threads = threads;
    o.skip_bad = skip_bad;
    if (rank == 0) { o.on_progress = say_progress; o.progress_ctx = &pout; }
    o.config_yaml = yaml;
    const char *dest = out_path ? out_path : cfg_out ? cfg_out : "features.h5";
    char part_path[4096];
    /* every rank set up (a rank that failed agrees from 'fail'), or none goes on */
    agreed = 1;
    if ((rc = mm_mpi_agree(0, &err))) goto fail;
    if (shard_n) {
        if (mm_mpi_active()) { rc = mm_err_set(&err, MM_EINVAL, "--shard %d/%d under mpirun: use one or the other (mpirun shares the files itself)", shard_i, shard_n); goto fail; }
        if ((size_t)shard_n > ds->n) { rc = mm_err_set(&err, MM_EINVAL, "--shard %d/%d: %d shards for %zu files; use at most %zu shards", shard_i, shard_n, shard_n, ds->n, ds->n); goto fail; }
        uint64_t *sizes = NULL;
        if ((rc = mm_shard_file_sizes(ds, &sizes, &err))) goto fail;
        int *owner = malloc((ds->n + 1) * sizeof *owner);
        part_idx = malloc((ds->n + 1) * sizeof *part_idx);
        part_files = malloc((ds->n + 1) * sizeof *part_files);
        if (!owner || !part_idx || !part_files) { free(sizes); free(owner); rc = mm_err_set(&err, MM_ENOMEM, "out of memory"); goto fail; }
        mm_shard_assign(sizes, ds->n, shard_n, owner);
        size_t m = 0;
        for (size_t i = 0; i < ds->n; i++)
            if (owner[i] == shard_i - 1) { part_idx[m] = i; part_files[m++] = (int64_t)i; }
        free(sizes);
        free(owner);
        if ((rc = mm_shard_subset(ds, part_idx, m, &view, &err))) goto fail;
        if ((rc = mm_extract(view, fs, n_fs, &o, &t, &err))) goto fail;
        if (out_path) snprintf(part_path, sizeof part_path, "%s", out_path);
        else {
            const char *dot = strrchr(dest, '.');
            int stem = dot && !strchr(dot, '/') ? (int)(dot - dest) : (int)strlen(dest);
            snprintf(part_path, sizeof part_path, "%.*s.part-%d-of-%d.h5", stem, dest, shard_i, shard_n);
        }
        mm_shard_part_info info = {.index = shard_i, .count = shard_n, .n_files = ds->n,
                                   .dataset_fp = mm_shard_dataset_fingerprint(ds), .m = m,
                                   .files = part_files, .paths = view->paths};
        if ((rc = mm_shard_write_table_part(t, &info, part_path, &err))) goto fail;
        dest = part_path;
    } else {
        if ((rc = mm_extract_dist(ds, fs, n_fs, &o, &t, &err))) goto fail;
        if (rank == 0 && (rc = mm_table_write(t, dest, &err))) goto fail;
    }
    end_progress(&pout);
    if (rank == 0) {
        fprintf(stderr, "wrote %s: %zu clips × %zu features", dest, t->n, t->d);
        if (shard_n) fprintf(stderr, " (shard %d/%d of %zu files)", shard_i, shard_n, ds->n);
        if (mm_mpi_active()) fprintf(stderr, " (%d MPI ranks × %d threads)", mm_mpi_size(), threads);
        if (t->n_skipped) fprintf(stderr, " (%zu skipped, listed in /skipped)", t->n_skipped);
        fputc('\n', stderr);
    }
fail:
    end_progress(&pout);
    if (mpi_on && !agreed) rc = mm_mpi_agree(rc, &err);
    if (rc && rank == 0) mm_cli_fail("extract", &err);
    mm_shard_subset_free(view);
    free(part_idx);
    free(part_files);
    if (mpi_on) mm_mpi_finalize();
    mm_table_free(t);
    mm_featsets_free(fs, n_fs);
    mm_dataset_free(ds);
    mm_cfg_free(cfg);
    free(yaml);
    free(sets);
    free(files);
    return usage ? usage : rc ? 1 : 0;
}
