/* paths.h — where data, pretrained weights and installed files live, from
 * any working directory.
 *
 * "The checkout" is the source tree the running code was built in: the
 * first folder above the executable (or above libmelodic.so, for programs
 * linking it) that holds Makefile and src/melodic.h. "The installation" is
 * the folder above the executable's or library's own folder (PREFIX for
 * PREFIX/bin/melodic and PREFIX/lib/libmelodic.so); `make install` puts the
 * files the commands need under PREFIX/share/melodic.
 *
 * Data root: $MELODIC_DATA, else ../shared/data from the working directory
 * when it exists (as before, so cached feature tables keep their keys), else
 * <checkout>/../shared/data, else ./data.
 * Model root: $MELODIC_MODELS, else <checkout>/../shared/models, else
 * PREFIX/share/melodic/models when it exists; never the working directory.
 * With none found it is the first of those candidates (absolute), so that
 * errors name a real place to put the weights.
 * Configs may override both (keys data_root / model_root), which callers pass
 * as `override` (NULL for none). Returned strings are static (computed once,
 * thread-safe) or the override.
 */
#ifndef MM_PATHS_H
#define MM_PATHS_H

#include <stddef.h>
#include "core/err.h"

const char *mm_data_root(const char *override);
const char *mm_model_root(const char *override);
/* Join root and a relative path into buf (absolute rel paths are kept). */
const char *mm_path_join(char *buf, unsigned long size, const char *root, const char *rel);

/* Find an installed file by its path in the source tree (e.g.
 * "configs/recommend/default.yaml"): $MELODIC_SHARE/rel, else
 * PREFIX/share/melodic/rel, else <checkout>/rel — never the working
 * directory. Writes the first readable one into buf and returns 0; else
 * MM_EIO with a message naming rel and every path tried. */
int mm_share_path(const char *rel, char *buf, size_t size, mm_err *err);

/* The checkout holding the running code, or NULL when there is none (an
 * installed binary). Static string. */
const char *mm_checkout_dir(void);

/* Make a path absolute against the working directory without touching the
 * file system beyond getcwd ("." and ".." segments and repeated slashes
 * removed lexically). 0, or MM_EINVAL when it does not fit in size. */
int mm_path_absolute(const char *path, char *buf, size_t size, mm_err *err);

#endif
