/*
 * config.c - loads and validates config.yml (see config.h).
 *
 * Every setting is checked for type and range, and unknown keys are refused:
 * a misspelt key would otherwise fall back to its default without a word.
 * A key whose value is null (`key:` or an unset `${VAR}`) keeps its default.
 */
#include "config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WORKERS      256
#define MAX_BODY_BYTES   (1LL << 30)
#define MIN_HEADER_BYTES 1024
#define MAX_HEADER_BYTES (1LL << 20)
#define MAX_TIMEOUT_MS   86400000LL /* a day: anything longer is a typo */

typedef struct cfg_ctx {
    prism_config *cfg;
    const prism_doc *doc;
    char *err;
    size_t errlen;
} cfg_ctx;

static const char *const top_keys[] = {"server", "plugins", "routes", NULL};
static const char *const server_keys[] = {"listen",       "workers",         "api_prefix",  "api_keys",
                                          "limits",       "timeouts",        "tls_ca_file", "log",
                                          "cors_origins", "upstream_client", NULL};
static const char *const log_keys[] = {"level", "format", "access", "file", NULL};
static const char *const limit_keys[] = {"max_body_bytes", "max_header_bytes", NULL};
static const char *const timeout_keys[] = {"read_ms", "upstream_connect_ms", "upstream_ms", "shutdown_ms", NULL};
static const char *const plugin_keys[] = {"enabled", "dir", "paths", "config", NULL};
static const char *const route_keys[] = {"chain", NULL};

/* "file:line: message", or "file: message" when the node has no line. */
__attribute__((format(printf, 3, 4))) static int fail_at(cfg_ctx *c, const cJSON *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    prism_doc_vfail(c->doc, node, c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(cfg_ctx *c)
{
    return fail_at(c, NULL, "out of memory");
}

/* ---- small helpers ---- */

static int is_absent(const cJSON *n)
{
    return !n || cJSON_IsNull(n);
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static void join_words(const char *const *list, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; list[i] && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", list[i]);
}

static int check_keys(cfg_ctx *c, const cJSON *obj, const char *where, const char *const *allowed)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        if (in_list(item->string, allowed))
            continue;
        char words[256];
        join_words(allowed, words, sizeof words);
        return fail_at(c, item, "unknown key '%s' in %s (expected %s)", item->string, where, words);
    }
    return 0;
}

/* A sub-mapping: *out is NULL when absent; an error when not a mapping. */
static int get_section(cfg_ctx *c, const cJSON *parent, const char *key, const char *label, const cJSON **out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(parent, key);
    *out = NULL;
    if (is_absent(n))
        return 0;
    if (!cJSON_IsObject(n))
        return fail_at(c, n, "%s must be a mapping", label);
    *out = n;
    return 0;
}

static int get_string(cfg_ctx *c, const cJSON *parent, const char *key, const char *label, const cJSON **out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(parent, key);
    *out = NULL;
    if (is_absent(n))
        return 0;
    if (!cJSON_IsString(n))
        return fail_at(c, n, "%s must be a string", label);
    *out = n;
    return 0;
}

/* Leaves *val alone when the key is absent, so it keeps its default. */
static int get_int(cfg_ctx *c, const cJSON *parent, const char *key, const char *label, int64_t min, int64_t max,
                   int64_t *val)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (is_absent(n))
        return 0;
    double d = cJSON_IsNumber(n) ? n->valuedouble : -1e300;
    if (d < (double)min || d > (double)max || d != (double)(int64_t)d)
        return fail_at(c, n, "%s must be an integer from %" PRId64 " to %" PRId64, label, min, max);
    *val = (int64_t)d;
    return 0;
}

