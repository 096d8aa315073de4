/*
 * loader.c - finding plugin folders, opening their libraries, checking the
 * ABI, and creating one instance per plugin.
 */
#include "loader.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lockfile.h"
#include "log.h"
#include "permissions.h"
#include "yaml.h"

struct prism_host {
    char *name; /* "ai_gateway.openai_provider" or "name" */
    char *dir;
};

struct prism_registry {
    prism_loaded *items;
    size_t count, cap;
    prism_manifest **manifests; /* top-level manifests (groups own their subs) */
    size_t manifest_count;
};

void prism_log(prism_host *host, prism_log_level level, const char *fmt, ...)
{
    if (level < prism_log_threshold())
        return;
    va_list ap;
    va_start(ap, fmt);
    prism_logv(level, host != NULL ? host->name : "plugin", fmt, ap);
    va_end(ap);
}

const char *prism_host_plugin_dir(const prism_host *host)
{
    return host->dir;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void *prism_plugin_open(const char *so_path, const prism_plugin_t **desc, char *err, size_t errlen)
{
    void *dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        snprintf(err, errlen, "%s: cannot load: %s", so_path, dlerror());
        return NULL;
    }
    const prism_plugin_t *d = dlsym(dl, PRISM_PLUGIN_SYMBOL);
    const char *why = NULL;
    if (d == NULL)
        why = "exports no '" PRISM_PLUGIN_SYMBOL "' descriptor (is it a Prism plugin?)";
    else if (d->abi_version != PRISM_PLUGIN_ABI_VERSION)
        snprintf(err, errlen,
                 "%s: built for plugin ABI %u, this Prism speaks ABI %d: rebuild it against this "
                 "version's prism/plugin.h",
                 so_path, d->abi_version, PRISM_PLUGIN_ABI_VERSION);
    else if (d->name == NULL || d->create == NULL || d->handle == NULL || d->destroy == NULL)
        why = "descriptor lacks a name or one of create/handle/destroy";
    if (why != NULL)
        snprintf(err, errlen, "%s: %s", so_path, why);
    if (d == NULL || why != NULL || d->abi_version != PRISM_PLUGIN_ABI_VERSION) {
        dlclose(dl);
        return NULL;
    }
    *desc = d;
    return dl;
}

const char **prism_plugin_search_dirs(const prism_config *cfg)
{
    const char **dirs = calloc(cfg->plugin_path_count + 3, sizeof(*dirs));
    if (dirs == NULL)
        return NULL;
    size_t n = 0;
    dirs[n++] = cfg->plugins_dir;
    for (size_t i = 0; i < cfg->plugin_path_count; i++)
        dirs[n++] = cfg->plugin_paths[i];
    /* The environment may replace the bundled folder; empty means none. */
    const char *bundled = getenv("PRISM_BUNDLED_PLUGIN_DIR");
    if (bundled == NULL)
        bundled = PRISM_BUNDLED_PLUGIN_DIR;
    if (bundled[0] != '\0')
        dirs[n++] = bundled;
    return dirs;
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (s != NULL)
        snprintf(s, la + lb + 2, "%s/%s", a, b);
    return s;
}

static int has_manifest(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/plugin.yml", dir);
    if (is_file(path))
        return 1;
    snprintf(path, sizeof(path), "%s/group.yml", dir);
    return is_file(path);
}

