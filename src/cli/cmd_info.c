/*
 * cmd_info.c - `prism info NAME`: everything known about one plugin, with
 * the checks the server would make (library present, opens, matches lock).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "loader.h"
#include "lockfile.h"

/* Where the plugin was found, and whether plugins.lock applies to it. */
typedef struct info_place {
    const prism_config *cfg;
    const char *group; /* the top-level name: the lock is keyed by it */
    int installed;     /* found in plugins_dir */
} info_place;

static void print_library(const prism_manifest *m, const char *indent)
{
    char err[512];
    const prism_plugin_t *desc = NULL;
    printf("%slibrary:     %s", indent, m->library ? m->library : "(none)");
    if (m->library == NULL || access(m->library, F_OK) != 0) {
        printf(" (missing: not built)\n");
        return;
    }
    void *dl = prism_plugin_open(m->library, &desc, err, sizeof err);
    if (dl == NULL) {
        printf(" (present, does not open: ");
        cli_put_text(err);
        printf(")\n");
        return;
    }
    printf(" (present, opens: %s %s)\n", desc->name, desc->version ? desc->version : "?");
    dlclose(dl);
}

static void print_lock(const info_place *place, const prism_manifest *m, const char *indent)
{
    char err[512];
    const char *sub = strcmp(m->name, place->group) == 0 ? NULL : m->name;
    printf("%slock:        ", indent);
    if (!place->installed)
        printf("not applicable (not installed with prism install)\n");
    else if (m->library == NULL)
        printf("no library\n");
    else if (prism_lock_verify(place->cfg->plugins_dir, place->group, sub, m->library, err, sizeof err) == 0)
        printf("sha256 matches plugins.lock\n");
    else
        printf("%s\n", err);
}

/* The library, ABI, lock status and permissions of one plugin. */
static void print_plugin(const info_place *place, const prism_manifest *m, const char *indent)
{
    printf("%sabi:         %d (this prism: %d)%s\n", indent, m->abi, PRISM_PLUGIN_ABI_VERSION,
           m->abi == PRISM_PLUGIN_ABI_VERSION ? "" : " MISMATCH");
    print_library(m, indent);
    print_lock(place, m, indent);
    cli_print_permissions(m, indent);
}

static void print_group(const info_place *place, const prism_manifest *m)
{
    printf("sub-plugins:\n");
    for (size_t i = 0; i < m->sub_count; i++) {
        printf("  %s %s\n", m->subs[i]->name, m->subs[i]->version);
        print_plugin(place, m->subs[i], "    ");
    }
    for (size_t i = 0; i < m->missing_count; i++)
        printf("  %s (listed in group.yml, no folder: skipped)\n", m->missing[i]);
    printf("chains:\n");
    for (size_t i = 0; i < m->chain_count; i++) {
        const prism_chain_conf *c = &m->chains[i];
        printf("  %s:%s:", m->name, c->name);
        for (size_t j = 0; j < c->step_count; j++)
            printf("%s %s", j > 0 ? " ->" : "", c->steps[j]);
        putchar('\n');
    }
}

static void print_info(const info_place *place, const prism_manifest *m, const char *where)
{
    printf("name:        %s\n", m->name);
    printf("version:     %s\n", m->version);
    printf("kind:        %s\n", m->is_group ? "group" : "plugin");
    printf("description: ");
    cli_put_text(m->description);
    printf("\nfolder:      %s (%s)\n", m->dir, where);
    printf("enabled:     %s\n", cli_config_enables(place->cfg, m->name) ? "yes" : "no");
    if (m->is_group)
        print_group(place, m);
    else
        print_plugin(place, m, "");
}

/* The search folder that holds `folder` (its parent), malloc'd. */
static char *parent_of(const char *folder)
{
    char *parent = strdup(folder);
    char *slash = parent ? strrchr(parent, '/') : NULL;
    if (slash != NULL)
        *slash = '\0';
    return parent;
}

static int show(const prism_config *cfg, const char *name)
{
    char err[1024];
    prism_manifest *m = NULL;
    char *folder = prism_plugin_find(cfg, name);
    if (folder == NULL) {
        fprintf(stderr, "prism: plugin %s not found (see prism list)\n", name);
        return CLI_ERROR;
    }
    int rc = CLI_ERROR;
    char *parent = parent_of(folder);
    if (prism_manifest_load(folder, &m, err, sizeof err) != 0) {
        fprintf(stderr, "prism: %s\n", err);
    } else {
        info_place place = {.cfg = cfg, .group = m->name, .installed = strcmp(parent, cfg->plugins_dir) == 0};
        print_info(&place, m, cli_where_label(cfg, parent));
        rc = CLI_OK;
    }
    prism_manifest_free(m);
    free(parent);
    free(folder);
    return rc;
}

static int run(const cli_args *args)
{
    cli_config c;
    if (!cli_valid_name(args->operand)) {
        fprintf(stderr, "prism info: invalid plugin name '%s' (expected [a-z0-9_]+)\n", args->operand);
        return CLI_USAGE;
    }
    if (cli_config_load_or_defaults(args, &c) != CLI_OK)
        return CLI_ERROR;
    int rc = show(c.cfg, args->operand);
    cli_config_release(&c);
    return rc;
}

const cli_command cli_cmd_info = {
    .name = "info",
    .summary = "show a plugin's manifest, library, permissions, chains and lock status",
    .usage = "usage: prism info NAME [--config FILE]\n"
             "\n"
             "Shows the plugin or meta-plugin NAME as the server would find it: its folder,\n"
             "version, ABI, library (present? opens?), permissions, sub-plugins (and those\n"
             "listed but missing), preset chains, and for an installed plugin whether each\n"
             "library still matches the sha256 approved in plugins.lock.\n"
             "\n"
             "options:\n"
             "  --config FILE    config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  -h, --help       this text\n",
    .options = CLI_OPT_CONFIG,
    .operand = "NAME",
    .run = run,
};