static int push_str(char ***vec, size_t *count, const char *s, size_t len)
{
    char **grown = realloc(*vec, (*count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *vec = grown;
    grown[*count] = strndup(s, len);
    if (!grown[*count])
        return -1;
    (*count)++;
    return 0;
}

static void free_strv(char **vec, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(vec[i]);
    free(vec);
}

static int replace_str(cfg_ctx *c, char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return oom(c);
    free(*slot);
    *slot = copy;
    return 0;
}

/* Relative paths are taken from the config file's folder, not the working
 * directory, so a config means the same wherever prism is started. */
static char *resolve_path(const char *dir, const char *path)
{
    char *out = NULL;
    if (path[0] == '/')
        return strdup(path);
    return asprintf(&out, "%s/%s", dir, path) < 0 ? NULL : out;
}

static int set_path(cfg_ctx *c, char **slot, const char *path)
{
    char *abs = resolve_path(c->cfg->dir, path);
    if (!abs)
        return oom(c);
    free(*slot);
    *slot = abs;
    return 0;
}

/* [a-z0-9_]+, the shape of every plugin name. */
static size_t name_span(const char *s)
{
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_')
        n++;
    return n;
}

static int is_plugin_name(const char *s)
{
    size_t n = name_span(s);
    return n > 0 && s[n] == '\0';
}

/* "plugin", "group:chain" or "group.plugin". */
static int is_step(const char *s)
{
    size_t a = name_span(s);
    if (a == 0 || s[a] == '\0')
        return a > 0;
    if (s[a] != ':' && s[a] != '.')
        return 0;
    return is_plugin_name(s + a + 1);
}

/* ---- host:port ---- */

static int hp_fail(char *err, size_t errlen, const char *s, const char *why)
{
    snprintf(err, errlen, "'%s': %s", s, why);
    return -1;
}

static int parse_port(const char *s, int *port)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 5 || s[n] != '\0')
        return -1;
    long v = strtol(s, NULL, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int host_chars_ok(const char *h, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && !strchr(".-_:%", ch))
            return 0;
    }
    return 1;
}

/* Splits "host:port" / "[v6]:port" at the port's colon. */
static int split_hostport(const char *s, const char **host, size_t *hlen, const char **port, char *err, size_t errlen)
{
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return hp_fail(err, errlen, s, "expected [IPV6]:PORT, e.g. [::1]:8080");
        *host = s + 1;
        *hlen = (size_t)(close - *host);
        *port = close + 2;
        return 0;
    }
    const char *colon = strrchr(s, ':');
    if (!colon)
        return hp_fail(err, errlen, s, "expected HOST:PORT, e.g. 127.0.0.1:8080");
    *host = s;
    *hlen = (size_t)(colon - s);
    *port = colon + 1;
    if (memchr(s, ':', *hlen))
        return hp_fail(err, errlen, s, "put an IPv6 address in brackets, e.g. [::1]:8080");
    return 0;
}

int prism_parse_hostport(const char *s, char **host, int *port, char *err, size_t errlen)
{
    const char *h, *p;
    size_t hlen;
    *host = NULL;
    if (split_hostport(s, &h, &hlen, &p, err, errlen))
        return -1;
    /* An empty host would mean every interface: make exposing the server a
     * deliberate choice (0.0.0.0) rather than a shorthand. */
    if (hlen == 0)
        return hp_fail(err, errlen, s, "give a host, e.g. 127.0.0.1:PORT (or 0.0.0.0:PORT for every interface)");
    if (!host_chars_ok(h, hlen))
        return hp_fail(err, errlen, s, "the host has characters a host name cannot have");
    if (parse_port(p, port))
        return hp_fail(err, errlen, s, "the port must be a number from 1 to 65535");
    *host = strndup(h, hlen);
    return *host ? 0 : hp_fail(err, errlen, s, "out of memory");
}

static int is_loopback_v6(const char *host)
{
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) != 1)
        return 0;
    return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
}

int prism_host_is_loopback(const char *host)
{
    struct in_addr a4;
    size_t len = strlen(host);
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
        char inner[INET6_ADDRSTRLEN + 8];
        snprintf(inner, sizeof inner, "%.*s", (int)(len - 2), host + 1);
        return is_loopback_v6(inner);
    }
    return is_loopback_v6(host);
}

int prism_config_set_listen(prism_config *cfg, const char *hostport, char *err, size_t errlen)
{
    char *host;
    int port;
    if (prism_parse_hostport(hostport, &host, &port, err, errlen))
        return -1;
    free(cfg->listen_host);
    cfg->listen_host = host;
    cfg->listen_port = port;
    return 0;
}

/* ---- server ---- */

static int parse_listen(cfg_ctx *c, const cJSON *server)
{
    const cJSON *n;
    if (get_string(c, server, "listen", "server.listen", &n))
        return -1;
    if (!n)
        return 0;
    char msg[256];
    if (prism_config_set_listen(c->cfg, n->valuestring, msg, sizeof msg))
        return fail_at(c, n, "server.listen: %s", msg);
    return 0;
}

