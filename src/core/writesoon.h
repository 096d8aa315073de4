/*
 * writesoon.h - a write to a TCP stream done at once, its callback run on the
 * loop's next turn, with no epoll_ctl.
 *
 * libuv's uv_write writes at once when nothing is queued, then runs the
 * callback on the next loop turn and, the queue being empty, stops watching
 * for writability. That stop queues the descriptor for an EPOLL_CTL_MOD
 * whenever libuv watches it for reading, even though writability was never
 * watched: with reading paused rather than stopped while a request is
 * answered (readpause.h), one system call per response that changes nothing.
 *
 * This module defines uv_write and uv_close in the executable, which the
 * dynamic linker binds every library's calls to (libh2o's included), and
 * forwards to libuv's own. On a loop given to prism_write_soon_new, a write
 * to a TCP stream with nothing queued goes out with uv_try_write; when all
 * of it went, its callback is queued and run, with status 0, on the loop's
 * next turn (an idle handle), as libuv would run it. Anything else (a part
 * written, nothing written, an error, another kind of stream, another loop)
 * is libuv's uv_write, for the rest. A stream closed while its callback
 * waits gets it before its close callback, as libuv does for a write that
 * completed. docs/decisions/0012-no-epoll-ctl-per-request.md has the measurement.
 *
 * Every write passing here, the one answer h2o writes past its filters (its
 * parser's plain-text 400) is sent as the JSON error it stands for
 * (errfilter.h).
 */
#ifndef PRISM_WRITESOON_H
#define PRISM_WRITESOON_H

#include <uv.h>

typedef struct prism_write_soon prism_write_soon;

/* For the loop the calling thread runs (one per thread). NULL when out of
 * memory: writes on the loop are then all libuv's. */
prism_write_soon *prism_write_soon_new(uv_loop_t *loop);

/* Runs the callbacks still waiting and closes the idle handle; writes are
 * all libuv's from then on. Called on the thread that tears the loop down,
 * which then keeps the state (a stream closed earlier may still need it in
 * its close callback) until prism_write_soon_free, once the loop has run
 * its close callbacks. */
void prism_write_soon_close(prism_write_soon *ws);

/* Frees the state, on the thread that closed it. NULL: nothing. */
void prism_write_soon_free(prism_write_soon *ws);

#endif
