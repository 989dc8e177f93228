/* extract.c — see extract.h; mm_extract_dist shares the files among MPI
 * ranks with src/mpi/sched.h, largest file first, and assembles the same
 * table on rank 0. Progress goes to the caller's callback only. */
#include "data/extract.h"
#include "core/clock.h"
#include "data/shard_table.h"
#include "mpi/mpi.h"
#include "mpi/sched.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void mm_featsets_free(mm_featset_inst *sets, size_t n)
{
    if (!sets) return;
    for (size_t i = 0; i < n; i++) {
        if (sets[i].vt && sets[i].state) sets[i].vt->free(sets[i].state);
        free(sets[i].label);
    }
    free(sets);
}

static int one_set(const mm_cfg *item, const char *model_root, mm_featset_inst *out, mm_err *err)
{
    char w[600];
    const char *name = NULL;
    const mm_cfg *params = NULL;
    if (item->type == MM_CFG_SCALAR) name = item->value;
    else if (item->type == MM_CFG_MAP) {
        static const char *const keys[] = {"set", "params", NULL};
        int rc = mm_cfg_check_keys(item, "features", keys, err);
        if (rc) return rc;
        if ((rc = mm_cfg_get_str(item, "set", NULL, &name, err))) return rc;
        params = mm_cfg_child(item, "params");
    }
    if (!name)
        return mm_err_set(err, MM_EINVAL, "%s: key 'features': expected a feature set name or {set: NAME, params: {...}}", mm_cfg_where(item, w, sizeof w));
    const mm_featset_vt *vt = mm_featset_find(name);
    if (!vt) {
        char list[512] = "";
        for (const mm_featset_vt *const *p = mm_featset_list(); *p; p++) {
            strncat(list, list[0] ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, (*p)->name, sizeof list - strlen(list) - 1);
        }
        return mm_err_set(err, MM_EINVAL, "%s: unknown feature set '%s' (available: %s)", mm_cfg_where(item, w, sizeof w), name, list);
    }
    int rc = vt->create(params, model_root, &out->state, err);
    if (rc) return rc;
    out->vt = vt;
    out->label = strdup(name);
    return 0;
}

int mm_featsets_create(const mm_cfg *features, const char *model_root, mm_featset_inst **sets,
                       size_t *n, mm_err *err)
{
    char w[600];
    if (!features || features->type == MM_CFG_NULL)
        return mm_err_set(err, MM_EINVAL, "%s: no 'features' given (e.g. features: logmel_stats)", mm_cfg_where(features, w, sizeof w));
    size_t count = features->type == MM_CFG_SEQ ? features->n : 1;
    if (count == 0) return mm_err_set(err, MM_EINVAL, "%s: 'features' is an empty list", mm_cfg_where(features, w, sizeof w));
    mm_featset_inst *s = calloc(count, sizeof *s);
    if (!s) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        int rc = one_set(features->type == MM_CFG_SEQ ? features->items[i] : features, model_root, &s[i], err);
        if (rc) { mm_featsets_free(s, count); return rc; }
    }
    *sets = s;
    *n = count;
    return 0;
}

/* Progress over n files for opts' on_progress (fn NULL: none). The caller
 * serialises progress_tick. */
typedef struct progress {
    mm_extract_progress_fn fn;
    void *ctx;
    size_t n, done, next;   /* next: the file count of the next 10 % line */
    double t0, last;        /* start, time of the last line */
} progress;

static void progress_init(progress *p, const mm_extract_opts *o, size_t n)
{
    double t = mm_now_s();
    *p = (progress){.fn = o->on_progress, .ctx = o->progress_ctx, .n = n, .next = (n + 9) / 10, .t0 = t, .last = t};
}

/* One more file done. Nothing in the first 5 s (a quick extraction stays
 * silent, so a bad file still fails with one line); then a line for the
 * last file, else after 5 s or another 10 % of the files since the
 * previous line. */
static void progress_tick(progress *p)
{
    if (!p->fn) return;
    p->done++;
    double t = mm_now_s();
    if (t - p->t0 < 5.0) return;
    if (p->done < p->n && t - p->last < 5.0 && p->done < p->next) return;
    p->last = t;
    p->next = p->done + (p->n + 9) / 10;
    double rate = p->done / (t - p->t0 + 1e-9);
    char line[128];
    snprintf(line, sizeof line, "%zu/%zu files  %.1f files/s  ETA %.0f s", p->done, p->n, rate,
             (p->n - p->done) / (rate + 1e-9));
    p->fn(p->ctx, line);
}

