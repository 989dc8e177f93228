/* cmd_embed.c — `melodic embed --model mn04 [--weights FILE] [-j N] [--trim] IN... [-o OUT.h5]`.
 *
 * Pretrained-backbone embeddings of audio files: each file is decoded, averaged to
 * mono, resampled (soxr HQ) to the model's rate and run through the network.
 * With -o, writes atomically /embedding (N x D float32), /scores (N x 527 AudioSet
 * sigmoid scores), /paths (N strings) and provenance attributes; without -o, prints
 * one tab-separated line per file (path, then the D embedding values). Files run in
 * parallel (-j), each single-threaded (OpenBLAS too); output order is input order.
 * The model table below is shared with `melodic tag` (cli/embed_models.h).
 */
#include <cblas.h>   /* openblas_set_num_threads */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <omp.h>

#include "audio/audio.h"
#include "cli/cli.h"
#include "cli/embed_models.h"
#include "cli/util.h"
#include "core/paths.h"
#include "io/h5.h"
#include "nn/cnn14.h"
#include "nn/mobilenet.h"

/* ---- model table ------------------------------------------------------ */

static int mn04_load(const char *w, void **net, mm_err *err)
{
    return mm_mobilenet_load(w, (mm_mobilenet **)net, err);
}
static int mn04_run(const void *net, const float *x, size_t n, float *emb, float *scores,
                    int parallel, mm_err *err)
{
    return mm_mobilenet_embed_audio(net, x, n, emb, scores, parallel, err);
}
static void mn04_free(void *net) { mm_mobilenet_free(net); }

/* The table fixes the output sizes (2048, 527): refuse other widths here
 * (the cnn14_embedding feature set takes any width). */
static int cnn14_load_kind(const char *w, mm_frontend_kind kind, void **net, mm_err *err)
{
    mm_cnn14_clip *c = NULL;
    int rc = mm_cnn14_clip_load(w, kind, &c, err);
    if (rc) return rc;
    const mm_cnn14 *m = mm_cnn14_clip_net(c);
    if (mm_cnn14_embedding_dim(m) != 2048 || mm_cnn14_n_classes(m) != 527) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: a reduced-width CNN14 (embedding %zu, %zu classes); `melodic embed` expects the official 2048 and 527 (the cnn14_embedding feature set takes any width)",
                        w, mm_cnn14_embedding_dim(m), mm_cnn14_n_classes(m));
        mm_cnn14_clip_free(c);
        return rc;
    }
    *net = c;
    return 0;
}
static int cnn14_load(const char *w, void **net, mm_err *err) { return cnn14_load_kind(w, MM_FE_CNN14, net, err); }
static int cnn14_16k_load(const char *w, void **net, mm_err *err) { return cnn14_load_kind(w, MM_FE_CNN14_16K, net, err); }
static int cnn14_run(const void *net, const float *x, size_t n, float *emb, float *scores,
                     int parallel, mm_err *err)
{
    return mm_cnn14_clip_run(net, x, n, parallel ? omp_get_max_threads() : 1, emb, scores, err);
}
static void cnn14_free(void *net) { mm_cnn14_clip_free(net); }

static const mm_embed_model MODELS[] = {
    {"mn04", "efficientat/mn04_as_mAP_432.pt", MM_MOBILENET_SR, MM_MOBILENET_EMB,
     MM_MOBILENET_CLASSES, mn04_load, mn04_run, mn04_free},
    {"cnn14", "panns/Cnn14_mAP=0.431.pth", 32000, 2048, 527, cnn14_load, cnn14_run, cnn14_free},
    {"cnn14_16k", "panns/Cnn14_16k_mAP=0.438.pth", 16000, 2048, 527, cnn14_16k_load, cnn14_run, cnn14_free},
};

const mm_embed_model *mm_embed_model_find(const char *name)
{
    for (size_t i = 0; i < sizeof MODELS / sizeof *MODELS; i++)
        if (name && !strcmp(name, MODELS[i].name)) return &MODELS[i];
    return NULL;
}

