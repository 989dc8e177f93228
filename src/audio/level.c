/* level.c — integrated loudness (ITU-R BS.1770-4 / EBU R128), voiced RMS, normalisation.
 *
 * Loudness: K-weighting as two biquads in double (shelf f0 1681.97 Hz, G +4.00 dB, Q 0.7072;
 * RLB high-pass f0 38.135 Hz, Q 0.5003), re-derived for any rate by the bilinear transform
 * exactly as libebur128 does, so at 48 kHz they equal BS.1770-4 Table 1/2. Mean squares of
 * 400 ms blocks every 100 ms, gated at −70 LUFS and then at −10 LU below the mean of the
 * surviving blocks; L = −0.691 + 10·log10(mean z). Mono only (the engine down-mixes): the
 * channel weight is 1. Leaves out: true-peak (the limit here is on the sample peak),
 * loudness range, momentary/short-term meters, multichannel weights.
 */
#include "audio/level.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mm_level_params_default(mm_level_params *p)
{
    memset(p, 0, sizeof *p);
    p->measure = MM_LEVEL_LUFS;
    p->target = -23.0;
    p->peak_limit_dbfs = -1.0;
    p->top_db = 40.0;
}

/* K-weighting for rate sr: b0..b2, a1, a2 of the shelf (s) and of the high-pass (h). */
typedef struct kw { double sb[3], sa[3], hb[3], ha[3]; } kw;

static void kweight(int sr, kw *k)
{
    /* Stage 1, high shelf (models the head): bilinear with prewarping at f0. */
    double f0 = 1681.974450955533, G = 3.999843853973347, Q = 0.7071752369554196;
    double K = tan(M_PI * f0 / sr), Vh = pow(10.0, G / 20.0), Vb = pow(Vh, 0.4996667741545416);
    double a0 = 1.0 + K / Q + K * K;
    k->sb[0] = (Vh + Vb * K / Q + K * K) / a0;
    k->sb[1] = 2.0 * (K * K - Vh) / a0;
    k->sb[2] = (Vh - Vb * K / Q + K * K) / a0;
    k->sa[0] = 1.0;
    k->sa[1] = 2.0 * (K * K - 1.0) / a0;
    k->sa[2] = (1.0 - K / Q + K * K) / a0;
    /* Stage 2, RLB high-pass; numerator 1, −2, 1 as in the standard's table. */
    f0 = 38.13547087602444;
    Q = 0.5003270373238773;
    K = tan(M_PI * f0 / sr);
    a0 = 1.0 + K / Q + K * K;
    k->hb[0] = 1.0;
    k->hb[1] = -2.0;
    k->hb[2] = 1.0;
    k->ha[0] = 1.0;
    k->ha[1] = 2.0 * (K * K - 1.0) / a0;
    k->ha[2] = (1.0 - K / Q + K * K) / a0;
}

/* Per-block mean squares of the K-weighted signal: z[j] over [j·step, j·step + 4·step).
 * The squares are summed per 100 ms step first (each sample once), blocks are 4 steps. */
static int block_powers(const float *x, size_t n, int sr, double **z_out, size_t *nb_out,
                        mm_err *err)
{
    size_t step = (size_t)lround(sr / 10.0), blk = 4 * step;
    if (n < blk)
        return mm_err_set(err, MM_EINVAL,
                          "loudness: %zu samples (%.3f s at %d Hz); expected at least one "
                          "400 ms block (%zu samples)",
                          n, (double)n / sr, sr, blk);
    size_t nsteps = n / step, nb = (n - blk) / step + 1;
    double *s = mm_malloc(nsteps, sizeof *s, err);
    double *z = mm_malloc(nb, sizeof *z, err);
    if (!s || !z) {
        free(s);
        free(z);
        return MM_ENOMEM;
    }
    kw k;
    kweight(sr, &k);
    /* direct form II transposed, both stages in double */
    double s1 = 0, s2 = 0, h1 = 0, h2 = 0;
    for (size_t j = 0; j < nsteps; j++) {
        double acc = 0;
        for (size_t i = j * step; i < (j + 1) * step; i++) {
            double v = x[i];
            double u = k.sb[0] * v + s1;
            s1 = k.sb[1] * v - k.sa[1] * u + s2;
            s2 = k.sb[2] * v - k.sa[2] * u;
            double w = k.hb[0] * u + h1;
            h1 = k.hb[1] * u - k.ha[1] * w + h2;
            h2 = k.hb[2] * u - k.ha[2] * w;
            acc += w * w;
        }
        s[j] = acc;
    }
    for (size_t j = 0; j < nb; j++) z[j] = (s[j] + s[j + 1] + s[j + 2] + s[j + 3]) / (double)blk;
    free(s);
    *z_out = z;
    *nb_out = nb;
    return 0;
}

