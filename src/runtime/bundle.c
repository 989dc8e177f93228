/* bundle.c — model bundles: writing the parts an export made (exp/export.c
 * refits on all data) and load/classify. See bundle.h; layout in README
 * "Model bundles". */
#include "runtime/bundle.h"
#include "runtime/feedback.h"   /* MM_CALIB_MAX_CLIPS */

#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "core/paths.h"
#include "core/sha256.h"
#include "data/extract.h"
#include "io/h5.h"
#include "learn/groupnorm.h"
#include "learn/learner.h"
#include "learn/scaler.h"

struct mm_bundle {
    char *path;
    char *model_name;
    mm_featset_inst *sets;
    size_t n_sets;
    size_t dim;
    mm_audio_opts audio;
    mm_level_opts level;        /* /pipeline/audio's normalize: (zero: none), as at training */
    mm_scaler *scaler;         /* or NULL */
    mm_learner *learner;
    char **labels;
    size_t n_labels;
    char *metrics;
    size_t calib_clips;        /* 0: ordinary; else clips of a speaker needed (group_norm) */
    double clip_s;             /* training clip length in seconds; 0: not recorded */
    char pipeline_id[65];      /* SHA-256 of the feature pipeline (raw feature space) */
    char *tmp_weights[8];      /* extracted embedded weights, removed on free */
};

/* Clips a calibrated bundle asks for when the experiment normalised with all
 * of a speaker's clips (group_norm: true): enough for stable statistics. */
#define CALIB_DEFAULT_CLIPS 20

