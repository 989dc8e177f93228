/* corrupt.c — named corruptions of a clip for augmentation and robustness; see corrupt.h.
 *
 * Each clip draws its values with mm_rng seeded from (seed, clip, kind), so a corrupted
 * table depends only on the corruption, the seed and the data. Babble pools are the
 * classes of rows with identical role vectors over every round of the split; music files
 * are split by index (even: training, odd: tests). The signal functions are
 * audio/augment.h's; levels are matched by RMS where a transform changes them (pitch,
 * resampling).
 */
#include "exp/corrupt.h"

#include <dirent.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "audio/augment.h"
#include "core/rng.h"
#include "data/extract.h"

const char *const mm_corr_augment_keys[] = {"speed", "gain", "noise", "babble", "music", "reverb",
                                            "telephone", "codec", "pitch", NULL};

static const char *const kind_names[] = {"gain", "noise", "babble", "music", "reverb",
                                         "telephone", "codec", "pitch", "resample"};
static const char *const color_names[] = {"white", "pink", "brown", NULL};
static const char *const codec_names[] = {"mp3", "opus", NULL};

#define DEFAULT_MUSIC_DIR "music-4q"
#define REVERB_DRR_DB 0.0          /* direct-to-reverberant ratio of every reverb corruption */
#define MIN_NOISE_SECONDS 1.0      /* a recorded noise file must hold at least this */

/* ---- parsing ---- */

/* A list of numbers (or one number) at key into c->val, each in [lo, hi]. */
static int parse_values(const mm_cfg *m, const char *what, const char *key, double lo, double hi, int required,
                        const double *defs, size_t n_defs, mm_corr *c, mm_err *err)
{
    char w[600];
    const mm_cfg *v = mm_cfg_child(m, key);
    if (!v) {
        if (required) return mm_err_set(err, MM_EINVAL, "%s: augment.%s needs '%s: [values]'", mm_cfg_where(m, w, sizeof w), what, key);
        memcpy(c->val, defs, n_defs * sizeof *defs);
        c->n_val = n_defs;
        return 0;
    }
    size_t n = v->type == MM_CFG_SEQ ? v->n : 1;
    if (v->type == MM_CFG_MAP || n == 0 || n > MM_CORR_MAX_VALUES)
        return mm_err_set(err, MM_EINVAL, "%s: augment.%s.%s: expected a number or a list of 1 to %d numbers", mm_cfg_where(v, w, sizeof w), what, key, MM_CORR_MAX_VALUES);
    for (size_t i = 0; i < n; i++) {
        const mm_cfg *it = v->type == MM_CFG_SEQ ? v->items[i] : v;
        double x;
        int rc = mm_cfg_scalar_double(it, key, &x, err);
        if (rc) return rc;
        if (!(x >= lo && x <= hi))
            return mm_err_set(err, MM_EINVAL, "%s: augment.%s.%s %g is out of range: expected %g..%g", mm_cfg_where(it, w, sizeof w), what, key, x, lo, hi);
        c->val[i] = x;
    }
    c->n_val = n;
    return 0;
}

/* A list of names (or one) at key into c->alt. */
static int parse_alts(const mm_cfg *m, const char *what, const char *key, const char *const *names, int def_all,
                      mm_corr *c, mm_err *err)
{
    char w[600];
    const mm_cfg *v = mm_cfg_child(m, key);
    if (!v) {
        c->n_alt = 0;
        for (int i = 0; names[i] && def_all; i++) c->alt[c->n_alt++] = i;
        if (!def_all) c->alt[c->n_alt++] = 0;
        return 0;
    }
    size_t n = v->type == MM_CFG_SEQ ? v->n : 1;
    if (v->type == MM_CFG_MAP || n == 0 || n > MM_CORR_MAX_VALUES)
        return mm_err_set(err, MM_EINVAL, "%s: augment.%s.%s: expected a name or a list of names", mm_cfg_where(v, w, sizeof w), what, key);
    c->n_alt = 0;
    for (size_t i = 0; i < n; i++) {
        const mm_cfg *it = v->type == MM_CFG_SEQ ? v->items[i] : v;
        int found = -1;
        for (int j = 0; it->value && names[j]; j++) if (!strcmp(it->value, names[j])) found = j;
        if (found < 0) {
            char list[128] = "";
            for (int j = 0; names[j]; j++) { strncat(list, j ? ", " : "", sizeof list - strlen(list) - 1); strncat(list, names[j], sizeof list - strlen(list) - 1); }
            return mm_err_set(err, MM_EINVAL, "%s: augment.%s.%s: unknown value '%s' (expected %s)", mm_cfg_where(it, w, sizeof w), what, key, it->value ? it->value : "?", list);
        }
        c->alt[c->n_alt++] = found;
    }
    return 0;
}