/* Features of files idx[0..m) (idx NULL: 0..m) into X (m, D), dur (m) and
 * errs (m, a message or NULL), OpenMP over the files. On the whole dataset
 * without skip_bad the first failure ends the loop early. pg (may be NULL)
 * counts the files. */
static void compute_rows(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
                         const mm_extract_opts *o, size_t D, const size_t *idx, size_t m,
                         float *X, float *dur, char **errs, progress *pg)
{
    volatile int stop = 0;
    int nth = o->n_threads < 1 ? 1 : o->n_threads;
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (size_t j = 0; j < m; j++) {
        if (stop) continue;
        size_t i = idx ? idx[j] : j;
        mm_err e = {0};
        double secs = 0;
        mm_pipeline_audio pa = {.audio = o->audio, .level = o->level, .transform = o->transform, .transform_ctx = o->transform_ctx};
        int rc = mm_featsets_compute_pipeline(sets, n_sets, &pa, i, ds->paths[i], NULL, 0, NULL, X + j * D, &secs, &e);
        if (!rc) dur[j] = (float)secs;
        else if (!strstr(e.msg, ds->paths[i])) mm_err_prefix(&e, "%s", ds->paths[i]);
        if (rc) {
            errs[j] = strdup(e.msg[0] ? e.msg : "unknown error");
            if (!o->skip_bad && !idx) stop = 1;
        }
        if (pg && pg->fn) {
#pragma omp critical(mm_extract_progress)
            progress_tick(pg);
        }
    }
}

