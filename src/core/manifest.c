/*
 * manifest.c - reads plugin.yml, group.yml and chains.yml (see manifest.h).
 *
 * Manifests are static files shipped with a plugin, so they are read without
 * ${VAR} interpolation, and unknown keys are refused like in config.yml: a
 * misspelt `permisions:` must not silently grant or drop anything.
 */
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct mf_ctx {
    const prism_doc *doc;
    const char *dir;         /* the folder as given, for sub-folder paths */
    const char *expect_name; /* a sub-plugin's folder name, or NULL */
    char *err;
    size_t errlen;
} mf_ctx;

static const char *const plugin_keys[] = {"name",    "version", "abi",         "description",
                                          "library", "sources", "permissions", NULL};
static const char *const group_keys[] = {"name", "version", "description", "plugins", NULL};
static const char *const permission_keys[] = {"network", "env", NULL};
static const char *const chains_file_keys[] = {"chains", NULL};

/* "file:line: message", or "file: message" when the node has no line. */
__attribute__((format(printf, 3, 4))) static int fail_at(mf_ctx *c, const cJSON *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    prism_doc_vfail(c->doc, node, c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(mf_ctx *c)
{
    return fail_at(c, NULL, "out of memory");
}

/* ---- small helpers ---- */

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static int check_keys(mf_ctx *c, const cJSON *obj, const char *const *allowed)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        if (in_list(item->string, allowed))
            continue;
        char words[256] = "";
        size_t used = 0;
        for (size_t i = 0; allowed[i] && used < sizeof words; i++)
            used += (size_t)snprintf(words + used, sizeof words - used, "%s%s", i ? ", " : "", allowed[i]);
        return fail_at(c, item, "unknown key '%s' (expected %s)", item->string, words);
    }
    return 0;
}

static int is_name(const char *s)
{
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_')
        n++;
    return n > 0 && s[n] == '\0';
}

static int push_str(char ***vec, size_t *count, const char *s)
{
    char **grown = realloc(*vec, (*count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *vec = grown;
    grown[*count] = strdup(s);
    if (!grown[*count])
        return -1;
    (*count)++;
    return 0;
}

static int is_listed(char **names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static void free_strv(char **vec, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(vec[i]);
    free(vec);
}

static char *join(const char *dir, const char *name)
{
    char *out = NULL;
    return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

static int is_file(const char *dir, const char *name)
{
    char *path = join(dir, name);
    struct stat st;
    int ok = path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    return ok;
}

/* A path inside the plugin's folder: relative, without "..", so a manifest
 * cannot point the build or the loader somewhere else. */
static int is_inside_path(const char *p)
{
    if (!*p || p[0] == '/')
        return 0;
    for (const char *seg = p; seg;) {
        if (strncmp(seg, "..", 2) == 0 && (seg[2] == '/' || seg[2] == '\0'))
            return 0;
        const char *slash = strchr(seg, '/');
        seg = slash ? slash + 1 : NULL;
    }
    return 1;
}

/* Appends a list of non-empty strings to vec. */
static int str_list(mf_ctx *c, const cJSON *n, const char *label, char ***vec, size_t *count)
{
    const cJSON *item;
    if (!cJSON_IsArray(n))
        return fail_at(c, n, "%s must be a list of strings", label);
    cJSON_ArrayForEach(item, n)
    {
        if (!cJSON_IsString(item) || !*item->valuestring)
            return fail_at(c, item, "%s: each entry must be a non-empty string", label);
        if (push_str(vec, count, item->valuestring))
            return oom(c);
    }
    return 0;
}

/* The same for an optional key: absent or null is an empty list. */
static int get_str_list(mf_ctx *c, const cJSON *parent, const char *key, const char *label, char ***vec, size_t *count)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!n || cJSON_IsNull(n))
        return 0;
    return str_list(c, n, label, vec, count);
}

/* ---- fields shared by plugin.yml and group.yml ---- */

static int get_text(mf_ctx *c, const cJSON *root, const char *key, int required, char **out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, key);
    if ((!n || cJSON_IsNull(n)) && required)
        return fail_at(c, root, "missing '%s'", key);
    /* An unquoted 1.0 reads as a number and would lose its spelling. */
    if (n && !cJSON_IsNull(n) && !cJSON_IsString(n))
        return fail_at(c, n, "%s must be a string (quote it, e.g. %s: \"1.0\")", key, key);
    *out = strdup(n && cJSON_IsString(n) ? n->valuestring : "");
    return *out ? 0 : oom(c);
}

static int parse_identity(mf_ctx *c, const cJSON *root, prism_manifest *m)
{
    const char *expect_name = c->expect_name;
    if (get_text(c, root, "name", 1, &m->name))
        return -1;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (!is_name(m->name))
        return fail_at(c, name, "name '%s' must be lowercase letters, digits and '_'", m->name);
    /* A group finds its sub-plugins by folder name, so the two must agree. */
    if (expect_name && strcmp(m->name, expect_name) != 0)
        return fail_at(c, name, "name '%s' must match its folder '%s'", m->name, expect_name);
    if (get_text(c, root, "version", 1, &m->version))
        return -1;
    return get_text(c, root, "description", 0, &m->description);
}

/* ---- plugin.yml ---- */

static int parse_abi(mf_ctx *c, const cJSON *root, prism_manifest *m)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "abi");
    if (!n || cJSON_IsNull(n))
        return fail_at(c, root, "missing 'abi' (the PRISM_PLUGIN_ABI_VERSION it was built for)");
    double d = cJSON_IsNumber(n) ? n->valuedouble : 0;
    if (d < 1 || d > INT_MAX || d != (double)(int)d)
        return fail_at(c, n, "abi must be a positive integer");
    m->abi = (int)d;
    return 0;
}

