/* test_bundle_hostile.c — bundles whose parts disagree (issue 18, causes 1,
 * 6 and 8): a small model of every learner kind is saved in a hand-made
 * bundle (feature pipeline mfcc_stats means, 20 values), then the file is
 * tampered with through the HDF5 API — n_classes / n_features / label_space
 * attributes changed, the /model group or an ensemble member swapped for one
 * of another class count or width, weights that overflow, label names that
 * are duplicate, empty or not UTF-8 — and opening or classifying must fail
 * with one line that says what was found and what was expected. Under ASan
 * nothing may read or write out of bounds. */
#include "testutil.h"
#include "core/sha256.h"
#include "io/cfg.h"
#include "io/h5.h"
#include "learn/learner.h"
#include "runtime/bundle.h"

#define D 20     /* mfcc_stats with stats [mean]: 20 MFCC means */
#define D2 40    /* with [mean, std] */
static const char *feats_d = "[{set: mfcc_stats, params: {stats: [mean]}}]";
static const char *feats_d2 = "[{set: mfcc_stats, params: {stats: [mean, std]}}]";

typedef struct kind {
    const char *learner;
    const char *params;   /* YAML map: small and fast */
} kind;

static const kind kinds[] = {
    {"rf", "{n_estimators: 4, max_depth: 4}"},
    {"gbdt", "{n_estimators: 3, max_depth: 3}"},
    {"logreg", "{}"},
    {"svm", "{}"},
    {"mlp", "{hidden_layer_sizes: [8], max_iter: 3, early_stopping: false}"},
    {"cnn1d", "{filters: [2, 2, 2, 2, 2], kernel_sizes: [3, 3, 3, 3, 3], pool_sizes: [2, 2, 2, 2, 2], dense_units: 4, "
              "epochs: 1, early_stopping: false}"},
    {"voting", "{voting: soft, estimators: [{model: rf, params: {n_estimators: 3}}, {model: logreg}]}"},
};
#define N_KINDS (sizeof kinds / sizeof *kinds)

static char dir[256];
static const char *const labels7[] = {"calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"};

/* A fitted learner of the given kind on k well-separated classes of d features. */
static mm_learner *fit(const kind *kd, int k, size_t d)
{
    mm_err e = {0};
    mm_cfg *p = NULL;
    mm_learner *l = NULL;
    if (mm_cfg_parse_string(kd->params, "params", &p, &e)) fail_msg("%s", e.msg);
    if (mm_learner_create(kd->learner, p, 7, 1, &l, &e)) fail_msg("%s: %s", kd->learner, e.msg);
    size_t n = 16 * (size_t)k;
    float *X = malloc(n * d * sizeof *X);
    int32_t *y = malloc(n * sizeof *y);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % (size_t)k);
        for (size_t j = 0; j < d; j++) {
            s = s * 1664525u + 1013904223u;
            X[i * d + j] = (float)((s >> 8) % 1000) / 1000.f + (j % (size_t)k == (size_t)y[i] ? 3.f : 0.f);
        }
    }
    mm_fit_data fd = {.X = X, .y = y, .n = n, .d = d, .n_classes = k};
    if (mm_learner_fit(l, &fd, &e)) fail_msg("%s: %s", kd->learner, e.msg);
    free(X);
    free(y);
    mm_cfg_free(p);
    return l;
}

/* A bundle as export writes it, minus provenance: format, model name,
 * feature pipeline, /model and label_names. */
static void write_bundle(const char *path, const mm_learner *l, const char *feats, const char *const *labels,
                         size_t n_labels)
{
    mm_err e = {0};
    mm_h5_out o;
    assert_int_equal(mm_h5_create(path, &o, &e), 0);
    assert_int_equal(mm_h5_stamp_format(o.file, MM_BUNDLE_FORMAT, MM_BUNDLE_VERSION, &e), 0);
    assert_int_equal(mm_h5_attr_set_str(o.file, "model", l->vt->name, &e), 0);
    assert_int_equal(mm_h5_write_text(o.file, "pipeline/features", feats, &e), 0);
    assert_int_equal(mm_h5_write_text(o.file, "pipeline/audio", "{}", &e), 0);
    hid_t g = mm_h5_group(o.file, "model", &e);
    assert_true(g >= 0);
    if (mm_learner_save(l, g, &e)) fail_msg("%s", e.msg);
    H5Gclose(g);
    assert_int_equal(mm_h5_write_strings(o.file, "label_names", labels, n_labels, &e), 0);
    assert_int_equal(mm_h5_commit(&o, &e), 0);
}

