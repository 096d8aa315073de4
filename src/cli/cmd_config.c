/*
 * cmd_config.c - which config file a command uses, and the defaults used by
 * the plugin-management commands when there is none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef PRISM_BUNDLED_PLUGIN_DIR
#error "PRISM_BUNDLED_PLUGIN_DIR must name the folder of the bundled plugins"
#endif

/* --config, else $PRISM_CONFIG, else ./config.yml; *named tells whether the
 * user named a file (then a missing file is an error, never a default). */
static const char *config_path(const cli_args *args, int *named)
{
    const char *env = getenv("PRISM_CONFIG");
    *named = 1;
    if (args->config != NULL)
        return args->config;
    if (env != NULL && env[0] != '\0')
        return env;
    *named = 0;
    return "config.yml";
}

int cli_config_load(const cli_args *args, prism_config **out)
{
    char err[512];
    int named;
    if (prism_config_load(config_path(args, &named), out, err, sizeof err) != 0) {
        fprintf(stderr, "prism: %s\n", err);
        return CLI_ERROR;
    }
    return CLI_OK;
}

/* The configuration of a folder with no config.yml: plugins in ./.prism/plugins. */
static prism_config *default_config(void)
{
    prism_config *cfg = calloc(1, sizeof *cfg);
    char *cwd = getcwd(NULL, 0);
    if (cfg == NULL || cwd == NULL) {
        free(cfg);
        free(cwd);
        return NULL;
    }
    cfg->dir = cwd;
    cfg->plugins_dir = cli_join(cwd, ".prism/plugins");
    return cfg;
}

int cli_config_load_or_defaults(const cli_args *args, cli_config *out)
{
    int named;
    const char *path = config_path(args, &named);
    out->synthetic = 0;
    if (named || access(path, F_OK) == 0 || errno != ENOENT)
        return cli_config_load(args, &out->cfg);
    out->cfg = default_config();
    if (out->cfg == NULL) {
        fprintf(stderr, "prism: cannot determine the current folder: %s\n", strerror(errno));
        return CLI_ERROR;
    }
    out->synthetic = 1;
    return CLI_OK;
}

void cli_config_release(cli_config *c)
{
    if (c->cfg == NULL)
        return;
    if (!c->synthetic) {
        prism_config_free(c->cfg);
    } else {
        free(c->cfg->dir);
        free(c->cfg->plugins_dir);
        free(c->cfg);
    }
    c->cfg = NULL;
}

int cli_config_enables(const prism_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->enabled_count; i++) {
        if (strcmp(cfg->enabled[i], name) == 0)
            return 1;
    }
    return 0;
}

const char *cli_where_label(const prism_config *cfg, const char *search_dir)
{
    if (strcmp(search_dir, cfg->plugins_dir) == 0)
        return "installed";
    /* The loader lets the environment replace the bundled folder: so do we. */
    const char *bundled = getenv("PRISM_BUNDLED_PLUGIN_DIR");
    if (strcmp(search_dir, bundled != NULL ? bundled : PRISM_BUNDLED_PLUGIN_DIR) == 0)
        return "bundled";
    return "path";
}
