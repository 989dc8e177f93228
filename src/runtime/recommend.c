/* recommend.c — playlists from a listener's emotion: policies match and regulate.
 *
 * The listener is the probability-weighted valence–arousal point of the
 * speech labels. `match` follows the paper (music of the listener's emotion:
 * same quadrant, nearest first, confident tracks first); `regulate` follows
 * the iso principle of music therapy (start at the listener's state, step
 * toward a calm–positive target). Slots are filled greedily by maximal
 * marginal relevance (Carbonell & Goldstein 1998) over cosine similarity of
 * the embeddings. Leaves out collaborative signals between users.
 */
#include "runtime/recommend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/sgemm.h"

#define MAX_N 1000

#define SIM_MAX_TRACKS 4096     /* 64 MB of pairwise similarities at most */

struct mm_recommender {
    const mm_library *lib;
    int n_labels;
    char **labels;          /* (n_labels) speech labels */
    mm_va *label_va;        /* (n_labels) */
    float *inv_norm;        /* (n tracks) 1/‖embedding‖ (0 for a zero vector) */
    float *sim;             /* (n, n) cosine similarities of the tracks, or NULL (large libraries) */
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
}

int mm_recommend_params_from_cfg(const mm_cfg *map, const mm_va_table *va, mm_recommend_params *p,
                                 mm_err *err)
{
    if (!map || map->type == MM_CFG_NULL) return 0;
    char where[256];
    if (map->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: 'recommend': expected a map", mm_cfg_where(map, where, sizeof where));
    static const char *const keys[] = {"policy", "n", "seed", "lambda", "w_confidence", "w_like",
                                       "w_artist", "w_skip", "target", NULL};
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
    free(r->inv_norm);
    free(r->sim);
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
    size_t n = mm_library_size(lib), dim = mm_library_dim(lib);
    r->lib = lib;
    r->labels = mm_calloc((size_t)n_speech, sizeof *r->labels, err);
    r->label_va = mm_malloc((size_t)n_speech, sizeof *r->label_va, err);
    r->inv_norm = mm_malloc(n ? n : 1, sizeof *r->inv_norm, err);
    if (!r->labels || !r->label_va || !r->inv_norm) { rc = MM_ENOMEM; goto fail; }
    r->n_labels = n_speech;
    if (va) { r->target = mm_va_table_target(va); r->has_target = 1; }
    for (int k = 0; k < n_speech; k++)
        if (!(r->labels[k] = strdup(speech_labels[k] ? speech_labels[k] : ""))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto fail; }
    if ((rc = mm_va_label_points(va, speech_labels, n_speech, r->label_va, err))) {
        mm_err_prefix(err, "speech labels");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const float *e = mm_library_track_at(lib, i)->embedding;
        double s = 0;
        for (size_t d = 0; d < dim; d++) s += (double)e[d] * e[d];
        r->inv_norm[i] = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
    }
    /* Libraries of up to SIM_MAX_TRACKS tracks: every pair's cosine once, by a
     * matrix product of the unit vectors (a recommendation then looks them up;
     * with 1,849-d embeddings computing them per request cost 3 ms). */
    if (n >= 1 && n <= SIM_MAX_TRACKS && dim >= 1) {
        float *u = mm_malloc(n * dim, sizeof *u, err);
        r->sim = u ? mm_malloc(n * n, sizeof *r->sim, err) : NULL;
        if (!u || !r->sim) { free(u); rc = MM_ENOMEM; goto fail; }
        for (size_t i = 0; i < n; i++) {
            const float *e = mm_library_track_at(lib, i)->embedding;
            for (size_t d = 0; d < dim; d++) u[i * dim + d] = (float)((double)e[d] * r->inv_norm[i]);
        }
        mm_sgemm(CblasNoTrans, CblasTrans, n, n, dim, u, dim, u, dim, 0.f, r->sim, n);
        free(u);
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

static double cosine(const mm_recommender *r, size_t a, size_t b)
{
    if (r->sim) return r->sim[a * mm_library_size(r->lib) + b];
    const float *x = mm_library_track_at(r->lib, a)->embedding, *y = mm_library_track_at(r->lib, b)->embedding;
    size_t dim = mm_library_dim(r->lib), d = 0;
    /* eight independent partial sums in a fixed order: one long dependent chain
     * of double additions was most of a recommendation's time */
    double p[8] = {0};
    for (; d + 8 <= dim; d += 8)
        for (int k = 0; k < 8; k++) p[k] += (double)x[d + k] * y[d + k];
    for (int k = 0; d < dim; d++, k++) p[k] += (double)x[d] * y[d];
    double s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    return s * r->inv_norm[a] * r->inv_norm[b];
}

/* Per-track state during one recommendation. */
typedef struct cand {
    int excluded;       /* disliked or already chosen */
    int in_quadrant;    /* match: the track's quadrant is the listener's */
    double fb;          /* feedback adjustment of the relevance */
    double jitter;      /* seeded tie-breaker, ≪ any real difference */
    double max_sim;     /* max cosine to the chosen tracks (−1 when none chosen) */
    int liked, artist_likes, skips;
} cand;

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

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Number of values ≤ v in sorted a[0..n). */
static size_t count_le(const float *a, size_t n, float v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] <= v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static int same_artist(const mm_library_track *a, const mm_library_track *b)
{
    return a && b && a->artist[0] && b->artist[0] && !strcmp(a->artist, b->artist);
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

int mm_recommend(const mm_recommender *r, const float *proba, const mm_recommend_params *pin,
                 mm_feedback *fb, mm_rec_result *out, mm_err *err)
{
    mm_recommend_params p;
    if (pin) p = *pin; else mm_recommend_params_default(&p);
    if (!r || !proba) return mm_err_set(err, MM_EINVAL, "recommend: no recommender or probabilities");
    if (p.n < 1 || p.n > MAX_N) return mm_err_set(err, MM_EINVAL, "recommend: n = %zu, expected 1..%d", p.n, MAX_N);
    if (!(p.lambda >= 0 && p.lambda <= 1)) return mm_err_set(err, MM_EINVAL, "recommend: lambda = %g, expected 0..1", p.lambda);
    if (p.policy != MM_POLICY_MATCH && p.policy != MM_POLICY_REGULATE)
        return mm_err_set(err, MM_EINVAL, "recommend: policy %d: expected match or regulate", (int)p.policy);
    if (p.has_target && !(fabsf(p.target.valence) <= 1 && fabsf(p.target.arousal) <= 1))
        return mm_err_set(err, MM_EINVAL, "recommend: target (%g, %g) outside [-1, 1]",
                          (double)p.target.valence, (double)p.target.arousal);
    double psum = 0;
    int top = 0;
    for (int k = 0; k < r->n_labels; k++) {
        if (!isfinite(proba[k]) || proba[k] < 0)
            return mm_err_set(err, MM_EINVAL, "recommend: probability of '%s' is %g, expected a finite value >= 0",
                              r->labels[k], (double)proba[k]);
        psum += proba[k];
        if (proba[k] > proba[top]) top = k;
    }
    if (!(psum > 0)) return mm_err_set(err, MM_EINVAL, "recommend: the speech probabilities are all zero");

    const mm_library *lib = r->lib;
    size_t n_tr = mm_library_size(lib);
    mm_rec_result res;
    memset(&res, 0, sizeof res);
    res.policy = p.policy;
    res.listener = mm_va_expected(r->label_va, proba, r->n_labels);
    res.listener_quadrant = listener_quadrant(r, proba, res.listener);
    res.top_label = top;
    res.top_proba = (float)(proba[top] / psum);
    res.target = res.listener;
    if (p.policy == MM_POLICY_REGULATE) res.target = p.has_target ? p.target : r->target;
    int rc = 0;
    mm_feedback_prefs prefs = {0};
    int have_prefs = 0;
    cand *c = NULL;
    float *td_sorted = NULL;    /* (n tracks) regulate: distances to the target, sorted */
    if (fb && p.user && p.user[0]) {
        if ((rc = mm_feedback_prefs_get(fb, p.user, &prefs, err))) return rc;
        have_prefs = 1;
    }
    c = mm_calloc(n_tr ? n_tr : 1, sizeof *c, err);
    td_sorted = mm_malloc(n_tr ? n_tr : 1, sizeof *td_sorted, err);
    res.items = mm_calloc(p.n, sizeof *res.items, err);
    if (!c || !td_sorted || !res.items) { rc = MM_ENOMEM; goto done; }
    if (p.policy == MM_POLICY_REGULATE && !p.has_target && !r->has_target) {
        rc = mm_err_set(err, MM_EINVAL, "recommend: policy regulate needs a target (params.target or the config's)");
        goto done;
    }
    size_t n_avail = 0, n_in_q = 0;
    for (size_t i = 0; i < n_tr; i++) {
        const mm_library_track *t = mm_library_track_at(lib, i);
        mm_rng g;
        mm_rng_seed(&g, p.seed, i, 0x7265636fULL);
        c[i].jitter = 1e-9 * mm_rng_uniform(&g);
        c[i].max_sim = -1;
        c[i].in_quadrant = t->quadrant == res.listener_quadrant;
        if (have_prefs) {
            int skips = 0, st = mm_feedback_prefs_track(&prefs, t->id, &skips);
            int al = mm_feedback_prefs_artist(&prefs, t->artist);
            if (st < 0) { c[i].excluded = 1; res.n_excluded++; continue; }
            c[i].liked = st > 0;
            c[i].artist_likes = al;
            c[i].skips = skips;
            c[i].fb = p.w_like * (st > 0) + p.w_artist * (al < 3 ? al : 3) - p.w_skip * (skips < 3 ? skips : 3);
        }
        n_avail++;
        if (c[i].in_quadrant) n_in_q++;
    }
    size_t want = p.n < n_avail ? p.n : n_avail;
    double prev_target_dist = INFINITY;
    const mm_library_track *prev = NULL;
    char lbuf[64], tbuf[64], wbuf[64], line[1024];
    fmt_va(lbuf, sizeof lbuf, res.listener);
    for (size_t slot = 0; slot < want; slot++) {
        mm_va way = res.listener;
        if (p.policy == MM_POLICY_REGULATE && want > 1) {
            double f = (double)slot / (double)(want - 1);
            way.valence = (float)(res.listener.valence + f * (res.target.valence - res.listener.valence));
            way.arousal = (float)(res.listener.arousal + f * (res.target.arousal - res.listener.arousal));
        }
        /* Tiers, best first: 0 fits every rule; then the rules are relaxed
         * one by one (match: quadrant; regulate: monotone approach; last:
         * artist twice in a row). */
        /* regulate: a track qualifies when no farther from the target than
         * the previous one and when enough tracks at most as far remain for
         * the slots after it (so the approach never runs dry). */
        size_t n_td = 0, remaining = want - slot - 1;
        if (p.policy == MM_POLICY_REGULATE) {
            for (size_t i = 0; i < n_tr; i++)
                if (!c[i].excluded) td_sorted[n_td++] = mm_va_dist(mm_library_track_at(lib, i)->va, res.target);
            qsort(td_sorted, n_td, sizeof *td_sorted, cmp_float);
        }
        long best = -1;
        int best_tier = 99;
        double best_score = -INFINITY, best_rel = 0, best_dist = 0;
        for (size_t i = 0; i < n_tr; i++) {
            if (c[i].excluded) continue;
            const mm_library_track *t = mm_library_track_at(lib, i);
            double dist = mm_va_dist(way, t->va);
            int rule1;
            if (p.policy == MM_POLICY_MATCH) {
                rule1 = c[i].in_quadrant;
            } else {
                float td = mm_va_dist(t->va, res.target);
                rule1 = td <= prev_target_dist + 1e-6 && count_le(td_sorted, n_td, td) - 1 >= remaining;
            }
            int artist_ok = !same_artist(prev, t);
            int tier = artist_ok ? (rule1 ? 0 : 1) : (rule1 ? 2 : 3);
            if (tier > best_tier) continue;
            double rel = -dist + p.w_confidence * t->confidence + c[i].fb + c[i].jitter;
            double score = p.lambda * rel - (1 - p.lambda) * (c[i].max_sim > 0 ? c[i].max_sim : 0);
            if (tier < best_tier || score > best_score) {
                best = (long)i;
                best_tier = tier;
                best_score = score;
                best_rel = rel;
                best_dist = dist;
            }
        }
        if (best < 0) break;
        size_t b = (size_t)best;
        const mm_library_track *t = mm_library_track_at(lib, b);
        mm_rec_item *it = &res.items[res.n++];
        it->track = b;
        it->relevance = (float)best_rel;
        it->score = (float)best_score;
        it->distance = (float)best_dist;
        fmt_va(tbuf, sizeof tbuf, t->va);
        char extra[96] = "";
        size_t el = 0;
        if (c[b].liked) el += (size_t)snprintf(extra + el, sizeof extra - el, "; you liked it");
        else if (c[b].artist_likes) el += (size_t)snprintf(extra + el, sizeof extra - el, "; you like this artist");
        if (c[b].skips && el < sizeof extra) el += (size_t)snprintf(extra + el, sizeof extra - el, "; skipped %d×", c[b].skips);
        if (best_tier >= 2 && el < sizeof extra) snprintf(extra + el, sizeof extra - el, "; same artist again (no other left)");
        if (p.policy == MM_POLICY_MATCH) {
            if (best_tier == 1 || best_tier == 3) {
                it->filled = 1;
                res.n_filled++;
                snprintf(line, sizeof line,
                         "filler: only %zu tracks in Q%d; nearest other (Q%d, %s) at %.2f from the listener (%s)%s",
                         n_in_q, res.listener_quadrant, t->quadrant, tbuf, best_dist, lbuf, extra);
            } else {
                snprintf(line, sizeof line,
                         "Q%d like the listener (%s, %s %.0f%%): track %s at %.2f, %s %.0f%%%s",
                         t->quadrant, r->labels[top], lbuf, 100.0 * res.top_proba, tbuf, best_dist,
                         mm_library_class_name(lib, t->top_class), 100.0 * t->confidence, extra);
            }
        } else {
            fmt_va(wbuf, sizeof wbuf, way);
            double td = mm_va_dist(t->va, res.target);
            snprintf(line, sizeof line,
                     "step %zu/%zu from %s (%s) toward the target: waypoint %s, track %s, %.2f from the target%s%s",
                     slot + 1, want, r->labels[top], lbuf, wbuf, tbuf, td,
                     best_tier == 1 || best_tier == 3 ? " (no nearer track left)" : "", extra);
            if (td < prev_target_dist) prev_target_dist = td;
        }
        copy_line(it->reason, sizeof it->reason, line);
        c[b].excluded = 1;
        prev = t;
        if (p.lambda < 1)
            for (size_t i = 0; i < n_tr; i++) {
                if (c[i].excluded) continue;
                double s = cosine(r, i, b);
                if (s > c[i].max_sim) c[i].max_sim = s;
            }
    }
    if (p.policy == MM_POLICY_MATCH)
        snprintf(line, sizeof line, "match: listener %s (%s, Q%d); %zu tracks in Q%d%s%s",
                 r->labels[top], lbuf, res.listener_quadrant, n_in_q, res.listener_quadrant,
                 res.n_filled ? ", filled with the nearest others" : "",
                 res.n < p.n ? "; fewer tracks than asked" : "");
    else {
        fmt_va(tbuf, sizeof tbuf, res.target);
        snprintf(line, sizeof line, "regulate: from %s (%s) to %s in %zu steps%s", r->labels[top], lbuf,
                 tbuf, res.n, res.n < p.n ? "; fewer tracks than asked" : "");
    }
    copy_line(res.note, sizeof res.note, line);
done:
    free(c);
    free(td_sorted);
    if (have_prefs) mm_feedback_prefs_free(&prefs);
    if (rc) { free(res.items); return rc; }
    *out = res;
    return 0;
}