/* "weights=PATH" line of a feature set's describe() text, or "" when none. */
static void featset_weights(const mm_featset_inst *s, char *out, size_t size)
{
    out[0] = 0;
    if (!s->vt->describe) return;
    char buf[4096];
    const char *d = s->vt->describe(s->state, buf, sizeof buf);
    const char *p = strstr(d, "weights=");
    if (!p || (p != d && p[-1] != '\n')) return;
    p += 8;
    size_t n = strcspn(p, "\n");
    if (n >= size) n = size - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static int write_bytes_file(const char *path, mm_h5_out *o, const char *name, mm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return mm_err_set(err, MM_EIO, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    if (sz < 0 || sz > (1L << 31)) { fclose(f); return mm_err_set(err, MM_EIO, "%s: cannot embed (size)", path); }
    uint8_t *buf = malloc((size_t)sz + 1);
    if (!buf) { fclose(f); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    int rc = got == (size_t)sz ? mm_h5_write_u8(o->file, name, buf, got, err) : mm_err_set(err, MM_EIO, "%s: read error", path);
    free(buf);
    return rc;
}

/* /pipeline/weights/<i> of every feature set that loads backbone weights:
 * set name, path (relative to the model root when under it) and SHA-256,
 * and with embed the bytes themselves. */
static int write_weights(mm_h5_out *out, const mm_bundle_parts *p, mm_err *err)
{
    const char *mroot = mm_model_root(p->model_root);
    int rc = 0;
    for (size_t s = 0; s < p->n_sets && !rc; s++) {
        char wpath[PATH_MAX], g[64], hex[65];
        featset_weights(&p->sets[s], wpath, sizeof wpath);
        if (!wpath[0]) continue;
        if ((rc = mm_sha256_file(wpath, hex, err))) break;
        size_t lr = strlen(mroot);
        const char *rel = (!strncmp(wpath, mroot, lr) && wpath[lr] == '/') ? wpath + lr + 1 : wpath;
        snprintf(g, sizeof g, "pipeline/weights/%zu", s);
        hid_t gg = mm_h5_group(out->file, g, err);
        if (gg < 0) { rc = err->code; break; }
        rc = mm_h5_attr_set_str(gg, "set", p->sets[s].vt->name, err);
        if (!rc) rc = mm_h5_attr_set_str(gg, "path", rel, err);
        if (!rc) rc = mm_h5_attr_set_str(gg, "sha256", hex, err);
        H5Gclose(gg);
        if (!rc && p->embed_weights) {
            snprintf(g, sizeof g, "pipeline/weights/%zu/data", s);
            rc = write_bytes_file(wpath, out, g, err);
        }
    }
    return rc;
}

/* The root attributes, in the order bundles have always had them (n_val
 * joined after n_train). */
static int write_attributes(hid_t f, const mm_bundle_parts *p, mm_err *err)
{
    char ts[64], fp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)p->data_fingerprint);
    int rc = mm_h5_stamp_format(f, MM_BUNDLE_FORMAT, MM_BUNDLE_VERSION, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "model", p->model, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "learner", p->learner_name, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "experiment", p->experiment, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "created", ts, err);
    if (!rc) rc = mm_h5_attr_set_str(f, "git_commit", p->git_commit ? p->git_commit : "unknown", err);
    if (!rc) rc = mm_h5_attr_set_str(f, "melodic_version", "0.1.0", err);
    if (!rc) rc = mm_h5_attr_set_str(f, "data_fingerprint", fp, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "n_train", (int64_t)p->n_train, err);
    if (!rc) rc = mm_h5_attr_set_i64(f, "n_val", (int64_t)p->n_val, err);
    if (!rc && p->calibration_clips)   /* absent in ordinary bundles */
        rc = mm_h5_attr_set_i64(f, "calibration_clips", (int64_t)p->calibration_clips, err);
    if (!rc && p->clip_seconds > 0)   /* absent: an old bundle or an unknown length */
        rc = mm_h5_attr_set_f64(f, "clip_seconds", p->clip_seconds, err);
    return rc;
}

int mm_bundle_write(const char *path, const mm_bundle_parts *p, mm_err *err)
{
    mm_h5_out out = {.file = -1};
    int rc = mm_h5_create(path, &out, err);
    if (rc) return rc;
    hid_t f = out.file;
    rc = write_attributes(f, p, err);
    if (!rc) rc = mm_h5_write_text(f, "config", p->config_yaml ? p->config_yaml : "", err);
    if (!rc) rc = mm_h5_write_text(f, "pipeline/features", p->features_yaml ? p->features_yaml : "", err);
    if (!rc) rc = mm_h5_write_text(f, "pipeline/audio", p->audio_yaml ? p->audio_yaml : "{}", err);
    if (!rc) rc = write_weights(&out, p, err);
    if (!rc && p->scaler) {
        hid_t g = mm_h5_group(f, "scaler", err);
        rc = g < 0 ? err->code : mm_scaler_save(p->scaler, g, err);
        if (g >= 0) H5Gclose(g);
    }
    if (!rc) {
        hid_t g = mm_h5_group(f, "model", err);
        rc = g < 0 ? err->code : mm_learner_save(p->learner, g, err);
        if (g >= 0) H5Gclose(g);
    }
    if (!rc) rc = mm_h5_write_strings(f, "label_names", p->label_names, p->n_classes, err);
    if (!rc) rc = mm_h5_write_strings(f, "feature_names", p->feature_names, p->n_features, err);
    if (!rc && p->metrics) rc = mm_h5_write_text(f, "metrics", p->metrics, err);
    if (rc) mm_h5_abort(&out);
    else rc = mm_h5_commit(&out, err);
    return rc;
}

/* ---- loading ---- */

void mm_bundle_free(mm_bundle *b)
{
    if (!b) return;
    mm_featsets_free(b->sets, b->n_sets);
    mm_scaler_free(b->scaler);
    mm_learner_free(b->learner);
    mm_h5_free_strings(b->labels, b->n_labels);
    for (int i = 0; i < 8; i++) if (b->tmp_weights[i]) { unlink(b->tmp_weights[i]); free(b->tmp_weights[i]); }
    free(b->metrics);
    free(b->model_name);
    free(b->path);
    free(b);
}

/* Resolve feature set s's weights: embedded bytes → a private temporary
 * file; else <model_root>/<path>. The SHA-256 must match the bundle's. */
static int resolve_weights(mm_bundle *b, hid_t f, size_t s, const char *model_root, char *out, size_t size,
                           mm_err *err)
{
    char g[64];
    snprintf(g, sizeof g, "pipeline/weights/%zu", s);
    hid_t gg = mm_h5_open_group(f, g, err);
    if (gg < 0) return err->code;
    char *rel = NULL, *want = NULL;
    int rc = mm_h5_attr_get_str(gg, "path", &rel, err);
    if (!rc) rc = mm_h5_attr_get_str(gg, "sha256", &want, err);
    H5Gclose(gg);
    char hex[65];
    snprintf(g, sizeof g, "pipeline/weights/%zu/data", s);
    if (!rc && mm_h5_exists(f, g) && s >= sizeof b->tmp_weights / sizeof *b->tmp_weights) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: feature set %zu embeds weights; at most the first %zu may", g, s,
                        sizeof b->tmp_weights / sizeof *b->tmp_weights);
    } else if (!rc && mm_h5_exists(f, g)) {
        uint8_t *data = NULL;
        size_t n = 0;
        rc = mm_h5_read_u8(f, g, &data, &n, err);
        if (!rc) {
            mm_sha256 h;
            mm_sha256_init(&h);
            mm_sha256_update(&h, data, n);
            mm_sha256_hex(&h, hex);
            if (strcmp(hex, want)) rc = mm_err_set(err, MM_EFORMAT, "%s: embedded weights for '%s' fail their SHA-256 check (the bundle is corrupt)", b->path, rel);
        }
        if (!rc) {
            char tmpl[] = "/tmp/melodic-weights-XXXXXX";
            int fd = mkstemp(tmpl);
            if (fd < 0 || write(fd, data, n) != (ssize_t)n) rc = mm_err_set(err, MM_EIO, "cannot write a temporary weights file: %s", strerror(errno));
            if (fd >= 0) close(fd);
            b->tmp_weights[s] = strdup(tmpl);
            snprintf(out, size, "%s", tmpl);
        }
        free(data);
    } else if (!rc) {
        mm_path_join(out, size, model_root, rel);
        if (access(out, R_OK) != 0)
            rc = mm_err_set(err, MM_EIO, "%s: backbone weights '%s' not found under the model root '%s' (set MELODIC_MODELS, or export with --embed-weights)", b->path, rel, model_root);
        else if (!(rc = mm_sha256_file(out, hex, err)) && strcmp(hex, want))
            rc = mm_err_set(err, MM_EFORMAT, "%s: backbone weights %s have SHA-256 %.12s…, the bundle was trained with %.12s… (different weights)", b->path, out, hex, want);
    }
    free(rel);
    free(want);
    return rc;
}

