/* augment.c — gain, noise at an SNR, synthetic reverberation, telephone band, MP3/Opus round
 * trips, pitch shift and SpecAugment masks (issue 16).
 *
 * References: SNR by power over the clip (as Kaldi/ESPnet noise mixing); exponentially decaying
 * noise RIRs (Schroeder's statistical model of a diffuse tail); scipy.signal.butter second-order
 * sections for the telephone band; torchaudio.functional.pitch_shift (phase vocoder) and
 * mask_along_axis (SpecAugment, Park et al. 2019). FFTs on FFTW3f with power-of-two sizes whose
 * plans are made once per size under g_plan_lock and kept for the process (FFTW's planner is
 * not thread-safe; TODO(shared lock): src/dsp/stft.c plans under its own mutex, so an
 * mm_stft_create on another thread at the same moment as this module's first plan of a size
 * could race — one FFTW lock for the engine would close that). Leaves out: image-source rooms,
 * time warping, codec packet loss.
 */
#include "audio/augment.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "core/rng.h"

/* Stream ids: each augmentation draws from its own stream of a seed. */
enum { ST_NOISE = 0x6e6f6973, ST_MIX = 0x6d6978, ST_RIR = 0x726972, ST_MASK = 0x6d61736b };

/* ---- FFT plans: r2c and c2r of 2^k points, made once ---- */

#define MAX_LOG2 28
static pthread_mutex_t g_plan_lock = PTHREAD_MUTEX_INITIALIZER;
static fftwf_plan g_r2c[MAX_LOG2 + 1], g_c2r[MAX_LOG2 + 1];

static int log2_ceil(size_t n)
{
    int k = 0;
    while (((size_t)1 << k) < n) k++;
    return k;
}

/* Plans for 2^k points (planned on fftwf_malloc'd arrays: every buffer used with them must be
 * fftwf_malloc'd too, for the same alignment). */
static int plans(int k, fftwf_plan *fwd, fftwf_plan *inv, mm_err *err)
{
    if (k < 1 || k > MAX_LOG2)
        return mm_err_set(err, MM_EINVAL, "augment: FFT of 2^%d points; expected 2^1..2^%d", k,
                          MAX_LOG2);
    pthread_mutex_lock(&g_plan_lock);
    if (!g_r2c[k]) {
        size_t n = (size_t)1 << k;
        float *a = fftwf_malloc(n * sizeof *a);
        fftwf_complex *c = fftwf_malloc((n / 2 + 1) * sizeof *c);
        if (a && c) {
            g_r2c[k] = fftwf_plan_dft_r2c_1d((int)n, a, c, FFTW_ESTIMATE);
            g_c2r[k] = fftwf_plan_dft_c2r_1d((int)n, c, a, FFTW_ESTIMATE);
        }
        fftwf_free(a);
        fftwf_free(c);
    }
    *fwd = g_r2c[k];
    *inv = g_c2r[k];
    pthread_mutex_unlock(&g_plan_lock);
    if (!*fwd || !*inv)
        return mm_err_set(err, MM_ENOMEM, "augment: FFTW could not plan an FFT of 2^%d points", k);
    return 0;
}

/* out[i] = Σ_k h[k]·x[i−k] for i < nout (the first nout samples of the full linear
 * convolution), by overlap-add: FFT size 2^k ≥ 2·nh (at least 4096), blocks of 2^k − nh + 1. */
static int convolve_ola(const float *x, size_t nx, const float *h, size_t nh, float *out,
                        size_t nout, mm_err *err)
{
    int k = log2_ceil(2 * nh);
    if (k < 12) k = 12;
    fftwf_plan fwd, inv;
    int rc = plans(k, &fwd, &inv, err);
    if (rc) return rc;
    size_t N = (size_t)1 << k, B = N - nh + 1, nc = N / 2 + 1;
    float *buf = fftwf_malloc(N * sizeof *buf);
    fftwf_complex *H = fftwf_malloc(nc * sizeof *H), *X = fftwf_malloc(nc * sizeof *X);
    if (!buf || !H || !X) {
        rc = mm_err_set(err, MM_ENOMEM, "augment: out of memory for a %zu-point convolution", N);
        goto done;
    }
    memset(buf, 0, N * sizeof *buf);
    memcpy(buf, h, nh * sizeof *buf);
    fftwf_execute_dft_r2c(fwd, buf, H);
    memset(out, 0, nout * sizeof *out);
    for (size_t s = 0; s < nx && s < nout; s += B) {
        size_t len = nx - s < B ? nx - s : B;
        memset(buf, 0, N * sizeof *buf);
        memcpy(buf, x + s, len * sizeof *buf);
        fftwf_execute_dft_r2c(fwd, buf, X);
        for (size_t i = 0; i < nc; i++) {
            float re = X[i][0] * H[i][0] - X[i][1] * H[i][1];
            float im = X[i][0] * H[i][1] + X[i][1] * H[i][0];
            X[i][0] = re;
            X[i][1] = im;
        }
        fftwf_execute_dft_c2r(inv, X, buf);
        size_t end = s + N < nout ? s + N : nout;
        float sc = 1.0f / (float)N;
        for (size_t i = s; i < end; i++) out[i] += buf[i - s] * sc;
    }
done:
    fftwf_free(buf);
    fftwf_free(H);
    fftwf_free(X);
    return rc;
}

