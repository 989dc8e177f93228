/* cmd_help.c — the command table and `melodic help [COMMAND]`.
 * Subcommands live one per file in src/cli/cmd_<name>.c and are listed in
 * the constant table below (no weak symbols: a static link pulls in every
 * command named). main.c dispatches through this table (main → help, never
 * back). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int mm_cmd_extract(int, char **);
int mm_cmd_spectrogram(int, char **);
int mm_cmd_train(int, char **);
int mm_cmd_predict(int, char **);
int mm_cmd_run(int, char **);
int mm_cmd_tsne(int, char **);
int mm_cmd_embed(int, char **);
int mm_cmd_tag(int, char **);
int mm_cmd_export(int, char **);
int mm_cmd_classify(int, char **);
int mm_cmd_index(int, char **);
int mm_cmd_recommend(int, char **);
int mm_cmd_serve(int, char **);
int mm_cmd_merge(int, char **);
int mm_cmd_models(int, char **);

static const mm_cli_cmd COMMANDS[] = {
    {"extract", "audio files or a dataset → HDF5 feature table", mm_cmd_extract},
    {"spectrogram", "one file → its log-mel matrix (HDF5)", mm_cmd_spectrogram},
    {"train", "train a model on a feature table", mm_cmd_train},
    {"predict", "apply a trained model to a feature table", mm_cmd_predict},
    {"run", "run an experiment from a YAML config", mm_cmd_run},
    {"tsne", "t-SNE of a feature table", mm_cmd_tsne},
    {"embed", "pretrained embeddings (mn04, cnn14) of audio files", mm_cmd_embed},
    {"tag", "top AudioSet classes of audio files", mm_cmd_tag},
    {"export", "export a trained model bundle for the runtime", mm_cmd_export},
    {"classify", "classify audio files with a model bundle", mm_cmd_classify},
    {"index", "index a music library with a music bundle", mm_cmd_index},
    {"recommend", "voice → emotion → playlist", mm_cmd_recommend},
    {"serve", "HTTP server and web page", mm_cmd_serve},
    {"merge", "merge sharded outputs", mm_cmd_merge},
    {"models", "list learners and feature sets", mm_cmd_models},
    {"help", "show commands, or help on one command", mm_cmd_help},
};

const mm_cli_cmd *mm_cli_commands(size_t *n)
{
    *n = sizeof COMMANDS / sizeof *COMMANDS;
    return COMMANDS;
}


int mm_cmd_help(int argc, char **argv)
{
    size_t n;
    const mm_cli_cmd *cmds = mm_cli_commands(&n);
    if (argc >= 2) {
        for (size_t i = 0; i < n; i++)
            if (!strcmp(argv[1], cmds[i].name)) {
                char *args[] = {argv[1], "--help", NULL};
                return cmds[i].fn(2, args);
            }
        fprintf(stderr, "melodic help: unknown command '%s'\n", argv[1]);
        return 2;
    }
    printf("usage: melodic <command> [options]   (melodic <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < n; i++) printf("  %-12s %s\n", cmds[i].name, cmds[i].summary);
    printf("\nmelodic --version prints the version.\n");
    return 0;
}