char *prism_plugin_find(const prism_config *cfg, const char *name)
{
    if (strchr(name, '/') != NULL || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
        return NULL;
    const char **dirs = prism_plugin_search_dirs(cfg);
    char *found = NULL;
    for (size_t i = 0; dirs != NULL && dirs[i] != NULL && found == NULL; i++) {
        char *cand = path_join(dirs[i], name);
        if (cand != NULL && has_manifest(cand))
            found = cand;
        else
            free(cand);
    }
    free(dirs);
    return found;
}

/* ---- the registry ---- */

static prism_loaded *registry_slot(prism_registry *reg)
{
    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        prism_loaded *p = realloc(reg->items, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        reg->items = p;
        reg->cap = cap;
    }
    prism_loaded *slot = &reg->items[reg->count];
    memset(slot, 0, sizeof(*slot));
    return slot;
}

/* The server config's plugins.config entry for a plugin ("group.sub" or
 * its plain name), or NULL. */
static const cJSON *plugin_overrides(const prism_config *cfg, const prism_manifest *m, const char *full)
{
    if (cfg->plugin_overrides == NULL)
        return NULL;
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(cfg->plugin_overrides, full);
    return ov != NULL ? ov : cJSON_GetObjectItemCaseSensitive(cfg->plugin_overrides, m->name);
}

/* The plugin's config.yml (interpolated), with plugins.config overrides
 * from the server config laid over it key by key. */
static cJSON *plugin_config(const prism_config *cfg, const prism_manifest *m, const char *full, char *err,
                            size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.yml", m->dir);
    cJSON *conf = NULL;
    if (is_file(path)) {
        prism_doc *doc = NULL;
        if (prism_yaml_load(path, PRISM_YAML_INTERPOLATE, &doc, err, errlen) != 0)
            return NULL;
        conf = cJSON_Duplicate(prism_doc_root(doc), 1);
        prism_doc_free(doc);
        if (!cJSON_IsObject(conf)) {
            cJSON_Delete(conf);
            snprintf(err, errlen, "%s: the top level must be a mapping", path);
            return NULL;
        }
    } else {
        conf = cJSON_CreateObject();
    }
    const cJSON *ov = plugin_overrides(cfg, m, full);
    for (const cJSON *it = ov != NULL ? ov->child : NULL; it != NULL; it = it->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(conf, it->string);
        cJSON_AddItemToObject(conf, it->string, cJSON_Duplicate(it, 1));
    }
    return conf;
}

/* The plugin's config.yml as its author wrote it, before the operator's
 * environment and overrides: what tells an operator's base URL apart. */
static cJSON *author_config(const prism_manifest *m)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.yml", m->dir);
    prism_doc *doc = NULL;
    char err[256];
    if (!is_file(path) ||
        prism_yaml_load(path, PRISM_YAML_INTERPOLATE | PRISM_YAML_EMPTY_ENV, &doc, err, sizeof(err)) != 0)
        return NULL;
    cJSON *conf = cJSON_Duplicate(prism_doc_root(doc), 1);
    prism_doc_free(doc);
    return conf;
}

static int under_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static int open_library(const prism_config *cfg, const prism_manifest *m, const char *top, const char *sub,
                        prism_loaded *slot, char *err, size_t errlen)
{
    if (!is_file(m->library)) {
        snprintf(err, errlen, "plugin %s: library %s is not built (run `make`, or `prism install` its folder)", m->name,
                 m->library);
        return -1;
    }
    /* Installed plugins run only as approved: the library must be the one
     * whose hash `prism install` recorded. */
    if (under_dir(m->library, cfg->plugins_dir) &&
        prism_lock_verify(cfg->plugins_dir, top, sub, m->library, err, errlen) != 0)
        return -1;
    slot->dl = prism_plugin_open(m->library, &slot->desc, err, errlen);
    if (slot->dl == NULL)
        return -1;
    if (strcmp(slot->desc->name, m->name) != 0) {
        snprintf(err, errlen, "%s: descriptor names '%s' but its plugin.yml says '%s'", m->library, slot->desc->name,
                 m->name);
        return -1;
    }
    return 0;
}