/* ---- common checks ---- */

static int check_signal(const char *what, const float *x, size_t n, mm_err *err)
{
    if (!x || n == 0)
        return mm_err_set(err, MM_EINVAL, "%s: empty signal; expected at least 1 sample", what);
    return 0;
}

static int check_rate(const char *what, int sr, mm_err *err)
{
    if (sr < MM_AUDIO_MIN_RATE || sr > 192000)
        return mm_err_set(err, MM_EINVAL, "%s: sample rate %d Hz; expected %d..192000", what, sr,
                          MM_AUDIO_MIN_RATE);
    return 0;
}

static double energy(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* t (nt samples at rate `from`) resampled to sr and cut or zero-padded to n samples: the way
 * back of a detour through another rate (ceil(ceil(n·r/sr)·sr/r) >= n, so the pad is only
 * for the contract). */
static int resample_back(const float *t, size_t nt, int from, int sr, size_t n, float **y,
                         mm_err *err)
{
    float *o;
    size_t no;
    int rc = mm_resample(t, nt, from, sr, &o, &no, err);
    if (rc) return rc;
    if (no < n) {
        float *g = realloc(o, n * sizeof *g);
        if (!g) {
            free(o);
            return mm_err_set(err, MM_ENOMEM, "augment: out of memory resampling to %d Hz", sr);
        }
        o = g;
        memset(o + no, 0, (n - no) * sizeof *o);
    }
    *y = o;
    return 0;
}

/* ---- gain ---- */

int mm_augment_gain(const float *x, size_t n, double gain_db, float **y, mm_err *err)
{
    int rc = check_signal("gain", x, n, err);
    if (rc) return rc;
    if (!(fabs(gain_db) <= MM_AUG_GAIN_DB_MAX))
        return mm_err_set(err, MM_EINVAL, "gain: gain_db %g; expected -%g..%g", gain_db,
                          MM_AUG_GAIN_DB_MAX, MM_AUG_GAIN_DB_MAX);
    float *o = mm_malloc(n, sizeof *o, err);
    if (!o) return MM_ENOMEM;
    float g = (float)pow(10.0, gain_db / 20.0);
    for (size_t i = 0; i < n; i++) o[i] = x[i] * g;
    *y = o;
    return 0;
}

/* ---- noise ---- */

static int check_snr(const char *what, double snr_db, mm_err *err)
{
    if (!(snr_db >= MM_AUG_SNR_MIN && snr_db <= MM_AUG_SNR_MAX))
        return mm_err_set(err, MM_EINVAL, "%s: snr_db %g; expected %g..%g", what, snr_db,
                          MM_AUG_SNR_MIN, MM_AUG_SNR_MAX);
    return 0;
}

/* y = x + g·v with g chosen so that Σx² / Σ(g·v)² = 10^(snr/10); the SNR is of the added
 * float values g·v as stored. */
static int add_at_snr(const char *what, const float *x, size_t n, const float *v, double snr_db,
                      float **y, mm_err *err)
{
    double px = energy(x, n), pv = energy(v, n);
    if (px == 0)
        return mm_err_set(err, MM_EDATA, "%s: the signal is silent (all %zu samples are 0); an "
                                         "SNR needs signal power", what, n);
    if (pv == 0)
        return mm_err_set(err, MM_EDATA, "%s: the noise is silent over the %zu samples used",
                          what, n);
    float g = (float)sqrt(px / (pv * pow(10.0, snr_db / 10.0)));
    float *o = mm_malloc(n, sizeof *o, err);
    if (!o) return MM_ENOMEM;
    for (size_t i = 0; i < n; i++) o[i] = x[i] + g * v[i];
    *y = o;
    return 0;
}

#define NOISE_FIR 4096

/* Linear-phase FIR of NOISE_FIR taps with |H| = k^(−α/2) at bin k ≥ 1 (and the bin-1 value
 * at DC): the inverse FFT of that zero-phase response, shifted by half its length. */
static int colour_fir(double alpha, float *h, mm_err *err)
{
    fftwf_plan fwd, inv;
    int rc = plans(log2_ceil(NOISE_FIR), &fwd, &inv, err);
    if (rc) return rc;
    size_t nc = NOISE_FIR / 2 + 1;
    float *buf = fftwf_malloc(NOISE_FIR * sizeof *buf);
    fftwf_complex *H = fftwf_malloc(nc * sizeof *H);
    if (!buf || !H) {
        fftwf_free(buf);
        fftwf_free(H);
        return mm_err_set(err, MM_ENOMEM, "noise: out of memory");
    }
    for (size_t k = 0; k < nc; k++) {
        H[k][0] = (float)pow(k ? (double)k : 1.0, -alpha / 2);
        H[k][1] = 0;
    }
    fftwf_execute_dft_c2r(inv, H, buf);
    for (size_t i = 0; i < NOISE_FIR; i++) h[i] = buf[(i + NOISE_FIR / 2) % NOISE_FIR];
    fftwf_free(buf);
    fftwf_free(H);
    return 0;
}

int mm_augment_noise(const float *x, size_t n, mm_noise_color color, double snr_db,
                     uint64_t seed, float **y, mm_err *err)
{
    int rc = check_signal("noise", x, n, err);
    if (rc || (rc = check_snr("noise", snr_db, err))) return rc;
    if (color != MM_NOISE_WHITE && color != MM_NOISE_PINK && color != MM_NOISE_BROWN)
        return mm_err_set(err, MM_EINVAL, "noise: color %d; expected white (0), pink (1) or "
                                          "brown (2)", (int)color);
    size_t extra = color == MM_NOISE_WHITE ? 0 : NOISE_FIR - 1;
    float *w = mm_malloc(n + extra, sizeof *w, err), *v = NULL, *h = NULL;
    if (!w) return MM_ENOMEM;
    mm_rng r;
    mm_rng_seed(&r, seed, ST_NOISE, (uint64_t)color);
    for (size_t i = 0; i < n + extra; i++) w[i] = (float)mm_rng_normal(&r);
    if (color == MM_NOISE_WHITE) {
        v = w;
        w = NULL;
    } else {
        /* the steady-state part of the filtered noise: full convolution from NOISE_FIR − 1 on */
        h = mm_malloc(NOISE_FIR, sizeof *h, err);
        v = mm_malloc(n + extra, sizeof *v, err);
        if (!h || !v) {
            rc = MM_ENOMEM;
            goto done;
        }
        if ((rc = colour_fir(color == MM_NOISE_PINK ? 1.0 : 2.0, h, err))) goto done;
        if ((rc = convolve_ola(w, n + extra, h, NOISE_FIR, v, n + extra, err))) goto done;
        memmove(v, v + extra, n * sizeof *v);
    }
    rc = add_at_snr("noise", x, n, v, snr_db, y, err);
done:
    free(w);
    free(v);
    free(h);
    return rc;
}

int mm_augment_mix(const float *x, size_t n, const float *noise, size_t m, double snr_db,
                   uint64_t seed, float **y, mm_err *err)
{
    int rc = check_signal("mix", x, n, err);
    if (rc || (rc = check_snr("mix", snr_db, err))) return rc;
    if (!noise || m == 0)
        return mm_err_set(err, MM_EINVAL, "mix: empty noise signal; expected at least 1 sample");
    float *v = mm_malloc(n, sizeof *v, err);
    if (!v) return MM_ENOMEM;
    mm_rng r;
    mm_rng_seed(&r, seed, ST_MIX, 0);
    size_t off = (size_t)mm_rng_below(&r, m);
    for (size_t i = 0; i < n; i++) v[i] = noise[(off + i) % m];
    rc = add_at_snr("mix", x, n, v, snr_db, y, err);
    free(v);
    return rc;
}

/* ---- reverberation ---- */

int mm_augment_rir(int sr, double rt60, double drr_db, uint64_t seed, float **h, size_t *nh,
                   mm_err *err)
{
    int rc = check_rate("rir", sr, err);
    if (rc) return rc;
    if (!(rt60 >= MM_AUG_RT60_MIN && rt60 <= MM_AUG_RT60_MAX))
        return mm_err_set(err, MM_EINVAL, "reverb: rt60 %g s; expected %g..%g", rt60,
                          MM_AUG_RT60_MIN, MM_AUG_RT60_MAX);
    if (!(drr_db >= MM_AUG_DRR_MIN && drr_db <= MM_AUG_DRR_MAX))
        return mm_err_set(err, MM_EINVAL, "reverb: drr_db %g; expected %g..%g", drr_db,
                          MM_AUG_DRR_MIN, MM_AUG_DRR_MAX);
    size_t len = (size_t)ceil(rt60 * sr) + 1;
    float *o = mm_malloc(len, sizeof *o, err);
    if (!o) return MM_ENOMEM;
    mm_rng r;
    mm_rng_seed(&r, seed, ST_RIR, 0);
    /* amplitude envelope exp(−a·t) with a = 3·ln(10)/rt60: energy exp(−2a·t) is −60 dB at rt60 */
    double a = 3.0 * log(10.0) / rt60, tail = 0;
    for (size_t i = 1; i < len; i++) {
        double v = mm_rng_normal(&r) * exp(-a * (double)i / sr);
        o[i] = (float)v;
        tail += (double)o[i] * o[i];
    }
    o[0] = 1.0f;
    float g = (float)sqrt(pow(10.0, -drr_db / 10.0) / tail);
    for (size_t i = 1; i < len; i++) o[i] *= g;
    *h = o;
    *nh = len;
    return 0;
}

int mm_augment_convolve(const float *x, size_t n, const float *h, size_t nh, float **y,
                        mm_err *err)
{
    int rc = check_signal("convolve", x, n, err);
    if (rc) return rc;
    if (!h || nh == 0)
        return mm_err_set(err, MM_EINVAL, "convolve: empty impulse response; expected >= 1 tap");
    if (nh > ((size_t)1 << (MAX_LOG2 - 1)))
        return mm_err_set(err, MM_EINVAL, "convolve: impulse response of %zu taps; expected at "
                                          "most %zu", nh, (size_t)1 << (MAX_LOG2 - 1));
    float *o = mm_malloc(n, sizeof *o, err);
    if (!o) return MM_ENOMEM;
    if ((rc = convolve_ola(x, n, h, nh, o, n, err))) {
        free(o);
        return rc;
    }
    /* level: the output's power over the clip equals the input's */
    double px = energy(x, n), po = energy(o, n);
    float g = po > 0 ? (float)sqrt(px / po) : 0.0f;
    for (size_t i = 0; i < n; i++) o[i] *= g;
    *y = o;
    return 0;
}

int mm_augment_reverb(const float *x, size_t n, int sr, double rt60, double drr_db,
                      uint64_t seed, float **y, mm_err *err)
{
    int rc = check_signal("reverb", x, n, err);
    if (rc) return rc;
    float *h;
    size_t nh;
    if ((rc = mm_augment_rir(sr, rt60, drr_db, seed, &h, &nh, err))) return rc;
    rc = mm_augment_convolve(x, n, h, nh, y, err);
    free(h);
    return rc;
}

/* ---- telephone band ---- */

/* One Butterworth biquad of order-N low- or high-pass at fc (bilinear with prewarping):
 * section j of N/2 has the analog pole pair of quality Q = 1 / (2·sin((2j+1)π / (2N))). */
typedef struct biquad { double b[3], a[3]; } biquad;

static void butter_section(int order, int j, double fc, int sr, int high, biquad *s)
{
    double Q = 1.0 / (2.0 * sin((2 * j + 1) * M_PI / (2.0 * order)));
    double K = tan(M_PI * fc / sr), norm = 1.0 / (1.0 + K / Q + K * K);
    if (high) {
        s->b[0] = norm;
        s->b[1] = -2.0 * norm;
        s->b[2] = norm;
    } else {
        s->b[0] = K * K * norm;
        s->b[1] = 2.0 * K * K * norm;
        s->b[2] = K * K * norm;
    }
    s->a[0] = 1.0;
    s->a[1] = 2.0 * (K * K - 1.0) * norm;
    s->a[2] = (1.0 - K / Q + K * K) * norm;
}

#define TEL_ORDER 4
#define TEL_LOW 300.0
#define TEL_HIGH 3400.0
#define TEL_RATE 8000

/* In place: the high-pass sections then the low-pass sections, direct form II transposed
 * in double (scipy.signal.sosfilt's recursion). */
static void telephone_filter(float *x, size_t n, int sr)
{
    biquad s[TEL_ORDER];
    for (int j = 0; j < TEL_ORDER / 2; j++) {
        butter_section(TEL_ORDER, j, TEL_LOW, sr, 1, &s[j]);
        butter_section(TEL_ORDER, j, TEL_HIGH, sr, 0, &s[TEL_ORDER / 2 + j]);
    }
    double z[TEL_ORDER][2] = {{0}};
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        for (int j = 0; j < TEL_ORDER; j++) {
            double u = s[j].b[0] * v + z[j][0];
            z[j][0] = s[j].b[1] * v - s[j].a[1] * u + z[j][1];
            z[j][1] = s[j].b[2] * v - s[j].a[2] * u;
            v = u;
        }
        x[i] = (float)v;
    }
}

