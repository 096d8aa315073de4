/*
 * ctx_upstream.c - upstream transfers tied to a request: cancelled when the
 * client goes away, and retried under the plugin's policy while nothing of
 * the failed attempt has reached the plugin.
 *
 * Each transfer is wrapped in a link that owns a copy of the request, so a
 * retry can re-send it, and that sits between curl's callbacks and the
 * plugin's: a response that will be retried is swallowed here (status,
 * headers and body), and the plugin only ever sees the attempt that counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "ctx.h"
#include "log.h"
#include "permissions.h"

#define MAX_RETRY_AFTER_MS 60000

struct prism_up_link {
    prism_up_link *next, **pprev;
    prism_ctx *ctx;
    const prism_loaded *owner; /* the plugin that made the call */
    uint64_t started_ns;
    prism_upstream *up; /* NULL while waiting to retry */
    prism_http_callbacks_t user;
    prism_http_request_t req; /* the ctx-memory copy re-sent on retry */
    prism_retry_policy policy;
    unsigned attempt;
    int delivered;   /* the plugin has seen this attempt's response */
    int swallowing;  /* this attempt will be retried: hide it */
    int last_status; /* what made us retry */
    uint64_t delay_ms;
    uv_timer_t *timer;
};

static void link_remove(prism_up_link *l)
{
    if (l->pprev == NULL)
        return;
    *l->pprev = l->next;
    if (l->next != NULL)
        l->next->pprev = l->pprev;
    l->pprev = NULL;
}

