/*
 * readpause.c - see readpause.h.
 *
 * What "libuv is reading" means here: POLLIN in the stream's io_watcher
 * pevents (the events libuv wants from epoll; the struct is in libuv's public
 * unix header). libuv sets it whenever it starts reading and clears it
 * whenever it stops, on its own too (end of stream, a read error, a close),
 * so it cannot say "reading" of a stream libuv will never read again.
 */
#include "readpause.h"

#include <poll.h>

#include "interpose.h"

typedef int (*read_start_fn)(uv_stream_t *, uv_alloc_cb, uv_read_cb);
typedef int (*read_stop_fn)(uv_stream_t *);

/* libuv's own functions, looked up once before main runs and only read after:
 * the same for every loop, so they belong to no server object. */
static read_start_fn libuv_read_start;
static read_stop_fn libuv_read_stop;

__attribute__((constructor)) static void find_libuv(void)
{
    libuv_read_start = (read_start_fn)prism_next_definition("uv_read_start");
    libuv_read_stop = (read_stop_fn)prism_next_definition("uv_read_stop");
}

static bool libuv_reading(const uv_stream_t *s)
{
    return (s->io_watcher.pevents & POLLIN) != 0;
}

/* An empty buffer: libuv reads nothing and reports UV_ENOBUFS instead. */
static void refuse_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(NULL, 0);
}

/* Something arrived while paused, none of it read: UV_ENOBUFS for bytes or an
 * error waiting, UV_EOF when libuv saw the hang-up without reading (it has
 * stopped reading then). Either way the stream ends up stopped for real, and
 * the owner's next start finds whatever arrived still in the socket. */
static void refused_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)nread;
    (void)buf;
    if (libuv_reading(s)) {
        libuv_read_stop(s); /* clears the callbacks too */
        return;
    }
    s->read_cb = NULL;
    s->alloc_cb = NULL;
}

bool prism_read_paused(const uv_stream_t *s)
{
    return s->read_cb == refused_read;
}

int uv_read_stop(uv_stream_t *s)
{
    /* A second stop, or one on a stream that is not plainly reading, is
     * libuv's to do. */
    if (s->type != UV_TCP || s->read_cb == NULL || prism_read_paused(s) || !libuv_reading(s) ||
        uv_is_closing((const uv_handle_t *)s)) {
        return libuv_read_stop(s);
    }
    s->alloc_cb = refuse_alloc;
    s->read_cb = refused_read;
    return 0;
}

int uv_read_start(uv_stream_t *s, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    if (prism_read_paused(s) && libuv_reading(s)) {
        if (!alloc_cb || !read_cb || uv_is_closing((const uv_handle_t *)s)) {
            return UV_EINVAL; /* as libuv answers */
        }
        s->alloc_cb = alloc_cb;
        s->read_cb = read_cb;
        return 0;
    }
    return libuv_read_start(s, alloc_cb, read_cb);
}
