/*
 * cmd_args.c - option parsing shared by every command.
 *
 * Options are few and shared (--config means the same everywhere), so one
 * table describes them all and each command only says which it accepts.
 * Both "--opt VALUE" and "--opt=VALUE" are understood; "--" ends options.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct option_spec {
    const char *name;       /* without the leading dashes */
    char short_name;        /* 0 when there is none */
    unsigned bit;           /* CLI_OPT_* */
    const char *value_name; /* NULL for a flag */
} option_spec;

static const option_spec options[] = {
    {"config", 0, CLI_OPT_CONFIG, "FILE"},
    {"listen", 0, CLI_OPT_LISTEN, "HOST:PORT"},
    {"workers", 0, CLI_OPT_WORKERS, "N"},
    {"yes", 'y', CLI_OPT_YES, NULL},
};

/* The option an argument names ("--config", "--config=x", "-y"), or NULL. */
static const option_spec *find_option(const char *arg)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const option_spec *o = &options[i];
        size_t n = strlen(o->name);
        if (arg[1] == '-' && strncmp(arg + 2, o->name, n) == 0 && (arg[2 + n] == '\0' || arg[2 + n] == '='))
            return o;
        if (arg[1] == o->short_name && arg[1] != '\0' && arg[2] == '\0')
            return o;
    }
    return NULL;
}

static void store(cli_args *out, unsigned bit, const char *value)
{
    if (bit == CLI_OPT_CONFIG)
        out->config = value;
    else if (bit == CLI_OPT_LISTEN)
        out->listen = value;
    else if (bit == CLI_OPT_WORKERS)
        out->workers = value;
    else if (bit == CLI_OPT_YES)
        out->yes = 1;
}

static int bad(const cli_command *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "prism %s: %s '%s' (see prism %s --help)\n", cmd->name, what, arg, cmd->name);
    return CLI_PARSE_BAD;
}

/* Handles the option at argv[*i], consuming its value; CLI_PARSE_RUN when fine. */
static int take_option(const cli_command *cmd, int argc, char **argv, int *i, cli_args *out)
{
    const char *arg = argv[*i];
    const option_spec *o = find_option(arg);
    if (o == NULL || !(cmd->options & o->bit))
        return bad(cmd, "unknown option", arg);
    const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
    if (o->value_name == NULL) {
        if (eq != NULL)
            return bad(cmd, "option takes no value", arg);
        store(out, o->bit, NULL);
        return CLI_PARSE_RUN;
    }
    if (eq != NULL) {
        store(out, o->bit, eq + 1);
        return CLI_PARSE_RUN;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "prism %s: option '%s' needs a value %s (see prism %s --help)\n", cmd->name, arg, o->value_name,
                cmd->name);
        return CLI_PARSE_BAD;
    }
    store(out, o->bit, argv[++*i]);
    return CLI_PARSE_RUN;
}

static int take_operand(const cli_command *cmd, const char *arg, cli_args *out)
{
    if (cmd->operand == NULL || out->operand != NULL)
        return bad(cmd, "unexpected argument", arg);
    out->operand = arg;
    return CLI_PARSE_RUN;
}

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int cli_parse_args(const cli_command *cmd, int argc, char **argv, cli_args *out)
{
    memset(out, 0, sizeof *out);
    int options_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int is_option = !options_done && arg[0] == '-' && arg[1] != '\0';
        if (is_option && is_help(arg))
            return CLI_PARSE_HELP;
        if (is_option && strcmp(arg, "--") == 0) {
            options_done = 1;
            continue;
        }
        int rc = is_option ? take_option(cmd, argc, argv, &i, out) : take_operand(cmd, arg, out);
        if (rc != CLI_PARSE_RUN)
            return rc;
    }
    if (cmd->operand != NULL && out->operand == NULL) {
        fprintf(stderr, "prism %s: missing %s (see prism %s --help)\n", cmd->name, cmd->operand, cmd->name);
        return CLI_PARSE_BAD;
    }
    return CLI_PARSE_RUN;
}
