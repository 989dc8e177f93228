/* fuzz_cnn14.c — libFuzzer target for building CNN14 from untrusted checkpoints:
 * arbitrary bytes → mm_pt_open_memory → state dict (top level, else 'model') →
 * mm_cnn14_build (shape, finiteness and BN checks) → on success one forward
 * over 32 frames. Must never crash, leak or read out of bounds. Seeds:
 * tests/ref/gen_cnn14.py --fuzz-seeds tests/fuzz/corpus_cnn14. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/ptload.h"
#include "nn/cnn14.h"

static int lookup(void *ctx, const char *name, mm_cnn14_tensor *t, mm_err *err)
{
    const mm_pt_tensor *x = mm_pt_find(ctx, name);
    if (!x) return mm_err_set(err, MM_EFORMAT, "tensor '%s' missing", name);
    if (x->ndim > 4) return mm_err_set(err, MM_EFORMAT, "tensor '%s': rank", name);
    t->data = x->data;
    t->rank = x->ndim;
    for (int i = 0; i < 4; i++) t->shape[i] = i < x->ndim ? x->shape[i] : 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mm_pt *pt;
    mm_err e = {0};
    if (mm_pt_open_memory(data, size, "fuzz.pth", &pt, &e)) return 0;
    size_t n = 0;
    int rc = mm_pt_state_dict(pt, NULL, &n, &e);
    if (rc == 0 && n == 0) rc = mm_pt_state_dict(pt, "model", &n, &e);
    mm_cnn14 *m = NULL;
    if (rc == 0 && mm_cnn14_build(lookup, pt, "fuzz.pth", NULL, &m, &e) == 0) {
        /* Keep the forward small: only for narrow networks. */
        if (mm_cnn14_width(m, 5) <= 64 && mm_cnn14_embedding_dim(m) <= 4096 &&
            mm_cnn14_n_classes(m) <= 4096 && mm_cnn14_n_mels(m) <= 256) {
            size_t M = mm_cnn14_n_mels(m);
            float *lm = calloc(32 * M, sizeof *lm);
            float *emb = malloc(mm_cnn14_embedding_dim(m) * sizeof *emb);
            float *sc = malloc(mm_cnn14_n_classes(m) * sizeof *sc);
            if (lm && emb && sc) mm_cnn14_forward(m, lm, 32, 1, emb, sc, &e);
            free(lm);
            free(emb);
            free(sc);
        }
        mm_cnn14_free(m);
    }
    mm_pt_free(pt);
    return 0;
}
