/* cfg.c — YAML config trees over libyaml's document API. See cfg.h.
 * Anchors and aliases are resolved by libyaml (an alias is a reference to a node
 * of the document); they are expanded into copies here, each copy counted against
 * the node budget, so a few hundred bytes of nested aliases cannot ask for
 * gigabytes. Tags are ignored. Scalars keep their text; typing happens in the
 * getters so errors can quote the text. Keys of a map are indexed by a hash table
 * while a map is built or merged, so neither is quadratic in its number of keys. */
#include "io/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_INCLUDE_DEPTH 16

/* Work one load may ask for: nodes built (parsed or expanded from aliases, over all
 * the files it includes) and files included. */
typedef struct budget {
    size_t nodes;
    size_t includes;
} budget;

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static mm_cfg *node_new(mm_cfg_type t, const char *file, int line)
{
    mm_cfg *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->type = t;
    c->file = xstrdup(file ? file : "<config>");
    c->line = line;
    return c;
}

void mm_cfg_free(mm_cfg *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) mm_cfg_free(c->items[i]);
    free(c->items);
    free(c->key);
    free(c->value);
    free(c->file);
    free(c);
}

static int push(mm_cfg *parent, mm_cfg *child)
{
    mm_cfg **p = realloc(parent->items, (parent->n + 1) * sizeof *p);
    if (!p) return -1;
    parent->items = p;
    parent->items[parent->n++] = child;
    return 0;
}

mm_cfg *mm_cfg_clone(const mm_cfg *c)
{
    if (!c) return NULL;
    mm_cfg *d = node_new(c->type, c->file, c->line);
    if (!d) return NULL;
    d->key = xstrdup(c->key);
    d->value = xstrdup(c->value);
    for (size_t i = 0; i < c->n; i++) {
        mm_cfg *ch = mm_cfg_clone(c->items[i]);
        if (!ch || push(d, ch)) { mm_cfg_free(ch); mm_cfg_free(d); return NULL; }
    }
    return d;
}

mm_cfg *mm_cfg_new_map(void) { return node_new(MM_CFG_MAP, "<command line>", 0); }

const char *mm_cfg_where(const mm_cfg *node, char *buf, size_t size)
{
    if (!node) snprintf(buf, size, "<config>");
    else if (node->line > 0) snprintf(buf, size, "%s:%d", node->file, node->line);
    else snprintf(buf, size, "%s", node->file);
    return buf;
}

/* ---- key index: open addressing over the positions of a map's items ---- */

typedef struct keyidx {
    size_t *slot;       /* (mask + 1) item position + 1; 0 = empty */
    size_t mask;
} keyidx;

static size_t key_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ULL; }
    return h;
}

/* An empty index for up to n keys (table at least twice as large). */
static int keyidx_init(keyidx *ix, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
    return ix->slot ? 0 : -1;
}

/* Position in map->items of `key`, or (size_t)-1; *slot_out gets the slot where the
 * key is or would go. */
static size_t keyidx_find(const keyidx *ix, const mm_cfg *map, const char *key, size_t *slot_out)
{
    size_t s = key_hash(key) & ix->mask;
    for (; ix->slot[s]; s = (s + 1) & ix->mask)
        if (!strcmp(map->items[ix->slot[s] - 1]->key, key)) break;
    if (slot_out) *slot_out = s;
    return ix->slot[s] ? ix->slot[s] - 1 : (size_t)-1;
}

/* Index every keyed item of map (keys assumed distinct). */
static void keyidx_add_all(keyidx *ix, const mm_cfg *map)
{
    for (size_t i = 0; i < map->n; i++) {
        size_t s;
        if (map->items[i]->key && keyidx_find(ix, map, map->items[i]->key, &s) == (size_t)-1)
            ix->slot[s] = i + 1;
    }
}

/* ---- composing a tree from libyaml's events ----
 *
 * libyaml's own loader (yaml_parser_load) looks anchors up by a linear scan, so a
 * document of n anchors costs n² comparisons; events are composed here instead, with
 * anchors in a hash table. A node counts against the budget when it is built, an
 * alias with every node of the subtree it copies (before copying). */

static int over_budget(budget *b, size_t add, const char *file, int line, mm_err *err)
{
    if (add <= MM_CFG_MAX_NODES - b->nodes) {
        b->nodes += add;
        return 0;
    }
    return mm_err_set(err, MM_EFORMAT,
                      "%s:%d: more than %d values (aliases expanding to too much?); a config "
                      "may hold at most that many in all", file, line, MM_CFG_MAX_NODES);
}

