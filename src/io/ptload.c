/* ptload.c — PyTorch zip checkpoints: ZIP directory, safe pickle subset, tensors.
 *
 * Reference: torch.serialization (_save/_load, zip format since torch 1.6),
 * PyTorchStreamWriter's stored (uncompressed) entries, and Python's pickle
 * opcode definitions (Lib/pickletools.py). The interpreter never calls
 * anything: GLOBAL only records a name, REDUCE knows the four torch/collections
 * callables that state dicts need and turns any other into an inert opaque
 * value (an error only if a caller then asks for it as a tensor). Every
 * length is checked against the bytes left before it is used. Leaves out:
 * big-endian files, compressed entries, sparse/quantised tensors.
 */
#include "io/ptload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- pickle values ---------------------------------------------------- */

typedef enum {
    V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT,
    V_GLOBAL, V_STORAGE, V_TENSOR, V_OPAQUE
} vkind;

typedef struct val val;
struct val {
    vkind k;
    int64_t i;              /* INT, BOOL */
    double f;               /* FLOAT */
    char *s;                /* STR; GLOBAL/OPAQUE "module.name"; STORAGE key */
    val **items;            /* TUPLE/LIST: n items; DICT: n = 2*pairs (k0,v0,k1,v1..) */
    size_t n, cap;
    /* STORAGE */
    mm_pt_dtype dtype;
    int64_t snumel;         /* elements in the storage */
    /* TENSOR */
    val *storage;
    int64_t offset;
    int ndim;
    int64_t shape[MM_PT_MAX_DIM], stride[MM_PT_MAX_DIM];
};

typedef struct zentry {
    const char *name;       /* points into the file (not NUL-terminated) */
    size_t name_len;
    size_t data_off;        /* start of the stored bytes */
    size_t size;
} zentry;

struct mm_pt {
    char *path;
    const unsigned char *buf;   /* whole file */
    size_t len;
    int mapped;                 /* buf from mmap (else malloc) */
    zentry *ent;
    size_t n_ent;
    size_t *by_name;            /* (n_ent) entry indices sorted by (name, index): zfind is a binary search */
    char *prefix;               /* "archive" in "archive/data.pkl" */
    const zentry *pkl;          /* the data.pkl entry */
    val **all;                  /* every value, for freeing */
    size_t n_all, cap_all;
    val *root;
    mm_pt_tensor *t;            /* current selection */
    size_t n_t;
};

static const struct {
    const char *name;
    mm_pt_dtype dtype;
    size_t size;
} STORAGES[] = {
    {"torch.FloatStorage", MM_PT_F32, 4},   {"torch.DoubleStorage", MM_PT_F64, 8},
    {"torch.HalfStorage", MM_PT_F16, 2},    {"torch.BFloat16Storage", MM_PT_BF16, 2},
    {"torch.LongStorage", MM_PT_I64, 8},    {"torch.IntStorage", MM_PT_I32, 4},
    {"torch.ShortStorage", MM_PT_I16, 2},   {"torch.CharStorage", MM_PT_I8, 1},
    {"torch.ByteStorage", MM_PT_U8, 1},     {"torch.BoolStorage", MM_PT_BOOL, 1},
};

static size_t dtype_size(mm_pt_dtype t)
{
    for (size_t i = 0; i < sizeof STORAGES / sizeof *STORAGES; i++)
        if (STORAGES[i].dtype == t) return STORAGES[i].size;
    return 0;
}

const char *mm_pt_dtype_name(mm_pt_dtype t)
{
    static const char *names[] = {"float32", "float64", "float16", "bfloat16", "int64",
                                  "int32", "int16", "int8", "uint8", "bool"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

static val *vnew(mm_pt *pt, vkind k, mm_err *err)
{
    if (pt->n_all == pt->cap_all) {
        size_t nc = pt->cap_all ? 2 * pt->cap_all : 256;
        val **na = realloc(pt->all, nc * sizeof *na);
        if (!na) {
            mm_err_set(err, MM_ENOMEM, "%s: out of memory in pickle", pt->path);
            return NULL;
        }
        pt->all = na;
        pt->cap_all = nc;
    }
    val *v = calloc(1, sizeof *v);
    if (!v) {
        mm_err_set(err, MM_ENOMEM, "%s: out of memory in pickle", pt->path);
        return NULL;
    }
    v->k = k;
    pt->all[pt->n_all++] = v;
    return v;
}

static int vpush_item(mm_pt *pt, val *c, val *x, mm_err *err)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 4;
        val **ni = realloc(c->items, nc * sizeof *ni);
        if (!ni) return mm_err_set(err, MM_ENOMEM, "%s: out of memory in pickle", pt->path);
        c->items = ni;
        c->cap = nc;
    }
    c->items[c->n++] = x;
    return 0;
}

static const char *kind_name(vkind k)
{
    static const char *n[] = {"None", "bool", "int", "float", "str", "tuple", "list",
                              "dict", "global", "storage", "tensor", "object"};
    return n[k];
}

/* ---- ZIP directory ---------------------------------------------------- */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int name_cmp(const zentry *e, const char *name, size_t l)
{
    int c = memcmp(e->name, name, e->name_len < l ? e->name_len : l);
    return c ? c : (e->name_len > l) - (e->name_len < l);
}