int mm_augment_telephone(const float *x, size_t n, int sr, int resample, float **y,
                         mm_err *err)
{
    int rc = check_signal("telephone", x, n, err);
    if (rc || (rc = check_rate("telephone", sr, err))) return rc;
    float *o;
    if (!resample || sr == TEL_RATE) {
        o = mm_malloc(n, sizeof *o, err);
        if (!o) return MM_ENOMEM;
        memcpy(o, x, n * sizeof *o);
        telephone_filter(o, n, sr);
        *y = o;
        return 0;
    }
    float *t;
    size_t nt;
    if ((rc = mm_resample(x, n, sr, TEL_RATE, &t, &nt, err))) return rc;
    telephone_filter(t, nt, TEL_RATE);
    rc = resample_back(t, nt, TEL_RATE, sr, n, y, err);
    free(t);
    return rc;
}

/* ---- codecs ---- */

/* A growable in-memory file for sf_open_virtual (reads and writes). */
typedef struct membuf {
    unsigned char *d;
    sf_count_t len, cap, pos;
    int failed;   /* an allocation failed while writing */
} membuf;

static sf_count_t mb_len(void *u) { return ((membuf *)u)->len; }

static sf_count_t mb_seek(sf_count_t off, int whence, void *u)
{
    membuf *m = u;
    sf_count_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : m->len + off;
    if (p < 0) return -1;
    m->pos = p;
    return p;
}

