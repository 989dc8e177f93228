/* mn04_embedding.c — feature set `mn04_embedding`: EfficientAT mn04_as 384-d embedding.
 *
 * The clip (mono, 32 kHz) goes through the EfficientAT log-mel front end and the
 * AudioSet-pretrained MobileNetV3 (nn/mobilenet.h); the vector is the mean over
 * frequency and time of the last feature map, what the authors return as
 * `features`. Param `weights` (path; default <model_root>/efficientat/
 * mn04_as_mAP_432.pt; a relative path is tried from the working directory,
 * then under the model root). Leaves out: the 527 AudioSet scores (see
 * `melodic embed`/`melodic tag`), fine-tuning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/paths.h"
#include "features/featset.h"
#include "nn/mobilenet.h"

typedef struct mn04_state {
    mm_mobilenet *net;
    char weights[1024];
    char names[MM_MOBILENET_EMB][24];   /* "mn04_emb_<i>" */
} mn04_state;

static void mn04_free(void *st)
{
    mn04_state *s = st;
    if (!s) return;
    mm_mobilenet_free(s->net);
    free(s);
}

static int mn04_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    static const char *const keys[] = {"weights", NULL};
    int rc = mm_cfg_check_keys(params, "mn04_embedding", keys, err);
    if (rc) return rc;
    const char *w = NULL;
    if ((rc = mm_cfg_get_str(params, "weights", NULL, &w, err))) return rc;
    mn04_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    const char *root = model_root ? model_root : mm_model_root(NULL);
    if (!w)
        mm_path_join(s->weights, sizeof s->weights, root, "efficientat/mn04_as_mAP_432.pt");
    else if (w[0] == '/' || access(w, F_OK) == 0)
        snprintf(s->weights, sizeof s->weights, "%s", w);
    else
        mm_path_join(s->weights, sizeof s->weights, root, w);
    if ((rc = mm_mobilenet_load(s->weights, &s->net, err))) {
        mm_err_prefix(err, "mn04_embedding: weights");
        mn04_free(s);
        return rc;
    }
    for (int i = 0; i < MM_MOBILENET_EMB; i++)
        snprintf(s->names[i], sizeof s->names[i], "mn04_emb_%d", i);
    *state = s;
    return 0;
}

static int mn04_sample_rate(const void *st)
{
    (void)st;
    return MM_MOBILENET_SR;
}

static size_t mn04_dim(const void *st)
{
    (void)st;
    return MM_MOBILENET_EMB;
}

static const char *mn04_feature_name(const void *st, size_t i)
{
    const mn04_state *s = st;
    return i < MM_MOBILENET_EMB ? s->names[i] : NULL;
}

static int mn04_compute(const void *st, const float *x, size_t n, float *out, mm_err *err)
{
    const mn04_state *s = st;
    return mm_mobilenet_embed_audio(s->net, x, n, out, NULL, 0, err);   /* callers thread over clips */
}

static const char *mn04_describe(const void *st, char *buf, size_t size)
{
    const mn04_state *s = st;
    if (!buf || !size) return buf;
    snprintf(buf, size,
             "model=mn04_as (EfficientAT MobileNetV3, width 0.4)\nweights=%s\n"
             "embedding=mean over freq and time of features.16\nwindow_frames=%d\n"
             "frontend=mn04\nsample_rate=%d\n",
             s->weights, MM_MOBILENET_WINDOW, MM_MOBILENET_SR);
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
