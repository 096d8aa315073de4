/*
 * prism/plugin.h - the contract between Prism and its plugins.
 *
 * This is the only header a plugin needs. A plugin is a shared object that
 * exports one symbol, `prism_plugin`, a const prism_plugin_t descriptor.
 * Prism checks `abi_version` before calling anything else, so a plugin built
 * against another version of this header is refused with a clear message
 * instead of crashing.
 *
 * Threading: one plugin instance serves every worker. `handle` may run on
 * several worker threads at once, so an instance must be read-only after
 * `create` (per-request state belongs in the context). Everything a plugin
 * does with a context happens on that context's worker thread.
 */
#ifndef PRISM_PLUGIN_H
#define PRISM_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to this header. */
#define PRISM_PLUGIN_ABI_VERSION 1
/* The name of the descriptor a plugin exports. */
#define PRISM_PLUGIN_SYMBOL "prism_plugin"

typedef struct prism_ctx prism_ctx;           /* one request on its way through a chain */
typedef struct prism_host prism_host;         /* services offered to a plugin instance */
typedef struct prism_upstream prism_upstream; /* one outgoing HTTP transfer */

typedef enum prism_status {
    PRISM_CONTINUE = 0, /* run the next step of the chain */
    PRISM_DONE = 1,     /* a response was produced (or is streaming) */
    PRISM_PENDING = 2,  /* async work started; prism_ctx_resume() follows */
} prism_status;

typedef struct prism_plugin_t {
    uint32_t abi_version; /* PRISM_PLUGIN_ABI_VERSION */
    const char *name;
    const char *version;
    /* Builds an instance from the plugin's config.yml (an object, never NULL).
     * On failure returns NULL and writes a one-line reason into err. */
    void *(*create)(const cJSON *config, prism_host *host, char *err, size_t errlen);
    prism_status (*handle)(void *instance, prism_ctx *ctx);
    void (*destroy)(void *instance);
    /* Optional: runs once the response is complete (usage, logs, metrics). */
    void (*on_finish)(void *instance, prism_ctx *ctx);
    /* Optional: appends OpenAI model objects it knows to `data` (GET /v1/models). */
    void (*list_models)(void *instance, cJSON *data);
} prism_plugin_t;

/* ---- host services (valid for the instance's lifetime) ---- */

typedef enum prism_log_level {
    PRISM_LOG_DEBUG = 0,
    PRISM_LOG_INFO = 1,
    PRISM_LOG_WARN = 2,
    PRISM_LOG_ERROR = 3,
} prism_log_level;

