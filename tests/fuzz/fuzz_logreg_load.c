/* fuzz_logreg_load.c — libFuzzer target for the logreg model loader.
 *
 * The input is decoded into the attributes and datasets of a "logreg" model
 * group (kind, label space, feature count, class list, coefficient and
 * intercept shapes and raw float64 payloads, all fuzzer-chosen and mostly
 * inconsistent), written to an in-memory HDF5 file; mm_logreg_load must
 * refuse it cleanly or load a model that then predicts a few rows without
 * memory errors. Build: scripts/fuzz.sh. */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/h5.h"
#include "learn/logreg.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) { mm_h5_init(); init = 1; }
    rd r = {data, size};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz_logreg_mem.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return 0;
    mm_err e = {0};
    hid_t g = mm_h5_group(f, "m", &e);
    static const char *kinds[] = {"logreg", "svm", ""};
    mm_h5_attr_set_str(g, "kind", kinds[take(&r, 4) ? 0 : take(&r, 3)], &e);
    int64_t ls = (int64_t)take(&r, 12) - 1, nf = (int64_t)take(&r, 24) - 1;
    if (take(&r, 16)) mm_h5_attr_set_i64(g, "label_space", ls, &e);
    if (take(&r, 16)) mm_h5_attr_set_i64(g, "n_features", nf, &e);
    if (take(&r, 16)) mm_h5_attr_set_i64(g, "fit_intercept", (int64_t)take(&r, 3) - 1, &e);
    if (take(&r, 16)) mm_h5_attr_set_i64(g, "n_iter", (int64_t)take(&r, 0) - 10, &e);
    if (take(&r, 16)) mm_h5_attr_set_i64(g, "converged", take(&r, 2), &e);
    if (take(&r, 16)) mm_h5_attr_set_f64(g, "objective", take_f64(&r), &e);
    size_t m = take(&r, 10);
    int32_t ci[10];
    for (size_t i = 0; i < m; i++) ci[i] = (int32_t)take(&r, 12) - 1;
    hsize_t dm[1] = {m};
    if (take(&r, 16)) mm_h5_write_i32(g, "classes", ci, 1, dm, &e);
    hsize_t dc[2] = {take(&r, 10), take(&r, 24)}, di[1] = {take(&r, 10)};
    size_t nc = dc[0] * dc[1], ni = di[0];
    double *buf = malloc((nc + ni + 1) * sizeof *buf);
    for (size_t i = 0; i < nc + ni; i++) buf[i] = r.n >= 8 ? take_f64(&r) : (double)(i % 7) - 3;
    if (nc && take(&r, 16)) mm_h5_write_f64(g, "coef", buf, 2, dc, &e);
    if (ni && take(&r, 16)) mm_h5_write_f64(g, "intercept", buf + nc, 1, di, &e);
    mm_logreg *model = NULL;
    if (mm_logreg_load(g, 1, &model, &e) == 0) {
        size_t d = (size_t)nf, n = 3;
        float *X = calloc(n * d, sizeof *X), *P = malloc(n * (size_t)ls * sizeof *P);
        for (size_t i = 0; i < n * d; i++) X[i] = (float)(i % 5) - 2;
        mm_logreg_predict_proba(model, X, n, d, P, &e);
        mm_logreg_predict_proba(model, X, n, d + 1, P, &e);
        free(X); free(P);
        mm_logreg_free(model);
    }
    free(buf);
    H5Gclose(g);
    H5Fclose(f);
    return 0;
}
