/* fuzz_library.c — libFuzzer target for the music library reader, the
 * valence–arousal config and the recommender behind them.
 *
 * First byte even: the input is decoded into the datasets and attributes of
 * a "melodic-library" file (track count, class count, dimension, strings,
 * raw float payloads and which parts exist, all fuzzer-chosen and mostly
 * inconsistent) written to an in-memory HDF5 file; mm_library_read must
 * refuse it cleanly or load a library that then serves a few
 * recommendations (both policies, random speech probabilities, a feedback-
 * free user). First byte odd: the rest is a recommend config (YAML) given
 * to mm_va_table_from_cfg and mm_recommend_params_from_cfg. Build:
 * scripts/fuzz.sh. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/cfg.h"
#include "io/h5.h"
#include "runtime/recommend.h"

typedef struct rd { const uint8_t *p; size_t n; } rd;

static uint32_t take(rd *r, uint32_t mod)
{
    uint32_t v = 0;
    for (int i = 0; i < 2 && r->n; i++, r->p++, r->n--) v = v << 8 | *r->p;
    return mod ? v % mod : v;
}

static float take_f32(rd *r)
{
    float v = 0;
    if (r->n >= 4) { memcpy(&v, r->p, 4); r->p += 4; r->n -= 4; }
    return v;
}

/* A short string from the input (or a pattern when it runs out). */
static void take_str(rd *r, char *buf, size_t size, size_t i)
{
    size_t len = take(r, 12);
    if (len >= size) len = size - 1;
    for (size_t k = 0; k < len; k++) {
        buf[k] = r->n ? (char)(*r->p | 1) : (char)('a' + (i + k) % 26);
        if (r->n) { r->p++; r->n--; }
    }
    buf[len] = 0;
}

static const char *va_yaml =
    "emotions:\n"
    "  calm: {valence: 0.875, arousal: 0.100}\n"
    "  happy: {valence: 1.000, arousal: 0.735}\n"
    "  sad: {valence: 0.225, arousal: 0.333}\n"
    "  romantic: {valence: 0.936, arousal: 0.531}\n";

