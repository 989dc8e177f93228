/* feedback.c — like / skip / dislike events per user in SQLite (WAL).
 *
 * Each event updates the user's aggregated state for that track in one
 * row of `prefs` (latest like/dislike wins, skips counted, latest non-empty
 * artist kept) and is appended to a history log `events` trimmed to the
 * user's newest MM_FEEDBACK_LOG_KEEP events, both in one transaction; so
 * reading a user's preferences costs one row per track they rated, never
 * their whole history. A version-1 database (events only) is folded into
 * `prefs` when opened. Every value reaches SQLite through bound parameters
 * of statements prepared once at open. The tracks served to each user go
 * to `served`, trimmed to their newest MM_FEEDBACK_SERVED_KEEP, and their
 * answers are counted in `served_users` (tables added to a v2 file when
 * missing; older readers ignore them). Leaves out expiry of old state and
 * cross-user statistics.
 */
#include "runtime/feedback.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FB_FORMAT "melodic-feedback"
#define FB_VERSION "2"
#define FB_MAX_ID 256

struct mm_feedback {
    sqlite3 *db;
    sqlite3_stmt *ins;      /* INSERT an event into the log */
    sqlite3_stmt *upd;      /* fold an event into prefs (upsert) */
    sqlite3_stmt *trim;     /* DELETE a user's log beyond the newest MM_FEEDBACK_LOG_KEEP */
    sqlite3_stmt *sel;      /* SELECT a user's prefs rows, by track */
    sqlite3_stmt *cal_ins;  /* INSERT a calibration vector */
    sqlite3_stmt *cal_del;  /* DELETE all but a user's newest `keep` vectors */
    sqlite3_stmt *cal_sel;  /* SELECT a user's newest vectors */
    sqlite3_stmt *srv_ins;  /* INSERT a served track */
    sqlite3_stmt *srv_trim; /* DELETE a user's served tracks beyond the newest MM_FEEDBACK_SERVED_KEEP */
    sqlite3_stmt *srv_cnt;  /* count one answer (upsert) */
    sqlite3_stmt *srv_sel;  /* SELECT a user's newest served tracks */
    sqlite3_stmt *srv_get;  /* SELECT a user's answer count */
    pthread_mutex_t lock;
    char *path;
};

int mm_feedback_action_parse(const char *s, mm_feedback_action *out, mm_err *err)
{
    if (s && !strcmp(s, "like")) { *out = MM_FEEDBACK_LIKE; return 0; }
    if (s && !strcmp(s, "skip")) { *out = MM_FEEDBACK_SKIP; return 0; }
    if (s && !strcmp(s, "dislike")) { *out = MM_FEEDBACK_DISLIKE; return 0; }
    return mm_err_set(err, MM_EINVAL, "feedback action '%s': expected like, skip or dislike",
                      s ? s : "(null)");
}

const char *mm_feedback_action_name(mm_feedback_action a)
{
    switch (a) {
    case MM_FEEDBACK_LIKE: return "like";
    case MM_FEEDBACK_SKIP: return "skip";
    case MM_FEEDBACK_DISLIKE: return "dislike";
    }
    return "?";
}

static int db_fail(mm_err *err, sqlite3 *db, const char *path, const char *what)
{
    return mm_err_set(err, MM_EIO, "%s: %s: %s", path, what, db ? sqlite3_errmsg(db) : "out of memory");
}

/* Run one statement without parameters (schema and pragmas only). */
static int exec_plain(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* 1 when a table named `name` exists, 0 when not, < 0 on error. */
static int has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) > 0 : -1;
    sqlite3_finalize(st);
    return r;
}

static int count_tables(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int r = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return r;
}

void mm_feedback_close(mm_feedback *fb)
{
    if (!fb) return;
    sqlite3_finalize(fb->ins);
    sqlite3_finalize(fb->upd);
    sqlite3_finalize(fb->trim);
    sqlite3_finalize(fb->sel);
    sqlite3_finalize(fb->cal_ins);
    sqlite3_finalize(fb->cal_del);
    sqlite3_finalize(fb->cal_sel);
    sqlite3_finalize(fb->srv_ins);
    sqlite3_finalize(fb->srv_trim);
    sqlite3_finalize(fb->srv_cnt);
    sqlite3_finalize(fb->srv_sel);
    sqlite3_finalize(fb->srv_get);
    sqlite3_close(fb->db);
    pthread_mutex_destroy(&fb->lock);
    free(fb->path);
    free(fb);
}

