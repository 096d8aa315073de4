/*
 * h1client.c - plain-HTTP/1.1 upstream requests on libuv (see h1client.h).
 *
 * A connection (h1_conn) owns its socket, one timer and a read buffer; a
 * request (prism_h1_req) borrows a connection from start to end. The timer
 * serves the request on the connection: the connect deadline first, then the
 * whole-transfer one. Keeping it on the connection means a reused connection
 * costs no handle set-up or tear-down per request.
 *
 * Reading is on whenever a connection is open and its request is not paused:
 * on an idle connection any byte or end of file means the upstream is done
 * with it, and it is closed at once instead of being handed to the next
 * request.
 *
 * Responses are parsed with picohttpparser, which libh2o carries and exports
 * (phr_parse_response, phr_decode_chunked) without installing its header; the
 * declarations below are that library's public interface, unchanged since it
 * first shipped with h2o 2.x.
 *
 * Re-entrancy: on_head and on_body may cancel their own request or any other,
 * start new ones or free the pool. While a callback runs, `in_cb` is set and a
 * cancel only marks the request; the code after the call notices and frees it.
 * A connection is closed through uv_close and freed in the last close
 * callback, so a frame still holding it stays valid.
 */
#include "h1client.h"

#include "grow.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <h2o.h>

/* ---- picohttpparser, as exported by libh2o ---- */

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

/* ---- limits ---- */

#define READ_BUF_SIZE (64u * 1024u) /* one per pool, shared by its connections */
#define HEAD_BUF_MIN  1024u
#define MAX_HEADERS   256
#define IDLE_MAX      1024  /* idle connections kept per worker, unless the caller says */
#define IDLE_TTL_MS   55000 /* under most servers' keep-alive limits */
#define IDLE_SWEEP_MS 5000
#define IDLE_CHECK_MS 1000 /* idle this long: asked whether still open before reuse */

typedef struct h1_conn h1_conn;
typedef struct h1_host h1_host;

typedef enum { ST_CONNECT, ST_HEAD, ST_BODY, ST_DONE } req_state;
typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE } body_kind;

struct prism_h1_req {
    prism_h1_pool *pool;
    h1_conn *conn; /* NULL while resolving or after the end */
    prism_h1_callbacks cb;
    char *key;  /* "host:port": which idle connections fit */
    char *host; /* for the resolver (brackets of an IPv6 literal removed); in key's allocation */
    uint16_t port;
    char *head; /* the request head, written before the body */
    size_t head_len;
    const char *body;
    size_t body_len;
    bool head_only; /* HEAD: the response has no body whatever it says */
    req_state state;
    body_kind kind;
    uint64_t left; /* BODY_LENGTH: bytes still to come */
    struct phr_chunked_decoder chunked;
    uint64_t connect_deadline, deadline; /* loop time in ms; 0: none */
    long connect_ms, total_ms;
    struct addrinfo *addrs, *next_addr; /* a name's addresses, tried in turn */
    struct addrinfo *literal;           /* or the one address the URL gave */
    uv_getaddrinfo_t *resolving;        /* owned by the resolver callback */
    bool reused;                        /* the connection served an earlier request */
    bool got_bytes;                     /* something of the response arrived */
    bool keepalive;
    bool in_cb, cancelled, paused, done_pending;
    /* An end decided outside the loop's callbacks (a write refused at once,
     * the body's end seen while paused), reported from the timer. */
    bool later;
    prism_upstream_error later_err;
    const char *later_msg;
};

struct h1_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    prism_h1_pool *pool;
    prism_h1_req *req; /* NULL when idle */
    h1_host *host;
    h1_conn *prev, *next; /* host->idle, most recently used first */
    uint64_t idle_since;
    /* A response head still incomplete (NULL most of the time: bytes are
     * read into the pool's buffer and copied here only until the head is
     * whole, so an open stream holds no read buffer of its own). */
    char *buf;
    size_t len, cap;
    int handles; /* open uv handles; freed at 0 */
    bool writing, reading, closing;
};

/* The connections to one "host:port". A pool talks to a handful of hosts,
 * and a request takes the head of its host's idle list: finding one costs a
 * walk over the hosts, never over thousands of idle connections to another.
 * An entry lives while a connection to its host is open. */
struct h1_host {
    h1_host *next;
    h1_conn *idle; /* most recently used first */
    size_t conns;  /* open connections made for this host */
    char key[];
};

struct prism_h1_pool {
    uv_loop_t *loop;
    size_t max_header_bytes;
    h1_host *hosts;
    size_t idle_count, idle_max;
    size_t conns;
    char *rbuf; /* every read lands here and is used up before the next one */
    uv_timer_t sweep;
    void (*gauge)(void *data, int delta);
    void *gauge_data;
    char *no_proxy; /* non-NULL: a proxy is set, and only these hosts are ours */
    bool freeing;
};