static int parse_workers(cfg_ctx *c, const cJSON *server)
{
    int64_t v = c->cfg->workers;
    if (get_int(c, server, "workers", "server.workers", 0, MAX_WORKERS, &v))
        return -1;
    c->cfg->workers = (int)v;
    return 0;
}

static int parse_prefix(cfg_ctx *c, const cJSON *server)
{
    const cJSON *n;
    if (get_string(c, server, "api_prefix", "server.api_prefix", &n))
        return -1;
    if (!n)
        return 0;
    const char *p = n->valuestring;
    size_t len = strlen(p);
    if (len && (p[0] != '/' || p[len - 1] == '/'))
        return fail_at(c, n, "server.api_prefix must start with '/' and not end with one, e.g. /v1 (\"\" for none)");
    if (strpbrk(p, "?# \t"))
        return fail_at(c, n, "server.api_prefix must be a plain path, e.g. /v1");
    return replace_str(c, &c->cfg->api_prefix, p);
}

/* Splits "k1, k2,,k3" into trimmed, non-empty entries. */
static int split_list(cfg_ctx *c, const char *s, char ***vec, size_t *count)
{
    while (*s) {
        size_t len = strcspn(s, ",");
        const char *end = s + len;
        const char *a = s, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a && push_str(vec, count, a, (size_t)(b - a)))
            return oom(c);
        s = *end ? end + 1 : end;
    }
    return 0;
}

/* server.<name>: a list of strings or one comma-separated string; absent:
 * the environment variable `env` (NULL: none). */
static int parse_str_list(cfg_ctx *c, const cJSON *server, const char *name, const char *env, char ***vec,
                          size_t *count)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(server, name);
    if (is_absent(n)) {
        const char *v = env ? getenv(env) : NULL;
        return v ? split_list(c, v, vec, count) : 0;
    }
    if (cJSON_IsString(n))
        return split_list(c, n->valuestring, vec, count);
    if (!cJSON_IsArray(n))
        return fail_at(c, n, "server.%s must be a list of strings or a comma-separated string", name);
    const cJSON *item;
    cJSON_ArrayForEach(item, n)
    {
        if (!cJSON_IsString(item))
            return fail_at(c, item, "server.%s: each entry must be a string (quote it)", name);
        if (split_list(c, item->valuestring, vec, count))
            return -1;
    }
    return 0;
}

