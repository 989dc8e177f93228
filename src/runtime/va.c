/* va.c — emotion words and labels on the valence–arousal plane.
 *
 * Reads the points of a recommend config (NRC VAD v1.0 scores, Mohammad
 * 2018, mapped from [0, 1] to [-1, 1] by 2x − 1), places the 4Q labels at
 * their quadrant centres, and averages merged labels. Leaves out dominance
 * and any per-user calibration of the plane.
 */
#include "runtime/va.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct va_word {
    char *word;
    mm_va p;
} va_word;

typedef struct va_merge {
    char *label;
    char **words;
    size_t n;
} va_merge;

struct mm_va_table {
    va_word *words;
    size_t n_words;
    va_merge *merges;
    size_t n_merges;
    mm_va target;
};

void mm_va_table_free(mm_va_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_words; i++) free(t->words[i].word);
    free(t->words);
    for (size_t i = 0; i < t->n_merges; i++) {
        free(t->merges[i].label);
        for (size_t j = 0; j < t->merges[i].n; j++) free(t->merges[i].words[j]);
        free(t->merges[i].words);
    }
    free(t->merges);
    free(t);
}

static const va_word *find_word(const mm_va_table *t, const char *w)
{
    for (size_t i = 0; i < t->n_words; i++)
        if (!strcasecmp(t->words[i].word, w)) return &t->words[i];
    return NULL;
}

/* Q1..Q4 (case-insensitive) → quadrant centre. */
static int quadrant_label(const char *s, mm_va *out)
{
    if ((s[0] != 'q' && s[0] != 'Q') || s[1] < '1' || s[1] > '4' || s[2]) return 0;
    static const float c[4][2] = {{0.5f, 0.5f}, {-0.5f, 0.5f}, {-0.5f, -0.5f}, {0.5f, -0.5f}};
    out->valence = c[s[1] - '1'][0];
    out->arousal = c[s[1] - '1'][1];
    return 1;
}

/* A {valence, arousal} map in the given scale (unit: [0, 1] mapped; signed: [-1, 1]). */
static int read_point(const mm_cfg *map, const char *what, int unit, mm_va *out, mm_err *err)
{
    char where[256];
    if (map->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: %s: expected a map {valence, arousal}",
                          mm_cfg_where(map, where, sizeof where), what);
    static const char *const keys[] = {"valence", "arousal", NULL};
    int rc = mm_cfg_check_keys(map, what, keys, err);
    if (rc) return rc;
    double lo = unit ? 0.0 : -1.0, v, a;
    if (!mm_cfg_child(map, "valence") || !mm_cfg_child(map, "arousal"))
        return mm_err_set(err, MM_EINVAL, "%s: %s: needs both valence and arousal",
                          mm_cfg_where(map, where, sizeof where), what);
    if ((rc = mm_cfg_get_double(map, "valence", 0, lo, 1.0, &v, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "arousal", 0, lo, 1.0, &a, err))) return rc;
    if (unit) { v = 2 * v - 1; a = 2 * a - 1; }
    out->valence = (float)v;
    out->arousal = (float)a;
    return 0;
}

