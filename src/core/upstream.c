/*
 * upstream.c - outgoing HTTP on libcurl's multi interface, driven by libuv,
 * and the dispatch of plain http:// transfers to h1client.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one uv_poll_t
 * each) and when to wake it up (CURLMOPT_TIMERFUNCTION: one uv_timer_t); every
 * wake-up becomes a curl_multi_socket_action() followed by a sweep of
 * curl_multi_info_read() for finished transfers. Nothing here blocks.
 *
 * Re-entrancy. User callbacks run inside libcurl (on_response, on_body) or
 * inside our completion sweep (on_complete), and from there they may cancel
 * any transfer, start new ones, resume paused ones or even free the pool.
 * libcurl forbids adding or removing easy handles from inside its callbacks,
 * and freeing a transfer whose frame is still on the stack would be a
 * use-after-free. So the pool counts how deep its own code is on the stack
 * (`depth`): while it is non-zero, cancelling only marks the transfer dead (no
 * callback ever runs for it again) and queues it for reaping, starting only
 * queues the handle for adding, and freeing the pool only sets a flag. The
 * outermost frame runs that deferred work before it returns to the loop.
 *
 * Pausing. When on_body returns PRISM_UPSTREAM_PAUSE it has consumed the
 * chunk, so the write callback still reports the whole chunk as taken and then
 * calls curl_easy_pause(CURLPAUSE_RECV) itself (libcurl allows that from a
 * callback). Returning CURL_WRITEFUNC_PAUSE instead would make libcurl keep the
 * chunk and deliver it again after the resume, i.e. twice. Once paused,
 * libcurl buffers whatever it has already read but not yet delivered and hands
 * it over on CURLPAUSE_CONT; should it call the write callback anyway while we
 * consider the transfer paused, we return CURL_WRITEFUNC_PAUSE without showing
 * the bytes to on_body, so they too arrive exactly once, after the resume.
 *
 * Watchdog. curl only knows whole-transfer and connect deadlines, but a
 * streaming model can be slow to start and then must not go quiet, so a
 * transfer with a first-byte or idle deadline gets a uv_timer_t: armed for
 * the first byte when the handle joins the multi, moved to the idle deadline
 * by the first header line, and stopped while the consumer has it paused (a
 * slow client is not a silent upstream). Later header lines and chunks only
 * note the time: the timer, when it fires, re-arms itself for what is left of
 * the idle deadline counted from the last of them. A chunk so costs a store,
 * not a timer-heap update (libcurl reports every header line, a dozen or more
 * a response). Timers are kept by the pool for the next transfer instead of
 * being closed: a transfer is freed at once, and a handle's close needs a
 * loop turn and a callback.
 */
#include "upstream.h"

#include "grow.h"
#include "h1client.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#define DEFAULT_MAX_HEADER_BYTES (64u * 1024u)
#define DEFAULT_MAX_IDLE         1024u
/* Easy handles kept for reuse: curl_easy_init is not free, reset is cheap. */
#define SPARE_EASY_MAX 32
/* Parsed upstream URLs kept per worker: providers call a handful of them. */
#define URL_CACHE_MAX 32
/* Watchdog timers kept stopped for reuse; past this many, closed. */
#define SPARE_WATCHDOG_MAX 1024

typedef struct sock_watch sock_watch;

/* A watchdog timer; `timer` first, so a closing handle is the whole thing. */
typedef struct wd_timer {
    uv_timer_t timer;
    struct wd_timer *next_spare; /* pool->spare_watchdogs */
} wd_timer;

struct prism_upstream {
    prism_upstream_pool *pool;
    CURL *easy;       /* NULL when the plain-HTTP client runs it */
    prism_h1_req *h1; /* that client's request, until it ends */
    struct curl_slist *req_headers;
    prism_http_callbacks_t cb;
    prism_upstream *prev, *next; /* pool->live */
    prism_upstream *add_next;    /* pool->to_add */
    prism_upstream *reap_next;   /* pool->reap */
    wd_timer *watchdog;          /* NULL when neither deadline below is set */
    long first_byte_ms, idle_ms; /* 0: that deadline is off */
    uint64_t last_kick_ms;       /* loop time of the last byte from the upstream */
    /* Final response's headers as "name\0value\0" pairs. */
    char *hdr;
    size_t hdr_len, hdr_cap;
    size_t hdr_seen; /* every header byte received, for the cap */
    long last_status;
    bool attached;     /* the easy handle is in the multi */
    bool dead;         /* cancelled or completed: no more callbacks */
    bool headers_done; /* the final response's header block ended */
    bool responded;    /* on_response ran */
    bool paused;
    bool header_overflow;
    bool first_byte_seen; /* the watchdog moved on to the idle deadline */
    bool sent;            /* curl asked to send the request once */
    bool resend_refused;  /* ... and then again; see on_curl_prereq */
    char errbuf[CURL_ERROR_SIZE];
};

struct sock_watch {
    uv_poll_t poll;
    prism_upstream_pool *pool;
    curl_socket_t fd;
    int events;              /* what `poll` is started with (0: stopped) */
    bool owned;              /* a connection's socket, opened by on_open_socket */
    bool wanted;             /* curl watches it now (between its IN/OUT and REMOVE) */
    sock_watch *prev, *next; /* pool->watches */
};

