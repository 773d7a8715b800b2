/* args.h: long-option parsing shared by the subcommands. Options are `--name value` or
 * `--name=value`; `--` ends options. Errors are printed as "forge CMD: ..." and return -1. */
#ifndef FORGE_CLI_ARGS_H
#define FORGE_CLI_ARGS_H

typedef enum { OPT_STR, OPT_INT, OPT_DOUBLE, OPT_FLAG, OPT_STR_LIST } opt_kind;

typedef struct cli_strlist {
    const char **items;
    int n;
} cli_strlist;

typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    opt_kind kind;
    void *dest;       /* const char **, long *, double *, int * (flag), cli_strlist * */
    const char *help; /* "VALUE: what it does" */
} cli_opt;

/* Parses argv[1..argc); positional arguments are stored in pos (at most max_pos).
 * Returns the number of positionals, or -1 after printing an error. */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int n_opts,
              const char **pos, int max_pos);
void cli_usage(const char *cmd, const char *synopsis, const cli_opt *opts, int n_opts);
void cli_strlist_free(cli_strlist *l);

#endif