typedef struct anchor {
    char *name;         /* NULL = empty slot */
    const mm_cfg *node; /* in the tree being built */
    size_t count;       /* nodes in its subtree */
    int height;         /* levels below it */
} anchor;

typedef struct composer {
    yaml_parser_t parser;
    const char *file;
    budget *b;
    anchor *anc;        /* (mask + 1) open addressing on the name */
    size_t mask, n_anc;
    mm_cfg *keys;       /* key nodes an anchor may point to, kept until the end */
} composer;

static anchor *anchor_slot(const composer *k, const char *name)
{
    size_t s = key_hash(name) & k->mask;
    while (k->anc[s].name && strcmp(k->anc[s].name, name)) s = (s + 1) & k->mask;
    return &k->anc[s];
}

static int anchor_add(composer *k, const char *name, const mm_cfg *node, size_t count,
                      int height, int line, mm_err *err)
{
    if (2 * (k->n_anc + 1) > k->mask + 1) {     /* grow and rehash */
        composer g = *k;
        g.mask = k->mask ? 2 * k->mask + 1 : 63;
        if (!(g.anc = calloc(g.mask + 1, sizeof *g.anc)))
            return mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", k->file);
        for (size_t i = 0; k->anc && i <= k->mask; i++)
            if (k->anc[i].name) *anchor_slot(&g, k->anc[i].name) = k->anc[i];
        free(k->anc);
        k->anc = g.anc;
        k->mask = g.mask;
    }
    anchor *a = anchor_slot(k, name);
    if (a->name)
        return mm_err_set(err, MM_EFORMAT, "%s:%d: YAML: anchor '&%s' defined twice", k->file,
                          line, name);
    if (!(a->name = strdup(name))) return mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", k->file);
    a->node = node;
    a->count = count;
    a->height = height;
    k->n_anc++;
    return 0;
}

static int next_event(composer *k, yaml_event_t *ev, mm_err *err)
{
    if (yaml_parser_parse(&k->parser, ev)) return 0;
    return mm_err_set(err, MM_EFORMAT, "%s:%d: YAML syntax error: %s%s%s", k->file,
                      (int)k->parser.problem_mark.line + 1,
                      k->parser.problem ? k->parser.problem : "unknown",
                      k->parser.context ? " " : "", k->parser.context ? k->parser.context : "");
}

static mm_cfg *compose(composer *k, yaml_event_t *ev, int depth, size_t *count, int *height,
                       mm_err *err);

/* A map key: a scalar's text, or an alias of a scalar. NULL (err set) otherwise. */
static char *compose_key(composer *k, yaml_event_t *ev, int depth, mm_err *err)
{
    int line = (int)ev->start_mark.line + 1;
    if (ev->type == YAML_SCALAR_EVENT && !ev->data.scalar.anchor) {
        char *key = strdup((const char *)ev->data.scalar.value);
        yaml_event_delete(ev);
        if (!key) mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", k->file);
        return key;
    }
    size_t cnt;
    int h;
    mm_cfg *kn = compose(k, ev, depth, &cnt, &h, err);
    if (!kn) return NULL;
    char *key = NULL;
    if (kn->type != MM_CFG_SCALAR)
        mm_err_set(err, MM_EFORMAT, "%s:%d: map keys must be plain strings", k->file, line);
    else if (!(key = strdup(kn->value)))
        mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", k->file);
    if ((!k->keys && !(k->keys = node_new(MM_CFG_SEQ, k->file, 0))) || push(k->keys, kn)) {
        mm_cfg_free(kn);     /* only when out of memory: no anchor may outlive it */
        free(key);
        mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", k->file);
        return NULL;
    }
    return key;
}

/* Children of a sequence or map up to its end event; keyed (with duplicates refused)
 * for a map. Adds to *count and raises *height. */
