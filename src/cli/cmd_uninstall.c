/*
 * cmd_uninstall.c - `prism uninstall NAME`: remove an installed plugin and
 * its plugins.lock entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli.h"
#include "loader.h"
#include "lockfile.h"

/* Drops NAME from plugins.lock (being absent is fine: nothing to forget). */
static int forget(const char *plugins_dir, const char *name, char *err, size_t errlen)
{
    cJSON *lock = NULL;
    if (prism_lock_load(plugins_dir, &lock, err, errlen) != 0)
        return -1;
    int rc = 0;
    if (prism_lock_remove(lock, name) == 0)
        rc = prism_lock_save(plugins_dir, lock, err, errlen);
    cJSON_Delete(lock);
    return rc;
}

/* The folder goes aside first (one rename), then the lock entry, then the
 * files: an interrupted uninstall never leaves a half-deleted plugin under
 * its name. */
static int uninstall(const char *plugins_dir, const char *name, char *err, size_t errlen)
{
    char *target = cli_join(plugins_dir, name);
    struct stat st;
    int installed = lstat(target, &st) == 0 && S_ISDIR(st.st_mode);
    free(target);
    if (!installed) {
        snprintf(err, errlen, "%s is not installed in %s", name, plugins_dir);
        return -1;
    }
    char *old = cli_move_aside(plugins_dir, name, err, errlen);
    if (old == NULL)
        return -1;
    int rc = forget(plugins_dir, name, err, errlen);
    if (rc != 0) {
        target = cli_join(plugins_dir, name);
        rename(old, target); /* keep the plugin usable: its lock entry is still there */
        free(target);
    } else if (cli_remove_tree(old, err, errlen) != 0) {
        fprintf(stderr, "prism: warning: could not remove all of %s: %s\n", old, err);
    }
    free(old);
    return rc;
}

/* The config may still name the plugin: say what `serve` will do about it. */
static void warn_still_enabled(const prism_config *cfg, const char *name)
{
    char *other = prism_plugin_find(cfg, name);
    if (other != NULL)
        fprintf(stderr, "prism: note: %s still enables %s; serve will now load the one in %s\n", cfg->file, name,
                other);
    else
        fprintf(stderr,
                "prism: warning: %s still enables %s, which is no longer found: remove it from "
                "plugins.enabled or serve will fail\n",
                cfg->file, name);
    free(other);
}

static int run(const cli_args *args)
{
    char err[1024];
    cli_config c;
    if (!cli_valid_name(args->operand)) {
        fprintf(stderr, "prism uninstall: invalid plugin name '%s' (expected [a-z0-9_]+)\n", args->operand);
        return CLI_USAGE;
    }
    if (cli_config_load_or_defaults(args, &c) != CLI_OK)
        return CLI_ERROR;
    int rc = CLI_OK;
    if (uninstall(c.cfg->plugins_dir, args->operand, err, sizeof err) != 0) {
        fprintf(stderr, "prism: %s\n", err);
        rc = CLI_ERROR;
    } else {
        printf("uninstalled %s from %s\n", args->operand, c.cfg->plugins_dir);
        if (cli_config_enables(c.cfg, args->operand))
            warn_still_enabled(c.cfg, args->operand);
    }
    cli_config_release(&c);
    return rc;
}

const cli_command cli_cmd_uninstall = {
    .name = "uninstall",
    .summary = "remove an installed plugin and its plugins.lock entry",
    .usage = "usage: prism uninstall NAME [--config FILE]\n"
             "\n"
             "Removes <plugins.dir>/NAME (installed with `prism install`) and its entry in\n"
             "plugins.lock. Bundled plugins and plugins.paths folders are never touched.\n"
             "\n"
             "options:\n"
             "  --config FILE    config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  -h, --help       this text\n"
             "\n"
             "exit codes: 0 removed, 1 not installed or error, 2 usage error\n",
    .options = CLI_OPT_CONFIG,
    .operand = "NAME",
    .run = run,
};