/* bundle <dir>/<name>.h5 with a kind's model on k classes, d (D or D2) features. */
static const char *make(const char *name, const kind *kd, int k, size_t d)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 512, "%s/%s.h5", dir, name);
    mm_learner *l = fit(kd, k, d);
    write_bundle(p, l, d == D ? feats_d : feats_d2, labels7, (size_t)k);
    mm_learner_free(l);
    return p;
}

/* 1 s, 16 kHz mono 16-bit WAV of a 440 Hz tone, in memory. */
static uint8_t *tone_wav(size_t *len)
{
    const uint32_t sr = 16000, n = 16000, bytes = n * 2;
    uint8_t *w = malloc(44 + bytes);
    memcpy(w, "RIFF", 4);
    uint32_t v = 36 + bytes;
    memcpy(w + 4, &v, 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    v = 16; memcpy(w + 16, &v, 4);
    uint16_t h = 1; memcpy(w + 20, &h, 2);   /* PCM */
    h = 1; memcpy(w + 22, &h, 2);            /* mono */
    memcpy(w + 24, &sr, 4);
    v = sr * 2; memcpy(w + 28, &v, 4);
    h = 2; memcpy(w + 32, &h, 2);
    h = 16; memcpy(w + 34, &h, 2);
    memcpy(w + 36, "data", 4);
    memcpy(w + 40, &bytes, 4);
    for (uint32_t i = 0; i < n; i++) {
        int16_t s = (int16_t)(8000 * sin(2 * M_PI * 440.0 * i / sr));
        memcpy(w + 44 + 2 * i, &s, 2);
    }
    *len = 44 + bytes;
    return w;
}

/* Open and classify the tone: 0, or the error code with e filled. */
static int open_classify(const char *path, mm_err *e)
{
    mm_bundle *b = NULL;
    int rc = mm_bundle_open(path, NULL, 1, &b, e);
    if (rc) return rc;
    size_t len;
    uint8_t *wav = tone_wav(&len);
    int k = mm_bundle_n_classes(b);
    float *p = malloc((size_t)k * sizeof *p);
    rc = mm_bundle_classify_memory(b, wav, len, "tone.wav", p, NULL, NULL, e);
    if (!rc) {
        double sum = 0;
        for (int c = 0; c < k; c++) {
            assert_true(isfinite(p[c]) && p[c] >= 0 && p[c] <= 1);
            sum += p[c];
        }
        assert_true(fabs(sum - 1) < 1e-3);
    }
    free(p);
    free(wav);
    mm_bundle_free(b);
    return rc;
}

/* The call failed with code, and its one-line message holds every fragment. */
static void expect_error(int rc, int code, const mm_err *e, const char *a, const char *b)
{
    if (rc != code) fail_msg("expected error %d, got %d (%s)", code, rc, rc ? e->msg : "success");
    assert_null(strchr(e->msg, '\n'));
    if (a && !strstr(e->msg, a)) fail_msg("message '%s' lacks '%s'", e->msg, a);
    if (b && !strstr(e->msg, b)) fail_msg("message '%s' lacks '%s'", e->msg, b);
}

static hid_t open_rw(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static void set_attr(const char *path, const char *obj, const char *attr, int64_t v)
{
    hid_t f = open_rw(path);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    assert_true(o >= 0);
    mm_err e = {0};
    assert_int_equal(mm_h5_attr_set_i64(o, attr, v, &e), 0);
    H5Oclose(o);
    H5Fclose(f);
}

/* Replace dst:dst_obj with a copy of src:src_obj. */
static void swap_group(const char *dst, const char *dst_obj, const char *src, const char *src_obj)
{
    hid_t fd = open_rw(dst), fs = H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(fs >= 0);
    assert_true(H5Ldelete(fd, dst_obj, H5P_DEFAULT) >= 0);
    assert_true(H5Ocopy(fs, src_obj, fd, dst_obj, H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Fclose(fs);
    H5Fclose(fd);
}

/* Overwrite every value of a float dataset with v (same shape), or with
 * ±v, signs from a fixed pseudo-random sequence, when alternate. */
static void fill_dataset(const char *path, const char *name, double v, int alternate)
{
    hid_t f = open_rw(path);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t sp = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    double *buf = malloc((size_t)n * sizeof *buf);
    uint32_t s = 99;
    for (hssize_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        buf[i] = alternate && (s >> 31) ? -v : v;
    }
    assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    free(buf);
    H5Sclose(sp);
    H5Dclose(ds);
    H5Fclose(f);
}

static void replace_labels(const char *path, const char *const *labels, size_t n)
{
    hid_t f = open_rw(path);
    mm_err e = {0};
    assert_int_equal(mm_h5_write_strings(f, "label_names", labels, n, &e), 0);
    H5Fclose(f);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_bundle_hostile_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

/* Every kind as saved: opens, classifies the tone into finite probabilities. */
static void test_untampered(void **st)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        mm_err e = {0};
        const char *p = make("ok", &kinds[i], 3, D);
        if (open_classify(p, &e)) fail_msg("%s: %s", kinds[i].learner, e.msg);
    }
}

/* n_classes of /model says 7 and 7 label names, the model inside has 4:
 * formerly garbage probabilities or writes past the probability buffer. */
static void test_classes_attribute(void **st)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        mm_err e = {0};
        const char *p = make("cls", &kinds[i], 4, D);
        set_attr(p, "model", "n_classes", 7);
        replace_labels(p, labels7, 7);
        char want[64];
        snprintf(want, sizeof want, "its %s model has 4 classes", kinds[i].learner);
        if (!strcmp(kinds[i].learner, "voting"))   /* the ensemble's attributes bind its members */
            expect_error(open_classify(p, &e), MM_EFORMAT, &e, "/model/estimator_0: a model of 4 classes", "expected 7 classes");
        else
            expect_error(open_classify(p, &e), MM_EFORMAT, &e, want, "n_classes 7");
        assert_non_null(strstr(e.msg, "/model"));
        /* fewer labels than classes: the group still says 4, the labels 3 */
        p = make("cls", &kinds[i], 4, D);
        replace_labels(p, labels7, 3);
        expect_error(open_classify(p, &e), MM_EFORMAT, &e, "a model of 4 classes", "expected 3 classes");
    }
}

/* n_features of /model differs from the pipeline (20): refused against the
 * caller's width; loaded without expectations, against the model's own. */
static void test_features_attribute(void **st)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        for (int delta = -1; delta <= 1; delta += 2) {
            mm_err e = {0};
            const char *p = make("feat", &kinds[i], 3, D);
            set_attr(p, "model", "n_features", D + delta);
            char want[64];
            snprintf(want, sizeof want, "3 classes and %d features", D + delta);
            expect_error(open_classify(p, &e), MM_EFORMAT, &e, want, "expected 3 classes and 20 features");
            hid_t f;
            mm_learner *l = NULL;
            assert_int_equal(mm_h5_open_read(p, &f, &e), 0);
            hid_t g = mm_h5_open_group(f, "model", &e);
            expect_error(mm_learner_load(g, 1, &l, &e), MM_EFORMAT, &e, "model group /model", NULL);
            assert_null(l);
            H5Gclose(g);
            mm_h5_close(f);
        }
    }
}

