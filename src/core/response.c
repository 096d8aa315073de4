/*
 * response.c - writing responses: whole bodies, OpenAI-style errors, and
 * streams with back-pressure.
 *
 * h2o takes one h2o_send() at a time and calls the generator's `proceed`
 * when the bytes are written; that is the back-pressure signal. Bytes a
 * plugin writes meanwhile queue in `pending`; `sending` holds what h2o is
 * writing now and must not move until `proceed`.
 *
 * A stream's writes are corked until the loop's next idle phase: the
 * I/O callbacks of the turn run first, so the events of one upstream read
 * go out in one write, and a stream whose end comes in the same read (a
 * short answer, the last events) goes out with its end: one write and one
 * packet instead of two. An active idle handle also keeps the loop from
 * blocking in its poll, so bytes written in any phase (a timer, a write
 * callback) wait for nothing but the callbacks already due.
 */
#include "ctx.h"
#include "grow.h"
#include "json_print.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Error";
    }
}

/* Control characters other than tab would split or smuggle header lines.
 * The 8-byte scan skips to the first control character, quote or backslash;
 * quotes and backslashes are fine here, so the rest is checked bytewise. */
static int header_value_ok(const char *v, size_t n)
{
    for (size_t i = prism_json_plain_run(v, n, 0); i < n; i++)
        if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
            return 0;
    return 1;
}

int prism_response_header(prism_ctx *ctx, const char *name, const char *value)
{
    return prism_response_header_n(ctx, name, strlen(name), value, strlen(value));
}

/* Eight bytes of a header name lowered into *out; 0 when one of them is a
 * control character. Each byte's low seven bits plus a constant carry into
 * its top bit exactly when the byte is at least some value, and no carry
 * crosses into the next byte, so A-Z and the control characters are found
 * in all eight at once (bytes from 0x80 up are neither). */
static int lower8(const char *in, char *out)
{
    const uint64_t high = 0x8080808080808080ull, low7 = 0x7f7f7f7f7f7f7f7full;
    uint64_t x;
    memcpy(&x, in, 8);
    uint64_t seven = x & low7, ascii = ~x & high;
    uint64_t control = ~(seven + 0x6060606060606060ull) & ascii;                                 /* < 0x20 */
    uint64_t upper = (seven + 0x3f3f3f3f3f3f3f3full) & ~(seven + 0x2525252525252525ull) & ascii; /* 0x41-0x5a */
    x |= upper >> 2;                                                                             /* + 0x20 */
    memcpy(out, &x, 8);
    return control == 0;
}

/* The name lowered into out; 0 when it holds a control character. */
static int lower_name(const char *name, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (!lower8(name + i, out + i))
            return 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20)
            return 0;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return 1;
}

int prism_response_header_n(prism_ctx *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (ctx->resp != PRISM_RESP_NONE)
        return -1;
    if (!header_value_ok(value, vlen))
        return -1;
    h2o_req_t *req = ctx->req;
    /* Name and value in one allocation: the lowered name, then the value. */
    char *lower = h2o_mem_alloc_pool(&req->pool, nlen + 1 + vlen + 1);
    if (!lower_name(name, nlen, lower))
        return -1; /* the pool takes the copy back with the request */
    lower[nlen] = '\0';
    char *v = lower + nlen + 1;
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    h2o_add_header_by_str(&req->pool, &req->res.headers, lower, nlen, 1, NULL, v, vlen);
    return 0;
}

static void trace_header(prism_ctx *ctx)
{
    char buf[1024];
    size_t off = 0;
    uint64_t now = prism_now_ns();
    for (size_t i = 0; i < ctx->trace_count && off < sizeof(buf) - 64; i++) {
        const prism_trace_step *t = &ctx->trace[i];
        uint64_t dur = t->dur_ns != 0 ? t->dur_ns : now - t->start_ns;
        int n = snprintf(buf + off, sizeof(buf) - off, "%s%s;dur=%.3f", i ? ", " : "", t->name, dur / 1e6);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    if (off > 0)
        prism_response_header(ctx, "x-prism-trace", buf);
}

/* The gateway's own time so far beside the upstream calls', in the standard
 * Server-Timing form. Only once an upstream call has ended: a stream's head
 * goes out while its call is still running. */
static void timing_header(prism_ctx *ctx)
{
    if (ctx->upstream_ns == 0)
        return;
    uint64_t total = prism_now_ns() - ctx->started_ns;
    uint64_t overhead = total > ctx->upstream_ns ? total - ctx->upstream_ns : 0;
    char buf[96];
    snprintf(buf, sizeof(buf), "upstream;dur=%.3f, overhead;dur=%.3f", ctx->upstream_ns / 1e6, overhead / 1e6);
    prism_response_header(ctx, "server-timing", buf);
}

void prism_ctx_add_meta_headers(prism_ctx *ctx)
{
    prism_response_header(ctx, "x-request-id", ctx->request_id);
    if (ctx->retries > 0) {
        char n[16];
        snprintf(n, sizeof(n), "%u", ctx->retries);
        prism_response_header(ctx, "x-prism-retries", n);
    }
    if (ctx->trace_on) {
        trace_header(ctx);
        timing_header(ctx);
    }
}

void prism_server_header(h2o_req_t *req)
{
    /* A plugin that set its own server header keeps it, once. */
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_SERVER, -1) < 0)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SERVER, NULL, H2O_STRLIT("prism"));
}