/* Fold one event into the user's prefs row (the upsert prepared at open).
 * Caller holds the lock or is opening; inside a transaction. SQLite code. */
static int fold_event(mm_feedback *fb, const char *user, const char *track, const char *artist, int action)
{
    sqlite3_reset(fb->upd);
    sqlite3_bind_text(fb->upd, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(fb->upd, 2, track, -1, SQLITE_STATIC);
    sqlite3_bind_text(fb->upd, 3, artist, -1, SQLITE_STATIC);
    sqlite3_bind_int(fb->upd, 4, action);
    int s = sqlite3_step(fb->upd);
    sqlite3_reset(fb->upd);
    sqlite3_clear_bindings(fb->upd);
    return s;
}

/* Version 1 kept events only: fold them all into prefs in their order
 * (the same upsert as mm_feedback_record, so the state is what v1 folded at
 * every read), trim each user's log, and mark the file version 2. One
 * transaction: an interrupted migration leaves a v1 file. */
static int migrate_v1(mm_feedback *fb, mm_err *err)
{
    if (exec_plain(fb->db, "BEGIN IMMEDIATE") != SQLITE_OK) return db_fail(err, fb->db, fb->path, "cannot migrate v1");
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(fb->db, "SELECT user, track, artist, action FROM events ORDER BY id", -1, &st,
                                NULL) == SQLITE_OK &&
             exec_plain(fb->db, "DELETE FROM prefs") == SQLITE_OK;
    int s = SQLITE_DONE;
    while (ok && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *u = (const char *)sqlite3_column_text(st, 0), *t = (const char *)sqlite3_column_text(st, 1);
        const char *a = (const char *)sqlite3_column_text(st, 2);
        ok = fold_event(fb, u ? u : "", t ? t : "", a ? a : "", sqlite3_column_int(st, 3)) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    char sql[320];
    snprintf(sql, sizeof sql, "DELETE FROM events WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER"
             " (PARTITION BY user ORDER BY id DESC) AS rn FROM events) WHERE rn > %d);"
             "UPDATE melodic_meta SET value='" FB_VERSION "' WHERE key='version';", MM_FEEDBACK_LOG_KEEP);
    ok = ok && s == SQLITE_DONE && exec_plain(fb->db, sql) == SQLITE_OK &&
         exec_plain(fb->db, "COMMIT") == SQLITE_OK;
    if (ok) return 0;
    int rc = db_fail(err, fb->db, fb->path, "cannot migrate the v1 events");
    exec_plain(fb->db, "ROLLBACK");
    return rc;
}

int mm_feedback_open(const char *path, mm_feedback **out, mm_err *err)
{
    if (!path || !*path) return mm_err_set(err, MM_EINVAL, "feedback database: empty path");
    mm_feedback *fb = mm_calloc(1, sizeof *fb, err);
    if (!fb) return MM_ENOMEM;
    pthread_mutex_init(&fb->lock, NULL);
    int rc = 0;
    if (!(fb->path = strdup(path))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto fail; }
    if (sqlite3_open_v2(path, &fb->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = db_fail(err, fb->db, path, "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(fb->db, 5000);
    /* The first read tells a database from another kind of file. */
    int n_tables = count_tables(fb->db);
    if (n_tables < 0) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: not a SQLite database (%s)", path, sqlite3_errmsg(fb->db));
        goto fail;
    }
    int meta = has_table(fb->db, "melodic_meta");
    if (n_tables > 0 && meta != 1) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: a SQLite database of another kind (no melodic_meta table)", path);
        goto fail;
    }
    if (exec_plain(fb->db, "PRAGMA journal_mode=WAL") != SQLITE_OK ||
        exec_plain(fb->db, "PRAGMA synchronous=NORMAL") != SQLITE_OK) {
        rc = db_fail(err, fb->db, path, "cannot switch to WAL");
        goto fail;
    }
    if (exec_plain(fb->db,
                   "BEGIN;"
                   "CREATE TABLE IF NOT EXISTS melodic_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                   "INSERT OR IGNORE INTO melodic_meta VALUES('format','" FB_FORMAT "'),('version','" FB_VERSION "');"
                   "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
                   " user TEXT NOT NULL, track TEXT NOT NULL, artist TEXT NOT NULL DEFAULT '',"
                   " action INTEGER NOT NULL CHECK(action IN (1,2,3)), ts INTEGER NOT NULL);"
                   "CREATE INDEX IF NOT EXISTS events_user ON events(user, id);"
                   "CREATE TABLE IF NOT EXISTS prefs(user TEXT NOT NULL, track TEXT NOT NULL,"
                   " artist TEXT NOT NULL DEFAULT '', state INTEGER NOT NULL DEFAULT 0,"
                   " skips INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(user, track)) WITHOUT ROWID;"
                   "CREATE TABLE IF NOT EXISTS speaker_clips(id INTEGER PRIMARY KEY AUTOINCREMENT,"
                   " user TEXT NOT NULL, pipeline TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL,"
                   " ts INTEGER NOT NULL);"
                   "CREATE INDEX IF NOT EXISTS speaker_clips_user ON speaker_clips(user, pipeline, id);"
                   "CREATE TABLE IF NOT EXISTS served(id INTEGER PRIMARY KEY AUTOINCREMENT,"
                   " user TEXT NOT NULL, track TEXT NOT NULL, ts INTEGER NOT NULL);"
                   "CREATE INDEX IF NOT EXISTS served_user ON served(user, id);"
                   "CREATE TABLE IF NOT EXISTS served_users(user TEXT PRIMARY KEY,"
                   " answers INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
                   "COMMIT;") != SQLITE_OK) {
        rc = db_fail(err, fb->db, path, "cannot create the schema");
        exec_plain(fb->db, "ROLLBACK");
        goto fail;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(fb->db, "SELECT key, value FROM melodic_meta WHERE key IN ('format','version')",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, fb->db, path, "cannot read melodic_meta");
        goto fail;
    }
    int ok_format = 0, version = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (k && v && !strcmp(k, "format")) ok_format = !strcmp(v, FB_FORMAT);
        if (k && v && !strcmp(k, "version")) version = !strcmp(v, "1") ? 1 : !strcmp(v, FB_VERSION) ? 2 : 0;
    }
    sqlite3_finalize(st);
    if (!ok_format || !version) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: not a %s v1 or v%s database", path, FB_FORMAT, FB_VERSION);
        goto fail;
    }
    if (sqlite3_prepare_v2(fb->db, "INSERT INTO events(user, track, artist, action, ts) VALUES(?1,?2,?3,?4,?5)",
                           -1, &fb->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "INSERT INTO prefs(user, track, artist, state, skips)"
                           " VALUES(?1, ?2, ?3, CASE ?4 WHEN 1 THEN 1 WHEN 3 THEN -1 ELSE 0 END, ?4 = 2)"
                           " ON CONFLICT(user, track) DO UPDATE SET"
                           " artist = CASE WHEN excluded.artist <> '' THEN excluded.artist ELSE artist END,"
                           " state = CASE ?4 WHEN 2 THEN state ELSE excluded.state END,"
                           " skips = min(skips + excluded.skips, 2147483647)",
                           -1, &fb->upd, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "DELETE FROM events WHERE user=?1 AND id <= "
                           "(SELECT id FROM events WHERE user=?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                           -1, &fb->trim, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "SELECT track, artist, state, skips FROM prefs WHERE user=?1 ORDER BY track",
                           -1, &fb->sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "INSERT INTO speaker_clips(user, pipeline, dim, vec, ts) VALUES(?1,?2,?3,?4,?5)",
                           -1, &fb->cal_ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "DELETE FROM speaker_clips WHERE user=?1 AND pipeline=?2 AND id NOT IN "
                           "(SELECT id FROM speaker_clips WHERE user=?1 AND pipeline=?2 ORDER BY id DESC LIMIT ?3)",
                           -1, &fb->cal_del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "SELECT dim, vec FROM speaker_clips WHERE user=?1 AND pipeline=?2 "
                           "ORDER BY id DESC LIMIT ?3", -1, &fb->cal_sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "INSERT INTO served(user, track, ts) VALUES(?1,?2,?3)", -1, &fb->srv_ins,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "DELETE FROM served WHERE user=?1 AND id <= "
                           "(SELECT id FROM served WHERE user=?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                           -1, &fb->srv_trim, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "INSERT INTO served_users(user, answers) VALUES(?1, 1) ON CONFLICT(user) DO UPDATE"
                           " SET answers = answers + 1", -1, &fb->srv_cnt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "SELECT track FROM served WHERE user=?1 ORDER BY id DESC LIMIT ?2", -1,
                           &fb->srv_sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fb->db, "SELECT answers FROM served_users WHERE user=?1", -1, &fb->srv_get,
                           NULL) != SQLITE_OK) {
        rc = db_fail(err, fb->db, path, "cannot prepare statements");
        goto fail;
    }
    if (version == 1 && (rc = migrate_v1(fb, err))) goto fail;
    *out = fb;
    return 0;
fail:
    mm_feedback_close(fb);
    return rc;
}

/* Run a statement whose ?1 is a user and ?2, when keep >= 0, a count (the
 * trims and the answer count); 1 when it completed. Caller holds the lock. */
static int step_user(sqlite3_stmt *st, const char *user, int keep)
{
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (keep >= 0) sqlite3_bind_int(st, 2, keep);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_reset(st);
    return ok;
}

/* End a write transaction: COMMIT when ok (the steps before succeeded),
 * else, or when COMMIT fails, ROLLBACK and an error saying `what` failed.
 * Caller holds the lock. 0 or MM_EIO. */
static int finish_write(mm_feedback *fb, int ok, const char *what, mm_err *err)
{
    if (ok && exec_plain(fb->db, "COMMIT") == SQLITE_OK) return 0;
    int rc = db_fail(err, fb->db, fb->path, what);
    exec_plain(fb->db, "ROLLBACK");
    return rc;
}

static int check_id(const char *what, const char *s, int may_be_empty, mm_err *err)
{
    if (!s || !*s) {
        if (may_be_empty) return 0;
        return mm_err_set(err, MM_EINVAL, "feedback: %s is empty", what);
    }
    size_t n = strlen(s);
    if (n > FB_MAX_ID)
        return mm_err_set(err, MM_EINVAL, "feedback: %s is %zu bytes long, at most %d allowed", what, n, FB_MAX_ID);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return mm_err_set(err, MM_EINVAL, "feedback: %s contains a control character", what);
    return 0;
}

int mm_feedback_record(mm_feedback *fb, const char *user, const char *track_id,
                       const char *artist, mm_feedback_action a, mm_err *err)
{
    int rc;
    if ((rc = check_id("user id", user, 0, err))) return rc;
    if ((rc = check_id("track id", track_id, 0, err))) return rc;
    if ((rc = check_id("artist", artist, 1, err))) return rc;
    if (a != MM_FEEDBACK_LIKE && a != MM_FEEDBACK_SKIP && a != MM_FEEDBACK_DISLIKE)
        return mm_err_set(err, MM_EINVAL, "feedback: action %d: expected like, skip or dislike", (int)a);
    pthread_mutex_lock(&fb->lock);
    int ok = exec_plain(fb->db, "BEGIN IMMEDIATE") == SQLITE_OK;
    if (ok) {
        sqlite3_reset(fb->ins);
        sqlite3_clear_bindings(fb->ins);
        sqlite3_bind_text(fb->ins, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(fb->ins, 2, track_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(fb->ins, 3, artist ? artist : "", -1, SQLITE_STATIC);
        sqlite3_bind_int(fb->ins, 4, (int)a);
        sqlite3_bind_int64(fb->ins, 5, (sqlite3_int64)time(NULL));
        ok = sqlite3_step(fb->ins) == SQLITE_DONE;
        sqlite3_reset(fb->ins);
    }
    ok = ok && fold_event(fb, user, track_id, artist ? artist : "", (int)a) == SQLITE_DONE;
    /* the log keeps the user's newest MM_FEEDBACK_LOG_KEEP events */
    ok = ok && step_user(fb->trim, user, MM_FEEDBACK_LOG_KEEP);
    rc = finish_write(fb, ok, "cannot record feedback", err);
    pthread_mutex_unlock(&fb->lock);
    return rc;
}

void mm_feedback_prefs_free(mm_feedback_prefs *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_tracks; i++) free(p->track_ids[i]);
    for (size_t i = 0; i < p->n_artists; i++) free(p->artists[i]);
    free(p->track_ids);
    free(p->state);
    free(p->skips);
    free(p->artists);
    free(p->artist_likes);
    memset(p, 0, sizeof *p);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append a copy of s to a growing string array; 0 or -1 (out of memory). */
static int push_str(char ***arr, size_t *n, size_t *cap, const char *s)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        char **na = realloc(*arr, nc * sizeof *na);
        if (!na) return -1;
        *arr = na;
        *cap = nc;
    }
    if (!((*arr)[*n] = strdup(s))) return -1;
    ++*n;
    return 0;
}

/* Double the room of p's track arrays (cap entries now); 0 or -1. */
static int grow_prefs(mm_feedback_prefs *p, size_t *cap)
{
    size_t nc = *cap ? 2 * *cap : 64;
    char **ni = realloc(p->track_ids, nc * sizeof *ni);
    if (ni) p->track_ids = ni;
    int *ns = ni ? realloc(p->state, nc * sizeof *ns) : NULL;
    if (ns) p->state = ns;
    int *nk = ns ? realloc(p->skips, nc * sizeof *nk) : NULL;
    if (!nk) return -1;
    p->skips = nk;
    *cap = nc;
    return 0;
}

int mm_feedback_prefs_get(mm_feedback *fb, const char *user, mm_feedback_prefs *out, mm_err *err)
{
    int rc = check_id("user id", user, 0, err);
    if (rc) return rc;
    mm_feedback_prefs p = {0};
    size_t cap = 0, n_liked = 0, cap_liked = 0;
    char **liked = NULL;   /* (n_liked) artists of liked tracks, with repeats */
    pthread_mutex_lock(&fb->lock);
    sqlite3_reset(fb->sel);
    sqlite3_bind_text(fb->sel, 1, user, -1, SQLITE_STATIC);
    int s;
    /* rows come in track order (the primary key), which is strcmp order for UTF-8 */
    while ((s = sqlite3_step(fb->sel)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(fb->sel, 0);
        const char *a = (const char *)sqlite3_column_text(fb->sel, 1);
        int state = sqlite3_column_int(fb->sel, 2);
        if (p.n_tracks == cap && grow_prefs(&p, &cap)) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
        size_t k = p.n_tracks;
        if (!(p.track_ids[k] = strdup(t ? t : ""))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); break; }
        p.state[k] = state > 0 ? 1 : state < 0 ? -1 : 0;
        p.skips[k] = sqlite3_column_int(fb->sel, 3);
        p.n_tracks++;
        if (p.state[k] == 1 && a && a[0] && push_str(&liked, &n_liked, &cap_liked, a)) {
            rc = mm_err_set(err, MM_ENOMEM, "out of memory");
            break;
        }
    }
    if (!rc && s != SQLITE_DONE) rc = db_fail(err, fb->db, fb->path, "cannot read feedback");
    sqlite3_reset(fb->sel);
    pthread_mutex_unlock(&fb->lock);
    if (rc) goto done;
    /* liked artists: distinct, sorted, with their number of liked tracks */
    if (n_liked) qsort(liked, n_liked, sizeof *liked, str_cmp);
    size_t n_ar = 0;
    for (size_t i = 0; i < n_liked; i++) n_ar += i == 0 || strcmp(liked[i], liked[i - 1]);
    p.artists = calloc(n_ar ? n_ar : 1, sizeof *p.artists);
    p.artist_likes = calloc(n_ar ? n_ar : 1, sizeof *p.artist_likes);
    if (!p.artists || !p.artist_likes) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < n_liked; i++) {
        if (i == 0 || strcmp(liked[i], p.artists[p.n_artists - 1])) {
            p.artists[p.n_artists++] = liked[i];
            liked[i] = NULL;   /* moved */
        }
        p.artist_likes[p.n_artists - 1]++;
    }
done:
    for (size_t i = 0; i < n_liked; i++) free(liked[i]);
    free(liked);
    if (rc) { mm_feedback_prefs_free(&p); return rc; }
    *out = p;
    return 0;
}