static int cmp_entry(const void *a, const void *b, void *ctx)
{
    const mm_pt *pt = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = name_cmp(&pt->ent[i], pt->ent[j].name, pt->ent[j].name_len);
    return c ? c : (i > j) - (i < j);
}

/* The first entry (in directory order) named `name`, or NULL: a binary
 * search over by_name, so a checkpoint of many entries and many storage
 * references costs n·log n, not entries × references. */
static const zentry *zfind(const mm_pt *pt, const char *name)
{
    size_t l = strlen(name), lo = 0, hi = pt->n_ent;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (name_cmp(&pt->ent[pt->by_name[mid]], name, l) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < pt->n_ent && !name_cmp(&pt->ent[pt->by_name[lo]], name, l) ? &pt->ent[pt->by_name[lo]] : NULL;
}

static int zip_read(mm_pt *pt, mm_err *err)
{
    const unsigned char *b = pt->buf;
    size_t len = pt->len;
    if (len < 22) return mm_err_set(err, MM_EFORMAT, "%s: truncated zip archive", pt->path);
    /* End of central directory: last signature within the final 64 KiB + 22. */
    size_t eocd = (size_t)-1;
    size_t lo = len > 65557 ? len - 65557 : 0;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (rd32(b + p) == 0x06054b50) { eocd = p; break; }
    if (eocd == (size_t)-1)
        return mm_err_set(err, MM_EFORMAT,
                          "%s: no zip end-of-directory record (truncated or not a torch.save file)",
                          pt->path);
    uint64_t n_ent = rd16(b + eocd + 10), cd_size = rd32(b + eocd + 12),
             cd_off = rd32(b + eocd + 16);
    if (n_ent == 0xFFFF || cd_off == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu) {
        if (eocd < 20 || rd32(b + eocd - 20) != 0x07064b50)
            return mm_err_set(err, MM_EFORMAT, "%s: zip64 locator missing", pt->path);
        uint64_t z = rd64(b + eocd - 20 + 8);
        if (len < 56 || z > len - 56 || rd32(b + z) != 0x06064b50)
            return mm_err_set(err, MM_EFORMAT, "%s: zip64 directory record out of range",
                              pt->path);
        n_ent = rd64(b + z + 32);
        cd_size = rd64(b + z + 40);
        cd_off = rd64(b + z + 48);
    }
    if (cd_off > len || cd_size > len - cd_off || n_ent > cd_size / 46)
        return mm_err_set(err, MM_EFORMAT,
                          "%s: zip directory (%llu entries at %llu) lies outside the file",
                          pt->path, (unsigned long long)n_ent, (unsigned long long)cd_off);
    pt->ent = mm_calloc(n_ent ? n_ent : 1, sizeof *pt->ent, err);
    if (!pt->ent) return MM_ENOMEM;
    size_t p = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < n_ent; i++) {
        if (end - p < 46 || rd32(b + p) != 0x02014b50)
            return mm_err_set(err, MM_EFORMAT, "%s: zip directory entry %llu is corrupt",
                              pt->path, (unsigned long long)i);
        unsigned method = rd16(b + p + 10);
        uint64_t csize = rd32(b + p + 20), usize = rd32(b + p + 24);
        size_t nl = rd16(b + p + 28), el = rd16(b + p + 30), cl = rd16(b + p + 32);
        uint64_t loff = rd32(b + p + 42);
        if (end - p - 46 < nl + el + cl)
            return mm_err_set(err, MM_EFORMAT, "%s: zip directory entry %llu is truncated",
                              pt->path, (unsigned long long)i);
        const char *name = (const char *)b + p + 46;
        /* zip64 extended information: only the fields saturated above, in order. */
        const unsigned char *x = b + p + 46 + nl, *xe = x + el;
        while (xe - x >= 4) {
            unsigned id = rd16(x), sz = rd16(x + 2);
            if ((size_t)(xe - x - 4) < sz) break;
            if (id == 1) {
                const unsigned char *q = x + 4, *qe = q + sz;
                if (usize == 0xFFFFFFFFu && qe - q >= 8) { usize = rd64(q); q += 8; }
                if (csize == 0xFFFFFFFFu && qe - q >= 8) { csize = rd64(q); q += 8; }
                if (loff == 0xFFFFFFFFu && qe - q >= 8) { loff = rd64(q); q += 8; }
            }
            x += 4 + sz;
        }
        if (len < 30 || loff > len - 30 || rd32(b + loff) != 0x04034b50)
            return mm_err_set(err, MM_EFORMAT, "%s: zip entry '%.*s': local header out of range",
                              pt->path, (int)nl, name);
        size_t doff = loff + 30 + (size_t)rd16(b + loff + 26) + rd16(b + loff + 28);
        if (doff > len || csize > len - doff)
            return mm_err_set(err, MM_EFORMAT,
                              "%s: zip entry '%.*s': %llu bytes at %zu run past the end of the "
                              "file (%zu bytes): truncated?",
                              pt->path, (int)nl, name, (unsigned long long)csize, doff, len);
        pt->ent[i] = (zentry){name, nl, doff, (size_t)csize};
        if (method != 0 || csize != usize) pt->ent[i].size = (size_t)-1;   /* compressed */
        p += 46 + nl + el + cl;
    }
    pt->n_ent = (size_t)n_ent;
    pt->by_name = mm_malloc(pt->n_ent ? pt->n_ent : 1, sizeof *pt->by_name, err);
    if (!pt->by_name) return MM_ENOMEM;
    for (size_t i = 0; i < pt->n_ent; i++) pt->by_name[i] = i;
    qsort_r(pt->by_name, pt->n_ent, sizeof *pt->by_name, cmp_entry, pt);
    /* "<prefix>/data.pkl" with a prefix free of '/'. */
    for (size_t i = 0; i < pt->n_ent; i++) {
        const zentry *e = &pt->ent[i];
        if (e->name_len > 9 && !memcmp(e->name + e->name_len - 9, "/data.pkl", 9) &&
            !memchr(e->name, '/', e->name_len - 9)) {
            pt->prefix = strndup(e->name, e->name_len - 9);
            if (!pt->prefix) return mm_err_set(err, MM_ENOMEM, "out of memory");
            pt->pkl = e;
            if (e->size == (size_t)-1)
                return mm_err_set(err, MM_EFORMAT, "%s: zip entry '%.*s' is compressed",
                                  pt->path, (int)e->name_len, e->name);
            return 0;
        }
    }
    if (zfind(pt, "constants.pkl") || pt->n_ent == 0)
        return mm_err_set(err, MM_EFORMAT, "%s: no '<archive>/data.pkl' entry: not a "
                          "torch.save checkpoint (TorchScript archives are not supported)",
                          pt->path);
    return mm_err_set(err, MM_EFORMAT,
                      "%s: no '<archive>/data.pkl' entry: not a torch.save checkpoint", pt->path);
}

