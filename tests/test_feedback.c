/* test_feedback.c — the SQLite feedback store and its effect on
 * recommendations: events fold into per-user state (latest like/dislike
 * wins, skips counted, liked artists), WAL mode, survival across reopening,
 * concurrent writers, bad input and foreign files refused; a disliked track
 * never returns, a liked track and a liked artist rank higher. Hostile
 * volume (issue 18): thousands of events for one user leave one state row
 * per track and a log of MM_FEEDBACK_LOG_KEEP events; a version-1 file
 * (events only) is folded on open into the same state v1 computed. Served
 * tracks per user (issue 17): newest first, bounded, answers counted. */
#include "testutil.h"
#include <sqlite3.h>
#include "runtime/recommend.h"

static char db[256];

static int setup(void **st)
{
    snprintf(db, sizeof db, "/tmp/mm_feedback_%d.db", (int)getpid());
    tu_system("rm -f %s %s-wal %s-shm", db, db, db);
    return 0;
}

static int teardown(void **st)
{
    tu_system("rm -f %s %s-wal %s-shm %s.other %s.txt", db, db, db, db, db);
    return 0;
}

static void test_record_and_fold(void **st)
{
    mm_feedback *fb = NULL;
    mm_err err = {0};
    assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "ana", "t1", "Artist A", MM_FEEDBACK_LIKE, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "ana", "t2", "Artist B", MM_FEEDBACK_DISLIKE, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "ana", "t3", "Artist A", MM_FEEDBACK_SKIP, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "ana", "t3", "Artist A", MM_FEEDBACK_SKIP, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "ana", "t4", NULL, MM_FEEDBACK_DISLIKE, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "ana", "t4", NULL, MM_FEEDBACK_LIKE, &err), 0);   /* changed her mind */
    assert_int_equal(mm_feedback_record(fb, "bob", "t1", "Artist A", MM_FEEDBACK_DISLIKE, &err), 0);
    /* values that would break a string-built query are just data */
    assert_int_equal(mm_feedback_record(fb, "x'); DROP TABLE events;--", "t1", "O'Brien", MM_FEEDBACK_LIKE, &err), 0);
    mm_feedback_prefs p;
    assert_int_equal(mm_feedback_prefs_get(fb, "ana", &p, &err), 0);
    assert_int_equal(p.n_tracks, 4);
    int skips;
    assert_int_equal(mm_feedback_prefs_track(&p, "t1", &skips), 1);
    assert_int_equal(mm_feedback_prefs_track(&p, "t2", &skips), -1);
    assert_int_equal(mm_feedback_prefs_track(&p, "t3", &skips), 0);
    assert_int_equal(skips, 2);
    assert_int_equal(mm_feedback_prefs_track(&p, "t4", NULL), 1);
    assert_int_equal(mm_feedback_prefs_track(&p, "t9", &skips), 0);
    assert_int_equal(skips, 0);
    assert_int_equal(mm_feedback_prefs_artist(&p, "Artist A"), 1);
    assert_int_equal(mm_feedback_prefs_artist(&p, "Artist B"), 0);
    assert_int_equal(mm_feedback_prefs_artist(&p, ""), 0);
    mm_feedback_prefs_free(&p);
    assert_int_equal(mm_feedback_prefs_get(fb, "bob", &p, &err), 0);
    assert_int_equal(mm_feedback_prefs_track(&p, "t1", NULL), -1);
    mm_feedback_prefs_free(&p);
    assert_int_equal(mm_feedback_prefs_get(fb, "nobody", &p, &err), 0);
    assert_int_equal(p.n_tracks, 0);
    mm_feedback_prefs_free(&p);
    mm_feedback_close(fb);

    /* survives reopening; WAL mode */
    assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    assert_int_equal(mm_feedback_prefs_get(fb, "ana", &p, &err), 0);
    assert_int_equal(p.n_tracks, 4);
    assert_int_equal(mm_feedback_prefs_track(&p, "t2", NULL), -1);
    mm_feedback_prefs_free(&p);
    assert_int_equal(mm_feedback_prefs_get(fb, "x'); DROP TABLE events;--", &p, &err), 0);
    assert_int_equal(p.n_tracks, 1);
    mm_feedback_prefs_free(&p);
    mm_feedback_close(fb);
    mm_feedback_close(NULL);
    sqlite3 *s = NULL;
    assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(s, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(s);
}