/* The learners' own class counts: label_space (logreg, svm), rf/gbdt_n_classes. */
static void test_own_class_count(void **st)
{
    static const struct { size_t kind; const char *attr; } cases[] = {
        {2, "label_space"}, {3, "label_space"}, {0, "rf_n_classes"}, {1, "gbdt_n_classes"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        for (int v = 2; v <= 5; v += 3) {
            mm_err e = {0};
            const char *p = make("own", &kinds[cases[c].kind], 3, D);
            set_attr(p, "model", cases[c].attr, v);
            expect_error(open_classify(p, &e), MM_EFORMAT, &e, "model group /model", NULL);
        }
    }
    /* label_space 7 behind 7 labels and n_classes 7: consistent, the 3 trained classes keep their places */
    for (size_t k = 2; k <= 3; k++) {
        mm_err e = {0};
        const char *p = make("ls7", &kinds[k], 3, D);
        set_attr(p, "model", "label_space", 7);
        set_attr(p, "model", "n_classes", 7);
        replace_labels(p, labels7, 7);
        if (open_classify(p, &e)) fail_msg("%s: %s", kinds[k].learner, e.msg);
    }
}

/* /model copied from a bundle of another class count or feature width. */
static void test_swapped_model(void **st)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        mm_err e = {0};
        const char *p = make("swap", &kinds[i], 3, D);
        const char *q = make("other4", &kinds[i], 4, D);
        swap_group(p, "model", q, "model");
        expect_error(open_classify(p, &e), MM_EFORMAT, &e, "a model of 4 classes and 20 features", "expected 3 classes and 20 features");
        p = make("swap", &kinds[i], 3, D);
        q = make("other40", &kinds[i], 3, D2);
        swap_group(p, "model", q, "model");
        expect_error(open_classify(p, &e), MM_EFORMAT, &e, "3 classes and 40 features", "expected 3 classes and 20 features");
        /* and its inside under the original attributes */
        p = make("swap", &kinds[i], 3, D);
        q = make("other4", &kinds[i], 4, D);
        swap_group(p, "model", q, "model");
        set_attr(p, "model", "n_classes", 3);
        expect_error(open_classify(p, &e), MM_EFORMAT, &e, "4 classes", " 3");
    }
}