int mm_va_table_from_cfg(const mm_cfg *root, mm_va_table **out, mm_err *err)
{
    char where[256];
    int rc = 0;
    if (!root || root->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "valence–arousal config: expected a map");
    /* the recommender config's top level (its `recommend` map is read by mm_recommend_params_from_cfg) */
    static const char *const top_keys[] = {"include", "scale", "emotions", "merges", "target", "recommend", NULL};
    if ((rc = mm_cfg_check_keys(root, root->file ? root->file : "valence–arousal config", top_keys, err))) return rc;
    mm_va_table *t = mm_calloc(1, sizeof *t, err);
    if (!t) return MM_ENOMEM;
    static const char *const scales[] = {"unit", "signed", NULL};
    int scale = 0;
    if ((rc = mm_cfg_get_choice(root, "scale", scales, 0, &scale, err))) goto fail;
    const mm_cfg *em = mm_cfg_child(root, "emotions");
    if (!em || em->type != MM_CFG_MAP || em->n == 0) {
        rc = mm_err_set(err, MM_EINVAL, "%s: key 'emotions': expected a map word → {valence, arousal}",
                        em ? mm_cfg_where(em, where, sizeof where) : (root->file ? root->file : "config"));
        goto fail;
    }
    if (!(t->words = mm_calloc(em->n, sizeof *t->words, err))) { rc = MM_ENOMEM; goto fail; }
    for (size_t i = 0; i < em->n; i++) {
        const mm_cfg *c = em->items[i];
        char what[160];
        snprintf(what, sizeof what, "emotions.%s", c->key);
        if (find_word(t, c->key)) {
            rc = mm_err_set(err, MM_EINVAL, "%s: emotion '%s' listed twice",
                            mm_cfg_where(c, where, sizeof where), c->key);
            goto fail;
        }
        mm_va p;
        if ((rc = read_point(c, what, scale == 0, &p, err))) goto fail;
        if (!(t->words[t->n_words].word = strdup(c->key))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto fail; }
        t->words[t->n_words++].p = p;
    }
    const mm_cfg *mg = mm_cfg_child(root, "merges");
    if (mg && mg->type != MM_CFG_NULL) {
        if (mg->type != MM_CFG_MAP) {
            rc = mm_err_set(err, MM_EINVAL, "%s: key 'merges': expected a map label → [words]",
                            mm_cfg_where(mg, where, sizeof where));
            goto fail;
        }
        if (!(t->merges = mm_calloc(mg->n ? mg->n : 1, sizeof *t->merges, err))) { rc = MM_ENOMEM; goto fail; }
        for (size_t i = 0; i < mg->n; i++) {
            const mm_cfg *c = mg->items[i];
            if (c->type != MM_CFG_SEQ || c->n == 0) {
                rc = mm_err_set(err, MM_EINVAL, "%s: merges.%s: expected a non-empty list of emotion words",
                                mm_cfg_where(c, where, sizeof where), c->key);
                goto fail;
            }
            va_merge *m = &t->merges[t->n_merges++];
            if (!(m->label = strdup(c->key)) || !(m->words = calloc(c->n, sizeof *m->words))) {
                rc = mm_err_set(err, MM_ENOMEM, "out of memory");
                goto fail;
            }
            for (size_t j = 0; j < c->n; j++) {
                const mm_cfg *w = c->items[j];
                if (w->type != MM_CFG_SCALAR || !find_word(t, w->value)) {
                    rc = mm_err_set(err, MM_EINVAL, "%s: merges.%s: '%s' is not in emotions",
                                    mm_cfg_where(w, where, sizeof where), c->key,
                                    w->value ? w->value : "(not a word)");
                    goto fail;
                }
                if (!(m->words[m->n++] = strdup(w->value))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto fail; }
            }
        }
    }
    t->target.valence = 0;
    t->target.arousal = 0;
    const mm_cfg *tg = mm_cfg_child(root, "target");
    const char *tword = "calm";
    if (tg && tg->type == MM_CFG_MAP) {
        if ((rc = read_point(tg, "target", 0, &t->target, err))) goto fail;
        tword = NULL;
    } else if (tg && tg->type == MM_CFG_SCALAR) {
        tword = tg->value;
    } else if (tg && tg->type != MM_CFG_NULL) {
        rc = mm_err_set(err, MM_EINVAL, "%s: key 'target': expected an emotion word or {valence, arousal}",
                        mm_cfg_where(tg, where, sizeof where));
        goto fail;
    }
    if (tword) {
        const va_word *w = find_word(t, tword);
        if (!w) {
            if (tg) rc = mm_err_set(err, MM_EINVAL, "%s: key 'target': '%s' is not in emotions",
                                    mm_cfg_where(tg, where, sizeof where), tword);
            else rc = mm_err_set(err, MM_EINVAL, "%s: no 'target' and no 'calm' in emotions",
                                 root->file ? root->file : "config");
            goto fail;
        }
        t->target = w->p;
    }
    *out = t;
    return 0;
fail:
    mm_va_table_free(t);
    return rc;
}

