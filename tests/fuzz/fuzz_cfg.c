/* fuzz_cfg.c — libFuzzer target for the YAML config parser and --set overrides. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    mm_cfg *c = NULL;
    mm_err e = {0};
    if (mm_cfg_parse_string(text, "fuzz.yaml", &c, &e) == 0) {
        char *y = mm_cfg_to_yaml(c);
        free(y);
        long v;
        mm_cfg_get_int(c, "a", 0, 0, 10, &v, &e);
        mm_cfg_find(c, "a.b.0");
        mm_cfg_set(c, "x.y=[1, 2]", &e);
        mm_cfg_free(c);
    }
    free(text);
    return 0;
}