struct prism_upstream_pool {
    uv_loop_t *loop;
    CURLM *multi;
    prism_h1_pool *h1; /* plain http:// upstreams; NULL: libcurl for all */
    uv_timer_t timer;
    long connect_timeout_ms;
    size_t max_header_bytes;
    size_t max_idle; /* connections each client keeps idle */
    char *ca_file;
    prism_upstream *live;
    prism_upstream *to_add;
    prism_upstream *reap;
    sock_watch *watches;
    sock_watch **by_fd; /* owned watches, indexed by descriptor */
    size_t by_fd_cap;
    size_t active;
    size_t open_handles; /* uv handles whose close callback has not run */
    int depth;           /* frames of this module on the stack */
    bool free_requested;
    bool closing;
    CURL *spare[SPARE_EASY_MAX];
    size_t spare_count;
    wd_timer *spare_watchdogs; /* stopped, data NULL */
    size_t spare_watchdog_count;
    struct {
        char *url;
        CURLU *parsed;
    } urls[URL_CACHE_MAX];
    size_t url_count;
};

static void pool_teardown(prism_upstream_pool *pool);
static bool proxy_configured(void);
static const char *no_proxy_list(void);

/* ---- small helpers ---- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) {
        memcpy(p, s, n);
    }
    return p;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The pool's memory outlives every uv handle it opened. */
