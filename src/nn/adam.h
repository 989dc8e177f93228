/* adam.h — the Adam optimiser over one flat float32 parameter vector.
 *
 * Matches torch.optim.Adam (coupled L2: g += wd * theta, then the Adam
 * update) and torch.optim.AdamW (decoupled: theta *= 1 - lr * wd first), with
 * bias correction:  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * theta -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * An mm_adam owns its moment buffers; one optimiser per training run, not
 * shared between threads (the step itself runs on nn/par helper threads, elementwise).
 */
#ifndef MM_NN_ADAM_H
#define MM_NN_ADAM_H

#include <stddef.h>
#include "core/err.h"

typedef enum {
    MM_ADAM_WD_L2 = 0,          /* PyTorch Adam weight_decay (coupled); the default */
    MM_ADAM_WD_DECOUPLED = 1,   /* PyTorch AdamW */
} mm_adam_wd_mode;

typedef struct mm_adam_params {
    double lr;              /* base learning rate (schedules pass the current one to step) */
    double beta1, beta2;    /* moment decay rates, in [0, 1) */
    double eps;             /* denominator floor */
    double weight_decay;    /* >= 0 */
    mm_adam_wd_mode wd_mode;
} mm_adam_params;

/* lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, coupled L2. */
mm_adam_params mm_adam_params_default(void);

typedef struct mm_adam mm_adam;

/* Zeroed moments for n parameters. *out owned by caller (mm_adam_free). */
int mm_adam_create(size_t n, const mm_adam_params *p, mm_adam **out, mm_err *err);
void mm_adam_free(mm_adam *a);
/* One step with learning rate lr on theta (n) given grad (n). With coupled
 * decay, grad is not modified (the decayed gradient is formed on the fly).
 * Increments the step count used for bias correction. */
void mm_adam_step(mm_adam *a, float *theta, const float *grad, double lr);
/* Steps taken so far. */
long mm_adam_steps(const mm_adam *a);

#endif
