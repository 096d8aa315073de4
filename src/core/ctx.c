/*
 * ctx.c - the request context: accessors, per-request memory, the string
 * store, dispatch to siblings, and the ties between a request and its
 * upstream transfers.
 */
#include "ctx.h"
#include "metrics.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct prism_kv {
    prism_kv *next;
    const char *key;
    const char *value;
};

struct prism_abort_cb {
    prism_abort_cb *next;
    void (*cb)(void *data);
    void *data;
};

uint64_t prism_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift128+: request ids need to be unique, not unpredictable. */
uint64_t prism_env_random(prism_worker_env *env)
{
    uint64_t s1 = env->rng[0];
    const uint64_t s0 = env->rng[1];
    env->rng[0] = s0;
    s1 ^= s1 << 23;
    env->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return env->rng[1] + s0;
}

/* A client's id is kept when it is short printable ASCII without spaces;
 * anything else could smuggle bytes into logs or response headers. */
static int usable_request_id(const char *s, size_t len)
{
    if (len == 0 || len > 36)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return 0;
    return 1;
}

static void set_request_id(prism_ctx *ctx)
{
    h2o_req_t *req = ctx->req;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (usable_request_id(v.base, v.len)) {
            memcpy(ctx->request_id, v.base, v.len);
            ctx->request_id[v.len] = '\0';
            return;
        }
    }
    /* "req_" and 32 hex digits, written directly: snprintf cost ~1,600
     * instructions here, on every request. */
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {prism_env_random(ctx->env), prism_env_random(ctx->env)};
    char *at = ctx->request_id;
    memcpy(at, "req_", 4);
    at += 4;
    for (int w = 0; w < 2; w++) {
        for (int shift = 60; shift >= 0; shift -= 4) {
            *at++ = hex[(v[w] >> shift) & 0xf];
        }
    }
    *at = '\0';
}

static void ctx_dispose(void *p)
{
    prism_ctx *ctx = p;
    prism_ctx_unwatch_client(ctx);
    prism_ctx_uncork(ctx);
    if (ctx->resp != PRISM_RESP_DONE)
        prism_ctx_abandon(ctx);
    prism_ctx_finish(ctx);
    prism_ctx_report(ctx);
    free(ctx->pending.data);
    free(ctx->sending.data);
    cJSON_Delete(ctx->json);
    prism_generation_release(ctx->gen);
    if (ctx->env->metrics != NULL) {
        prism_metrics_inflight(ctx->env->metrics, -1);
        if (ctx->streamed)
            prism_metrics_streams(ctx->env->metrics, -1);
    }
    ctx->env->inflight--;
}

prism_ctx *prism_ctx_new(h2o_req_t *req, prism_worker_env *env)
{
    prism_ctx *ctx = h2o_mem_alloc_shared(&req->pool, sizeof(*ctx), ctx_dispose);
    memset(ctx, 0, sizeof(*ctx));
    ctx->req = req;
    ctx->env = env;
    ctx->gen = env->gen;
    prism_generation_retain(ctx->gen);
    if (env->metrics != NULL)
        prism_metrics_inflight(env->metrics, 1);
    ctx->started_ns = prism_now_ns();
    ctx->body = req->entity;
    ctx->path = h2o_strdup(&req->pool, req->path_normalized.base, req->path_normalized.len).base;
    ctx->prompt_tokens = ctx->completion_tokens = -1;
    env->inflight++;
    set_request_id(ctx);
    const char *t = prism_ctx_header(ctx, "x-prism-trace");
    ctx->trace_on = t != NULL && (strcasecmp(t, "true") == 0 || strcmp(t, "1") == 0);
    return ctx;
}

void prism_ctx_abandon(prism_ctx *ctx)
{
    if (ctx->gone)
        return;
    ctx->gone = 1;
    prism_ctx_cancel_upstreams(ctx);
    for (prism_abort_cb *a = ctx->aborts; a != NULL; a = a->next)
        a->cb(a->data);
    ctx->aborts = NULL;
}

