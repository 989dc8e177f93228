/* cmd_tag.c — `melodic tag [--model mn04] [--weights FILE] [-k 5] [--labels CSV] IN...`.
 *
 * Prints the top-k AudioSet classes with their sigmoid scores for each audio
 * file, as the EfficientAT and PANNs inference scripts do. Class names come
 * from configs/audioset_labels.csv (AudioSet ontology, CC BY 4.0), searched in
 * --labels, ./configs/, <dir of the melodic binary>/../configs/, then
 * <model_root>/audioset/class_labels_indices.csv. Models: cli/embed_models.h.
 */
#include <cblas.h>   /* openblas_set_num_threads */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio.h"
#include "cli/cli.h"
#include "cli/embed_models.h"
#include "cli/util.h"
#include "core/paths.h"

/* Parse "index,mid,display_name" lines (display_name possibly quoted with
 * commas inside, "" for a quote). names[i] malloc'd; refuses gaps, bad indices
 * and a count other than n. */
static int read_labels(const char *path, char **names, int n, mm_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return mm_err_set(err, MM_EIO, "%s: cannot open", path);
    char line[1024];
    int lineno = 0, count = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#' || (lineno == 1 && !strncmp(line, "index,", 6))) continue;
        char *end;
        long idx = strtol(line, &end, 10);
        char *c2 = *end == ',' ? strchr(end + 1, ',') : NULL;
        if (end == line || !c2 || idx < 0 || idx >= n || idx != count) {
            rc = mm_err_set(err, MM_EFORMAT, "%s:%d: expected 'index,mid,display_name' with "
                            "index %d, got '%.60s'", path, lineno, count, line);
            goto done;
        }
        char *s = c2 + 1, buf[512];
        size_t o = 0;
        if (*s == '"') {
            for (s++; *s && o + 1 < sizeof buf; s++) {
                if (*s == '"' && s[1] == '"') buf[o++] = '"', s++;
                else if (*s == '"') break;
                else buf[o++] = *s;
            }
        } else {
            while (*s && o + 1 < sizeof buf) buf[o++] = *s++;
        }
        buf[o] = 0;
        names[count] = strdup(buf);
        if (!names[count++]) {
            rc = mm_err_set(err, MM_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (count != n)
        rc = mm_err_set(err, MM_EFORMAT, "%s: %d class names, expected %d", path, count, n);
done:
    fclose(f);
    return rc;
}

static const char *find_labels(const char *given, char *buf, size_t size)
{
    if (given) return given;
    if (access("configs/audioset_labels.csv", R_OK) == 0) return "configs/audioset_labels.csv";
    char exe[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (l > 0) {
        exe[l] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, size, "%s/../configs/audioset_labels.csv", exe);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    mm_path_join(buf, size, mm_model_root(NULL), "audioset/class_labels_indices.csv");
    return buf;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: melodic tag [--model NAME] [--weights FILE] [-k K] [--labels CSV] IN...\n"
            "\n"
            "Top AudioSet classes of each audio file with their scores (sigmoid outputs).\n"
            "\n"
            "  --model NAME    backbone: %s (default mn04)\n"
            "  --weights FILE  checkpoint (default <model_root>/<model's file>)\n"
            "  -k K            classes per file (default 5, 1..527)\n"
            "  --labels CSV    class names (default configs/audioset_labels.csv)\n"
            "  -h, --help      this help\n",
            mm_embed_model_names());
}

int mm_cmd_tag(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"model", required_argument, NULL, 'm'},
        {"weights", required_argument, NULL, 'w'}, {"labels", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0},
    };
    const char *model = "mn04", *weights = NULL, *labels = NULL;
    long k = 5;
    const char **in = calloc((size_t)argc + 1, sizeof *in);
    size_t n_in = 0;
    const mm_embed_model *m = NULL;
    mm_err err = {0};
    char lbuf[PATH_MAX + 64], wpath[1024];
    char **names = NULL;
    float *sc = NULL;
    void *net = NULL;
    int ret = 1, ch;
    if (!in) return 1;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hk:", opts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'h': usage(stdout); ret = 0; goto done;
        case 'm': model = optarg; break;
        case 'w': weights = optarg; break;
        case 'l': labels = optarg; break;
        case 'k':
            k = strtol(optarg, &end, 10);
            if (*end || k < 1 || k > 527) {
                fprintf(stderr, "melodic tag: -k: expected an integer 1..527, got '%s'\n", optarg);
                ret = 2;
                goto done;
            }
            break;
        case ':': ret = mm_cli_usage("tag", "%s needs a value", argv[optind - 1]); goto done;
        default: ret = mm_cli_usage("tag", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    while (optind < argc) in[n_in++] = argv[optind++];
    if (!(m = mm_embed_model_find(model))) {
        fprintf(stderr, "melodic tag: --model '%s': expected one of %s\n", model,
                mm_embed_model_names());
        ret = 2;
        goto done;
    }
    if (!n_in) {
        fprintf(stderr, "melodic tag: no input files (see --help)\n");
        ret = 2;
        goto done;
    }
    if (k > m->n_classes) k = m->n_classes;
    const char *lpath = find_labels(labels, lbuf, sizeof lbuf);
    names = calloc((size_t)m->n_classes, sizeof *names);
    sc = malloc((size_t)m->n_classes * sizeof *sc);
    if (!names || !sc) {
        fprintf(stderr, "melodic tag: out of memory\n");
        goto done;
    }
    if (read_labels(lpath, names, m->n_classes, &err)) {
        fprintf(stderr, "melodic tag: labels: %s\n", err.msg);
        goto done;
    }
    mm_embed_weights_path(m, weights, wpath, sizeof wpath);
    if (m->load(wpath, &net, &err)) {
        fprintf(stderr, "melodic tag: %s\n", err.msg);
        goto done;
    }
    ret = 0;
    openblas_set_num_threads(1);   /* small sgemm calls: threads cost more than they give */
    for (size_t i = 0; i < n_in; i++) {
        mm_audio_opts o;
        mm_audio_opts_default(&o);
        o.target_sr = m->sample_rate;
        mm_audio a = {0};
        int r = mm_audio_load(in[i], &o, &a, &err);
        if (!r && (r = m->run(net, a.x, a.n, NULL, sc, 0, &err))) mm_err_prefix(&err, "%s", in[i]);
        mm_audio_free(&a);
        if (r) {   /* report and go on with the other files; exit status 1 at the end */
            fprintf(stderr, "melodic tag: %s\n", err.msg);
            ret = 1;
            continue;
        }
        printf("%s\n", in[i]);
        for (long j = 0; j < k; j++) {   /* selection of the k best, ties by lower index */
            int b = -1;
            for (int c = 0; c < m->n_classes; c++)
                if (sc[c] >= 0 && (b < 0 || sc[c] > sc[b])) b = c;
            printf("  %-40s %.3f\n", names[b], sc[b]);
            sc[b] = -1;
        }
        fflush(stdout);
    }
done:
    if (net) m->free(net);
    if (names)
        for (int c = 0; c < m->n_classes; c++) free(names[c]);
    free(names), free(sc), free(in);
    return ret;
}