static int compose_children(composer *k, mm_cfg *c, int depth, size_t *count, int *height,
                            mm_err *err)
{
    int is_map = c->type == MM_CFG_MAP;
    yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    size_t cap = 0;
    keyidx ix = {0};
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(k, &ev, err))) break;
        if (ev.type == end) { yaml_event_delete(&ev); break; }
        char *key = NULL;
        int key_line = (int)ev.start_mark.line + 1;
        if (is_map) {
            if (ev.type != YAML_SCALAR_EVENT && ev.type != YAML_ALIAS_EVENT) {
                yaml_event_delete(&ev);
                rc = mm_err_set(err, MM_EFORMAT, "%s:%d: map keys must be plain strings", k->file,
                                key_line);
                break;
            }
            if (!(key = compose_key(k, &ev, depth + 1, err))) { rc = err ? err->code : MM_EFORMAT; break; }
            if ((rc = next_event(k, &ev, err))) { free(key); break; }
        }
        size_t cnt;
        int h;
        mm_cfg *ch = compose(k, &ev, depth + 1, &cnt, &h, err);
        if (!ch) { free(key); rc = err ? err->code : MM_EFORMAT; break; }
        ch->key = key;
        if (c->n == cap) {
            cap = cap ? 2 * cap : 8;
            mm_cfg **ni = realloc(c->items, cap * sizeof *ni);
            if (!ni) { mm_cfg_free(ch); rc = mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", k->file); break; }
            c->items = ni;
        }
        c->items[c->n++] = ch;
        *count += cnt;
        if (h + 1 > *height) *height = h + 1;
        if (!is_map) continue;
        if (2 * c->n > ix.mask) {               /* (re)build the key index at twice the size */
            free(ix.slot);
            if (keyidx_init(&ix, 2 * c->n)) { rc = mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", k->file); break; }
            keyidx_add_all(&ix, c);             /* a duplicate new key stays unindexed */
        }
        size_t slot, at = keyidx_find(&ix, c, key, &slot);
        if (at != c->n - 1 && at != (size_t)-1) {
            rc = mm_err_set(err, MM_EFORMAT, "%s:%d: duplicate key '%s'", k->file, key_line, key);
            break;
        }
        if (at == (size_t)-1) ix.slot[slot] = c->n;
    }
    free(ix.slot);
    if (!rc && c->n < cap) {                     /* exact size, as other code grows it by one */
        mm_cfg **ni = realloc(c->items, c->n * sizeof *ni);
        if (ni || !c->n) c->items = ni;
    }
    return rc;
}

/* The node that starts with *ev (deleted here) and everything up to its end.
 * *count = nodes built, *height = levels below it. NULL with err set on failure. */
static mm_cfg *compose(composer *k, yaml_event_t *ev, int depth, size_t *count, int *height,
                       mm_err *err)
{
    const char *file = k->file;
    int line = (int)ev->start_mark.line + 1;
    mm_cfg *c = NULL;
    const char *anchor_name = NULL;
    *count = 1;
    *height = 0;
    if (depth > 64) {
        mm_err_set(err, MM_EFORMAT, "%s:%d: nesting deeper than 64 levels", file, line);
        goto done;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        const anchor *a = k->anc ? anchor_slot(k, name) : NULL;
        if (!a || !a->name) {
            mm_err_set(err, MM_EFORMAT, "%s:%d: YAML: alias '*%s' of an undefined anchor", file,
                       line, name);
            goto done;
        }
        if (depth + a->height > 64) {
            mm_err_set(err, MM_EFORMAT, "%s:%d: nesting deeper than 64 levels", file, line);
            goto done;
        }
        if (over_budget(k->b, a->count, file, line, err)) goto done;
        if (!(c = mm_cfg_clone(a->node))) break;
        free(c->key);
        c->key = NULL;
        *count = a->count;
        *height = a->height;
        goto done;
    }
    case YAML_SCALAR_EVENT: {
        if (over_budget(k->b, 1, file, line, err)) goto done;
        const char *v = (const char *)ev->data.scalar.value;
        int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        anchor_name = (const char *)ev->data.scalar.anchor;
        if (plain && (!strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
                      !strcmp(v, "NULL") || v[0] == 0)) {
            c = node_new(MM_CFG_NULL, file, line);
        } else if ((c = node_new(MM_CFG_SCALAR, file, line)) && !(c->value = strdup(v))) {
            mm_cfg_free(c);
            c = NULL;
        }
        break;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (over_budget(k->b, 1, file, line, err)) goto done;
        int map = ev->type == YAML_MAPPING_START_EVENT;
        anchor_name = (const char *)(map ? ev->data.mapping_start.anchor
                                         : ev->data.sequence_start.anchor);
        if (!(c = node_new(map ? MM_CFG_MAP : MM_CFG_SEQ, file, line))) break;
        if (compose_children(k, c, depth, count, height, err)) {
            mm_cfg_free(c);
            c = NULL;
            goto done;
        }
        break;
    }
    default:
        mm_err_set(err, MM_EFORMAT, "%s:%d: YAML: unexpected event", file, line);
        goto done;
    }
    if (!c) {
        mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", file);
        goto done;
    }
    if (anchor_name && anchor_add(k, anchor_name, c, *count, *height, line, err)) {
        mm_cfg_free(c);
        c = NULL;
    }
