/*
 * config.h - the server configuration (config.yml).
 *
 *   server:
 *     listen: 127.0.0.1:8080        # HOST:PORT; [v6]:PORT accepted
 *     workers: 1                    # event-loop threads; 0 = one per core
 *     api_prefix: /v1
 *     api_keys: [k1, k2]            # or "k1,k2"; default $PRISM_API_KEYS
 *     cors_origins: [https://app.example.com]   # or "*"; default: none
 *     limits:   { max_body_bytes: 10485760, max_header_bytes: 8192 }
 *     timeouts: { read_ms: 30000, upstream_connect_ms: 10000,
 *                 upstream_ms: 600000, shutdown_ms: 10000 }
 *     tls_ca_file: /path/ca.pem      # CA bundle for upstream TLS (optional)
 *     upstream_client: auto          # or libcurl (also for plain http://)
 *     log: { level: info, format: json, access: true, file: "" }
 *   plugins:
 *     enabled: [ai_gateway]
 *     dir: .prism/plugins            # where `prism install` puts plugins
 *     paths: [more/plugin/dirs]      # extra folders searched for plugins
 *     config: { openai_provider: {...} }   # per-plugin overrides
 *   routes:
 *     /chat/completions: { chain: [ai_gateway:chat] }
 *
 * Every scalar goes through ${VAR} interpolation. Relative paths are taken
 * from the config file's folder.
 */
#ifndef PRISM_CONFIG_H
#define PRISM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "yaml.h"

typedef struct prism_route_conf {
    char *path;   /* as written, e.g. "/chat/completions" */
    char **chain; /* step names: "plugin", "meta:chain" or "meta.sub" */
    size_t chain_len;
    int line; /* where it was declared, for messages */
} prism_route_conf;

typedef struct prism_config {
    char *file; /* the path it was loaded from */
    char *dir;  /* that file's folder, absolute */

    char *listen_host; /* "127.0.0.1", "::1", "0.0.0.0" ... */
    int listen_port;
    int workers; /* 0: one per core */
    char *api_prefix;
    char **api_keys;
    size_t api_key_count;
    char **cors_origins; /* browser origins allowed to call; "*": any */
    size_t cors_origin_count;
    size_t max_body_bytes;
    size_t max_header_bytes;
    uint64_t read_timeout_ms;
    uint64_t upstream_connect_timeout_ms;
    uint64_t upstream_timeout_ms;
    uint64_t shutdown_timeout_ms;
    char *tls_ca_file;         /* NULL: the system bundle */
    int upstream_libcurl_only; /* server.upstream_client: 0 auto, 1 libcurl */
    int log_level;             /* prism_log_level */
    int log_json;              /* 1: JSON lines, 0: plain text */
    int log_access;            /* one line per request */
    char *log_file;            /* NULL: stderr */

    char **enabled;
    size_t enabled_count;
    char *plugins_dir;   /* absolute */
    char **plugin_paths; /* absolute, searched after plugins_dir */
    size_t plugin_path_count;
    const cJSON *plugin_overrides; /* plugins.config, object or NULL; owned by doc */

    prism_route_conf *routes;
    size_t route_count;

    prism_doc *doc;
} prism_config;

/* Loads and validates. On error returns -1 with "file:line: message". */
int prism_config_load(const char *path, prism_config **out, char *err, size_t errlen);
/* Overrides server.listen ("HOST:PORT"). -1 with a message when malformed. */
int prism_config_set_listen(prism_config *cfg, const char *hostport, char *err, size_t errlen);
/* Parses "HOST:PORT" / "[v6]:PORT" into a malloc'd host and a port. */
int prism_parse_hostport(const char *s, char **host, int *port, char *err, size_t errlen);
/* Whether a host string names a loopback address (127.0.0.0/8, ::1, localhost). */
int prism_host_is_loopback(const char *host);
void prism_config_free(prism_config *cfg);

#endif