static int parse_api_keys(cfg_ctx *c, const cJSON *server)
{
    return parse_str_list(c, server, "api_keys", "PRISM_API_KEYS", &c->cfg->api_keys, &c->cfg->api_key_count);
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Browser origins allowed to call (CORS): "https://app.example.com", or "*". */
static int parse_cors(cfg_ctx *c, const cJSON *server)
{
    if (parse_str_list(c, server, "cors_origins", NULL, &c->cfg->cors_origins, &c->cfg->cors_origin_count))
        return -1;
    for (size_t i = 0; i < c->cfg->cors_origin_count; i++) {
        const char *o = c->cfg->cors_origins[i];
        if (strcmp(o, "*") != 0 && strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0)
            return fail_at(c, cJSON_GetObjectItemCaseSensitive(server, "cors_origins"),
                           "server.cors_origins: \"%s\" is not an origin (scheme://host[:port]) or \"*\"", o);
        const char *host = strcmp(o, "*") == 0 ? "*" : strstr(o, "://") + 3;
        if (!printable(o) || *host == '\0' || strchr(host, '/') != NULL)
            return fail_at(c, cJSON_GetObjectItemCaseSensitive(server, "cors_origins"),
                           "server.cors_origins: \"%s\" must be scheme://host[:port], without a path", o);
    }
    return 0;
}

static int parse_limits(cfg_ctx *c, const cJSON *server)
{
    const cJSON *limits;
    if (get_section(c, server, "limits", "server.limits", &limits))
        return -1;
    if (!limits)
        return 0;
    int64_t body = (int64_t)c->cfg->max_body_bytes, header = (int64_t)c->cfg->max_header_bytes;
    if (check_keys(c, limits, "server.limits", limit_keys) ||
        get_int(c, limits, "max_body_bytes", "server.limits.max_body_bytes", 1, MAX_BODY_BYTES, &body) ||
        get_int(c, limits, "max_header_bytes", "server.limits.max_header_bytes", MIN_HEADER_BYTES, MAX_HEADER_BYTES,
                &header))
        return -1;
    c->cfg->max_body_bytes = (size_t)body;
    c->cfg->max_header_bytes = (size_t)header;
    return 0;
}

static int get_timeout(cfg_ctx *c, const cJSON *timeouts, const char *key, int64_t min, uint64_t *slot)
{
    char label[64];
    snprintf(label, sizeof label, "server.timeouts.%s", key);
    int64_t v = (int64_t)*slot;
    if (get_int(c, timeouts, key, label, min, MAX_TIMEOUT_MS, &v))
        return -1;
    *slot = (uint64_t)v;
    return 0;
}

static int parse_timeouts(cfg_ctx *c, const cJSON *server)
{
    const cJSON *t;
    prism_config *cfg = c->cfg;
    if (get_section(c, server, "timeouts", "server.timeouts", &t))
        return -1;
    if (!t)
        return 0;
    if (check_keys(c, t, "server.timeouts", timeout_keys) || get_timeout(c, t, "read_ms", 1, &cfg->read_timeout_ms) ||
        get_timeout(c, t, "upstream_connect_ms", 1, &cfg->upstream_connect_timeout_ms) ||
        get_timeout(c, t, "upstream_ms", 1, &cfg->upstream_timeout_ms))
        return -1;
    /* A shutdown may be immediate; the others need some time to elapse. */
    return get_timeout(c, t, "shutdown_ms", 0, &cfg->shutdown_timeout_ms);
}

static int get_choice(cfg_ctx *c, const cJSON *parent, const char *key, const char *label, const char *const *names,
                      int *out)
{
    const cJSON *n;
    if (get_string(c, parent, key, label, &n))
        return -1;
    if (n == NULL)
        return 0;
    char list[128] = "";
    for (int i = 0; names[i]; i++) {
        if (strcmp(n->valuestring, names[i]) == 0) {
            *out = i;
            return 0;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    }
    return fail_at(c, n, "%s must be one of: %s", label, list);
}

/* The CA bundle, and which client carries plain http:// upstreams: "auto"
 * (the built-in HTTP/1.1 client unless a proxy applies to the host) or
 * "libcurl" (libcurl for every upstream). */
static int parse_upstream_client(cfg_ctx *c, const cJSON *server)
{
    static const char *const clients[] = {"auto", "libcurl", NULL};
    const cJSON *n;
    if (get_choice(c, server, "upstream_client", "server.upstream_client", clients, &c->cfg->upstream_libcurl_only) ||
        get_string(c, server, "tls_ca_file", "server.tls_ca_file", &n))
        return -1;
    if (!n || !*n->valuestring)
        return 0;
    return set_path(c, &c->cfg->tls_ca_file, n->valuestring);
}

typedef int (*section_fn)(cfg_ctx *c, const cJSON *section);

/* Runs each parser over a section (NULL when absent: defaults apply). */
static int run_parsers(cfg_ctx *c, const cJSON *section, const section_fn *parsers, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (parsers[i](c, section))
            return -1;
    return 0;
}

/* One of `names` (its index into *out), for enumerated settings. */

static int parse_log(cfg_ctx *c, const cJSON *server)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    const cJSON *l, *access, *file;
    if (get_section(c, server, "log", "server.log", &l))
        return -1;
    if (!l)
        return 0;
    if (check_keys(c, l, "server.log", log_keys) ||
        get_choice(c, l, "level", "server.log.level", levels, &c->cfg->log_level) ||
        get_choice(c, l, "format", "server.log.format", formats, &c->cfg->log_json) ||
        get_string(c, l, "file", "server.log.file", &file))
        return -1;
    access = cJSON_GetObjectItemCaseSensitive(l, "access");
    if (!is_absent(access) && !cJSON_IsBool(access))
        return fail_at(c, access, "server.log.access must be true or false");
    if (cJSON_IsBool(access))
        c->cfg->log_access = cJSON_IsTrue(access);
    return file && *file->valuestring ? set_path(c, &c->cfg->log_file, file->valuestring) : 0;
}

static int parse_server(cfg_ctx *c, const cJSON *root)
{
    static const section_fn parsers[] = {parse_listen,          parse_workers, parse_prefix,
                                         parse_api_keys,        parse_limits,  parse_timeouts,
                                         parse_upstream_client, parse_log,     parse_cors};
    const cJSON *server;
    if (get_section(c, root, "server", "server", &server) || (server && check_keys(c, server, "server", server_keys)))
        return -1;
    return run_parsers(c, server, parsers, sizeof parsers / sizeof parsers[0]);
}

/* ---- plugins ---- */

static int is_listed(char **names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static int parse_enabled(cfg_ctx *c, const cJSON *plugins)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(plugins, "enabled"), *item;
    prism_config *cfg = c->cfg;
    if (is_absent(n))
        return 0;
    if (!cJSON_IsArray(n))
        return fail_at(c, n, "plugins.enabled must be a list of plugin names, e.g. [ai_gateway]");
    cJSON_ArrayForEach(item, n)
    {
        if (!cJSON_IsString(item) || !is_plugin_name(item->valuestring))
            return fail_at(c, item, "plugins.enabled: a plugin name is lowercase letters, digits and '_'");
        if (is_listed(cfg->enabled, cfg->enabled_count, item->valuestring))
            return fail_at(c, item, "plugins.enabled lists '%s' twice", item->valuestring);
        if (push_str(&cfg->enabled, &cfg->enabled_count, item->valuestring, strlen(item->valuestring)))
            return oom(c);
    }
    return 0;
}

static int parse_dir(cfg_ctx *c, const cJSON *plugins)
{
    const cJSON *n;
    if (get_string(c, plugins, "dir", "plugins.dir", &n))
        return -1;
    if (n && !*n->valuestring)
        return fail_at(c, n, "plugins.dir must not be empty");
    return set_path(c, &c->cfg->plugins_dir, n ? n->valuestring : ".prism/plugins");
}

static int parse_paths(cfg_ctx *c, const cJSON *plugins)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(plugins, "paths"), *item;
    prism_config *cfg = c->cfg;
    if (is_absent(n))
        return 0;
    if (!cJSON_IsArray(n))
        return fail_at(c, n, "plugins.paths must be a list of folders");
    cJSON_ArrayForEach(item, n)
    {
        if (!cJSON_IsString(item) || !*item->valuestring)
            return fail_at(c, item, "plugins.paths: each entry must be a folder path");
        char *abs = resolve_path(cfg->dir, item->valuestring);
        int rc = abs ? push_str(&cfg->plugin_paths, &cfg->plugin_path_count, abs, strlen(abs)) : -1;
        free(abs);
        if (rc)
            return oom(c);
    }
    return 0;
}