static void start_headers(prism_ctx *ctx, int status, const char *content_type)
{
    h2o_req_t *req = ctx->req;
    prism_ctx_add_meta_headers(ctx);
    ctx->status = status;
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    prism_server_header(req);
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
}

/* 1 when a plugin's error hook answered the request another way. */
static int intercepted(prism_ctx *ctx, int status)
{
    if (status < 400 || ctx->on_error_fn == NULL || ctx->intercepting)
        return 0;
    /* The failed provider's headers must not leak into the answer that
     * replaces it (earlier steps' stay); they come back if the hook
     * declines. */
    size_t had = ctx->req->res.headers.size;
    if (ctx->dispatch_headers < had)
        ctx->req->res.headers.size = ctx->dispatch_headers;
    ctx->intercepting = 1;
    int took = ctx->on_error_fn(ctx->on_error_data, ctx, status);
    ctx->intercepting = 0;
    if (!took && ctx->resp == PRISM_RESP_NONE)
        ctx->req->res.headers.size = had;
    return took;
}

void prism_respond(prism_ctx *ctx, int status, const char *content_type, const char *body, size_t len)
{
    if (ctx->resp != PRISM_RESP_NONE || ctx->gone || intercepted(ctx, status))
        return;
    prism_ctx_release_client(ctx);
    start_headers(ctx, status, content_type);
    ctx->resp = PRISM_RESP_DONE;
    /* Without a length h2o would close an HTTP/1.1 connection after any
     * status but 200 to delimit the body; with it, keep-alive holds. */
    ctx->req->res.content_length = len;
    /* h2o_send_inline copies the body into the request's pool. */
    h2o_send_inline(ctx->req, body, len);
}

void prism_respond_json(prism_ctx *ctx, int status, const cJSON *json)
{
    size_t len;
    char *text = prism_json_print(json, &len);
    if (text == NULL) {
        prism_respond_error(ctx, 500, "server_error", "internal_error", NULL, "Could not encode the response.");
        return;
    }
    prism_respond(ctx, status, "application/json", text, len);
    free(text);
}

static cJSON *error_body(const char *type, const char *code, const char *param, const char *message)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", message);
    cJSON_AddStringToObject(err, "type", type);
    if (param != NULL)
        cJSON_AddStringToObject(err, "param", param);
    else
        cJSON_AddNullToObject(err, "param");
    if (code != NULL)
        cJSON_AddStringToObject(err, "code", code);
    else
        cJSON_AddNullToObject(err, "code");
    return root;
}

char *prism_error_json(const char *type, const char *code, const char *param, const char *message)
{
    cJSON *root = error_body(type, code, param, message);
    char *text = prism_json_print(root, NULL);
    cJSON_Delete(root);
    return text;
}

void prism_respond_error(prism_ctx *ctx, int status, const char *type, const char *code, const char *param,
                         const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    prism_utf8_scrub(message); /* it may quote client bytes, or be cut inside a character */
    char *text = prism_error_json(type, code, param, message);
    if (text != NULL) {
        prism_respond(ctx, status, "application/json", text, strlen(text));
        cJSON_free(text);
    }
}

/* ---- streaming ---- */

