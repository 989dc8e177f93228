/* params.c — table-driven learner hyperparameters (see params.h): defaults,
 * parsing with file:line errors, range checks and the text that documents
 * each row. Reference: redis's config.c (standardConfig rows with bounds and
 * one-line errors). Left out: setting keys at run time, rewriting configs. */
#include "learn/params.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *field_at(void *obj, const mm_param_ref *r) { return (char *)obj + r->base + r->row->offset; }
static const void *cfield_at(const void *obj, const mm_param_ref *r)
{
    return (const char *)obj + r->base + r->row->offset;
}

static size_t flatten(const mm_param *rows, size_t base, mm_param_ref *out, size_t n, size_t max, int depth)
{
    for (const mm_param *r = rows; r->name || r->type == MM_PARAM_INCLUDE; r++) {
        if (r->type == MM_PARAM_INCLUDE) {
            if (depth < 4) n = flatten(r->sub, base + r->offset, out, n, max, depth + 1);
            continue;
        }
        int dup = 0;
        for (size_t i = 0; i < n && !dup; i++) dup = !strcmp(out[i].row->name, r->name);
        if (dup || n >= max) continue;
        out[n++] = (mm_param_ref){.row = r, .base = base};
    }
    return n;
}

/* Rows of the including table come first, so a learner's own row wins over
 * the same name in a table it includes; table order is kept otherwise. */
size_t mm_params_rows(const mm_param_table *t, mm_param_ref *out, size_t max)
{
    size_t n = 0;
    for (const mm_param *r = t->rows; r->name || r->type == MM_PARAM_INCLUDE; r++)
        if (r->type != MM_PARAM_INCLUDE && n < max) out[n++] = (mm_param_ref){.row = r, .base = 0};
    /* then each include, in place order after the own rows */
    for (const mm_param *r = t->rows; r->name || r->type == MM_PARAM_INCLUDE; r++)
        if (r->type == MM_PARAM_INCLUDE) n = flatten(r->sub, r->offset, out, n, max, 1);
    return n;
}

static int is_int(mm_param_type t) { return t == MM_PARAM_INT || t == MM_PARAM_LONG || t == MM_PARAM_SIZE; }

static void store_num(void *f, mm_param_type t, double v)
{
    switch (t) {
    case MM_PARAM_INT: case MM_PARAM_BOOL: case MM_PARAM_CHOICE: *(int *)f = (int)v; break;
    case MM_PARAM_LONG: *(long *)f = (long)v; break;
    case MM_PARAM_SIZE: *(size_t *)f = (size_t)v; break;
    case MM_PARAM_DOUBLE: *(double *)f = v; break;
    default: break;
    }
}

static double load_num(const void *f, mm_param_type t)
{
    switch (t) {
    case MM_PARAM_INT: case MM_PARAM_BOOL: case MM_PARAM_CHOICE: return *(const int *)f;
    case MM_PARAM_LONG: return (double)*(const long *)f;
    case MM_PARAM_SIZE: return (double)*(const size_t *)f;
    case MM_PARAM_DOUBLE: return *(const double *)f;
    default: return 0;
    }
}

static int choice_value(const mm_param *r, int i) { return r->values ? r->values[i] : i; }

void mm_params_defaults(const mm_param_table *t, void *obj)
{
    mm_param_ref refs[MM_PARAM_MAX_ROWS];
    size_t n = mm_params_rows(t, refs, MM_PARAM_MAX_ROWS);
    for (size_t i = 0; i < n; i++) {
        const mm_param *r = refs[i].row;
        void *f = field_at(obj, &refs[i]);
        if (r->type == MM_PARAM_CUSTOM) r->parse(r, NULL, f, NULL);
        else if (r->type == MM_PARAM_CHOICE) store_num(f, r->type, choice_value(r, (int)r->def));
        else store_num(f, r->type, r->def);
    }
}