static void handle_released(prism_upstream_pool *pool)
{
    if (--pool->open_handles == 0 && pool->closing) {
        free(pool->by_fd);
        free(pool->ca_file);
        free(pool);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    prism_upstream_pool *pool = h->data;
    if (h->type == UV_POLL) {
        free(h); /* the uv_poll_t is the first member of its sock_watch */
    }
    handle_released(pool);
}

static void on_watchdog_closed(uv_handle_t *h)
{
    prism_upstream_pool *pool = h->data; /* the transfer is already gone */
    free(h);
    handle_released(pool);
}

/* ---- the per-transfer watchdog (first-byte and idle deadlines) ---- */

static void on_watchdog(uv_timer_t *timer);

static int watchdog_open(prism_upstream *up, const prism_http_request_t *req)
{
    up->first_byte_ms = req->first_byte_timeout_ms > 0 ? req->first_byte_timeout_ms : 0;
    up->idle_ms = req->idle_timeout_ms > 0 ? req->idle_timeout_ms : 0;
    if (up->first_byte_ms == 0 && up->idle_ms == 0) {
        return 0; /* neither deadline: no timer to pay for */
    }
    prism_upstream_pool *pool = up->pool;
    wd_timer *w = pool->spare_watchdogs;
    if (w) {
        pool->spare_watchdogs = w->next_spare;
        pool->spare_watchdog_count--;
    } else {
        w = malloc(sizeof *w);
        if (!w || uv_timer_init(pool->loop, &w->timer) != 0) {
            free(w);
            return -1;
        }
        pool->open_handles++;
    }
    w->timer.data = up;
    up->watchdog = w;
    return 0;
}

/* The timer's close callback runs on a later loop turn, after the transfer is
 * freed, so from here on it points at the pool only. */
static void watchdog_free(prism_upstream_pool *pool, wd_timer *w)
{
    w->timer.data = pool;
    uv_close((uv_handle_t *)&w->timer, on_watchdog_closed);
}

/* Back to the pool's spares, stopped, unless the pool is going away. */
static void watchdog_close(prism_upstream *up)
{
    wd_timer *w = up->watchdog;
    if (!w) {
        return;
    }
    prism_upstream_pool *pool = up->pool;
    up->watchdog = NULL;
    if (pool->closing || pool->free_requested || pool->spare_watchdog_count >= SPARE_WATCHDOG_MAX) {
        watchdog_free(pool, w);
        return;
    }
    uv_timer_stop(&w->timer);
    w->timer.data = NULL;
    w->next_spare = pool->spare_watchdogs;
    pool->spare_watchdogs = w;
    pool->spare_watchdog_count++;
}

static void watchdog_stop(prism_upstream *up)
{
    if (up->watchdog) {
        uv_timer_stop(&up->watchdog->timer);
    }
}

/* The handle has joined the multi: the wait for the response begins. */
static void watchdog_on_attach(prism_upstream *up)
{
    if (up->watchdog && up->first_byte_ms > 0) {
        uv_timer_start(&up->watchdog->timer, on_watchdog, (uint64_t)up->first_byte_ms, 0);
    }
}

/* Something arrived from the upstream: the idle deadline starts over. After
 * the first byte that is a note of the time, which on_watchdog reads. */
static void watchdog_kick(prism_upstream *up)
{
    if (!up->watchdog || up->paused) {
        return;
    }
    uv_timer_t *t = &up->watchdog->timer;
    up->last_kick_ms = uv_now(up->pool->loop);
    if (!up->first_byte_seen) {
        up->first_byte_seen = true;
        if (up->idle_ms == 0) {
            uv_timer_stop(t);
        } else {
            uv_timer_start(t, on_watchdog, (uint64_t)up->idle_ms, 0);
        }
        return;
    }
    /* Stopped by a pause, now over. */
    if (up->idle_ms > 0 && !uv_is_active((uv_handle_t *)t)) {
        uv_timer_start(t, on_watchdog, (uint64_t)up->idle_ms, 0);
    }
}

/* ---- deferring work until no frame of ours is on the stack ---- */

static void pool_enter(prism_upstream_pool *pool)
{
    pool->depth++;
}

static void upstream_destroy(prism_upstream *up)
{
    prism_upstream_pool *pool = up->pool;
    if (up->h1) {
        prism_h1_cancel(up->h1);
        up->h1 = NULL;
    }
    if (up->attached) {
        curl_multi_remove_handle(pool->multi, up->easy);
    }
    if (!up->easy) {
        /* the plain-HTTP client ran it */
    } else if (pool->spare_count < SPARE_EASY_MAX && !pool->free_requested) {
        curl_easy_reset(up->easy);
        pool->spare[pool->spare_count++] = up->easy;
    } else {
        curl_easy_cleanup(up->easy);
    }
    if (up->prev) {
        up->prev->next = up->next;
    } else {
        pool->live = up->next;
    }
    if (up->next) {
        up->next->prev = up->prev;
    }
    watchdog_close(up);
    curl_slist_free_all(up->req_headers);
    free(up->hdr);
    free(up);
}

/* No callback runs for a dead transfer; its memory goes at the next reap. */
static void mark_dead(prism_upstream *up)
{
    if (up->dead) {
        return;
    }
    up->dead = true;
    watchdog_stop(up);
    if (up->h1) {
        prism_h1_cancel(up->h1); /* its I/O stops now; safe inside its callbacks */
        up->h1 = NULL;
    }
    up->pool->active--;
    up->reap_next = up->pool->reap;
    up->pool->reap = up;
}

/* Once cancelled, completed, or its pool is being freed, a transfer runs no
 * more user code. */
static bool silenced(const prism_upstream *up)
{
    return up->dead || up->pool->free_requested;
}

static void complete(prism_upstream *up, CURLcode rc);

static bool attach(prism_upstream *up)
{
    if (curl_multi_add_handle(up->pool->multi, up->easy) != CURLM_OK) {
        return false;
    }
    up->attached = true;
    watchdog_on_attach(up);
    return true;
}

static void attach_pending(prism_upstream_pool *pool)
{
    while (pool->to_add) {
        prism_upstream *up = pool->to_add;
        pool->to_add = up->add_next;
        if (silenced(up)) {
            continue;
        }
        if (!attach(up)) {
            /* prism_upstream_start already returned it, so report instead. */
            snprintf(up->errbuf, sizeof up->errbuf, "%s", "could not schedule the transfer");
            complete(up, CURLE_FAILED_INIT);
        }
    }
}

static void reap_dead(prism_upstream_pool *pool)
{
    while (pool->reap) {
        prism_upstream *up = pool->reap;
        pool->reap = up->reap_next;
        upstream_destroy(up);
    }
}

static void pool_leave(prism_upstream_pool *pool)
{
    if (pool->depth > 1) {
        pool->depth--;
        return;
    }
    /* Still at depth 1 here: callbacks run by attach_pending queue their work
     * instead of recursing, and the loop picks it up. */
    while (pool->to_add || pool->reap) {
        attach_pending(pool);
        reap_dead(pool);
    }
    pool->depth = 0;
    if (pool->free_requested && !pool->closing) {
        pool_teardown(pool);
    }
}

/* ---- response headers ---- */

static void header_store_reset(prism_upstream *up)
{
    up->hdr_len = 0;
    up->headers_done = false;
}

/* Each header is stored as its two lengths (uint32_t, native order, copied
 * in and out so the store needs no alignment) followed by "name\0value\0":
 * lookups and relaying compare lengths without measuring strings, and the
 * NUL-terminated name and value are handed out in place. */
enum { HDR_LENS = 2 * sizeof(uint32_t) };

static int header_store_add(prism_upstream *up, const char *name, size_t nlen, const char *val, size_t vlen)
{
    if (nlen > UINT32_MAX || vlen > UINT32_MAX) {
        return -1;
    }
    size_t need = up->hdr_len + HDR_LENS + nlen + vlen + 2;
    if (prism_grow(&up->hdr, &up->hdr_cap, need, 512) != 0) {
        return -1;
    }
    uint32_t lens[2] = {(uint32_t)nlen, (uint32_t)vlen};
    char *dst = up->hdr + up->hdr_len;
    memcpy(dst, lens, HDR_LENS);
    dst += HDR_LENS;
    memcpy(dst, name, nlen);
    dst[nlen] = '\0';
    memcpy(dst + nlen + 1, val, vlen);
    dst[nlen + 1 + vlen] = '\0';
    up->hdr_len = need;
    return 0;
}

/* The entry at p (its lengths) and where the next one starts. */
static const char *header_entry(const char *p, size_t *nlen, size_t *vlen)
{
    uint32_t lens[2];
    memcpy(lens, p, HDR_LENS);
    *nlen = lens[0];
    *vlen = lens[1];
    return p + HDR_LENS + lens[0] + lens[1] + 2;
}

/* One "Name: value" line; lines without a colon (obsolete folding) are
 * dropped rather than guessed at. */
static int header_line_store(prism_upstream *up, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) {
        return 0;
    }
    size_t nlen = (size_t)(colon - line);
    while (nlen > 0 && is_space(line[nlen - 1])) {
        nlen--;
    }
    const char *val = colon + 1;
    const char *end = line + len;
    while (val < end && is_space(*val)) {
        val++;
    }
    while (end > val && is_space(end[-1])) {
        end--;
    }
    return header_store_add(up, line, nlen, val, (size_t)(end - val));
}

static bool is_blank_line(const char *line, size_t len)
{
    return (len == 2 && line[0] == '\r' && line[1] == '\n') || (len == 1 && line[0] == '\n');
}