int mm_pipeline_audio_from_cfg(const mm_cfg *map, mm_pipeline_audio *pa, mm_err *err)
{
    memset(pa, 0, sizeof *pa);
    mm_audio_opts_default(&pa->audio);
    mm_level_params_default(&pa->level.p);
    const mm_cfg *nm = map && map->type == MM_CFG_MAP ? mm_cfg_child(map, "normalize") : NULL;
    int rc = 0;
    if (!nm) return mm_audio_opts_from_cfg(map, &pa->audio, err);
    /* the decode options without `normalize` */
    mm_cfg *rest = mm_cfg_new_map();
    if (!rest) return mm_err_set(err, MM_ENOMEM, "out of memory");
    for (size_t i = 0; i < map->n && !rc; i++)
        if (strcmp(map->items[i]->key, "normalize")) rc = mm_cfg_put(rest, map->items[i]->key, map->items[i], err);
    if (!rc) rc = mm_audio_opts_from_cfg(rest->n ? rest : NULL, &pa->audio, err);
    mm_cfg_free(rest);
    if (rc) return rc;
    char w[600];
    if (nm->type == MM_CFG_SCALAR) {   /* normalize: false | true (the defaults) */
        int on = 0;
        if ((rc = mm_cfg_get_bool(map, "normalize", 0, &on, err))) return rc;
        pa->level.on = on;
        return 0;
    }
    if (nm->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: audio.normalize: expected {method: lufs|rms, target: T, peak_limit: P}", mm_cfg_where(nm, w, sizeof w));
    static const char *const keys[] = {"method", "target", "peak_limit", "top_db", NULL};
    static const char *const methods[] = {"lufs", "rms", NULL};
    int method = 0;
    mm_level_params *p = &pa->level.p;
    if ((rc = mm_cfg_check_keys(nm, "audio.normalize", keys, err)) ||
        (rc = mm_cfg_get_choice(nm, "method", methods, 0, &method, err)))
        return rc;
    p->measure = method ? MM_LEVEL_RMS : MM_LEVEL_LUFS;
    if ((rc = mm_cfg_get_double(nm, "target", method ? -20.0 : -23.0, -70.0, 0.0, &p->target, err)) ||
        (rc = mm_cfg_get_double(nm, "peak_limit", -1.0, -20.0, 0.0, &p->peak_limit_dbfs, err)) ||
        (rc = mm_cfg_get_double(nm, "top_db", 40.0, 1.0, 120.0, &p->top_db, err)))
        return rc;
    if (!method && mm_cfg_child(nm, "top_db"))
        return mm_err_set(err, MM_EINVAL, "%s: audio.normalize.top_db is for method: rms (voiced RMS), not lufs", mm_cfg_where(mm_cfg_child(nm, "top_db"), w, sizeof w));
    pa->level.on = 1;
    return 0;
}

const char *mm_level_opts_describe(const mm_level_opts *l, char *buf, size_t size)
{
    if (!l || !l->on) { if (size) buf[0] = 0; return buf; }
    if (l->p.measure == MM_LEVEL_LUFS)
        snprintf(buf, size, "normalize: {method: lufs, target: %g, peak_limit: %g}", l->p.target, l->p.peak_limit_dbfs);
    else
        snprintf(buf, size, "normalize: {method: rms, target: %g, peak_limit: %g, top_db: %g}", l->p.target, l->p.peak_limit_dbfs, l->p.top_db);
    return buf;
}

/* Scale a so that max |x| = 1; 0 (a left as is) when it is all zeros. */
static int scale_to_unit_peak(mm_audio *a)
{
    float peak = mm_level_peak_abs(a->x, a->n);
    if (!(peak > 0)) return 0;
    for (size_t i = 0; i < a->n; i++) a->x[i] /= peak;
    return 1;
}

/* Scale a to a 0 dBFS peak, then trim it by o's rule (mm_trim_bounds), in place;
 * an all-silent clip is refused as mm_audio_load's trim would refuse it. */
static int trim_at_unit_peak(const mm_audio_opts *o, const char *name, mm_audio *a, mm_err *err)
{
    if (!scale_to_unit_peak(a)) return mm_err_set(err, MM_EFORMAT, "%s: silent after trim (all samples are zero)", name);
    size_t start = 0, end = a->n;
    mm_trim_bounds(a->x, a->n, o->trim_top_db, o->trim_frame, o->trim_hop, &start, &end);
    if (end <= start) return mm_err_set(err, MM_EFORMAT, "%s: silent after trim", name);
    memmove(a->x, a->x + start, (end - start) * sizeof *a->x);
    a->n = end - start;
    return 0;
}

/* The decoded clip a through the pipeline's transform and level normalisation, in place. */
static int clip_chain(const mm_pipeline_audio *pa, size_t clip, mm_audio *a, mm_err *err)
{
    int rc = 0;
    if (pa->transform) rc = pa->transform(pa->transform_ctx, clip, a->sr, &a->x, &a->n, err);
    if (!rc && pa->level.on) {
        /* first to a 0 dBFS peak (exact, any gain): the −70 LUFS absolute gate then
         * admits the same blocks whatever the clip's recorded level */
        float *y = NULL;
        scale_to_unit_peak(a);
        rc = mm_level_normalize(a->x, a->n, a->sr, &pa->level.p, &y, NULL, err);
        if (rc) mm_err_prefix(err, "audio.normalize");
        else { free(a->x); a->x = y; }
    }
    return rc;
}

int mm_featsets_compute_pipeline(const mm_featset_inst *sets, size_t n_sets, const mm_pipeline_audio *pa, size_t clip,
                                 const char *path, const void *data, size_t len, const char *name, float *x,
                                 double *seconds, mm_err *err)
{
    enum { MAX_RATES = 8 };
    mm_audio dec[MAX_RATES] = {{0}};   /* decoded clips, one per distinct rate */
    int rates[MAX_RATES], n_dec = 0, rc = 0;
    size_t off = 0;
    for (size_t s = 0; s < n_sets && !rc; s++) {
        int sr = sets[s].vt->sample_rate(sets[s].state), k = 0;
        while (k < n_dec && rates[k] != sr) k++;
        mm_audio tmp = {0}, *a = k < MAX_RATES ? &dec[k] : &tmp;
        if (k == n_dec || k == MAX_RATES) {
            mm_audio_opts ao = pa->audio;
            ao.target_sr = sr;
            /* With level normalisation, trim after scaling to a 0 dBFS peak: librosa's trim
             * floors frame RMS at 1e-5, so a quiet recording's silences would sit at the floor
             * and be kept; scaled first, the bounds do not depend on the recording level. */
            int late_trim = pa->level.on && ao.trim && ao.fixed_seconds <= 0;
            if (late_trim) ao.trim = 0;
            rc = path ? mm_audio_load(path, &ao, a, err) : mm_audio_load_memory(data, len, name, &ao, a, err);
            if (!rc && late_trim) rc = trim_at_unit_peak(&pa->audio, path ? path : name, a, err);
            if (!rc) rc = clip_chain(pa, clip, a, err);
            if (rc == MM_CLIP_SKIP) {   /* left out: every value NaN */
                size_t D = 0;
                for (size_t q = 0; q < n_sets; q++) D += sets[q].vt->dim(sets[q].state);
                for (size_t q = 0; q < D; q++) x[q] = NAN;
                if (seconds) *seconds = a->orig_seconds;
                mm_audio_free(&tmp);
                rc = 0;
                break;
            }
            if (!rc && k < MAX_RATES) rates[n_dec++] = sr;
        }
        if (!rc) {
            if (seconds) *seconds = a->orig_seconds;
            rc = sets[s].vt->compute(sets[s].state, a->x, a->n, x + off, err);
        }
        mm_audio_free(&tmp);
        off += sets[s].vt->dim(sets[s].state);
    }
    /* every slot: a clip decoded but then skipped or failed was never counted in n_dec */
    for (int k = 0; k < MAX_RATES; k++) mm_audio_free(&dec[k]);
    return rc;
}

int mm_featsets_compute(const mm_featset_inst *sets, size_t n_sets, const mm_audio_opts *audio, const char *path,
                        const void *data, size_t len, const char *name, float *x, double *seconds, mm_err *err)
{
    mm_pipeline_audio pa = {.audio = *audio};
    return mm_featsets_compute_pipeline(sets, n_sets, &pa, 0, path, data, len, name, x, seconds, err);
}

static size_t total_dim(const mm_featset_inst *sets, size_t n_sets)
{
    size_t D = 0;
    for (size_t s = 0; s < n_sets; s++) D += sets[s].vt->dim(sets[s].state);
    return D;
}

static int assemble(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
                    const mm_extract_opts *o, size_t D, const float *X, const float *dur, char **errs,
                    mm_table **out, mm_err *err);

int mm_extract(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
               const mm_extract_opts *o, mm_table **out, mm_err *err)
{
    size_t D = total_dim(sets, n_sets);
    if (D == 0) return mm_err_set(err, MM_EINVAL, "feature sets produce no features");
    size_t n = ds->n;
    float *X = malloc((n ? n : 1) * D * sizeof *X);
    float *dur = calloc(n ? n : 1, sizeof *dur);
    char **errs = calloc(n ? n : 1, sizeof *errs);
    if (!X || !dur || !errs) { free(X); free(dur); free(errs); return mm_err_set(err, MM_ENOMEM, "out of memory for %zu × %zu features", n, D); }
    progress pg;
    progress_init(&pg, o, n);
    compute_rows(ds, sets, n_sets, o, D, NULL, n, X, dur, errs, &pg);
    int rc = assemble(ds, sets, n_sets, o, D, X, dur, errs, out, err);
    for (size_t i = 0; i < n; i++) free(errs[i]);
    free(errs);
    free(X);
    free(dur);
    return rc;
}

/* The table from every file's row (X (n, D)), duration and error. */
static int assemble(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
                    const mm_extract_opts *o, size_t D, const float *X, const float *dur, char **errs,
                    mm_table **out, mm_err *err)
{
    size_t n = ds->n;
    int rc = 0;
    size_t n_bad = 0;
    for (size_t i = 0; i < n; i++) if (errs[i]) n_bad++;
    if (n_bad && !o->skip_bad) {
        for (size_t i = 0; i < n; i++)
            if (errs[i]) { rc = mm_err_set(err, MM_EDATA, "%s (use --skip-bad to leave bad files out)", errs[i]); break; }
    } else if (n_bad == n) {
        rc = mm_err_set(err, MM_EDATA, "every file failed; first: %s", errs[0]);
    }
    mm_table *t = NULL;
    if (!rc && !(t = calloc(1, sizeof *t))) rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    if (!rc) {
        size_t m = n - n_bad;
        t->n = m;
        t->d = D;
        t->X = malloc((m ? m : 1) * D * sizeof *t->X);
        t->labels = malloc((m ? m : 1) * sizeof *t->labels);
        t->groups = malloc((m ? m : 1) * sizeof *t->groups);
        t->paths = calloc(m + 1, sizeof *t->paths);
        t->durations = malloc((m ? m : 1) * sizeof *t->durations);
        t->feature_names = calloc(D, sizeof *t->feature_names);
        t->label_names = calloc((size_t)ds->n_classes + 1, sizeof *t->label_names);
        if (ds->artists) { t->artists = calloc(m + 1, sizeof *t->artists); t->titles = calloc(m + 1, sizeof *t->titles); }
        if (n_bad) { t->skipped_paths = calloc(n_bad, sizeof(char *)); t->skipped_reasons = calloc(n_bad, sizeof(char *)); }
        if (!t->X || !t->labels || !t->groups || !t->paths || !t->durations || !t->feature_names || !t->label_names ||
            (n_bad && (!t->skipped_paths || !t->skipped_reasons)) || (ds->artists && (!t->artists || !t->titles)))
            rc = mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    if (!rc) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (errs[i]) {
                t->skipped_paths[t->n_skipped] = strdup(ds->paths[i]);
                t->skipped_reasons[t->n_skipped++] = strdup(errs[i]);
                continue;
            }
            memcpy(t->X + k * D, X + i * D, D * sizeof *X);
            t->labels[k] = ds->labels[i];
            t->groups[k] = ds->groups[i];
            t->paths[k] = strdup(ds->paths[i]);
            t->durations[k] = dur[i];
            if (ds->artists) { t->artists[k] = strdup(ds->artists[i] ? ds->artists[i] : ""); t->titles[k] = strdup(ds->titles[i] ? ds->titles[i] : ""); }
            k++;
        }
        size_t j = 0;
        char setnames[512] = "";
        for (size_t s = 0; s < n_sets; s++) {
            size_t ds_ = sets[s].vt->dim(sets[s].state);
            for (size_t q = 0; q < ds_; q++) {
                const char *nm = sets[s].vt->feature_name(sets[s].state, q);
                char buf[256];
                if (n_sets > 1) snprintf(buf, sizeof buf, "%s/%s", sets[s].vt->name, nm);
                else snprintf(buf, sizeof buf, "%s", nm);
                t->feature_names[j++] = strdup(buf);
            }
            strncat(setnames, s ? "+" : "", sizeof setnames - strlen(setnames) - 1);
            strncat(setnames, sets[s].vt->name, sizeof setnames - strlen(setnames) - 1);
        }
        t->n_classes = ds->n_classes;
        for (int c = 0; c < ds->n_classes; c++) t->label_names[c] = strdup(ds->class_names[c]);
        if (ds->n_group_ids) {
            t->n_group_ids = ds->n_group_ids;
            t->group_ids = malloc(ds->n_group_ids * sizeof *t->group_ids);
            t->group_names = calloc(ds->n_group_ids, sizeof *t->group_names);
            for (size_t g = 0; g < ds->n_group_ids && t->group_ids && t->group_names; g++) {
                t->group_ids[g] = ds->group_ids[g];
                t->group_names[g] = strdup(ds->group_names[g]);
            }
        }
        if (ds->group_by) t->group_by = strdup(ds->group_by);
        t->feature_set = strdup(setnames);
        t->sample_rate = sets[0].vt->sample_rate(sets[0].state);
        char settings[4096] = "", buf[1024];
        snprintf(settings, sizeof settings, "audio: %s\n", mm_audio_opts_describe(&o->audio, buf, sizeof buf));
        if (o->level.on) {
            size_t l = strlen(settings);
            snprintf(settings + l, sizeof settings - l, "%s\n", mm_level_opts_describe(&o->level, buf, sizeof buf));
        }
        for (size_t s = 0; s < n_sets; s++) {
            if (!sets[s].vt->describe) continue;
            size_t l = strlen(settings);
            snprintf(settings + l, sizeof settings - l, "%s: %s\n", sets[s].vt->name, sets[s].vt->describe(sets[s].state, buf, sizeof buf));
        }
        t->settings = strdup(settings);
        if (o->config_yaml) t->config_yaml = strdup(o->config_yaml);
    }
    if (rc) { mm_table_free(t); return rc; }
    *out = t;
    return 0;
}