int mm_corr_parse_augment(const mm_cfg *node, mm_corr *c, mm_err *err)
{
    char w[600];
    memset(c, 0, sizeof *c);
    const char *key = node->key ? node->key : "?";
    int kind = -1;
    for (int i = 0; i < (int)(sizeof kind_names / sizeof *kind_names); i++)
        if (!strcmp(key, kind_names[i]) && i != MM_CORR_RESAMPLE) kind = i;
    if (kind < 0) {
        char list[256] = "";
        for (int i = 0; mm_corr_augment_keys[i]; i++) { strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1); strncat(list, mm_corr_augment_keys[i], sizeof list - strlen(list) - 1); }
        return mm_err_set(err, MM_EINVAL, "%s: unknown augmentation '%s' (expected %s)", mm_cfg_where(node, w, sizeof w), key, list);
    }
    c->kind = (mm_corr_kind)kind;
    snprintf(c->name, sizeof c->name, "augment_%s", key);
    if (kind == MM_CORR_TELEPHONE && node->type == MM_CFG_SCALAR) {
        if (strcmp(node->value, "true"))
            return mm_err_set(err, MM_EINVAL, "%s: augment.telephone: expected true or {}", mm_cfg_where(node, w, sizeof w));
        return 0;
    }
    if (node->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: augment.%s: expected a map, e.g. %s", mm_cfg_where(node, w, sizeof w), key,
                          kind == MM_CORR_GAIN ? "{db: [-20, 20]}" : kind == MM_CORR_REVERB ? "{rt60: [0.2, 0.5, 1.0]}"
                          : kind == MM_CORR_CODEC ? "{format: [mp3, opus], kbps: [16, 32, 64]}"
                          : kind == MM_CORR_PITCH ? "{semitones: [-2, 2]}" : "{snr: [5, 10, 20]}");
    int rc = 0;
    static const double snr_def[] = {5, 10, 20}, rt_def[] = {0.2, 0.5, 1.0}, kb_def[] = {16, 32, 64};
    switch (c->kind) {
    case MM_CORR_GAIN: {
        static const char *const k[] = {"db", NULL};
        if (!(rc = mm_cfg_check_keys(node, "augment.gain", k, err)))
            rc = parse_values(node, key, "db", -MM_AUG_GAIN_DB_MAX, MM_AUG_GAIN_DB_MAX, 1, NULL, 0, c, err);
        break;
    }
    case MM_CORR_NOISE: {
        static const char *const k[] = {"color", "snr", NULL};
        if (!(rc = mm_cfg_check_keys(node, "augment.noise", k, err)) &&
            !(rc = parse_values(node, key, "snr", MM_AUG_SNR_MIN, MM_AUG_SNR_MAX, 0, snr_def, 3, c, err)))
            rc = parse_alts(node, key, "color", color_names, 1, c, err);
        break;
    }
    case MM_CORR_BABBLE: {
        static const char *const k[] = {"snr", "speakers", NULL};
        long sp = 4;
        if (!(rc = mm_cfg_check_keys(node, "augment.babble", k, err)) &&
            !(rc = parse_values(node, key, "snr", MM_AUG_SNR_MIN, MM_AUG_SNR_MAX, 0, snr_def, 3, c, err)))
            rc = mm_cfg_get_int(node, "speakers", 4, 1, 16, &sp, err);
        c->speakers = (int)sp;
        break;
    }
    case MM_CORR_MUSIC: {
        static const char *const k[] = {"snr", "dir", NULL};
        const char *dir = NULL;
        if (!(rc = mm_cfg_check_keys(node, "augment.music", k, err)) &&
            !(rc = parse_values(node, key, "snr", MM_AUG_SNR_MIN, MM_AUG_SNR_MAX, 0, snr_def, 3, c, err)))
            rc = mm_cfg_get_str(node, "dir", DEFAULT_MUSIC_DIR, &dir, err);
        if (!rc) snprintf(c->dir, sizeof c->dir, "%s", dir);
        break;
    }
    case MM_CORR_REVERB: {
        static const char *const k[] = {"rt60", NULL};
        if (!(rc = mm_cfg_check_keys(node, "augment.reverb", k, err)))
            rc = parse_values(node, key, "rt60", MM_AUG_RT60_MIN, MM_AUG_RT60_MAX, 0, rt_def, 3, c, err);
        break;
    }
    case MM_CORR_TELEPHONE: {
        static const char *const k[] = {NULL};
        rc = mm_cfg_check_keys(node, "augment.telephone", k, err);
        break;
    }
    case MM_CORR_CODEC: {
        static const char *const k[] = {"format", "kbps", NULL};
        if (!(rc = mm_cfg_check_keys(node, "augment.codec", k, err)) &&
            !(rc = parse_values(node, key, "kbps", MM_AUG_KBPS_MIN, MM_AUG_KBPS_MAX, 0, kb_def, 3, c, err)))
            rc = parse_alts(node, key, "format", codec_names, 1, c, err);
        for (size_t a = 0; !rc && a < c->n_alt; a++)
            for (size_t i = 0; !rc && i < c->n_val; i++)
                if (c->alt[a] == MM_CODEC_OPUS && c->val[i] > MM_AUG_OPUS_KBPS_MAX)
                    rc = mm_err_set(err, MM_EINVAL, "%s: augment.codec: opus at %g kbit/s: expected %d..%d", mm_cfg_where(node, w, sizeof w), c->val[i], MM_AUG_KBPS_MIN, MM_AUG_OPUS_KBPS_MAX);
        break;
    }
    case MM_CORR_PITCH: {
        static const char *const k[] = {"semitones", NULL};
        if (!(rc = mm_cfg_check_keys(node, "augment.pitch", k, err)))
            rc = parse_values(node, key, "semitones", -MM_AUG_SEMITONES_MAX, MM_AUG_SEMITONES_MAX, 1, NULL, 0, c, err);
        break;
    }
    default: break;
    }
    return rc;
}