/* Every plugin that ran, the dispatched ones included, once each. */
void prism_ctx_finish(prism_ctx *ctx)
{
    if (ctx->finished)
        return;
    ctx->finished = 1;
    for (size_t i = 0; i < ctx->trace_count; i++) {
        const prism_loaded *p = ctx->trace[i].plugin;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = ctx->trace[j].plugin == p;
        if (!seen && p->desc->on_finish != NULL)
            p->desc->on_finish(p->instance, ctx);
    }
}

const char *prism_ctx_method(const prism_ctx *ctx)
{
    h2o_req_t *req = ctx->req;
    return h2o_strdup(&req->pool, req->method.base, req->method.len).base;
}

const char *prism_ctx_path(const prism_ctx *ctx)
{
    return ctx->path;
}

const char *prism_ctx_header(prism_ctx *ctx, const char *name)
{
    h2o_req_t *req = ctx->req;
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    return h2o_strdup(&req->pool, v.base, v.len).base;
}

const char *prism_ctx_body(const prism_ctx *ctx, size_t *len)
{
    *len = ctx->body.len;
    return ctx->body.base != NULL ? ctx->body.base : "";
}

void prism_ctx_set_body(prism_ctx *ctx, const char *data, size_t len)
{
    ctx->body = h2o_strdup(&ctx->req->pool, data, len);
    ctx->scanned = 0; /* the fields are read again from the new body */
    ctx->json_view = NULL;
}

void prism_ctx_on_error_response(prism_ctx *ctx, int (*fn)(void *data, prism_ctx *ctx, int status), void *data)
{
    ctx->on_error_fn = fn;
    ctx->on_error_data = data;
}

const char *prism_ctx_request_id(const prism_ctx *ctx)
{
    return ctx->request_id;
}

void *prism_ctx_alloc(prism_ctx *ctx, size_t size)
{
    return h2o_mem_alloc_pool(&ctx->req->pool, size);
}

char *prism_ctx_strdup(prism_ctx *ctx, const char *s)
{
    return h2o_strdup(&ctx->req->pool, s, strlen(s)).base;
}

void prism_ctx_set(prism_ctx *ctx, const char *key, const char *value)
{
    for (prism_kv *kv = ctx->kv; kv != NULL; kv = kv->next) {
        if (strcmp(kv->key, key) == 0) {
            kv->value = prism_ctx_strdup(ctx, value);
            return;
        }
    }
    /* The entry and both copies in one allocation. */
    size_t klen = strlen(key) + 1, vlen = strlen(value) + 1;
    prism_kv *kv = prism_ctx_alloc(ctx, sizeof(*kv) + klen + vlen);
    char *k = (char *)(kv + 1), *v = k + klen;
    kv->key = memcpy(k, key, klen);
    kv->value = memcpy(v, value, vlen);
    kv->next = ctx->kv;
    ctx->kv = kv;
}

const char *prism_ctx_get(const prism_ctx *ctx, const char *key)
{
    for (prism_kv *kv = ctx->kv; kv != NULL; kv = kv->next)
        if (strcmp(kv->key, key) == 0)
            return kv->value;
    return NULL;
}

void prism_ctx_on_abort(prism_ctx *ctx, void (*cb)(void *data), void *data)
{
    prism_abort_cb *a = prism_ctx_alloc(ctx, sizeof(*a));
    a->cb = cb;
    a->data = data;
    a->next = ctx->aborts;
    ctx->aborts = a;
}

int prism_ctx_responded(const prism_ctx *ctx)
{
    return ctx->resp != PRISM_RESP_NONE;
}

/* One pass over the upstream's lines (not one per name): a provider sends
 * a dozen or two, and a plugin relays about as many names. The first line
 * of each name is relayed, as prism_upstream_header would find it. */
