/* mn04_embedding.c — feature sets `mn04_embedding` (EfficientAT mn04_as 384-d
 * embedding) and `mn04_layers` (1,760 layer statistics, see below).
 *
 * The clip (mono, 32 kHz) goes through the EfficientAT log-mel front end and the
 * AudioSet-pretrained MobileNetV3 (nn/mobilenet.h); the vector is the mean over
 * frequency and time of the last feature map, what the authors return as
 * `features`. Param `weights` (path; default <model_root>/efficientat/
 * mn04_as_mAP_432.pt; a relative path is tried from the working directory,
 * then under the model root). Leaves out: the 527 AudioSet scores (see
 * `melodic embed`/`melodic tag`), fine-tuning.
 * `mn04_layers`: per layer features.2 .. features.16, the mean and standard
 * deviation over time of each channel's frequency mean
 * (mm_mobilenet_layers_audio): intermediate layers keep the prosody that the
 * AudioSet embedding averages away (RAVDESS speaker-independent accuracy
 * +6 points with an SVM, measured in results/speech_layers_speaker).
 * Param `specaugment: {time_masks, time_width, freq_masks, freq_width, fill, seed}`
 * (training copies only, written by `augment: {specaugment: ...}` in exp/spec.c):
 * SpecAugment time and frequency masks (audio/augment.h mm_augment_specmask) on each
 * log-mel window before the frozen network, so the learners see embeddings of masked
 * spectrograms. The masks of a clip are drawn from (seed, a hash of its samples, the
 * window), so a table is the same on every run and thread count; a width larger than
 * a short window is cut to the window.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/augment.h"
#include "core/paths.h"
#include "features/featset.h"
#include "nn/mobilenet.h"

typedef struct mn04_state {
    mm_mobilenet *net;
    int layers;             /* 0: embedding, 1: layer statistics */
    size_t dim;
    char weights[1024];
    char (*names)[48];      /* (dim) "mn04_emb_<i>" or "mn04_l<L>_{mean,std}_<c>" */
    int specaug;            /* 1: mask each log-mel window (param specaugment) */
    mm_specmask_params sp;
    uint64_t sp_seed;
} mn04_state;


static void mn04_free(void *st)
{
    mn04_state *s = st;
    if (!s) return;
    mm_mobilenet_free(s->net);
    free(s->names);
    free(s);
}

static int create_any(const mm_cfg *params, const char *model_root, int layers, void **state,
                      mm_err *err)
{
    static const char *const keys[] = {"weights", "specaugment", NULL};
    const char *what = layers ? "mn04_layers" : "mn04_embedding";
    int rc = mm_cfg_check_keys(params, what, keys, err);
    if (rc) return rc;
    const char *w = NULL;
    if ((rc = mm_cfg_get_str(params, "weights", NULL, &w, err))) return rc;
    mn04_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    const mm_cfg *sa = mm_cfg_child(params, "specaugment");
    if (sa) {
        char sect[64];
        snprintf(sect, sizeof sect, "%s.specaugment", what);
        if ((rc = mm_specmask_params_from_cfg(sa, sect, &s->sp, &s->sp_seed, err))) {
            free(s);
            return rc;
        }
        s->specaug = 1;
    }
    const char *root = model_root ? model_root : mm_model_root(NULL);
    if (!w)
        mm_path_join(s->weights, sizeof s->weights, root, "efficientat/mn04_as_mAP_432.pt");
    else if (w[0] == '/' || access(w, F_OK) == 0)
        snprintf(s->weights, sizeof s->weights, "%s", w);
    else
        mm_path_join(s->weights, sizeof s->weights, root, w);
    if ((rc = mm_mobilenet_load(s->weights, &s->net, err))) {
        mm_err_prefix(err, "%s: weights", what);
        mn04_free(s);
        return rc;
    }
    s->layers = layers;
    s->dim = layers ? mm_mobilenet_layer_dim(s->net) : MM_MOBILENET_EMB;
    s->names = mm_calloc(s->dim, sizeof *s->names, err);
    if (!s->names) {
        mn04_free(s);
        return MM_ENOMEM;
    }
    if (!layers) {
        for (size_t i = 0; i < s->dim; i++)
            snprintf(s->names[i], sizeof s->names[i], "mn04_emb_%zu", i);
    } else {   /* layer L has c channels: c means then c stds; widths from the net */
        size_t i = 0;
        for (int l = 2; l <= 16 && i < s->dim; l++) {
            size_t c = mm_mobilenet_layer_channels(s->net, l);
            for (size_t k = 0; k < 2 * c && i < s->dim; k++, i++)
                snprintf(s->names[i], sizeof s->names[i], "mn04_l%d_%s_%d", l,
                         k < c ? "mean" : "std", (int)(k % c));
        }
    }
    *state = s;
    return 0;
}