static int load_one(prism_registry *reg, const prism_config *cfg, const prism_manifest *m, const char *group, char *err,
                    size_t errlen)
{
    prism_loaded *slot = registry_slot(reg);
    if (slot == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    char full[256];
    snprintf(full, sizeof(full), group ? "%s.%s" : "%s%s", group ? group : "", m->name);
    slot->name = strdup(m->name);
    slot->group = group ? strdup(group) : NULL;
    slot->manifest = m;
    slot->host = calloc(1, sizeof(*slot->host));
    reg->count++; /* counted now so a failure below is cleaned up by free */
    if (slot->name == NULL || slot->host == NULL || (group && slot->group == NULL))
        return snprintf(err, errlen, "out of memory"), -1;
    slot->host->name = strdup(full);
    slot->host->dir = strdup(m->dir);
    if (open_library(cfg, m, group ? group : m->name, group ? m->name : NULL, slot, err, errlen) != 0)
        return -1;
    cJSON *conf = plugin_config(cfg, m, full, err, errlen);
    if (conf == NULL)
        return -1;
    cJSON *author = author_config(m);
    slot->perms = prism_permissions_new(m, conf, author, plugin_overrides(cfg, m, full));
    cJSON_Delete(author);
    if (slot->perms == NULL) {
        cJSON_Delete(conf);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    char why[512] = "";
    slot->instance = slot->desc->create(conf, slot->host, why, sizeof(why));
    cJSON_Delete(conf);
    if (slot->instance == NULL) {
        snprintf(err, errlen, "plugin %s: %s", full, why[0] ? why : "create failed");
        return -1;
    }
    return 0;
}

static int add_manifest(prism_registry *reg, prism_manifest *m)
{
    prism_manifest **p = realloc(reg->manifests, (reg->manifest_count + 1) * sizeof(*p));
    if (p == NULL)
        return -1;
    reg->manifests = p;
    reg->manifests[reg->manifest_count++] = m;
    return 0;
}

static int load_enabled(prism_registry *reg, const prism_config *cfg, const char *name, char *err, size_t errlen)
{
    char *dir = prism_plugin_find(cfg, name);
    if (dir == NULL) {
        snprintf(err, errlen, "%s: plugin '%s' is enabled but not found (install it with `prism install PATH`)",
                 cfg->file, name);
        return -1;
    }
    prism_manifest *m = NULL;
    int rc = prism_manifest_load(dir, &m, err, errlen);
    free(dir);
    if (rc != 0)
        return -1;
    if (add_manifest(reg, m) != 0) {
        prism_manifest_free(m);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    if (!m->is_group)
        return load_one(reg, cfg, m, NULL, err, errlen);
    for (size_t i = 0; i < m->sub_count; i++)
        if (load_one(reg, cfg, m->subs[i], m->name, err, errlen) != 0)
            return -1;
    return 0;
}

int prism_registry_load(const prism_config *cfg, prism_registry **out, char *err, size_t errlen)
{
    prism_registry *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < cfg->enabled_count; i++) {
        if (prism_registry_manifest(reg, cfg->enabled[i]) != NULL)
            continue; /* enabled twice */
        if (load_enabled(reg, cfg, cfg->enabled[i], err, errlen) != 0) {
            prism_registry_free(reg);
            return -1;
        }
    }
    *out = reg;
    return 0;
}

const prism_loaded *prism_registry_find(const prism_registry *reg, const char *name)
{
    const char *dot = strchr(name, '.');
    const prism_loaded *hit = NULL;
    for (size_t i = 0; i < reg->count; i++) {
        const prism_loaded *p = &reg->items[i];
        if (dot != NULL) {
            size_t glen = (size_t)(dot - name);
            if (p->group && strlen(p->group) == glen && strncmp(p->group, name, glen) == 0 &&
                strcmp(p->name, dot + 1) == 0)
                return p;
        } else if (strcmp(p->name, name) == 0) {
            if (p->group == NULL)
                return p;
            hit = hit ? hit : p;
        }
    }
    return hit;
}

const prism_loaded *prism_registry_sibling(const prism_registry *reg, const prism_loaded *self, const char *name)
{
    if (self != NULL && self->group != NULL) {
        for (size_t i = 0; i < reg->count; i++) {
            const prism_loaded *p = &reg->items[i];
            if (p->group && strcmp(p->group, self->group) == 0 && strcmp(p->name, name) == 0)
                return p;
        }
    }
    return prism_registry_find(reg, name);
}

const prism_manifest *prism_registry_manifest(const prism_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->manifest_count; i++)
        if (strcmp(reg->manifests[i]->name, name) == 0)
            return reg->manifests[i];
    return NULL;
}

size_t prism_registry_count(const prism_registry *reg)
{
    return reg->count;
}

const prism_loaded *prism_registry_at(const prism_registry *reg, size_t i)
{
    return i < reg->count ? &reg->items[i] : NULL;
}

void prism_registry_free(prism_registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = reg->count; i-- > 0;) {
        prism_loaded *p = &reg->items[i];
        if (p->instance != NULL)
            p->desc->destroy(p->instance);
        /* Sanitizer builds keep libraries mapped so leak reports can still
         * name the plugin's functions. */
        if (p->dl != NULL && getenv("PRISM_KEEP_PLUGINS_MAPPED") == NULL)
            dlclose(p->dl);
        if (p->host != NULL) {
            free(p->host->name);
            free(p->host->dir);
            free(p->host);
        }
        prism_permissions_free(p->perms);
        free(p->name);
        free(p->group);
    }
    free(reg->items);
    for (size_t i = 0; i < reg->manifest_count; i++)
        prism_manifest_free(reg->manifests[i]);
    free(reg->manifests);
    free(reg);
}
