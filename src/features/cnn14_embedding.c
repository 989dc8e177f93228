/* cnn14_embedding.c — feature sets `cnn14_embedding` and `cnn14_16k_embedding`.
 *
 * The 2048-d PANNs embedding (fc1 + ReLU of Cnn14 / Cnn14_16k, see
 * nn/cnn14.h) of a clip: the PANNs log-mel front end (dsp/frontend.h, 32 kHz
 * or 16 kHz) then the network, as PANNs' inference does on the whole clip
 * (batch 1), through mm_cnn14_clip_run. Param `weights`: the checkpoint,
 * relative to the model root (defaults panns/Cnn14_mAP=0.431.pth,
 * panns/Cnn14_16k_mAP=0.438.pth; `make weights` downloads them). Clips shorter
 * than 32 frames (0.31 s) are zero-padded at the end to 32 frames, where PANNs
 * itself fails. Leaves out: the 527 AudioSet scores, framewise outputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/paths.h"
#include "features/featset.h"
#include "nn/cnn14.h"

typedef struct c14_state {
    const char *set;       /* feature-set name (static) */
    mm_cnn14_clip *clip;
    char weights[4096];    /* resolved checkpoint path */
    char **names;          /* (dim) feature names */
    size_t dim;
} c14_state;

static void c14_free(void *st)
{
    c14_state *s = st;
    if (!s) return;
    mm_cnn14_clip_free(s->clip);
    if (s->names)
        for (size_t i = 0; i < s->dim; i++) free(s->names[i]);
    free(s->names);
    free(s);
}

static int c14_create_kind(const char *set, mm_frontend_kind kind, const char *def_weights,
                           const mm_cfg *params, const char *model_root, void **state,
                           mm_err *err)
{
    static const char *const keys[] = {"weights", NULL};
    int rc = mm_cfg_check_keys(params, set, keys, err);
    if (rc) return rc;
    const char *w = NULL;
    if ((rc = mm_cfg_get_str(params, "weights", def_weights, &w, err))) return rc;
    c14_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->set = set;
    mm_path_join(s->weights, sizeof s->weights, model_root ? model_root : mm_model_root(NULL), w);
    if (access(s->weights, R_OK) != 0) {
        rc = mm_err_set(err, MM_EIO, "%s: weights '%s' not found (run `make weights` to download "
                        "the PANNs checkpoints, or set key 'weights')", set, s->weights);
        goto fail;
    }
    if ((rc = mm_cnn14_clip_load(s->weights, kind, &s->clip, err))) {
        mm_err_prefix(err, "%s", set);
        goto fail;
    }
    s->dim = mm_cnn14_embedding_dim(mm_cnn14_clip_net(s->clip));
    s->names = mm_calloc(s->dim, sizeof *s->names, err);
    if (!s->names) { rc = MM_ENOMEM; goto fail; }
    for (size_t i = 0; i < s->dim; i++) {
        char b[64];
        snprintf(b, sizeof b, "%s_%zu", kind == MM_FE_CNN14 ? "cnn14" : "cnn14_16k", i);
        if (!(s->names[i] = strdup(b))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto fail; }
    }
    *state = s;
    return 0;
fail:
    c14_free(s);
    return rc;
}

static int c14_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    return c14_create_kind("cnn14_embedding", MM_FE_CNN14, "panns/Cnn14_mAP=0.431.pth", params,
                           model_root, state, err);
}

static int c14_16k_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    return c14_create_kind("cnn14_16k_embedding", MM_FE_CNN14_16K,
                           "panns/Cnn14_16k_mAP=0.438.pth", params, model_root, state, err);
}

static int c14_sample_rate(const void *st) { return mm_cnn14_clip_sample_rate(((const c14_state *)st)->clip); }
static size_t c14_dim(const void *st) { return ((const c14_state *)st)->dim; }

static const char *c14_feature_name(const void *st, size_t i)
{
    const c14_state *s = st;
    return i < s->dim ? s->names[i] : NULL;
}

/* Called from many threads at once: one thread inside each call. */
static int c14_compute(const void *st, const float *x, size_t n, float *out, mm_err *err)
{
    const c14_state *s = st;
    int rc = mm_cnn14_clip_run(s->clip, x, n, 1, out, NULL, err);
    if (rc) mm_err_prefix(err, "%s", s->set);
    return rc;
}

static const char *c14_describe(const void *st, char *buf, size_t size)
{
    const c14_state *s = st;
    const mm_cnn14 *net = mm_cnn14_clip_net(s->clip);
    char fe[1024];
    mm_frontend_describe(mm_cnn14_clip_frontend(s->clip), fe, sizeof fe);
    snprintf(buf, size, "%s\nweights=%s\nwidths=%zu,%zu,%zu,%zu,%zu,%zu\nembedding=fc1+relu\n"
             "short_clips=zero-padded to %d frames", fe, s->weights, mm_cnn14_width(net, 0),
             mm_cnn14_width(net, 1), mm_cnn14_width(net, 2), mm_cnn14_width(net, 3),
             mm_cnn14_width(net, 4), mm_cnn14_width(net, 5), MM_CNN14_MIN_FRAMES);
    return buf;
}

const mm_featset_vt mm_featset_cnn14_embedding = {
    .name = "cnn14_embedding",
    .summary = "PANNs Cnn14 (32 kHz) 2048-d embedding, fc1+ReLU (weights: checkpoint under the "
               "model root)",
    .create = c14_create,
    .sample_rate = c14_sample_rate,
    .dim = c14_dim,
    .feature_name = c14_feature_name,
    .compute = c14_compute,
    .describe = c14_describe,
    .free = c14_free,
};

const mm_featset_vt mm_featset_cnn14_16k_embedding = {
    .name = "cnn14_16k_embedding",
    .summary = "PANNs Cnn14_16k (16 kHz) 2048-d embedding, fc1+ReLU (weights: checkpoint under "
               "the model root)",
    .create = c14_16k_create,
    .sample_rate = c14_sample_rate,
    .dim = c14_dim,
    .feature_name = c14_feature_name,
    .compute = c14_compute,
    .describe = c14_describe,
    .free = c14_free,
};
