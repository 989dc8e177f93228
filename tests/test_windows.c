/* test_windows.c — indexing whole songs window by window (windows.h,
 * mm_library_index with window_s) and tags through TagLib.
 *
 * Real data (skipped without the 4Q set): a small music bundle is exported
 * from 30 clips per quadrant; 24 other clips of one quadrant are joined into
 * a 4-minute file per quadrant, written into a temporary folder, and indexed
 * with 10 s windows every 5 s (the 4Q excerpts are 10 s). Checked: window
 * counts and starts, a window classified inside a track equals the same
 * samples classified as a file (max |Δp| printed, tolerance 1e-6: the same
 * float samples reach the same front end), the trajectory and segment
 * fields survive the file, reuse keeps them and another hop re-classifies;
 * the quadrant of each joined file is reported (and must be right for most);
 * throughput in hours of audio per hour per core (also from the CLI summary,
 * windowed by the bundle's recorded clip length, ~10.03 s); a file shorter than a
 * window is one window; `melodic index` writes no \r into a log; with
 * TagLib linked, ID3 tags in a WAV (which libsndfile does not read) name the
 * artist and title. */
#include "testutil.h"

#include <limits.h>
#include <sndfile.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "runtime/library.h"
#include "runtime/windows.h"

#if defined(__has_include)
#if __has_include(<tag_c.h>)   /* built with pkg-config taglib_c (as library.c then is) */
#include <tag_c.h>
#define HAVE_TAGLIB_H 1
#endif
#endif

static char dir[256], songs[300], bundle[300];
static int have_data;
static const mm_va q_va[4] = {{0.5f, 0.5f}, {-0.5f, 0.5f}, {-0.5f, -0.5f}, {0.5f, -0.5f}};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void write_wav(const char *path, const float *x, size_t n, int sr, int fmt)
{
    SF_INFO info = {.samplerate = sr, .channels = 1, .format = SF_FORMAT_WAV | fmt};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    assert_non_null(f);
    assert_int_equal(sf_writef_float(f, x, (sf_count_t)n), (sf_count_t)n);
    sf_close(f);
}

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/mm_windows_%d", (int)getpid());
    snprintf(songs, sizeof songs, "%s/songs", dir);
    snprintf(bundle, sizeof bundle, "%s/music.h5", dir);
    tu_system("rm -rf %s && mkdir -p %s", dir, songs);
    const char *rel = tu_data_root();
    char root[PATH_MAX], q1[PATH_MAX + 16];
    if (!rel || !realpath(rel, root)) return 0;   /* absolute: the manifest lives elsewhere */
    snprintf(q1, sizeof q1, "%s/music-4q/Q1", root);
    if (access(q1, R_OK)) return 0;
    /* training manifest: the first 30 clips of each quadrant (sorted by name) */
    if (tu_system("(echo path,label; for q in Q1 Q2 Q3 Q4; do ls %s/music-4q/$q/*.mp3 | sort | head -30 | sed \"s/$/,$q/\"; done) > %s/train.csv",
                  root, dir))
        return -1;
    char p[512];
    snprintf(p, sizeof p, "%s/exp.yaml", dir);
    FILE *y = fopen(p, "w");
    fprintf(y, "name: win\nseed: 1\ncache: %s/cache\ndataset: {type: csv, manifest: %s/train.csv}\n"
               "features: [{set: logmel_stats, params: {frontend: cnn14_16k}}]\n"
               "protocol: {kind: stratified_kfold, n_folds: 2}\n"
               "models:\n  - {name: forest, model: rf, params: {n_estimators: 50}}\n", dir, dir);
    fclose(y);
    if (tu_system("%s export %s/exp.yaml --model forest -o %s 2>/dev/null >/dev/null", tu_bin(), dir, bundle)) return -1;
    /* one 4-minute song per quadrant: clips 31..54 of that quadrant, joined (mono, their rate) */
    for (int q = 0; q < 4; q++) {
        snprintf(p, sizeof p, "%s/list%d.txt", dir, q);
        if (tu_system("ls %s/music-4q/Q%d/*.mp3 | sort | sed -n 31,54p > %s", root, q + 1, p)) return -1;
        FILE *l = fopen(p, "r");
        char line[1024];
        float *x = NULL;
        size_t n = 0;
        int sr = 0;
        while (fgets(line, sizeof line, l)) {
            line[strcspn(line, "\n")] = 0;
            mm_audio a;
            mm_err err = {0};
            mm_audio_opts o;   /* the clips come at 22.05–44.1 kHz and ~10 s: 32 kHz, exactly 10 s each */
            mm_audio_opts_default(&o);
            o.target_sr = 32000;
            o.fixed_seconds = 10;
            if (mm_audio_load(line, &o, &a, &err)) { fprintf(stderr, "%s\n", err.msg); fclose(l); free(x); return -1; }
            sr = a.sr;
            size_t take = a.n;
            x = realloc(x, (n + take) * sizeof *x);
            memcpy(x + n, a.x, take * sizeof *x);
            n += take;
            mm_audio_free(&a);
        }
        fclose(l);
        char out[512];
        snprintf(out, sizeof out, "%s/Q%d/Q%d_song.wav", songs, q + 1, q + 1);   /* folder name: annotated label */
        tu_system("mkdir -p %s/Q%d", songs, q + 1);
        write_wav(out, x, n, sr, SF_FORMAT_PCM_16);
        free(x);
    }
    have_data = 1;
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -rf %s", dir);
    return 0;
}