const char *mm_embed_model_names(void)
{
    static char buf[256];
    if (!buf[0])
        for (size_t i = 0; i < sizeof MODELS / sizeof *MODELS; i++) {
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "%s%s", i ? ", " : "", MODELS[i].name);
        }
    return buf;
}

void mm_embed_weights_path(const mm_embed_model *m, const char *weights, char *buf, size_t size)
{
    const char *root = mm_model_root(NULL);
    if (!weights) mm_path_join(buf, size, root, m->default_weights);
    else if (weights[0] == '/' || access(weights, F_OK) == 0) snprintf(buf, size, "%s", weights);
    else mm_path_join(buf, size, root, weights);
}

/* ---- command ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: melodic embed --model NAME [--weights FILE] [-j N] [--trim] IN... [-o OUT.h5]\n"
            "\n"
            "Embeddings and AudioSet scores of audio files from a pretrained backbone.\n"
            "Each file is decoded (WAV, FLAC, Ogg, MP3), averaged to mono and resampled\n"
            "to the model's rate; clips of any length are accepted.\n"
            "\n"
            "  --model NAME      backbone: %s (default mn04)\n"
            "  --weights FILE    checkpoint (default <model_root>/<model's file>)\n"
            "  -o, --output OUT  HDF5 output: /embedding (N x D), /scores (N x 527), /paths;\n"
            "                    without it, print 'path<TAB>e_0 ... e_D-1' per file\n"
            "  -j, --jobs N      files processed in parallel (default: OpenMP threads)\n"
            "  --trim            trim leading/trailing silence (librosa rule, top_db 60)\n"
            "  -h, --help        this help\n",
            mm_embed_model_names());
}

int mm_cmd_embed(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"model", required_argument, NULL, 'm'},
        {"weights", required_argument, NULL, 'w'}, {"output", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'}, {"trim", no_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *model = "mn04", *weights = NULL, *outp = NULL;
    int jobs = omp_get_max_threads(), trim = 0, ret = 1, c, idx;
    const char **in = calloc((size_t)argc + 1, sizeof *in);
    size_t n_in = 0;
    const mm_embed_model *m = NULL;
    char wpath[1024];
    mm_err err = {0};
    mm_h5_out h5;
    void *net = NULL;
    float *emb = NULL, *sc = NULL;
    int *rc = NULL;
    mm_err *errs = NULL;
    if (!in) {
        fprintf(stderr, "melodic embed: out of memory\n");
        return 1;
    }
    optind = 1;
    opterr = 0;
    while (idx = -1, (c = getopt_long(argc, argv, ":ho:j:", opts, &idx)) != -1) {
        char *end;
        long v;
        switch (c) {
        case 'h': usage(stdout); ret = 0; goto done;
        case 'm': model = optarg; break;
        case 'w': weights = optarg; break;
        case 'o': outp = optarg; break;
        case 'j':
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "melodic embed: %s: expected an integer 1..1024, got '%s'\n", idx >= 0 ? "--jobs" : "-j",
                        optarg);
                ret = 2;
                goto done;
            }
            jobs = (int)v;
            break;
        case 'T': trim = 1; break;
        case ':': ret = mm_cli_usage("embed", "%s needs a value", argv[optind - 1]); goto done;
        default: ret = mm_cli_usage("embed", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    while (optind < argc) in[n_in++] = argv[optind++];
    if (!(m = mm_embed_model_find(model))) {
        fprintf(stderr, "melodic embed: --model '%s': expected one of %s\n", model,
                mm_embed_model_names());
        ret = 2;
        goto done;
    }
    if (!n_in) {
        fprintf(stderr, "melodic embed: no input files (see --help)\n");
        ret = 2;
        goto done;
    }
    mm_embed_weights_path(m, weights, wpath, sizeof wpath);
    if (access(wpath, R_OK) != 0) {
        fprintf(stderr, "melodic embed: weights for %s not found at %s (%s)\n", m->name, wpath,
                strncmp(m->name, "cnn14", 5) ? "set MELODIC_MODELS or --weights"
                                              : "run `make weights` where there is internet, or pass --weights");
        goto done;
    }
    if (m->load(wpath, &net, &err)) {
        fprintf(stderr, "melodic embed: %s\n", err.msg);
        goto done;
    }
    emb = malloc(n_in * (size_t)m->emb_dim * sizeof *emb);
    sc = malloc(n_in * (size_t)m->n_classes * sizeof *sc);
    rc = calloc(n_in, sizeof *rc);
    errs = calloc(n_in, sizeof *errs);
    if (!emb || !sc || !rc || !errs) {
        fprintf(stderr, "melodic embed: out of memory for %zu files\n", n_in);
        goto done;
    }
    if (jobs > (int)n_in) jobs = (int)n_in;
    /* Parallelism is over files only: the per-layer sgemm calls are small, and
     * threading inside the network (OpenBLAS threads, OpenMP per depthwise
     * layer) was measured 8-30x slower than one thread on a loaded 2-core
     * machine (spinning threads at ~50 barriers per clip). */
    openblas_set_num_threads(1);
    volatile int stop = 0;