/* ---- pickle machine --------------------------------------------------- */

typedef struct pm {
    mm_pt *pt;
    const unsigned char *p, *end, *start;
    val **stack;
    size_t sn, scap;
    size_t *marks;
    size_t mn, mcap;
    val **memo;
    size_t memo_n;      /* slots allocated */
    size_t memo_next;   /* 1 + the highest index stored: where MEMOIZE puts */
} pm;

#define PERR(...) mm_err_set(err, MM_EFORMAT, __VA_ARGS__)

static int spush(pm *m, val *v, mm_err *err)
{
    if (!v) return MM_ENOMEM;
    if (m->sn == m->scap) {
        size_t nc = m->scap ? 2 * m->scap : 64;
        val **ns = realloc(m->stack, nc * sizeof *ns);
        if (!ns) return mm_err_set(err, MM_ENOMEM, "out of memory in pickle");
        m->stack = ns;
        m->scap = nc;
    }
    m->stack[m->sn++] = v;
    return 0;
}

static size_t top_mark(pm *m) { return m->mn ? m->marks[m->mn - 1] : 0; }

static val *spop(pm *m)
{
    if (m->sn == 0 || (m->mn && m->sn <= top_mark(m))) return NULL;
    return m->stack[--m->sn];
}

/* Pop everything above the last MARK into a fresh tuple/list. */
static val *pop_to_mark(pm *m, vkind k, mm_err *err)
{
    if (!m->mn) {
        PERR("%s: pickle: MARK missing", m->pt->path);
        return NULL;
    }
    size_t mk = m->marks[--m->mn];
    val *t = vnew(m->pt, k, err);
    if (!t) return NULL;
    for (size_t i = mk; i < m->sn; i++)
        if (vpush_item(m->pt, t, m->stack[i], err)) return NULL;
    m->sn = mk;
    return t;
}

static int need(pm *m, size_t n, mm_err *err)
{
    if ((size_t)(m->end - m->p) < n)
        return PERR("%s: pickle truncated at offset %zu", m->pt->path,
                    (size_t)(m->p - m->start));
    return 0;
}

static val *mkstr(pm *m, const unsigned char *s, size_t n, vkind k, mm_err *err)
{
    val *v = vnew(m->pt, k, err);
    if (!v) return NULL;
    v->s = malloc(n + 1);
    if (!v->s) {
        mm_err_set(err, MM_ENOMEM, "out of memory in pickle");
        return NULL;
    }
    memcpy(v->s, s, n);
    v->s[n] = 0;
    v->n = n;
    return v;
}

static int memo_put(pm *m, size_t idx, mm_err *err)
{
    if (!m->sn || (m->mn && m->sn <= top_mark(m)))
        return PERR("%s: pickle: memo put with an empty stack", m->pt->path);
    /* Memo indices are sequential in practice; refuse absurd ones. */
    if (idx > (size_t)(m->end - m->start) + 1024)
        return PERR("%s: pickle: memo index %zu out of range", m->pt->path, idx);
    if (idx >= m->memo_n) {
        size_t nn = idx + 1 > 2 * m->memo_n ? idx + 1 : 2 * m->memo_n;
        val **nm = realloc(m->memo, nn * sizeof *nm);
        if (!nm) return mm_err_set(err, MM_ENOMEM, "out of memory in pickle");
        memset(nm + m->memo_n, 0, (nn - m->memo_n) * sizeof *nm);
        m->memo = nm;
        m->memo_n = nn;
    }
    m->memo[idx] = m->stack[m->sn - 1];
    if (idx + 1 > m->memo_next) m->memo_next = idx + 1;
    return 0;
}

static int memo_get(pm *m, size_t idx, mm_err *err)
{
    if (idx >= m->memo_n || !m->memo[idx])
        return PERR("%s: pickle: memo index %zu was never stored", m->pt->path, idx);
    return spush(m, m->memo[idx], err);
}