static void conn_close(h1_conn *c);
static void req_fail(prism_h1_req *r, prism_upstream_error err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int connect_next(prism_h1_req *r);
static void conn_send(h1_conn *c);
static void start_reading(h1_conn *c);
static void head_release(h1_conn *c);
static void finish_later(prism_h1_req *r, prism_upstream_error err, const char *msg);

/* ---- requests ---- */

static void req_free(prism_h1_req *r)
{
    if (r->addrs) {
        uv_freeaddrinfo(r->addrs);
    }
    free(r->literal);
    free(r->key); /* the host is in the same allocation */
    free(r->head);
    free(r);
}

/* The request lets go of its connection: back to the idle list when the
 * exchange ended cleanly, closed otherwise. */
static void req_release_conn(prism_h1_req *r, bool reusable)
{
    h1_conn *c = r->conn;
    if (!c) {
        return;
    }
    r->conn = NULL;
    c->req = NULL;
    uv_timer_stop(&c->timer);
    prism_h1_pool *pool = c->pool;
    if (!reusable || c->writing || pool->freeing || pool->idle_count >= pool->idle_max || c->closing) {
        conn_close(c);
        return;
    }
    c->len = 0;
    head_release(c);
    c->idle_since = uv_now(pool->loop);
    start_reading(c); /* an idle connection is watched for its close */
    c->prev = NULL;
    c->next = c->host->idle;
    if (c->next) {
        c->next->prev = c;
    }
    c->host->idle = c;
    pool->idle_count++;
}

/* The request's end: release the connection, then tell the caller. The
 * caller's on_done may start requests that pick up this very connection. */
static void req_finish(prism_h1_req *r, prism_upstream_error err, const char *message)
{
    r->state = ST_DONE;
    req_release_conn(r, err == PRISM_UPSTREAM_OK && r->keepalive);
    if (r->cb.on_done) {
        r->cb.on_done(r->cb.data, err, message);
    }
    req_free(r);
}

static void req_fail(prism_h1_req *r, prism_upstream_error err, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->keepalive = false;
    req_finish(r, err, msg);
}

/* The caller cancelled from inside a callback: finish the job now. */
static bool cancelled_in_cb(prism_h1_req *r)
{
    if (!r->cancelled) {
        return false;
    }
    req_release_conn(r, false);
    req_free(r);
    return true;
}

/* ---- connections ---- */

static h1_host *host_find(prism_h1_pool *pool, const char *key)
{
    for (h1_host *h = pool->hosts; h; h = h->next) {
        if (strcmp(h->key, key) == 0) {
            return h;
        }
    }
    return NULL;
}

/* The entry for `key`, made if needed, with one more connection counted. */
static h1_host *host_take(prism_h1_pool *pool, const char *key)
{
    h1_host *h = host_find(pool, key);
    if (!h) {
        size_t n = strlen(key) + 1;
        if (!(h = calloc(1, sizeof *h + n))) {
            return NULL;
        }
        memcpy(h->key, key, n);
        h->next = pool->hosts;
        pool->hosts = h;
    }
    h->conns++;
    return h;
}

/* A connection to `h` is gone; the entry goes with its last one. */
static void host_release(prism_h1_pool *pool, h1_host *h)
{
    if (--h->conns > 0) {
        return;
    }
    for (h1_host **at = &pool->hosts; *at; at = &(*at)->next) {
        if (*at == h) {
            *at = h->next;
            break;
        }
    }
    free(h);
}

static void pool_release(prism_h1_pool *pool)
{
    free(pool->no_proxy);
    free(pool->rbuf);
    free(pool);
}

static void on_conn_closed(uv_handle_t *h)
{
    h1_conn *c = h->data;
    if (--c->handles > 0) {
        return;
    }
    prism_h1_pool *pool = c->pool;
    host_release(pool, c->host);
    free(c->buf);
    free(c);
    pool->conns--;
    if (pool->gauge) {
        pool->gauge(pool->gauge_data, -1);
    }
    if (pool->freeing && pool->conns == 0 && pool->sweep.data == NULL) {
        pool_release(pool);
    }
}

static void idle_unlink(h1_conn *c)
{
    prism_h1_pool *pool = c->pool;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        c->host->idle = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    pool->idle_count--;
}

static void conn_close(h1_conn *c)
{
    if (c->closing) {
        return;
    }
    if (!c->req && (c->prev || c->host->idle == c)) {
        idle_unlink(c);
    }
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_timer(uv_timer_t *t);

static h1_conn *conn_new(prism_h1_req *r)
{
    prism_h1_pool *pool = r->pool;
    h1_conn *c = calloc(1, sizeof *c);
    h1_host *host = c ? host_take(pool, r->key) : NULL;
    if (!host) {
        free(c);
        return NULL;
    }
    c->pool = pool;
    c->host = host;
    uv_tcp_init(pool->loop, &c->tcp);
    uv_timer_init(pool->loop, &c->timer);
    c->tcp.data = c->timer.data = c->connect.data = c->write.data = c;
    c->handles = 2;
    pool->conns++;
    if (pool->gauge) {
        pool->gauge(pool->gauge_data, 1);
    }
    return c;
}

/* The timer fires for the request on the connection: still connecting, or
 * the whole-transfer limit. */
static void on_timer(uv_timer_t *t)
{
    h1_conn *c = t->data;
    prism_h1_req *r = c->req;
    if (!r) {
        return;
    }
    if (r->later) {
        if (r->later_err != PRISM_UPSTREAM_OK) {
            r->keepalive = false;
        }
        req_finish(r, r->later_err, r->later_msg);
    } else if (r->state == ST_CONNECT) {
        req_fail(r, PRISM_UPSTREAM_ERR_TIMEOUT, "could not connect to the upstream within %ld ms", r->connect_ms);
    } else {
        req_fail(r, PRISM_UPSTREAM_ERR_TIMEOUT, "the upstream did not finish within %ld ms", r->total_ms);
    }
}

static void arm_timer(prism_h1_req *r)
{
    uint64_t now = uv_now(r->pool->loop);
    uint64_t until = r->deadline;
    if (r->state == ST_CONNECT && r->connect_deadline && (!until || r->connect_deadline < until)) {
        until = r->connect_deadline;
    }
    if (until) {
        uv_timer_start(&r->conn->timer, on_timer, until > now ? until - now : 0, 0);
    } else {
        uv_timer_stop(&r->conn->timer); /* connected, and no overall limit */
    }
}

/* ---- reading the response ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    h1_conn *c = h->data;
    *buf = uv_buf_init(c->pool->rbuf, READ_BUF_SIZE);
}

/* Keeps the bytes of a response head that is not complete yet, with room
 * for one more byte (add_missing_reason). */
static int head_append(h1_conn *c, const char *p, size_t n)
{
    if (prism_grow(&c->buf, &c->cap, c->len + n + 1, HEAD_BUF_MIN) != 0) {
        return -1;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    return 0;
}

/* The head is used up: its buffer goes, unless a request started since (from
 * a callback) already keeps bytes in it. */
static void head_release(h1_conn *c)
{
    if (c->len == 0) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

/* Hands a piece of body to the caller. false: the request is gone (cancelled
 * in the callback) and the caller must not touch it again. */
static bool deliver(prism_h1_req *r, const char *p, size_t n)
{
    if (n == 0 || !r->cb.on_body) {
        return true;
    }
    r->in_cb = true;
    int rc = r->cb.on_body(r->cb.data, p, n);
    r->in_cb = false;
    if (cancelled_in_cb(r)) {
        return false;
    }
    if (rc == PRISM_UPSTREAM_PAUSE && !r->paused) {
        r->paused = true;
        if (r->conn && r->conn->reading) {
            uv_read_stop((uv_stream_t *)&r->conn->tcp);
            r->conn->reading = false;
        }
    }
    return true;
}

/* The body is complete: finish now, or after the resume when the caller
 * paused on the last piece (it expects nothing while paused). */
static void body_complete(prism_h1_req *r)
{
    if (r->paused) {
        r->done_pending = true;
        return;
    }
    req_finish(r, PRISM_UPSTREAM_OK, "");
}

static void body_bytes(prism_h1_req *r, char *p, size_t n)
{
    switch (r->kind) {
    case BODY_LENGTH: {
        size_t take = n < r->left ? n : (size_t)r->left;
        if (take < n) {
            r->keepalive = false; /* bytes beyond the body: not a clean connection */
        }
        r->left -= take;
        if (!deliver(r, p, take)) {
            return;
        }
        if (r->left == 0) {
            body_complete(r);
        }
        return;
    }
    case BODY_CHUNKED: {
        size_t len = n;
        ssize_t rc = phr_decode_chunked(&r->chunked, p, &len);
        if (rc == -1) {
            req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "the upstream sent a malformed chunked body");
            return;
        }
        if (!deliver(r, p, len)) {
            return;
        }
        if (rc >= 0) {
            r->keepalive = r->keepalive && rc == 0;
            body_complete(r);
        }
        return;
    }
    case BODY_CLOSE: deliver(r, p, n); return;
    case BODY_NONE:
        r->keepalive = r->keepalive && n == 0;
        body_complete(r);
        return;
    }
}

/* true when the list v holds token, in any case: tokens are separated by
 * commas or spaces, and parameters after a ';' are skipped. One comparison
 * per token, not one per byte: this reads every answer's Connection. */
static bool token_in(const char *v, size_t vlen, const char *token)
{
    const size_t tlen = strlen(token);
    const char *p = v, *end = v + vlen;
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
            continue;
        }
        const char *start = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t' && *p != ';')
            p++;
        if ((size_t)(p - start) == tlen && strncasecmp(start, token, tlen) == 0)
            return true;
        if (p < end && *p == ';')
            while (p < end && *p != ',')
                p++;
    }
    return false;
}

static bool name_is(const struct phr_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* Framing from the final response's headers (RFC 9112 section 6.3). -1: the
 * upstream's framing cannot be trusted. */
static int framing(prism_h1_req *r, int minor, int status, const struct phr_header *h, size_t n)
{
    bool chunked = false, has_length = false;
    uint64_t length = 0;
    r->keepalive = minor >= 1;
    for (size_t i = 0; i < n; i++) {
        if (!h[i].name) {
            continue;
        }
        if (name_is(&h[i], "connection")) {
            if (token_in(h[i].value, h[i].value_len, "close")) {
                r->keepalive = false;
            } else if (token_in(h[i].value, h[i].value_len, "keep-alive")) {
                r->keepalive = true;
            }
        } else if (name_is(&h[i], "transfer-encoding")) {
            chunked = h[i].value_len >= 7 && strncasecmp(h[i].value + h[i].value_len - 7, "chunked", 7) == 0;
            if (!chunked) {
                return -1; /* a coding we cannot undo, and no way to find the end */
            }
        } else if (name_is(&h[i], "content-length")) {
            uint64_t v = 0;
            if (h[i].value_len == 0 || h[i].value_len > 18) {
                return -1;
            }
            for (size_t k = 0; k < h[i].value_len; k++) {
                if (h[i].value[k] < '0' || h[i].value[k] > '9') {
                    return -1;
                }
                v = v * 10 + (uint64_t)(h[i].value[k] - '0');
            }
            if (has_length && v != length) {
                return -1;
            }
            has_length = true;
            length = v;
        }
    }
    if (r->head_only || status == 204 || status == 304) {
        r->kind = BODY_NONE;
    } else if (chunked) {
        r->kind = BODY_CHUNKED;
        memset(&r->chunked, 0, sizeof r->chunked);
        r->chunked.consume_trailer = 1;
        r->keepalive = r->keepalive && !has_length;
    } else if (has_length) {
        r->kind = length ? BODY_LENGTH : BODY_NONE;
        r->left = length;
    } else {
        r->kind = BODY_CLOSE;
        r->keepalive = false;
    }
    return 0;
}

static void call_on_head(prism_h1_req *r, int status, const struct phr_header *h, size_t n)
{
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t nlens[MAX_HEADERS], vlens[MAX_HEADERS];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name) { /* a folded continuation line has none: dropped */
            names[k] = h[i].name;
            nlens[k] = h[i].name_len;
            size_t vlen = h[i].value_len; /* the parser leaves trailing blanks */
            while (vlen > 0 && (h[i].value[vlen - 1] == ' ' || h[i].value[vlen - 1] == '\t')) {
                vlen--;
            }
            values[k] = h[i].value;
            vlens[k] = vlen;
            k++;
        }
    }
    if (r->cb.on_head) {
        r->cb.on_head(r->cb.data, status, names, nlens, values, vlens, k);
    }
}