done:
    yaml_event_delete(ev);
    return c;
}

/* The first document of text as a tree (an empty document is an empty map). */
static int parse_yaml(const unsigned char *text, size_t len, const char *name, budget *b,
                      mm_cfg **out, mm_err *err)
{
    composer k = {.file = name, .b = b};
    if (!yaml_parser_initialize(&k.parser))
        return mm_err_set(err, MM_ENOMEM, "%s: cannot initialise YAML parser", name);
    yaml_parser_set_input_string(&k.parser, text, len);
    yaml_event_t ev;
    mm_cfg *c = NULL;
    int rc = next_event(&k, &ev, err);                       /* stream start */
    if (!rc) {
        yaml_event_delete(&ev);
        rc = next_event(&k, &ev, err);                       /* document start or stream end */
    }
    if (!rc && ev.type != YAML_DOCUMENT_START_EVENT) {
        yaml_event_delete(&ev);
        c = node_new(MM_CFG_MAP, name, 1);
    } else if (!rc) {
        yaml_event_delete(&ev);
        size_t cnt;
        int h;
        if (!(rc = next_event(&k, &ev, err))) {
            c = compose(&k, &ev, 0, &cnt, &h, err);
            if (!c) rc = err ? err->code : MM_EFORMAT;
        }
        if (!rc && !(rc = next_event(&k, &ev, err))) yaml_event_delete(&ev);   /* document end */
        if (rc) { mm_cfg_free(c); c = NULL; }
    }
    for (size_t i = 0; k.anc && i <= k.mask; i++) free(k.anc[i].name);
    free(k.anc);
    mm_cfg_free(k.keys);
    yaml_parser_delete(&k.parser);
    if (rc) return rc;
    if (!c) return mm_err_set(err, MM_ENOMEM, "out of memory parsing %s", name);
    *out = c;
    return 0;
}

int mm_cfg_parse_string(const char *text, const char *name, mm_cfg **out, mm_err *err)
{
    budget b = {0};
    return parse_yaml((const unsigned char *)text, strlen(text), name ? name : "<string>", &b,
                      out, err);
}

/* ---- includes and merging ---- */

static mm_cfg *map_child_mut(mm_cfg *map, const char *key)
{
    if (!map || map->type != MM_CFG_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->items[i]->key && !strcmp(map->items[i]->key, key)) return map->items[i];
    return NULL;
}

static void remove_child(mm_cfg *map, const char *key)
{
    for (size_t i = 0; i < map->n; i++) {
        if (map->items[i]->key && !strcmp(map->items[i]->key, key)) {
            mm_cfg_free(map->items[i]);
            memmove(map->items + i, map->items + i + 1, (map->n - i - 1) * sizeof *map->items);
            map->n--;
            return;
        }
    }
}

/* Merge src into dst (both maps): maps merge recursively, anything else replaces.
 * dst's keys are indexed first, so the merge is linear in the two maps' sizes. */
static int merge_into(mm_cfg *dst, const mm_cfg *src)
{
    keyidx ix;
    if (keyidx_init(&ix, dst->n + src->n)) return -1;
    keyidx_add_all(&ix, dst);
    int rc = 0;
    for (size_t i = 0; i < src->n && !rc; i++) {
        const mm_cfg *s = src->items[i];
        size_t slot, at = keyidx_find(&ix, dst, s->key, &slot);
        mm_cfg *d = at == (size_t)-1 ? NULL : dst->items[at];
        if (d && d->type == MM_CFG_MAP && s->type == MM_CFG_MAP) {
            rc = merge_into(d, s);
            continue;
        }
        mm_cfg *cp = mm_cfg_clone(s);
        if (!cp) rc = -1;
        else if (d) {
            mm_cfg_free(d);
            dst->items[at] = cp;
        } else if (push(dst, cp)) {
            mm_cfg_free(cp);
            rc = -1;
        } else ix.slot[slot] = dst->n;
    }
    free(ix.slot);
    return rc;
}

static int load_file_depth(const char *path, int depth, budget *b, mm_cfg **out, mm_err *err);

