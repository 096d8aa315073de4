/*
 * openai_provider - serves OpenAI models through the Chat Completions API.
 *
 * The client already speaks OpenAI, so the request body goes upstream as it
 * came (no re-encoding), with the provider's key in place of the client's.
 * Streams are relayed chunk by chunk as curl delivers them; when the client
 * reads slower than the upstream writes, the transfer is paused until the
 * client's queue drains, so memory stays bounded by the high-water mark.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prism/plugin.h"

/* Pause the upstream once this much is queued for a slow client. */
#define STREAM_HIGH_WATER (256 * 1024)

typedef struct provider {
    prism_keyring *keys; /* keys and endpoints */
    char *org_header;
    char *project_header;
    prism_upstream_conf upstream;
    size_t max_response_bytes;
    char **models;
    size_t model_count;
    prism_host *host;
} provider;

/* The OpenAI endpoints relayed, by the request path's tail. Chat streams end
 * with data: [DONE]; Responses streams end with a response.* event instead. */
typedef enum endpoint { EP_CHAT, EP_RESPONSES, EP_EMBEDDINGS } endpoint;

static const char *const ENDPOINT_PATHS[] = {"/chat/completions", "/responses", "/embeddings"};
#define CHAT_PATH_LEN 17

typedef struct call {
    prism_ctx *ctx;
    const provider *p;
    endpoint ep;
    prism_upstream *up;
    size_t key; /* the keyring entry this attempt uses */
    int status;
    int streaming; /* the client's stream has begun */
    int paused;
    int stream_usage; /* the stream will end with a usage chunk */
    int saw_done;     /* the stream said it was complete (has_end_marker) */
    char tail[24];    /* the last bytes of the previous chunk, to see a split marker */
    size_t tail_len;
    prism_body body;        /* non-streamed body */
    const char *headers[6]; /* the last one is the key's, swapped on retry */
    size_t header_count;
} call;

static void provider_destroy(void *inst)
{
    provider *p = inst;
    if (p == NULL)
        return;
    prism_keyring_free(p->keys);
    free(p->org_header);
    free(p->project_header);
    prism_strings_free(p->models, p->model_count);
    free(p);
}

static int read_headers(provider *p, const cJSON *config, char *err, size_t errlen)
{
    const char *org = prism_conf_string(config, "organization");
    const char *project = prism_conf_string(config, "project");
    if ((org && prism_has_control_chars(org)) || (project && prism_has_control_chars(project)))
        return snprintf(err, errlen, "organization and project must not contain control characters"), -1;
    p->org_header = prism_header_line("OpenAI-Organization", org);
    p->project_header = prism_header_line("OpenAI-Project", project);
    if (prism_keyring_header(p->keys, 0) == NULL)
        prism_log(p->host, PRISM_LOG_WARN, "no api_key (OPENAI_API_KEY) set: requests go upstream unauthenticated");
    return 0;
}

static void *provider_create(const cJSON *config, prism_host *host, char *err, size_t errlen)
{
    provider *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return snprintf(err, errlen, "out of memory"), NULL;
    p->host = host;
    p->keys = prism_keyring_new(config, "Authorization", "Bearer ", "https://api.openai.com/v1", "/chat/completions",
                                err, errlen);
    p->max_response_bytes = (size_t)prism_conf_int(config, "max_response_bytes", 32L << 20, 1024, 1L << 30);
    if (p->keys == NULL || read_headers(p, config, err, errlen) != 0 ||
        prism_conf_upstream(config, &p->upstream, err, errlen) != 0 ||
        prism_conf_strings(config, "models", &p->models, &p->model_count, err, errlen) != 0) {
        provider_destroy(p);
        return NULL;
    }
    return p;
}

/* ---- relaying the response ---- */

/* Kept for the client: its SDK's retry logic reads retry-after,
 * retry-after-ms and x-should-retry. */
static const char *const relayed_headers[] = {
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "openai-processing-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
};

static void relay_headers(call *c)
{
    prism_relay_headers(c->ctx, c->up, relayed_headers, sizeof(relayed_headers) / sizeof(relayed_headers[0]));
    prism_response_header(c->ctx, "x-prism-provider", "openai_provider");
    /* x-request-id is Prism's own; the provider's id is what its support asks for. */
    const char *id = prism_upstream_header(c->up, "x-request-id");
    if (id != NULL)
        prism_response_header(c->ctx, "x-prism-upstream-request-id", id);
}

static void on_drain(void *data)
{
    call *c = data;
    if (c->paused && c->up != NULL) {
        c->paused = 0;
        prism_upstream_resume(c->up);
    }
}

/* A stream the client can read as one: text/event-stream. Anything else an
 * upstream sends to a stream request (an HTML error page from a proxy, a
 * JSON answer) is judged as a whole, like an unstreamed answer. */
