/* registry.c — the table of learners and the checks shared by all of them.
 *
 * LEARNERS is a constant table: every learner module defines
 * `const mm_learner_vt mm_learner_<name>` and is listed here, so a static
 * link pulls in exactly the modules named (no weak symbols, no
 * --whole-archive) and lookups need no initialisation (thread-safe). */
#include "learn/learner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const mm_learner_vt mm_learner_rf;
extern const mm_learner_vt mm_learner_gbdt;
extern const mm_learner_vt mm_learner_svm;
extern const mm_learner_vt mm_learner_mlp;
extern const mm_learner_vt mm_learner_cnn1d;
extern const mm_learner_vt mm_learner_voting;
extern const mm_learner_vt mm_learner_logreg;

static const mm_learner_vt *const LEARNERS[] = {
    &mm_learner_rf, &mm_learner_gbdt, &mm_learner_svm, &mm_learner_mlp,
    &mm_learner_cnn1d, &mm_learner_voting, &mm_learner_logreg, NULL,
};

const mm_learner_vt *const *mm_learner_list(void)
{
    return LEARNERS;
}

const mm_learner_vt *mm_learner_find(const char *name)
{
    for (const mm_learner_vt *const *p = mm_learner_list(); *p; p++)
        if (!strcmp((*p)->name, name)) return *p;
    return NULL;
}

int mm_check_finite(const float *X, size_t n, size_t d, const char *what, mm_err *err)
{
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(X[i]))
            return mm_err_set(err, MM_EDATA, "%s: row %zu, column %zu is %s; features must be finite",
                              what, i / d, i % d, isnan(X[i]) ? "NaN" : "infinite");
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid: no
 * overlong forms, surrogates or code points above U+10FFFF (RFC 3629). */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

int mm_check_class_names(const char *const *names, size_t n, const char *what, mm_err *err)
{
    if (n < 2 || n > 100000) return mm_err_set(err, MM_EFORMAT, "%s: %zu names, expected 2..100000 classes", what, n);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *s = (const unsigned char *)names[i];
        if (!s || !*s) return mm_err_set(err, MM_EFORMAT, "%s[%zu] is empty; class names must be non-empty", what, i);
        for (size_t j = 0; s[j];) {
            int len = utf8_len(s + j);
            if (!len) return mm_err_set(err, MM_EFORMAT, "%s[%zu] is not valid UTF-8 (byte 0x%02x at offset %zu)", what, i, s[j], j);
            if (s[j] < 0x20 || s[j] == 0x7f)
                return mm_err_set(err, MM_EFORMAT, "%s[%zu] holds control character 0x%02x at offset %zu", what, i, s[j], j);
            j += (size_t)len;
        }
    }
    const char *const **by = mm_malloc(n ? n : 1, sizeof *by, err);   /* pointers into names, sorted */
    if (!by) return MM_ENOMEM;
    for (size_t i = 0; i < n; i++) by[i] = &names[i];
    qsort(by, n, sizeof *by, cmp_name);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (!strcmp(*by[i - 1], *by[i])) {
            size_t a = (size_t)(by[i - 1] - names), b = (size_t)(by[i] - names), w = 0;
            const unsigned char *s = (const unsigned char *)*by[i];
            while (s[w] && w + (size_t)utf8_len(s + w) <= 60) w += (size_t)utf8_len(s + w);   /* whole characters */
            rc = mm_err_set(err, MM_EFORMAT, "%s[%zu] and %s[%zu] are both '%.*s%s'; class names must be distinct", what,
                            a < b ? a : b, what, a < b ? b : a, (int)w, *by[i], s[w] ? "…" : "");
        }
    free(by);
    return rc;
}

int mm_learner_create(const char *name, const mm_cfg *params, uint64_t seed, int n_threads,
                      mm_learner **out, mm_err *err)
{
    const mm_learner_vt *vt = mm_learner_find(name);
    if (!vt) {
        char list[512] = "";
        for (const mm_learner_vt *const *p = mm_learner_list(); *p; p++) {
            strncat(list, p == mm_learner_list() ? "" : ", ", sizeof list - strlen(list) - 1);
            strncat(list, (*p)->name, sizeof list - strlen(list) - 1);
        }
        return mm_err_set(err, MM_EINVAL, "unknown model '%s' (available: %s)", name, list);
    }
    mm_learner *l = mm_calloc(1, sizeof *l, err);
    if (!l) return MM_ENOMEM;
    l->vt = vt;
    int rc = vt->create(params, seed, n_threads < 1 ? 1 : n_threads, &l->state, err);
    if (rc) { free(l); return rc; }
    *out = l;
    return 0;
}