static int resolve_path(const char *base_file, const char *rel, char *buf, size_t size)
{
    if (rel[0] == '/') return snprintf(buf, size, "%s", rel) >= (int)size ? -1 : 0;
    const char *slash = strrchr(base_file, '/');
    int n;
    if (slash) n = snprintf(buf, size, "%.*s/%s", (int)(slash - base_file), base_file, rel);
    else n = snprintf(buf, size, "%s", rel);
    return n >= (int)size ? -1 : 0;
}

/* Expand `include:` keys in every map of the tree, depth first. */
static int expand_includes(mm_cfg *node, int depth, budget *b, mm_err *err)
{
    if (node->type == MM_CFG_SEQ) {
        for (size_t i = 0; i < node->n; i++)
            if (expand_includes(node->items[i], depth, b, err)) return err->code;
        return 0;
    }
    if (node->type != MM_CFG_MAP) return 0;
    for (size_t i = 0; i < node->n; i++)
        if (node->items[i]->key && strcmp(node->items[i]->key, "include") &&
            expand_includes(node->items[i], depth, b, err))
            return err->code;
    mm_cfg *inc = map_child_mut(node, "include");
    if (!inc) return 0;
    char where[600];
    mm_cfg_where(inc, where, sizeof where);
    if (depth >= MAX_INCLUDE_DEPTH)
        return mm_err_set(err, MM_EINVAL, "%s: includes nested deeper than %d (a cycle?)", where,
                          MAX_INCLUDE_DEPTH);
    mm_cfg *base = node_new(MM_CFG_MAP, node->file, node->line);
    if (!base) return mm_err_set(err, MM_ENOMEM, "out of memory");
    size_t count = inc->type == MM_CFG_SEQ ? inc->n : 1;
    for (size_t k = 0; k < count; k++) {
        const mm_cfg *item = inc->type == MM_CFG_SEQ ? inc->items[k] : inc;
        if (item->type != MM_CFG_SCALAR) {
            mm_cfg_free(base);
            return mm_err_set(err, MM_EINVAL, "%s: key 'include': expected a file name or a list of file names", where);
        }
        char path[4096];
        if (resolve_path(item->file, item->value, path, sizeof path)) {
            mm_cfg_free(base);
            return mm_err_set(err, MM_EINVAL, "%s: include path too long", where);
        }
        if (++b->includes > MM_CFG_MAX_INCLUDES) {
            mm_cfg_free(base);
            return mm_err_set(err, MM_EINVAL, "%s: more than %d includes in all (included files "
                              "include each other too often?)", where, MM_CFG_MAX_INCLUDES);
        }
        mm_cfg *sub = NULL;
        if (load_file_depth(path, depth + 1, b, &sub, err)) {
            mm_cfg_free(base);
            char w2[600];
            if (depth > 0) return err->code;   /* name only the outermost include line */
            return mm_err_prefix(err, "%s: included from here", mm_cfg_where(item, w2, sizeof w2));
        }
        if (sub->type != MM_CFG_MAP) {
            mm_cfg_free(sub);
            mm_cfg_free(base);
            return mm_err_set(err, MM_EINVAL, "%s: included file '%s' is not a map", where, path);
        }
        int rc = merge_into(base, sub);
        mm_cfg_free(sub);
        if (rc) { mm_cfg_free(base); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    }
    remove_child(node, "include");
    /* node's own keys override: merge node into base, then move base's items into node */
    if (merge_into(base, node)) { mm_cfg_free(base); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < node->n; i++) mm_cfg_free(node->items[i]);
    free(node->items);
    node->items = base->items;
    node->n = base->n;
    base->items = NULL;
    base->n = 0;
    mm_cfg_free(base);
    return 0;
}

static int load_file_depth(const char *path, int depth, budget *b, mm_cfg **out, mm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return mm_err_set(err, MM_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 14, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) { fclose(f); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            if (cap > (64u << 20)) {
                free(buf);
                fclose(f);
                return mm_err_set(err, MM_EFORMAT, "%s: config larger than 64 MB", path);
            }
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); fclose(f); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
            buf = nb;
        }
    }
    int ferr = ferror(f);
    fclose(f);
    if (ferr) { free(buf); return mm_err_set(err, MM_EIO, "%s: read error", path); }
    mm_cfg *c = NULL;
    int rc = parse_yaml(buf, len, path, b, &c, err);
    free(buf);
    if (rc) return rc;
    if ((rc = expand_includes(c, depth, b, err))) { mm_cfg_free(c); return rc; }
    *out = c;
    return 0;
}

int mm_cfg_load_file(const char *path, mm_cfg **out, mm_err *err)
{
    budget b = {0};
    return load_file_depth(path, 0, &b, out, err);
}

