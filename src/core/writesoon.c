/*
 * writesoon.c - see writesoon.h.
 *
 * The waiting callbacks are a ring of the requests themselves (each holds its
 * stream and callback in uv_write_t's public fields), in the order written.
 * A stream closed while some of its callbacks wait is closed with a callback
 * of this module's, which runs them and then the owner's: its record (the
 * handle and the owner's close callback) sits in a table kept large enough,
 * at every write, that a close never allocates. The state outlives every
 * handle of its loop: close callbacks may run in any order once the loop is
 * being torn down.
 *
 * The state is found through the thread running the loop (a thread-local
 * pointer), never through the loop: loop->data may hold anything on a loop
 * this module never saw, and every loop's writes and closes come here.
 */
#include "writesoon.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "errfilter.h"
#include "interpose.h"

typedef int (*write_fn)(uv_write_t *, uv_stream_t *, const uv_buf_t[], unsigned int, uv_write_cb);
typedef void (*close_fn)(uv_handle_t *, uv_close_cb);

/* libuv's own functions, looked up once before main runs and only read after:
 * the same for every loop, so they belong to no server object. */
static write_fn libuv_write;
static close_fn libuv_close;

/* The state of the loop this thread runs, if it has one. */
static _Thread_local prism_write_soon *bound;

__attribute__((constructor)) static void find_libuv(void)
{
    libuv_write = (write_fn)prism_next_definition("uv_write");
    libuv_close = (close_fn)prism_next_definition("uv_close");
}

typedef struct closing {
    uv_handle_t *handle;
    uv_close_cb close_cb;
} closing;

struct prism_write_soon {
    uv_idle_t idle;
    uv_loop_t *loop;
    bool closed;
    uv_write_t **ring; /* waiting, oldest at head; NULL: already run */
    size_t cap, head, count;
    closing *closings;
    size_t nclosings, closings_cap;
};

/* The state for a handle of loop: closed (the loop torn down) or not. */
static prism_write_soon *of_loop(const uv_loop_t *loop)
{
    prism_write_soon *ws = bound;
    return ws != NULL && ws->loop == loop ? ws : NULL;
}

static uv_write_t **slot(prism_write_soon *ws, size_t i)
{
    return &ws->ring[(ws->head + i) & (ws->cap - 1)];
}

/* Room for one more waiting callback, and for a close record per stream
 * that could then have some waiting. */
static int reserve(prism_write_soon *ws)
{
    if (ws->count == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 64;
        uv_write_t **ring = malloc(cap * sizeof *ring);
        if (ring == NULL) {
            return -1;
        }
        for (size_t i = 0; i < ws->count; i++) {
            ring[i] = *slot(ws, i);
        }
        free(ws->ring);
        ws->ring = ring;
        ws->cap = cap;
        ws->head = 0;
    }
    size_t need = ws->count + ws->nclosings + 1;
    if (need > ws->closings_cap) {
        size_t cap = ws->closings_cap ? ws->closings_cap * 2 : 64;
        while (cap < need) {
            cap *= 2;
        }
        closing *c = realloc(ws->closings, cap * sizeof *c);
        if (c == NULL) {
            return -1;
        }
        ws->closings = c;
        ws->closings_cap = cap;
    }
    return 0;
}

static void run(uv_write_t *req)
{
    if (req->cb != NULL) {
        req->cb(req, 0);
    }
}

static void on_idle(uv_idle_t *idle)
{
    prism_write_soon *ws = idle->data;
    /* Only those waiting now: a callback's own write waits for the next turn. */
    for (size_t n = ws->count; n > 0 && ws->count > 0; n--) {
        uv_write_t *req = *slot(ws, 0);
        ws->head = (ws->head + 1) & (ws->cap - 1);
        ws->count--;
        if (req != NULL) {
            run(req);
        }
    }
    if (ws->count == 0) {
        uv_idle_stop(idle);
    }
}

/* Runs, in order, the waiting callbacks of h's writes (or every one). */
static void run_waiting(prism_write_soon *ws, const uv_handle_t *h)
{
    for (size_t i = 0; i < ws->count; i++) {
        uv_write_t **s = slot(ws, i);
        uv_write_t *req = *s;
        if (req != NULL && (h == NULL || (uv_handle_t *)req->handle == h)) {
            *s = NULL;
            run(req);
        }
    }
}