/* Calibration clips: newest `keep` per user and pipeline, in newest-first
 * order, across a reopen; other users and pipelines apart; bad calls refused. */
static void test_calibration_store(void **st)
{
    (void)st;
    mm_feedback *fb = NULL;
    mm_err e = {0};
    assert_int_equal(mm_feedback_open(db, &fb, &e), 0);
    float v[3];
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 3; j++) v[j] = (float)(10 * i + j);
        assert_int_equal(mm_feedback_calib_add(fb, "ann", "p1", v, 3, 3, &e), 0);
    }
    v[0] = -1;
    assert_int_equal(mm_feedback_calib_add(fb, "ann", "p2", v, 3, 3, &e), 0);
    assert_int_equal(mm_feedback_calib_add(fb, "bob", "p1", v, 3, 3, &e), 0);
    mm_feedback_close(fb);
    assert_int_equal(mm_feedback_open(db, &fb, &e), 0);
    float out[10 * 3];
    size_t k = 0;
    assert_int_equal(mm_feedback_calib_get(fb, "ann", "p1", 3, 10, out, &k, &e), 0);
    assert_int_equal(k, 3);   /* pruned to the newest 3: clips 4, 3, 2 */
    assert_true(out[0] == 40 && out[3] == 30 && out[6] == 20 && out[8] == 22);
    assert_int_equal(mm_feedback_calib_get(fb, "ann", "p1", 3, 2, out, &k, &e), 0);
    assert_int_equal(k, 2);
    assert_int_equal(mm_feedback_calib_get(fb, "ann", "p2", 3, 10, out, &k, &e), 0);
    assert_true(k == 1 && out[0] == -1);
    assert_int_equal(mm_feedback_calib_get(fb, "bob", "p1", 3, 10, out, &k, &e), 0);
    assert_int_equal(k, 1);
    assert_int_equal(mm_feedback_calib_get(fb, "carl", "p1", 3, 10, out, &k, &e), 0);
    assert_int_equal(k, 0);
    assert_int_equal(mm_feedback_calib_add(fb, "ann", "p1", v, 0, 3, &e), MM_EINVAL);
    assert_int_equal(mm_feedback_calib_add(fb, "ann", "p1", v, 3, 0, &e), MM_EINVAL);
    assert_int_equal(mm_feedback_calib_add(fb, "", "p1", v, 3, 3, &e), MM_EINVAL);
    assert_int_equal(mm_feedback_calib_get(fb, "ann", "p1", 3, MM_CALIB_MAX_CLIPS + 1, out, &k, &e), MM_EINVAL);
    mm_feedback_close(fb);
}

static void test_bad_input(void **st)
{
    mm_feedback *fb = NULL;
    mm_err err = {0};
    assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "", "t1", NULL, MM_FEEDBACK_LIKE, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "user id"));
    assert_int_equal(mm_feedback_record(fb, "ana", NULL, NULL, MM_FEEDBACK_LIKE, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "track id"));
    assert_int_equal(mm_feedback_record(fb, "a\nb", "t1", NULL, MM_FEEDBACK_LIKE, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "control"));
    char longid[400];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    assert_int_equal(mm_feedback_record(fb, longid, "t1", NULL, MM_FEEDBACK_LIKE, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "256"));
    assert_int_equal(mm_feedback_record(fb, "ana", "t1", NULL, (mm_feedback_action)7, &err), MM_EINVAL);
    mm_feedback_action a;
    assert_int_equal(mm_feedback_action_parse("love", &a, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "love"));
    assert_int_equal(mm_feedback_action_parse("dislike", &a, &err), 0);
    assert_int_equal(a, MM_FEEDBACK_DISLIKE);
    assert_string_equal(mm_feedback_action_name(MM_FEEDBACK_SKIP), "skip");
    mm_feedback_close(fb);
    /* a text file, another SQLite database, a missing folder */
    char p[300];
    snprintf(p, sizeof p, "%s.txt", db);
    FILE *f = fopen(p, "w");
    fputs("this is not a database, just some text that is long enough to have a header..........\n", f);
    fclose(f);
    assert_true(mm_feedback_open(p, &fb, &err) < 0);
    assert_non_null(strstr(err.msg, ".txt"));
    snprintf(p, sizeof p, "%s.other", db);
    sqlite3 *s = NULL;
    sqlite3_open(p, &s);
    sqlite3_exec(s, "CREATE TABLE songs(x)", NULL, NULL, NULL);
    sqlite3_close(s);
    assert_true(mm_feedback_open(p, &fb, &err) < 0);
    assert_non_null(strstr(err.msg, "another kind"));
    assert_true(mm_feedback_open("/nonexistent/dir/fb.db", &fb, &err) < 0);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/fb.db"));
}

