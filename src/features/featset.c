/* featset.c — registry of feature sets: a constant table, so a static link
 * pulls in exactly the modules listed (no weak symbols, no --whole-archive)
 * and lookups are thread-safe without initialisation. */
#include "features/featset.h"

#include <string.h>

extern const mm_featset_vt mm_featset_logmel_stats;
extern const mm_featset_vt mm_featset_mfcc_stats;
extern const mm_featset_vt mm_featset_speech_162;
extern const mm_featset_vt mm_featset_music_paper;
extern const mm_featset_vt mm_featset_mn04_embedding;
extern const mm_featset_vt mm_featset_mn04_layers;
extern const mm_featset_vt mm_featset_cnn14_embedding;
extern const mm_featset_vt mm_featset_cnn14_16k_embedding;

static const mm_featset_vt *const FEATSETS[] = {
    &mm_featset_logmel_stats, &mm_featset_mfcc_stats, &mm_featset_speech_162,
    &mm_featset_music_paper, &mm_featset_mn04_embedding, &mm_featset_mn04_layers,
    &mm_featset_cnn14_embedding, &mm_featset_cnn14_16k_embedding, NULL,
};

const mm_featset_vt *const *mm_featset_list(void)
{
    return FEATSETS;
}

const mm_featset_vt *mm_featset_find(const char *name)
{
    for (const mm_featset_vt *const *p = mm_featset_list(); *p; p++)
        if (!strcmp((*p)->name, name)) return *p;
    return NULL;
}
