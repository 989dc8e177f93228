/* audio.c — decode (libsndfile), down-mix, resample (libsoxr HQ), trim, crop/pad, normalise.
 *
 * Matches: torchaudio/soundfile decoding (PCM scaled by 1/2^(bits-1)), torch.mean(dim=0)
 * down-mix, torchaudio's resampled length ceil(n·out/in), and librosa 0.10 effects.trim bounds
 * exactly (rms with centred zero-padded frames, amplitude_to_db ref=max amin=1e-5, end =
 * min(n, (last+1)·hop)). Paths go through sf_open, uploads through sf_open_virtual, both
 * through one decode with the same checks. Leaves out: streaming, per-channel output,
 * a choice of resampler (always SOXR_HQ).
 */
#include "audio/audio.h"
#include "audio/level.h"

#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Decoded audio longer than this is refused (bounds memory for hostile inputs). */
#define MM_AUDIO_MAX_SECONDS 3600.0
/* Decoded frames × channels above this are refused (1 GiB of float samples); so is a
 * resampled signal longer than this. */
#define MM_AUDIO_MAX_SAMPLES ((size_t)1 << 28)

void mm_audio_opts_default(mm_audio_opts *o)
{
    memset(o, 0, sizeof *o);
    o->target_sr = 0;
    o->trim = 0;
    o->trim_top_db = 60.0;
    o->trim_frame = 2048;
    o->trim_hop = 512;
    o->fixed_seconds = 0.0;
    o->fixed_center = 0;
    o->peak_normalize = 0;
    o->min_seconds = 0.0;
    o->speed = 1.0;
}

int mm_audio_opts_from_cfg(const mm_cfg *map, mm_audio_opts *o, mm_err *err)
{
    static const char *const keys[] = {"trim", "trim_top_db", "trim_frame", "trim_hop",
                                       "fixed_seconds", "fixed_center", "peak_normalize",
                                       "min_seconds", "speed", NULL};
    int rc = mm_cfg_check_keys(map, "audio", keys, err);
    if (rc) return rc;
    mm_audio_opts t = *o;
    long l;
    if ((rc = mm_cfg_get_bool(map, "trim", t.trim, &t.trim, err))) return rc;
    if ((rc = mm_cfg_get_double(map, "trim_top_db", t.trim_top_db, 1e-3, 300.0, &t.trim_top_db,
                                err)))
        return rc;
    if ((rc = mm_cfg_get_int(map, "trim_frame", t.trim_frame, 2, 1 << 20, &l, err))) return rc;
    t.trim_frame = (int)l;
    if ((rc = mm_cfg_get_int(map, "trim_hop", t.trim_hop, 1, 1 << 20, &l, err))) return rc;
    t.trim_hop = (int)l;
    if ((rc = mm_cfg_get_double(map, "fixed_seconds", t.fixed_seconds, 0.0, MM_AUDIO_MAX_SECONDS,
                                &t.fixed_seconds, err)))
        return rc;
    if ((rc = mm_cfg_get_bool(map, "fixed_center", t.fixed_center, &t.fixed_center, err)))
        return rc;
    if ((rc = mm_cfg_get_bool(map, "peak_normalize", t.peak_normalize, &t.peak_normalize, err)))
        return rc;
    if ((rc = mm_cfg_get_double(map, "min_seconds", t.min_seconds, 0.0, MM_AUDIO_MAX_SECONDS,
                                &t.min_seconds, err)))
        return rc;
    if ((rc = mm_cfg_get_double(map, "speed", t.speed, 0.5, 2.0, &t.speed, err))) return rc;
    *o = t;
    return 0;
}