static void fuzz_config(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    mm_cfg *c = NULL;
    mm_err e = {0};
    if (mm_cfg_parse_string(text, "fuzz.yaml", &c, &e) == 0) {
        mm_va_table *va = NULL;
        if (mm_va_table_from_cfg(c, &va, &e) == 0) {
            const char *const labels[6] = {"happy", "sad", "Q3", "calm", "neutral", "angry"};
            mm_va pts[6];
            mm_va_label_points(va, labels, 6, pts, &e);
            mm_recommend_params p;
            mm_recommend_params_default(&p);
            mm_recommend_params_from_cfg(mm_cfg_child(c, "recommend"), va, &p, &e);
            mm_va_table_free(va);
        }
        mm_cfg_free(c);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) { mm_h5_init(); init = 1; }
    if (size && (data[0] & 1)) { fuzz_config(data + 1, size - 1); return 0; }
    rd r = {data + (size ? 1 : 0), size ? size - 1 : 0};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz_library_mem.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return 0;
    mm_err e = {0};
    /* shapes: each dataset's extent may disagree with the others */
    size_t n = take(&r, 9), k = take(&r, 6), dim = take(&r, 6);
    if (take(&r, 16)) mm_h5_stamp_format(f, take(&r, 8) ? MM_LIBRARY_FORMAT : "melodic-bundle", (int)take(&r, 3), &e);
    if (take(&r, 8)) mm_h5_attr_set_str(f, "model", "fuzz", &e);
    static const char *const cn[6] = {"Q1", "Q2", "Q3", "Q4", "happy", "bored"};
    const char *names[8];
    for (size_t c = 0; c < k; c++) names[c] = cn[take(&r, 6)];
    if (take(&r, 16)) mm_h5_write_strings(f, "classes/names", names, k, &e);
    size_t nf = (n + 1) * (k + dim + 8) + 2 * k + 8;
    float *buf = malloc(nf * sizeof *buf);
    for (size_t i = 0; i < nf; i++) buf[i] = r.n >= 4 && take(&r, 4) == 0 ? take_f32(&r) : (float)(i % 7) / 7.f;
    hsize_t d2[2] = {k + (take(&r, 16) == 0), 2};
    if (take(&r, 16)) mm_h5_write_f32(f, "classes/va", buf, 2, d2, &e);
    char (*s)[16] = calloc(n + 1, sizeof *s);
    const char **sp = calloc(n + 1, sizeof *sp);
    static const char *const fields[5] = {"tracks/path", "tracks/id", "tracks/artist", "tracks/title", "tracks/true_label"};
    for (int fi = 0; fi < 5; fi++) {
        size_t m = n + (take(&r, 32) == 0);
        for (size_t i = 0; i < m; i++) { take_str(&r, s[i], sizeof s[i], i + (size_t)fi); sp[i] = s[i]; }
        if (take(&r, 32)) mm_h5_write_strings(f, fields[fi], sp, m, &e);
    }
    int64_t *i64 = calloc(n + 1, sizeof *i64);
    double *f64 = calloc(n + 1, sizeof *f64);
    for (size_t i = 0; i <= n; i++) { i64[i] = (int64_t)take(&r, 0) - 10; f64[i] = (double)buf[i] * 100; }
    hsize_t d1[1] = {n + (take(&r, 32) == 0)};
    if (take(&r, 32)) mm_h5_write_i64(f, "tracks/size", i64, 1, d1, &e);
    if (take(&r, 32)) mm_h5_write_i64(f, "tracks/mtime", i64, 1, d1, &e);
    if (take(&r, 32)) mm_h5_write_f64(f, "tracks/duration", f64, 1, d1, &e);
    hsize_t dp[2] = {n, k + (take(&r, 32) == 0)};
    if (take(&r, 32)) mm_h5_write_f32(f, "tracks/proba", buf + 2 * k + 8, 2, dp, &e);
    hsize_t de[2] = {n, dim};
    if (take(&r, 32)) mm_h5_write_f32(f, "tracks/embedding", buf + 2 * k + 8, 2, de, &e);
    if (take(&r, 4) == 0) {
        size_t m = take(&r, 4);
        for (size_t i = 0; i < m; i++) { take_str(&r, s[i % (n + 1)], sizeof s[0], i); sp[i % (n + 1)] = s[i % (n + 1)]; }
        if (m <= n + 1) {
            mm_h5_write_strings(f, "failed/path", sp, m, &e);
            mm_h5_write_strings(f, "failed/reason", sp, m - (m && take(&r, 8) == 0), &e);
        }
    }
    mm_library *lib = NULL;
    int rc = mm_library_read(f, "fuzz", &lib, &e);
#ifdef FUZZ_VERBOSE   /* for checking seeds: gcc -DFUZZ_VERBOSE with a main() that feeds files */
    fprintf(stderr, "library: %s\n", rc ? e.msg : "loaded");
#endif
    if (rc == 0) {
        mm_cfg *c = NULL;
        mm_va_table *va = NULL;
        if (mm_cfg_parse_string(va_yaml, "va.yaml", &c, &e) == 0 && mm_va_table_from_cfg(c, &va, &e) == 0) {
            const char *const labels[3] = {"happy", "sad", "Q2"};
            mm_recommender *rec = NULL;
            if (mm_recommender_create(lib, va, labels, 3, &rec, &e) == 0) {
                for (int t = 0; t < 4; t++) {
                    float pr[3] = {buf[t] < 0 ? -buf[t] : buf[t], 0.25f, (float)t};
                    mm_recommend_params p;
                    mm_recommend_params_default(&p);
                    p.policy = t & 1 ? MM_POLICY_REGULATE : MM_POLICY_MATCH;
                    p.n = 1 + take(&r, 20);
                    p.lambda = t < 2 ? 1.0 : 0.5;
                    p.seed = (uint64_t)t;
                    mm_rec_result res;
                    if (mm_recommend(rec, pr, &p, NULL, &res, &e) == 0) mm_rec_result_free(&res);
                }
                for (size_t i = 0; i < mm_library_size(lib); i++) mm_library_find(lib, mm_library_track_at(lib, i)->id);
                mm_recommender_free(rec);
            }
        }
        mm_va_table_free(va);
        mm_cfg_free(c);
        mm_library_free(lib);
    }
    free(buf); free(s); free(sp); free(i64); free(f64);
    H5Fclose(f);
    return 0;
}
