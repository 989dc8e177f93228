/* logmel_stats.c — feature set `logmel_stats`: per-bin mean and std of a log-mel front end.
 *
 * For each of the n_mels bins: mean over frames and population standard deviation (ddof 0,
 * as numpy's std), giving 2·n_mels values named logmel_mean_<i> then logmel_std_<i>.
 * Param `frontend: cnn14 | cnn14_16k | mn04` (default cnn14_16k) picks the front end
 * (see dsp/frontend.h). Statistics are accumulated in double with a two-pass variance.
 * Leaves out: deltas, percentiles, other pooling.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/frontend.h"
#include "features/featset.h"

typedef struct lms_state {
    mm_frontend *fe;
    int n_mels;
    char **names;   /* (2·n_mels) feature names */
} lms_state;

static void lms_free(void *st)
{
    lms_state *s = st;
    if (!s) return;
    mm_frontend_free(s->fe);
    if (s->names)
        for (int i = 0; i < 2 * s->n_mels; i++) free(s->names[i]);
    free(s->names);
    free(s);
}

static int lms_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    (void)model_root;
    static const char *const keys[] = {"frontend", NULL};
    static const char *const kinds[] = {"cnn14", "cnn14_16k", "mn04", NULL};
    int rc = mm_cfg_check_keys(params, "logmel_stats", keys, err);
    if (rc) return rc;
    int kind = MM_FE_CNN14_16K;
    if ((rc = mm_cfg_get_choice(params, "frontend", kinds, MM_FE_CNN14_16K, &kind, err))) return rc;
    lms_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    if ((rc = mm_frontend_create((mm_frontend_kind)kind, &s->fe, err))) goto fail;
    s->n_mels = mm_frontend_n_mels(s->fe);
    s->names = mm_calloc(2 * (size_t)s->n_mels, sizeof *s->names, err);
    if (!s->names) {
        rc = MM_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < 2 * s->n_mels; i++) {
        char b[64];
        snprintf(b, sizeof b, "logmel_%s_%d", i < s->n_mels ? "mean" : "std", i % s->n_mels);
        s->names[i] = strdup(b);
        if (!s->names[i]) {
            rc = mm_err_set(err, MM_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *state = s;
    return 0;
fail:
    lms_free(s);
    return rc;
}

static int lms_sample_rate(const void *st) { return mm_frontend_sample_rate(((const lms_state *)st)->fe); }
static size_t lms_dim(const void *st) { return 2 * (size_t)((const lms_state *)st)->n_mels; }

static const char *lms_feature_name(const void *st, size_t i)
{
    const lms_state *s = st;
    return i < 2 * (size_t)s->n_mels ? s->names[i] : NULL;
}

static int lms_compute(const void *st, const float *x, size_t n, float *out, mm_err *err)
{
    const lms_state *s = st;
    size_t nf = mm_frontend_n_frames(s->fe, n);
    int M = s->n_mels;
    if (nf == 0)
        return mm_err_set(err, MM_EDATA, "logmel_stats: %zu samples give no frame", n);
    float *lm = mm_malloc(nf * (size_t)M, sizeof *lm, err);
    double *acc = mm_calloc(2 * (size_t)M, sizeof *acc, err);
    int rc = 0;
    if (!lm || !acc) {
        rc = MM_ENOMEM;
        goto done;
    }
    if ((rc = mm_frontend_compute(s->fe, x, n, lm, err))) goto done;
    double *mean = acc, *var = acc + M;
    for (size_t t = 0; t < nf; t++)
        for (int k = 0; k < M; k++) mean[k] += lm[t * M + k];
    for (int k = 0; k < M; k++) mean[k] /= (double)nf;
    for (size_t t = 0; t < nf; t++)
        for (int k = 0; k < M; k++) {
            double d = lm[t * M + k] - mean[k];
            var[k] += d * d;
        }
    for (int k = 0; k < M; k++) {
        out[k] = (float)mean[k];
        out[M + k] = (float)sqrt(var[k] / (double)nf);
    }
done:
    free(lm);
    free(acc);
    return rc;
}

static const char *lms_describe(const void *st, char *buf, size_t size)
{
    return mm_frontend_describe(((const lms_state *)st)->fe, buf, size);
}

const mm_featset_vt mm_featset_logmel_stats = {
    .name = "logmel_stats",
    .summary = "mean and std (ddof 0) of each log-mel bin over frames (frontend: cnn14 | "
               "cnn14_16k | mn04)",
    .create = lms_create,
    .sample_rate = lms_sample_rate,
    .dim = lms_dim,
    .feature_name = lms_feature_name,
    .compute = lms_compute,
    .describe = lms_describe,
    .free = lms_free,
};