int mm_learner_uses_validation(const mm_learner *l)
{
    if (l->vt->uses_validation) return l->vt->uses_validation(l->state) != 0;
    return l->vt->wants_validation > 0;
}

int mm_learner_fit(mm_learner *l, const mm_fit_data *data, mm_err *err)
{
    if (data->n == 0 || data->d == 0)
        return mm_err_set(err, MM_EDATA, "%s: empty training set (%zu rows, %zu features)", l->vt->name, data->n, data->d);
    if (data->n_classes < 2)
        return mm_err_set(err, MM_EDATA, "%s: need at least 2 classes, got %d", l->vt->name, data->n_classes);
    int rc = mm_check_finite(data->X, data->n, data->d, "training features", err);
    if (rc) return rc;
    if (data->X_val && (rc = mm_check_finite(data->X_val, data->n_val, data->d, "validation features", err)))
        return rc;
    int *seen = mm_calloc((size_t)data->n_classes, sizeof *seen, err);
    if (!seen) return MM_ENOMEM;
    int distinct = 0;
    for (size_t i = 0; i < data->n; i++) {
        int32_t y = data->y[i];
        if (y < 0 || y >= data->n_classes) {
            free(seen);
            return mm_err_set(err, MM_EDATA, "%s: label %d at row %zu is outside [0, %d)", l->vt->name, y, i, data->n_classes);
        }
        if (!seen[y]++) distinct++;
    }
    free(seen);
    if (distinct < 2)
        return mm_err_set(err, MM_EDATA, "%s: the training set holds a single class; need at least 2", l->vt->name);
    for (size_t i = 0; data->y_val && i < data->n_val; i++)
        if (data->y_val[i] < 0 || data->y_val[i] >= data->n_classes)
            return mm_err_set(err, MM_EDATA, "%s: validation label %d out of range", l->vt->name, data->y_val[i]);
    if (l->vt->wants_validation == 0 && data->X_val && data->y_val && data->n_val) {
        /* a learner without use for a validation part trains on it too */
        size_t n = data->n + data->n_val, d = data->d;
        float *X = mm_malloc(n * d, sizeof *X, err);
        int32_t *y = mm_malloc(n, sizeof *y, err);
        if (!X || !y) { free(X); free(y); return MM_ENOMEM; }
        memcpy(X, data->X, data->n * d * sizeof *X);
        memcpy(X + data->n * d, data->X_val, data->n_val * d * sizeof *X);
        memcpy(y, data->y, data->n * sizeof *y);
        memcpy(y + data->n, data->y_val, data->n_val * sizeof *y);
        mm_fit_data all = {.X = X, .y = y, .n = n, .d = d, .n_classes = data->n_classes};
        rc = l->vt->fit(l->state, &all, err);
        free(X);
        free(y);
    } else {
        rc = l->vt->fit(l->state, data, err);
    }
    if (rc) return rc;
    int k;
    size_t d;
    l->vt->shape(l->state, &k, &d);
    if (k != data->n_classes || d != data->d)
        return mm_err_set(err, MM_EINVAL, "%s: fitted a model of %d classes and %zu features on %d classes and %zu features",
                          l->vt->name, k, d, data->n_classes, data->d);
    l->n_classes = data->n_classes;
    l->n_features = data->d;
    return 0;
}

int mm_learner_predict_proba(const mm_learner *l, const float *X, size_t n, size_t d, float *proba,
                             mm_err *err)
{
    if (!l->n_classes) return mm_err_set(err, MM_EINVAL, "%s: model is not fitted", l->vt->name);
    if (d != l->n_features)
        return mm_err_set(err, MM_EINVAL, "%s: model was trained on %zu features, got %zu", l->vt->name, l->n_features, d);
    int k;
    size_t sd;
    l->vt->shape(l->state, &k, &sd);
    if (k != l->n_classes || sd != l->n_features)   /* the buffers are sized by l's */
        return mm_err_set(err, MM_EINVAL, "%s: the model holds %d classes and %zu features, its learner %d and %zu",
                          l->vt->name, k, sd, l->n_classes, l->n_features);
    int rc = mm_check_finite(X, n, d, "features", err);
    if (!rc) rc = l->vt->predict_proba(l->state, X, n, proba, err);
    for (size_t i = 0; !rc && i < n * (size_t)k; i++)
        if (!isfinite(proba[i]))
            rc = mm_err_set(err, MM_EDATA, "%s: the model's output for row %zu, class %zu is %s, not a probability "
                            "(its weights overflow on this input)", l->vt->name, i / (size_t)k, i % (size_t)k,
                            isnan(proba[i]) ? "NaN" : "infinite");
    return rc;
}