static size_t on_curl_header(char *line, size_t size, size_t nitems, void *userdata)
{
    prism_upstream *up = userdata;
    size_t len = size * nitems;
    if (silenced(up)) {
        return 0;
    }
    watchdog_kick(up);
    /* The cap counts every header byte, interim responses and trailers
     * included: it bounds the work a hostile upstream can make us do. */
    up->hdr_seen += len;
    if (up->hdr_seen > up->pool->max_header_bytes) {
        up->header_overflow = true;
        return 0;
    }
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new status line: an interim (1xx) or proxy CONNECT response came
         * first, and only the final response's headers count. */
        header_store_reset(up);
        const char *sp = memchr(line, ' ', len);
        up->last_status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    if (is_blank_line(line, len)) {
        up->headers_done = up->last_status >= 200;
        return len;
    }
    if (up->headers_done) {
        return len; /* trailers: the stored values must stay put */
    }
    return header_line_store(up, line, len) == 0 ? len : 0;
}

const char *prism_upstream_header(const prism_upstream *up, const char *name)
{
    if (!up || !name || !up->hdr) {
        return NULL;
    }
    /* Relaying looks up a handful of names per response: lengths first, so
     * most lines cost no case-insensitive compare at all. */
    size_t n = strlen(name);
    const char *end = up->hdr + up->hdr_len;
    for (const char *p = up->hdr; p < end;) {
        size_t nlen, vlen;
        const char *next = header_entry(p, &nlen, &vlen);
        const char *hname = p + HDR_LENS;
        if (nlen == n && strncasecmp(hname, name, n) == 0) {
            return hname + nlen + 1;
        }
        p = next;
    }
    return NULL;
}

const char *prism_upstream_header_next(const prism_upstream *up, const char *prev, prism_upstream_hline *line)
{
    if (!up || !up->hdr)
        return NULL;
    const char *p = prev == NULL ? up->hdr : header_entry(prev - HDR_LENS, &line->name_len, &line->value_len);
    if (p >= up->hdr + up->hdr_len)
        return NULL;
    header_entry(p, &line->name_len, &line->value_len);
    line->value = p + HDR_LENS + line->name_len + 1;
    return p + HDR_LENS;
}

/* ---- body and completion ---- */

static void deliver_response(prism_upstream *up)
{
    long status = up->last_status;
    up->responded = true;
    if (up->easy) {
        curl_easy_getinfo(up->easy, CURLINFO_RESPONSE_CODE, &status);
    }
    if (up->cb.on_response) {
        up->cb.on_response(up->cb.data, up, (int)status);
    }
}

static size_t on_curl_write(char *chunk, size_t size, size_t nmemb, void *userdata)
{
    prism_upstream *up = userdata;
    size_t len = size * nmemb;
    if (silenced(up)) {
        return 0; /* cancelled: make curl abandon the transfer now */
    }
    if (len == 0) {
        return 0;
    }
    if (up->paused) {
        return CURL_WRITEFUNC_PAUSE; /* not consumed: curl keeps it for later */
    }
    watchdog_kick(up);
    if (!up->responded) {
        deliver_response(up);
        if (silenced(up)) {
            return 0;
        }
    }
    int rc = up->cb.on_body ? up->cb.on_body(up->cb.data, up, chunk, len) : 0;
    if (silenced(up)) {
        return 0;
    }
    if (rc == PRISM_UPSTREAM_PAUSE) {
        /* on_body consumed the chunk, so report it taken and stop reading
         * (see the note at the top of this file). */
        up->paused = true;
        watchdog_stop(up);
        curl_easy_pause(up->easy, CURLPAUSE_RECV);
    }
    return len;
}

static prism_upstream_error map_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return PRISM_UPSTREAM_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return PRISM_UPSTREAM_ERR_DNS;
    case CURLE_COULDNT_CONNECT: return PRISM_UPSTREAM_ERR_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT: return PRISM_UPSTREAM_ERR_TLS;
    case CURLE_OPERATION_TIMEDOUT: return PRISM_UPSTREAM_ERR_TIMEOUT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return PRISM_UPSTREAM_ERR_RESET;
    default: return PRISM_UPSTREAM_ERR_OTHER;
    }
}

/* curl's error buffer names hosts and ports but not header values; anything
 * that looks like an address (a scheme separator) is still replaced by the
 * generic text so a URL, with its query string, never leaks into logs. */
static const char *error_message(prism_upstream *up, CURLcode rc)
{
    if (rc == CURLE_OK) {
        return "";
    }
    if (up->header_overflow) {
        return "upstream response headers too large";
    }
    if (up->errbuf[0] && !strstr(up->errbuf, "://")) {
        size_t n = strlen(up->errbuf);
        while (n > 0 && is_space(up->errbuf[n - 1])) {
            up->errbuf[--n] = '\0';
        }
        return up->errbuf;
    }
    return curl_easy_strerror(rc);
}

/* Runs the last callbacks of a finished transfer, then queues it for freeing.
 * Always called with depth > 0, so whatever the callbacks do is deferred. */
static void finish(prism_upstream *up, prism_upstream_error err, const char *message)
{
    if (!up->responded && up->headers_done) {
        deliver_response(up); /* empty body, or a failure after the headers */
        if (silenced(up)) {
            return;
        }
    }
    if (up->cb.on_complete) {
        up->cb.on_complete(up->cb.data, up, err, message);
    }
    mark_dead(up);
}

static void complete(prism_upstream *up, CURLcode rc)
{
    prism_upstream_error err = up->header_overflow  ? PRISM_UPSTREAM_ERR_OTHER
                               : up->resend_refused ? PRISM_UPSTREAM_ERR_RESET
                                                    : map_error(rc);
    finish(up, err, error_message(up, rc));
}

/* A deadline passed: the transfer ends here as a timeout. Reaping it removes
 * the easy handle mid-transfer, so curl closes an HTTP/1.1 connection rather
 * than hand a half-read response to the next request (over HTTP/2 it resets
 * just that stream, sparing the others sharing the connection). */