static void link_insert(prism_ctx *ctx, prism_up_link *l)
{
    l->next = ctx->upstreams;
    if (l->next != NULL)
        l->next->pprev = &l->next;
    l->pprev = &ctx->upstreams;
    ctx->upstreams = l;
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

static void stop_timer(prism_up_link *l)
{
    if (l->timer != NULL) {
        uv_close((uv_handle_t *)l->timer, free_timer);
        l->timer = NULL;
    }
}

void prism_ctx_cancel_upstreams(prism_ctx *ctx)
{
    while (ctx->upstreams != NULL) {
        prism_up_link *l = ctx->upstreams;
        link_remove(l);
        stop_timer(l);
        if (l->up != NULL)
            prism_upstream_cancel(l->up);
        l->up = NULL;
    }
}

void prism_http_cancel(prism_ctx *ctx, prism_upstream *up)
{
    for (prism_up_link *l = ctx->upstreams; l != NULL; l = l->next) {
        if (l->up == up) {
            link_remove(l);
            stop_timer(l);
            l->up = NULL;
            prism_upstream_cancel(up);
            return;
        }
    }
}

/* ---- when to retry ---- */

static int status_retryable(const prism_retry_policy *p, int status)
{
    return (status == 429 && (p->on & PRISM_RETRY_429)) ||
           (status >= 500 && status <= 599 && (p->on & PRISM_RETRY_5XX));
}

static int error_retryable(const prism_retry_policy *p, prism_upstream_error err)
{
    if (err == PRISM_UPSTREAM_ERR_TIMEOUT)
        return (p->on & PRISM_RETRY_TIMEOUT) != 0;
    return err != PRISM_UPSTREAM_OK && (p->on & PRISM_RETRY_CONNECT) != 0;
}

/* Exponential backoff with "equal jitter": half fixed, half random, so a
 * burst of failed requests does not come back in lockstep. */
static uint64_t backoff_ms(prism_up_link *l)
{
    uint64_t d = (uint64_t)l->policy.base_delay_ms << (l->attempt < 16 ? l->attempt : 16);
    if (d > l->policy.max_delay_ms)
        d = l->policy.max_delay_ms;
    uint64_t half = d / 2;
    return half + (half ? prism_env_random(l->ctx->env) % (half + 1) : 0);
}

/* retry-after in seconds or as an HTTP date; -1 when absent or unreadable. */
static long long retry_after_ms(const prism_upstream *up)
{
    const char *v = prism_upstream_header(up, "retry-after");
    if (v == NULL || *v == '\0')
        return -1;
    char *end = NULL;
    double secs = strtod(v, &end);
    if (end != v && *end == '\0')
        return secs < 0 ? 0 : (long long)(secs * 1000);
    time_t at = curl_getdate(v, NULL);
    if (at < 0)
        return -1;
    time_t now = time(NULL);
    return at > now ? (long long)(at - now) * 1000 : 0;
}

/* ---- the attempt's callbacks ---- */

static void start_attempt(prism_up_link *l);

static void on_retry_timer(uv_timer_t *t)
{
    prism_up_link *l = t->data;
    stop_timer(l);
    start_attempt(l);
}

/* Called with the failed attempt over; the next one starts after a delay. */
static void schedule_retry(prism_up_link *l, int status, prism_upstream_error err, uint64_t delay)
{
    l->attempt++;
    l->ctx->retries++;
    l->up = NULL;
    if (l->user.before_retry != NULL)
        l->user.before_retry(l->user.data, l->attempt, status, err, &l->req);
    l->timer = malloc(sizeof(*l->timer));
    if (l->timer == NULL) {
        start_attempt(l);
        return;
    }
    uv_timer_init(l->ctx->env->loop, l->timer);
    l->timer->data = l;
    uv_timer_start(l->timer, on_retry_timer, delay, 0);
}

static void on_up_response(void *data, prism_upstream *up, int status)
{
    prism_up_link *l = data;
    l->up = up;
    if (l->attempt < l->policy.attempts && status_retryable(&l->policy, status)) {
        long long ra = retry_after_ms(up);
        if (ra <= MAX_RETRY_AFTER_MS) {
            l->swallowing = 1;
            l->last_status = status;
            l->delay_ms = ra >= 0 ? (uint64_t)ra : backoff_ms(l);
            return;
        }
    }
    l->delivered = 1;
    if (l->user.on_response != NULL)
        l->user.on_response(l->user.data, up, status);
}

static int on_up_body(void *data, prism_upstream *up, const char *chunk, size_t len)
{
    prism_up_link *l = data;
    l->up = up;
    if (l->swallowing)
        return 0;
    if (l->ctx->first_byte_ns == 0)
        l->ctx->first_byte_ns = prism_now_ns() - l->ctx->started_ns;
    return l->user.on_body != NULL ? l->user.on_body(l->user.data, up, chunk, len) : 0;
}

static void on_up_complete(void *data, prism_upstream *up, prism_upstream_error err, const char *message)
{
    prism_up_link *l = data;
    if (l->swallowing) {
        l->swallowing = 0;
        schedule_retry(l, l->last_status, PRISM_UPSTREAM_OK, l->delay_ms);
        return;
    }
    if (!l->delivered && l->attempt < l->policy.attempts && error_retryable(&l->policy, err)) {
        schedule_retry(l, 0, err, backoff_ms(l));
        return;
    }
    link_remove(l);
    l->up = NULL;
    l->ctx->upstream_ns += prism_now_ns() - l->started_ns;
    if (err != PRISM_UPSTREAM_OK)
        l->ctx->upstream_err = err;
    if (l->user.on_complete != NULL)
        l->user.on_complete(l->user.data, up, err, message);
}

static void start_attempt(prism_up_link *l)
{
    static const char *const no_headers[1] = {NULL};
    prism_http_callbacks_t wrap = {l, on_up_response, on_up_body, on_up_complete, NULL};
    l->delivered = 0;
    if (l->req.headers == NULL)
        l->req.headers = no_headers;
    /* before_retry may have moved the call to another deployment. */
    int allowed = l->owner == NULL || l->owner->perms == NULL || prism_permissions_allow(l->owner->perms, l->req.url);
    l->up = allowed ? prism_upstream_start(l->ctx->env->upstreams, &l->req, &wrap) : NULL;
    if (l->up == NULL) {
        /* Only a retry can get here with the request already accepted once:
         * report it as the failure it is. */
        link_remove(l);
        if (l->user.on_complete != NULL)
            l->user.on_complete(l->user.data, NULL, PRISM_UPSTREAM_ERR_OTHER, "the retry could not be started");
    }
}

/* ---- the API ---- */

static void copy_request(prism_ctx *ctx, prism_up_link *l, const prism_http_request_t *req)
{
    l->req = *req;
    l->req.url = prism_ctx_strdup(ctx, req->url);
    const char **h = prism_ctx_alloc(ctx, (req->header_count + 1) * sizeof(*h));
    for (size_t i = 0; i < req->header_count; i++)
        h[i] = prism_ctx_strdup(ctx, req->headers[i]);
    h[req->header_count] = NULL;
    l->req.headers = h;
    if (req->retry != NULL)
        l->policy = *req->retry;
    l->req.retry = NULL;
    if (l->req.connect_timeout_ms == 0)
        l->req.connect_timeout_ms = (long)ctx->gen->cfg->upstream_connect_timeout_ms;
    if (l->req.timeout_ms == 0)
        l->req.timeout_ms = (long)ctx->gen->cfg->upstream_timeout_ms;
}

/* An upstream call to a host the plugin was not approved for is refused,
 * loudly: a plugin calling out where its manifest did not say is either a
 * misconfiguration to fix or exactly what permissions exist to stop. */
static int permitted(prism_ctx *ctx, const prism_loaded *owner, const char *url)
{
    if (owner == NULL || owner->perms == NULL || prism_permissions_allow(owner->perms, url))
        return 1;
    char host[256] = "?";
    prism_url_host(url, host, sizeof(host));
    char source[256];
    snprintf(source, sizeof(source), "%s%s%s", owner->group ? owner->group : "", owner->group ? "." : "", owner->name);
    prism_logf(PRISM_LOG_ERROR, source,
               "request %s: refused an upstream call to %s: not in the plugin's permissions.network", ctx->request_id,
               host);
    prism_respond_error(ctx, 502, "api_error", "upstream_not_permitted", NULL,
                        "The plugin '%s' is not permitted to call %s. Add the host to permissions.network in its "
                        "plugin.yml and reinstall it, or set it as the provider's base_url.",
                        owner->name, host);
    return 0;
}

prism_upstream *prism_http_request(prism_ctx *ctx, const prism_http_request_t *req, const prism_http_callbacks_t *cb)
{
    if (ctx->gone || req->url == NULL || !permitted(ctx, ctx->current, req->url))
        return NULL;
    prism_up_link *l = prism_ctx_alloc(ctx, sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->ctx = ctx;
    l->owner = ctx->current;
    l->started_ns = prism_now_ns();
    l->user = *cb;
    copy_request(ctx, l, req);
    prism_http_callbacks_t wrap = {l, on_up_response, on_up_body, on_up_complete, NULL};
    l->up = prism_upstream_start(ctx->env->upstreams, &l->req, &wrap);
    if (l->up == NULL)
        return NULL;
    link_insert(ctx, l);
    return l->up;
}
