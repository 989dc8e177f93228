/* featset.c — registry of feature sets (weak symbols: a build lists the
 * modules it has). */
#include "features/featset.h"

#include <string.h>

#define WEAK __attribute__((weak))
extern const mm_featset_vt mm_featset_logmel_stats WEAK;
extern const mm_featset_vt mm_featset_mfcc_stats WEAK;
extern const mm_featset_vt mm_featset_speech_162 WEAK;
extern const mm_featset_vt mm_featset_music_paper WEAK;
extern const mm_featset_vt mm_featset_mn04_embedding WEAK;
extern const mm_featset_vt mm_featset_mn04_layers WEAK;
extern const mm_featset_vt mm_featset_cnn14_embedding WEAK;
extern const mm_featset_vt mm_featset_cnn14_16k_embedding WEAK;

const mm_featset_vt *const *mm_featset_list(void)
{
    static const mm_featset_vt *list[16];
    static int done;
    if (!done) {
        const mm_featset_vt *all[] = {&mm_featset_logmel_stats, &mm_featset_mfcc_stats,
                                      &mm_featset_speech_162, &mm_featset_music_paper,
                                      &mm_featset_mn04_embedding, &mm_featset_mn04_layers,
                                      &mm_featset_cnn14_embedding,
                                      &mm_featset_cnn14_16k_embedding};
        int k = 0;
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            if (all[i]) list[k++] = all[i];
        list[k] = NULL;
        done = 1;
    }
    return list;
}

const mm_featset_vt *mm_featset_find(const char *name)
{
    for (const mm_featset_vt *const *p = mm_featset_list(); *p; p++)
        if (!strcmp((*p)->name, name)) return *p;
    return NULL;
}