const char *mm_audio_opts_describe(const mm_audio_opts *o, char *buf, size_t size)
{
    if (!buf || !size) return buf;
    snprintf(buf, size,
             "{target_sr: %d, trim: %s, trim_top_db: %g, trim_frame: %d, trim_hop: %d, "
             "fixed_seconds: %g, fixed_center: %s, peak_normalize: %s, min_seconds: %g, "
             "speed: %g, resampler: soxr_hq, downmix: mean}",
             o->target_sr, o->trim ? "true" : "false", o->trim_top_db, o->trim_frame, o->trim_hop,
             o->fixed_seconds, o->fixed_center ? "true" : "false",
             o->peak_normalize ? "true" : "false", o->min_seconds, o->speed);
    return buf;
}

void mm_audio_free(mm_audio *a)
{
    if (!a) return;
    free(a->x);
    a->x = NULL;
    a->n = 0;
}

/* ---- trimming (librosa.effects.trim) ---- */

static size_t gcd_sz(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Frame energies as sums of blocks: every frame starts at t·hop − frame/2 and spans `frame`
 * samples, so with g = gcd(hop, frame/2, frame) each frame is frame/g whole blocks of g
 * samples. Each sample's square is computed once (into its block's sum) instead of frame/hop
 * times (4x for 2048/512). Blocks and frames are summed in double; the order differs from
 * one running sum per frame only at the 1e-16 level, far below the dB threshold's scale.
 * Returns the mean square of every frame in ms (n_frames) and the largest; *total_sq is
 * the sum of all squares (0 exactly when every sample is 0). 0, 1 when there is no frame
 * (nothing written), or -1 when out of memory. */
static int trim_frame_ms(const float *x, size_t n, int frame, int hop, double **ms_out,
                         size_t *n_frames_out, double *ref_out, double *total_sq)
{
    size_t half = (size_t)frame / 2, padded = n + 2 * half;
    if (padded < (size_t)frame) return 1;
    size_t n_frames = 1 + (padded - (size_t)frame) / (size_t)hop;
    size_t g = gcd_sz(gcd_sz((size_t)hop, (size_t)frame), half ? half : (size_t)frame);
    size_t nb = (n + g - 1) / g, per = (size_t)frame / g;
    double *ms = malloc(n_frames * sizeof *ms);
    double *blk = malloc((nb ? nb : 1) * sizeof *blk);
    if (!ms || !blk) {
        free(ms);
        free(blk);
        return -1;
    }
    double total = 0;
    for (size_t j = 0; j < nb; j++) {
        size_t a = j * g, b = a + g < n ? a + g : n;
        /* 8 partial sums (one vector of doubles), combined in a fixed order */
        double part[8] = {0}, s = 0;
        size_t i = a;
        for (; i + 8 <= b; i += 8)
            for (int l = 0; l < 8; l++) part[l] += (double)x[i + l] * x[i + l];
        for (; i < b; i++) s += (double)x[i] * x[i];
        for (int l = 0; l < 8; l++) s += part[l];
        blk[j] = s;
        total += s;
    }
    /* frame t covers blocks [(t·hop − half)/g, … + per) of the unpadded signal; blocks
     * outside [0, nb) are the zero padding */
    double ref = 0;
    long long step = (long long)((size_t)hop / g), off = (long long)(half / g);
    for (size_t t = 0; t < n_frames; t++) {
        long long j0 = (long long)t * step - off, j1 = j0 + (long long)per;
        if (j0 < 0) j0 = 0;
        if (j1 > (long long)nb) j1 = (long long)nb;
        double s = 0;
        for (long long j = j0; j < j1; j++) s += blk[j];
        ms[t] = s / frame;
        if (ms[t] > ref) ref = ms[t];
    }
    free(blk);
    *ms_out = ms;
    *n_frames_out = n_frames;
    *ref_out = ref;
    *total_sq = total;
    return 0;
}

/* Bounds from frame mean squares: amplitude_to_db(rms, ref=max, amin=1e-5) is
 * 10·log10(max(1e-10, rms²)) − 10·log10(max(1e-10, max_rms²)); a frame is non-silent when
 * that is > −top_db. */
