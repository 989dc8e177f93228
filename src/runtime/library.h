/* library.h — the indexed music library (HDF5 format "melodic-library", v2; v1 read).
 *
 * `melodic index` runs a music bundle over a folder or a manifest and keeps,
 * per track: path, artist and title (metadata CSV, else the file's tags, else
 * the file name), duration, class probabilities, a valence–arousal estimate,
 * the embedding (the bundle's scaled feature vector) for similarity, the
 * content hash used as the track id, and the annotated label when the folder
 * layout gives one (<root>/<label>/<file>, e.g. 4Q's Q1..Q4) for evaluation.
 * Re-indexing into an existing library reuses tracks whose size, mtime and
 * SHA-256 are unchanged and drops files that disappeared; unreadable files
 * are listed with their reasons.
 * Layout v2 (every per-track array contiguous and memory-mapped on opening,
 * so opening costs O(N) cheap checks, not a copy): attributes format,
 * format_version, model, bundle_sha256, source, created, embedding_dim (D),
 * grid; /classes/names (K), /classes/va (K, 2); /tracks/text (NUL-terminated
 * path, id, artist, title, true_label of each track) with text_offset (N, 5)
 * i64, size, mtime (i64, N), duration (f64, N), proba (N, K), va (N, 2),
 * confidence (N) f32, quadrant, top_class (i32, N), by_id, by_path,
 * by_artist (i64, N) sort orders; /index/sim (N, k) i8 and sim_inv_norm (N)
 * f32: the embeddings reduced to k ≤ MM_PCA_DIM = 128 principal directions
 * (pca.h), /index/basis (D, k) when reduced; /index/order (N) i32 and
 * cell_start (4·G² + 1) i64: the valence–arousal grid (vaindex.h);
 * /failed/{path, reason} strings when any; windowed libraries (attributes
 * window_s, hop_s) add /tracks/segment_start (N) f64, /tracks/traj_offset
 * (N + 1) i64 and /tracks/trajectory (M, 2) f32: each track's windows'
 * valence–arousal points. The full embeddings are not kept.
 * v1 (vlen strings, /tracks/embedding (N, D)) is read and indexed in memory.
 * A loaded library is read-only: share it between threads.
 */
#ifndef MM_LIBRARY_H
#define MM_LIBRARY_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/h5.h"
#include "runtime/bundle.h"
#include "runtime/va.h"
#include "runtime/vaindex.h"

#define MM_LIBRARY_FORMAT "melodic-library"
#define MM_LIBRARY_VERSION 2
#define MM_LIBRARY_MAX_TRACKS 100000000u   /* 10^8 */

/* One track, as stored. Strings are never NULL ("" when unknown). */
typedef struct mm_library_track {
    char *path;             /* absolute (libraries that stored paths relative to the cwd of
                               `melodic index` are resolved when read: mm_library_open) */
    char *id;               /* hex SHA-256 of the file's bytes (64 chars): the track id */
    char *artist;
    char *title;
    char *true_label;       /* annotated label (folder name or manifest column), "" when none */
    int64_t size;           /* bytes */
    int64_t mtime;          /* seconds since the epoch */
    double duration;        /* seconds, as decoded */
    float *proba;           /* (n_classes) music model probabilities */
    float *embedding;       /* (dim) scaled feature vector; NULL when read from a v2 file
                               (similarity: mm_library_sim, mm_library_cosine) */
    mm_va va;               /* Σ p_k · point(class k) */
    int top_class;          /* argmax proba (lowest index on ties) */
    int quadrant;           /* 1..4: quadrant of the top class's point */
    float confidence;       /* proba[top_class] */
    /* windowed indexing (mm_library_index_params.window_s > 0; proba and the
       embedding are then the means over the windows) */
    size_t n_windows;       /* windows classified; 0: the file classified as one clip */
    const mm_va *trajectory;/* (n_windows) valence–arousal point per window, in time order, or NULL */
    double segment_start;   /* seconds: start of the best-representing window (windows.h), 0 when none */
} mm_library_track;

typedef struct mm_library mm_library;

/* Open a library file; checks format, shapes (per-track arrays of one length,
 * similarity vectors of the stated dimension), value ranges (probabilities
 * finite, quadrants 1..4), unique ids and the index; errors name the file
 * and dataset. *out owned by
 * caller (mm_library_free). Reads HDF5: call from one thread at a time.
 * Track paths come out absolute: a relative one (written before paths were
 * stored absolute) is taken from the working directory when the file is
 * there, else from the library file's folder when it is there (else it is
 * kept as stored). */
