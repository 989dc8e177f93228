/* adam.c — Adam / AdamW over a flat float32 vector (see adam.h).
 * Reference: torch.optim.Adam and AdamW (single-tensor path, PyTorch 1.13):
 * the same order of operations, in float32 for the moments. Leaves out
 * amsgrad and maximize. */
#include "nn/adam.h"

#include <math.h>
#include <stdlib.h>

struct mm_adam {
    size_t n;
    mm_adam_params p;
    long t;          /* steps taken */
    float *m, *v;    /* (n) first and second moments */
};

mm_adam_params mm_adam_params_default(void)
{
    return (mm_adam_params){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                            .weight_decay = 0, .wd_mode = MM_ADAM_WD_L2};
}

int mm_adam_create(size_t n, const mm_adam_params *p, mm_adam **out, mm_err *err)
{
    mm_adam *a = mm_calloc(1, sizeof *a, err);
    if (!a) return MM_ENOMEM;
    a->n = n;
    a->p = *p;
    a->m = mm_calloc(n, sizeof *a->m, err);
    a->v = a->m ? mm_calloc(n, sizeof *a->v, err) : NULL;
    if (!a->v) { mm_adam_free(a); return MM_ENOMEM; }
    *out = a;
    return 0;
}

void mm_adam_free(mm_adam *a)
{
    if (!a) return;
    free(a->m);
    free(a->v);
    free(a);
}

long mm_adam_steps(const mm_adam *a) { return a->t; }

void mm_adam_step(mm_adam *a, float *theta, const float *grad, double lr)
{
    a->t++;
    const float b1 = (float)a->p.beta1, b2 = (float)a->p.beta2, eps = (float)a->p.eps;
    const float wd = (float)a->p.weight_decay;
    const int decoupled = a->p.wd_mode == MM_ADAM_WD_DECOUPLED;
    const double bc1 = 1.0 - pow(a->p.beta1, (double)a->t);
    const double bc2 = 1.0 - pow(a->p.beta2, (double)a->t);
    const float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
    const float shrink = (float)(1.0 - lr * a->p.weight_decay);
    float *m = a->m, *v = a->v;
#pragma omp parallel for schedule(static) if (a->n > 65536)
    for (size_t i = 0; i < a->n; i++) {
        float g = grad[i];
        if (wd != 0) {
            if (decoupled) theta[i] *= shrink;
            else g += wd * theta[i];
        }
        m[i] = m[i] * b1 + (1 - b1) * g;          /* torch: lerp(m, g, 1-b1) */
        v[i] = v[i] * b2 + (1 - b2) * g * g;
        float denom = sqrtf(v[i]) / bc2s + eps;
        theta[i] -= step * m[i] / denom;
    }
}