static int is_event_stream(const char *ct)
{
    return ct != NULL && strncasecmp(ct, "text/event-stream", 17) == 0;
}

static void on_response(void *data, prism_upstream *up, int status)
{
    call *c = data;
    c->up = up;
    c->status = status;
    prism_keyring_report(c->p->keys, c->key, status);
    /* Only a successful stream is relayed as a stream: an error status is
     * buffered so the client gets an ordinary JSON error. */
    const char *ct = prism_upstream_header(up, "content-type");
    if (status >= 200 && status < 300 && prism_ctx_get(c->ctx, "openai.stream") != NULL && is_event_stream(ct)) {
        relay_headers(c);
        prism_stream_on_drain(c->ctx, on_drain, c);
        if (prism_stream_begin(c->ctx, status, ct) == 0)
            c->streaming = 1;
    }
}

/* A chat stream is complete once it says so: data: [DONE], or a choice's
 * finish_reason set to a string (some OpenAI-compatible servers end without
 * [DONE]): `"finish_reason":"` with at most one space before the quote. */
#define FINISH_KEY "\"finish_reason\":"
#define MARKER_MAX (sizeof(FINISH_KEY) - 1 + 2) /* the longest end marker */

/* The first `needle` (m bytes) in p[0..n), found by memchr on its byte at
 * `at`, one that is rare around it. glibc's memmem sets up a table on every
 * call, which costs more than scanning a whole event, and every chunk has a
 * finish_reason (null until the last). */
static const char *find(const char *p, size_t n, const char *needle, size_t m, size_t at)
{
    if (n < m)
        return NULL;
    const char *end = p + n - m + at + 1; /* past the last place for the byte at `at` */
    for (const char *q = p + at; q < end && (q = memchr(q, needle[at], (size_t)(end - q))) != NULL; q++)
        if (memcmp(q - at, needle, m) == 0)
            return q - at;
    return NULL;
}

static int has_end_marker(const char *p, size_t n)
{
    static const size_t klen = sizeof(FINISH_KEY) - 1;
    if (find(p, n, "[DONE]", 6, 1) != NULL) /* the D */
        return 1;
    const char *end = p + n;
    for (const char *f = p; (f = find(f, (size_t)(end - f), FINISH_KEY, klen, 7)) != NULL; f += klen) { /* the _ */
        const char *v = f + klen;
        if (v < end && *v == ' ')
            v++;
        if (v < end && *v == '"')
            return 1;
    }
    return 0;
}

/* Watches for an end marker, also one split across chunks: the last KEEP
 * bytes seen are kept and searched together with the next chunk. */
static void watch_done(call *c, const char *chunk, size_t len)
{
    enum { KEEP = MARKER_MAX - 1 };
    _Static_assert(sizeof(c->tail) >= KEEP, "call.tail holds KEEP bytes");
    if (c->saw_done)
        return;
    char joint[KEEP + MARKER_MAX];
    size_t head = len < MARKER_MAX ? len : MARKER_MAX, total = c->tail_len + head;
    memcpy(joint, c->tail, c->tail_len);
    memcpy(joint + c->tail_len, chunk, head);
    if (has_end_marker(joint, total) || has_end_marker(chunk, len)) {
        c->saw_done = 1;
        return;
    }
    if (len >= KEEP) {
        memcpy(c->tail, chunk + len - KEEP, KEEP);
        c->tail_len = KEEP;
    } else { /* joint holds all of the old tail and this short chunk */
        size_t drop = total > KEEP ? total - KEEP : 0;
        memmove(c->tail, joint + drop, total - drop);
        c->tail_len = total - drop;
    }
}

/* A chunk that carries the key this request was sent with goes out masked
 * (a key split across two chunks is not seen: each chunk is sent at once). */
static void stream_relay(call *c, const char *chunk, size_t len)
{
    if (prism_keyring_find(c->p->keys, c->key, chunk, len) == NULL) {
        prism_stream_write(c->ctx, chunk, len);
        return;
    }
    char *copy = malloc(len);
    if (copy == NULL)
        return; /* never the key unmasked: the chunk is lost instead */
    memcpy(copy, chunk, len);
    prism_keyring_redact(c->p->keys, c->key, copy, len);
    prism_stream_write(c->ctx, copy, len);
    free(copy);
}