static int get_int(const val *v, int64_t *out)
{
    if (!v || (v->k != V_INT && v->k != V_BOOL)) return -1;
    *out = v->i;
    return 0;
}

/* Tuple of ints → shape/stride. */
static int int_tuple(const val *v, int64_t *out, int *nd)
{
    if (!v || (v->k != V_TUPLE && v->k != V_LIST) || v->n > MM_PT_MAX_DIM) return -1;
    for (size_t i = 0; i < v->n; i++)
        if (get_int(v->items[i], &out[i])) return -1;
    *nd = (int)v->n;
    return 0;
}

static int do_reduce(pm *m, mm_err *err)
{
    val *args = spop(m), *fn = spop(m);
    if (!args || !fn) return PERR("%s: pickle: REDUCE with a short stack", m->pt->path);
    if (fn->k != V_GLOBAL || args->k != V_TUPLE)
        return PERR("%s: pickle: REDUCE of a %s with %s arguments", m->pt->path,
                    kind_name(fn->k), kind_name(args->k));
    const char *f = fn->s;
    if (!strcmp(f, "collections.OrderedDict") || !strcmp(f, "builtins.dict")) {
        val *d = vnew(m->pt, V_DICT, err);
        if (!d) return MM_ENOMEM;
        if (args->n == 1 && (args->items[0]->k == V_LIST || args->items[0]->k == V_TUPLE)) {
            /* OrderedDict([(k, v), ...]) */
            val *l = args->items[0];
            for (size_t i = 0; i < l->n; i++) {
                val *kv = l->items[i];
                if (kv->k != V_TUPLE || kv->n != 2)
                    return PERR("%s: pickle: OrderedDict item is not a pair", m->pt->path);
                if (vpush_item(m->pt, d, kv->items[0], err) ||
                    vpush_item(m->pt, d, kv->items[1], err))
                    return MM_ENOMEM;
            }
        } else if (args->n != 0) {
            return PERR("%s: pickle: OrderedDict called with %zu arguments", m->pt->path,
                        args->n);
        }
        return spush(m, d, err);
    }
    if (!strcmp(f, "torch._utils._rebuild_tensor_v2") ||
        !strcmp(f, "torch._utils._rebuild_tensor")) {
        /* (storage, storage_offset, size, stride[, requires_grad, hooks[, metadata]]) */
        val *t = vnew(m->pt, V_TENSOR, err);
        if (!t) return MM_ENOMEM;
        int nd1 = 0, nd2 = 0;
        if (args->n < 4 || args->items[0]->k != V_STORAGE || get_int(args->items[1], &t->offset) ||
            int_tuple(args->items[2], t->shape, &nd1) ||
            int_tuple(args->items[3], t->stride, &nd2) || nd1 != nd2)
            return PERR("%s: pickle: %s with unexpected arguments (pickle offset %zu)",
                        m->pt->path, f, (size_t)(m->p - m->start));
        t->storage = args->items[0];
        t->ndim = nd1;
        return spush(m, t, err);
    }
    if (!strcmp(f, "torch._utils._rebuild_parameter") ||
        !strcmp(f, "torch._utils._rebuild_parameter_with_state")) {
        if (args->n < 1 || args->items[0]->k != V_TENSOR)
            return PERR("%s: pickle: %s without a tensor", m->pt->path, f);
        return spush(m, args->items[0], err);
    }
    /* Anything else stays an inert named object. */
    val *o = vnew(m->pt, V_OPAQUE, err);
    if (!o) return MM_ENOMEM;
    o->s = strdup(f);
    if (!o->s) return mm_err_set(err, MM_ENOMEM, "out of memory");
    return spush(m, o, err);
}

static int do_persid(pm *m, mm_err *err)
{
    val *pid = spop(m);
    if (!pid) return PERR("%s: pickle: BINPERSID with an empty stack", m->pt->path);
    if (pid->k != V_TUPLE || pid->n != 5 || pid->items[0]->k != V_STR ||
        strcmp(pid->items[0]->s, "storage") || pid->items[1]->k != V_GLOBAL ||
        pid->items[2]->k != V_STR || pid->items[4]->k != V_INT)
        return PERR("%s: pickle: persistent id is not ('storage', type, key, location, numel)",
                    m->pt->path);
    const char *ty = pid->items[1]->s;
    val *s = vnew(m->pt, V_STORAGE, err);
    if (!s) return MM_ENOMEM;
    size_t k;
    for (k = 0; k < sizeof STORAGES / sizeof *STORAGES; k++)
        if (!strcmp(ty, STORAGES[k].name)) break;
    if (k == sizeof STORAGES / sizeof *STORAGES)
        return PERR("%s: pickle: unsupported storage type '%s' for storage '%s'", m->pt->path, ty,
                    pid->items[2]->s);
    s->dtype = STORAGES[k].dtype;
    s->s = strdup(pid->items[2]->s);
    if (!s->s) return mm_err_set(err, MM_ENOMEM, "out of memory");
    s->snumel = pid->items[4]->i;
    if (s->snumel < 0)
        return PERR("%s: pickle: storage '%s' has a negative size", m->pt->path, s->s);
    return spush(m, s, err);
}

