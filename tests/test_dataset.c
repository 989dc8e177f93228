/* test_dataset.c — dataset readers (RAVDESS names, folder + metadata, CSV
 * manifests, label maps) and feature tables (HDF5 and CSV round trips). */
#include "testutil.h"
#include "data/dataset.h"
#include "data/table.h"
#include "io/cfg.h"

static mm_cfg *parse(const char *text)
{
    mm_cfg *c = NULL;
    mm_err e = {0};
    assert_int_equal(mm_cfg_parse_string(text, "test.yaml", &c, &e), 0);
    return c;
}

static void test_ravdess_name(void **st)
{
    int m, c, e, i, s, r, a;
    assert_int_equal(mm_ravdess_parse("03-01-05-02-01-02-17", &m, &c, &e, &i, &s, &r, &a), 0);
    assert_int_equal(e, 5); assert_int_equal(i, 2); assert_int_equal(a, 17);
    assert_string_equal(mm_ravdess_emotions[e], "angry");
    assert_int_not_equal(mm_ravdess_parse("03-01-09-02-01-02-17", &m, &c, &e, &i, &s, &r, &a), 0);
    assert_int_not_equal(mm_ravdess_parse("03-01-05-02-01-02", &m, &c, &e, &i, &s, &r, &a), 0);
    assert_int_not_equal(mm_ravdess_parse("03-01-05-02-01-02-17x", &m, &c, &e, &i, &s, &r, &a), 0);
}

static void test_ravdess_real(void **st)
{
    const char *root = tu_data_root();
    if (!root) skip();
    mm_cfg *c = parse("dataset:\n  type: ravdess\n  root: ravdess\n  labels: {neutral: neutral, calm: neutral, happy: happy, sad: sad, angry: angry, fearful: fearful, disgust: disgust, surprised: surprised}\n");
    mm_dataset *d = NULL;
    mm_err e = {0};
    assert_int_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), root, &d, &e), 0);
    assert_int_equal(d->n, 1440);
    assert_int_equal(d->n_classes, 7);
    int64_t counts[7];
    mm_dataset_class_counts(d, counts);
    assert_string_equal(d->class_names[0], "neutral");
    assert_int_equal(counts[0], 96 + 192);      /* calm merged into neutral */
    for (int k = 1; k < 7; k++) assert_int_equal(counts[k], 192);
    assert_int_equal(d->n_group_ids, 24);
    assert_int_equal(d->group_ids[0], 1);
    assert_int_equal(d->group_ids[23], 24);
    assert_string_equal(d->group_by, "actor");
    /* every clip's group is its actor number from the file name */
    for (size_t i = 0; i < d->n; i++) {
        const char *stem = strrchr(d->paths[i], '/') + 1;
        assert_int_equal(d->groups[i], atoi(stem + 18));
    }
    mm_dataset_free(d);
    mm_cfg_free(c);
    /* a label map that names a label no clip has is an error naming it */
    c = parse("dataset:\n  type: ravdess\n  root: ravdess\n  labels: {joy: happy}\n");
    assert_int_not_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), root, &d, &e), 0);
    assert_non_null(strstr(e.msg, "'joy'"));
    mm_cfg_free(c);
}

static void test_music4q_real(void **st)
{
    const char *root = tu_data_root();
    if (!root) skip();
    mm_cfg *c = parse("dataset:\n  type: folder\n  root: music-4q\n  metadata: metadata.csv\n  key_column: song\n  group_by: artist\n");
    mm_dataset *d = NULL;
    mm_err e = {0};
    assert_int_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), root, &d, &e), 0);
    assert_int_equal(d->n, 900);
    assert_int_equal(d->n_classes, 4);
    assert_string_equal(d->class_names[0], "Q1");
    assert_int_equal(d->n_group_ids, 662);
    assert_non_null(d->artists);
    int found = 0;
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->paths[i], "MT0000004637")) {
            assert_string_equal(d->artists[i], "Charlie Poole");
            assert_string_equal(d->class_names[d->labels[i]], "Q3");
            found = 1;
        }
    assert_true(found);
    mm_dataset_free(d);
    mm_cfg_free(c);
}