int mm_corr_parse_name(const char *name, mm_corr *c, mm_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->test_part = 1;
    c->n_val = 1;
    double v = 0;
    int iv = 0, used = 0;
    char tail[8];
    const char *why = NULL;
#define MATCH(fmt, var) (sscanf(name, fmt "%n", &var, &used) == 1 && name[used] == 0)
    if (!strcmp(name, "telephone")) { c->kind = MM_CORR_TELEPHONE; return 0; }
    if (MATCH("gain_%lfdb", v)) {
        c->kind = MM_CORR_GAIN; c->val[0] = v;
        if (!(fabs(v) <= MM_AUG_GAIN_DB_MAX) || v == 0) why = "gain: expected -40..40 dB and not 0";
    } else if (!strncmp(name, "white_", 6) || !strncmp(name, "pink_", 5) || !strncmp(name, "brown_", 6) ||
               !strncmp(name, "babble_", 7) || !strncmp(name, "music_", 6)) {
        const char *u = strchr(name, '_');
        if (sscanf(u + 1, "%lfdb%n", &v, &used) != 1 || u[1 + used] != 0) why = "expected <noise>_<snr>db, e.g. pink_10db";
        else if (!(v >= MM_AUG_SNR_MIN && v <= MM_AUG_SNR_MAX)) why = "SNR: expected -10..60 dB";
        c->val[0] = v;
        c->n_alt = 1;
        if (name[0] == 'w') { c->kind = MM_CORR_NOISE; c->alt[0] = MM_NOISE_WHITE; }
        else if (name[0] == 'p') { c->kind = MM_CORR_NOISE; c->alt[0] = MM_NOISE_PINK; }
        else if (name[0] == 'b' && name[1] == 'r') { c->kind = MM_CORR_NOISE; c->alt[0] = MM_NOISE_BROWN; }
        else if (name[0] == 'b') { c->kind = MM_CORR_BABBLE; c->speakers = 4; c->n_alt = 0; }
        else { c->kind = MM_CORR_MUSIC; snprintf(c->dir, sizeof c->dir, "%s", DEFAULT_MUSIC_DIR); c->n_alt = 0; }
    } else if (MATCH("reverb_%lfs", v)) {
        c->kind = MM_CORR_REVERB; c->val[0] = v;
        if (!(v >= MM_AUG_RT60_MIN && v <= MM_AUG_RT60_MAX)) why = "RT60: expected 0.1..2 s";
    } else if (MATCH("mp3_%dkbps", iv) || MATCH("opus_%dkbps", iv)) {
        c->kind = MM_CORR_CODEC; c->val[0] = iv; c->n_alt = 1;
        c->alt[0] = name[0] == 'o' ? MM_CODEC_OPUS : MM_CODEC_MP3;
        if (!(iv >= MM_AUG_KBPS_MIN && iv <= (name[0] == 'o' ? MM_AUG_OPUS_KBPS_MAX : MM_AUG_KBPS_MAX))) why = "bit rate: expected 8..320 kbit/s (opus 8..256)";
    } else if (MATCH("resample_%dkhz", iv)) {
        c->kind = MM_CORR_RESAMPLE; c->val[0] = iv * 1000.0;
        if (!(iv >= 8 && iv <= 192)) why = "rate: expected 8..192 kHz";
    } else if (MATCH("pitch_%lfst", v)) {
        c->kind = MM_CORR_PITCH; c->val[0] = v;
        if (!(fabs(v) <= MM_AUG_SEMITONES_MAX) || v == 0) why = "pitch: expected -12..12 semitones and not 0";
    } else {
        (void)tail;
        return mm_err_set(err, MM_EINVAL, "unknown corruption '%s' (expected gain_<dB>db, white|pink|brown|babble|music_<SNR>db, "
                          "reverb_<RT60>s, telephone, mp3|opus_<kbps>kbps, resample_<kHz>khz, pitch_<semitones>st)", name);
    }
#undef MATCH
    if (why) return mm_err_set(err, MM_EINVAL, "corruption '%s': %s", name, why);
    return 0;
}

