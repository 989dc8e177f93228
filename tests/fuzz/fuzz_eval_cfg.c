/* fuzz_eval_cfg.c — libFuzzer target for the evaluation settings read from
 * configs: the protocol map (mm_split_params_from_cfg, group lists with
 * "a-b" ranges) and the t-SNE map (mm_tsne_params_from_cfg). Accepted
 * protocols are then applied to a small synthetic data set (40 samples,
 * 4 classes, 8 groups), so error paths of mm_split_make are exercised too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/splits.h"
#include "eval/tsne.h"
#include "io/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    mm_cfg *c = NULL;
    mm_err e = {0};
    if (mm_cfg_parse_string(text, "fuzz.yaml", &c, &e) == 0) {
        const mm_cfg *proto = mm_cfg_child(c, "protocol");
        const mm_cfg *ts = mm_cfg_child(c, "tsne");
        mm_split_params p;
        if (mm_split_params_from_cfg(proto ? proto : c, &p, &e) == 0) {
            if (p.repeats > 4) p.repeats = 4;    /* keep each run short */
            int32_t y[40], g[40];
            for (int i = 0; i < 40; i++) {
                y[i] = (i * 7) % 4;
                g[i] = 1 + i / 5;
            }
            mm_split *s = NULL;
            if (mm_split_make(&p, y, g, 40, &s, &e) == 0) {
                size_t idx[40];
                for (size_t r = 0; r < s->n_rounds; r++) (void)mm_split_indices(s, r, MM_ROLE_TEST, idx);
                (void)mm_split_check_leakage(s, g, &e);
                mm_split_free(s);
            }
            mm_split_params_release(&p);
        }
        mm_tsne_params tp;
        (void)mm_tsne_params_from_cfg(ts ? ts : c, &tp, &e);
        mm_cfg_free(c);
    }
    free(text);
    return 0;
}