static int parse_library(mf_ctx *c, const cJSON *root, prism_manifest *m)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "library");
    char *fallback = NULL;
    if (n && !cJSON_IsNull(n) && (!cJSON_IsString(n) || !is_inside_path(n->valuestring)))
        return fail_at(c, n, "library must be a relative path inside the plugin's folder");
    if ((!n || cJSON_IsNull(n)) && asprintf(&fallback, "%s.so", m->name) < 0)
        return oom(c);
    m->library = join(m->dir, fallback ? fallback : n->valuestring);
    free(fallback);
    return m->library ? 0 : oom(c);
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_c_file(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 2 && strcmp(name + len - 2, ".c") == 0;
}

/* Without a `sources:` list, every *.c in the folder, sorted so builds are
 * reproducible. */
static int default_sources(mf_ctx *c, prism_manifest *m)
{
    DIR *d = opendir(m->dir);
    if (!d)
        return fail_at(c, NULL, "%s: %s", m->dir, strerror(errno));
    const struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)))
        if (is_c_file(e->d_name) && is_file(m->dir, e->d_name))
            rc = push_str(&m->sources, &m->source_count, e->d_name);
    closedir(d);
    if (rc)
        return oom(c);
    if (m->source_count)
        qsort(m->sources, m->source_count, sizeof *m->sources, compare_str);
    return 0;
}

/* Turns the folder-relative source names into absolute paths. */
static int absolute_sources(mf_ctx *c, prism_manifest *m)
{
    for (size_t i = 0; i < m->source_count; i++) {
        char *abs = join(m->dir, m->sources[i]);
        if (!abs)
            return oom(c);
        free(m->sources[i]);
        m->sources[i] = abs;
    }
    return 0;
}

static int parse_sources(mf_ctx *c, const cJSON *root, prism_manifest *m)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "sources"), *item;
    if (!n || cJSON_IsNull(n)) {
        if (default_sources(c, m))
            return -1;
        return absolute_sources(c, m);
    }
    if (get_str_list(c, root, "sources", "sources", &m->sources, &m->source_count))
        return -1;
    cJSON_ArrayForEach(item, n)
    {
        if (!is_inside_path(item->valuestring))
            return fail_at(c, item, "sources: '%s' must be a relative path inside the plugin's folder",
                           item->valuestring);
    }
    return absolute_sources(c, m);
}

static int parse_permissions(mf_ctx *c, const cJSON *root, prism_manifest *m)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "permissions");
    if (!n || cJSON_IsNull(n))
        return 0;
    if (!cJSON_IsObject(n))
        return fail_at(c, n, "permissions must be a mapping (network:, env:)");
    if (check_keys(c, n, permission_keys) ||
        get_str_list(c, n, "network", "permissions.network", &m->network, &m->network_count))
        return -1;
    return get_str_list(c, n, "env", "permissions.env", &m->env, &m->env_count);
}