static void trim_bounds_from_ms(const double *ms, size_t n_frames, double ref, size_t n,
                                double top_db, int hop, size_t *start, size_t *end)
{
    double ref_db = 10.0 * log10(ref > 1e-10 ? ref : 1e-10);
    size_t first = n_frames, last = 0;
    for (size_t t = 0; t < n_frames; t++) {
        double db = 10.0 * log10(ms[t] > 1e-10 ? ms[t] : 1e-10) - ref_db;
        if (db > -top_db) {
            if (first == n_frames) first = t;
            last = t;
        }
    }
    *start = 0;
    *end = 0;
    if (first == n_frames) return;
    size_t s = first * (size_t)hop, e = (last + 1) * (size_t)hop;
    *start = s < n ? s : n;
    *end = e < n ? e : n;
}

void mm_trim_bounds(const float *x, size_t n, double top_db, int frame, int hop, size_t *start,
                    size_t *end)
{
    *start = 0;
    *end = 0;
    if (n == 0 || frame < 1 || hop < 1) return;
    double *ms, ref, total;
    size_t nf;
    if (trim_frame_ms(x, n, frame, hop, &ms, &nf, &ref, &total)) return;   /* none / no memory */
    trim_bounds_from_ms(ms, nf, ref, n, top_db, hop, start, end);
    free(ms);
}

/* ---- resampling ---- */

int mm_resample(const float *x, size_t n, int sr_in, int sr_out, float **y, size_t *ny,
                mm_err *err)
{
    if (sr_in <= 0 || sr_out <= 0)
        return mm_err_set(err, MM_EINVAL, "resample: sample rates must be > 0, got %d -> %d", sr_in,
                          sr_out);
    /* Output length ceil(n·sr_out/sr_in), as torchaudio.functional.resample. */
    size_t olen = (size_t)(((unsigned long long)n * (unsigned)sr_out + (unsigned)sr_in - 1) /
                           (unsigned)sr_in);
    float *out = mm_malloc(olen ? olen : 1, sizeof *out, err);   /* written below, or zeroed */
    if (!out) return MM_ENOMEM;
    if (sr_in == sr_out) {
        if (n) memcpy(out, x, n * sizeof *out);
    } else if (n) {
        /* soxr_create + one process call + flush: the same output as soxr_oneshot, which
         * feeds its input in small pieces and is about twice as slow here. */
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        soxr_runtime_spec_t rt = soxr_runtime_spec(1);
        soxr_error_t e = NULL;
        soxr_t rs = soxr_create(sr_in, sr_out, 1, &e, &io, &q, &rt);
        size_t idone = 0, odone = 0, oflush = 0;
        if (!e) e = soxr_process(rs, x, n, &idone, out, olen, &odone);
        if (!e && odone < olen) e = soxr_process(rs, NULL, 0, NULL, out + odone, olen - odone, &oflush);
        soxr_delete(rs);
        if (e) {
            free(out);
            return mm_err_set(err, MM_EINVAL, "resample %d -> %d Hz failed: %s", sr_in, sr_out, e);
        }
        /* soxr may deliver a sample or two fewer: the rest is zero. */
        if (odone + oflush < olen)
            memset(out + odone + oflush, 0, (olen - odone - oflush) * sizeof *out);
    }
    *y = out;
    *ny = olen;
    return 0;
}

/* ---- decoding ---- */

typedef struct vio {
    const unsigned char *data;
    sf_count_t len, pos;
} vio;

static sf_count_t vio_len(void *u) { return ((vio *)u)->len; }

static sf_count_t vio_seek(sf_count_t off, int whence, void *u)
{
    vio *v = u;
    sf_count_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? v->pos + off : v->len + off;
    if (p < 0) p = 0;
    if (p > v->len) p = v->len;
    v->pos = p;
    return p;
}

