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
 * does with a context happens on that context's worker thread. After a
 * reload, `destroy` runs on whichever thread ends the last request that
 * used the old instance.
 */
#ifndef PRISM_PLUGIN_H
#define PRISM_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
    /* Optional: runs once the request is over, for every plugin that ran
     * (dispatched sub-plugins included): usage, logs, metrics. */
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

/* The body's tree for a plugin that only reads it (a translating
 * provider): the prism_ctx_json tree once a plugin has asked for that one
 * (with its edits), else the same tree built in the request's memory, with
 * no allocation per node and nothing to free. Never change or free it. */
const cJSON *prism_ctx_json_read(prism_ctx *ctx);

/* JSON text (an upstream's answer, say) as a cJSON tree, exactly what
 * cJSON would build, in about half its time (read by simdjson, which the
 * context's worker keeps); NULL when the text is not one JSON value with
 * nothing but whitespace after it. Free it with cJSON_Delete. */
cJSON *prism_json_parse(prism_ctx *ctx, const char *text, size_t len);
/* The same tree, to read only, in the request's memory: released with the
 * request, never to be changed or freed (for text handled once per
 * request; a stream's many events want a scratch). */
const cJSON *prism_json_read(prism_ctx *ctx, const char *text, size_t len);
/* For many short-lived texts, a stream's events: the same read-only tree,
 * kept only until the next read on the same scratch, which then uses its
 * memory again. A scratch lasts as long as the request. */
typedef struct prism_json_scratch prism_json_scratch;
prism_json_scratch *prism_json_scratch_new(prism_ctx *ctx);
const cJSON *prism_json_scratch_read(prism_json_scratch *s, const char *text, size_t len);
/* A few fields of a small object without its tree: want[i] names a member
 * of the top-level object (in = -1) or of the object an earlier want names
 * (in = that want's index), and got[i] describes it (prism_json_field
 * below; times is 1 when present). Strings are unescaped and NUL-terminated
 * and last until the plugin next reads JSON, by any call. 0, or -1 when
 * the text is not one JSON object or is one a tree reads differently: read
 * it with prism_json_scratch_read then. A stream's commonest event read
 * this way costs about half its tree. */
typedef struct prism_json_want {
    const char *key;
    size_t key_len;
    int in;
} prism_json_want;
typedef struct prism_json_field prism_json_field;
int prism_json_scratch_pick(prism_json_scratch *s, const char *text, size_t len, const prism_json_want *want,
                            prism_json_field *got, size_t n);

/* The body's fields without a tree. Routing and pass-through need a few
 * top-level fields; prism_ctx_json builds a node and copies a string for
 * every value of the body, which costs more than the rest of a
 * pass-through request once the body has a few kilobytes. These read the
 * body once (validated as strictly as JSON gets, UTF-8 included) and keep
 * the members of its top-level object and of that object's object members.
 * They see the body's bytes: prism_ctx_set_body changes what they return,
 * edits to the prism_ctx_json tree do not, except for a body simdjson leaves
 * to cJSON (a number such as 01 or 1e400 in it), whose fields are read from
 * that tree. */
typedef enum prism_json_type {
    PRISM_JSON_ABSENT = 0,
    PRISM_JSON_NULL,
    PRISM_JSON_FALSE,
    PRISM_JSON_TRUE,
    PRISM_JSON_NUMBER,
    PRISM_JSON_STRING,
    PRISM_JSON_ARRAY,
    PRISM_JSON_OBJECT,
} prism_json_type;

struct prism_json_field {
    prism_json_type type;
    unsigned times;     /* how often the name occurs in its object (0: absent); the rest is the first's */
    double number;      /* PRISM_JSON_NUMBER */
    const char *string; /* PRISM_JSON_STRING: unescaped, NUL-terminated, as long-lived as the request */
    size_t len;         /* its length in bytes (an escaped \u0000 counts) */
    size_t count;       /* PRISM_JSON_ARRAY, PRISM_JSON_OBJECT: how many elements */
};

/* What the body is. An object body is also well-formed UTF-8 without raw
 * control characters (prism_json_bytes_check tells which of those an
 * invalid one has). */
enum { PRISM_BODY_OBJECT = 0, PRISM_BODY_OTHER = 1, PRISM_BODY_INVALID = 2 };
int prism_ctx_body_kind(prism_ctx *ctx);
/* The body's top-level field `name`, or with `object` set, field `name` of
 * the top-level field `object` (an object). Type PRISM_JSON_ABSENT when there
 * is none, or when the body is not an object. */