static void test_concurrent_writers(void **st)
{
    mm_feedback *fb = NULL;
    assert_int_equal(mm_feedback_open(db, &fb, NULL), 0);
    int failures = 0;
#pragma omp parallel for num_threads(4) reduction(+ : failures)
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf(id, sizeof id, "c%03d", i);
        failures += mm_feedback_record(fb, "carol", id, "X", i % 2 ? MM_FEEDBACK_LIKE : MM_FEEDBACK_SKIP, NULL) != 0;
    }
    assert_int_equal(failures, 0);
    mm_feedback_prefs p;
    assert_int_equal(mm_feedback_prefs_get(fb, "carol", &p, NULL), 0);
    assert_int_equal(p.n_tracks, 200);
    assert_int_equal(mm_feedback_prefs_artist(&p, "X"), 100);
    mm_feedback_prefs_free(&p);
    mm_feedback_close(fb);
}

/* Rows of a table (optionally of one user), read with plain SQLite. */
static long count_rows(const char *table, const char *user)
{
    sqlite3 *s = NULL;
    sqlite3_stmt *q = NULL;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s", table, user ? " WHERE user=?1" : "");
    long n = -1;
    if (sqlite3_open(db, &s) == SQLITE_OK && sqlite3_prepare_v2(s, sql, -1, &q, NULL) == SQLITE_OK) {
        if (user) sqlite3_bind_text(q, 1, user, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    sqlite3_close(s);
    return n;
}

/* Many events for one user: the state stays one row per track with exact
 * counts, the log keeps the newest MM_FEEDBACK_LOG_KEEP, other users keep theirs. */
static void test_bounded_state(void **st)
{
    mm_feedback *fb = NULL;
    mm_err err = {0};
    assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    assert_int_equal(mm_feedback_record(fb, "bob", "t1", "A", MM_FEEDBACK_LIKE, &err), 0);
    int n = 3 * MM_FEEDBACK_LOG_KEEP;
    for (int i = 0; i < n; i++) {
        const char *t = i % 3 == 0 ? "t1" : i % 3 == 1 ? "t2" : "t3";
        mm_feedback_action a = i % 3 == 2 ? MM_FEEDBACK_SKIP : i % 6 == 0 ? MM_FEEDBACK_DISLIKE : MM_FEEDBACK_LIKE;
        assert_int_equal(mm_feedback_record(fb, "mallory", t, i < n - 3 ? "Old" : "New", a, &err), 0);
    }
    assert_int_equal(mm_feedback_record(fb, "mallory", "t1", "", MM_FEEDBACK_DISLIKE, &err), 0);
    mm_feedback_prefs p;
    assert_int_equal(mm_feedback_prefs_get(fb, "mallory", &p, &err), 0);
    assert_int_equal(p.n_tracks, 3);
    int skips = 0;
    /* t1: disliked last; t2: liked last (i = n - 2), by artist "New"; t3: skips only */
    assert_int_equal(mm_feedback_prefs_track(&p, "t1", &skips), -1);
    assert_int_equal(mm_feedback_prefs_track(&p, "t2", &skips), 1);
    assert_int_equal(skips, 0);
    assert_int_equal(mm_feedback_prefs_track(&p, "t3", &skips), 0);
    assert_int_equal(skips, n / 3);   /* every skip counts, beyond what the log keeps */
    assert_int_equal(mm_feedback_prefs_artist(&p, "New"), 1);   /* the latest artist of the liked track */
    assert_int_equal(mm_feedback_prefs_artist(&p, "Old"), 0);
    mm_feedback_prefs_free(&p);
    mm_feedback_close(fb);
    assert_int_equal(count_rows("prefs", "mallory"), 3);
    assert_int_equal(count_rows("events", "mallory"), MM_FEEDBACK_LOG_KEEP);
    assert_int_equal(count_rows("events", "bob"), 1);
}

/* Served tracks (issue 17): each answer's tracks kept in order, read newest
 * first, trimmed to the user's newest MM_FEEDBACK_SERVED_KEEP, answers
 * counted (also empty ones); users apart; kept across reopening; bad input
 * refused with nothing stored. */
static void test_served(void **st)
{
    mm_feedback *fb = NULL;
    mm_err err = {0};
    assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    mm_feedback_recent_list r;
    assert_int_equal(mm_feedback_recent(fb, "ana", 10, &r, &err), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.answers, 0);
    mm_feedback_recent_free(&r);
    enum { PER = 90, ANSWERS = 3 };
    char ids[PER * ANSWERS][16];
    const char *list[PER];
    for (int a = 0; a < ANSWERS; a++) {
        for (int i = 0; i < PER; i++) {
            snprintf(ids[a * PER + i], sizeof ids[0], "a%03d", a * PER + i);
            list[i] = ids[a * PER + i];
        }
        assert_int_equal(mm_feedback_served_add(fb, "ana", list, PER, &err), 0);
    }
    list[0] = "x'); DROP TABLE served;--";   /* data, not SQL */
    assert_int_equal(mm_feedback_served_add(fb, "bob", list, 1, &err), 0);
    assert_int_equal(mm_feedback_served_add(fb, "bob", NULL, 0, &err), 0);   /* an empty answer counts */
    /* refused, nothing stored */
    assert_int_equal(mm_feedback_served_add(fb, "", list, 1, &err), MM_EINVAL);
    assert_int_equal(mm_feedback_served_add(fb, "ana", NULL, 2, &err), MM_EINVAL);
    const char *bad[2] = {"ok", "t\n1"};
    assert_int_equal(mm_feedback_served_add(fb, "ana", bad, 2, &err), MM_EINVAL);
    assert_non_null(strstr(err.msg, "control"));
    assert_int_equal(mm_feedback_recent(fb, "", 10, &r, &err), MM_EINVAL);
    for (int reopen = 0; reopen < 2; reopen++) {
        assert_int_equal(mm_feedback_recent(fb, "ana", 1000, &r, &err), 0);
        assert_int_equal(r.n, MM_FEEDBACK_SERVED_KEEP);
        assert_int_equal(r.answers, ANSWERS);
        for (size_t i = 0; i < r.n; i++) assert_string_equal(r.track_ids[i], ids[PER * ANSWERS - 1 - i]);
        mm_feedback_recent_free(&r);
        assert_int_equal(mm_feedback_recent(fb, "ana", 5, &r, &err), 0);
        assert_int_equal(r.n, 5);
        assert_string_equal(r.track_ids[0], ids[PER * ANSWERS - 1]);
        mm_feedback_recent_free(&r);
        assert_int_equal(mm_feedback_recent(fb, "bob", 1000, &r, &err), 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.answers, 2);
        assert_string_equal(r.track_ids[0], "x'); DROP TABLE served;--");
        mm_feedback_recent_free(&r);
        mm_feedback_close(fb);
        assert_int_equal(count_rows("served", "ana"), MM_FEEDBACK_SERVED_KEEP);
        assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    }
    mm_feedback_close(fb);
    mm_feedback_recent_free(NULL);
}

/* A version-1 file (events only, as the previous release wrote it) is
 * folded on open: the same preferences, the log trimmed, version 2 after. */
static void test_migrate_v1(void **st)
{
    sqlite3 *s = NULL;
    assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
    assert_int_equal(sqlite3_exec(s,
        "CREATE TABLE melodic_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO melodic_meta VALUES('format','melodic-feedback'),('version','1');"
        "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, track TEXT NOT NULL,"
        " artist TEXT NOT NULL DEFAULT '', action INTEGER NOT NULL CHECK(action IN (1,2,3)), ts INTEGER NOT NULL);"
        "CREATE INDEX events_user ON events(user, id);"
        "INSERT INTO events(user, track, artist, action, ts) VALUES"
        " ('ana','t1','Artist A',1,0), ('ana','t2','Artist B',3,0), ('ana','t3','Artist A',2,0),"
        " ('ana','t3','',2,0), ('ana','t4','',3,0), ('ana','t4','Artist C',1,0), ('ana','t1','',2,0),"
        " ('bob','t1','Artist A',3,0);", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(s, "INSERT INTO events(user, track, artist, action, ts) VALUES('zed','z',"
                                        "'Z',2,0)", -1, &q, NULL), SQLITE_OK);
    sqlite3_exec(s, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < MM_FEEDBACK_LOG_KEEP + 50; i++) { sqlite3_step(q); sqlite3_reset(q); }
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_exec(s, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(s);

    mm_feedback *fb = NULL;
    mm_err err = {0};
    assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    mm_feedback_prefs p;
    assert_int_equal(mm_feedback_prefs_get(fb, "ana", &p, &err), 0);
    assert_int_equal(p.n_tracks, 4);
    int skips = 0;
    assert_int_equal(mm_feedback_prefs_track(&p, "t1", &skips), 1);   /* a skip leaves the like */
    assert_int_equal(skips, 1);
    assert_int_equal(mm_feedback_prefs_track(&p, "t2", NULL), -1);
    assert_int_equal(mm_feedback_prefs_track(&p, "t3", &skips), 0);
    assert_int_equal(skips, 2);
    assert_int_equal(mm_feedback_prefs_track(&p, "t4", NULL), 1);
    assert_int_equal(mm_feedback_prefs_artist(&p, "Artist A"), 1);
    assert_int_equal(mm_feedback_prefs_artist(&p, "Artist C"), 1);
    assert_int_equal(mm_feedback_prefs_artist(&p, "Artist B"), 0);
    mm_feedback_prefs_free(&p);
    assert_int_equal(mm_feedback_prefs_get(fb, "zed", &p, &err), 0);
    assert_int_equal(mm_feedback_prefs_track(&p, "z", &skips), 0);
    assert_int_equal(skips, MM_FEEDBACK_LOG_KEEP + 50);
    mm_feedback_prefs_free(&p);
    mm_feedback_close(fb);
    assert_int_equal(count_rows("events", "zed"), MM_FEEDBACK_LOG_KEEP);
    assert_int_equal(count_rows("events", "ana"), 7);
    assert_int_equal(count_rows("melodic_meta WHERE key='version' AND value='2'", NULL), 1);
    /* and it opens again as version 2, unchanged */
    assert_int_equal(mm_feedback_open(db, &fb, &err), 0);
    assert_int_equal(mm_feedback_prefs_get(fb, "ana", &p, &err), 0);
    assert_int_equal(p.n_tracks, 4);
    mm_feedback_prefs_free(&p);
    mm_feedback_close(fb);
}

/* 12 Q1 tracks with distinct artists; one-hot embeddings. */
static mm_library *make_lib(void)
{
    static const char *const qn[4] = {"Q1", "Q2", "Q3", "Q4"};
    static const mm_va qv[4] = {{0.5f, 0.5f}, {-0.5f, 0.5f}, {-0.5f, -0.5f}, {0.5f, -0.5f}};
    mm_library_track t[12];
    float proba[12][4], emb[12][12];
    char names[12][16], artists[12][16];
    memset(t, 0, sizeof t);
    memset(emb, 0, sizeof emb);
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "f%02d", i);
        snprintf(artists[i], sizeof artists[i], "artist%d", i < 2 ? 0 : i);   /* f00, f01 share an artist */
        float c = 0.95f - 0.03f * (float)i;   /* relevance falls with i */
        proba[i][0] = c;
        proba[i][1] = proba[i][2] = proba[i][3] = (1 - c) / 3;
        emb[i][i] = 1;
        t[i].path = t[i].id = t[i].title = names[i];
        t[i].artist = artists[i];
        t[i].true_label = "Q1";
        t[i].proba = proba[i];
        t[i].embedding = emb[i];
    }
    mm_library *l = NULL;
    assert_int_equal(mm_library_from_tracks(t, 12, 4, qn, qv, 12, &l, NULL), 0);
    return l;
}

static long rank_of(const mm_rec_result *r, const mm_library *l, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(mm_library_track_at(l, r->items[i].track)->id, id)) return (long)i;
    return -1;
}

static void test_feedback_in_recommendations(void **st)
{
    mm_library *l = make_lib();
    mm_va_table *va = NULL;
    assert_int_equal(mm_va_table_load("configs/recommend/default.yaml", &va, NULL), 0);
    const char *const labels[2] = {"happy", "sad"};
    mm_recommender *r = NULL;
    assert_int_equal(mm_recommender_create(l, va, labels, 2, &r, NULL), 0);
    mm_feedback *fb = NULL;
    assert_int_equal(mm_feedback_open(db, &fb, NULL), 0);
    const float pr[2] = {0.9f, 0.1f};
    mm_recommend_params p;
    mm_recommend_params_default(&p);
    p.n = 12;
    p.user = "dana";
    mm_rec_result before, after;
    assert_int_equal(mm_recommend(r, pr, &p, fb, &before, NULL), 0);
    assert_int_equal(before.n, 12);
    assert_int_equal(rank_of(&before, l, "f00"), 0);
    long f09 = rank_of(&before, l, "f09"), f05 = rank_of(&before, l, "f05");
    assert_true(f09 > 5);
    /* dislike the top track, like f09, skip f05 */
    assert_int_equal(mm_feedback_record(fb, "dana", "f00", "artist0", MM_FEEDBACK_DISLIKE, NULL), 0);
    assert_int_equal(mm_feedback_record(fb, "dana", "f09", "artist9", MM_FEEDBACK_LIKE, NULL), 0);
    assert_int_equal(mm_feedback_record(fb, "dana", "f05", "artist5", MM_FEEDBACK_SKIP, NULL), 0);
    mm_feedback_close(fb);
    /* reopened: the rules hold after a restart */
    assert_int_equal(mm_feedback_open(db, &fb, NULL), 0);
    assert_int_equal(mm_recommend(r, pr, &p, fb, &after, NULL), 0);
    assert_int_equal(after.n, 11);   /* the disliked one is gone for good */
    assert_int_equal(after.n_excluded, 1);
    assert_int_equal(rank_of(&after, l, "f00"), -1);
    assert_true(rank_of(&after, l, "f09") < f09);
    assert_true(rank_of(&after, l, "f09") <= 1);
    assert_non_null(strstr(after.items[rank_of(&after, l, "f09")].reason, "liked"));
    assert_true(rank_of(&after, l, "f05") > f05);   /* skipped: penalised */
    /* other users are unaffected */
    p.user = "erin";
    mm_rec_result other;
    assert_int_equal(mm_recommend(r, pr, &p, fb, &other, NULL), 0);
    assert_int_equal(other.n, 12);
    assert_int_equal(rank_of(&other, l, "f00"), 0);
    mm_rec_result_free(&other);
    /* artist bonus: erin likes f01 (artist0), so f00 (same artist) keeps rank 0
     * and gets the liked-artist note */
    assert_int_equal(mm_feedback_record(fb, "erin", "f01", "artist0", MM_FEEDBACK_LIKE, NULL), 0);
    assert_int_equal(mm_recommend(r, pr, &p, fb, &other, NULL), 0);
    assert_non_null(strstr(other.items[rank_of(&other, l, "f00")].reason, "artist"));
    mm_rec_result_free(&other);
    /* without a store, the user is ignored */
    p.user = "dana";
    assert_int_equal(mm_recommend(r, pr, &p, NULL, &other, NULL), 0);
    assert_int_equal(other.n, 12);
    mm_rec_result_free(&other);
    mm_rec_result_free(&before);
    mm_rec_result_free(&after);
    mm_feedback_close(fb);
    mm_recommender_free(r);
    mm_va_table_free(va);
    mm_library_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_and_fold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calibration_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feedback_in_recommendations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
