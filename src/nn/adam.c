/* adam.c — Adam / AdamW over a flat float32 vector (see adam.h).
 * Reference: torch.optim.Adam and AdamW (single-tensor path, PyTorch 1.13):
 * the same order of operations, in float32 for the moments. Leaves out
 * amsgrad and maximize. */
#include "nn/adam.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include "nn/par.h"

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

/* One step's constants and arrays, shared by its items of ADAM_CHUNK values. */
#define ADAM_CHUNK ((size_t)1 << 14)
typedef struct adam_job {
    size_t n;
    float *theta, *m, *v;
    const float *grad;
    float b1, b2, eps, wd, step, bc2s, shrink;
    int decoupled;
} adam_job;

/* Values [it ADAM_CHUNK, (it + 1) ADAM_CHUNK) of the step (elementwise, so the
 * split never changes a result). */
static void adam_item(void *ctx, size_t it)
{
    const adam_job *j = ctx;
    size_t lo = it * ADAM_CHUNK, hi = j->n - lo < ADAM_CHUNK ? j->n : lo + ADAM_CHUNK;
    const float b1 = j->b1, b2 = j->b2, eps = j->eps, wd = j->wd, step = j->step, bc2s = j->bc2s;
    const float shrink = j->shrink;
    float *restrict theta = j->theta, *restrict m = j->m, *restrict v = j->v;
    const float *restrict grad = j->grad;
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i];
        if (wd != 0) {
            if (j->decoupled) theta[i] *= shrink;
            else g += wd * theta[i];
        }
        m[i] = m[i] * b1 + (1 - b1) * g;          /* torch: lerp(m, g, 1-b1) */
        v[i] = v[i] * b2 + (1 - b2) * g * g;
        float denom = sqrtf(v[i]) / bc2s + eps;
        theta[i] -= step * m[i] / denom;
    }
}

void mm_adam_step(mm_adam *a, float *theta, const float *grad, double lr)
{
    a->t++;
    const double bc1 = 1.0 - pow(a->p.beta1, (double)a->t);
    const double bc2 = 1.0 - pow(a->p.beta2, (double)a->t);
    adam_job j = {.n = a->n, .theta = theta, .m = a->m, .v = a->v, .grad = grad, .b1 = (float)a->p.beta1,
                  .b2 = (float)a->p.beta2, .eps = (float)a->p.eps, .wd = (float)a->p.weight_decay,
                  .step = (float)(lr / bc1), .bc2s = (float)sqrt(bc2),
                  .shrink = (float)(1.0 - lr * a->p.weight_decay),
                  .decoupled = a->p.wd_mode == MM_ADAM_WD_DECOUPLED};
    /* nn/par items, not an OpenMP loop: OpenMP's team would spin on the cores the
     * layer kernels' helpers need */
    int helpers = a->n > 65536 && !omp_in_parallel() ? omp_get_max_threads() - 1 : 0;
    mm_par_for_n((a->n + ADAM_CHUNK - 1) / ADAM_CHUNK, adam_item, &j, helpers);
}
