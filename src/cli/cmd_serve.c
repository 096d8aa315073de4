/*
 * cmd_serve.c - `prism serve`: load the config, apply overrides, serve.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "server.h"

#define MAX_WORKERS 256

/* --workers N: a whole number in 0..MAX_WORKERS (0: one per core). */
static int parse_workers(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < 0 || n > MAX_WORKERS)
        return -1;
    *out = (int)n;
    return 0;
}

static int apply_overrides(const cli_args *args, prism_config *cfg)
{
    char err[512];
    int workers;
    if (args->listen != NULL && prism_config_set_listen(cfg, args->listen, err, sizeof err) != 0) {
        fprintf(stderr, "prism: --listen: %s\n", err);
        return -1;
    }
    if (args->workers != NULL && parse_workers(args->workers, &workers) != 0) {
        fprintf(stderr, "prism: --workers: expected a number from 0 to %d, got '%s'\n", MAX_WORKERS, args->workers);
        return -1;
    }
    if (args->workers != NULL)
        cfg->workers = workers;
    return 0;
}

static int run(const cli_args *args)
{
    prism_config *cfg = NULL;
    char err[1024];
    if (cli_config_load(args, &cfg) != CLI_OK)
        return CLI_ERROR;
    if (apply_overrides(args, cfg) != 0) {
        prism_config_free(cfg);
        return CLI_USAGE;
    }
    /* prism_serve owns cfg from here on, whatever it returns. */
    if (prism_serve(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "prism: %s\n", err);
        return CLI_ERROR;
    }
    return CLI_OK;
}

const cli_command cli_cmd_serve = {
    .name = "serve",
    .summary = "serve the routes of the config until SIGINT or SIGTERM",
    .usage = "usage: prism serve [--config FILE] [--listen HOST:PORT] [--workers N]\n"
             "\n"
             "Loads the config and its enabled plugins, binds the listeners and serves until\n"
             "SIGINT or SIGTERM, then drains in-flight requests.\n"
             "\n"
             "options:\n"
             "  --config FILE        config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  --listen HOST:PORT   overrides server.listen ([v6]:PORT for IPv6)\n"
             "  --workers N          overrides server.workers (0..256, 0: one per core)\n"
             "  -h, --help           this text\n",
    .options = CLI_OPT_CONFIG | CLI_OPT_LISTEN | CLI_OPT_WORKERS,
    .operand = NULL,
    .run = run,
};
