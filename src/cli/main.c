/* main.c — `melodic <command> [options]`, git-style dispatch over the
 * command table (mm_cli_commands, cmd_help.c). Without a command: the help,
 * exit status 2. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    if (argc < 2) {   /* a usage error: the help, and status 2 */
        mm_cmd_help(0, NULL);
        return 2;
    }
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