static void test_manifest_and_errors(void **st)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/mm_ds_%d", (int)getpid());
    tu_system("mkdir -p %s && printf 'path,label,group\\na.wav,sad,1\\nb.wav,happy,2\\nc.wav,sad,2\\n' > %s/m.csv", dir, dir);
    char text[512];
    snprintf(text, sizeof text, "dataset:\n  type: csv\n  manifest: %s/m.csv\n", dir);
    mm_cfg *c = parse(text);
    mm_dataset *d = NULL;
    mm_err e = {0};
    assert_int_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), NULL, &d, &e), 0);
    assert_int_equal(d->n, 3);
    assert_int_equal(d->n_classes, 2);
    assert_string_equal(d->class_names[0], "happy");     /* sorted */
    assert_int_equal(d->labels[0], 1);
    assert_non_null(strstr(d->paths[0], "/a.wav"));
    mm_dataset_free(d);
    mm_cfg_free(c);
    /* unknown key, bad type, missing folder: errors naming the key or path */
    c = parse("dataset:\n  type: ravdess\n  root: nowhere\n  colour: red\n");
    assert_int_not_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), "/tmp", &d, &e), 0);
    assert_non_null(strstr(e.msg, "unknown key 'colour'"));
    mm_cfg_free(c);
    c = parse("dataset:\n  type: webdataset\n");
    assert_int_not_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), "/tmp", &d, &e), 0);
    assert_non_null(strstr(e.msg, "expected one of ravdess, folder, csv"));
    mm_cfg_free(c);
    c = parse("dataset:\n  type: ravdess\n  root: nowhere\n");
    assert_int_not_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), "/tmp", &d, &e), 0);
    assert_non_null(strstr(e.msg, "/tmp/nowhere"));
    mm_cfg_free(c);
    tu_system("printf 'path,label\\na.wav\\n' > %s/bad.csv", dir);
    snprintf(text, sizeof text, "dataset:\n  type: csv\n  manifest: %s/bad.csv\n", dir);
    c = parse(text);
    assert_int_not_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), NULL, &d, &e), 0);
    assert_non_null(strstr(e.msg, "bad.csv:2"));
    mm_cfg_free(c);
    tu_system("rm -rf %s", dir);
}

/* A manifest of 60,000 rows with 60,000 distinct labels and string groups
 * (every lookup is hashed, so this is linear: it took minutes with the
 * linear scans): classes sorted, each row's class and group right. */
