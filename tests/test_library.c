/* test_library.c — indexing a music library: a synthetic 4Q-style folder of
 * generated WAVs (Q1..Q4/, metadata.csv for some files, one broken file)
 * indexed with a small bundle exported in setup: annotated labels from the
 * folder names, artist/title from metadata else the file name, unreadable
 * files listed; re-indexing skips unchanged files, reclassifies changed ones,
 * drops removed ones; the result does not depend on the thread count;
 * manifests; errors; the `melodic index` and `melodic recommend` commands
 * (voice, JSON, regulate, feedback, batch); track paths from any working
 * directory (absolute, old relative libraries resolved); `melodic export`
 * finding results/<name> or --results DIR; real 4Q files when present. */
#include "testutil.h"
#include <sndfile.h>
#include "io/h5.h"
#include "runtime/library.h"

static char dir[256], lib_dir[300], bundle[300];
static const int freqs[4] = {220, 660, 1500, 3300};

static void write_tone(const char *path, int freq, int variant)
{
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    static float x[16000];
    for (int i = 0; i < 16000; i++)
        x[i] = 0.3f * sinf(6.2831853f * (float)(freq * (1.0 + 0.02 * variant)) * (float)i / 16000.f) +
               0.01f * (float)((i * 7919 + variant * 104729) % 2001 - 1000) / 1000.f;
    assert_int_equal(sf_writef_float(f, x, 16000), 16000);
    sf_close(f);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_library_%d", (int)getpid());
    snprintf(lib_dir, sizeof lib_dir, "%s/music", dir);
    snprintf(bundle, sizeof bundle, "%s/music.h5", dir);
    tu_system("rm -rf %s && mkdir -p %s/music/Q1 %s/music/Q2 %s/music/Q3 %s/music/Q4", dir, dir, dir, dir, dir);
    char p[512];
    snprintf(p, sizeof p, "%s/train.csv", dir);
    FILE *m = fopen(p, "w");
    fputs("path,label\n", m);
    for (int q = 0; q < 4; q++)
        for (int v = 0; v < 3; v++) {
            char w[512];
            snprintf(w, sizeof w, "%s/Q%d/x%d.wav", lib_dir, q + 1, v);
            write_tone(w, freqs[q], v);
            fprintf(m, "%s,Q%d\n", w, q + 1);
        }
    fclose(m);
    snprintf(p, sizeof p, "%s/metadata.csv", lib_dir);
    m = fopen(p, "w");
    fputs("song,artist,title,quadrant\nx0,Alpha,\"First, with comma\",Q1\nx1,Beta,Second,Q1\nnothere,Gamma,Ghost,Q2\n", m);
    fclose(m);
    snprintf(p, sizeof p, "%s/exp.yaml", dir);
    FILE *y = fopen(p, "w");
    fprintf(y, "name: lib\nseed: 1\ncache: %s/cache\ndataset: {type: csv, manifest: %s/train.csv}\n"
               "features: [{set: logmel_stats, params: {frontend: cnn14_16k}}]\n"
               "protocol: {kind: stratified_kfold, n_folds: 2}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: 20}}\n", dir, dir);
    fclose(y);
    if (tu_system("%s export %s/exp.yaml --model forest -o %s 2>/dev/null", tu_bin(), dir, bundle)) return -1;
    /* after the export: a broken file and a non-audio file */
    snprintf(p, sizeof p, "%s/Q3/broken.wav", lib_dir);
    m = fopen(p, "w");
    fputs("RIFF garbage, not a wave file at all", m);
    fclose(m);
    snprintf(p, sizeof p, "%s/Q3/notes.txt", lib_dir);
    m = fopen(p, "w");
    fputs("ignored\n", m);
    fclose(m);
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

static mm_bundle *open_bundle(void)
{
    mm_bundle *b = NULL;
    mm_err err = {0};
    int rc = mm_bundle_open(bundle, NULL, 1, &b, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return b;
}

static long find_path(const mm_library *l, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", lib_dir, rel);
    return mm_library_find(l, p);
}

static void test_index_layout(void **st)
{
    mm_bundle *b = open_bundle();
    char out[400];
    snprintf(out, sizeof out, "%s/lib.h5", dir);
    mm_library_index_params p;
    mm_library_index_params_default(&p);
    p.n_threads = 2;
    mm_library_index_stats s;
    mm_err err = {0};
    int rc = mm_library_index(b, bundle, NULL, lib_dir, out, &p, &s, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(s.n_files, 13);
    assert_int_equal(s.n_indexed, 12);
    assert_int_equal(s.n_new, 12);
    assert_int_equal(s.n_failed, 1);
    mm_library *l = NULL;
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    assert_int_equal(mm_library_size(l), 12);
    assert_int_equal(mm_library_n_classes(l), 4);
    assert_string_equal(mm_library_class_name(l, 1), "Q2");
    assert_int_equal(mm_library_n_failed(l), 1);
    const char *fp, *why;
    assert_int_equal(mm_library_failed(l, 0, &fp, &why), 0);
    assert_non_null(strstr(fp, "broken.wav"));
    assert_true(strlen(why) > 5);
    printf("broken file reason: %s\n", why);
    assert_string_equal(mm_library_model_name(l), "forest");
    assert_int_equal(strlen(mm_library_bundle_sha256(l)), 64);
    int correct = 0;
    for (size_t i = 0; i < mm_library_size(l); i++) {
        const mm_library_track *t = mm_library_track_at(l, i);
        float sum = 0;
        for (int k = 0; k < 4; k++) sum += t->proba[k];
        assert_true(fabsf(sum - 1) < 1e-4f);
        assert_int_equal(strlen(t->id), 64);
        assert_true(fabs(t->duration - 1.0) < 1e-6);
        assert_true(t->quadrant >= 1 && t->quadrant <= 4);
        assert_true(fabsf(t->va.valence) <= 0.5f && fabsf(t->va.arousal) <= 0.5f);
        assert_true(t->true_label[0] == 'Q' && strstr(t->path, t->true_label));   /* the folder name */
        correct += t->quadrant == t->true_label[1] - '0';
    }
    assert_true(correct >= 10);   /* the bundle was trained on these very files */
    const mm_library_track *t = mm_library_track_at(l, (size_t)find_path(l, "Q1/x0.wav"));
    assert_string_equal(t->artist, "Alpha");
    assert_string_equal(t->title, "First, with comma");
    t = mm_library_track_at(l, (size_t)find_path(l, "Q2/x0.wav"));   /* same stem, joined too */
    assert_string_equal(t->artist, "Alpha");
    t = mm_library_track_at(l, (size_t)find_path(l, "Q4/x2.wav"));   /* no metadata, no tags */
    assert_string_equal(t->artist, "");
    assert_string_equal(t->title, "x2");
    assert_true(find_path(l, "Q3/notes.txt") < 0);
    mm_library_free(l);
    mm_bundle_free(b);
}

static void test_reindex(void **st)
{
    mm_bundle *b = open_bundle();
    char out[400], p[512];
    snprintf(out, sizeof out, "%s/re.h5", dir);
    mm_library_index_params prm;
    mm_library_index_params_default(&prm);
    mm_library_index_stats s;
    mm_err err = {0};
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, out, &prm, &s, &err), 0);
    mm_library *l0 = NULL;
    assert_int_equal(mm_library_open(out, &l0, &err), 0);
    /* nothing changed: everything reused */
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, out, &prm, &s, &err), 0);
    assert_int_equal(s.n_unchanged, 12);
    assert_int_equal(s.n_new, 0);
    assert_int_equal(s.n_removed, 0);
    assert_int_equal(s.n_failed, 1);
    /* remove one, change one, add one */
    snprintf(p, sizeof p, "%s/Q2/x1.wav", lib_dir);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/Q4/x0.wav", lib_dir);
    write_tone(p, freqs[0], 5);
    snprintf(p, sizeof p, "%s/Q1/new.wav", lib_dir);
    write_tone(p, freqs[0], 7);
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, out, &prm, &s, &err), 0);
    assert_int_equal(s.n_files, 13);
    assert_int_equal(s.n_unchanged, 10);
    assert_int_equal(s.n_new, 2);
    assert_int_equal(s.n_removed, 1);
    assert_int_equal(s.n_indexed, 12);
    mm_library *l1 = NULL;
    assert_int_equal(mm_library_open(out, &l1, &err), 0);
    assert_true(find_path(l1, "Q2/x1.wav") < 0);
    assert_true(find_path(l1, "Q1/new.wav") >= 0);
    const mm_library_track *a = mm_library_track_at(l0, (size_t)find_path(l0, "Q4/x0.wav"));
    const mm_library_track *c = mm_library_track_at(l1, (size_t)find_path(l1, "Q4/x0.wav"));
    assert_string_not_equal(a->id, c->id);
    a = mm_library_track_at(l0, (size_t)find_path(l0, "Q3/x2.wav"));
    c = mm_library_track_at(l1, (size_t)find_path(l1, "Q3/x2.wav"));
    assert_string_equal(a->id, c->id);
    assert_memory_equal(a->proba, c->proba, 4 * sizeof(float));
    assert_string_equal(c->true_label, "Q3");
    /* --no-reuse classifies all again */
    prm.reuse = 0;
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, out, &prm, &s, &err), 0);
    assert_int_equal(s.n_new, 12);
    assert_int_equal(s.n_unchanged, 0);
    mm_library_free(l0);
    mm_library_free(l1);
    /* restore the folder for the other tests */
    snprintf(p, sizeof p, "%s/Q1/new.wav", lib_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/Q2/x1.wav", lib_dir);
    write_tone(p, freqs[1], 1);
    snprintf(p, sizeof p, "%s/Q4/x0.wav", lib_dir);
    write_tone(p, freqs[3], 0);
    mm_bundle_free(b);
}