/* Some servers end the status line right after the code ("HTTP/1.1 200"),
 * which the parser refuses; an empty reason phrase is what they mean. */
static bool add_missing_reason(h1_conn *c)
{
    if (c->len < 13 || memcmp(c->buf, "HTTP/1.", 7) != 0 || c->buf[12] != '\r' || c->len + 1 > c->cap) {
        return false;
    }
    memmove(c->buf + 13, c->buf + 12, c->len - 12);
    c->buf[12] = ' ';
    c->len++;
    return true;
}

/* Parses what came in so far; on the final head, delivers it and any body
 * bytes that came with it. */
static void parse_head(prism_h1_req *r)
{
    h1_conn *c = r->conn;
    for (;;) {
        struct phr_header h[MAX_HEADERS];
        size_t n = MAX_HEADERS;
        int minor = 0, status = 0;
        const char *msg;
        size_t msg_len;
        int rlen = phr_parse_response(c->buf, c->len, &minor, &status, &msg, &msg_len, h, &n, 0);
        if (rlen == -1 && add_missing_reason(c)) {
            continue;
        }
        if (rlen == -2) {
            if (c->len > c->pool->max_header_bytes) {
                req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "upstream response headers too large");
            }
            return;
        }
        if (rlen < 0) {
            req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "the upstream sent a malformed response head");
            return;
        }
        if ((size_t)rlen > c->pool->max_header_bytes) {
            req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "upstream response headers too large");
            return;
        }
        if (status >= 100 && status < 200) {
            if (status == 101) {
                req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "the upstream switched protocols");
                return;
            }
            memmove(c->buf, c->buf + rlen, c->len - (size_t)rlen); /* interim: skip it */
            c->len -= (size_t)rlen;
            continue;
        }
        if (framing(r, minor, status, h, n) != 0) {
            req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "the upstream's response framing is invalid");
            return;
        }
        r->state = ST_BODY;
        r->in_cb = true;
        call_on_head(r, status, h, n);
        r->in_cb = false;
        if (cancelled_in_cb(r)) {
            return;
        }
        size_t rest = c->len - (size_t)rlen;
        c->len = 0;
        body_bytes(r, c->buf + rlen, rest); /* may end r; c stays valid until its close callback */
        head_release(c);
        return;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    h1_conn *c = s->data;
    prism_h1_req *r = c->req;
    if (nread == 0) {
        return;
    }
    if (!r) {
        conn_close(c); /* idle: the upstream closed it, or spoke out of turn */
        return;
    }
    if (nread < 0) {
        if (r->state == ST_BODY && r->kind == BODY_CLOSE && nread == UV_EOF) {
            body_complete(r);
        } else if (!r->got_bytes) {
            req_fail(r, PRISM_UPSTREAM_ERR_RESET, "the upstream %sconnection closed before a response (%s)",
                     r->reused ? "(kept) " : "", uv_err_name((int)nread));
        } else {
            req_fail(r, PRISM_UPSTREAM_ERR_RESET, "the upstream connection closed mid-response (%s)",
                     uv_err_name((int)nread));
        }
        return;
    }
    r->got_bytes = true;
    if (r->state == ST_BODY) {
        body_bytes(r, c->pool->rbuf, (size_t)nread);
        return;
    }
    if (head_append(c, c->pool->rbuf, (size_t)nread) != 0) {
        req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "out of memory");
        return;
    }
    parse_head(r);
}