prism_json_field prism_ctx_body_field(prism_ctx *ctx, const char *object, const char *name);
const char *prism_ctx_request_id(const prism_ctx *ctx);
/* Memory freed when the request ends. Never NULL (aborts on exhaustion). */
void *prism_ctx_alloc(prism_ctx *ctx, size_t size);
char *prism_ctx_strdup(prism_ctx *ctx, const char *s);
/* A small string store shared along the chain (copies both key and value). */
void prism_ctx_set(prism_ctx *ctx, const char *key, const char *value);
const char *prism_ctx_get(const prism_ctx *ctx, const char *key);
/* Token counts of the answer, for logs and metrics (-1: unknown). */
void prism_ctx_set_usage(prism_ctx *ctx, long prompt_tokens, long completion_tokens);
/* Finds an OpenAI "usage" object ({"prompt_tokens","completion_tokens"})
 * in a response body or stream chunk and records it with
 * prism_ctx_set_usage; nothing when there is none. */
void prism_ctx_note_openai_usage(prism_ctx *ctx, const char *text, size_t len);
/* A fast pseudo-random number (not for secrets): load spreading, jitter. */
uint64_t prism_ctx_random(prism_ctx *ctx);
/* Finishes a PENDING step: the chain carries on as if the step returned it. */
void prism_ctx_resume(prism_ctx *ctx, prism_status status);
/* Hands the request to a sibling sub-plugin of the same meta-plugin (or to a
 * top-level plugin by name). A sibling that is not loaded gets a 501 OpenAI
 * error written for it and PRISM_DONE returned. */
prism_status prism_ctx_dispatch(prism_ctx *ctx, const char *plugin_name);
/* Lets a plugin take over before an error response (status >= 400, not a
 * stream) is sent: `fn` returns 1 when it answered the request another way
 * (e.g. a fallback model): the error and any headers added are dropped. */
void prism_ctx_on_error_response(prism_ctx *ctx, int (*fn)(void *data, prism_ctx *ctx, int status), void *data);
/* Replaces the request body (copied) for the steps that follow. */
void prism_ctx_set_body(prism_ctx *ctx, const char *data, size_t len);
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
    const struct prism_retry_policy *retry; /* NULL: no retries */
    long connect_timeout_ms;                /* 0: the default */
    long timeout_ms;                        /* whole transfer; 0: none */
    /* From the start (DNS, connect, TLS, sending included) to the first
     * response byte; 0: none. */
    long first_byte_timeout_ms;
    /* Longest silence between response bytes once the response started
     * (not counting time paused for a slow client); 0: none. */
    long idle_timeout_ms;
} prism_http_request_t;

/* Retries: the core re-sends a request that failed before anything of its
 * response reached the plugin (so never once a stream has begun), after
 * base_delay_ms * 2^n with jitter, capped at max_delay_ms, or after the
 * upstream's retry-after when it gives one (up to 60 s; longer: no retry). */
#define PRISM_RETRY_CONNECT 1u /* DNS, connect, TLS errors, resets before a response */
#define PRISM_RETRY_TIMEOUT 2u
#define PRISM_RETRY_429     4u
#define PRISM_RETRY_5XX     8u

typedef struct prism_retry_policy {
    unsigned attempts; /* retries after the first try; 0: none */
    unsigned base_delay_ms;
    unsigned max_delay_ms;
    unsigned on; /* PRISM_RETRY_* */
} prism_retry_policy;

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
    /* Optional: before retry `attempt` (1, 2, ...), with what failed (an
     * HTTP status, or 0 and the error). The plugin may change req->url and
     * req->headers (strings must stay valid until completion), e.g. to use
     * another key. */
    void (*before_retry)(void *data, unsigned attempt, int status, prism_upstream_error err, prism_http_request_t *req);
} prism_http_callbacks_t;

/* Starts a transfer tied to the request: if the client goes away it is
 * cancelled and no callback runs after that. NULL if it could not start;
 * when the plugin may not call that host (permissions.network) the core has
 * already answered the client (prism_ctx_responded() says so).
 * `req->retry` (optional, must outlive the request) enables retries. */
prism_upstream *prism_http_request(prism_ctx *ctx, const prism_http_request_t *req, const prism_http_callbacks_t *cb);
/* A response header by name (case-insensitive), valid until completion. */
const char *prism_upstream_header(const prism_upstream *up, const char *name);
void prism_upstream_resume(prism_upstream *up);
/* Copies the named upstream response headers that are present onto the
 * client's response (rate-limit headers, retry-after, ...). */
void prism_relay_headers(prism_ctx *ctx, const prism_upstream *up, const char *const *names, size_t count);
/* Cancels a transfer of this request at once (and any retry it had
 * pending); no callback runs afterwards. */
void prism_http_cancel(prism_ctx *ctx, prism_upstream *up);

/* ---- helpers most provider plugins need ---- */