void prism_log(prism_host *host, prism_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The folder the plugin was loaded from (where its config.yml lives). */
const char *prism_host_plugin_dir(const prism_host *host);

/* ---- the request ---- */

/* Method and path as received; the path excludes the query string. */
const char *prism_ctx_method(const prism_ctx *ctx);
const char *prism_ctx_path(const prism_ctx *ctx);
/* A request header by name (case-insensitive); NULL when absent. The value is
 * NUL-terminated and lives as long as the request. */
const char *prism_ctx_header(prism_ctx *ctx, const char *name);
const char *prism_ctx_body(const prism_ctx *ctx, size_t *len);
/* The body parsed as JSON, once, on first call; NULL when it is not valid
 * JSON. Owned by the context: never free it. Plugins may edit it. */
cJSON *prism_ctx_json(prism_ctx *ctx);
const char *prism_ctx_request_id(const prism_ctx *ctx);
/* Memory freed when the request ends. Never NULL (aborts on exhaustion). */
void *prism_ctx_alloc(prism_ctx *ctx, size_t size);
char *prism_ctx_strdup(prism_ctx *ctx, const char *s);
/* A small string store shared along the chain (copies both key and value). */
void prism_ctx_set(prism_ctx *ctx, const char *key, const char *value);
const char *prism_ctx_get(const prism_ctx *ctx, const char *key);
/* Finishes a PENDING step: the chain carries on as if the step returned it. */
void prism_ctx_resume(prism_ctx *ctx, prism_status status);
/* Hands the request to a sibling sub-plugin of the same meta-plugin (or to a
 * top-level plugin by name). A sibling that is not loaded gets a 501 OpenAI
 * error written for it and PRISM_DONE returned. */
prism_status prism_ctx_dispatch(prism_ctx *ctx, const char *plugin_name);
/* Called once if the client goes away before the response is complete. */
void prism_ctx_on_abort(prism_ctx *ctx, void (*cb)(void *data), void *data);

/* ---- responses ---- */

/* Adds a response header; only before the response starts. Values with
 * control characters are refused (returns -1). */
int prism_response_header(prism_ctx *ctx, const char *name, const char *value);
void prism_respond(prism_ctx *ctx, int status, const char *content_type, const char *body, size_t len);
void prism_respond_json(prism_ctx *ctx, int status, const cJSON *json);
/* An OpenAI-style error: {"error":{"message","type","param","code"}}.
 * `param` and `code` may be NULL (serialised as null). */
void prism_respond_error(prism_ctx *ctx, int status, const char *type, const char *code, const char *param,
                         const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Streaming: begin sends the status and headers, write copies and queues
 * bytes, end finishes the response. `prism_stream_buffered` is what the
 * client has not taken yet; past a high-water mark a producer should pause
 * and wait for the drain callback, which fires when the queue empties. */
int prism_stream_begin(prism_ctx *ctx, int status, const char *content_type);
int prism_stream_write(prism_ctx *ctx, const char *data, size_t len);
void prism_stream_end(prism_ctx *ctx);
size_t prism_stream_buffered(const prism_ctx *ctx);
void prism_stream_on_drain(prism_ctx *ctx, void (*cb)(void *data), void *data);
/* Whether a response (plain or streamed) has been started. */
int prism_ctx_responded(const prism_ctx *ctx);

/* ---- upstream HTTP (libcurl multi on the worker's event loop) ---- */

typedef enum prism_upstream_error {
    PRISM_UPSTREAM_OK = 0,
    PRISM_UPSTREAM_ERR_DNS,
    PRISM_UPSTREAM_ERR_CONNECT,
    PRISM_UPSTREAM_ERR_TLS,
    PRISM_UPSTREAM_ERR_TIMEOUT,
    PRISM_UPSTREAM_ERR_RESET, /* connection lost or response cut short */
    PRISM_UPSTREAM_ERR_OTHER,
} prism_upstream_error;

typedef struct prism_http_request_t {
    const char *method; /* "POST" when NULL */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t header_count;
    const char *body; /* must stay valid until completion (use ctx memory) */
    size_t body_len;
    long connect_timeout_ms; /* 0: the default */
    long timeout_ms;         /* whole transfer; 0: none */
} prism_http_request_t;

/* Return from on_body to stop receiving until prism_upstream_resume(). */
#define PRISM_UPSTREAM_PAUSE 1

typedef struct prism_http_callbacks_t {
    void *data;
    /* Status line and headers are in. */
    void (*on_response)(void *data, prism_upstream *up, int status);
    /* A chunk of the body, as it arrives. Return 0 or PRISM_UPSTREAM_PAUSE. */
    int (*on_body)(void *data, prism_upstream *up, const char *chunk, size_t len);
    /* The transfer is over; `message` describes an error (never a secret). */
    void (*on_complete)(void *data, prism_upstream *up, prism_upstream_error err, const char *message);
} prism_http_callbacks_t;

/* Starts a transfer tied to the request: if the client goes away it is
 * cancelled and no callback runs after that. NULL if it could not start. */
prism_upstream *prism_http_request(prism_ctx *ctx, const prism_http_request_t *req, const prism_http_callbacks_t *cb);
/* A response header by name (case-insensitive), valid until completion. */
const char *prism_upstream_header(const prism_upstream *up, const char *name);
void prism_upstream_resume(prism_upstream *up);
/* Copies the named upstream response headers that are present onto the
 * client's response (rate-limit headers, retry-after, ...). */
void prism_relay_headers(prism_ctx *ctx, const prism_upstream *up, const char *const *names, size_t count);
/* Cancels at once; no callback runs afterwards. */
void prism_upstream_cancel(prism_upstream *up);

/* ---- helpers most provider plugins need ---- */

/* config[key] as a string; NULL when absent or not a string. */
const char *prism_conf_string(const cJSON *config, const char *key);
/* config[key] as an integer clamped to [min, max]; `def` when absent. */
long prism_conf_int(const cJSON *config, const char *key, long def, long min, long max);
/* config[key] as a list of strings (malloc'd copies; absent: empty list).
 * -1 with a message when it is not a list of strings. */
int prism_conf_strings(const cJSON *config, const char *key, char ***out, size_t *count, char *err, size_t errlen);
void prism_strings_free(char **list, size_t count);
/* 1 when s holds a control character (never allowed in header values). */
int prism_has_control_chars(const char *s);
/* `base` (an http(s) URL; trailing slashes ignored) + `path`, malloc'd;
 * NULL with a message when base is not an http(s) URL. */
char *prism_url_join(const char *base, const char *path, char *err, size_t errlen);
/* "Name: value", malloc'd; NULL when value is NULL or empty. */
char *prism_header_line(const char *name, const char *value);
/* Appends {"id","object":"model","created":0,"owned_by"} for each id. */
void prism_models_append(cJSON *data, char *const *ids, size_t count, const char *owned_by);

/* A response body gathered in request memory, up to `max` bytes. */
typedef struct prism_body {
    char *data; /* NUL-terminated */
    size_t len, cap, max;
} prism_body;
/* -1 (and nothing appended) when the body would exceed b->max. */
int prism_body_append(prism_ctx *ctx, prism_body *b, const char *chunk, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* PRISM_PLUGIN_H */
