/* handcrafted.c — the feature sets music_paper, speech_162 and mfcc_stats.
 *
 * librosa 0.10.2 frame-wise features (dsp/features.h) pooled per clip
 * (dsp/pool.h), at 22050 Hz (librosa.load's default rate). speech_162 follows
 * the Kaggle RAVDESS recipe behind the paper's 1-D CNN: means of ZCR,
 * chroma_stft(S=|STFT|), MFCC, RMS and the mel power spectrogram. Leaves out
 * loading/trimming (the caller's audio options) and combining with embeddings.
 */

/* Layout: blocks in a fixed order; inside a block one run of `dim` values per
 * statistic, in the configured order. music_paper with [mean, std] (89 values):
 *   mfcc_mean_0..19, mfcc_std_0..19, chroma_mean_C..B, chroma_std_C..B,
 *   contrast_mean_0..6, contrast_std_0..6, centroid_mean, centroid_std,
 *   bandwidth_mean, bandwidth_std, rolloff_mean, rolloff_std, zcr_mean, zcr_std,
 *   rms_mean, rms_std, tempo
 * speech_162 with [mean] (162 values): zcr_mean, chroma_mean_C..B,
 *   mfcc_mean_0..19, rms_mean, mel_mean_0..127
 * mfcc_stats with [mean, std]: mfcc_mean_0..n-1, mfcc_std_0..n-1
 * Config keys (unknown keys refused): sample_rate, n_fft, hop_length, n_mels,
 * n_mfcc, stats (list of mean, std, min, max, skew, delta_mean, delta_std),
 * tuning (number in [-0.5, 0.5) or "estimate"), chroma_power (1 or 2; 2 for
 * music_paper/mfcc_stats as chroma_stft(y=...), 1 for speech_162 as the recipe).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/features.h"
#include "dsp/pool.h"
#include "features/featset.h"

typedef enum { B_MFCC, B_CHROMA, B_CONTRAST, B_CENTROID, B_BANDWIDTH, B_ROLLOFF, B_ZCR, B_RMS,
               B_MEL, B_TEMPO } block_id;

static const char *const block_name[] = {"mfcc", "chroma", "contrast", "centroid", "bandwidth",
                                         "rolloff", "zcr", "rms", "mel", "tempo"};
static const unsigned block_mask[] = {MM_FEAT_MFCC, MM_FEAT_CHROMA, MM_FEAT_CONTRAST,
                                      MM_FEAT_CENTROID, MM_FEAT_BANDWIDTH, MM_FEAT_ROLLOFF,
                                      MM_FEAT_ZCR, MM_FEAT_RMS, MM_FEAT_MEL, MM_FEAT_TEMPO};

typedef struct hc_kind {
    const char *name;
    const block_id *blocks;
    int n_blocks;
    int chroma_power;          /* default */
    const char *default_stats; /* comma-separated */
} hc_kind;

static const block_id music_blocks[] = {B_MFCC, B_CHROMA, B_CONTRAST, B_CENTROID, B_BANDWIDTH,
                                        B_ROLLOFF, B_ZCR, B_RMS, B_TEMPO};
static const block_id speech_blocks[] = {B_ZCR, B_CHROMA, B_MFCC, B_RMS, B_MEL};
static const block_id mfcc_blocks[] = {B_MFCC};

static const hc_kind k_music = {"music_paper", music_blocks, 9, 2, "mean,std"};
static const hc_kind k_speech = {"speech_162", speech_blocks, 5, 1, "mean"};
static const hc_kind k_mfcc = {"mfcc_stats", mfcc_blocks, 1, 2, "mean,std"};

typedef struct hc_state {
    const hc_kind *kind;
    mm_feats *feats;
    mm_feats_params p;
    mm_pool_stat stats[MM_POOL_N_STATS];
    int n_stats;
    unsigned mask;
    size_t dim;
    char **names;   /* (dim) */
} hc_state;

static size_t block_dim(const hc_state *s, block_id b)
{
    switch (b) {
    case B_MFCC: return (size_t)s->p.n_mfcc;
    case B_CHROMA: return (size_t)s->p.n_chroma;
    case B_CONTRAST: return (size_t)s->p.contrast_bands + 1;
    case B_MEL: return (size_t)s->p.n_mels;
    default: return 1;
    }
}

static void hc_free(void *state)
{
    hc_state *s = state;
    if (!s) return;
    mm_feats_free(s->feats);
    if (s->names)
        for (size_t i = 0; i < s->dim; i++) free(s->names[i]);
    free(s->names);
    free(s);
}

