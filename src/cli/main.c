/* main.c — `melodic <command> [options]`, git-style dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const mm_cli_cmd commands[] = {
    {"help", "show commands, or help on one command", mm_cmd_help},
};

const mm_cli_cmd *mm_cli_commands(size_t *n)
{
    *n = sizeof commands / sizeof *commands;
    return commands;
}

int main(int argc, char **argv)
{
    if (argc < 2) return mm_cmd_help(0, NULL);
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("melodic %s\n", MM_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return mm_cmd_help(0, NULL);
    size_t n;
    const mm_cli_cmd *cmds = mm_cli_commands(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "melodic: unknown command '%s' (see 'melodic help')\n", argv[1]);
    return 2;
}
