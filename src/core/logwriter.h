/*
 * logwriter.h - the thread that writes the log while the server runs.
 *
 * A worker's loop must not wait on its log: a full pipe on stderr (a
 * journal or a container runtime that stopped reading) or a stalled disk
 * would stop it serving. Every thread hands its lines to this one (access
 * lines batched once per loop turn, log.h), which does the write(2)s. Its
 * buffer is bounded: lines handed over while it is full are dropped and
 * counted, and the writer says how many once it can write again. Handing over takes a mutex and a copy; the thread is
 * woken only when it has gone idle, so a busy server never signals it.
 */
#ifndef PRISM_LOGWRITER_H
#define PRISM_LOGWRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct prism_log_writer prism_log_writer;

/* Starts the thread, writing with prism_log_write; `cap` bytes may wait to
 * be written. NULL when it cannot start (callers then write themselves). */
prism_log_writer *prism_log_writer_start(size_t cap);
/* Queues len bytes of whole lines. 0, or -1 when they did not fit and were
 * dropped. Any thread. */
int prism_log_writer_put(prism_log_writer *w, const char *buf, size_t len);
/* Lines dropped since the start. */
uint64_t prism_log_writer_dropped(prism_log_writer *w);
/* Writes what is queued, stops the thread and frees it (NULL: nothing);
 * 0. No put may run during it, nor after it returns 0. -1 when the sink
 * took no writes for 2 s: the thread still runs and `w` stays valid (puts
 * keep queueing or dropping), to be ended by the process's exit. */
int prism_log_writer_stop(prism_log_writer *w);

#endif
