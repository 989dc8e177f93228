/* cmd_help.c — `melodic help [COMMAND]`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

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
