/*
 * cmd_list.c - `prism list`: every plugin in the search folders.
 *
 * Folders are listed in the loader's search order, so the first line for a
 * name is the plugin `serve` would load; later ones are marked as shadowed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "loader.h"

/* The names listed so far, each with the label of the folder it came from. */
typedef struct seen_entry {
    char *name;
    const char *where;
} seen_entry;

typedef struct seen_names {
    seen_entry *items;
    size_t count;
} seen_names;

/* The label of the folder that already provides `name`, or NULL (and remembers it). */
static const char *shadowed_by(seen_names *seen, const char *name, const char *where)
{
    for (size_t i = 0; i < seen->count; i++) {
        if (strcmp(seen->items[i].name, name) == 0)
            return seen->items[i].where;
    }
    seen_entry *grown = realloc(seen->items, (seen->count + 1) * sizeof *grown);
    char *copy = grown != NULL ? strdup(name) : NULL;
    if (grown != NULL)
        seen->items = grown;
    if (copy == NULL)
        return NULL; /* out of memory: the shadow note is only a nicety */
    seen->items[seen->count++] = (seen_entry){.name = copy, .where = where};
    return NULL;
}

static int is_plugin_folder(const char *path)
{
    char *p = cli_join(path, "plugin.yml"), *g = cli_join(path, "group.yml");
    int yes = access(p, F_OK) == 0 || access(g, F_OK) == 0;
    free(p);
    free(g);
    return yes;
}

static void print_one(const prism_config *cfg, const char *path, const char *name, const char *where, seen_names *seen)
{
    char err[512];
    prism_manifest *m = NULL;
    const char *shadow = shadowed_by(seen, name, where);
    int ok = prism_manifest_load(path, &m, err, sizeof err) == 0;
    printf("%-20s %-10s %-7s %-10s %s", name, ok ? m->version : "?", ok ? (m->is_group ? "group" : "plugin") : "?",
           where, !shadow && cli_config_enables(cfg, name) ? "enabled" : "-");
    if (shadow != NULL)
        printf(" (shadowed by the %s one)", shadow);
    if (!ok) {
        fputs(" invalid: ", stdout);
        cli_put_text(err);
    }
    putchar('\n');
    prism_manifest_free(m);
}

static int not_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.'; /* also skips staging and set-aside folders */
}

/* Lists one search folder; returns how many plugins it holds. */
static size_t list_dir(const prism_config *cfg, const char *dir, seen_names *seen)
{
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, not_hidden, alphasort);
    size_t found = 0;
    for (int i = 0; i < n; i++) {
        char *path = cli_join(dir, entries[i]->d_name);
        if (is_plugin_folder(path)) {
            print_one(cfg, path, entries[i]->d_name, cli_where_label(cfg, dir), seen);
            found++;
        }
        free(path);
        free(entries[i]);
    }
    free(entries);
    return found;
}

static int run(const cli_args *args)
{
    cli_config c;
    if (cli_config_load_or_defaults(args, &c) != CLI_OK)
        return CLI_ERROR;
    const char **dirs = prism_plugin_search_dirs(c.cfg);
    seen_names seen = {0};
    size_t found = 0;
    printf("%-20s %-10s %-7s %-10s %s\n", "NAME", "VERSION", "KIND", "WHERE", "ENABLED");
    for (size_t i = 0; dirs != NULL && dirs[i] != NULL; i++)
        found += list_dir(c.cfg, dirs[i], &seen);
    if (found == 0) {
        printf("(no plugins in:");
        for (size_t i = 0; dirs != NULL && dirs[i] != NULL; i++)
            printf(" %s", dirs[i]);
        printf(")\n");
    }
    for (size_t i = 0; i < seen.count; i++)
        free(seen.items[i].name);
    free(seen.items);
    free(dirs);
    cli_config_release(&c);
    return CLI_OK;
}

const cli_command cli_cmd_list = {
    .name = "list",
    .summary = "list the plugins found in the search folders",
    .usage = "usage: prism list [--config FILE]\n"
             "\n"
             "One line per plugin or meta-plugin found, in search order: the config's\n"
             "plugins.dir (installed), plugins.paths (path), then the bundled plugins.\n"
             "A name found again in a later folder is marked as shadowed.\n"
             "\n"
             "options:\n"
             "  --config FILE    config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  -h, --help       this text\n",
    .options = CLI_OPT_CONFIG,
    .operand = NULL,
    .run = run,
};