static int parse_plugin(mf_ctx *c, prism_manifest *m)
{
    const cJSON *root = prism_doc_root(c->doc);
    if (!cJSON_IsObject(root))
        return fail_at(c, root, "expected a mapping (name:, version:, abi:, ...)");
    if (check_keys(c, root, plugin_keys) || parse_identity(c, root, m) || parse_abi(c, root, m) ||
        parse_library(c, root, m) || parse_sources(c, root, m))
        return -1;
    return parse_permissions(c, root, m);
}

/* ---- loading ---- */

/* A manifest with its absolute folder; NULL with a message on failure. */
static prism_manifest *manifest_new(const char *dir, char *err, size_t errlen)
{
    prism_manifest *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return NULL;
    }
    m->dir = realpath(dir, NULL);
    if (!m->dir) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        free(m);
        return NULL;
    }
    return m;
}

typedef int (*parse_fn)(mf_ctx *c, prism_manifest *m);

/* Loads `file` from the manifest's folder and runs `parse` over it. The
 * folder is named as given in messages, so they read like the user's input. */
static int parse_file(const char *dir, const char *file, parse_fn parse, const char *expect_name, prism_manifest *m,
                      char *err, size_t errlen)
{
    char *path = join(dir, file);
    prism_doc *doc = NULL;
    if (!path) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    int rc = prism_yaml_load(path, 0, &doc, err, errlen);
    free(path);
    if (rc == 0) {
        mf_ctx c = {doc, dir, expect_name, err, errlen};
        rc = parse(&c, m);
    }
    prism_doc_free(doc);
    return rc;
}

static int load_plugin(const char *dir, const char *expect_name, prism_manifest **out, char *err, size_t errlen)
{
    prism_manifest *m = manifest_new(dir, err, errlen);
    if (!m)
        return -1;
    if (parse_file(dir, "plugin.yml", parse_plugin, expect_name, m, err, errlen)) {
        prism_manifest_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

/* ---- group.yml ---- */

static int add_sub(mf_ctx *c, prism_manifest *m, prism_manifest *sub)
{
    prism_manifest **grown = realloc(m->subs, (m->sub_count + 1) * sizeof *grown);
    if (!grown) {
        prism_manifest_free(sub);
        return oom(c);
    }
    m->subs = grown;
    m->subs[m->sub_count++] = sub;
    return 0;
}

/* One listed sub-plugin: loaded when its folder is there, recorded as
 * missing when not (a provider that was not installed). */
static int load_sub(mf_ctx *c, const cJSON *item, prism_manifest *m)
{
    const char *name = item->valuestring;
    char *sub_dir = join(c->dir, name);
    struct stat st;
    int rc;
    if (!sub_dir)
        return oom(c);
    if (stat(sub_dir, &st) != 0 && errno == ENOENT)
        rc = push_str(&m->missing, &m->missing_count, name) ? oom(c) : 0;
    else if (!is_file(sub_dir, "plugin.yml"))
        rc = fail_at(c, item, "plugins: '%s' has no %s/plugin.yml", name, sub_dir);
    else {
        prism_manifest *sub = NULL;
        rc = load_plugin(sub_dir, name, &sub, c->err, c->errlen) ? -1 : add_sub(c, m, sub);
    }
    free(sub_dir);
    return rc;
}

static int parse_sub_list(mf_ctx *c, const cJSON *root, prism_manifest *m)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "plugins"), *item;
    if (!n || cJSON_IsNull(n))
        return 0;
    if (!cJSON_IsArray(n))
        return fail_at(c, n, "plugins must be a list of sub-plugin folders");
    cJSON_ArrayForEach(item, n)
    {
        if (!cJSON_IsString(item) || !is_name(item->valuestring))
            return fail_at(c, item, "plugins: a sub-plugin name is lowercase letters, digits and '_'");
        if (prism_manifest_sub(m, item->valuestring) || is_listed(m->missing, m->missing_count, item->valuestring))
            return fail_at(c, item, "plugins lists '%s' twice", item->valuestring);
        if (load_sub(c, item, m))
            return -1;
    }
    return 0;
}