static sf_count_t mb_read(void *p, sf_count_t c, void *u)
{
    membuf *m = u;
    if (m->pos >= m->len || c <= 0) return 0;
    if (c > m->len - m->pos) c = m->len - m->pos;
    memcpy(p, m->d + m->pos, (size_t)c);
    m->pos += c;
    return c;
}

static sf_count_t mb_write(const void *p, sf_count_t c, void *u)
{
    membuf *m = u;
    if (c <= 0) return 0;
    if (m->pos + c > m->cap) {
        sf_count_t nc = (m->pos + c) * 2;
        unsigned char *nd = realloc(m->d, (size_t)nc);
        if (!nd) {
            m->failed = 1;
            return 0;
        }
        m->d = nd;
        m->cap = nc;
    }
    if (m->pos > m->len) memset(m->d + m->len, 0, (size_t)(m->pos - m->len));
    memcpy(m->d + m->pos, p, (size_t)c);
    m->pos += c;
    if (m->pos > m->len) m->len = m->pos;
    return c;
}

static sf_count_t mb_tell(void *u) { return ((membuf *)u)->pos; }

/* MP3 bit rates libsndfile reaches for each MPEG version (libsndfile 1.2 maps its compression
 * level linearly onto [32,320], [8,160] and [8,64] kbit/s). */