static void start_reading(h1_conn *c)
{
    if (!c->reading && !c->closing && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) {
        c->reading = true;
    }
}

/* Ends the request from the timer, on the next loop turn. */
static void finish_later(prism_h1_req *r, prism_upstream_error err, const char *msg)
{
    r->later = true;
    r->later_err = err;
    r->later_msg = msg;
    uv_timer_start(&r->conn->timer, on_timer, 0, 0);
}

/* ---- sending ---- */

static void on_written(uv_write_t *w, int status)
{
    h1_conn *c = w->data;
    c->writing = false;
    prism_h1_req *r = c->req;
    if (status == 0 || !r || c->closing) {
        return;
    }
    /* The upstream may have answered (and closed) before reading the whole
     * body; a response already coming in says more than the failed write. */
    if (r->got_bytes) {
        return;
    }
    req_fail(r, PRISM_UPSTREAM_ERR_RESET, "could not send the request to the upstream (%s)", uv_err_name(status));
}

static void conn_send(h1_conn *c)
{
    prism_h1_req *r = c->req;
    r->state = ST_HEAD;
    arm_timer(r);
    uv_buf_t bufs[2] = {uv_buf_init(r->head, (unsigned)r->head_len),
                        uv_buf_init((char *)r->body, (unsigned)r->body_len)};
    unsigned nbufs = r->body_len ? 2 : 1;
    start_reading(c);
    /* Written at once when the socket takes it all, as it nearly always
     * does: uv_write would also re-register the socket with epoll. */
    int sent = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
    if (sent == (int)(r->head_len + r->body_len)) {
        return;
    }
    uv_buf_t *rest = bufs;
    if (sent > 0) {
        size_t skip = (size_t)sent;
        if (skip >= rest->len) { /* the head went whole: the rest is body */
            skip -= rest->len;
            rest++;
            nbufs--;
        }
        rest->base += skip;
        rest->len -= skip;
    }
    int rc =
        sent >= 0 || sent == UV_EAGAIN ? uv_write(&c->write, (uv_stream_t *)&c->tcp, rest, nbufs, on_written) : sent;
    if (rc != 0) {
        /* Reported from the timer so no callback runs inside start. */
        finish_later(r, PRISM_UPSTREAM_ERR_RESET, "could not send the request to the upstream");
        return;
    }
    c->writing = true;
}

