/*
 * loader.h - finding, opening and instantiating plugins.
 *
 * Plugins are looked for by name in, in order: the config's plugins.dir
 * (where `prism install` puts them), each of plugins.paths, then the bundled
 * plugins built with Prism (PRISM_BUNDLED_PLUGIN_DIR). A folder counts when it
 * holds plugin.yml or group.yml and its library is built.
 *
 * The registry owns every loaded plugin: the dlopen handle, the descriptor,
 * the instance made by `create`, and its manifest. It is built once on the
 * main thread and read-only afterwards, so workers share it without locks.
 */
#ifndef PRISM_LOADER_H
#define PRISM_LOADER_H

#include <stddef.h>

#include "config.h"
#include "manifest.h"
#include "prism/plugin.h"

typedef struct prism_loaded {
    char *name;  /* "model_router" */
    char *group; /* "ai_gateway" for a sub-plugin, NULL for a top-level one */
    const prism_plugin_t *desc;
    void *instance;
    void *dl;
    prism_host *host;
    const prism_manifest *manifest;  /* owned by the registry */
    struct prism_permissions *perms; /* the hosts it may call */
} prism_loaded;

typedef struct prism_registry prism_registry;

/* Opens a library and checks its descriptor: the symbol is there, the ABI
 * matches, the name is given and the mandatory functions are set. On success
 * the handle is returned open (dlclose it) and *desc points into it. */
void *prism_plugin_open(const char *so_path, const prism_plugin_t **desc, char *err, size_t errlen);
/* The folder that provides plugin `name` (malloc'd), or NULL. */
char *prism_plugin_find(const prism_config *cfg, const char *name);
/* The search folders in order (NULL-terminated, malloc'd array of borrowed
 * strings; free the array only). */
const char **prism_plugin_search_dirs(const prism_config *cfg);

/* Loads every enabled plugin (and each meta-plugin's present sub-plugins) and
 * creates their instances with their config.yml merged with plugins.config.
 * -1 with a message naming the plugin on any failure. */
int prism_registry_load(const prism_config *cfg, prism_registry **out, char *err, size_t errlen);
/* A loaded plugin by name: "name" for a top-level plugin or a unique
 * sub-plugin name, "group.sub" for a specific sub-plugin. */
const prism_loaded *prism_registry_find(const prism_registry *reg, const char *name);
/* A loaded sibling of `self` (same group) by plain name, else a top-level. */
const prism_loaded *prism_registry_sibling(const prism_registry *reg, const prism_loaded *self, const char *name);
/* Manifest of a loaded top-level plugin or group by name. */
const prism_manifest *prism_registry_manifest(const prism_registry *reg, const char *name);
size_t prism_registry_count(const prism_registry *reg);
const prism_loaded *prism_registry_at(const prism_registry *reg, size_t i);
/* Destroys instances and closes libraries. */
void prism_registry_free(prism_registry *reg);

#endif
