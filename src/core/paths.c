/* paths.c — see paths.h. The running code's location comes from
 * /proc/self/exe and from dladdr() on a function of this file (the same
 * object for the melodic binary, libmelodic.so for programs linking it);
 * both are probed once, under pthread_once. */
#include "core/paths.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_UP 6   /* folders climbed from the executable looking for the checkout */

static struct {
    char checkout[PATH_MAX];      /* "" when none */
    char prefix[2][PATH_MAX];     /* installation folders ("" when unused) */
    char data[PATH_MAX];          /* <checkout>/../shared/data, "" when absent */
    char models[PATH_MAX];        /* the model root when no override or env */
} loc;
static pthread_once_t loc_once = PTHREAD_ONCE_INIT;

/* dirname in place: "/a/b/c" → "/a/b", "/a" → "/". */
static void up(char *p)
{
    char *s = strrchr(p, '/');
    if (!s) { p[0] = 0; return; }
    if (s == p) s[1] = 0;
    else *s = 0;
}

static int is_dir(const char *p)
{
    return p[0] && access(p, R_OK | X_OK) == 0;
}

/* The folder of the object file (executable or shared library) at `file`. */
static void probe_object(const char *file, int slot)
{
    char real[PATH_MAX];
    if (!file || !realpath(file, real)) return;
    up(real);                                   /* PREFIX/bin */
    if (!loc.checkout[0]) {                     /* climb to a folder with Makefile + src/melodic.h */
        char d[PATH_MAX], m[PATH_MAX + 32];
        snprintf(d, sizeof d, "%s", real);
        for (int i = 0; i < MAX_UP && d[0]; i++) {
            snprintf(m, sizeof m, "%s/src/melodic.h", d);
            if (access(m, R_OK) == 0) {
                snprintf(m, sizeof m, "%s/Makefile", d);
                if (access(m, R_OK) == 0) { snprintf(loc.checkout, sizeof loc.checkout, "%s", d); break; }
            }
            if (!strcmp(d, "/")) break;
            up(d);
        }
    }
    up(real);                                   /* PREFIX */
    if (strcmp(real, loc.prefix[0]) && strcmp(real, loc.prefix[1])) snprintf(loc.prefix[slot], PATH_MAX, "%s", real);
}

static void locate(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) { exe[n] = 0; probe_object(exe, 0); }
    Dl_info info;
    if (dladdr((void *)&locate, &info) && info.dli_fname) probe_object(info.dli_fname, 1);

    char p[PATH_MAX];
    if (loc.checkout[0]) {
        snprintf(p, sizeof p, "%s", loc.checkout);
        up(p);
        snprintf(loc.data, sizeof loc.data, "%s/shared/data", p);
        if (!is_dir(loc.data)) loc.data[0] = 0;
    }
    /* model root: <checkout>/../shared/models, else PREFIX/share/melodic/models;
     * the first candidate when neither exists */
    char first[PATH_MAX] = "";
    if (loc.checkout[0]) {
        snprintf(p, sizeof p, "%s", loc.checkout);
        up(p);
        snprintf(loc.models, sizeof loc.models, "%s/shared/models", p);
        snprintf(first, sizeof first, "%s", loc.models);
        if (is_dir(loc.models)) return;
    }
    for (int s = 0; s < 2; s++) {
        if (!loc.prefix[s][0]) continue;
        snprintf(loc.models, sizeof loc.models, "%s/share/melodic/models", loc.prefix[s]);
        if (!first[0]) snprintf(first, sizeof first, "%s", loc.models);
        if (is_dir(loc.models)) return;
    }
    snprintf(loc.models, sizeof loc.models, "%s", first[0] ? first : "models");
}

const char *mm_checkout_dir(void)
{
    pthread_once(&loc_once, locate);
    return loc.checkout[0] ? loc.checkout : NULL;
}

const char *mm_data_root(const char *override)
{
    if (override && *override) return override;
    const char *e = getenv("MELODIC_DATA");
    if (e && *e) return e;
    if (is_dir("../shared/data")) return "../shared/data";
    pthread_once(&loc_once, locate);
    return loc.data[0] ? loc.data : "data";
}

const char *mm_model_root(const char *override)
{
    if (override && *override) return override;
    const char *e = getenv("MELODIC_MODELS");
    if (e && *e) return e;
    pthread_once(&loc_once, locate);
    return loc.models;
}

const char *mm_path_join(char *buf, unsigned long size, const char *root_dir, const char *rel)
{
    if (rel[0] == '/' || !root_dir || !*root_dir) snprintf(buf, size, "%s", rel);
    else snprintf(buf, size, "%s/%s", root_dir, rel);
    return buf;
}

int mm_share_path(const char *rel, char *buf, size_t size, mm_err *err)
{
    pthread_once(&loc_once, locate);
    char tried[900] = "";
    size_t used = 0;
    char p[PATH_MAX + 64];
    for (int k = 0; k < 4; k++) {
        const char *e = getenv("MELODIC_SHARE");
        p[0] = 0;
        if (k == 0 && e && *e) snprintf(p, sizeof p, "%s/%s", e, rel);
        else if ((k == 1 || k == 2) && loc.prefix[k - 1][0]) snprintf(p, sizeof p, "%s/share/melodic/%s", loc.prefix[k - 1], rel);
        else if (k == 3 && loc.checkout[0]) snprintf(p, sizeof p, "%s/%s", loc.checkout, rel);
        if (!p[0]) continue;
        if (access(p, R_OK) == 0) {
            if (strlen(p) >= size) return mm_err_set(err, MM_EINVAL, "%s: path too long", p);
            memcpy(buf, p, strlen(p) + 1);
            return 0;
        }
        if (used < sizeof tried) used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", p);
    }
    return mm_err_set(err, MM_EIO, "%s: not found (tried %s; set MELODIC_SHARE to the folder holding it, or run `make install`)",
                      rel, used ? tried : "no candidate: MELODIC_SHARE unset and no installation or checkout found");
}

int mm_path_absolute(const char *path, char *buf, size_t size, mm_err *err)
{
    char tmp[PATH_MAX * 2];
    if (path[0] == '/') snprintf(tmp, sizeof tmp, "%s", path);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return mm_err_set(err, MM_EIO, "%s: cannot read the working directory", path);
        snprintf(tmp, sizeof tmp, "%s/%s", cwd, path);
    }
    /* segments, lexically: "" and "." dropped, ".." pops one */
    char out[PATH_MAX * 2];
    size_t o = 0;
    const char *s = tmp;
    while (*s) {
        while (*s == '/') s++;
        const char *e = s;
        while (*e && *e != '/') e++;
        size_t len = (size_t)(e - s);
        if (len == 0 || (len == 1 && s[0] == '.')) {
        } else if (len == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
        } else {
            if (o + 1 + len >= sizeof out) return mm_err_set(err, MM_EINVAL, "%s: path too long", path);
            out[o++] = '/';
            memcpy(out + o, s, len);
            o += len;
        }
        s = e;
    }
    if (o == 0) out[o++] = '/';
    out[o] = 0;
    if (o >= size) return mm_err_set(err, MM_EINVAL, "%s: path too long", path);
    memcpy(buf, out, o + 1);
    return 0;
}
