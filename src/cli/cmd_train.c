/* cmd_train.c — `melodic train` and `melodic predict` on feature tables. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/util.h"
#include "data/table.h"
#include "eval/metrics.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "learn/scaler.h"

static const char *train_usage =
    "usage: melodic train TABLE.h5|TABLE.csv --model NAME [--set key=value]... [--params FILE.yaml]\n"
    "                     [--seed S] [--no-scaler] [-j N] -o MODEL.h5\n"
    "\n"
    "Trains one learner (melodic models lists them) on every labelled row of a feature\n"
    "table. Features are standardised first (a scaler fitted on the table, saved with\n"
    "the model) unless --no-scaler. Hyperparameters as scikit-learn/xgboost name them,\n"
    "e.g. --set n_estimators=300 --set max_depth=8.\n";

static const char *predict_usage =
    "usage: melodic predict MODEL.h5 TABLE.h5|TABLE.csv [-o PRED.h5] [-j N]\n"
    "\n"
    "Applies a trained model; writes /y_pred and /proba (N × classes) and prints accuracy\n"
    "and macro-F1 when the table has labels.\n";

int mm_cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"model", required_argument, NULL, 'm'},
        {"params", required_argument, NULL, 'p'}, {"set", required_argument, NULL, 's'},
        {"no-scaler", no_argument, NULL, 'N'}, {"seed", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0},
    };
    const char *table_path = NULL, *model = NULL, *out = NULL, *params_path = NULL;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t n_sets = 0;
    long seed = 0;
    int threads = mm_cli_default_threads(), scaler = 1, c, rc = 2;
    mm_err err = {0};
    mm_cfg *params = NULL;
    mm_table *t = NULL;
    mm_learner *l = NULL;
    mm_scaler *sc = NULL;
    float *X = NULL;
    int32_t *y = NULL;
    mm_h5_out o = {.file = -1};
    if (!sets) return mm_cli_usage("train", "out of memory");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:j:", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(train_usage, stdout); rc = 0; goto done;
        case 'o': out = optarg; break;
        case 'm': model = optarg; break;
        case 'p': params_path = optarg; break;
        case 's': sets[n_sets++] = optarg; break;
        case 'N': scaler = 0; break;
        case 'S':
            if ((seed = mm_cli_parse_long(optarg, 0, 0x7fffffffL)) < 0) { mm_cli_usage("train", "--seed expects an integer >= 0"); goto done; }
            break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) { mm_cli_usage("train", "-j expects a thread count >= 1"); goto done; }
            threads = (int)v;
            break;
        default: mm_cli_usage("train", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    if (optind < argc) table_path = argv[optind];
    if (optind + 1 < argc) { mm_cli_usage("train", "unexpected argument '%s'", argv[optind + 1]); goto done; }
    if (!table_path || !model || !out) { mm_cli_usage("train", "expected TABLE, --model NAME and -o MODEL.h5"); goto done; }
    rc = params_path ? mm_cli_load_config(params_path, sets, n_sets, &params, &err) : 0;
    if (!rc && !params) {
        params = mm_cfg_new_map();
        for (size_t i = 0; i < n_sets && !rc; i++) rc = mm_cfg_set(params, sets[i], &err);
    }
    if (!rc) rc = mm_learner_create(model, params, (uint64_t)seed, threads, &l, &err);
    if (!rc) rc = mm_table_read(table_path, &t, &err);
    size_t m = 0;
    if (!rc) {
        X = malloc((t->n + 1) * t->d * sizeof *X);
        y = malloc((t->n + 1) * sizeof *y);
        if (!X || !y) rc = mm_err_set(&err, MM_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < t->n; i++)
            if (t->labels[i] >= 0) {
                memcpy(X + m * t->d, t->X + i * t->d, t->d * sizeof *X);
                y[m++] = t->labels[i];
            }
        if (!rc && m == 0) rc = mm_err_set(&err, MM_EDATA, "%s: no labelled rows to train on", table_path);
    }
    if (!rc && scaler) {
        rc = mm_scaler_fit(X, m, t->d, &sc, &err);
        if (!rc) rc = mm_scaler_transform(sc, X, m, t->d, &err);
    }
    if (!rc) {
        mm_fit_data fd = {.X = X, .y = y, .n = m, .d = t->d, .n_classes = t->n_classes};
        fprintf(stderr, "training %s on %zu rows × %zu features, %d classes\n", model, m, t->d, t->n_classes);
        rc = mm_learner_fit(l, &fd, &err);
    }
    if (!rc) rc = mm_h5_create(out, &o, &err);
    if (!rc) {
        hid_t g = mm_h5_group(o.file, "model", &err);
        if (g < 0) rc = err.code;
        else { rc = mm_learner_save(l, g, &err); H5Gclose(g); }
    }
    if (!rc && sc) {
        hid_t g = mm_h5_group(o.file, "scaler", &err);
        if (g < 0) rc = err.code;
        else { rc = mm_scaler_save(sc, g, &err); H5Gclose(g); }
    }
    if (!rc) rc = mm_h5_stamp_format(o.file, "melodic-trained-model", 1, &err);
    if (!rc) rc = mm_h5_write_strings(o.file, "label_names", (const char *const *)t->label_names, (size_t)t->n_classes, &err);
    if (!rc) rc = mm_h5_write_strings(o.file, "feature_names", (const char *const *)t->feature_names, t->d, &err);
    if (!rc && params) {
        char *yml = mm_cfg_to_yaml(params);
        rc = mm_h5_attr_set_str(o.file, "params", yml ? yml : "", &err);
        free(yml);
    }
    if (!rc) rc = mm_h5_attr_set_str(o.file, "table", table_path, &err);
    if (!rc) rc = mm_h5_commit(&o, &err);
    else if (o.file >= 0 || o.tmp) mm_h5_abort(&o);
    if (!rc) fprintf(stderr, "wrote %s\n", out);
    else rc = mm_cli_fail("train", &err);
done:
    free(X);
    free(y);
    mm_scaler_free(sc);
    mm_learner_free(l);
    mm_table_free(t);
    mm_cfg_free(params);
    free(sets);
    return rc;
}

int mm_cmd_predict(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *model_path = NULL, *table_path = NULL, *out = NULL;
    int threads = mm_cli_default_threads(), c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:j:", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'h': fputs(predict_usage, stdout); return 0;
        case 'o': out = optarg; break;
        case 'j':
            if ((v = mm_cli_parse_long(optarg, 1, 1024)) < 0) return mm_cli_usage("predict", "-j expects a thread count >= 1");
            threads = (int)v;
            break;
        default: return mm_cli_usage("predict", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) model_path = argv[optind];
    if (optind + 1 < argc) table_path = argv[optind + 1];
    if (optind + 2 < argc) return mm_cli_usage("predict", "unexpected argument '%s'", argv[optind + 2]);
    if (!model_path || !table_path) return mm_cli_usage("predict", "expected MODEL.h5 TABLE.h5");
    mm_err err = {0};
    hid_t f = -1;
    mm_learner *l = NULL;
    mm_scaler *sc = NULL;
    mm_table *t = NULL;
    float *proba = NULL;
    int32_t *yp = NULL;
    char **labels = NULL;
    size_t n_labels = 0;
    int rc = mm_h5_open_read(model_path, &f, &err);
    if (!rc) rc = mm_h5_check_format(f, "melodic-trained-model", 1, NULL, &err);
    /* label names first: the model must predict one probability per name */
    if (!rc) rc = mm_h5_read_strings(f, "label_names", &labels, &n_labels, &err);
    if (!rc) rc = mm_check_class_names((const char *const *)labels, n_labels, "label_names", &err);
    if (!rc) {
        hid_t g = mm_h5_open_group(f, "model", &err);
        if (g < 0) rc = err.code;
        else { rc = mm_learner_load_expect(g, threads, (int)n_labels, 0, &l, &err); H5Gclose(g); }
    }
    if (!rc && mm_h5_exists(f, "scaler")) {
        hid_t g = mm_h5_open_group(f, "scaler", &err);
        if (g < 0) rc = err.code;
        else { rc = mm_scaler_load(g, &sc, &err); H5Gclose(g); }
        if (!rc && mm_scaler_dim(sc) != l->n_features)
            rc = mm_err_set(&err, MM_EFORMAT, "scaler: fitted on %zu features, the model reads %zu", mm_scaler_dim(sc), l->n_features);
    }
    if (f >= 0) mm_h5_close(f);
    if (rc) mm_err_prefix(&err, "%s", model_path);
    if (!rc) rc = mm_table_read(table_path, &t, &err);
    if (!rc && t->d != l->n_features)
        rc = mm_err_set(&err, MM_EINVAL, "%s has %zu features but the model was trained on %zu", table_path, t->d, l->n_features);
    if (!rc && sc) rc = mm_scaler_transform(sc, t->X, t->n, t->d, &err);
    int k = l ? l->n_classes : 0;
    if (!rc) {
        proba = malloc((t->n + 1) * (size_t)k * sizeof *proba);
        yp = malloc((t->n + 1) * sizeof *yp);
        if (!proba || !yp) rc = mm_err_set(&err, MM_ENOMEM, "out of memory");
    }
    if (!rc) rc = mm_learner_predict_proba(l, t->X, t->n, t->d, proba, &err);
    if (!rc) {
        mm_proba_argmax(proba, t->n, k, yp);
        size_t m = 0;
        for (size_t i = 0; i < t->n; i++) if (t->labels[i] >= 0) m++;
        if (m == t->n && t->n_classes == k) {
            mm_metrics *met = NULL;
            if (mm_metrics_compute(t->labels, yp, t->n, k, &met, &err) == 0) {
                printf("accuracy %.4f  macro-F1 %.4f  (%zu rows)\n", met->accuracy, met->macro_f1, t->n);
                mm_metrics_free(met);
            }
        }
    }
    if (!rc && out) {
        mm_h5_out o;
        rc = mm_h5_create(out, &o, &err);
        if (!rc) {
            hsize_t n = t->n, d2[2] = {t->n, (hsize_t)k};
            rc = mm_h5_stamp_format(o.file, "melodic-predictions", 1, &err);
            if (!rc) rc = mm_h5_write_i32(o.file, "y_pred", yp, 1, &n, &err);
            if (!rc) rc = mm_h5_write_f32(o.file, "proba", proba, 2, d2, &err);
            if (!rc) rc = mm_h5_write_strings(o.file, "label_names", (const char *const *)labels, n_labels, &err);
            if (!rc) rc = mm_h5_write_strings(o.file, "paths", (const char *const *)t->paths, t->n, &err);
            if (!rc) rc = mm_h5_commit(&o, &err);
            else mm_h5_abort(&o);
        }
    } else if (!rc) {
        for (size_t i = 0; i < t->n && i < 20; i++)
            printf("%s\t%s\t%.3f\n", t->paths[i][0] ? t->paths[i] : "-", labels[yp[i]], proba[i * k + yp[i]]);
        if (t->n > 20) printf("... (%zu rows; -o PRED.h5 writes them all)\n", t->n);
    }
    if (rc) mm_cli_fail("predict", &err);
    mm_h5_free_strings(labels, n_labels);
    free(proba);
    free(yp);
    mm_table_free(t);
    mm_scaler_free(sc);
    mm_learner_free(l);
    return rc ? 1 : 0;
}
