/*
 * cmd_routes.c - `prism routes`: the route table a config would serve.
 */
#include <stdio.h>

#include "cli.h"

static int run(const cli_args *args)
{
    prism_config *cfg = NULL;
    prism_registry *reg = NULL;
    prism_route_table *routes = NULL;
    if (cli_config_load(args, &cfg) != CLI_OK)
        return CLI_ERROR;
    int rc = cli_load_served(cfg, &reg, &routes);
    if (rc == CLI_OK) {
        prism_routes_print(routes, stdout);
        prism_routes_free(routes);
        prism_registry_free(reg);
    }
    prism_config_free(cfg);
    return rc;
}

const cli_command cli_cmd_routes = {
    .name = "routes",
    .summary = "print the route table of the config",
    .usage = "usage: prism routes [--config FILE]\n"
             "\n"
             "Loads the config and its enabled plugins and prints one line per route:\n"
             "its method and full path, the chain as written and the plugins it runs.\n"
             "\n"
             "options:\n"
             "  --config FILE    config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  -h, --help       this text\n",
    .options = CLI_OPT_CONFIG,
    .operand = NULL,
    .run = run,
};