static void test_threads_deterministic(void **st)
{
    mm_bundle *b = open_bundle();
    char o1[400], o2[400];
    snprintf(o1, sizeof o1, "%s/t1.h5", dir);
    snprintf(o2, sizeof o2, "%s/t2.h5", dir);
    mm_library_index_params p;
    mm_library_index_params_default(&p);
    p.n_threads = 1;
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, o1, &p, NULL, NULL), 0);
    p.n_threads = 3;
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, o2, &p, NULL, NULL), 0);
    mm_library *a = NULL, *c = NULL;
    assert_int_equal(mm_library_open(o1, &a, NULL), 0);
    assert_int_equal(mm_library_open(o2, &c, NULL), 0);
    assert_int_equal(mm_library_size(a), mm_library_size(c));
    for (size_t i = 0; i < mm_library_size(a); i++) {
        const mm_library_track *x = mm_library_track_at(a, i), *y = mm_library_track_at(c, i);
        assert_string_equal(x->path, y->path);
        assert_memory_equal(x->proba, y->proba, 4 * sizeof(float));
        assert_memory_equal(mm_library_sim(a, i, NULL), mm_library_sim(c, i, NULL), mm_library_sim_dim(a));
    }
    mm_library_free(a);
    mm_library_free(c);
    mm_bundle_free(b);
}