static void test_starts(void **st)
{
    double s[64];
    assert_int_equal(mm_windows_starts(240, 10, 5, s), 47);   /* 0, 5, …, 230 */
    assert_true(s[46] == 230);
    assert_int_equal(mm_windows_starts(10.03, 10, 5, s), 1);   /* a 4Q excerpt: one window */
    assert_int_equal(mm_windows_starts(23, 10, 5, s), 4);      /* 0, 5, 10, and 13 for the last 3 s */
    assert_true(s[3] == 13);
    assert_int_equal(mm_windows_starts(4, 10, 5, s), 1);       /* shorter than a window: the whole track */
    assert_true(s[0] == 0);
    assert_int_equal(mm_windows_starts(30, 10, 10, s), 3);
    assert_int_equal(mm_windows_starts(30, 0, 5, NULL), 0);
}

static void test_songs(void **st)
{
    if (!have_data) { skip(); return; }
    mm_bundle *b = NULL;
    mm_err err = {0};
    assert_int_equal(mm_bundle_open(bundle, NULL, 1, &b, &err), 0);
    assert_int_equal(mm_bundle_n_classes(b), 4);
    /* a window inside a song equals the same samples as a file */
    char song[512], clip[512];
    snprintf(song, sizeof song, "%s/Q2/Q2_song.wav", songs);
    mm_windows w;
    assert_int_equal(mm_windows_classify(b, song, q_va, 10, 5, 1, &w, &err), 0);
    assert_int_equal(w.n, 47);
    assert_true(fabs(w.duration - 240) < 0.01);
    mm_audio a;
    assert_int_equal(mm_audio_load(song, NULL, &a, &err), 0);
    size_t i = 17, s0 = (size_t)llround(w.start[i] * a.sr), wn = (size_t)10 * (size_t)a.sr;
    snprintf(clip, sizeof clip, "%s/window17.wav", dir);
    write_wav(clip, a.x + s0, wn, a.sr, SF_FORMAT_FLOAT);
    float p[4];
    assert_int_equal(mm_bundle_classify_file(b, clip, p, NULL, NULL, &err), 0);
    double d = tu_max_abs_diff(p, w.proba + i * 4, 4);
    printf("window 17 of a song vs the same 10 s as a file: max |dp| %.2g\n", d);
    assert_true(d <= 1e-6);
    mm_audio_free(&a);
    mm_windows_free(&w);

    /* the library, one thread (throughput per core) */
    char out[512];
    snprintf(out, sizeof out, "%s/songs.h5", dir);
    mm_library_index_params prm;
    mm_library_index_params_default(&prm);
    prm.window_s = 10;
    prm.hop_s = 5;
    prm.n_threads = 1;
    mm_library_index_stats s;
    double t0 = now_s();
    int rc = mm_library_index(b, bundle, NULL, songs, out, &prm, &s, &err);
    double dt = now_s() - t0;
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(s.n_indexed, 4);
    mm_library *l = NULL;
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    double hop = 0;
    assert_true(mm_library_window(l, &hop) == 10 && hop == 5);
    size_t right = 0;
    double audio = 0;
    for (size_t t = 0; t < mm_library_size(l); t++) {
        const mm_library_track *tr = mm_library_track_at(l, t);
        audio += tr->duration;
        assert_int_equal(tr->n_windows, 47);
        assert_non_null(tr->trajectory);
        assert_true(tr->segment_start >= 0 && tr->segment_start <= 230 && fmod(tr->segment_start, 5) == 0);
        size_t in_q = 0;
        for (size_t k = 0; k < tr->n_windows; k++) {
            assert_true(fabsf(tr->trajectory[k].valence) <= 1 && fabsf(tr->trajectory[k].arousal) <= 1);
            in_q += mm_va_quadrant(tr->trajectory[k]) == tr->true_label[1] - '0';
        }
        right += tr->quadrant == tr->true_label[1] - '0';
        printf("%s: %s (%.0f%%), %zu of 47 windows in %s, best segment at %.0f s\n", tr->title,
               mm_library_class_name(l, tr->top_class), 100.0 * tr->confidence, in_q, tr->true_label, tr->segment_start);
    }
    printf("windowed indexing, 1 thread: %.0f s of audio in %.1f s = %.0f hours of audio per hour per core "
           "(10 s windows, hop 5 s: each second classified twice); %zu of 4 songs in their quadrant\n",
           audio, dt, audio / dt, right);
    assert_true(right >= 3);
    /* re-indexing reuses tracks and trajectories; another hop classifies again */
    mm_library_track first = *mm_library_track_at(l, 0);
    mm_va traj0[47];
    memcpy(traj0, first.trajectory, sizeof traj0);
    mm_library_free(l);
    assert_int_equal(mm_library_index(b, bundle, NULL, songs, out, &prm, &s, &err), 0);
    assert_int_equal(s.n_unchanged, 4);
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    assert_memory_equal(mm_library_track_at(l, 0)->trajectory, traj0, sizeof traj0);
    assert_true(mm_library_track_at(l, 0)->segment_start == first.segment_start);
    mm_library_free(l);
    prm.hop_s = 10;
    assert_int_equal(mm_library_index(b, bundle, NULL, songs, out, &prm, &s, &err), 0);
    assert_int_equal(s.n_new, 4);
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    assert_int_equal(mm_library_track_at(l, 0)->n_windows, 24);
    mm_library_free(l);
    /* the bundle records the training clips' length (4Q: the excerpts' ~10.03 s, the
     * median decoded duration), and `melodic index` windows by it by default; its
     * summary line gives the throughput per core */
    double clip_s = mm_bundle_clip_seconds(b);
    printf("bundle clip_seconds = %.3f (4Q excerpts: 9.99-10.03 s)\n", clip_s);
    assert_true(clip_s > 9.9 && clip_s < 10.1);
    char log[600], cli_out[600];
    snprintf(cli_out, sizeof cli_out, "%s/songs_cli.h5", dir);
    snprintf(log, sizeof log, "%s/index_cli.log", dir);
    assert_int_equal(tu_system("%s index %s %s -o %s -j 1 --quiet 2> %s", tu_bin(), bundle, songs, cli_out, log), 0);
    tu_system("cat %s", log);
    assert_int_equal(tu_system("grep -q 'h of audio per hour per core (CPU time, 1 core)' %s", log), 0);
    assert_int_equal(tu_system("! grep -q 'does not record' %s", log), 0);
    assert_int_equal(mm_library_open(cli_out, &l, &err), 0);
    assert_true(mm_library_window(l, &hop) == clip_s && hop == clip_s / 2);
    mm_library_free(l);
    mm_bundle_free(b);
}

