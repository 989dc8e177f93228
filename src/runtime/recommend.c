/* recommend.c — playlists from a listener's emotion: policies match and regulate.
 *
 * The listener is the probability-weighted valence–arousal point of the
 * speech labels. `match` follows the paper (music of the listener's emotion:
 * same quadrant, nearest first, confident tracks first); `regulate` follows
 * the iso principle of music therapy (start at the listener's state, step
 * toward a calm–positive target). Slots are filled greedily by maximal
 * marginal relevance (Carbonell & Goldstein 1998) over cosine similarity of
 * the embeddings (their int8 principal-direction vectors, pca.h).
 * Sublinear: candidates come best first from the library's valence–arousal
 * grid (vaindex.h) — match draws each track once per request into a pool
 * kept across slots — and a slot stops drawing when no track left could
 * beat the best found (its score is at most λ·relevance + the exploration
 * bound); pooled candidates are compared with the chosen tracks lazily (a
 * stale max cosine still bounds the score), so the playlist equals the
 * exhaustive scan's (params.exhaustive) unless a stream reaches
 * params.shortlist candidates first (res.exact says so). Variety: ε-tiers
 * and wider picks (params.epsilon, params.explore; recommend.h).
 * Exploration (params.temperature τ): each track's score gets τ·g with g a
 * Gumbel draw seeded by (seed, track), capped at 9.2 (P = 10⁻⁴), so the
 * playlist is a Plackett–Luce sample ∝ exp(score/τ) — deterministic for a
 * seed. Leaves out collaborative signals between users.
 */
#include "runtime/recommend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "runtime/pca.h"
#include "runtime/vaindex.h"

#define MAX_N 1000

#define GUMBEL_CAP 9.21        /* −ln(−ln(1 − 10⁻⁴)): the largest exploration draw */
#define MAX_SHORTLIST 1000000
#define ARTIST_UNREAD INT32_MIN

struct mm_recommender {
    const mm_library *lib;
    int n_labels;
    char **labels;          /* (n_labels) speech labels */
    mm_va *label_va;        /* (n_labels) */
    int has_target;
    mm_va target;           /* the VA table's regulate target */
};

int mm_policy_parse(const char *s, mm_policy *out, mm_err *err)
{
    if (s && !strcmp(s, "match")) { *out = MM_POLICY_MATCH; return 0; }
    if (s && !strcmp(s, "regulate")) { *out = MM_POLICY_REGULATE; return 0; }
    return mm_err_set(err, MM_EINVAL, "policy '%s': expected match or regulate", s ? s : "(null)");
}

const char *mm_policy_name(mm_policy p)
{
    return p == MM_POLICY_REGULATE ? "regulate" : "match";
}

void mm_recommend_params_default(mm_recommend_params *p)
{
    memset(p, 0, sizeof *p);
    p->policy = MM_POLICY_MATCH;
    p->n = 10;
    p->seed = 0;
    p->lambda = 0.7;
    p->w_confidence = 3.0;
    p->w_like = 1.0;
    p->w_artist = 0.3;
    p->w_skip = 0.2;
    p->temperature = 0;
    p->shortlist = 8192;
}