static void test_manifest_and_errors(void **st)
{
    mm_bundle *b = open_bundle();
    char man[400], out[400], p[512];
    snprintf(man, sizeof man, "%s/list.csv", dir);
    FILE *m = fopen(man, "w");
    fputs("path,artist,title,label\nmusic/Q1/x1.wav,Cara,Song One,happy\nmusic/Q2/x2.wav,,,\nmusic/missing.wav,Dee,Gone,sad\n", m);
    fclose(m);
    snprintf(out, sizeof out, "%s/man.h5", dir);
    mm_library_index_stats s;
    mm_err err = {0};
    assert_int_equal(mm_library_index(b, bundle, NULL, man, out, NULL, &s, &err), 0);
    assert_int_equal(s.n_indexed, 2);
    assert_int_equal(s.n_failed, 1);
    mm_library *l = NULL;
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    const mm_library_track *t = mm_library_track_at(l, 0);
    assert_string_equal(t->artist, "Cara");
    assert_string_equal(t->title, "Song One");
    assert_string_equal(t->true_label, "happy");
    assert_string_equal(mm_library_track_at(l, 1)->title, "x2");
    const char *fp, *why;
    mm_library_failed(l, 0, &fp, &why);
    assert_non_null(strstr(fp, "missing.wav"));
    mm_library_free(l);

    /* errors: missing source, empty folder, no path column, bad metadata key, output not a library */
    snprintf(p, sizeof p, "%s/none", dir);
    assert_int_equal(mm_library_index(b, bundle, NULL, p, out, NULL, NULL, &err), MM_EIO);
    assert_non_null(strstr(err.msg, "none"));
    snprintf(p, sizeof p, "%s/empty", dir);
    tu_system("mkdir -p %s", p);
    assert_int_equal(mm_library_index(b, bundle, NULL, p, out, NULL, NULL, &err), MM_EDATA);
    assert_non_null(strstr(err.msg, "no audio files"));
    m = fopen(man, "w");
    fputs("file,artist\nmusic/Q1/x1.wav,Cara\n", m);
    fclose(m);
    assert_int_equal(mm_library_index(b, bundle, NULL, man, out, NULL, NULL, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "'path'"));
    mm_library_index_params prm;
    mm_library_index_params_default(&prm);
    prm.metadata = man;
    prm.key_column = "song";
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, out, &prm, NULL, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "'song'"));
    snprintf(p, sizeof p, "%s/exp.yaml", dir);
    assert_int_equal(mm_library_index(b, bundle, NULL, lib_dir, p, NULL, NULL, &err), MM_EFORMAT);
    assert_non_null(strstr(err.msg, "not a readable library"));
    /* a bundle file is no library (labels without a valence–arousal point: test_recommend) */
    assert_true(mm_library_open(bundle, &l, &err) < 0);
    assert_non_null(strstr(err.msg, "music.h5"));
    mm_bundle_free(b);
}

