/*
 * cmd_served.c - loading what a config would serve, for check and routes.
 *
 * The same calls the server makes at start, so a config that passes
 * `prism check` fails `prism serve` only on binding or runtime problems.
 */
#include <stdio.h>

#include "cli.h"

int cli_load_served(const prism_config *cfg, prism_registry **reg, prism_route_table **routes)
{
    char err[1024];
    *reg = NULL;
    *routes = NULL;
    if (prism_registry_load(cfg, reg, err, sizeof err) != 0) {
        fprintf(stderr, "prism: %s\n", err);
        return CLI_ERROR;
    }
    if (prism_routes_build(cfg, *reg, routes, err, sizeof err) != 0) {
        fprintf(stderr, "prism: %s\n", err);
        prism_registry_free(*reg);
        *reg = NULL;
        return CLI_ERROR;
    }
    return CLI_OK;
}
