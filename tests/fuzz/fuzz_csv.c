/* fuzz_csv.c — libFuzzer target for the CSV reader (manifests, metadata, tables). */
#include <stdint.h>

#include "io/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mm_csv *c = NULL;
    mm_err e = {0};
    if (mm_csv_parse((const char *)data, size, "fuzz.csv", &c, &e) == 0) {
        mm_csv_col(c, "path");
        mm_csv_free(c);
    }
    return 0;
}
