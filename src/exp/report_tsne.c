/* report_tsne.c — the t-SNE figure of an experiment (the paper's Fig. 4):
 * standardise the features, subsample at most max_points rows (the same
 * fraction of every class, seeded), run Barnes–Hut t-SNE (src/eval/tsne.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "eval/tsne.h"
#include "exp/report.h"

int mm_report_tsne(const mm_report_input *in, float **xy_out, int32_t **lab_out, int32_t **idx_out,
                   size_t *n_out, double *kl, mm_err *err)
{
    const mm_table *t = in->table;
    size_t n = t->n, d = t->d;
    int k = t->n_classes;
    size_t want = (size_t)in->tsne->max_points < n ? (size_t)in->tsne->max_points : n;
    /* per-class shuffled order; take ceil(share) of each class until `want` rows */
    size_t *order = malloc((n + 1) * sizeof *order);
    size_t *pick = malloc((n + 1) * sizeof *pick);
    if (!order || !pick) { free(order); free(pick); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    size_t m = 0;
    for (int c = 0; c < k; c++) {
        size_t nc = 0;
        for (size_t i = 0; i < n; i++) if (t->labels[i] == c) order[nc++] = i;
        mm_rng r;
        mm_rng_seed(&r, in->seed, 0x75e1, (uint64_t)c);
        mm_rng_shuffle_size(&r, order, nc);
        size_t take = want == n ? nc : (size_t)ceil((double)nc * want / n);
        for (size_t j = 0; j < take && j < nc && m < want; j++) pick[m++] = order[j];
    }
    free(order);
    /* ascending row order, so the subsample does not depend on class order */
    for (size_t a = 1; a < m; a++)
        for (size_t b = a; b > 0 && pick[b - 1] > pick[b]; b--) { size_t x = pick[b]; pick[b] = pick[b - 1]; pick[b - 1] = x; }
    float *X = malloc((m + 1) * d * sizeof *X);
    float *xy = malloc((m + 1) * 2 * sizeof *xy);
    int32_t *lab = malloc((m + 1) * sizeof *lab), *idx = malloc((m + 1) * sizeof *idx);
    if (!X || !xy || !lab || !idx) { free(pick); free(X); free(xy); free(lab); free(idx); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < m; i++) {
        memcpy(X + i * d, t->X + pick[i] * d, d * sizeof *X);
        lab[i] = t->labels[pick[i]];
        idx[i] = (int32_t)pick[i];
    }
    free(pick);
    for (size_t j = 0; j < d; j++) {     /* z-score each column (constant columns → 0) */
        double s = 0, s2 = 0;
        for (size_t i = 0; i < m; i++) s += X[i * d + j];
        double mu = s / (double)m;
        for (size_t i = 0; i < m; i++) { double v = X[i * d + j] - mu; s2 += v * v; }
        double sd = sqrt(s2 / (double)m);
        for (size_t i = 0; i < m; i++) X[i * d + j] = sd > 0 ? (float)((X[i * d + j] - mu) / sd) : 0.f;
    }
    mm_tsne_params p = mm_tsne_params_default();
    p.perplexity = in->tsne->perplexity;
    if (p.perplexity >= (double)(m - 1) / 3.0) p.perplexity = (double)(m - 1) / 3.0;
    p.n_iter = (size_t)in->tsne->n_iter;
    p.n_threads = in->n_threads;
    p.seed = in->seed;
    mm_tsne_info info;
    int rc = m < 5 ? mm_err_set(err, MM_EINVAL, "t-SNE needs at least 5 points, got %zu", m)
                   : mm_tsne_run(X, m, d, &p, xy, &info, err);
    free(X);
    if (rc) { free(xy); free(lab); free(idx); return rc; }
    *xy_out = xy;
    *lab_out = lab;
    *idx_out = idx;
    *n_out = m;
    *kl = info.kl;
    return 0;
}