void prism_relay_headers(prism_ctx *ctx, const prism_upstream *up, const char *const *names, size_t count)
{
    enum { MAX_NAMES = 64 };
    size_t lens[MAX_NAMES];
    uint64_t relayed = 0;
    if (count > MAX_NAMES)
        count = MAX_NAMES;
    for (size_t i = 0; i < count; i++)
        lens[i] = strlen(names[i]);
    prism_upstream_hline h;
    for (const char *name = prism_upstream_header_next(up, NULL, &h); name != NULL;
         name = prism_upstream_header_next(up, name, &h)) {
        for (size_t i = 0; i < count; i++) {
            if (lens[i] == h.name_len && !(relayed >> i & 1) && strncasecmp(name, names[i], h.name_len) == 0) {
                relayed |= (uint64_t)1 << i;
                prism_response_header_n(ctx, names[i], lens[i], h.value, h.value_len);
                break;
            }
        }
    }
}

/* ---- dispatch ---- */

/* Ends the open trace slot of plugin p: its own time stops when it hands
 * the request on, so step times do not count the provider twice. */
static void close_step_of(prism_ctx *ctx, const prism_loaded *p)
{
    for (size_t i = ctx->trace_count; i-- > 0;) {
        if (ctx->trace[i].plugin == p && ctx->trace[i].dur_ns == 0) {
            ctx->trace[i].dur_ns = prism_now_ns() - ctx->trace[i].start_ns;
            return;
        }
    }
}

prism_status prism_ctx_run_plugin(prism_ctx *ctx, const prism_loaded *p)
{
    size_t slot = ctx->trace_count;
    if (slot < PRISM_TRACE_MAX) {
        ctx->trace[slot] = (prism_trace_step){p->name, p, prism_now_ns(), 0};
        ctx->trace_count++;
    }
    ctx->current = p;
    prism_status st = p->desc->handle(p->instance, ctx);
    /* A step that dispatched had its own time closed at the dispatch. */
    if (slot < PRISM_TRACE_MAX && st != PRISM_PENDING && ctx->trace[slot].dur_ns == 0)
        ctx->trace[slot].dur_ns = prism_now_ns() - ctx->trace[slot].start_ns;
    return st;
}

prism_status prism_ctx_dispatch(prism_ctx *ctx, const char *plugin_name)
{
    const prism_loaded *target = prism_registry_sibling(ctx->gen->reg, ctx->current, plugin_name);
    if (target == NULL) {
        prism_respond_error(ctx, 501, "invalid_request_error", "provider_not_installed", NULL,
                            "The plugin '%s' that serves this request is not installed or not enabled.", plugin_name);
        return PRISM_DONE;
    }
    /* What earlier steps put on the response survives a fallback that
     * replaces what this one adds. */
    ctx->dispatch_headers = ctx->req->res.headers.size;
    close_step_of(ctx, ctx->current);
    return prism_ctx_run_plugin(ctx, target);
}

/* ---- noticing a client that hangs up (HTTP/1) ---- */

static prism_ctx *find_watcher(prism_worker_env *env, h2o_socket_t *sock)
{
    for (prism_ctx *c = env->watching; c != NULL; c = c->watch_next)
        if (c->watch_sock == sock)
            return c;
    return NULL;
}

static void on_client_read(h2o_socket_t *sock, const char *err);

/* ---- delayed watches ----
 * A request that goes upstream is watched only if it is still waiting
 * PRISM_WATCH_DELAY_MS later. The delay is the same for all, so the list is
 * in due order and one timer per worker, set for its head, serves it. */

static void soon_remove(prism_ctx *ctx)
{
    prism_worker_env *env = ctx->env;
    if (!ctx->soon)
        return;
    if (ctx->soon_prev != NULL)
        ctx->soon_prev->soon_next = ctx->soon_next;
    else
        env->soon_head = ctx->soon_next;
    if (ctx->soon_next != NULL)
        ctx->soon_next->soon_prev = ctx->soon_prev;
    else
        env->soon_tail = ctx->soon_prev;
    ctx->soon = 0;
    ctx->soon_next = ctx->soon_prev = NULL;
    if (env->soon_head == NULL)
        uv_timer_stop(&env->watch_timer);
}

