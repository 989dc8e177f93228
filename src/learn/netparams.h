/* netparams.h — the training keys shared by the neural learners (mlp,
 * cnn1d) as a parameter table (learn/params.h) over mm_train_params
 * (nn/train.h): batch_size, Adam's betas, epsilon and weight decay, alpha,
 * the learning-rate schedule, early stopping, tol, shuffling, label
 * smoothing and class weights. Each learner includes it in its own table
 * with MM_PARAM_INCLUDE at the offset of its mm_train_params and names the
 * keys it renames (epochs, learning rate, patience) or re-defaults itself.
 */
#ifndef MM_LEARN_NETPARAMS_H
#define MM_LEARN_NETPARAMS_H

#include "io/cfg.h"
#include "learn/params.h"
#include "nn/train.h"

/* Rows over mm_train_params; their defaults are mm_train_params_default()'s
 * (tests/test_mlp.c checks that they agree). */
extern const mm_param mm_net_train_rows[];

/* batch_size: 'auto' (0: min(200, n)) or an integer in [1, 2^24] into a
 * size_t field; default row->def. */
int mm_net_parse_batch_size(const mm_param *row, const mm_cfg *map, void *field, mm_err *err);

/* Checks across keys after parsing: a cosine schedule's lr_min may not
 * exceed the learning rate. map (may be NULL) locates the error. */
int mm_net_train_check(const mm_train_params *p, const mm_cfg *map, mm_err *err);

#endif