static void on_watchdog(uv_timer_t *timer)
{
    prism_upstream *up = timer->data;
    if (silenced(up)) {
        return;
    }
    if (up->first_byte_seen) {
        /* The deadline counts from the last byte, which may be newer than
         * when the timer was armed: then it waits out what is left. */
        uint64_t now = uv_now(up->pool->loop), due = up->last_kick_ms + (uint64_t)up->idle_ms;
        if (due > now) {
            uv_timer_start(timer, on_watchdog, due - now, 0);
            return;
        }
        snprintf(up->errbuf, sizeof up->errbuf, "the upstream sent nothing for %ld ms", up->idle_ms);
    } else {
        snprintf(up->errbuf, sizeof up->errbuf, "no response from the upstream within %ld ms", up->first_byte_ms);
    }
    prism_upstream_pool *pool = up->pool;
    pool_enter(pool);
    complete(up, CURLE_OPERATION_TIMEDOUT);
    pool_leave(pool);
}

static void drain_finished(prism_upstream_pool *pool)
{
    CURLMsg *msg;
    int left;
    while (!pool->free_requested && (msg = curl_multi_info_read(pool->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURLcode rc = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        prism_upstream *up = (prism_upstream *)priv;
        if (up && !silenced(up)) {
            complete(up, rc);
        }
    }
}

/* ---- libuv <-> curl plumbing ---- */

static void socket_action(prism_upstream_pool *pool, curl_socket_t fd, int flags)
{
    int running;
    pool_enter(pool);
    curl_multi_socket_action(pool->multi, fd, flags, &running);
    drain_finished(pool);
    pool_leave(pool);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    sock_watch *w = (sock_watch *)handle;
    if (!w->wanted) {
        /* An idle kept-alive connection spoke (the provider closed it, or
         * an HTTP/2 ping): stop watching; curl checks a cached connection
         * itself before it reuses it. */
        uv_poll_stop(&w->poll);
        w->events = 0;
        return;
    }
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    socket_action(w->pool, w->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
    socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

static sock_watch **by_fd_slot(prism_upstream_pool *pool, curl_socket_t fd, bool grow)
{
    if (fd < 0) {
        return NULL;
    }
    size_t i = (size_t)fd;
    if (i >= pool->by_fd_cap) {
        if (!grow) {
            return NULL;
        }
        size_t cap = pool->by_fd_cap ? pool->by_fd_cap : 64;
        while (cap <= i) {
            cap *= 2;
        }
        sock_watch **t = realloc(pool->by_fd, cap * sizeof *t);
        if (!t) {
            return NULL;
        }
        memset(t + pool->by_fd_cap, 0, (cap - pool->by_fd_cap) * sizeof *t);
        pool->by_fd = t;
        pool->by_fd_cap = cap;
    }
    return &pool->by_fd[i];
}

static void watch_close(sock_watch *w)
{
    prism_upstream_pool *pool = w->pool;
    sock_watch **slot = w->owned ? by_fd_slot(pool, w->fd, false) : NULL;
    if (slot && *slot == w) {
        *slot = NULL;
    }
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        pool->watches = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    /* Removes the descriptor from epoll at once, before it is closed. */
    uv_close((uv_handle_t *)&w->poll, on_handle_closed);
}

static sock_watch *watch_open(prism_upstream_pool *pool, curl_socket_t fd, bool owned)
{
    sock_watch *w = calloc(1, sizeof *w);
    if (!w) {
        return NULL;
    }
    if (uv_poll_init_socket(pool->loop, &w->poll, fd) != 0) {
        free(w);
        return NULL;
    }
    w->poll.data = pool;
    w->pool = pool;
    w->fd = fd;
    w->owned = owned;
    w->next = pool->watches;
    if (w->next) {
        w->next->prev = w;
    }
    pool->watches = w;
    pool->open_handles++;
    return w;
}

/*
 * A connection's socket keeps one watch from open to close. curl says
 * CURL_POLL_REMOVE whenever a connection goes back to its cache and IN again
 * when the next request reuses it; re-creating the uv_poll_t each time cost
 * 2-4 epoll_ctl calls per request. Now the watch stays started while the
 * connection idles (see on_poll) and is closed with the socket itself.
 * Sockets curl opens some other way (a resolver's socketpair) get a watch
 * from IN/OUT to REMOVE, as before.
 */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    prism_upstream_pool *pool = clientp;
    (void)purpose;
    curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd == CURL_SOCKET_BAD) {
        return fd;
    }
    sock_watch **slot = by_fd_slot(pool, fd, true);
    if (slot && *slot) {
        watch_close(*slot); /* its descriptor was closed behind our back */
    }
    sock_watch *w = slot ? watch_open(pool, fd, true) : NULL;
    if (!w) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    *slot = w;
    return fd;
}

static int on_close_socket(void *clientp, curl_socket_t fd)
{
    sock_watch **slot = by_fd_slot(clientp, fd, false);
    if (slot && *slot) {
        watch_close(*slot);
    }
    return close(fd);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    prism_upstream_pool *pool = userp;
    sock_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w && w->owned) {
            w->wanted = false; /* still started: see on_open_socket */
        } else if (w) {
            watch_close(w);
        }
        return 0;
    }
    if (!w) {
        sock_watch **slot = by_fd_slot(pool, fd, false);
        w = slot && *slot ? *slot : watch_open(pool, fd, false);
        if (!w) {
            return -1;
        }
        curl_multi_assign(pool->multi, fd, w);
    }
    w->wanted = true;
    int events = 0;
    events |= (what & CURL_POLL_IN) ? UV_READABLE : 0;
    events |= (what & CURL_POLL_OUT) ? UV_WRITABLE : 0;
    if (events == w->events) {
        return 0; /* libuv would re-register the descriptor for nothing */
    }
    if (uv_poll_start(&w->poll, events, on_poll) != 0) {
        return -1;
    }
    w->events = events;
    return 0;
}