/* config[key] as a string; NULL when absent or not a string. */
const char *prism_conf_string(const cJSON *config, const char *key);
/* config[key] as an integer clamped to [min, max]; `def` when absent. */
long prism_conf_int(const cJSON *config, const char *key, long def, long min, long max);
/* config[key] as a list of strings (malloc'd copies; absent: empty list).
 * -1 with a message when it is not a list of strings. */
int prism_conf_strings(const cJSON *config, const char *key, char ***out, size_t *count, char *err, size_t errlen);
void prism_strings_free(char **list, size_t count);
/* 1 when the bytes are well-formed UTF-8 (no overlongs, no surrogates). */
int prism_utf8_valid(const char *s, size_t len);
/* The length of the well-formed UTF-8 character at s (reading at most n
 * bytes, and never past a NUL), 0 when the bytes there are not one. */
size_t prism_utf8_char(const char *s, size_t n);
/* Replaces, in place, every byte of the NUL-terminated s that does not
 * belong to a well-formed UTF-8 character with '?': for text that echoes
 * client bytes (a path, a model name) or was cut at a byte count. */
void prism_utf8_scrub(char *s);
/* What a JSON text's bytes alone can show is wrong with it: broken UTF-8, or
 * a control character other than the tab, CR and LF of whitespace (raw
 * control characters are never valid JSON; a parser such as cJSON lets them
 * through inside strings). */
enum { PRISM_JSON_BYTES_OK = 0, PRISM_JSON_BAD_UTF8 = 1, PRISM_JSON_CONTROL = 2 };
int prism_json_bytes_check(const char *s, size_t len);
/* Whether s is key: its first two bytes are compared before a strcmp is
 * paid for (translating a request looks up dozens of keys, most of them
 * absent, and keys that share a first letter are common: model, messages,
 * max_tokens). */
static inline int prism_json_key_is(const char *s, const char *key)
{
    if (s[0] != key[0] || key[0] == '\0')
        return s[0] == key[0];
    return s[1] == key[1] && (key[1] == '\0' || strcmp(s + 2, key + 2) == 0);
}
/* cJSON_GetObjectItemCaseSensitive, faster (prism_json_key_is). The first
 * match; NULL when obj is NULL, not an object or without the key. */
static inline cJSON *prism_json_get(const cJSON *obj, const char *key)
{
    if (obj == NULL || key == NULL)
        return NULL;
    for (cJSON *c = obj->child; c != NULL; c = c->next)
        if (c->string != NULL && prism_json_key_is(c->string, key))
            return c;
    return NULL;
}
/* Adds item to obj under key without copying the key, which must outlive
 * the tree (a string literal): cJSON_Add*ToObject would copy it, an
 * allocation per field of every translated message. Returns item, or NULL
 * (item deleted) when it could not be added. */