static double lufs_of(double z) { return -0.691 + 10.0 * log10(z); }

int mm_level_loudness(const float *x, size_t n, int sr, double *lufs, mm_err *err)
{
    if (sr < 8000 || sr > 1000000)
        return mm_err_set(err, MM_EINVAL, "loudness: sample rate %d Hz; expected 8000..1000000",
                          sr);
    if (!x && n)
        return mm_err_set(err, MM_EINVAL, "loudness: no samples (NULL signal of length %zu)", n);
    double *z = NULL;
    size_t nb = 0;
    int rc = block_powers(x, n, sr, &z, &nb, err);
    if (rc) return rc;
    /* absolute gate: blocks louder than −70 LUFS (z > 0 also drops exact silence) */
    double sum = 0;
    size_t cnt = 0;
    for (size_t j = 0; j < nb; j++)
        if (z[j] > 0 && lufs_of(z[j]) > MM_LEVEL_ABS_GATE_LUFS) {
            sum += z[j];
            cnt++;
        }
    double out = -INFINITY;
    if (cnt) {
        /* relative gate: 10 LU below the loudness of the blocks that passed the first gate */
        double rel = lufs_of(sum / cnt) + MM_LEVEL_REL_GATE_LU;
        double s2 = 0;
        size_t c2 = 0;
        for (size_t j = 0; j < nb; j++)
            if (z[j] > 0 && lufs_of(z[j]) > MM_LEVEL_ABS_GATE_LUFS && lufs_of(z[j]) > rel) {
                s2 += z[j];
                c2++;
            }
        out = c2 ? lufs_of(s2 / c2) : -INFINITY;
    }
    free(z);
    *lufs = out;
    return 0;
}

int mm_level_voiced_rms(const float *x, size_t n, int sr, double top_db, int frame, int hop,
                        double *dbfs, mm_err *err)
{
    if (!x || n == 0)
        return mm_err_set(err, MM_EINVAL, "voiced rms: empty signal; expected at least 1 sample");
    if (sr < 8000 || sr > 1000000)
        return mm_err_set(err, MM_EINVAL, "voiced rms: sample rate %d Hz; expected 8000..1000000",
                          sr);
    if (top_db == 0) top_db = 40.0;
    if (!(top_db >= 1 && top_db <= 120))
        return mm_err_set(err, MM_EINVAL, "voiced rms: top_db %g; expected 1..120", top_db);
    if (frame == 0) frame = (int)lround(sr * 0.025);
    if (hop == 0) hop = (int)lround(sr * 0.010);
    if (frame < 1 || hop < 1 || frame < hop)
        return mm_err_set(err, MM_EINVAL,
                          "voiced rms: frame %d, hop %d; expected 1 <= hop <= frame", frame, hop);
    size_t nf = n <= (size_t)frame ? 1 : 1 + (n - (size_t)frame + (size_t)hop - 1) / (size_t)hop;
    double *ms = mm_malloc(nf, sizeof *ms, err);
    if (!ms) return MM_ENOMEM;
    double ref = 0;
    for (size_t t = 0; t < nf; t++) {
        size_t a = t * (size_t)hop, b = a + (size_t)frame < n ? a + (size_t)frame : n;
        double s = 0;
        for (size_t i = a; i < b; i++) s += (double)x[i] * x[i];
        ms[t] = s / (double)(b - a);
        if (ms[t] > ref) ref = ms[t];
    }
    double out = -INFINITY;
    if (ref > 0) {
        /* rms / max rms > 10^(−top_db/20)  ⇔  ms / max ms > 10^(−top_db/10) */
        double thr = ref * pow(10.0, -top_db / 10.0), sum = 0;
        size_t cnt = 0, covered = 0;   /* samples [0, covered) already counted */
        for (size_t t = 0; t < nf; t++) {
            if (!(ms[t] > thr)) continue;
            size_t a = t * (size_t)hop, b = a + (size_t)frame < n ? a + (size_t)frame : n;
            if (a < covered) a = covered;
            for (size_t i = a; i < b; i++) sum += (double)x[i] * x[i];
            if (b > a) cnt += b - a;
            if (b > covered) covered = b;
        }
        out = 10.0 * log10(sum / (double)cnt);
    }
    free(ms);
    *dbfs = out;
    return 0;
}