static sf_count_t vio_read(void *ptr, sf_count_t count, void *u)
{
    vio *v = u;
    if (count < 0) return 0;
    sf_count_t left = v->len - v->pos;
    if (count > left) count = left;
    if (count > 0) memcpy(ptr, v->data + v->pos, (size_t)count);
    v->pos += count;
    return count;
}

static sf_count_t vio_write(const void *ptr, sf_count_t count, void *u)
{
    (void)ptr, (void)count, (void)u;
    return 0;
}

static sf_count_t vio_tell(void *u) { return ((vio *)u)->pos; }

/* A WAV whose data chunk claims more bytes than the file holds: libsndfile clamps the length
 * and logs "data : N (should be M)"; we call that truncated. */
static int wav_log_truncated(SNDFILE *f)
{
    char log[4096];
    log[0] = 0;
    sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
    const char *p = strstr(log, "\ndata : ");
    if (!p) return 0;
    const char *eol = strchr(p + 1, '\n');
    const char *s = strstr(p, "(should be");
    return s && (!eol || s < eol);
}

/* resample → trim → min length → crop/pad → peak normalise, on a malloc'd mono buffer
 * (ownership of x passes to this function). */
static int postprocess(const char *name, float *x, size_t n, int sr, const mm_audio_opts *o,
                       mm_audio *out, mm_err *err)
{
    int rc = 0;
    /* one resampling: to the target rate, or to target/speed when perturbed (the
     * samples are then read at the target rate: speed times faster and higher) */
    int out_sr = o->target_sr > 0 ? o->target_sr : sr;
    int to = o->speed != 1.0 && o->speed > 0 ? (int)lround(out_sr / o->speed) : out_sr;
    if (to > sr && (double)n * to / sr > (double)MM_AUDIO_MAX_SAMPLES) {
        free(x);
        return mm_err_set(err, MM_EDATA,
                          "%s: %zu samples at %d Hz resample to more than %zu at %d Hz; expected "
                          "at most %zu samples", name, n, sr, MM_AUDIO_MAX_SAMPLES, to,
                          MM_AUDIO_MAX_SAMPLES);
    }
    if (to != sr) {
        float *y;
        size_t ny;
        rc = mm_resample(x, n, sr, to, &y, &ny, err);
        free(x);
        x = NULL;
        if (rc) {
            mm_err_prefix(err, "%s", name);
            return rc;
        }
        x = y;
        n = ny;
    }
    sr = out_sr;
    if (o->trim) {
        /* one pass over the samples: block energies give the frames and the silence test
         * (the sum of squares in double is 0 exactly when every sample is 0) */
        double *ms, ref, total = 0;
        size_t nf, s = 0, e = 0;
        int tr = n > 0 ? trim_frame_ms(x, n, o->trim_frame, o->trim_hop, &ms, &nf, &ref, &total) : 1;
        if (tr < 0) {
            rc = mm_err_set(err, MM_ENOMEM, "%s: out of memory trimming %zu samples", name, n);
            goto fail;
        }
        if (tr == 0) {
            trim_bounds_from_ms(ms, nf, ref, n, o->trim_top_db, o->trim_hop, &s, &e);
            free(ms);
        }
        if (total == 0 || e <= s) {
            rc = mm_err_set(err, MM_EDATA,
                            "%s: audio trims to nothing (all samples are silent); expected "
                            "sound above -%g dB of the loudest frame",
                            name, o->trim_top_db);
            goto fail;
        }
        if (s > 0) memmove(x, x + s, (e - s) * sizeof *x);
        n = e - s;
    }
    if (o->min_seconds > 0 && (double)n < o->min_seconds * sr) {
        rc = mm_err_set(err, MM_EDATA, "%s: audio is %.3f s long%s; expected at least %g s", name,
                        (double)n / sr, o->trim ? " after trimming silence" : "", o->min_seconds);
        goto fail;
    }
    if (o->fixed_seconds > 0) {
        size_t L = (size_t)llround(o->fixed_seconds * sr);
        if (L == 0) L = 1;
        float *y = mm_calloc(L, sizeof *y, err);
        if (!y) {
            rc = MM_ENOMEM;
            goto fail;
        }
        if (n >= L) {
            size_t off = o->fixed_center ? (n - L) / 2 : 0;
            memcpy(y, x + off, L * sizeof *y);
        } else {
            size_t off = o->fixed_center ? (L - n) / 2 : 0;
            memcpy(y + off, x, n * sizeof *y);
        }
        free(x);
        x = y;
        n = L;
    }
    if (o->peak_normalize) {
        float peak = mm_level_peak_abs(x, n);
        if (peak > 0)
            for (size_t i = 0; i < n; i++) x[i] /= peak;
    }
    out->x = x;
    out->n = n;
    out->sr = sr;
    return 0;
fail:
    free(x);
    return rc;
}