void mm_proba_argmax(const float *proba, size_t n, int k, int32_t *y)
{
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < k; c++)
            if (proba[i * k + c] > proba[i * k + best]) best = c;
        y[i] = best;
    }
}

int mm_learner_save(const mm_learner *l, hid_t g, mm_err *err)
{
    if (!l->n_classes) return mm_err_set(err, MM_EINVAL, "%s: cannot save an unfitted model", l->vt->name);
    int rc = mm_h5_stamp_format(g, "melodic-model", 1, err);
    if (!rc) rc = mm_h5_attr_set_str(g, "learner", l->vt->name, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "n_classes", l->n_classes, err);
    if (!rc) rc = mm_h5_attr_set_i64(g, "n_features", (int64_t)l->n_features, err);
    if (!rc) rc = l->vt->save(l->state, g, err);
    return rc;
}

int mm_learner_load_expect(hid_t g, int n_threads, int want_k, size_t want_d, mm_learner **out, mm_err *err)
{
    char where[256] = "?";
    if (H5Iget_name(g, where, sizeof where) < 0) snprintf(where, sizeof where, "?");
    int rc = mm_h5_check_format(g, "melodic-model", 1, NULL, err);
    if (rc) return rc;
    char *name = NULL;
    int64_t k = 0, d = 0;
    if ((rc = mm_h5_attr_get_str(g, "learner", &name, err))) return rc;
    const mm_learner_vt *vt = mm_learner_find(name);
    if (!vt) { rc = mm_err_set(err, MM_EFORMAT, "model group %s names unknown learner '%s'", where, name); free(name); return rc; }
    free(name);
    if ((rc = mm_h5_attr_get_i64(g, "n_classes", &k, err)) || (rc = mm_h5_attr_get_i64(g, "n_features", &d, err)))
        return rc;
    if (k < 2 || k > 100000 || d < 1 || d > 100000000)
        return mm_err_set(err, MM_EFORMAT, "model group %s: implausible n_classes %lld or n_features %lld", where,
                          (long long)k, (long long)d);
    if ((want_k && k != want_k) || (want_d && (size_t)d != want_d))
        return mm_err_set(err, MM_EFORMAT, "model group %s: a model of %lld classes and %lld features, expected %d classes "
                          "and %zu features", where, (long long)k, (long long)d, want_k ? want_k : (int)k,
                          want_d ? want_d : (size_t)d);
    mm_learner *l = mm_calloc(1, sizeof *l, err);
    if (!l) return MM_ENOMEM;
    l->vt = vt;
    if ((rc = vt->load(g, n_threads < 1 ? 1 : n_threads, &l->state, err))) {
        free(l);
        if (err && strncmp(err->msg, "model group ", 12))   /* an ensemble's member names its own group */
            mm_err_prefix(err, "model group %s", where);
        return rc;
    }
    int sk;
    size_t sd;
    vt->shape(l->state, &sk, &sd);
    if (sk != k || sd != (size_t)d) {
        rc = mm_err_set(err, MM_EFORMAT, "model group %s: its %s model has %d classes and %zu features, the group's "
                        "attributes say n_classes %lld and n_features %lld", where, vt->name, sk, sd, (long long)k,
                        (long long)d);
        mm_learner_free(l);
        return rc;
    }
    l->n_classes = (int)k;
    l->n_features = (size_t)d;
    *out = l;
    return 0;
}

int mm_learner_load(hid_t g, int n_threads, mm_learner **out, mm_err *err)
{
    return mm_learner_load_expect(g, n_threads, 0, 0, out, err);
}

const mm_history *mm_learner_history(const mm_learner *l)
{
    return l && l->vt->history ? l->vt->history(l->state) : NULL;
}

void mm_learner_free(mm_learner *l)
{
    if (!l) return;
    if (l->state) l->vt->free(l->state);
    free(l);
}