static void on_connected(uv_connect_t *creq, int status)
{
    h1_conn *c = creq->data;
    prism_h1_req *r = c->req;
    if (c->closing || !r) {
        return; /* cancelled while connecting */
    }
    if (status != 0) {
        r->conn = NULL;
        c->req = NULL;
        conn_close(c);
        if (r->next_addr && r->next_addr->ai_next) {
            r->next_addr = r->next_addr->ai_next;
            if (connect_next(r) != 0) {
                req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "out of memory");
            }
            return;
        }
        req_fail(r, PRISM_UPSTREAM_ERR_CONNECT, "could not connect to the upstream %s port %u (%s)", r->host,
                 (unsigned)r->port, uv_err_name(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_send(c);
}

/* Opens a connection to r->next_addr. -1: out of memory, nothing started. */
static int connect_next(prism_h1_req *r)
{
    h1_conn *c = conn_new(r);
    if (!c) {
        return -1;
    }
    c->req = r;
    r->conn = c;
    r->state = ST_CONNECT;
    arm_timer(r);
    if (uv_tcp_connect(&c->connect, &c->tcp, r->next_addr->ai_addr, on_connected) != 0) {
        /* Refused at once (no such address family, say): reported from the
         * timer, so never from inside prism_h1_start. */
        finish_later(r, PRISM_UPSTREAM_ERR_CONNECT, "could not connect to the upstream");
    }
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    prism_h1_req *r = gai->data;
    free(gai);
    if (!r) {
        uv_freeaddrinfo(res); /* the request was cancelled meanwhile */
        return;
    }
    r->resolving = NULL;
    if (status != 0 || !res) {
        if (res) {
            uv_freeaddrinfo(res);
        }
        req_fail(r, status == UV_ETIMEDOUT ? PRISM_UPSTREAM_ERR_TIMEOUT : PRISM_UPSTREAM_ERR_DNS,
                 "could not resolve the upstream host %s (%s)", r->host, uv_err_name(status));
        return;
    }
    r->addrs = r->next_addr = res;
    if (connect_next(r) != 0) {
        req_fail(r, PRISM_UPSTREAM_ERR_OTHER, "%s", "out of memory");
    }
}

/* ---- building the request ---- */

bool prism_h1_header_ok(const char *line)
{
    return line && line[0] != ':' && strchr(line, ':') && !strpbrk(line, "\r\n");
}

bool prism_h1_header_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static bool url_bytes_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '#' || ch == '@' || ch == '\\') {
            return false;
        }
    }
    return true;
}