void mm_corr_standard_suite(const char *const **names, size_t *n)
{
    static const char *const suite[] = {
        "gain_+20db", "gain_-20db",
        "white_20db", "white_10db", "white_0db", "pink_20db", "pink_10db", "pink_0db",
        "babble_20db", "babble_10db", "babble_0db", "music_20db", "music_10db", "music_0db",
        "reverb_0.3s", "reverb_0.6s", "reverb_1s", "telephone", "mp3_32kbps", "resample_8khz"};
    *names = suite;
    *n = sizeof suite / sizeof *suite;
}

mm_cfg *mm_corr_key(const mm_corr *c, uint64_t seed)
{
    char text[2048];
    int l = snprintf(text, sizeof text, "{kind: %s, values: [", kind_names[c->kind]);
    for (size_t i = 0; i < c->n_val && l < (int)sizeof text; i++) l += snprintf(text + l, sizeof text - l, "%s%.17g", i ? ", " : "", c->val[i]);
    l += snprintf(text + l, sizeof text - l, "], alt: [");
    for (size_t i = 0; i < c->n_alt && l < (int)sizeof text; i++) l += snprintf(text + l, sizeof text - l, "%s%d", i ? ", " : "", c->alt[i]);
    l += snprintf(text + l, sizeof text - l, "], speakers: %d, dir: '%s', part: %s, seed: %llu, version: 1", c->speakers, c->dir,
                  c->test_part ? "test" : "train", (unsigned long long)seed);
    if (c->every > 1 && l < (int)sizeof text) l += snprintf(text + l, sizeof text - l, ", every: %d", c->every);
    if (l < (int)sizeof text) snprintf(text + l, sizeof text - l, "}");
    mm_cfg *out = NULL;
    mm_err e = {0};
    if (mm_cfg_parse_string(text, "corruption", &out, &e)) return NULL;
    return out;
}

/* ---- context ---- */

struct mm_corr_ctx {
    mm_corr c;
    uint64_t seed;
    mm_audio_opts audio;
    size_t n;                  /* dataset rows */
    char **paths;              /* (n) borrowed copies (owned) */
    int32_t *groups;           /* (n) */
    int32_t *pool;             /* (n) pool of each row, -1 none */
    size_t n_pools;
    size_t *pool_off, *pool_rows;   /* CSR: rows of pool p at pool_rows[pool_off[p] .. pool_off[p+1]) */
    char **music;              /* (n_music) files of this part */
    size_t n_music;
};

void mm_corr_ctx_free(mm_corr_ctx *x)
{
    if (!x) return;
    for (size_t i = 0; x->paths && i < x->n; i++) free(x->paths[i]);
    free(x->paths);
    free(x->groups);
    free(x->pool);
    free(x->pool_off);
    free(x->pool_rows);
    for (size_t i = 0; i < x->n_music; i++) free(x->music[i]);
    free(x->music);
    free(x);
}

