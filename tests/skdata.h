/* skdata.h — scikit-learn's bundled data sets (tests/fixtures/sk_datasets.h5,
 * written by tests/ref/gen_sklearn_data.py with fixed stratified splits) and
 * small helpers shared by the learner tests. Include after testutil.h. */
#ifndef MM_SKDATA_H
#define MM_SKDATA_H

#include "io/cfg.h"
#include "io/h5.h"
#include "learn/learner.h"

typedef struct table {
    float *Xtr, *Xte;
    int32_t *ytr, *yte;
    size_t ntr, nte, d;
    int K;
} table;

static inline void table_free(table *t)
{
    free(t->Xtr); free(t->Xte); free(t->ytr); free(t->yte);
}

static inline void load_sk(const char *name, table *t)
{
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_read("tests/fixtures/sk_datasets.h5", &f, &e), 0);
    hid_t g = mm_h5_open_group(f, name, &e);
    assert_true(g >= 0);
    hsize_t dm[4];
    int r;
    assert_int_equal(mm_h5_read_f32(g, "X_train", 2, &t->Xtr, &r, dm, &e), 0);
    t->ntr = dm[0]; t->d = dm[1];
    assert_int_equal(mm_h5_read_f32(g, "X_test", 2, &t->Xte, &r, dm, &e), 0);
    t->nte = dm[0];
    assert_int_equal(mm_h5_read_i32(g, "y_train", 1, &t->ytr, &r, dm, &e), 0);
    assert_int_equal(mm_h5_read_i32(g, "y_test", 1, &t->yte, &r, dm, &e), 0);
    int64_t k;
    assert_int_equal(mm_h5_attr_get_i64(g, "n_classes", &k, &e), 0);
    t->K = (int)k;
    H5Gclose(g);
    mm_h5_close(f);
}

static inline mm_cfg *yaml(const char *text)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "params.yaml", &c, &e), 0);
    return c;
}

static inline double accuracy(const float *proba, const int32_t *y, size_t n, int K)
{
    int32_t *pred = malloc(n * sizeof *pred);
    mm_proba_argmax(proba, n, K, pred);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += pred[i] == y[i];
    free(pred);
    return 100.0 * (double)ok / (double)n;
}


#endif