/* ---- lookups ---- */

const mm_cfg *mm_cfg_child(const mm_cfg *map, const char *key)
{
    return map_child_mut((mm_cfg *)map, key);
}

const mm_cfg *mm_cfg_find(const mm_cfg *root, const char *path)
{
    const mm_cfg *c = root;
    char part[256];
    while (c && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (len >= sizeof part) return NULL;
        memcpy(part, path, len);
        part[len] = 0;
        if (c->type == MM_CFG_MAP) c = mm_cfg_child(c, part);
        else if (c->type == MM_CFG_SEQ) {
            char *end;
            long i = strtol(part, &end, 10);
            c = (*end || i < 0 || (size_t)i >= c->n) ? NULL : c->items[i];
        } else return NULL;
        path += len + (dot ? 1 : 0);
    }
    return c;
}

static const char *keyname(const mm_cfg *node, const char *fallback)
{
    return node && node->key ? node->key : fallback;
}

int mm_cfg_scalar_int(const mm_cfg *node, const char *what, long *out, mm_err *err)
{
    char w[600];
    if (!node || node->type != MM_CFG_SCALAR)
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected an integer", mm_cfg_where(node, w, sizeof w), what);
    errno = 0;
    char *end;
    long v = strtol(node->value, &end, 10);
    while (*end && isspace((unsigned char)*end)) end++;
    if (errno || *end || end == node->value)
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected an integer, got '%s'",
                          mm_cfg_where(node, w, sizeof w), what, node->value);
    *out = v;
    return 0;
}

int mm_cfg_scalar_double(const mm_cfg *node, const char *what, double *out, mm_err *err)
{
    char w[600];
    if (!node || node->type != MM_CFG_SCALAR)
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected a number", mm_cfg_where(node, w, sizeof w), what);
    errno = 0;
    char *end;
    double v = strtod(node->value, &end);
    while (*end && isspace((unsigned char)*end)) end++;
    if (errno || *end || end == node->value || !isfinite(v))
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected a finite number, got '%s'",
                          mm_cfg_where(node, w, sizeof w), what, node->value);
    *out = v;
    return 0;
}

int mm_cfg_get_int(const mm_cfg *map, const char *key, long def, long min, long max, long *out,
                   mm_err *err)
{
    const mm_cfg *c = map ? mm_cfg_child(map, key) : NULL;
    if (!c || c->type == MM_CFG_NULL) { *out = def; return 0; }
    long v;
    int rc = mm_cfg_scalar_int(c, key, &v, err);
    if (rc) return rc;
    char w[600];
    if (v < min || v > max) {
        if (max == LONG_MAX)
            return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected an integer >= %ld, got %ld",
                              mm_cfg_where(c, w, sizeof w), key, min, v);
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected an integer in [%ld, %ld], got %ld",
                          mm_cfg_where(c, w, sizeof w), key, min, max, v);
    }
    *out = v;
    return 0;
}

int mm_cfg_get_double(const mm_cfg *map, const char *key, double def, double min, double max,
                      double *out, mm_err *err)
{
    const mm_cfg *c = map ? mm_cfg_child(map, key) : NULL;
    if (!c || c->type == MM_CFG_NULL) { *out = def; return 0; }
    double v;
    int rc = mm_cfg_scalar_double(c, key, &v, err);
    if (rc) return rc;
    char w[600];
    if (v < min || v > max)
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected a number in [%g, %g], got %g",
                          mm_cfg_where(c, w, sizeof w), key, min, max, v);
    *out = v;
    return 0;
}

int mm_cfg_get_bool(const mm_cfg *map, const char *key, int def, int *out, mm_err *err)
{
    const mm_cfg *c = map ? mm_cfg_child(map, key) : NULL;
    if (!c || c->type == MM_CFG_NULL) { *out = def; return 0; }
    char w[600];
    if (c->type == MM_CFG_SCALAR) {
        const char *v = c->value;
        if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1")) { *out = 1; return 0; }
        if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0")) { *out = 0; return 0; }
    }
    return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected true or false, got '%s'",
                      mm_cfg_where(c, w, sizeof w), key, c->value ? c->value : "(a map or list)");
}