static int has_audio_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const ext[] = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", NULL};
    for (int i = 0; dot && ext[i]; i++) if (!strcasecmp(dot, ext[i])) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Audio files under dir (recursive), appended to *list. */
static int list_audio(const char *dir, char ***list, size_t *n, size_t *cap, int depth)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st)) continue;
        if (S_ISDIR(st.st_mode)) { if (depth < 4) list_audio(p, list, n, cap, depth + 1); continue; }
        if (!S_ISREG(st.st_mode) || !has_audio_ext(e->d_name)) continue;
        if (*n == *cap) {
            size_t nc = *cap ? 2 * *cap : 64;
            char **nl = realloc(*list, nc * sizeof *nl);
            if (!nl) { closedir(d); return -2; }
            *list = nl;
            *cap = nc;
        }
        (*list)[(*n)++] = strdup(p);
    }
    closedir(d);
    return 0;
}

static int music_files(mm_corr_ctx *x, const char *data_root, mm_err *err)
{
    char dir[4096];
    if (x->c.dir[0] == '/') snprintf(dir, sizeof dir, "%s", x->c.dir);
    else snprintf(dir, sizeof dir, "%s/%s", data_root, x->c.dir);
    char **all = NULL;
    size_t n = 0, cap = 0;
    int rc = list_audio(dir, &all, &n, &cap, 0);
    if (rc == -1) return mm_err_set(err, MM_EINVAL, "%s: %s: the noise folder cannot be opened", x->c.name, dir);
    if (rc == -2 || (n && !all)) return mm_err_set(err, MM_ENOMEM, "out of memory");
    if (n < 2) {
        for (size_t i = 0; i < n; i++) free(all[i]);
        free(all);
        return mm_err_set(err, MM_EINVAL, "%s: %s: the noise folder holds %zu audio files (.wav, .flac, .mp3, .ogg); need at least 2 (one for training, one for tests)",
                          x->c.name, dir, n);
    }
    qsort(all, n, sizeof *all, cmp_str);
    x->music = calloc(n, sizeof *x->music);
    if (!x->music) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!rc && (int)(i % 2) == x->c.test_part) {
            SF_INFO info = {0};
            SNDFILE *f = sf_open(all[i], SFM_READ, &info);
            if (!f) rc = mm_err_set(err, MM_EINVAL, "%s: %s: not a readable audio file (noise folder %s)", x->c.name, all[i], dir);
            else {
                double secs = info.samplerate > 0 ? (double)info.frames / info.samplerate : 0;
                sf_close(f);
                if (!(secs >= MIN_NOISE_SECONDS))
                    rc = mm_err_set(err, MM_EINVAL, "%s: %s holds %.2f s; noise files need at least %g s", x->c.name, all[i], secs, MIN_NOISE_SECONDS);
            }
            if (!rc) { x->music[x->n_music++] = all[i]; all[i] = NULL; }
        }
        free(all[i]);
    }
    free(all);
    return rc;
}

/* Babble pools: rows with identical role vectors (all rows when rr is NULL); each pool
 * must hold a second group for every row that has a role. */
static int babble_pools(mm_corr_ctx *x, const uint8_t *const *rr, size_t R, mm_err *err)
{
    size_t n = x->n;
    x->pool = malloc((n + 1) * sizeof *x->pool);
    size_t *rep = malloc((n + 1) * sizeof *rep);   /* a representative row of each pool */
    x->pool_off = calloc(n + 2, sizeof *x->pool_off);
    x->pool_rows = malloc((n + 1) * sizeof *x->pool_rows);
    if (!x->pool || !rep || !x->pool_off || !x->pool_rows) { free(rep); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < n; i++) {
        x->pool[i] = -1;
        if (rr && !rr[i]) continue;
        size_t p = 0;
        while (p < x->n_pools && rr && memcmp(rr[rep[p]], rr[i], R)) p++;
        if (p == x->n_pools) rep[x->n_pools++] = i;
        x->pool[i] = (int32_t)p;
    }
    free(rep);
    for (size_t i = 0; i < n; i++) if (x->pool[i] >= 0) x->pool_off[x->pool[i] + 1]++;
    for (size_t p = 0; p < x->n_pools; p++) x->pool_off[p + 1] += x->pool_off[p];
    size_t *fill = calloc(x->n_pools + 1, sizeof *fill);
    if (!fill) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (x->pool[i] >= 0) x->pool_rows[x->pool_off[x->pool[i]] + fill[x->pool[i]]++] = i;
    free(fill);
    for (size_t p = 0; p < x->n_pools; p++) {
        const size_t *r = x->pool_rows + x->pool_off[p];
        size_t m = x->pool_off[p + 1] - x->pool_off[p], other = 0;
        for (size_t j = 1; j < m; j++) if (x->groups[r[j]] != x->groups[r[0]] || x->groups[r[0]] < 0) other = 1;
        if (m < 2 || !other)
            return mm_err_set(err, MM_EINVAL, "%s: %s and the clips that share its role in every round all come from one speaker (group %d); babble needs clips of another speaker on the same side of every split (use fewer folds or more speakers)",
                              x->c.name, x->paths[r[0]], (int)x->groups[r[0]]);
    }
    return 0;
}