int mm_bundle_open(const char *path, const char *model_root_in, int n_threads, mm_bundle **out, mm_err *err)
{
    hid_t f;
    int rc = mm_h5_open_read(path, &f, err);
    if (rc) return rc;
    mm_bundle *b = calloc(1, sizeof *b);
    if (!b) { mm_h5_close(f); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    b->path = strdup(path);
    const char *model_root = mm_model_root(model_root_in);
    char *feat_yaml = NULL, *audio_yaml = NULL;
    mm_cfg *feat = NULL, *audio = NULL;
    rc = mm_h5_check_format(f, MM_BUNDLE_FORMAT, MM_BUNDLE_VERSION, NULL, err);
    if (!rc) rc = mm_h5_attr_get_str(f, "model", &b->model_name, err);
    if (!rc && H5Aexists(f, "calibration_clips") > 0) {
        int64_t k = 0;
        rc = mm_h5_attr_get_i64(f, "calibration_clips", &k, err);
        if (!rc && (k < 2 || k > MM_CALIB_MAX_CLIPS))
            rc = mm_err_set(err, MM_EFORMAT, "attribute calibration_clips = %lld, expected 2..%d", (long long)k, MM_CALIB_MAX_CLIPS);
        if (!rc) b->calib_clips = (size_t)k;
    }
    if (!rc && H5Aexists(f, "clip_seconds") > 0) {
        rc = mm_h5_attr_get_f64(f, "clip_seconds", &b->clip_s, err);
        if (!rc && !(b->clip_s > 0 && b->clip_s <= 3600))
            rc = mm_err_set(err, MM_EFORMAT, "attribute clip_seconds = %g, expected seconds in (0, 3600]", b->clip_s);
    }
    if (!rc) rc = mm_h5_read_text(f, "pipeline/features", &feat_yaml, err);
    if (!rc) rc = mm_h5_read_text(f, "pipeline/audio", &audio_yaml, err);
    if (!rc) {   /* the raw feature space: feature and audio settings, backbone checksums */
        mm_sha256 h;
        mm_sha256_init(&h);
        mm_sha256_update(&h, feat_yaml, strlen(feat_yaml) + 1);
        mm_sha256_update(&h, audio_yaml, strlen(audio_yaml) + 1);
        for (size_t s = 0; s < 64; s++) {
            char g[64], *sha = NULL;
            snprintf(g, sizeof g, "pipeline/weights/%zu", s);
            if (!mm_h5_exists(f, g)) continue;
            hid_t gg = mm_h5_open_group(f, g, err);
            if (gg >= 0 && !mm_h5_attr_get_str(gg, "sha256", &sha, err)) mm_sha256_update(&h, sha, strlen(sha) + 1);
            if (gg >= 0) H5Gclose(gg);
            free(sha);
        }
        mm_sha256_hex(&h, b->pipeline_id);
    }
    if (!rc) rc = mm_cfg_parse_string(feat_yaml, "bundle features", &feat, err);
    if (!rc) rc = mm_cfg_parse_string(audio_yaml, "bundle audio", &audio, err);
    if (!rc) {   /* decode options and level normalisation, read as the experiment read them */
        mm_pipeline_audio pa;
        rc = mm_pipeline_audio_from_cfg(audio->type == MM_CFG_MAP && audio->n ? audio : NULL, &pa, err);
        if (!rc) { b->audio = pa.audio; b->level = pa.level; }
    }
    /* feature sets, with weights resolved and checked */
    if (!rc) {
        size_t count = feat->type == MM_CFG_SEQ ? feat->n : 1;
        mm_cfg *seq = NULL;
        rc = mm_cfg_parse_string("features: []", "bundle", &seq, err);
        mm_cfg *list = rc ? NULL : (mm_cfg *)mm_cfg_child(seq, "features");
        for (size_t s = 0; s < count && !rc; s++) {
            const mm_cfg *item = feat->type == MM_CFG_SEQ ? feat->items[s] : feat;
            mm_cfg *m = mm_cfg_new_map();
            if (item->type == MM_CFG_SCALAR) mm_cfg_put_str(m, "set", item->value, err);
            else { mm_cfg_free(m); m = mm_cfg_clone(item); }
            char g[64];
            snprintf(g, sizeof g, "pipeline/weights/%zu", s);
            if (mm_h5_exists(f, g)) {
                char wpath[PATH_MAX];
                rc = resolve_weights(b, f, s, model_root, wpath, sizeof wpath, err);
                if (!rc) {
                    char as[PATH_MAX + 32];
                    snprintf(as, sizeof as, "params.weights=%s", wpath);
                    rc = mm_cfg_set(m, as, err);
                }
            }
            mm_cfg **ni = realloc(list->items, (list->n + 1) * sizeof *ni);
            if (!ni) { mm_cfg_free(m); rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
            list->items = ni;
            list->items[list->n++] = m;
        }
        if (!rc) rc = mm_featsets_create(list, model_root, &b->sets, &b->n_sets, err);
        mm_cfg_free(seq);
    }
    for (size_t s = 0; !rc && s < b->n_sets; s++) b->dim += b->sets[s].vt->dim(b->sets[s].state);
    if (!rc && b->dim == 0) rc = mm_err_set(err, MM_EFORMAT, "pipeline/features: the feature sets give no values");
    if (!rc && mm_h5_exists(f, "scaler")) {
        hid_t g = mm_h5_open_group(f, "scaler", err);
        rc = g < 0 ? err->code : mm_scaler_load(g, &b->scaler, err);
        if (g >= 0) H5Gclose(g);
        if (!rc && mm_scaler_dim(b->scaler) != b->dim)
            rc = mm_err_set(err, MM_EFORMAT, "scaler: fitted on %zu features, the feature pipeline gives %zu",
                            mm_scaler_dim(b->scaler), b->dim);
    }
    /* label names first: they and the pipeline's width are what the model must match */
    if (!rc) rc = mm_h5_read_strings(f, "label_names", &b->labels, &b->n_labels, err);
    if (!rc) rc = mm_check_class_names((const char *const *)b->labels, b->n_labels, "label_names", err);
    if (!rc) {
        hid_t g = mm_h5_open_group(f, "model", err);
        rc = g < 0 ? err->code : mm_learner_load_expect(g, n_threads, (int)b->n_labels, b->dim, &b->learner, err);
        if (g >= 0) H5Gclose(g);
    }
    if (!rc && mm_h5_exists(f, "metrics")) mm_h5_read_text(f, "metrics", &b->metrics, err);
    mm_h5_close(f);
    free(feat_yaml);
    free(audio_yaml);
    mm_cfg_free(feat);
    mm_cfg_free(audio);
    if (rc) {
        mm_err_prefix(err, "%s", path);
        mm_bundle_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int mm_bundle_n_classes(const mm_bundle *b) { return (int)b->n_labels; }
const char *mm_bundle_class_name(const mm_bundle *b, int k) { return k >= 0 && (size_t)k < b->n_labels ? b->labels[k] : "?"; }
size_t mm_bundle_dim(const mm_bundle *b) { return b->dim; }
const char *mm_bundle_model_name(const mm_bundle *b) { return b->model_name; }
const char *mm_bundle_metrics(const mm_bundle *b) { return b->metrics; }

size_t mm_bundle_calibration_clips(const mm_bundle *b) { return b->calib_clips; }
double mm_bundle_clip_seconds(const mm_bundle *b) { return b->clip_s; }
const char *mm_bundle_pipeline_id(const mm_bundle *b) { return b->pipeline_id; }

/* Raw features of one file or buffer into x (dim). */
static int features(const mm_bundle *b, const char *path, const void *data, size_t len, const char *name,
                    float *x, double *seconds, mm_err *err)
{
    mm_pipeline_audio pa = {.audio = b->audio, .level = b->level};
    return mm_featsets_compute_pipeline(b->sets, b->n_sets, &pa, 0, path, data, len, name, x, seconds, err);
}

int mm_bundle_features_file(const mm_bundle *b, const char *path, float *raw, double *seconds, mm_err *err)
{
    return features(b, path, NULL, 0, NULL, raw, seconds, err);
}

int mm_bundle_features_memory(const mm_bundle *b, const void *data, size_t len, const char *name, float *raw,
                              double *seconds, mm_err *err)
{
    return features(b, NULL, data, len, name ? name : "upload", raw, seconds, err);
}

int mm_bundle_predict(const mm_bundle *b, const float *raw, const float *hist, size_t k, float *proba,
                      float *embedding, mm_err *err)
{
    if (b->calib_clips && (!hist || k < 2))
        return mm_err_set(err, MM_EINVAL, "%s: this bundle was exported with per-speaker calibration (group_norm): "
                          "it needs %zu earlier clips of the same speaker, at least 2 (melodic classify --calibrate, or the "
                          "server's per-user calibration)", b->path, b->calib_clips);
    float *x = malloc((b->dim + 1) * sizeof *x);
    if (!x) return mm_err_set(err, MM_ENOMEM, "out of memory");
    memcpy(x, raw, b->dim * sizeof *x);
    if (b->calib_clips) mm_group_norm_apply(hist, k, b->dim, x);
    int rc = 0;
    for (size_t j = 0; j < b->dim && !rc; j++)
        if (!isfinite(x[j])) rc = mm_err_set(err, MM_EDATA, "feature %zu is not finite", j);
    if (!rc && b->scaler) rc = mm_scaler_transform(b->scaler, x, 1, b->dim, err);
    if (!rc) rc = mm_learner_predict_proba(b->learner, x, 1, b->dim, proba, err);
    if (!rc && embedding) memcpy(embedding, x, b->dim * sizeof *x);
    free(x);
    return rc;
}

static int classify(const mm_bundle *b, const char *path, const void *data, size_t len, const char *name,
                    float *proba, float *embedding, double *seconds, mm_err *err)
{
    if (b->calib_clips) return mm_bundle_predict(b, NULL, NULL, 0, proba, embedding, err);
    float *x = malloc((b->dim + 1) * sizeof *x);
    if (!x) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = features(b, path, data, len, name, x, seconds, err);
    if (!rc) rc = mm_bundle_predict(b, x, NULL, 0, proba, embedding, err);
    free(x);
    return rc;
}

int mm_bundle_classify_file(const mm_bundle *b, const char *path, float *proba, float *embedding,
                            double *seconds, mm_err *err)
{
    return classify(b, path, NULL, 0, NULL, proba, embedding, seconds, err);
}

int mm_bundle_classify_memory(const mm_bundle *b, const void *data, size_t len, const char *name,
                              float *proba, float *embedding, double *seconds, mm_err *err)
{
    return classify(b, NULL, data, len, name ? name : "upload", proba, embedding, seconds, err);
}