/* A voting ensemble checks each member like the whole. */
static void test_voting_members(void **st)
{
    const kind *v = &kinds[N_KINDS - 1];
    mm_err e = {0};
    const char *p = make("vote", v, 3, D);
    set_attr(p, "model/estimator_1", "n_classes", 5);
    expect_error(open_classify(p, &e), MM_EFORMAT, &e, "/model/estimator_1: a model of 5 classes", "expected 3 classes");
    p = make("vote", v, 3, D);
    set_attr(p, "model/estimator_0", "n_features", D + 3);
    expect_error(open_classify(p, &e), MM_EFORMAT, &e, "/model/estimator_0", NULL);
    /* a member from a 4-class bundle, and one of 40 features */
    const char *q4 = make("rf4", &kinds[0], 4, D), *q40 = make("rf40", &kinds[0], 3, D2);
    p = make("vote", v, 3, D);
    swap_group(p, "model/estimator_1", q4, "model");
    expect_error(open_classify(p, &e), MM_EFORMAT, &e, "/model/estimator_1: a model of 4 classes", "expected 3 classes");
    p = make("vote", v, 3, D);
    swap_group(p, "model/estimator_0", q40, "model");
    expect_error(open_classify(p, &e), MM_EFORMAT, &e, "3 classes and 40 features", "expected 3 classes and 20 features");
    p = make("vote", v, 3, D);
    swap_group(p, "model/estimator_1", q40, "model");
    expect_error(open_classify(p, &e), MM_EFORMAT, &e, "/model/estimator_1", "expected 3 classes and 20 features");
}