static int parse_stats(hc_state *s, const mm_cfg *params, mm_err *err)
{
    const mm_cfg *node = params ? mm_cfg_child(params, "stats") : NULL;
    char where[256];
    s->n_stats = 0;
    if (!node || node->type == MM_CFG_NULL) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", s->kind->default_stats);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
            mm_pool_stat_parse(tok, &s->stats[s->n_stats++], NULL);
        return 0;
    }
    if (node->type != MM_CFG_SEQ || node->n == 0)
        return mm_err_set(err, MM_EINVAL, "%s: key 'stats': expected a non-empty list such as "
                          "[mean, std]", mm_cfg_where(node, where, sizeof where));
    if (node->n > MM_POOL_N_STATS)
        return mm_err_set(err, MM_EINVAL, "%s: key 'stats': %zu entries, at most %d distinct",
                          mm_cfg_where(node, where, sizeof where), node->n, MM_POOL_N_STATS);
    for (size_t i = 0; i < node->n; i++) {
        const mm_cfg *it = node->items[i];
        mm_pool_stat st;
        if (it->type != MM_CFG_SCALAR || mm_pool_stat_parse(it->value, &st, err))
            return mm_err_set(err, MM_EINVAL, "%s: key 'stats': '%s': expected one of mean, std, "
                              "min, max, skew, delta_mean, delta_std",
                              mm_cfg_where(it, where, sizeof where),
                              it->type == MM_CFG_SCALAR ? it->value : "(not a name)");
        for (int j = 0; j < s->n_stats; j++)
            if (s->stats[j] == st)
                return mm_err_set(err, MM_EINVAL, "%s: key 'stats': '%s' listed twice",
                                  mm_cfg_where(it, where, sizeof where), it->value);
        s->stats[s->n_stats++] = st;
    }
    return 0;
}

/* tuning: a number in [-0.5, 0.5) or the word "estimate". */
static int parse_tuning(hc_state *s, const mm_cfg *params, mm_err *err)
{
    const mm_cfg *node = params ? mm_cfg_child(params, "tuning") : NULL;
    if (!node || node->type == MM_CFG_NULL) return 0;
    if (node->type == MM_CFG_SCALAR && !strcmp(node->value, "estimate")) {
        s->p.estimate_tuning = 1;
        return 0;
    }
    return mm_cfg_get_double(params, "tuning", 0.0, -0.5, 0.5, &s->p.tuning, err);
}

static int hc_create(const hc_kind *kind, const mm_cfg *params, void **state, mm_err *err)
{
    static const char *const allowed[] = {"sample_rate", "n_fft", "hop_length", "n_mels",
                                          "n_mfcc", "stats", "tuning", "chroma_power", NULL};
    int rc = mm_cfg_check_keys(params, kind->name, allowed, err);
    if (rc) return rc;
    hc_state *s = mm_calloc(1, sizeof *s, err);
    if (!s) return MM_ENOMEM;
    s->kind = kind;
    mm_feats_params_default(&s->p);
    s->p.chroma_power = kind->chroma_power;
    long v;
    if ((rc = mm_cfg_get_int(params, "sample_rate", 22050, 8000, 192000, &v, err))) goto fail;
    s->p.sample_rate = (int)v;
    if ((rc = mm_cfg_get_int(params, "n_fft", 2048, 64, 16384, &v, err))) goto fail;
    s->p.n_fft = (int)v;
    if ((rc = mm_cfg_get_int(params, "hop_length", 512, 1, s->p.n_fft, &v, err))) goto fail;
    s->p.hop_length = (int)v;
    if ((rc = mm_cfg_get_int(params, "n_mels", 128, 1, 512, &v, err))) goto fail;
    s->p.n_mels = (int)v;
    if ((rc = mm_cfg_get_int(params, "n_mfcc", 20, 1, s->p.n_mels, &v, err))) goto fail;
    s->p.n_mfcc = (int)v;
    if ((rc = mm_cfg_get_int(params, "chroma_power", kind->chroma_power, 1, 2, &v, err))) goto fail;
    s->p.chroma_power = (int)v;
    if ((rc = parse_tuning(s, params, err))) goto fail;
    if ((rc = parse_stats(s, params, err))) goto fail;
    if ((rc = mm_feats_create(&s->p, &s->feats, err))) {
        mm_err_prefix(err, "%s", kind->name);
        goto fail;
    }
    /* dimension names */
    s->dim = 0;
    for (int b = 0; b < kind->n_blocks; b++) {
        block_id id = kind->blocks[b];
        s->mask |= block_mask[id];
        s->dim += id == B_TEMPO ? 1 : block_dim(s, id) * s->n_stats;
    }
    s->names = mm_calloc(s->dim, sizeof *s->names, err);
    if (!s->names) { rc = MM_ENOMEM; goto fail; }
    static const char *const notes[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A",
                                          "A#", "B"};
    size_t k = 0;
    for (int b = 0; b < kind->n_blocks; b++) {
        block_id id = kind->blocks[b];
        if (id == B_TEMPO) {
            s->names[k++] = strdup("tempo");
            continue;
        }
        size_t d = block_dim(s, id);
        for (int st = 0; st < s->n_stats; st++)
            for (size_t j = 0; j < d; j++) {
                char buf[64];
                const char *sn = mm_pool_stat_name(s->stats[st]);
                if (d == 1)
                    snprintf(buf, sizeof buf, "%s_%s", block_name[id], sn);
                else if (id == B_CHROMA && s->p.n_chroma == 12)
                    snprintf(buf, sizeof buf, "%s_%s_%s", block_name[id], sn, notes[j]);
                else
                    snprintf(buf, sizeof buf, "%s_%s_%zu", block_name[id], sn, j);
                s->names[k++] = strdup(buf);
            }
    }
    for (size_t i = 0; i < s->dim; i++)
        if (!s->names[i]) { rc = mm_err_set(err, MM_ENOMEM, "%s: out of memory", kind->name); goto fail; }
    *state = s;
    return 0;
fail:
    hc_free(s);
    return rc;
}