int mm_library_open(const char *path, mm_library **out, mm_err *err);
/* The same from an open HDF5 file or group (`name`, the library's file name,
 * is used in messages and to resolve relative track paths). */
int mm_library_read(hid_t loc, const char *name, mm_library **out, mm_err *err);
void mm_library_free(mm_library *l);

size_t mm_library_size(const mm_library *l);
int mm_library_n_classes(const mm_library *l);
const char *mm_library_class_name(const mm_library *l, int k);
/* Points of the classes as used at indexing time. */
mm_va mm_library_class_va(const mm_library *l, int k);
size_t mm_library_dim(const mm_library *l);
/* Track i (< size); NULL when out of range. The pointer lives as long as l. */
const mm_library_track *mm_library_track_at(const mm_library *l, size_t i);
/* Tracks of an artist (exact match; "" or NULL: none): their count, and
 * *idx pointing at their indices (ascending), valid as long as l. */
size_t mm_library_artist_tracks(const mm_library *l, const char *artist, const size_t **idx);
/* Per-track fields without the track struct (the recommender's inner loop;
 * i < size, not checked): valence–arousal point, confidence, quadrant 1..4,
 * artist and id ("" when unknown; valid as long as l). */
mm_va mm_library_point(const mm_library *l, size_t i);
float mm_library_confidence(const mm_library *l, size_t i);
int mm_library_quadrant(const mm_library *l, size_t i);
const char *mm_library_artist(const mm_library *l, size_t i);
const char *mm_library_id(const mm_library *l, size_t i);
/* A number per artist: equal for tracks of the same artist, −1 for none. */
int32_t mm_library_artist_id(const mm_library *l, size_t i);
/* mm_library_artist_id of the track at position pos of the VA index's
 * order (pos < size, not checked): read in sequence by an index walk. */
int32_t mm_library_artist_id_at(const mm_library *l, size_t pos);
/* Dimension k of the similarity vectors (≤ MM_PCA_DIM, or D when D is smaller). */
size_t mm_library_sim_dim(const mm_library *l);
/* Track i's int8 similarity vector (k) and its 1/‖q‖; NULL when out of range. */
const int8_t *mm_library_sim(const mm_library *l, size_t i, float *inv_norm);
/* Track i's 1/‖q‖ (i < size, not checked). */
float mm_library_sim_inv(const mm_library *l, size_t i);
/* A hint only: start loading track i's similarity vector and 1/‖q‖ into the
 * cache (nothing for i out of range). */
void mm_library_prefetch_sim(const mm_library *l, size_t i);
/* Cosine of tracks a and b (< size) from their similarity vectors. */
float mm_library_cosine(const mm_library *l, size_t a, size_t b);
/* The valence–arousal index over the tracks (groups: quadrants). */
const mm_vaindex *mm_library_vaindex(const mm_library *l);
/* Index of the track with this id (or path; a relative path is also tried
 * made absolute against the working directory), or -1. */
long mm_library_find(const mm_library *l, const char *id_or_path);
/* Files that could not be indexed, with one-line reasons. */
size_t mm_library_n_failed(const mm_library *l);
int mm_library_failed(const mm_library *l, size_t i, const char **path, const char **reason);
/* Window length and hop (seconds) the library was indexed with; 0 and 0
 * when each file was classified as one clip. */
double mm_library_window(const mm_library *l, double *hop);
/* Name of the bundle's model and the bundle's SHA-256 (hex) at indexing time. */
const char *mm_library_model_name(const mm_library *l);
const char *mm_library_bundle_sha256(const mm_library *l);

/* 1 when file tags are read with TagLib (built with pkg-config taglib_c),
 * 0 when only libsndfile's are (WAV INFO, FLAC and Ogg Vorbis comments). */
int mm_library_has_taglib(void);
/* Build a library in memory from tracks (deep-copied; va, top_class,
 * quadrant and confidence are recomputed from proba and class_va; similarity
 * vectors and the index built). For tests and tools; n_classes ≥ 1, dim ≥ 1,
 * n ≤ 10^8; ids unique, embeddings finite (errors name the track). */
int mm_library_from_tracks(const mm_library_track *tracks, size_t n, int n_classes,
                           const char *const *class_names, const mm_va *class_va, size_t dim,
                           mm_library **out, mm_err *err);
/* Write atomically (temp file + rename). */
int mm_library_save(const mm_library *l, const char *path, mm_err *err);