static void test_short_and_cli(void **st)
{
    if (!have_data) { skip(); return; }
    char sdir[512], path[600], out[600], log[600];
    snprintf(sdir, sizeof sdir, "%s/short", dir);
    tu_system("mkdir -p %s", sdir);
    snprintf(path, sizeof path, "%s/four_seconds.wav", sdir);
    static float x[4 * 16000];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = 0.3f * sinf(0.05f * (float)i) * sinf(0.0003f * (float)i);
    write_wav(path, x, sizeof x / sizeof *x, 16000, SF_FORMAT_PCM_16);
    /* CLI with stderr in a file: progress lines, no \r; a track shorter than the window is one window */
    snprintf(out, sizeof out, "%s/short.h5", dir);
    snprintf(log, sizeof log, "%s/index.log", dir);
    assert_int_equal(tu_system("%s index %s %s -o %s --window 10 -j 1 2> %s", tu_bin(), bundle, sdir, out, log), 0);
    assert_int_equal(tu_system("grep -q '100%%' %s", log), 0);
    assert_int_equal(tu_system("! grep -q \"$(printf '\\r')\" %s", log), 0);
    mm_library *l = NULL;
    mm_err err = {0};
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    assert_int_equal(mm_library_track_at(l, 0)->n_windows, 1);
    assert_true(mm_library_track_at(l, 0)->segment_start == 0);
    mm_library_free(l);
    /* bad window lengths are refused as the options are read */
    assert_true(tu_system("%s index %s %s -o %s --window -1 2>/dev/null", tu_bin(), bundle, sdir, out) != 0);
    assert_true(tu_system("%s index %s %s -o %s --hop 0 2>/dev/null", tu_bin(), bundle, sdir, out) != 0);
}

