/*
 * h1client.h - plain-HTTP/1.1 upstream requests on a worker's libuv loop.
 *
 * The transport for http:// upstreams (a provider on the same host or in the
 * same cluster: a local model server, a sidecar, a test double) that no proxy
 * applies to. https:// and proxied upstreams stay on libcurl, which brings
 * TLS, HTTP/2 and proxies; this one does only what a plain hop needs, with
 * libh2o's picohttpparser reading the responses, and costs a fraction of
 * libcurl's instructions per request (docs/decisions/0004-plain-http-client.md).
 *
 * Connections are kept per host and port and reused; an idle one is watched,
 * so one the upstream closed is dropped before it can be picked. A request is
 * sent at most once: one that fails on a reused connection before any byte of
 * its response came back is reported as a reset, never re-sent behind the
 * caller's back (a provider may already have run, and billed, it).
 *
 * Callbacks never run from inside prism_h1_start, prism_h1_resume or
 * prism_h1_cancel. A request is freed by this module: right after on_done
 * returns, or inside prism_h1_cancel (after the callback that called it
 * returns, when it is called from one).
 */
#ifndef PRISM_H1CLIENT_H
#define PRISM_H1CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "prism/plugin.h"

typedef struct prism_h1_pool prism_h1_pool;
typedef struct prism_h1_req prism_h1_req;

typedef struct prism_h1_callbacks {
    void *data;
    /* The final response's status and headers (interim 1xx ones skipped).
     * Names and values point into a buffer reused after the call. */
    void (*on_head)(void *data, int status, const char *const *names, const size_t *name_lens,
                    const char *const *values, const size_t *value_lens, size_t count);
    /* A piece of the body (chunked encoding removed). Return 0, or
     * PRISM_UPSTREAM_PAUSE to stop reading until prism_h1_resume. */
    int (*on_body)(void *data, const char *chunk, size_t len);
    /* The end: PRISM_UPSTREAM_OK once the whole body is in. */
    void (*on_done)(void *data, prism_upstream_error err, const char *message);
} prism_h1_callbacks;

/* At most `max_idle` connections are kept idle for reuse (0: 1024); one
 * released beyond that is closed. `gauge` (optional) is told of every
 * connection opened (+1) and closed (-1). */
prism_h1_pool *prism_h1_pool_new(uv_loop_t *loop, size_t max_header_bytes, size_t max_idle,
                                 void (*gauge)(void *data, int delta), void *gauge_data);
/* A proxy is configured (libcurl applies it): from now on the pool takes
 * only hosts that `no_proxy` exempts, by curl's rules ("*" for all, else a
 * comma-separated list of names, each also covering its subdomains). The
 * string is copied. -1: out of memory. */
int prism_h1_pool_proxied(prism_h1_pool *pool, const char *no_proxy);
/* Closes every connection; requests still running get no more callbacks
 * (cancel them first). Memory goes once the loop has closed the handles. */
void prism_h1_pool_free(prism_h1_pool *pool);
/* A request header line both upstream clients accept: "Name: value" with a
 * name, and no CR or LF that could smuggle another header or request. */
bool prism_h1_header_ok(const char *line);
/* line's name is `name`, in any case. */
bool prism_h1_header_is(const char *line, const char *name);
/* Connections open now, idle ones included (for tests and metrics). */
size_t prism_h1_pool_connections(const prism_h1_pool *pool);

/* NULL when the request cannot be sent this way: the URL is not a plain
 * http:// one this module understands, a header line is malformed, or
 * memory ran out. `req->body` must stay valid until on_done or cancel. */
prism_h1_req *prism_h1_start(prism_h1_pool *pool, const prism_http_request_t *req, long connect_timeout_ms,
                             const prism_h1_callbacks *cb);
void prism_h1_resume(prism_h1_req *r);
/* No callback runs for the request afterwards. */
void prism_h1_cancel(prism_h1_req *r);

#endif