/* A "speech" bundle for the recommend tests: the music bundle with its classes
 * renamed to emotions sitting in the same quadrants (happy Q1, angry Q2, sad Q3,
 * calm Q4), since a music bundle itself is refused as --speech. */
static void relabel_as_speech(const char *out)
{
    mm_err e = {0};
    hid_t f;
    assert_int_equal(mm_h5_open_rw(out, &f, &e), 0);
    assert_true(H5Ldelete(f, "label_names", H5P_DEFAULT) >= 0);
    const char *names[4] = {"happy", "angry", "sad", "calm"};
    assert_int_equal(mm_h5_write_strings(f, "label_names", names, 4, &e), 0);
    mm_h5_close(f);
}

static void make_speech_bundle(const char *out)
{
    assert_int_equal(tu_system("cp %s %s", bundle, out), 0);
    relabel_as_speech(out);
}

static void test_cli(void **st)
{
    char lib[400], speech[400];
    snprintf(lib, sizeof lib, "%s/cli.h5", dir);
    snprintf(speech, sizeof speech, "%s/speech.h5", dir);
    make_speech_bundle(speech);
    assert_int_equal(tu_system("%s index %s %s -o %s -j 2 --quiet 2> %s/index.err", tu_bin(), bundle, lib_dir, lib, dir), 0);
    assert_int_equal(tu_system("grep -q 'skipped .*broken.wav' %s/index.err", dir), 0);
    assert_int_equal(tu_system("grep -q 'indexed 12 of 13' %s/index.err", dir), 0);
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q1/x1.wav -n 4 --json > %s/rec.json",
                               tu_bin(), speech, lib, lib_dir, dir), 0);
    /* the music bundle itself is no speech model: refused in one line */
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q1/x1.wav 2> %s/wrong.err", tu_bin(),
                               bundle, lib, lib_dir, dir), 1);
    assert_int_equal(tu_system("grep -q 'music model' %s/wrong.err && test $(wc -l < %s/wrong.err) -eq 1", dir, dir), 0);
    assert_int_equal(tu_system("grep -q '\"quadrant\": 1' %s/rec.json && grep -q '\"reason\"' %s/rec.json", dir, dir), 0);
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q2/x1.wav -n 3 --policy regulate "
                               "--target 0.5,-0.5 | grep -q 'step 3/3'", tu_bin(), speech, lib, lib_dir), 0);
    /* feedback through the command line: the disliked track disappears */
    assert_int_equal(tu_system("%s recommend --db %s/fb.db --user u1 --feedback dislike --track %s/Q1/x0.wav "
                               "--library %s 2>/dev/null", tu_bin(), dir, lib_dir, lib), 0);
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q1/x1.wav -n 12 --user u1 --db %s/fb.db "
                               "| grep -q 'Q1/x0.wav'", tu_bin(), speech, lib, lib_dir, dir), 1);
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q1/x1.wav -n 12 "
                               "| grep -q 'Q1/x0.wav'", tu_bin(), speech, lib, lib_dir), 0);
    /* a calibrated speech bundle (group_norm over the 3 variants as speakers):
     * the command needs --db and --user, keeps each clip, answers from the third */
    char gm[400];
    snprintf(gm, sizeof gm, "%s/train_g.csv", dir);
    FILE *m = fopen(gm, "w");
    fputs("path,label,group\n", m);
    for (int q = 0; q < 4; q++)
        for (int v = 0; v < 3; v++) fprintf(m, "%s/Q%d/x%d.wav,Q%d,%d\n", lib_dir, q + 1, v, q + 1, v);
    fclose(m);
    assert_int_equal(tu_system("%s export %s/exp.yaml --model forest -o %s/cal.h5 --set dataset.manifest=%s "
                               "--set 'preprocessing={group_norm: {clips: 2}}' 2>/dev/null", tu_bin(), dir, dir, gm), 0);
    char cal[400];
    snprintf(cal, sizeof cal, "%s/cal.h5", dir);
    relabel_as_speech(cal);
    assert_int_equal(tu_system("%s recommend --speech %s/cal.h5 --library %s %s/Q1/x1.wav 2> %s/cal.err", tu_bin(), dir, lib, lib_dir, dir), 1);
    assert_int_equal(tu_system("grep -q 'per-speaker calibration: pass --db' %s/cal.err", dir), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tu_system("%s recommend --speech %s/cal.h5 --library %s %s/Q%d/x1.wav --db %s/cal.db --user v1 2> %s/cal.err",
                                   tu_bin(), dir, lib, lib_dir, i + 1, dir, dir), 1);
        assert_int_equal(tu_system("grep -q 'has %d of the 2 earlier clips' %s/cal.err", i, dir), 0);
    }
    assert_int_equal(tu_system("%s recommend --speech %s/cal.h5 --library %s %s/Q1/x2.wav --db %s/cal.db --user v1 -n 2 --json "
                               "| grep -q '\"tracks\"'", tu_bin(), dir, lib, lib_dir, dir), 0);
    /* batch */
    char p[400];
    snprintf(p, sizeof p, "%s/batch.h5", dir);
    mm_h5_out o;
    assert_int_equal(mm_h5_create(p, &o, NULL), 0);
    const float pr[2 * 4] = {1, 0, 0, 0, 0, 0, 0.2f, 0.8f};
    hsize_t d[2] = {2, 4};
    const char *const labels[4] = {"Q1", "Q2", "Q3", "Q4"};
    assert_int_equal(mm_h5_write_f32(o.file, "proba", pr, 2, d, NULL), 0);
    assert_int_equal(mm_h5_write_strings(o.file, "labels", labels, 4, NULL), 0);
    assert_int_equal(mm_h5_commit(&o, NULL), 0);
    assert_int_equal(tu_system("%s recommend --library %s --batch %s -o %s/batch_out.h5 -n 3", tu_bin(), lib, p, dir), 0);
    snprintf(p, sizeof p, "%s/batch_out.h5", dir);
    hid_t f;
    assert_int_equal(mm_h5_open_read(p, &f, NULL), 0);
    int32_t *tr = NULL;
    int rank;
    hsize_t dims[4];
    assert_int_equal(mm_h5_read_i32(f, "tracks", 2, &tr, &rank, dims, NULL), 0);
    mm_h5_close(f);
    assert_int_equal(dims[0], 2);
    assert_int_equal(dims[1], 3);
    mm_library *l = NULL;
    assert_int_equal(mm_library_open(lib, &l, NULL), 0);
    for (int j = 0; j < 3; j++) {
        assert_int_equal(mm_library_track_at(l, (size_t)tr[j])->quadrant, 1);
        assert_int_equal(mm_library_track_at(l, (size_t)tr[3 + j])->quadrant, 4);
    }
    mm_library_free(l);
    free(tr);
    /* usage errors (2) and failures (1) */
    assert_int_equal(tu_system("%s index %s 2>/dev/null", tu_bin(), bundle), 2);
    assert_int_equal(tu_system("%s index %s %s -o %s -j zero 2>/dev/null", tu_bin(), bundle, lib_dir, lib), 2);
    assert_int_equal(tu_system("%s index %s/none.h5 %s -o %s 2>/dev/null", tu_bin(), dir, lib_dir, lib), 1);
    assert_int_equal(tu_system("%s recommend --library %s 2>/dev/null", tu_bin(), lib), 2);
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q1/x1.wav -n 0 2>/dev/null", tu_bin(), speech, lib, lib_dir), 2);
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q1/x1.wav --policy calm 2> %s/pol.err", tu_bin(), speech, lib, lib_dir, dir), 1);
    assert_int_equal(tu_system("grep -q \"policy 'calm'\" %s/pol.err", dir), 0);
    assert_int_equal(tu_system("%s recommend --speech %s --library %s %s/Q3/broken.wav 2>/dev/null", tu_bin(), speech, lib, lib_dir), 1);
    assert_int_equal(tu_system("%s recommend --db %s/fb.db --user u1 --feedback love --track x 2>/dev/null", tu_bin(), dir), 2);
    assert_int_equal(tu_system("%s index --help | grep -q metadata", tu_bin()), 0);
    assert_int_equal(tu_system("%s recommend --help | grep -q regulate", tu_bin()), 0);
}