/* 16 running maxima the compiler keeps in one vector; max is exact in any
 * order, and a NaN is skipped by every comparison alike. */
float mm_level_peak_abs(const float *x, size_t n)
{
    float m[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float v = fabsf(x[i + j]);
            m[j] = v > m[j] ? v : m[j];
        }
    float p = 0;
    for (; i < n; i++) p = fabsf(x[i]) > p ? fabsf(x[i]) : p;
    for (int j = 0; j < 16; j++) p = m[j] > p ? m[j] : p;
    return p;
}

int mm_level_normalize(const float *x, size_t n, int sr, const mm_level_params *p, float **y,
                       mm_level_report *rep, mm_err *err)
{
    mm_level_params d;
    if (!p) {
        mm_level_params_default(&d);
        p = &d;
    }
    if (p->measure != MM_LEVEL_LUFS && p->measure != MM_LEVEL_RMS)
        return mm_err_set(err, MM_EINVAL, "normalize: measure %d; expected lufs (0) or rms (1)",
                          (int)p->measure);
    if (!(p->target >= -70 && p->target <= 0))
        return mm_err_set(err, MM_EINVAL, "normalize: target %g %s; expected -70..0", p->target,
                          p->measure == MM_LEVEL_LUFS ? "LUFS" : "dBFS");
    if (!(p->peak_limit_dbfs >= -20 && p->peak_limit_dbfs <= 0))
        return mm_err_set(err, MM_EINVAL, "normalize: peak_limit_dbfs %g; expected -20..0",
                          p->peak_limit_dbfs);
    if (p->measure == MM_LEVEL_RMS && !(p->top_db >= 1 && p->top_db <= 120))
        return mm_err_set(err, MM_EINVAL, "normalize: top_db %g; expected 1..120", p->top_db);
    double level;
    int rc = p->measure == MM_LEVEL_LUFS
                 ? mm_level_loudness(x, n, sr, &level, err)
                 : mm_level_voiced_rms(x, n, sr, p->top_db, 0, 0, &level, err);
    if (rc) return rc;
    if (!isfinite(level))
        return mm_err_set(err, MM_EDATA,
                          "normalize: the signal is silent (%s); nothing to scale",
                          p->measure == MM_LEVEL_LUFS ? "no 400 ms block above -70 LUFS"
                                                      : "all samples are 0");
    double peak = mm_level_peak_abs(x, n);
    double wanted = p->target - level;
    double room = peak > 0 ? p->peak_limit_dbfs - 20.0 * log10(peak) : INFINITY;
    double gain = wanted < room ? wanted : room;
    float g = (float)pow(10.0, gain / 20.0);
    float *o = mm_malloc(n, sizeof *o, err);
    if (!o) return MM_ENOMEM;
    for (size_t i = 0; i < n; i++) o[i] = x[i] * g;
    /* rounding of g·peak may land a hair above the limit: step g down until it does not */
    float lim = (float)pow(10.0, p->peak_limit_dbfs / 20.0);
    while (mm_level_peak_abs(o, n) > lim) {
        g = nextafterf(g, 0.0f);
        for (size_t i = 0; i < n; i++) o[i] = x[i] * g;
    }
    if (rep) {
        rep->measured = level;
        rep->gain_db = 20.0 * log10(g);
        rep->wanted_db = wanted;
        rep->limited = room < wanted;
        double op = mm_level_peak_abs(o, n);
        rep->peak_dbfs = op > 0 ? 20.0 * log10(op) : -INFINITY;
    }
    *y = o;
    return 0;
}