/* curl asks to be called back after timeout_ms; 0 means as soon as possible,
 * which still goes through the loop because socket_action must not be called
 * from inside this callback. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    prism_upstream_pool *pool = userp;
    if (pool->closing) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&pool->timer);
        return 0;
    }
    return uv_timer_start(&pool->timer, on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

/* ---- the pool ---- */

static int pool_init_multi(prism_upstream_pool *pool)
{
    pool->multi = curl_multi_init();
    if (!pool->multi) {
        return -1;
    }
    curl_multi_setopt(pool->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(pool->multi, CURLMOPT_SOCKETDATA, pool);
    curl_multi_setopt(pool->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(pool->multi, CURLMOPT_TIMERDATA, pool);
    /* Several requests to one provider share an HTTP/2 connection. */
    curl_multi_setopt(pool->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* curl's default cache (4 x transfers in flight) closes idle provider
     * connections under bursty load and pays a new TCP/TLS handshake for
     * 1-3% of requests; providers are few, so keep many warm. */
    curl_multi_setopt(pool->multi, CURLMOPT_MAXCONNECTS, (long)pool->max_idle);
    return 0;
}

prism_upstream_pool *prism_upstream_pool_new(uv_loop_t *loop, const prism_upstream_options *opts)
{
    if (!loop) {
        return NULL;
    }
    prism_upstream_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        return NULL;
    }
    pool->loop = loop;
    pool->max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    pool->max_idle = opts && opts->max_idle ? opts->max_idle : DEFAULT_MAX_IDLE;
    if (opts) {
        pool->connect_timeout_ms = opts->connect_timeout_ms;
        if (opts->max_response_header_bytes) {
            pool->max_header_bytes = opts->max_response_header_bytes;
        }
        if (opts->ca_file && !(pool->ca_file = dup_str(opts->ca_file))) {
            free(pool);
            return NULL;
        }
    }
    if (pool_init_multi(pool) != 0 || uv_timer_init(loop, &pool->timer) != 0) {
        if (pool->multi) {
            curl_multi_cleanup(pool->multi);
        }
        free(pool->ca_file);
        free(pool);
        return NULL;
    }
    pool->timer.data = pool;
    pool->open_handles = 1;
    if (!(opts && opts->libcurl_only)) {
        /* Without it (out of memory) libcurl carries plain http:// too. */
        pool->h1 = prism_h1_pool_new(loop, pool->max_header_bytes, pool->max_idle, opts ? opts->conn_gauge : NULL,
                                     opts ? opts->conn_gauge_data : NULL);
    }
    if (pool->h1 && proxy_configured() && prism_h1_pool_proxied(pool->h1, no_proxy_list()) != 0) {
        prism_h1_pool_free(pool->h1);
        pool->h1 = NULL;
    }
    return pool;
}

static void pool_teardown(prism_upstream_pool *pool)
{
    pool->closing = true;
    while (pool->live) {
        upstream_destroy(pool->live); /* no callbacks: the pool is going away */
    }
    for (size_t i = 0; i < pool->spare_count; i++) {
        curl_easy_cleanup(pool->spare[i]);
    }
    pool->spare_count = 0;
    while (pool->spare_watchdogs) {
        wd_timer *w = pool->spare_watchdogs;
        pool->spare_watchdogs = w->next_spare;
        watchdog_free(pool, w);
    }
    pool->spare_watchdog_count = 0;
    curl_multi_cleanup(pool->multi);
    pool->multi = NULL;
    prism_h1_pool_free(pool->h1);
    pool->h1 = NULL;
    for (size_t i = 0; i < pool->url_count; i++) {
        free(pool->urls[i].url);
        curl_url_cleanup(pool->urls[i].parsed);
    }
    pool->url_count = 0;
    /* Sockets curl closed without a CURL_POLL_REMOVE still have a watch. */
    while (pool->watches) {
        watch_close(pool->watches);
    }
    uv_close((uv_handle_t *)&pool->timer, on_handle_closed);
}

void prism_upstream_pool_free(prism_upstream_pool *pool)
{
    if (!pool || pool->free_requested) {
        return;
    }
    pool->free_requested = true;
    if (pool->depth == 0) {
        pool_teardown(pool);
    }
}

size_t prism_upstream_pool_active(const prism_upstream_pool *pool)
{
    return pool ? pool->active : 0;
}

/* ---- plain http:// upstreams, through h1client ---- */

/* The same steps as curl's header and write callbacks above, fed by the
 * plain-HTTP client, which hands over the final head in one piece. */
static void h1_on_head(void *data, int status, const char *const *names, const size_t *name_lens,
                       const char *const *values, const size_t *value_lens, size_t count)
{
    prism_upstream *up = data;
    prism_upstream_pool *pool = up->pool;
    if (silenced(up)) {
        return;
    }
    pool_enter(pool);
    header_store_reset(up);
    for (size_t i = 0; i < count; i++) {
        if (header_store_add(up, names[i], name_lens[i], values[i], value_lens[i]) != 0) {
            break; /* out of memory: the headers stored so far stand */
        }
    }
    up->last_status = status;
    up->headers_done = true;
    watchdog_kick(up);
    deliver_response(up);
    pool_leave(pool);
}

static int h1_on_body(void *data, const char *chunk, size_t len)
{
    prism_upstream *up = data;
    prism_upstream_pool *pool = up->pool;
    if (silenced(up)) {
        return PRISM_UPSTREAM_PAUSE;
    }
    pool_enter(pool);
    watchdog_kick(up);
    int rc = up->cb.on_body ? up->cb.on_body(up->cb.data, up, chunk, len) : 0;
    if (rc == PRISM_UPSTREAM_PAUSE && !silenced(up)) {
        up->paused = true;
        watchdog_stop(up);
    }
    pool_leave(pool); /* may free `up` */
    return rc == PRISM_UPSTREAM_PAUSE ? PRISM_UPSTREAM_PAUSE : 0;
}

static void h1_on_done(void *data, prism_upstream_error err, const char *message)
{
    prism_upstream *up = data;
    prism_upstream_pool *pool = up->pool;
    up->h1 = NULL; /* freed by h1client once this returns */
    if (silenced(up)) {
        return; /* the pool is going away and frees it */
    }
    pool_enter(pool);
    finish(up, err, message);
    pool_leave(pool);
}

/* With a proxy variable set, plain http:// goes to h1client only for the
 * hosts no_proxy exempts; libcurl takes the others, through the proxy. */
static bool proxy_configured(void)
{
    const char *names[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            return true;
        }
    }
    return false;
}

/* The hosts libcurl would reach without the proxy (curl reads the lower
 * case name first). */
static const char *no_proxy_list(void)
{
    const char *v = getenv("no_proxy");
    return v ? v : getenv("NO_PROXY");
}

/* The transfer on the plain-HTTP client, or NULL when that client does not
 * take the request (the caller falls back to libcurl). */
static prism_upstream *start_plain(prism_upstream_pool *pool, const prism_http_request_t *req,
                                   const prism_http_callbacks_t *cb)
{
    if (!pool->h1 || strncasecmp(req->url, "http://", 7) != 0) {
        return NULL;
    }
    prism_upstream *up = calloc(1, sizeof *up);
    if (!up) {
        return NULL;
    }
    up->pool = pool;
    up->cb = *cb;
    long connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : pool->connect_timeout_ms;
    prism_h1_callbacks hc = {.data = up, .on_head = h1_on_head, .on_body = h1_on_body, .on_done = h1_on_done};
    if (watchdog_open(up, req) != 0 || !(up->h1 = prism_h1_start(pool->h1, req, connect_ms, &hc))) {
        watchdog_close(up);
        free(up);
        return NULL;
    }
    watchdog_on_attach(up);
    return up;
}

/* ---- starting a transfer ---- */

/* Copies the caller's header lines, refusing any that could smuggle a second
 * header or request (CR/LF) or that have no name. */
static int build_headers(prism_upstream *up, const prism_http_request_t *req, bool has_body)
{
    bool has_ctype = false;
    for (size_t i = 0; i < req->header_count; i++) {
        const char *line = req->headers[i];
        if (!prism_h1_header_ok(line)) {
            return -1;
        }
        has_ctype = has_ctype || prism_h1_header_is(line, "Content-Type");
        struct curl_slist *l = curl_slist_append(up->req_headers, line);
        if (!l) {
            return -1;
        }
        up->req_headers = l;
    }
    /* "Name:" with no value removes a header curl would add by itself: no
     * 100-continue round trip, and no form-urlencoded type for a JSON body. */
    const char *extra[] = {"Expect:", (has_body && !has_ctype) ? "Content-Type:" : NULL};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        struct curl_slist *l = extra[i] ? curl_slist_append(up->req_headers, extra[i]) : up->req_headers;
        if (!l) {
            return -1;
        }
        up->req_headers = l;
    }
    return 0;
}

