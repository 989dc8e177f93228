/* fuzz_ptload.c — libFuzzer target for the PyTorch checkpoint reader:
 * arbitrary bytes → mm_pt_open_memory → select the root and a "model" entry
 * → touch every tensor value. Must never crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>

#include "io/ptload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mm_pt *pt;
    mm_err e = {0};
    if (mm_pt_open_memory(data, size, "fuzz.pt", &pt, &e)) return 0;
    const char *keys[2] = {NULL, "model"};
    volatile float sink = 0;
    for (int k = 0; k < 2; k++) {
        size_t n;
        if (mm_pt_state_dict(pt, keys[k], &n, &e)) continue;
        for (size_t i = 0; i < n; i++) {
            const mm_pt_tensor *t = mm_pt_at(pt, i);
            for (size_t j = 0; j < t->numel; j++) sink += t->data[j];
        }
    }
    (void)sink;
    mm_pt_free(pt);
    return 0;
}
