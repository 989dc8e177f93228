/* cmd_models.c — `melodic models`: the learners and feature sets in this build. */
#include <stdio.h>

#include "cli/util.h"
#include "features/featset.h"
#include "learn/learner.h"

int mm_cmd_models(int argc, char **argv)
{
    if (argc > 1 && mm_cli_is_help(argv[1])) {
        puts("usage: melodic models\n\nLists the learners (for 'models:' in experiments and --model in train)\nand the feature sets (for 'features:' and --features).");
        return 0;
    }
    puts("learners:");
    for (const mm_learner_vt *const *p = mm_learner_list(); *p; p++)
        printf("  %-10s %s\n", (*p)->name, (*p)->summary ? (*p)->summary : "");
    puts("feature sets:");
    for (const mm_featset_vt *const *p = mm_featset_list(); *p; p++)
        printf("  %-20s %s\n", (*p)->name, (*p)->summary ? (*p)->summary : "");
    return 0;
}
