/* fuzz_nn_load.c — libFuzzer target for mm_net_load, the reader of the
 * network part of model files (mlp / cnn1d learners). The input bytes are
 * turned into a well-formed in-memory HDF5 group with fuzzed contents (input
 * shape attributes, the layer table, dropout rates, parameter and buffer
 * vectors of fuzzed lengths and values), so the fuzzing exercises our
 * validation rather than libhdf5's parser. A network that loads is run on
 * one zero row. */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/h5.h"
#include "nn/net.h"

typedef struct { const uint8_t *p; size_t n; } rd;

static uint32_t take(rd *r, int bytes)
{
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = v << 8 | (r->n ? *r->p : 0);
        if (r->n) { r->p++; r->n--; }
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) { mm_h5_init(); init = 1; }
    rd r = {data, size};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz_nn_load.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return 0;
    mm_err e = {0};
    int64_t in_len = (int64_t)take(&r, 1) - 8, in_ch = (int64_t)take(&r, 1) - 8;   /* may be <= 0 */
    size_t nl = take(&r, 1) % 12;
    int32_t spec[12 * 6];
    float rates[12];
    for (size_t i = 0; i < nl; i++) {
        spec[6 * i] = (int32_t)(take(&r, 1) % 9);        /* kind, incl. invalid 0 and 8 */
        for (int j = 1; j < 6; j++) spec[6 * i + j] = (int32_t)(int8_t)take(&r, 1);
        rates[i] = (float)take(&r, 1) / 200.0f;
    }
    size_t np = take(&r, 2) % 4096, nb = take(&r, 1);
    float *params = calloc(np + 1, sizeof *params), *bufs = calloc(nb + 1, sizeof *bufs);
    for (size_t i = 0; i < np && r.n; i++) params[i] = (float)(int8_t)take(&r, 1) / 16.0f;
    for (size_t i = 0; i < nb && r.n; i++) bufs[i] = (float)take(&r, 1) / 16.0f;
    unsigned flags = take(&r, 1);
    hsize_t d2[2] = {nl, 6}, d1 = nl, dp = np, db = nb;
    if (!(flags & 1)) mm_h5_attr_set_i64(f, "in_len", in_len, &e);
    if (!(flags & 2)) mm_h5_attr_set_i64(f, "in_ch", in_ch, &e);
    if (!(flags & 4) && nl) mm_h5_write_i32(f, "layers", spec, 2, d2, &e);
    if (!(flags & 8) && nl) mm_h5_write_f32(f, "rates", rates, 1, &d1, &e);
    if (!(flags & 16) && np) mm_h5_write_f32(f, "params", params, 1, &dp, &e);
    if (!(flags & 32) && nb) mm_h5_write_f32(f, "buffers", bufs, 1, &db, &e);
    mm_net *net = NULL;
    if (mm_net_load(f, &net, &e) == 0) {
        size_t din = mm_net_in_dim(net), dout = mm_net_out_dim(net);
        float *x = calloc(din, sizeof *x), *z = malloc(dout * sizeof *z);
        if (x && z) mm_net_infer(net, x, 1, z, &e);
        free(x);
        free(z);
        mm_net_free(net);
    }
    free(params);
    free(bufs);
    H5Fclose(f);
    return 0;
}