static int run_pickle(mm_pt *pt, const unsigned char *data, size_t len, mm_err *err)
{
    pm m = {.pt = pt, .p = data, .end = data + len, .start = data};
    int rc = 0;
    val *v;
    for (;;) {
        if ((rc = need(&m, 1, err))) goto done;
        size_t at = (size_t)(m.p - m.start);
        unsigned op = *m.p++;
        switch (op) {
        case 0x80:  /* PROTO */
            if ((rc = need(&m, 1, err))) goto done;
            if (*m.p > 5) { rc = PERR("%s: pickle protocol %d not supported", pt->path, *m.p); goto done; }
            m.p++;
            break;
        case 0x95:  /* FRAME: an 8-byte length hint only */
            if ((rc = need(&m, 8, err))) goto done;
            m.p += 8;
            break;
        case '}': rc = spush(&m, vnew(pt, V_DICT, err), err); break;
        case ']': rc = spush(&m, vnew(pt, V_LIST, err), err); break;
        case ')': rc = spush(&m, vnew(pt, V_TUPLE, err), err); break;
        case '(':   /* MARK */
            if (m.mn == m.mcap) {
                size_t nc = m.mcap ? 2 * m.mcap : 32;
                size_t *nm = realloc(m.marks, nc * sizeof *nm);
                if (!nm) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
                m.marks = nm;
                m.mcap = nc;
            }
            m.marks[m.mn++] = m.sn;
            break;
        case 'X': case 0x8c: case 'T': case 'U': {  /* (SHORT_)BINUNICODE, (SHORT_)BINSTRING */
            size_t w = (op == 'X' || op == 'T') ? 4 : 1;
            if ((rc = need(&m, w, err))) goto done;
            size_t n = w == 4 ? rd32(m.p) : *m.p;
            m.p += w;
            if ((rc = need(&m, n, err))) goto done;
            rc = spush(&m, mkstr(&m, m.p, n, V_STR, err), err);
            m.p += n;
            break;
        }
        case 'J': case 'K': case 'M': {  /* BININT, BININT1, BININT2 */
            size_t w = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if ((rc = need(&m, w, err))) goto done;
            if (!(v = vnew(pt, V_INT, err))) { rc = MM_ENOMEM; goto done; }
            v->i = op == 'J' ? (int32_t)rd32(m.p) : op == 'K' ? *m.p : rd16(m.p);
            m.p += w;
            rc = spush(&m, v, err);
            break;
        }
        case 0x8a: {  /* LONG1: n-byte little-endian two's complement */
            if ((rc = need(&m, 1, err))) goto done;
            size_t n = *m.p++;
            if ((rc = need(&m, n, err))) goto done;
            if (!(v = vnew(pt, V_INT, err))) { rc = MM_ENOMEM; goto done; }
            if (n > 8) {    /* e.g. the legacy magic number: keep as opaque big int */
                v->k = V_OPAQUE;
                v->s = strdup("int");
                if (!v->s) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
            } else if (n > 0) {
                uint64_t u = 0;
                for (size_t i = 0; i < n; i++) u |= (uint64_t)m.p[i] << (8 * i);
                if (n < 8 && (m.p[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n);
                v->i = (int64_t)u;
            }
            m.p += n;
            rc = spush(&m, v, err);
            break;
        }
        case 'G': {  /* BINFLOAT, big-endian double */
            if ((rc = need(&m, 8, err))) goto done;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | m.p[i];
            m.p += 8;
            if (!(v = vnew(pt, V_FLOAT, err))) { rc = MM_ENOMEM; goto done; }
            memcpy(&v->f, &u, 8);
            rc = spush(&m, v, err);
            break;
        }
        case 't':
            if (!(v = pop_to_mark(&m, V_TUPLE, err))) { rc = MM_EFORMAT; goto done; }
            rc = spush(&m, v, err);
            break;
        case 0x85: case 0x86: case 0x87: {  /* TUPLE1..3 */
            size_t n = op - 0x84;
            if (m.sn < n || (m.mn && m.sn - n < top_mark(&m))) {
                rc = PERR("%s: pickle: TUPLE%zu with a short stack (offset %zu)", pt->path, n, at);
                goto done;
            }
            if (!(v = vnew(pt, V_TUPLE, err))) { rc = MM_ENOMEM; goto done; }
            for (size_t i = m.sn - n; i < m.sn; i++)
                if ((rc = vpush_item(pt, v, m.stack[i], err))) goto done;
            m.sn -= n;
            rc = spush(&m, v, err);
            break;
        }
        case 's': case 'u': case 'a': case 'e': {  /* SETITEM(S), APPEND(S) */
            int dict = op == 's' || op == 'u';
            size_t from, to = m.sn;
            if (op == 'u' || op == 'e') {
                if (!m.mn) { rc = PERR("%s: pickle: MARK missing (offset %zu)", pt->path, at); goto done; }
                from = m.marks[--m.mn];
            } else {
                from = m.sn >= (dict ? 2u : 1u) ? m.sn - (dict ? 2 : 1) : 0;
                if (m.sn < (dict ? 2u : 1u) + 1 || (m.mn && from <= top_mark(&m))) {
                    rc = PERR("%s: pickle: short stack at offset %zu", pt->path, at);
                    goto done;
                }
            }
            if (from == 0) { rc = PERR("%s: pickle: no container at offset %zu", pt->path, at); goto done; }
            val *c = m.stack[from - 1];
            if (c->k != (dict ? V_DICT : V_LIST) || (dict && (to - from) % 2)) {
                rc = PERR("%s: pickle: %s into a %s at offset %zu", pt->path,
                          dict ? "SETITEMS" : "APPENDS", kind_name(c->k), at);
                goto done;
            }
            for (size_t i = from; i < to; i++)
                if ((rc = vpush_item(pt, c, m.stack[i], err))) goto done;
            m.sn = from;
            break;
        }
        case 'Q': rc = do_persid(&m, err); break;
        case 'c': {  /* GLOBAL "module\nname\n" */
            const unsigned char *a = m.p;
            const unsigned char *nl1 = memchr(a, '\n', (size_t)(m.end - a));
            const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m.end - nl1 - 1)) : NULL;
            if (!nl2) { rc = PERR("%s: pickle: GLOBAL truncated", pt->path); goto done; }
            if (!(v = mkstr(&m, a, (size_t)(nl2 - a), V_GLOBAL, err))) { rc = MM_ENOMEM; goto done; }
            v->s[nl1 - a] = '.';
            m.p = nl2 + 1;
            rc = spush(&m, v, err);
            break;
        }
        case 0x93: {  /* STACK_GLOBAL */
            val *name = spop(&m), *mod = spop(&m);
            if (!name || !mod || name->k != V_STR || mod->k != V_STR) {
                rc = PERR("%s: pickle: STACK_GLOBAL without two strings", pt->path);
                goto done;
            }
            size_t l1 = strlen(mod->s), l2 = strlen(name->s);
            if (!(v = vnew(pt, V_GLOBAL, err)) || !(v->s = malloc(l1 + l2 + 2))) { rc = mm_err_set(err, MM_ENOMEM, "out of memory"); goto done; }
            memcpy(v->s, mod->s, l1);
            v->s[l1] = '.';
            memcpy(v->s + l1 + 1, name->s, l2 + 1);
            rc = spush(&m, v, err);
            break;
        }
        case 'R': rc = do_reduce(&m, err); break;
        case 'b':  /* BUILD: the state (e.g. OrderedDict _metadata) is dropped */
            if (!spop(&m) || !m.sn) { rc = PERR("%s: pickle: BUILD with a short stack", pt->path); goto done; }
            break;
        case 'q': case 'r': case 'h': case 'j': {  /* (LONG_)BINPUT, (LONG_)BINGET */
            size_t w = (op == 'q' || op == 'h') ? 1 : 4;
            if ((rc = need(&m, w, err))) goto done;
            size_t idx = w == 1 ? *m.p : rd32(m.p);
            m.p += w;
            rc = (op == 'q' || op == 'r') ? memo_put(&m, idx, err) : memo_get(&m, idx, err);
            break;
        }
        case 0x94:  /* MEMOIZE: after the highest index stored (a running count, not a scan) */
            rc = memo_put(&m, m.memo_next, err);
            break;
        case 0x88: case 0x89:
            if (!(v = vnew(pt, V_BOOL, err))) { rc = MM_ENOMEM; goto done; }
            v->i = op == 0x88;
            rc = spush(&m, v, err);
            break;
        case 'N': rc = spush(&m, vnew(pt, V_NONE, err), err); break;
        case '.':   /* STOP */
            if (m.sn != 1 || m.mn) {
                rc = PERR("%s: pickle: STOP with %zu values on the stack", pt->path, m.sn);
                goto done;
            }
            pt->root = m.stack[0];
            goto done;
        default:
            rc = PERR("%s: pickle opcode 0x%02x ('%c') at offset %zu is not supported "
                      "(only state-dict pickles are)", pt->path, op,
                      op >= 32 && op < 127 ? op : '?', at);
            goto done;
        }
        if (rc) goto done;
    }
done:
    free(m.stack);
    free(m.marks);
    free(m.memo);
    return rc;
}