int mm_cfg_get_str(const mm_cfg *map, const char *key, const char *def, const char **out,
                   mm_err *err)
{
    const mm_cfg *c = map ? mm_cfg_child(map, key) : NULL;
    if (!c || c->type == MM_CFG_NULL) { *out = def; return 0; }
    char w[600];
    if (c->type != MM_CFG_SCALAR)
        return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected a string, got a %s",
                          mm_cfg_where(c, w, sizeof w), key, c->type == MM_CFG_MAP ? "map" : "list");
    *out = c->value;
    return 0;
}

int mm_cfg_get_choice(const mm_cfg *map, const char *key, const char *const *choices, int def,
                      int *out, mm_err *err)
{
    const char *v;
    int rc = mm_cfg_get_str(map, key, NULL, &v, err);
    if (rc) return rc;
    if (!v) { *out = def; return 0; }
    for (int i = 0; choices[i]; i++)
        if (!strcmp(v, choices[i])) { *out = i; return 0; }
    char list[512] = "", w[600];
    for (int i = 0; choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    return mm_err_set(err, MM_EINVAL, "%s: key '%s': expected one of %s, got '%s'",
                      mm_cfg_where(mm_cfg_child(map, key), w, sizeof w), key, list, v);
}

int mm_cfg_check_keys(const mm_cfg *map, const char *what, const char *const *allowed,
                      mm_err *err)
{
    if (!map || map->type == MM_CFG_NULL) return 0;
    char w[600];
    if (map->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "%s: '%s': expected a map of settings",
                          mm_cfg_where(map, w, sizeof w), what);
    for (size_t i = 0; i < map->n; i++) {
        const char *k = map->items[i]->key;
        int ok = 0;
        for (int j = 0; allowed[j]; j++)
            if (!strcmp(k, allowed[j])) { ok = 1; break; }
        if (!ok) {
            char list[768] = "";
            for (int j = 0; allowed[j]; j++) {
                strncat(list, j ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, allowed[j], sizeof list - strlen(list) - 1);
            }
            return mm_err_set(err, MM_EINVAL, "%s: unknown key '%s' in '%s' (expected one of: %s)",
                              mm_cfg_where(map->items[i], w, sizeof w), k, what, list);
        }
    }
    (void)keyname;
    return 0;
}

/* ---- modification ---- */

int mm_cfg_put(mm_cfg *map, const char *key, const mm_cfg *value, mm_err *err)
{
    if (!map || map->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "cannot set '%s': parent is not a map", key);
    mm_cfg *cp = value ? mm_cfg_clone(value) : node_new(MM_CFG_NULL, "<command line>", 0);
    if (!cp) return mm_err_set(err, MM_ENOMEM, "out of memory");
    free(cp->key);
    cp->key = strdup(key);
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->items[i]->key, key)) {
            mm_cfg_free(map->items[i]);
            map->items[i] = cp;
            return 0;
        }
    if (push(map, cp)) { mm_cfg_free(cp); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    return 0;
}

int mm_cfg_append(mm_cfg *map, const char *key, const mm_cfg *item, mm_err *err)
{
    if (!map || map->type != MM_CFG_MAP)
        return mm_err_set(err, MM_EINVAL, "cannot append to '%s': parent is not a map", key);
    mm_cfg *seq = map_child_mut(map, key);
    if (seq && seq->type != MM_CFG_SEQ) {
        char w[600];
        return mm_err_set(err, MM_EINVAL, "%s: cannot append to '%s': not a list", mm_cfg_where(seq, w, sizeof w), key);
    }
    mm_cfg *cp = mm_cfg_clone(item);
    if (!cp) return mm_err_set(err, MM_ENOMEM, "out of memory");
    free(cp->key);
    cp->key = NULL;   /* sequence items have no key */
    if (!seq) {
        mm_cfg *ns = node_new(MM_CFG_SEQ, "<command line>", 0);
        if (!ns || !(ns->key = strdup(key)) || push(map, ns)) {
            mm_cfg_free(ns);
            mm_cfg_free(cp);
            return mm_err_set(err, MM_ENOMEM, "out of memory");
        }
        seq = ns;
    }
    if (push(seq, cp)) { mm_cfg_free(cp); return mm_err_set(err, MM_ENOMEM, "out of memory"); }
    return 0;
}

int mm_cfg_put_str(mm_cfg *map, const char *key, const char *value, mm_err *err)
{
    mm_cfg tmp = {.type = MM_CFG_SCALAR, .value = (char *)value, .file = "<command line>"};
    return mm_cfg_put(map, key, &tmp, err);
}