/* Finite weights that overflow: the probabilities would be NaN; an error, never a result. */
static void test_non_finite_output(void **st)
{
    static const struct { size_t kind; const char *dset; double v; int alternate; } cases[] = {
        {2, "model/coef", 1.7e308, 0}, {1, "model/gbdt_value", 3e38, 0}, {4, "model/params", 1e30, 1},
        {5, "model/params", 1e30, 1}, {6, "model/estimator_1/coef", 1.7e308, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        mm_err e = {0};
        const char *p = make("nan", &kinds[cases[c].kind], 3, D);
        fill_dataset(p, cases[c].dset, cases[c].v, cases[c].alternate);
        expect_error(open_classify(p, &e), MM_EDATA, &e, "not a probability", "overflow");
    }
    /* the command line: exit 1, no number printed */
    const char *p = make("nan", &kinds[2], 3, D);
    fill_dataset(p, "model/coef", 1.7e308, 0);
    char wav[512];
    snprintf(wav, sizeof wav, "%s/tone.wav", dir);
    size_t len;
    uint8_t *w = tone_wav(&len);
    FILE *f = fopen(wav, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(w, 1, len, f), len);
    fclose(f);
    free(w);
    assert_int_equal(tu_system("%s classify %s %s --json > %s/out.json 2> %s/err.txt", tu_bin(), p, wav, dir, dir), 1);
    assert_int_equal(tu_system("grep -Eqi ':[[:space:]]*-?nan' %s/out.json", dir), 1);   /* no NaN value */
    assert_int_equal(tu_system("grep -q '\"error\"' %s/out.json", dir), 0);
    assert_int_equal(tu_system("grep -q 'overflow' %s/err.txt", dir), 0);
}

/* Label names that would break JSON maps or TSV lines. */
static void test_bad_labels(void **st)
{
    static const struct { const char *l[3]; const char *want; } cases[] = {
        {{"calm", "calm", "sad"}, "are both 'calm'"},
        {{"calm", "", "sad"}, "label_names[1] is empty"},
        {{"calm", "sa\xff", "x"}, "label_names[1] is not valid UTF-8"},
        {{"calm", "sad", "\xc0\xaf"}, "label_names[2] is not valid UTF-8"},      /* overlong '/' */
        {{"\xed\xa0\x80", "sad", "x"}, "label_names[0] is not valid UTF-8"},     /* surrogate */
        {{"calm", "sa\xe2\x82", "x"}, "label_names[1] is not valid UTF-8"},      /* truncated */
        {{"calm", "sad\nhappy", "x"}, "control character 0x0a"},
        {{"calm", "sad\t", "x"}, "control character 0x09"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        mm_err e = {0};
        const char *p = make("lab", &kinds[2], 3, D);
        replace_labels(p, cases[c].l, 3);
        expect_error(open_classify(p, &e), MM_EFORMAT, &e, cases[c].want, NULL);
    }
    /* non-ASCII names are fine */
    const char *const good[] = {"calme", "tristesse \xc3\xa9", "\xe6\x82\xb2\xe3\x81\x97\xe3\x81\x84"};
    mm_err e = {0};
    const char *p = make("lab", &kinds[2], 3, D);
    replace_labels(p, good, 3);
    if (open_classify(p, &e)) fail_msg("%s", e.msg);
    /* a long duplicate is quoted whole characters only */
    const char *const dup[] = {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x",
                               "b",
                               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x"};
    p = make("lab", &kinds[2], 3, D);
    replace_labels(p, dup, 3);
    expect_error(open_classify(p, &e), MM_EFORMAT, &e, "label_names[0] and label_names[2]", "distinct");
    char msg[sizeof e.msg];
    snprintf(msg, sizeof msg, "%s", e.msg);
    const char *msg_as_label[] = {msg, "x"};
    assert_int_equal(mm_check_class_names(msg_as_label, 2, "msg", &e), 0);   /* the message itself is valid UTF-8 */
    expect_error(mm_check_class_names(msg_as_label, 1, "names", &e), MM_EFORMAT, &e, "names: 1 names, expected 2..", NULL);
}

/* Embedded weights (a checksum that matches) for a feature set past the
 * eighth: formerly an uninitialised path handed to the feature set. */
static void test_ninth_embedded_weights(void **st)
{
    const char *p = make("w9", &kinds[2], 3, D);
    hid_t f = open_rw(p);
    mm_err e = {0};
    static const uint8_t bytes[] = "not really weights";
    char hex[65];
    mm_sha256 h;
    mm_sha256_init(&h);
    mm_sha256_update(&h, bytes, sizeof bytes);
    mm_sha256_hex(&h, hex);
    hid_t g = mm_h5_group(f, "pipeline/weights/8", &e);
    assert_true(g >= 0);
    assert_int_equal(mm_h5_attr_set_str(g, "path", "w.pt", &e), 0);
    assert_int_equal(mm_h5_attr_set_str(g, "sha256", hex, &e), 0);
    H5Gclose(g);
    assert_int_equal(mm_h5_write_u8(f, "pipeline/weights/8/data", bytes, sizeof bytes, &e), 0);
    char nine[1024] = "[";
    for (int i = 0; i < 9; i++) strcat(nine, i ? ", {set: mfcc_stats, params: {stats: [mean]}}" : "{set: mfcc_stats, params: {stats: [mean]}}");
    strcat(nine, "]");
    assert_int_equal(mm_h5_write_text(f, "pipeline/features", nine, &e), 0);
    H5Fclose(f);
    expect_error(open_classify(p, &e), MM_EFORMAT, &e, "pipeline/weights/8/data", "at most the first 8");
}

/* melodic predict on a trained-model file (melodic train): the same checks
 * against its label names, one line on stderr, exit 1. */
static void test_predict_cli(void **st)
{
    char csv[512], model[512];
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    snprintf(model, sizeof model, "%s/m.h5", dir);
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fprintf(f, "label,f0,f1,f2,f3\n");
    for (int i = 0; i < 30; i++)
        fprintf(f, "%s,%d,%d,%d,%d\n", i % 3 == 0 ? "calm" : i % 3 == 1 ? "happy" : "sad", i % 3 * 4 + i % 2, i % 5, 7 - i % 3,
                (i * 7) % 11);
    fclose(f);
    static const struct { const char *what; const char *want; } cases[] = {
        {"none", NULL}, {"dup", "are both 'calm'"}, {"four", "expected 4 classes"}, {"attr", "its logreg model has 3 classes"},
        {"width", "model group /model"}, {"nan", "overflow"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        assert_int_equal(tu_system("%s train %s --model logreg -o %s 2>/dev/null", tu_bin(), csv, model), 0);
        const char *const dup[] = {"calm", "happy", "calm"}, *const four[] = {"calm", "happy", "sad", "angry"};
        if (!strcmp(cases[c].what, "dup")) replace_labels(model, dup, 3);
        if (!strcmp(cases[c].what, "four")) replace_labels(model, four, 4);
        if (!strcmp(cases[c].what, "attr")) { replace_labels(model, four, 4); set_attr(model, "model", "n_classes", 4); }
        if (!strcmp(cases[c].what, "width")) set_attr(model, "model", "n_features", 5);
        if (!strcmp(cases[c].what, "nan")) fill_dataset(model, "model/coef", 1.7e308, 0);
        int rc = tu_system("%s predict %s %s > %s/pred.txt 2> %s/pred.err", tu_bin(), model, csv, dir, dir);
        if (!cases[c].want) { assert_int_equal(rc, 0); continue; }
        if (rc != 1) fail_msg("%s: exit %d", cases[c].what, rc);
        assert_int_equal(tu_system("test $(wc -l < %s/pred.err) -eq 1 && grep -qF \"%s\" %s/pred.err", dir, cases[c].want, dir), 0);
        assert_int_equal(tu_system("grep -qi nan %s/pred.txt", dir), 1);
    }
}

/* Seeds for tests/fuzz/fuzz_bundle.c: with MM_FUZZ_SEEDS=DIR, one small
 * bundle per learner kind into DIR (else skipped). */
static void test_fuzz_seeds(void **st)
{
    const char *out = getenv("MM_FUZZ_SEEDS");
    if (!out || !*out) { skip(); return; }
    static const kind tiny[] = {
        {"rf", "{n_estimators: 2, max_depth: 2}"},
        {"gbdt", "{n_estimators: 2, max_depth: 2}"},
        {"logreg", "{}"},
        {"svm", "{}"},
        {"mlp", "{hidden_layer_sizes: [3], max_iter: 1}"},
        {"voting", "{voting: hard, estimators: [{model: rf, params: {n_estimators: 1, max_depth: 1}}, {model: logreg}]}"},
    };
    for (size_t i = 0; i < sizeof tiny / sizeof *tiny; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s.h5", out, tiny[i].learner);
        mm_learner *l = fit(&tiny[i], 2 + (int)(i % 3), D);
        write_bundle(p, l, feats_d, labels7, (size_t)(2 + i % 3));
        mm_learner_free(l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untampered),
        cmocka_unit_test(test_classes_attribute),
        cmocka_unit_test(test_features_attribute),
        cmocka_unit_test(test_own_class_count),
        cmocka_unit_test(test_swapped_model),
        cmocka_unit_test(test_voting_members),
        cmocka_unit_test(test_non_finite_output),
        cmocka_unit_test(test_bad_labels),
        cmocka_unit_test(test_ninth_embedded_weights),
        cmocka_unit_test(test_predict_cli),
        cmocka_unit_test(test_fuzz_seeds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