static int parse_group(mf_ctx *c, prism_manifest *m)
{
    const cJSON *root = prism_doc_root(c->doc);
    if (!cJSON_IsObject(root))
        return fail_at(c, root, "expected a mapping (name:, version:, plugins:, ...)");
    if (check_keys(c, root, group_keys) || parse_identity(c, root, m))
        return -1;
    return parse_sub_list(c, root, m);
}

/* ---- chains.yml ---- */

static int parse_chain(mf_ctx *c, const cJSON *n, prism_chain_conf *chain)
{
    if (!is_name(n->string))
        return fail_at(c, n, "chain name '%s' must be lowercase letters, digits and '_'", n->string);
    chain->name = strdup(n->string);
    if (!chain->name)
        return oom(c);
    if (!cJSON_IsArray(n) || cJSON_GetArraySize(n) == 0)
        return fail_at(c, n, "chain '%s' must be a non-empty list of steps", n->string);
    char label[300];
    snprintf(label, sizeof label, "chain '%s'", n->string);
    return str_list(c, n, label, &chain->steps, &chain->step_count);
}

static int parse_chains(mf_ctx *c, prism_manifest *m)
{
    const cJSON *root = prism_doc_root(c->doc), *chains, *n;
    if (!cJSON_IsObject(root))
        return fail_at(c, root, "expected a mapping (chains:)");
    if (check_keys(c, root, chains_file_keys))
        return -1;
    chains = cJSON_GetObjectItemCaseSensitive(root, "chains");
    if (!chains || cJSON_IsNull(chains))
        return 0;
    if (!cJSON_IsObject(chains))
        return fail_at(c, chains, "chains must be a mapping of name: [steps]");
    m->chains = calloc((size_t)cJSON_GetArraySize(chains) + 1, sizeof *m->chains);
    if (!m->chains)
        return oom(c);
    cJSON_ArrayForEach(n, chains)
    {
        /* Counted first, so a half-built chain is freed with the rest. */
        if (parse_chain(c, n, &m->chains[m->chain_count++]))
            return -1;
    }
    return 0;
}

static int load_group(const char *dir, prism_manifest **out, char *err, size_t errlen)
{
    prism_manifest *m = manifest_new(dir, err, errlen);
    if (!m)
        return -1;
    m->is_group = 1;
    if (parse_file(dir, "group.yml", parse_group, NULL, m, err, errlen) ||
        (is_file(dir, "chains.yml") && parse_file(dir, "chains.yml", parse_chains, NULL, m, err, errlen))) {
        prism_manifest_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int prism_manifest_load(const char *dir, prism_manifest **out, char *err, size_t errlen)
{
    struct stat st;
    *out = NULL;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a folder", dir);
        return -1;
    }
    int plugin = is_file(dir, "plugin.yml"), group = is_file(dir, "group.yml");
    if (plugin && group) {
        snprintf(err, errlen, "%s: has both plugin.yml and group.yml (a folder is a plugin or a group)", dir);
        return -1;
    }
    if (!plugin && !group) {
        snprintf(err, errlen, "%s: no plugin.yml or group.yml", dir);
        return -1;
    }
    return group ? load_group(dir, out, err, errlen) : load_plugin(dir, NULL, out, err, errlen);
}

const prism_chain_conf *prism_manifest_chain(const prism_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->chain_count; i++)
        if (strcmp(m->chains[i].name, name) == 0)
            return &m->chains[i];
    return NULL;
}

const prism_manifest *prism_manifest_sub(const prism_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->sub_count; i++)
        if (strcmp(m->subs[i]->name, name) == 0)
            return m->subs[i];
    return NULL;
}

void prism_manifest_free(prism_manifest *m)
{
    if (!m)
        return;
    free(m->dir);
    free(m->name);
    free(m->version);
    free(m->description);
    free(m->library);
    free_strv(m->sources, m->source_count);
    free_strv(m->network, m->network_count);
    free_strv(m->env, m->env_count);
    for (size_t i = 0; i < m->sub_count; i++)
        prism_manifest_free(m->subs[i]);
    free(m->subs);
    free_strv(m->missing, m->missing_count);
    for (size_t i = 0; i < m->chain_count; i++) {
        free(m->chains[i].name);
        free_strv(m->chains[i].steps, m->chains[i].step_count);
    }
    free(m->chains);
    free(m);
}