static int mp3_rate_for(int sr, int kbps)
{
    static const int rates[] = {48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000};
    for (size_t i = 0; i < sizeof rates / sizeof *rates; i++) {
        int r = rates[i];
        int lo = r >= 32000 ? 32 : 8, hi = r >= 32000 ? 320 : r >= 16000 ? 160 : 64;
        if (r <= sr && kbps >= lo && kbps <= hi) return r;
    }
    return 0;
}

/* LAME's encoder delay (576) plus mpg123's decoder delay (529): the lead of an MP3 decoded
 * without a gapless (LAME/Xing) tag. */
#define MP3_DELAY 1105

static int codec_roundtrip(const float *x, size_t n, int sr, mm_codec codec, int kbps,
                           float **y, mm_err *err)
{
    const char *name = codec == MM_CODEC_MP3 ? "mp3" : "opus";
    membuf m = {0};
    SF_VIRTUAL_IO io = {mb_len, mb_seek, mb_read, mb_write, mb_tell};
    SF_INFO si;
    memset(&si, 0, sizeof si);
    si.samplerate = sr;
    si.channels = 1;
    si.format = codec == MM_CODEC_MP3 ? (SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III)
                                      : (SF_FORMAT_OGG | SF_FORMAT_OPUS);
    int rc = 0;
    float *o = NULL;
    SNDFILE *f = sf_open_virtual(&io, SFM_WRITE, &si, &m);
    if (!f) {
        rc = mm_err_set(err, MM_EINVAL, "codec %s: libsndfile cannot encode at %d Hz: %s", name,
                        sr, sf_strerror(NULL));
        goto done;
    }
    /* compression level c in [0, 1] for the wanted rate (half a unit above it: libsndfile
     * truncates the product to an integer) */
    double c;
    int ok;
    if (codec == MM_CODEC_MP3) {
        double hi = sr >= 32000 ? 320 : sr >= 16000 ? 160 : 64, lo = sr >= 32000 ? 32 : 8;
        c = (hi - (kbps + 0.5)) / (hi - lo);
        if (c < 0) c = 0;
        /* level first, then CBR: setting the mode re-applies the level (and reports failure
         * when no level was set yet) */
        ok = sf_command(f, SFC_SET_COMPRESSION_LEVEL, &c, sizeof c) == SF_TRUE;
        int mode = SF_BITRATE_MODE_CONSTANT;
        ok = ok && sf_command(f, SFC_SET_BITRATE_MODE, &mode, sizeof mode) == SF_TRUE;
    } else {
        /* bits/s = (1 − c)·250000 + 6000 */
        c = 1.0 - (kbps * 1000.0 + 0.5 - 6000.0) / 250000.0;
        ok = sf_command(f, SFC_SET_COMPRESSION_LEVEL, &c, sizeof c) == SF_TRUE;
    }
    if (!ok) {
        rc = mm_err_set(err, MM_EINVAL, "codec %s: libsndfile refused %d kbit/s at %d Hz: %s",
                        name, kbps, sr, sf_strerror(f));
        sf_close(f);
        goto done;
    }
    sf_count_t w = sf_writef_float(f, x, (sf_count_t)n);
    int werr = sf_error(f);
    sf_close(f);
    if (w != (sf_count_t)n || werr || m.failed) {
        rc = mm_err_set(err, m.failed ? MM_ENOMEM : MM_EINVAL,
                        "codec %s: encoding %zu samples at %d Hz failed after %lld", name, n, sr,
                        (long long)w);
        goto done;
    }
    m.pos = 0;
    memset(&si, 0, sizeof si);
    f = sf_open_virtual(&io, SFM_READ, &si, &m);
    if (!f) {
        rc = mm_err_set(err, MM_EFORMAT, "codec %s: cannot decode what was encoded: %s", name,
                        sf_strerror(NULL));
        goto done;
    }
    /* decode everything (MP3 without a gapless tag is longer by the delay and padding) */
    size_t cap = n + 2 * MP3_DELAY + 4096, got = 0;
    o = mm_malloc(cap, sizeof *o, err);
    if (!o) {
        sf_close(f);
        rc = MM_ENOMEM;
        goto done;
    }
    for (;;) {
        sf_count_t r = sf_readf_float(f, o + got, (sf_count_t)(cap - got));
        if (r <= 0) break;
        got += (size_t)r;
        if (got == cap) break;
    }
    int rate = si.samplerate;
    sf_close(f);
    if (rate != sr) {
        rc = mm_err_set(err, MM_EFORMAT, "codec %s: decoded at %d Hz, encoded at %d Hz", name,
                        rate, sr);
        goto done;
    }
    /* Opus and tagged MP3 decode to exactly n samples, aligned; an untagged MP3 leads by the
     * codec delay and is padded to whole frames */
    size_t lead = got == n ? 0 : codec == MM_CODEC_MP3 && got >= n + MP3_DELAY ? MP3_DELAY : 0;
    if (got < n + lead) {
        rc = mm_err_set(err, MM_EFORMAT, "codec %s: decoded %zu samples of %zu", name, got, n);
        goto done;
    }
    if (lead) memmove(o, o + lead, n * sizeof *o);
    *y = o;
    o = NULL;
done:
    free(o);
    free(m.d);
    return rc;
}

