/*
 * readpause.h - a stop of reading on a TCP stream that costs no system call
 * when reading starts again before any byte arrives.
 *
 * libh2o's HTTP/1.1 server stops reading a client's connection while each
 * request is answered and starts again after: uv_read_stop, then
 * uv_read_start. libuv forgets, on the stop, that the descriptor is still
 * registered with epoll, so the start registers it again: an EPOLL_CTL_ADD
 * that fails with EEXIST and an EPOLL_CTL_MOD after it, two system calls per
 * request for a registration that never changed (a third of the worker's
 * system calls on a keep-alive connection; nginx, edge-triggered, makes
 * none).
 *
 * This module defines uv_read_stop and uv_read_start in the executable,
 * which the dynamic linker binds every library's calls to (libh2o's
 * included; the executable exports its symbols for the plugins already), and
 * forwards to libuv's own. A stop on a TCP stream that is reading only
 * pauses it: libuv keeps watching the descriptor, with callbacks that refuse
 * the read (an empty buffer, which makes libuv report UV_ENOBUFS without
 * reading a byte). A start on a paused stream puts the caller's callbacks
 * back, and nothing else happens. When anything arrives while paused (a
 * pipelined request, the client's close), the refused read stops the stream
 * for real, as libuv's stop would have: nothing is read, and the next start
 * registers the descriptor again and finds the bytes or the close waiting.
 * docs/decisions/0012-no-epoll-ctl-per-request.md has the measurement.
 */
#ifndef PRISM_READPAUSE_H
#define PRISM_READPAUSE_H

#include <stdbool.h>

#include <uv.h>

/* True while s is paused: stopped by its owner, still watched by libuv. */
bool prism_read_paused(const uv_stream_t *s);

#endif
