/* windows.c — classify a track window by window (see windows.h).
 *
 * The track is decoded once at its own rate (mono); each window's samples
 * are handed to the bundle as a 32-bit float WAV in memory, so a window goes
 * through the bundle's own audio settings exactly as a file of that length
 * would (the classification of a 10 s window equals that of a 10 s file
 * holding the same samples). Windows are independent: the cost is one
 * classification per window (with hop = window / 2, every second of audio
 * is analysed twice).
 */
#include "runtime/windows.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

size_t mm_windows_starts(double duration, double window_s, double hop_s, double *starts)
{
    if (!(window_s > 0) || !(hop_s > 0) || !(duration >= 0)) return 0;
    if (duration <= window_s) {
        if (starts) starts[0] = 0;
        return 1;
    }
    size_t n = 0;
    double last = -1;
    for (size_t i = 0; n < MM_WINDOWS_MAX; i++) {
        double s = (double)i * hop_s;
        if (s + window_s > duration + 1e-9) break;
        if (starts) starts[n] = s;
        last = s;
        n++;
    }
    if (n < MM_WINDOWS_MAX && duration - (last + window_s) > hop_s / 2) {   /* the tail: one window ending at the end */
        if (starts) starts[n] = duration - window_s;
        n++;
    }
    return n;
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }

/* x (n at sr) as a mono IEEE-float WAV into buf (44 + 4n bytes). */
static void wav_float(uint8_t *buf, const float *x, size_t n, int sr)
{
    memcpy(buf, "RIFF", 4);
    put32(buf + 4, (uint32_t)(36 + 4 * n));
    memcpy(buf + 8, "WAVEfmt ", 8);
    put32(buf + 16, 16);
    put16(buf + 20, 3);                 /* IEEE float */
    put16(buf + 22, 1);
    put32(buf + 24, (uint32_t)sr);
    put32(buf + 28, (uint32_t)sr * 4);
    put16(buf + 32, 4);
    put16(buf + 34, 32);
    memcpy(buf + 36, "data", 4);
    put32(buf + 40, (uint32_t)(4 * n));
    for (size_t i = 0; i < n; i++) {   /* little-endian, whatever the host */
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put32(buf + 44 + 4 * i, u);
    }
}

void mm_windows_free(mm_windows *w)
{
    if (!w) return;
    free(w->start);
    free(w->proba);
    free(w->va);
    free(w->mean_proba);
    free(w->embedding);
    memset(w, 0, sizeof *w);
}

int mm_windows_classify(const mm_bundle *b, const char *path, const mm_va *class_va, double window_s,
                        double hop_s, int want_embedding, mm_windows *out, mm_err *err)
{
    if (!(window_s > 0 && window_s <= 3600) || !(hop_s > 0 && hop_s <= 3600))
        return mm_err_set(err, MM_EINVAL, "windows: window %g s, hop %g s: expected (0, 3600] each", window_s, hop_s);
    mm_audio a = {0};
    int rc = mm_audio_load(path, NULL, &a, err);
    if (rc) return rc;
    mm_windows w = {0};
    w.k = mm_bundle_n_classes(b);
    w.dim = want_embedding ? mm_bundle_dim(b) : 0;
    w.duration = (double)a.n / a.sr;
    size_t k = (size_t)w.k, wn = (size_t)llround(window_s * a.sr);
    float *emb = NULL;
    uint8_t *buf = NULL;
    w.n = mm_windows_starts(w.duration, window_s, hop_s, NULL);
    w.start = malloc(w.n * sizeof *w.start);
    w.proba = malloc(w.n * k * sizeof *w.proba);
    w.va = malloc(w.n * sizeof *w.va);
    w.mean_proba = calloc(k, sizeof *w.mean_proba);
    if (w.dim) {
        w.embedding = calloc(w.dim, sizeof *w.embedding);
        emb = malloc(w.dim * sizeof *emb);
    }
    if (wn > a.n) wn = a.n;
    if (wn < 1) wn = 1;
    buf = malloc(44 + 4 * (wn ? wn : 1));
    if (!w.start || !w.proba || !w.va || !w.mean_proba || (w.dim && (!w.embedding || !emb)) || !buf) {
        rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        goto done;
    }
    mm_windows_starts(w.duration, window_s, hop_s, w.start);
    double *acc = calloc(k + w.dim, sizeof *acc);   /* sums in double: the mean of many windows */
    if (!acc) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < w.n && !rc; i++) {
        size_t s0 = (size_t)llround(w.start[i] * a.sr);
        if (s0 > a.n - wn) s0 = a.n - wn;
        wav_float(buf, a.x + s0, wn, a.sr);
        float *p = w.proba + i * k;
        if ((rc = mm_bundle_classify_memory(b, buf, 44 + 4 * wn, path, p, emb, NULL, err))) {
            mm_err_prefix(err, "%s: window at %.1f s", path, w.start[i]);
            break;
        }
        w.va[i] = mm_va_expected(class_va, p, w.k);
        for (size_t c = 0; c < k; c++) acc[c] += p[c];
        for (size_t d = 0; d < w.dim; d++) acc[k + d] += emb[d];
    }
    if (!rc) {
        for (size_t c = 0; c < k; c++) w.mean_proba[c] = (float)(acc[c] / (double)w.n);
        for (size_t d = 0; d < w.dim; d++) w.embedding[d] = (float)(acc[k + d] / (double)w.n);
        size_t top = 0;
        for (size_t c = 1; c < k; c++) if (w.mean_proba[c] > w.mean_proba[top]) top = c;
        w.best = 0;
        for (size_t i = 1; i < w.n; i++) if (w.proba[i * k + top] > w.proba[w.best * k + top]) w.best = i;
    }
    free(acc);
done:
    free(emb);
    free(buf);
    mm_audio_free(&a);
    if (rc) { mm_windows_free(&w); return rc; }
    *out = w;
    return 0;
}
