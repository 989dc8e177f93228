/* test_ptload.c — PyTorch checkpoint reader: values, dtypes, strides, nesting,
 * and every error path (legacy format, truncation, corrupt bytes, short
 * storages, wrong shapes). Fixtures: tests/fixtures/pt/ (*.pt) written by
 * tests/ref/gen_ptload.py with arange-based values recomputed here. */
#include "testutil.h"
#include "io/ptload.h"

#define FIX "tests/fixtures/pt/"

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)l);
    assert_int_equal(fread(b, 1, (size_t)l, f), (size_t)l);
    fclose(f);
    *n = (size_t)l;
    return b;
}

static void test_small_values(void **st)
{
    (void)st;
    mm_pt *pt;
    mm_err e = {0};
    assert_int_equal(mm_pt_open(FIX "small.pt", &pt, &e), 0);
    size_t n;
    assert_int_equal(mm_pt_state_dict(pt, NULL, &n, &e), 0);
    assert_int_equal(n, 9);
    assert_string_equal(mm_pt_at(pt, 0)->name, "conv.weight");
    const float *w;
    int64_t ws[4] = {2, 1, 3, 3};
    assert_int_equal(mm_pt_get(pt, "conv.weight", 4, ws, &w, &e), 0);
    for (int i = 0; i < 18; i++) assert_true(w[i] == 0.5f * (float)i);
    const mm_pt_tensor *t = mm_pt_find(pt, "conv.bias");
    assert_true(t->data[0] == -1.0f && t->data[1] == 2.5f);
    t = mm_pt_find(pt, "half");
    assert_int_equal(t->dtype, MM_PT_F16);
    for (int i = 0; i < 6; i++) assert_true(t->data[i] == (float)i / 4 - 0.5f);
    t = mm_pt_find(pt, "double");
    assert_int_equal(t->dtype, MM_PT_F64);
    for (int i = 0; i < 4; i++) assert_true(t->data[i] == 1.25f * (float)i);
    t = mm_pt_find(pt, "bn.num_batches_tracked");
    assert_int_equal(t->dtype, MM_PT_I64);
    assert_int_equal(t->ndim, 0);
    assert_true(t->data[0] == 12345.0f);
    /* non-contiguous: base.t(), base = arange(12).reshape(3, 4) */
    t = mm_pt_find(pt, "transposed");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->stride[0], 1);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) assert_true(t->data[i * 3 + j] == (float)(j * 4 + i));
    /* view with storage offset: base[1:, 1:3] */
    t = mm_pt_find(pt, "offset_view");
    assert_int_equal(t->offset, 5);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            assert_true(t->data[i * 2 + j] == (float)((1 + i) * 4 + 1 + j));
    t = mm_pt_find(pt, "param");
    assert_true(t->data[0] == 3.0f && t->data[1] == -4.0f);
    t = mm_pt_find(pt, "scalar");
    assert_int_equal(t->numel, 1);
    assert_true(t->data[0] == 0.25f);
    assert_null(mm_pt_find(pt, "nope"));
    assert_null(mm_pt_at(pt, 9));
    /* architecture checks: wrong shape and missing tensors name the tensor */
    int64_t bad[4] = {2, 1, 5, 5};
    assert_int_not_equal(mm_pt_get(pt, "conv.weight", 4, bad, &w, &e), 0);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "tensor 'conv.weight': expected shape [2, 1, 5, 5], got [2, 1, 3, 3]"));
    assert_int_not_equal(mm_pt_get(pt, "fc.weight", 2, bad, &w, &e), 0);
    assert_non_null(strstr(e.msg, "tensor 'fc.weight' missing"));
    mm_pt_free(pt);
    mm_pt_free(NULL);
}

static void test_nested(void **st)
{
    (void)st;
    mm_pt *pt;
    mm_err e = {0};
    assert_int_equal(mm_pt_open(FIX "nested.pt", &pt, &e), 0);
    size_t n;
    assert_int_equal(mm_pt_state_dict(pt, NULL, &n, &e), 0);
    assert_int_equal(n, 0);                       /* the top dict holds no tensors */
    assert_int_equal(mm_pt_state_dict(pt, "model", &n, &e), 0);
    assert_int_equal(n, 9);
    assert_true(mm_pt_find(pt, "conv.weight")->data[17] == 8.5f);
    assert_int_not_equal(mm_pt_state_dict(pt, "iteration", &n, &e), 0);
    assert_non_null(strstr(e.msg, "is a int, expected a state dict"));
    assert_int_not_equal(mm_pt_state_dict(pt, "weights", &n, &e), 0);
    assert_non_null(strstr(e.msg, "no entry 'weights'"));
    assert_int_equal(mm_pt_count(pt), 0);
    mm_pt_free(pt);
}