static int parse_overrides(cfg_ctx *c, const cJSON *plugins)
{
    const cJSON *n, *item;
    if (get_section(c, plugins, "config", "plugins.config", &n))
        return -1;
    cJSON_ArrayForEach(item, n)
    {
        if (!cJSON_IsObject(item))
            return fail_at(c, item, "plugins.config.%s must be a mapping of settings", item->string);
    }
    c->cfg->plugin_overrides = n;
    return 0;
}

static int parse_plugins(cfg_ctx *c, const cJSON *root)
{
    static const section_fn parsers[] = {parse_enabled, parse_dir, parse_paths, parse_overrides};
    const cJSON *plugins;
    if (get_section(c, root, "plugins", "plugins", &plugins) ||
        (plugins && check_keys(c, plugins, "plugins", plugin_keys)))
        return -1;
    return run_parsers(c, plugins, parsers, sizeof parsers / sizeof parsers[0]);
}

/* ---- routes ---- */

static int parse_chain(cfg_ctx *c, const cJSON *route, const cJSON *chain, prism_route_conf *out)
{
    const cJSON *step;
    if (!cJSON_IsArray(chain) || cJSON_GetArraySize(chain) == 0)
        return fail_at(c, chain, "route '%s': chain must be a non-empty list of steps", route->string);
    cJSON_ArrayForEach(step, chain)
    {
        if (!cJSON_IsString(step) || !is_step(step->valuestring))
            return fail_at(c, step, "route '%s': each step must be a plugin name, group:chain or group.plugin",
                           route->string);
        if (push_str(&out->chain, &out->chain_len, step->valuestring, strlen(step->valuestring)))
            return oom(c);
    }
    return 0;
}