static const char *const k_expect = "expected WAV, FLAC, Ogg/Vorbis or MP3 audio";

/* One-line message for a failed sf_open*. libsndfile keeps the reason of a failed open in a
 * global, so under concurrent failures the wording may come from another thread's file; the
 * file name and the failure itself are always this call's. */
static int open_error(const char *name, mm_err *err)
{
    int e = sf_error(NULL);
    const char *why = sf_strerror(NULL);
    /* libsndfile often returns internal codes: classify sample-format problems by text. */
    if (strstr(why, "unimplemented") || strstr(why, "nsupported") || strstr(why, "'fmt '"))
        e = SF_ERR_UNSUPPORTED_ENCODING;
    switch (e) {
    case SF_ERR_UNRECOGNISED_FORMAT:
        return mm_err_set(err, MM_EFORMAT, "%s: not a recognised audio file; %s", name, k_expect);
    case SF_ERR_UNSUPPORTED_ENCODING:
        return mm_err_set(err, MM_EFORMAT,
                          "%s: unsupported sample format (libsndfile: %s); expected PCM, float, "
                          "FLAC, Vorbis or MPEG samples",
                          name, why);
    case SF_ERR_MALFORMED_FILE:
        return mm_err_set(err, MM_EFORMAT,
                          "%s: malformed or truncated audio file (libsndfile: %s); %s", name, why,
                          k_expect);
    default:
        return mm_err_set(err, MM_EFORMAT,
                          "%s: cannot decode: truncated or corrupt audio (libsndfile: %s); %s",
                          name, why, k_expect);
    }
}