static inline cJSON *prism_json_add(cJSON *obj, const char *key, cJSON *item)
{
    if (item != NULL && !cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}
/* The tree as unformatted JSON text: what cJSON_PrintUnformatted writes,
 * several times faster, and with every number's exact value (cJSON rounds
 * to 15 digits: a 64-bit seed or id would change). See json_print.c. malloc'd, NUL-terminated; its
 * length in *len when len is not NULL. NULL when memory ran out or the tree
 * holds an invalid node. */
char *prism_json_print(const cJSON *item, size_t *len);
/* JSON text written front to back, for output whose shape the code knows:
 * no tree to build, print and free. Commas come by themselves; keys and
 * strings are escaped as prism_json_print escapes them (a string of len
 * bytes; NULL writes null); string_begin/part/end write one string from
 * pieces; prism_json_value writes a tree where a value goes. Any failure
 * (memory, a tree that cannot be printed, unbalanced levels or strings, a
 * second value at the top) is kept, and
 * finish then returns NULL. finish and free release the writer; finish
 * hands over the malloc'd, NUL-terminated text and its length. */
typedef struct prism_json_writer prism_json_writer;
prism_json_writer *prism_json_writer_new(void);
char *prism_json_writer_finish(prism_json_writer *w, size_t *len);
void prism_json_writer_free(prism_json_writer *w);
/* For a writer used again and again (a stream's frames): the text so far,
 * NUL-terminated and owned by the writer, or NULL where finish would give
 * NULL; clear empties the writer, forgets a failure and keeps its memory. */
const char *prism_json_writer_text(prism_json_writer *w, size_t *len);
void prism_json_writer_clear(prism_json_writer *w);
void prism_json_object_begin(prism_json_writer *w);
void prism_json_object_end(prism_json_writer *w);
void prism_json_array_begin(prism_json_writer *w);
void prism_json_array_end(prism_json_writer *w);
void prism_json_key(prism_json_writer *w, const char *key, size_t len);
void prism_json_string(prism_json_writer *w, const char *s, size_t len);
void prism_json_string_begin(prism_json_writer *w);
void prism_json_string_part(prism_json_writer *w, const char *s, size_t len);
void prism_json_string_end(prism_json_writer *w);
void prism_json_number(prism_json_writer *w, double d);
void prism_json_bool(prism_json_writer *w, int b);
void prism_json_null(prism_json_writer *w);
void prism_json_value(prism_json_writer *w, const cJSON *tree);
/* Text written as it is, trusted to be JSON: a key already quoted and
 * followed by its colon, or one whole value. For the macros below. */
void prism_json_raw_key(prism_json_writer *w, const char *quoted, size_t len);
void prism_json_raw(prism_json_writer *w, const char *json, size_t len);
/* A key, or a string value, that is a string literal with nothing to
 * escape (no quote, backslash or control character): quoted by the
 * compiler and copied, with no escaping at run time. */
#define PRISM_JSON_KEY(w, lit) prism_json_raw_key((w), "\"" lit "\":", sizeof(lit) + 2)
#define PRISM_JSON_LIT(w, lit) prism_json_raw((w), "\"" lit "\"", sizeof(lit) + 1)
/* 1 when s ends with tail (a request path with an endpoint, say). */
int prism_str_ends_with(const char *s, const char *tail);
/* 1 when s holds a control character (never allowed in header values). */
int prism_has_control_chars(const char *s);
/* `base` (an http(s) URL; trailing slashes ignored) + `path`, malloc'd;
 * NULL with a message when base is not an http(s) URL. */
char *prism_url_join(const char *base, const char *path, char *err, size_t errlen);
/* "Name: value", malloc'd; NULL when value is NULL or empty. */
char *prism_header_line(const char *name, const char *value);
/* Appends {"id","object":"model","created":0,"owned_by"} for each id. */
void prism_models_append(cJSON *data, char *const *ids, size_t count, const char *owned_by);

/* A provider's `timeouts` and `retry` sections:
 *   timeouts: {connect_ms, first_byte_ms, idle_ms, total_ms}   (0: server default / none)
 *   retry: {attempts, base_delay_ms, max_delay_ms, on: [connect, timeout, "429", "5xx"]} */
typedef struct prism_upstream_conf {
    long connect_timeout_ms;
    long first_byte_timeout_ms;
    long idle_timeout_ms;
    long timeout_ms;
    prism_retry_policy retry;
} prism_upstream_conf;
int prism_conf_upstream(const cJSON *config, prism_upstream_conf *out, char *err, size_t errlen);
/* Sets a request's timeouts and retry policy from the parsed sections. */
void prism_upstream_conf_apply(const prism_upstream_conf *conf, prism_http_request_t *req);

/* A provider's keys and endpoints, from its config:
 *   api_key: K            one key, or
 *   keys: [{key, weight, base_url}, ...]   several keys or deployments
 *   base_url: URL         the default endpoint root; `path` is appended
 *   key_cooldown_ms: N    a key that gets 429/401/403/5xx rests this long
 * Each key's header line ("Authorization: Bearer K") and URL are built once.
 * Shared by all workers without locks: a pick is a few array reads and a
 * random number. With no key at all there is one entry whose header is NULL. */
typedef struct prism_keyring prism_keyring;
prism_keyring *prism_keyring_new(const cJSON *config, const char *header_name, const char *value_prefix,
                                 const char *default_base_url, const char *path, char *err, size_t errlen);
size_t prism_keyring_count(const prism_keyring *k);
const char *prism_keyring_header(const prism_keyring *k, size_t i);
const char *prism_keyring_url(const prism_keyring *k, size_t i);
/* A key that is not resting (weighted); when all rest, the one back first. */
size_t prism_keyring_pick(prism_keyring *k, prism_ctx *ctx);
/* What key i got: 429/401/403/5xx (or 0: connection failure) start its
 * cooldown; anything else ends it. */
void prism_keyring_report(prism_keyring *k, size_t i, int status);
/* An upstream can send back the key it was given (an echoing proxy, an error
 * quoting the request): providers pass what they relay through these so a
 * key never reaches a client. find: where key i's secret first occurs in
 * buf, or NULL; redact: overwrites every occurrence with '*' (same length,
 * so JSON and SSE framing stay valid) and returns how many. Keys shorter
 * than PRISM_KEY_MIN_REDACT bytes are not looked for: too short to tell
 * from ordinary text. */
#define PRISM_KEY_MIN_REDACT 8
const char *prism_keyring_find(const prism_keyring *k, size_t i, const char *buf, size_t len);
size_t prism_keyring_redact(const prism_keyring *k, size_t i, char *buf, size_t len);
void prism_keyring_free(prism_keyring *k);

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