/* Called by curl before every attempt to send the request. The first call is
 * ours; a second one means curl is about to re-send the request on its own
 * (a reused connection died before any response), and a provider may already
 * have run, and billed, the first one. Refusing it surfaces the failure as a
 * reset: only a retry policy, which counts and logs its retries, sends a
 * request again. */
static int on_curl_prereq(void *data, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                          int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    prism_upstream *up = data;
    if (up->sent) {
        up->resend_refused = true;
        snprintf(up->errbuf, sizeof up->errbuf, "%s", "the upstream connection closed before a response");
        return CURL_PREREQFUNC_ABORT;
    }
    up->sent = true;
    return CURL_PREREQFUNC_OK;
}

static void set_method(CURL *easy, const char *method, const prism_http_request_t *req)
{
    bool is_post = strcmp(method, "POST") == 0;
    if (is_post || req->body_len > 0) {
        /* Always give POST a body (maybe empty): without one curl would read
         * the request body from stdin. */
        /* Not copied: the caller keeps the body alive until on_complete.
         * Given whole, curl sends a body under 64 KiB in the same write as
         * the request head: one segment, one wake-up of the provider. */
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (!is_post) {
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
        }
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    }
}

static bool url_is_http(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* The URL parsed once per worker, or NULL (not cached: curl parses it).
 * Handed to curl with CURLOPT_CURLU, it spares every transfer curl's own
 * parse of the URL and the rebuild of its normalized form, about a tenth of
 * a proxied request's instructions. curl only copies the handle, at connect
 * time, so the pool keeps it until it is freed. */
static CURLU *parsed_url(prism_upstream_pool *pool, const char *url)
{
    for (size_t i = 0; i < pool->url_count; i++) {
        if (strcmp(pool->urls[i].url, url) == 0)
            return pool->urls[i].parsed;
    }
    if (pool->url_count == URL_CACHE_MAX)
        return NULL;
    CURLU *u = curl_url();
    char *copy = dup_str(url);
    /* The flags curl itself parses CURLOPT_URL with. */
    if (!u || !copy ||
        curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(u);
        free(copy);
        return NULL;
    }
    pool->urls[pool->url_count].url = copy;
    pool->urls[pool->url_count].parsed = u;
    pool->url_count++;
    return u;
}

static int configure(prism_upstream *up, const prism_http_request_t *req)
{
    CURL *easy = up->easy;
    const char *method = req->method ? req->method : "POST";
    bool has_body = req->body_len > 0 || strcmp(method, "POST") == 0;
    if (!url_is_http(req->url) || build_headers(up, req, has_body) != 0) {
        return -1;
    }
    long connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : up->pool->connect_timeout_ms;
    /* CURLOPT_URL as well: with it set, curl takes the URL string from it
     * instead of printing one from the parsed handle. */
    CURLcode rc = curl_easy_setopt(easy, CURLOPT_URL, req->url);
    CURLU *parsed = rc == CURLE_OK ? parsed_url(up->pool, req->url) : NULL;
    if (parsed) {
        rc = curl_easy_setopt(easy, CURLOPT_CURLU, parsed);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    }
    if (rc == CURLE_OK && up->pool->ca_file) {
        rc = curl_easy_setopt(easy, CURLOPT_CAINFO, up->pool->ca_file);
    }
    if (rc != CURLE_OK) {
        return -1;
    }
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)up);
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, on_curl_prereq);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, up);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, up->pool);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, up->pool);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, up->errbuf);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, up->req_headers);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, up);
    /* A proxy's CONNECT reply is not the upstream's first byte. */
    curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, up);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, wait for a connection being set up to tell (by ALPN) whether
     * it multiplexes rather than opening another. Not over plain http: curl
     * only learns that from the first response's status line, so every
     * concurrent request would queue behind the first one's time to first
     * byte. */
    if (strncasecmp(req->url, "https://", 8) == 0) {
        curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    }
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    /* Bytes go through as the upstream sent them: no surprise inflation. */
    curl_easy_setopt(easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    /* CURLOPT_BUFFERSIZE is left at curl's default on purpose: with libcurl
     * 7.88 and easy handles reused after curl_easy_reset, a smaller buffer
     * led to a receive past its end (seen under valgrind). */
    if (connect_ms > 0) {
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    }
    if (req->timeout_ms > 0) {
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    }
    set_method(easy, method, req);
    return 0;
}

