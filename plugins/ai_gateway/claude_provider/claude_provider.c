/*
 * claude_provider - serves Claude models through Anthropic's Messages API
 * for clients that speak OpenAI's Chat Completions or Responses API.
 *
 * This file is the glue: configuration, the upstream call, and relaying.
 * Everything that decides what goes across is pure code in translate.c
 * (request, response, errors) and stream.c (SSE framing and the event
 * translator), so it can be tested and fuzzed without a network.
 *
 * Streams: each upstream chunk is split into SSE events, each event is
 * translated and the resulting OpenAI frames are written before the next
 * chunk is read, so the client's time to first token is the upstream's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prism/plugin.h"
#include "item_store.h"
#include "responses.h"
#include "stream.h"
#include "translate.h"

/* Pause the upstream once this much is queued for a slow client. */
#define STREAM_HIGH_WATER (256 * 1024)
/* One SSE event larger than this is a broken upstream. */
#define MAX_EVENT_BYTES (8u << 20)
/* Output items of recent Responses kept for item_reference: this many, in
 * this many bytes at most. */
#define ITEMS_KEPT      10000
#define ITEM_BYTES_KEPT (64u << 20)

typedef struct provider {
    prism_keyring *keys; /* keys and endpoints ({base_url}/v1/messages) */
    prism_upstream_conf upstream;
    char *version_header;
    char *beta_header;
    claude_options opt;
    size_t max_response_bytes;
    claude_item_store *items; /* recent Responses' output items, for item_reference */
    char **models;
    size_t model_count;
    prism_host *host;
} provider;

typedef struct call {
    prism_ctx *ctx;
    const provider *p;
    prism_upstream *up;
    size_t key;             /* the keyring entry this attempt uses */
    const char *headers[6]; /* the last one is the key's, swapped on retry */
    size_t header_count;
    claude_request_info info;
    const cJSON *request; /* the client's; a Response echoes it */
    int responses;        /* the Responses API, not Chat Completions */
    long created;
    int status;
    int streaming; /* the client's stream has begun */
    int paused;
    prism_body body; /* non-streamed body */
    claude_sse *sse;
    claude_stream *st;  /* chat.completion.chunk events */
    claude_rstream *rs; /* Responses events */
    claude_buf out;
} call;

/* Kept for the client: its SDK's retry logic reads retry-after,
 * retry-after-ms and x-should-retry. */
static const char *const relayed_headers[] = {
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
};

/* ---- configuration ---- */

static void provider_destroy(void *inst)
{
    provider *p = inst;
    if (p == NULL)
        return;
    prism_keyring_free(p->keys);
    claude_item_store_free(p->items);
    free(p->version_header);
    free(p->beta_header);
    prism_strings_free(p->models, p->model_count);
    free(p);
}

static int read_headers(provider *p, const cJSON *config, char *err, size_t errlen)
{
    const char *version = prism_conf_string(config, "anthropic_version");
    const char *beta = prism_conf_string(config, "anthropic_beta");
    if ((version && prism_has_control_chars(version)) || (beta && prism_has_control_chars(beta)))
        return snprintf(err, errlen, "anthropic_version and anthropic_beta must not contain control characters"), -1;
    p->version_header = prism_header_line("anthropic-version", version && version[0] ? version : "2023-06-01");
    p->beta_header = prism_header_line("anthropic-beta", beta);
    if (prism_keyring_header(p->keys, 0) == NULL)
        prism_log(p->host, PRISM_LOG_WARN, "no api_key (ANTHROPIC_API_KEY) set: requests go upstream unauthenticated");
    return 0;
}