/* Track paths work from any working directory: `melodic index` given a
 * relative folder from another cwd stores absolute paths; a relative path
 * finds its track; a library written with relative paths (before they were
 * stored absolute) resolves them from the cwd when the file is there, else
 * from the library's folder. */
static void test_paths_anywhere(void **st)
{
    char bin[4096], cwd[4096], lib[400];
    assert_non_null(realpath(tu_bin(), bin));
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(lib, sizeof lib, "%s/rel.h5", dir);
    assert_int_equal(tu_system("cd %s && %s index music.h5 music -o rel.h5 --quiet 2>/dev/null", dir, bin), 0);
    mm_library *l = NULL;
    mm_err err = {0};
    assert_int_equal(mm_library_open(lib, &l, &err), 0);
    assert_int_equal(mm_library_size(l), 12);
    for (size_t i = 0; i < mm_library_size(l); i++) {
        const char *p = mm_library_track_at(l, i)->path;
        assert_true(p[0] == '/');
        assert_int_equal(access(p, R_OK), 0);
    }
    assert_true(find_path(l, "Q1/x0.wav") >= 0);
    assert_int_equal(chdir(dir), 0);   /* a relative path, from the folder it is relative to */
    long i_rel = mm_library_find(l, "music/Q1/x0.wav"), i_dot = mm_library_find(l, "./music/../music/Q1/x0.wav");
    assert_int_equal(chdir(cwd), 0);
    assert_true(i_rel >= 0);
    assert_int_equal(i_dot, i_rel);
    assert_true(mm_library_find(l, "music/Q1/x0.wav") < 0);   /* not from here */

    /* an older library: "music/Q1/x0.wav" was relative to a cwd that is the
     * library's folder, "Makefile" to this one */
    mm_library_track t[2];
    memcpy(&t[0], mm_library_track_at(l, (size_t)find_path(l, "Q1/x0.wav")), sizeof t[0]);
    memcpy(&t[1], mm_library_track_at(l, (size_t)find_path(l, "Q2/x0.wav")), sizeof t[1]);
    t[0].path = "music/Q1/x0.wav";
    t[1].path = "Makefile";
    /* a v2 file keeps reduced similarity vectors only: give the rebuilt tracks embeddings */
    size_t dim = mm_library_dim(l);
    float *emb = calloc(2 * dim, sizeof *emb);
    assert_non_null(emb);
    for (size_t j = 0; j < 2 * dim; j++) emb[j] = (float)(j % 7) - 3.0f;
    t[0].embedding = emb;
    t[1].embedding = emb + dim;
    int k = mm_library_n_classes(l);
    const char *names[8];
    mm_va va[8];
    for (int c = 0; c < k; c++) { names[c] = mm_library_class_name(l, c); va[c] = mm_library_class_va(l, c); }
    mm_library *old = NULL;
    if (mm_library_from_tracks(t, 2, k, names, va, mm_library_dim(l), &old, &err)) fail_msg("%s", err.msg);
    char old_path[400], want[4200];
    snprintf(old_path, sizeof old_path, "%s/old.h5", dir);
    assert_int_equal(mm_library_save(old, old_path, &err), 0);
    mm_library_free(old);
    old = NULL;
    if (mm_library_open(old_path, &old, &err)) fail_msg("%s", err.msg);
    snprintf(want, sizeof want, "%s/Q1/x0.wav", lib_dir);
    assert_string_equal(mm_library_track_at(old, (size_t)mm_library_find(old, t[0].id))->path, want);
    snprintf(want, sizeof want, "%s/Makefile", cwd);
    assert_string_equal(mm_library_track_at(old, (size_t)mm_library_find(old, t[1].id))->path, want);
    mm_library_free(old);
    mm_library_free(l);
    free(emb);
}