/* Appends n bytes at *at (the caller sized the buffer). */
static void put(char **at, const char *s, size_t n)
{
    memcpy(*at, s, n);
    *at += n;
}

/* Appends v in decimal. */
static void put_uint(char **at, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(at, digits + sizeof digits - n, n);
}

/* Method, target, Host, the caller's lines, Content-Length: one buffer, sent
 * with the body in one write. Built with copies, not printf: this runs for
 * every request. */
static char *build_head(const prism_http_request_t *req, const h2o_url_t *u, bool with_length, size_t *out_len)
{
    const char *method = req->method ? req->method : "POST";
    size_t mlen = strlen(method);
    bool own_host = true;
    size_t need = mlen + u->path.len + u->authority.len + 80;
    for (size_t i = 0; i < req->header_count; i++) {
        if (!prism_h1_header_ok(req->headers[i])) {
            return NULL;
        }
        own_host = own_host && !prism_h1_header_is(req->headers[i], "Host");
        need += strlen(req->headers[i]) + 2;
    }
    char *head = malloc(need);
    if (!head) {
        return NULL;
    }
    char *at = head;
    put(&at, method, mlen);
    put(&at, " ", 1);
    put(&at, u->path.base, u->path.len);
    put(&at, " HTTP/1.1\r\n", 11);
    if (own_host) {
        put(&at, "Host: ", 6);
        put(&at, u->authority.base, u->authority.len);
        put(&at, "\r\n", 2);
    }
    for (size_t i = 0; i < req->header_count; i++) {
        put(&at, req->headers[i], strlen(req->headers[i]));
        put(&at, "\r\n", 2);
    }
    if (with_length) {
        put(&at, "Content-Length: ", 16);
        put_uint(&at, req->body_len);
        put(&at, "\r\n", 2);
    }
    put(&at, "\r\n", 2);
    *out_len = (size_t)(at - head);
    return head;
}

static bool method_ok(const char *m)
{
    if (!*m) {
        return false;
    }
    for (; *m; m++) {
        if (!((*m >= 'A' && *m <= 'Z') || *m == '-')) {
            return false;
        }
    }
    return true;
}

