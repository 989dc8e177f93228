/* fuzz_learn_params.c — libFuzzer target for hyperparameter parsing of the
 * SVM, SMOTE and voting learners: the input is YAML text; every parser must
 * accept it or return a one-line error, never crash or leak. Build: scripts/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/cfg.h"
#include "learn/learner.h"
#include "learn/smote.h"
#include "learn/svm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    mm_cfg *c = NULL;
    mm_err e = {0};
    if (mm_cfg_parse_string(text, "fuzz.yaml", &c, &e) == 0) {
        mm_svm_params sp;
        mm_smote_params mp;
        mm_svm_params_from_cfg(c, &sp, &e);
        mm_smote_params_from_cfg(c, &mp, &e);
        mm_learner *l = NULL;
        if (mm_learner_create("voting", c, 1, 1, &l, &e) == 0) mm_learner_free(l);
        if (mm_learner_create("svm", c, 1, 1, &l, &e) == 0) mm_learner_free(l);
        /* a small SMOTE run when the parameters parse, on a fixed table (targets
         * capped here: a valid config may legitimately ask for gigabytes) */
        int small = mm_smote_params_from_cfg(c, &mp, &e) == 0 && mp.k_neighbors <= 8;
        for (int k = 0; small && k < MM_SMOTE_MAX_CLASSES; k++) small = mp.target[k] <= 1000;
        if (small) {
            float X[40];
            int32_t y[20];
            for (int i = 0; i < 20; i++) { X[2 * i] = (float)(i * 7 % 11); X[2 * i + 1] = (float)(i % 3); y[i] = i < 12 ? 0 : i < 17 ? 1 : 2; }
            float *Xo;
            int32_t *yo;
            size_t no;
            mp.n_threads = 1;
            if (mm_smote_resample(X, y, 20, 2, 3, &mp, 0, &Xo, &yo, &no, &e) == 0) { free(Xo); free(yo); }
        }
        mm_cfg_free(c);
    }
    free(text);
    return 0;
}