static void read_options(provider *p, const cJSON *config)
{
    const cJSON *budget = prism_json_get(config, "thinking_budget");
    p->opt.default_max_tokens = (int)prism_conf_int(config, "default_max_tokens", 4096, 1, 1 << 24);
    p->opt.thinking_budget_low = (int)prism_conf_int(budget, "low", 1024, 1024, 1 << 24);
    p->opt.thinking_budget_medium = (int)prism_conf_int(budget, "medium", 4096, 1024, 1 << 24);
    p->opt.thinking_budget_high = (int)prism_conf_int(budget, "high", 16384, 1024, 1 << 24);
    p->max_response_bytes = (size_t)prism_conf_int(config, "max_response_bytes", 32L << 20, 1024, 1L << 30);
}

static void *provider_create(const cJSON *config, prism_host *host, char *err, size_t errlen)
{
    provider *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return snprintf(err, errlen, "out of memory"), NULL;
    p->host = host;
    /* ANTHROPIC_BASE_URL is the API root, as in Anthropic's SDKs. */
    p->keys = prism_keyring_new(config, "x-api-key", "", "https://api.anthropic.com", "/v1/messages", err, errlen);
    if (p->keys == NULL || read_headers(p, config, err, errlen) != 0 ||
        prism_conf_upstream(config, &p->upstream, err, errlen) != 0 ||
        prism_conf_strings(config, "models", &p->models, &p->model_count, err, errlen) != 0) {
        provider_destroy(p);
        return NULL;
    }
    read_options(p, config);
    p->items = claude_item_store_new(ITEMS_KEPT, ITEM_BYTES_KEPT);
    if (p->items == NULL) {
        provider_destroy(p);
        return snprintf(err, errlen, "out of memory"), NULL;
    }
    return p;
}

/* ---- one call ---- */

static void call_release(void *data)
{
    call *c = data;
    claude_sse_free(c->sse);
    claude_stream_free(c->st);
    claude_rstream_free(c->rs);
    claude_buf_free(&c->out);
    c->sse = NULL;
    c->st = NULL;
    c->rs = NULL;
}

/* ---- the stream's translator, for either API ---- */

/* ---- the Responses API's kept items ---- */

static char *lookup_item(void *data, const char *id)
{
    return claude_item_store_get(data, id);
}

static void keep_item(void *data, const char *id, const char *json, size_t len)
{
    claude_item_store_put(data, id, json, len);
}

/* Items are kept unless the client says "store": false, as OpenAI does. */
static claude_item_keep *keeper(const call *c)
{
    return cJSON_IsFalse(prism_json_get(c->request, "store")) ? NULL : keep_item;
}

static claude_stream_state stream_state(const call *c)
{
    return c->responses ? claude_rstream_state_of(c->rs) : claude_stream_state_of(c->st);
}

static void stream_fail(call *c, const char *code, const char *message)
{
    if (c->responses)
        claude_rstream_fail(c->rs, code, message, &c->out);
    else
        claude_stream_fail(c->st, code, message, &c->out);
}

