/* cmd_tsne.c — `melodic tsne TABLE.h5 -o OUT.h5 [--perplexity P] [--seed S]
 * [--threads N] [--set key=value]...`: 2-D Barnes–Hut t-SNE of a feature
 * table (datasets /features (n, d) float32 and /labels (n) int32; read
 * directly until the shared table reader is used here). Writes /tsne/xy
 * (n, 2), /tsne/labels (n), /tsne/label_names when the table has them, and
 * attributes kl (sklearn's BH estimate), kl_exact, n_iter, perplexity,
 * learning_rate on /tsne. The output is written atomically.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/util.h"
#include "core/err.h"
#include "eval/tsne.h"
#include "io/cfg.h"
#include "io/h5.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: melodic tsne TABLE.h5 -o OUT.h5 [--perplexity P] [--seed S] [--threads N]\n"
            "                    [--set key=value]...\n"
            "2-D t-SNE (Barnes-Hut, scikit-learn 1.2 defaults) of the /features of a table.\n"
            "  -o, --output OUT.h5   output file (written atomically): /tsne/xy, /tsne/labels,\n"
            "                        attributes kl, kl_exact, n_iter on /tsne\n"
            "  --perplexity P        default 30 (must be < number of samples)\n"
            "  --seed S              seed of the random initialisation (init=random)\n"
            "  --threads N           OpenMP threads (default: all); results do not depend on it\n"
            "  --set key=value       t-SNE setting: perplexity, early_exaggeration,\n"
            "                        learning_rate (number or auto), n_iter,\n"
            "                        n_iter_without_progress, min_grad_norm, angle,\n"
            "                        init (pca|random), seed, n_threads\n");
}

static int fail(const mm_err *e)
{
    fprintf(stderr, "melodic tsne: %s\n", e->msg);
    return 1;
}

int mm_cmd_tsne(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"output", required_argument, NULL, 'o'},
        {"perplexity", required_argument, NULL, 'P'}, {"seed", required_argument, NULL, 'S'},
        {"threads", required_argument, NULL, 'T'}, {"set", required_argument, NULL, 's'}, {NULL, 0, NULL, 0},
    };
    const char *in = NULL, *out = NULL;
    mm_cfg *set = mm_cfg_new_map();
    mm_err err = {0};
    int status = 1, c, idx;
    float *X = NULL, *xy = NULL;
    int32_t *labels = NULL;
    char **names = NULL;
    size_t n_names = 0;
    hid_t f = -1;
    if (!set) {
        fprintf(stderr, "melodic tsne: out of memory\n");
        return 1;
    }
    optind = 1;
    opterr = 0;
    while (idx = -1, (c = getopt_long(argc, argv, ":ho:", opts, &idx)) != -1) {
        char buf[300];
        switch (c) {
        case 'h': usage(stdout); status = 0; goto done;
        case 'o': out = optarg; continue;
        case 's': snprintf(buf, sizeof buf, "%s", optarg); break;
        case 'P': case 'S': case 'T':   /* a t-SNE setting by its own option: key=value */
            snprintf(buf, sizeof buf, "%s=%s", c == 'T' ? "n_threads" : opts[idx].name, optarg);
            break;
        case ':': status = mm_cli_usage("tsne", "option %s needs a value", argv[optind - 1]); goto done;
        default: status = mm_cli_usage("tsne", "unknown option '%s'", argv[optind - 1]); goto done;
        }
        if (!strchr(buf, '=')) {
            fprintf(stderr, "melodic tsne: --set expects key=value, got '%s'\n", optarg);
            status = 2;
            goto done;
        }
        if (mm_cfg_set(set, buf, &err)) {
            fprintf(stderr, "melodic tsne: --%s: %s\n", opts[idx].name, err.msg);
            status = 2;
            goto done;
        }
    }
    if (optind < argc) in = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "melodic tsne: unexpected argument '%s'\n", argv[optind]);
        status = 2;
        goto done;
    }
    if (!in || !out) {
        fprintf(stderr, "melodic tsne: needs a TABLE.h5 and -o OUT.h5 (see melodic tsne --help)\n");
        status = 2;
        goto done;
    }
    mm_tsne_params p;
    if (mm_tsne_params_from_cfg(set, &p, &err)) {
        fprintf(stderr, "melodic tsne: %s\n", err.msg);
        status = 2;
        goto done;
    }

    mm_h5_init();
    int rank;
    hsize_t dims[4], ldims[4];
    if (mm_h5_open_read(in, &f, &err)) { status = fail(&err); goto done; }
    if (mm_h5_read_f32(f, "features", 2, &X, &rank, dims, &err) ||
        mm_h5_read_i32(f, "labels", 1, &labels, &rank, ldims, &err)) {
        mm_err_prefix(&err, "%s", in);
        status = fail(&err);
        goto done;
    }
    if (ldims[0] != dims[0]) {
        mm_err_set(&err, MM_EFORMAT, "%s: /labels has %llu entries but /features has %llu rows", in,
                   (unsigned long long)ldims[0], (unsigned long long)dims[0]);
        status = fail(&err);
        goto done;
    }
    if (mm_h5_exists(f, "label_names") &&
        mm_h5_read_strings(f, "label_names", &names, &n_names, &err)) {
        mm_err_prefix(&err, "%s", in);
        status = fail(&err);
        goto done;
    }
    mm_h5_close(f);
    f = -1;
    size_t n = (size_t)dims[0], d = (size_t)dims[1];
    if (!(xy = mm_malloc(2 * n, sizeof *xy, &err))) { status = fail(&err); goto done; }
    mm_tsne_info info;
    if (mm_tsne_run(X, n, d, &p, xy, &info, &err)) {
        mm_err_prefix(&err, "%s", in);
        status = fail(&err);
        goto done;
    }
    mm_h5_out o;
    if (mm_h5_create(out, &o, &err)) { status = fail(&err); goto done; }
    hsize_t xd[2] = {n, 2}, nd = n;
    hid_t g = -1;
    int rc = mm_h5_stamp_format(o.file, "melodic-tsne", 1, &err);
    if (!rc) rc = mm_h5_write_f32(o.file, "tsne/xy", xy, 2, xd, &err);
    if (!rc) rc = mm_h5_write_i32(o.file, "tsne/labels", labels, 1, &nd, &err);
    if (!rc && names)
        rc = mm_h5_write_strings(o.file, "tsne/label_names", (const char *const *)names, n_names, &err);
    if (!rc && (g = mm_h5_open_group(o.file, "tsne", &err)) < 0) rc = MM_EIO;
    if (!rc) rc = mm_h5_attr_set_f64(g, "kl", info.kl, &err);
    if (!rc) rc = mm_h5_attr_set_f64(g, "kl_exact", info.kl_exact, &err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "n_iter", (int64_t)info.n_iter + 1, &err);
    if (!rc) rc = mm_h5_attr_set_f64(g, "perplexity", p.perplexity, &err);
    if (!rc) rc = mm_h5_attr_set_f64(g, "learning_rate", info.learning_rate, &err);
    if (!rc) rc = mm_h5_attr_set_str(g, "source", in, &err);
    if (g >= 0) H5Gclose(g);
    if (!rc) rc = mm_h5_commit(&o, &err);
    else mm_h5_abort(&o);
    if (rc) { status = fail(&err); goto done; }
    printf("%s: t-SNE of %zu x %zu, KL %.4f after %zu iterations\n", out, n, d, info.kl,
           info.n_iter + 1);
    status = 0;
done:
    if (f >= 0) mm_h5_close(f);
    mm_h5_free_strings(names, n_names);
    free(X);
    free(xy);
    free(labels);
    mm_cfg_free(set);
    return status;
}