/* `melodic export` takes the cross-validated metrics from results/<name>
 * (as `make run` writes them) or from --results DIR; a missing --results DIR
 * is an error naming it; no results anywhere is a warning. */
static void test_export_results(void **st)
{
    char bin[4096], p[400];
    assert_non_null(realpath(tu_bin(), bin));
    assert_int_equal(tu_system("mkdir -p %s/results/lib %s/other && echo '{\"from\": \"make run\"}' > %s/results/lib/summary.json "
                               "&& echo '{\"from\": \"--results\"}' > %s/other/summary.json", dir, dir, dir, dir), 0);
    assert_int_equal(tu_system("cd %s && %s export exp.yaml --model forest -o r1.h5 2>/dev/null", dir, bin), 0);
    assert_int_equal(tu_system("%s export %s/exp.yaml --model forest -o %s/r2.h5 --results %s/other 2>/dev/null", bin, dir, dir, dir), 0);
    const char *want[2] = {"make run", "--results"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/r%d.h5", dir, i + 1);
        mm_bundle *b = NULL;
        mm_err err = {0};
        assert_int_equal(mm_bundle_open(p, NULL, 1, &b, &err), 0);
        assert_non_null(mm_bundle_metrics(b));
        assert_non_null(strstr(mm_bundle_metrics(b), want[i]));
        mm_bundle_free(b);
    }
    assert_int_equal(tu_system("%s export %s/exp.yaml --model forest -o %s/r3.h5 --results %s/nowhere 2> %s/r3.err", bin, dir, dir, dir, dir), 1);
    assert_int_equal(tu_system("grep -q 'nowhere: no summary.json' %s/r3.err", dir), 0);
    assert_int_equal(tu_system("test -e %s/r3.h5", dir), 1);   /* nothing written */
    /* from a folder with no results/lib: the bundle is written, with a warning */
    assert_int_equal(tu_system("cd %s/other && %s export ../exp.yaml --model forest -o ../r4.h5 2> ../r4.err", dir, bin), 0);
    assert_int_equal(tu_system("grep -q \"warning: no results of 'lib'\" %s/r4.err", dir), 0);
}

