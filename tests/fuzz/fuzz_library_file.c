/* fuzz_library_file.c — libFuzzer target for music libraries as whole files
 * (format v2: memory-mapped per-track arrays, one text block, stored sort
 * orders and the valence–arousal grid index, int8 similarity vectors).
 *
 * The input is written to a temporary .h5 file and opened with
 * mm_library_open; a library that opens must look up each of its tracks by
 * id and serve recommendations for three speech classes under both policies,
 * with and without exploration and an exclusion list, each list of at most
 * n distinct valid track indices with finite scores; otherwise it fails with
 * a one-line error. The single-loader target fuzz_library builds files from
 * fuzzer-chosen parts; this one mutates real files, where a disagreement
 * between groups (orders vs strings, index vs points) lives. Seeds: small
 * libraries `melodic index` wrote from generated tones (12 tracks with 1 s windows,
 * and 2 tracks) with a forest trained on those tones, no dataset audio.
 * Build: scripts/fuzz.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/cfg.h"
#include "io/h5.h"
#include "runtime/library.h"
#include "runtime/recommend.h"
#include "runtime/va.h"

/* libhdf5 1.10 leaks small blocks of its own on corrupt files (see fuzz_bundle.c). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5_serial.so\n"; }
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static const char *va_yaml =
    "emotions:\n"
    "  calm: {valence: 0.875, arousal: 0.100}\n"
    "  happy: {valence: 1.000, arousal: 0.735}\n"
    "  sad: {valence: 0.225, arousal: 0.333}\n";

static void serve(const mm_library *lib, const uint8_t *data, size_t size)
{
    mm_err e = {0};
    mm_cfg *c = NULL;
    mm_va_table *va = NULL;
    mm_recommender *rec = NULL;
    const char *const labels[3] = {"happy", "sad", "calm"};
    if (mm_cfg_parse_string(va_yaml, "va.yaml", &c, &e) || mm_va_table_from_cfg(c, &va, &e) ||
        mm_recommender_create(lib, va, labels, 3, &rec, &e))
        goto done;
    size_t n = mm_library_size(lib);
    size_t excl[4] = {0, n / 2, n ? n - 1 : 0, 3};
    for (int t = 0; t < 8; t++) {
        float pr[3] = {(float)(t & 1), (float)(t & 2) / 2, 0.5f};
        mm_recommend_params p;
        mm_recommend_params_default(&p);
        p.policy = t & 1 ? MM_POLICY_REGULATE : MM_POLICY_MATCH;
        p.n = 1 + (size ? data[t % size] % 12 : 3);
        p.temperature = t & 2 ? 0.1 : 0;
        p.seed = (uint64_t)t;
        if (t & 4 && n) { p.exclude = excl; p.n_exclude = n > 3 ? 4 : 3; }
        mm_rec_result res;
        if (mm_recommend(rec, pr, &p, NULL, &res, &e)) continue;
        if (res.n > (size_t)p.n) __builtin_trap();
        for (size_t i = 0; i < res.n; i++) {
            if (res.items[i].track >= n || !isfinite(res.items[i].score)) __builtin_trap();
            for (size_t j = 0; j < i; j++)
                if (res.items[j].track == res.items[i].track) __builtin_trap();
        }
        mm_rec_result_free(&res);
    }
done:
    mm_recommender_free(rec);
    mm_va_table_free(va);
    mm_cfg_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        mm_h5_init();
        snprintf(path, sizeof path, "/tmp/fuzz_library_file_%d.h5", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    mm_library *lib = NULL;
    mm_err e = {0};
    if (mm_library_open(path, &lib, &e) == 0) {
        for (size_t i = 0; i < mm_library_size(lib); i++) {
            const mm_library_track *t = mm_library_track_at(lib, i);
            if (mm_library_find(lib, t->id) < 0) __builtin_trap();
        }
        serve(lib, data, size);
        mm_library_free(lib);
    } else if (!e.msg[0] || strchr(e.msg, '\n')) {
        __builtin_trap();   /* an error is one non-empty line */
    }
    return 0;
}