/* ---- the pool ---- */

static void on_sweep(uv_timer_t *t)
{
    prism_h1_pool *pool = t->data;
    uint64_t now = uv_now(pool->loop);
    /* Entries are freed only once their connections' handles have closed,
     * after this returns. */
    for (h1_host *h = pool->hosts; h; h = h->next) {
        for (h1_conn *c = h->idle, *next; c; c = next) {
            next = c->next;
            if (now - c->idle_since >= IDLE_TTL_MS) {
                conn_close(c);
            }
        }
    }
}

prism_h1_pool *prism_h1_pool_new(uv_loop_t *loop, size_t max_header_bytes, size_t max_idle,
                                 void (*gauge)(void *data, int delta), void *gauge_data)
{
    prism_h1_pool *pool = calloc(1, sizeof *pool);
    char *rbuf = pool ? malloc(READ_BUF_SIZE) : NULL;
    if (!rbuf) {
        free(pool);
        return NULL;
    }
    pool->rbuf = rbuf;
    pool->loop = loop;
    pool->gauge = gauge;
    pool->gauge_data = gauge_data;
    pool->max_header_bytes = max_header_bytes ? max_header_bytes : 64u * 1024u;
    pool->idle_max = max_idle ? max_idle : IDLE_MAX;
    uv_timer_init(loop, &pool->sweep);
    pool->sweep.data = pool;
    uv_timer_start(&pool->sweep, on_sweep, IDLE_SWEEP_MS, IDLE_SWEEP_MS);
    uv_unref((uv_handle_t *)&pool->sweep);
    return pool;
}

static void on_sweep_closed(uv_handle_t *h)
{
    prism_h1_pool *pool = h->data;
    pool->sweep.data = NULL;
    if (pool->conns == 0) {
        pool_release(pool);
    }
}

void prism_h1_pool_free(prism_h1_pool *pool)
{
    if (!pool || pool->freeing) {
        return;
    }
    pool->freeing = true;
    for (h1_host *h = pool->hosts; h; h = h->next) {
        while (h->idle) {
            conn_close(h->idle);
        }
    }
    uv_close((uv_handle_t *)&pool->sweep, on_sweep_closed);
}

int prism_h1_pool_proxied(prism_h1_pool *pool, const char *no_proxy)
{
    char *copy = strdup(no_proxy ? no_proxy : "");
    if (!copy) {
        return -1;
    }
    free(pool->no_proxy);
    pool->no_proxy = copy;
    return 0;
}

/* Whether `list` (no_proxy) exempts `host` from the proxy. */
static bool proxy_exempt(const char *list, const char *host)
{
    size_t hlen = strlen(host);
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t') {
            p++;
        }
        const char *end = p;
        while (*end && *end != ',' && *end != ' ' && *end != '\t') {
            end++;
        }
        size_t n = (size_t)(end - p);
        if (n == 1 && *p == '*') {
            return true;
        }
        if (n > 0 && *p == '.') {
            p++, n--;
        }
        if (n > 0 && n <= hlen && strncasecmp(host + hlen - n, p, n) == 0 && (n == hlen || host[hlen - n - 1] == '.')) {
            return true;
        }
        p = end;
    }
    return false;
}

size_t prism_h1_pool_connections(const prism_h1_pool *pool)
{
    return pool ? pool->conns : 0;
}

/* Whether an idle connection is still open, asked of the socket itself.
 * Its read watcher reports a close only when the loop next polls, and a
 * close that came while the loop was busy (a large body being parsed) sits
 * unread: the request given that connection would fail on a close the
 * upstream made before it was sent. */
static bool still_open(h1_conn *c)
{
    uv_os_fd_t fd;
    char byte;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
        return false;
    }
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK); /* 0: closed; >0: spoke out of turn */
}

/* The most recently used idle connection to `key`. One idle for a while is
 * checked first: servers close kept connections on a keep-alive timer of a
 * second or more, and only such a close can be pending unseen. A connection
 * reused sooner is not checked, which keeps the system call off the busy path. */
static h1_conn *take_idle(prism_h1_pool *pool, const char *key)
{
    uint64_t now = uv_now(pool->loop);
    h1_host *h = host_find(pool, key);
    while (h && h->idle) {
        h1_conn *c = h->idle;
        if (now - c->idle_since < IDLE_CHECK_MS || still_open(c)) {
            idle_unlink(c);
            return c;
        }
        conn_close(c); /* unlinks it; `h` stays until its handles close */
    }
    return NULL;
}