static int on_body(void *data, prism_upstream *up, const char *chunk, size_t len)
{
    call *c = data;
    c->up = up;
    if (!c->streaming) {
        if (prism_body_append(c->ctx, &c->body, chunk, len) != 0) {
            prism_http_cancel(c->ctx, up);
            c->up = NULL;
            prism_respond_error(c->ctx, 502, "api_error", "upstream_response_too_large", NULL,
                                "The upstream response exceeded %zu bytes.", c->p->max_response_bytes);
            prism_ctx_resume(c->ctx, PRISM_DONE);
        }
        return 0;
    }
    stream_relay(c, chunk, len);
    if (c->ep == EP_CHAT)
        watch_done(c, chunk, len);
    /* Only streams with stream_options.include_usage carry usage. */
    if (c->stream_usage)
        prism_ctx_note_openai_usage(c->ctx, chunk, len);
    if (prism_stream_buffered(c->ctx) > STREAM_HIGH_WATER) {
        c->paused = 1;
        return PRISM_UPSTREAM_PAUSE;
    }
    return 0;
}

static int is_openai_error(const char *body, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    int ok = cJSON_IsObject(prism_json_get(j, "error"));
    cJSON_Delete(j);
    return ok;
}

/* A pass-through answer is relayed as it came, unparsed; a body that does
 * not even start and end as an object (an HTML page, garbage, a truncated or
 * empty body) is an upstream failure, not an answer. */
static int looks_like_object(const char *body, size_t len)
{
    size_t a = 0, b = len;
    while (a < b && (body[a] == ' ' || body[a] == '\t' || body[a] == '\n' || body[a] == '\r'))
        a++;
    while (b > a && (body[b - 1] == ' ' || body[b - 1] == '\t' || body[b - 1] == '\n' || body[b - 1] == '\r'))
        b--;
    return b - a >= 2 && body[a] == '{' && body[b - 1] == '}';
}

static void finish_buffered(call *c)
{
    relay_headers(c);
    prism_keyring_redact(c->p->keys, c->key, c->body.data, c->body.len);
    if (c->status < 200 || (c->status >= 300 && c->status < 400)) {
        prism_respond_error(c->ctx, 502, "api_error", "upstream_error", NULL,
                            "The OpenAI upstream answered HTTP %d, which Prism does not follow.", c->status);
        return;
    }
    if (c->status < 300 && !looks_like_object(c->body.data, c->body.len)) {
        prism_respond_error(c->ctx, 502, "api_error", "upstream_protocol_error", NULL,
                            "The OpenAI upstream answered HTTP %d with a body that is not a JSON object.", c->status);
        return;
    }
    if (c->status >= 400 && !is_openai_error(c->body.data ? c->body.data : "", c->body.len)) {
        prism_respond_error(c->ctx, c->status, c->status >= 500 ? "api_error" : "invalid_request_error",
                            "upstream_error", NULL, "The OpenAI upstream answered HTTP %d without an error body.",
                            c->status);
        return;
    }
    const char *ct = prism_upstream_header(c->up, "content-type");
    if (c->status < 300)
        prism_ctx_note_openai_usage(c->ctx, c->body.data, c->body.len);
    prism_respond(c->ctx, c->status, ct != NULL ? ct : "application/json", c->body.data ? c->body.data : "",
                  c->body.len);
}

/* An SSE event the OpenAI SDKs surface as an APIError mid-stream. */
static void stream_error(call *c, const char *code, const char *message)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", "api_error");
    cJSON_AddNullToObject(e, "param");
    cJSON_AddStringToObject(e, "code", code);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (json != NULL) {
        /* A blank line first ends any event the upstream left half-written. */
        prism_stream_write(c->ctx, "\n\ndata: ", 8);
        prism_stream_write(c->ctx, json, strlen(json));
        prism_stream_write(c->ctx, "\n\n", 2);
        cJSON_free(json);
    }
}

static void on_complete(void *data, prism_upstream *up, prism_upstream_error err, const char *message)
{
    call *c = data;
    c->up = up;
    int timeout = err == PRISM_UPSTREAM_ERR_TIMEOUT;
    const char *code = timeout ? "upstream_timeout" : "upstream_unreachable";
    if (err != PRISM_UPSTREAM_OK) {
        if (c->status == 0)
            prism_keyring_report(c->p->keys, c->key, 0);
        prism_log(c->p->host, PRISM_LOG_WARN, "request %s: upstream failed: %s", prism_ctx_request_id(c->ctx), message);
        if (c->streaming)
            stream_error(c, timeout ? "upstream_timeout" : "upstream_disconnected",
                         "The OpenAI upstream failed mid-stream.");
        else
            prism_respond_error(c->ctx, timeout ? 504 : 502, "api_error", code, NULL,
                                timeout ? "The OpenAI upstream did not answer in time."
                                        : "Could not get a response from the OpenAI upstream: %s.",
                                message);
    } else if (!c->streaming) {
        finish_buffered(c);
    } else if (!c->saw_done && c->ep == EP_CHAT) {
        stream_error(c, "upstream_disconnected",
                     "The OpenAI stream ended before it finished (no finish_reason, no data: [DONE]).");
    }
    if (c->streaming)
        prism_stream_end(c->ctx);
    c->up = NULL;
    prism_ctx_resume(c->ctx, PRISM_DONE);
}

