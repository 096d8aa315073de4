/*
 * cmd_check.c - `prism check`: load everything `serve` would, say what it
 * would serve, bind nothing.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_server(const prism_config *cfg)
{
    int v6 = strchr(cfg->listen_host, ':') != NULL;
    printf("config:       %s\n", cfg->file);
    printf("listen:       %s%s%s:%d\n", v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", cfg->listen_port);
    if (cfg->workers == 0)
        printf("workers:      one per core\n");
    else
        printf("workers:      %d\n", cfg->workers);
    printf("api prefix:   %s\n", cfg->api_prefix);
    /* The count only: keys are secrets and check output ends up in logs and tickets. */
    if (cfg->api_key_count > 0)
        printf("gateway keys: %zu configured\n", cfg->api_key_count);
    else
        printf("gateway keys: none (requests are not authenticated)\n");
    printf("plugins dir:  %s\n", cfg->plugins_dir);
}

static void print_plugins(const prism_registry *reg)
{
    size_t n = prism_registry_count(reg);
    printf("\nplugins loaded (%zu):\n", n);
    printf("  %-20s %-10s %-14s %s\n", "NAME", "VERSION", "GROUP", "FOLDER");
    for (size_t i = 0; i < n; i++) {
        const prism_loaded *p = prism_registry_at(reg, i);
        printf("  %-20s %-10s %-14s %s\n", p->name, p->desc->version ? p->desc->version : "?",
               p->group ? p->group : "-", p->manifest ? p->manifest->dir : "?");
    }
}

static int run(const cli_args *args)
{
    prism_config *cfg = NULL;
    prism_registry *reg = NULL;
    prism_route_table *routes = NULL;
    if (cli_config_load(args, &cfg) != CLI_OK)
        return CLI_ERROR;
    int rc = cli_load_served(cfg, &reg, &routes);
    if (rc == CLI_OK) {
        print_server(cfg);
        print_plugins(reg);
        printf("\nroutes (%zu):\n", prism_routes_count(routes));
        prism_routes_print(routes, stdout);
        printf("\nok: %s can be served\n", cfg->file);
        prism_routes_free(routes);
        prism_registry_free(reg);
    }
    prism_config_free(cfg);
    return rc;
}

const cli_command cli_cmd_check = {
    .name = "check",
    .summary = "validate the config, load its plugins and show what would be served",
    .usage = "usage: prism check [--config FILE]\n"
             "\n"
             "Loads the config, every enabled plugin and the route table exactly as `serve`\n"
             "does, without binding anything. On success prints the listen address, workers,\n"
             "API prefix, whether gateway keys are set (never the keys), the loaded plugins\n"
             "and the routes; on error prints \"file:line: message\" and exits 1.\n"
             "\n"
             "options:\n"
             "  --config FILE    config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  -h, --help       this text\n",
    .options = CLI_OPT_CONFIG,
    .operand = NULL,
    .run = run,
};