static int parse_target(prism_h1_req *r, const prism_http_request_t *req, h2o_url_t *u)
{
    if (strncasecmp(req->url, "http://", 7) != 0 || h2o_url_parse(req->url, SIZE_MAX, u) != 0 ||
        u->scheme != &H2O_URL_SCHEME_HTTP || !url_bytes_ok(u->authority.base, u->authority.len) ||
        !url_bytes_ok(u->path.base, u->path.len)) {
        return -1;
    }
    r->port = h2o_url_get_port(u);
    /* One allocation: the key ("host:port") and, after its NUL, the host. */
    char *key = malloc(2 * u->host.len + 8);
    if (!key) {
        return -1;
    }
    char *at = key;
    put(&at, u->host.base, u->host.len);
    put(&at, ":", 1);
    put_uint(&at, r->port);
    put(&at, "", 1);
    r->key = key;
    r->host = at;
    put(&at, u->host.base, u->host.len);
    put(&at, "", 1);
    return 0;
}

/* Starts on an idle connection, a new one to a literal address, or a new
 * one once the name resolves. */
static int begin(prism_h1_req *r)
{
    prism_h1_pool *pool = r->pool;
    h1_conn *c = take_idle(pool, r->key);
    if (c) {
        c->req = r;
        r->conn = c;
        r->reused = true;
        conn_send(c);
        return 0;
    }
    struct sockaddr_storage sa;
    if (uv_ip4_addr(r->host, r->port, (struct sockaddr_in *)&sa) == 0 ||
        uv_ip6_addr(r->host, r->port, (struct sockaddr_in6 *)&sa) == 0) {
        /* A literal: one address, kept with the request. */
        struct addrinfo *ai = calloc(1, sizeof *ai + sizeof sa);
        if (!ai) {
            return -1;
        }
        ai->ai_addr = (struct sockaddr *)(ai + 1);
        memcpy(ai->ai_addr, &sa, sizeof sa);
        r->next_addr = ai;
        r->literal = ai;
        return connect_next(r);
    }
    uv_getaddrinfo_t *gai = malloc(sizeof *gai);
    if (!gai) {
        return -1;
    }
    gai->data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)r->port);
    if (uv_getaddrinfo(pool->loop, gai, on_resolved, r->host, port, &hints) != 0) {
        free(gai);
        return -1;
    }
    r->resolving = gai;
    return 0;
}

prism_h1_req *prism_h1_start(prism_h1_pool *pool, const prism_http_request_t *req, long connect_timeout_ms,
                             const prism_h1_callbacks *cb)
{
    if (!pool || pool->freeing || !req || !req->url || !cb) {
        return NULL;
    }
    const char *method = req->method ? req->method : "POST";
    if (!method_ok(method)) {
        return NULL;
    }
    prism_h1_req *r = calloc(1, sizeof *r);
    h2o_url_t u;
    if (!r || parse_target(r, req, &u) != 0 || (pool->no_proxy && !proxy_exempt(pool->no_proxy, r->host))) {
        if (r) {
            req_free(r);
        }
        return NULL;
    }
    bool has_body =
        req->body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    r->head = build_head(req, &u, has_body, &r->head_len);
    if (!r->head) {
        req_free(r);
        return NULL;
    }
    r->pool = pool;
    r->cb = *cb;
    r->body = req->body_len ? req->body : NULL;
    r->body_len = req->body_len;
    r->head_only = strcmp(method, "HEAD") == 0;
    r->connect_ms = connect_timeout_ms;
    r->total_ms = req->timeout_ms;
    uint64_t now = uv_now(pool->loop);
    r->connect_deadline = connect_timeout_ms > 0 ? now + (uint64_t)connect_timeout_ms : 0;
    r->deadline = req->timeout_ms > 0 ? now + (uint64_t)req->timeout_ms : 0;
    if (begin(r) != 0) {
        req_free(r);
        return NULL;
    }
    return r;
}

/* ---- control ---- */

void prism_h1_resume(prism_h1_req *r)
{
    if (!r || r->cancelled || !r->paused) {
        return;
    }
    r->paused = false;
    if (r->done_pending) {
        /* The end was seen while paused; report it from the loop, not from
         * inside this call. */
        r->done_pending = false;
        finish_later(r, PRISM_UPSTREAM_OK, "");
        return;
    }
    if (r->conn) {
        start_reading(r->conn);
    }
}

void prism_h1_cancel(prism_h1_req *r)
{
    if (!r || r->cancelled) {
        return;
    }
    r->cancelled = true;
    if (r->in_cb) {
        return; /* the callback's caller frees it */
    }
    if (r->resolving) {
        r->resolving->data = NULL; /* on_resolved frees the lookup */
        r->resolving = NULL;
    }
    req_release_conn(r, false);
    req_free(r);
}
