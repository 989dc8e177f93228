/* cnn14_embedding.c — feature sets `cnn14_embedding` and `cnn14_16k_embedding`.
 *
 * The 2048-d PANNs embedding (fc1 + ReLU of Cnn14 / Cnn14_16k, see
 * nn/cnn14.h) of a clip: the PANNs log-mel front end (dsp/frontend.h, 32 kHz
 * or 16 kHz) then the network, as PANNs' inference does on the whole clip
 * (batch 1). Param `weights`: the checkpoint, relative to the model root
 * (defaults panns/Cnn14_mAP=0.431.pth, panns/Cnn14_16k_mAP=0.438.pth; `make
 * weights` downloads them). Clips shorter than 32 frames (0.31 s) are
 * zero-padded at the end to 32 frames, where PANNs itself fails.
 * Leaves out: the 527 AudioSet scores (mm_cnn14_forward gives them), framewise
 * outputs, sliding windows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/paths.h"
#include "dsp/frontend.h"
#include "features/featset.h"
#include "nn/cnn14.h"

typedef struct c14_state {
    const char *set;       /* feature-set name (static) */
    mm_frontend *fe;
    mm_cnn14 *net;
    char weights[4096];    /* resolved checkpoint path */
    char **names;          /* (dim) feature names */
    size_t dim;
} c14_state;

static void c14_free(void *st)
{
    c14_state *s = st;
    if (!s) return;
    mm_frontend_free(s->fe);
    mm_cnn14_free(s->net);
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
    if ((rc = mm_frontend_create(kind, &s->fe, err))) goto fail;
    if ((rc = mm_cnn14_load(s->weights, NULL, &s->net, err))) goto fail;
    if (mm_cnn14_n_mels(s->net) != (size_t)mm_frontend_n_mels(s->fe)) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: %s: network expects %zu mel bins, front end %s "
                        "gives %d", set, s->weights, mm_cnn14_n_mels(s->net),
                        mm_frontend_kind_name(kind), mm_frontend_n_mels(s->fe));
        goto fail;
    }
    s->dim = mm_cnn14_embedding_dim(s->net);
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

static int c14_sample_rate(const void *st) { return mm_frontend_sample_rate(((const c14_state *)st)->fe); }
static size_t c14_dim(const void *st) { return ((const c14_state *)st)->dim; }

static const char *c14_feature_name(const void *st, size_t i)
{
    const c14_state *s = st;
    return i < s->dim ? s->names[i] : NULL;
}

static int c14_compute(const void *st, const float *x, size_t n, float *out, mm_err *err)
{
    const c14_state *s = st;
    if (n == 0) return mm_err_set(err, MM_EDATA, "%s: empty clip (0 samples)", s->set);
    /* Smallest length giving MM_CNN14_MIN_FRAMES frames (frames grow with n). */
    size_t need = n;
    if (mm_frontend_n_frames(s->fe, n) < MM_CNN14_MIN_FRAMES) {
        size_t lo = n, hi = n;
        while (mm_frontend_n_frames(s->fe, hi) < MM_CNN14_MIN_FRAMES) { lo = hi; hi *= 2; }
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (mm_frontend_n_frames(s->fe, mid) < MM_CNN14_MIN_FRAMES) lo = mid; else hi = mid;
        }
        need = hi;
    }
    const float *sig = x;
    float *padded = NULL, *lm = NULL;
    int rc = 0;
    if (need > n) {
        if (!(padded = mm_calloc(need, sizeof *padded, err))) return MM_ENOMEM;
        memcpy(padded, x, n * sizeof *x);
        sig = padded;
    }
    size_t nf = mm_frontend_n_frames(s->fe, need);
    size_t M = (size_t)mm_frontend_n_mels(s->fe);
    if (!(lm = mm_malloc(nf * M, sizeof *lm, err))) { rc = MM_ENOMEM; goto done; }
    if ((rc = mm_frontend_compute(s->fe, sig, need, lm, err))) goto done;
    rc = mm_cnn14_forward(s->net, lm, nf, 1, out, NULL, err);
    if (rc) mm_err_prefix(err, "%s", s->set);
done:
    free(padded);
    free(lm);
    return rc;
}

static const char *c14_describe(const void *st, char *buf, size_t size)
{
    const c14_state *s = st;
    char fe[1024];
    mm_frontend_describe(s->fe, fe, sizeof fe);
    snprintf(buf, size, "%s\nweights=%s\nwidths=%zu,%zu,%zu,%zu,%zu,%zu\nembedding=fc1+relu\n"
             "short_clips=zero-padded to %d frames", fe, s->weights, mm_cnn14_width(s->net, 0),
             mm_cnn14_width(s->net, 1), mm_cnn14_width(s->net, 2), mm_cnn14_width(s->net, 3),
             mm_cnn14_width(s->net, 4), mm_cnn14_width(s->net, 5), MM_CNN14_MIN_FRAMES);
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