static int hc_sample_rate(const void *state) { return ((const hc_state *)state)->p.sample_rate; }
static size_t hc_dim(const void *state) { return ((const hc_state *)state)->dim; }

static const char *hc_feature_name(const void *state, size_t i)
{
    const hc_state *s = state;
    return i < s->dim ? s->names[i] : NULL;
}

static int hc_compute(const void *state, const float *x, size_t n, float *out, mm_err *err)
{
    const hc_state *s = state;
    mm_feats_frames fr;
    int rc = mm_feats_compute(s->feats, x, n, s->mask, &fr, err);
    if (rc) {
        mm_err_prefix(err, "%s", s->kind->name);
        return rc;
    }
    size_t k = 0;
    for (int b = 0; b < s->kind->n_blocks && !rc; b++) {
        block_id id = s->kind->blocks[b];
        const float *m = NULL;
        switch (id) {
        case B_MFCC: m = fr.mfcc; break;
        case B_CHROMA: m = fr.chroma; break;
        case B_CONTRAST: m = fr.contrast; break;
        case B_CENTROID: m = fr.centroid; break;
        case B_BANDWIDTH: m = fr.bandwidth; break;
        case B_ROLLOFF: m = fr.rolloff; break;
        case B_ZCR: m = fr.zcr; break;
        case B_RMS: m = fr.rms; break;
        case B_MEL: m = fr.mel; break;
        case B_TEMPO: out[k++] = (float)fr.tempo; continue;
        }
        size_t d = block_dim(s, id);
        for (int st = 0; st < s->n_stats && !rc; st++, k += d)
            rc = mm_pool_compute(s->stats[st], m, fr.n_frames, d, d, out + k, err);
    }
    mm_feats_frames_free(&fr);
    return rc;
}

static const char *hc_describe(const void *state, char *buf, size_t size)
{
    const hc_state *s = state;
    char st[128] = "";
    for (int i = 0; i < s->n_stats; i++) {
        strncat(st, i ? "," : "", sizeof st - strlen(st) - 1);
        strncat(st, mm_pool_stat_name(s->stats[i]), sizeof st - strlen(st) - 1);
    }
    char tun[32];
    if (s->p.estimate_tuning) snprintf(tun, sizeof tun, "estimate");
    else snprintf(tun, sizeof tun, "%g", s->p.tuning);
    snprintf(buf, size,
             "featset=%s\nreference=librosa 0.10.2 (pad_mode=constant)\nsample_rate=%d\n"
             "n_fft=%d\nhop_length=%d\nn_mels=%d\nn_mfcc=%d\nchroma_power=%d\ntuning=%s\n"
             "stats=%s\ndim=%zu\n",
             s->kind->name, s->p.sample_rate, s->p.n_fft, s->p.hop_length, s->p.n_mels,
             s->p.n_mfcc, s->p.chroma_power, tun, st, s->dim);
    return buf;
}

static int music_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    return hc_create(&k_music, params, state, err);
}
static int speech_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    return hc_create(&k_speech, params, state, err);
}
static int mfcc_create(const mm_cfg *params, const char *model_root, void **state, mm_err *err)
{
    return hc_create(&k_mfcc, params, state, err);
}

const mm_featset_vt mm_featset_music_paper = {
    "music_paper",
    "paper's music features (MFCC, chroma, contrast, centroid, bandwidth, roll-off, ZCR, RMS) "
    "pooled, plus tempo",
    music_create, hc_sample_rate, hc_dim, hc_feature_name, hc_compute, hc_describe, hc_free};

const mm_featset_vt mm_featset_speech_162 = {
    "speech_162",
    "mean ZCR, chroma, MFCC, RMS and mel (162 values, Kaggle RAVDESS recipe)",
    speech_create, hc_sample_rate, hc_dim, hc_feature_name, hc_compute, hc_describe, hc_free};

const mm_featset_vt mm_featset_mfcc_stats = {
    "mfcc_stats", "MFCC mean and standard deviation (n_mfcc 20 or 40)",
    mfcc_create, hc_sample_rate, hc_dim, hc_feature_name, hc_compute, hc_describe, hc_free};