static void relay_headers(call *c)
{
    prism_relay_headers(c->ctx, c->up, relayed_headers, sizeof(relayed_headers) / sizeof(relayed_headers[0]));
    prism_response_header(c->ctx, "x-prism-provider", "claude_provider");
    /* x-request-id is Prism's own; the provider's id is what its support asks for. */
    const char *id = prism_upstream_header(c->up, "request-id");
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

static const cJSON *parse_event(void *data, const char *text, size_t len)
{
    return prism_json_scratch_read(data, text, len);
}

static int pick_event(void *data, const char *text, size_t len, const prism_json_want *want, prism_json_field *got,
                      size_t n)
{
    return prism_json_scratch_pick(data, text, len, want, got, n);
}

static void begin_stream(call *c)
{
    c->sse = claude_sse_new(MAX_EVENT_BYTES);
    if (c->responses) {
        c->rs = claude_rstream_new(c->request, &c->info, c->created);
        if (c->sse == NULL || c->rs == NULL)
            return;
        prism_json_scratch *scratch = prism_json_scratch_new(c->ctx);
        claude_rstream_set_parser(c->rs, parse_event, scratch);
        claude_rstream_set_picker(c->rs, pick_event, scratch);
        claude_rstream_set_max_bytes(c->rs, c->p->max_response_bytes);
        claude_rstream_set_keep(c->rs, keeper(c), c->p->items);
    } else {
        c->st = claude_stream_new(&c->info, c->created);
        if (c->sse == NULL || c->st == NULL)
            return;
        prism_json_scratch *scratch = prism_json_scratch_new(c->ctx);
        claude_stream_set_parser(c->st, parse_event, scratch);
        claude_stream_set_picker(c->st, pick_event, scratch);
    }
    relay_headers(c);
    prism_stream_on_drain(c->ctx, on_drain, c);
    if (prism_stream_begin(c->ctx, 200, "text/event-stream; charset=utf-8") == 0)
        c->streaming = 1;
}

static void on_response(void *data, prism_upstream *up, int status)
{
    call *c = data;
    c->up = up;
    c->status = status;
    prism_keyring_report(c->p->keys, c->key, status);
    /* Only a successful stream is translated as a stream: an error status is
     * buffered and mapped to an OpenAI error with the right status. */
    if (c->info.stream && status >= 200 && status < 300)
        begin_stream(c);
}

static int on_event(void *data, const char *event, const char *json, size_t len)
{
    call *c = data;
    claude_stream_state st = c->responses ? claude_rstream_event(c->rs, event, json, len, &c->out)
                                          : claude_stream_event(c->st, event, json, len, &c->out);
    return st == CLAUDE_STREAM_OPEN ? 0 : 1;
}

/* Writes whatever frames the translator produced, with the key this request
 * was sent with masked should the upstream have echoed it into an event. */
static void flush_out(call *c)
{
    if (c->out.len > 0) {
        prism_keyring_redact(c->p->keys, c->key, c->out.data, c->out.len);
        prism_stream_write(c->ctx, c->out.data, c->out.len);
        claude_buf_reset(&c->out);
    }
}

static int relay_stream(call *c, const char *chunk, size_t len)
{
    if (stream_state(c) != CLAUDE_STREAM_OPEN)
        return 0; /* after the end or an error frame, the rest is ignored */
    if (claude_sse_feed(c->sse, chunk, len, on_event, c) < 0)
        stream_fail(c, "upstream_protocol_error", "The Anthropic stream sent an oversized event.");
    flush_out(c);
    if (prism_stream_buffered(c->ctx) > STREAM_HIGH_WATER) {
        c->paused = 1;
        return PRISM_UPSTREAM_PAUSE;
    }
    return 0;
}

static void finish_now(call *c)
{
    call_release(c);
    c->up = NULL;
    prism_ctx_resume(c->ctx, PRISM_DONE);
}

static int on_body(void *data, prism_upstream *up, const char *chunk, size_t len)
{
    call *c = data;
    c->up = up;
    if (c->streaming)
        return relay_stream(c, chunk, len);
    if (prism_body_append(c->ctx, &c->body, chunk, len) != 0) {
        prism_http_cancel(c->ctx, up);
        prism_respond_error(c->ctx, 502, "api_error", "upstream_response_too_large", NULL,
                            "The upstream response exceeded %zu bytes.", c->p->max_response_bytes);
        finish_now(c);
    }
    return 0;
}

static void respond_translated(call *c)
{
    const cJSON *msg = prism_json_read(c->ctx, c->body.data, c->body.len);
    claude_error err = {0};
    claude_usage usage;
    size_t len = 0;
    char *json = NULL;
    if (msg != NULL && c->responses)
        json = claude_response_to_responses(msg, c->request, &c->info, c->created, &usage, &len, &err, keeper(c),
                                            c->p->items);
    else if (msg != NULL)
        json = claude_response_to_openai(msg, &c->info, c->created, &usage, &len, &err);
    if (json == NULL) {
        if (err.status == 500)
            prism_respond_error(c->ctx, 500, "server_error", "internal_error", NULL, "Could not encode the response.");
        else
            prism_respond_error(c->ctx, 502, "api_error", "upstream_protocol_error", NULL, "%s",
                                err.message[0] ? err.message : "Anthropic answered with a body that is not a message.");
        return;
    }
    prism_ctx_set_usage(c->ctx, (long)usage.prompt, (long)usage.completion);
    prism_respond(c->ctx, 200, "application/json", json, len);
    free(json);
}

static void finish_buffered(call *c)
{
    relay_headers(c);
    prism_keyring_redact(c->p->keys, c->key, c->body.data, c->body.len);
    if (c->status >= 200 && c->status < 300) {
        respond_translated(c);
        return;
    }
    char *json = NULL;
    int status = claude_error_to_openai(c->status, c->body.data ? c->body.data : "", c->body.len, &json);
    if (json == NULL) {
        prism_respond_error(c->ctx, 502, "api_error", "upstream_error", NULL, "Anthropic answered HTTP %d.", c->status);
        return;
    }
    prism_respond(c->ctx, status, "application/json", json, strlen(json));
    cJSON_free(json);
}

static void fail_unstreamed(call *c, prism_upstream_error err, const char *message)
{
    if (err == PRISM_UPSTREAM_ERR_TIMEOUT)
        prism_respond_error(c->ctx, 504, "api_error", "upstream_timeout", NULL,
                            "The Anthropic upstream did not answer in time.");
    else
        prism_respond_error(c->ctx, 502, "api_error", "upstream_unreachable", NULL,
                            "Could not get a response from the Anthropic upstream: %s.", message);
}

static void on_complete(void *data, prism_upstream *up, prism_upstream_error err, const char *message)
{
    call *c = data;
    c->up = up;
    if (err != PRISM_UPSTREAM_OK)
        prism_log(c->p->host, PRISM_LOG_WARN, "request %s: upstream failed: %s", prism_ctx_request_id(c->ctx), message);
    if (c->streaming) {
        long prompt, completion;
        if (c->responses)
            claude_rstream_usage(c->rs, &prompt, &completion);
        else
            claude_stream_usage(c->st, &prompt, &completion);
        prism_ctx_set_usage(c->ctx, prompt, completion);
        if (stream_state(c) == CLAUDE_STREAM_OPEN)
            stream_fail(c, err == PRISM_UPSTREAM_ERR_TIMEOUT ? "upstream_timeout" : "upstream_disconnected",
                        "The Anthropic stream ended before the message was complete.");
        flush_out(c);
        prism_stream_end(c->ctx);
    } else if (err != PRISM_UPSTREAM_OK) {
        fail_unstreamed(c, err, message);
    } else {
        finish_buffered(c);
    }
    finish_now(c);
}

/* ---- the request ---- */

static void respond_translation_error(prism_ctx *ctx, const claude_error *e)
{
    prism_respond_error(ctx, e->status ? e->status : 400, e->type[0] ? e->type : "invalid_request_error",
                        e->code[0] ? e->code : NULL, e->param[0] ? e->param : NULL, "%s", e->message);
}

/* The translated body lives in request memory: curl reads it until the
 * transfer completes. A Responses request is first carried to the Chat
 * Completions request it asks for. */
static const char *translate(call *c, claude_request_info *info, size_t *len)
{
    prism_ctx *ctx = c->ctx;
    claude_error err = {0};
    claude_rsp_origins origins = {0};
    cJSON *chat = NULL;
    if (c->responses &&
        (chat = claude_chat_from_responses(c->request, lookup_item, c->p->items, &origins, &err)) == NULL) {
        free(origins.of);
        respond_translation_error(ctx, &err);
        return NULL;
    }
    char *json = claude_request_from_openai(chat ? chat : c->request, &c->p->opt, info, len, &err);
    cJSON_Delete(chat);
    if (json == NULL && c->responses)
        claude_rsp_error_param(&origins, &err); /* named as the Responses request has it */
    free(origins.of);
    if (json == NULL) {
        respond_translation_error(ctx, &err);
        return NULL;
    }
    char *body = prism_ctx_alloc(ctx, *len + 1);
    memcpy(body, json, *len + 1);
    free(json);
    return body;
}

/* The key that failed rests; the retry goes out with another one. */
static void before_retry(void *data, unsigned attempt, int status, prism_upstream_error err, prism_http_request_t *req)
{
    call *c = data;
    (void)attempt;
    (void)err;
    prism_keyring_report(c->p->keys, c->key, status);
    c->key = prism_keyring_pick(c->p->keys, c->ctx);
    const char *key = prism_keyring_header(c->p->keys, c->key);
    if (key != NULL)
        c->headers[c->header_count - 1] = key;
    req->url = prism_keyring_url(c->p->keys, c->key);
    req->headers = c->headers;
}

static void build_headers(call *c)
{
    const provider *p = c->p;
    size_t n = 0;
    c->headers[n++] = "Content-Type: application/json";
    c->headers[n++] = c->info.stream ? "Accept: text/event-stream" : "Accept: application/json";
    c->headers[n++] = p->version_header;
    if (p->beta_header != NULL)
        c->headers[n++] = p->beta_header;
    const char *key = prism_keyring_header(p->keys, c->key);
    if (key != NULL)
        c->headers[n++] = key;
    c->header_count = n;
}

/* Claude answers Chat Completions and the Responses API; Anthropic has no
 * embeddings. 1: chat, 2: responses, 0: refused (answered). */
static int serves_path(prism_ctx *ctx)
{
    const char *path = prism_ctx_path(ctx);
    if (prism_str_ends_with(path, "/chat/completions"))
        return 1;
    if (prism_str_ends_with(path, "/responses"))
        return 2;
    const char *slash = strrchr(path, '/');
    prism_respond_error(ctx, 400, "invalid_request_error", "unsupported_endpoint", "model",
                        "Claude models are served on /chat/completions and /responses, not on %s.",
                        slash != NULL ? slash : path);
    return 0;
}

static prism_status provider_handle(void *instance, prism_ctx *ctx)
{
    const provider *p = instance;
    int api = serves_path(ctx);
    if (api == 0)
        return PRISM_DONE;
    call *c = prism_ctx_alloc(ctx, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    c->p = p;
    c->responses = api == 2;
    c->request = prism_ctx_json_read(ctx);
    c->created = (long)time(NULL);
    c->body.max = p->max_response_bytes;
    size_t len = 0;
    const char *body = translate(c, &c->info, &len);
    if (body == NULL)
        return PRISM_DONE;
    c->key = prism_keyring_pick(p->keys, ctx);
    build_headers(c);
    prism_http_request_t req = {.method = "POST",
                                .url = prism_keyring_url(p->keys, c->key),
                                .headers = c->headers,
                                .header_count = c->header_count,
                                .body = body,
                                .body_len = len};
    prism_upstream_conf_apply(&p->upstream, &req);
    prism_http_callbacks_t cb = {c, on_response, on_body, on_complete, before_retry};
    if (prism_http_request(ctx, &req, &cb) == NULL) {
        prism_respond_error(ctx, 502, "api_error", "upstream_unreachable", NULL,
                            "Could not start the request to the Anthropic upstream.");
        return PRISM_DONE;
    }
    /* A client that leaves mid-stream cancels the transfer: free the parser
     * and translator then, since on_complete will not run. */
    prism_ctx_on_abort(ctx, call_release, c);
    return PRISM_PENDING;
}

static void provider_list_models(void *instance, cJSON *data)
{
    const provider *p = instance;
    prism_models_append(data, p->models, p->model_count, "anthropic");
}

const prism_plugin_t prism_plugin = {
    .abi_version = PRISM_PLUGIN_ABI_VERSION,
    .name = "claude_provider",
    .version = "0.1.0",
    .create = provider_create,
    .handle = provider_handle,
    .destroy = provider_destroy,
    .list_models = provider_list_models,
};