static void on_closed(uv_handle_t *h)
{
    prism_write_soon *ws = of_loop(h->loop); /* the loop runs on the thread its state is bound to */
    if (ws == NULL) {
        return; /* cannot be: no other thread runs a loop this module closed a stream of */
    }
    uv_close_cb cb = NULL;
    for (size_t i = 0; i < ws->nclosings; i++) {
        if (ws->closings[i].handle == h) {
            cb = ws->closings[i].close_cb;
            ws->closings[i] = ws->closings[--ws->nclosings];
            break;
        }
    }
    run_waiting(ws, h);
    if (cb != NULL) {
        cb(h);
    }
}

static bool has_waiting(prism_write_soon *ws, const uv_handle_t *h)
{
    for (size_t i = 0; i < ws->count; i++) {
        const uv_write_t *req = *slot(ws, i);
        if (req != NULL && (const uv_handle_t *)req->handle == h) {
            return true;
        }
    }
    return false;
}

void uv_close(uv_handle_t *h, uv_close_cb close_cb)
{
    prism_write_soon *ws = of_loop(h->loop);
    /* ws->closed too: the loop is being torn down, and a stream closed now
     * may still have callbacks waiting from before. */
    if (ws == NULL || h->type != UV_TCP || !has_waiting(ws, h)) {
        libuv_close(h, close_cb);
        return;
    }
    ws->closings[ws->nclosings++] = (closing){h, close_cb}; /* room kept by reserve */
    libuv_close(h, on_closed);
}

/* The bufs after the first skip bytes, into out (n of them). */
static unsigned int after(const uv_buf_t bufs[], unsigned int nbufs, size_t skip, uv_buf_t *out)
{
    unsigned int i = 0;
    while (i < nbufs && skip >= bufs[i].len) {
        skip -= bufs[i++].len;
    }
    unsigned int n = 0;
    for (; i < nbufs; i++, skip = 0) {
        out[n++] = uv_buf_init(bufs[i].base + skip, (unsigned int)(bufs[i].len - skip));
    }
    return n;
}

int uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[], unsigned int nbufs, uv_write_cb cb)
{
    /* The one answer h2o writes past every filter goes out as JSON, like
     * every other error (errfilter.h). */
    uv_buf_t json;
    const char *text;
    size_t len;
    if (nbufs == 1 && prism_errfilter_bare_400(bufs[0].base, bufs[0].len, &text, &len)) {
        json = uv_buf_init((char *)text, (unsigned int)len); /* a constant: valid until the write ends */
        bufs = &json;
    }
    prism_write_soon *ws = of_loop(s->loop);
    if (ws == NULL || ws->closed || s->type != UV_TCP || nbufs == 0 || nbufs > 64 || reserve(ws) != 0) {
        return libuv_write(req, s, bufs, nbufs, cb);
    }
    size_t total = 0;
    for (unsigned int i = 0; i < nbufs; i++) {
        total += bufs[i].len;
    }
    if (total > INT_MAX) {
        return libuv_write(req, s, bufs, nbufs, cb); /* more than uv_try_write can count */
    }
    int sent = uv_try_write(s, bufs, nbufs);
    if (sent < 0 || (sent == 0 && total > 0)) {
        return libuv_write(req, s, bufs, nbufs, cb); /* nothing went: libuv's, its errors included */
    }
    if ((size_t)sent < total) {
        uv_buf_t rest[64];
        return libuv_write(req, s, rest, after(bufs, nbufs, (size_t)sent, rest), cb);
    }
    req->type = UV_WRITE;
    req->handle = s;
    req->send_handle = NULL;
    req->cb = cb;
    *slot(ws, ws->count++) = req;
    if (ws->count == 1) {
        uv_idle_start(&ws->idle, on_idle);
    }
    return 0;
}

prism_write_soon *prism_write_soon_new(uv_loop_t *loop)
{
    prism_write_soon *ws = calloc(1, sizeof *ws);
    if (ws == NULL || uv_idle_init(loop, &ws->idle) != 0) {
        free(ws);
        return NULL;
    }
    ws->idle.data = ws;
    ws->loop = loop;
    bound = ws;
    return ws;
}

void prism_write_soon_close(prism_write_soon *ws)
{
    bound = ws;        /* the thread tearing the loop down may not be the one that ran it */
    ws->closed = true; /* every write from now on is libuv's, those of the callbacks below too */
    run_waiting(ws, NULL);
    ws->count = 0;
    libuv_close((uv_handle_t *)&ws->idle, NULL);
}

void prism_write_soon_free(prism_write_soon *ws)
{
    if (ws == NULL) {
        return;
    }
    if (bound == ws) {
        bound = NULL;
    }
    free(ws->ring);
    free(ws->closings);
    free(ws);
}
