/* fuzz_trees_load.c — libFuzzer target for the random forest and gradient
 * boosting model loaders.
 *
 * The input is decoded into the attributes and datasets of an "rf" or "gbdt"
 * group (class and feature counts, tree offsets, node features, children,
 * thresholds and leaf values, all fuzzer-chosen and mostly inconsistent),
 * written to an in-memory HDF5 file; the loader must refuse it cleanly or
 * give a model that predicts a few rows without memory errors or endless
 * loops. Build and run: scripts/fuzz.sh. */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/h5.h"
#include "learn/gbdt.h"
#include "learn/rf.h"

typedef struct rd { const uint8_t *p; size_t n; } rd;

static uint32_t take(rd *r, uint32_t mod)
{
    uint32_t v = 0;
    if (r->n) { v = *r->p++; r->n--; }
    return mod ? v % mod : v;
}

static int32_t take_i8(rd *r) { return (int32_t)(int8_t)take(r, 0); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) { mm_h5_init(); init = 1; }
    rd r = {data, size};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz_trees_mem.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return 0;
    mm_err e = {0};
    hid_t g = mm_h5_group(f, "m", &e);
    int gbdt = take(&r, 2);
    int64_t K = (int64_t)take(&r, 6), d = (int64_t)take(&r, 9), T = (int64_t)take(&r, 5);
    int G = K == 2 ? 1 : (int)K;
    size_t n_trees = gbdt ? (size_t)(T * (G > 0 ? G : 1)) : (size_t)T;
    if (take(&r, 16) == 0) n_trees += take(&r, 3);          /* sometimes inconsistent */
    size_t N = (size_t)take(&r, 0);
    int32_t *feat = calloc(N + 1, sizeof *feat), *left = calloc(N + 1, sizeof *left);
    float *thr = calloc(N + 1, sizeof *thr), *val = calloc((N + 1) * (size_t)(K > 0 ? K : 1), sizeof *val);
    double *thr64 = calloc(N + 1, sizeof *thr64), *imp = calloc((size_t)d + 1, sizeof *imp);
    int64_t *off = calloc(n_trees + 2, sizeof *off);
    if (!feat || !left || !thr || !val || !thr64 || !imp || !off) goto done;
    for (size_t i = 0; i < N; i++) {
        feat[i] = take_i8(&r);
        left[i] = take_i8(&r);
        thr[i] = (float)take_i8(&r) / 8.0f;
        thr64[i] = thr[i];
    }
    for (size_t i = 0; i < N * (size_t)(K > 0 ? K : 1); i++) val[i] = (float)take(&r, 0) / 255.0f;
    for (size_t t = 0; t <= n_trees; t++) off[t] = n_trees ? (int64_t)(t * N / n_trees) : 0;
    if (n_trees && take(&r, 8) == 0) off[take(&r, (uint32_t)n_trees + 1)] += take_i8(&r);
    hsize_t dO = n_trees + 1, dN = N, dV[2] = {N, (hsize_t)K}, dD = (hsize_t)d;
    if (gbdt) {
        mm_h5_attr_set_str(g, "kind", take(&r, 16) ? "gbdt" : "rf", &e);
        mm_h5_attr_set_i64(g, "gbdt_n_classes", K, &e);
        mm_h5_attr_set_i64(g, "gbdt_n_features", d, &e);
        mm_h5_attr_set_i64(g, "gbdt_n_rounds", T, &e);
        mm_h5_attr_set_i64(g, "gbdt_best", T - 1, &e);
        mm_h5_attr_set_f64(g, "gbdt_base_margin", 0.5, &e);
        mm_h5_write_i64(g, "gbdt_tree_offsets", off, 1, &dO, &e);
        mm_h5_write_i32(g, "gbdt_feature", feat, 1, &dN, &e);
        mm_h5_write_i32(g, "gbdt_left", left, 1, &dN, &e);
        mm_h5_write_f32(g, "gbdt_threshold", thr, 1, &dN, &e);
        mm_h5_write_f32(g, "gbdt_value", val, 1, &dN, &e);
        if (take(&r, 2)) {
            float h[9] = {0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f, 0.05f, 0.01f};
            hsize_t dH = take(&r, 8);
            mm_h5_write_f32(g, "gbdt_train_loss", h, 1, &dH, &e);
            dH = take(&r, 2) ? dH : dH + 1;
            mm_h5_write_f32(g, "gbdt_val_loss", h, 1, &dH, &e);
        }
    } else {
        mm_h5_attr_set_str(g, "kind", take(&r, 16) ? "rf" : "gbdt", &e);
        mm_h5_attr_set_i64(g, "rf_n_classes", K, &e);
        mm_h5_attr_set_i64(g, "rf_n_features", d, &e);
        mm_h5_write_i64(g, "rf_tree_offsets", off, 1, &dO, &e);
        mm_h5_write_i32(g, "rf_feature", feat, 1, &dN, &e);
        mm_h5_write_i32(g, "rf_left", left, 1, &dN, &e);
        mm_h5_write_f64(g, "rf_threshold", thr64, 1, &dN, &e);
        if (K > 0) mm_h5_write_f32(g, "rf_value", val, 2, dV, &e);
        mm_h5_write_f64(g, "rf_importances", imp, 1, &dD, &e);
    }
    float X[3 * 300];
    for (size_t i = 0; i < sizeof X / sizeof *X; i++) X[i] = (float)((int)(i % 17) - 8) / 4.0f;
    float proba[3 * 8];
    if (gbdt) {
        mm_gbdt *m = NULL;
        if (mm_gbdt_load(g, &m, &e) == 0) {
            if (mm_gbdt_n_features(m) <= 300 && mm_gbdt_n_classes(m) <= 8)
                mm_gbdt_predict_proba(m, X, 3, proba, 1, &e);
            mm_gbdt_free(m);
        }
    } else {
        mm_rf *m = NULL;
        if (mm_rf_load(g, &m, &e) == 0) {
            if (mm_rf_n_features(m) <= 300 && mm_rf_n_classes(m) <= 8)
                mm_rf_predict_proba(m, X, 3, proba, 1, &e);
            mm_rf_free(m);
        }
    }
done:
    free(feat); free(left); free(thr); free(val); free(thr64); free(imp); free(off);
    H5Gclose(g);
    H5Fclose(f);
    return 0;
}