/* ---- the request ---- */

static int wants_stream(prism_ctx *ctx, int *usage)
{
    *usage = prism_ctx_body_field(ctx, "stream_options", "include_usage").type == PRISM_JSON_TRUE;
    return prism_ctx_body_field(ctx, NULL, "stream").type == PRISM_JSON_TRUE;
}

static endpoint endpoint_of(prism_ctx *ctx)
{
    const char *path = prism_ctx_path(ctx);
    for (int e = EP_RESPONSES; e <= EP_EMBEDDINGS; e++)
        if (prism_str_ends_with(path, ENDPOINT_PATHS[e]))
            return (endpoint)e;
    return EP_CHAT;
}

/* The key's URL ends in /chat/completions (maybe before a query, as Azure's
 * ?api-version= does); another endpoint takes its place there. */
static const char *url_for(call *c)
{
    const char *url = prism_keyring_url(c->p->keys, c->key);
    const char *at = c->ep == EP_CHAT ? NULL : strstr(url, ENDPOINT_PATHS[EP_CHAT]);
    if (at == NULL)
        return url;
    const char *path = ENDPOINT_PATHS[c->ep], *rest = at + CHAT_PATH_LEN;
    size_t pre = (size_t)(at - url), plen = strlen(path), rlen = strlen(rest);
    char *out = prism_ctx_alloc(c->ctx, pre + plen + rlen + 1);
    memcpy(out, url, pre);
    memcpy(out + pre, path, plen);
    memcpy(out + pre + plen, rest, rlen + 1);
    return out;
}

/* The key that failed rests; the retry goes out with another one. */
static void before_retry(void *data, unsigned attempt, int status, prism_upstream_error err, prism_http_request_t *req)
{
    call *c = data;
    (void)attempt;
    (void)err;
    prism_keyring_report(c->p->keys, c->key, status);
    c->key = prism_keyring_pick(c->p->keys, c->ctx);
    const char *auth = prism_keyring_header(c->p->keys, c->key);
    if (auth != NULL)
        c->headers[c->header_count - 1] = auth;
    req->url = url_for(c);
    req->headers = c->headers;
}

static void build_headers(call *c, int stream)
{
    const provider *p = c->p;
    size_t n = 0;
    c->headers[n++] = "Content-Type: application/json";
    c->headers[n++] = stream ? "Accept: text/event-stream" : "Accept: application/json";
    if (p->org_header != NULL)
        c->headers[n++] = p->org_header;
    if (p->project_header != NULL)
        c->headers[n++] = p->project_header;
    const char *auth = prism_keyring_header(p->keys, c->key);
    if (auth != NULL)
        c->headers[n++] = auth;
    c->header_count = n;
}

static prism_status provider_handle(void *instance, prism_ctx *ctx)
{
    const provider *p = instance;
    call *c = prism_ctx_alloc(ctx, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    c->p = p;
    c->body.max = p->max_response_bytes;
    c->key = prism_keyring_pick(p->keys, ctx);
    c->ep = endpoint_of(ctx);
    int stream = c->ep != EP_EMBEDDINGS && wants_stream(ctx, &c->stream_usage);
    if (c->ep == EP_RESPONSES)
        c->stream_usage = 1; /* its response.completed event always carries the usage */
    if (stream)
        prism_ctx_set(ctx, "openai.stream", "1");
    build_headers(c, stream);
    size_t len = 0;
    const char *body = prism_ctx_body(ctx, &len);
    prism_http_request_t req = {.method = "POST",
                                .url = url_for(c),
                                .headers = c->headers,
                                .header_count = c->header_count,
                                .body = body,
                                .body_len = len};
    prism_upstream_conf_apply(&p->upstream, &req);
    prism_http_callbacks_t cb = {c, on_response, on_body, on_complete, before_retry};
    if (prism_http_request(ctx, &req, &cb) == NULL) {
        prism_respond_error(ctx, 502, "api_error", "upstream_unreachable", NULL,
                            "Could not start the request to the OpenAI upstream.");
        return PRISM_DONE;
    }
    return PRISM_PENDING;
}

static void provider_list_models(void *instance, cJSON *data)
{
    const provider *p = instance;
    prism_models_append(data, p->models, p->model_count, "openai");
}

const prism_plugin_t prism_plugin = {
    .abi_version = PRISM_PLUGIN_ABI_VERSION,
    .name = "openai_provider",
    .version = "0.1.0",
    .create = provider_create,
    .handle = provider_handle,
    .destroy = provider_destroy,
    .list_models = provider_list_models,
};
