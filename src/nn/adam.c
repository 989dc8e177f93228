/* adam.c — Adam / AdamW over a flat float32 vector (see adam.h).
 * Reference: torch.optim.Adam and AdamW (single-tensor path, PyTorch 1.13):
 * the same order of operations, in float32 for the moments. Leaves out
 * amsgrad and maximize. */
#include "nn/adam.h"

#include <math.h>
#include <string.h>
#include <stdlib.h>
#include "core/cpu.h"
#include "nn/par.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX_STEP 1
#endif

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
    /* zeroed by writing, not calloc: calloc's fresh pages are the shared zero
     * page until written, and the first step reads each moment before writing
     * it, so every page would fault twice, the second time a copy-on-write
     * that flushes the other threads' TLBs (an IPI per page: on the 2-core VM
     * 0.07 s of Table I's first step) */
    a->m = mm_malloc(n, sizeof *a->m, err);
    a->v = a->m ? mm_malloc(n, sizeof *a->v, err) : NULL;
    if (!a->v) { mm_adam_free(a); return MM_ENOMEM; }
    memset(a->m, 0, n * sizeof *a->m);
    memset(a->v, 0, n * sizeof *a->v);
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
    int avx;   /* adam_avx may run */
} adam_job;

#ifdef HAVE_AVX_STEP
/* Values [lo, hi) without weight decay, 8 at a time, each with adam_item's
 * float operations in its order (sqrt correctly rounded, no contraction):
 * the same bits. Written with intrinsics because sqrtf's errno keeps the
 * compiler from vectorising the plain loop. Returns where it stopped. */
__attribute__((target("avx"))) static size_t adam_avx(const adam_job *j, size_t lo, size_t hi)
{
    const __m256 b1 = _mm256_set1_ps(j->b1), c1 = _mm256_set1_ps(1 - j->b1), b2 = _mm256_set1_ps(j->b2);
    const __m256 c2 = _mm256_set1_ps(1 - j->b2), eps = _mm256_set1_ps(j->eps), step = _mm256_set1_ps(j->step);
    const __m256 bc2s = _mm256_set1_ps(j->bc2s);
    size_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 g = _mm256_loadu_ps(j->grad + i), m = _mm256_loadu_ps(j->m + i), v = _mm256_loadu_ps(j->v + i);
        m = _mm256_add_ps(_mm256_mul_ps(m, b1), _mm256_mul_ps(c1, g));
        v = _mm256_add_ps(_mm256_mul_ps(v, b2), _mm256_mul_ps(_mm256_mul_ps(c2, g), g));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(v), bc2s), eps);
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(j->theta + i), _mm256_div_ps(_mm256_mul_ps(step, m), denom));
        _mm256_storeu_ps(j->m + i, m);
        _mm256_storeu_ps(j->v + i, v);
        _mm256_storeu_ps(j->theta + i, t);
    }
    return i;
}
#endif

/* Values [it ADAM_CHUNK, (it + 1) ADAM_CHUNK) of the step (elementwise, so the
 * split never changes a result). */
static void adam_item(void *ctx, size_t it)
{
    const adam_job *j = ctx;
    size_t lo = it * ADAM_CHUNK, hi = j->n - lo < ADAM_CHUNK ? j->n : lo + ADAM_CHUNK;
#ifdef HAVE_AVX_STEP
    if (j->wd == 0 && j->avx) lo = adam_avx(j, lo, hi);
#endif
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
                  .decoupled = a->p.wd_mode == MM_ADAM_WD_DECOUPLED, .avx = mm_cpu_avx2_fma()};
    /* nn/par items, not an OpenMP loop: OpenMP's team would spin on the cores the
     * layer kernels' helpers need */
    mm_par_for_n((a->n + ADAM_CHUNK - 1) / ADAM_CHUNK, adam_item, &j, mm_par_helpers_for((double)a->n));
}