int mm_corr_ctx_create(const mm_corr *c, uint64_t seed, const mm_dataset *ds, const uint8_t *const *rr,
                       size_t R, const mm_audio_opts *audio, const char *data_root, mm_corr_ctx **out, mm_err *err)
{
    mm_corr_ctx *x = calloc(1, sizeof *x);
    if (!x) return mm_err_set(err, MM_ENOMEM, "out of memory");
    x->c = *c;
    x->seed = seed;
    x->audio = *audio;
    x->audio.speed = 1.0;
    x->n = ds->n;
    int rc = 0;
    if (c->kind == MM_CORR_BABBLE) {
        x->paths = calloc(ds->n + 1, sizeof *x->paths);
        x->groups = malloc((ds->n + 1) * sizeof *x->groups);
        if (!x->paths || !x->groups) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < ds->n; i++) {
            x->paths[i] = strdup(ds->paths[i]);
            x->groups[i] = ds->groups[i];
            if (!x->paths[i]) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        }
        if (!rc) rc = babble_pools(x, rr, R, err);
    }
    if (!rc && c->kind == MM_CORR_MUSIC) rc = music_files(x, data_root, err);
    if (rc) { mm_corr_ctx_free(x); return rc; }
    *out = x;
    return 0;
}

/* ---- applying ---- */

static double rms(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / n) : 0;
}

/* y (ny samples) cut or zero-padded to n, scaled to the RMS `want` (when y has any). */
static float *fit_length(float *y, size_t ny, size_t n, double want)
{
    float *z = calloc(n ? n : 1, sizeof *z);
    if (!z) { free(y); return NULL; }
    memcpy(z, y, (ny < n ? ny : n) * sizeof *z);
    free(y);
    double r = rms(z, n);
    if (r > 0 && want > 0) for (size_t i = 0; i < n; i++) z[i] = (float)(z[i] * (want / r));
    return z;
}

/* The babble of `speakers` other clips of clip's pool at sr, n samples (each source at
 * unit RMS, tiled from a random offset). */
static int make_babble(const mm_corr_ctx *x, size_t clip, int sr, size_t n, mm_rng *g, float **out, mm_err *err)
{
    int32_t p = x->pool[clip];
    if (p < 0) return mm_err_set(err, MM_EINVAL, "%s: %s has no babble pool (an unlabelled clip)", x->c.name, x->paths[clip]);
    const size_t *rows = x->pool_rows + x->pool_off[p];
    size_t m = x->pool_off[p + 1] - x->pool_off[p];
    float *b = calloc(n ? n : 1, sizeof *b);
    if (!b) return mm_err_set(err, MM_ENOMEM, "out of memory");
    int rc = 0, got = 0;
    for (int tries = 0; got < x->c.speakers && tries < 64 * x->c.speakers && !rc; tries++) {
        size_t j = rows[mm_rng_below(g, m)];
        if (j == clip || (x->groups[j] >= 0 && x->groups[j] == x->groups[clip])) continue;
        mm_audio a = {0};
        mm_audio_opts ao = x->audio;
        ao.target_sr = sr;
        rc = mm_audio_load(x->paths[j], &ao, &a, err);
        if (rc) { mm_err_prefix(err, "%s source", x->c.name); break; }
        double r = rms(a.x, a.n);
        size_t off = a.n ? (size_t)mm_rng_below(g, a.n) : 0;
        for (size_t i = 0; r > 0 && i < n; i++) b[i] += (float)(a.x[(off + i) % a.n] / r);
        mm_audio_free(&a);
        got++;
    }
    if (rc) { free(b); return rc; }
    *out = b;
    return 0;
}