/* ---- open / free ------------------------------------------------------ */

static int finish_open(mm_pt *pt, mm_pt **out, mm_err *err)
{
    int rc;
    if (pt->len >= 2 && pt->buf[0] == 0x80 && pt->buf[1] <= 5) {
        rc = mm_err_set(err, MM_EFORMAT,
                        "%s: legacy (pre-zip) PyTorch checkpoint: not supported; convert it "
                        "with a recent torch: torch.save(torch.load(f), f2)", pt->path);
        goto fail;
    }
    if (pt->len < 4 || rd32(pt->buf) != 0x04034b50) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: not a PyTorch checkpoint (expected a zip archive "
                        "written by torch.save)", pt->path);
        goto fail;
    }
    if ((rc = zip_read(pt, err))) goto fail;
    char name[512];
    snprintf(name, sizeof name, "%s/byteorder", pt->prefix);
    const zentry *bo = zfind(pt, name);
    if (bo && bo->size == 3 && !memcmp(pt->buf + bo->data_off, "big", 3)) {
        rc = mm_err_set(err, MM_EFORMAT, "%s: big-endian checkpoint not supported", pt->path);
        goto fail;
    }
    if ((rc = run_pickle(pt, pt->buf + pt->pkl->data_off, pt->pkl->size, err))) goto fail;
    *out = pt;
    return 0;
fail:
    mm_pt_free(pt);
    return rc;
}