static void on_watch_timer(uv_timer_t *t)
{
    prism_worker_env *env = t->data;
    uint64_t now = uv_now(env->loop);
    while (env->soon_head != NULL && env->soon_head->soon_due <= now) {
        prism_ctx *ctx = env->soon_head;
        soon_remove(ctx);
        prism_ctx_watch_client(ctx);
    }
    if (env->soon_head != NULL)
        uv_timer_start(&env->watch_timer, on_watch_timer, env->soon_head->soon_due - now, 0);
}

void prism_env_watch_init(prism_worker_env *env, uv_loop_t *loop)
{
    uv_timer_init(loop, &env->watch_timer);
    env->watch_timer.data = env;
    uv_unref((uv_handle_t *)&env->watch_timer); /* the requests keep the loop running, not this */
}

void prism_ctx_watch_client_soon(prism_ctx *ctx)
{
    prism_worker_env *env = ctx->env;
    if (ctx->soon || ctx->watch_sock != NULL || ctx->gone || ctx->req->version >= 0x200)
        return;
    ctx->soon = 1;
    ctx->soon_due = uv_now(env->loop) + PRISM_WATCH_DELAY_MS;
    ctx->soon_next = NULL;
    ctx->soon_prev = env->soon_tail;
    if (env->soon_tail != NULL)
        env->soon_tail->soon_next = ctx;
    else
        env->soon_head = ctx;
    env->soon_tail = ctx;
    if (!uv_is_active((uv_handle_t *)&env->watch_timer))
        uv_timer_start(&env->watch_timer, on_watch_timer, PRISM_WATCH_DELAY_MS, 0);
}

static void detach_watcher(prism_ctx *ctx)
{
    *ctx->watch_pprev = ctx->watch_next;
    if (ctx->watch_next != NULL)
        ctx->watch_next->watch_pprev = ctx->watch_pprev;
    ctx->watch_sock = NULL;
}

void prism_ctx_unwatch_client(prism_ctx *ctx)
{
    soon_remove(ctx);
    if (ctx->watch_sock == NULL)
        return;
    h2o_socket_read_stop(ctx->watch_sock);
    detach_watcher(ctx);
}

/* The socket is left reading: stopping now and h2o starting again after the
 * response would cost two epoll_ctl calls (libuv forgets the descriptor is
 * registered when reading stops, so its restart tries EPOLL_CTL_ADD, fails
 * with EEXIST, then modifies). h2o's restart only swaps the callback.
 * Anything read before that finds no watcher and stops reading, leaving
 * the bytes in the socket's buffer for h2o, as a watched read does. */
void prism_ctx_release_client(prism_ctx *ctx)
{
    soon_remove(ctx);
    if (ctx->watch_sock != NULL)
        detach_watcher(ctx);
}

void prism_ctx_watch_client(prism_ctx *ctx)
{
    h2o_req_t *req = ctx->req;
    soon_remove(ctx);
    if (ctx->watch_sock != NULL || ctx->gone || req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || h2o_socket_is_reading(sock))
        return;
    ctx->watch_sock = sock;
    ctx->watch_next = ctx->env->watching;
    if (ctx->watch_next != NULL)
        ctx->watch_next->watch_pprev = &ctx->watch_next;
    ctx->watch_pprev = &ctx->env->watching;
    ctx->env->watching = ctx;
    h2o_socket_read_start(sock, on_client_read);
}

/* ---- a client reset (HTTP/1) ----
 * After a read fails with ECONNRESET (not after a clean EOF), libuv marks the
 * stream unwritable and uv_write() fails at once; h2o 2.2 ignores that
 * return value and waits for a write callback that never comes, so the
 * connection, its request and its socket would stay forever. These find the
 * libuv stream behind an h2o socket (h2o points the handle's data at it) and
 * finish such a refused write the way libuv would have: with an error, which
 * makes h2o close the connection through its own code. */

typedef struct stream_search {
    const h2o_socket_t *sock;
    uv_handle_t *found;
} stream_search;

static void match_stream(uv_handle_t *h, void *arg)
{
    stream_search *s = arg;
    if (h->type == UV_TCP && h->data == s->sock)
        s->found = h;
}

