/* voting.h — soft / hard voting over any registered learners.
 *
 * As scikit-learn's VotingClassifier: soft averages the members' probabilities
 * (optional weights), hard takes the weighted majority of predicted classes,
 * ties broken here by summed probability. `mm_learner_voting` creates members
 * through mm_learner_create (nested ensembles work). Default voting is soft
 * (sklearn: hard), as the experiment runner's ensembles.
 */
#ifndef MM_VOTING_H
#define MM_VOTING_H

#include <stddef.h>
#include "core/err.h"
#include "learn/learner.h"

/* Combine already computed probability matrices.
 *   probas  (n_models) pointers to (n, k) row-major matrices
 *   weights (n_models) >= 0 with a positive sum, or NULL for equal weights
 *   hard    0: out = Σ w_j p_j / Σ w_j (soft);
 *           1: out = weighted vote shares of the members' argmax classes
 *              (argmax ties → lower class); when the top share is tied, the
 *              winner (largest summed probability, then lower class) gets a
 *              relative 1e-5 of each tied rival's share, so argmax(out) is the
 *              hard-vote winner and rows still sum to 1.
 *   out     (n, k), may not alias an input.
 * Returns 0, or MM_EINVAL for n_models == 0, k < 1, or bad weights. */
int mm_voting_combine(const float *const *probas, size_t n_models, size_t n, int k,
                      const double *weights, int hard, float *out, mm_err *err);

/* Members of a voting learner (for reports and tests): their count, and the
 * j-th member (owned by the ensemble). 0 / NULL when l is not a voting
 * learner or j is out of range. */
size_t mm_voting_n_members(const mm_learner *l);
const mm_learner *mm_voting_member(const mm_learner *l, size_t j);

#endif