int mm_va_table_load(const char *path, mm_va_table **out, mm_err *err)
{
    mm_cfg *c = NULL;
    int rc = mm_cfg_load_file(path, &c, err);
    if (rc) return rc;
    rc = mm_va_table_from_cfg(c, out, err);
    mm_cfg_free(c);
    return rc;
}

int mm_va_lookup(const mm_va_table *t, const char *word, mm_va *out, mm_err *err)
{
    if (!word) return mm_err_set(err, MM_EINVAL, "emotion word: NULL");
    if (quadrant_label(word, out)) return 0;
    const va_word *w = t ? find_word(t, word) : NULL;
    if (!w) return mm_err_set(err, MM_EINVAL, "emotion '%s' has no valence–arousal point in the config", word);
    *out = w->p;
    return 0;
}

mm_va mm_va_table_target(const mm_va_table *t)
{
    return t->target;
}

static int in_labels(const char *w, const char *const *labels, int n)
{
    for (int i = 0; i < n; i++)
        if (labels[i] && !strcasecmp(labels[i], w)) return 1;
    return 0;
}

int mm_va_label_points(const mm_va_table *t, const char *const *labels, int n, mm_va *points,
                       mm_err *err)
{
    if (n <= 0) return mm_err_set(err, MM_EINVAL, "no labels to place on the valence–arousal plane");
    mm_va *tmp = mm_malloc((size_t)n, sizeof *tmp, err);
    if (!tmp) return MM_ENOMEM;
    for (int k = 0; k < n; k++) {
        const char *l = labels[k];
        if (!l || !*l) { free(tmp); return mm_err_set(err, MM_EINVAL, "label %d is empty", k); }
        if (quadrant_label(l, &tmp[k])) continue;
        const va_merge *m = NULL;
        for (size_t i = 0; t && i < t->n_merges; i++)
            if (!strcasecmp(t->merges[i].label, l)) m = &t->merges[i];
        int use_merge = m != NULL;
        for (size_t j = 0; m && j < m->n; j++)
            if (strcasecmp(m->words[j], l) && in_labels(m->words[j], labels, n)) use_merge = 0;
        if (use_merge) {
            double v = 0, a = 0;
            for (size_t j = 0; j < m->n; j++) {
                const va_word *w = find_word(t, m->words[j]);
                v += w->p.valence;
                a += w->p.arousal;
            }
            tmp[k].valence = (float)(v / (double)m->n);
            tmp[k].arousal = (float)(a / (double)m->n);
            continue;
        }
        int rc = mm_va_lookup(t, l, &tmp[k], err);
        if (rc) { free(tmp); return rc; }
    }
    memcpy(points, tmp, (size_t)n * sizeof *points);
    free(tmp);
    return 0;
}

mm_va mm_va_expected(const mm_va *points, const float *proba, int n)
{
    double v = 0, a = 0, s = 0;
    for (int k = 0; k < n; k++) {
        double p = proba[k] > 0 ? proba[k] : 0;
        v += p * points[k].valence;
        a += p * points[k].arousal;
        s += p;
    }
    mm_va r = {0, 0};
    if (s > 0) { r.valence = (float)(v / s); r.arousal = (float)(a / s); }
    return r;
}

int mm_va_quadrant(mm_va p)
{
    if (p.valence >= 0) return p.arousal >= 0 ? 1 : 4;
    return p.arousal >= 0 ? 2 : 3;
}

float mm_va_dist(mm_va a, mm_va b)
{
    double dv = (double)a.valence - b.valence, da = (double)a.arousal - b.arousal;
    return (float)sqrt(dv * dv + da * da);
}
