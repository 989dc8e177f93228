/* recommend.h — listener emotion → playlist from an indexed library.
 *
 * The listener's point is the expected valence–arousal point under the
 * speech model's probabilities (every label weighted, not only the top one).
 * Policy `match` (the paper's: music of the listener's emotion): tracks in
 * the listener's quadrant — the quadrant holding most of the speech
 * probability, each label counted in its point's quadrant — ranked by
 * distance to the listener's point and by the music model's confidence; when too few, the nearest others fill the
 * list and their reasons say so. Policy `regulate` (the iso principle of
 * music therapy): waypoints go in n steps from the listener's point to a
 * target (default calm–positive) and each slot takes the track nearest its
 * waypoint that is no farther from the target than the previous one.
 * Both: no track twice, no artist twice in a row, maximal marginal
 * relevance over the embeddings (cosine, weight λ), feedback (disliked
 * tracks never, liked tracks and artists boosted, skips penalised), seeded
 * tie-breaking; a one-line reason per track. Read-only after creation.
 * Cost: candidates come best first from the library's valence–arousal index
 * (match: one stream per request, each track drawn once; regulate: per slot,
 * its waypoint moves) and stop when none left can win; each candidate keeps
 * its largest cosine to the chosen tracks, updated one chosen track at a
 * time and only when its bound could still win. No n × n matrix; the result
 * equals the exhaustive scan's unless a stream reaches `shortlist`
 * (res.exact says which).
 * Variety: `temperature` samples each slot ∝ exp(score / τ) (seeded);
 * `epsilon` takes each slot uniformly among the tracks scoring within ε of
 * its best (the list stays in the best tier); `explore` makes a share of
 * match's slots (more when the listener's quadrant is uncertain) wider
 * picks from the whole quadrant (∝ confidence); and
 * `exclude` keeps tracks (e.g. the user's recent plays) out of the list.
 */
#ifndef MM_RECOMMEND_H
#define MM_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "io/cfg.h"
#include "runtime/feedback.h"
#include "runtime/library.h"
#include "runtime/va.h"

typedef enum { MM_POLICY_MATCH = 0, MM_POLICY_REGULATE = 1 } mm_policy;

/* "match" / "regulate" → policy; MM_EINVAL naming the value otherwise. */
int mm_policy_parse(const char *s, mm_policy *out, mm_err *err);
const char *mm_policy_name(mm_policy p);

typedef struct mm_recommend_params {
    mm_policy policy;       /* default match */
    size_t n;               /* tracks wanted (default 10, 1..1000) */
    uint64_t seed;          /* tie-breaking (default 0) */
    double lambda;          /* MMR: λ·relevance − (1−λ)·max cosine to chosen (default 0.7; 1 = off) */
    double w_confidence;    /* relevance += w_confidence · music confidence (default 3) */
    double w_like;          /* liked track bonus (default 1) */
    double w_artist;        /* bonus per liked track of the same artist, capped at 3 (default 0.3) */
    double w_skip;          /* penalty per skip, capped at 3 (default 0.2) */
    int has_target;         /* regulate: use `target` instead of the table's */
    mm_va target;
    const char *user;       /* feedback user id, or NULL */
    double temperature;     /* exploration τ ≥ 0 (default 0: the best list): score + τ·Gumbel(seed, track),
                               the draw capped at 9.21, i.e. a Plackett–Luce sample ∝ exp(score/τ) */
    double epsilon;         /* score tier ε ≥ 0 (default 0: the best): each slot takes a track drawn
                               uniformly (seeded) among those scoring within ε of the slot's best */
    double explore;         /* match: 0..1 (default 0): each slot is with probability explore·2(1 − m)
                               (m: the listener quadrant's share of the speech probability) a wider
                               pick — a track of the listener's quadrant drawn ∝ the music model's
                               confidence; none when the speech model is sure of the quadrant */
    size_t shortlist;       /* candidates drawn from the index per stream at most (match: per
                               request and tier group; regulate: per slot) (default 8192) */
    int exhaustive;         /* 1: scan every track (the reference the index is tested against) */
    const size_t *exclude;  /* (n_exclude) library indices never recommended (e.g. the user's recent
                               tracks, from the feedback store); borrowed; may repeat; out of range ignored */
    size_t n_exclude;
} mm_recommend_params;

void mm_recommend_params_default(mm_recommend_params *p);
/* Read the `recommend:` map keys policy, n, seed, lambda, w_confidence,
 * w_like, w_artist, w_skip, temperature (0..100), epsilon (0..100), explore (0..1),
 * shortlist (10..10^6), target ({valence, arousal} in [-1, 1] or an
 * emotion word of va) over *p; unknown keys refused. map may be NULL. */
int mm_recommend_params_from_cfg(const mm_cfg *map, const mm_va_table *va,
                                 mm_recommend_params *p, mm_err *err);

typedef struct mm_recommender mm_recommender;

/* Bind a library, a VA table and the speech model's labels (mapped through
 * va; an unknown label is an error). Borrowed pointers (lib, va) must
 * outlive the recommender. */
int mm_recommender_create(const mm_library *lib, const mm_va_table *va,
                          const char *const *speech_labels, int n_speech,
                          mm_recommender **out, mm_err *err);
void mm_recommender_free(mm_recommender *r);
int mm_recommender_n_labels(const mm_recommender *r);
const char *mm_recommender_label(const mm_recommender *r, int k);
mm_va mm_recommender_label_va(const mm_recommender *r, int k);

typedef struct mm_rec_item {
    size_t track;           /* index into the library */
    float relevance;        /* before the MMR term */
    float score;            /* the MMR score that chose it */
    float distance;         /* to the listener's point (match) or the slot's waypoint (regulate) */
    int filled;             /* 1 when taken outside the listener's quadrant (match) */
    char reason[256];       /* one line */
} mm_rec_item;

typedef struct mm_rec_result {
    mm_va listener;         /* expected point under the speech probabilities */
    int listener_quadrant;  /* 1..4: most speech probability (see match above) */
    int top_label;          /* argmax speech label */
    float top_proba;
    mm_va target;           /* regulate's end point (match: = listener) */
    mm_policy policy;
    size_t n;               /* items returned (< requested when the library is too small
                               or the user disliked the rest) */
    mm_rec_item *items;     /* (n) */
    size_t n_filled;        /* items from outside the listener's quadrant */
    size_t n_excluded;      /* tracks excluded by dislikes */
    size_t n_recent;        /* other tracks excluded by params.exclude */
    int exact;              /* 1: equal to the exhaustive scan (no slot reached the shortlist) */
    char note[256];         /* one line summary; says when the list was filled */
} mm_rec_result;

/* Recommend from a probability vector over the speech labels (n_labels
 * values, finite, ≥ 0, not all zero). fb may be NULL (then p->user is
 * ignored). Deterministic for (inputs, p->seed). *out written only on
 * success; release with mm_rec_result_free. Thread-safe (fb has its lock). */
int mm_recommend(const mm_recommender *r, const float *speech_proba,
                 const mm_recommend_params *p, mm_feedback *fb, mm_rec_result *out,
                 mm_err *err);
void mm_rec_result_free(mm_rec_result *res);

#endif
