/* paths.c — see paths.h. */
#include "core/paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *root(const char *override, const char *env, const char *shared, const char *local)
{
    if (override && *override) return override;
    const char *e = getenv(env);
    if (e && *e) return e;
    if (access(shared, R_OK | X_OK) == 0) return shared;
    return local;
}

const char *mm_data_root(const char *override)
{
    return root(override, "MELODIC_DATA", "../shared/data", "data");
}

const char *mm_model_root(const char *override)
{
    return root(override, "MELODIC_MODELS", "../shared/models", "models");
}

const char *mm_path_join(char *buf, unsigned long size, const char *root_dir, const char *rel)
{
    if (rel[0] == '/' || !root_dir || !*root_dir) snprintf(buf, size, "%s", rel);
    else snprintf(buf, size, "%s/%s", root_dir, rel);
    return buf;
}