/* ---- distributed (MPI) ---- */

typedef struct dist_ctx {
    size_t n, D;
    float *X, *dur;
    char **errs;
    int skip_bad;
    progress pg;   /* rank 0's lines (fn NULL elsewhere) */
} dist_ctx;

/* A file's result on the wire: float duration, D floats, then the error
 * message (NUL-terminated, empty when none). */
static int on_row(void *vctx, size_t item, const void *data, size_t len, int rank)
{
    dist_ctx *c = vctx;
    size_t need = (c->D + 1) * sizeof(float);
    if (item >= c->n || len < need + 1) return 1;   /* malformed: stop */
    const unsigned char *p = data;
    memcpy(&c->dur[item], p, sizeof(float));
    memcpy(c->X + item * c->D, p + sizeof(float), c->D * sizeof(float));
    const char *msg = (const char *)p + need;
    int bad = ((const unsigned char *)data)[len - 1] == 0 && msg[0];
    if (bad && !c->errs[item]) c->errs[item] = strdup(msg);
    progress_tick(&c->pg);
    return bad && !c->skip_bad;
}

static const uint64_t *g_dist_sizes;

static int dist_by_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (g_dist_sizes[x] != g_dist_sizes[y]) return g_dist_sizes[x] > g_dist_sizes[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

int mm_extract_dist(const mm_dataset *ds, const mm_featset_inst *sets, size_t n_sets,
                    const mm_extract_opts *o, mm_table **out, mm_err *err)
{
    if (!mm_mpi_active()) return mm_extract(ds, sets, n_sets, o, out, err);
    int rank = mm_mpi_rank(), size = mm_mpi_size();
    size_t D = total_dim(sets, n_sets), n = ds->n;
    int rc = 0;
    if (D == 0) rc = mm_err_set(err, MM_EINVAL, "feature sets produce no features");
    else if ((size_t)size > n)
        rc = mm_err_set(err, MM_EINVAL, "%d MPI ranks for %zu files: use at most %zu ranks (mpirun -np)", size, n, n);
    dist_ctx c = {.n = n, .D = D, .skip_bad = o->skip_bad};
    progress_init(&c.pg, o, n);
    if (rank != 0) c.pg.fn = NULL;
    size_t *order = NULL;
    if (!rc && rank == 0) {   /* largest first, so no rank is left with a long file at the end */
        uint64_t *sizes = NULL;
        c.X = malloc((n ? n : 1) * D * sizeof *c.X);
        c.dur = calloc(n ? n : 1, sizeof *c.dur);
        c.errs = calloc(n ? n : 1, sizeof *c.errs);
        order = malloc((n ? n : 1) * sizeof *order);
        if (!c.X || !c.dur || !c.errs || !order) rc = mm_err_set(err, MM_ENOMEM, "out of memory for %zu × %zu features", n, D);
        if (!rc) rc = mm_shard_file_sizes(ds, &sizes, err);
        if (!rc) {
            for (size_t i = 0; i < n; i++) order[i] = i;
            g_dist_sizes = sizes;
            qsort(order, n, sizeof *order, dist_by_size);
        }
        free(sizes);
    }
    rc = mm_mpi_agree(rc, err);
    mm_sched *s = NULL;
    mm_sched_params sp = {.on_result = on_row, .ctx = &c};
    if (!rc) rc = mm_sched_create(order, n, &sp, &s, err);
    free(order);
    if (!rc) {
        /* chunks of one file per thread; results go back after each chunk */
        size_t chunk = (size_t)(o->n_threads < 1 ? 1 : o->n_threads);
        size_t *items = malloc(chunk * sizeof *items);
        float *X = malloc(chunk * D * sizeof *X), *dur = calloc(chunk, sizeof *dur);
        char **errs = calloc(chunk, sizeof *errs);
        size_t rec = (D + 1) * sizeof(float);
        unsigned char *msg = malloc(rec + sizeof err->msg);
        mm_err le = {0};
        int lrc = (!items || !X || !dur || !errs || !msg) ? mm_err_set(&le, MM_ENOMEM, "out of memory") : 0;
        if (lrc) mm_sched_fail(s, &le);
        size_t k;
        while ((k = mm_sched_next(s, items, lrc ? 1 : chunk)) > 0) {
            if (lrc) continue;
            memset(dur, 0, chunk * sizeof *dur);
            compute_rows(ds, sets, n_sets, o, D, items, k, X, dur, errs, NULL);
            for (size_t j = 0; j < k && !lrc; j++) {
                memcpy(msg, &dur[j], sizeof(float));
                memcpy(msg + sizeof(float), X + j * D, D * sizeof(float));
                size_t l = errs[j] ? strlen(errs[j]) : 0;
                if (l >= sizeof err->msg) l = sizeof err->msg - 1;
                if (l) memcpy(msg + rec, errs[j], l);
                msg[rec + l] = 0;
                lrc = mm_sched_put(s, items[j], msg, rec + l + 1, &le);
                free(errs[j]);
                errs[j] = NULL;
            }
            if (lrc) mm_sched_fail(s, &le);
        }
        free(items); free(X); free(dur); free(errs); free(msg);
        rc = mm_sched_finish(s, err);
    }
    if (!rc && rank == 0) rc = assemble(ds, sets, n_sets, o, D, c.X, c.dur, c.errs, out, err);
    if (c.errs) for (size_t i = 0; i < n; i++) free(c.errs[i]);
    free(c.errs);
    free(c.X);
    free(c.dur);
    rc = mm_mpi_agree(rc, err);
    if (!rc && rank != 0) *out = NULL;
    return rc;
}