int mm_augment_codec(const float *x, size_t n, int sr, mm_codec codec, int kbps, float **y,
                     mm_err *err)
{
    int rc = check_signal("codec", x, n, err);
    if (rc || (rc = check_rate("codec", sr, err))) return rc;
    if (codec != MM_CODEC_MP3 && codec != MM_CODEC_OPUS)
        return mm_err_set(err, MM_EINVAL, "codec: codec %d; expected mp3 (0) or opus (1)",
                          (int)codec);
    int hi = codec == MM_CODEC_OPUS ? MM_AUG_OPUS_KBPS_MAX : MM_AUG_KBPS_MAX;
    if (kbps < MM_AUG_KBPS_MIN || kbps > hi)
        return mm_err_set(err, MM_EINVAL, "codec %s: kbps %d; expected %d..%d",
                          codec == MM_CODEC_MP3 ? "mp3" : "opus", kbps, MM_AUG_KBPS_MIN, hi);
    int cr;
    if (codec == MM_CODEC_OPUS)
        cr = (sr == 8000 || sr == 12000 || sr == 16000 || sr == 24000 || sr == 48000) ? sr : 48000;
    else
        cr = mp3_rate_for(sr, kbps);
    if (cr == 0)
        return mm_err_set(err, MM_EINVAL, "codec mp3: kbps %d at %d Hz; MP3 allows 8..64 kbit/s "
                                          "at 8-12 kHz, 8..160 at 16-24 kHz, 32..320 at 32-48 kHz",
                          kbps, sr);
    if (cr == sr) return codec_roundtrip(x, n, sr, codec, kbps, y, err);
    float *a, *b;
    size_t na;
    if ((rc = mm_resample(x, n, sr, cr, &a, &na, err))) return rc;
    rc = codec_roundtrip(a, na, cr, codec, kbps, &b, err);
    free(a);
    if (rc) return rc;
    rc = resample_back(b, na, cr, sr, n, y, err);
    free(b);
    return rc;
}

/* ---- pitch shift ---- */

/* soxr HQ from rate ratio `ratio` = out/in, output exactly nout samples (zeros past the end). */
static int resample_ratio(const float *x, size_t n, double ratio, float *out, size_t nout,
                          mm_err *err)
{
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    soxr_error_t e = NULL;
    soxr_t rs = soxr_create(1.0, ratio, 1, &e, &io, &q, &rt);
    size_t idone = 0, odone = 0, oflush = 0;
    if (!e) e = soxr_process(rs, x, n, &idone, out, nout, &odone);
    if (!e && odone < nout) e = soxr_process(rs, NULL, 0, NULL, out + odone, nout - odone, &oflush);
    soxr_delete(rs);
    if (e) return mm_err_set(err, MM_EINVAL, "pitch: resampling by %g failed: %s", ratio, e);
    if (odone + oflush < nout) memset(out + odone + oflush, 0, (nout - odone - oflush) * sizeof *out);
    return 0;
}