int mm_pt_open(const char *path, mm_pt **out, mm_err *err)
{
    mm_pt *pt = mm_calloc(1, sizeof *pt, err);
    if (!pt) return MM_ENOMEM;
    pt->path = strdup(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = mm_err_set(err, MM_EIO, "%s: cannot open: %s", path, strerror(errno));
        mm_pt_free(pt);
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        mm_pt_free(pt);
        return mm_err_set(err, MM_EIO, "%s: not a regular file", path);
    }
    pt->len = (size_t)st.st_size;
    if (pt->len) {
        void *p = mmap(NULL, pt->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            int rc = mm_err_set(err, MM_EIO, "%s: cannot map: %s", path, strerror(errno));
            mm_pt_free(pt);
            return rc;
        }
        pt->buf = p;
        pt->mapped = 1;
    }
    close(fd);
    if (!pt->path) {
        mm_pt_free(pt);
        return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    return finish_open(pt, out, err);
}

int mm_pt_open_memory(const void *data, size_t len, const char *name, mm_pt **out, mm_err *err)
{
    mm_pt *pt = mm_calloc(1, sizeof *pt, err);
    if (!pt) return MM_ENOMEM;
    pt->path = strdup(name ? name : "<memory>");
    unsigned char *b = mm_malloc(len ? len : 1, 1, err);
    if (!pt->path || !b) {
        free(b);
        mm_pt_free(pt);
        return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    if (len) memcpy(b, data, len);
    pt->buf = b;
    pt->len = len;
    return finish_open(pt, out, err);
}

static void free_selection(mm_pt *pt)
{
    for (size_t i = 0; i < pt->n_t; i++) {
        free((void *)pt->t[i].name);
        free((void *)pt->t[i].data);
    }
    free(pt->t);
    pt->t = NULL;
    pt->n_t = 0;
}

void mm_pt_free(mm_pt *pt)
{
    if (!pt) return;
    free_selection(pt);
    for (size_t i = 0; i < pt->n_all; i++) {
        free(pt->all[i]->s);
        free(pt->all[i]->items);
        free(pt->all[i]);
    }
    free(pt->all);
    if (pt->mapped) munmap((void *)pt->buf, pt->len);
    else free((void *)pt->buf);
    free(pt->ent);
    free(pt->by_name);
    free(pt->prefix);
    free(pt->path);
    free(pt);
}

const char *mm_pt_path(const mm_pt *pt) { return pt->path; }

/* ---- tensors ---------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, f = h & 0x3ff, u;
    if (e == 0) {
        if (f == 0) u = s;
        else {  /* subnormal: renormalise */
            e = 127 - 15 + 1;
            while (!(f & 0x400)) { f <<= 1; e--; }
            u = s | e << 23 | (f & 0x3ff) << 13;
        }
    } else if (e == 31) {
        u = s | 0x7f800000u | f << 13;
    } else {
        u = s | (e + 127 - 15) << 23 | f << 13;
    }
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static float load_elem(const unsigned char *p, mm_pt_dtype t)
{
    switch (t) {
    case MM_PT_F32: { float x; memcpy(&x, p, 4); return x; }
    case MM_PT_F64: { double x; memcpy(&x, p, 8); return (float)x; }
    case MM_PT_F16: return half_to_float(rd16(p));
    case MM_PT_BF16: { uint32_t u = (uint32_t)rd16(p) << 16; float x; memcpy(&x, &u, 4); return x; }
    case MM_PT_I64: { int64_t x; memcpy(&x, p, 8); return (float)x; }
    case MM_PT_I32: { int32_t x; memcpy(&x, p, 4); return (float)x; }
    case MM_PT_I16: { int16_t x; memcpy(&x, p, 2); return (float)x; }
    case MM_PT_I8: return (float)(int8_t)p[0];
    case MM_PT_U8: case MM_PT_BOOL: return (float)p[0];
    }
    return 0;
}

static int make_tensor(mm_pt *pt, const char *name, const val *v, mm_pt_tensor *t, mm_err *err)
{
    const val *s = v->storage;
    size_t es = dtype_size(s->dtype);
    char ename[600];
    snprintf(ename, sizeof ename, "%s/data/%s", pt->prefix, s->s);
    const zentry *z = zfind(pt, ename);
    if (!z)
        return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': storage entry '%s' missing",
                          pt->path, name, ename);
    if (z->size == (size_t)-1)
        return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': storage '%s' is compressed",
                          pt->path, name, ename);
    if ((uint64_t)s->snumel > z->size / es)
        return mm_err_set(err, MM_EFORMAT,
                          "%s: tensor '%s': storage '%s' holds %zu bytes, %lld %s values "
                          "expected (truncated or corrupt)", pt->path, name, ename, z->size,
                          (long long)s->snumel, mm_pt_dtype_name(s->dtype));
    *t = (mm_pt_tensor){.dtype = s->dtype, .ndim = v->ndim, .offset = v->offset};
    uint64_t numel = 1, last = (uint64_t)v->offset;
    if (v->offset < 0)
        return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': negative storage offset", pt->path,
                          name);
    for (int d = 0; d < v->ndim; d++) {
        t->shape[d] = v->shape[d];
        t->stride[d] = v->stride[d];
        if (v->shape[d] < 0 || v->stride[d] < 0 || v->shape[d] > (int64_t)1 << 40 ||
            v->stride[d] > (int64_t)1 << 40)
            return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': bad size %lld or stride %lld",
                              pt->path, name, (long long)v->shape[d], (long long)v->stride[d]);
        if (v->shape[d] && numel > (uint64_t)1 << 40)
            return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': too many elements", pt->path,
                              name);
        numel *= (uint64_t)v->shape[d];
        if (v->shape[d]) last += (uint64_t)(v->shape[d] - 1) * (uint64_t)v->stride[d];
    }
    if (numel && last >= (uint64_t)s->snumel)
        return mm_err_set(err, MM_EFORMAT,
                          "%s: tensor '%s': elements up to index %llu exceed its storage of %lld",
                          pt->path, name, (unsigned long long)last, (long long)s->snumel);
    t->numel = (size_t)numel;
    float *d = mm_malloc(numel ? numel : 1, sizeof *d, err);
    if (!d) return MM_ENOMEM;
    const unsigned char *base = pt->buf + z->data_off;
    /* Contiguous row-major float32 (the usual case): one copy. */
    int contiguous = 1;
    int64_t expect = 1;
    for (int k = v->ndim - 1; k >= 0; k--) {
        if (v->shape[k] > 1 && v->stride[k] != expect) contiguous = 0;
        expect *= v->shape[k];
    }
    if (s->dtype == MM_PT_F32 && contiguous) {
        memcpy(d, base + (size_t)v->offset * es, numel * sizeof *d);   /* little-endian host */
        numel = 0;
    }
    /* Otherwise gather in row-major order over a multi-index (any strides). */
    int64_t idx[MM_PT_MAX_DIM] = {0};
    for (size_t i = 0; i < numel; i++) {
        int64_t off = v->offset;
        for (int k = 0; k < v->ndim; k++) off += idx[k] * v->stride[k];
        d[i] = load_elem(base + (size_t)off * es, s->dtype);
        for (int k = v->ndim - 1; k >= 0; k--) {
            if (++idx[k] < v->shape[k]) break;
            idx[k] = 0;
        }
    }
    t->data = d;
    t->name = strdup(name);
    if (!t->name) {
        free(d);
        return mm_err_set(err, MM_ENOMEM, "out of memory");
    }
    return 0;
}