/* Real 4Q clips (skipped without the data): the metadata join on `song`. */
static void test_real_4q(void **st)
{
    const char *root = tu_data_root();
    if (!root) { skip(); return; }
    char meta[512], man[400], out[400];
    snprintf(meta, sizeof meta, "%s/music-4q/metadata.csv", root);
    if (access(meta, R_OK)) { skip(); return; }
    snprintf(man, sizeof man, "%s/real.csv", dir);
    assert_int_equal(tu_system("(echo path; for q in Q1 Q2 Q3 Q4; do ls $(realpath %s/music-4q/$q)/*.mp3 | head -1; done) > %s",
                               root, man), 0);
    snprintf(out, sizeof out, "%s/real.h5", dir);
    mm_bundle *b = open_bundle();
    mm_library_index_params p;
    mm_library_index_params_default(&p);
    p.metadata = meta;
    mm_library_index_stats s;
    mm_err err = {0};
    int rc = mm_library_index(b, bundle, NULL, man, out, &p, &s, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(s.n_indexed, 4);
    mm_library *l = NULL;
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    for (size_t i = 0; i < 4; i++) {
        const mm_library_track *t = mm_library_track_at(l, i);
        assert_true(t->artist[0] != 0);
        assert_true(t->duration > 9.9 && t->duration < 10.2);
        char cmd[1024];
        const char *stem = strrchr(t->path, '/') + 1;
        snprintf(cmd, sizeof cmd, "grep -q '^%.*s,' %s", (int)(strlen(stem) - 4), stem, meta);
        assert_int_equal(tu_system("%s", cmd), 0);
    }
    mm_library_free(l);
    mm_bundle_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_layout),
        cmocka_unit_test(test_reindex),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_manifest_and_errors),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_paths_anywhere),
        cmocka_unit_test(test_export_results),
        cmocka_unit_test(test_real_4q),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