int mm_recommend_params_from_cfg(const mm_cfg *map, const mm_va_table *va, mm_recommend_params *p,
                                 mm_err *err)
{
    if (!map || map->type == MM_CFG_NULL) return 0;
    char where[256];
    if (map->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: 'recommend': expected a map", mm_cfg_where(map, where, sizeof where));
    static const char *const keys[] = {"policy", "n", "seed", "lambda", "w_confidence", "w_like",
                                       "w_artist", "w_skip", "target", "temperature", "shortlist", "epsilon",
                                       "explore", NULL};
    int rc = mm_cfg_check_keys(map, "recommend", keys, err);
    if (rc) return rc;
    mm_recommend_params q = *p;
    static const char *const policies[] = {"match", "regulate", NULL};
    int pol = (int)q.policy;
    long n = (long)q.n, seed = (long)q.seed;
    if ((rc = mm_cfg_get_choice(map, "policy", policies, pol, &pol, err))) return rc;
    if ((rc = mm_cfg_get_int(map, "n", n, 1, MAX_N, &n, err))) return rc;
    if ((rc = mm_cfg_get_int(map, "seed", seed, 0, 0x7fffffffffffffffL, &seed, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "lambda", q.lambda, 0, 1, &q.lambda, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "w_confidence", q.w_confidence, 0, 100, &q.w_confidence, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "w_like", q.w_like, 0, 100, &q.w_like, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "w_artist", q.w_artist, 0, 100, &q.w_artist, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "w_skip", q.w_skip, 0, 100, &q.w_skip, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "temperature", q.temperature, 0, 100, &q.temperature, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "epsilon", q.epsilon, 0, 100, &q.epsilon, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "explore", q.explore, 0, 1, &q.explore, err))) return rc;
    long sl = (long)q.shortlist;
    if ((rc = mm_cfg_get_int(map, "shortlist", sl, 10, MAX_SHORTLIST, &sl, err))) return rc;
    q.shortlist = (size_t)sl;
    const mm_cfg *t = mm_cfg_child(map, "target");
    if (t && t->type == MM_CFG_SCALAR) {
        if (mm_va_lookup(va, t->value, &q.target, NULL))
            return mm_err_set(err, MM_EINVAL, "%s: key 'target': '%s' is not an emotion of the config",
                              mm_cfg_where(t, where, sizeof where), t->value);
        q.has_target = 1;
    } else if (t && t->type == MM_CFG_MAP) {
        static const char *const tk[] = {"valence", "arousal", NULL};
        double v, a;
        if ((rc = mm_cfg_check_keys(t, "recommend.target", tk, err))) return rc;
        if ((rc = mm_cfg_get_double(t, "valence", 0, -1, 1, &v, err))) return rc;
        if ((rc = mm_cfg_get_double(t, "arousal", 0, -1, 1, &a, err))) return rc;
        q.target.valence = (float)v;
        q.target.arousal = (float)a;
        q.has_target = 1;
    } else if (t && t->type != MM_CFG_NULL) {
        return mm_err_set(err, MM_EINVAL, "%s: key 'target': expected an emotion word or {valence, arousal}",
                          mm_cfg_where(t, where, sizeof where));
    }
    q.policy = (mm_policy)pol;
    q.n = (size_t)n;
    q.seed = (uint64_t)seed;
    *p = q;
    return 0;
}

void mm_recommender_free(mm_recommender *r)
{
    if (!r) return;
    for (int k = 0; r->labels && k < r->n_labels; k++) free(r->labels[k]);
    free(r->labels);
    free(r->label_va);
    free(r);
}

int mm_recommender_create(const mm_library *lib, const mm_va_table *va,
                          const char *const *speech_labels, int n_speech,
                          mm_recommender **out, mm_err *err)
{
    if (!lib) return mm_err_set(err, MM_EINVAL, "recommender: no library");
    if (n_speech < 1 || n_speech > 4096 || !speech_labels)
        return mm_err_set(err, MM_EINVAL, "recommender: %d speech labels, expected 1..4096", n_speech);
    mm_recommender *r = mm_calloc(1, sizeof *r, err);
    if (!r) return MM_ENOMEM;
    int rc = 0;
    r->lib = lib;
    r->labels = mm_calloc((size_t)n_speech, sizeof *r->labels, err);
    r->label_va = mm_malloc((size_t)n_speech, sizeof *r->label_va, err);
    if (!r->labels || !r->label_va) { rc = MM_ENOMEM; goto fail; }
    r->n_labels = n_speech;
    if (va) { r->target = mm_va_table_target(va); r->has_target = 1; }
    for (int k = 0; k < n_speech; k++)
        if (!(r->labels[k] = strdup(speech_labels[k] ? speech_labels[k] : ""))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto fail; }
    if ((rc = mm_va_label_points(va, speech_labels, n_speech, r->label_va, err))) {
        mm_err_prefix(err, "speech labels");
        goto fail;
    }
    *out = r;
    return 0;
fail:
    mm_recommender_free(r);
    return rc;
}

int mm_recommender_n_labels(const mm_recommender *r) { return r->n_labels; }
const char *mm_recommender_label(const mm_recommender *r, int k)
{
    return k >= 0 && k < r->n_labels ? r->labels[k] : "?";
}
mm_va mm_recommender_label_va(const mm_recommender *r, int k)
{
    mm_va z = {0, 0};
    return k >= 0 && k < r->n_labels ? r->label_va[k] : z;
}

void mm_rec_result_free(mm_rec_result *res)
{
    if (!res) return;
    free(res->items);
    res->items = NULL;
    res->n = 0;
}

/* The listener's quadrant: the one holding the most speech probability
 * (each label counted in the quadrant of its point) — the Bayes choice when
 * the playlist is judged by quadrant. Exact ties: the expected point's
 * quadrant when it is among them, else the lowest. */
static int listener_quadrant(const mm_recommender *r, const float *proba, mm_va expected)
{
    double mass[5] = {0};
    for (int k = 0; k < r->n_labels; k++) mass[mm_va_quadrant(r->label_va[k])] += proba[k];
    int qe = mm_va_quadrant(expected), best = 1;
    for (int q = 2; q <= 4; q++) if (mass[q] > mass[best]) best = q;
    return mass[qe] == mass[best] ? qe : best;
}

/* Copy a line into a fixed field, cut at a UTF-8 character boundary. */
static void copy_line(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void fmt_va(char *buf, size_t size, mm_va p)
{
    snprintf(buf, size, "V%+.2f A%+.2f", (double)p.valence, (double)p.arousal);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int in_sorted(const size_t *v, size_t n, size_t x)
{
    return n && bsearch(&x, v, n, sizeof *v, cmp_size) != NULL;
}

/* ---- per-request state ------------------------------------------------------ */

/* What a request remembers of each track it examined: whether it was chosen
 * and its largest cosine to the chosen tracks so far (folded in one chosen
 * track at a time, so a candidate met again in a later slot costs one cosine
 * per newly chosen track, not one per chosen track). Open addressing. */
typedef struct memo_ent {
    int32_t track;          /* −1: empty */
    uint16_t n_upd;         /* chosen[0 .. n_upd) folded into ms */
    uint8_t chosen;
    float ms;               /* max(0, max cosine to chosen[0 .. n_upd)) */
} memo_ent;

/* A candidate drawn from the index for one stream (see stream). */
typedef struct cand {
    int32_t track;
    int32_t quadrant;
    int32_t artist;         /* mm_library_artist_id (−1: none; ARTIST_UNREAD until tier_of needs it) */
    mm_va va;
    double rel;             /* −distance + w·confidence + feedback + tie-break jitter */
    double noise;           /* exploration draw τ·Gumbel (0 when τ = 0) */
    float ms;               /* max(0, max cosine to chosen[0 .. n_upd)): grows with n_upd, so
                               λ·rel − (1−λ)·ms + noise bounds the score from above at any time */
    uint32_t n_upd;
} cand;

/* Candidates of one group mask in decreasing relevance from one waypoint:
 * the iterator and what it has returned so far (the pool). match keeps its
 * two streams (the listener's quadrant; the others) for the whole request,
 * so each track is drawn once per request; regulate's waypoint moves, so its
 * streams last one slot. */
typedef struct stream {
    int live;
    int done;               /* nothing left to draw */
    mm_vaindex_iter it;
    unsigned mask;
    mm_va way;
    double radius;          /* disc around the target (regulate), < 0: none */
    cand *v;                /* (n) drawn, in order */
    size_t n, cap;
} stream;

typedef struct req {
    const mm_recommender *r;
    const mm_library *lib;
    const mm_recommend_params *p;
    const mm_feedback_prefs *prefs;     /* or NULL */
    size_t *blocked;        /* sorted: disliked ∪ params.exclude (library indices) */
    size_t n_blocked;
    size_t *boosted;        /* sorted: liked tracks and tracks of liked artists */
    size_t n_boosted;
    size_t *chosen;         /* (want) in order */
    size_t n_chosen;
    memo_ent *memo;         /* (memo_cap) */
    size_t memo_n, memo_cap;
    double noise_max;       /* exploration bound (0 when off) */
    int approx;             /* a stream stopped at the shortlist */
    int memo_ms;            /* 1: keep each candidate's ms in the memo across slots (regulate) */
} req;

static size_t memo_hash(int32_t t, size_t cap)
{
    return (size_t)(((uint64_t)(uint32_t)t * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);
}

/* The entry of track t (inserted when absent); NULL when out of memory. */
static memo_ent *memo_get(req *q, int32_t t)
{
    if (2 * (q->memo_n + 1) > q->memo_cap) {
        size_t nc = q->memo_cap ? 2 * q->memo_cap : 1024;
        memo_ent *nm = malloc(nc * sizeof *nm);
        if (!nm) return NULL;
        for (size_t i = 0; i < nc; i++) nm[i].track = -1;
        for (size_t i = 0; i < q->memo_cap; i++) {
            if (q->memo[i].track < 0) continue;
            size_t h = memo_hash(q->memo[i].track, nc);
            while (nm[h].track >= 0) h = (h + 1) & (nc - 1);
            nm[h] = q->memo[i];
        }
        free(q->memo);
        q->memo = nm;
        q->memo_cap = nc;
    }
    size_t h = memo_hash(t, q->memo_cap);
    while (q->memo[h].track >= 0 && q->memo[h].track != t) h = (h + 1) & (q->memo_cap - 1);
    if (q->memo[h].track < 0) {
        q->memo[h] = (memo_ent){.track = t, .n_upd = 0, .chosen = 0, .ms = 0};
        q->memo_n++;
    }
    return &q->memo[h];
}

static const memo_ent *memo_find(const req *q, int32_t t)
{
    if (!q->memo_cap) return NULL;
    size_t h = memo_hash(t, q->memo_cap);
    while (q->memo[h].track >= 0) {
        if (q->memo[h].track == t) return &q->memo[h];
        h = (h + 1) & (q->memo_cap - 1);
    }
    return NULL;
}

static int is_chosen(const req *q, size_t i)
{
    if (!q->memo_cap) return 0;
    size_t h = memo_hash((int32_t)i, q->memo_cap);
    while (q->memo[h].track >= 0) {
        if (q->memo[h].track == (int32_t)i) return q->memo[h].chosen;
        h = (h + 1) & (q->memo_cap - 1);
    }
    return 0;
}

static int is_excluded(const req *q, size_t i)
{
    return is_chosen(q, i) || in_sorted(q->blocked, q->n_blocked, i);
}

/* Feedback adjustment of track i's relevance (and what it was made of). */
static double feedback(const req *q, size_t i, int *liked, int *artist_likes, int *skips)
{
    *liked = *artist_likes = *skips = 0;
    if (!q->prefs) return 0;
    int st = mm_feedback_prefs_track(q->prefs, mm_library_id(q->lib, i), skips);
    int al = mm_feedback_prefs_artist(q->prefs, mm_library_artist(q->lib, i));
    *liked = st > 0;
    *artist_likes = al;
    return q->p->w_like * (st > 0) + q->p->w_artist * (al < 3 ? al : 3) - q->p->w_skip * (*skips < 3 ? *skips : 3);
}

/* A uniform draw in [0, 1) fixed by (seed, a, b). */
static double draw(uint64_t seed, uint64_t a, uint64_t b)
{
    mm_rng g;
    mm_rng_seed(&g, seed, a, b);
    return mm_rng_uniform(&g);
}

static double explore_noise(const req *q, size_t i)
{
    if (!(q->p->temperature > 0)) return 0;
    double u = draw(q->p->seed, i, 0x6578706cULL);
    double gum = -log(-log(u > 0 ? u : 1e-300));
    return q->p->temperature * (gum < GUMBEL_CAP ? gum : GUMBEL_CAP);
}

/* Track i as a candidate with static relevance rel_static (−distance +
 * w·confidence), its point and quadrant. */
static cand make_cand(const req *q, size_t i, double rel_static, mm_va va, int quadrant)
{
    int liked, al, skips;
    double jitter = 1e-9 * draw(q->p->seed, i, 0x7265636fULL);
    cand c = {.track = (int32_t)i, .quadrant = quadrant, .artist = ARTIST_UNREAD, .va = va,
              .rel = rel_static + feedback(q, i, &liked, &al, &skips) + jitter, .noise = explore_noise(q, i)};
    const memo_ent *m = q->memo_ms ? memo_find(q, (int32_t)i) : NULL;
    if (m) { c.ms = m->ms; c.n_upd = m->n_upd; }
    return c;
}

static cand cand_at(const req *q, size_t i, mm_va way)
{
    mm_va va = mm_library_point(q->lib, i);
    double rel = -(double)mm_va_dist(way, va) + q->p->w_confidence * mm_library_confidence(q->lib, i);
    return make_cand(q, i, rel, va, mm_library_quadrant(q->lib, i));
}

/* An upper bound of candidate c's MMR score (exact once its ms is current). */
static double score_bound(const req *q, const cand *c)
{
    const mm_recommend_params *p = q->p;
    return p->lambda * c->rel - (1 - p->lambda) * (p->lambda < 1 ? (double)c->ms : 0.0) + c->noise;
}

/* The MMR score of candidate c: λ·rel − (1−λ)·max cosine to the chosen +
 * noise, folding in the chosen tracks c has not been compared with yet (one
 * cosine each). 0, or MM_ENOMEM. */
static int score_of(req *q, cand *c, double *score)
{
    if (q->p->lambda < 1 && c->n_upd < q->n_chosen) {
        const mm_library *lib = q->lib;
        size_t k = mm_library_sim_dim(lib);
        float inv, ms = c->ms;
        const int8_t *row = mm_library_sim(lib, (size_t)c->track, &inv);
        for (size_t j = c->n_upd; j < q->n_chosen; j++) {
            float io;
            const int8_t *ro = mm_library_sim(lib, q->chosen[j], &io);
            float cs = mm_pca_cosine(row, inv, ro, io, k);
            if (cs > ms) ms = cs;
        }
        c->ms = ms;
        c->n_upd = (uint32_t)q->n_chosen;
        if (q->memo_ms) {
            memo_ent *m = memo_get(q, c->track);
            if (!m) return MM_ENOMEM;
            if (m->n_upd < c->n_upd) { m->ms = c->ms; m->n_upd = (uint16_t)c->n_upd; }
        }
    }
    *score = score_bound(q, c);
    return 0;
}

/* The slot's rules: match — the track is in the listener's quadrant;
 * regulate — no farther from the target than the previous track, and at
 * least `remaining` other available tracks as near to the target (d_min). */
typedef struct slot_rule {
    mm_policy policy;
    int quadrant;
    mm_va target;
    double prev_td, d_min;
    int32_t prev_artist;    /* artist id of the previous track (−1: none) */
} slot_rule;

static int tier_of(const req *q, const slot_rule *s, cand *c)
{
    if (c->artist == ARTIST_UNREAD) c->artist = mm_library_artist_id(q->lib, (size_t)c->track);
    int artist_ok = c->artist < 0 || c->artist != s->prev_artist;
    int r1;
    if (s->policy == MM_POLICY_MATCH) r1 = c->quadrant == s->quadrant;
    else {
        float td = mm_va_dist(c->va, s->target);
        r1 = td <= s->prev_td + 1e-6 && td >= s->d_min;
    }
    return artist_ok ? (r1 ? 0 : 1) : (r1 ? 2 : 3);
}

typedef struct best {
    long track;
    double score;
    double rel;             /* the candidate's relevance (before the MMR term) */
} best;

static int stream_push(stream *S, cand c)
{
    if (S->n == S->cap) {
        size_t nc = S->cap ? 2 * S->cap : 256;
        cand *nv = realloc(S->v, nc * sizeof *nv);
        if (!nv) return -1;
        S->v = nv;
        S->cap = nc;
    }
    S->v[S->n++] = c;
    return 0;
}

static void stream_free(stream *S)
{
    if (S->live) mm_vaindex_iter_free(&S->it);
    free(S->v);
    memset(S, 0, sizeof *S);
}

/* Start a stream: boosted tracks first (their feedback can lift them above
 * any bound), then the index; with params.exhaustive every track of the mask
 * at once. */
static int stream_start(req *q, stream *S, unsigned mask, mm_va way, mm_va disc_centre, double radius, mm_err *err)
{
    const mm_library *lib = q->lib;
    const mm_recommend_params *p = q->p;
    memset(S, 0, sizeof *S);
    S->mask = mask;
    S->way = way;
    S->radius = radius;
    for (size_t j = 0; j < q->n_boosted; j++) {
        size_t i = q->boosted[j];
        if (!(mask & (1u << (mm_library_quadrant(lib, i) - 1)))) continue;
        if (stream_push(S, cand_at(q, i, way))) return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    if (p->exhaustive) {
        for (size_t i = 0; i < mm_library_size(lib); i++) {
            if (!(mask & (1u << (mm_library_quadrant(lib, i) - 1))) || in_sorted(q->blocked, q->n_blocked, i) ||
                in_sorted(q->boosted, q->n_boosted, i))
                continue;
            if (stream_push(S, cand_at(q, i, way))) return mm_err_set(err, MM_ENOMEM, "out of memory");
        }
        S->done = 1;
        return 0;
    }
    int rc = mm_vaindex_iter_init(&S->it, mm_library_vaindex(lib), way, p->w_confidence, mask, disc_centre, radius, err);
    if (rc) return rc;
    S->live = 1;
    return 0;
}

/* Draw the stream's next track (skipping blocked and boosted ones) into the
 * pool: 1 drawn, 0 none left, < 0 out of memory. */
static int stream_draw(req *q, stream *S)
{
    double rel;
    size_t pos;
    long i;
    const mm_vaindex *x = mm_library_vaindex(q->lib);
    while ((i = mm_vaindex_next(&S->it, &rel, &pos)) >= 0) {
        if (in_sorted(q->blocked, q->n_blocked, (size_t)i) || in_sorted(q->boosted, q->n_boosted, (size_t)i)) continue;
        mm_va va = x->va_ord ? x->va_ord[pos] : mm_library_point(q->lib, (size_t)i);
        cand c = make_cand(q, (size_t)i, rel, va, mm_vaindex_group_at(x, pos));
        c.artist = mm_library_artist_id_at(q->lib, pos);   /* in walk order: no cache miss per candidate */
        for (size_t j = 0; j < 3; j++) {   /* likely the next draws: their vectors load while this one is scored */
            long nx = mm_vaindex_peek(&S->it, j);
            if (nx >= 0) mm_library_prefetch_sim(q->lib, (size_t)nx);
        }
        return stream_push(S, c) ? -1 : 1;
    }
    S->done = 1;
    return 0;
}

/* An upper bound of the relevance of every track the stream has not drawn. */
static double stream_bound(const stream *S)
{
    return S->done ? -INFINITY : mm_vaindex_bound(&S->it);
}

/* A uniform key of track i for choosing within a tier (fixed per request). */
static double tier_key(const req *q, size_t i)
{
    return draw(q->p->seed, i, 0x74696572ULL);
}

/* The slot's pick among one tier of a stream: the best score, or with
 * params.epsilon > 0 a track drawn uniformly (seeded) among those scoring
 * within ε of the best. Draws from the index until no track left can reach
 * the best (− ε), or the stream holds params.shortlist candidates. */
static int search_tier(req *q, stream *S, const slot_rule *s, int tier, best *b, mm_err *err)
{
    const mm_recommend_params *p = q->p;
    double eps = p->epsilon > 0 ? p->epsilon : 0;
    double slack = 1e-9 + (p->lambda > 0 ? q->noise_max / p->lambda : INFINITY);
    b->track = -1;
    double sc;
    /* the pool: a candidate whose bound (stale ms) cannot beat the best needs no cosine */
    for (size_t j = 0; j < S->n; j++) {
        cand *c = &S->v[j];
        if ((b->track >= 0 && score_bound(q, c) <= b->score) || tier_of(q, s, c) != tier ||
            is_chosen(q, (size_t)c->track))
            continue;
        if (score_of(q, c, &sc)) return mm_err_set(err, MM_ENOMEM, "out of memory");
        if (b->track < 0 || sc > b->score) *b = (best){c->track, sc, c->rel};
    }
    while (!S->done) {
        if (b->track >= 0 && p->lambda * (stream_bound(S) + slack) <= b->score - eps) break;   /* no one left can win */
        if (S->n >= p->shortlist) { q->approx = 1; break; }
        int got = stream_draw(q, S);
        if (got < 0) return mm_err_set(err, MM_ENOMEM, "out of memory");
        if (!got) break;
        cand *c = &S->v[S->n - 1];
        if ((b->track >= 0 && score_bound(q, c) <= b->score) || tier_of(q, s, c) != tier ||
            is_chosen(q, (size_t)c->track))
            continue;
        if (score_of(q, c, &sc)) return mm_err_set(err, MM_ENOMEM, "out of memory");
        if (b->track < 0 || sc > b->score) *b = (best){c->track, sc, c->rel};
    }
    if (eps > 0 && b->track >= 0) {   /* uniformly (seeded) among the tier within ε of the best */
        double floor_ = b->score - eps, kbest = -1;
        best pick = *b;
        for (size_t j = 0; j < S->n; j++) {
            cand *c = &S->v[j];
            if (score_bound(q, c) < floor_ || tier_of(q, s, c) != tier || is_chosen(q, (size_t)c->track)) continue;
            if (score_of(q, c, &sc)) return mm_err_set(err, MM_ENOMEM, "out of memory");
            if (sc < floor_) continue;
            double key = tier_key(q, (size_t)c->track);
            if (key > kbest) { kbest = key; pick = (best){c->track, sc, c->rel}; }
        }
        *b = pick;
    }
    return 0;
}

/* regulate: the target distance of the (remaining+1)-th nearest available
 * track (+∞ when there are fewer): a track qualifies when at least
 * `remaining` others are as near (so the approach never runs dry). */
static int nth_target_dist(req *q, mm_va target, size_t remaining, double *out, mm_err *err)
{
    *out = INFINITY;
    if (q->p->exhaustive) {
        size_t n = mm_library_size(q->lib), m = 0;
        float *d = mm_malloc(n ? n : 1, sizeof *d, err);
        if (!d) return MM_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (!is_excluded(q, i)) d[m++] = mm_va_dist(mm_library_point(q->lib, i), target);
        if (m > remaining) {   /* partial selection would do; tests only */
            for (size_t a = 0; a <= remaining; a++)
                for (size_t b = a + 1; b < m; b++)
                    if (d[b] < d[a]) { float t = d[a]; d[a] = d[b]; d[b] = t; }
            *out = d[remaining];
        }
        free(d);
        return 0;
    }
    mm_vaindex_iter it;
    int rc = mm_vaindex_iter_init(&it, mm_library_vaindex(q->lib), target, 0, 0xF, target, -1, err);
    if (rc) return rc;
    size_t found = 0;
    double rel;
    long i;
    while ((i = mm_vaindex_next(&it, &rel, NULL)) >= 0) {
        if (is_excluded(q, (size_t)i)) continue;
        if (found++ == remaining) { *out = mm_va_dist(mm_library_point(q->lib, (size_t)i), target); break; }
    }
    mm_vaindex_iter_free(&it);
    return 0;
}

/* match with params.explore: a slot that, with probability `rate` (seeded
 * by the slot), takes a track of the listener's quadrant drawn uniformly and
 * kept with probability equal to its confidence (so ∝ confidence): a thin
 * tail of deeper picks. rate is explore · 2(1 − m), m the listener
 * quadrant's share of the speech probability: none when the speech model is
 * sure of the quadrant, `explore` when it gives it half, 1.5 × explore at
 * chance — wider picks cost little where the quadrant itself is in doubt.
 * Returns the track or −1 (not this slot, or 64 draws found nothing
 * allowed). Independent of the index walk. */
static long explore_pick(req *q, const slot_rule *s, size_t slot, double rate)
{
    const mm_recommend_params *p = q->p;
    if (!(rate > 0) || s->policy != MM_POLICY_MATCH || draw(p->seed, slot, 0x7461696cULL) >= rate) return -1;
    size_t a, e;
    mm_vaindex_group_range(mm_library_vaindex(q->lib), s->quadrant, &a, &e);
    if (a >= e) return -1;
    const int32_t *order = mm_library_vaindex(q->lib)->order;
    mm_rng g;
    mm_rng_seed(&g, p->seed, slot, 0x64656570ULL);
    for (int tries = 0; tries < 64; tries++) {
        size_t i = (size_t)order[a + mm_rng_below(&g, e - a)];
        double u = mm_rng_uniform(&g);
        if (is_excluded(q, i) || u >= mm_library_confidence(q->lib, i)) continue;
        int32_t ai = mm_library_artist_id(q->lib, i);
        if (ai >= 0 && ai == s->prev_artist) continue;
        return (long)i;
    }
    return -1;
}

/* Sorted distinct library indices of the disliked, the excluded, and the
 * boosted (liked tracks, tracks of liked artists). */
static int prepare_sets(req *q, const mm_feedback_prefs *prefs, size_t *n_disliked, mm_err *err)
{
    const mm_recommend_params *p = q->p;
    const mm_library *lib = q->lib;
    size_t nb = p->n_exclude, nbo = 0;
    if (prefs) {
        nb += prefs->n_tracks;
        nbo += prefs->n_tracks;
        for (size_t a = 0; a < prefs->n_artists; a++) {
            const size_t *idx;
            nbo += mm_library_artist_tracks(lib, prefs->artists[a], &idx);
        }
    }
    q->blocked = mm_malloc(nb ? nb : 1, sizeof *q->blocked, err);
    q->boosted = mm_malloc(nbo ? nbo : 1, sizeof *q->boosted, err);
    if (!q->blocked || !q->boosted) return MM_ENOMEM;
    size_t m = 0, mb = 0;
    *n_disliked = 0;
    if (prefs) {
        for (size_t j = 0; j < prefs->n_tracks; j++) {
            long i = mm_library_find(lib, prefs->track_ids[j]);
            if (i < 0 || strcmp(mm_library_id(lib, (size_t)i), prefs->track_ids[j])) continue;
            if (prefs->state[j] < 0) { q->blocked[m++] = (size_t)i; (*n_disliked)++; }
            else if (prefs->state[j] > 0) q->boosted[mb++] = (size_t)i;
        }
        for (size_t a = 0; a < prefs->n_artists; a++) {
            const size_t *idx;
            size_t c = mm_library_artist_tracks(lib, prefs->artists[a], &idx);
            for (size_t j = 0; j < c; j++) q->boosted[mb++] = idx[j];
        }
    }
    for (size_t j = 0; j < p->n_exclude; j++)
        if (p->exclude[j] < mm_library_size(lib)) q->blocked[m++] = p->exclude[j];
    qsort(q->blocked, m, sizeof *q->blocked, cmp_size);
    qsort(q->boosted, mb, sizeof *q->boosted, cmp_size);
    size_t u = 0;
    for (size_t j = 0; j < m; j++) if (!u || q->blocked[u - 1] != q->blocked[j]) q->blocked[u++] = q->blocked[j];
    q->n_blocked = u;
    u = 0;
    for (size_t j = 0; j < mb; j++)   /* distinct, and not blocked */
        if ((!u || q->boosted[u - 1] != q->boosted[j]) && !in_sorted(q->blocked, q->n_blocked, q->boosted[j]))
            q->boosted[u++] = q->boosted[j];
    q->n_boosted = u;
    return 0;
}

/* ---- the request, step by step ---------------------------------------------- */

/* Checks a request before any work: the parameters p (pin or the defaults)
 * and the speech probabilities proba (r's n_labels values, finite, >= 0,
 * not all zero). On success writes their sum to *psum and the most probable
 * label to *top and returns 0; else MM_EINVAL with err naming the value. */
static int check_request(const mm_recommender *r, const float *proba, const mm_recommend_params *p, double *psum,
                         int *top, mm_err *err)
{
    if (p->n < 1 || p->n > MAX_N) return mm_err_set(err, MM_EINVAL, "recommend: n = %zu, expected 1..%d", p->n, MAX_N);
    if (!(p->lambda >= 0 && p->lambda <= 1)) return mm_err_set(err, MM_EINVAL, "recommend: lambda = %g, expected 0..1", p->lambda);
    if (!(p->temperature >= 0 && p->temperature <= 100))
        return mm_err_set(err, MM_EINVAL, "recommend: temperature = %g, expected 0..100", p->temperature);
    if (!(p->epsilon >= 0 && p->epsilon <= 100))
        return mm_err_set(err, MM_EINVAL, "recommend: epsilon = %g, expected 0..100", p->epsilon);
    if (!(p->explore >= 0 && p->explore <= 1))
        return mm_err_set(err, MM_EINVAL, "recommend: explore = %g, expected 0..1", p->explore);
    if (p->shortlist < 1) return mm_err_set(err, MM_EINVAL, "recommend: shortlist = %zu, expected >= 1", p->shortlist);
    if (p->n_exclude && !p->exclude) return mm_err_set(err, MM_EINVAL, "recommend: %zu excluded tracks but no list", p->n_exclude);
    if (p->policy != MM_POLICY_MATCH && p->policy != MM_POLICY_REGULATE)
        return mm_err_set(err, MM_EINVAL, "recommend: policy %d: expected match or regulate", (int)p->policy);
    if (p->has_target && !(fabsf(p->target.valence) <= 1 && fabsf(p->target.arousal) <= 1))
        return mm_err_set(err, MM_EINVAL, "recommend: target (%g, %g) outside [-1, 1]",
                          (double)p->target.valence, (double)p->target.arousal);
    double sum = 0;
    int best = 0;
    for (int k = 0; k < r->n_labels; k++) {
        if (!isfinite(proba[k]) || proba[k] < 0)
            return mm_err_set(err, MM_EINVAL, "recommend: probability of '%s' is %g, expected a finite value >= 0",
                              r->labels[k], (double)proba[k]);
        sum += proba[k];
        if (proba[k] > proba[best]) best = k;
    }
    if (!(sum > 0)) return mm_err_set(err, MM_EINVAL, "recommend: the speech probabilities are all zero");
    *psum = sum;
    *top = best;
    return 0;
}

/* A result with no items yet: the policy, the listener's point and
 * quadrant, the top label and its share of psum (the sum of proba), and the
 * target (the listener for match; params.target, else the recommender's,
 * for regulate). Overwrites *res entirely. */
static void result_start(const mm_recommender *r, const float *proba, const mm_recommend_params *p, double psum,
                         int top, mm_rec_result *res)
{
    memset(res, 0, sizeof *res);
    res->policy = p->policy;
    res->listener = mm_va_expected(r->label_va, proba, r->n_labels);
    res->listener_quadrant = listener_quadrant(r, proba, res->listener);
    res->top_label = top;
    res->top_proba = (float)(proba[top] / psum);
    res->target = res->listener;
    if (p->policy == MM_POLICY_REGULATE) res->target = p->has_target ? p->target : r->target;
}

/* The tracks of quadrant `quadrant` (1..4) less the blocked ones in it
 * (q->blocked must be prepared). */
static size_t available_in_quadrant(const req *q, int quadrant)
{
    size_t a, e;
    mm_vaindex_group_range(mm_library_vaindex(q->lib), quadrant, &a, &e);
    size_t n = e - a;
    for (size_t j = 0; j < q->n_blocked; j++)
        if (mm_library_quadrant(q->lib, q->blocked[j]) == quadrant) n--;
    return n;
}

/* The per-slot rate of wider picks (explore_pick): match with
 * params.explore > 0: explore · 2(1 − the listener quadrant's share of the
 * speech probability), at most 1; else 0. psum is the sum of proba. */
static double explore_rate_of(const mm_recommender *r, const float *proba, double psum, const mm_recommend_params *p,
                              int quadrant)
{
    if (!(p->explore > 0 && p->policy == MM_POLICY_MATCH)) return 0;
    double mass = 0;
    for (int k = 0; k < r->n_labels; k++)
        if (mm_va_quadrant(r->label_va[k]) == quadrant) mass += proba[k];
    double rate = p->explore * 2 * (1 - mass / psum);
    return rate > 1 ? 1 : rate;
}

/* The point slot `slot` of `want` is ranked from: the listener; regulate
 * (want > 1): the point slot/(want − 1) of the way from the listener to
 * the target. */
static mm_va waypoint(const mm_rec_result *res, const mm_recommend_params *p, size_t slot, size_t want)
{
    mm_va way = res->listener;
    if (p->policy == MM_POLICY_REGULATE && want > 1) {
        double f = (double)slot / (double)(want - 1);
        way.valence = (float)(res->listener.valence + f * (res->target.valence - res->listener.valence));
        way.arousal = (float)(res->listener.arousal + f * (res->target.arousal - res->listener.arousal));
    }
    return way;
}

/* One slot's track, ranked from waypoint way: a wider pick when
 * explore_pick makes one (*explored = 1, *tier = 0), else the best of the
 * first tier that has a track, best first: 0 fits every rule; then the
 * rules are relaxed one by one (match: quadrant; regulate: monotone
 * approach; last: artist twice in a row). Tiers 0 and 2 draw from *sin, 1
 * and 3 from *sout; a stream is started here on first use (regulate's
 * disc: the previous track's distance to the target). b->track < 0 (and
 * *tier = 4): no track left. 0, or an error code with err set. */
static int pick_slot(req *q, const slot_rule *sr, stream *sin, stream *sout, size_t slot, mm_va way,
                     double explore_rate, best *b, int *tier, int *explored, mm_err *err)
{
    const mm_recommend_params *p = q->p;
    unsigned qmask = 1u << (sr->quadrant - 1);
    int rc, best_tier = 0;
    *b = (best){-1, 0, 0};
    *explored = 0;
    long ex = explore_pick(q, sr, slot, explore_rate);
    if (ex >= 0) {
        cand c = cand_at(q, (size_t)ex, way);
        double sc;
        if (score_of(q, &c, &sc)) return mm_err_set(err, MM_ENOMEM, "out of memory");
        *b = (best){ex, sc, c.rel};
        *explored = 1;
    }
    for (; !*explored && best_tier < 4; best_tier++) {
        stream *S = best_tier == 0 || best_tier == 2 ? sin : sout;
        if (!S->live && !S->done && !S->n) {
            unsigned mask;
            double radius = -1;
            if (p->policy == MM_POLICY_MATCH) mask = S == sin ? qmask : 0xFu & ~qmask;
            else {
                mask = 0xF;
                if (S == sin && isfinite(sr->prev_td)) radius = sr->prev_td + 1e-6;
            }
            if ((rc = stream_start(q, S, mask, way, sr->target, radius, err))) return rc;
        }
        if ((rc = search_tier(q, S, sr, best_tier, b, err))) return rc;
        if (b->track >= 0) break;
    }
    *tier = best_tier;
    return 0;
}

/* What the reason lines quote, fixed for a request. */
typedef struct reason_ctx {
    const char *top_label;  /* the most probable speech label */
    const char *listener;   /* the listener's point as fmt_va writes it */
    size_t n_in_q;          /* available tracks of the listener's quadrant */
    size_t want;            /* slots to fill */
} reason_ctx;

/* The notes a reason ends with, into extra (size bytes, cut to fit): the
 * listener's feedback on track i, and for a track of tier 2 or 3 (not a
 * wider pick) that its artist repeats. */
static void reason_extra(const req *q, size_t i, int tier, int explored, char *extra, size_t size)
{
    int liked, artist_likes, skips;
    feedback(q, i, &liked, &artist_likes, &skips);
    size_t el = 0;
    extra[0] = 0;
    if (liked) el += (size_t)snprintf(extra + el, size - el, "; you liked it");
    else if (artist_likes) el += (size_t)snprintf(extra + el, size - el, "; you like this artist");
    if (skips && el < size) el += (size_t)snprintf(extra + el, size - el, "; skipped %d×", skips);
    if (!explored && tier >= 2 && el < size) snprintf(extra + el, size - el, "; same artist again (no other left)");
}

/* Append the slot's pick b (found in `tier`, or `explored`) from waypoint
 * way to res->items (room for it is the caller's) with its reason; mark it
 * chosen in q and move the slot rule on (previous artist; regulate: the
 * nearest distance to the target so far). 0, or MM_ENOMEM with err set. */
static int add_item(req *q, slot_rule *sr, mm_rec_result *res, const reason_ctx *rx, size_t slot, mm_va way,
                    const best *b, int tier, int explored, mm_err *err)
{
    const mm_library *lib = q->lib;
    size_t bi = (size_t)b->track;
    memo_ent *me = memo_get(q, (int32_t)bi);
    if (!me) return mm_err_set(err, MM_ENOMEM, "out of memory");
    me->chosen = 1;
    const mm_library_track *t = mm_library_track_at(lib, bi);
    mm_rec_item *it = &res->items[res->n++];
    it->track = bi;
    it->relevance = (float)b->rel;
    it->score = (float)b->score;
    it->distance = mm_va_dist(way, t->va);
    char tbuf[64], wbuf[64], extra[96], line[1024];
    fmt_va(tbuf, sizeof tbuf, t->va);
    reason_extra(q, bi, tier, explored, extra, sizeof extra);
    if (q->p->policy == MM_POLICY_MATCH) {
        if (explored) {
            snprintf(line, sizeof line,
                     "Q%d like the listener (%s, %s %.0f%%), a wider pick: track %s at %.2f, %s %.0f%%%s",
                     t->quadrant, rx->top_label, rx->listener, 100.0 * res->top_proba, tbuf, (double)it->distance,
                     mm_library_class_name(lib, t->top_class), 100.0 * t->confidence, extra);
        } else if (tier == 1 || tier == 3) {
            it->filled = 1;
            res->n_filled++;
            snprintf(line, sizeof line,
                     "filler: only %zu tracks in Q%d; nearest other (Q%d, %s) at %.2f from the listener (%s)%s",
                     rx->n_in_q, res->listener_quadrant, t->quadrant, tbuf, (double)it->distance, rx->listener, extra);
        } else {
            snprintf(line, sizeof line,
                     "Q%d like the listener (%s, %s %.0f%%): track %s at %.2f, %s %.0f%%%s",
                     t->quadrant, rx->top_label, rx->listener, 100.0 * res->top_proba, tbuf, (double)it->distance,
                     mm_library_class_name(lib, t->top_class), 100.0 * t->confidence, extra);
        }
    } else {
        fmt_va(wbuf, sizeof wbuf, way);
        double td = mm_va_dist(t->va, res->target);
        snprintf(line, sizeof line,
                 "step %zu/%zu from %s (%s) toward the target: waypoint %s, track %s, %.2f from the target%s%s",
                 slot + 1, rx->want, rx->top_label, rx->listener, wbuf, tbuf, td,
                 tier == 1 || tier == 3 ? " (no nearer track left)" : "", extra);
        if (td < sr->prev_td) sr->prev_td = td;
    }
    copy_line(it->reason, sizeof it->reason, line);
    q->chosen[q->n_chosen++] = bi;
    sr->prev_artist = mm_library_artist_id(lib, bi);
    return 0;
}

/* The playlist's one-line summary into res->note, for res's items and the
 * n_asked tracks asked for. */
static void write_note(mm_rec_result *res, size_t n_asked, const reason_ctx *rx)
{
    char tbuf[64], line[1024];
    if (res->policy == MM_POLICY_MATCH)
        snprintf(line, sizeof line, "match: listener %s (%s, Q%d); %zu tracks in Q%d%s%s",
                 rx->top_label, rx->listener, res->listener_quadrant, rx->n_in_q, res->listener_quadrant,
                 res->n_filled ? ", filled with the nearest others" : "",
                 res->n < n_asked ? "; fewer tracks than asked" : "");
    else {
        fmt_va(tbuf, sizeof tbuf, res->target);
        snprintf(line, sizeof line, "regulate: from %s (%s) to %s in %zu steps%s", rx->top_label, rx->listener,
                 tbuf, res->n, res->n < n_asked ? "; fewer tracks than asked" : "");
    }
    copy_line(res->note, sizeof res->note, line);
}

int mm_recommend(const mm_recommender *r, const float *proba, const mm_recommend_params *pin,
                 mm_feedback *fb, mm_rec_result *out, mm_err *err)
{
    mm_recommend_params p;
    if (pin) p = *pin; else mm_recommend_params_default(&p);
    if (!r || !proba) return mm_err_set(err, MM_EINVAL, "recommend: no recommender or probabilities");
    double psum = 0;
    int top = 0;
    int rc = check_request(r, proba, &p, &psum, &top, err);
    if (rc) return rc;

    const mm_library *lib = r->lib;
    size_t n_tr = mm_library_size(lib);
    mm_rec_result res;
    result_start(r, proba, &p, psum, top, &res);
    mm_feedback_prefs prefs = {0};
    int have_prefs = 0;
    req q = {.r = r, .lib = lib, .p = &p};
    stream sin = {0}, sout = {0};   /* tiers 0 and 2 (the rule holds); 1 and 3 (relaxed) */
    q.noise_max = p.temperature > 0 ? p.temperature * GUMBEL_CAP : 0;
    q.memo_ms = p.policy == MM_POLICY_REGULATE;
    if (fb && p.user && p.user[0]) {
        if ((rc = mm_feedback_prefs_get(fb, p.user, &prefs, err))) return rc;
        have_prefs = 1;
        q.prefs = &prefs;
    }
    res.items = mm_calloc(p.n, sizeof *res.items, err);
    q.chosen = mm_malloc(p.n, sizeof *q.chosen, err);
    if (!res.items || !q.chosen) { rc = MM_ENOMEM; goto done; }
    if (p.policy == MM_POLICY_REGULATE && !p.has_target && !r->has_target) {
        rc = mm_err_set(err, MM_EINVAL, "recommend: policy regulate needs a target (params.target or the config's)");
        goto done;
    }
    size_t n_disliked = 0;
    if ((rc = prepare_sets(&q, q.prefs, &n_disliked, err))) goto done;
    res.n_excluded = n_disliked;
    res.n_recent = q.n_blocked - n_disliked;   /* distinct excluded by params.exclude only */
    size_t n_avail = n_tr - q.n_blocked;
    size_t want = p.n < n_avail ? p.n : n_avail;
    slot_rule sr = {.policy = p.policy, .quadrant = res.listener_quadrant, .target = res.target,
                    .prev_td = INFINITY, .d_min = 0, .prev_artist = -1};
    char lbuf[64];
    fmt_va(lbuf, sizeof lbuf, res.listener);
    reason_ctx rx = {.top_label = r->labels[top], .listener = lbuf,
                     .n_in_q = available_in_quadrant(&q, res.listener_quadrant), .want = want};
    double explore_rate = explore_rate_of(r, proba, psum, &p, res.listener_quadrant);
    for (size_t slot = 0; slot < want; slot++) {
        mm_va way = waypoint(&res, &p, slot, want);
        if (p.policy == MM_POLICY_REGULATE) {
            if ((rc = nth_target_dist(&q, res.target, want - slot - 1, &sr.d_min, err))) goto done;
            stream_free(&sin);   /* the waypoint moved */
            stream_free(&sout);
        }
        best b;
        int tier, explored;
        if ((rc = pick_slot(&q, &sr, &sin, &sout, slot, way, explore_rate, &b, &tier, &explored, err))) goto done;
        if (b.track < 0) break;
        if ((rc = add_item(&q, &sr, &res, &rx, slot, way, &b, tier, explored, err))) goto done;
    }
    res.exact = !q.approx;
    write_note(&res, p.n, &rx);
done:
    stream_free(&sin);
    stream_free(&sout);
    free(q.blocked);
    free(q.boosted);
    free(q.chosen);
    free(q.memo);
    if (have_prefs) mm_feedback_prefs_free(&prefs);
    if (rc) { free(res.items); return rc; }
    *out = res;
    return 0;
}
