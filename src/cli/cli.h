/*
 * cli.h - what the files of the `prism` command share.
 *
 * main.c parses a command's options against the table its command file
 * declares, then calls its `run`. Command code may print (it is the user
 * interface): results to stdout, one-line errors to stderr.
 */
#ifndef PRISM_CLI_H
#define PRISM_CLI_H

#include <stddef.h>

#include "chain.h"
#include "config.h"
#include "manifest.h"

/* Exit codes, documented in `prism --help`. */
enum {
    CLI_OK = 0,
    CLI_ERROR = 1,   /* config, plugin, build, I/O */
    CLI_USAGE = 2,   /* unknown command or option, missing argument */
    CLI_REFUSED = 3, /* install not approved */
};

/* Options a command may accept (a bit mask in cli_command.options). */
enum {
    CLI_OPT_CONFIG = 1 << 0,  /* --config FILE */
    CLI_OPT_LISTEN = 1 << 1,  /* --listen HOST:PORT */
    CLI_OPT_WORKERS = 1 << 2, /* --workers N */
    CLI_OPT_YES = 1 << 3,     /* --yes, -y */
};

typedef struct cli_args {
    const char *config;  /* --config, or NULL */
    const char *listen;  /* --listen, or NULL */
    const char *workers; /* --workers, unparsed, or NULL */
    int yes;             /* --yes */
    const char *operand; /* the one positional argument (PATH, NAME), or NULL */
} cli_args;

typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `prism --help` */
    const char *usage;   /* the full text printed by `prism CMD --help` */
    unsigned options;    /* CLI_OPT_* accepted */
    const char *operand; /* name of the required positional argument, or NULL for none */
    int (*run)(const cli_args *args);
} cli_command;

extern const cli_command cli_cmd_serve;
extern const cli_command cli_cmd_check;
extern const cli_command cli_cmd_routes;
extern const cli_command cli_cmd_install;
extern const cli_command cli_cmd_uninstall;
extern const cli_command cli_cmd_list;
extern const cli_command cli_cmd_info;
extern const cli_command cli_cmd_reload;

/* ---- cmd_args.c ---- */

/* What parsing decided. */
enum { CLI_PARSE_RUN, CLI_PARSE_HELP, CLI_PARSE_BAD };
/* Parses argv (after the command name) into *out. CLI_PARSE_BAD has already
 * printed the problem and a hint to stderr. */
int cli_parse_args(const cli_command *cmd, int argc, char **argv, cli_args *out);

/* ---- cmd_config.c ---- */

/* A configuration as the command sees it. `synthetic` marks the defaults used
 * when there is no config file: built here, freed by cli_config_release. */
typedef struct cli_config {
    prism_config *cfg;
    int synthetic;
} cli_config;

/* Loads the config a command names (--config, else $PRISM_CONFIG, else
 * ./config.yml). Prints the error; returns CLI_OK or CLI_ERROR. */
int cli_config_load(const cli_args *args, prism_config **out);
/* Same, but when the default ./config.yml does not exist, defaults with
 * plugins_dir ./.prism/plugins (for install, uninstall, list, info). */
int cli_config_load_or_defaults(const cli_args *args, cli_config *out);
void cli_config_release(cli_config *c);
/* "installed" (plugins.dir), "bundled" or "path" (plugins.paths) for a search folder. */
const char *cli_where_label(const prism_config *cfg, const char *search_dir);
/* Whether `name` is listed in plugins.enabled. */
int cli_config_enables(const prism_config *cfg, const char *name);

/* ---- cmd_served.c ---- */

/* Loads what `cfg` would serve: every enabled plugin, then the route table.
 * Prints the error; returns CLI_OK or CLI_ERROR (nothing to free then). */
int cli_load_served(const prism_config *cfg, prism_registry **reg, prism_route_table **routes);

/* ---- cmd_fs.c ---- */

/* "a/b", malloc'd (aborts on exhaustion: a CLI has nothing better to do). */
char *cli_join(const char *a, const char *b);
/* mkdir -p with mode 0755; -1 with errno set. */
int cli_mkdirs(const char *path);
/* Removes a folder and everything in it (symbolic links are removed, not
 * followed). -1 with a message. */
int cli_remove_tree(const char *path, char *err, size_t errlen);
/* Renames <plugins_dir>/<name> to a fresh hidden <plugins_dir>/.old-<name>-XXXXXX
 * (returned, malloc'd), so the folder can be restored or removed at leisure.
 * NULL with a message. */
char *cli_move_aside(const char *plugins_dir, const char *name, char *err, size_t errlen);
/* Whether `name` is a plain plugin name: [a-z0-9_]+. */
int cli_valid_name(const char *name);

/* ---- cmd_stage.c ---- */

/* Copies the plugin folder `m->dir` into a fresh <plugins_dir>/.staging-<name>-XXXXXX
 * (returned, malloc'd), leaving out object files and the libraries that
 * will be rebuilt from sources. NULL with a message. */
char *cli_stage_copy(const prism_manifest *m, const char *plugins_dir, char *err, size_t errlen);
/* Puts the staged folder in place as <plugins_dir>/<name>, replacing what was
 * there (the previous version is restored if the switch fails). */
int cli_stage_commit(const char *staging, const char *plugins_dir, const char *name, char *err, size_t errlen);

/* ---- cmd_build.c ---- */

/* Compiles a plugin's sources into its library (both paths in m). */
int cli_build_plugin(const prism_manifest *m, char *err, size_t errlen);

/* ---- cmd_validate.c ---- */

/* Checks that every library of the (staged) manifest exists, opens with the
 * right ABI and carries the plugin's name. */
int cli_validate_libraries(const prism_manifest *m, char *err, size_t errlen);

/* ---- cmd_describe.c ---- */

/* Prints manifest text to stdout with control characters replaced by '?'. */
void cli_put_text(const char *s);
/* Prints "network: a, b" and "env: X" lines (or "none") after `indent`. */
void cli_print_permissions(const prism_manifest *m, const char *indent);
/* Prints what a plugin or group asks for: identity, sub-plugins, permissions. */
void cli_print_request(const prism_manifest *m);

#endif