int mm_augment_pitch(const float *x, size_t n, int sr, double semitones, int n_fft, float **y,
                     mm_err *err)
{
    int rc = check_signal("pitch", x, n, err);
    if (rc || (rc = check_rate("pitch", sr, err))) return rc;
    if (!(fabs(semitones) <= MM_AUG_SEMITONES_MAX))
        return mm_err_set(err, MM_EINVAL, "pitch: semitones %g; expected -%g..%g", semitones,
                          MM_AUG_SEMITONES_MAX, MM_AUG_SEMITONES_MAX);
    if (n_fft == 0) {
        int k = (int)lround(log2(0.032 * sr));
        n_fft = 1 << k;
    }
    if (n_fft < 256 || n_fft > 8192 || (n_fft & (n_fft - 1)))
        return mm_err_set(err, MM_EINVAL, "pitch: n_fft %d; expected a power of two 256..8192",
                          n_fft);
    size_t N = (size_t)n_fft, hop = N / 4, half = N / 2, nb = N / 2 + 1;
    if (n <= half)
        return mm_err_set(err, MM_EINVAL, "pitch: %zu samples; expected more than n_fft/2 = %zu "
                                          "(reflect padding)", n, half);
    float *o = mm_calloc(n, sizeof *o, err);
    if (!o) return MM_ENOMEM;
    if (semitones == 0) {
        memcpy(o, x, n * sizeof *o);
        *y = o;
        return 0;
    }
    fftwf_plan fwd, inv;
    if ((rc = plans(log2_ceil(N), &fwd, &inv, err))) {
        free(o);
        return rc;
    }
    double rate = pow(2.0, -semitones / 12.0);
    size_t nfr = 1 + n / hop;                           /* torch.stft, center=True */
    size_t nst = (size_t)ceil((double)nfr / rate);      /* stretched frames */
    size_t len_st = (size_t)llround((double)n / rate);  /* int(round(n / rate)) */
    size_t olen = hop * (nfr > nst ? nfr : nst) + N;    /* overlap-add buffer, centred */
    float *win = malloc(N * sizeof *win), *buf = fftwf_malloc(N * sizeof *buf);
    fftwf_complex *spec = fftwf_malloc(nfr * nb * sizeof *spec), *c = fftwf_malloc(nb * sizeof *c);
    double *phase = malloc(nb * sizeof *phase), *adv = malloc(nb * sizeof *adv);
    float *ola = calloc(olen, sizeof *ola), *env = calloc(olen, sizeof *env);
    float *st = calloc(len_st + 1, sizeof *st);
    if (!win || !buf || !spec || !c || !phase || !adv || !ola || !env || !st) {
        rc = mm_err_set(err, MM_ENOMEM, "pitch: out of memory for %zu frames", nfr);
        goto done;
    }
    for (size_t i = 0; i < N; i++) win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / N));
    /* STFT: frame t is the reflect-padded signal [t·hop − N/2, t·hop + N/2) times the window */
    for (size_t t = 0; t < nfr; t++) {
        for (size_t i = 0; i < N; i++) {
            long long j = (long long)(t * hop + i) - (long long)half;
            if (j < 0) j = -j;
            while (j >= (long long)n) {
                j = 2 * ((long long)n - 1) - j;
                if (j < 0) j = -j;
            }
            buf[i] = x[j] * win[i];
        }
        /* into an fftwf_malloc'd buffer (the plan's alignment), then into the frame's row */
        fftwf_execute_dft_r2c(fwd, buf, c);
        memcpy(spec + t * nb, c, nb * sizeof *c);
    }
    /* phase vocoder (torchaudio.functional.phase_vocoder): stretched frame u reads frames
     * floor(u·rate) and +1 (zero past the end), magnitude interpolated by alpha = frac(u·rate),
     * phase accumulated from the first frame's angle by the wrapped phase differences */
    for (size_t k = 0; k < nb; k++) {
        adv[k] = M_PI * (double)hop * (double)k / (double)(nb - 1);   /* linspace(0, π·hop, nb) */
        phase[k] = atan2(spec[k][1], spec[k][0]);
    }
    for (size_t u = 0; u < nst; u++) {
        double ts = (double)u * rate, alpha = ts - floor(ts);
        size_t i0 = (size_t)ts, i1 = i0 + 1;
        for (size_t k = 0; k < nb; k++) {
            double re0 = i0 < nfr ? spec[i0 * nb + k][0] : 0, im0 = i0 < nfr ? spec[i0 * nb + k][1] : 0;
            double re1 = i1 < nfr ? spec[i1 * nb + k][0] : 0, im1 = i1 < nfr ? spec[i1 * nb + k][1] : 0;
            double mag = alpha * hypot(re1, im1) + (1 - alpha) * hypot(re0, im0);
            c[k][0] = (float)(mag * cos(phase[k]));
            c[k][1] = (float)(mag * sin(phase[k]));
            double d = atan2(im1, re1) - atan2(im0, re0) - adv[k];
            d -= 2 * M_PI * nearbyint(d / (2 * M_PI));
            phase[k] += d + adv[k];
        }
        /* inverse STFT: windowed overlap-add, divided by Σ window² where it is > 1e-11 */
        fftwf_execute_dft_c2r(inv, c, buf);
        for (size_t i = 0; i < N; i++) {
            ola[u * hop + i] += buf[i] / (float)N * win[i];
            env[u * hop + i] += win[i] * win[i];
        }
    }
    for (size_t i = 0; i < len_st; i++) {
        size_t j = i + half;
        st[i] = j < olen && env[j] > 1e-11f ? ola[j] / env[j] : 0.0f;
    }
    /* back to the original duration: resample by rate (the pitch moves by 1/rate) */
    rc = resample_ratio(st, len_st, rate, o, n, err);
done:
    free(win);
    fftwf_free(buf);
    fftwf_free(spec);
    fftwf_free(c);
    free(phase);
    free(adv);
    free(ola);
    free(env);
    free(st);
    if (rc) {
        free(o);
        return rc;
    }
    *y = o;
    return 0;
}

/* ---- SpecAugment ---- */