typedef struct mm_library_index_params {
    const char *metadata;   /* metadata CSV (artist, title joined on the file stem via
                               key_column); NULL: <DIR>/metadata.csv when present */
    const char *key_column; /* NULL: "song" if the CSV has it, else "stem", "file", "path" */
    const char *const *extensions;  /* NULL-terminated, lower case without dot;
                                       NULL: wav flac mp3 ogg oga opus aif aiff */
    int reuse;              /* 1: reuse unchanged tracks of an existing out_path (default 1) */
    double window_s;        /* > 0: cut each file into windows of this length (the music model's
                               training clip) and classify each (windows.h); 0 (default): each
                               file as one clip. A file shorter than a window is one window. */
    double hop_s;           /* window step (≤ 0: window_s / 2) */
    int n_threads;          /* OpenMP threads over files (≤ 0: default) */
    /* Called after each file, one call at a time (under a lock, from any of the
       indexing threads; may be NULL): done/total. */
    void (*progress)(void *ctx, size_t done, size_t total, const char *path);
    void *progress_ctx;
} mm_library_index_params;

void mm_library_index_params_default(mm_library_index_params *p);

typedef struct mm_library_index_stats {
    size_t n_files;         /* audio files found */
    size_t n_indexed;       /* tracks in the new library */
    size_t n_new;           /* classified this time (new or changed) */
    size_t n_unchanged;     /* reused from the previous library */
    size_t n_removed;       /* in the previous library, gone now */
    size_t n_failed;        /* listed with reasons */
    size_t n_short;         /* windowed: tracks more than hop/2 shorter than the window (each classified
                               as one window of the whole track; a shorter gap is the tail windows.h drops) */
    double audio_s;         /* seconds of audio classified this time (the new tracks' durations) */
} mm_library_index_stats;

/* Index `source` (a folder, searched recursively, or a manifest CSV with a
 * `path` column and optional artist, title, label columns; relative paths
 * are taken from the manifest's folder; all stored absolute) with bundle b (opened from
 * bundle_path, whose SHA-256 is recorded: a different bundle re-classifies
 * everything) and write out_path atomically. va maps the bundle's classes
 * to points (Q1..Q4 need no table; other label sets need their words in
 * it); an unmapped class is an error before any file is read. Unreadable
 * files are not fatal. Parallel over files, result independent of thread
 * count. stats may be NULL. */
int mm_library_index(const mm_bundle *b, const char *bundle_path, const mm_va_table *va,
                     const char *source, const char *out_path,
                     const mm_library_index_params *p, mm_library_index_stats *stats,
                     mm_err *err);

/* Scale-out (library_dist.c), with the same library as mm_library_index:
 * every dataset equal, the PCA basis, int8 vectors and valence–arousal grid
 * computed over all tracks after gathering them.
 * mm_library_index_shard: only share shard_index of shard_count (1-based;
 * files dealt largest first to the share with the fewest bytes, as
 * `melodic extract --shard`: mpi/shard.h) into part_path, a part file
 * (format melodic-library-part: the run's classes, bundle, windows and a
 * fingerprint of the file list, and each file's result) written
 * atomically. A previous library is not reused. More shards than files is
 * an error. stats: this share's files. */
int mm_library_index_shard(const mm_bundle *b, const char *bundle_path, const mm_va_table *va, const char *source,
                           const char *part_path, int shard_index, int shard_count,
                           const mm_library_index_params *p, mm_library_index_stats *stats, mm_err *err);
/* The parts of one run (each shard once, any order) into out_path. Refused
 * with one line, before writing: a file that is not a part, parts of
 * different runs (file lists, bundles, classes, windows or shard counts
 * differ), a shard given twice or missing. Needs no bundle. */
int mm_library_merge(const char *const *parts, size_t n, const char *out_path, mm_library_index_stats *stats,
                     mm_err *err);
/* Collective under MPI (mpi/mpi.h; mm_library_index without it): every
 * rank lists the files; rank 0 hands them out largest first (mpi/sched.h)
 * and gathers each file's result; rank 0 writes out_path. p->progress is
 * called on rank 0 only, once per file of the whole job. Reuses a previous
 * library as mm_library_index does (every rank opens it). More ranks than
 * files is an error. Same return code and message on every rank. */
int mm_library_index_dist(const mm_bundle *b, const char *bundle_path, const mm_va_table *va, const char *source,
                          const char *out_path, const mm_library_index_params *p, mm_library_index_stats *stats,
                          mm_err *err);

#endif
