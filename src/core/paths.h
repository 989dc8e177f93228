/* paths.h — where data and pretrained weights live.
 *
 * Data root: $MELODIC_DATA, else ../shared/data when it exists, else ./data.
 * Model root: $MELODIC_MODELS, else ../shared/models when it exists, else ./models.
 * Configs may override both (keys data_root / model_root), which callers pass
 * as `override` (NULL for none). Returned strings are static or the override.
 */
#ifndef MM_PATHS_H
#define MM_PATHS_H

const char *mm_data_root(const char *override);
const char *mm_model_root(const char *override);
/* Join root and a relative path into buf (absolute rel paths are kept). */
const char *mm_path_join(char *buf, unsigned long size, const char *root, const char *rel);

#endif