int mm_cfg_set(mm_cfg *root, const char *assignment, mm_err *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return mm_err_set(err, MM_EINVAL, "--set '%s': expected key.path=value", assignment);
    size_t klen = (size_t)(eq - assignment);
    char *path = strndup(assignment, klen);
    if (!path) return mm_err_set(err, MM_ENOMEM, "out of memory");
    mm_cfg *val = NULL;
    char name[300];
    snprintf(name, sizeof name, "--set %s", path);
    int rc = mm_cfg_parse_string(eq + 1, name, &val, err);
    if (rc) { free(path); return rc; }
    if (val->type == MM_CFG_MAP && val->n == 0) {     /* empty value parses as an empty doc */
        mm_cfg_free(val);
        val = node_new(MM_CFG_NULL, name, 0);
    }
    free(val->file);
    val->file = strdup("<command line>");
    val->line = 0;
    mm_cfg *cur = root;
    char *save = NULL, *tok = strtok_r(path, ".", &save);
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next) { rc = mm_cfg_put(cur, tok, val, err); break; }
        mm_cfg *ch = NULL;
        if (cur->type == MM_CFG_SEQ) {
            char *end;
            long i = strtol(tok, &end, 10);
            if (*end || i < 0 || (size_t)i >= cur->n) {
                rc = mm_err_set(err, MM_EINVAL, "--set %.*s: no item %s in the list", (int)klen, assignment, tok);
                break;
            }
            ch = cur->items[i];
        } else {
            ch = map_child_mut(cur, tok);
            if (!ch || (ch->type != MM_CFG_MAP && ch->type != MM_CFG_SEQ)) {
                mm_cfg *m = node_new(MM_CFG_MAP, "<command line>", 0);
                if (!m || mm_cfg_put(cur, tok, m, err)) { mm_cfg_free(m); rc = MM_ENOMEM; break; }
                mm_cfg_free(m);
                ch = map_child_mut(cur, tok);
            }
        }
        cur = ch;
        tok = next;
    }
    mm_cfg_free(val);
    free(path);
    return rc;
}

/* ---- emission ---- */

typedef struct { char *buf; size_t len, cap; } sbuf;

static int emit_handler(void *data, unsigned char *buffer, size_t size)
{
    sbuf *s = data;
    if (s->len + size + 1 > s->cap) {
        size_t nc = (s->len + size + 1) * 2;
        char *nb = realloc(s->buf, nc);
        if (!nb) return 0;
        s->buf = nb;
        s->cap = nc;
    }
    memcpy(s->buf + s->len, buffer, size);
    s->len += size;
    s->buf[s->len] = 0;
    return 1;
}

static int emit_node(yaml_emitter_t *em, const mm_cfg *c)
{
    yaml_event_t ev;
    switch (c->type) {
    case MM_CFG_NULL:
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)"null", 4, 1, 1, YAML_PLAIN_SCALAR_STYLE);
        return yaml_emitter_emit(em, &ev);
    case MM_CFG_SCALAR:
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)c->value, (int)strlen(c->value),
                                     1, 1, YAML_ANY_SCALAR_STYLE);
        return yaml_emitter_emit(em, &ev);
    case MM_CFG_SEQ:
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(em, &ev)) return 0;
        for (size_t i = 0; i < c->n; i++)
            if (!emit_node(em, c->items[i])) return 0;
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    case MM_CFG_MAP:
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(em, &ev)) return 0;
        for (size_t i = 0; i < c->n; i++) {
            yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)c->items[i]->key,
                                         (int)strlen(c->items[i]->key), 1, 1, YAML_ANY_SCALAR_STYLE);
            if (!yaml_emitter_emit(em, &ev)) return 0;
            if (!emit_node(em, c->items[i])) return 0;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    }
    return 0;
}

char *mm_cfg_to_yaml(const mm_cfg *c)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    sbuf s = {0};
    if (!yaml_emitter_initialize(&em)) return NULL;
    yaml_emitter_set_output(&em, emit_handler, &s);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, 100);
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&em, &ev);
    ok = ok && yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(&em, &ev);
    ok = ok && emit_node(&em, c);
    ok = ok && yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev);
    ok = ok && yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev);
    yaml_emitter_delete(&em);
    if (!ok) { free(s.buf); return NULL; }
    if (!s.buf) s.buf = strdup("");
    return s.buf;
}

unsigned long long mm_cfg_hash(const mm_cfg *c)
{
    char *y = mm_cfg_to_yaml(c);
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = y ? y : ""; *p; p++) { h ^= (unsigned char)*p; h *= 1099511628211ULL; }
    free(y);
    return h;
}