static int bytes_append(prism_bytes *b, const char *data, size_t len)
{
    /* Model events are a few hundred bytes; an open stream holds two of
     * these queues, so they start small and grow when needed. */
    if (prism_grow(&b->data, &b->cap, b->len + len, 256) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void flush(prism_ctx *ctx)
{
    if (ctx->send_busy || ctx->gone || ctx->resp != PRISM_RESP_STREAMING)
        return;
    if (ctx->pending.len == 0 && !ctx->end_wanted)
        return;
    prism_bytes t = ctx->sending;
    ctx->sending = ctx->pending;
    ctx->pending = t;
    ctx->pending.len = 0;
    h2o_iovec_t buf = h2o_iovec_init(ctx->sending.data, ctx->sending.len);
    h2o_send_state_t state = H2O_SEND_STATE_IN_PROGRESS;
    if (ctx->end_wanted) {
        state = H2O_SEND_STATE_FINAL;
        ctx->resp = PRISM_RESP_DONE;
        /* h2o reads the connection again once the response is out. */
        prism_ctx_release_client(ctx);
    }
    ctx->send_busy = 1;
    h2o_send(ctx->req, &buf, buf.len ? 1 : 0, state);
}

void prism_ctx_uncork(prism_ctx *ctx)
{
    if (ctx->cork_pprev == NULL)
        return;
    *ctx->cork_pprev = ctx->cork_next;
    if (ctx->cork_next != NULL)
        ctx->cork_next->cork_pprev = ctx->cork_pprev;
    ctx->cork_next = NULL;
    ctx->cork_pprev = NULL;
}

static void on_uncork(uv_idle_t *idle)
{
    prism_worker_env *env = idle->data;
    while (env->corked != NULL) {
        prism_ctx *ctx = env->corked;
        prism_ctx_uncork(ctx);
        flush(ctx);
    }
    uv_idle_stop(idle);
}

static void cork(prism_ctx *ctx)
{
    prism_worker_env *env = ctx->env;
    if (ctx->cork_pprev != NULL)
        return;
    if (env->corked == NULL)
        uv_idle_start(&env->uncork, on_uncork);
    ctx->cork_next = env->corked;
    if (env->corked != NULL)
        env->corked->cork_pprev = &ctx->cork_next;
    env->corked = ctx;
    ctx->cork_pprev = &env->corked;
}

void prism_env_cork_init(prism_worker_env *env, uv_loop_t *loop)
{
    uv_idle_init(loop, &env->uncork);
    env->uncork.data = env;
    uv_unref((uv_handle_t *)&env->uncork); /* the requests keep the loop running, not this */
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    prism_ctx *ctx = H2O_STRUCT_FROM_MEMBER(prism_ctx, generator, gen);
    ctx->send_busy = 0;
    ctx->sending.len = 0;
    if (ctx->gone && ctx->end_wanted) {
        prism_ctx_end_gone_stream(ctx); /* the client left while that write was out */
        return;
    }
    if (ctx->pending.len > 0 || ctx->end_wanted) {
        flush(ctx);
        return;
    }
    if (ctx->drain_cb != NULL)
        ctx->drain_cb(ctx->drain_data);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    prism_ctx *ctx = H2O_STRUCT_FROM_MEMBER(prism_ctx, generator, gen);
    prism_ctx_abandon(ctx);
}

int prism_stream_begin(prism_ctx *ctx, int status, const char *content_type)
{
    if (ctx->resp != PRISM_RESP_NONE || ctx->gone)
        return -1;
    start_headers(ctx, status, content_type);
    if (content_type != NULL && strncmp(content_type, "text/event-stream", 17) == 0) {
        h2o_add_header(&ctx->req->pool, &ctx->req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
        /* Tell buffering reverse proxies in front of Prism not to hold events. */
        h2o_add_header_by_str(&ctx->req->pool, &ctx->req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL,
                              H2O_STRLIT("no"));
    }
    ctx->resp = PRISM_RESP_STREAMING;
    ctx->streamed = 1;
    if (ctx->env->metrics != NULL)
        prism_metrics_streams(ctx->env->metrics, 1);
    ctx->generator.proceed = on_proceed;
    ctx->generator.stop = on_stop;
    h2o_start_response(ctx->req, &ctx->generator);
    prism_ctx_watch_client(ctx);
    return 0;
}

int prism_stream_write(prism_ctx *ctx, const char *data, size_t len)
{
    if (ctx->resp != PRISM_RESP_STREAMING || ctx->end_wanted || ctx->gone)
        return -1;
    if (bytes_append(&ctx->pending, data, len) != 0)
        return -1;
    if (!ctx->send_busy) /* else proceed sends it */
        cork(ctx);
    return 0;
}

void prism_stream_end(prism_ctx *ctx)
{
    if (ctx->resp != PRISM_RESP_STREAMING || ctx->end_wanted)
        return;
    ctx->end_wanted = 1;
    prism_ctx_uncork(ctx); /* what is corked goes now, with the end */
    flush(ctx);
}

size_t prism_stream_buffered(const prism_ctx *ctx)
{
    return ctx->pending.len + ctx->sending.len;
}

void prism_stream_on_drain(prism_ctx *ctx, void (*cb)(void *data), void *data)
{
    ctx->drain_cb = cb;
    ctx->drain_data = data;
}