/* `path: {chain: [...]}`, or the shorthand `path: [...]`. */
static int parse_route(cfg_ctx *c, const cJSON *route, prism_route_conf *out)
{
    const char *path = route->string;
    const cJSON *chain = route;
    if (path[0] != '/' || strpbrk(path, " \t?#"))
        return fail_at(c, route, "route '%s' must be a path starting with '/'", path);
    if (cJSON_IsObject(route)) {
        char where[300];
        snprintf(where, sizeof where, "route '%s'", path);
        if (check_keys(c, route, where, route_keys))
            return -1;
        chain = cJSON_GetObjectItemCaseSensitive(route, "chain");
        if (!chain)
            return fail_at(c, route, "route '%s' needs a chain, e.g. {chain: [ai_gateway:chat]}", path);
    }
    out->line = prism_doc_line(c->doc, route);
    out->path = strdup(path);
    if (!out->path)
        return oom(c);
    return parse_chain(c, route, chain, out);
}

static int parse_routes(cfg_ctx *c, const cJSON *root)
{
    const cJSON *routes, *route;
    prism_config *cfg = c->cfg;
    if (get_section(c, root, "routes", "routes", &routes))
        return -1;
    if (!routes)
        return 0;
    cfg->routes = calloc((size_t)cJSON_GetArraySize(routes) + 1, sizeof *cfg->routes);
    if (!cfg->routes)
        return oom(c);
    cJSON_ArrayForEach(route, routes)
    {
        /* Counted before parsing, so a half-built route is freed with the rest. */
        if (parse_route(c, route, &cfg->routes[cfg->route_count++]))
            return -1;
    }
    return 0;
}

/* ---- loading ---- */

/* The absolute folder of `path`, symlinks resolved. */
static char *file_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return NULL;
    char *abs = realpath(dir, NULL);
    free(dir);
    return abs;
}

static int set_defaults(prism_config *cfg)
{
    cfg->listen_host = strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->workers = 1;
    cfg->api_prefix = strdup("/v1");
    cfg->max_body_bytes = 10485760;
    cfg->max_header_bytes = 8192;
    cfg->read_timeout_ms = 30000;
    cfg->upstream_connect_timeout_ms = 10000;
    cfg->upstream_timeout_ms = 600000;
    cfg->shutdown_timeout_ms = 10000;
    cfg->log_level = 1; /* info */
    cfg->log_json = 1;
    cfg->log_access = 1;
    return cfg->listen_host && cfg->api_prefix ? 0 : -1;
}

static prism_config *config_new(const char *path, char *err, size_t errlen)
{
    prism_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    cfg->file = strdup(path);
    cfg->dir = file_dir(path);
    if (!cfg->file || !cfg->dir || set_defaults(cfg)) {
        snprintf(err, errlen, "%s: cannot resolve the file's folder or out of memory", path);
        prism_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static int parse_root(cfg_ctx *c)
{
    const cJSON *root = prism_doc_root(c->doc);
    if (!cJSON_IsObject(root))
        return fail_at(c, root, "expected a mapping (server:, plugins:, routes:) at the top level");
    if (check_keys(c, root, "the top level", top_keys))
        return -1;
    if (parse_server(c, root) || parse_plugins(c, root))
        return -1;
    return parse_routes(c, root);
}

int prism_config_load(const char *path, prism_config **out, char *err, size_t errlen)
{
    prism_doc *doc;
    *out = NULL;
    if (prism_yaml_load(path, PRISM_YAML_INTERPOLATE, &doc, err, errlen))
        return -1;
    prism_config *cfg = config_new(path, err, errlen);
    if (!cfg) {
        prism_doc_free(doc);
        return -1;
    }
    cfg->doc = doc;
    cfg_ctx c = {cfg, doc, err, errlen};
    if (parse_root(&c)) {
        prism_config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

static void free_routes(prism_route_conf *routes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(routes[i].path);
        free_strv(routes[i].chain, routes[i].chain_len);
    }
    free(routes);
}

void prism_config_free(prism_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    free(cfg->dir);
    free(cfg->listen_host);
    free(cfg->api_prefix);
    free_strv(cfg->api_keys, cfg->api_key_count);
    free_strv(cfg->cors_origins, cfg->cors_origin_count);
    free(cfg->tls_ca_file);
    free(cfg->log_file);
    free_strv(cfg->enabled, cfg->enabled_count);
    free(cfg->plugins_dir);
    free_strv(cfg->plugin_paths, cfg->plugin_path_count);
    free_routes(cfg->routes, cfg->route_count);
    prism_doc_free(cfg->doc);
    free(cfg);
}
