/*
 * upstream.h - outgoing HTTP on libcurl's multi interface, driven by a
 * worker's libuv loop (curl_multi_socket_action).
 *
 * One prism_upstream_pool per worker: it owns the CURLM handle, one uv_poll_t
 * per socket curl watches and one uv_timer_t for curl's timeout, so nothing
 * ever blocks the loop. Connections are kept and reused by the multi handle
 * across requests; HTTP/2 is negotiated over TLS; TLS peers are verified;
 * proxy variables (http_proxy, https_proxy, no_proxy) are honoured by libcurl.
 *
 * Plain http:// transfers go to the built-in HTTP/1.1 client (h1client.h)
 * instead (unless a proxy applies to the host, or libcurl_only is set): on
 * a plain hop libcurl's own work was half of a proxied request's cost
 * (docs/decisions/0004-plain-http-client.md). Either way the callbacks, the
 * deadlines and the re-entrancy rules below are the same.
 *
 * The public face (prism_http_request and friends in prism/plugin.h) is in
 * ctx.c, which ties each transfer to its request; this module knows nothing
 * of requests.
 */
#ifndef PRISM_UPSTREAM_H
#define PRISM_UPSTREAM_H

#include <stdbool.h>

#include <uv.h>

#include "prism/plugin.h"

typedef struct prism_upstream_pool prism_upstream_pool;

typedef struct prism_upstream_options {
    long connect_timeout_ms; /* default for requests that give 0 */
    const char *ca_file;     /* NULL: the system bundle */
    size_t max_response_header_bytes;
    /* Plain http:// upstreams go through h1client (when no proxy applies
     * to the host) unless this is true. */
    bool libcurl_only;
    /* Connections kept idle for reuse, by each client (0: 1024). Fewer than
     * the requests in flight makes a busy worker close connections it is
     * about to open again. */
    size_t max_idle;
    /* Told of each connection that client opens (+1) and closes (-1). */
    void (*conn_gauge)(void *data, int delta);
    void *conn_gauge_data;
} prism_upstream_options;

prism_upstream_pool *prism_upstream_pool_new(uv_loop_t *loop, const prism_upstream_options *opts);
/* Cancels every transfer still running (no callbacks) and closes the uv
 * handles; the pool's memory is released once the loop has run their close
 * callbacks. */
void prism_upstream_pool_free(prism_upstream_pool *pool);
/* Starts a transfer. Request strings are copied except the body, which must
 * live until completion. Returns NULL (and runs no callback) when curl
 * refuses the request. The upstream is freed right after on_complete returns
 * or inside prism_upstream_cancel. */
prism_upstream *prism_upstream_start(prism_upstream_pool *pool, const prism_http_request_t *req,
                                     const prism_http_callbacks_t *cb);
/* Cancels at once; no callback runs afterwards. Plugins go through
 * prism_http_cancel, which also forgets the request's link. */
void prism_upstream_cancel(prism_upstream *up);

/* One response header line as stored: the value and both lengths (the name
 * and the value also end in NUL). */
typedef struct prism_upstream_hline {
    const char *value;
    size_t name_len, value_len;
} prism_upstream_hline;
/* The response's header lines in the order they came: the first when prev
 * is NULL, else the one after prev. Returns the name as received and fills
 * *line; NULL after the last. */
const char *prism_upstream_header_next(const prism_upstream *up, const char *prev, prism_upstream_hline *line);
/* Transfers running now (for metrics and shutdown). */
size_t prism_upstream_pool_active(const prism_upstream_pool *pool);

#endif
