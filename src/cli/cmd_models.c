/* cmd_models.c — `melodic models`: the learners and feature sets in this
 * build; `--params NAME|all` lists a learner's hyperparameters from its
 * table (learn/params.h), `--markdown` as the README's tables. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/util.h"
#include "features/featset.h"
#include "learn/learner.h"
#include "learn/params.h"

static const char *usage =
    "usage: melodic models [--params NAME|all] [--markdown]\n"
    "\n"
    "Lists the learners (for 'models:' in experiments and --model in train)\n"
    "and the feature sets (for 'features:' and --features).\n"
    "  --params NAME  the hyperparameters of learner NAME (or of all learners):\n"
    "                 key, type, range, default and meaning\n"
    "  --markdown     --params as Markdown tables (the README's list)\n";

/* One learner's table, as aligned text or a Markdown table. */
static void print_params(const mm_learner_vt *vt, int markdown)
{
    mm_param_ref rows[MM_PARAM_MAX_ROWS];
    size_t n = vt->params ? mm_params_rows(vt->params, rows, MM_PARAM_MAX_ROWS) : 0;
    if (markdown) printf("**`%s`** — %s\n\n| key | type | range | default | meaning |\n|---|---|---|---|---|\n", vt->name,
                         vt->summary ? vt->summary : "");
    else printf("%s: %s\n", vt->name, vt->summary ? vt->summary : "");
    for (size_t i = 0; i < n; i++) {
        char type[32], range[256], def[128];
        mm_param_text(rows[i].row, type, sizeof type, range, sizeof range, def, sizeof def);
        if (markdown) printf("| `%s` | %s | %s | `%s` | %s |\n", rows[i].row->name, type, range, def, rows[i].row->help);
        else printf("  %-22s %-7s %-40s %-12s %s\n", rows[i].row->name, type, range, def, rows[i].row->help);
    }
    if (!n) puts(markdown ? "| | | | | (no parameters) |" : "  (no parameters)");
    putchar('\n');
}

int mm_cmd_models(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"params", required_argument, NULL, 'p'},
        {"markdown", no_argument, NULL, 'm'}, {NULL, 0, NULL, 0},
    };
    const char *which = NULL;
    int markdown = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return 0;
        case 'p': which = optarg; break;
        case 'm': markdown = 1; break;
        default:
            if (optopt == 'p') return mm_cli_usage("models", "--params expects a learner name or 'all'");
            return mm_cli_usage("models", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return mm_cli_usage("models", "unexpected argument '%s'", argv[optind]);
    if (markdown && !which) return mm_cli_usage("models", "--markdown goes with --params NAME|all");
    if (which) {
        int all = !strcmp(which, "all");
        const mm_learner_vt *vt = all ? NULL : mm_learner_find(which);
        if (!all && !vt) return mm_cli_usage("models", "unknown learner '%s' (see 'melodic models')", which);
        for (const mm_learner_vt *const *p = mm_learner_list(); *p; p++)
            if (all || *p == vt) print_params(*p, markdown);
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
