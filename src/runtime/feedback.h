/* feedback.h — per-user like / skip / dislike, stored in SQLite.
 *
 * A user's state per track is its latest like/dislike (a later like undoes
 * a dislike and vice versa) plus its skip count; an artist counts as liked
 * while one of its tracks is liked. Each event updates that state (one row
 * per user and track) and joins a history log that keeps the user's newest
 * MM_FEEDBACK_LOG_KEEP events, in a database opened in WAL mode, so they
 * survive restarts and readers do not block the writer: storage and the
 * cost of reading a user's preferences grow with the tracks they rated,
 * not with how many events they sent. The tracks served to each user
 * (their newest MM_FEEDBACK_SERVED_KEEP) and a count of their answers are
 * kept too, so that asking again brings other tracks. Only prepared
 * statements with bound parameters touch the database.
 * One connection per store guarded by a mutex: a store may be shared by
 * all threads of a server.
 */
#ifndef MM_FEEDBACK_H
#define MM_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef enum {
    MM_FEEDBACK_LIKE = 1,
    MM_FEEDBACK_SKIP = 2,
    MM_FEEDBACK_DISLIKE = 3,
} mm_feedback_action;

/* "like" / "skip" / "dislike" → action; 0 on success, MM_EINVAL otherwise
 * (message names the value and the choices). */
int mm_feedback_action_parse(const char *s, mm_feedback_action *out, mm_err *err);
const char *mm_feedback_action_name(mm_feedback_action a);

typedef struct mm_feedback mm_feedback;

/* Events kept per user in the history log (the state above is kept whole). */
#define MM_FEEDBACK_LOG_KEEP 1000

/* Open or create the database at path (schema created if missing; a file
 * that is not a SQLite database or has another schema is an error naming
 * it; a version-1 file, which kept only the event log, is folded into the
 * per-track state once, here). *out owned by caller (mm_feedback_close). */
int mm_feedback_open(const char *path, mm_feedback **out, mm_err *err);
/* Closes the connection (NULL is a no-op). Not while other threads use it. */
void mm_feedback_close(mm_feedback *fb);

/* Record an event. user and track_id: non-empty, ≤ 256 bytes, no control
 * characters; artist may be NULL or "". Thread-safe. */
int mm_feedback_record(mm_feedback *fb, const char *user, const char *track_id,
                       const char *artist, mm_feedback_action a, mm_err *err);

/* A user's current preferences (a snapshot): one entry per track the user
 * rated, whatever the number of events. Arrays malloc'd; release with
 * mm_feedback_prefs_free. Skip counts saturate at INT_MAX. */
typedef struct mm_feedback_prefs {
    size_t n_tracks;
    char **track_ids;       /* (n_tracks) sorted by strcmp */
    int *state;             /* (n_tracks) +1 liked, -1 disliked, 0 neither */
    int *skips;             /* (n_tracks) skip count */
    size_t n_artists;
    char **artists;         /* (n_artists) sorted; artists with a liked track */
    int *artist_likes;      /* (n_artists) number of their liked tracks */
} mm_feedback_prefs;

int mm_feedback_prefs_get(mm_feedback *fb, const char *user, mm_feedback_prefs *out,
                          mm_err *err);
void mm_feedback_prefs_free(mm_feedback_prefs *p);
/* Lookups in a snapshot (binary search): state (+1/-1/0) and skips of a
 * track, likes of an artist (0 when absent or artist NULL/""). */
int mm_feedback_prefs_track(const mm_feedback_prefs *p, const char *track_id, int *skips);
int mm_feedback_prefs_artist(const mm_feedback_prefs *p, const char *artist);

/* Tracks served to a user (recommendations answered), kept per user: the
 * newest MM_FEEDBACK_SERVED_KEEP, trimmed like the event log. */
#define MM_FEEDBACK_SERVED_KEEP 200

/* Record one answer to user: its n track ids in list order (n may be 0;
 * ids as for mm_feedback_record), keep the user's newest
 * MM_FEEDBACK_SERVED_KEEP served tracks, and count the answer. One
 * transaction. Thread-safe. */
int mm_feedback_served_add(mm_feedback *fb, const char *user, const char *const *track_ids, size_t n,
                           mm_err *err);

/* A user's recently served tracks (a snapshot). Release with
 * mm_feedback_recent_free. */
typedef struct mm_feedback_recent_list {
    size_t n;
    char **track_ids;       /* (n) newest first (within one answer, its last track first);
                               a track served twice appears twice */
    uint64_t answers;       /* answers recorded for the user so far (never trimmed) */
} mm_feedback_recent_list;

/* Up to max of user's served tracks, newest first, and their answer count;
 * an unknown user has none and 0 answers. *out written only on success.
 * Thread-safe. */
int mm_feedback_recent(mm_feedback *fb, const char *user, size_t max, mm_feedback_recent_list *out,
                       mm_err *err);
void mm_feedback_recent_free(mm_feedback_recent_list *r);

/* Per-user calibration clips (raw speech feature vectors, see
 * mm_bundle_calibration_clips) in the same database, per user and feature
 * pipeline (mm_bundle_pipeline_id): add one vector and keep only the newest
 * `keep` of that user and pipeline (one transaction); get up to `max` newest
 * of `dim` values into out (max, dim), their count in *k (rows of another
 * size are skipped). keep and max at most MM_CALIB_MAX_CLIPS. Thread-safe. */
#define MM_CALIB_MAX_CLIPS 1000
int mm_feedback_calib_add(mm_feedback *fb, const char *user, const char *pipeline, const float *vec, size_t dim,
                          size_t keep, mm_err *err);
int mm_feedback_calib_get(mm_feedback *fb, const char *user, const char *pipeline, size_t dim, size_t max, float *out,
                          size_t *k, mm_err *err);

#endif
