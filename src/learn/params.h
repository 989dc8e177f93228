/* params.h — learner hyperparameters as tables, in the manner of redis's
 * config table: one row per key with its name, type, range, default and one
 * line of help. A learner's table drives its defaults (mm_params_defaults),
 * the parsing and range checks of a config map (mm_params_parse), the checks
 * of a struct filled in code (mm_params_check), and the documentation:
 * `melodic models --params` and the README's parameter list are printed
 * from mm_params_rows and mm_param_text (this module prints nothing).
 *
 * Rows address fields of the learner's own struct by offset. A row may
 * include another table at an offset (MM_PARAM_INCLUDE): its rows join the
 * table except those whose name the including table already has (a learner
 * renames or re-defaults shared training keys that way). Tables are
 * constant: parsing is thread-safe.
 */
#ifndef MM_LEARN_PARAMS_H
#define MM_LEARN_PARAMS_H

#include <stddef.h>
#include "core/err.h"
#include "io/cfg.h"

typedef enum {
    MM_PARAM_INT,       /* int field; a config value above INT_MAX is stored as INT_MAX */
    MM_PARAM_LONG,      /* long field */
    MM_PARAM_SIZE,      /* size_t field */
    MM_PARAM_DOUBLE,    /* double field, finite */
    MM_PARAM_BOOL,      /* int field, 0 or 1 (true/false, yes/no, on/off, 1/0) */
    MM_PARAM_CHOICE,    /* int field: the index of the value in choices (or values[index]) */
    MM_PARAM_CUSTOM,    /* parsed by parse(); the rest of the row only documents it */
    MM_PARAM_INCLUDE,   /* rows of `sub` at `offset` (see above) */
} mm_param_type;

typedef struct mm_param mm_param;

/* Custom parsing of row->name in map into field (the row's offset in the
 * struct). map is NULL, or lacks the key, only when defaults are written:
 * then write the default. The key's value may be null (its meaning is the
 * parser's). Errors name file:line (mm_cfg_where), key and value. */
typedef int (*mm_param_parse_fn)(const mm_param *row, const mm_cfg *map, void *field, mm_err *err);

struct mm_param {
    const char *name;            /* config key; NULL ends a table */
    mm_param_type type;
    size_t offset;               /* of the field in the learner's struct */
    double min, max;             /* numbers: range; max >= MM_PARAM_NOMAX means none */
    int min_open;                /* 1: min itself is excluded (> min) */
    double def;                  /* default: number, 0/1, or choice index */
    const char *const *choices;  /* MM_PARAM_CHOICE: NULL-terminated names */
    const int *values;           /* MM_PARAM_CHOICE: stored value per choice (NULL: the index) */
    const char *def_text;        /* default as shown (NULL: from def); a default outside
                                    the range is accepted by mm_params_check, and def_text
                                    names its meaning, e.g. "-1 (unlimited)" */
    const char *range_text;      /* range as shown and in errors, e.g. "a finite number > 0"
                                    (NULL: from type, min and max) */
    const char *type_text;       /* type as shown (NULL: from type) */
    mm_param_parse_fn parse;     /* MM_PARAM_CUSTOM */
    const mm_param *sub;         /* MM_PARAM_INCLUDE */
    const char *help;            /* one line */
};

#define MM_PARAM_NOMAX 1e30

/* A learner's table with the name its messages use ("gbdt parameters"). */
typedef struct mm_param_table {
    const char *learner;         /* "gbdt": prefixes mm_params_check messages */
    const char *what;            /* section name in unknown-key messages */
    const mm_param *rows;
} mm_param_table;

/* Write every row's default into obj. */
void mm_params_defaults(const mm_param_table *t, void *obj);

/* Parse a params map (NULL: defaults only) into obj, which holds the
 * defaults or earlier values: unknown keys are refused (the message lists
 * the known ones), each present key is parsed and range-checked, in table
 * order. Errors read "FILE:LINE: key 'K': expected RANGE, got VALUE". obj
 * is partly written on error: parse into a copy. */
int mm_params_parse(const mm_param_table *t, const mm_cfg *map, void *obj, mm_err *err);

/* Range-check a struct filled in code (numbers, booleans and choices; custom
 * rows are the learner's): "gbdt: max_depth must be in [1, 30], got 0". */
int mm_params_check(const mm_param_table *t, const void *obj, mm_err *err);

/* A row with the offset of its table in the learner's struct. */
typedef struct mm_param_ref {
    const mm_param *row;
    size_t base;                 /* field at base + row->offset */
} mm_param_ref;

#define MM_PARAM_MAX_ROWS 64

/* The rows of t with includes resolved (in order; a sub-table's row whose
 * name t already has is left out), at most max; returns the count. */
size_t mm_params_rows(const mm_param_table *t, mm_param_ref *out, size_t max);

/* A row as documented: its type ("int", "number", "bool", "string", ...),
 * range ("an integer in [1, 30]", "one of gini, entropy") and default
 * ("100", "true", "sqrt"), each into a caller's buffer. */
void mm_param_text(const mm_param *row, char *type, size_t ntype, char *range, size_t nrange, char *def,
                   size_t ndef);

/* Shared custom parser: class_weight 'balanced' (1) or none / None / null
 * (0) into an int field. */
int mm_param_parse_class_weight(const mm_param *row, const mm_cfg *map, void *field, mm_err *err);

#endif