/* "an integer in [1, 30]", "a number in (0, 1]", "one of a, b" ... */
static void range_phrase(const mm_param *r, char *buf, size_t size)
{
    if (r->range_text) { snprintf(buf, size, "%s", r->range_text); return; }
    int nomax = r->max >= MM_PARAM_NOMAX, nomin = r->min <= -MM_PARAM_NOMAX;
    buf[0] = 0;
    switch (r->type) {
    case MM_PARAM_INT: case MM_PARAM_LONG: case MM_PARAM_SIZE:
        if (nomax) snprintf(buf, size, "an integer >= %.0f", r->min);
        else snprintf(buf, size, "an integer in [%.0f, %.0f]", r->min, r->max);
        break;
    case MM_PARAM_DOUBLE:
        if (nomin && nomax) snprintf(buf, size, "a finite number");
        else if (nomax) snprintf(buf, size, "a number in %c%g, inf]", r->min_open ? '(' : '[', r->min);
        else snprintf(buf, size, "a number in %c%g, %g]", r->min_open ? '(' : '[', r->min, r->max);
        break;
    case MM_PARAM_BOOL: snprintf(buf, size, "true or false"); break;
    case MM_PARAM_CHOICE:
        snprintf(buf, size, "one of ");
        for (int i = 0; r->choices[i]; i++) {
            size_t l = strlen(buf);
            snprintf(buf + l, size - l, "%s%s", i ? ", " : "", r->choices[i]);
        }
        break;
    default: break;
    }
}

void mm_param_text(const mm_param *r, char *type, size_t ntype, char *range, size_t nrange, char *def, size_t ndef)
{
    static const char *const names[] = {"int", "int", "int", "number", "bool", "string", "value", ""};
    snprintf(type, ntype, "%s", r->type_text ? r->type_text : names[r->type]);
    range_phrase(r, range, nrange);
    if (r->def_text) snprintf(def, ndef, "%s", r->def_text);
    else if (r->type == MM_PARAM_BOOL) snprintf(def, ndef, "%s", r->def ? "true" : "false");
    else if (r->type == MM_PARAM_CHOICE) snprintf(def, ndef, "%s", r->choices[(int)r->def]);
    else snprintf(def, ndef, "%g", r->def);
}

static int parse_row(const mm_param_ref *ref, const mm_cfg *map, void *obj, mm_err *err)
{
    const mm_param *r = ref->row;
    void *f = field_at(obj, ref);
    const mm_cfg *c = mm_cfg_child(map, r->name);
    if (r->type == MM_PARAM_CUSTOM) return r->parse(r, map, f, err);
    if (c->type == MM_CFG_NULL) return 0;   /* null: the default (or the value before) */
    char w[600], range[512];
    int rc;
    if (r->type == MM_PARAM_BOOL) {
        int b;
        if ((rc = mm_cfg_get_bool(map, r->name, 0, &b, err))) return rc;
        *(int *)f = b;
        return 0;
    }
    if (r->type == MM_PARAM_CHOICE) {
        int i;
        if ((rc = mm_cfg_get_choice(map, r->name, r->choices, 0, &i, err))) return rc;
        *(int *)f = choice_value(r, i);
        return 0;
    }
    range_phrase(r, range, sizeof range);
    if (is_int(r->type)) {
        long v;
        if ((rc = mm_cfg_scalar_int(c, r->name, &v, err))) return rc;
        if ((double)v < r->min || (r->max < MM_PARAM_NOMAX && (double)v > r->max))
            return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected %s, got %ld", mm_cfg_where(c, w, sizeof w),
                              r->name, range, v);
        if (r->type == MM_PARAM_INT && v > INT_MAX) v = INT_MAX;   /* "unlimited" in an int */
        store_num(f, r->type, (double)v);
        return 0;
    }
    double v;
    if ((rc = mm_cfg_scalar_double(c, r->name, &v, err))) return rc;
    if (v < r->min || (r->min_open && v == r->min) || (r->max < MM_PARAM_NOMAX && v > r->max))
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected %s, got %g", mm_cfg_where(c, w, sizeof w), r->name,
                          range, v);
    *(double *)f = v;
    return 0;
}

