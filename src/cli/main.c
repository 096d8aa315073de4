/*
 * main.c - the `prism` command: finds the sub-command and runs it.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "prism/plugin.h"

static const cli_command *const commands[] = {
    &cli_cmd_serve,   &cli_cmd_check,     &cli_cmd_routes, &cli_cmd_reload,
    &cli_cmd_install, &cli_cmd_uninstall, &cli_cmd_list,   &cli_cmd_info,
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void print_usage(FILE *out)
{
    fprintf(out, "usage: prism COMMAND [OPTIONS]\n\n"
                 "Prism serves routes made of plugin chains (an API server and AI gateway).\n\n"
                 "commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "  %-10s %s\n", "help", "this text, or `prism help COMMAND` for one command");
    fprintf(out, "\n"
                 "The config file is --config FILE, else $PRISM_CONFIG, else ./config.yml.\n"
                 "`prism COMMAND --help` shows a command's options.\n\n"
                 "exit codes:\n"
                 "  0  success\n"
                 "  1  error (config, plugin, build, I/O)\n"
                 "  2  usage error (unknown command or option, missing argument)\n"
                 "  3  install not approved\n");
}

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    }
    return NULL;
}

/* `prism help [COMMAND]`. */
static int run_help(int argc, char **argv)
{
    if (argc < 3) {
        print_usage(stdout);
        return CLI_OK;
    }
    const cli_command *cmd = find_command(argv[2]);
    if (cmd == NULL) {
        fprintf(stderr, "prism: unknown command '%s' (see prism --help)\n", argv[2]);
        return CLI_USAGE;
    }
    fputs(cmd->usage, stdout);
    return CLI_OK;
}

static int run_command(const cli_command *cmd, int argc, char **argv)
{
    cli_args args;
    switch (cli_parse_args(cmd, argc, argv, &args)) {
    case CLI_PARSE_HELP: fputs(cmd->usage, stdout); return CLI_OK;
    case CLI_PARSE_BAD: return CLI_USAGE;
    default: return cmd->run(&args);
    }
}

int main(int argc, char **argv)
{
    /* Commands log as text; `serve` switches to the config's format. */
    prism_log_configure(PRISM_LOG_INFO, 0, NULL);
    if (argc < 2) {
        print_usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0)
        return run_help(argc, argv);
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0 || strcmp(name, "version") == 0) {
        printf("prism %s (plugin ABI %d)\n", PRISM_VERSION, PRISM_PLUGIN_ABI_VERSION);
        return CLI_OK;
    }
    const cli_command *cmd = find_command(name);
    if (cmd == NULL) {
        fprintf(stderr, "prism: unknown %s '%s' (see prism --help)\n", name[0] == '-' ? "option" : "command", name);
        return CLI_USAGE;
    }
    return run_command(cmd, argc - 2, argv + 2);
}