static void test_bad_files(void **st)
{
    (void)st;
    mm_pt *pt = NULL;
    mm_err e = {0};
    assert_int_equal(mm_pt_open(FIX "legacy.pt", &pt, &e), MM_EFORMAT);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "legacy"));
    assert_non_null(strstr(e.msg, "torch.save(torch.load(f), f2)"));
    assert_int_equal(mm_pt_open(FIX "missing.pt", &pt, &e), MM_EIO);
    assert_non_null(strstr(e.msg, "missing.pt"));
    assert_int_equal(mm_pt_open_memory("hello world", 11, "x.pt", &pt, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "x.pt: not a PyTorch checkpoint"));
    assert_int_equal(mm_pt_open_memory("", 0, "empty.pt", &pt, &e), MM_EFORMAT);
    assert_null(pt);
}

/* Every truncation and many single-byte corruptions must end in either a
 * clean error or a valid parse — never a crash (ASan checks the reads). */
static void test_truncated_and_corrupt(void **st)
{
    (void)st;
    size_t n;
    unsigned char *b = slurp(FIX "small.pt", &n);
    mm_err e = {0};
    mm_pt *pt;
    size_t fails = 0;
    for (size_t l = 0; l < n; l += 7) {
        int rc = mm_pt_open_memory(b, l, "trunc.pt", &pt, &e);
        if (rc == 0) {
            rc = mm_pt_state_dict(pt, NULL, NULL, &e);
            mm_pt_free(pt);
        }
        assert_int_not_equal(rc, 0);
        fails++;
    }
    size_t ok = 0;
    unsigned char *c = malloc(n);
    for (size_t i = 0; i < n; i += 3) {
        memcpy(c, b, n);
        c[i] ^= (unsigned char)(0x5a + i);
        if (mm_pt_open_memory(c, n, "corrupt.pt", &pt, &e) == 0) {
            if (mm_pt_state_dict(pt, NULL, NULL, &e) == 0) ok++;
            mm_pt_free(pt);
        }
    }
    printf("# %zu truncations refused; %zu of %zu corruptions still parsed\n", fails, ok, n / 3 + 1);
    free(c);
    free(b);
}

/* A storage entry shorter than its tensor needs: the error names the tensor. */
static void test_short_storage(void **st)
{
    (void)st;
    size_t n;
    unsigned char *b = slurp(FIX "small.pt", &n);
    const char *key = "small/data/0";
    size_t kl = strlen(key);
    int patched = 0;
    for (size_t p = 0; p + 46 + kl <= n; p++) {
        if (b[p] == 0x50 && b[p + 1] == 0x4b && b[p + 2] == 1 && b[p + 3] == 2 &&
            b[p + 28] == kl && !memcmp(b + p + 46, key, kl)) {
            b[p + 20] = b[p + 24] = 8;            /* 8 bytes instead of 72 */
            b[p + 21] = b[p + 25] = 0;
            patched = 1;
        }
    }
    assert_true(patched);
    mm_pt *pt;
    mm_err e = {0};
    assert_int_equal(mm_pt_open_memory(b, n, "short.pt", &pt, &e), 0);
    assert_int_equal(mm_pt_state_dict(pt, NULL, NULL, &e), MM_EFORMAT);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "tensor 'conv.weight'"));
    assert_non_null(strstr(e.msg, "truncated or corrupt"));
    mm_pt_free(pt);
    free(b);
}

/* zip64 records (entries, offsets, directory) read the same tensors;
 * compressed entries are refused with a message naming the entry. */
static void test_zip64_and_deflated(void **st)
{
    (void)st;
    mm_pt *pt;
    mm_err e = {0};
    size_t n;
    assert_int_equal(mm_pt_open(FIX "zip64.pt", &pt, &e), 0);
    assert_int_equal(mm_pt_state_dict(pt, NULL, &n, &e), 0);
    assert_int_equal(n, 9);
    const mm_pt_tensor *t = mm_pt_find(pt, "offset_view");
    assert_true(t->data[3] == 10.0f);
    mm_pt_free(pt);
    /* saturate the classic end record so that only the zip64 one is usable */
    size_t len;
    unsigned char *b = slurp(FIX "zip64.pt", &len);
    size_t p = len - 22;
    while (p > 0 && memcmp(b + p, "PK\5\6", 4)) p--;
    assert_true(p > 0);
    memset(b + p + 8, 0xff, 12);
    assert_int_equal(mm_pt_open_memory(b, len, "z64.pt", &pt, &e), 0);
    assert_int_equal(mm_pt_state_dict(pt, NULL, &n, &e), 0);
    assert_int_equal(n, 9);
    mm_pt_free(pt);
    b[p - 20] ^= 1;    /* break the zip64 locator: a clean error */
    assert_int_equal(mm_pt_open_memory(b, len, "z64.pt", &pt, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "zip64"));
    free(b);
    assert_int_equal(mm_pt_open(FIX "deflated.pt", &pt, &e), MM_EFORMAT);
    printf("# %s\n", e.msg);
    assert_non_null(strstr(e.msg, "compressed"));
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }

/* A stored (uncompressed) zip holding one entry "archive/data.pkl" = pkl. */
static unsigned char *zip_pickle(const unsigned char *pkl, size_t n, size_t *len)
{
    static const char name[] = "archive/data.pkl";
    size_t nl = sizeof name - 1, cd = 30 + nl + n;
    unsigned char *z = calloc(cd + 46 + nl + 22, 1);
    assert_non_null(z);
    put32(z, 0x04034b50);                       /* local header */
    put32(z + 18, (uint32_t)n);
    put32(z + 22, (uint32_t)n);
    put16(z + 26, (unsigned)nl);
    memcpy(z + 30, name, nl);
    memcpy(z + 30 + nl, pkl, n);
    unsigned char *c = z + cd;                  /* central directory entry */
    put32(c, 0x02014b50);
    put32(c + 20, (uint32_t)n);
    put32(c + 24, (uint32_t)n);
    put16(c + 28, (unsigned)nl);
    memcpy(c + 46, name, nl);
    unsigned char *e = c + 46 + nl;             /* end of central directory */
    put32(e, 0x06054b50);
    put16(e + 8, 1);
    put16(e + 10, 1);
    put32(e + 12, (uint32_t)(46 + nl));
    put32(e + 16, (uint32_t)cd);
    *len = cd + 46 + nl + 22;
    return z;
}

/* A 1 MB pickle of MEMOIZE opcodes (each one scanned the whole memo: 23 s): a running
 * count gives the same indices. {} memoized 10^6 times (0 .. 10^6-1), then "k" at 10^6,
 * fetched back by LONG_BINGET: the dict ends up {"k": "k"}. */
static void test_memoize_many(void **st)
{
    (void)st;
    const size_t N = 1000000;
    unsigned char *p = malloc(N + 64), *q = p;
    *q++ = 0x80; *q++ = 2; *q++ = '}';
    memset(q, 0x94, N);
    q += N;
    *q++ = 'X'; put32(q, 1); q += 4; *q++ = 'k'; *q++ = 0x94;
    *q++ = 'j'; put32(q, (uint32_t)N); q += 4;
    *q++ = 's'; *q++ = '.';
    size_t len;
    unsigned char *z = zip_pickle(p, (size_t)(q - p), &len);
    mm_pt *pt;
    mm_err e = {0};
    assert_int_equal(mm_pt_open_memory(z, len, "memo.pt", &pt, &e), 0);
    size_t n;
    assert_int_not_equal(mm_pt_state_dict(pt, "k", &n, &e), 0);
    assert_non_null(strstr(e.msg, "is a str"));
    mm_pt_free(pt);
    free(z);
    /* LONG_BINGET one past the last index stored: refused */
    put32(q - 6, (uint32_t)(N + 1));
    z = zip_pickle(p, (size_t)(q - p), &len);
    assert_int_equal(mm_pt_open_memory(z, len, "memo.pt", &pt, &e), MM_EFORMAT);
    assert_non_null(strstr(e.msg, "memo index 1000001 was never stored"));
    free(z);
    free(p);
}

static void test_mn04_checkpoint(void **st)
{
    (void)st;
    const char *mr = tu_model_root();
    if (!mr) skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/efficientat/mn04_as_mAP_432.pt", mr);
    if (access(path, R_OK)) skip();
    mm_pt *pt;
    mm_err e = {0};
    assert_int_equal(mm_pt_open(path, &pt, &e), 0);
    size_t n;
    assert_int_equal(mm_pt_state_dict(pt, NULL, &n, &e), 0);
    assert_int_equal(n, 312);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += mm_pt_at(pt, i)->numel;
    printf("# %zu tensors, %zu values\n", n, total);
    assert_int_equal(total, 993485);
    const float *w;
    int64_t s[2] = {527, 512};
    assert_int_equal(mm_pt_get(pt, "classifier.5.weight", 2, s, &w, &e), 0);
    mm_pt_free(pt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_values),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_short_storage),
        cmocka_unit_test(test_zip64_and_deflated),
        cmocka_unit_test(test_memoize_many),
        cmocka_unit_test(test_mn04_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