int mm_corr_apply_fn(void *ctx, size_t clip, int sr, float **xp, size_t *np, mm_err *err)
{
    const mm_corr_ctx *x = ctx;
    const mm_corr *c = &x->c;
    float *in = *xp, *y = NULL;
    size_t n = *np;
    if (c->every > 1 && clip % (size_t)c->every) return MM_CLIP_SKIP;
    mm_rng g;
    mm_rng_seed(&g, x->seed, 0xc0117u + (uint64_t)c->kind, clip);
    double v = c->n_val ? c->val[mm_rng_below(&g, c->n_val)] : 0;
    int alt = c->n_alt ? c->alt[mm_rng_below(&g, c->n_alt)] : 0;
    uint64_t s2 = mm_rng_u64(&g);
    int rc = 0;
    switch (c->kind) {
    case MM_CORR_GAIN: rc = mm_augment_gain(in, n, v, &y, err); break;
    case MM_CORR_NOISE: rc = mm_augment_noise(in, n, (mm_noise_color)alt, v, s2, &y, err); break;
    case MM_CORR_BABBLE: {
        float *b = NULL;
        rc = make_babble(x, clip, sr, n, &g, &b, err);
        if (!rc) rc = mm_augment_mix(in, n, b, n, v, s2, &y, err);
        free(b);
        break;
    }
    case MM_CORR_MUSIC: {
        const char *f = x->music[mm_rng_below(&g, x->n_music)];
        mm_audio a = {0};
        mm_audio_opts ao;
        mm_audio_opts_default(&ao);
        ao.target_sr = sr;
        rc = mm_audio_load(f, &ao, &a, err);
        if (!rc) rc = mm_augment_mix(in, n, a.x, a.n, v, s2, &y, err);
        mm_audio_free(&a);
        break;
    }
    case MM_CORR_REVERB: rc = mm_augment_reverb(in, n, sr, v, REVERB_DRR_DB, s2, &y, err); break;
    case MM_CORR_TELEPHONE: rc = mm_augment_telephone(in, n, sr, 1, &y, err); break;
    case MM_CORR_CODEC: rc = mm_augment_codec(in, n, sr, (mm_codec)alt, (int)v, &y, err); break;
    case MM_CORR_PITCH:
        rc = mm_augment_pitch(in, n, sr, v, 0, &y, err);
        if (!rc && !(y = fit_length(y, n, n, rms(in, n)))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");   /* level as before */
        break;
    case MM_CORR_RESAMPLE: {
        float *lo = NULL;
        size_t nlo = 0, nb = 0;
        rc = mm_resample(in, n, sr, (int)v, &lo, &nlo, err);
        if (!rc) rc = mm_resample(lo, nlo, (int)v, sr, &y, &nb, err);
        free(lo);
        if (!rc && !(y = fit_length(y, nb, n, 0))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
        break;
    }
    }
    if (rc) return mm_err_prefix(err, "%s", c->name);
    free(in);
    *xp = y;
    return 0;
}

int mm_corr_row_roles(const mm_dataset *ds, const mm_split *split, int test_only, uint8_t **roles_T,
                      const uint8_t ***rr, mm_err *err)
{
    size_t R = split->n_rounds, m = split->n;
    uint8_t *t = malloc((m + 1) * (R + 1));
    const uint8_t **p = calloc(ds->n + 1, sizeof *p);
    if (!t || !p) { free(t); free(p); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t k = 0; k < m; k++)
        for (size_t r = 0; r < R; r++) {
            uint8_t role = split->role[r * m + k];
            /* test corruptions: only where a clip is tested matters (its babble comes from the
             * speakers tested in the same rounds, whatever else their roles; a validation part
             * carved per round would otherwise leave every speaker in a pool of its own) */
            t[k * R + r] = test_only ? (uint8_t)(role == 3 ? 3 : 0) : role;
        }
    if (m == ds->n)   /* a split over every dataset row */
        for (size_t i = 0; i < m; i++) p[i] = ds->labels[i] >= 0 ? t + i * R : NULL;
    else
        for (size_t i = 0, k = 0; i < ds->n && k < m; i++)
            if (ds->labels[i] >= 0) p[i] = t + (k++) * R;
    *roles_T = t;
    *rr = p;
    return 0;
}