static int mn04_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    return create_any(params, model_root, 0, state, err);
}

static int layers_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    return create_any(params, model_root, 1, state, err);
}

static int mn04_sample_rate(const void *st)
{
    (void)st;
    return MM_MOBILENET_SR;
}

static size_t mn04_dim(const void *st)
{
    return ((const mn04_state *)st)->dim;
}

static const char *mn04_feature_name(const void *st, size_t i)
{
    const mn04_state *s = st;
    return i < s->dim ? s->names[i] : NULL;
}

typedef struct mask_ctx {
    const mn04_state *s;
    uint64_t clip;          /* hash of the clip's samples */
} mask_ctx;

/* mm_mel_hook: SpecAugment masks on one window, widths cut to the window. */
static int mask_window(void *ctx, size_t win, float *mel, size_t frames, size_t bins, mm_err *err)
{
    const mask_ctx *c = ctx;
    mm_specmask_params p = c->s->sp;
    if ((size_t)p.time_width > frames) p.time_width = (int)frames;
    if ((size_t)p.freq_width > bins) p.freq_width = (int)bins;
    float *o = NULL;
    uint64_t seed = c->s->sp_seed ^ (c->clip * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)win << 40);
    int rc = mm_augment_specmask(mel, frames, bins, &p, seed, &o, NULL, err);
    if (rc) return rc;
    memcpy(mel, o, frames * bins * sizeof *mel);
    free(o);
    return 0;
}

/* FNV-1a over the samples' bytes: the clip's identity for its masks. */
static uint64_t samples_hash(const float *x, size_t n)
{
    const unsigned char *b = (const unsigned char *)x;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n * sizeof *x; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static int mn04_compute(const void *st, const float *x, size_t n, float *out, mm_err *err)
{
    const mn04_state *s = st;   /* callers thread over clips: parallel = 0 */
    if (s->specaug) {
        mask_ctx c = {s, samples_hash(x, n)};
        return mm_mobilenet_audio_hooked(s->net, x, n, s->layers ? NULL : out, s->layers ? out : NULL, mask_window,
                                         &c, 0, err);
    }
    if (s->layers) return mm_mobilenet_layers_audio(s->net, x, n, out, 0, err);
    return mm_mobilenet_embed_audio(s->net, x, n, out, NULL, 0, err);
}

static const char *mn04_describe(const void *st, char *buf, size_t size)
{
    const mn04_state *s = st;
    if (!buf || !size) return buf;
    snprintf(buf, size,
             "model=mn04_as (EfficientAT MobileNetV3, width 0.4)\nweights=%s\n"
             "%s\nwindow_frames=%d\nfrontend=mn04\nsample_rate=%d\n",
             s->weights,
             s->layers ? "layers=features.2..16: time mean and std (n-1) of the frequency mean"
                       : "embedding=mean over freq and time of features.16",
             MM_MOBILENET_WINDOW, MM_MOBILENET_SR);
    size_t len = strlen(buf);
    if (s->specaug && len < size)
        snprintf(buf + len, size - len, "specaugment=time_masks %d, time_width %d, freq_masks %d, freq_width %d, "
                 "fill %s, seed %llu\n", s->sp.n_time, s->sp.time_width, s->sp.n_freq, s->sp.freq_width,
                 s->sp.fill_mean ? "mean" : "zero", (unsigned long long)s->sp_seed);
    return buf;
}

const mm_featset_vt mm_featset_mn04_embedding = {
    .name = "mn04_embedding",
    .summary = "EfficientAT mn04_as (AudioSet MobileNetV3) 384-d embedding (weights: path)",
    .create = mn04_create,
    .sample_rate = mn04_sample_rate,
    .dim = mn04_dim,
    .feature_name = mn04_feature_name,
    .compute = mn04_compute,
    .describe = mn04_describe,
    .free = mn04_free,
};

const mm_featset_vt mm_featset_mn04_layers = {
    .name = "mn04_layers",
    .summary = "EfficientAT mn04_as layer statistics: time mean and std of features.2..16 (1760-d; weights: path)",
    .create = layers_create,
    .sample_rate = mn04_sample_rate,
    .dim = mn04_dim,
    .feature_name = mn04_feature_name,
    .compute = mn04_compute,
    .describe = mn04_describe,
    .free = mn04_free,
};