/* Decode an open SNDFILE (closed here) into *out. */
static int decode(SNDFILE *f, const SF_INFO *sip, const char *name, const mm_audio_opts *o,
                  mm_audio *out, mm_err *err)
{
    SF_INFO si = *sip;
    mm_audio_opts defaults;
    if (!o) {
        mm_audio_opts_default(&defaults);
        o = &defaults;
    }
    int rc = 0;
    float *buf = NULL, *mono = NULL;
    short *pcm = NULL;
    int ch = si.channels, sr = si.samplerate;
    if (o->target_sr < 0 || o->target_sr > 1000000 ||
        (o->trim && (o->trim_frame < 1 || o->trim_hop < 1 || !(o->trim_top_db > 0))) ||
        !(o->fixed_seconds >= 0 && o->fixed_seconds <= MM_AUDIO_MAX_SECONDS) ||
        !(o->min_seconds >= 0) || (o->speed != 0 && !(o->speed >= 0.5 && o->speed <= 2.0))) {
        rc = mm_err_set(err, MM_EINVAL,
                        "%s: bad audio options (target_sr %d, trim_frame %d, trim_hop %d, "
                        "trim_top_db %g, fixed_seconds %g, min_seconds %g, speed %g); expected target_sr "
                        "0..1000000, frame and hop >= 1, top_db > 0, lengths >= 0, speed 0.5..2",
                        name, o->target_sr, o->trim_frame, o->trim_hop, o->trim_top_db,
                        o->fixed_seconds, o->min_seconds, o->speed);
        goto done;
    }
    if (ch < 1 || ch > 64) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: %d channels; expected 1 to 64", name, ch);
        goto done;
    }
    if (sr < MM_AUDIO_MIN_RATE || sr > MM_AUDIO_MAX_RATE) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: sample rate %d Hz; expected %d to %d Hz", name, sr,
                        MM_AUDIO_MIN_RATE, MM_AUDIO_MAX_RATE);
        goto done;
    }
    /* Read in chunks and grow as samples actually arrive: the header's frame count is only
     * a hint (capped at 2^20 frames) for the first allocation, never trusted for size. */
    size_t max_frames = (size_t)(MM_AUDIO_MAX_SECONDS * sr);
    if (max_frames > MM_AUDIO_MAX_SAMPLES / (size_t)ch) max_frames = MM_AUDIO_MAX_SAMPLES / (size_t)ch;
    size_t cap = 0, got = 0;
    const size_t chunk = 16384;
    /* 16-bit PCM (WAV uploads, RAVDESS FLAC): read the integers and scale them here, a loop
     * the compiler vectorises, instead of libsndfile's per-sample conversion; the values are
     * the same (s · 2^-15, exact). */
    if ((si.format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16)
        pcm = malloc(chunk * (size_t)ch * sizeof *pcm);   /* NULL: the float path below */
    for (;;) {
        if (got + chunk > cap) {
            size_t hint = si.frames > 0 && si.frames < ((sf_count_t)1 << 20) ? (size_t)si.frames : 0;
            size_t ncap = cap ? cap * 2 : hint + chunk;
            if (ncap < got + chunk) ncap = got + chunk;
            if (ncap > max_frames + chunk) ncap = max_frames + chunk;
            float *nb = realloc(buf, ncap * (size_t)ch * sizeof *nb);
            if (!nb) {
                rc = mm_err_set(err, MM_ENOMEM, "%s: out of memory decoding %zu frames", name,
                                ncap);
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        sf_count_t r;
        if (pcm) {
            r = sf_readf_short(f, pcm, (sf_count_t)chunk);
            float *dst = buf + got * (size_t)ch;
            for (size_t i = 0; r > 0 && i < (size_t)r * (size_t)ch; i++)
                dst[i] = (float)pcm[i] * (1.0f / 32768.0f);
        } else {
            r = sf_readf_float(f, buf + got * (size_t)ch, (sf_count_t)chunk);
        }
        if (r <= 0) break;
        got += (size_t)r;
        if (got > max_frames) {
            rc = mm_err_set(err, MM_EDATA,
                            "%s: audio longer than %.0f s (%d channels at %d Hz); expected at "
                            "most %g s and %zu samples",
                            name, (double)max_frames / sr, ch, sr, MM_AUDIO_MAX_SECONDS,
                            MM_AUDIO_MAX_SAMPLES);
            goto done;
        }
    }
    if (sf_error(f) != SF_ERR_NO_ERROR) {
        rc = mm_err_set(err, MM_EFORMAT,
                        "%s: decoding failed after %zu frames: truncated or corrupt audio "
                        "(libsndfile: %s)",
                        name, got, sf_strerror(f));
        goto done;
    }
    int major = si.format & SF_FORMAT_TYPEMASK;
    if (major != SF_FORMAT_MPEG && si.frames > 0 && si.frames != SF_COUNT_MAX &&
        (sf_count_t)got < si.frames) {
        rc = mm_err_set(err, MM_EFORMAT,
                        "%s: truncated: the header promises %lld frames, only %zu could be "
                        "decoded",
                        name, (long long)si.frames, got);
        goto done;
    }
    if ((major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX || major == SF_FORMAT_RF64) &&
        wav_log_truncated(f)) {
        rc = mm_err_set(err, MM_EFORMAT,
                        "%s: truncated: the WAV data chunk is longer than the file (%zu frames "
                        "present)",
                        name, got);
        goto done;
    }
    if (got == 0) {
        rc = mm_err_set(err, MM_EDATA, "%s: no audio samples (0 frames); expected audio", name);
        goto done;
    }
    /* |x| <= MAX_ABS is false exactly for NaN, ±inf and samples far beyond full scale (which
     * would overflow later sums and powers): a branch-free pass the compiler vectorises, then
     * the slow search only when something was found. Scaled 16-bit integers are in range. */
    unsigned bad = 0;
    for (size_t i = 0; !pcm && i < got * (size_t)ch; i++) bad |= !(fabsf(buf[i]) <= MM_AUDIO_MAX_ABS);
    for (size_t i = 0; bad && i < got * (size_t)ch; i++)
        if (!(fabsf(buf[i]) <= MM_AUDIO_MAX_ABS)) {
            char v[32];
            if (isfinite(buf[i])) snprintf(v, sizeof v, "%g", buf[i]);
            rc = mm_err_set(err, MM_EDATA,
                            "%s: sample %zu (channel %d) is %s; expected finite samples within "
                            "+-%g (full scale is 1)", name, i / (size_t)ch, (int)(i % (size_t)ch),
                            isnan(buf[i]) ? "NaN" : isinf(buf[i]) ? "inf" : v, MM_AUDIO_MAX_ABS);
            goto done;
        }
    /* Down-mix: mean over channels (sum in channel order, then divide, as torch.mean). */
    if (ch == 1) {
        mono = buf;
        buf = NULL;
        float *shrunk = realloc(mono, got * sizeof *mono);
        if (shrunk) mono = shrunk;
    } else {
        mono = mm_malloc(got, sizeof *mono, err);
        if (!mono) {
            rc = MM_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < got; i++) {
            const float *p = buf + i * (size_t)ch;
            float s = p[0];
            for (int c = 1; c < ch; c++) s += p[c];
            mono[i] = s / (float)ch;
        }
    }
    mm_audio res = {0};
    res.orig_sr = sr;
    res.orig_channels = ch;
    res.orig_seconds = (double)got / sr;
    rc = postprocess(name, mono, got, sr, o, &res, err);
    mono = NULL;
    if (rc == 0) *out = res;
done:
    free(pcm);
    free(buf);
    free(mono);
    sf_close(f);
    return rc;
}

int mm_audio_load_memory(const void *data, size_t len, const char *name, const mm_audio_opts *o,
                         mm_audio *out, mm_err *err)
{
    if (!name) name = "<memory>";
    if (len == 0 || !data)
        return mm_err_set(err, MM_EFORMAT, "%s: empty file (0 bytes); %s", name, k_expect);
    vio v = {data, (sf_count_t)len, 0};
    SF_VIRTUAL_IO io = {vio_len, vio_seek, vio_read, vio_write, vio_tell};
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *f = sf_open_virtual(&io, SFM_READ, &si, &v);
    if (!f) return open_error(name, err);
    return decode(f, &si, name, o, out, err);
}

int mm_audio_load(const char *path, const mm_audio_opts *o, mm_audio *out, mm_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return mm_err_set(err, MM_EIO, "%s: no such file; %s", path, k_expect);
        return mm_err_set(err, MM_EIO, "%s: cannot access: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return mm_err_set(err, MM_EIO, "%s: not a regular file; %s", path, k_expect);
    if (st.st_size == 0)
        return mm_err_set(err, MM_EFORMAT, "%s: empty file (0 bytes); %s", path, k_expect);
    /* Decode straight from the file (no copy); same checks as the memory path. */
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *f = sf_open(path, SFM_READ, &si);
    if (!f) return open_error(path, err);
    return decode(f, &si, path, o, out, err);
}