size_t mm_params_keys(const mm_param_table *t, const char **keys, size_t max)
{
    mm_param_ref refs[MM_PARAM_MAX_ROWS];
    size_t n = mm_params_rows(t, refs, MM_PARAM_MAX_ROWS);
    if (n + 1 > max) n = max - 1;
    for (size_t i = 0; i < n; i++) keys[i] = refs[i].row->name;
    keys[n] = NULL;
    return n;
}

int mm_params_parse(const mm_param_table *t, const mm_cfg *map, void *obj, mm_err *err)
{
    const char *keys[MM_PARAM_MAX_ROWS + 1];
    mm_params_keys(t, keys, MM_PARAM_MAX_ROWS + 1);
    int rc = mm_cfg_check_keys(map, t->what, keys, err);
    if (rc || !map || map->type != MM_CFG_MAP) return rc;
    mm_param_ref refs[MM_PARAM_MAX_ROWS];
    size_t n = mm_params_rows(t, refs, MM_PARAM_MAX_ROWS);
    for (size_t i = 0; i < n; i++)
        if (mm_cfg_child(map, refs[i].row->name) && (rc = parse_row(&refs[i], map, obj, err))) return rc;
    return 0;
}

int mm_params_check(const mm_param_table *t, const void *obj, mm_err *err)
{
    mm_param_ref refs[MM_PARAM_MAX_ROWS];
    size_t n = mm_params_rows(t, refs, MM_PARAM_MAX_ROWS);
    for (size_t i = 0; i < n; i++) {
        const mm_param *r = refs[i].row;
        if (r->type == MM_PARAM_CUSTOM || r->type == MM_PARAM_BOOL) continue;
        double v = load_num(cfield_at(obj, &refs[i]), r->type);
        if (r->type == MM_PARAM_CHOICE) {
            int ok = 0;
            for (int k = 0; r->choices[k] && !ok; k++) ok = choice_value(r, k) == (int)v;
            if (!ok) return mm_err_set(err, MM_EINVAL, "%s: unknown %s %d", t->learner, r->name, (int)v);
            continue;
        }
        int nomax = r->max >= MM_PARAM_NOMAX;
        if (isfinite(v) && v >= r->min && !(r->min_open && v == r->min) && (nomax || v <= r->max)) continue;
        if (r->def_text && v == r->def) continue;   /* a default outside the range ("-1: unlimited") */
        char range[160], also[96] = "";
        if (!nomax) snprintf(range, sizeof range, "in %c%g, %g]", r->min_open ? '(' : '[', r->min, r->max);
        else if (r->min <= -MM_PARAM_NOMAX) snprintf(range, sizeof range, "finite");
        else snprintf(range, sizeof range, "%s %g", r->min_open ? ">" : ">=", r->min);
        if (r->def_text && !(r->def >= r->min && (nomax || r->def <= r->max))) snprintf(also, sizeof also, " or %s", r->def_text);
        return mm_err_set(err, MM_EINVAL, "%s: %s must be %s%s, got %g", t->learner, r->name, range, also, v);
    }
    return 0;
}

int mm_param_parse_class_weight(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    int *f = field;
    const mm_cfg *cw = map ? mm_cfg_child(map, row->name) : NULL;
    if (!map) { *f = 0; return 0; }
    if (!cw || cw->type == MM_CFG_NULL) return 0;
    if (cw->type == MM_CFG_SCALAR && !strcmp(cw->value, "balanced")) { *f = 1; return 0; }
    if (cw->type == MM_CFG_SCALAR && (!strcmp(cw->value, "none") || !strcmp(cw->value, "None"))) { *f = 0; return 0; }
    char w[600];
    return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected 'balanced' or none, got '%s'", mm_cfg_where(cw, w, sizeof w),
                      row->name, cw->type == MM_CFG_SCALAR ? cw->value : "(a map or list)");
}