static void test_manifest_many_labels(void **st)
{
    char dir[128], path[256];
    snprintf(dir, sizeof dir, "/tmp/mm_ds_big_%d", (int)getpid());
    tu_system("mkdir -p %s", dir);
    snprintf(path, sizeof path, "%s/m.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "path,label,group\n");
    const int n = 60000;
    for (int i = 0; i < n; i++) fprintf(f, "c%d.wav,L%05d,g%d\n", i, (i * 7919) % n, i % 97);
    fclose(f);
    char text[512];
    snprintf(text, sizeof text, "dataset:\n  type: csv\n  manifest: %s\n", path);
    mm_cfg *c = parse(text);
    mm_dataset *d = NULL;
    mm_err e = {0};
    assert_int_equal(mm_dataset_load(mm_cfg_child(c, "dataset"), NULL, &d, &e), 0);
    assert_int_equal(d->n, (size_t)n);
    assert_int_equal(d->n_classes, n);
    for (int k = 1; k < n; k++) assert_true(strcmp(d->class_names[k - 1], d->class_names[k]) < 0);
    assert_int_equal(d->n_group_ids, 97);
    for (int i = 0; i < n; i += 997) {
        char want[16];
        snprintf(want, sizeof want, "L%05d", (i * 7919) % n);
        assert_string_equal(d->class_names[d->labels[i]], want);
        snprintf(want, sizeof want, "g%d", i % 97);
        assert_string_equal(d->group_names[d->groups[i]], want);   /* string groups: ids are indices */
    }
    mm_dataset_free(d);
    mm_cfg_free(c);
    tu_system("rm -rf %s", dir);
}

static void test_table_roundtrip(void **st)
{
    mm_table t = {0};
    float X[6] = {1, 2, 3, 4, 5, 6};
    char *fn[3] = {"a", "b", "c"}, *ln[2] = {"x", "y"}, *paths[2] = {"p1", "p2"}, *gn[2] = {"1", "2"};
    int32_t labels[2] = {0, 1}, groups[2] = {1, 2}, gids[2] = {1, 2};
    float dur[2] = {1.5f, 2.5f};
    t.n = 2; t.d = 3; t.X = X; t.feature_names = fn; t.labels = labels; t.n_classes = 2;
    t.label_names = ln; t.groups = groups; t.paths = paths; t.durations = dur;
    t.n_group_ids = 2; t.group_ids = gids; t.group_names = gn;
    t.config_yaml = "a: 1\n"; t.feature_set = "test"; t.sample_rate = 16000;
    char path[128];
    snprintf(path, sizeof path, "/tmp/mm_table_%d.h5", (int)getpid());
    mm_err e = {0};
    assert_int_equal(mm_table_write(&t, path, &e), 0);
    mm_table *r = NULL;
    assert_int_equal(mm_table_read(path, &r, &e), 0);
    assert_int_equal(r->n, 2); assert_int_equal(r->d, 3);
    assert_memory_equal(r->X, X, sizeof X);
    assert_string_equal(r->feature_names[2], "c");
    assert_string_equal(r->label_names[1], "y");
    assert_int_equal(r->groups[1], 2);
    assert_string_equal(r->group_names[0], "1");
    assert_int_equal(r->sample_rate, 16000);
    assert_string_equal(r->config_yaml, "a: 1\n");
    assert_true(mm_table_fingerprint(r) == mm_table_fingerprint(&t));
    mm_table_free(r);
    unlink(path);
    /* CSV tables */
    snprintf(path, sizeof path, "/tmp/mm_table_%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("label,group,f1,f2\nsad,3,0.5,1e-3\nhappy,4,-2,7\n", f);
    fclose(f);
    assert_int_equal(mm_table_read(path, &r, &e), 0);
    assert_int_equal(r->n, 2); assert_int_equal(r->d, 2);
    assert_string_equal(r->label_names[0], "happy");
    assert_int_equal(r->labels[0], 1);
    assert_int_equal(r->groups[1], 4);
    assert_true(fabsf(r->X[1] - 1e-3f) < 1e-9f);
    mm_table_free(r);
    f = fopen(path, "w");
    fputs("label,f1\nsad,abc\n", f);
    fclose(f);
    assert_int_not_equal(mm_table_read(path, &r, &e), 0);
    assert_non_null(strstr(e.msg, ":2: column 'f1'"));
    unlink(path);
    /* a wrong-kind HDF5 file */
    assert_int_not_equal(mm_table_read("tests/fixtures/does_not_exist.h5", &r, &e), 0);
    assert_non_null(strstr(e.msg, "does_not_exist.h5"));
}

/* A CSV table with 60,000 distinct labels in scrambled order (was a linear search per
 * row and an insertion sort: 27 s): classes are the sorted distinct labels, every row
 * maps back to its own label. Group ids beyond 32 bits are refused (they wrapped). */
static void test_table_csv_many_labels_and_groups(void **st)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/mm_table_many_%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    const size_t n = 60000;
    fputs("label,group,f1\n", f);
    for (size_t i = 0; i < n; i++) {
        size_t k = (i * 7919) % n;                    /* a permutation of 0..n-1 */
        fprintf(f, "c%zu,%zu,%zu\n", k, i % 13, i);
    }
    fprintf(f, "c17,2147483647,1\nc17,-2147483648,2\n");   /* the 32-bit extremes pass */
    fclose(f);
    mm_table *r = NULL;
    mm_err e = {0};
    assert_int_equal(mm_table_read(path, &r, &e), 0);
    assert_int_equal(r->n, n + 2);
    assert_int_equal(r->n_classes, (int)n);
    for (int k = 1; k < r->n_classes; k++)
        assert_true(strcmp(r->label_names[k - 1], r->label_names[k]) < 0);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "c%zu", (i * 7919) % n);
        assert_string_equal(r->label_names[r->labels[i]], want);
        assert_int_equal(r->groups[i], (int32_t)(i % 13));
    }
    assert_string_equal(r->label_names[r->labels[n]], "c17");
    assert_int_equal(r->groups[n], INT32_MAX);
    assert_int_equal(r->groups[n + 1], INT32_MIN);
    mm_table_free(r);
    static const char *const bad[] = {"4294967297", "2147483648", "-2147483649",
                                      "99999999999999999999999"};
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        f = fopen(path, "w");
        fprintf(f, "label,group,f1\nsad,1,0\nhappy,%s,1\n", bad[b]);
        fclose(f);
        r = NULL;
        assert_int_not_equal(mm_table_read(path, &r, &e), 0);
        assert_null(r);
        char want[128];
        snprintf(want, sizeof want, ":3: group '%s' is outside [-2147483648, 2147483647]", bad[b]);
        if (!strstr(e.msg, want) || !strstr(e.msg, path)) fail_msg("got '%s'", e.msg);
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ravdess_name),
        cmocka_unit_test(test_ravdess_real),
        cmocka_unit_test(test_music4q_real),
        cmocka_unit_test(test_manifest_and_errors),
        cmocka_unit_test(test_manifest_many_labels),
        cmocka_unit_test(test_table_roundtrip),
        cmocka_unit_test(test_table_csv_many_labels_and_groups),
    };
    return cmocka_run_group_tests_name("dataset", tests, NULL, NULL);
}