static long bsearch_str(char *const *arr, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(arr[mid], key);
        if (!c) return (long)mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

int mm_feedback_prefs_track(const mm_feedback_prefs *p, const char *track_id, int *skips)
{
    long i = p && track_id ? bsearch_str(p->track_ids, p->n_tracks, track_id) : -1;
    if (skips) *skips = i >= 0 ? p->skips[i] : 0;
    return i >= 0 ? p->state[i] : 0;
}

int mm_feedback_prefs_artist(const mm_feedback_prefs *p, const char *artist)
{
    if (!p || !artist || !*artist) return 0;
    long i = bsearch_str(p->artists, p->n_artists, artist);
    return i >= 0 ? p->artist_likes[i] : 0;
}

int mm_feedback_served_add(mm_feedback *fb, const char *user, const char *const *track_ids, size_t n,
                           mm_err *err)
{
    int rc = check_id("user id", user, 0, err);
    if (rc) return rc;
    if (n && !track_ids) return mm_err_set(err, MM_EINVAL, "feedback: %zu served tracks but no list", n);
    for (size_t i = 0; i < n; i++)
        if ((rc = check_id("served track id", track_ids[i], 0, err))) return rc;
    pthread_mutex_lock(&fb->lock);
    int ok = exec_plain(fb->db, "BEGIN IMMEDIATE") == SQLITE_OK;
    sqlite3_int64 now = (sqlite3_int64)time(NULL);
    for (size_t i = 0; ok && i < n; i++) {
        sqlite3_reset(fb->srv_ins);
        sqlite3_bind_text(fb->srv_ins, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(fb->srv_ins, 2, track_ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(fb->srv_ins, 3, now);
        ok = sqlite3_step(fb->srv_ins) == SQLITE_DONE;
        sqlite3_reset(fb->srv_ins);
    }
    /* keep the user's newest MM_FEEDBACK_SERVED_KEEP; count the answer */
    ok = ok && (!n || step_user(fb->srv_trim, user, MM_FEEDBACK_SERVED_KEEP)) && step_user(fb->srv_cnt, user, -1);
    rc = finish_write(fb, ok, "cannot record served tracks", err);
    pthread_mutex_unlock(&fb->lock);
    return rc;
}

void mm_feedback_recent_free(mm_feedback_recent_list *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free(r->track_ids[i]);
    free(r->track_ids);
    memset(r, 0, sizeof *r);
}

int mm_feedback_recent(mm_feedback *fb, const char *user, size_t max, mm_feedback_recent_list *out, mm_err *err)
{
    int rc = check_id("user id", user, 0, err);
    if (rc) return rc;
    mm_feedback_recent_list r = {0};
    size_t cap = 0;
    pthread_mutex_lock(&fb->lock);
    /* one read transaction: the count and the tracks of the same moment */
    int ok = exec_plain(fb->db, "BEGIN") == SQLITE_OK, s = SQLITE_DONE;
    if (ok) {
        sqlite3_reset(fb->srv_get);
        sqlite3_bind_text(fb->srv_get, 1, user, -1, SQLITE_STATIC);
        s = sqlite3_step(fb->srv_get);
        if (s == SQLITE_ROW) r.answers = (uint64_t)sqlite3_column_int64(fb->srv_get, 0);
        ok = s == SQLITE_ROW || s == SQLITE_DONE;
        sqlite3_reset(fb->srv_get);
    }
    if (ok && max) {
        sqlite3_reset(fb->srv_sel);
        sqlite3_bind_text(fb->srv_sel, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(fb->srv_sel, 2, max > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
        while ((s = sqlite3_step(fb->srv_sel)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(fb->srv_sel, 0);
            if (push_str(&r.track_ids, &r.n, &cap, t ? t : "")) {
                rc = mm_err_set(err, MM_ENOMEM, "out of memory");
                break;
            }
        }
        ok = s == SQLITE_DONE;
        sqlite3_reset(fb->srv_sel);
    }
    exec_plain(fb->db, ok ? "COMMIT" : "ROLLBACK");
    if (!ok && !rc) rc = db_fail(err, fb->db, fb->path, "cannot read served tracks");
    pthread_mutex_unlock(&fb->lock);
    if (rc) {
        mm_feedback_recent_free(&r);
        return rc;
    }
    *out = r;
    return 0;
}

int mm_feedback_calib_add(mm_feedback *fb, const char *user, const char *pipeline, const float *vec, size_t dim,
                          size_t keep, mm_err *err)
{
    int rc = check_id("user", user, 0, err);
    if (rc) return rc;
    if (!pipeline || !vec || dim == 0 || dim > (1u << 20) || keep == 0 || keep > MM_CALIB_MAX_CLIPS)
        return mm_err_set(err, MM_EINVAL, "calibration: %zu values, keep %zu: expected 1..1048576 values and keep 1..%d",
                          dim, keep, MM_CALIB_MAX_CLIPS);
    pthread_mutex_lock(&fb->lock);
    int ok = exec_plain(fb->db, "BEGIN IMMEDIATE") == SQLITE_OK;
    if (ok) {
        sqlite3_reset(fb->cal_ins);
        sqlite3_bind_text(fb->cal_ins, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(fb->cal_ins, 2, pipeline, -1, SQLITE_STATIC);
        sqlite3_bind_int64(fb->cal_ins, 3, (sqlite3_int64)dim);
        sqlite3_bind_blob(fb->cal_ins, 4, vec, (int)(dim * sizeof *vec), SQLITE_STATIC);
        sqlite3_bind_int64(fb->cal_ins, 5, (sqlite3_int64)time(NULL));
        ok = sqlite3_step(fb->cal_ins) == SQLITE_DONE;
        sqlite3_reset(fb->cal_ins);
    }
    if (ok) {   /* keep the user's newest `keep` clips of this pipeline */
        sqlite3_reset(fb->cal_del);
        sqlite3_bind_text(fb->cal_del, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(fb->cal_del, 2, pipeline, -1, SQLITE_STATIC);
        sqlite3_bind_int64(fb->cal_del, 3, (sqlite3_int64)keep);
        ok = sqlite3_step(fb->cal_del) == SQLITE_DONE;
        sqlite3_reset(fb->cal_del);
    }
    rc = finish_write(fb, ok, "cannot store a calibration clip", err);
    pthread_mutex_unlock(&fb->lock);
    return rc;
}

int mm_feedback_calib_get(mm_feedback *fb, const char *user, const char *pipeline, size_t dim, size_t max, float *out,
                          size_t *k, mm_err *err)
{
    *k = 0;
    int rc = check_id("user", user, 0, err);
    if (rc) return rc;
    if (!pipeline || max > MM_CALIB_MAX_CLIPS)
        return mm_err_set(err, MM_EINVAL, "calibration: at most %d clips, asked for %zu", MM_CALIB_MAX_CLIPS, max);
    pthread_mutex_lock(&fb->lock);
    sqlite3_reset(fb->cal_sel);
    sqlite3_bind_text(fb->cal_sel, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(fb->cal_sel, 2, pipeline, -1, SQLITE_STATIC);
    sqlite3_bind_int64(fb->cal_sel, 3, (sqlite3_int64)max);
    int st = SQLITE_DONE;
    while (*k < max && (st = sqlite3_step(fb->cal_sel)) == SQLITE_ROW) {
        /* a damaged row (other size) is skipped, not mixed in */
        if ((size_t)sqlite3_column_int64(fb->cal_sel, 0) != dim) continue;
        const void *b = sqlite3_column_blob(fb->cal_sel, 1);
        if (!b || (size_t)sqlite3_column_bytes(fb->cal_sel, 1) != dim * sizeof *out) continue;
        memcpy(out + *k * dim, b, dim * sizeof *out);
        ++*k;
    }
    if (st != SQLITE_ROW && st != SQLITE_DONE) rc = db_fail(err, fb->db, fb->path, "cannot read calibration clips");
    sqlite3_reset(fb->cal_sel);
    pthread_mutex_unlock(&fb->lock);
    return rc;
}