/* Whether libuv will refuse every write on sock's stream. */
static int writes_refused(h2o_conn_t *conn, h2o_socket_t *sock)
{
    stream_search s = {sock, NULL};
    uv_walk(conn->ctx->loop, match_stream, &s);
    return s.found != NULL && !uv_is_closing(s.found) && !uv_is_writable((uv_stream_t *)s.found);
}

static void fail_refused_write(h2o_socket_t *sock)
{
    h2o_socket_cb cb = sock->_cb.write;
    if (cb == NULL)
        return;
    sock->_cb.write = NULL;
    cb(sock, h2o_socket_error_io); /* h2o closes the connection: ctx is freed */
}

/* The HTTP/1 socket of a request, or NULL (HTTP/2 streams end by reset). */
static h2o_socket_t *http1_socket(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return NULL;
    return req->conn->callbacks->get_socket(req->conn);
}

/* Sends what ends a gone client's response and, when libuv refuses writes
 * (after a reset), fails the write h2o started so h2o closes the connection.
 * ctx may be freed once this returns: the caller touches nothing of it. */
static void send_for_gone(prism_ctx *ctx, int status)
{
    h2o_req_t *req = ctx->req;
    h2o_socket_t *sock = http1_socket(req);
    int refused = sock != NULL && writes_refused(req->conn, sock);
    if (status == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
    } else {
        req->http1_is_persistent = 0; /* after it, h2o closes instead of reading on */
        ctx->gone = 0;                /* let the closing response through */
        prism_respond_error(ctx, status, "invalid_request_error", "client_closed_request", NULL,
                            "The client closed the connection.");
        ctx->gone = 1;
    }
    if (refused)
        fail_refused_write(sock); /* nothing when h2o closed the connection already */
}

void prism_ctx_end_gone_stream(prism_ctx *ctx)
{
    ctx->end_wanted = 0;
    send_for_gone(ctx, 0);
}

/* The socket's `data` belongs to h2o, so the request is found by socket in
 * the worker's (short) list of watched requests. Bytes that arrive are a
 * pipelined request: they stay in the socket's buffer for h2o, and reading
 * stops so they cannot pile up. h2o frees a connection only after a
 * response fails to write (or ends without keep-alive), so a gone client's
 * response is ended: at once, or, with a write in flight, when that write
 * completes (on_proceed); if it fails instead, h2o closes by itself. */
static void on_client_read(h2o_socket_t *sock, const char *err)
{
    h2o_conn_t *conn = sock->data;
    prism_ctx *ctx = find_watcher(prism_worker_env_of(conn->ctx), sock);
    if (ctx == NULL) {
        h2o_socket_read_stop(sock);
        return;
    }
    prism_ctx_unwatch_client(ctx);
    if (err == NULL)
        return;
    prism_ctx_abandon(ctx);
    if (ctx->resp == PRISM_RESP_STREAMING) {
        ctx->resp = PRISM_RESP_DONE;
        if (ctx->send_busy)
            ctx->end_wanted = 1;
        else
            send_for_gone(ctx, 0);
    } else if (ctx->resp == PRISM_RESP_NONE) {
        send_for_gone(ctx, 499);
    }
}

/* No answer holds more tokens than this; a count past it is an upstream's
 * nonsense, and kept out of the token counters it would soon wrap. */
#define MAX_REPORTED_TOKENS 1000000000L

void prism_ctx_set_usage(prism_ctx *ctx, long prompt_tokens, long completion_tokens)
{
    int sane = prompt_tokens >= 0 && prompt_tokens <= MAX_REPORTED_TOKENS && completion_tokens >= 0 &&
               completion_tokens <= MAX_REPORTED_TOKENS;
    ctx->prompt_tokens = sane ? prompt_tokens : -1;
    ctx->completion_tokens = sane ? completion_tokens : -1;
}

uint64_t prism_ctx_random(prism_ctx *ctx)
{
    return prism_env_random(ctx->env);
}