#pragma omp parallel for schedule(dynamic) num_threads(jobs)
    for (size_t i = 0; i < n_in; i++) {
        if (stop) continue;
        mm_audio_opts o;
        mm_audio_opts_default(&o);
        o.target_sr = m->sample_rate;
        o.trim = trim;
        mm_audio a = {0};
        rc[i] = mm_audio_load(in[i], &o, &a, &errs[i]);
        if (!rc[i]) {
            rc[i] = m->run(net, a.x, a.n, emb + i * m->emb_dim, sc + i * m->n_classes, 0,
                           &errs[i]);
            if (rc[i]) mm_err_prefix(&errs[i], "%s", in[i]);
        }
        mm_audio_free(&a);
        if (rc[i]) stop = 1;
    }
    for (size_t i = 0; i < n_in; i++)
        if (rc[i]) {
            fprintf(stderr, "melodic embed: %s\n", errs[i].msg);
            goto done;
        }
    if (!outp) {
        for (size_t i = 0; i < n_in; i++) {
            printf("%s", in[i]);
            for (int k = 0; k < m->emb_dim; k++) printf("%c%.7g", k ? ' ' : '\t', emb[i * m->emb_dim + k]);
            printf("\n");
        }
        ret = 0;
        goto done;
    }
    if (mm_h5_create(outp, &h5, &err)) {
        fprintf(stderr, "melodic embed: %s\n", err.msg);
        goto done;
    }
    hsize_t de[2] = {n_in, (hsize_t)m->emb_dim}, ds[2] = {n_in, (hsize_t)m->n_classes};
    int r = mm_h5_stamp_format(h5.file, "melodic-embedding", 1, &err);
    if (!r) r = mm_h5_write_f32(h5.file, "embedding", emb, 2, de, &err);
    if (!r) r = mm_h5_write_f32(h5.file, "scores", sc, 2, ds, &err);
    if (!r) r = mm_h5_write_strings(h5.file, "paths", in, n_in, &err);
    if (!r) r = mm_h5_attr_set_str(h5.file, "model", m->name, &err);
    if (!r) r = mm_h5_attr_set_str(h5.file, "weights", wpath, &err);
    if (!r) r = mm_h5_attr_set_i64(h5.file, "sample_rate", m->sample_rate, &err);
    if (!r) r = mm_h5_attr_set_i64(h5.file, "trim", trim, &err);
    if (r) {
        mm_h5_abort(&h5);
        fprintf(stderr, "melodic embed: %s\n", err.msg);
        goto done;
    }
    if (mm_h5_commit(&h5, &err)) {
        fprintf(stderr, "melodic embed: %s\n", err.msg);
        goto done;
    }
    ret = 0;
done:
    if (net) m->free(net);
    free(emb), free(sc), free(rc), free(errs), free(in);
    return ret;
}