static CURL *take_easy(prism_upstream_pool *pool)
{
    if (pool->spare_count > 0) {
        return pool->spare[--pool->spare_count];
    }
    return curl_easy_init();
}

static void discard(prism_upstream *up)
{
    if (up->easy) {
        curl_easy_cleanup(up->easy);
    }
    watchdog_close(up);
    curl_slist_free_all(up->req_headers);
    free(up);
}

prism_upstream *prism_upstream_start(prism_upstream_pool *pool, const prism_http_request_t *req,
                                     const prism_http_callbacks_t *cb)
{
    if (!pool || !req || !req->url || !cb || pool->free_requested) {
        return NULL;
    }
    prism_upstream *up = start_plain(pool, req, cb);
    if (up) {
        goto live;
    }
    up = calloc(1, sizeof *up);
    if (!up) {
        return NULL;
    }
    up->pool = pool;
    up->cb = *cb;
    up->easy = take_easy(pool);
    if (!up->easy || configure(up, req) != 0 || watchdog_open(up, req) != 0) {
        discard(up);
        return NULL;
    }
    if (pool->depth > 0) {
        /* Inside a callback: curl refuses new handles there. */
        up->add_next = pool->to_add;
        pool->to_add = up;
    } else if (!attach(up)) {
        discard(up);
        return NULL;
    }
live:
    up->next = pool->live;
    if (up->next) {
        up->next->prev = up;
    }
    pool->live = up;
    pool->active++;
    return up;
}

/* ---- control ---- */

void prism_upstream_resume(prism_upstream *up)
{
    if (!up || silenced(up) || !up->paused) {
        return;
    }
    prism_upstream_pool *pool = up->pool;
    up->paused = false;
    /* Before the resume, which may deliver a chunk and pause again. */
    watchdog_kick(up);
    if (up->h1) {
        prism_h1_resume(up->h1); /* runs no callback from here */
        return;
    }
    pool_enter(pool);
    /* May hand buffered data to on_body right here; a re-pause inside is
     * fine (curl keeps what is left). */
    curl_easy_pause(up->easy, CURLPAUSE_CONT);
    pool_leave(pool);
    /* Make curl look at the socket again on the next loop turn (curl also
     * asks for that through the timer callback; this is belt and braces). */
    if (!pool->closing) {
        uv_timer_start(&pool->timer, on_timer, 0, 0);
    }
}

void prism_upstream_cancel(prism_upstream *up)
{
    if (!up || up->dead) {
        return;
    }
    prism_upstream_pool *pool = up->pool;
    if (pool->depth > 0) {
        /* Curl may be using this handle right now: stop its I/O (the body
         * buffer may be freed by the caller) and free it on the way out.
         * mark_dead stops a plain-HTTP transfer's I/O itself. */
        if (up->attached) {
            curl_easy_pause(up->easy, CURLPAUSE_ALL);
        }
        mark_dead(up);
        return;
    }
    mark_dead(up);
    pool_enter(pool);
    pool_leave(pool);
}