static void test_taglib(void **st)
{
#ifdef HAVE_TAGLIB_H
    if (!have_data || !mm_library_has_taglib()) {
        printf("TagLib not linked into this build: skipped (pkg-config taglib_c)\n");
        skip();
        return;
    }
    char tdir[512], path[600], out[600];
    snprintf(tdir, sizeof tdir, "%s/tagged", dir);
    tu_system("mkdir -p %s", tdir);
    snprintf(path, sizeof path, "%s/untitled.wav", tdir);
    static float x[2 * 16000];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = 0.3f * sinf(0.07f * (float)i);
    write_wav(path, x, sizeof x / sizeof *x, 16000, SF_FORMAT_PCM_16);
    TagLib_File *f = taglib_file_new(path);   /* RIFF WAV: TagLib writes an ID3v2 chunk */
    assert_non_null(f);
    taglib_tag_set_artist(taglib_file_tag(f), "Ünïcode Ärtist");
    taglib_tag_set_title(taglib_file_tag(f), "A Title From ID3");
    assert_true(taglib_file_save(f));
    taglib_file_free(f);
    mm_bundle *b = NULL;
    mm_err err = {0};
    assert_int_equal(mm_bundle_open(bundle, NULL, 1, &b, &err), 0);
    snprintf(out, sizeof out, "%s/tagged.h5", dir);
    assert_int_equal(mm_library_index(b, bundle, NULL, tdir, out, NULL, NULL, &err), 0);
    mm_library *l = NULL;
    assert_int_equal(mm_library_open(out, &l, &err), 0);
    printf("tags via TagLib: '%s' / '%s'\n", mm_library_track_at(l, 0)->artist, mm_library_track_at(l, 0)->title);
    assert_string_equal(mm_library_track_at(l, 0)->artist, "Ünïcode Ärtist");
    assert_string_equal(mm_library_track_at(l, 0)->title, "A Title From ID3");
    mm_library_free(l);
    mm_bundle_free(b);
#else
    printf("TagLib not in this build: skipped (pkg-config taglib_c)\n");
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts),
        cmocka_unit_test(test_songs),
        cmocka_unit_test(test_short_and_cli),
        cmocka_unit_test(test_taglib),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
