/* cli.h — subcommands of the melodic command line. Each returns the exit
 * status: 0 success, 1 failure (one-line error on stderr), 2 usage error. */
#ifndef MM_CLI_H
#define MM_CLI_H

#include <stddef.h>

#define MM_VERSION "0.1.0"

typedef struct mm_cli_cmd {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
} mm_cli_cmd;

const mm_cli_cmd *mm_cli_commands(size_t *n);

int mm_cmd_help(int argc, char **argv);

#endif
