/* cfg.h — YAML configuration trees with file and line for every value.
 *
 * Configs are parsed with libyaml into a tree of maps, sequences and scalars.
 * Every node remembers its file and line so that errors read
 * "experiments/x.yaml:12: key 'max_depth': expected an integer >= 1, got 0".
 * A map may hold `include: FILE` or `include: [FILE, ...]`: the included
 * files (paths relative to the including file) are deep-merged first and the
 * map's own keys override them. `--set a.b.c=value` overrides are applied
 * with mm_cfg_set. Typed getters validate type and range; check_keys refuses
 * unknown keys. A loaded tree is read-only and safe to read from many threads.
 *
 * Limits for untrusted text (bundles carry YAML too): one parse, or one load with
 * everything it includes, builds at most MM_CFG_MAX_NODES values, an alias
 * counting as many as it expands to; one load includes at most
 * MM_CFG_MAX_INCLUDES files in all (and nests them at most 16 deep). Past a
 * limit the parse fails with one line naming the file.
 */
#ifndef MM_CFG_H
#define MM_CFG_H

#include <stddef.h>
#include "core/err.h"

#define MM_CFG_MAX_NODES 1000000
#define MM_CFG_MAX_INCLUDES 256

typedef enum { MM_CFG_NULL, MM_CFG_SCALAR, MM_CFG_MAP, MM_CFG_SEQ } mm_cfg_type;

typedef struct mm_cfg mm_cfg;
struct mm_cfg {
    mm_cfg_type type;
    char *key;          /* key in the parent map; NULL for sequence items and the root */
    char *value;        /* scalar text (MM_CFG_SCALAR), else NULL */
    char *file;         /* source file name (owned by the node) */
    int line;           /* 1-based line in file, 0 when set programmatically */
    mm_cfg **items;     /* (n) children: map entries in order, or sequence items */
    size_t n;
};

/* Load a YAML file (with includes). *out owned by caller: mm_cfg_free. */
int mm_cfg_load_file(const char *path, mm_cfg **out, mm_err *err);
/* Parse YAML text; `name` is used in messages as the file name. */
int mm_cfg_parse_string(const char *text, const char *name, mm_cfg **out, mm_err *err);
void mm_cfg_free(mm_cfg *c);
/* Deep copy. */
mm_cfg *mm_cfg_clone(const mm_cfg *c);

/* An empty map, for building configs in code (CLI flags). */
mm_cfg *mm_cfg_new_map(void);

/* Direct child of a map by key, or NULL. */
const mm_cfg *mm_cfg_child(const mm_cfg *map, const char *key);
/* Node at a dotted path ("models.rf.max_depth"); sequence items by number ("models.0"). */
const mm_cfg *mm_cfg_find(const mm_cfg *root, const char *path);

/* "file:line" of a node into buf (returns buf). */
const char *mm_cfg_where(const mm_cfg *node, char *buf, size_t size);

/* Typed getters on a map's key. A missing key (or null value) writes `def`.
 * A value of the wrong type or out of [min, max] is an error naming file,
 * line, key, the value and what was expected. */
int mm_cfg_get_int(const mm_cfg *map, const char *key, long def, long min, long max,
                   long *out, mm_err *err);
int mm_cfg_get_double(const mm_cfg *map, const char *key, double def, double min,
                      double max, double *out, mm_err *err);
int mm_cfg_get_bool(const mm_cfg *map, const char *key, int def, int *out, mm_err *err);
/* *out points into the tree (or is def); valid while the tree lives. */
int mm_cfg_get_str(const mm_cfg *map, const char *key, const char *def,
                   const char **out, mm_err *err);
/* One of a NULL-terminated list of choices; *out is its index (def if missing). */
int mm_cfg_get_choice(const mm_cfg *map, const char *key, const char *const *choices,
                      int def, int *out, mm_err *err);
/* Parse a scalar node as number / int with the same messages (for sequence items). */
int mm_cfg_scalar_double(const mm_cfg *node, const char *what, double *out, mm_err *err);
int mm_cfg_scalar_int(const mm_cfg *node, const char *what, long *out, mm_err *err);

/* Refuse keys of `map` not in the NULL-terminated `allowed` list; `what`
 * names the section in the message. A NULL map passes. */
int mm_cfg_check_keys(const mm_cfg *map, const char *what, const char *const *allowed,
                      mm_err *err);

/* Apply "a.b.c=value": creates missing maps; value is parsed as YAML (so
 * "[1, 2]" becomes a sequence, "3" a scalar). */
int mm_cfg_set(mm_cfg *root, const char *assignment, mm_err *err);
/* Replace or add map[key] with a copy of `value` (value may be NULL → scalar "null"). */
int mm_cfg_put(mm_cfg *map, const char *key, const mm_cfg *value, mm_err *err);
/* Append a copy of `item` to the sequence map[key], creating an empty
 * sequence there when the key is missing (a key holding something else is
 * an error). For building configs in code (e.g. an ensemble's estimators). */
int mm_cfg_append(mm_cfg *map, const char *key, const mm_cfg *item, mm_err *err);
/* Replace or add map[key] = scalar string. */
int mm_cfg_put_str(mm_cfg *map, const char *key, const char *value, mm_err *err);

/* Emit as YAML text (malloc'd, caller frees); NULL on failure. */
char *mm_cfg_to_yaml(const mm_cfg *c);

/* 64-bit FNV-1a hash of the YAML text of c (for caches). */
unsigned long long mm_cfg_hash(const mm_cfg *c);

#endif