static const val *dict_get(const val *d, const char *key)
{
    const val *r = NULL;
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->k == V_STR && !strcmp(d->items[i]->s, key)) r = d->items[i + 1];
    return r;
}

int mm_pt_state_dict(mm_pt *pt, const char *key, size_t *n, mm_err *err)
{
    free_selection(pt);
    const val *d = pt->root;
    char sel[256] = "";
    if (key && *key) {
        snprintf(sel, sizeof sel, "%s", key);
        char *save = NULL;
        for (char *part = strtok_r(sel, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
            if (d->k != V_DICT)
                return mm_err_set(err, MM_EFORMAT, "%s: cannot look up '%s' in a %s", pt->path,
                                  key, kind_name(d->k));
            d = dict_get(d, part);
            if (!d)
                return mm_err_set(err, MM_EFORMAT, "%s: no entry '%s' in the checkpoint",
                                  pt->path, key);
        }
    }
    if (d->k != V_DICT)
        return mm_err_set(err, MM_EFORMAT, "%s: %s%s%s is a %s, expected a state dict",
                          pt->path, key && *key ? "entry '" : "top object",
                          key && *key ? key : "", key && *key ? "'" : "", kind_name(d->k));
    size_t cnt = 0;
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (d->items[i + 1]->k == V_TENSOR) cnt++;
    pt->t = mm_calloc(cnt ? cnt : 1, sizeof *pt->t, err);
    if (!pt->t) return MM_ENOMEM;
    for (size_t i = 0; i + 1 < d->n; i += 2) {
        const val *k = d->items[i], *v = d->items[i + 1];
        if (v->k != V_TENSOR) continue;
        if (k->k != V_STR) {
            free_selection(pt);
            return mm_err_set(err, MM_EFORMAT, "%s: state-dict key is a %s, expected a string",
                              pt->path, kind_name(k->k));
        }
        int rc = make_tensor(pt, k->s, v, &pt->t[pt->n_t], err);
        if (rc) {
            free_selection(pt);
            return rc;
        }
        pt->n_t++;
    }
    if (n) *n = pt->n_t;
    return 0;
}

size_t mm_pt_count(const mm_pt *pt) { return pt->n_t; }

const mm_pt_tensor *mm_pt_at(const mm_pt *pt, size_t i)
{
    return i < pt->n_t ? &pt->t[i] : NULL;
}

const mm_pt_tensor *mm_pt_find(const mm_pt *pt, const char *name)
{
    for (size_t i = 0; i < pt->n_t; i++)
        if (!strcmp(pt->t[i].name, name)) return &pt->t[i];
    return NULL;
}

static void fmt_shape(char *b, size_t sz, int nd, const int64_t *s)
{
    size_t o = 0;
    o += (size_t)snprintf(b + o, sz - o, "[");
    for (int i = 0; i < nd && o < sz; i++)
        o += (size_t)snprintf(b + o, sz - o, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (o < sz) snprintf(b + o, sz - o, "]");
}

int mm_pt_get(const mm_pt *pt, const char *name, int ndim, const int64_t *shape,
              const float **data, mm_err *err)
{
    const mm_pt_tensor *t = mm_pt_find(pt, name);
    if (!t) return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s' missing", pt->path, name);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char a[160], b[160];
        fmt_shape(a, sizeof a, ndim, shape);
        fmt_shape(b, sizeof b, t->ndim, t->shape);
        return mm_err_set(err, MM_EFORMAT, "%s: tensor '%s': expected shape %s, got %s",
                          pt->path, name, a, b);
    }
    *data = t->data;
    return 0;
}