int mm_specmask_params_from_cfg(const mm_cfg *m, const char *what, mm_specmask_params *p, uint64_t *seed,
                                mm_err *err)
{
    static const char *const keys[] = {"time_masks", "time_width", "freq_masks", "freq_width", "fill", "seed", NULL};
    char w[600];
    if (m->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: %s: expected a map, e.g. {time_masks: 2, time_width: 40, "
                          "freq_masks: 2, freq_width: 15}", mm_cfg_where(m, w, sizeof w), what);
    mm_specmask_params d;
    mm_specmask_params_default(&d);
    long nt = 0, tw = 0, nf = 0, fw = 0, sd = 0;
    const char *fill = NULL;
    int rc = mm_cfg_check_keys(m, what, keys, err);
    if (!rc) rc = mm_cfg_get_int(m, "time_masks", d.n_time, 0, 10, &nt, err);
    if (!rc) rc = mm_cfg_get_int(m, "time_width", d.time_width, 1, 1000, &tw, err);
    if (!rc) rc = mm_cfg_get_int(m, "freq_masks", d.n_freq, 0, 10, &nf, err);
    if (!rc) rc = mm_cfg_get_int(m, "freq_width", d.freq_width, 1, 128, &fw, err);
    if (!rc) rc = mm_cfg_get_int(m, "seed", 0, 0, 0x7fffffffffffffffL, &sd, err);
    if (!rc) rc = mm_cfg_get_str(m, "fill", "mean", &fill, err);
    if (rc) return rc;
    if (strcmp(fill, "mean") != 0 && strcmp(fill, "zero") != 0)
        return mm_err_set(err, MM_EINVAL, "%s: %s.fill '%s': expected mean or zero",
                          mm_cfg_where(mm_cfg_child(m, "fill"), w, sizeof w), what, fill);
    *p = (mm_specmask_params){.n_time = (int)nt, .time_width = (int)tw, .n_freq = (int)nf,
                              .freq_width = (int)fw, .fill_mean = strcmp(fill, "mean") == 0};
    *seed = (uint64_t)sd;
    return 0;
}

void mm_specmask_params_default(mm_specmask_params *p)
{
    p->n_time = 2;
    p->time_width = 40;
    p->n_freq = 2;
    p->freq_width = 15;
    p->fill_mean = 1;
}

int mm_augment_specmask(const float *m, size_t frames, size_t bins, const mm_specmask_params *p,
                        uint64_t seed, float **out, int *masks, mm_err *err)
{
    mm_specmask_params d;
    if (!p) {
        mm_specmask_params_default(&d);
        p = &d;
    }
    if (!m || frames == 0 || bins == 0)
        return mm_err_set(err, MM_EINVAL, "specmask: empty matrix (%zu x %zu); expected frames "
                                          "and bins >= 1", frames, bins);
    if (p->n_time < 0 || p->n_time > 10)
        return mm_err_set(err, MM_EINVAL, "specmask: n_time %d; expected 0..10", p->n_time);
    if (p->n_freq < 0 || p->n_freq > 10)
        return mm_err_set(err, MM_EINVAL, "specmask: n_freq %d; expected 0..10", p->n_freq);
    if (p->n_time && (p->time_width < 1 || (size_t)p->time_width > frames))
        return mm_err_set(err, MM_EINVAL, "specmask: time_width %d; expected 1..%zu (frames)",
                          p->time_width, frames);
    if (p->n_freq && (p->freq_width < 1 || (size_t)p->freq_width > bins))
        return mm_err_set(err, MM_EINVAL, "specmask: freq_width %d; expected 1..%zu (bins)",
                          p->freq_width, bins);
    size_t total = frames * bins;
    float *o = mm_malloc(total, sizeof *o, err);
    if (!o) return MM_ENOMEM;
    memcpy(o, m, total * sizeof *o);
    float fill = 0.0f;
    if (p->fill_mean) {
        double s = 0;
        for (size_t i = 0; i < total; i++) s += m[i];
        fill = (float)(s / (double)total);
    }
    mm_rng r;
    mm_rng_seed(&r, seed, ST_MASK, 0);
    for (int q = 0; q < p->n_time + p->n_freq; q++) {
        int time = q < p->n_time;
        size_t size = time ? frames : bins;
        double W = time ? p->time_width : p->freq_width;
        /* torchaudio: value = u1·W, min_value = u2·(size − value), [long(min), long(min) +
         * long(value)) */
        double value = mm_rng_uniform(&r) * W;
        double minv = mm_rng_uniform(&r) * ((double)size - value);
        size_t start = (size_t)minv, w = (size_t)value;
        if (start + w > size) w = size - start;
        if (time)
            for (size_t t = start; t < start + w; t++)
                for (size_t b = 0; b < bins; b++) o[t * bins + b] = fill;
        else
            for (size_t t = 0; t < frames; t++)
                for (size_t b = start; b < start + w; b++) o[t * bins + b] = fill;
        if (masks) {
            masks[2 * q] = (int)start;
            masks[2 * q + 1] = (int)w;
        }
    }
    *out = o;
    return 0;
}
