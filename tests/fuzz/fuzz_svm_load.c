/* fuzz_svm_load.c — libFuzzer target for the SVM model loader.
 *
 * The input is decoded into the attributes and datasets of an "svm" model
 * group (shapes, kernel, gamma, class lists, counts and raw float payloads,
 * all fuzzer-chosen and mostly inconsistent), written to an in-memory HDF5
 * file; mm_svm_load must refuse it cleanly or load a model that then predicts
 * a few rows without memory errors. Build: scripts/fuzz.sh. */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/h5.h"
#include "learn/svm.h"

typedef struct rd { const uint8_t *p; size_t n; } rd;

static uint32_t take(rd *r, uint32_t mod)
{
    uint32_t v = 0;
    for (int i = 0; i < 2 && r->n; i++, r->p++, r->n--) v = v << 8 | *r->p;
    return mod ? v % mod : v;
}

static double take_f64(rd *r)
{
    double v = 0;
    if (r->n >= 8) { memcpy(&v, r->p, 8); r->p += 8; r->n -= 8; }
    return v;
}

/* n values: raw bytes while they last, then a pattern. */
static void fill_f64(rd *r, double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = r->n >= 8 ? take_f64(r) : (double)(i % 7) - 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) { mm_h5_init(); init = 1; }
    rd r = {data, size};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz_svm_mem.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return 0;
    mm_err e = {0};
    hid_t g = mm_h5_group(f, "m", &e);
    static const char *kinds[] = {"svm", "rf", ""};
    static const char *kern[] = {"linear", "poly", "rbf", "sigmoid", "cubic"};
    mm_h5_attr_set_str(g, "kind", kinds[take(&r, 3) ? 0 : take(&r, 3)], &e);
    mm_h5_attr_set_str(g, "kernel", kern[take(&r, 5)], &e);
    mm_h5_attr_set_f64(g, "gamma", take(&r, 4) ? 0.5 : take_f64(&r), &e);
    mm_h5_attr_set_f64(g, "coef0", take(&r, 4) ? 1.0 : take_f64(&r), &e);
    mm_h5_attr_set_i64(g, "degree", (int64_t)take(&r, 0) - 100, &e);
    int64_t ls = (int64_t)take(&r, 12) - 1, nf = (int64_t)take(&r, 10) - 1;
    if (take(&r, 8)) mm_h5_attr_set_i64(g, "label_space", ls, &e);
    if (take(&r, 8)) mm_h5_attr_set_i64(g, "n_features", nf, &e);
    int64_t prob = take(&r, 2);
    mm_h5_attr_set_i64(g, "probability", prob, &e);
    size_t m = take(&r, 8);
    int32_t ci[8], ns[8];
    for (size_t i = 0; i < m; i++) { ci[i] = (int32_t)take(&r, 12) - 1; ns[i] = (int32_t)take(&r, 8) - 1; }
    hsize_t dm[1] = {m};
    if (take(&r, 8)) mm_h5_write_i32(g, "classes", ci, 1, dm, &e);
    if (take(&r, 8)) mm_h5_write_i32(g, "n_support", ns, 1, dm, &e);
    hsize_t dsv[2] = {take(&r, 40), take(&r, 12)}, dc[2] = {take(&r, 8), take(&r, 40)}, dp[1] = {take(&r, 30)};
    size_t nsv = dsv[0] * dsv[1], nc = dc[0] * dc[1], np = dp[0];
    double *buf = malloc((nsv + nc + 3 * np + 1) * sizeof *buf);
    float *fb = malloc((nsv + 1) * sizeof *fb);
    fill_f64(&r, buf, nsv + nc + 3 * np);
    for (size_t i = 0; i < nsv; i++) fb[i] = (float)buf[i];
    if (nsv && take(&r, 8)) mm_h5_write_f32(g, "support_vectors", fb, 2, dsv, &e);
    if (nc && take(&r, 8)) mm_h5_write_f64(g, "dual_coef", buf + nsv, 2, dc, &e);
    if (take(&r, 8)) mm_h5_write_f64(g, "rho", buf + nsv + nc, 1, dp, &e);
    if (take(&r, 8)) mm_h5_write_f64(g, "probA", buf + nsv + nc + np, 1, dp, &e);
    if (take(&r, 8)) mm_h5_write_f64(g, "probB", buf + nsv + nc + 2 * np, 1, dp, &e);
    hsize_t dct[1] = {take(&r, 12)};
    if (dct[0] && dct[0] <= nsv && take(&r, 8)) mm_h5_write_f32(g, "center", fb, 1, dct, &e);
    mm_svm *model = NULL;
    if (mm_svm_load(g, 1, &model, &e) == 0) {
        size_t d = (size_t)nf, n = 3;
        float *X = calloc(n * d, sizeof *X), *P = malloc(n * (size_t)ls * sizeof *P);
        double *dec = malloc(n * mm_svm_n_pairs(model) * sizeof *dec);
        int32_t lab[3];
        for (size_t i = 0; i < n * d; i++) X[i] = (float)(i % 5) - 2;
        mm_svm_predict_proba(model, X, n, d, P, &e);
        mm_svm_decision(model, X, n, d, dec, &e);
        mm_svm_predict(model, X, n, d, lab, &e);
        free(X); free(P); free(dec);
        mm_svm_free(model);
    }
    free(buf); free(fb);
    H5Gclose(g);
    H5Fclose(f);
    return 0;
}
